//! What broke, and when: per key, the periods it was unusable; per resource, its latent window.
//!
//! A pure function of a finished [`Run`]. A *loss* is a key leaving `Enabled` (material deleted
//! or expired, disabled, scheduled for deletion); a resource *breaks* at its first failure caused
//! by the key during a loss; its *latent window* is the time from the loss to the break, during
//! which it kept working on a plaintext data key cached in host memory.

use crate::actors::Obs;
use crate::actors::ebs::{VolumeObs, VolumeState};
use crate::actors::ec2::{InstanceObs, InstanceState};
use crate::actors::group::GroupObs;
use crate::actors::image::{ImageObs, ImageState};
use crate::actors::kms::{Caller, KeyIdx, KeyState, KmsObs, KmsOutput};
use crate::actors::service::{Effect, ServiceObs};
use crate::actors::snapshot::{SnapshotObs, SnapshotState};
use crate::engine::{ActorId, Cause, Record, RecordId, SimDuration, SimTime};
use crate::run::{
    Names, Run, actor_count, group_actor, image_actor, instance_actor, service_actor, snapshot_actor, volume_actor,
};
use crate::scenario::Scenario;
use std::sync::Arc;

use super::record::caller_words;
use super::standing::{self, Standing};

/// A period during which a key could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loss {
    pub at: SimTime,
    /// What made the key unusable, in words (`DeleteImportedKeyMaterial by alice`).
    pub why: String,
    /// When the key was `Enabled` again, if it was.
    pub restored_at: Option<SimTime>,
    /// When the key was deleted, which ends every hope of restoring it.
    pub deleted_at: Option<SimTime>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySummary {
    pub key: KeyIdx,
    pub name: Arc<str>,
    /// Each state change: when, from, to (`None` for deleted), and what caused it.
    pub changes: Vec<(SimTime, Option<KeyState>, Option<KeyState>, String)>,
    pub losses: Vec<Loss>,
    /// `None` once deleted.
    pub state_at_end: Option<KeyState>,
    /// What happened to its materials, in order: each import (and the state it left the
    /// material in), rotation, deletion and expiry.
    pub material_events: Vec<(SimTime, String)>,
    /// Its materials at the end, as `ListKeyRotations` with every material lists them: name,
    /// state, and whether it is imported.
    pub materials_at_end: Vec<(String, crate::actors::kms::MaterialState, bool)>,
    /// Whether it has had more than one material (see [`Names::several_materials`]): only then
    /// do its materials need telling.
    pub several_materials: bool,
}

/// A resource's first failure during one loss of its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Break {
    /// The key whose refusal it was.
    pub key: Option<KeyIdx>,
    /// When the key became unusable (as the failed call saw it, D13); `None` if it was not.
    pub loss_at: Option<SimTime>,
    /// Whether the key had ever been usable before the break.
    pub key_was_usable: bool,
    pub last_good_use: Option<(SimTime, &'static str)>,
    pub broke_at: SimTime,
    /// The failed operation and its error code.
    pub how: How,
    pub recovered_at: Option<SimTime>,
}

/// A failed operation and its error code: `AttachVolume CustomerKeyHasBeenRevoked`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct How {
    pub action: &'static str,
    pub code: &'static str,
}

impl std::fmt::Display for How {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.action, self.code)
    }
}

