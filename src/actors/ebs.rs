//! EBS volumes: an encrypted data key kept with the volume, and the calls that need KMS.
//!
//! ```text
//!   (not created) ──CreateVolume: GenerateDataKeyWithoutPlaintext──> available
//!   available ──AttachVolume: CreateGrant, Decrypt──> in-use (plaintext key in the host's cache)
//!       ^    └──KMS refuses (D4: CustomerKeyHasBeenRevoked)──> stays available
//!       └──DetachVolume / instance terminated── in-use  (key leaves the cache)
//! ```
//!
//! EC2 checks an attach before it calls KMS: AttachVolume is for a running or stopped instance
//! (IncorrectInstanceState otherwise, no KMS call made); a launch's block-device mapping attaches
//! to the instance it launches.
//!
//! A volume makes every KMS call about itself, as EBS and EC2 do on the user's behalf, so the
//! record of a refusal sits on the volume that broke. Calls are synchronous
//! ([`crate::engine::Ctx::call`]): after its latency, if any, the volume calls KMS and goes on
//! with the answer; attaching and detaching call the instance the same way. The plaintext key lives in the instance's
//! cache ([`super::ec2`]); the volume keeps a mirror of whether it is there, which the instance
//! updates, so disk I/O can be answered here.
//!
//! A4 (undocumented): EC2 makes one grant per (volume, instance) and keeps it while the volume
//! goes back to that instance; it retires it when the instance terminates or the volume is
//! attached elsewhere. A reattach to the same instance therefore calls only Decrypt, and the
//! refused call is the Decrypt, as D4 describes. When that grant was revoked or retired meanwhile,
//! the next attach or start on the instance makes a new one first (CreateGrant, then Decrypt, as
//! AWS's CloudTrail examples of EC2 attaches show). Simplifications: a failed CreateVolume leaves no
//! volume behind (the scenario may create it again); attaching to a stopped instance decrypts
//! the key at once and the instance discards it until it starts.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;

use crate::engine::{ActorId, SimDuration, SimTime};

use super::ec2::{Ec2Error, Ec2Message, InstanceMsg, InstanceState};
use rand::RngExt;

use super::dist::Dist;
use super::kms::{
    Caller, Ciphertext, CiphertextRef, ContextId, GrantId, GrantRef, Grantee, KeyIdx, KeyRef, KmsError, KmsException,
    KmsMsg, KmsOp, KmsOutput, KmsRequest, MaterialId, Outcome, Service,
};
use super::snapshot::{
    Derive, Derived, SnapshotMsg, Use, data_key_of, not_found as snapshot_not_found, source_key, tell_source,
};
use super::{Msg, Obs, Reply, WorldCtx};

/// The EBS volume states kmsim uses, named as EBS names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VolumeState {
    Creating,
    /// Creating for the launch of this instance from an image: attached to it once created.
    CreatingFor(ActorId),
    Available,
    /// Available, with an attachment on its way (EBS's attachment state `attaching`).
    Attaching(ActorId),
    InUse(ActorId),
}

impl VolumeState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeState::Creating | VolumeState::CreatingFor(_) => "creating",
            VolumeState::Available => "available",
            VolumeState::Attaching(_) => "attaching",
            VolumeState::InUse(_) => "in-use",
        }
    }
}

/// A disk operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoKind {
    Read,
    Write,
}

impl IoKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            IoKind::Read => "Read",
            IoKind::Write => "Write",
        }
    }
}

/// Why disk I/O failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoFailure {
    /// The volume is not attached to any instance.
    NotAttached,
    /// Attached, but its plaintext data key is not in the host's memory (the instance is stopped
    /// or could not decrypt it at start).
    NoDataKey,
}

impl fmt::Display for IoFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoFailure::NotAttached => "the volume is not attached",
            IoFailure::NoDataKey => "no plaintext data key in the host's memory",
        })
    }
}

/// A fleet volume's behaviour: how long it stays attached and detached, and when a failed
/// attach is tried again. The volume draws each duration from its own stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Cycle {
    pub attached: Dist,
    pub detached: Dist,
    pub retry: Dist,
    /// The fleet's instances are an auto scaling group's (A14): a volume attaches only to an
    /// instance in service, and the group tells it when one is.
    pub by_group: bool,
}

