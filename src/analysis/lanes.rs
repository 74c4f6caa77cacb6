//! The chart's model: per key, resource and instance, what it was doing over time, and when.
//!
//! A pure function of a finished run, kept apart from drawing so that the HTML report, the chart
//! and the tests read the same facts. Volumes combine their own state, the host's key cache and
//! their key's usability into one band per interval; the latent window comes from the summary.

use crate::actors::Obs;
use crate::actors::ebs::VolumeObs;
use crate::actors::ec2::{InstanceObs, InstanceState};
use crate::actors::group::GroupObs;
use crate::actors::kms::{KeyIdx, KeyState, KmsObs, KmsOp, KmsOutput};
use crate::actors::service::Effect;
use crate::actors::snapshot::SnapshotObs;
use crate::engine::{ActorId, Record, RecordId, SimDuration, SimTime};
use crate::run::{Names, Role, Run, role};
use crate::scenario::Scenario;

use super::summary::{StartedBy, Summary};

/// What a lane shows over one interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Band {
    Key(KeyState),
    KeyDeleted,
    /// Attached, plaintext data key in host memory, key usable.
    Working(String),
    /// Attached and running on the cached data key while the key is unusable.
    Latent(String),
    /// Attached to an instance that holds no plaintext key (stopped, or failed to start).
    Idle(String),
    Detached,
    /// Holds no plaintext key and its key is unusable: the next attach or start fails.
    Unusable,
    Instance(InstanceState),
    /// An auto scaling group: instances in service, of the desired capacity.
    Capacity(u32, u32),
    /// A snapshot kept, its key usable.
    Kept,
    /// A snapshot kept while its key cannot decrypt its data key: its next restore or copy fails.
    KeptUnreadable,
    /// Another service's resource in a state (its service's name for it), its key usable.
    Serving(&'static str),
    /// ... its key unusable, and it still works: on a held plaintext, or until its service notices.
    ServingLatent(&'static str),
    /// ... its service marked it as unable to reach its key, or past its deadline.
    Down(&'static str),
}

impl Band {
    /// The legend's name for the band's kind.
    #[must_use]
    pub fn legend(&self) -> &'static str {
        match self {
            Band::Key(s) => s.as_str(),
            Band::KeyDeleted => "key deleted",
            Band::Working(_) => "attached, key in memory",
            Band::Latent(_) => "latent: running on a cached key",
            Band::Idle(_) => "attached, no key in memory",
            Band::Detached => "detached",
            Band::Unusable => "unusable: key unusable",
            Band::Instance(s) => match s {
                InstanceState::Pending => "instance pending",
                InstanceState::Running => "instance running",
                InstanceState::Stopped => "instance stopped",
                InstanceState::Terminated => "instance terminated",
            },
            Band::Capacity(n, d) if n >= d => "group at its desired capacity",
            Band::Capacity(0, _) => "group with no instance in service",
            Band::Capacity(..) => "group below its desired capacity",
            Band::Kept => "snapshot, key usable",
            Band::KeptUnreadable => "snapshot, key unusable: next restore or copy fails",
            Band::Serving(_) => "service resource, key usable",
            Band::ServingLatent(_) => "service resource working, key unusable",
            Band::Down(_) => "service resource inaccessible",
        }
    }

    /// Text drawn inside the band when there is room.
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            Band::Key(s) => s.as_str().to_string(),
            Band::KeyDeleted => "deleted".into(),
            Band::Working(i) => format!("on {i}"),
            Band::Latent(i) => format!("latent on {i}"),
            Band::Idle(i) => format!("on {i}, no key"),
            Band::Detached => "detached".into(),
            Band::Unusable => "unusable".into(),
            Band::Instance(s) => s.as_str().into(),
            Band::Capacity(n, d) => format!("{n}/{d} in service"),
            Band::Kept => "completed".into(),
            // Latent until a restore or copy fails, broken after: the band is the same.
            Band::KeptUnreadable => "cannot be read".into(),
            Band::Serving(st) | Band::Down(st) => (*st).into(),
            Band::ServingLatent(st) => format!("latent: {st}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub from: SimTime,
    pub to: SimTime,
    pub band: Band,
}

/// A failed operation, marked at the instant it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub at: SimTime,
    /// `AttachVolume: CustomerKeyHasBeenRevoked`.
    pub what: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaneKind {
    Key,
    Volume,
    Instance,
    Snapshot,
    Group,
    Service,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lane {
    pub name: String,
    pub kind: LaneKind,
    /// The key a volume or snapshot depends on, for grouping.
    pub key: Option<String>,
    pub segments: Vec<Segment>,
    pub failures: Vec<Failure>,
    /// Latent windows: from the key going away to the break (or the end, if still latent).
    pub latent: Vec<(SimTime, SimTime, bool)>,
}

/// What a vertical marker stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkerKind {
    MaterialDeleted,
    MaterialExpired,
    Reimported,
    Disabled,
    Enabled,
    DeletionScheduled,
    DeletionCancelled,
    KeyDeleted,
    /// New material imported for a rotation, and the rotation.
    Rotation,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    pub at: SimTime,
    pub kind: MarkerKind,
    pub label: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lanes {
    pub end: SimTime,
    /// Keys, each followed by its volumes and snapshots; then the instances. Beyond [`MAX_LANES`] resources,
    /// the keys only.
    pub lanes: Vec<Lane>,
    pub markers: Vec<Marker>,
    /// Beyond [`MAX_LANES`] resources: how many volumes of each key, and how many instances,
    /// were in each kind of band over time.
    pub aggregate: Option<Aggregate>,
}

/// The resources of a big estate counted rather than drawn: under each key that has volumes,
/// its volumes by the kind of band they are in (working, latent, idle, detached, unusable: the
/// chart's stacking order); then the instances by state (running, pending, stopped, terminated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aggregate {
    pub areas: Vec<Area>,
}

/// One counted group of resources, over time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Area {
    /// The key whose volumes these are; `None` for the instances.
    pub key: Option<KeyIdx>,
    pub total: usize,
    /// The counts from each instant on, at most one instant per [`BUCKETS`]th of the run.
    pub series: Vec<(SimTime, [usize; 5])>,
}

/// An instance's state as the aggregate view counts it, in stacking order.
fn instance_kind(state: InstanceState) -> u8 {
    match state {
        InstanceState::Running => 0,
        InstanceState::Pending => 1,
        InstanceState::Stopped => 2,
        InstanceState::Terminated => 3,
    }
}

/// Counts by kind, and their series: one point per bucket of time, the counts at its end.
#[derive(Clone, Default)]
struct Counted {
    counts: [usize; 5],
    series: Vec<(SimTime, [usize; 5])>,
    /// The end of the last point's bucket: a change before it updates that point (which saves
    /// a division per change).
    until: SimTime,
}

impl Counted {
    /// One resource moves from kind `old` to kind `new` at `at`.
    fn change(&mut self, old: Option<u8>, new: Option<u8>, at: SimTime, quantum: SimDuration) {
        if let Some(old) = old {
            self.counts[old as usize] -= 1;
        }
        if let Some(new) = new {
            self.counts[new as usize] += 1;
        }
        match self.series.last_mut() {
            Some(last) if at < self.until => last.1 = self.counts,
            _ => {
                self.series.push((at, self.counts));
                let q = quantum.as_ms();
                self.until = SimTime::from_ms((at.as_ms() / q).saturating_add(1).saturating_mul(q));
            }
        }
    }
}

/// Above this many volume and instance lanes, the chart counts volumes instead of drawing them.
pub const MAX_LANES: usize = 60;

/// The time resolution of what the chart model keeps at scale: a run is cut into this many
/// buckets (about two per pixel of the chart).
pub const BUCKETS: u64 = 2800;

/// A lane keeps every change up to this many segments; beyond, a change shorter than a bucket
/// joins the segment before it, which takes the graver band of the two, so a lane that flaps
/// every millisecond stays a few thousand segments long and shows where it was unusable.
const EXACT_SEGMENTS: usize = 4000;

/// Failed operations a lane keeps to mark (the chart cannot show more).
const FAILURES_KEPT: usize = 1000;

/// Builds the chart's model from a run whose records were kept, and its summary.
#[must_use]
pub fn build(run: &Run<'_>, summary: &Summary) -> Lanes {
    let mut fold = LanesFold::new(run.scenario, run.end);
    run.records.iter().for_each(|r| fold.observe(&run.names, r));
    fold.finish(summary)
}

/// A lane being built: its closed segments and the band open since an instant.
#[derive(Default)]
struct Building {
    segments: Vec<Segment>,
    open: Option<(SimTime, Band)>,
    failures: Vec<Failure>,
}

impl Building {
    /// The band changes to `band` (none: nothing to draw) at `at`.
    fn change(&mut self, at: SimTime, band: Option<Band>, quantum: SimDuration) {
        if self.open.as_ref().map(|(_, b)| b) == band.as_ref() {
            return;
        }
        if let Some((from, b)) = self.open.take()
            && at > from
        {
            let coarse = self.segments.len() >= EXACT_SEGMENTS && at - from < quantum;
            match self.segments.last_mut() {
                Some(last) if last.band == b && last.to == from => last.to = at,
                Some(last) if coarse && last.to == from => {
                    last.to = at;
                    if gravity(&b) > gravity(&last.band) {
                        last.band = b;
                    }
                }
                _ => self.segments.push(Segment { from, to: at, band: b }),
            }
        }
        self.open = band.map(|b| (at, b));
    }

    fn failed(&mut self, at: SimTime, what: impl FnOnce() -> String) {
        if self.failures.len() < FAILURES_KEPT {
            self.failures.push(Failure { at, what: what() });
        }
    }

    fn lane(
        mut self,
        name: String,
        kind: LaneKind,
        key: Option<String>,
        end: SimTime,
        latent: Vec<(SimTime, SimTime, bool)>,
    ) -> Lane {
        self.change(end, None, SimDuration::ZERO);
        Lane { name, kind, key, segments: self.segments, failures: self.failures, latent }
    }
}

/// How grave a band is, for joining short ones: what is unusable shows.
fn gravity(b: &Band) -> u8 {
    match b {
        Band::Unusable | Band::KeyDeleted | Band::Down(_) => 5,
        Band::Latent(_) | Band::KeptUnreadable | Band::ServingLatent(_) => 4,
        Band::Key(k) if *k != KeyState::Enabled => 4,
        Band::Idle(_) | Band::Instance(InstanceState::Terminated) => 3,
        Band::Detached | Band::Instance(InstanceState::Stopped | InstanceState::Pending) => 2,
        _ => 1,
    }
}

/// A volume as the chart sees it.
#[derive(Clone, Copy, Default)]
struct VolumeNow {
    exists: bool,
    /// The instance it is attached to, and the record of the attach (to name the instance then).
    attached: Option<(ActorId, RecordId)>,
    cached: bool,
}

impl VolumeNow {
    /// What a volume's own record changes: whether it exists, and where it is attached.
    fn apply(&mut self, obs: &VolumeObs, id: RecordId) {
        let moved = match obs {
            VolumeObs::Created => {
                self.exists = true;
                true
            }
            VolumeObs::Attached { instance } => {
                self.attached = Some((*instance, id));
                true
            }
            VolumeObs::Detached { .. } => {
                self.attached = None;
                self.cached = false;
                true
            }
            _ => false,
        };
        debug_assert_eq!(moved, Self::moved_by(obs), "moved_by names the records apply reads");
    }

    /// Whether [`VolumeNow::apply`] reads `obs` (the chart's fold skips the others unseen).
    fn moved_by(obs: &VolumeObs) -> bool {
        matches!(obs, VolumeObs::Created | VolumeObs::Attached { .. } | VolumeObs::Detached { .. })
    }

    /// The kind of band the volume is in, if it exists, as [`Aggregate`] counts them.
    fn kind(self, usable: bool) -> Option<u8> {
        match (self.exists, self.attached, self.cached) {
            (false, _, _) => None,
            (true, Some(_), true) => Some(if usable { 0 } else { 1 }),
            (true, _, false) if !usable => Some(4),
            (true, Some(_), false) => Some(2),
            (true, None, _) => Some(3),
        }
    }

    fn band(self, usable: bool, names: &Names<'_>) -> Option<Band> {
        let on = || self.attached.map(|(i, at)| names.at(i, at).into_owned()).unwrap_or_default();
        Some(match self.kind(usable)? {
            0 => Band::Working(on()),
            1 => Band::Latent(on()),
            2 => Band::Idle(on()),
            3 => Band::Detached,
            _ => Band::Unusable,
        })
    }
}

/// The lanes drawn one by one below [`MAX_LANES`] resources.
struct Detail {
    volumes: Vec<Building>,
    /// With what each instance's last start was.
    instances: Vec<(Building, StartedBy)>,
    snapshots: Vec<Building>,
    groups: Vec<Building>,
    services: Vec<Building>,
}

/// The chart's model as a fold over a run's records: state per key, volume and instance, and at
/// scale counts per bucket of time, never per record.
pub struct LanesFold<'s> {
    scenario: &'s Scenario,
    end: SimTime,
    quantum: SimDuration,
    keys: Vec<Building>,
    usable: Vec<bool>,
    /// By volume.
    volumes: Vec<VolumeNow>,
    /// The volumes of each key.
    of_key: Vec<Vec<usize>>,
    /// The snapshots of each key, and whether each snapshot exists.
    snapshots_of_key: Vec<Vec<usize>>,
    snapshots: Vec<bool>,
    /// The other services' resources of each key, and each one's state.
    services_of_key: Vec<Vec<usize>>,
    services: Vec<Option<crate::actors::service::State>>,
    /// Whether each service resource's last use failed because of its key (and none worked since).
    failing: Vec<bool>,
    /// Until when each service resource holds its plaintext data key, as its records tell.
    held_until: Vec<Option<SimTime>>,
    /// Instants at which a resource that works on a held plaintext while its key is unusable
    /// lets it go, its next request then failing (blocked): no record marks them. The earliest
    /// first is `next_lapse`.
    lapses: Vec<(SimTime, usize)>,
    next_lapse: SimTime,
    /// Lanes of volumes and instances (none in the aggregate view).
    detail: Option<Detail>,
    /// In the aggregate view: each volume's kind of band and each instance's state, counted by
    /// key (one per key) and then for the instances.
    kinds: Vec<Option<u8>>,
    instance_kinds: Vec<Option<u8>>,
    counted: Vec<Counted>,
    markers: Vec<Marker>,
    imported: Vec<bool>,
}