impl Break {
    #[must_use]
    pub fn latent_window(&self) -> Option<SimDuration> {
        self.loss_at.map(|l| self.broke_at - l)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceSummary {
    /// The scenario's name for it (an instance's place, whichever instance holds it).
    pub name: Arc<str>,
    pub kind: &'static str,
    pub key: Option<Arc<str>>,
    pub breaks: Vec<Break>,
    pub last_good_use: Option<(SimTime, &'static str)>,
    /// Its standing at the end, from [`standing`](super::standing).
    pub status: Standing,
    /// For a latent or blocked resource: since when its key has been unusable (the verdict's
    /// answer, which every table shows).
    pub unusable_since: Option<SimTime>,
    pub at_end: AtEnd,
}

impl ResourceSummary {
    /// For a latent resource: since when its key has been unusable.
    #[must_use]
    pub fn latent_since(&self) -> Option<SimTime> {
        (self.status == Standing::Latent).then_some(self.unusable_since).flatten()
    }
}

/// A resource's state at the end of the run, worded when shown (a fleet has millions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AtEnd {
    Volume {
        state: Option<&'static str>,
        /// In use: on which instance (its place and life), and whether its host holds the key.
        on: Option<(Arc<str>, u32, bool)>,
    },
    Instance {
        state: Option<InstanceState>,
        place: Arc<str>,
        life: u32,
    },
    /// A snapshot's or an image's state.
    State {
        state: Option<&'static str>,
    },
    Group {
        in_service: u32,
        desired: u32,
    },
}

impl std::fmt::Display for AtEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AtEnd::Volume { on: Some((place, life, in_memory)), .. } => {
                let memory =
                    if *in_memory { "plaintext data key in host memory" } else { "no plaintext data key in memory" };
                write!(f, "in-use on {}, {memory}", crate::run::instance_id(place, *life))
            }
            AtEnd::Volume { state, on: None } | AtEnd::State { state } => f.write_str(state.unwrap_or("not created")),
            AtEnd::Instance { state, place, life } => f.write_str(&super::record::instance_now(place, *state, *life)),
            AtEnd::Group { in_service, desired } => write!(f, "{in_service} of {desired} desired instances in service"),
        }
    }
}

/// What happened to a resource, before any verdict: its breaks and its last good use.
struct History {
    breaks: Vec<Break>,
    last_good: Option<(SimTime, &'static str)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub keys: Vec<KeySummary>,
    /// The volumes, in scenario order, then the instances, the snapshots, the images, the
    /// groups and the other services' resources.
    pub resources: Vec<ResourceSummary>,
    pub end: SimTime,
}

impl Summary {
    /// The summary of the `v`-th volume.
    #[must_use]
    pub fn volume(&self, v: usize) -> &ResourceSummary {
        &self.resources[v]
    }

    /// The summary of the `i`-th instance.
    #[must_use]
    pub fn instance(&self, i: usize, scenario: &crate::scenario::Scenario) -> &ResourceSummary {
        &self.resources[scenario.volumes.len() + i]
    }

    /// The summary of the `x`-th auto scaling group.
    #[must_use]
    pub fn group(&self, x: usize, scenario: &crate::scenario::Scenario) -> &ResourceSummary {
        let s = scenario;
        &self.resources[s.volumes.len() + s.instances.len() + s.snapshots.len() + s.images.len() + x]
    }

    /// The summary of the `x`-th image.
    #[must_use]
    pub fn image(&self, x: usize, scenario: &crate::scenario::Scenario) -> &ResourceSummary {
        &self.resources[scenario.volumes.len() + scenario.instances.len() + scenario.snapshots.len() + x]
    }

    /// The summary of the `x`-th resource of another service.
    #[must_use]
    pub fn service(&self, x: usize, scenario: &crate::scenario::Scenario) -> &ResourceSummary {
        let s = scenario;
        &self.resources[s.volumes.len() + s.instances.len() + s.snapshots.len() + s.images.len() + s.groups.len() + x]
    }

