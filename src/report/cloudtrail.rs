//! The run as a CloudTrail log file: what a security engineer would find in the account's trail.
//!
//! One record per KMS API call and per KMS service event (`DeleteExpiredKeyMaterial`,
//! `DeleteKey`), plus the EC2 API calls behind what happened to volumes and instances
//! (`RunInstances`, `CreateVolume`, `AttachVolume`, `DetachVolume`,
//! `Stop/Start/Reboot/TerminateInstances`), whether the timeline or a fleet's cycle made them (a
//! fleet stands for the user's automation; its replacements are auto scaling's, in its service-linked
//! role), in event-time order, each with its outcome (a refused AttachVolume carries EC2's error),
//! shaped as the reference's examples: calls EBS and EC2 make for the user carry `invokedBy` and
//! the `aws:ebs:id` encryption context; EC2's Decrypt runs as the instance's
//! `aws:ec2-infrastructure` role session; service events come from `AWS Internal`. Request and
//! event IDs are drawn from the scenario's seed. CloudTrail times have second precision.

use std::collections::BTreeMap;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

use crate::actors::Obs;
use crate::actors::ebs::VolumeObs;
use crate::actors::ec2::{Ec2Error, Eviction, InstanceAction, InstanceObs, InstanceState};
use crate::actors::group::GroupObs;
use crate::actors::image::ImageObs;
use crate::actors::kms::ImportType;
use crate::actors::kms::{
    Caller, CiphertextRef, ContextId, Expiry, GrantRef, Grantee, KeyIdx, KeyRef, KmsObs, KmsOp, KmsOutput, MaterialId,
    Service,
};
use crate::actors::service::{Kind, ServiceObs};
use crate::actors::snapshot::SnapshotObs;
use crate::engine::{ActorId, Cause, Record, RecordId, SimTime};
use crate::run::{Names, Role, Run, role};
use crate::scenario::{Scenario, SnapshotSource};

/// The `eventVersion` kmsim writes (the current KMS examples' version).
pub const EVENT_VERSION: &str = "1.11";
/// The caller address in AWS's examples (TEST-NET-1).
pub const USER_IP: &str = "192.0.2.0";

struct Ids(ChaCha8Rng);

impl Ids {
    fn new(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(crate::engine::stream_key("cloudtrail"));
        Ids(rng)
    }

    fn uuid(&mut self) -> String {
        let mut b: [u8; 16] = self.0.random();
        b[6] = 0x40 | (b[6] & 0x0f);
        b[8] = 0x80 | (b[8] & 0x3f);
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    }
}

/// A key material's 64-hex ID: KMS derives it from the key ID and the material.
#[must_use]
pub fn key_material_id(key_id: &str, material: &str) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    rng.set_stream(crate::engine::stream_key(&format!("{key_id}/{material}")));
    let b: [u8; 32] = rng.random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// CloudTrail's `eventTime`: UTC, to the second.
fn event_time(s: &Scenario, t: SimTime) -> String {
    let ms = s.start.as_millisecond() + i64::try_from(t.as_ms()).unwrap_or(i64::MAX);
    jiff::Timestamp::from_millisecond(ms)
        .map_or_else(|_| String::new(), |ts| ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// The console's date format in KMS request and response elements: `May 21, 2026, 5:42:00 AM`.
fn console_date(s: &Scenario, t: SimTime) -> String {
    let ms = s.start.as_millisecond() + i64::try_from(t.as_ms()).unwrap_or(i64::MAX);
    jiff::Timestamp::from_millisecond(ms)
        .map_or_else(|_| String::new(), |ts| ts.strftime("%b %-d, %Y, %-I:%M:%S %p").to_string())
}

/// The CloudTrail records of a run as a fold: it reads the run's records in order, as they come,
/// and writes each CloudTrail record once it is whole (an AttachVolume's outcome comes a few
/// records after the request: the records behind it wait for it, in order).
pub struct Writer<'s> {
    scenario: &'s Scenario,
    names: Names<'s>,
    ids: Ids,
    /// Keys whose material has been imported: a later import's type is EXISTING_KEY_MATERIAL.
    imported: Vec<bool>,
    /// Per instance, the records its last termination made (the state change, the keys it
    /// dropped): a detach they caused is EC2's doing, not a call.
    terminations: BTreeMap<ActorId, Vec<RecordId>>,
    /// CloudTrail records made and not yet handed out, in order.
    waiting: std::collections::VecDeque<Waiting>,
    /// Instances hibernating: the StopInstances (with `hibernate`) was written at the
    /// hibernation, so the stop that follows is no call of its own.
    hibernating: std::collections::BTreeSet<ActorId>,
    /// Groups whose creation was written.
    groups_made: std::collections::BTreeSet<ActorId>,
    /// The volumes launches from an image make, and the instances of groups' places: asked of
    /// every launch's records, found by index.
    launch_volumes: std::collections::BTreeSet<usize>,
    group_places: std::collections::BTreeMap<usize, usize>,
}

/// A CloudTrail record waiting to be handed out.
enum Waiting {
    Ready(Value),
    /// An AttachVolume whose outcome is not known yet: its IDs are drawn, in order; the record
    /// is made once the volume's attach succeeds or fails (D4).
    Attach {
        volume: ActorId,
        at: SimTime,
        request: Value,
        response: Value,
        ids: (String, String),
        error: Option<Option<Ec2Error>>,
    },
}

/// Who made a call: the scenario's user, or auto scaling on its behalf.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Principal {
    User,
    AutoScaling,
}

impl<'s> Writer<'s> {
    fn account(&self) -> &str {
        &self.scenario.account
    }

