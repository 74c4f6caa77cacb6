//! The AWS actors: one KMS service, EBS volumes and snapshots, EC2 instances, AMIs, auto
//! scaling groups and the resources of the other services a key protects, as a closed set.
//!
//! Actors hold only domain state and talk through the engine: EBS asks KMS for data keys, EC2's
//! instances keep plaintext data keys in their host's memory. They know nothing of RON, files,
//! charts or the terminal; what they observe goes out as [`Obs`] records for the outputs to read.
//! A refused AWS call is an observation carrying the exception, never a Rust error or a panic.

#![forbid(unsafe_code)]

pub mod dist;
pub mod ebs;
pub mod ec2;
pub mod group;
pub mod image;
pub mod kms;
pub mod service;
pub mod snapshot;

use crate::engine::{Actor, Ctx};

/// Every message any actor can receive.
#[derive(Debug)]
pub enum Msg {
    Kms(kms::KmsMsg),
    Volume(ebs::VolumeMsg),
    Instance(ec2::InstanceMsg),
    Snapshot(snapshot::SnapshotMsg),
    Image(image::ImageMsg),
    Group(group::GroupMsg),
    Service(service::ServiceMsg),
}

/// Every fact any actor can record.
#[derive(Clone, Debug, PartialEq)]
pub enum Obs {
    Kms(kms::KmsObs),
    Volume(ebs::VolumeObs),
    Instance(ec2::InstanceObs),
    Snapshot(snapshot::SnapshotObs),
    Image(image::ImageObs),
    Group(group::GroupObs),
    Service(service::ServiceObs),
}