    /// The summary of the `x`-th snapshot.
    #[must_use]
    pub fn snapshot(&self, x: usize, scenario: &crate::scenario::Scenario) -> &ResourceSummary {
        &self.resources[scenario.volumes.len() + scenario.instances.len() + x]
    }
}

/// The summary of a finished run whose records were kept.
#[must_use]
pub fn summarize(run: &Run<'_>) -> Summary {
    let mut fold = SummaryFold::new(run.scenario);
    run.records.iter().for_each(|r| fold.observe(&run.names, r));
    fold.finish(run)
}

/// How a record that caused a key's state change reads, remembered from the record before
/// (KMS records a state change right after what made it, in the same step, or first in a step
/// an input started: see [`SummaryFold::observe`]).
#[derive(Clone, Copy)]
enum CauseWords {
    Call { op: &'static str, caller: Caller },
    Expired,
    Deleted,
    Other(&'static str),
}

/// A key's history so far.
#[derive(Default)]
struct KeyFold {
    changes: Vec<(SimTime, Option<KeyState>, Option<KeyState>, String)>,
    losses: Vec<Loss>,
    materials: Vec<(SimTime, String)>,
}

/// What an EBS or EC2 resource did that worked, as [`good`] indexes it; the other services'
/// follow, as [`crate::actors::service::Effect::Worked`] names them.
const GOOD: [&str; 10] = [
    "CreateVolume",
    "AttachVolume",
    "Read",
    "Write",
    "decrypted at start",
    "running",
    "CreateSnapshot",
    "CopySnapshot",
    "RegisterImage",
    "RunInstances",
];

/// The good uses of the other services' resources, after [`GOOD`].
fn service_good() -> impl Iterator<Item = &'static str> {
    crate::actors::service::event_names().chain(["available again"])
}

/// The index of a kind of good use: volumes' and instances' first (found at once on the path
/// every attach takes), then the other services'.
fn good(what: &'static str) -> u8 {
    let i =
        GOOD.iter().position(|g| *g == what).or_else(|| service_good().position(|g| g == what).map(|i| GOOD.len() + i));
    u8::try_from(i.expect("a kind of good use")).expect("few kinds")
}

/// The kind of good use [`good`] gave index `i`.
fn good_name(i: u8) -> &'static str {
    let i = i as usize;
    GOOD.get(i).copied().unwrap_or_else(|| service_good().nth(i - GOOD.len()).expect("an index good gave"))
}

/// What every good use of a resource touches, kept apart from its history so that a fleet's
/// attaches stay in a small array (16 bytes a resource): its last good use and whether a break
/// is open.
#[derive(Clone, Copy, Default)]
struct Hot {
    last_good_at: SimTime,
    /// 1 + the index [`good`] gives the last good use; 0 for none yet.
    last_good: u8,
    /// A break is open: the next good use closes it.
    open: bool,
}

impl Hot {
    fn last_good(self) -> Option<(SimTime, &'static str)> {
        self.last_good.checked_sub(1).map(|g| (self.last_good_at, good_name(g)))
    }
}

/// A resource's history (its breaks: their loss and whether the key had been usable are read at
/// the end, from the whole key history), touched when it fails or its instance changes state.
#[derive(Default)]
struct Cold {
    breaks: Vec<Break>,
    /// A volume's key; an instance's, the key of the last volume whose data key a start or
    /// launch of it could not decrypt.
    key: Option<KeyIdx>,
    started_by: StartedBy,
}

/// A resource worked at `at` (`what`, a kind [`good`] knows): an open break is closed.
#[inline]
fn worked(hot: &mut [Hot], cold: &mut [Cold], actor: usize, at: SimTime, what: &'static str) {
    let h = &mut hot[actor];
    h.last_good_at = at;
    h.last_good = good(what) + 1;
    if h.open {
        h.open = false;
        if let Some(b) = cold[actor].breaks.last_mut() {
            b.recovered_at = Some(at);
        }
    }
}

/// A failure at `at`: a new break unless one is still open (failures before it works again are
/// one break).
fn failed(hot: &mut Hot, cold: &mut Cold, key: Option<KeyIdx>, at: SimTime, how: How) {
    if hot.open {
        return;
    }
    hot.open = true;
    // Most resources break once: room for one, not the four a first push makes room for.
    if cold.breaks.capacity() == 0 {
        cold.breaks.reserve_exact(1);
    }
    cold.breaks.push(Break {
        key,
        loss_at: None,
        key_was_usable: false,
        last_good_use: hot.last_good(),
        broke_at: at,
        how,
        recovered_at: None,
    });
}

/// The summary as a fold: it reads a run's records in order, as they come, and keeps state per
/// key and per resource only, never per record, so a run of any length can be summarised
/// without keeping its records. [`SummaryFold::finish`] adds what the end of the run says.
pub struct SummaryFold {
    keys: Vec<KeyFold>,
    /// By actor, as the engine lays them out: a fleet's volume beside its instance.
    hot: Vec<Hot>,
    cold: Vec<Cold>,
    /// The previous record, as the cause of a key's state change would read.
    previous: Option<(RecordId, CauseWords)>,
    /// The last KMS refusal that named a key, and when: the key a failure at that instant is
    /// the refusal of (a restore's source may be under another key than what it makes).
    refused: Option<(SimTime, KeyIdx)>,
}

impl SummaryFold {
    #[must_use]
    pub fn new(scenario: &Scenario) -> Self {
        SummaryFold {
            keys: (0..scenario.keys.len()).map(|_| KeyFold::default()).collect(),
            hot: vec![Hot::default(); actor_count(scenario)],
            cold: {
                let mut cold: Vec<Cold> = (0..actor_count(scenario)).map(|_| Cold::default()).collect();
                for (v, decl) in scenario.volumes.iter().enumerate() {
                    cold[volume_actor(scenario, v).index()].key = Some(decl.key);
                }
                for (x, decl) in scenario.snapshots.iter().enumerate() {
                    cold[snapshot_actor(scenario, x).index()].key = Some(decl.key);
                }
                for (x, decl) in scenario.services.iter().enumerate() {
                    cold[service_actor(scenario, x).index()].key = Some(decl.key);
                }
                cold
            },
            previous: None,
            refused: None,
        }
    }