impl<'s> LanesFold<'s> {
    #[must_use]
    pub fn new(scenario: &'s Scenario, end: SimTime) -> Self {
        let s = scenario;
        let aggregate = s.volumes.len() + s.instances.len() + s.snapshots.len() + s.services.len() > MAX_LANES;
        let mut of_key = vec![Vec::new(); s.keys.len()];
        for (v, decl) in s.volumes.iter().enumerate() {
            of_key[decl.key.0 as usize].push(v);
        }
        let mut snapshots_of_key = vec![Vec::new(); s.keys.len()];
        for (x, decl) in s.snapshots.iter().enumerate() {
            snapshots_of_key[decl.key.0 as usize].push(x);
        }
        let mut services_of_key = vec![Vec::new(); s.keys.len()];
        for (x, decl) in s.services.iter().enumerate() {
            services_of_key[decl.key.0 as usize].push(x);
        }
        let lanes = |n: usize| (0..n).map(|_| Building::default()).collect();
        let detail = (!aggregate).then(|| Detail {
            volumes: lanes(s.volumes.len()),
            instances: s.instances.iter().map(|_| (Building::default(), StartedBy::default())).collect(),
            snapshots: lanes(s.snapshots.len()),
            groups: lanes(s.groups.len()),
            services: lanes(s.services.len()),
        });
        LanesFold {
            scenario,
            end,
            quantum: SimDuration::from_ms((end.as_ms() / BUCKETS).max(1)),
            keys: s.keys.iter().map(|_| Building::default()).collect(),
            usable: vec![false; s.keys.len()],
            volumes: vec![VolumeNow::default(); s.volumes.len()],
            of_key,
            snapshots_of_key,
            snapshots: vec![false; s.snapshots.len()],
            services_of_key,
            services: vec![None; s.services.len()],
            failing: vec![false; s.services.len()],
            held_until: vec![None; s.services.len()],
            lapses: Vec::new(),
            next_lapse: SimTime::MAX,
            detail,
            kinds: if aggregate { vec![None; s.volumes.len()] } else { Vec::new() },
            instance_kinds: if aggregate { vec![None; s.instances.len()] } else { Vec::new() },
            counted: if aggregate { vec![Counted::default(); s.keys.len() + 1] } else { Vec::new() },
            markers: Vec::new(),
            imported: vec![false; s.keys.len()],
        }
    }

