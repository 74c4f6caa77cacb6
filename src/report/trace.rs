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
//!
//! The compact form ([`Format::Compact`]) has the same fields but `time` and `message` (the
//! instant is `t_ms` after the scenario's `start`; the sentence is for people), and leaves out
//! the fields that would be null. It is under half the size and several times faster to write,
//! for traces of millions of events.

use std::io::{self, Write};

use serde::Serialize;

use crate::actors::Obs;
use crate::engine::{Cause, Record, SimTime, Sink};
use crate::run::{Run, actor_name};
use crate::scenario::Scenario;

use super::describe::{Outcome, describe, verdict};

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

/// Which fields a trace line has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// Every field, with the instant in RFC 3339 and a sentence.
    #[default]
    Full,
    /// Every field but `time` and `message`, and none that is null.
    Compact,
}

/// Writes one record as a compact JSON line. Written by hand rather than through serde: at
/// millions of lines, escaping the fixed field names dominated the cost.
pub fn write_compact(scenario: &Scenario, rec: &Record<Obs>, out: &mut impl Write) -> io::Result<()> {
    let mut line = Vec::with_capacity(160);
    compact_line(scenario, rec, &mut line);
    out.write_all(&line)
}

/// Appends one record's compact line to `line`. Event names, outcomes and error codes are ASCII
/// constants; only names from the scenario may need escaping.
fn compact_line(scenario: &Scenario, rec: &Record<Obs>, line: &mut Vec<u8>) {
    fn number(line: &mut Vec<u8>, field: &[u8], n: u64) {
        line.extend_from_slice(field);
        line.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }
    fn constant(line: &mut Vec<u8>, field: &[u8], s: &str) {
        line.extend_from_slice(field);
        line.push(b'"');
        line.extend_from_slice(s.as_bytes());
        line.push(b'"');
    }
    fn name(line: &mut Vec<u8>, field: &[u8], s: &str) {
        if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
            constant(line, field, s);
        } else {
            line.extend_from_slice(field);
            serde_json::to_writer(&mut *line, s).expect("writing to memory");
        }
    }
    let (key, outcome, error) = verdict(scenario, rec);
    number(line, b"{\"seq\":", rec.id);
    number(line, b",\"t_ms\":", rec.at.as_ms());
    name(line, b",\"actor\":", actor_name(scenario, rec.actor));
    if let Some(key) = key {
        name(line, b",\"key\":", key);
    }
    constant(line, b",\"event\":", rec.obs.event_name());
    constant(line, b",\"outcome\":", outcome.as_str());
    if let Some(error) = error {
        constant(line, b",\"error\":", error);
    }
    match rec.cause {
        Cause::Record(id) => number(line, b",\"cause\":", id),
        Cause::Input(i) => name(line, b",\"action\":", &scenario.actions[i as usize].source.path()),
    }
    if let Some(reason) = rec.reason {
        number(line, b",\"reason\":", reason);
    }
    line.extend_from_slice(b"}\n");
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
    format: Format,
    out: W,
    error: Option<io::Error>,
    /// The last instant formatted: records come in bursts at one instant.
    time: (SimTime, String),
    /// A compact line being made, reused: one write per line.
    line: Vec<u8>,
}

impl<'s, W: Write> Streamed<'s, W> {
    pub fn new(scenario: &'s Scenario, format: Format, out: W) -> Self {
        Streamed {
            scenario,
            format,
            out,
            error: None,
            time: (SimTime::ZERO, scenario.instant(SimTime::ZERO)),
            line: Vec::new(),
        }
    }

    /// Whether every record was written: the first error, if any.
    pub fn finish(self) -> io::Result<()> {
        self.error.map_or(Ok(()), Err)
    }
}

impl<W: Write> Streamed<'_, W> {
    /// Writes one record (the sink's work, for callers that also keep the record).
    pub fn write(&mut self, rec: &Record<Obs>) {
        if self.error.is_some() {
            return;
        }
        let written = match self.format {
            Format::Compact => {
                self.line.clear();
                compact_line(self.scenario, rec, &mut self.line);
                self.out.write_all(&self.line)
            }
            Format::Full => {
                if self.time.0 != rec.at {
                    self.time = (rec.at, self.scenario.instant(rec.at));
                }
                write_line(self.scenario, rec, &self.time.1, &mut self.out)
            }
        };
        if let Err(e) = written {
            self.error = Some(e);
        }
    }
}

impl<W: Write> Sink<Obs> for Streamed<'_, W> {
    fn record(&mut self, rec: Record<Obs>) {
        self.write(&rec);
    }
}