    /// The key KMS refused at `at`, if it refused one then; else `otherwise`.
    fn refused_at(&self, at: SimTime, otherwise: Option<KeyIdx>) -> Option<KeyIdx> {
        match self.refused {
            Some((t, k)) if t == at => Some(k),
            _ => otherwise,
        }
    }

    /// Takes the next record of the run; `names` knows every record until this one. Inline,
    /// as are the paths of an attach's and a detach's records; the rest is out of line.
    #[inline]
    pub fn observe(&mut self, names: &Names<'_>, r: &Record<Obs>) {
        match &r.obs {
            Obs::Kms(k) => {
                // A Decrypt that worked tells the summary nothing but that it happened.
                if !matches!(k, KmsObs::Called { result: Ok(KmsOutput::Decrypted { .. }), .. }) {
                    self.kms(names, r, k);
                }
                // Only KMS's own records precede a key's state change in its step.
                self.previous = Some((
                    r.id,
                    match k {
                        KmsObs::Called { caller, op, .. } => {
                            CauseWords::Call { op: op.operation().as_str(), caller: *caller }
                        }
                        KmsObs::MaterialExpired { .. } => CauseWords::Expired,
                        KmsObs::KeyDeleted { .. } => CauseWords::Deleted,
                        KmsObs::StateChanged { .. } | KmsObs::Rotated { .. } => CauseWords::Other(r.obs.event_name()),
                    },
                ));
            }
            Obs::Volume(o) => self.volume(r, o),
            Obs::Instance(o) => self.instance(r, o),
            Obs::Snapshot(o) => self.snapshot(r, o),
            Obs::Image(o) => self.image(r, o),
            Obs::Group(o) => self.group(r, o),
            Obs::Service(o) => self.service(r, o),
        }
    }

    #[inline(never)]
    fn service(&mut self, r: &Record<Obs>, obs: &ServiceObs) {
        let me = r.actor.index();
        let how = match obs.effect() {
            Some(Effect::Worked(what)) => return worked(&mut self.hot, &mut self.cold, me, r.at, what),
            Some(Effect::Broke { action, code }) => How { action, code },
            None => return,
        };
        let key = self.cold[me].key;
        failed(&mut self.hot[me], &mut self.cold[me], key, r.at, how);
    }

    fn cause_words(&self, names: &Names<'_>, cause: Cause) -> String {
        let Cause::Record(id) = cause else { return "declared in the scenario".to_string() };
        // KMS changes a key's state in the step that made it change, right after recording why.
        let Some((prev, words)) = self.previous.filter(|(prev, _)| *prev == id) else {
            debug_assert!(false, "a key's state changed because of record #{id}, not the one before it");
            return String::new();
        };
        match words {
            CauseWords::Call { op, caller } => format!("{op} {}", caller_words(names, caller, prev)),
            CauseWords::Expired => "material expired at its ValidTo".to_string(),
            CauseWords::Deleted => "waiting period ended".to_string(),
            CauseWords::Other(event) => event.to_string(),
        }
    }

