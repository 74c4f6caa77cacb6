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
//! for traces of millions of events. The CSV form ([`Format::Csv`]) has the compact form's
//! fields as cells under a header line ([`CSV_HEADER`]), a null an empty cell, a name quoted
//! where RFC 4180 says it must be: about half the compact form's size again, and what
//! spreadsheets and data frames read most readily.
//!
//! A run streams its trace through [`in_background`]: records go in batches to a second thread
//! that formats and writes them, so the trace is never held in memory and is written beside
//! the simulation.

use std::io::{self, Write};
use std::sync::mpsc;

use serde::Serialize;

use crate::actors::Obs;
use crate::engine::{Cause, Record, SimTime, Sink};
use crate::run::{Names, Run};
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
    /// The compact form's fields as comma-separated values under a header line, a null an
    /// empty cell.
    Csv,
}

/// Writes one record as a compact JSON line. Written by hand rather than through serde: at
/// millions of lines, escaping the fixed field names dominated the cost.
pub fn write_compact(names: &Names<'_>, rec: &Record<Obs>, out: &mut impl Write) -> io::Result<()> {
    let mut line = Vec::with_capacity(160);
    compact_line(names, rec, &mut Repeats::new(Format::Compact, false), &mut line);
    out.write_all(&line)
}

/// What consecutive lines of a trace repeat, made once: each actor's name as a line writes it,
/// and the digits of the last record's number and instant, or the instant in words (a record's
/// number is the last one's plus one, and records come in bursts at one instant).
struct Repeats {
    format: Format,
    /// Whether no actor or key name needs escaping (checked once, not on every line).
    plain: bool,
    /// Each actor's name field (`,"actor":"vol-1"`, or the CSV cell `vol-1,`), in `arena`
    /// from `start` for `len` bytes; a `len` of 0 is not yet made.
    spans: Vec<(u32, u32)>,
    arena: Vec<u8>,
    /// The last record's number and instant (0 before the first), as digits right-aligned in
    /// their buffers.
    seq: (u64, Digits),
    at: (SimTime, Digits),
    /// The full format's last instant, in words.
    instant: Option<(SimTime, String)>,
}

/// A number's decimal digits, right-aligned: `bytes[start..]`.
#[derive(Clone, Copy)]
struct Digits {
    bytes: [u8; 20],
    start: usize,
}

impl Digits {
    fn of(n: u64) -> Self {
        let mut bytes = [b'0'; 20];
        let mut text = itoa::Buffer::new();
        let text = text.format(n).as_bytes();
        let start = bytes.len() - text.len();
        bytes[start..].copy_from_slice(text);
        Digits { bytes, start }
    }

