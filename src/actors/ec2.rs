//! EC2 instances, each with the hypervisor key cache of its host.
//!
//! ```text
//!   running ──Stop──> stopped ──Start──> pending ──all volumes decrypted──> running
//!      │                 ^                  └──a Decrypt refused (D6)────> stopped (Client.InternalError)
//!      ├─Reboot─> running (keys kept, no KMS call)
//!      ├─HostMaintenance (D5)─> pending on a new host, as Start
//!      └─Terminate─> terminated (volumes detached, keys dropped)
//!   terminated by auto scaling: a minute later, a new instance in its place (this actor's next
//!   life, an id of its own) ──launched with the volumes──> pending ──all decrypted──> running
//!                                  ^                            └──one refused (D6)──> terminated
//!                                  └─────────────── after the cooldown ──────────────┘ (Client.InternalError)
//! ```
//!
//! The cache holds the plaintext data key of every attached volume while the instance runs. It is
//! the only thing disk I/O needs, so a volume keeps working whatever its KMS key's state until the
//! key leaves the cache: detach, stop, terminate, or host maintenance. Simplifications: stopping
//! and shutting-down are instantaneous; a start re-decrypts every attached volume at once.

use std::borrow::Cow;
use std::fmt;

use smallvec::SmallVec;

use crate::engine::{ActorId, SimDuration};

use super::ebs::VolumeMsg;
use super::group::GroupMsg;
use super::image::ImageMsg;
use super::kms::ContextId;
use super::{Msg, Obs, Reply, WorldCtx};

/// The EC2 instance states kmsim uses, named as EC2 names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InstanceState {
    Pending,
    Running,
    Stopped,
    Terminated,
}

impl InstanceState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::Stopped => "stopped",
            InstanceState::Terminated => "terminated",
        }
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An EC2 API error, with EC2's own code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ec2Error {
    pub code: &'static str,
    pub message: Ec2Message,
}

/// The words of an EC2 error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ec2Message {
    Text(String),
    /// D4's message about a volume that cannot be attached, naming the volume: kept as the
    /// volume and worded when shown, for an outage fails millions of attaches, and reading and
    /// copying each volume's name to say so cost a fleet of a million a fifth of its run.
    KeyRevoked(ContextId),
}

impl Ec2Error {
    /// D4: what AttachVolume and the reattach at start report when KMS refuses the data key.
    #[must_use]
    pub fn key_revoked(volume: ContextId) -> Self {
        Ec2Error { code: "CustomerKeyHasBeenRevoked", message: Ec2Message::KeyRevoked(volume) }
    }

    #[must_use]
    pub fn incorrect_instance_state(instance: &str, state: InstanceState) -> Self {
        Ec2Error {
            code: "IncorrectInstanceState",
            message: Ec2Message::Text(format!(
                "The instance '{instance}' is not in a state from which it can do this (it is {state})."
            )),
        }
    }

    /// The error's message, with volumes named by `volume_name`.
    #[must_use]
    pub fn message<'a>(&'a self, volume_name: impl FnOnce(ContextId) -> &'a str) -> Cow<'a, str> {
        match &self.message {
            Ec2Message::Text(text) => Cow::Borrowed(text),
            Ec2Message::KeyRevoked(volume) => Cow::Owned(format!(
                "Volume {} cannot be attached. The encrypted volume was unable to access the KMS master key.",
                volume_name(*volume)
            )),
        }
    }
}

/// Why a plaintext data key left the hypervisor cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eviction {
    Detach,
    Stop,
    Terminate,
    HostMaintenance,
}

/// The id of the `life`-th instance launched into the place of instance `name` (D6: each launch
/// by auto scaling is a new instance): the scenario's id for the first, `NAME-rN` for the N-th
/// replacement.
#[must_use]
pub fn instance_id(name: &str, life: u32) -> Cow<'_, str> {
    match life {
        0 => Cow::Borrowed(name),
        n => Cow::Owned(format!("{name}-r{n}")),
    }
}

/// What EC2 says of an instance launched from an image and not yet.
fn not_launched(name: &str) -> Ec2Error {
    Ec2Error {
        code: "InvalidInstanceID.NotFound",
        message: Ec2Message::Text(format!("The instance ID '{name}' does not exist")),
    }
}

/// The EC2 state reason of D6, for a start or a launch that could not decrypt a volume.
pub const KEY_FAILED_REASON: (&str, &str) = ("Client.InternalError", "Client.InternalError: Client error on launch");