    /// The identity auto scaling's calls carry: its service-linked role.
    fn auto_scaling(&self) -> Value {
        let acct = self.account();
        json!({
            "type": "AssumedRole",
            "principalId": format!("AROA{:016X}:AutoScaling", crate::engine::stream_key("AWSServiceRoleForAutoScaling")),
            "arn": format!("arn:aws:sts::{acct}:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling"),
            "accountId": acct,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "arn": format!("arn:aws:iam::{acct}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"),
                    "accountId": acct,
                    "userName": "AWSServiceRoleForAutoScaling",
                }
            },
            "invokedBy": "autoscaling.amazonaws.com",
        })
    }

    fn user(&self) -> Value {
        let s = self.scenario;
        // Stable, made-up principal and access key IDs in AWS's shapes.
        let tag = format!("{:016X}", crate::engine::stream_key(&s.user));
        json!({
            "type": "IAMUser",
            "principalId": format!("AIDA{}", &tag[..16]),
            "arn": format!("arn:aws:iam::{}:user/{}", s.account, s.user),
            "accountId": s.account,
            "accessKeyId": format!("AKIA{}", &tag[..16]),
            "userName": s.user,
        })
    }

    /// Who made a call at record `rec`, at `at`.
    fn identity(&self, caller: Caller, at: SimTime, rec: RecordId) -> Value {
        let acct = self.account();
        match caller {
            Caller::User => self.user(),
            Caller::UserVia(service) => {
                let mut u = self.user();
                u["invokedBy"] = json!(match service {
                    Service::Other(kind) => kind.host(),
                    Service::Ebs | Service::Ec2 => "ec2.amazonaws.com",
                });
                u
            }
            Caller::Instance(i) => {
                let id = self.names.at(i, rec);
                json!({
                    "type": "AssumedRole",
                    "principalId": format!("{acct}:aws:ec2-infrastructure:{id}"),
                    "arn": format!("arn:aws:sts::{acct}:assumed-role/aws:ec2-infrastructure/{id}"),
                    "accountId": acct,
                    "accessKeyId": "",
                    "sessionContext": {
                        "attributes": {"mfaAuthenticated": "false", "creationDate": event_time(self.scenario, at)},
                        "sessionIssuer": {
                            "type": "Role",
                            "principalId": format!("{acct}:aws:ec2-infrastructure"),
                            "arn": format!("arn:aws:iam::{acct}:role/aws:ec2-infrastructure"),
                            "accountId": acct,
                            "userName": "aws:ec2-infrastructure",
                        }
                    }
                })
            }
        }
    }

    fn key_resource(&self, key: KeyIdx) -> Value {
        json!([{"accountId": self.account(), "type": "AWS::KMS::Key", "ARN": self.scenario.key(key).spec.arn}])
    }

    /// The `keyId` parameter as the caller gave it.
    fn key_param(&self, key: &KeyRef) -> Value {
        let s = self.scenario;
        match key {
            KeyRef::Id(k) => json!(s.key(*k).spec.key_id),
            KeyRef::Arn(k) => json!(s.key(*k).spec.arn),
            KeyRef::Alias(a) => json!(a.to_string()),
        }
    }

    fn material_id(&self, key: KeyIdx, m: MaterialId) -> String {
        let s = self.scenario;
        key_material_id(&s.key(key).spec.key_id, &s.materials[m.0 as usize])
    }

    fn base(&self, t: SimTime, source: &str, name: &str, identity: Value) -> Map<String, Value> {
        let mut r = Map::new();
        r.insert("eventVersion".into(), json!(EVENT_VERSION));
        r.insert("userIdentity".into(), identity);
        r.insert("eventTime".into(), json!(event_time(self.scenario, t)));
        r.insert("eventSource".into(), json!(source));
        r.insert("eventName".into(), json!(name));
        r.insert("awsRegion".into(), json!(self.scenario.region));
        r
    }

    fn finish_call(&mut self, r: Map<String, Value>, read_only: bool, resources: Option<Value>) -> Value {
        let ids = self.draw_ids();
        self.finish_with(r, ids, read_only, resources)
    }

    /// A call's request and event IDs, drawn in the order the calls were made.
    fn draw_ids(&mut self) -> (String, String) {
        (self.ids.uuid(), self.ids.uuid())
    }

    fn finish_with(
        &self,
        mut r: Map<String, Value>,
        (request_id, event_id): (String, String),
        read_only: bool,
        resources: Option<Value>,
    ) -> Value {
        r.insert("requestID".into(), json!(request_id));
        r.insert("eventID".into(), json!(event_id));
        r.insert("readOnly".into(), json!(read_only));
        if let Some(res) = resources {
            r.insert("resources".into(), res);
        }
        r.insert("eventType".into(), json!("AwsApiCall"));
        r.insert("managementEvent".into(), json!(true));
        r.insert("recipientAccountId".into(), json!(self.account()));
        r.insert("eventCategory".into(), json!("Management"));
        Value::Object(r)
    }

    fn kms_call(
        &mut self,
        rec: &Record<Obs>,
        caller: Caller,
        op: &KmsOp,
        key: Option<KeyIdx>,
        result: &Result<KmsOutput, crate::actors::kms::KmsError>,
    ) -> Value {
        let s = self.scenario;
        let identity = self.identity(caller, rec.at, rec.id);
        let mut r = self.base(rec.at, "kms.amazonaws.com", op.operation().as_str(), identity);
        let (ip, agent) = match caller {
            Caller::User => (USER_IP, Some("AWS Internal")),
            Caller::UserVia(Service::Ebs | Service::Ec2) => ("ec2.amazonaws.com", Some("ec2.amazonaws.com")),
            Caller::UserVia(Service::Other(kind)) => (kind.host(), Some(kind.host())),
            Caller::Instance(_) => (USER_IP, None),
        };
        r.insert("sourceIPAddress".into(), json!(ip));
        if let Some(a) = agent {
            r.insert("userAgent".into(), json!(a));
        }
        if let Err(e) = result {
            r.insert("errorCode".into(), json!(e.exception.as_str()));
            r.insert("errorMessage".into(), json!(e.message(|k| s.key_arn(k))));
        }
        let arn = |k: Option<KeyIdx>| k.map_or(Value::Null, |k| json!(s.key(k).spec.arn));
        let ebs_context = |c: &Option<ContextId>| c.map(|v| self.context(v));
        let (request, response, read_only): (Value, Value, bool) = match (op, result) {
            (KmsOp::ImportKeyMaterial { key: kr, material, expiry, import_type, .. }, res) => {
                let mut req = json!({"keyId": self.key_param(kr)});
                match expiry {
                    Expiry::Never => req["expirationModel"] = json!("KEY_MATERIAL_DOES_NOT_EXPIRE"),
                    Expiry::At(t) => {
                        req["validTo"] = json!(console_date(self.scenario, *t));
                        req["expirationModel"] = json!("KEY_MATERIAL_EXPIRES");
                    }
                    Expiry::WithoutValidTo => req["expirationModel"] = json!("KEY_MATERIAL_EXPIRES"),
                }
                // The API's default: new material when nothing was ever imported into the key.
                let first = key.is_some_and(|k| !self.imported[k.0 as usize]);
                let default = if first { ImportType::New } else { ImportType::Existing };
                let effective = match res {
                    Ok(KmsOutput::Imported { import_type, .. }) => *import_type,
                    _ => import_type.unwrap_or(default),
                };
                req["importType"] = json!(effective.as_str());
                // A reimport may name the material it brings back.
                if let (Some(ImportType::Existing), Some(k)) = (import_type, key) {
                    req["keyMaterialId"] = json!(self.material_id(k, *material));
                }
                if let (Ok(_), Some(k)) = (res, key) {
                    self.imported[k.0 as usize] = true;
                }
                let resp = match (res, key) {
                    (Ok(_), Some(k)) => json!({"keyId": arn(Some(k)), "keyMaterialId": self.material_id(k, *material)}),
                    _ => Value::Null,
                };
                (req, resp, false)
            }
            (KmsOp::DeleteImportedKeyMaterial { key: kr, material: asked }, res) => match (res, key) {
                (Ok(KmsOutput::MaterialDeleted { material: Some(m) }), Some(k)) => {
                    let id = self.material_id(k, *m);
                    (
                        json!({"keyId": self.key_param(kr), "keyMaterialId": id}),
                        json!({"keyId": arn(Some(k)), "keyMaterialId": id}),
                        false,
                    )
                }
                (Ok(_), Some(k)) => (json!({"keyId": self.key_param(kr)}), json!({"keyId": arn(Some(k))}), false),
                (_, Some(k)) if asked.is_some() => {
                    let id = asked.map(|m| self.material_id(k, m));
                    (json!({"keyId": self.key_param(kr), "keyMaterialId": id}), Value::Null, false)
                }
                _ => (json!({"keyId": self.key_param(kr)}), Value::Null, false),
            },
            (KmsOp::EnableKeyRotation { key: kr }, _) => (json!({"keyId": self.key_param(kr)}), Value::Null, false),
            (KmsOp::ListKeyRotations { key: kr, all }, _) => {
                let mut req = json!({"keyId": self.key_param(kr)});
                if *all {
                    req["includeKeyMaterial"] = json!("ALL_KEY_MATERIAL");
                }
                (req, Value::Null, true)
            }
            (KmsOp::GetParametersForImport { key: kr, .. }, _) => (
                json!({"keyId": self.key_param(kr), "wrappingAlgorithm": "RSAES_OAEP_SHA_256", "wrappingKeySpec": "RSA_2048"}),
                Value::Null,
                true,
            ),
            (KmsOp::ScheduleKeyDeletion { key: kr, pending_window_days }, res) => {
                let req = json!({"pendingWindowInDays": pending_window_days, "keyId": self.key_param(kr)});
                let resp = match res {
                    Ok(KmsOutput::DeletionScheduled { deletion_date }) => json!({
                        "keyId": arn(key),
                        "keyState": "PendingDeletion",
                        "deletionDate": console_date(self.scenario, *deletion_date),
                        "pendingWindowInDays": pending_window_days,
                    }),
                    _ => Value::Null,
                };
                (req, resp, false)
            }
            (KmsOp::CancelKeyDeletion { key: kr } | KmsOp::RotateKeyOnDemand { key: kr }, res) => (
                json!({"keyId": self.key_param(kr)}),
                if res.is_ok() { json!({"keyId": arn(key)}) } else { Value::Null },
                false,
            ),
            // Recorded since December 2022 with the key's ARN, though the API returns nothing
            // (ct-enablekey, ct-disablekey).
            (KmsOp::EnableKey { key: kr } | KmsOp::DisableKey { key: kr }, _) => {
                (json!({"keyId": self.key_param(kr)}), json!({"keyId": arn(key)}), false)
            }
            (KmsOp::DescribeKey { key: kr }, _) => (json!({"keyId": self.key_param(kr)}), Value::Null, true),
            (KmsOp::Encrypt { key: kr, context, .. }, _) => {
                let mut req = json!({"keyId": self.key_param(kr), "encryptionAlgorithm": "SYMMETRIC_DEFAULT"});
                if let Some(c) = ebs_context(context) {
                    req["encryptionContext"] = c;
                }
                (req, Value::Null, true)
            }
            (
                KmsOp::GenerateDataKey { key: kr, context, .. }
                | KmsOp::GenerateDataKeyWithoutPlaintext { key: kr, context, .. },
                _,
            ) => {
                let mut req = json!({"keyId": self.key_param(kr)});
                if let Some(c) = ebs_context(context) {
                    req["encryptionContext"] = c;
                    req["numberOfBytes"] = json!(64);
                } else {
                    req["keySpec"] = json!("AES_256");
                }
                (req, Value::Null, true)
            }
            (KmsOp::Decrypt { ciphertext, key: kr, context }, _) => {
                let mut req = json!({"encryptionAlgorithm": "SYMMETRIC_DEFAULT"});
                let ctx = match ciphertext {
                    CiphertextRef::Blob(c) => c.context,
                    CiphertextRef::Named(_) => *context,
                };
                if let Some(c) = ebs_context(&ctx) {
                    req["encryptionContext"] = c;
                }
                if let Some(kr) = kr {
                    req["keyId"] = self.key_param(kr);
                }
                (req, Value::Null, true)
            }
            (KmsOp::ReEncrypt { destination, contexts, .. }, _) => {
                let (source_context, destination_context) =
                    contexts.as_ref().map_or((None, None), |c| (c.source, c.destination));
                let mut req = json!({"destinationKeyId": self.key_param(destination), "sourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT", "destinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT"});
                if let Some(c) = ebs_context(&source_context) {
                    req["sourceEncryptionContext"] = c;
                }
                if let Some(c) = ebs_context(&destination_context) {
                    req["destinationEncryptionContext"] = c;
                }
                (req, Value::Null, true)
            }
            (KmsOp::CreateGrant { key: kr, grantee, context, .. }, res) => {
                let grantee = match grantee {
                    Grantee::Instance(i) => {
                        format!("{}:aws:ec2-infrastructure:{}", s.account, self.names.at(*i, rec.id))
                    }
                    Grantee::Principal(p) => p.to_string(),
                };
                let mut req =
                    json!({"keyId": self.key_param(kr), "granteePrincipal": grantee, "operations": ["Decrypt"]});
                if let Some(c) = ebs_context(context) {
                    req["constraints"] = json!({"encryptionContextSubset": c});
                }
                let resp = match res {
                    Ok(KmsOutput::Grant(g)) => json!({"grantId": grant_id(s.seed, g.0), "keyId": arn(key)}),
                    _ => Value::Null,
                };
                (req, resp, false)
            }
            (KmsOp::RetireGrant { grant } | KmsOp::RevokeGrant { grant, .. }, res) => {
                let mut req = match op {
                    KmsOp::RevokeGrant { key: kr, .. } => json!({"keyId": self.key_param(kr)}),
                    _ => json!({}),
                };
                let gid = match (grant, res) {
                    (_, Ok(KmsOutput::Grant(g))) | (GrantRef::Id(g), _) => Some(grant_id(s.seed, g.0)),
                    _ => None,
                };
                if let Some(g) = gid {
                    req["grantId"] = json!(g);
                }
                (req, Value::Null, false)
            }
        };
        r.insert("requestParameters".into(), request);
        r.insert("responseElements".into(), if result.is_ok() { response } else { Value::Null });
        // AWS's current examples name the material that served a cryptographic call.
        let served = match result {
            Ok(KmsOutput::Ciphertext(c)) => c.material.map(|m| (c.key, m)),
            Ok(KmsOutput::Decrypted { key, material }) => material.map(|m| (*key, m)),
            _ => None,
        };
        if let Some((k, m)) = served {
            r.insert("additionalEventData".into(), json!({"keyMaterialId": self.material_id(k, m)}));
        }
        let resources = key.map(|k| self.key_resource(k));
        self.finish_call(r, read_only, resources)
    }

    fn service_event(&mut self, rec: &Record<Obs>, name: &str, key: KeyIdx, details: Option<Value>) -> Value {
        let identity = json!({"accountId": self.account(), "invokedBy": "AWS Internal"});
        let mut r = self.base(rec.at, "kms.amazonaws.com", name, identity);
        r.insert("sourceIPAddress".into(), json!("AWS Internal"));
        r.insert("userAgent".into(), json!("AWS Internal"));
        r.insert("requestParameters".into(), Value::Null);
        r.insert("responseElements".into(), Value::Null);
        r.insert("eventID".into(), json!(self.ids.uuid()));
        r.insert("readOnly".into(), json!(false));
        r.insert("resources".into(), self.key_resource(key));
        r.insert("eventType".into(), json!("AwsServiceEvent"));
        r.insert("recipientAccountId".into(), json!(self.account()));
        match details {
            // As in the DeleteExpiredKeyMaterial example: details, and no managementEvent.
            Some(d) => {
                r.insert("serviceEventDetails".into(), d);
            }
            None => {
                r.insert("managementEvent".into(), json!(true));
            }
        }
        r.insert("eventCategory".into(), json!("Management"));
        Value::Object(r)
    }

    fn ec2_call(
        &mut self,
        by: Principal,
        t: SimTime,
        name: &str,
        request: Value,
        response: Value,
        error: Option<(&str, &str)>,
    ) -> Value {
        let ids = self.draw_ids();
        self.ec2_call_with(by, t, name, request, response, error, ids)
    }

    #[allow(clippy::too_many_arguments)] // a call's parts, as CloudTrail lays them out
    fn ec2_call_with(
        &self,
        by: Principal,
        t: SimTime,
        name: &str,
        request: Value,
        response: Value,
        error: Option<(&str, &str)>,
        ids: (String, String),
    ) -> Value {
        let (identity, address) = match by {
            Principal::User => (self.user(), USER_IP),
            Principal::AutoScaling => (self.auto_scaling(), "autoscaling.amazonaws.com"),
        };
        let mut r = self.base(t, "ec2.amazonaws.com", name, identity);
        r.insert("sourceIPAddress".into(), json!(address));
        r.insert("userAgent".into(), json!(if by == Principal::User { "AWS Internal" } else { address }));
        if let Some((code, message)) = error {
            r.insert("errorCode".into(), json!(code));
            r.insert("errorMessage".into(), json!(message));
        }
        r.insert("requestParameters".into(), request);
        r.insert("responseElements".into(), if error.is_some() { Value::Null } else { response });
        self.finish_with(r, ids, false, None)
    }

    /// Whether a detach from `instance` follows from its termination: its cause is the
    /// termination itself or, when the instance held keys, the last key it dropped for it.
    fn caused_by_termination(&self, rec: &Record<Obs>, instance: ActorId) -> bool {
        let Cause::Record(c) = rec.cause else { return false };
        self.terminations.get(&instance).is_some_and(|ids| ids.contains(&c))
    }

    fn instances_set(id: &str) -> Value {
        json!({"instancesSet": {"items": [{"instanceId": id}]}})
    }

    /// The EC2 API call behind a volume or instance record, if one was made: by the user (the
    /// timeline, or a fleet's own cycle, which stands for the user's automation) or by auto
    /// scaling. What EC2 or AWS do by themselves (a detach at termination, a failed start going
    /// back to stopped, host maintenance) is no call.
    fn ec2_record(&mut self, rec: &Record<Obs>) -> Option<Waiting> {
        let s = self.scenario;
        let actor = self.names.at(rec.actor, rec.id).into_owned();
        match &rec.obs {
            // A launch from an image creates its volumes: RunInstances is the call.
            Obs::Volume(VolumeObs::CreateRequested) if self.launched_volume(rec.actor) => None,
            Obs::Volume(VolumeObs::CreateRequested) => {
                let Role::Volume(v) = role(s, rec.actor) else { return None };
                let v = &s.volumes[v];
                let arn = &s.key(v.key).spec.arn;
                let az = format!("{}a", s.region);
                let mut req = json!({"size": v.size_gib, "availabilityZone": az, "volumeType": "gp3", "encrypted": true, "kmsKeyId": arn});
                let mut resp = json!({"volumeId": actor, "size": v.size_gib, "availabilityZone": az, "status": "creating", "encrypted": true, "kmsKeyId": arn, "createTime": event_time(self.scenario, rec.at)});
                if let Some(x) = v.snapshot() {
                    req["snapshotId"] = json!(&*s.snapshots[x].name);
                    resp["snapshotId"] = json!(&*s.snapshots[x].name);
                }
                Some(Waiting::Ready(self.ec2_call(Principal::User, rec.at, "CreateVolume", req, resp, None)))
            }
            Obs::Volume(VolumeObs::Refused { action, error }) => {
                let req = json!({"volumeId": actor});
                let message = error.message(|v| s.volume_name(v));
                Some(Waiting::Ready(self.ec2_call(
                    Principal::User,
                    rec.at,
                    action,
                    req,
                    Value::Null,
                    Some((error.code, &message)),
                )))
            }
            Obs::Volume(VolumeObs::AttachRequested { instance }) => {
                let inst = self.names.at(*instance, rec.id).into_owned();
                let request = json!({"volumeId": actor, "instanceId": inst, "device": "/dev/sdf"});
                let response = json!({"volumeId": actor, "instanceId": inst, "device": "/dev/sdf", "status": "attaching", "attachTime": event_time(self.scenario, rec.at)});
                let ids = self.draw_ids();
                Some(Waiting::Attach { volume: rec.actor, at: rec.at, request, response, ids, error: None })
            }
            // A detach caused by the instance's termination is EC2's doing, not a call.
            Obs::Volume(VolumeObs::Detached { instance }) if !self.caused_by_termination(rec, *instance) => {
                let inst = self.names.at(*instance, rec.id).into_owned();
                let req = json!({"volumeId": actor});
                let resp = json!({"volumeId": actor, "instanceId": inst, "device": "/dev/sdf", "status": "detaching"});
                Some(Waiting::Ready(self.ec2_call(Principal::User, rec.at, "DetachVolume", req, resp, None)))
            }
            Obs::Instance(InstanceObs::Hibernated) => {
                self.hibernating.insert(rec.actor);
                let mut set = Self::instances_set(&actor);
                set["hibernate"] = json!(true);
                let resp = Self::instances_set(&actor);
                Some(Waiting::Ready(self.ec2_call(Principal::User, rec.at, "StopInstances", set, resp, None)))
            }
            Obs::Instance(InstanceObs::StateChanged { to: InstanceState::Stopped, reason: None, .. })
                if self.hibernating.remove(&rec.actor) =>
            {
                None
            }
            Obs::Instance(InstanceObs::StateChanged { from: None, to: InstanceState::Pending, .. })
                if self.image_launch(rec.actor).is_some() =>
            {
                let (image, volumes) = self.image_launch(rec.actor)?;
                let mappings: Vec<Value> = volumes
                    .iter()
                    .enumerate()
                    .map(|(j, (v, x))| json!({"deviceName": device(j), "ebs": {"snapshotId": x, "volumeId": v, "encrypted": true}}))
                    .collect();
                let mut req = json!({"imageId": image, "instancesSet": {"items": [{"instanceId": actor}]}, "blockDeviceMapping": {"items": mappings.iter().map(|m| json!({"deviceName": m["deviceName"], "ebs": {"snapshotId": m["ebs"]["snapshotId"], "encrypted": true}})).collect::<Vec<_>>()}});
                let resp = json!({"instancesSet": {"items": [{"instanceId": actor, "imageId": image, "blockDeviceMapping": {"items": mappings}}]}});
                // A group's launches are auto scaling's (A9), tagged with the group's name as
                // auto scaling tags them.
                let group = match role(s, rec.actor) {
                    Role::Instance(i) => self.group_places.get(&i).map(|&g| &*s.groups[g].name),
                    _ => None,
                };
                if let Some(group) = group {
                    req["tagSpecificationSet"] = json!({"items": [{"resourceType": "instance", "tags": [{"key": "aws:autoscaling:groupName", "value": group}]}]});
                }
                let by = if group.is_some() { Principal::AutoScaling } else { Principal::User };
                Some(Waiting::Ready(self.ec2_call(by, rec.at, "RunInstances", req, resp, None)))
            }
            Obs::Image(o) => self.image_call(rec, o, &actor),
            Obs::Service(o) => self.service_call(rec, o, &actor),
            Obs::Group(GroupObs::DesiredSet { desired }) => {
                // The first is the group's creation, with its capacity.
                let created = self.groups_made.insert(rec.actor);
                let (name, req) = if created {
                    let Role::Group(g) = role(s, rec.actor) else { return None };
                    let image = &*s.images[s.groups[g].image].name;
                    let max = s.groups[g].places.len();
                    (
                        "CreateAutoScalingGroup",
                        json!({"autoScalingGroupName": actor, "launchTemplate": {"imageId": image}, "minSize": 0, "maxSize": max, "desiredCapacity": desired}),
                    )
                } else {
                    ("SetDesiredCapacity", json!({"autoScalingGroupName": actor, "desiredCapacity": desired}))
                };
                let mut r = self.base(rec.at, "autoscaling.amazonaws.com", name, self.user());
                r.insert("sourceIPAddress".into(), json!(USER_IP));
                r.insert("userAgent".into(), json!("AWS Internal"));
                r.insert("requestParameters".into(), req);
                r.insert("responseElements".into(), Value::Null);
                let ids = self.draw_ids();
                Some(Waiting::Ready(self.finish_with(r, ids, false, None)))
            }
            Obs::Instance(InstanceObs::StateChanged { from, to, reason: None }) => {
                let by_user = Principal::User;
                let (name, by) = match (from, to) {
                    // Auto scaling launches a new instance in place of one it terminated.
                    (None, InstanceState::Pending) => ("RunInstances", Principal::AutoScaling),
                    (None, _) => ("RunInstances", by_user),
                    (_, InstanceState::Stopped) => ("StopInstances", by_user),
                    // From running: host maintenance moving it, not a call.
                    (Some(InstanceState::Stopped), InstanceState::Pending) => ("StartInstances", by_user),
                    // Not asked for by the timeline (a fleet's replacement, a health check), or
                    // asked of a group (a scale-in, TerminateInstanceInAutoScalingGroup).
                    (_, InstanceState::Terminated) if !self.by_user(rec.cause) => {
                        ("TerminateInstances", Principal::AutoScaling)
                    }
                    (_, InstanceState::Terminated) => ("TerminateInstances", by_user),
                    _ => return None,
                };
                let set = Self::instances_set(&actor);
                Some(Waiting::Ready(self.ec2_call(by, rec.at, name, set.clone(), set, None)))
            }
            Obs::Instance(InstanceObs::Rebooted) => {
                let set = Self::instances_set(&actor);
                Some(Waiting::Ready(self.ec2_call(
                    Principal::User,
                    rec.at,
                    "RebootInstances",
                    set,
                    json!({"_return": true}),
                    None,
                )))
            }
            Obs::Snapshot(o) => self.snapshot_call(rec, o, &actor),
            Obs::Instance(InstanceObs::Refused { action, error }) if *action != InstanceAction::HostMaintenance => {
                let set = Self::instances_set(&actor);
                let message = error.message(|v| s.volume_name(v));
                Some(Waiting::Ready(self.ec2_call(
                    Principal::User,
                    rec.at,
                    action.as_str(),
                    set,
                    Value::Null,
                    Some((error.code, &message)),
                )))
            }
            _ => None,
        }
    }
}

