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

/// The explanation of record `id`, or `None` if there is no such record. `find` gives the
/// records the chain passes through (a run whose records were kept, or those a second run kept:
/// [`crate::analysis::causes`]); `names` knows every record of the run.
#[must_use]
pub fn explain<'r>(
    names: &Names<'_>,
    find: &impl Fn(RecordId) -> Option<&'r Record<Obs>>,
    id: RecordId,
) -> Option<String> {
    let head = find(id)?;
    let mut out = line(names, head);
    out.push('\n');
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
                let _ = writeln!(out, "  {label} {}", line(names, rec));
                current = rec;
            }
            Cause::Input(i) => {
                let _ = writeln!(out, "  <- {}", action_line(names, i));
                ended_at = Some(i);
                break;
            }
        }
    }
    // When the chain went through a reason, it ends at what made the key unusable; the action
    // that triggered the record itself is at the root of its causes.
    if let Some(trigger) = root_input(find, head)
        && ended_at.is_some_and(|i| i != trigger)
    {
        let _ = writeln!(out, "  triggered by {}", action_line(names, trigger));
    }
    Some(out)
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
