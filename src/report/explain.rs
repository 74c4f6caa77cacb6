//! Why something happened: the chain of records from an outcome back to the action behind it.
//!
//! From a record, the chain follows its `reason` when it has one (a refused Decrypt points at
//! the state change that made the key unusable), otherwise its `cause`, until it reaches a
//! scenario action. A second line names the action that triggered the record itself.

use std::fmt::Write as _;

use crate::actors::Obs;
use crate::engine::{Cause, Record, RecordId};
use crate::run::Names;
use crate::scenario::ActionSource;

use super::describe::{Outcome, describe};

fn line(names: &Names<'_>, rec: &Record<Obs>) -> String {
    let d = describe(names, rec);
    let outcome = match (d.outcome, &d.error) {
        (Outcome::Failed, Some(e)) => format!(" FAILED {e}"),
        (Outcome::Failed, None) => " FAILED".to_string(),
        (Outcome::Ok, _) => " ok".to_string(),
        (Outcome::Info, _) => String::new(),
    };
    format!("#{} {} {} {}{outcome}: {}", rec.id, rec.at, d.subject, d.event, d.message)
}

fn action_line(names: &Names<'_>, index: u32) -> String {
    let action = names.scenario.actions.get(index as usize).expect("an input cause names an action");
    match &action.source {
        ActionSource::Declared { path } => format!("{path}: declared in the scenario, created at {}", action.at),
        ActionSource::Fleet { fleet } => format!("fleets[{fleet}]: the fleet starts its volumes at {}", action.at),
        ActionSource::Timeline { index, line, text } => {
            let at = line.map_or(String::new(), |l| format!(", line {l}"));
            let text = text.as_deref().map_or(String::new(), |t| format!(": {t}"));
            format!("timeline[{index}]{at}{text}")
        }
    }
}

/// A record's chain of causes: each link from the record back to the action behind it.
pub struct Chain<'r> {
    pub head: &'r Record<Obs>,
    /// `because` for a reason (what made the key unusable), `<-` for a cause.
    pub links: Vec<(&'static str, Link<'r>)>,
    /// When the chain went through a reason: the action that triggered the record itself.
    pub triggered_by: Option<u32>,
}

/// A link of a chain: a record, or the scenario's action (by index) where it ends.
pub enum Link<'r> {
    Record(&'r Record<Obs>),
    Action(u32),
}

/// The chain of record `id`, or `None` if there is no such record. `find` gives the records the
/// chain passes through (a run whose records were kept, or those a second run kept:
/// [`crate::analysis::causes`]).
#[must_use]
pub fn chain<'r>(find: &impl Fn(RecordId) -> Option<&'r Record<Obs>>, id: RecordId) -> Option<Chain<'r>> {
    let head = find(id)?;
    let mut links = Vec::new();
    let mut current = head;
    let mut ended_at = None;
    // Chains are acyclic (every link points to an earlier record), so this ends.
    loop {
        let (next, label) = match (current.reason, current.cause) {
            (Some(r), _) => (Cause::Record(r), "because"),
            (None, c) => (c, "<-"),
        };
        match next {
            Cause::Record(r) => {
                let Some(rec) = find(r) else { break };
                links.push((label, Link::Record(rec)));
                current = rec;
            }
            Cause::Input(i) => {
                links.push(("<-", Link::Action(i)));
                ended_at = Some(i);
                break;
            }
        }
    }
    // When the chain went through a reason, it ends at what made the key unusable; the action
    // that triggered the record itself is at the root of its causes.
    let triggered_by = root_input(find, head).filter(|&trigger| ended_at.is_some_and(|i| i != trigger));
    Some(Chain { head, links, triggered_by })
}

/// The explanation of record `id` in words, or `None` if there is no such record (see
/// [`chain`]); `names` knows every record of the run.
#[must_use]
pub fn explain<'r>(
    names: &Names<'_>,
    find: &impl Fn(RecordId) -> Option<&'r Record<Obs>>,
    id: RecordId,
) -> Option<String> {
    let chain = chain(find, id)?;
    let mut out = line(names, chain.head);
    out.push('\n');
    for (label, link) in &chain.links {
        let _ = match link {
            Link::Record(rec) => writeln!(out, "  {label} {}", line(names, rec)),
            Link::Action(i) => writeln!(out, "  {label} {}", action_line(names, *i)),
        };
    }
    if let Some(trigger) = chain.triggered_by {
        let _ = writeln!(out, "  triggered by {}", action_line(names, trigger));
    }
    Some(out)
}

/// A record as the JSON of `kmsim explain --format json` gives it.
fn record_json(names: &Names<'_>, rec: &Record<Obs>) -> serde_json::Value {
    let d = describe(names, rec);
    let outcome = match d.outcome {
        Outcome::Ok => "ok",
        Outcome::Failed => "failed",
        Outcome::Info => "info",
    };
    serde_json::json!({
        "seq": rec.id, "at": rec.at.as_ms(), "at_utc": names.scenario.instant(rec.at),
        "subject": d.subject, "event": d.event, "outcome": outcome, "error": d.error, "message": d.message,
    })
}

/// A scenario action as the JSON of `kmsim explain --format json` gives it.
fn action_json(names: &Names<'_>, index: u32) -> serde_json::Value {
    let action = names.scenario.actions.get(index as usize).expect("an input cause names an action");
    let (line, text) = match &action.source {
        ActionSource::Timeline { line, text, .. } => (*line, text.clone()),
        _ => (None, None),
    };
    serde_json::json!({
        "action": action.source.path(), "at": action.at.as_ms(), "at_utc": names.scenario.instant(action.at),
        "line": line, "text": text, "words": action_line(names, index),
    })
}

/// The explanations of `ids` as JSON (`kmsim explain --format json`;
/// `docs/schemas/explain.schema.json`): each record with its chain, link by link. `total` is
/// how many failures caused by a key the run had, when the records are those failures.
#[must_use]
pub fn json<'r>(
    names: &Names<'_>,
    find: &impl Fn(RecordId) -> Option<&'r Record<Obs>>,
    ids: &[RecordId],
    total: Option<u64>,
) -> String {
    let explanations: Vec<serde_json::Value> = ids
        .iter()
        .filter_map(|&id| chain(find, id))
        .map(|c| {
            let mut head = record_json(names, c.head);
            let links: Vec<serde_json::Value> = c
                .links
                .iter()
                .map(|(label, link)| {
                    let mut v = match link {
                        Link::Record(rec) => record_json(names, rec),
                        Link::Action(i) => action_json(names, *i),
                    };
                    v["link"] = serde_json::json!(if *label == "because" { "because" } else { "caused by" });
                    v
                })
                .collect();
            head["chain"] = serde_json::Value::Array(links);
            head["triggered_by"] = c.triggered_by.map_or(serde_json::Value::Null, |i| action_json(names, i));
            head
        })
        .collect();
    let doc = serde_json::json!({
        "version": crate::analysis::JSON_VERSION,
        "scenario": names.scenario.name,
        "start": names.scenario.instant(crate::engine::SimTime::ZERO),
        "key_failures": total,
        "explanations": explanations,
    });
    serde_json::to_string_pretty(&doc).expect("json") + "\n"
}

/// The input at the root of a record's causes.
fn root_input<'r>(find: &impl Fn(RecordId) -> Option<&'r Record<Obs>>, rec: &Record<Obs>) -> Option<u32> {
    let mut c = rec.cause;
    loop {
        match c {
            Cause::Input(i) => return Some(i),
            Cause::Record(r) => c = find(r)?.cause,
        }
    }
}