    /// The digits of the number one more.
    #[inline]
    fn increment(&mut self) {
        let last = self.bytes.len() - 1;
        if self.bytes[last] < b'9' {
            self.bytes[last] += 1;
            return;
        }
        for i in (0..self.bytes.len()).rev() {
            if self.bytes[i] == b'9' {
                self.bytes[i] = b'0';
            } else {
                self.bytes[i] += 1;
                self.start = self.start.min(i);
                return;
            }
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

impl Repeats {
    fn new(format: Format, plain: bool) -> Self {
        let zero = Digits::of(0);
        Repeats {
            format,
            plain,
            spans: Vec::new(),
            arena: Vec::new(),
            seq: (0, zero),
            at: (SimTime::ZERO, zero),
            instant: None,
        }
    }

    /// The digits of record number `id`.
    fn seq(&mut self, id: u64) -> &[u8] {
        let (last, digits) = &mut self.seq;
        if last.checked_add(1) == Some(id) {
            digits.increment();
        } else if *last != id {
            *digits = Digits::of(id);
        }
        *last = id;
        digits.as_bytes()
    }

    /// The digits of instant `at` in milliseconds.
    fn at(&mut self, at: SimTime) -> &[u8] {
        if self.at.0 != at {
            self.at = (at, Digits::of(at.as_ms()));
        }
        self.at.1.as_bytes()
    }

    /// Instant `at` in words, as the full format writes it.
    fn instant(&mut self, scenario: &Scenario, at: SimTime) -> &str {
        let (last, words) = self.instant.get_or_insert_with(|| (at, scenario.instant(at)));
        if *last != at {
            *last = at;
            *words = scenario.instant(at);
        }
        words
    }

    /// Appends the actor's name field of `rec` to `line`: made once per actor, unless the
    /// actor is an instance launched into another's place (its name changes with each launch).
    fn actor(&mut self, names: &Names<'_>, rec: &Record<Obs>, line: &mut Vec<u8>) {
        let i = rec.actor.index();
        let first_life = names.life(rec.actor, rec.id) == 0;
        if let Some(&(start, len)) = self.spans.get(i)
            && len > 0
            && first_life
        {
            line.extend_from_slice(&self.arena[start as usize..][..len as usize]);
            return;
        }
        let from = line.len();
        let name = names.at(rec.actor, rec.id);
        match self.format {
            Format::Csv => {
                cell(line, &name, self.plain);
                line.push(b',');
            }
            Format::Compact | Format::Full => self::name(line, b",\"actor\":", &name, self.plain),
        }
        // Spans are 32-bit: an arena past 4 GiB (no estate's names come near) stops growing.
        let made = &line[from..];
        if let (true, Ok(start), Ok(len)) = (first_life, u32::try_from(self.arena.len()), u32::try_from(made.len()))
            && start.checked_add(len).is_some()
        {
            if self.spans.len() <= i {
                self.spans.resize(i + 1, (0, 0));
            }
            self.spans[i] = (start, len);
            self.arena.extend_from_slice(made);
        }
    }
}

/// Whether no name a trace line can show (actor or key) needs escaping in `format`.
/// Where in the file the input `i` comes from: `timeline[3]`, `fleets[0]`.
fn input_path(scenario: &Scenario, i: u32) -> String {
    scenario.actions.get(i as usize).expect("an input cause names an action").source.path()
}

fn plain_names(scenario: &Scenario, format: Format) -> bool {
    let needs = match format {
        Format::Csv => needs_quotes,
        Format::Full | Format::Compact => needs_escape,
    };
    let names = scenario.instances.iter().map(|n| &**n);
    let mut names =
        names.chain(scenario.volumes.iter().map(|v| &*v.name)).chain(scenario.keys.iter().map(|k| &*k.name));
    names.all(|n| !needs(n))
}

/// Whether a CSV cell must be quoted (RFC 4180).
fn needs_quotes(s: &str) -> bool {
    s.bytes().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
}

fn needs_escape(s: &str) -> bool {
    s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\')
}

#[inline(always)]
fn number(line: &mut Vec<u8>, field: &[u8], n: u64) {
    line.extend_from_slice(field);
    line.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[inline(always)]
fn constant(line: &mut Vec<u8>, field: &[u8], s: &str) {
    line.extend_from_slice(field);
    line.push(b'"');
    line.extend_from_slice(s.as_bytes());
    line.push(b'"');
}

/// A name from the scenario, escaped unless the scenario has only `plain` names.
#[inline(always)]
fn name(line: &mut Vec<u8>, field: &[u8], s: &str, plain: bool) {
    if plain || !needs_escape(s) {
        constant(line, field, s);
    } else {
        line.extend_from_slice(field);
        serde_json::to_writer(&mut *line, s).expect("writing to memory");
    }
}

/// Appends one record's compact line to `line`. Event names, outcomes and error codes are ASCII
/// constants; only names from the scenario may need escaping (`plain`: none does).
fn compact_line(names: &Names<'_>, rec: &Record<Obs>, repeats: &mut Repeats, line: &mut Vec<u8>) {
    let scenario = names.scenario;
    let (key, outcome, error) = verdict(scenario, rec);
    line.extend_from_slice(b"{\"seq\":");
    line.extend_from_slice(repeats.seq(rec.id));
    line.extend_from_slice(b",\"t_ms\":");
    line.extend_from_slice(repeats.at(rec.at));
    repeats.actor(names, rec, line);
    if let Some(key) = key {
        name(line, b",\"key\":", key, repeats.plain);
    }
    constant(line, b",\"event\":", rec.obs.event_name());
    constant(line, b",\"outcome\":", outcome.as_str());
    if let Some(error) = error {
        constant(line, b",\"error\":", error);
    }
    match rec.cause {
        Cause::Record(id) => number(line, b",\"cause\":", id),
        Cause::Input(i) => name(line, b",\"action\":", &input_path(scenario, i), false),
    }
    if let Some(reason) = rec.reason {
        number(line, b",\"reason\":", reason);
    }
    line.extend_from_slice(b"}\n");
}

/// The first line of a CSV trace.
pub const CSV_HEADER: &str = "seq,t_ms,actor,key,event,outcome,error,cause,action,reason\n";

/// Writes one record as a CSV row (under [`CSV_HEADER`]).
pub fn write_csv_row(names: &Names<'_>, rec: &Record<Obs>, out: &mut impl Write) -> io::Result<()> {
    let mut line = Vec::with_capacity(96);
    csv_line(names, rec, &mut Repeats::new(Format::Csv, false), &mut line);
    out.write_all(&line)
}

/// A CSV cell from the scenario, quoted if it must be (`plain`: no name must).
#[inline(always)]
fn cell(line: &mut Vec<u8>, s: &str, plain: bool) {
    if plain || !needs_quotes(s) {
        line.extend_from_slice(s.as_bytes());
    } else {
        line.push(b'"');
        line.extend_from_slice(s.replace('"', "\"\"").as_bytes());
        line.push(b'"');
    }
}

#[inline(always)]
fn number_cell(line: &mut Vec<u8>, n: u64) {
    line.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends one record's CSV row to `line`: the compact line's fields, in the header's order.
fn csv_line(names: &Names<'_>, rec: &Record<Obs>, repeats: &mut Repeats, line: &mut Vec<u8>) {
    let scenario = names.scenario;
    let (key, outcome, error) = verdict(scenario, rec);
    line.extend_from_slice(repeats.seq(rec.id));
    line.push(b',');
    line.extend_from_slice(repeats.at(rec.at));
    line.push(b',');
    repeats.actor(names, rec, line);
    if let Some(key) = key {
        cell(line, key, repeats.plain);
    }
    line.push(b',');
    line.extend_from_slice(rec.obs.event_name().as_bytes());
    line.push(b',');
    line.extend_from_slice(outcome.as_str().as_bytes());
    line.push(b',');
    if let Some(error) = error {
        line.extend_from_slice(error.as_bytes());
    }
    line.push(b',');
    match rec.cause {
        Cause::Record(id) => {
            number_cell(line, id);
            line.push(b',');
        }
        Cause::Input(i) => {
            line.push(b',');
            cell(line, &input_path(scenario, i), false);
        }
    }
    line.push(b',');
    if let Some(reason) = rec.reason {
        number_cell(line, reason);
    }
    line.push(b'\n');
}

/// Writes one record as a JSON line.
pub fn write_record(names: &Names<'_>, rec: &Record<Obs>, out: &mut impl Write) -> io::Result<()> {
    write_line(names, rec, &names.scenario.instant(rec.at), out)
}

fn write_line(names: &Names<'_>, rec: &Record<Obs>, time: &str, out: &mut impl Write) -> io::Result<()> {
    let scenario = names.scenario;
    let d = describe(names, rec);
    let (cause, action) = match rec.cause {
        Cause::Record(id) => (Some(id), None),
        Cause::Input(i) => (None, Some(input_path(scenario, i))),
    };
    let line = Line {
        seq: rec.id,
        t_ms: rec.at.as_ms(),
        time,
        actor: &names.at(rec.actor, rec.id),
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

/// Writes every record of a finished run, in `format`.
pub fn write_all(run: &Run<'_>, format: Format, out: &mut impl Write) -> io::Result<()> {
    if format == Format::Csv {
        out.write_all(CSV_HEADER.as_bytes())?;
    }
    let mut repeats = Repeats::new(format, plain_names(run.scenario, format));
    let mut line = Vec::with_capacity(160);
    for rec in &run.records {
        line.clear();
        trace_line(&run.names, rec, &mut repeats, &mut line);
        out.write_all(&line)?;
    }
    Ok(())
}

/// Appends the line of `rec` in the trace's format (`repeats.format`) to `line`.
#[inline(always)]
fn trace_line(names: &Names<'_>, rec: &Record<Obs>, repeats: &mut Repeats, line: &mut Vec<u8>) {
    match repeats.format {
        Format::Compact => compact_line(names, rec, repeats, line),
        Format::Csv => csv_line(names, rec, repeats, line),
        Format::Full => {
            let instant = repeats.instant(names.scenario, rec.at);
            write_line(names, rec, instant, line).expect("writing to memory");
        }
    }
}

/// The form of a report's `trace.jsonl`: full, with a sentence per record, for an estate the
/// chart draws lane by lane; compact beyond (a fleet's run makes millions of records, and the
/// sentences would cost most of the report's time and space).
#[must_use]
pub fn report_format(scenario: &Scenario) -> Format {
    if scenario.volumes.len() + scenario.instances.len() > crate::analysis::lanes::MAX_LANES {
        Format::Compact
    } else {
        Format::Full
    }
}

/// The writing thread's writer: each record as it comes, so that a trace of any length takes
/// no memory beyond one buffer. The first write error stops the writing and is kept for
/// [`Streamed::finish`]; the run itself goes on (sinks cannot change it).
struct Streamed<'s, W: Write> {
    /// Kept up to date with each record, to name each instance auto scaling launches.
    names: Names<'s>,
    out: W,
    error: Option<io::Error>,
    /// Lines are made here, in place, and written out a chunk at a time: one copy per byte.
    buf: Vec<u8>,
    repeats: Repeats,
}

/// Lines accumulate to this size before a write: small enough to stay in the cache the
/// simulation also needs.
const CHUNK: usize = 64 * 1024;

impl<'s, W: Write> Streamed<'s, W> {
    fn new(scenario: &'s Scenario, format: Format, out: W) -> Self {
        let mut buf = Vec::with_capacity(CHUNK + 4096);
        if format == Format::Csv {
            buf.extend_from_slice(CSV_HEADER.as_bytes());
        }
        Streamed {
            names: Names::streaming(scenario),
            out,
            error: None,
            buf,
            repeats: Repeats::new(format, plain_names(scenario, format)),
        }
    }

    /// Writes what is buffered; whether every record was written: the first error, if any.
    fn finish(mut self) -> io::Result<()> {
        self.flush();
        self.error.map_or(Ok(()), Err)
    }

    fn flush(&mut self) {
        if self.error.is_none()
            && let Err(e) = self.out.write_all(&self.buf)
        {
            self.error = Some(e);
        }
        self.buf.clear();
    }

    fn write(&mut self, rec: &Record<Obs>) {
        // Names stay up to date after an error: a fold beside the writer reads them.
        self.names.observe(rec);
        if self.error.is_some() {
            return;
        }
        trace_line(&self.names, rec, &mut self.repeats, &mut self.buf);
        if self.buf.len() >= CHUNK {
            self.flush();
        }
    }
}

/// Records handed to the writing thread at a time.
const BATCH: usize = 4096;

/// The sink of [`in_background`]: it collects records into batches for the thread that formats
/// and writes them.
pub struct Handoff {
    batch: Vec<Record<Obs>>,
    to_writer: mpsc::SyncSender<Vec<Record<Obs>>>,
    spare: mpsc::Receiver<Vec<Record<Obs>>>,
}

impl Handoff {
    fn send(&mut self) {
        let next = self.spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(BATCH));
        // The writer only stops receiving once this side has hung up.
        let _ = self.to_writer.send(std::mem::replace(&mut self.batch, next));
    }
}

impl Sink<Obs> for Handoff {
    fn record(&mut self, rec: Record<Obs>) {
        self.batch.push(rec);
        if self.batch.len() == BATCH {
            self.send();
        }
    }
}

/// Runs `f` with a sink whose records a second thread formats and writes to `out` in order, a
/// chunk at a time: the simulation only moves each record into a batch, and the formatting
/// and the kernel's copy run beside it. At most a few batches wait at a time, so memory stays
/// flat however long the run. Returns what `f` returned and whether every record was written.
pub fn in_background<T>(
    scenario: &Scenario,
    format: Format,
    out: impl Write + Send,
    f: impl FnOnce(&mut Handoff) -> T,
) -> (T, io::Result<()>) {
    in_background_beside(scenario, format, out, |_, rec| Some(rec), f)
}

/// [`in_background`], with `beside` given each record on the writing thread once it is
/// written, and the names that know every record until it: a fold that needs records only
/// as they pass, run where there is time to spare (the simulating thread is the busier). It
/// gives back the records it lets go of, which the writing thread drops.
pub fn in_background_beside<T>(
    scenario: &Scenario,
    format: Format,
    out: impl Write + Send,
    mut beside: impl FnMut(&Names<'_>, Record<Obs>) -> Option<Record<Obs>> + Send,
    f: impl FnOnce(&mut Handoff) -> T,
) -> (T, io::Result<()>) {
    std::thread::scope(|scope| {
        let (to_writer, batches) = mpsc::sync_channel::<Vec<Record<Obs>>>(2);
        let (give_back, spare) = mpsc::sync_channel(2);
        let writer = scope.spawn(move || {
            let mut streamed = Streamed::new(scenario, format, out);
            for mut batch in batches {
                for rec in batch.drain(..) {
                    streamed.write(&rec);
                    if let Some(rec) = beside(&streamed.names, rec) {
                        crate::run::let_go(rec);
                    }
                }
                let _ = give_back.try_send(batch);
            }
            streamed.finish()
        });
        let mut handoff = Handoff { batch: Vec::with_capacity(BATCH), to_writer, spare };
        let value = f(&mut handoff);
        handoff.send();
        drop(handoff);
        let written = writer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (value, written)
    })
}

#[cfg(test)]
mod tests {
    use super::Digits;

    #[test]
    fn digits_count_on_as_itoa_writes_the_next_number() {
        for start in [0, 8, 9, 98, 99, 1_999, 10_u64.pow(19) - 2, u64::MAX - 3] {
            let mut digits = Digits::of(start);
            for n in start..start.saturating_add(3) {
                assert_eq!(digits.as_bytes(), itoa::Buffer::new().format(n).as_bytes());
                digits.increment();
            }
        }
    }
}
