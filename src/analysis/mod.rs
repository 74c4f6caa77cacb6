//! The facts about a run, and the one pass that gathers them: the folds a command needs, fed
//! each record as the run makes it, so that no command keeps the records unless an output
//! needs them all. Nothing here renders: [`crate::report`] words and draws these facts.
//!
//! Each fold keeps state per key, per resource or per expectation, never per record: the
//! summary ([`SummaryFold`]), the expectations ([`VerdictFold`]), the chart's model
//! ([`LanesFold`]) and the records a timeline shows ([`TimelineFold`]). A run whose records are
//! kept is summarised by the same folds ([`summary::summarize`] feeds them the records), so both
//! paths give one answer.

#![forbid(unsafe_code)]

/// The `version` every JSON output of kmsim carries (run, impact, explain, check, sweep, bench; their schemas
/// are in `docs/schemas/`): raised when a field changes meaning or goes, not when one is added.
pub const JSON_VERSION: u32 = 1;

pub mod causes;
pub mod check;
pub mod impact;
pub mod lanes;
pub mod record;
pub mod standing;
pub mod summary;
pub mod sweep;
pub mod timeline;
pub mod verdicts;

use crate::actors::Obs;
use crate::analysis::lanes::{Lanes, LanesFold};
use crate::analysis::verdicts::{Verdict, VerdictFold};
use crate::engine::{ActorId, EngineError, Record, Sink};
use crate::run::{Names, Observer, Run, RunOptions, let_go, run_observed};
use crate::scenario::Scenario;
use summary::{Summary, SummaryFold};
use timeline::{Shown, TimelineFold};

/// What a pass should make besides the summary and the verdicts.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wanted {
    /// The timeline as text, for a terminal.
    pub timeline: bool,
    /// What a report needs: the chart's model and the events it lists.
    pub report: bool,
    /// The caller folds the records a timeline shows itself, beside the run (on the thread
    /// that writes the report's trace, which has time to spare), and sets
    /// [`Observed::shown`] from its [`TimelineFold`].
    pub timeline_beside: bool,
}

/// A run observed in one pass, its records not kept.
pub struct Observed<'s> {
    pub run: Run<'s>,
    pub summary: Summary,
    pub verdicts: Vec<Verdict>,
    /// The records a timeline shows (the terminal's, and the events a report lists), when
    /// either is wanted.
    pub shown: Option<Shown>,
    /// For a report: the chart's model.
    pub lanes: Option<Lanes>,
}

/// Every fold of one pass, as one observer of the run.
struct Folds<'s, 'x> {
    summary: SummaryFold,
    verdicts: VerdictFold<'s>,
    /// The records a timeline shows: the terminal's and the report's are one selection.
    timeline: Option<TimelineFold<'s>>,
    lanes: Option<LanesFold<'s>>,
    extra: Option<&'x mut dyn Sink<Obs>>,
}

impl Observer for Folds<'_, '_> {
    #[inline(always)]
    fn see(&mut self, names: &Names<'_>, rec: &Record<Obs>) {
        self.summary.observe(names, rec);
        self.verdicts.observe(names, rec);
        if let Some(l) = &mut self.lanes {
            l.observe(names, rec);
        }
    }

    #[inline(always)]
    fn takes(&self) -> bool {
        self.timeline.is_some() || self.extra.is_some()
    }

    #[inline(always)]
    fn take(&mut self, names: &Names<'_>, rec: Record<Obs>) {
        // The timeline holds its last records as they are (a delay line): what it lets go of
        // goes on, in order, and what it still holds at the end goes on then (`observe`).
        let rec = match &mut self.timeline {
            Some(t) => match t.take(names, rec) {
                Some(rec) => rec,
                None => return,
            },
            None => rec,
        };
        match &mut self.extra {
            Some(extra) => extra.record(rec),
            None => let_go(rec),
        }
    }

    fn prepare(&self, actor: ActorId) {
        self.summary.prepare(actor);
        if let Some(extra) = &self.extra {
            extra.prepare(actor);
        }
    }
}

/// Runs `scenario` once, its records going to the folds `wanted` asks for (and to `extra`, a
/// trace writer for instance) and none kept.
pub fn observe<'s>(
    scenario: &'s Scenario,
    options: &RunOptions,
    wanted: Wanted,
    extra: Option<&mut dyn Sink<Obs>>,
) -> Result<Observed<'s>, EngineError> {
    let mut folds = Folds {
        summary: SummaryFold::new(scenario),
        verdicts: VerdictFold::new(scenario),
        timeline: ((wanted.timeline || wanted.report) && !wanted.timeline_beside).then(|| TimelineFold::new(scenario)),
        lanes: wanted.report.then(|| LanesFold::new(scenario, scenario.horizon)),
        extra,
    };
    let streamed = RunOptions { stream: true, ..options.clone() };
    let run = run_observed(scenario, &streamed, Some(&mut folds))?;
    if let (Some(t), Some(extra)) = (&folds.timeline, &mut folds.extra) {
        t.held().for_each(|rec| extra.record(rec.clone()));
    }
    let summary = folds.summary.finish(&run);
    let verdicts = folds.verdicts.finish(&run, &summary);
    let shown = folds.timeline.map(|t| t.select(&run.names));
    let lanes = folds.lanes.map(|l| l.finish(&summary));
    Ok(Observed { run, summary, verdicts, shown, lanes })
}

/// Hands each record to two sinks.
pub struct Both<'a>(pub &'a mut dyn Sink<Obs>, pub &'a mut dyn Sink<Obs>);

impl Sink<Obs> for Both<'_> {
    fn record(&mut self, rec: Record<Obs>) {
        self.0.record(rec.clone());
        self.1.record(rec);
    }

    fn prepare(&self, actor: ActorId) {
        self.0.prepare(actor);
        self.1.prepare(actor);
    }
}