/// The EC2 actions an instance takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstanceAction {
    Stop,
    /// StopInstances with `Hibernate=true`: RAM saved to the encrypted root volume.
    Hibernate,
    /// RunInstances of an instance from its image.
    Launch,
    Start,
    Reboot,
    Terminate,
    HostMaintenance,
}

impl InstanceAction {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceAction::Stop | InstanceAction::Hibernate => "StopInstances",
            InstanceAction::Launch => "RunInstances",
            InstanceAction::Start => "StartInstances",
            InstanceAction::Reboot => "RebootInstances",
            InstanceAction::Terminate => "TerminateInstances",
            InstanceAction::HostMaintenance => "HostMaintenance",
        }
    }
}

/// A fleet instance's own behaviour: how often it is stopped (and for how long), rebooted, and
/// moved by host maintenance. Each interval is drawn from the instance's own stream.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct InstanceCycle {
    pub stop_every: Option<crate::actors::dist::Dist>,
    pub stopped_for: crate::actors::dist::Dist,
    pub reboot_every: Option<crate::actors::dist::Dist>,
    pub maintenance_every: Option<crate::actors::dist::Dist>,
    /// How often the instance is terminated and replaced (auto scaling): a minute later a new
    /// instance is launched into its place (the same actor, a new life and id) with its volumes,
    /// through KMS.
    pub replace_every: Option<crate::actors::dist::Dist>,
    /// After a launch that failed (D6), how long auto scaling waits before it launches again.
    pub cooldown: SimDuration,
}

/// How long an auto scaling group takes to launch a replacement.
pub const REPLACEMENT_DELAY: SimDuration = SimDuration::from_mins(1);

/// Auto scaling's default cooldown (an auto scaling group's `DefaultCooldown`, 300 seconds).
pub const DEFAULT_COOLDOWN: SimDuration = SimDuration::from_secs(300);

/// Messages an instance handles.
#[derive(Debug)]
pub enum InstanceMsg {
    /// Brings a declared instance into existence, running (RunInstances).
    Run,
    Do(InstanceAction),
    /// The next step of the instance's own cycle; steps of an earlier life (`generation`,
    /// before a termination) are dropped.
    Cycle {
        action: InstanceAction,
        generation: u32,
    },
    /// Auto scaling launches the replacement of a terminated instance, with these volumes (again
    /// after the cooldown, when a launch failed).
    Replace(Vec<ActorId>),
    /// RunInstances from an image (boxed: a message's size is every message's).
    LaunchFromImage(Box<ImageLaunch>),
    /// A volume whose data key was decrypted asks to be attached (a call: the answer is
    /// [`super::Reply::Attach`]).
    Attach {
        volume: ActorId,
    },
    /// A volume was detached (a call).
    Detached {
        volume: ActorId,
    },
    /// Its state (a call, answered [`super::Reply::State`]).
    State,
    /// Whether a volume may ask to be attached to it now (a call, answered
    /// [`super::Reply::Attachable`]): AttachVolume is for a running or stopped instance.
    MayAttach,
    /// A volume's answer to [`VolumeMsg::LoadKey`] during a start.
    KeyLoaded {
        volume: ActorId,
        ok: bool,
    },
}

/// A launch from an image: each (volume, snapshot) pair is a block-device mapping, the volume
/// restored from the snapshot at the launch.
#[derive(Debug)]
pub struct ImageLaunch {
    pub image: ActorId,
    pub volumes: Vec<(ActorId, ActorId)>,
    /// The auto scaling group launching it, told how the launch went.
    pub group: Option<ActorId>,
}

/// Facts an instance records.
#[derive(Clone, Debug, PartialEq)]
pub enum InstanceObs {
    StateChanged {
        from: Option<InstanceState>,
        to: InstanceState,
        reason: Option<(&'static str, &'static str)>,
    },
    Rebooted,
    HostMaintenance {
        from_host: u32,
        to_host: u32,
    },
    DataKeyCached {
        volume: ActorId,
    },
    DataKeyEvicted {
        volume: ActorId,
        why: Eviction,
    },
    Refused {
        action: InstanceAction,
        error: Ec2Error,
    },
    /// StopInstances with `Hibernate=true`: RAM written to the encrypted root volume before it stops.
    Hibernated,
}

/// A start or launch under way.
#[derive(Debug)]
struct Starting {
    /// Volumes still decrypting.
    waiting: Vec<ActorId>,
    failed: bool,
    kind: StartKind,
}

