//! The one bridge between a [`Scenario`] and the engine: build the actors, give the actions as
//! the run's inputs, run, and hand back the records with the final state of the world.

#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::actors::ebs::{Setup as VolumeSetup, Volume, VolumeMsg, VolumeState};
pub use crate::actors::ec2::instance_id;
use crate::actors::ec2::{ImageLaunch, Instance, InstanceMsg, InstanceObs, InstanceState};
use crate::actors::group::{Group, GroupMsg, PlaceDecl};
use crate::actors::image::{Image, ImageMsg, ImageState};
use crate::actors::kms::{
    Caller, ContextId, Grantee, KeyIdx, KeyState, Kms, KmsMsg, KmsObs, KmsOutput, KmsRequest, MaterialId, MaterialState,
};
use crate::actors::service::Resource;
use crate::actors::snapshot::{Snapshot as EbsSnapshot, SnapshotMsg, SnapshotState, Source};
use crate::actors::{Msg, Obs, World};
use crate::engine::{
    ActorId, Cause, EngineError, Hints, Inputs, Limits, Record, RecordId, RunStats, SimTime, Simulation, Sink,
};
use crate::scenario::{Action, ActionKind, FleetDecl, Scenario, SnapshotOp, SnapshotSource, VolumeOp};

/// Limits a caller may put on a run, and instants at which to take extra snapshots.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub max_events: Option<u64>,
    /// Instants (within the horizon) at which to record a [`Snapshot`] of the world.
    pub probes: Vec<SimTime>,
    /// Records go to the caller's sink only: none is kept and there is no index of them, so a
    /// run of any length takes memory for its actors only. The [`Run`]'s `records` are empty.
    pub stream: bool,
}

/// The state of every key, volume and instance at one instant, after every event at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub at: SimTime,
    /// `None`: not created yet, or deleted.
    pub keys: Vec<Option<KeyState>>,
    /// The materials each key holds imported, in the order they were first imported (its
    /// current, non-current and pending ones).
    pub materials: Vec<Vec<MaterialId>>,
    /// Each key's current material, if it is imported: what a new data key is made with.
    pub current: Vec<Option<MaterialId>>,
    /// Each volume's state and whether its plaintext data key is in host memory.
    pub volumes: Vec<(Option<VolumeState>, bool)>,
    /// Each instance's state, host and life (which launch into its place it is, D6).
    pub instances: Vec<(Option<InstanceState>, u32, u32)>,
    /// Each EBS snapshot's state.
    pub snapshots: Vec<Option<SnapshotState>>,
    /// Each image's state.
    pub images: Vec<Option<ImageState>>,
    /// Each service resource's state, and whether its service holds its plaintext data key.
    pub services: Vec<(Option<crate::actors::service::State>, bool)>,
    /// Each auto scaling group's instances in service and desired capacity.
    pub groups: Vec<(u32, u32)>,
    /// Live grants to instances: (key, instance index).
    pub grants: Vec<(KeyIdx, usize)>,
}

/// A finished run: every record, and the actors as the run left them.
pub struct Run<'s> {
    pub scenario: &'s Scenario,
    pub records: Vec<Record<Obs>>,
    /// The world at each instant a state expectation or a probe looks at, in time order.
    pub snapshots: Vec<Snapshot>,
    pub stats: RunStats,
    /// The instant the run ended: the horizon, or the last event if the queue ran dry first.
    pub end: SimTime,
    sim: Simulation<World>,
    /// Record indices per actor (a volume's list also holds the cache records about it and an
    /// instance's the failed reattaches and attaches of its volumes), and per key: outputs read one
    /// resource's records without scanning the whole run.
    by_actor: Vec<Vec<usize>>,
    by_key: Vec<Vec<usize>>,
    /// Who each actor was at each record.
    pub names: Names<'s>,
}

// Where the bridge puts each declared thing among the engine's actors: KMS (`actors::KMS`), the
// declared instances, the declared volumes, then each fleet instance followed by its own volumes.
// A fleet volume and the instance it attaches to so sit side by side in memory, and every attach
// and detach touches both: fleet-1k 5%, fleet-10k 4% and fleet-1m 3.5% faster than with all the
// instances before all the volumes (fleet-1m's workload at 100k the same).

/// What an actor of the scenario's world is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Kms,
    /// The `i`-th instance of the scenario.
    Instance(usize),
    /// The `i`-th volume of the scenario.
    Volume(usize),
    /// The `i`-th snapshot of the scenario.
    Snapshot(usize),
    /// The `i`-th image of the scenario.
    Image(usize),
    /// The `i`-th auto scaling group of the scenario.
    Group(usize),
    /// The `i`-th resource of another service.
    Service(usize),
}

/// The declared instances, which come first among the scenario's instances.
fn declared_instances(scenario: &Scenario) -> usize {
    scenario.fleets.first().map_or(scenario.instances.len(), |f| f.first_instance)
}

/// The declared volumes, which come first among the scenario's volumes.
fn declared_volumes(scenario: &Scenario) -> usize {
    scenario.fleets.first().map_or(scenario.volumes.len(), |f| f.first_volume)
}

/// A fleet's first actor: everything before its first instance and its first volume comes
/// before it, and KMS.
fn first_actor(fleet: &FleetDecl) -> usize {
    1 + fleet.first_instance + fleet.first_volume
}

/// A fleet's volumes per instance.
fn per(fleet: &FleetDecl) -> usize {
    fleet.per_instance
}