impl Obs {
    /// The stable name of the event: the AWS API or event name where there is one. Traces,
    /// reports and scenario expectations all use it.
    #[must_use]
    pub fn event_name(&self) -> &'static str {
        use ebs::VolumeObs as V;
        use ec2::InstanceObs as I;
        use kms::KmsObs as K;
        use snapshot::SnapshotObs as S;
        match self {
            Obs::Kms(K::Called { op, .. }) => op.operation().as_str(),
            Obs::Kms(K::StateChanged { .. }) => "KeyStateChanged",
            Obs::Kms(K::MaterialExpired { .. }) => "DeleteExpiredKeyMaterial",
            Obs::Kms(K::KeyDeleted { .. }) => "DeleteKey",
            Obs::Kms(K::Rotated { .. }) => "RotateKey",
            Obs::Volume(V::CreateRequested) => "CreateVolumeRequested",
            Obs::Volume(V::Created | V::CreateFailed { .. }) => "CreateVolume",
            Obs::Volume(V::AttachRequested { .. }) => "AttachVolumeRequested",
            Obs::Volume(V::Attached { .. } | V::AttachFailed { .. }) => "AttachVolume",
            Obs::Volume(V::Detached { .. }) => "DetachVolume",
            Obs::Volume(V::Refused { action, .. })
            | Obs::Snapshot(S::Refused { action, .. })
            | Obs::Image(image::ImageObs::Refused { action, .. }) => action,
            Obs::Volume(V::KeyLoadFailed { .. }) => "ReattachVolume",
            Obs::Volume(V::Io { kind, .. }) => kind.as_str(),
            Obs::Instance(I::StateChanged { .. }) => "InstanceStateChanged",
            Obs::Instance(I::Rebooted) => "RebootInstances",
            Obs::Instance(I::HostMaintenance { .. }) => "HostMaintenance",
            Obs::Instance(I::DataKeyCached { .. }) => "DataKeyCached",
            Obs::Instance(I::DataKeyEvicted { .. }) => "DataKeyEvicted",
            Obs::Instance(I::Refused { action, .. }) => action.as_str(),
            Obs::Snapshot(S::Created { copy: false }) => "CreateSnapshot",
            Obs::Snapshot(S::Created { copy: true } | S::CreateFailed { .. }) => "CopySnapshot",
            Obs::Snapshot(S::Deleted) => "DeleteSnapshot",
            Obs::Snapshot(S::Used { what, .. } | S::UseFailed { what, .. }) => what.action(),
            Obs::Image(image::ImageObs::Registered) => "RegisterImage",
            Obs::Image(image::ImageObs::Deregistered) => "DeregisterImage",
            Obs::Image(image::ImageObs::Launched { .. } | image::ImageObs::LaunchFailed { .. }) => "RunInstances",
            Obs::Instance(I::Hibernated) => "Hibernated",
            Obs::Group(group::GroupObs::Capacity { .. }) => "CapacityChanged",
            Obs::Group(group::GroupObs::DesiredSet { .. }) => "SetDesiredCapacity",
            Obs::Group(group::GroupObs::Launched { .. } | group::GroupObs::LaunchFailed { .. }) => "Launch",
            Obs::Service(o) => o.event_name(),
        }
    }

    /// The instances a record's words name beside its actor (an attach's instance, a launch's, a
    /// grant's grantee, the caller of EC2's Decrypt, a restore's volume): those whose names a
    /// relaunch can change. Every kind of record is listed, so that a new one is looked at.
    pub fn instances_named(&self) -> impl Iterator<Item = crate::engine::ActorId> {
        use ebs::VolumeObs;
        use group::GroupObs;
        use image::ImageObs;
        use kms::{Caller, Grantee, KmsObs, KmsOp};
        use snapshot::SnapshotObs;
        let one = match self {
            Obs::Volume(
                VolumeObs::AttachRequested { instance }
                | VolumeObs::Attached { instance }
                | VolumeObs::AttachFailed { instance, .. }
                | VolumeObs::Detached { instance }
                | VolumeObs::KeyLoadFailed { instance, .. },
            )
            | Obs::Image(ImageObs::Launched { instance } | ImageObs::LaunchFailed { instance })
            | Obs::Group(GroupObs::Launched { instance } | GroupObs::LaunchFailed { instance, .. }) => Some(*instance),
            Obs::Snapshot(SnapshotObs::Used { by, .. } | SnapshotObs::UseFailed { by, .. }) => Some(*by),
            Obs::Volume(
                VolumeObs::CreateRequested
                | VolumeObs::Created
                | VolumeObs::CreateFailed { .. }
                | VolumeObs::Refused { .. }
                | VolumeObs::Io { .. },
            )
            | Obs::Instance(_)
            | Obs::Image(ImageObs::Registered | ImageObs::Deregistered | ImageObs::Refused { .. })
            | Obs::Group(GroupObs::Capacity { .. } | GroupObs::DesiredSet { .. })
            | Obs::Snapshot(
                SnapshotObs::Created { .. }
                | SnapshotObs::CreateFailed { .. }
                | SnapshotObs::Refused { .. }
                | SnapshotObs::Deleted,
            )
            | Obs::Service(_)
            | Obs::Kms(_) => None,
        };
        let (caller, grantee) = match self {
            Obs::Kms(KmsObs::Called { caller, op, .. }) => (
                match caller {
                    Caller::Instance(i) => Some(*i),
                    _ => None,
                },
                match &**op {
                    KmsOp::CreateGrant { grantee: Grantee::Instance(i), .. } => Some(*i),
                    _ => None,
                },
            ),
            _ => (None, None),
        };
        one.into_iter().chain(caller).chain(grantee)
    }

    /// True for the kinds of record made on every attach and detach, which own no memory:
    /// forgetting one is dropping it, without the drop code of the kinds that do. The patterns
    /// name every field and [`plain`] requires each to be `Copy` (which no type that owns memory
    /// is): a field added or changed here fails to compile until it is looked at.
    #[must_use]
    #[inline(always)]
    pub fn owns_nothing(&self) -> bool {
        use ebs::VolumeObs as V;
        use ec2::InstanceObs as I;
        match self {
            Obs::Volume(V::AttachRequested { instance } | V::Attached { instance } | V::Detached { instance }) => {
                plain(instance)
            }
            Obs::Instance(I::DataKeyCached { volume }) => plain(volume),
            Obs::Instance(I::DataKeyEvicted { volume, why }) => plain(&(*volume, *why)),
            _ => false,
        }
    }
}

