//! Monte Carlo sweeps: one scenario under many seeds, folded into distributions.
//!
//! Run `i` uses a seed derived from the scenario's seed and `i` alone, so any subset of runs (a
//! shard) gives the same per-run results as the whole sweep. Each run is folded as it goes by a
//! [`Fold`] sink into a small [`RunResult`] (counts, failure times, the number of broken volumes
//! on a fixed time grid); no trace is kept. Aggregates are computed from the sorted per-run
//! results, so a merged set of shards yields exactly the unsharded output.

#![forbid(unsafe_code)]

use std::fmt::Write as _;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::actors::Obs;
use crate::actors::ebs::VolumeObs;
use crate::actors::kms::{Caller, KeyState, KmsException, KmsObs};
use crate::actors::service::Effect;
use crate::engine::{ActorId, Record, SimTime};
use crate::run::{Names, Observer, RunOptions, run_observed};
use crate::scenario::{Overrides, Scenario};

/// Points of the time grid on which broken counts are sampled: a quarter spread over the whole
/// horizon, the rest over the window around what the timeline does to its keys (see [`grid`]).
pub const GRID: usize = 240;

/// The most runs a sweep takes: each run's result (about 1 KB, most of it its grid) is kept for
/// the percentiles.
pub const MAX_RUNS: u64 = 1_000_000;

/// What identifies a sweep's input: the scenario's text and the options that change results
/// (the seed is the part's own `base_seed`).
/// Parts of one sweep carry the same digest, so that `merge` refuses parts of another (FNV-1a of
/// both, in hexadecimal: it guards against mistakes, not forgery).
#[must_use]
pub fn digest(scenario_text: &str, max_events: u64, horizon: Option<crate::engine::SimDuration>) -> String {
    // The horizon only when overridden: the parts of earlier sweeps keep their digests.
    let horizon = horizon.map_or(String::new(), |h| format!("horizon {}\n", h.as_ms()));
    format!("{:016x}", crate::engine::stream_key(&format!("{max_events}\n{horizon}{scenario_text}")))
}

/// The seed of run `i` of a sweep whose scenario seed is `base`.
#[must_use]
pub fn run_seed(base: u64, i: u64) -> u64 {
    let mut rng = ChaCha8Rng::seed_from_u64(base);
    rng.set_stream(i);
    rng.random()
}

/// An instant a sweep's chart marks: something the timeline does to a key, the same in every run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub at_ms: u64,
    /// The instant `at_ms` stands for, RFC 3339.
    #[serde(default)]
    pub at_utc: String,
    pub what: String,
}

/// What the scenario's timeline does to its keys after they are set up: the instants where a
/// sweep's runs change. A key's first import is its setup, not an event.
#[must_use]
pub fn marks(scenario: &Scenario) -> Vec<Mark> {
    use crate::actors::kms::{Expiry, KeyRef, KmsOp};
    use crate::scenario::ActionKind;
    let name = |k: &KeyRef| match k {
        KeyRef::Id(k) | KeyRef::Arn(k) => scenario.key(*k).name.clone(),
        KeyRef::Alias(a) => a.to_string(),
    };
    let material =
        |m: crate::actors::kms::MaterialId| scenario.materials.get(m.0 as usize).cloned().unwrap_or_default();
    let mut imported = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for action in scenario.actions.listed() {
        let ActionKind::Kms(op) = &action.what else { continue };
        let mut mark = |at: SimTime, what: String| {
            out.push(Mark { at_ms: at.as_ms(), at_utc: scenario.instant(at), what });
        };
        match &**op {
            KmsOp::DeleteImportedKeyMaterial { key, .. } => mark(action.at, format!("{}: material deleted", name(key))),
            KmsOp::ImportKeyMaterial { key, material: m, expiry, .. } => {
                if !imported.insert(name(key)) {
                    mark(action.at, format!("{}: {} imported", name(key), material(*m)));
                }
                if let Expiry::At(valid_to) = expiry {
                    mark(*valid_to, format!("{}: {} expires", name(key), material(*m)));
                }
            }
            KmsOp::DisableKey { key } => mark(action.at, format!("{} disabled", name(key))),
            KmsOp::EnableKey { key } => mark(action.at, format!("{} enabled", name(key))),
            KmsOp::ScheduleKeyDeletion { key, .. } => mark(action.at, format!("{}: deletion scheduled", name(key))),
            KmsOp::CancelKeyDeletion { key } => mark(action.at, format!("{}: deletion cancelled", name(key))),
            KmsOp::RotateKeyOnDemand { key } => mark(action.at, format!("{} rotated", name(key))),
            _ => {}
        }
    }
    out.retain(|m| m.at_ms <= scenario.horizon.as_ms());
    out.sort_by_key(|m| m.at_ms);
    out
}