fn actor(index: usize) -> ActorId {
    ActorId(u32::try_from(index).expect("actor count fits u32"))
}

/// How many actors the scenario's world has: KMS, its instances and volumes, its snapshots,
/// images, groups and the other services' resources.
#[must_use]
pub fn actor_count(scenario: &Scenario) -> usize {
    first_service(scenario) + scenario.services.len()
}

/// A generous estimate of the peak memory a run of the scenario takes when no record is kept (as
/// `check` runs it), for running several side by side within a bound. `benches/README.md` gives
/// the figures it rests on: about 970 bytes per actor for a fleet, with the allocator's base.
#[must_use]
pub fn estimated_peak_bytes(scenario: &Scenario) -> u64 {
    const BASE: u64 = 16 << 20;
    const PER_ACTOR: u64 = 1024;
    const PER_ACTION: u64 = 256;
    let (actors, actions) = (actor_count(scenario) as u64, scenario.actions.len() as u64);
    BASE.saturating_add(actors.saturating_mul(PER_ACTOR)).saturating_add(actions.saturating_mul(PER_ACTION))
}

/// The other services' resources come last.
fn first_service(scenario: &Scenario) -> usize {
    first_group(scenario) + scenario.groups.len()
}

/// Actor of the `r`-th resource of another service.
#[must_use]
pub fn service_actor(scenario: &Scenario, r: usize) -> ActorId {
    actor(first_service(scenario) + r)
}

/// The volumes of a fleet on group `decl` whose home is instance `i` (A14).
fn kept_volumes(scenario: &Scenario, decl: &crate::scenario::GroupDecl, i: usize) -> Vec<ActorId> {
    let Some(f) = decl.fleet.map(|f| &scenario.fleets[f]) else { return Vec::new() };
    let first = f.first_volume + (i - f.first_instance) * per(f);
    (first..first + per(f)).map(|v| volume_actor(scenario, v)).collect()
}

/// The groups come after the images.
fn first_group(scenario: &Scenario) -> usize {
    first_image(scenario) + scenario.images.len()
}

/// Actor of the `i`-th auto scaling group.
#[must_use]
pub fn group_actor(scenario: &Scenario, i: usize) -> ActorId {
    actor(first_group(scenario) + i)
}

/// The images come after the snapshots.
fn first_image(scenario: &Scenario) -> usize {
    first_snapshot(scenario) + scenario.snapshots.len()
}

/// Actor of the `i`-th image.
#[must_use]
pub fn image_actor(scenario: &Scenario, i: usize) -> ActorId {
    actor(first_image(scenario) + i)
}

/// The snapshots come after every fleet.
fn first_snapshot(scenario: &Scenario) -> usize {
    1 + scenario.instances.len() + scenario.volumes.len()
}

/// Actor of the `s`-th snapshot.
#[must_use]
pub fn snapshot_actor(scenario: &Scenario, s: usize) -> ActorId {
    actor(first_snapshot(scenario) + s)
}

/// Actor of the `i`-th instance.
#[must_use]
pub fn instance_actor(scenario: &Scenario, i: usize) -> ActorId {
    match scenario.fleets.iter().find(|f| (f.first_instance..f.first_instance + f.instances).contains(&i)) {
        Some(f) => actor(first_actor(f) + (i - f.first_instance) * (1 + per(f))),
        None => actor(1 + i),
    }
}

/// Actor of the `i`-th volume.
#[must_use]
pub fn volume_actor(scenario: &Scenario, i: usize) -> ActorId {
    match scenario.fleets.iter().find(|f| (f.first_volume..f.first_volume + f.volumes).contains(&i)) {
        Some(f) => {
            let (home, nth) = ((i - f.first_volume) / per(f), (i - f.first_volume) % per(f));
            actor(first_actor(f) + home * (1 + per(f)) + 1 + nth)
        }
        None => actor(1 + declared_instances(scenario) + i),
    }
}

/// What actor `id` of the scenario's world is.
#[must_use]
pub fn role(scenario: &Scenario, id: ActorId) -> Role {
    let i = id.index();
    let fleet =
        scenario.fleets.iter().find(|f| (first_actor(f)..first_actor(f) + f.instances + f.volumes).contains(&i));
    match fleet {
        Some(f) => {
            // A fleet's actors are its instances, each followed by its volumes; with one volume
            // each (the common case), halving finds the place without a division.
            let offset = i - first_actor(f);
            let (home, nth) = match per(f) {
                1 => (offset >> 1, offset & 1),
                per => (offset / (1 + per), offset % (1 + per)),
            };
            match nth {
                0 => Role::Instance(f.first_instance + home),
                n => Role::Volume(f.first_volume + home * per(f) + n - 1),
            }
        }
        None if i == 0 => Role::Kms,
        None if i >= first_service(scenario) => Role::Service(i - first_service(scenario)),
        None if i >= first_group(scenario) => Role::Group(i - first_group(scenario)),
        None if i >= first_image(scenario) => Role::Image(i - first_image(scenario)),
        None if i >= first_snapshot(scenario) => Role::Snapshot(i - first_snapshot(scenario)),
        None if i <= declared_instances(scenario) => Role::Instance(i - 1),
        None => Role::Volume(i - 1 - declared_instances(scenario)),
    }
}

/// The name of an actor of the scenario's world: `kms`, an instance id or a volume id.
#[must_use]
pub fn actor_name(scenario: &Scenario, id: ActorId) -> &str {
    role_name(scenario, role(scenario, id))
}