    /// Takes the next record of the run; `names` knows every record until this one.
    #[inline]
    pub fn observe(&mut self, names: &Names<'_>, r: &Record<Obs>) {
        // Most records of a big estate are an attach's or a detach's, counted in the aggregate
        // view: those take a few lines here, and the rest the whole fold out of line.
        if self.detail.is_none() && r.at < self.next_lapse {
            match &r.obs {
                // A Decrypt marks nothing.
                Obs::Kms(KmsObs::Called { op, .. }) if matches!(**op, KmsOp::Decrypt { .. }) => return,
                // Counted, a volume's failures are not marked (the summary counts them).
                Obs::Volume(o) => {
                    if VolumeNow::moved_by(o) {
                        self.volume_now(names, r.actor, r.at, |now| now.apply(o, r.id));
                    }
                    return;
                }
                Obs::Instance(InstanceObs::DataKeyCached { volume }) => {
                    return self.volume_now(names, *volume, r.at, |now| now.cached = true);
                }
                Obs::Instance(InstanceObs::DataKeyEvicted { volume, .. }) => {
                    return self.volume_now(names, *volume, r.at, |now| now.cached = false);
                }
                _ => {}
            }
        }
        self.observe_all(names, r);
    }

    #[inline(never)]
    fn observe_all(&mut self, names: &Names<'_>, r: &Record<Obs>) {
        if r.at >= self.next_lapse {
            self.lapse_until(r.at);
        }
        self.marker(r);
        match &r.obs {
            Obs::Kms(KmsObs::StateChanged { key, to, .. }) => self.key_band(names, *key, r.at, Band::Key(*to)),
            Obs::Kms(KmsObs::KeyDeleted { key }) => self.key_band(names, *key, r.at, Band::KeyDeleted),
            // Images have no lanes of their own: their snapshots and instances show them.
            Obs::Kms(_) | Obs::Image(_) | Obs::Group(GroupObs::Launched { .. } | GroupObs::DesiredSet { .. }) => {}
            Obs::Group(GroupObs::Capacity { in_service, desired }) => {
                let Role::Group(g) = role(self.scenario, r.actor) else { unreachable!("groups record group facts") };
                if let Some(d) = &mut self.detail {
                    d.groups[g].change(r.at, Some(Band::Capacity(*in_service, *desired)), self.quantum);
                }
            }
            Obs::Group(GroupObs::LaunchFailed { instance, by_kms }) => {
                let Role::Group(g) = role(self.scenario, r.actor) else { unreachable!("groups record group facts") };
                let who = names.at(*instance, r.id).into_owned();
                let code =
                    if *by_kms { crate::actors::ec2::KEY_FAILED_REASON.0 } else { crate::actors::image::NOT_FOUND };
                if let Some(d) = &mut self.detail {
                    d.groups[g].failed(r.at, || format!("RunInstances {who}: {code}"));
                }
            }
            Obs::Service(o) => {
                use crate::actors::service::ServiceObs as S;
                let Role::Service(x) = role(self.scenario, r.actor) else {
                    unreachable!("service resources record theirs")
                };
                // Failing from a break until it works again, as the summary reads it.
                match o.effect() {
                    Some(Effect::Worked(_)) => self.failing[x] = false,
                    Some(Effect::Broke { .. }) => self.failing[x] = true,
                    None => {}
                }
                let hold = self.scenario.services[x].policy.hold;
                self.held_until[x] = hold.after(o, r.at, self.held_until[x]);
                match o {
                    S::Created { .. } => self.services[x] = Some(crate::actors::service::State::Available),
                    S::StateChanged { to, .. } => self.services[x] = Some(*to),
                    S::Lifecycle { what, failure: None, .. } => {
                        use crate::actors::service::{Lifecycle, State};
                        self.services[x] =
                            Some(if *what == Lifecycle::Stop { State::Stopped } else { State::Available });
                    }
                    S::CreateFailed { .. } | S::RequestFailed { .. } | S::Lifecycle { .. } => {
                        if let Some(Effect::Broke { action, code }) = o.effect() {
                            self.service_failed(x, r.at, || format!("{action}: {code}"));
                        }
                    }
                    _ => {}
                }
                self.set_service(x, r.at);
            }
            Obs::Snapshot(o) => {
                let Role::Snapshot(x) = role(self.scenario, r.actor) else {
                    unreachable!("snapshots record snapshot facts")
                };
                match o {
                    SnapshotObs::Created { .. } => self.snapshots[x] = true,
                    SnapshotObs::Deleted => self.snapshots[x] = false,
                    SnapshotObs::CreateFailed { error } => {
                        self.snapshot_failed(x, r.at, || format!("CopySnapshot: {}", error.exception.as_str()));
                    }
                    SnapshotObs::UseFailed { what, exception, .. } => {
                        self.snapshot_failed(x, r.at, || format!("{}: {}", what.action(), exception.as_str()));
                    }
                    SnapshotObs::Refused { .. } | SnapshotObs::Used { .. } => {}
                }
                self.set_snapshot(x, r.at);
            }
            Obs::Volume(o) => {
                let Role::Volume(v) = role(self.scenario, r.actor) else { unreachable!("volumes record volume facts") };
                let mut now = self.volumes[v];
                now.apply(o, r.id);
                match o {
                    VolumeObs::CreateFailed { error } => {
                        self.volume_failed(v, r.at, || format!("CreateVolume: {}", error.exception.as_str()));
                    }
                    VolumeObs::AttachFailed { error, .. } => {
                        self.volume_failed(v, r.at, || format!("AttachVolume: {}", error.code));
                    }
                    VolumeObs::KeyLoadFailed { error, .. } => {
                        self.volume_failed(v, r.at, || format!("ReattachVolume: {}", error.code));
                    }
                    VolumeObs::Io { kind, result: Err(f) } => {
                        self.volume_failed(v, r.at, || format!("{}: {f:?}", kind.as_str()));
                    }
                    _ => {}
                }
                self.set_volume(names, v, now, r.at);
            }
            Obs::Instance(InstanceObs::DataKeyCached { volume } | InstanceObs::DataKeyEvicted { volume, .. }) => {
                let cached = matches!(r.obs, Obs::Instance(InstanceObs::DataKeyCached { .. }));
                self.volume_now(names, *volume, r.at, |now| now.cached = cached);
            }
            Obs::Instance(o) => {
                let Role::Instance(i) = role(self.scenario, r.actor) else {
                    unreachable!("instances record instance facts")
                };
                let Some(Detail { instances, .. }) = &mut self.detail else {
                    if let InstanceObs::StateChanged { to, .. } = o {
                        let kind = Some(instance_kind(*to));
                        if kind != self.instance_kinds[i] {
                            let last = self.counted.len() - 1;
                            self.counted[last].change(self.instance_kinds[i], kind, r.at, self.quantum);
                            self.instance_kinds[i] = kind;
                        }
                    }
                    return;
                };
                let (lane, started_by) = &mut instances[i];
                let failed_start = started_by.failed(o);
                match o {
                    InstanceObs::StateChanged { to, reason, .. } => {
                        if let (Some(action), Some((code, _))) = (failed_start, reason) {
                            lane.failed(r.at, || format!("{action}: {code}"));
                        }
                        lane.change(r.at, Some(Band::Instance(*to)), self.quantum);
                    }
                    InstanceObs::Refused { action, error } => {
                        lane.failed(r.at, || format!("{}: {}", action.as_str(), error.code));
                    }
                    _ => {}
                }
            }
        }
    }