/// Messages a volume handles.
#[derive(Clone, Copy, Debug)]
pub enum VolumeMsg {
    Create,
    /// CreateVolume from a snapshot (its actor): the new volume's data key comes from the
    /// snapshot's (D19).
    Restore {
        from: ActorId,
    },
    /// A call: its data key, once it exists (CreateSnapshot asks).
    DataKey,
    /// A launch from an image: restore from `snapshot`, then attach to `instance` as a launch
    /// does, and tell it how that went.
    LaunchFrom {
        instance: ActorId,
        snapshot: ActorId,
    },
    Attach {
        instance: ActorId,
    },
    Detach,
    Io(IoKind),
    /// Periodic I/O every `every` until `until`, starting now.
    IoLoad {
        kind: IoKind,
        every: SimDuration,
        until: SimTime,
    },
    IoTick {
        kind: IoKind,
        every: SimDuration,
        until: SimTime,
    },
    /// The volume's KMS call is due, after its latency or a throttled call's backoff; `tag`
    /// names the call, which a detach may have abandoned meanwhile.
    CallDue {
        tag: u32,
    },
    /// From the instance, at start: decrypt the data key again.
    LoadKey {
        instance: ActorId,
    },
    /// From an instance auto scaling launches with this volume: attach to it at launch (a grant
    /// and Decrypt, no AttachVolume call), then tell it how that went.
    Launch {
        instance: ActorId,
    },
    KeyCached,
    KeyDropped,
    /// From KMS: the user retired or revoked the grant EC2 made for this volume.
    GrantEnded {
        grant: GrantId,
    },
    InstanceTerminated {
        instance: ActorId,
    },
    /// From a fleet's group: a new instance is in service in this volume's home (A14).
    HomeInService,
    /// The next step of a fleet volume's cycle: attach to an instance, or detach (`None`). Steps
    /// from an older attachment (`generation`) are stale and ignored.
    CycleStep {
        generation: u32,
        attach_to: Option<ActorId>,
    },
}

/// Facts a volume records.
#[derive(Clone, Debug, PartialEq)]
pub enum VolumeObs {
    /// CreateVolume accepted: EBS asks KMS for the volume's data key.
    CreateRequested,
    Created,
    CreateFailed {
        error: KmsError,
    },
    AttachRequested {
        instance: ActorId,
    },
    Attached {
        instance: ActorId,
    },
    /// `kms` is the refused KMS call's error when KMS is why (the EBS event's `cause`).
    AttachFailed {
        instance: ActorId,
        error: Ec2Error,
        kms: Option<KmsError>,
    },
    Detached {
        instance: ActorId,
    },
    /// CreateVolume or DetachVolume refused by EC2.
    Refused {
        action: &'static str,
        error: Ec2Error,
    },
    /// The instance started (or moved host) and KMS refused this volume's data key.
    KeyLoadFailed {
        instance: ActorId,
        error: Ec2Error,
        kms: KmsError,
    },
    Io {
        kind: IoKind,
        result: Result<(), IoFailure>,
    },
}

/// What EC2 needs a volume's plaintext data key for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    /// An AttachVolume.
    Attach,
    /// The start (or move to a new host) of the instance it is attached to.
    Start,
    /// The launch of an instance auto scaling launches with it.
    Launch,
}

#[derive(Clone, Copy, Debug)]
enum Pending {
    CreateDataKey,
    /// A step of giving the volume its data key from a snapshot's (D19).
    Derive(ActorId, Derive),
    /// EC2 makes a grant for the instance, then decrypts.
    Grant(Need, ActorId),
    Decrypt(Need, ActorId),
}

/// What the volumes of a scenario, or of one of its fleets, share.
#[derive(Debug)]
pub struct Setup {
    /// The delay of each KMS call the volume's services make (D-free: default zero).
    pub latency: Dist,
    /// A fleet's: the attach / detach cycle its volumes follow by themselves.
    pub cycle: Option<Cycle>,
}

/// An EBS volume encrypted under a KMS key.
///
/// A fleet's million volumes are most of an estate's memory, and each shares its slot with its
/// random stream in two cache lines: hence the KMS actor known rather than kept, the data key
/// without the key and context that are always the volume's own, and what a fleet's volumes
/// share behind one pointer.
#[derive(Debug)]
pub struct Volume {
    /// The encryption context EBS gives the volume's data key: `aws:ebs:id` = this volume.
    context: ContextId,
    key: KeyIdx,
    setup: Arc<Setup>,
    state: Option<VolumeState>,
    data_key: Option<DataKey>,
    /// The grant EC2 made for the instance this volume was last attached to (A4: kept across
    /// detach and reattach to the same instance).
    grant: Option<(GrantId, ActorId)>,
    key_in_memory: bool,
    /// The outstanding KMS call, while it waits for its latency or backoff.
    call: Outstanding<Pending>,
    /// A fleet volume's: the instance it attaches to once created (an instance is never actor 0,
    /// KMS, which leaves the niche for `None`).
    home: Option<NonZeroU32>,
    /// Counts attachments and detachments, so that a cycle step scheduled before one is dropped.
    cycle_gen: u32,
}