/// The scenario name of the actor in `role`.
fn role_name(scenario: &Scenario, role: Role) -> &str {
    match role {
        Role::Kms => "kms",
        Role::Instance(i) => &scenario.instances[i],
        Role::Volume(v) => &scenario.volumes[v].name,
        Role::Snapshot(x) => &scenario.snapshots[x].name,
        Role::Image(x) => &scenario.images[x].name,
        Role::Group(x) => &scenario.groups[x].name,
        Role::Service(x) => &scenario.services[x].name,
    }
}

/// Who each actor of a run is at a given record: its scenario name, except that an instance
/// auto scaling launched into another's place has an id of its own ([`instance_id`]). Outputs
/// name actors through it; it learns the launches from the records themselves, so a writer
/// that sees the records as they come keeps one up to date with [`Names::observe`].
#[derive(Clone, Debug)]
pub struct Names<'s> {
    pub scenario: &'s Scenario,
    /// Per replaced instance, how many launches by auto scaling into its place so far. Only
    /// replacements count: a fleet of a million that is never replaced costs nothing.
    lives: BTreeMap<ActorId, u32>,
    /// With the run's records kept: each launch's record, per place, so that any record can be
    /// named ([`Names::new`]). Streaming ([`Names::streaming`]), `None`: memory stays the
    /// estate's whatever the number of launches, and a record held back is named by
    /// [`Names::lives_at`] taken when it was seen, or within [`RECENT`] records.
    history: Option<BTreeMap<ActorId, Vec<RecordId>>>,
    /// Streaming: the launches among the last [`RECENT`] records, oldest first.
    recent: std::collections::VecDeque<(RecordId, ActorId)>,
    /// Keys that have had a second material (one imported for a rotation), from that record:
    /// outputs name the material of their cryptographic calls, which for a key of one material
    /// says nothing.
    rotating: BTreeMap<KeyIdx, RecordId>,
    /// Instances launched from their image once already.
    first_launched: std::collections::BTreeSet<ActorId>,
}

/// How far back (in records) a streaming [`Names`] names an instance exactly without a
/// [`Lives`] taken at the record: further than any writer holds a record back.
pub const RECENT: u64 = 100_000;

/// The launch counts of the replaced instances a record names, taken when it was seen: enough
/// to name it later ([`Names::pinned`]).
pub type Lives = smallvec::SmallVec<[(ActorId, u32); 2]>;

impl<'s> Names<'s> {
    /// Names that keep every launch, for a run whose records are kept: any record can be named.
    #[must_use]
    pub fn new(scenario: &'s Scenario) -> Self {
        Names { history: Some(BTreeMap::new()), ..Self::streaming(scenario) }
    }

    /// Names for records seen as they come: the current record, those of the last [`RECENT`],
    /// and any other by the [`Lives`] taken when it was seen.
    #[must_use]
    pub fn streaming(scenario: &'s Scenario) -> Self {
        Names {
            scenario,
            lives: BTreeMap::new(),
            history: None,
            recent: std::collections::VecDeque::new(),
            rotating: BTreeMap::new(),
            first_launched: std::collections::BTreeSet::new(),
        }
    }

    /// Names that name a record whose [`Lives`] were taken when it was seen, as they were then.
    #[must_use]
    pub fn pinned(&self, lives: &Lives) -> Names<'s> {
        // A place's life is the number of its launches at or before the record: as many as its
        // life, all at record 0.
        let history = lives.iter().map(|&(a, life)| (a, vec![0; life as usize])).collect();
        Names { history: Some(history), rotating: self.rotating.clone(), ..Self::streaming(self.scenario) }
    }

    /// The launch counts of the replaced instances `rec` names (its actor among them), now:
    /// to be taken as `rec` is seen, for naming it later.
    #[must_use]
    pub fn lives_at(&self, rec: &Record<Obs>) -> Lives {
        let mut out = Lives::new();
        for a in std::iter::once(rec.actor).chain(rec.obs.instances_named()) {
            let life = self.life(a, rec.id);
            if life > 0 && !out.iter().any(|(b, _)| *b == a) {
                out.push((a, life));
            }
        }
        out
    }

    /// Learns from `rec` (records must come in order): a launch by auto scaling is the state
    /// change of an instance that comes from no state into pending (one the scenario runs
    /// starts running at once).
    #[inline]
    pub fn observe(&mut self, rec: &Record<Obs>) {
        match &rec.obs {
            Obs::Instance(InstanceObs::StateChanged { from: None, to: InstanceState::Pending, .. }) => {
                self.launched(rec.actor, rec.id);
            }
            Obs::Kms(KmsObs::Called {
                key: Some(k),
                result: Ok(KmsOutput::Imported { state: MaterialState::PendingRotation, .. }),
                ..
            }) => {
                self.rotating.entry(*k).or_insert(rec.id);
            }
            _ => {}
        }
    }

    /// `observe` of the launch of instance `actor` at record `id`: out of line, as few records
    /// are one.
    #[inline(never)]
    fn launched(&mut self, actor: ActorId, id: RecordId) {
        // The first launch of an instance from its image is its first life; the launches into
        // its place after it (by its group) are new instances, as auto scaling's are.
        let from_image =
            matches!(role(self.scenario, actor), Role::Instance(i) if self.scenario.launches.contains_key(&i));
        if from_image && self.first_launched.insert(actor) {
            return;
        }
        *self.lives.entry(actor).or_default() += 1;
        match &mut self.history {
            Some(h) => h.entry(actor).or_default().push(id),
            None => {
                self.recent.push_back((id, actor));
                while self.recent.front().is_some_and(|(r, _)| r + RECENT < id) {
                    self.recent.pop_front();
                }
            }
        }
    }

    /// Whether `key` has had more than one material by record `at`.
    #[must_use]
    pub fn several_materials(&self, key: KeyIdx, at: RecordId) -> bool {
        self.rotating.get(&key).is_some_and(|&since| since <= at)
    }

    /// Which launch into its place instance actor `id` is at record `at` (0 for non-instances).
    #[must_use]
    pub fn life(&self, id: ActorId, at: RecordId) -> u32 {
        match &self.history {
            // Most estates never replace an instance: every actor is in its first life.
            None if self.lives.is_empty() => 0,
            Some(h) => h.get(&id).map_or(0, |l| u32::try_from(l.partition_point(|&r| r <= at)).unwrap_or(u32::MAX)),
            None => {
                let now = self.lives.get(&id).copied().unwrap_or(0);
                let since = self.recent.iter().rev().take_while(|(r, _)| *r > at).filter(|(_, a)| *a == id).count();
                now - u32::try_from(since).unwrap_or(u32::MAX).min(now)
            }
        }
    }

    /// The name of actor `id` at record `at`: `kms`, a volume id, or the id of the instance in
    /// that place then.
    #[must_use]
    pub fn at(&self, id: ActorId, at: RecordId) -> Cow<'s, str> {
        match role(self.scenario, id) {
            Role::Instance(i) => instance_id(&self.scenario.instances[i], self.life(id, at)),
            other => Cow::Borrowed(role_name(self.scenario, other)),
        }
    }

    /// The place (scenario instance index) of instance actor `id`.
    #[must_use]
    pub fn place(&self, id: ActorId) -> usize {
        match role(self.scenario, id) {
            Role::Instance(i) => i,
            other => panic!("actor {id:?} is not an instance but {other:?}"),
        }
    }
}