/// The instants at which a run's broken resources are counted: [`GRID`] / 4 over the whole
/// horizon and the rest over the window from a little before the first mark to well after the
/// last (failures follow what a key goes through, by the length of the resources' cycles), so
/// that the chart can zoom on it; evenly over the horizon when nothing is marked.
#[must_use]
pub fn grid(horizon_ms: u64, marks: &[Mark]) -> Vec<u64> {
    let even = |from: u64, to: u64, n: usize| (0..n).map(move |g| from + (to - from) * g as u64 / (n as u64 - 1));
    let (Some(first), Some(last)) = (marks.first(), marks.last()) else {
        return even(0, horizon_ms, GRID).collect();
    };
    let span = (last.at_ms - first.at_ms).max(horizon_ms / 60).max(1);
    let from = first.at_ms.saturating_sub(span / 4);
    let to = last.at_ms.saturating_add(span).min(horizon_ms);
    let mut g: Vec<u64> = even(0, horizon_ms, GRID / 4).chain(even(from, to.max(from + 1), GRID - GRID / 4)).collect();
    g.retain(|&t| t <= horizon_ms);
    g.sort_unstable();
    g.dedup();
    g
}

/// What one run contributes to a sweep.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResult {
    pub run: u64,
    pub seed: u64,
    /// Events counted as the reference models count them: attach attempts, retries, detaches
    /// and the user's key calls.
    pub events: u64,
    pub attaches: u64,
    pub retries: u64,
    pub detaches: u64,
    pub key_calls: u64,
    /// Volumes and other services' resources that failed at least once because of their key.
    pub ever_failed: u64,
    pub first_failure_ms: Option<u64>,
    pub last_failure_ms: Option<u64>,
    /// From the key becoming usable again to the last broken volume or resource working again.
    pub recovery_ms: Option<u64>,
    pub throttled: u64,
    /// Broken volumes at each grid instant.
    pub broken: Vec<u32>,
}

/// Folds a run's records into a [`RunResult`] as they are made.
pub struct Fold {
    /// The instants broken resources are counted at ([`grid`]).
    grid: Vec<u64>,
    /// A byte per actor (only volumes' records set them): a record's actor is its index.
    broken_flags: Vec<u8>,
    broken_now: u32,
    restored_at: Option<SimTime>,
    lost: bool,
    next_grid: usize,
    /// The instant of grid point `next_grid`.
    next_grid_at: SimTime,
    result: RunResult,
}

const BROKEN: u8 = 1;
const EVER: u8 = 2;

impl Fold {
    #[must_use]
    pub fn new(scenario: &Scenario, run: u64, seed: u64) -> Self {
        let grid = grid(scenario.horizon.as_ms(), &marks(scenario));
        Fold {
            broken_flags: vec![0; crate::run::actor_count(scenario)],
            broken_now: 0,
            restored_at: None,
            lost: false,
            next_grid: 0,
            next_grid_at: SimTime::ZERO,
            result: RunResult {
                run,
                seed,
                events: 0,
                attaches: 0,
                retries: 0,
                detaches: 0,
                key_calls: 0,
                ever_failed: 0,
                first_failure_ms: None,
                last_failure_ms: None,
                recovery_ms: None,
                throttled: 0,
                broken: Vec::with_capacity(grid.len()),
            },
            grid,
        }
    }