    #[inline(never)]
    fn kms(&mut self, names: &Names<'_>, r: &Record<Obs>, obs: &KmsObs) {
        // Only a refusal of what a service needs a usable key for: a data key, or EC2's grant.
        if let KmsObs::Called { key: Some(k), result: Err(e), op, caller } = obs
            && !matches!(caller, Caller::User)
            && e.exception != crate::actors::kms::KmsException::Throttling
            && (op.operation().is_crypto() || op.operation() == crate::actors::kms::Operation::CreateGrant)
        {
            self.refused = Some((r.at, *k));
        }
        let name = |m: &crate::actors::kms::MaterialId| names.scenario.materials[m.0 as usize].as_str();
        match obs {
            KmsObs::StateChanged { key, from, to } => {
                let why = self.cause_words(names, r.cause);
                let k = &mut self.keys[key.0 as usize];
                if *from == Some(KeyState::Enabled) {
                    k.losses.push(Loss { at: r.at, why: why.clone(), restored_at: None, deleted_at: None });
                }
                if *to == KeyState::Enabled
                    && let Some(open) = k.losses.last_mut().filter(|l| l.restored_at.is_none())
                {
                    open.restored_at = Some(r.at);
                }
                k.changes.push((r.at, *from, Some(*to), why));
            }
            KmsObs::KeyDeleted { key } => {
                let k = &mut self.keys[key.0 as usize];
                if let Some(open) = k.losses.last_mut().filter(|l| l.restored_at.is_none()) {
                    open.deleted_at = Some(r.at);
                }
                let from = k.changes.last().and_then(|c| c.2);
                k.changes.push((r.at, from, None, "waiting period ended".to_string()));
            }
            KmsObs::Called { key: Some(k), result: Ok(out), .. } => {
                let what = match out {
                    KmsOutput::Imported { material, state, .. } => {
                        format!("{} imported, {}", name(material), state.as_str())
                    }
                    KmsOutput::MaterialDeleted { material: Some(m) } => format!("{} deleted", name(m)),
                    _ => return,
                };
                self.keys[k.0 as usize].materials.push((r.at, what));
            }
            KmsObs::MaterialExpired { key, material } => {
                self.keys[key.0 as usize].materials.push((r.at, format!("{} expired", name(material))));
            }
            KmsObs::Rotated { key, from, to: Some(to) } => {
                let what = match from {
                    Some(f) => format!("rotated: {} CURRENT, {} NON_CURRENT", name(to), name(f)),
                    None => format!("rotated: {} CURRENT", name(to)),
                };
                self.keys[key.0 as usize].materials.push((r.at, what));
            }
            KmsObs::Called { .. } | KmsObs::Rotated { .. } => {}
        }
    }

    /// A volume's record: an attach's and a detach's inline, the rest out of line.
    #[inline]
    fn volume(&mut self, r: &Record<Obs>, obs: &VolumeObs) {
        match obs {
            VolumeObs::Attached { .. } => worked(&mut self.hot, &mut self.cold, r.actor.index(), r.at, "AttachVolume"),
            VolumeObs::AttachRequested { .. } | VolumeObs::Detached { .. } => {}
            _ => self.volume_otherwise(r, obs),
        }
    }

    #[inline(never)]
    fn volume_otherwise(&mut self, r: &Record<Obs>, obs: &VolumeObs) {
        let me = r.actor.index();
        let (hot, cold) = (&mut self.hot, &mut self.cold);
        let how = match obs {
            VolumeObs::Created => return worked(hot, cold, me, r.at, "CreateVolume"),
            VolumeObs::Io { kind, result: Ok(()) } => return worked(hot, cold, me, r.at, kind.as_str()),
            VolumeObs::AttachFailed { error, kms: Some(_), .. } => How { action: "AttachVolume", code: error.code },
            VolumeObs::KeyLoadFailed { error, .. } => How { action: "ReattachVolume", code: error.code },
            VolumeObs::CreateFailed { error } => How { action: "CreateVolume", code: error.exception.as_str() },
            _ => return,
        };
        // A restore's refusal may be its snapshot's key's.
        let key = match obs {
            VolumeObs::CreateFailed { .. } => self.refused_at(r.at, self.cold[me].key),
            _ => self.cold[me].key,
        };
        let (hot, cold) = (&mut self.hot, &mut self.cold);
        failed(&mut hot[me], &mut cold[me], key, r.at, how);
        if let VolumeObs::AttachFailed { instance, .. } | VolumeObs::KeyLoadFailed { instance, .. } = obs {
            cold[instance.index()].key = key;
        }
    }

    #[inline(never)]
    fn snapshot(&mut self, r: &Record<Obs>, obs: &SnapshotObs) {
        let me = r.actor.index();
        let (hot, cold) = (&mut self.hot, &mut self.cold);
        let how = match obs {
            SnapshotObs::Created { copy: false } => return worked(hot, cold, me, r.at, "CreateSnapshot"),
            SnapshotObs::Created { copy: true } => return worked(hot, cold, me, r.at, "CopySnapshot"),
            SnapshotObs::Used { what, .. } => return worked(hot, cold, me, r.at, what.action()),
            SnapshotObs::CreateFailed { error } => How { action: "CopySnapshot", code: error.exception.as_str() },
            SnapshotObs::UseFailed { what, exception, .. } => How { action: what.action(), code: exception.as_str() },
            SnapshotObs::Refused { .. } | SnapshotObs::Deleted => return,
        };
        // A copy's refusal may be its source's key's.
        let key = match obs {
            SnapshotObs::CreateFailed { .. } => self.refused_at(r.at, self.cold[me].key),
            _ => self.cold[me].key,
        };
        failed(&mut self.hot[me], &mut self.cold[me], key, r.at, how);
    }

