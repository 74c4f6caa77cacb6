//! What a record is about, without a sentence: the key it concerns, its outcome and error code,
//! and who made a call. The analyses match and count records by these; the outputs word them
//! ([`crate::report::describe`]).

#![forbid(unsafe_code)]

use serde::Serialize;

use crate::actors::Obs;
use crate::actors::ebs::{IoFailure, VolumeObs};
use crate::actors::ec2::{InstanceObs, InstanceState, instance_id};
use crate::actors::group::GroupObs;
use crate::actors::image::ImageObs;
use crate::actors::kms::{Caller, KmsObs, Service};
use crate::actors::snapshot::SnapshotObs;
use crate::engine::{Record, RecordId};
use crate::run::Names;
use crate::scenario::Scenario;

/// Whether an event succeeded, failed, or simply happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Failed,
    Info,
}

impl Outcome {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Info => "info",
        }
    }
}

/// Who made the call of record `rec`, as `by alice`, `by EBS for alice`,
/// `by i-app (aws:ec2-infrastructure)`.
#[must_use]
pub fn caller_words(names: &Names<'_>, caller: Caller, rec: RecordId) -> String {
    let user = &names.scenario.user;
    match caller {
        Caller::User => format!("by {user}"),
        Caller::UserVia(Service::Ebs) => format!("by EBS for {user}"),
        Caller::UserVia(Service::Ec2) => format!("by EC2 for {user}"),
        Caller::UserVia(Service::Other(kind)) => format!("by {} for {user}", kind.service_name()),
        Caller::Instance(i) => format!("by {} (aws:ec2-infrastructure)", names.at(i, rec)),
    }
}

/// The state of the instance in the place of instance `place`, naming it when auto scaling
/// launched it there: `running`, `running as web-i0-r3 (auto scaling's 3rd launch here)`.
#[must_use]
pub fn instance_now(place: &str, state: Option<InstanceState>, life: u32) -> String {
    let state = state.map_or("not launched", InstanceState::as_str);
    match life {
        0 => state.to_string(),
        n => {
            let nth = match (n % 10, n % 100) {
                (1, r) if r != 11 => "st",
                (2, r) if r != 12 => "nd",
                (3, r) if r != 13 => "rd",
                _ => "th",
            };
            format!("{state} as {} (auto scaling's {n}{nth} launch here)", instance_id(place, n))
        }
    }
}

/// What a record says without the sentence: the key it is about, its outcome and its error code.
/// [`describe`] adds the sentence; outputs that must keep up with a run of millions of events
/// (the compact trace) use this alone.
#[must_use]
pub fn verdict<'s>(s: &'s Scenario, rec: &Record<Obs>) -> (Option<&'s str>, Outcome, Option<&'static str>) {
    let key_name = |k: crate::actors::kms::KeyIdx| Some(s.key(k).name.as_str());
    let failed = |code: &'static str| (Outcome::Failed, Some(code));
    let (key, (outcome, error)) = match &rec.obs {
        Obs::Kms(KmsObs::Called { key, result, .. }) => (
            key.and_then(key_name),
            match result {
                Ok(_) => (Outcome::Ok, None),
                Err(e) => failed(e.exception.as_str()),
            },
        ),
        Obs::Kms(KmsObs::StateChanged { key, .. }) => (key_name(*key), (Outcome::Info, None)),
        Obs::Kms(KmsObs::MaterialExpired { key, .. } | KmsObs::KeyDeleted { key } | KmsObs::Rotated { key, .. }) => {
            (key_name(*key), (Outcome::Ok, None))
        }
        Obs::Volume(v) => (
            None,
            match v {
                VolumeObs::CreateRequested | VolumeObs::AttachRequested { .. } => (Outcome::Info, None),
                VolumeObs::Created
                | VolumeObs::Attached { .. }
                | VolumeObs::Detached { .. }
                | VolumeObs::Io { result: Ok(()), .. } => (Outcome::Ok, None),
                VolumeObs::CreateFailed { error } => failed(error.exception.as_str()),
                VolumeObs::AttachFailed { error, .. }
                | VolumeObs::Refused { error, .. }
                | VolumeObs::KeyLoadFailed { error, .. } => failed(error.code),
                VolumeObs::Io { result: Err(IoFailure::NotAttached), .. } => failed("NotAttached"),
                VolumeObs::Io { result: Err(IoFailure::NoDataKey), .. } => failed("NoDataKey"),
            },
        ),
        Obs::Instance(i) => (
            None,
            match i {
                InstanceObs::StateChanged { reason: Some((code, _)), .. } => failed(code),
                InstanceObs::StateChanged { reason: None, .. }
                | InstanceObs::HostMaintenance { .. }
                | InstanceObs::DataKeyCached { .. }
                | InstanceObs::DataKeyEvicted { .. } => (Outcome::Info, None),
                InstanceObs::Rebooted | InstanceObs::Hibernated => (Outcome::Ok, None),
                InstanceObs::Refused { error, .. } => failed(error.code),
            },
        ),
        Obs::Snapshot(x) => (
            None,
            match x {
                SnapshotObs::Created { .. } | SnapshotObs::Deleted | SnapshotObs::Used { .. } => (Outcome::Ok, None),
                SnapshotObs::CreateFailed { error } => failed(error.exception.as_str()),
                SnapshotObs::UseFailed { exception, .. } => failed(exception.as_str()),
                SnapshotObs::Refused { error, .. } => failed(error.code),
            },
        ),
        Obs::Group(g) => (
            None,
            match g {
                GroupObs::Capacity { .. } => (Outcome::Info, None),
                GroupObs::DesiredSet { .. } | GroupObs::Launched { .. } => (Outcome::Ok, None),
                GroupObs::LaunchFailed { by_kms: true, .. } => failed(crate::actors::ec2::KEY_FAILED_REASON.0),
                GroupObs::LaunchFailed { by_kms: false, .. } => failed(crate::actors::image::NOT_FOUND),
            },
        ),
        Obs::Image(x) => (
            None,
            match x {
                ImageObs::Registered | ImageObs::Deregistered | ImageObs::Launched { .. } => (Outcome::Ok, None),
                ImageObs::LaunchFailed { .. } => failed(crate::actors::ec2::KEY_FAILED_REASON.0),
                ImageObs::Refused { error, .. } => failed(error.code),
            },
        ),
        Obs::Service(x) => {
            use crate::actors::service::ServiceObs as S;
            let kind = x.kind();
            (
                None,
                match x {
                    S::Created { .. } | S::Served { .. } | S::Lifecycle { failure: None, .. } => (Outcome::Ok, None),
                    S::CreateFailed { error, .. } => failed(kind.create_error_code(error.exception)),
                    S::RequestFailed { failure, .. } | S::Lifecycle { failure: Some(failure), .. } => {
                        failed(failure.code(kind))
                    }
                    S::StateChanged { .. } | S::ReplicaDropped { .. } => (Outcome::Info, None),
                },
            )
        }
    };
    (key, outcome, error)
}