/// Sees a run's records as they are made, with the [`Names`] they are made under: what the
/// run layer offers an analysis, so that it need not learn the names a second time. Each
/// record is first seen, then taken.
pub trait Observer {
    /// Looks at `rec`.
    fn see(&mut self, names: &Names<'_>, rec: &Record<Obs>);

    /// Takes `rec` once seen: to pass it on (to a trace writer), or, by default, to let it go.
    /// Apart from `see` so that an observer that only looks costs no copy of the record.
    #[inline(always)]
    fn take(&mut self, names: &Names<'_>, rec: Record<Obs>) {
        let _ = names;
        let_go(rec);
    }

    /// Whether `take` would do more than the default now (an observer that overrides `take`
    /// says when): when not, the run lets each record go itself, where it has it, since
    /// handing it to `take` would copy it.
    #[inline(always)]
    fn takes(&self) -> bool {
        true
    }

    /// As [`Sink::prepare`].
    fn prepare(&self, actor: ActorId) {
        let _ = actor;
    }
}

/// Drops a record. Most records own nothing, and forgetting one is dropping it without the
/// drop code of every kind of record that does (see [`Obs::owns_nothing`]): a fifth of the
/// cost of a record when millions go by.
#[inline(always)]
pub fn let_go(rec: Record<Obs>) {
    if rec.obs.owns_nothing() {
        std::mem::forget(rec);
    }
}

/// No observer: a streaming run with nobody watching learns its names and lets each record go.
struct Unobserved;

impl Observer for Unobserved {
    fn see(&mut self, _names: &Names<'_>, _rec: &Record<Obs>) {}

    fn takes(&self) -> bool {
        false
    }
}

/// An engine sink as an observer: it needs no names.
struct Plain<'a>(&'a mut dyn Sink<Obs>);

impl Observer for Plain<'_> {
    fn see(&mut self, _names: &Names<'_>, _rec: &Record<Obs>) {}

    fn take(&mut self, _names: &Names<'_>, rec: Record<Obs>) {
        self.0.record(rec);
    }

    fn prepare(&self, actor: ActorId) {
        self.0.prepare(actor);
    }
}

/// Builds the world of a scenario and runs it to its horizon. Records also go to `extra`, if
/// given, as they are made (a streaming trace, for instance).
pub fn run<'s>(
    scenario: &'s Scenario,
    options: &RunOptions,
    extra: Option<&mut dyn Sink<Obs>>,
) -> Result<Run<'s>, EngineError> {
    run_observed(scenario, options, extra.map(Plain).as_mut())
}

/// [`run`], its records going to the observer `extra` with their names.
pub fn run_observed<'s, X: Observer>(
    scenario: &'s Scenario,
    options: &RunOptions,
    extra: Option<&mut X>,
) -> Result<Run<'s>, EngineError> {
    prepare(scenario).run(options, extra)
}

/// A scenario's world built and ready to run ([`prepare`]): the building apart from the run, so
/// that `kmsim bench` can time the two apart.
pub struct Prepared<'s> {
    scenario: &'s Scenario,
    sim: Simulation<World>,
    inputs: ScenarioInputs<'s>,
}

/// Builds the world of `scenario` ([`build`]), to run it with [`Prepared::run`].
#[must_use]
pub fn prepare(scenario: &Scenario) -> Prepared<'_> {
    let (sim, inputs) = build(scenario);
    Prepared { scenario, sim, inputs }
}

