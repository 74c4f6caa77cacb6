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
pub mod impact;
pub mod junit;
pub mod summary;
pub mod trace;

use std::fmt::Write as _;

use crate::analysis::timeline::{Shown, TimelineFold};
use crate::analysis::{lanes, summary as facts, verdicts};
use crate::engine::SimTime;
use crate::run::{Names, Run};
use describe::{Outcome, describe};

/// The files of a report folder for a run whose records were kept, by name, in the order they
/// are written.
#[must_use]
pub fn bundle(run: &Run<'_>, file: &str) -> Vec<(&'static str, Vec<u8>)> {
    let summary = facts::summarize(run);
    let verdicts = verdicts::evaluate(run, &summary);
    let lanes = lanes::build(run, &summary);
    let mut events = TimelineFold::new(run.scenario);
    run.records.iter().for_each(|r| events.observe(&run.names, r));
    let events = events.select(&run.names);
    let mut files = report_files(
        &ReportParts { run, summary: &summary, verdicts: &verdicts, lanes: &lanes, events: &events },
        file,
    );
    let mut jsonl = Vec::new();
    trace::write_all(run, trace::report_format(run.scenario), &mut jsonl).expect("writing to memory cannot fail");
    files.insert(3, ("trace.jsonl", jsonl));
    files
}

/// What a report is made of: the run (its records need not have been kept) and what the folds
/// made of it.
pub struct ReportParts<'a, 's> {
    pub run: &'a Run<'s>,
    pub summary: &'a facts::Summary,
    pub verdicts: &'a [verdicts::Verdict],
    pub lanes: &'a lanes::Lanes,
    pub events: &'a Shown,
}

/// The files of a report folder but its trace (`trace.jsonl`, written as the run goes), by
/// name, in the order they are written.
#[must_use]
pub fn report_files(parts: &ReportParts<'_, '_>, file: &str) -> Vec<(&'static str, Vec<u8>)> {
    let run = parts.run;
    let start = run.scenario.start.strftime("%Y-%m-%d %H:%M UTC");
    let subtitle = format!("{file} · seed {} · {start} + {}", run.scenario.seed, run.scenario.horizon.since_start());
    let input = chart::ChartInput {
        title: &run.scenario.name,
        subtitle: &subtitle,
        start: run.scenario.start,
        lanes: parts.lanes,
    };
    let svg = chart::svg(&input);
    let print_svg = chart::svg_at(&input, chart::PRINT_WIDTH);
    let png = chart::png(&input);
    let impacts = crate::analysis::impact::at_end(run, parts.summary, Some(crate::analysis::impact::DEPENDENTS_LISTED));
    let html = html::render(
        run,
        &html::HtmlInput {
            file,
            summary: parts.summary,
            verdicts: parts.verdicts,
            svg: &svg,
            print_svg: &print_svg,
            impacts: &impacts,
            events: parts.events,
        },
    );
    let md = summary::markdown(parts.summary, &run.scenario.name);
    vec![
        ("timeline.svg", svg.into_bytes()),
        ("timeline.png", png),
        ("summary.md", md.into_bytes()),
        ("report.html", html.into_bytes()),
    ]
}

/// Everything `kmsim run` prints for a run whose records were kept: a header, the timeline,
/// the summary and the expectations.
#[must_use]
pub fn run_text(run: &Run<'_>, file: &str) -> String {
    let sum = facts::summarize(run);
    let verdicts = verdicts::evaluate(run, &sum);
    run_text_of(run, file, &timeline(run), &sum, &verdicts)
}

/// What `kmsim run` prints, from its parts: the run (its records need not have been kept), the
/// timeline as text, its summary and verdicts.
#[must_use]
pub fn run_text_of(
    run: &Run<'_>,
    file: &str,
    timeline: &str,
    sum: &facts::Summary,
    verdicts: &[verdicts::Verdict],
) -> String {
    let s = run.scenario;
    let mut out = String::new();
    let _ = writeln!(out, "{}", s.name);
    let _ = writeln!(
        out,
        "{file} · seed {} · start {} · horizon {} · {} events\n",
        s.seed,
        s.instant(SimTime::ZERO),
        s.horizon.since_start(),
        run.stats.records
    );
    out.push_str(timeline);
    out.push('\n');
    out.push_str(&summary::render(sum));
    let _ = writeln!(out, "\nBlast radius at the end ({})", run.end);
    out.push_str(&crate::report::impact::render_compact(&crate::analysis::impact::at_end(
        run,
        sum,
        Some(crate::analysis::impact::DEPENDENTS_LISTED),
    )));
    if !verdicts.is_empty() {
        let held = verdicts.iter().filter(|v| v.held).count();
        let _ = writeln!(out, "\nExpectations: {held} of {} held", verdicts.len());
        for v in verdicts {
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
    let mut fold = TimelineFold::new(run.scenario);
    run.records.iter().for_each(|r| fold.observe(&run.names, r));
    timeline_text(&run.names, &fold.select(&run.names))
}

/// The records a timeline shows, as text, each named as it was when it was kept.
#[must_use]
pub fn timeline_text(names: &Names<'_>, shown: &Shown) -> String {
    let rows: Vec<Option<&crate::analysis::timeline::Kept>> = shown.rows.iter().map(Option::as_ref).collect();
    let mut out = rows_text_with_gaps(names, &rows, shown.total);
    if let Some(left_out) = &shown.left_out {
        let _ = writeln!(out, "({left_out}. `--trace FILE` writes every one.)");
    }
    out
}

/// Aligned rows, a `...` line where records were left out (`None`).
fn rows_text_with_gaps(
    names: &Names<'_>,
    records: &[Option<&crate::analysis::timeline::Kept>],
    total: usize,
) -> String {
    let rows: Vec<_> = records.iter().map(|r| r.map(|(r, lives)| (r, describe(&names.pinned(lives), r)))).collect();
    let described = || rows.iter().flatten();
    let subject_w = described().map(|(_, d)| d.subject.chars().count()).max().unwrap_or(0).max(7);
    let event_w = described().map(|(_, d)| d.event.len()).max().unwrap_or(0).max(5);
    let offset_w = described().map(|(r, _)| r.at.to_string().len()).max().unwrap_or(0).max(6);
    let seq_w = total.to_string().len() + 1;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<seq_w$}  {:<24}  {:<offset_w$}  {:<subject_w$}  {:<event_w$}  {:<6}  DETAIL",
        "#", "TIME (UTC)", "OFFSET", "SUBJECT", "EVENT", "RESULT"
    );
    for row in rows {
        let Some((r, d)) = row else {
            let _ = writeln!(out, "...");
            continue;
        };
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
            names.scenario.instant(r.at),
            r.at.to_string(),
            d.subject,
            d.event,
        );
    }
    out
}