/// What brings an instance from pending to running.
#[derive(Debug)]
enum StartKind {
    /// StartInstances, or host maintenance: a refusal sends it back to stopped.
    Start,
    /// A fleet's replacement by auto scaling, with the volumes to launch again with after the
    /// cooldown if it fails.
    Replacement(Vec<ActorId>),
    /// RunInstances from an image, told how the launch went, as is the group that launched it.
    FromImage { image: ActorId, group: Option<ActorId> },
}

#[derive(Debug)]
struct Attachment {
    volume: ActorId,
    cached: bool,
}

/// An EC2 instance and its host's key cache.
#[derive(Debug)]
pub struct Instance {
    state: Option<InstanceState>,
    host: u32,
    /// Inline for the usual one or two volumes: an attach or detach then touches only the instance.
    attachments: SmallVec<[Attachment; 2]>,
    /// During a start or a launch (boxed: rare, and an instance shares its slot's size with a
    /// volume).
    start: Option<Box<Starting>>,
    /// Counts the instance's lives (a termination ends one), so that the cycle of an earlier
    /// life does not go on beside the replacement's.
    cycle_gen: u32,
    /// Which launch into this place the instance is: 0 for the one the scenario runs, n for auto
    /// scaling's n-th launch, each a new instance with its own id (D6).
    life: u32,
    cycle: Option<std::sync::Arc<InstanceCycle>>,
}

impl Instance {
    #[must_use]
    pub fn new(host: u32) -> Self {
        Instance { state: None, host, attachments: SmallVec::new(), start: None, cycle_gen: 0, life: 0, cycle: None }
    }

    /// Makes the instance follow a fleet's stop / reboot / maintenance cycle from its launch.
    #[must_use]
    pub fn cycling(mut self, cycle: std::sync::Arc<InstanceCycle>) -> Self {
        self.cycle = Some(cycle);
        self
    }

    fn schedule_cycle(&mut self, action: InstanceAction, ctx: &mut WorldCtx<'_>) {
        let Some(cycle) = &self.cycle else { return };
        let every = match action {
            InstanceAction::Stop => cycle.stop_every.as_ref(),
            InstanceAction::Hibernate | InstanceAction::Launch => None,
            InstanceAction::Start => Some(&cycle.stopped_for),
            InstanceAction::Reboot => cycle.reboot_every.as_ref(),
            InstanceAction::HostMaintenance => cycle.maintenance_every.as_ref(),
            InstanceAction::Terminate => cycle.replace_every.as_ref(),
        };
        if let Some(d) = every {
            let after = d.draw(&mut ctx.rng());
            let me = ctx.me();
            let generation = self.cycle_gen;
            ctx.send(me, Msg::Instance(InstanceMsg::Cycle { action, generation }), after);
        }
    }

    #[must_use]
    pub fn state(&self) -> Option<InstanceState> {
        self.state
    }

    /// The calls an instance answers: an attach or detach of a volume, its state.
    pub fn answer(&mut self, msg: InstanceMsg, ctx: &mut WorldCtx<'_>) -> super::Reply {
        match msg {
            InstanceMsg::Attach { volume } => super::Reply::Attach(self.on_attach(volume, ctx)),
            InstanceMsg::Detached { volume } => {
                self.on_detached(volume, ctx);
                super::Reply::Done
            }
            InstanceMsg::State => super::Reply::State(self.state()),
            InstanceMsg::MayAttach => super::Reply::Attachable(self.attachable(false, ctx).map(|_| ())),
            other => unreachable!("{other:?} is not a call"),
        }
    }

    /// Which launch into this place the instance is (see [`crate::run::Names`] for its id).
    #[must_use]
    pub fn life(&self) -> u32 {
        self.life
    }

    /// The host the instance runs on (changes with host maintenance).
    #[must_use]
    pub fn host(&self) -> u32 {
        self.host
    }

