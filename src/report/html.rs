//! The HTML report: one self-contained file (inline CSS and SVG, no script, no fetch) that a
//! browser opens and a printer prints.

use std::fmt::Write as _;

use crate::engine::SimTime;
use crate::run::Run;

use super::describe::{Outcome, describe};
use super::summary::{rows, standing_note};
use crate::analysis::summary::Summary;
use crate::analysis::verdicts::Verdict;

/// Escapes text for HTML content and attribute values.
#[must_use]
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg-soft: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
       max-width: 1440px; margin: 0 auto; padding: 24px 32px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
p.desc { margin: 4px 0 8px; max-width: 75em; }
p.meta { color: var(--muted); font-size: 13px; margin: 0; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--bg-soft); font-weight: 600; white-space: nowrap; }
td.num, td.time { white-space: nowrap; font-variant-numeric: tabular-nums; }
td.when { font-variant-numeric: tabular-nums; }
tr.failed td { background: #fff1f0; }
.pill { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.st-unaffected { background: #e8f5e9; color: #1b5e20; } .st-recovered { background: #e3f2fd; color: #0d47a1; }
.st-latent { background: #fff8e1; color: #e65100; } .st-blocked { background: #fce4ec; color: #880e4f; }
.st-broken { background: #ffebee; color: #b71c1c; }
.sd-unaffected { background: #e8f5e9; color: #1b5e20; } .sd-latent { background: #fff8e1; color: #e65100; }
.sd-broken { background: #ffebee; color: #b71c1c; } .sd-blocked { background: #fce4ec; color: #880e4f; }
.sd-recovered { background: #e3f2fd; color: #0d47a1; }
.ok { color: #1b5e20; font-weight: 600; } .fail { color: #b71c1c; font-weight: 600; }
.chart { border: 1px solid var(--line); border-radius: 6px; padding: 8px; overflow-x: auto; }
.chart svg { width: 100%; height: auto; display: block; }
.chart.print { display: none; }
/* A table wider than a narrow window scrolls within its own box; the page never does. On a
   screen its first column and its ids keep to one line and its last column and other sentences
   to a few, so that a narrow window scrolls the table rather than stacking each row a word per
   line. */
.wide { overflow-x: auto; }
@media screen {
  .wide td:first-child, .wide td.id { white-space: nowrap; }
  .wide td:last-child { min-width: 16em; }
  .wide td.text { min-width: 12em; }
}
.keys li { margin: 2px 0; }
code { font-size: 12px; background: var(--bg-soft); padding: 1px 4px; border-radius: 4px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  h2 { break-after: avoid; }
  .chart { border: none; padding: 0; overflow: visible; }
  .chart.screen { display: none; }
  .wide { overflow: visible; }
  .chart.print { display: block; }
  /* 560 pixels drawn across the page's 720 or so: the chart's smallest text prints at 8.5
     points. It starts a page, without the heading its own title repeats, so that a chart of a
     dozen lanes fits one page and a taller one runs on from the top of it. */
  section.timeline { break-before: page; }
  section.timeline h2 { display: none; }
  table { font-size: 10px; } tr { break-inside: avoid; }
}
"#;

/// What the report shows besides the run itself.
pub struct HtmlInput<'a> {
    pub file: &'a str,
    pub summary: &'a Summary,
    pub verdicts: &'a [Verdict],
    /// The timeline chart as SVG.
    pub svg: &'a str,
    /// The same chart [`crate::report::chart::PRINT_WIDTH`] wide, for print.
    pub print_svg: &'a str,
    /// Each key's blast radius at the end of the run.
    pub impacts: &'a [crate::analysis::impact::Impact],
    /// The events to list: every one of a short run, a selection of a long one.
    pub events: &'a crate::analysis::timeline::Shown,
}

/// The report as one HTML document.
#[must_use]
pub fn render(run: &Run<'_>, input: &HtmlInput<'_>) -> String {
    let s = run.scenario;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>kmsim: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&s.name)
    );
    let _ = writeln!(h, "<header>\n<h1>{}</h1>", esc(&s.name));
    if let Some(d) = &s.description {
        let _ = writeln!(h, "<p class=\"desc\">{}</p>", esc(d));
    }
    let _ = writeln!(
        h,
        "<p class=\"meta\"><code>{}</code> · seed {} · start {} · horizon {} · {} events · account {} · {}</p>\n</header>",
        esc(input.file),
        s.seed,
        esc(&s.instant(SimTime::ZERO)),
        s.horizon.since_start(),
        run.stats.records,
        esc(&s.account),
        esc(&s.region)
    );

    h.push_str("<section>\n<h2>What broke, and when</h2>\n");
    if input.summary.resources.is_empty() {
        h.push_str("<p>The scenario has no volumes or instances.</p>\n");
    } else {
        h.push_str(
            "<div class=\"wide\"><table>\n<thead><tr><th>Resource</th><th>Key</th><th>Key unusable from</th><th>Last good use</th>\
             <th>Finally broke</th><th>Latent window</th><th>Recovered</th><th>Status</th><th>At the end</th></tr></thead>\n<tbody>\n",
        );
        for row in rows(input.summary) {
            let at_end = input
                .summary
                .resources
                .iter()
                .find(|r| *r.name == *row[0])
                .map_or(String::new(), |r| r.at_end.to_string());
            let _ = write!(h, "<tr>");
            for (i, cell) in row.iter().enumerate() {
                if i == 7 {
                    let _ = write!(h, "<td><span class=\"pill st-{0}\">{0}</span></td>", esc(cell));
                } else if (2..=6).contains(&i) {
                    // The table reads at a glance: an offset to its two largest units (the
                    // timeline below and the trace give every millisecond).
                    let _ = write!(h, "<td class=\"when\">{}</td>", esc(&short_times(cell)));
                } else {
                    let _ = write!(h, "<td>{}</td>", esc(cell));
                }
            }
            let _ = writeln!(h, "<td>{}</td></tr>", esc(&at_end));
        }
        h.push_str("</tbody>\n</table></div>\n");
        let (listed, left_out) = crate::analysis::summary::shown(input.summary);
        if let Some(left_out) = left_out {
            let _ = writeln!(h, "<p>{}.</p>", esc(&left_out));
        }
        let notes: Vec<String> = listed
            .iter()
            .filter_map(|r| standing_note(r).map(|note| format!("<strong>{}</strong>{}.", esc(&r.name), esc(note))))
            .collect();
        if !notes.is_empty() {
            let _ = writeln!(h, "<ul>{}</ul>", notes.iter().map(|n| format!("<li>{n}</li>")).collect::<String>());
        }
    }
    h.push_str("</section>\n");

    if input.impacts.iter().any(|i| !i.dependents.is_empty() || i.gone_count > 0) {
        let _ = writeln!(h, "<section>\n<h2>Blast radius at the end ({})</h2>", run.end);
        h.push_str(
            "<div class=\"wide\"><table>\n<thead><tr><th>Key</th><th>Dependent</th><th>Standing</th><th>State</th><th>When</th><th>Via</th></tr></thead>\n<tbody>\n",
        );
        for i in input.impacts {
            for d in i.dependents.iter().take(crate::analysis::impact::DEPENDENTS_LISTED) {
                let _ = writeln!(
                    h,
                    "<tr><td>{0} ({1})</td><td class=\"id\">{2}</td><td><span class=\"pill sd-{3}\">{3}</span></td><td class=\"text\">{4}</td><td class=\"text\">{5}</td><td>{6}</td></tr>",
                    esc(&i.key),
                    esc(&i.key_state),
                    esc(&d.name),
                    esc(d.standing.as_str()),
                    esc(&d.state),
                    esc(&crate::report::impact::when_words(d)),
                    esc(&d.via)
                );
            }
            if let Some(more) = crate::report::impact::more_dependents(i) {
                let _ = writeln!(
                    h,
                    "<tr><td>{0} ({1})</td><td colspan=\"5\">{2}</td></tr>",
                    esc(&i.key),
                    esc(&i.key_state),
                    esc(&more)
                );
            }
            for d in i.gone.iter().take(crate::analysis::impact::DEPENDENTS_LISTED) {
                let _ = writeln!(
                    h,
                    "<tr><td>{0} ({1})</td><td class=\"id\">{2}</td><td><span class=\"pill sd-broken\">gone</span></td><td class=\"text\">{3}</td><td class=\"text\">{4}</td><td>no longer depends on it</td></tr>",
                    esc(&i.key),
                    esc(&i.key_state),
                    esc(&d.name),
                    esc(&d.state),
                    esc(&crate::report::impact::gone_when(d)),
                );
            }
            if i.gone_count > crate::analysis::impact::DEPENDENTS_LISTED {
                let more = i.gone_count - crate::analysis::impact::DEPENDENTS_LISTED;
                let _ = writeln!(
                    h,
                    "<tr><td>{0} ({1})</td><td colspan=\"5\">{more} more gone not listed</td></tr>",
                    esc(&i.key),
                    esc(&i.key_state),
                );
            }
        }
        h.push_str("</tbody>\n</table></div>\n</section>\n");
    }

    // The screen's chart, and a narrower one that a landscape page prints at a readable size.
    let _ = writeln!(
        h,
        "<section class=\"timeline\">\n<h2>Timeline</h2>\n<div class=\"chart screen\">\n{}\n</div>\n\
         <div class=\"chart print\">\n{}\n</div>\n</section>",
        inline_svg(input.svg),
        inline_svg(input.print_svg)
    );

    h.push_str("<section>\n<h2>Keys</h2>\n<ul class=\"keys\">\n");
    for k in &input.summary.keys {
        let end = k.state_at_end.map_or("deleted".to_string(), |st| st.to_string());
        let arn = &s.key(k.key).spec.arn;
        let _ =
            writeln!(h, "<li><strong>{}</strong> <code>{}</code>: {} at the end", esc(&k.name), esc(arn), esc(&end));
        h.push_str("<ul>");
        for (t, from, to, why) in &k.changes {
            let to = to.map_or("deleted".to_string(), |st| st.to_string());
            let change = from.map_or(format!("created, {to}"), |f| format!("{f} → {to}"));
            let _ = write!(h, "<li>{} {}: {}</li>", t, esc(&change), esc(why));
        }
        h.push_str("</ul>");
        if k.several_materials {
            h.push_str("Materials:<ul>");
            for (t, what) in &k.material_events {
                let _ = write!(h, "<li>{t} {}</li>", esc(what));
            }
            let _ = write!(h, "<li>at the end: {}</li>", esc(&crate::report::summary::materials_words(k)));
            h.push_str("</ul>");
        }
        h.push_str("</li>\n");
    }
    h.push_str("</ul>\n</section>\n");

    if !input.verdicts.is_empty() {
        let held = input.verdicts.iter().filter(|v| v.held).count();
        let _ = writeln!(h, "<section>\n<h2>Expectations: {held} of {} held</h2>", input.verdicts.len());
        h.push_str(
            "<div class=\"wide\"><table>\n<thead><tr><th></th><th>Expected</th><th>Found</th></tr></thead>\n<tbody>\n",
        );
        for v in input.verdicts {
            let (class, mark) = if v.held { ("ok", "held") } else { ("fail", "FAILED") };
            let row_class = if v.held { "" } else { " class=\"failed\"" };
            let _ = writeln!(
                h,
                "<tr{row_class}><td class=\"{class}\">{mark}</td><td>{}</td><td>{}</td></tr>",
                esc(&v.expected),
                esc(v.found.as_deref().unwrap_or(""))
            );
        }
        h.push_str("</tbody>\n</table></div>\n</section>\n");
    }

    let events = input.events;
    match &events.left_out {
        None => {
            let _ = writeln!(h, "<section class=\"events\">\n<h2>All events ({})</h2>", events.total);
        }
        Some(left_out) => {
            let _ = writeln!(
                h,
                "<section class=\"events\">\n<h2>Events</h2>\n<p>{}. <code>trace.jsonl</code> beside this page holds every one.</p>",
                esc(left_out)
            );
        }
    }
    h.push_str(
        "<div class=\"wide\"><table>\n<thead><tr><th>#</th><th>Time (UTC)</th><th>Offset</th><th>Subject</th><th>Event</th><th>Result</th><th>Detail</th></tr></thead>\n<tbody>\n",
    );
    for row in &events.rows {
        let Some((r, lives)) = row else {
            h.push_str("<tr class=\"gap\"><td colspan=\"7\">…</td></tr>\n");
            continue;
        };
        let d = describe(&run.names.pinned(lives), r);
        let (row_class, result) = match d.outcome {
            Outcome::Ok => ("", "ok".to_string()),
            Outcome::Failed => (
                " class=\"failed\"",
                format!("<span class=\"fail\">{}</span>", esc(d.error.as_deref().unwrap_or("failed"))),
            ),
            Outcome::Info => ("", String::new()),
        };
        let _ = writeln!(
            h,
            "<tr{row_class}><td class=\"num\">{}</td><td class=\"time\">{}</td><td class=\"time\">{}</td><td class=\"id\">{}</td><td>{}</td><td>{result}</td><td>{}</td></tr>",
            r.id,
            esc(&s.instant(r.at)),
            r.at,
            esc(&d.subject),
            esc(d.event),
            esc(&d.message)
        );
    }
    h.push_str("</tbody>\n</table></div>\n</section>\n");
    let _ = writeln!(
        h,
        "<footer>Generated by kmsim {} from <code>{}</code>. Same scenario and seed, same report.</footer>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION"),
        esc(input.file)
    );
    h
}

/// The chart's SVG without its XML declaration, scalable to the page's width.
fn inline_svg(svg: &str) -> String {
    let body = svg.trim_start();
    let body =
        if body.starts_with("<?xml") { body.split_once("?>").map_or(body, |(_, b)| b.trim_start()) } else { body };
    match (body.find("width=\""), body.find("height=\"")) {
        (Some(_), Some(_)) if !body.contains("viewBox") => {
            let w = attr(body, "width").unwrap_or_default();
            let ht = attr(body, "height").unwrap_or_default();
            body.replacen("<svg ", &format!("<svg viewBox=\"0 0 {w} {ht}\" "), 1)
        }
        _ => body.to_string(),
    }
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

/// `cell` with each duration or offset in it (`+23h 28m 25s 241ms`) cut to its two largest
/// units (`+23h 28m`); the other words stay.
fn short_times(cell: &str) -> String {
    let is_part = |w: &str| {
        let w = w.strip_prefix('+').unwrap_or(w);
        let digits = w.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && matches!(&w[digits..], "d" | "h" | "m" | "s" | "ms")
    };
    let mut out: Vec<&str> = Vec::new();
    let mut run = 0;
    for w in cell.split(' ') {
        if is_part(w) {
            run += 1;
            if run > 2 {
                continue;
            }
        } else {
            run = 0;
        }
        out.push(w);
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_cut_to_their_two_largest_units() {
        assert_eq!(super::short_times("+23h 28m 25s 241ms Query"), "+23h 28m Query");
        assert_eq!(super::short_times("+1d 5m ResourceStateChanged x"), "+1d 5m ResourceStateChanged x");
        assert_eq!(super::short_times("4m 42s 981ms"), "4m 42s");
        assert_eq!(super::short_times(">= 2d 3h 4m (open)"), ">= 2d 3h (open)");
        assert_eq!(super::short_times("-"), "-");
    }
}
