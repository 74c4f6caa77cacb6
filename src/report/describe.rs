//! One record in words: who it concerns, the event's stable name, its outcome and a sentence.
//!
//! Every output (the text timeline, the JSON Lines trace, explanations) renders records through
//! [`describe`], so they all say the same thing the same way.

use std::fmt::Write as _;

use crate::actors::Obs;
use crate::actors::ebs::VolumeObs;
use crate::actors::ec2::{Eviction, InstanceObs};
use crate::actors::group::GroupObs;
use crate::actors::image::ImageObs;
use crate::actors::kms::{CiphertextRef, Expiry, GrantRef, Grantee, KmsObs, KmsOp, KmsOutput, MaterialId};
use crate::actors::kms::{ImportType, MaterialState};
use crate::actors::snapshot::{SnapshotObs, Use};
pub use crate::analysis::record::{Outcome, caller_words, verdict};
use crate::engine::{ActorId, Record, SimTime};
use crate::run::{Names, Role, role};
use crate::scenario::SnapshotSource;

/// A record in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Described {
    /// The key's scenario name for key events, else the actor's name.
    pub subject: String,
    /// The key's scenario name, for KMS events about a key.
    pub key: Option<String>,
    /// A stable event name: the AWS API or event name where there is one.
    pub event: &'static str,
    pub outcome: Outcome,
    /// The AWS exception or EC2 error code of a failure.
    pub error: Option<String>,
    pub message: String,
}

#[must_use]
pub fn describe(names: &Names<'_>, rec: &Record<Obs>) -> Described {
    let s = names.scenario;
    let (key, outcome, error) = verdict(s, rec);
    let key = key.map(str::to_string);
    Described {
        subject: key.clone().unwrap_or_else(|| names.at(rec.actor, rec.id).into_owned()),
        key,
        event: rec.obs.event_name(),
        outcome,
        error: error.map(str::to_string),
        message: sentence(names, rec),
    }
}

/// The material a cryptographic call used, or would have: the one its ciphertext is bound to.
fn served_by(op: &KmsOp, result: &crate::actors::kms::Outcome) -> Option<MaterialId> {
    match (op, result) {
        (_, Ok(KmsOutput::Decrypted { material, .. })) => *material,
        (_, Ok(KmsOutput::Ciphertext(c)))
        | (
            KmsOp::Decrypt { ciphertext: CiphertextRef::Blob(c), .. }
            | KmsOp::ReEncrypt { ciphertext: CiphertextRef::Blob(c), .. },
            _,
        ) => c.material,
        _ => None,
    }
}