    #[inline(never)]
    fn group(&mut self, r: &Record<Obs>, obs: &GroupObs) {
        let me = r.actor.index();
        match obs {
            GroupObs::Launched { .. } => worked(&mut self.hot, &mut self.cold, me, r.at, "RunInstances"),
            GroupObs::LaunchFailed { by_kms: true, .. } => self.launch_failed(me, r.at),
            // A launch EC2 refused (the image not registered) is no failure of a key.
            GroupObs::Capacity { .. } | GroupObs::DesiredSet { .. } | GroupObs::LaunchFailed { by_kms: false, .. } => {}
        }
    }

    /// A launch from an image (actor `me`'s: the image's or its group's) ended terminated:
    /// a break of the key KMS refused then.
    fn launch_failed(&mut self, me: usize, at: SimTime) {
        if let Some(key) = self.refused_at(at, None) {
            self.cold[me].key = Some(key);
            let how = How { action: "RunInstances", code: crate::actors::ec2::KEY_FAILED_REASON.0 };
            failed(&mut self.hot[me], &mut self.cold[me], Some(key), at, how);
        }
    }

    #[inline(never)]
    fn image(&mut self, r: &Record<Obs>, obs: &ImageObs) {
        let me = r.actor.index();
        match obs {
            ImageObs::Registered => worked(&mut self.hot, &mut self.cold, me, r.at, "RegisterImage"),
            ImageObs::Launched { .. } => worked(&mut self.hot, &mut self.cold, me, r.at, "RunInstances"),
            ImageObs::LaunchFailed { .. } => self.launch_failed(me, r.at),
            ImageObs::Deregistered | ImageObs::Refused { .. } => {}
        }
    }

    /// An instance's record: the host's key cache inline, the rest out of line.
    #[inline]
    fn instance(&mut self, r: &Record<Obs>, obs: &InstanceObs) {
        match obs {
            InstanceObs::DataKeyCached { volume } => {
                worked(&mut self.hot, &mut self.cold, volume.index(), r.at, "decrypted at start");
            }
            InstanceObs::DataKeyEvicted { .. } => {}
            _ => self.instance_otherwise(r, obs),
        }
    }

    #[inline(never)]
    fn instance_otherwise(&mut self, r: &Record<Obs>, obs: &InstanceObs) {
        let me = r.actor.index();
        let failed_start = self.cold[me].started_by.failed(obs);
        if let InstanceObs::StateChanged { to, reason, .. } = obs {
            if let (Some(action), Some((code, _))) = (failed_start, reason) {
                let key = self.refused_at(r.at, self.cold[me].key);
                self.cold[me].key = key;
                failed(&mut self.hot[me], &mut self.cold[me], key, r.at, How { action, code });
            } else if *to == InstanceState::Running {
                worked(&mut self.hot, &mut self.cold, me, r.at, "running");
            }
        }
    }

    /// `actor` will likely record soon: start loading its state (a hint, see
    /// [`crate::engine::Sink::prepare`]).
    #[inline]
    pub fn prepare(&self, actor: ActorId) {
        if let Some(h) = self.hot.get(actor.index()) {
            crate::engine::prefetch(h);
        }
    }