/// A volume's data key as KMS made it, less what is always the volume's own (its key and its
/// encryption context): the ciphertext is made whole again when it is sent.
#[derive(Clone, Copy, Debug)]
struct DataKey {
    material: Option<MaterialId>,
    serial: u64,
}

impl Volume {
    #[must_use]
    pub fn new(context: ContextId, key: KeyIdx, setup: Arc<Setup>) -> Self {
        Volume {
            context,
            key,
            setup,
            state: None,
            data_key: None,
            grant: None,
            key_in_memory: false,
            call: Outstanding::default(),
            home: None,
            cycle_gen: 0,
        }
    }

    /// Makes the volume follow its fleet's attach / detach cycle (its setup's) on `home`,
    /// starting as soon as it is created.
    #[must_use]
    pub fn cycling(mut self, home: ActorId) -> Self {
        debug_assert!(self.setup.cycle.is_some(), "a volume cycles with its fleet's setup");
        self.home = Some(NonZeroU32::new(home.0).expect("an instance is never actor 0, KMS"));
        self
    }

    /// The fleet's cycle and the volume's home, if it follows one.
    fn cycle(&self) -> Option<(&Cycle, ActorId)> {
        Some((self.setup.cycle.as_ref()?, ActorId(self.home?.get())))
    }

    /// Whether the volume's fleet runs on an auto scaling group (A14).
    fn by_group(&self) -> bool {
        self.cycle().is_some_and(|(c, _)| c.by_group)
    }

    /// Keeps the data key KMS made for this volume.
    fn keep(&mut self, c: &Ciphertext) {
        debug_assert_eq!((c.key, c.context), (self.key, Some(self.context)), "a volume's data key is its own");
        self.data_key = Some(DataKey { material: c.material, serial: c.serial });
    }

    /// The data key, whole.
    fn ciphertext(&self) -> Option<Ciphertext> {
        self.data_key.map(|d| Ciphertext {
            key: self.key,
            material: d.material,
            serial: d.serial,
            context: Some(self.context),
        })
    }

    /// A14: the fleet's automation attaches the volume to the instance in its home when that
    /// one is running or stopped, tries again after `retry` while it starts, and waits while the
    /// place is empty or launching: the group says when a new instance is in service.
    #[cold]
    fn attach_home(&mut self, ctx: &mut WorldCtx<'_>) {
        let Some((_, home)) = self.cycle() else { return };
        match ctx.call(home, Msg::Instance(InstanceMsg::State)) {
            Reply::State(Some(InstanceState::Running | InstanceState::Stopped)) => self.on_attach(home, ctx),
            Reply::State(Some(InstanceState::Pending)) => self.next(Some(home), |c| &c.retry, ctx),
            _ => {}
        }
    }

    /// Schedules the volume's next step of its cycle, if it follows one.
    fn next(&mut self, attach_to: Option<ActorId>, pick: fn(&Cycle) -> &Dist, ctx: &mut WorldCtx<'_>) {
        self.cycle_gen = self.cycle_gen.wrapping_add(1);
        if let Some((cycle, _)) = self.cycle() {
            let after = pick(cycle).draw(&mut ctx.rng());
            let me = ctx.me();
            ctx.send(me, Msg::Volume(VolumeMsg::CycleStep { generation: self.cycle_gen, attach_to }), after);
        }
    }

    #[must_use]
    pub fn state(&self) -> Option<VolumeState> {
        self.state
    }

    /// The key material the volume's data key was encrypted with, once the volume exists.
    #[must_use]
    pub fn data_key_material(&self) -> Option<super::kms::MaterialId> {
        self.data_key.and_then(|d| d.material)
    }

    /// The instance a fleet volume's cycle attaches it to.
    #[must_use]
    pub fn home(&self) -> Option<ActorId> {
        self.cycle().map(|(_, home)| home)
    }

    /// The KMS it calls.
    #[must_use]
    pub fn kms(&self) -> ActorId {
        super::KMS
    }