    fn volume_failed(&mut self, v: usize, at: SimTime, what: impl FnOnce() -> String) {
        if let Some(d) = &mut self.detail {
            d.volumes[v].failed(at, what);
        }
    }

    fn snapshot_failed(&mut self, x: usize, at: SimTime, what: impl FnOnce() -> String) {
        if let Some(d) = &mut self.detail {
            d.snapshots[x].failed(at, what);
        }
    }

    /// The `x`-th snapshot's band from `at` on, from whether it exists and its key is usable.
    fn set_snapshot(&mut self, x: usize, at: SimTime) {
        let usable = self.usable[self.scenario.snapshots[x].key.0 as usize];
        let band = self.snapshots[x].then_some(if usable { Band::Kept } else { Band::KeptUnreadable });
        if let Some(d) = &mut self.detail {
            d.snapshots[x].change(at, band, self.quantum);
        }
    }

    fn service_failed(&mut self, x: usize, at: SimTime, what: impl FnOnce() -> String) {
        if let Some(d) = &mut self.detail {
            d.services[x].failed(at, what);
        }
    }

    /// The `x`-th service resource's band from `at` on, from its state and its key's.
    fn set_service(&mut self, x: usize, at: SimTime) {
        use crate::actors::service::State;
        let decl = &self.scenario.services[x];
        let usable = self.usable[decl.key.0 as usize];
        let held = self.held_until[x];
        let band = self.services[x].map(|st| {
            let name = decl.kind.state_name(st);
            match st {
                _ if self.failing[x] => Band::Down(name),
                State::Inaccessible | State::Terminal => Band::Down(name),
                // It works until its service notices, or on the plaintext it holds.
                State::Available if !usable && (decl.policy.reaction.is_some() || held.is_some_and(|t| t > at)) => {
                    Band::ServingLatent(name)
                }
                // Nothing held: its next request or start fails (blocked, as a detached volume).
                State::Available | State::Stopped if !usable => Band::Unusable,
                State::Available | State::Stopped => Band::Serving(name),
            }
        });
        let lapse = match band {
            Some(Band::ServingLatent(_)) if decl.policy.reaction.is_none() => held.filter(|t| *t < SimTime::MAX),
            _ => None,
        };
        if let Some(d) = &mut self.detail {
            d.services[x].change(at, band, self.quantum);
            if let Some(t) = lapse {
                self.lapses.push((t, x));
                self.next_lapse = self.next_lapse.min(t);
            }
        }
    }

