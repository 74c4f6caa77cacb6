//! Why something happened: the chain of records from an outcome back to the action behind it.
//!
//! From a record, the chain follows its `reason` when it has one (a refused Decrypt points at
//! the state change that made the key unusable), otherwise its `cause`, until it reaches a
//! scenario action. A second line names the action that triggered the record itself.

use std::fmt::Write as _;

use crate::actors::Obs;
use crate::engine::{Cause, Record, RecordId};
use crate::run::Run;
use crate::scenario::ActionSource;

use super::describe::{Outcome, describe};

/// The records worth explaining when none is named: failures caused by a key.
#[must_use]
pub fn key_failures(run: &Run<'_>) -> Vec<RecordId> {
    use crate::actors::ebs::VolumeObs;
    run.records
        .iter()
        .filter(|r| {
            matches!(
                r.obs,
                Obs::Volume(
                    VolumeObs::AttachFailed { kms: Some(_), .. }
                        | VolumeObs::KeyLoadFailed { .. }
                        | VolumeObs::CreateFailed { .. }
                )
            )
        })
        .map(|r| r.id)
        .collect()
}

fn line(run: &Run<'_>, rec: &Record<Obs>) -> String {
    let d = describe(&run.names, rec);
    let outcome = match (d.outcome, &d.error) {
        (Outcome::Failed, Some(e)) => format!(" FAILED {e}"),
        (Outcome::Failed, None) => " FAILED".to_string(),
        (Outcome::Ok, _) => " ok".to_string(),
        (Outcome::Info, _) => String::new(),
    };
    format!("#{} {} {} {}{outcome}: {}", rec.id, rec.at, d.subject, d.event, d.message)
}

fn action_line(run: &Run<'_>, index: u32) -> String {
    let action = &run.scenario.actions[index as usize];
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

/// The explanation of one record, or `None` if there is no such record.
#[must_use]
pub fn explain(run: &Run<'_>, id: RecordId) -> Option<String> {
    let head = run.record(id)?;
    let mut out = line(run, head);
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
                let Some(rec) = run.record(r) else { break };
                let _ = writeln!(out, "  {label} {}", line(run, rec));
                current = rec;
            }
            Cause::Input(i) => {
                let _ = writeln!(out, "  <- {}", action_line(run, i));
                ended_at = Some(i);
                break;
            }
        }
    }
    // When the chain went through a reason, it ends at what made the key unusable; the action
    // that triggered the record itself is at the root of its causes.
    if let Some(trigger) = root_input(run, head)
        && ended_at.is_some_and(|i| i != trigger)
    {
        let _ = writeln!(out, "  triggered by {}", action_line(run, trigger));
    }
    Some(out)
}

/// The input at the root of a record's causes.
fn root_input(run: &Run<'_>, rec: &Record<Obs>) -> Option<u32> {
    let mut c = rec.cause;
    loop {
        match c {
            Cause::Input(i) => return Some(i),
            Cause::Record(r) => c = run.record(r)?.cause,
        }
    }
}
