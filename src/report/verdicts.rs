//! Expectations checked against a run: each one holds or says what happened instead.
//!
//! A pure function of a finished [`Run`] and its summary. A failed expectation names what was
//! expected, what happened, and the nearest event of the same kind with its time, so the fix
//! (to the scenario or to the model) is obvious from the message.

use serde::Serialize;

use crate::engine::SimTime;
use crate::run::{Run, Snapshot};
use crate::scenario::expect::{EventPattern, Expect, Expectation, Window};

use super::describe::{Described, describe};
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

/// Evaluates every expectation of the run's scenario.
#[must_use]
pub fn evaluate(run: &Run<'_>, summary: &Summary) -> Vec<Verdict> {
    let described: Vec<Described> = run.records.iter().map(|r| describe(&run.names, r)).collect();
    run.scenario
        .expectations
        .iter()
        .map(|e| {
            let found = verdict(run, summary, &described, e);
            Verdict { index: e.index, line: e.line, expected: e.text.clone(), held: found.is_none(), found }
        })
        .collect()
}

fn matches(p: &EventPattern, d: &Described) -> bool {
    d.subject == p.subject
        && d.event == p.event
        && p.outcome.is_none_or(|o| d.outcome.as_str() == o)
        && p.error.as_ref().is_none_or(|e| d.error.as_ref() == Some(e))
}

fn event_words(run: &Run<'_>, i: usize, d: &Described) -> String {
    let rec = &run.records[i];
    let error = d.error.as_ref().map_or(String::new(), |e| format!(" {e}"));
    format!("#{} at {}: {} {} {}{error}", rec.id, rec.at, d.subject, d.event, d.outcome.as_str())
}

/// The event of the same subject and kind nearest to `t`, whatever its outcome.
fn nearest(run: &Run<'_>, described: &[Described], p: &EventPattern, t: SimTime) -> String {
    let best = described
        .iter()
        .enumerate()
        .filter(|(_, d)| d.subject == p.subject && d.event == p.event)
        .min_by_key(|(i, _)| run.records[*i].at.as_ms().abs_diff(t.as_ms()));
    match best {
        Some((i, d)) => format!("nearest {} {}: {}", p.subject, p.event, event_words(run, i, d)),
        None => format!("no {} {} event at all in the run", p.subject, p.event),
    }
}

fn snapshot_at<'r>(run: &'r Run<'_>, at: SimTime) -> &'r Snapshot {
    run.snapshot_at(at).expect("the run probes every state expectation's time")
}

fn in_window<'a>(
    run: &'a Run<'_>,
    described: &'a [Described],
    p: &'a EventPattern,
    w: Window,
) -> impl Iterator<Item = (usize, &'a Described)> + 'a {
    described.iter().enumerate().filter(move |(i, d)| w.contains(run.records[*i].at) && matches(p, d))
}

/// `None` when the expectation holds; otherwise what happened.
fn verdict(run: &Run<'_>, summary: &Summary, described: &[Described], e: &Expectation) -> Option<String> {
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
        Expect::Cached { volume, at, is } => {
            let got = snapshot_at(run, *at).volumes[*volume].1;
            (got != *is).then(|| if got { "it is in memory".to_string() } else { "it is not in memory".to_string() })
        }
        Expect::Event { pattern, when } => {
            if in_window(run, described, pattern, *when).next().is_some() {
                None
            } else {
                Some(format!("no such event; {}", nearest(run, described, pattern, when.from)))
            }
        }
        Expect::Never { pattern, when } => in_window(run, described, pattern, *when)
            .next()
            .map(|(i, d)| format!("it happened: {}", event_words(run, i, d))),
        Expect::Count { pattern, when, is } => {
            let found: Vec<_> = in_window(run, described, pattern, *when).collect();
            (found.len() as u64 != *is).then(|| {
                let times: Vec<String> = found.iter().take(8).map(|(i, _)| run.records[*i].at.to_string()).collect();
                let more = if found.len() > 8 { ", ..." } else { "" };
                format!(
                    "{} happened (at {}{more})",
                    found.len(),
                    if times.is_empty() { "-".into() } else { times.join(", ") }
                )
            })
        }
        Expect::BrokeAt { resource, at, within } => {
            let r = summary.resources.iter().find(|r| &r.name == resource).expect("validated resource");
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
            let r = summary.resources.iter().find(|r| &r.name == resource).expect("validated resource");
            (r.status.as_str() != *is).then(|| format!("it is {}", r.status.as_str()))
        }
    }
}