    /// Each resource whose held plaintext lapsed by `now` takes the band it has without it, from
    /// the instant it lapsed.
    #[cold]
    fn lapse_until(&mut self, now: SimTime) {
        while self.next_lapse <= now {
            let (mut due, later): (Vec<_>, Vec<_>) = self.lapses.drain(..).partition(|(t, _)| *t <= now);
            self.lapses = later;
            due.sort_unstable();
            for (t, x) in due {
                self.set_service(x, t);
            }
            self.next_lapse = self.lapses.iter().map(|(t, _)| *t).min().unwrap_or(SimTime::MAX);
        }
    }

    fn key_band(&mut self, names: &Names<'_>, key: KeyIdx, at: SimTime, band: Band) {
        let k = key.0 as usize;
        let usable = band == Band::Key(KeyState::Enabled);
        self.keys[k].change(at, Some(band), SimDuration::ZERO);
        if usable != self.usable[k] {
            self.usable[k] = usable;
            for i in 0..self.of_key[k].len() {
                let v = self.of_key[k][i];
                self.set_volume(names, v, self.volumes[v], at);
            }
            for i in 0..self.snapshots_of_key[k].len() {
                self.set_snapshot(self.snapshots_of_key[k][i], at);
            }
            for i in 0..self.services_of_key[k].len() {
                self.set_service(self.services_of_key[k][i], at);
            }
        }
    }

