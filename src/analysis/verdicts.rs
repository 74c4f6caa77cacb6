//! Expectations checked against a run: each one holds or says what happened instead.
//!
//! A pure function of a finished [`Run`] and its summary. A failed expectation names what was
//! expected, what happened, and the nearest event of the same kind with its time, so the fix
//! (to the scenario or to the model) is obvious from the message.

use serde::Serialize;

use crate::actors::Obs;
use crate::engine::{Record, RecordId, SimTime};
use crate::run::{Names, Run, Snapshot};
use crate::scenario::Scenario;
use crate::scenario::expect::{EventPattern, Expect, Expectation, Window};

use super::record as describe;
use super::summary::Summary;

/// The verdict on one expectation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub index: usize,
    pub line: Option<usize>,
    /// The expectation in words.
    pub expected: String,
    pub held: bool,
    /// What happened instead, when it did not hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
}

/// Evaluates every expectation of the scenario of a run whose records were kept.
#[must_use]
pub fn evaluate(run: &Run<'_>, summary: &Summary) -> Vec<Verdict> {
    let mut fold = VerdictFold::new(run.scenario);
    run.records.iter().for_each(|r| fold.observe(&run.names, r));
    fold.finish(run, summary)
}

/// An event an expectation saw, enough to word it at the end.
#[derive(Clone, Copy)]
struct Hit {
    id: RecordId,
    at: SimTime,
    outcome: describe::Outcome,
    error: Option<&'static str>,
}

impl Hit {
    fn words(&self, p: &EventPattern) -> String {
        let error = self.error.map_or(String::new(), |e| format!(" {e}"));
        format!("#{} at {}: {} {} {}{error}", self.id, self.at, p.subject, p.event, self.outcome.as_str())
    }
}

/// What an event expectation has seen so far.
#[derive(Default)]
struct Seen {
    /// Matching events in its window: how many, and the first few.
    count: u64,
    first: Vec<Hit>,
    /// The event of the same subject and kind nearest to the window's start, whatever its
    /// outcome (the first of equally near ones), and how near.
    nearest: Option<(u64, Hit)>,
}

/// The first matching events an expectation keeps to show: a count's message lists 8.
const SHOWN: usize = 8;

/// The expectations about events, as a fold over a run's records: per expectation a count, the
/// first few matches and the nearest candidate, never the records themselves. State
/// expectations read the run's snapshots, and the rest its summary, at [`VerdictFold::finish`].
pub struct VerdictFold<'s> {
    scenario: &'s Scenario,
    seen: Vec<Seen>,
    /// The expectations about each event any is about: most records are about none, and cost
    /// one look.
    events: Vec<(&'static str, Vec<Watch<'s>>)>,
}

/// An expectation about events, made ready to compare with records.
struct Watch<'s> {
    index: usize,
    /// As records name it: a key's subject is the scenario's own name of the key, the string
    /// records carry, so comparing them is mostly comparing addresses.
    subject: &'s str,
    window: Window,
    /// Whether each outcome matches, by [`describe::Outcome`] as a number.
    outcomes: [bool; 3],
    error: Option<&'s str>,
}

/// Whether two strings are equal, first by where they are.
fn same(a: &str, b: &str) -> bool {
    (std::ptr::eq(a.as_ptr(), b.as_ptr()) && a.len() == b.len()) || a == b
}

impl<'s> VerdictFold<'s> {
    #[must_use]
    pub fn new(scenario: &'s Scenario) -> Self {
        use describe::Outcome;
        let mut events: Vec<(&'static str, Vec<Watch<'s>>)> = Vec::new();
        for (index, e) in scenario.expectations.iter().enumerate() {
            let Some((p, window)) = pattern(&e.expect) else { continue };
            let key = scenario.keys.iter().find(|k| k.name == p.subject);
            let mut outcomes = [false; 3];
            for o in [Outcome::Ok, Outcome::Failed, Outcome::Info] {
                outcomes[o as usize] = p.outcome.is_none_or(|wanted| o.as_str() == wanted);
            }
            let watch = Watch {
                index,
                subject: key.map_or(&p.subject, |k| k.name.as_str()),
                window,
                outcomes,
                error: p.error.as_deref(),
            };
            match events.iter_mut().find(|(event, _)| *event == p.event) {
                Some((_, about)) => about.push(watch),
                None => events.push((p.event, vec![watch])),
            }
        }
        VerdictFold { scenario, seen: scenario.expectations.iter().map(|_| Seen::default()).collect(), events }
    }

    /// Takes the next record of the run; `names` knows every record until this one.
    #[inline]
    pub fn observe(&mut self, names: &Names<'_>, rec: &Record<Obs>) {
        if self.events.is_empty() {
            return;
        }
        let event = rec.obs.event_name();
        if let Some(e) = self.events.iter().position(|(about, _)| same(about, event)) {
            self.observe_about(e, names, rec);
        }
    }

