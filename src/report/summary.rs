//! The summary in words: the terminal's table, the notes under it, and the Markdown for a
//! ticket. The facts are [`crate::analysis::summary`]'s.

use std::fmt::Write as _;

use crate::analysis::standing::Standing;
use crate::analysis::summary::{ResourceSummary, Summary, shown};
use crate::engine::SimTime;

/// One row per resource listed ([`shown`]) and break: resource, key, key unusable from, last
/// good use, finally broke, latent window, recovered, status.
#[must_use]
pub fn rows(summary: &Summary) -> Vec<[String; 8]> {
    let mut rows: Vec<[String; 8]> = Vec::new();
    for r in shown(summary).0 {
        let key: String = r.key.as_deref().unwrap_or("-").to_string();
        let good = |g: Option<(SimTime, &str)>| g.map_or("-".into(), |(t, what)| format!("{t} {what}"));
        if r.breaks.is_empty() {
            let unusable = r.unusable_since.map_or_else(|| "-".into(), |t| t.to_string());
            let latent = r.latent_since().map_or_else(|| "-".into(), |t| format!(">= {} (open)", summary.end - t));
            rows.push([
                r.name.to_string(),
                key.clone(),
                unusable,
                good(r.last_good_use),
                "-".into(),
                latent,
                "-".into(),
                r.status.as_str().into(),
            ]);
        }
        for b in &r.breaks {
            rows.push([
                r.name.to_string(),
                key.clone(),
                match (b.loss_at, b.key_was_usable) {
                    (Some(t), _) => t.to_string(),
                    (None, false) if b.key.is_some() => "never usable".into(),
                    (None, _) => "-".into(),
                },
                good(b.last_good_use),
                format!("{} {}", b.broke_at, b.how),
                b.latent_window().map_or("-".into(), |d| d.to_string()),
                b.recovered_at.map_or("-".into(), |t| t.to_string()),
                r.status.as_str().into(),
            ]);
        }
    }
    rows
}