    fn grid_time(&self, g: usize) -> SimTime {
        SimTime::from_ms(self.grid[g])
    }

    /// Records the broken count at every grid instant before `to`.
    #[cold]
    #[inline(never)]
    fn advance(&mut self, to: SimTime) {
        while self.next_grid < self.grid.len() && self.grid_time(self.next_grid) < to {
            self.result.broken.push(self.broken_now);
            self.next_grid += 1;
        }
        self.next_grid_at =
            if self.next_grid < self.grid.len() { self.grid_time(self.next_grid) } else { SimTime::MAX };
    }

    /// Where an actor's flags are: at its own index, if it is one of the run's.
    fn flags_index(&self, actor: usize) -> Option<usize> {
        (actor < self.broken_flags.len()).then_some(actor)
    }

    /// Folds one record in, by reference (for sinks that pass the record on). The records of
    /// every attach and detach are counted here; the rarer ones out of line, so that the
    /// common path stays small (a sweep or `kmsim bench` sees millions of records).
    #[inline(always)]
    pub fn fold(&mut self, rec: &Record<Obs>) {
        // Most records fall before the next grid instant: answer those without dividing.
        if rec.at > self.next_grid_at {
            self.advance(rec.at);
        }
        match &rec.obs {
            Obs::Volume(VolumeObs::AttachRequested { .. }) => {
                if let Some(v) = self.flags_index(rec.actor.index()) {
                    if self.broken_flags[v] & BROKEN == 0 {
                        self.result.attaches += 1;
                    } else {
                        self.result.retries += 1;
                    }
                }
            }
            Obs::Volume(VolumeObs::Detached { .. }) => {
                if self.flags_index(rec.actor.index()).is_some() {
                    self.result.detaches += 1;
                }
            }
            Obs::Volume(VolumeObs::Attached { .. }) => {
                if let Some(v) = self.flags_index(rec.actor.index())
                    && self.broken_flags[v] & BROKEN != 0
                {
                    self.repaired(v, rec.at);
                }
            }
            // Instances' records, and an instance's Decrypt that succeeds: nothing to count.
            Obs::Instance(_) | Obs::Kms(KmsObs::Called { caller: Caller::Instance(_), result: Ok(_), .. }) => {}
            _ => self.fold_rare(rec),
        }
    }

    #[inline(never)]
    fn repaired(&mut self, v: usize, at: SimTime) {
        self.broken_flags[v] &= !BROKEN;
        self.broken_now -= 1;
        if self.broken_now == 0
            && let Some(r) = self.restored_at
        {
            self.result.recovery_ms = Some(at.as_ms() - r.as_ms());
        }
    }

    /// Actor `a` failed because of its key at `t` (ms).
    fn broke(&mut self, a: usize, t: u64) {
        let Some(v) = self.flags_index(a) else { return };
        let f = &mut self.broken_flags[v];
        if *f & BROKEN == 0 {
            self.broken_now += 1;
        }
        if *f & EVER == 0 {
            self.result.ever_failed += 1;
        }
        *f |= BROKEN | EVER;
        self.result.first_failure_ms.get_or_insert(t);
        self.result.last_failure_ms = Some(t);
    }

    /// Actor `a` worked at `at`: repaired, if it was broken.
    fn works(&mut self, a: usize, at: SimTime) {
        if let Some(v) = self.flags_index(a)
            && self.broken_flags[v] & BROKEN != 0
        {
            self.repaired(v, at);
        }
    }