/// True, for values of types that cannot own memory.
#[inline(always)]
fn plain<T: Copy>(_: &T) -> bool {
    true
}

/// Every name [`Obs::event_name`] can return, for validating expectations: [`EVENT_NAMES`],
/// then the other services' ([`service::event_names`]), each once.
#[must_use]
pub fn event_names() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = EVENT_NAMES.to_vec();
    for n in service::event_names() {
        if !all.contains(&n) {
            all.push(n);
        }
    }
    all
}

/// Every name [`Obs::event_name`] can return for EBS, EC2 and KMS records; the other services'
/// are [`service::event_names`].
pub const EVENT_NAMES: &[&str] = &[
    "KeyStateChanged",
    "DeleteExpiredKeyMaterial",
    "DeleteKey",
    "RotateKey",
    "CreateKey",
    "DescribeKey",
    "EnableKey",
    "DisableKey",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
    "GetParametersForImport",
    "ImportKeyMaterial",
    "DeleteImportedKeyMaterial",
    "Encrypt",
    "Decrypt",
    "ReEncrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "CreateGrant",
    "RetireGrant",
    "RevokeGrant",
    "ListGrants",
    "RotateKeyOnDemand",
    "ListKeyRotations",
    "EnableKeyRotation",
    "CreateVolumeRequested",
    "CreateVolume",
    "AttachVolumeRequested",
    "AttachVolume",
    "DetachVolume",
    "ReattachVolume",
    "CreateSnapshot",
    "CopySnapshot",
    "DeleteSnapshot",
    "RegisterImage",
    "DeregisterImage",
    "RunInstances",
    "Hibernated",
    "CapacityChanged",
    "SetDesiredCapacity",
    "Launch",
    "Read",
    "Write",
    "InstanceStateChanged",
    "RebootInstances",
    "StopInstances",
    "StartInstances",
    "TerminateInstances",
    "HostMaintenance",
    "DataKeyCached",
    "DataKeyEvicted",
];

/// The context every actor handler receives.
pub type WorldCtx<'a> = Ctx<'a, World>;

/// What a call between actors answers.
#[derive(Debug)]
pub enum Reply {
    /// From KMS: the outcome of the request.
    Kms(kms::Outcome),
    /// From an instance asked to attach a volume: whether it caches the key now (it runs), or why not.
    Attach(Result<bool, ec2::Ec2Error>),
    /// From a volume or snapshot: its data key, if it has one.
    DataKey(Option<kms::Ciphertext>),
    /// From an image: whether it can be launched from.
    Available(bool),
    /// From an instance: its state, if it was launched.
    State(Option<ec2::InstanceState>),
    /// From an instance asked whether a volume may be attached to it now, or why not.
    Attachable(Result<(), ec2::Ec2Error>),
    /// From an instance told of a detach, or a snapshot told of a use.
    Done,
}

/// The closed set of actors.
#[derive(Debug)]
pub enum World {
    /// Boxed: there is one KMS, and a million volumes should not each take its size.
    Kms(Box<kms::Kms>),
    Volume(ebs::Volume),
    Instance(ec2::Instance),
    /// Boxed: few snapshots, and a volume's size is every actor's.
    Snapshot(Box<snapshot::Snapshot>),
    Image(image::Image),
    /// Boxed: few groups, and each holds its places.
    Group(Box<group::Group>),
    /// Boxed: a resource of another service is bigger than a volume.
    Service(Box<service::Resource>),
}

impl Actor for World {
    type Msg = Msg;
    type Obs = Obs;
    type Reply = Reply;