impl Writer<'_> {
    /// An encryption context as its service writes it: EBS's `aws:ebs:id`, or the pairs of the
    /// service whose resource it belongs to.
    fn context(&self, id: ContextId) -> Value {
        let s = self.scenario;
        let Some(r) = s.context_service(id) else { return json!({"aws:ebs:id": s.volume_name(id)}) };
        let (kind, name) = (s.services[r].kind, &*s.services[r].name);
        let (acct, region) = (self.account(), &s.region);
        match kind {
            Kind::Redshift => json!({"aws:redshift:arn": format!("arn:aws:redshift:{region}:{acct}:cluster:{name}")}),
            Kind::DynamoDb => json!({"aws:dynamodb:tableName": name, "aws:dynamodb:subscriberId": acct}),
            Kind::S3 => json!({"aws:s3:arn": format!("arn:aws:s3:::{name}")}),
            Kind::Lambda => {
                json!({"aws:lambda:FunctionArn": format!("arn:aws:lambda:{region}:{acct}:function:{name}")})
            }
            Kind::Secret => json!({"SecretARN": format!("arn:aws:secretsmanager:{region}:{acct}:secret:{name}")}),
            Kind::Rds | Kind::Aurora | Kind::Efs => json!({kind.context_key(): name}),
        }
    }

    /// A service resource's own call, for the management events CloudTrail logs by default:
    /// its creation (for an S3 bucket, PutBucketEncryption), reboots, stops, starts and
    /// restores, and Secrets Manager's GetSecretValue. Data events
    /// (queries, GetItem, GetObject, file reads, Invoke) and the services' own state changes are
    /// not in a trail's management events.
    fn service_call(&mut self, rec: &Record<Obs>, o: &ServiceObs, name: &str) -> Option<Waiting> {
        let s = self.scenario;
        let kind = o.kind();
        let Role::Service(x) = role(s, rec.actor) else { return None };
        let arn = s.key_arn(s.services[x].key);
        let id_param = kind.id_param();
        let words = |f: &crate::actors::service::Failure| f.message(kind, &|k| s.key_arn(k));
        let (event, mut request, error) = match o {
            ServiceObs::Created { .. } | ServiceObs::CreateFailed { .. } if kind != Kind::S3 => {
                let key_param = match kind {
                    Kind::DynamoDb => "sSESpecification",
                    Kind::Lambda => "kMSKeyArn",
                    _ => "kmsKeyId",
                };
                let key = if kind == Kind::DynamoDb {
                    json!({"enabled": true, "sSEType": "KMS", "kMSMasterKeyId": arn})
                } else {
                    json!(arn)
                };
                let error = match o {
                    ServiceObs::CreateFailed { error, .. } => {
                        Some((kind.create_error_code(error.exception), error.message(|k| s.key_arn(k)).into_owned()))
                    }
                    _ => None,
                };
                (kind.create_api(), json!({id_param: name, key_param: key}), error)
            }
            // A bucket's SSE-KMS configuration, before its first object: whether it has a bucket key.
            ServiceObs::Created { .. } if kind == Kind::S3 => {
                let bucket_key = matches!(s.services[x].policy.hold, crate::actors::service::Hold::For(_));
                let rule = json!({
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": arn},
                    "BucketKeyEnabled": bucket_key,
                });
                (
                    "PutBucketEncryption",
                    json!({"bucketName": name, "ServerSideEncryptionConfiguration": {"Rule": rule}}),
                    None,
                )
            }
            ServiceObs::Lifecycle { what, failure, .. } => {
                let error = failure.as_ref().map(|f| (f.code(kind), words(f)));
                (kind.api(*what), json!({id_param: name}), error)
            }
            ServiceObs::Served { .. } | ServiceObs::RequestFailed { .. } if kind == Kind::Secret => {
                let error = match o {
                    ServiceObs::RequestFailed { failure, .. } => Some((failure.code(kind), words(failure))),
                    _ => None,
                };
                ("GetSecretValue", json!({"secretId": name}), error)
            }
            _ => return None,
        };
        let mut r = self.base(rec.at, kind.host(), event, self.user());
        r.insert("sourceIPAddress".into(), json!(USER_IP));
        r.insert("userAgent".into(), json!("AWS Internal"));
        if let Some((code, message)) = &error {
            r.insert("errorCode".into(), json!(code));
            r.insert("errorMessage".into(), json!(message));
        }
        let read_only = event == "GetSecretValue";
        r.insert("requestParameters".into(), std::mem::take(&mut request));
        r.insert("responseElements".into(), Value::Null);
        let ids = self.draw_ids();
        Some(Waiting::Ready(self.finish_with(r, ids, read_only, None)))
    }

    /// Whether a record the timeline caused is the user's own call: not when it asked a group.
    fn by_user(&self, cause: Cause) -> bool {
        match cause {
            Cause::Input(i) => !self.names.scenario.actions.get(i as usize).is_some_and(|a| {
                matches!(
                    a.what,
                    crate::scenario::ActionKind::Group { .. } | crate::scenario::ActionKind::GroupReplace { .. }
                )
            }),
            _ => false,
        }
    }
}