    /// The records [`Fold::fold`] does not count inline.
    #[inline(never)]
    fn fold_rare(&mut self, rec: &Record<Obs>) {
        let t = rec.at.as_ms();
        match &rec.obs {
            Obs::Volume(VolumeObs::AttachFailed { kms: Some(_), .. } | VolumeObs::KeyLoadFailed { .. }) => {
                self.broke(rec.actor.index(), t);
            }
            // A service resource breaks and works again as the summary says (`ServiceObs::effect`).
            Obs::Service(o) => match o.effect() {
                Some(Effect::Broke { .. }) => self.broke(rec.actor.index(), t),
                Some(Effect::Worked(_)) => self.works(rec.actor.index(), rec.at),
                None => {}
            },
            // The reference models count key calls, not the GetParametersForImport a one-step
            // import makes first.
            Obs::Kms(KmsObs::Called { caller: Caller::User, op, .. })
                if op.operation() != crate::actors::kms::Operation::GetParametersForImport =>
            {
                self.result.key_calls += 1;
            }
            Obs::Kms(KmsObs::Called { result: Err(e), .. }) if e.exception == KmsException::Throttling => {
                self.result.throttled += 1;
            }
            Obs::Kms(KmsObs::StateChanged { from, to, .. }) => {
                if *from == Some(KeyState::Enabled) {
                    self.lost = true;
                } else if *to == KeyState::Enabled && self.lost {
                    self.restored_at = Some(rec.at);
                }
            }
            _ => {}
        }
    }

    #[must_use]
    pub fn finish(mut self) -> RunResult {
        self.advance(SimTime::MAX);
        let r = &mut self.result;
        r.events = r.attaches + r.retries + r.detaches + r.key_calls;
        self.result
    }
}

impl Observer for Fold {
    fn prepare(&self, actor: ActorId) {
        if let Some(flags) = self.flags_index(actor.index()).and_then(|v| self.broken_flags.get(v)) {
            crate::engine::prefetch(flags);
        }
    }

    #[inline(always)]
    fn see(&mut self, _names: &Names<'_>, rec: &Record<Obs>) {
        self.fold(rec);
    }

    #[inline(always)]
    fn takes(&self) -> bool {
        false
    }
}

/// Why a run of a sweep did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The scenario under the run's seed is invalid (a generated key ID, say).
    #[error(transparent)]
    Scenario(#[from] crate::scenario::ScenarioError),
    /// The run stopped at a limit.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
}

/// Runs run `i` of the sweep.
pub fn run_one(
    scenario: &Scenario,
    text: &str,
    file: &str,
    i: u64,
    options: &RunOptions,
    horizon: Option<crate::engine::SimDuration>,
) -> Result<RunResult, RunError> {
    let seed = run_seed(scenario.seed, i);
    // Key IDs and fleets' key choices come from the seed too: each run is a whole new draw.
    let s = crate::scenario::parse(file, text, Overrides { seed: Some(seed), horizon })?;
    let mut fold = Fold::new(&s, i, seed);
    run_observed(&s, &RunOptions { stream: true, ..options.clone() }, Some(&mut fold))?;
    Ok(fold.finish())
}

/// Why shards do not merge into one sweep.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MergeError {
    #[error("no partial results to merge")]
    Nothing,
    #[error("shard {shard} claims {runs} runs in {shards} shards: out of range")]
    OutOfRange { shard: u64, runs: u64, shards: u64 },
    #[error(
        "shard {shard} of {shards} is from another sweep (its scenario, its options, seed, runs or shards differ from shard {first}'s)"
    )]
    AnotherSweep { shard: u64, shards: u64, first: u64 },
    #[error("shard {shard} of {shards}: no such shard")]
    NoSuchShard { shard: u64, shards: u64 },
    #[error("shard {0} given twice")]
    Twice(u64),
    #[error("missing shard(s) {missing:?} of {shards}")]
    Missing { missing: Vec<u64>, shards: u64 },
    #[error("the shards hold {held} runs, the sweep has {runs}")]
    Runs { held: u64, runs: u64 },
    /// A part whose runs are not its shard's, once each, with their seeds and values in range.
    #[error("shard {shard} of {shards}{}: {why}", run.map_or(String::new(), |r| format!(", run {r}")))]
    BadPart { shard: u64, shards: u64, run: Option<u64>, why: String },
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