    /// The summary: the histories read, and each resource's standing at the end of `run` (the
    /// run these records came from; its records need not have been kept).
    #[must_use]
    pub fn finish(self, run: &Run<'_>) -> Summary {
        let s = run.scenario;
        let keys: Vec<KeySummary> = self
            .keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| {
                let key = KeyIdx(u32::try_from(i).expect("few keys"));
                KeySummary {
                    key,
                    name: s.key(key).name.as_str().into(),
                    changes: k.changes,
                    losses: k.losses,
                    state_at_end: run.kms().state(key),
                    material_events: k.materials,
                    several_materials: run.names.several_materials(key, RecordId::MAX),
                    materials_at_end: run
                        .kms()
                        .materials(key)
                        .into_iter()
                        .map(|m| (s.materials[m.material.0 as usize].clone(), m.state, m.imported))
                        .collect(),
                }
            })
            .collect();
        let settle = |hot: Hot, cold: Cold| {
            let mut h = History { breaks: cold.breaks, last_good: hot.last_good() };
            for b in &mut h.breaks {
                let k = b.key.map(|k| &keys[k.0 as usize]);
                b.loss_at = k.and_then(|k| loss_at(run, k, b.broke_at)).map(|l| l.at);
                b.key_was_usable = k.is_some_and(|k| was_usable(k, b.broke_at));
            }
            h
        };
        let snap = run.final_snapshot();
        let attached = standing::attachments(run, &snap);
        let mut resources = Vec::with_capacity(s.volumes.len() + s.instances.len());
        let (hot, mut cold) = (self.hot, self.cold);
        let mut take = |a: ActorId| settle(hot[a.index()], std::mem::take(&mut cold[a.index()]));
        for i in 0..s.volumes.len() {
            let history = take(volume_actor(s, i));
            let verdict = standing::of_volume(run, &snap, &keys, i, &history.breaks);
            resources.push(volume_summary(run, i, history, &verdict, &keys));
        }
        for (i, attached) in attached.iter().enumerate() {
            let history = take(instance_actor(s, i));
            let verdict = standing::of_instance(run, &snap, &keys, i, attached, &history.breaks);
            resources.push(instance_summary(run, i, history, &verdict, &keys));
        }
        for x in 0..s.snapshots.len() {
            let history = take(snapshot_actor(s, x));
            let verdict = standing::of_snapshot(run, &snap, &keys, x, &history.breaks);
            let at_end = AtEnd::State { state: run.ebs_snapshot(x).state().map(SnapshotState::as_str) };
            let key = keys[s.snapshots[x].key.0 as usize].name.clone();
            resources.push(resource_summary(
                s.snapshots[x].name.clone(),
                "snapshot",
                Some(key),
                history,
                &verdict,
                at_end,
            ));
        }
        for x in 0..s.images.len() {
            let history = take(image_actor(s, x));
            let verdict = standing::of_image(run, &snap, &keys, x, &history.breaks);
            let at_end = AtEnd::State { state: run.image(x).state().map(ImageState::as_str) };
            let key = verdict.key.or_else(|| history.breaks.last().and_then(|b| b.key));
            let key = key.map(|k| keys[k.0 as usize].name.clone());
            resources.push(resource_summary(s.images[x].name.clone(), "image", key, history, &verdict, at_end));
        }
        for x in 0..s.groups.len() {
            let history = take(group_actor(s, x));
            let verdict = standing::of_group(run, &snap, &keys, x, &history.breaks);
            let g = run.group(x);
            let at_end = AtEnd::Group { in_service: g.in_service(), desired: g.desired() };
            let key = verdict.key.or_else(|| history.breaks.last().and_then(|b| b.key));
            let key = key.map(|k| keys[k.0 as usize].name.clone());
            resources.push(resource_summary(s.groups[x].name.clone(), "group", key, history, &verdict, at_end));
        }
        for x in 0..s.services.len() {
            let history = take(service_actor(s, x));
            let verdict = standing::of_service(run, &snap, &keys, x, &history.breaks);
            let decl = &s.services[x];
            let at_end = AtEnd::State {
                state: Some(run.service(x).state().map_or("not created", |st| decl.kind.state_name(st))),
            };
            let key = Some(keys[decl.key.0 as usize].name.clone());
            resources.push(resource_summary(decl.name.clone(), decl.kind.noun(), key, history, &verdict, at_end));
        }
        Summary { keys, resources, end: run.end }
    }
}

/// The loss a failure at `t` falls in, as the failed call saw the key: D13's propagation delay
/// late.
fn loss_at<'k>(run: &Run<'_>, key: &'k KeySummary, t: SimTime) -> Option<&'k Loss> {
    let seen = t.saturating_sub(run.scenario.kms.kms_propagation_delay);
    key.losses.iter().rev().find(|l| l.at <= seen && l.restored_at.is_none_or(|r| seen < r))
}

/// Whether the key had been Enabled at some point before `t`.
fn was_usable(key: &KeySummary, t: SimTime) -> bool {
    key.changes.iter().any(|(at, _, to, _)| *at <= t && *to == Some(KeyState::Enabled))
}