    /// The volume `actor` changes as `change` says at `at`.
    #[inline(always)]
    fn volume_now(&mut self, names: &Names<'_>, actor: ActorId, at: SimTime, change: impl FnOnce(&mut VolumeNow)) {
        let Role::Volume(v) = role(self.scenario, actor) else {
            unreachable!("only volumes attach and have keys cached")
        };
        let mut now = self.volumes[v];
        change(&mut now);
        self.set_volume(names, v, now, at);
    }

    /// The `v`-th volume is `now` from `at` on.
    fn set_volume(&mut self, names: &Names<'_>, v: usize, now: VolumeNow, at: SimTime) {
        self.volumes[v] = now;
        let usable = self.usable[self.scenario.volumes[v].key.0 as usize];
        match &mut self.detail {
            Some(d) => d.volumes[v].change(at, now.band(usable, names), self.quantum),
            None => {
                let kind = now.kind(usable);
                if kind == self.kinds[v] {
                    return;
                }
                let k = self.scenario.volumes[v].key.0 as usize;
                self.counted[k].change(self.kinds[v], kind, at, self.quantum);
                self.kinds[v] = kind;
            }
        }
    }

    fn marker(&mut self, r: &Record<Obs>) {
        let s = self.scenario;
        let material = |m: crate::actors::kms::MaterialId| s.materials.get(m.0 as usize).cloned().unwrap_or_default();
        let (kind, label) = match &r.obs {
            Obs::Kms(KmsObs::Called { op, key: Some(k), result: Ok(out), .. }) => {
                let key = &s.key(*k).name;
                match (&**op, out) {
                    (KmsOp::DeleteImportedKeyMaterial { .. }, KmsOutput::MaterialDeleted { material: Some(m) }) => {
                        (MarkerKind::MaterialDeleted, format!("{key}: {} deleted", material(*m)))
                    }
                    (
                        KmsOp::ImportKeyMaterial { material: m, .. },
                        KmsOutput::Imported { state: crate::actors::kms::MaterialState::PendingRotation, .. },
                    ) => (MarkerKind::Rotation, format!("{key}: {} imported for rotation", material(*m))),
                    (KmsOp::RotateKeyOnDemand { .. }, KmsOutput::Rotated { to: Some(m), .. }) => {
                        (MarkerKind::Rotation, format!("{key} rotated to {}", material(*m)))
                    }
                    (KmsOp::ImportKeyMaterial { material: m, .. }, _) => {
                        let first = !self.imported[k.0 as usize];
                        self.imported[k.0 as usize] = true;
                        if first {
                            return;
                        }
                        (MarkerKind::Reimported, format!("{key}: {} reimported", material(*m)))
                    }
                    (KmsOp::DisableKey { .. }, _) => (MarkerKind::Disabled, format!("{key} disabled")),
                    (KmsOp::EnableKey { .. }, _) => (MarkerKind::Enabled, format!("{key} enabled")),
                    (KmsOp::ScheduleKeyDeletion { .. }, _) => {
                        (MarkerKind::DeletionScheduled, format!("{key} deletion scheduled"))
                    }
                    (KmsOp::CancelKeyDeletion { .. }, _) => {
                        (MarkerKind::DeletionCancelled, format!("{key} deletion cancelled"))
                    }
                    _ => return,
                }
            }
            Obs::Kms(KmsObs::MaterialExpired { key, material: m }) => {
                (MarkerKind::MaterialExpired, format!("{}: {} expired", s.key(*key).name, material(*m)))
            }
            Obs::Kms(KmsObs::KeyDeleted { key }) => (MarkerKind::KeyDeleted, format!("{} deleted", s.key(*key).name)),
            _ => return,
        };
        self.markers.push(Marker { at: r.at, kind, label });
    }