impl<'s> Prepared<'s> {
    /// The one pass every command makes over a run: it runs the world to the scenario's
    /// horizon, taking its snapshots at the probes on the way, and hands each record with its
    /// names to `extra`, if given (the folds a command needs). Generic, so that the observer's
    /// `see` and `take` are called directly from the run's own sink (the engine calls that one
    /// through a pointer, once per record).
    pub fn run<X: Observer>(self, options: &RunOptions, mut extra: Option<&mut X>) -> Result<Run<'s>, EngineError> {
        let Prepared { scenario, mut sim, mut inputs } = self;
        let mut records = Vec::new();
        let mut probes: Vec<SimTime> = scenario.expectations.iter().filter_map(|e| e.expect.probe()).collect();
        probes.extend(options.probes.iter().copied());
        probes.sort_unstable();
        probes.dedup();
        let mut snapshots = Vec::with_capacity(probes.len());
        let mut names = if options.stream { Names::streaming(scenario) } else { Names::new(scenario) };
        // The engine pauses at each probe and resumes: the order of events is unchanged.
        let mut last_event_at = SimTime::ZERO;
        let mut events = 0;
        let mut records_made = 0;
        let mut stopped_at_horizon = false;
        for (leg, horizon) in probes.iter().copied().chain([scenario.horizon]).enumerate() {
            let limits = Limits { horizon, max_events: options.max_events };
            let s = match (options.stream, &mut extra) {
                (true, Some(extra)) => {
                    sim.run_with(limits, &mut inputs, &mut Stream { names: &mut names, extra: &mut **extra }, &Estate)
                }
                (true, None) => sim.run_with(
                    limits,
                    &mut inputs,
                    &mut Stream { names: &mut names, extra: &mut Unobserved },
                    &Estate,
                ),
                (false, extra) => {
                    let tee = &mut Tee { names: &mut names, keep: &mut records, extra: extra.as_deref_mut() };
                    sim.run_with(limits, &mut inputs, tee, &Estate)
                }
            }?;
            if s.events > events {
                last_event_at = s.last_event_at;
            }
            events = s.events;
            records_made += s.records;
            stopped_at_horizon = s.stopped_at_horizon;
            if leg < probes.len() {
                snapshots.push(snapshot(&sim, scenario, horizon));
            }
        }
        let stats = RunStats { events, records: records_made, last_event_at, stopped_at_horizon };
        let (by_actor, by_key) = if options.stream {
            (Vec::new(), Vec::new())
        } else {
            index(&records, sim.names().len(), scenario.keys.len())
        };
        Ok(Run { scenario, records, snapshots, stats, end: scenario.horizon, sim, by_actor, by_key, names })
    }
}

fn index(records: &[Record<Obs>], actors: usize, keys: usize) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
    use crate::actors::ebs::VolumeObs;
    use crate::actors::ec2::InstanceObs;
    let mut by_actor = vec![Vec::new(); actors];
    let mut by_key = vec![Vec::new(); keys];
    for (i, r) in records.iter().enumerate() {
        by_actor[r.actor.index()].push(i);
        match &r.obs {
            Obs::Instance(InstanceObs::DataKeyCached { volume } | InstanceObs::DataKeyEvicted { volume, .. }) => {
                by_actor[volume.index()].push(i);
            }
            // An instance's list holds the refusals that failed its start or launch.
            Obs::Volume(
                VolumeObs::KeyLoadFailed { instance, .. } | VolumeObs::AttachFailed { instance, kms: Some(_), .. },
            ) => by_actor[instance.index()].push(i),
            Obs::Kms(
                KmsObs::Called { key: Some(k), .. }
                | KmsObs::StateChanged { key: k, .. }
                | KmsObs::MaterialExpired { key: k, .. }
                | KmsObs::KeyDeleted { key: k },
            ) => by_key[k.0 as usize].push(i),
            _ => {}
        }
    }
    (by_actor, by_key)
}

fn snapshot(sim: &Simulation<World>, scenario: &Scenario, at: SimTime) -> Snapshot {
    let World::Kms(kms) = sim.actor(crate::actors::KMS) else { unreachable!("actor 0 is KMS") };
    let key_ids = (0..scenario.keys.len()).map(|k| KeyIdx(u32::try_from(k).expect("few keys")));
    let keys = key_ids.clone().map(|k| kms.state(k)).collect();
    let current = key_ids.clone().map(|k| kms.material(k)).collect();
    let materials =
        key_ids.map(|k| kms.materials(k).into_iter().filter(|m| m.imported).map(|m| m.material).collect()).collect();
    let grants = kms
        .live_grants()
        .filter_map(|(k, grantee, _)| match grantee {
            Grantee::Instance(a) => match role(scenario, *a) {
                Role::Instance(i) => Some((k, i)),
                _ => None,
            },
            Grantee::Principal(_) => None,
        })
        .collect();
    let volumes = (0..scenario.volumes.len())
        .map(|v| match sim.actor(volume_actor(scenario, v)) {
            World::Volume(v) => (v.state(), v.key_in_memory()),
            _ => unreachable!("volume_actor names a volume"),
        })
        .collect();
    let instances = (0..scenario.instances.len())
        .map(|i| match sim.actor(instance_actor(scenario, i)) {
            World::Instance(x) => (x.state(), x.host(), x.life()),
            _ => unreachable!("instance_actor names an instance"),
        })
        .collect();
    let snapshots = (0..scenario.snapshots.len())
        .map(|x| match sim.actor(snapshot_actor(scenario, x)) {
            World::Snapshot(x) => x.state(),
            _ => unreachable!("snapshot_actor names a snapshot"),
        })
        .collect();
    let images = (0..scenario.images.len())
        .map(|x| match sim.actor(image_actor(scenario, x)) {
            World::Image(x) => x.state(),
            _ => unreachable!("image_actor names an image"),
        })
        .collect();
    let services = (0..scenario.services.len())
        .map(|x| match sim.actor(service_actor(scenario, x)) {
            World::Service(r) => (r.state(), r.holds_key(at)),
            _ => unreachable!("service_actor names a service resource"),
        })
        .collect();
    let groups = (0..scenario.groups.len())
        .map(|x| match sim.actor(group_actor(scenario, x)) {
            World::Group(g) => (g.in_service(), g.desired()),
            _ => unreachable!("group_actor names a group"),
        })
        .collect();
    Snapshot { at, keys, materials, current, volumes, instances, grants, snapshots, images, services, groups }
}