/// The device name of a launch's `j`-th block-device mapping: the root first.
fn device(j: usize) -> String {
    if j == 0 {
        "/dev/xvda".to_string()
    } else {
        format!("/dev/sd{}", char::from(b'e' + u8::try_from(j.min(20)).unwrap_or(20)))
    }
}

impl Writer<'_> {
    /// Whether volume actor `v` is one a launch from an image makes.
    fn launched_volume(&self, v: ActorId) -> bool {
        !self.launch_volumes.is_empty()
            && matches!(role(self.scenario, v), Role::Volume(i) if self.launch_volumes.contains(&i))
    }

    /// For an instance declared with an image: the image's id and each (volume, snapshot) its
    /// launch makes.
    fn image_launch(&self, instance: ActorId) -> Option<(&str, Vec<(&str, &str)>)> {
        let s = self.scenario;
        let Role::Instance(i) = role(s, instance) else { return None };
        let launch = s.launches.get(&i)?;
        let volumes = launch
            .volumes
            .iter()
            .zip(&s.images[launch.image].snapshots)
            .map(|(&v, &x)| (&*s.volumes[v].name, &*s.snapshots[x].name))
            .collect();
        Some((&s.images[launch.image].name, volumes))
    }

    /// The EC2 call behind an image's record: RegisterImage, DeregisterImage, or one refused. A
    /// launch from it is the instance's RunInstances.
    fn image_call(&mut self, rec: &Record<Obs>, obs: &ImageObs, actor: &str) -> Option<Waiting> {
        let s = self.scenario;
        let Role::Image(x) = role(s, rec.actor) else { return None };
        let mappings: Vec<Value> = s.images[x]
            .snapshots
            .iter()
            .enumerate()
            .map(|(j, &y)| json!({"deviceName": device(j), "ebs": {"snapshotId": &*s.snapshots[y].name}}))
            .collect();
        let register = json!({"name": actor, "rootDeviceName": device(0), "blockDeviceMapping": {"items": mappings}});
        let (name, req, resp, error) = match obs {
            ImageObs::Registered => ("RegisterImage", register, json!({"imageId": actor}), None),
            ImageObs::Deregistered => ("DeregisterImage", json!({"imageId": actor}), json!({"_return": true}), None),
            ImageObs::Refused { action, error } => {
                let req = if *action == "RegisterImage" { register } else { json!({"imageId": actor}) };
                (*action, req, Value::Null, Some((error.code, error.message(|v| s.volume_name(v)).into_owned())))
            }
            ImageObs::Launched { .. } | ImageObs::LaunchFailed { .. } => return None,
        };
        let error = error.as_ref().map(|(code, message)| (*code, message.as_str()));
        Some(Waiting::Ready(self.ec2_call(Principal::User, rec.at, name, req, resp, error)))
    }

    /// The EC2 call behind a snapshot's record: CreateSnapshot, CopySnapshot (written with its
    /// outcome, after the KMS calls it made: accepted, as AWS accepts a copy that later fails),
    /// DeleteSnapshot, or one EC2 refused. A restore or copy reading it is the reader's call.
    fn snapshot_call(&mut self, rec: &Record<Obs>, obs: &SnapshotObs, actor: &str) -> Option<Waiting> {
        let s = self.scenario;
        let Role::Snapshot(x) = role(s, rec.actor) else { return None };
        let decl = &s.snapshots[x];
        let arn = &s.key(decl.key).spec.arn;
        let started = event_time(s, rec.at);
        let (name, req, resp, error) = match (obs, decl.source) {
            (SnapshotObs::Created { .. }, SnapshotSource::Volume(v)) => {
                let vol = &s.volumes[v];
                (
                    "CreateSnapshot",
                    json!({"volumeId": &*vol.name, "description": ""}),
                    json!({"snapshotId": actor, "volumeId": &*vol.name, "status": "pending", "startTime": started, "volumeSize": vol.size_gib, "encrypted": true, "kmsKeyId": arn}),
                    None,
                )
            }
            (SnapshotObs::Created { .. } | SnapshotObs::CreateFailed { .. }, SnapshotSource::Copy(from)) => (
                "CopySnapshot",
                json!({"sourceSnapshotId": &*s.snapshots[from].name, "sourceRegion": s.region, "encrypted": true, "kmsKeyId": arn}),
                json!({"snapshotId": actor}),
                None,
            ),
            (SnapshotObs::Deleted, _) => {
                ("DeleteSnapshot", json!({"snapshotId": actor}), json!({"_return": true}), None)
            }
            (SnapshotObs::Refused { action, error }, source) => {
                let req = match (*action, source) {
                    ("CreateSnapshot", SnapshotSource::Volume(v)) => json!({"volumeId": &*s.volumes[v].name}),
                    ("CopySnapshot", SnapshotSource::Copy(from)) => {
                        json!({"sourceSnapshotId": &*s.snapshots[from].name, "sourceRegion": s.region})
                    }
                    _ => json!({"snapshotId": actor}),
                };
                (*action, req, Value::Null, Some((error.code, error.message(|v| s.volume_name(v)).into_owned())))
            }
            _ => return None,
        };
        let error = error.as_ref().map(|(code, message)| (*code, message.as_str()));
        Some(Waiting::Ready(self.ec2_call(Principal::User, rec.at, name, req, resp, error)))
    }
}