const PERCENTILES: [(&str, f64); 6] =
    [("p5", 5.0), ("p25", 25.0), ("p50", 50.0), ("p75", 75.0), ("p95", 95.0), ("p99", 99.0)];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub runs: u64,
    pub with_value: u64,
    pub mean: Option<f64>,
    pub percentiles: Vec<(String, u64)>,
}

fn summarize(values: impl Iterator<Item = Option<u64>>, runs: u64) -> Summary {
    let mut v: Vec<u64> = values.flatten().collect();
    v.sort_unstable();
    #[allow(clippy::cast_precision_loss)]
    let mean = (!v.is_empty()).then(|| v.iter().map(|x| *x as f64).sum::<f64>() / v.len() as f64);
    Summary {
        runs,
        with_value: v.len() as u64,
        mean,
        percentiles: PERCENTILES.iter().filter_map(|(n, p)| pct(&v, *p).map(|x| ((*n).to_string(), x))).collect(),
    }
}

/// The whole sweep: per-run results and their aggregates. The same bytes whatever the threads,
/// shards or merge order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    /// [`crate::analysis::JSON_VERSION`].
    #[serde(default)]
    pub version: u32,
    pub scenario: String,
    pub file: String,
    pub base_seed: u64,
    pub runs: u64,
    /// The volumes and other services' resources each run has (`volumes` in sweeps written
    /// before services were modelled).
    #[serde(alias = "volumes")]
    pub resources: u64,
    pub horizon_ms: u64,
    /// The instant the offsets count from, RFC 3339.
    #[serde(default)]
    pub start: String,
    /// What the timeline does to its keys, for the chart ([`marks`]).
    #[serde(default)]
    pub marks: Vec<Mark>,
    pub grid_ms: Vec<u64>,
    pub first_failure_ms: Summary,
    pub recovery_ms: Summary,
    pub ever_failed: Summary,
    pub throttled: Summary,
    pub events: Summary,
    /// Per grid instant, percentiles of the number of broken volumes and resources.
    pub broken: Vec<Vec<(String, u64)>>,
    pub per_run: Vec<RunResult>,
}

/// What a shard writes: its runs, and enough to check that shards belong together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub scenario: String,
    pub file: String,
    /// [`digest`] of the scenario's text and the options.
    pub digest: String,
    pub base_seed: u64,
    pub runs: u64,
    pub shard: u64,
    pub shards: u64,
    #[serde(alias = "volumes")]
    pub resources: u64,
    pub horizon_ms: u64,
    /// The instant the offsets count from, RFC 3339 (empty in parts written before it was).
    #[serde(default)]
    pub start: String,
    /// [`marks`] and [`grid`] of the scenario: a part written before either existed has
    /// neither, and its grid was even over the horizon.
    #[serde(default)]
    pub marks: Vec<Mark>,
    #[serde(default)]
    pub grid_ms: Vec<u64>,
    pub per_run: Vec<RunResult>,
}

/// What the parts of one sweep share.
type SweepOf<'a> = (&'a str, &'a str, u64, u64, u64, u64, u64, &'a [Mark], &'a [u64]);

impl Part {
    /// What the parts of one sweep share: the digest of its input, its size and its grid.
    fn sweep(&self) -> SweepOf<'_> {
        let p = self;
        (&p.digest, &p.scenario, p.base_seed, p.runs, p.shards, p.resources, p.horizon_ms, &p.marks, &p.grid_ms)
    }

    /// The instants of the part's grid.
    #[must_use]
    pub fn grid(&self) -> Vec<u64> {
        if self.grid_ms.is_empty() { grid(self.horizon_ms, &[]) } else { self.grid_ms.clone() }
    }
}

/// The runs of shard `k` of `n`: every `n`-th from `k`, found without visiting the others.
pub fn shard_runs(runs: u64, k: u64, n: u64) -> impl Iterator<Item = u64> {
    let step = usize::try_from(n).unwrap_or(usize::MAX);
    (k..runs).step_by(step)
}