    /// `observe`'s work for a record some expectation is about (`self.events[e]`): out of
    /// line, as most records are about none.
    #[inline(never)]
    fn observe_about(&mut self, e: usize, names: &Names<'_>, rec: &Record<Obs>) {
        let about = &self.events[e].1;
        let (key, outcome, error) = describe::verdict(self.scenario, rec);
        let subject = key.map_or_else(|| names.at(rec.actor, rec.id), std::borrow::Cow::Borrowed);
        let hit = Hit { id: rec.id, at: rec.at, outcome, error };
        for watch in about {
            if !same(watch.subject, &subject) {
                continue;
            }
            let seen = &mut self.seen[watch.index];
            let distance = rec.at.as_ms().abs_diff(watch.window.from.as_ms());
            if seen.nearest.as_ref().is_none_or(|(d, _)| distance < *d) {
                seen.nearest = Some((distance, hit));
            }
            let matches = watch.outcomes[outcome as usize] && watch.error.is_none_or(|e| error == Some(e));
            if matches && watch.window.contains(rec.at) {
                seen.count += 1;
                if seen.first.len() < SHOWN {
                    seen.first.push(hit);
                }
            }
        }
    }

    /// The verdicts: what the records showed, with the run's snapshots and its `summary`.
    #[must_use]
    pub fn finish(self, run: &Run<'_>, summary: &Summary) -> Vec<Verdict> {
        run.scenario
            .expectations
            .iter()
            .zip(self.seen)
            .map(|(e, seen)| {
                let found = verdict(run, summary, &seen, e);
                Verdict { index: e.index, line: e.line, expected: e.text.clone(), held: found.is_none(), found }
            })
            .collect()
    }
}

/// The events an expectation is about, and when.
fn pattern(e: &Expect) -> Option<(&EventPattern, Window)> {
    match e {
        Expect::Event { pattern, when } | Expect::Never { pattern, when } | Expect::Count { pattern, when, .. } => {
            Some((pattern, *when))
        }
        _ => None,
    }
}

fn snapshot_at<'r>(run: &'r Run<'_>, at: SimTime) -> &'r Snapshot {
    run.snapshot_at(at).expect("the run probes every state expectation's time")
}

/// `None` when the expectation holds; otherwise what happened.
fn verdict(run: &Run<'_>, summary: &Summary, seen: &Seen, e: &Expectation) -> Option<String> {
    match &e.expect {
        Expect::KeyState { key, at, is } => {
            let got = snapshot_at(run, *at).keys[key.0 as usize];
            (got != *is).then(|| format!("it is {}", got.map_or("deleted or not created", |s| s.as_str())))
        }
        Expect::VolumeState { volume, at, is } => {
            let got = snapshot_at(run, *at).volumes[*volume].0.map_or("not-created", |s| s.as_str());
            (got != *is).then(|| format!("it is {got}"))
        }
        Expect::InstanceState { instance, at, is } => {
            let got = snapshot_at(run, *at).instances[*instance].0.map_or("not launched", |s| s.as_str());
            (got != *is).then(|| format!("it is {got}"))
        }
        Expect::ServiceState { resource, at, is } => {
            let kind = run.scenario.services[*resource].kind;
            let got = snapshot_at(run, *at).services[*resource].0.map_or("not-created", |s| kind.state_name(s));
            (got != *is).then(|| format!("it is {got}"))
        }
        Expect::Cached { volume, at, is } => {
            let got = snapshot_at(run, *at).volumes[*volume].1;
            (got != *is).then(|| if got { "it is in memory".to_string() } else { "it is not in memory".to_string() })
        }
        Expect::Event { pattern, .. } => (seen.count == 0).then(|| {
            let nearest = match &seen.nearest {
                Some((_, hit)) => format!("nearest {} {}: {}", pattern.subject, pattern.event, hit.words(pattern)),
                None => format!("no {} {} event at all in the run", pattern.subject, pattern.event),
            };
            format!("no such event; {nearest}")
        }),
        Expect::Never { pattern, .. } => seen.first.first().map(|hit| format!("it happened: {}", hit.words(pattern))),
        Expect::Count { is, .. } => (seen.count != *is).then(|| {
            let times: Vec<String> = seen.first.iter().map(|hit| hit.at.to_string()).collect();
            let more = if seen.count > SHOWN as u64 { ", ..." } else { "" };
            format!(
                "{} happened (at {}{more})",
                seen.count,
                if times.is_empty() { "-".into() } else { times.join(", ") }
            )
        }),
        Expect::BrokeAt { resource, at, within } => {
            let r = summary.resources.iter().find(|r| *r.name == **resource).expect("validated resource");
            match r.breaks.first() {
                None => Some(format!("{resource} never broke because of its key")),
                Some(b) => {
                    let off = b.broke_at.as_ms().abs_diff(at.as_ms());
                    (off > within.as_ms()).then(|| {
                        let dir = if b.broke_at > *at { "later" } else { "earlier" };
                        let diff = crate::engine::SimDuration::from_ms(off);
                        format!("it broke at {} ({}), {diff} {dir}", b.broke_at, b.how)
                    })
                }
            }
        }
        Expect::Status { resource, is } => {
            let r = summary.resources.iter().find(|r| *r.name == **resource).expect("validated resource");
            (r.status.as_str() != *is).then(|| format!("it is {}", r.status.as_str()))
        }
    }
}