    /// Whether the host's memory holds this volume's plaintext data key (mirrors the instance).
    #[must_use]
    pub fn key_in_memory(&self) -> bool {
        self.key_in_memory
    }

    pub fn handle(&mut self, msg: VolumeMsg, ctx: &mut WorldCtx<'_>) {
        match msg {
            VolumeMsg::Create => self.on_create(None, None, ctx),
            VolumeMsg::Restore { from } => self.on_create(Some(from), None, ctx),
            VolumeMsg::LaunchFrom { instance, snapshot } => {
                if self.state == Some(VolumeState::Available) {
                    // A13: the volume of a terminated launch was deleted with it
                    // (DeleteOnTermination); the next launch in the place makes it anew.
                    self.state = None;
                    self.data_key = None;
                }
                self.on_create(Some(snapshot), Some(instance), ctx);
            }
            VolumeMsg::DataKey => unreachable!("DataKey is a call, answered by Volume::data_key"),
            VolumeMsg::Attach { instance } => self.on_attach(instance, ctx),
            VolumeMsg::Detach => self.on_detach(ctx),
            VolumeMsg::Io(kind) => self.on_io(kind, ctx),
            VolumeMsg::IoLoad { kind, every, until } | VolumeMsg::IoTick { kind, every, until } => {
                self.on_io(kind, ctx);
                if ctx.now() + every <= until {
                    let me = ctx.me();
                    ctx.send(me, Msg::Volume(VolumeMsg::IoTick { kind, every, until }), every);
                }
            }
            VolumeMsg::CallDue { tag } => {
                if self.call.due(tag) {
                    self.make_call(ctx);
                }
            }
            VolumeMsg::LoadKey { instance } => self.on_load_key(instance, ctx),
            VolumeMsg::Launch { instance } => self.on_launch(instance, ctx),
            VolumeMsg::KeyCached => self.key_in_memory = true,
            VolumeMsg::KeyDropped => self.key_in_memory = false,
            VolumeMsg::GrantEnded { grant } => {
                if self.grant.is_some_and(|(g, _)| g == grant) {
                    self.grant = None;
                }
            }
            VolumeMsg::CycleStep { generation, attach_to } => {
                if generation == self.cycle_gen {
                    match attach_to {
                        Some(_) if self.by_group() => self.attach_home(ctx),
                        Some(instance) => self.on_attach(instance, ctx),
                        None => self.on_detach(ctx),
                    }
                }
            }
            VolumeMsg::HomeInService => {
                if self.state == Some(VolumeState::Available) {
                    self.attach_home(ctx);
                }
            }
            VolumeMsg::InstanceTerminated { instance } => {
                if self.state == Some(VolumeState::InUse(instance)) {
                    self.detach_from(instance, false, ctx);
                    // The terminated instance's cycle ends here; a replacement restarts it.
                    self.cycle_gen = self.cycle_gen.wrapping_add(1);
                }
                if self.grant.is_some_and(|(_, i)| i == instance) {
                    self.retire_grant(ctx);
                }
            }
        }
    }

    /// A launch from an image could not have this volume: its instance is told.
    fn launch_failed(launching: Option<ActorId>, ctx: &mut WorldCtx<'_>) {
        if let Some(instance) = launching {
            let me = ctx.me();
            ctx.send(instance, Msg::Instance(InstanceMsg::KeyLoaded { volume: me, ok: false }), SimDuration::ZERO);
        }
    }

    /// CreateVolume, empty or from the snapshot `from`; for the launch of `launching` from an
    /// image, attached to it once created.
    fn on_create(&mut self, from: Option<ActorId>, launching: Option<ActorId>, ctx: &mut WorldCtx<'_>) {
        if self.state.is_some() {
            let error = incorrect_state("it already exists", ctx);
            ctx.record(Obs::Volume(VolumeObs::Refused { action: "CreateVolume", error }));
            Self::launch_failed(launching, ctx);
            return;
        }
        let pending = match from {
            None => Pending::CreateDataKey,
            Some(snapshot) => {
                match data_key_of(snapshot, Msg::Snapshot(SnapshotMsg::DataKey { started: false }), ctx) {
                    Some(source) => Pending::Derive(snapshot, Derive::first(&source, self.key)),
                    None => {
                        let error = snapshot_not_found(ctx.name_of(snapshot));
                        ctx.record(Obs::Volume(VolumeObs::Refused { action: "CreateVolume", error }));
                        Self::launch_failed(launching, ctx);
                        return;
                    }
                }
            }
        };
        self.state = Some(launching.map_or(VolumeState::Creating, VolumeState::CreatingFor));
        ctx.record(Obs::Volume(VolumeObs::CreateRequested));
        self.call_kms(pending, ctx);
    }