/// The run's sink when it keeps its records (tests, and a run whose records are read again):
/// it learns the names, keeps each record, and shows it to the caller's observer, if any.
struct Tee<'a, 's, X> {
    names: &'a mut Names<'s>,
    keep: &'a mut Vec<Record<Obs>>,
    extra: Option<&'a mut X>,
}

impl<X: Observer> Sink<Obs> for Tee<'_, '_, X> {
    fn record(&mut self, rec: Record<Obs>) {
        self.names.observe(&rec);
        if let Some(extra) = &mut self.extra {
            extra.see(self.names, &rec);
            if extra.takes() {
                extra.take(self.names, rec.clone());
            }
        }
        self.keep.push(rec);
    }

    fn prepare(&self, actor: ActorId) {
        if let Some(extra) = &self.extra {
            extra.prepare(actor);
        }
    }
}

/// The run's sink when it keeps no records (every command's): the names, then the observer.
struct Stream<'a, 's, X> {
    names: &'a mut Names<'s>,
    extra: &'a mut X,
}

impl<X: Observer> Sink<Obs> for Stream<'_, '_, X> {
    fn record(&mut self, rec: Record<Obs>) {
        self.names.observe(&rec);
        self.extra.see(self.names, &rec);
        if self.extra.takes() {
            self.extra.take(self.names, rec);
        } else if rec.obs.owns_nothing() {
            // `let_go`, written where the record is: a call would copy it first.
            std::mem::forget(rec);
        }
    }

    fn prepare(&self, actor: ActorId) {
        self.extra.prepare(actor);
    }
}

/// What the run layer knows of where the estate's actors go next, for the engine's look-ahead:
/// a volume's next step calls its instance (the one it is attached or attaching to, else the
/// one its cycle attaches it to), and KMS about that instance's grants.
pub struct Estate;

impl Hints<World> for Estate {
    fn likely_calls(&self, actor: &World) -> [Option<(ActorId, Option<u32>)>; 2] {
        let World::Volume(v) = actor else { return [None, None] };
        let instance = match v.state() {
            Some(VolumeState::InUse(i) | VolumeState::Attaching(i)) => Some(i),
            _ => v.home(),
        };
        match instance {
            Some(i) => [Some((i, None)), Some((v.kms(), Some(i.0)))],
            None => [None, None],
        }
    }

    fn prepare(&self, callee: &World, instance: u32) {
        if let World::Kms(kms) = callee
            && let Some(grants) = kms.grants_of(ActorId(instance))
        {
            crate::engine::prefetch(grants);
        }
    }
}

/// The (volume, snapshot) actors of each block-device mapping the launch of instance `i` from
/// its image makes.
fn launch_mappings(scenario: &Scenario, i: usize) -> Vec<(ActorId, ActorId)> {
    let launch = &scenario.launches[&i];
    let snapshots = &scenario.images[launch.image].snapshots;
    launch
        .volumes
        .iter()
        .zip(snapshots)
        .map(|(&v, &x)| (volume_actor(scenario, v), snapshot_actor(scenario, x)))
        .collect()
}

