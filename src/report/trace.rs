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
use crate::engine::{Cause, Record, SimTime, Sink};
use crate::run::{Run, actor_name};
use crate::scenario::Scenario;

use super::describe::{Outcome, describe};

#[derive(Serialize)]
struct Line<'a> {
    seq: u64,
    t_ms: u64,
    time: &'a str,
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
pub fn write_record(scenario: &Scenario, rec: &Record<Obs>, out: &mut impl Write) -> io::Result<()> {
    write_line(scenario, rec, &scenario.instant(rec.at), out)
}

fn write_line(scenario: &Scenario, rec: &Record<Obs>, time: &str, out: &mut impl Write) -> io::Result<()> {
    let d = describe(scenario, rec);
    let (cause, action) = match rec.cause {
        Cause::Record(id) => (Some(id), None),
        Cause::Input(i) => (None, Some(scenario.actions[i as usize].source.path())),
    };
    let line = Line {
        seq: rec.id,
        t_ms: rec.at.as_ms(),
        time,
        actor: actor_name(scenario, rec.actor),
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

/// Writes every record of a finished run.
pub fn write_all(run: &Run<'_>, out: &mut impl Write) -> io::Result<()> {
    for rec in &run.records {
        write_record(run.scenario, rec, out)?;
    }
    Ok(())
}

/// A sink that writes each record as it is made, so that a trace of any length takes no memory
/// beyond the writer's buffer. The first write error stops the writing and is kept for
/// [`Streamed::finish`]; the run itself goes on (sinks cannot change it).
pub struct Streamed<'s, W: Write> {
    scenario: &'s Scenario,
    out: W,
    error: Option<io::Error>,
    /// The last instant formatted: records come in bursts at one instant.
    time: (SimTime, String),
}

impl<'s, W: Write> Streamed<'s, W> {
    pub fn new(scenario: &'s Scenario, out: W) -> Self {
        Streamed { scenario, out, error: None, time: (SimTime::ZERO, scenario.instant(SimTime::ZERO)) }
    }

    /// The writer, once every record is written, or the first error.
    pub fn finish(self) -> io::Result<W> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.out),
        }
    }
}

impl<W: Write> Sink<Obs> for Streamed<'_, W> {
    fn record(&mut self, rec: Record<Obs>) {
        if self.error.is_some() {
            return;
        }
        if self.time.0 != rec.at {
            self.time = (rec.at, self.scenario.instant(rec.at));
        }
        if let Err(e) = write_line(self.scenario, &rec, &self.time.1, &mut self.out) {
            self.error = Some(e);
        }
    }
}