    /// The instance whose launch from an image this volume is being created for.
    fn launching(&self) -> Option<ActorId> {
        match self.state {
            Some(VolumeState::CreatingFor(i)) => Some(i),
            _ => None,
        }
    }

    /// Its data key, once it exists: what a snapshot of it keeps (D7).
    #[must_use]
    pub fn data_key(&self) -> Option<Ciphertext> {
        match self.state {
            None | Some(VolumeState::Creating | VolumeState::CreatingFor(_)) => None,
            Some(_) => self.ciphertext(),
        }
    }

    fn on_attach(&mut self, instance: ActorId, ctx: &mut WorldCtx<'_>) {
        ctx.record(Obs::Volume(VolumeObs::AttachRequested { instance }));
        let error = match self.state {
            Some(VolumeState::Available) => None,
            None => Some(Ec2Error {
                code: "InvalidVolume.NotFound",
                message: Ec2Message::Text(format!("The volume '{}' does not exist.", ctx.my_name())),
            }),
            Some(VolumeState::InUse(_) | VolumeState::Attaching(_)) => Some(Ec2Error {
                code: "VolumeInUse",
                message: Ec2Message::Text(format!("{} is already attached to an instance", ctx.my_name())),
            }),
            Some(VolumeState::Creating | VolumeState::CreatingFor(_)) => Some(incorrect_state("it is creating", ctx)),
        };
        if let Some(error) = error {
            ctx.record(Obs::Volume(VolumeObs::AttachFailed { instance, error, kms: None }));
            return;
        }
        // EC2 checks the instance before it asks KMS for anything: AttachVolume is for a running
        // or stopped instance. A fleet's automation asks again after `retry`.
        match ctx.call(instance, Msg::Instance(InstanceMsg::MayAttach)) {
            Reply::Attachable(Ok(())) => {}
            Reply::Attachable(Err(error)) => {
                ctx.record(Obs::Volume(VolumeObs::AttachFailed { instance, error, kms: None }));
                self.next(Some(instance), |c| &c.retry, ctx);
                return;
            }
            other => unreachable!("an instance answers MayAttach with Attachable, not {other:?}"),
        }
        self.state = Some(VolumeState::Attaching(instance));
        self.decrypt_for(Need::Attach, instance, ctx);
    }

    /// EC2 decrypts the data key for `instance`: with the grant it holds for it (A4), or after
    /// retiring any other and making one (CreateGrant, then Decrypt).
    #[inline]
    fn decrypt_for(&mut self, need: Need, instance: ActorId, ctx: &mut WorldCtx<'_>) {
        if self.grant.is_some_and(|(_, i)| i == instance) {
            self.call_kms(Pending::Decrypt(need, instance), ctx);
        } else {
            self.retire_grant(ctx);
            self.call_kms(Pending::Grant(need, instance), ctx);
        }
    }

    fn on_detach(&mut self, ctx: &mut WorldCtx<'_>) {
        match self.state {
            Some(VolumeState::InUse(instance)) => self.detach_from(instance, true, ctx),
            other => {
                let what = other.map_or("it does not exist", |s| match s {
                    VolumeState::Attaching(_) => "it is attaching",
                    _ => "it is not attached",
                });
                let error = incorrect_state(what, ctx);
                ctx.record(Obs::Volume(VolumeObs::Refused { action: "DetachVolume", error }));
            }
        }
    }

    fn detach_from(&mut self, instance: ActorId, tell_instance: bool, ctx: &mut WorldCtx<'_>) {
        self.state = Some(VolumeState::Available);
        self.key_in_memory = false;
        // A start may be waiting on this volume's Decrypt; its answer no longer matters.
        if matches!(self.call.current(), Some(Pending::Grant(Need::Start, _) | Pending::Decrypt(Need::Start, _))) {
            self.call.abandon();
        }
        ctx.record(Obs::Volume(VolumeObs::Detached { instance }));
        if tell_instance {
            let me = ctx.me();
            ctx.call(instance, Msg::Instance(InstanceMsg::Detached { volume: me }));
            self.next(Some(instance), |c| &c.detached, ctx);
        }
    }