/// Aggregates a complete set of per-run results.
#[must_use]
pub fn aggregate(meta: &Part, mut per_run: Vec<RunResult>) -> Sweep {
    per_run.sort_by_key(|r| r.run);
    let runs = per_run.len() as u64;
    let grid_ms = meta.grid();
    let broken = (0..grid_ms.len())
        .map(|g| {
            let mut v: Vec<u64> = per_run.iter().map(|r| u64::from(r.broken.get(g).copied().unwrap_or(0))).collect();
            v.sort_unstable();
            PERCENTILES.iter().filter_map(|(n, p)| pct(&v, *p).map(|x| ((*n).to_string(), x))).collect()
        })
        .collect();
    Sweep {
        version: crate::analysis::JSON_VERSION,
        scenario: meta.scenario.clone(),
        file: meta.file.clone(),
        base_seed: meta.base_seed,
        runs,
        resources: meta.resources,
        horizon_ms: meta.horizon_ms,
        start: meta.start.clone(),
        marks: meta.marks.clone(),
        grid_ms,
        first_failure_ms: summarize(per_run.iter().map(|r| r.first_failure_ms), runs),
        recovery_ms: summarize(per_run.iter().map(|r| r.recovery_ms), runs),
        ever_failed: summarize(per_run.iter().map(|r| Some(r.ever_failed)), runs),
        throttled: summarize(per_run.iter().map(|r| Some(r.throttled)), runs),
        events: summarize(per_run.iter().map(|r| Some(r.events)), runs),
        broken,
        per_run,
    }
}

/// Merges shards into the sweep, checking that they belong together and cover every run once.
pub fn merge(parts: Vec<Part>) -> Result<Sweep, MergeError> {
    let first = parts.first().ok_or(MergeError::Nothing)?.clone();
    if first.runs == 0 || first.runs > MAX_RUNS || first.shards == 0 || first.shards > first.runs {
        return Err(MergeError::OutOfRange { shard: first.shard, runs: first.runs, shards: first.shards });
    }
    let mut per_run = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for p in parts {
        if p.sweep() != first.sweep() {
            return Err(MergeError::AnotherSweep { shard: p.shard, shards: p.shards, first: first.shard });
        }
        if p.shard >= p.shards {
            return Err(MergeError::NoSuchShard { shard: p.shard, shards: p.shards });
        }
        if !seen.insert(p.shard) {
            return Err(MergeError::Twice(p.shard));
        }
        check_part(&p)?;
        per_run.extend(p.per_run);
    }
    let missing: Vec<u64> = (0..first.shards).filter(|k| !seen.contains(k)).collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing { missing, shards: first.shards });
    }
    if per_run.len() as u64 != first.runs {
        return Err(MergeError::Runs { held: per_run.len() as u64, runs: first.runs });
    }
    Ok(aggregate(&first, per_run))
}

/// A part holds exactly its shard's runs, each once, with its own seed and values in range.
fn check_part(p: &Part) -> Result<(), MergeError> {
    let bad = |run: Option<u64>, why: String| MergeError::BadPart { shard: p.shard, shards: p.shards, run, why };
    let mut expected = shard_runs(p.runs, p.shard, p.shards);
    let within = |t: Option<u64>| t.is_none_or(|t| t <= p.horizon_ms);
    let grid = p.grid();
    if grid.len() > GRID || grid.windows(2).any(|w| w[0] >= w[1]) || grid.last().is_some_and(|&t| t > p.horizon_ms) {
        return Err(bad(None, format!("a grid of more than {GRID} instants, out of order or beyond the horizon")));
    }
    if p.marks.iter().any(|m| m.at_ms > p.horizon_ms) {
        return Err(bad(None, format!("a mark beyond the horizon ({} ms)", p.horizon_ms)));
    }
    for r in &p.per_run {
        let run = Some(r.run);
        if expected.next() != Some(r.run) {
            return Err(bad(run, "not the shard's next run (each run once, in order)".into()));
        }
        if r.seed != run_seed(p.base_seed, r.run) {
            return Err(bad(run, format!("seed {} is not the run's", r.seed)));
        }
        if !within(r.first_failure_ms) || !within(r.last_failure_ms) || !within(r.recovery_ms) {
            return Err(bad(run, format!("a time beyond the horizon ({} ms)", p.horizon_ms)));
        }
        if r.broken.len() != grid.len()
            || r.broken.iter().any(|&b| u64::from(b) > p.resources)
            || r.ever_failed > p.resources
        {
            return Err(bad(
                run,
                format!("broken counts out of range (a grid of {}, at most {} resources)", grid.len(), p.resources),
            ));
        }
    }
    if let Some(missing) = expected.next() {
        return Err(bad(None, format!("run {missing} is missing")));
    }
    Ok(())
}