/// A grant's ID, 64 hex digits, stable for the seed.
fn grant_id(seed: u64, n: u32) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(crate::engine::stream_key(&format!("grant/{n}")));
    let b: [u8; 32] = rng.random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl<'s> Writer<'s> {
    #[must_use]
    pub fn new(scenario: &'s Scenario) -> Self {
        Writer {
            scenario,
            names: Names::streaming(scenario),
            ids: Ids::new(scenario.seed),
            imported: vec![false; scenario.keys.len()],
            terminations: BTreeMap::new(),
            waiting: std::collections::VecDeque::new(),
            hibernating: std::collections::BTreeSet::new(),
            groups_made: std::collections::BTreeSet::new(),
            launch_volumes: scenario.launches.values().flat_map(|l| l.volumes.iter().copied()).collect(),
            group_places: scenario
                .groups
                .iter()
                .enumerate()
                .flat_map(|(g, decl)| decl.places.iter().map(move |&i| (i, g)))
                .collect(),
        }
    }

    /// Takes the next record of the run, and hands `out` every CloudTrail record now whole.
    pub fn observe(&mut self, rec: &Record<Obs>, out: &mut impl FnMut(Value)) {
        self.names.observe(rec);
        match &rec.obs {
            Obs::Instance(InstanceObs::StateChanged { to: InstanceState::Terminated, .. }) => {
                self.terminations.insert(rec.actor, vec![rec.id]);
            }
            Obs::Instance(InstanceObs::DataKeyEvicted { why: Eviction::Terminate, .. }) => {
                self.terminations.entry(rec.actor).or_default().push(rec.id);
            }
            // An attach asked for before the last one's outcome: the last one went through.
            Obs::Volume(VolumeObs::Attached { .. } | VolumeObs::AttachRequested { .. }) => {
                self.attach_outcome(rec.actor, None);
            }
            Obs::Volume(VolumeObs::AttachFailed { error, .. }) => self.attach_outcome(rec.actor, Some(error.clone())),
            _ => {}
        }
        let made = match &rec.obs {
            Obs::Kms(KmsObs::Called { caller, op, key, result }) => {
                Some(Waiting::Ready(self.kms_call(rec, *caller, op, *key, result)))
            }
            Obs::Kms(KmsObs::MaterialExpired { key, material }) => {
                let details = json!({"keyId": self.scenario.key(*key).spec.key_id, "keyMaterialId": self.material_id(*key, *material)});
                Some(Waiting::Ready(self.service_event(rec, "DeleteExpiredKeyMaterial", *key, Some(details))))
            }
            Obs::Kms(KmsObs::KeyDeleted { key }) => {
                Some(Waiting::Ready(self.service_event(rec, "DeleteKey", *key, None)))
            }
            Obs::Kms(KmsObs::Rotated { key, from, to }) => {
                let id = |m: &Option<MaterialId>| m.map(|m| self.material_id(*key, m));
                let mut details = json!({"keyId": self.scenario.key(*key).spec.key_id, "rotationType": "ON_DEMAND"});
                if to.is_some() {
                    details["previousKeyMaterialId"] = json!(id(from));
                    details["keyMaterialId"] = json!(id(to));
                }
                Some(Waiting::Ready(self.service_event(rec, "RotateKey", *key, Some(details))))
            }
            _ => self.ec2_record(rec),
        };
        self.waiting.extend(made);
        self.hand_out(out);
    }

    /// The outcome of `volume`'s attach under way, if one is: `Some(error)` when it failed.
    fn attach_outcome(&mut self, volume: ActorId, failed: Option<Ec2Error>) {
        let open = self.waiting.iter_mut().rev().find_map(|w| match w {
            Waiting::Attach { volume: v, error: e @ None, .. } if *v == volume => Some(e),
            _ => None,
        });
        if let Some(e) = open {
            *e = Some(failed);
        }
    }

    /// Hands out the CloudTrail records at the front that are whole.
    fn hand_out(&mut self, out: &mut impl FnMut(Value)) {
        while let Some(front) = self.waiting.front() {
            if matches!(front, Waiting::Attach { error: None, .. }) {
                return;
            }
            let w = self.waiting.pop_front().expect("a front");
            out(self.make(w));
        }
    }

    fn make(&self, w: Waiting) -> Value {
        match w {
            Waiting::Ready(v) => v,
            Waiting::Attach { at, request, response, ids, error, .. } => {
                let refused = error.flatten();
                let s = self.scenario;
                let message = refused.as_ref().map(|e| e.message(|v| s.volume_name(v)));
                let error = refused.as_ref().zip(message.as_deref()).map(|(e, m)| (e.code, m));
                self.ec2_call_with(Principal::User, at, "AttachVolume", request, response, error, ids)
            }
        }
    }

    /// The run has ended: hands out what was waiting (an attach with no outcome went through).
    pub fn finish(mut self, out: &mut impl FnMut(Value)) {
        for w in std::mem::take(&mut self.waiting) {
            out(self.make(w));
        }
    }
}