/// The world of a scenario, ready to run: its actors, and its actions as the run's inputs.
#[must_use]
pub fn build(scenario: &Scenario) -> (Simulation<World>, ScenarioInputs<'_>) {
    let mut sim = Simulation::new(scenario.seed);
    sim.reserve(actor_count(scenario));
    let specs = scenario.keys.iter().map(|k| k.spec.clone()).collect();
    let mut service = Kms::new(scenario.kms, specs);
    if let Some(last) = (0..scenario.instances.len()).map(|i| instance_actor(scenario, i)).max() {
        service.expect_instances_up_to(last);
    }
    for (r, decl) in scenario.services.iter().enumerate() {
        if decl.policy.reaction.is_some() {
            service.watch(decl.key, service_actor(scenario, r));
        }
    }
    let kms = sim.add_actor("kms", World::Kms(Box::new(service)));
    debug_assert_eq!(kms, crate::actors::KMS);
    // Fleet instances follow their fleet's cycle; they come after the declared instances.
    let declared = scenario.instances.len() - scenario.fleets.iter().map(|f| f.instances).sum::<usize>();
    let mut fleet_of = Vec::with_capacity(scenario.instances.len());
    fleet_of.resize(declared, None);
    for f in &scenario.fleets {
        fleet_of.extend(std::iter::repeat_n(f.instance_cycle.clone(), f.instances));
    }
    let latency = Arc::new(scenario.kms_latency.clone());
    let setup = Arc::new(VolumeSetup { latency: scenario.kms_latency.clone(), cycle: None });
    let fleet_setups: Vec<Arc<VolumeSetup>> = scenario
        .fleets
        .iter()
        .map(|f| Arc::new(VolumeSetup { latency: scenario.kms_latency.clone(), cycle: Some((*f.cycle).clone()) }))
        .collect();
    let add_instance = |sim: &mut Simulation<World>, i: usize| {
        let mut instance = Instance::new(1);
        if let Some(cycle) = fleet_of[i].clone() {
            instance = instance.cycling(cycle);
        }
        let id = sim.add_actor(scenario.instances[i].clone(), World::Instance(instance));
        debug_assert_eq!(id, instance_actor(scenario, i));
    };
    let add_volume = |sim: &mut Simulation<World>, i: usize| {
        let v = &scenario.volumes[i];
        let context = ContextId(u32::try_from(i).expect("volume count fits u32"));
        let volume = match v.fleet() {
            Some((f, home)) => {
                Volume::new(context, v.key, fleet_setups[f].clone()).cycling(instance_actor(scenario, home))
            }
            None => Volume::new(context, v.key, setup.clone()),
        };
        let id = sim.add_actor(v.name.clone(), World::Volume(volume));
        debug_assert_eq!(id, volume_actor(scenario, i));
    };
    (0..declared_instances(scenario)).for_each(|i| add_instance(&mut sim, i));
    (0..declared_volumes(scenario)).for_each(|v| add_volume(&mut sim, v));
    for f in &scenario.fleets {
        for home in 0..f.instances {
            add_instance(&mut sim, f.first_instance + home);
            (0..per(f)).for_each(|nth| add_volume(&mut sim, f.first_volume + home * per(f) + nth));
        }
    }
    for (x, decl) in scenario.snapshots.iter().enumerate() {
        let source = match decl.source {
            SnapshotSource::Volume(v) => Source::Volume(volume_actor(scenario, v)),
            SnapshotSource::Copy(from) => Source::Copy(snapshot_actor(scenario, from)),
        };
        let snapshot = EbsSnapshot::new(scenario.snapshot_context(x), kms, decl.key, source, latency.clone());
        let id = sim.add_actor(decl.name.clone(), World::Snapshot(Box::new(snapshot)));
        debug_assert_eq!(id, snapshot_actor(scenario, x));
    }
    for (x, decl) in scenario.images.iter().enumerate() {
        let snapshots = decl.snapshots.iter().map(|&s| snapshot_actor(scenario, s)).collect();
        let id = sim.add_actor(decl.name.clone(), World::Image(Image::new(snapshots)));
        debug_assert_eq!(id, image_actor(scenario, x));
    }
    for (x, decl) in scenario.groups.iter().enumerate() {
        let places = decl
            .places
            .iter()
            .map(|&i| PlaceDecl {
                instance: instance_actor(scenario, i),
                volumes: launch_mappings(scenario, i),
                kept: kept_volumes(scenario, decl, i),
            })
            .collect();
        let group = Group::new(image_actor(scenario, decl.image), places, decl.replace_every.clone(), decl.cooldown);
        let id = sim.add_actor(decl.name.clone(), World::Group(Box::new(group)));
        debug_assert_eq!(id, group_actor(scenario, x));
    }
    for (x, decl) in scenario.services.iter().enumerate() {
        let r =
            Resource::new(decl.kind, decl.policy, kms, decl.key, scenario.service_context(x), decl.requests.clone());
        let id = sim.add_actor(decl.name.clone(), World::Service(Box::new(r)));
        debug_assert_eq!(id, service_actor(scenario, x));
    }
    (sim, ScenarioInputs::new(scenario))
}

/// A scenario's actions as a run's inputs, in the order they are due, each made into a message
/// when taken.
pub struct ScenarioInputs<'s> {
    scenario: &'s Scenario,
    next: Option<(usize, Cow<'s, Action>)>,
    rest: Box<dyn Iterator<Item = (usize, Cow<'s, Action>)> + 's>,
}

impl<'s> ScenarioInputs<'s> {
    fn new(scenario: &'s Scenario) -> Self {
        let mut rest = Box::new(scenario.actions.by_time());
        ScenarioInputs { scenario, next: rest.next(), rest }
    }
}

impl Inputs<Msg> for ScenarioInputs<'_> {
    fn next_at(&self) -> Option<SimTime> {
        self.next.as_ref().map(|(_, action)| action.at)
    }

    fn take(&mut self) -> Option<(ActorId, Msg, Cause)> {
        let (i, action) = std::mem::replace(&mut self.next, self.rest.next())?;
        let (to, msg) = message(self.scenario, &action.what);
        Some((to, msg, Cause::Input(u32::try_from(i).expect("action count fits u32"))))
    }
}