/// A key's materials at the end, as ListKeyRotations lists them: `m1 NON_CURRENT, m2 CURRENT
/// (PENDING_IMPORT)`.
#[must_use]
pub fn materials_words(k: &crate::analysis::summary::KeySummary) -> String {
    if k.materials_at_end.is_empty() {
        return "none".to_string();
    }
    k.materials_at_end
        .iter()
        .map(|(name, state, imported)| {
            let imported = if *imported { "" } else { " (PENDING_IMPORT)" };
            format!("{name} {}{imported}", state.as_str())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The summary as text, for the terminal.
#[must_use]
pub fn render(summary: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Keys");
    for k in &summary.keys {
        let end = k.state_at_end.map_or("deleted".to_string(), |s| s.to_string());
        let _ = writeln!(out, "  {}: {end} at the end", k.name);
        for (t, from, to, why) in &k.changes {
            let to = to.map_or("deleted".to_string(), |s| s.to_string());
            let change = match from {
                None => format!("created, {to}"),
                Some(f) => format!("{f} -> {to}"),
            };
            let _ = writeln!(out, "    {:<10} {change:<32} {why}", t.to_string());
        }
        for l in &k.losses {
            let span = match (l.restored_at, l.deleted_at) {
                (Some(r), _) => format!("usable again at {r}, after {}", r - l.at),
                (None, Some(d)) => format!("deleted at {d}: never usable again"),
                (None, None) => format!("still unusable at the end ({} so far)", summary.end - l.at),
            };
            let _ = writeln!(out, "    unusable from {} ({}): {span}", l.at, l.why);
        }
        if k.several_materials {
            let _ = writeln!(out, "    materials:");
            for (t, what) in &k.material_events {
                let _ = writeln!(out, "      {:<10} {what}", t.to_string());
            }
            let _ = writeln!(out, "      at the end: {}", materials_words(k));
        }
    }
    let _ = writeln!(out, "\nResources");
    if summary.resources.is_empty() {
        let _ = writeln!(out, "  (the scenario has no volumes or instances)");
        return out;
    }
    let header =
        ["RESOURCE", "KEY", "KEY UNUSABLE", "LAST GOOD USE", "FINALLY BROKE", "LATENT WINDOW", "RECOVERED", "STATUS"];
    let rows = rows(summary);
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut l = String::from(" ");
        for (cell, w) in cells.iter().zip(widths) {
            let _ = write!(l, " {cell:<w$} ");
        }
        l.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(&header.map(String::from)));
    for row in &rows {
        let _ = writeln!(out, "{}", line(row));
    }
    let (listed, left_out) = shown(summary);
    let mut notes = Vec::new();
    if let Some(left_out) = left_out {
        notes.push(format!("({left_out}.)"));
    }
    for r in listed {
        if let Some(note) = standing_note(r) {
            notes.push(format!("{}{note}", r.name));
        }
        notes.push(format!("{} at the end: {}", r.name, r.at_end));
    }
    let _ = writeln!(out);
    for n in notes {
        let _ = writeln!(out, "  {n}");
    }
    out
}

/// What a latent or blocked resource's standing means for it, in words that follow its name.
#[must_use]
pub fn standing_note(r: &ResourceSummary) -> Option<&'static str> {
    match (r.status, r.kind) {
        (Standing::Latent, "image") => {
            Some(": a snapshot of it cannot be read, which only a launch needs: its next launch will fail")
        }
        (Standing::Latent, "snapshot") => Some(
            ": its key cannot decrypt its data key, which it needs only when read: its next restore or copy will fail",
        ),
        (Standing::Latent, "rds instance" | "aurora cluster" | "redshift cluster") => Some(
            ": its service holds its data key and has not noticed the key yet: it breaks when it does (D12) or at its next reboot",
        ),
        (Standing::Latent, "dynamodb table") => {
            Some(": DynamoDB still holds its table key: it breaks at the next refresh or when DynamoDB notices (D12)")
        }
        (Standing::Latent, "s3 bucket") => Some(": S3 still holds its bucket key: requests fail once it expires (D11)"),
        (Standing::Latent, "efs file system") => Some(": mounted, it works on for its grace period (D11), then stops"),
        (Standing::Latent, "lambda function") => {
            Some(": a warm execution environment holds its decrypted variables: its next cold start fails (D23)")
        }
        (Standing::Latent, _) => Some(
            " still runs on its cached plaintext data key: it will break at its next detach, stop or host maintenance",
        ),
        (Standing::Blocked, "instance") => {
            Some(": its key is unusable and no host holds its data key, so its next start will fail")
        }
        (Standing::Blocked, "volume") => {
            Some(": its key is unusable and no host holds its data key, so its next attach will fail")
        }
        (Standing::Blocked, _) => {
            Some(": its key is unusable and its service holds no plaintext data key, so its next request will fail")
        }
        _ => None,
    }
}

/// The per-resource table as Markdown, for tickets and pull requests.
#[must_use]
pub fn markdown(summary: &Summary, title: &str) -> String {
    let mut out = format!("### {title}\n\n");
    out.push_str(
        "| Resource | Key | Key unusable from | Last good use | Finally broke | Latent window | Recovered | Status |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    for row in rows(summary) {
        let _ = writeln!(out, "| {} |", row.map(|c| c.replace('|', "\\|")).join(" | "));
    }
    if let Some(left_out) = shown(summary).1 {
        let _ = writeln!(out, "\n{left_out}.");
    }
    for k in &summary.keys {
        for l in &k.losses {
            let span = match (l.restored_at, l.deleted_at) {
                (Some(r), _) => format!("usable again at {r}"),
                (None, Some(d)) => format!("deleted at {d}"),
                (None, None) => "still unusable at the end".to_string(),
            };
            let _ = writeln!(out, "\nKey `{}` unusable from {} ({}); {span}.", k.name, l.at, l.why);
        }
        if k.several_materials {
            let _ = writeln!(out, "\nKey `{}` materials at the end: {}.", k.name, materials_words(k));
        }
    }
    out
}

/// What `kmsim run --format json` prints (`docs/schemas/run.schema.json`): the run's summary
/// (each key, each resource listed and its breaks, standing and state at the end) and the
/// expectations' verdicts, instants as millisecond offsets with the RFC 3339 instants beside.
#[must_use]
pub fn json(
    summary: &Summary,
    verdicts: &[crate::analysis::verdicts::Verdict],
    scenario: &crate::scenario::Scenario,
    file: &str,
    records: u64,
) -> String {
    use serde_json::{Value, json};
    let at = |t: Option<SimTime>| t.map_or(Value::Null, |t| json!(t.as_ms()));
    let utc = |t: Option<SimTime>| t.map_or(Value::Null, |t| json!(scenario.instant(t)));
    let good = |g: Option<(SimTime, &str)>| {
        g.map_or(Value::Null, |(t, what)| json!({"at": t.as_ms(), "at_utc": scenario.instant(t), "what": what}))
    };
    let (listed, rest) = shown(summary);
    let resources: Vec<Value> = listed
        .iter()
        .map(|r| {
            let breaks: Vec<Value> = r
                .breaks
                .iter()
                .map(|b| {
                    json!({
                        "key": b.key.map(|k| scenario.key(k).name.clone()),
                        "key_unusable_from": at(b.loss_at), "key_unusable_from_utc": utc(b.loss_at),
                        "key_was_usable": b.key_was_usable,
                        "last_good_use": good(b.last_good_use),
                        "broke_at": b.broke_at.as_ms(), "broke_at_utc": scenario.instant(b.broke_at),
                        "how": {"action": b.how.action, "code": b.how.code},
                        "latent_window_ms": b.latent_window().map(|d| d.as_ms()),
                        "recovered_at": at(b.recovered_at), "recovered_at_utc": utc(b.recovered_at),
                    })
                })
                .collect();
            json!({
                "name": &*r.name, "kind": r.kind, "key": r.key.as_deref(),
                "standing": r.status.as_str(),
                "last_good_use": good(r.last_good_use),
                "latent_since": at(r.latent_since()), "latent_since_utc": utc(r.latent_since()),
                "at_end": r.at_end.to_string(),
                "breaks": breaks,
            })
        })
        .collect();
    let keys: Vec<Value> = summary
        .keys
        .iter()
        .map(|k| {
            json!({
                "name": &*k.name, "arn": scenario.key(k.key).spec.arn,
                "state_at_end": k.state_at_end.map_or("deleted".to_string(), |st| st.to_string()),
                "materials_at_end": materials_words(k),
            })
        })
        .collect();
    let doc = json!({
        "version": crate::analysis::JSON_VERSION,
        "scenario": scenario.name, "file": file, "seed": scenario.seed,
        "start": scenario.instant(SimTime::ZERO), "horizon_ms": scenario.horizon.as_ms(),
        "records": records,
        "keys": keys,
        "resources_total": summary.resources.len(),
        "resources_not_listed": rest,
        "resources": resources,
        "expectations": verdicts,
    });
    serde_json::to_string_pretty(&doc).expect("json") + "\n"
}
