//! Outputs: pure functions of a finished run. They read records; they never drive the engine.
//!
//! - [`describe`]: one record in words, shared by every output;
//! - [`timeline`]: the run as aligned text, one line per record;
//! - [`trace`]: the run as JSON Lines, with stable fields;
//! - [`explain`]: the cause chain of a record;
//! - [`summary`]: per key and resource, what broke and when.

pub mod describe;
pub mod explain;
pub mod summary;
pub mod trace;

use std::fmt::Write as _;

use crate::run::Run;
use describe::{Outcome, describe};

/// The run's records as a text timeline: `#seq  instant  offset  subject  event  outcome  detail`.
#[must_use]
pub fn timeline(run: &Run<'_>) -> String {
    let rows: Vec<_> = run.records.iter().map(|r| (r, describe(run, r))).collect();
    let subject_w = rows.iter().map(|(_, d)| d.subject.chars().count()).max().unwrap_or(0).max(7);
    let event_w = rows.iter().map(|(_, d)| d.event.len()).max().unwrap_or(0).max(5);
    let offset_w = rows.iter().map(|(r, _)| r.at.to_string().len()).max().unwrap_or(0).max(6);
    let seq_w = run.records.len().to_string().len() + 1;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<seq_w$}  {:<24}  {:<offset_w$}  {:<subject_w$}  {:<event_w$}  {:<6}  DETAIL",
        "#", "TIME (UTC)", "OFFSET", "SUBJECT", "EVENT", "RESULT"
    );
    for (r, d) in rows {
        let result = match d.outcome {
            Outcome::Ok => "ok",
            Outcome::Failed => "FAILED",
            Outcome::Info => "",
        };
        let detail = match &d.error {
            Some(e) => format!("{e}: {}", d.message),
            None => d.message.clone(),
        };
        let _ = writeln!(
            out,
            "{:<seq_w$}  {:<24}  {:<offset_w$}  {:<subject_w$}  {:<event_w$}  {result:<6}  {detail}",
            format!("#{}", r.id),
            run.scenario.instant(r.at),
            r.at.to_string(),
            d.subject,
            d.event,
        );
    }
    out
}