    /// EC2 retires its grant when the instance it was made for no longer needs it.
    fn retire_grant(&mut self, ctx: &mut WorldCtx<'_>) {
        if let Some((grant, instance)) = self.grant.take() {
            let op = KmsOp::RetireGrant { grant: GrantRef::Id(grant) };
            let request = KmsRequest { caller: Caller::Instance(instance), op: Box::new(op) };
            let after = self.setup.latency.draw(&mut ctx.rng());
            ctx.send(super::KMS, Msg::Kms(KmsMsg::Request(request)), after);
        }
    }

    fn on_load_key(&mut self, instance: ActorId, ctx: &mut WorldCtx<'_>) {
        let me = ctx.me();
        match (&self.data_key, self.state) {
            (Some(_), Some(VolumeState::InUse(i))) if i == instance => self.decrypt_for(Need::Start, instance, ctx),
            _ => {
                // Detached meanwhile: nothing to load.
                ctx.send(instance, Msg::Instance(InstanceMsg::KeyLoaded { volume: me, ok: true }), SimDuration::ZERO);
            }
        }
    }

    fn on_launch(&mut self, instance: ActorId, ctx: &mut WorldCtx<'_>) {
        if self.state != Some(VolumeState::Available) {
            // Not created, or elsewhere: the instance launches without it.
            let me = ctx.me();
            ctx.send(instance, Msg::Instance(InstanceMsg::KeyLoaded { volume: me, ok: true }), SimDuration::ZERO);
            return;
        }
        self.state = Some(VolumeState::Attaching(instance));
        self.decrypt_for(Need::Launch, instance, ctx);
    }

    fn on_io(&mut self, kind: IoKind, ctx: &mut WorldCtx<'_>) {
        let result = match self.state {
            Some(VolumeState::InUse(_)) if self.key_in_memory => Ok(()),
            Some(VolumeState::InUse(_)) => Err(IoFailure::NoDataKey),
            _ => Err(IoFailure::NotAttached),
        };
        ctx.record(Obs::Volume(VolumeObs::Io { kind, result }));
    }

    /// The outcome of this volume's KMS call, `pending`.
    fn on_kms_result(&mut self, pending: Pending, result: Outcome, ctx: &mut WorldCtx<'_>) {
        let me = ctx.me();
        if let Some((attempt, wait)) = self.call.answered(&result, ctx) {
            self.send_call(pending, attempt, wait, ctx);
            return;
        }
        match (pending, result) {
            (Pending::CreateDataKey, Ok(KmsOutput::Ciphertext(c))) => {
                self.keep(&c);
                self.state = Some(VolumeState::Available);
                ctx.record(Obs::Volume(VolumeObs::Created));
                if self.by_group() {
                    self.attach_home(ctx);
                } else if let Some((_, home)) = self.cycle() {
                    ctx.send(me, Msg::Volume(VolumeMsg::Attach { instance: home }), SimDuration::ZERO);
                }
            }
            (Pending::CreateDataKey, Err(error)) => {
                self.state = None;
                ctx.record(Obs::Volume(VolumeObs::CreateFailed { error }));
            }
            (Pending::Derive(from, step), result) => self.on_derive_result(from, step, result, ctx),
            (Pending::Grant(need, instance), Ok(KmsOutput::Grant(grant))) => {
                self.grant = Some((grant, instance));
                self.call_kms(Pending::Decrypt(need, instance), ctx);
            }
            (Pending::Decrypt(need, instance), Ok(KmsOutput::Decrypted { .. })) if need != Need::Start => {
                let ok = self.attach_to(instance, ctx);
                if need == Need::Launch {
                    ctx.send(instance, Msg::Instance(InstanceMsg::KeyLoaded { volume: me, ok }), SimDuration::ZERO);
                }
            }
            (Pending::Grant(Need::Start, instance) | Pending::Decrypt(Need::Start, instance), result) => {
                let ok = result.is_ok();
                if let Err(kms) = result {
                    let error = Ec2Error::key_revoked(self.context);
                    ctx.record(Obs::Volume(VolumeObs::KeyLoadFailed { instance, error, kms }));
                }
                ctx.send(instance, Msg::Instance(InstanceMsg::KeyLoaded { volume: me, ok }), SimDuration::ZERO);
            }
            (Pending::Grant(need, instance) | Pending::Decrypt(need, instance), Err(kms)) => {
                self.state = Some(VolumeState::Available);
                let error = Ec2Error::key_revoked(self.context);
                ctx.record(Obs::Volume(VolumeObs::AttachFailed { instance, error, kms: Some(kms) }));
                if need == Need::Launch {
                    // D6: the launch fails; auto scaling launches again with this volume.
                    let msg = InstanceMsg::KeyLoaded { volume: me, ok: false };
                    ctx.send(instance, Msg::Instance(msg), SimDuration::ZERO);
                } else {
                    self.next(Some(instance), |c| &c.retry, ctx);
                }
            }
            (pending, result) => panic!("unexpected KMS answer {result:?} to {pending:?}"),
        }
    }