fn volume_summary(
    run: &Run<'_>,
    i: usize,
    history: History,
    verdict: &standing::Verdict,
    keys: &[KeySummary],
) -> ResourceSummary {
    let v = run.volume(i);
    let on = match v.state() {
        Some(VolumeState::InUse(inst)) => {
            let x = run.names.place(inst);
            Some((run.scenario.instances[x].clone(), run.instance(x).life(), v.key_in_memory()))
        }
        _ => None,
    };
    let at_end = AtEnd::Volume { state: v.state().map(VolumeState::as_str), on };
    let key = &keys[run.scenario.volumes[i].key.0 as usize];
    let name = run.scenario.volumes[i].name.clone();
    resource_summary(name, "volume", Some(key.name.clone()), history, verdict, at_end)
}

/// A resource's summary: its history, and its verdict at the end.
fn resource_summary(
    name: Arc<str>,
    kind: &'static str,
    key: Option<Arc<str>>,
    history: History,
    verdict: &standing::Verdict,
    at_end: AtEnd,
) -> ResourceSummary {
    ResourceSummary {
        name,
        kind,
        key,
        breaks: history.breaks,
        last_good_use: history.last_good,
        status: verdict.standing,
        unusable_since: matches!(verdict.standing, Standing::Latent | Standing::Blocked)
            .then_some(verdict.since)
            .flatten(),
        at_end,
    }
}

/// Reads an instance's own records in order and says what a start that failed was: the user's
/// StartInstances, AWS moving the instance to another host (D5) or auto scaling's launch (D6).
#[derive(Default)]
pub(crate) struct StartedBy(Option<&'static str>);

impl StartedBy {
    /// Takes the instance's next record; for one that ends a start in failure, the action.
    pub(crate) fn failed(&mut self, obs: &InstanceObs) -> Option<&'static str> {
        match obs {
            InstanceObs::HostMaintenance { .. } => self.0 = Some("HostMaintenance"),
            InstanceObs::StateChanged { from: None, to: InstanceState::Pending, .. } => self.0 = Some("RunInstances"),
            InstanceObs::StateChanged { reason: Some(_), .. } => {
                return Some(self.0.take().unwrap_or("StartInstances"));
            }
            InstanceObs::StateChanged { to: InstanceState::Running, .. } => self.0 = None,
            _ => {}
        }
        None
    }
}

fn instance_summary(
    run: &Run<'_>,
    i: usize,
    history: History,
    verdict: &standing::Verdict,
    keys: &[KeySummary],
) -> ResourceSummary {
    let key = verdict.key.or_else(|| history.breaks.last().and_then(|b| b.key));
    let x = run.instance(i);
    let place = run.scenario.instances[i].clone();
    let at_end = AtEnd::Instance { state: x.state(), place: place.clone(), life: x.life() };
    let name = place;
    resource_summary(name, "instance", key.map(|k| keys[k.0 as usize].name.clone()), history, verdict, at_end)
}

/// Tables list at most this many resources one by one: beyond, the ones that matter most.
pub const RESOURCES_SHOWN: usize = 100;

/// The resources a table lists: every one, up to [`RESOURCES_SHOWN`]; beyond, the first
/// [`RESOURCES_SHOWN`] by standing (broken, blocked, latent, recovered, unaffected), each in the
/// scenario's order, and the rest counted in words.
#[must_use]
pub fn shown(summary: &Summary) -> (Vec<&ResourceSummary>, Option<String>) {
    if summary.resources.len() <= RESOURCES_SHOWN {
        return (summary.resources.iter().collect(), None);
    }
    let all = &summary.resources;
    // The gravest first (a stable sort keeps the scenario's order within a standing).
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by_key(|&i| all[i].status);
    let rest = order.split_off(RESOURCES_SHOWN);
    let mut counts: Vec<(Standing, usize)> = Vec::new();
    for &i in &rest {
        match counts.last_mut() {
            Some((st, n)) if *st == all[i].status => *n += 1,
            _ => counts.push((all[i].status, 1)),
        }
    }
    let words: Vec<String> = counts.iter().map(|(st, n)| format!("{n} {}", st.as_str())).collect();
    let left = format!("{} more resources not listed: {}", rest.len(), words.join(", "));
    // Listed in the scenario's order.
    order.sort_unstable();
    (order.into_iter().map(|i| &all[i]).collect(), Some(left))
}