/// Every CloudTrail record of a run whose records were kept, in event-time order.
#[must_use]
pub fn records(run: &Run<'_>) -> Vec<Value> {
    let mut w = Writer::new(run.scenario);
    let mut out = Vec::new();
    for rec in &run.records {
        w.observe(rec, &mut |v| out.push(v));
    }
    w.finish(&mut |v| out.push(v));
    out
}

/// The log file CloudTrail would deliver, of a run whose records were kept: `{"Records": [...]}`,
/// one record per line.
#[must_use]
pub fn log_file(run: &Run<'_>) -> String {
    let mut out = Vec::new();
    let mut log = LogFile::new(run.scenario, &mut out);
    for rec in &run.records {
        crate::engine::Sink::record(&mut log, rec.clone());
    }
    log.finish().expect("writing to memory");
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// The log file as a sink: each CloudTrail record is written to `out` as soon as it is whole,
/// so a run of any length writes its log in bounded memory. The first write error stops the
/// writing and is kept for [`LogFile::finish`].
pub struct LogFile<'s, W: std::io::Write> {
    writer: Writer<'s>,
    out: W,
    written: u64,
    error: Option<std::io::Error>,
}

impl<'s, W: std::io::Write> LogFile<'s, W> {
    pub fn new(scenario: &'s Scenario, out: W) -> Self {
        LogFile { writer: Writer::new(scenario), out, written: 0, error: None }
    }