    /// The outcome of a step of a restore (D19): out of line, as restores are rare beside the
    /// attaches and detaches.
    #[cold]
    #[inline(never)]
    fn on_derive_result(&mut self, from: ActorId, step: Derive, result: Outcome, ctx: &mut WorldCtx<'_>) {
        let me = ctx.me();
        let launching = self.launching();
        match step.after(result) {
            Derived::Next(next) => self.call_kms(Pending::Derive(from, next), ctx),
            Derived::Made(c) => {
                self.keep(&c);
                self.state = Some(VolumeState::Available);
                ctx.record(Obs::Volume(VolumeObs::Created));
                tell_source(from, me, Use::Restore, None, ctx);
                if let Some(instance) = launching {
                    // A launch's block-device mapping: attached as the launch attaches (D6).
                    self.state = Some(VolumeState::Attaching(instance));
                    self.decrypt_for(Need::Launch, instance, ctx);
                }
            }
            Derived::Failed { error, source_refused } => {
                self.state = None;
                ctx.record(Obs::Volume(VolumeObs::CreateFailed { error }));
                if source_refused.is_some() {
                    tell_source(from, me, Use::Restore, source_refused, ctx);
                }
                Self::launch_failed(launching, ctx);
            }
        }
    }

    /// Its data key decrypted, the volume asks `instance` to take it; whether it did.
    #[inline]
    fn attach_to(&mut self, instance: ActorId, ctx: &mut WorldCtx<'_>) -> bool {
        let me = ctx.me();
        match ctx.call(instance, Msg::Instance(InstanceMsg::Attach { volume: me })) {
            Reply::Attach(Ok(cached)) => {
                self.state = Some(VolumeState::InUse(instance));
                self.key_in_memory = cached;
                ctx.record(Obs::Volume(VolumeObs::Attached { instance }));
                self.next(None, |c| &c.attached, ctx);
                true
            }
            Reply::Attach(Err(error)) => {
                self.state = Some(VolumeState::Available);
                ctx.record(Obs::Volume(VolumeObs::AttachFailed { instance, error, kms: None }));
                false
            }
            other => unreachable!("an instance answers an attach with Attach, not {other:?}"),
        }
    }

    fn call_kms(&mut self, pending: Pending, ctx: &mut WorldCtx<'_>) {
        self.send_call(pending, 0, SimDuration::ZERO, ctx);
    }

    /// The KMS call a pending step makes, and who makes it.
    fn request_for(&self, pending: Pending) -> (Caller, KmsOp) {
        let context = Some(self.context);
        match pending {
            Pending::Derive(..) => unreachable!("a restore's calls are made by derive_request"),
            Pending::CreateDataKey => (
                Caller::UserVia(Service::Ebs),
                KmsOp::GenerateDataKeyWithoutPlaintext { key: KeyRef::Id(self.key), context, name: None },
            ),
            Pending::Grant(_, instance) => (
                Caller::UserVia(Service::Ec2),
                KmsOp::CreateGrant {
                    key: KeyRef::Id(self.key),
                    grantee: Grantee::Instance(instance),
                    context,
                    name: None,
                },
            ),
            Pending::Decrypt(_, instance) => {
                let data_key = self.ciphertext().expect("a created volume has a data key");
                (
                    Caller::Instance(instance),
                    KmsOp::Decrypt { ciphertext: CiphertextRef::Blob(data_key), key: None, context },
                )
            }
        }
    }

    /// The call a step of a restore makes (D19), with its snapshot's data key; out of the way of
    /// the attaches and detaches that make nearly every call.
    #[cold]
    #[inline(never)]
    fn derive_request(
        key: KeyIdx,
        context: ContextId,
        from: ActorId,
        step: Derive,
        ctx: &mut WorldCtx<'_>,
    ) -> (Caller, KmsOp) {
        let source = if step.reads_source() { source_key(from, ctx) } else { None };
        let request = step.request(source, key, context);
        (request.caller, *request.op)
    }

