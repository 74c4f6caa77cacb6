//! The run as JSON Lines: one object per record, with stable, documented fields.
//!
//! Fields, stable across versions of the format:
//! - `seq`: the record's number, from 0; `t_ms`: simulated milliseconds since the start;
//!   `time`: the instant, RFC 3339 with milliseconds;
//! - `actor`: `kms`, an instance id or a volume id; `key`: the key's scenario name (KMS events);
//! - `event`: the AWS API or event name; `outcome`: `ok`, `failed` or `info`;
//!   `error`: the AWS exception or EC2 error code of a failure, else null; `message`: in words;
//! - `cause`: the `seq` of the record that led to this one, or null when an action did;
//!   `action`: that action's place in the scenario (`timeline[3]`, `keys[0]`), or null;
//!   `reason`: the `seq` of a record that explains a failure (the key's last state change), or null.

use std::io::{self, Write};

use serde::Serialize;

use crate::actors::Obs;
use crate::engine::{Cause, Record};
use crate::run::Run;

use super::describe::{Outcome, describe};

#[derive(Serialize)]
struct Line<'a> {
    seq: u64,
    t_ms: u64,
    time: String,
    actor: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    event: &'static str,
    outcome: Outcome,
    error: Option<String>,
    message: String,
    cause: Option<u64>,
    action: Option<String>,
    reason: Option<u64>,
}

/// Writes one record as a JSON line.
pub fn write_record(run: &Run<'_>, rec: &Record<Obs>, out: &mut impl Write) -> io::Result<()> {
    let d = describe(run, rec);
    let (cause, action) = match rec.cause {
        Cause::Record(id) => (Some(id), None),
        Cause::Input(i) => (None, Some(run.scenario.actions[i as usize].source.path())),
    };
    let line = Line {
        seq: rec.id,
        t_ms: rec.at.as_ms(),
        time: run.scenario.instant(rec.at),
        actor: run.actor_name(rec.actor),
        key: d.key,
        event: d.event,
        outcome: d.outcome,
        error: d.error,
        message: d.message,
        cause,
        action,
        reason: rec.reason,
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")
}

/// Writes every record of the run.
pub fn write_all(run: &Run<'_>, out: &mut impl Write) -> io::Result<()> {
    for rec in &run.records {
        write_record(run, rec, out)?;
    }
    Ok(())
}