    /// The chart's model, with the latent windows from the run's `summary`.
    #[must_use]
    pub fn finish(mut self, summary: &Summary) -> Lanes {
        self.lapse_until(self.end);
        let s = self.scenario;
        let end = self.end;
        let aggregate_view = self.detail.is_none();
        let mut keys: Vec<Option<Building>> = self.keys.into_iter().map(Some).collect();
        let mut lanes = Vec::new();
        let (mut volumes, instances, mut snapshots, groups, mut services) = match self.detail {
            Some(d) => (
                d.volumes.into_iter().map(Some).collect(),
                d.instances,
                d.snapshots.into_iter().map(Some).collect(),
                d.groups,
                d.services.into_iter().map(Some).collect(),
            ),
            None => (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new()),
        };
        for (k, key) in s.keys.iter().enumerate() {
            let lane = keys[k].take().expect("each key once");
            lanes.push(lane.lane(key.name.clone(), LaneKind::Key, None, end, Vec::new()));
            for &v in &self.of_key[k] {
                let Some(lane) = volumes.get_mut(v).and_then(Option::take) else { continue };
                let name = s.volumes[v].name.to_string();
                let latent = latent_windows(summary, &name, end);
                lanes.push(lane.lane(name, LaneKind::Volume, Some(key.name.clone()), end, latent));
            }
            for &x in &self.snapshots_of_key[k] {
                let Some(lane) = snapshots.get_mut(x).and_then(Option::take) else { continue };
                let name = s.snapshots[x].name.to_string();
                let latent = latent_windows(summary, &name, end);
                lanes.push(lane.lane(name, LaneKind::Snapshot, Some(key.name.clone()), end, latent));
            }
            for &x in &self.services_of_key[k] {
                let Some(lane) = services.get_mut(x).and_then(Option::take) else { continue };
                let name = s.services[x].name.to_string();
                let latent = latent_windows(summary, &name, end);
                lanes.push(lane.lane(name, LaneKind::Service, Some(key.name.clone()), end, latent));
            }
        }
        for (i, (lane, _)) in instances.into_iter().enumerate() {
            let name = s.instances[i].to_string();
            let latent = latent_windows(summary, &name, end);
            lanes.push(lane.lane(name, LaneKind::Instance, None, end, latent));
        }
        for (g, lane) in groups.into_iter().enumerate() {
            let name = s.groups[g].name.to_string();
            lanes.push(lane.lane(name, LaneKind::Group, None, end, Vec::new()));
        }
        let aggregate = aggregate_view.then(|| {
            let mut counted = self.counted;
            let instances = counted.pop().expect("the instances' counts come last");
            let mut areas: Vec<Area> = counted
                .into_iter()
                .enumerate()
                .filter(|(k, _)| !self.of_key[*k].is_empty())
                .map(|(k, c)| Area {
                    key: Some(KeyIdx(u32::try_from(k).expect("few keys"))),
                    total: self.of_key[k].len(),
                    series: c.series,
                })
                .collect();
            if !s.instances.is_empty() {
                areas.push(Area { key: None, total: s.instances.len(), series: instances.series });
            }
            Aggregate { areas }
        });
        Lanes { end, lanes, markers: self.markers, aggregate }
    }
}

fn latent_windows(summary: &Summary, name: &str, end: SimTime) -> Vec<(SimTime, SimTime, bool)> {
    let Some(r) = summary.resources.iter().find(|r| *r.name == *name) else { return Vec::new() };
    let mut out: Vec<(SimTime, SimTime, bool)> =
        r.breaks.iter().filter_map(|b| b.loss_at.map(|l| (l, b.broke_at, true))).collect();
    if let Some(since) = r.latent_since() {
        out.push((since, end, false));
    }
    out
}