    fn write(out: &mut W, written: &mut u64, error: &mut Option<std::io::Error>, v: &Value) {
        if error.is_some() {
            return;
        }
        let head: &[u8] = if *written == 0 { b"{\"Records\": [\n" } else { b",\n" };
        let result =
            out.write_all(head).and_then(|()| serde_json::to_writer(&mut *out, v).map_err(std::io::Error::other));
        *written += 1;
        if let Err(e) = result {
            *error = Some(e);
        }
    }

    /// Writes what was waiting and the end of the file; whether every write succeeded.
    pub fn finish(mut self) -> std::io::Result<()> {
        let (out, written, error) = (&mut self.out, &mut self.written, &mut self.error);
        self.writer.finish(&mut |v| Self::write(out, written, error, &v));
        if let Some(e) = self.error {
            return Err(e);
        }
        let tail: &[u8] = if self.written == 0 { b"{\"Records\": [\n]}\n" } else { b"\n]}\n" };
        self.out.write_all(tail)?;
        self.out.flush()
    }
}

impl<W: std::io::Write> crate::engine::Sink<Obs> for LogFile<'_, W> {
    fn record(&mut self, rec: Record<Obs>) {
        let (out, written, error) = (&mut self.out, &mut self.written, &mut self.error);
        self.writer.observe(&rec, &mut |v| Self::write(out, written, error, &v));
    }
}