    /// Volumes attached, with whether each one's plaintext data key is in the cache.
    pub fn attachments(&self) -> impl Iterator<Item = (ActorId, bool)> + '_ {
        self.attachments.iter().map(|a| (a.volume, a.cached))
    }

    #[allow(clippy::needless_pass_by_value)] // messages are handed over, whatever they hold
    pub fn handle(&mut self, msg: InstanceMsg, ctx: &mut WorldCtx<'_>) {
        match msg {
            InstanceMsg::Run => self.launch(ctx),
            InstanceMsg::Replace(volumes) => self.launch_with(volumes, ctx),
            InstanceMsg::LaunchFromImage(launch) => {
                self.launch_from_image(launch.image, &launch.volumes, launch.group, ctx);
            }
            InstanceMsg::Cycle { generation, .. } if generation != self.cycle_gen => {}
            InstanceMsg::Cycle { action, .. } => {
                // A step that does not apply now (a stop while starting) is skipped, not refused.
                let state = self.state.expect("instances exist from the start");
                let applies = match action {
                    InstanceAction::Start => state == InstanceState::Stopped,
                    InstanceAction::Launch => false,
                    _ => state == InstanceState::Running,
                };
                if applies && action == InstanceAction::Terminate {
                    // The cycles of the terminated instance end; its replacement starts new ones.
                    let volumes: Vec<ActorId> = self.attachments.iter().map(|a| a.volume).collect();
                    self.on_action(action, ctx);
                    let me = ctx.me();
                    ctx.send(me, Msg::Instance(InstanceMsg::Replace(volumes)), REPLACEMENT_DELAY);
                    return;
                }
                if applies {
                    self.on_action(action, ctx);
                }
                match action {
                    // After a stop, the start; after the start, the next stop.
                    InstanceAction::Stop => self.schedule_cycle(InstanceAction::Start, ctx),
                    InstanceAction::Start => self.schedule_cycle(InstanceAction::Stop, ctx),
                    other => self.schedule_cycle(other, ctx),
                }
            }
            InstanceMsg::Do(action) => self.on_action(action, ctx),
            InstanceMsg::Attach { .. } | InstanceMsg::Detached { .. } | InstanceMsg::State | InstanceMsg::MayAttach => {
                unreachable!("volumes call instances to attach, detach and ask: {msg:?}")
            }
            InstanceMsg::KeyLoaded { volume, ok } => self.on_key_loaded(volume, ok, ctx),
        }
    }

    /// The instance starts running, and its own cycle with it.
    fn launch(&mut self, ctx: &mut WorldCtx<'_>) {
        self.set_state(InstanceState::Running, None, ctx);
        self.begin_cycles(ctx);
    }

    fn begin_cycles(&mut self, ctx: &mut WorldCtx<'_>) {
        let steps =
            [InstanceAction::Stop, InstanceAction::Reboot, InstanceAction::HostMaintenance, InstanceAction::Terminate];
        for a in steps {
            self.schedule_cycle(a, ctx);
        }
    }

    fn on_action(&mut self, action: InstanceAction, ctx: &mut WorldCtx<'_>) {
        let Some(state) = self.state else {
            // Launched from an image, and not yet.
            let error = not_launched(ctx.my_name());
            ctx.record(Obs::Instance(InstanceObs::Refused { action, error }));
            return;
        };
        let allowed = match action {
            InstanceAction::Stop
            | InstanceAction::Hibernate
            | InstanceAction::Reboot
            | InstanceAction::HostMaintenance => state == InstanceState::Running,
            InstanceAction::Launch => false,
            InstanceAction::Start => state == InstanceState::Stopped,
            InstanceAction::Terminate => state != InstanceState::Terminated,
        };
        if !allowed {
            let error = Ec2Error::incorrect_instance_state(&instance_id(ctx.my_name(), self.life), state);
            ctx.record(Obs::Instance(InstanceObs::Refused { action, error }));
            return;
        }
        match action {
            InstanceAction::Stop => {
                self.set_state(InstanceState::Stopped, None, ctx);
                self.evict_all(Eviction::Stop, ctx);
            }
            InstanceAction::Hibernate => {
                // D6: the resume decrypts the root volume's key again, as a start does.
                ctx.record(Obs::Instance(InstanceObs::Hibernated));
                self.set_state(InstanceState::Stopped, None, ctx);
                self.evict_all(Eviction::Stop, ctx);
            }
            InstanceAction::Launch => unreachable!("a launch is never allowed as an action on a live instance"),
            InstanceAction::Start => self.begin_start(ctx),
            InstanceAction::Reboot => {
                ctx.record(Obs::Instance(InstanceObs::Rebooted));
            }
            InstanceAction::HostMaintenance => {
                let (from_host, to_host) = (self.host, self.host + 1);
                self.host = to_host;
                ctx.record(Obs::Instance(InstanceObs::HostMaintenance { from_host, to_host }));
                self.evict_all(Eviction::HostMaintenance, ctx);
                self.begin_start(ctx);
            }
            InstanceAction::Terminate => self.terminate(None, ctx),
        }
    }

    /// Terminated (with `reason` when a launch failed): keys dropped, volumes detached, and the
    /// cycle of this life ended.
    #[cold]
    fn terminate(&mut self, reason: Option<(&'static str, &'static str)>, ctx: &mut WorldCtx<'_>) {
        self.set_state(InstanceState::Terminated, reason, ctx);
        self.evict_all(Eviction::Terminate, ctx);
        self.start = None;
        self.cycle_gen = self.cycle_gen.wrapping_add(1);
        let me = ctx.me();
        for a in std::mem::take(&mut self.attachments) {
            ctx.send(a.volume, Msg::Volume(VolumeMsg::InstanceTerminated { instance: me }), SimDuration::ZERO);
        }
    }

    /// Auto scaling launches the replacement with its volumes: pending while EC2 decrypts each
    /// one's data key (a grant, then Decrypt), then running, or terminated if one is refused (D6).
    /// The launched instance is a new one: its first state has no `from`, as a declared
    /// instance's has.
    fn launch_with(&mut self, volumes: Vec<ActorId>, ctx: &mut WorldCtx<'_>) {
        self.life += 1;
        self.state = None;
        self.set_state(InstanceState::Pending, None, ctx);
        let me = ctx.me();
        for &v in &volumes {
            ctx.send(v, Msg::Volume(VolumeMsg::Launch { instance: me }), SimDuration::ZERO);
        }
        self.start =
            Some(Box::new(Starting { waiting: volumes.clone(), failed: false, kind: StartKind::Replacement(volumes) }));
        self.finish_start_if_done(ctx);
    }

    /// RunInstances from an image: pending while each block-device mapping's volume is restored
    /// from its snapshot and its data key decrypted, then running; terminated with
    /// `Client.InternalError` if one cannot be (D6).
    fn launch_from_image(
        &mut self,
        image: ActorId,
        volumes: &[(ActorId, ActorId)],
        group: Option<ActorId>,
        ctx: &mut WorldCtx<'_>,
    ) {
        let refused = if let Some(state) = self.state.filter(|s| *s != InstanceState::Terminated || group.is_none()) {
            Some(Ec2Error::incorrect_instance_state(&instance_id(ctx.my_name(), self.life), state))
        } else if matches!(ctx.call(image, Msg::Image(ImageMsg::Available)), Reply::Available(false)) {
            Some(super::image::not_found(ctx.name_of(image)))
        } else {
            None
        };
        let me = ctx.me();
        if let Some(error) = refused {
            ctx.record(Obs::Instance(InstanceObs::Refused { action: InstanceAction::Launch, error }));
            if let Some(group) = group {
                let msg = GroupMsg::LaunchEnded { instance: me, ok: false, refused: true };
                ctx.send(group, Msg::Group(msg), SimDuration::ZERO);
            }
            return;
        }
        if self.state.is_some() {
            // A group launches a new instance into the place of a terminated one (A13).
            self.life += 1;
            self.state = None;
        }
        self.set_state(InstanceState::Pending, None, ctx);
        for &(v, snapshot) in volumes {
            ctx.send(v, Msg::Volume(VolumeMsg::LaunchFrom { instance: me, snapshot }), SimDuration::ZERO);
        }
        let waiting = volumes.iter().map(|(v, _)| *v).collect();
        self.start = Some(Box::new(Starting { waiting, failed: false, kind: StartKind::FromImage { image, group } }));
        self.finish_start_if_done(ctx);
    }

    fn begin_start(&mut self, ctx: &mut WorldCtx<'_>) {
        self.set_state(InstanceState::Pending, None, ctx);
        let me = ctx.me();
        let waiting: Vec<ActorId> = self.attachments.iter().map(|a| a.volume).collect();
        for &v in &waiting {
            ctx.send(v, Msg::Volume(VolumeMsg::LoadKey { instance: me }), SimDuration::ZERO);
        }
        self.start = Some(Box::new(Starting { waiting, failed: false, kind: StartKind::Start }));
        self.finish_start_if_done(ctx);
    }

    fn on_key_loaded(&mut self, volume: ActorId, ok: bool, ctx: &mut WorldCtx<'_>) {
        let Some(start) = &mut self.start else { return };
        start.waiting.retain(|v| *v != volume);
        start.failed |= !ok;
        self.finish_start_if_done(ctx);
    }

    fn finish_start_if_done(&mut self, ctx: &mut WorldCtx<'_>) {
        if self.start.as_ref().is_none_or(|s| !s.waiting.is_empty()) {
            return;
        }
        let Starting { failed, kind, .. } = *self.start.take().expect("a start under way");
        let me = ctx.me();
        match (failed, &kind) {
            // D6: a start that cannot decrypt a volume goes back to stopped; a launch ends
            // terminated, and auto scaling launches a fleet's again after its cooldown.
            (true, StartKind::Start) => self.set_state(InstanceState::Stopped, Some(KEY_FAILED_REASON), ctx),
            (true, _) => self.terminate(Some(KEY_FAILED_REASON), ctx),
            (false, _) => {
                self.cache_all(ctx);
                self.set_state(InstanceState::Running, None, ctx);
                if !matches!(kind, StartKind::Start) {
                    self.begin_cycles(ctx);
                }
            }
        }
        match kind {
            StartKind::Start => {}
            StartKind::Replacement(volumes) => {
                if failed {
                    let cooldown = self.cycle.as_ref().map_or(DEFAULT_COOLDOWN, |c| c.cooldown);
                    ctx.send(me, Msg::Instance(InstanceMsg::Replace(volumes)), cooldown);
                }
            }
            StartKind::FromImage { image, group } => {
                ctx.call(image, Msg::Image(ImageMsg::Launched { instance: me, ok: !failed }));
                if let Some(group) = group {
                    let msg = GroupMsg::LaunchEnded { instance: me, ok: !failed, refused: false };
                    ctx.send(group, Msg::Group(msg), SimDuration::ZERO);
                }
            }
        }
    }

    /// Every attached volume's plaintext data key goes to the host's memory.
    fn cache_all(&mut self, ctx: &mut WorldCtx<'_>) {
        for a in &mut self.attachments {
            a.cached = true;
            ctx.record(Obs::Instance(InstanceObs::DataKeyCached { volume: a.volume }));
            ctx.send(a.volume, Msg::Volume(VolumeMsg::KeyCached), SimDuration::ZERO);
        }
    }

    /// Whether a volume may be attached now, and the instance's state: a running or stopped
    /// instance, or, with `launch` (a launch's block-device mapping), one being launched.
    fn attachable(&self, launch: bool, ctx: &WorldCtx<'_>) -> Result<InstanceState, Ec2Error> {
        let Some(state) = self.state else { return Err(not_launched(ctx.my_name())) };
        let launching = launch
            && state == InstanceState::Pending
            && self.start.as_ref().is_some_and(|s| !matches!(s.kind, StartKind::Start));
        if !matches!(state, InstanceState::Running | InstanceState::Stopped) && !launching {
            return Err(Ec2Error::incorrect_instance_state(&instance_id(ctx.my_name(), self.life), state));
        }
        Ok(state)
    }

    /// Attaches a volume whose data key was decrypted: `Ok(cached)`, true if the instance runs
    /// and so holds the plaintext key in its host's memory now.
    pub(super) fn on_attach(&mut self, volume: ActorId, ctx: &mut WorldCtx<'_>) -> Result<bool, Ec2Error> {
        let state = self.attachable(true, ctx)?;
        debug_assert!(self.attachments.iter().all(|a| a.volume != volume), "volume attached twice");
        let cached = state == InstanceState::Running;
        self.attachments.push(Attachment { volume, cached });
        if cached {
            ctx.record(Obs::Instance(InstanceObs::DataKeyCached { volume }));
        }
        Ok(cached)
    }

    pub(super) fn on_detached(&mut self, volume: ActorId, ctx: &mut WorldCtx<'_>) {
        let Some(i) = self.attachments.iter().position(|a| a.volume == volume) else { return };
        let a = self.attachments.remove(i);
        if a.cached {
            ctx.record(Obs::Instance(InstanceObs::DataKeyEvicted { volume, why: Eviction::Detach }));
        }
        if let Some(start) = &mut self.start {
            start.waiting.retain(|v| *v != volume);
            self.finish_start_if_done(ctx);
        }
    }

    fn evict_all(&mut self, why: Eviction, ctx: &mut WorldCtx<'_>) {
        for a in self.attachments.iter_mut().filter(|a| a.cached) {
            a.cached = false;
            ctx.record(Obs::Instance(InstanceObs::DataKeyEvicted { volume: a.volume, why }));
            ctx.send(a.volume, Msg::Volume(VolumeMsg::KeyDropped), SimDuration::ZERO);
        }
    }

    fn set_state(&mut self, to: InstanceState, reason: Option<(&'static str, &'static str)>, ctx: &mut WorldCtx<'_>) {
        let from = self.state.replace(to);
        ctx.record(Obs::Instance(InstanceObs::StateChanged { from, to, reason }));
    }
}