/// The sweep as pretty JSON, ending with a newline: beside each instant in milliseconds from the
/// start (a run's first and last failure, the percentiles of the first failures), the RFC 3339
/// instant it stands for (`*_utc`).
#[must_use]
pub fn to_json(s: &Sweep) -> String {
    use serde_json::Value;
    let mut doc = serde_json::to_value(s).expect("sweeps serialize");
    let start = s.start.parse::<jiff::Timestamp>().ok();
    let utc = |ms: &Value| match (start, ms.as_u64()) {
        (Some(start), Some(ms)) => Value::String(crate::scenario::format_instant(start, SimTime::from_ms(ms))),
        _ => Value::Null,
    };
    let firsts: Vec<Value> = doc["first_failure_ms"]["percentiles"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| Value::Array(vec![p[0].clone(), utc(&p[1])]))
        .collect();
    doc["first_failure_ms"]["percentiles_utc"] = Value::Array(firsts);
    for run in doc["per_run"].as_array_mut().into_iter().flatten() {
        for field in ["first_failure", "last_failure"] {
            let at = utc(&run[format!("{field}_ms")]);
            run[format!("{field}_utc")] = at;
        }
    }
    serde_json::to_string_pretty(&doc).expect("json") + "\n"
}

/// A short text summary for the terminal.
#[must_use]
pub fn render(s: &Sweep) -> String {
    let mut out = String::new();
    // To the second: milliseconds are noise at the scale of a sweep.
    let d = |ms: u64| {
        crate::engine::SimDuration::from_ms(if ms >= 60_000 { (ms + 500) / 1_000 * 1_000 } else { ms }).to_string()
    };
    let _ = writeln!(
        out,
        "{}: {} runs of {} resource(s), seeds derived from {}",
        s.scenario, s.runs, s.resources, s.base_seed
    );
    let line = |out: &mut String, name: &str, sum: &Summary, fmt: &dyn Fn(u64) -> String| {
        let pcts: Vec<String> = sum.percentiles.iter().map(|(n, v)| format!("{n} {}", fmt(*v))).collect();
        let _ = writeln!(out, "  {name:<22} {} of {} runs: {}", sum.with_value, sum.runs, pcts.join(", "));
    };
    line(&mut out, "time to first failure", &s.first_failure_ms, &|v| format!("+{}", d(v)));
    line(&mut out, "time to full recovery", &s.recovery_ms, &d);
    line(&mut out, "resources ever broken", &s.ever_failed, &|v| v.to_string());
    line(&mut out, "throttled calls", &s.throttled, &|v| v.to_string());
    line(&mut out, "events", &s.events, &|v| v.to_string());
    if let Some((g, row)) =
        s.broken.iter().enumerate().max_by_key(|(_, row)| row.iter().find(|(n, _)| n == "p50").map(|x| x.1))
    {
        let p = |n: &str| row.iter().find(|(k, _)| k == n).map_or(0, |x| x.1);
        let _ = writeln!(
            out,
            "  most broken at once     +{}: median {}, p95 {}, p99 {} of {}",
            d(s.grid_ms[g]),
            p("p50"),
            p("p95"),
            p("p99"),
            s.resources
        );
    }
    out
}