/// The record in a sentence.
#[allow(clippy::too_many_lines)] // one arm per observation
fn sentence(names: &Names<'_>, rec: &Record<Obs>) -> String {
    let s = names.scenario;
    let material = |m: MaterialId| s.materials.get(m.0 as usize).cloned().unwrap_or_else(|| "?".into());
    let name = |a: ActorId| names.at(a, rec.id).into_owned();
    let at = |t: SimTime| format!("{} ({})", s.instant(t), t);
    match &rec.obs {
        Obs::Kms(KmsObs::Called { caller, op, result, key }) => {
            let mut message = match (&**op, result) {
                (KmsOp::ImportKeyMaterial { material: m, expiry, import_type, .. }, result) => {
                    let valid = match expiry {
                        Expiry::Never => "does not expire".to_string(),
                        Expiry::At(t) => format!("ValidTo {}", at(*t)),
                        Expiry::WithoutValidTo => "expires, with no ValidTo".to_string(),
                    };
                    // A first import, or a reimport of the current material, reads as it always
                    // did; a new material says it waits for a rotation.
                    let role = match result {
                        Ok(KmsOutput::Imported { state: MaterialState::PendingRotation, .. }) => {
                            ", new material, PENDING_ROTATION"
                        }
                        Ok(KmsOutput::Imported { state: MaterialState::NonCurrent, .. }) => ", NON_CURRENT material",
                        _ if *import_type == Some(ImportType::New) => ", as new material",
                        _ => "",
                    };
                    format!("material {}{role}, {valid}", material(*m))
                }
                (KmsOp::RotateKeyOnDemand { .. }, Ok(KmsOutput::Rotated { from: Some(f), to: Some(t) })) => {
                    format!("material {} now CURRENT, {} NON_CURRENT", material(*t), material(*f))
                }
                (KmsOp::ListKeyRotations { .. }, Ok(KmsOutput::Rotations(list))) => {
                    let entries: Vec<String> = list
                        .iter()
                        .map(|e| {
                            let imported = if e.imported { "" } else { " PENDING_IMPORT" };
                            format!("{} {}{imported}", material(e.material), e.state.as_str())
                        })
                        .collect();
                    if entries.is_empty() { "no rotations".to_string() } else { entries.join(", ") }
                }
                (KmsOp::DeleteImportedKeyMaterial { material: Some(m), .. }, Err(_)) => {
                    format!("material {}", material(*m))
                }
                (
                    KmsOp::GetParametersForImport { name: Some(n), .. },
                    Ok(KmsOutput::ImportParameters { parameters_valid_to }),
                ) => {
                    let token = if n.starts_with('#') { String::new() } else { format!("token {n}, ") };
                    format!("{token}valid to {}", at(*parameters_valid_to))
                }
                (
                    KmsOp::ScheduleKeyDeletion { pending_window_days, .. },
                    Ok(KmsOutput::DeletionScheduled { deletion_date }),
                ) => {
                    format!("{pending_window_days}-day waiting period, deletion date {}", at(*deletion_date))
                }
                (KmsOp::DeleteImportedKeyMaterial { .. }, Ok(KmsOutput::MaterialDeleted { material: Some(m) })) => {
                    format!("material {} deleted", material(*m))
                }
                (KmsOp::DeleteImportedKeyMaterial { .. }, Ok(_)) => "no material to delete".to_string(),
                // Which material is current says something once there are several.
                (KmsOp::DescribeKey { .. }, Ok(KmsOutput::Described { state, current })) => {
                    match current.filter(|_| key.is_some_and(|k| names.several_materials(k, rec.id))) {
                        Some(m) => format!("KeyState {state}, CurrentKeyMaterialId of {}", material(m)),
                        None => format!("KeyState {state}"),
                    }
                }
                (KmsOp::CreateGrant { grantee, context, .. }, _) => {
                    let who = match grantee {
                        Grantee::Instance(i) => format!("{}'s ec2-infrastructure role", name(*i)),
                        Grantee::Principal(p) => p.to_string(),
                    };
                    match context {
                        Some(c) => format!("grant for {who} on {}", s.volume_name(*c)),
                        None => format!("grant for {who}"),
                    }
                }
                (
                    KmsOp::Decrypt { context: Some(c), .. }
                    | KmsOp::GenerateDataKeyWithoutPlaintext { context: Some(c), .. },
                    _,
                ) => format!("data key of {}", s.volume_name(*c)),
                (KmsOp::ReEncrypt { contexts: Some(c), .. }, _) if c.source.is_some() && c.destination.is_some() => {
                    let (from, to) = (c.source.expect("checked"), c.destination.expect("checked"));
                    format!("data key of {} for {}", s.volume_name(from), s.volume_name(to))
                }
                (KmsOp::RetireGrant { grant } | KmsOp::RevokeGrant { grant, .. }, _) => {
                    let which = match grant {
                        GrantRef::Id(id) => format!("grant #{}", id.0),
                        GrantRef::Named(n) => format!("grant {n}"),
                        GrantRef::ForContext(v) => format!("EC2's grant for {}", s.volume_name(*v)),
                    };
                    let done = if matches!(**op, KmsOp::RetireGrant { .. }) { "retired" } else { "revoked" };
                    if result.is_ok() { format!("{which} {done}") } else { which }
                }
                _ => String::new(),
            };
            // Once a key has several materials, which one served a cryptographic call matters.
            if let Some(m) = served_by(op, result).filter(|_| key.is_some_and(|k| names.several_materials(k, rec.id))) {
                let sep = if message.is_empty() { "" } else { ", " };
                let _ = write!(message, "{sep}material {}", material(m));
            }
            let by = caller_words(names, *caller, rec.id);
            message = if message.is_empty() { by } else { format!("{message}, {by}") };
            if let Err(e) = result {
                let _ = write!(message, ": {}", e.message(|k| s.key_arn(k)));
            }
            message
        }
        Obs::Kms(KmsObs::StateChanged { from, to, .. }) => match from {
            None => format!("key created, {to}"),
            Some(from) => format!("{from} -> {to}"),
        },
        Obs::Kms(KmsObs::MaterialExpired { material: m, .. }) => {
            format!("KMS deleted material {} at its ValidTo (service event)", material(*m))
        }
        Obs::Kms(KmsObs::Rotated { from: Some(f), to: Some(t), .. }) => {
            format!("KMS rotated the key (service event): {} -> {}", material(*f), material(*t))
        }
        Obs::Kms(KmsObs::Rotated { .. }) => "KMS rotated the key (service event)".to_string(),
        Obs::Kms(KmsObs::KeyDeleted { .. }) => {
            "KMS deleted the key at the end of its waiting period (service event): irreversible".to_string()
        }
        Obs::Volume(v) => match v {
            VolumeObs::CreateRequested => "create requested: EBS asks KMS for a data key".into(),
            VolumeObs::Created => "volume available, encrypted data key stored with it".into(),
            VolumeObs::CreateFailed { error } => {
                format!("EBS createVolume failed: {}", error.message(|k| s.key_arn(k)))
            }
            VolumeObs::AttachRequested { instance } => format!("attach to {} requested", name(*instance)),
            VolumeObs::Attached { instance } => format!("attached to {}", name(*instance)),
            VolumeObs::AttachFailed { instance, error, kms } => {
                let mut message =
                    format!("attach to {} failed: {}", name(*instance), error.message(|v| s.volume_name(v)));
                if let Some(k) = kms {
                    let _ = write!(message, " (KMS: {})", k.exception.as_str());
                }
                message
            }
            VolumeObs::Detached { instance } => {
                format!("detached from {}", name(*instance))
            }
            VolumeObs::Refused { error, .. } => error.message(|v| s.volume_name(v)).into_owned(),
            VolumeObs::KeyLoadFailed { instance, kms, .. } => format!(
                "{} started but could not decrypt the data key (KMS: {})",
                name(*instance),
                kms.exception.as_str()
            ),
            VolumeObs::Io { result: Ok(()), .. } => "disk I/O with the plaintext data key in host memory".into(),
            VolumeObs::Io { result: Err(f), .. } => format!("disk I/O failed: {f}"),
        },
        Obs::Instance(i) => match i {
            InstanceObs::StateChanged { from, to, reason } => {
                let mut message = match from {
                    None if names.life(rec.actor, rec.id) > 0 => {
                        let place = &s.instances[names.place(rec.actor)];
                        format!("launched by auto scaling in place of {place}, {to}")
                    }
                    None => format!("instance {to}"),
                    Some(from) => format!("{from} -> {to}"),
                };
                if let Some((_, text)) = reason {
                    let _ = write!(message, " ({text})");
                }
                message
            }
            InstanceObs::Rebooted => "rebooted; plaintext data keys stay in host memory".into(),
            InstanceObs::Hibernated => {
                "hibernates: RAM written to the encrypted root volume; the resume needs the key (D6)".into()
            }
            InstanceObs::HostMaintenance { from_host, to_host } => {
                format!("AWS moves the instance from host {from_host} to host {to_host} (a stop and start)")
            }
            InstanceObs::DataKeyCached { volume } => {
                format!("plaintext data key of {} in host memory", name(*volume))
            }
            InstanceObs::DataKeyEvicted { volume, why } => {
                let why = match why {
                    Eviction::Detach => "detach",
                    Eviction::Stop => "stop",
                    Eviction::Terminate => "terminate",
                    Eviction::HostMaintenance => "host maintenance",
                };
                format!("plaintext data key of {} leaves host memory ({why})", name(*volume))
            }
            InstanceObs::Refused { error, .. } => error.message(|v| s.volume_name(v)).into_owned(),
        },
        Obs::Group(g) => match g {
            GroupObs::Capacity { in_service, desired } => {
                format!("{in_service} of {desired} desired instances in service")
            }
            GroupObs::Launched { instance } => format!("launched {}", name(*instance)),
            GroupObs::DesiredSet { desired } => format!("desired capacity {desired}, by {}", s.user),
            GroupObs::LaunchFailed { instance, by_kms: true } => format!(
                "the launch of {} failed: a volume's data key could not be had (D6); launching again after the cooldown",
                name(*instance)
            ),
            GroupObs::LaunchFailed { instance, by_kms: false } => {
                format!("EC2 refused the launch of {}; launching again after the cooldown", name(*instance))
            }
        },
        Obs::Image(x) => match x {
            ImageObs::Registered => {
                let Role::Image(i) = role(s, rec.actor) else { unreachable!("images record image facts") };
                let snaps: Vec<&str> = s.images[i].snapshots.iter().map(|&x| &*s.snapshots[x].name).collect();
                format!("image available, from {} (no KMS call)", snaps.join(", "))
            }
            ImageObs::Deregistered => "image deregistered".into(),
            ImageObs::Refused { error, .. } => error.message(|v| s.volume_name(v)).into_owned(),
            ImageObs::Launched { instance } => format!("{} launched from it", name(*instance)),
            ImageObs::LaunchFailed { instance } => {
                format!("the launch of {} from it failed: a volume's data key could not be had (D6)", name(*instance))
            }
        },
        Obs::Service(x) => {
            let Role::Service(r) = role(s, rec.actor) else { unreachable!("service resources record theirs") };
            service_sentence(s, &s.services[r], x)
        }
        Obs::Snapshot(x) => {
            let decl = match role(s, rec.actor) {
                Role::Snapshot(i) => &s.snapshots[i],
                other => unreachable!("snapshots record snapshot facts, not {other:?}"),
            };
            match x {
                SnapshotObs::Created { copy: false } => {
                    let SnapshotSource::Volume(v) = decl.source else { unreachable!("a snapshot of a volume") };
                    format!("snapshot of {} completed; it keeps the volume's encrypted data key", s.volumes[v].name)
                }
                SnapshotObs::Created { copy: true } => {
                    let SnapshotSource::Copy(from) = decl.source else { unreachable!("a copy") };
                    format!("copy of {} completed under {}", s.snapshots[from].name, s.key(decl.key).name)
                }
                SnapshotObs::CreateFailed { error } => {
                    format!("EBS copySnapshot failed: {}", error.message(|k| s.key_arn(k)))
                }
                SnapshotObs::Refused { error, .. } => error.message(|v| s.volume_name(v)).into_owned(),
                SnapshotObs::Deleted => "snapshot deleted".into(),
                SnapshotObs::Used { by, what: Use::Restore } => format!("{} restored from it", name(*by)),
                SnapshotObs::Used { by, what: Use::Copy } => format!("copied to {}", name(*by)),
                SnapshotObs::UseFailed { by, what, exception } => format!(
                    "{} of {} from it failed: its data key could not be decrypted (KMS: {})",
                    what.action(),
                    name(*by),
                    exception.as_str()
                ),
            }
        }
    }
}