/// To whom an action goes, and as what message.
fn message(scenario: &Scenario, what: &ActionKind) -> (ActorId, Msg) {
    let kms = crate::actors::KMS;
    match what {
        ActionKind::CreateKey(k) => (kms, Msg::Kms(KmsMsg::CreateKey(*k))),
        ActionKind::RunInstance(i) => (instance_actor(scenario, *i), Msg::Instance(InstanceMsg::Run)),
        ActionKind::Kms(op) => {
            let request = KmsRequest { caller: Caller::User, op: op.clone() };
            (kms, Msg::Kms(KmsMsg::Request(request)))
        }
        ActionKind::Instance { instance, op } => {
            (instance_actor(scenario, *instance), Msg::Instance(InstanceMsg::Do(*op)))
        }
        ActionKind::Volume { volume, op } => {
            let msg = match *op {
                VolumeOp::Create => match scenario.volumes[*volume].snapshot() {
                    Some(x) => VolumeMsg::Restore { from: snapshot_actor(scenario, x) },
                    None => VolumeMsg::Create,
                },
                VolumeOp::Attach { instance } => VolumeMsg::Attach { instance: instance_actor(scenario, instance) },
                VolumeOp::Detach => VolumeMsg::Detach,
                VolumeOp::Io(kind) => VolumeMsg::Io(kind),
                VolumeOp::IoLoad { kind, every, until } => VolumeMsg::IoLoad { kind, every, until },
            };
            (volume_actor(scenario, *volume), Msg::Volume(msg))
        }
        ActionKind::Snapshot { snapshot, op } => {
            let msg = match op {
                SnapshotOp::Create => SnapshotMsg::Create,
                SnapshotOp::Delete => SnapshotMsg::Delete,
            };
            (snapshot_actor(scenario, *snapshot), Msg::Snapshot(msg))
        }
        ActionKind::Image { image, register } => {
            let msg = if *register { ImageMsg::Register } else { ImageMsg::Deregister };
            (image_actor(scenario, *image), Msg::Image(msg))
        }
        ActionKind::LaunchFromImage(i) => {
            let image = image_actor(scenario, scenario.launches[i].image);
            let volumes = launch_mappings(scenario, *i);
            let msg = InstanceMsg::LaunchFromImage(Box::new(ImageLaunch { image, volumes, group: None }));
            (instance_actor(scenario, *i), Msg::Instance(msg))
        }
        ActionKind::GroupReplace { group, instance } => (
            group_actor(scenario, *group),
            Msg::Group(GroupMsg::Replace { instance: instance_actor(scenario, *instance) }),
        ),
        ActionKind::Group { group, desired } => {
            (group_actor(scenario, *group), Msg::Group(GroupMsg::SetDesired(*desired)))
        }
        ActionKind::Service { resource, op } => (service_actor(scenario, *resource), Msg::Service(*op)),
    }
}

impl Run<'_> {
    /// The material the data key of the `v`-th volume was encrypted with (fixed once created).
    #[must_use]
    pub fn data_key_material(&self, v: usize) -> Option<MaterialId> {
        self.volume(v).data_key_material()
    }

    /// The world as the run left it, at its end.
    #[must_use]
    pub fn final_snapshot(&self) -> Snapshot {
        snapshot(&self.sim, self.scenario, self.end)
    }

    /// The world as it was at `at`, if the run took a snapshot then.
    #[must_use]
    pub fn snapshot_at(&self, at: SimTime) -> Option<&Snapshot> {
        self.snapshots.iter().find(|s| s.at == at)
    }

    /// The `x`-th resource of another service, as the run left it.
    #[must_use]
    pub fn service(&self, x: usize) -> &Resource {
        match self.sim.actor(service_actor(self.scenario, x)) {
            World::Service(r) => r,
            _ => unreachable!("service_actor names a service resource"),
        }
    }

    #[must_use]
    pub fn kms(&self) -> &Kms {
        match self.sim.actor(crate::actors::KMS) {
            World::Kms(k) => k,
            _ => unreachable!("actor 0 is KMS"),
        }
    }

    #[must_use]
    pub fn volume(&self, i: usize) -> &Volume {
        match self.sim.actor(volume_actor(self.scenario, i)) {
            World::Volume(v) => v,
            _ => unreachable!("volume_actor names a volume"),
        }
    }

    /// The `x`-th auto scaling group actor.
    #[must_use]
    pub fn group(&self, x: usize) -> &Group {
        match self.sim.actor(group_actor(self.scenario, x)) {
            World::Group(g) => g,
            _ => unreachable!("group_actor names a group"),
        }
    }

    /// The `x`-th image actor.
    #[must_use]
    pub fn image(&self, x: usize) -> &Image {
        match self.sim.actor(image_actor(self.scenario, x)) {
            World::Image(i) => i,
            _ => unreachable!("image_actor names an image"),
        }
    }

    /// The `x`-th EBS snapshot actor.
    #[must_use]
    pub fn ebs_snapshot(&self, x: usize) -> &EbsSnapshot {
        match self.sim.actor(snapshot_actor(self.scenario, x)) {
            World::Snapshot(s) => s,
            _ => unreachable!("snapshot_actor names a snapshot"),
        }
    }

    #[must_use]
    pub fn instance(&self, i: usize) -> &Instance {
        match self.sim.actor(instance_actor(self.scenario, i)) {
            World::Instance(x) => x,
            _ => unreachable!("instance_actor names an instance"),
        }
    }

    /// The records about one actor, in order (see the field's documentation for what counts).
    pub fn records_of(&self, actor: ActorId) -> impl Iterator<Item = &Record<Obs>> {
        // A streamed run kept no records, and no index of them.
        self.by_actor.get(actor.index()).into_iter().flatten().map(|&i| &self.records[i])
    }

    /// The KMS records about one key, in order.
    pub fn records_of_key(&self, key: KeyIdx) -> impl Iterator<Item = &Record<Obs>> {
        self.by_key.get(key.0 as usize).into_iter().flatten().map(|&i| &self.records[i])
    }

    /// The record with this id.
    #[must_use]
    pub fn record(&self, id: u64) -> Option<&Record<Obs>> {
        // Records are made in id order from 0, so the id is the index.
        self.records.get(usize::try_from(id).ok()?)
    }
}