    fn handle(&mut self, msg: Msg, ctx: &mut WorldCtx<'_>) {
        match (self, msg) {
            (World::Kms(kms), Msg::Kms(m)) => kms.handle(m, ctx),
            (World::Volume(v), Msg::Volume(m)) => v.handle(m, ctx),
            (World::Instance(i), Msg::Instance(m)) => i.handle(m, ctx),
            (World::Snapshot(s), Msg::Snapshot(m)) => s.handle(m, ctx),
            (World::Image(i), Msg::Image(m)) => i.handle(m, ctx),
            (World::Group(g), Msg::Group(m)) => g.handle(m, ctx),
            (World::Service(r), Msg::Service(m)) => r.handle(m, ctx),
            (actor, msg) => panic!("message {msg:?} sent to the wrong kind of actor: {actor:?}"),
        }
    }

    fn answer(&mut self, msg: Msg, ctx: &mut WorldCtx<'_>) -> Reply {
        // Matched on the message first, each arm moving all of it: no drop glue on the way.
        match msg {
            Msg::Kms(kms::KmsMsg::Request(req)) => match self {
                World::Kms(kms) => Reply::Kms(kms.answer(req, ctx)),
                actor => not_a_call(actor, &req),
            },
            Msg::Instance(
                m @ (ec2::InstanceMsg::Attach { .. }
                | ec2::InstanceMsg::Detached { .. }
                | ec2::InstanceMsg::State
                | ec2::InstanceMsg::MayAttach),
            ) => match self {
                World::Instance(i) => i.answer(m, ctx),
                actor => not_a_call(actor, &m),
            },
            Msg::Volume(ebs::VolumeMsg::DataKey) => match self {
                World::Volume(v) => Reply::DataKey(v.data_key()),
                actor => not_a_call(actor, &"DataKey"),
            },
            Msg::Snapshot(m) => match self {
                World::Snapshot(s) => s.answer(m, ctx),
                actor => not_a_call(actor, &m),
            },
            Msg::Image(m) => match self {
                World::Image(i) => i.answer(m, ctx),
                actor => not_a_call(actor, &m),
            },
            Msg::Service(m) => not_a_call(self, &m),
            msg => not_a_call(self, &msg),
        }
    }
}
#[cold]
fn not_a_call(actor: &World, msg: &dyn std::fmt::Debug) -> ! {
    panic!("{msg:?} is not a call {actor:?} answers")
}

/// The KMS actor: the world's builder adds it first, so actors that call it need not keep its id.
pub const KMS: crate::engine::ActorId = crate::engine::ActorId(0);

// An actor shares a slot with its random stream in two cache lines (see `engine`): an instance
// must stay no bigger than a volume.
const _: () = assert!(std::mem::size_of::<World>() <= 80);
const _: () = assert!(crate::engine::slot_bytes::<World>() == 128);
// Every message waits in the queue's slab at the size of the largest: keep them small (a rare
// message with more to say is boxed).
const _: () = assert!(std::mem::size_of::<Msg>() <= 32);

#[cfg(test)]
mod tests {
    use super::*;

    /// The records an attach and a detach make say they own nothing, and are forgotten; one that
    /// owns memory (a refusal's message) does not, and is dropped.
    #[test]
    fn only_records_that_own_nothing_say_so() {
        use ebs::VolumeObs as V;
        use ec2::{Eviction, InstanceObs as I};
        let (instance, volume) = (crate::engine::ActorId(1), crate::engine::ActorId(2));
        for obs in [
            Obs::Volume(V::AttachRequested { instance }),
            Obs::Volume(V::Attached { instance }),
            Obs::Volume(V::Detached { instance }),
            Obs::Instance(I::DataKeyCached { volume }),
            Obs::Instance(I::DataKeyEvicted { volume, why: Eviction::Detach }),
        ] {
            assert!(obs.owns_nothing(), "{obs:?}");
        }
        let refused = Obs::Snapshot(snapshot::SnapshotObs::Refused {
            action: "DeleteSnapshot",
            error: ec2::Ec2Error { code: "X", message: ec2::Ec2Message::Text("owned".to_string()) },
        });
        assert!(!refused.owns_nothing());
    }
}
