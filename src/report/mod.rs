//! Outputs: pure functions of a finished run. They read records; they never drive the engine.
//!
//! - [`describe`]: one record in words, shared by every output;
//! - [`timeline`]: the run as aligned text, one line per record;
//! - [`trace`]: the run as JSON Lines, with stable fields;
//! - [`explain`]: the cause chain of a record;
//! - [`summary`]: per key and resource, what broke and when;
//! - [`standing`]: a resource's standing at an instant, the one verdict every output shows;
//! - [`verdicts`]: the scenario's expectations, judged against the run.

#![forbid(unsafe_code)]

pub mod chart;
pub mod cloudtrail;
pub mod describe;
pub mod explain;
pub mod html;
pub mod lanes;
pub mod standing;
pub mod summary;
pub mod trace;
pub mod verdicts;

use std::fmt::Write as _;

use crate::engine::SimTime;
use crate::run::Run;
use describe::{Outcome, describe};

/// The files of a report folder, by name, in the order they are written.
#[must_use]
pub fn bundle(run: &Run<'_>, file: &str) -> Vec<(&'static str, Vec<u8>)> {
    let sum = summary::summarize(run);
    let verdicts = verdicts::evaluate(run, &sum);
    let lanes = lanes::build(run, &sum);
    let start = run.scenario.start.strftime("%Y-%m-%d %H:%M UTC");
    let subtitle = format!("{file} · seed {} · {start} + {}", run.scenario.seed, run.scenario.horizon.since_start());
    let input =
        chart::ChartInput { title: &run.scenario.name, subtitle: &subtitle, start: run.scenario.start, lanes: &lanes };
    let svg = chart::svg(&input);
    let png = chart::png(&input);
    let impacts = crate::impact::at_end(run, &sum);
    let html =
        html::render(run, &html::HtmlInput { file, summary: &sum, verdicts: &verdicts, svg: &svg, impacts: &impacts });
    let md = summary::markdown(&sum, &run.scenario.name);
    let mut jsonl = Vec::new();
    trace::write_all(run, &mut jsonl).expect("writing to memory cannot fail");
    vec![
        ("timeline.svg", svg.into_bytes()),
        ("timeline.png", png),
        ("summary.md", md.into_bytes()),
        ("trace.jsonl", jsonl),
        ("report.html", html.into_bytes()),
    ]
}

/// Everything `kmsim run` prints: a header, the timeline, the summary and the expectations.
#[must_use]
pub fn run_text(run: &Run<'_>, file: &str) -> String {
    let s = run.scenario;
    let mut out = String::new();
    let _ = writeln!(out, "{}", s.name);
    let _ = writeln!(
        out,
        "{file} · seed {} · start {} · horizon {} · {} events\n",
        s.seed,
        s.instant(SimTime::ZERO),
        s.horizon.since_start(),
        run.records.len()
    );
    out.push_str(&timeline(run));
    out.push('\n');
    let sum = summary::summarize(run);
    out.push_str(&summary::render(&sum));
    let _ = writeln!(out, "\nBlast radius at the end ({})", run.end);
    out.push_str(&crate::impact::render_compact(&crate::impact::at_end(run, &sum)));
    let verdicts = verdicts::evaluate(run, &sum);
    if !verdicts.is_empty() {
        let held = verdicts.iter().filter(|v| v.held).count();
        let _ = writeln!(out, "\nExpectations: {held} of {} held", verdicts.len());
        for v in &verdicts {
            let mark = if v.held { "ok  " } else { "FAIL" };
            let _ = writeln!(out, "  {mark} {}", v.expected);
            if let Some(found) = &v.found {
                let _ = writeln!(out, "         found: {found}");
            }
        }
    }
    out
}

/// The run's records as a text timeline: `#seq  instant  offset  subject  event  outcome  detail`.
#[must_use]
pub fn timeline(run: &Run<'_>) -> String {
    let rows: Vec<_> = run.records.iter().map(|r| (r, describe(&run.names, r))).collect();
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