    /// Makes the KMS call of `pending` after `wait` plus the call's latency (at once when both
    /// are zero), remembering it so that a detach can abandon it; `attempt` counts the
    /// throttled tries.
    fn send_call(&mut self, pending: Pending, attempt: u16, wait: SimDuration, ctx: &mut WorldCtx<'_>) {
        match self.call.start(pending, attempt, wait, &self.setup.latency, ctx) {
            None => self.make_call(ctx),
            Some((tag, after)) => {
                let me = ctx.me();
                ctx.send(me, Msg::Volume(VolumeMsg::CallDue { tag }), after);
            }
        }
    }

    /// Calls KMS for the outstanding call and goes on with its outcome.
    fn make_call(&mut self, ctx: &mut WorldCtx<'_>) {
        let Some(pending) = self.call.current() else { return };
        let (caller, op) = match pending {
            Pending::Derive(from, step) => Self::derive_request(self.key, self.context, from, step, ctx),
            _ => self.request_for(pending),
        };
        let request = KmsRequest { caller, op: Box::new(op) };
        match ctx.call(super::KMS, Msg::Kms(KmsMsg::Request(request))) {
            Reply::Kms(result) => self.on_kms_result(pending, result, ctx),
            other => unreachable!("KMS answers with Kms, not {other:?}"),
        }
    }
}

/// A resource's outstanding KMS call, which its service makes after the call's latency (or a
/// throttled call's backoff): what it is for, the tag its delayed making carries (a detach
/// abandons the call, and a later one replaces it), and how many times it was throttled
/// (saturating: the backoff stops growing long before; 16 bits keep a volume and its stream
/// within two cache lines).
#[derive(Clone, Copy, Debug)]
pub(super) struct Outstanding<P> {
    call: Option<P>,
    /// The tag of the next call: the outstanding one's is the one before.
    next_tag: u32,
    attempt: u16,
}

impl<P> Default for Outstanding<P> {
    fn default() -> Self {
        Outstanding { call: None, next_tag: 0, attempt: 0 }
    }
}

impl<P: Copy> Outstanding<P> {
    /// Makes `what` the outstanding call (its `attempt`-th try), due after a draw of `latency`
    /// plus `wait`: `None` when that is now, else the tag and delay of the message that makes it.
    #[inline]
    pub(super) fn start(
        &mut self,
        what: P,
        attempt: u16,
        wait: SimDuration,
        latency: &Dist,
        ctx: &mut WorldCtx<'_>,
    ) -> Option<(u32, SimDuration)> {
        let tag = self.next_tag;
        self.next_tag = tag.wrapping_add(1);
        self.call = Some(what);
        self.attempt = attempt;
        let after = latency.draw(&mut ctx.rng()) + wait;
        (after != SimDuration::ZERO).then_some((tag, after))
    }

    /// Whether the call a message tagged `tag` was to make is still outstanding.
    pub(super) fn due(&self, tag: u32) -> bool {
        self.call.is_some() && tag == self.next_tag.wrapping_sub(1)
    }

    pub(super) fn current(&self) -> Option<P> {
        self.call
    }

    pub(super) fn abandon(&mut self) {
        self.call = None;
    }

    /// KMS answered the call: when it was throttled, the attempt and the backoff to try it
    /// again with; else the call is over.
    #[inline]
    pub(super) fn answered(&mut self, result: &Outcome, ctx: &mut WorldCtx<'_>) -> Option<(u16, SimDuration)> {
        if let Err(e) = result
            && e.exception == KmsException::Throttling
        {
            return Some((self.attempt.saturating_add(1), backoff(self.attempt, ctx)));
        }
        self.call = None;
        self.attempt = 0;
        None
    }
}

/// The wait before a throttled call's next try: capped exponential backoff with jitter, as the
/// AWS SDKs do: 100 ms doubling up to 20 s, times a uniform factor in [0.5, 1].
fn backoff(attempt: u16, ctx: &mut WorldCtx<'_>) -> SimDuration {
    let cap = SimDuration::from_secs(20).as_ms();
    let base = (100u64 << attempt.min(20)).min(cap);
    SimDuration::from_ms(ctx.rng().random_range(base / 2..=base))
}

fn incorrect_state(why: &str, ctx: &WorldCtx<'_>) -> Ec2Error {
    Ec2Error {
        code: "IncorrectState",
        message: Ec2Message::Text(format!("The volume '{}' is not in a valid state: {why}.", ctx.my_name())),
    }
}