/// A service resource's record in a sentence.
fn service_sentence(
    s: &crate::scenario::Scenario,
    decl: &crate::scenario::ServiceDecl,
    x: &crate::actors::service::ServiceObs,
) -> String {
    use crate::actors::service::{Hold, Kind as K, Lifecycle, ServiceObs as S, State};
    let kind = x.kind();
    let service = kind.service_name();
    let arn = |k: crate::actors::kms::KeyIdx| s.key_arn(k);
    match x {
        S::Created { .. } => format!("{} created: {service} made its data key (GenerateDataKey)", kind.noun()),
        S::CreateFailed { error, .. } => {
            format!(
                "{} failed: {}: {}",
                kind.create_api(),
                kind.create_error_code(error.exception),
                error.message(|k| s.key_arn(k))
            )
        }
        S::Served { decrypted: false, .. } => format!("served with the data key {service} holds in memory"),
        S::Served { decrypted: true, .. } => {
            let how = match decl.policy.hold {
                Hold::PerRequest => "every request decrypts",
                _ => "it holds the plaintext again",
            };
            format!("served: {service} decrypted its data key ({how})")
        }
        S::RequestFailed { failure, .. } | S::Lifecycle { failure: Some(failure), .. } => {
            format!("failed: {}", failure.message(kind, &arn))
        }
        S::Lifecycle { what, failure: None, .. } => match what {
            Lifecycle::Reboot => format!("rebooted: {service} decrypted its data key again"),
            Lifecycle::Stop => format!("stopped: {service} dropped its plaintext data key"),
            Lifecycle::Start => format!("started: {service} decrypted its data key"),
            Lifecycle::Restore => format!("restored from its backup: {service} decrypted its data key"),
            Lifecycle::Resize => format!("resized: {service} decrypted the cluster key again"),
        },
        S::StateChanged { from, to, reason, .. } => {
            let why = match (to, reason) {
                (State::Inaccessible, Some(e)) if kind == K::Lambda => {
                    format!(
                        "StateReasonCode {}: Lambda could not decrypt its environment variables",
                        K::lambda_reason(*e)
                    )
                }
                (State::Inaccessible, _) => match kind {
                    K::Rds | K::Aurora => {
                        "RDS could not decrypt its data key: a start within 7 days that can decrypt recovers it".into()
                    }
                    K::Redshift => "Redshift could not decrypt the cluster key: it took a backup of the cluster; no \
                                   queries run; deleted if the key is not back within 14 days"
                        .into(),
                    K::DynamoDb => {
                        "DynamoDB could not decrypt the table key: SSEDescription.InaccessibleEncryptionDateTime \
                                   set; archived if the key is not back within 7 days"
                            .into()
                    }
                    _ => format!("{service} could not decrypt its data key"),
                },
                (State::Terminal, _) => match kind {
                    K::Rds | K::Aurora => "7 days without its key: only a restore from backup leads back".into(),
                    K::Redshift => "14 days without its key: the cluster is deleted (its backup remains)".into(),
                    K::DynamoDb => "7 days without its key: archived after an on-demand backup (ArchivalReason \
                                   INACCESSIBLE_ENCRYPTION_CREDENTIALS)"
                        .into(),
                    _ => format!("{service}'s deadline passed with the key still unusable"),
                },
                (State::Available, _) if kind == K::DynamoDb => {
                    "DynamoDB decrypted the table key again: InaccessibleEncryptionDateTime cleared".into()
                }
                (State::Available, _) => format!("{service} decrypted its data key again"),
                (State::Stopped, _) => "stopped".to_string(),
            };
            format!("{} -> {}: {why}", kind.state_name(*from), kind.state_name(*to))
        }
        S::ReplicaDropped { .. } => {
            "dropped from the global table's replication, 20 hours after DynamoDB noticed (not deleted)".into()
        }
    }
}
