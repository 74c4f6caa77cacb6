//! A key's blast radius in words and as a Graphviz graph: `kmsim impact`'s text, the run
//! summary's compact list and the DOT file. The facts are [`crate::analysis::impact`]'s.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::analysis::impact::{DEPENDENTS_LISTED, Dependent, Gone, Graph, Impact, NodeKind};
use crate::analysis::standing::Standing;
use crate::run::Run;

/// The impact as text, grouped by standing.
#[must_use]
pub fn render(impact: &Impact, run: &Run<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Key {} ({}) at {} ({}): {}",
        impact.key,
        impact.arn,
        impact.at,
        run.scenario.instant(impact.at),
        impact.key_state
    );
    if impact.dependents.is_empty() && impact.gone_count == 0 {
        out.push_str("  nothing depends on this key\n");
        return out;
    }
    let _ = writeln!(out, "  {}{}", counts(&impact.tally), gone_words(impact));
    if let Some(m) = &impact.material {
        let volumes: Vec<&Dependent> = impact.dependents.iter().filter(|d| d.kind == NodeKind::Volume).collect();
        let mine: Vec<&str> =
            volumes.iter().filter(|d| d.material.as_deref() == Some(m.as_str())).map(|d| d.name.as_str()).collect();
        let listed = mine.iter().take(10).copied().collect::<Vec<_>>().join(", ");
        let more = if mine.len() > 10 { format!(" and {} more", mine.len() - 10) } else { String::new() };
        let _ = writeln!(
            out,
            "  material {m} encrypts the data keys of {} of {} volumes{}{listed}{more}",
            mine.len(),
            volumes.len(),
            if mine.is_empty() { "" } else { ": " }
        );
        let _ = writeln!(
            out,
            "  but deleting or expiring any material that is not PENDING_ROTATION makes the whole key \
             PendingImport: every dependent below depends on {m}"
        );
    }
    let name_w = impact.dependents.iter().map(|d| d.name.len()).max().unwrap_or(0);
    let state_w = impact.dependents.iter().map(|d| d.state.len()).max().unwrap_or(0);
    for (standing, title) in GROUPS {
        let members: Vec<&Dependent> = impact.dependents.iter().filter(|d| d.standing == standing).collect();
        if members.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{title} ({})", members.len());
        for d in members.iter().take(DEPENDENTS_LISTED) {
            let line = format!("  {:<name_w$}  {:<state_w$}  {}", d.name, d.state, when_words(d));
            let _ = writeln!(out, "{}", line.trim_end());
            let _ = writeln!(out, "  {:<name_w$}  via {}", "", d.via);
            if let (Some(key), Some(cause)) = (&d.key, &d.cause) {
                let _ = writeln!(out, "  {:<name_w$}  because {key}: {cause}", "");
            }
        }
        if members.len() > DEPENDENTS_LISTED {
            let more = members.len() - DEPENDENTS_LISTED;
            let _ = writeln!(out, "  ({more} more {}: `--format json` lists every one)", standing.as_str());
        }
    }
    if impact.gone_count > 0 {
        let _ = writeln!(out, "\n{GONE_TITLE} ({})", impact.gone_count);
        let gone_w = impact.gone.iter().map(|d| d.name.len()).max().unwrap_or(0);
        let state_w = impact.gone.iter().map(|d| d.state.len()).max().unwrap_or(0);
        for d in impact.gone.iter().take(DEPENDENTS_LISTED) {
            let line = format!("  {:<gone_w$}  {:<state_w$}  {}", d.name, d.state, gone_when(d));
            let _ = writeln!(out, "{}", line.trim_end());
        }
        if impact.gone_count > DEPENDENTS_LISTED {
            let more = impact.gone_count - DEPENDENTS_LISTED;
            let _ = writeln!(out, "  ({more} more: `--format json` lists every one)");
        }
    }
    out
}

const GONE_TITLE: &str = "GONE: broke because of this key, and no longer depends on it (terminated, or never created)";

/// "; 8 more broke because of it and no longer depend on it", when some did.
#[must_use]
pub fn gone_words(impact: &Impact) -> String {
    match impact.gone_count {
        0 => String::new(),
        1 => "; 1 more broke because of it and no longer depends on it".to_string(),
        n => format!("; {n} more broke because of it and no longer depend on it"),
    }
}

/// When a resource that is gone broke, in words.
#[must_use]
pub fn gone_when(d: &Gone) -> String {
    match (d.when, &d.how) {
        (Some(t), Some(how)) => format!("broke at {t} ({how})"),
        (Some(t), None) => format!("broke at {t}"),
        (None, _) => "broke".to_string(),
    }
}

const GROUPS: [(Standing, &str); 5] = [
    (Standing::Broken, "BROKEN: failed because of its key, and not working since"),
    (Standing::Blocked, "BLOCKED: no plaintext data key in memory; the next attach, start or request fails"),
    (
        Standing::Latent,
        "LATENT: still working: on a plaintext data key in memory, until a service notices, or a snapshot until it is read",
    ),
    (Standing::Recovered, "RECOVERED: broke while its key was unusable; works again"),
    (Standing::Unaffected, "UNAFFECTED: its key never stood in its way"),
];

/// "2 broken, 0 blocked, 1 latent, 0 recovered, 3 unaffected".
fn counts(tally: &[(Standing, usize)]) -> String {
    let count = |st: Standing| tally.iter().find(|(s, _)| *s == st).map_or(0, |(_, n)| *n);
    GROUPS.iter().map(|(st, _)| format!("{} {}", count(*st), st.as_str())).collect::<Vec<_>>().join(", ")
}

/// When a dependent broke or will break, in words.
#[must_use]
pub fn when_words(d: &Dependent) -> String {
    match (d.standing, d.when) {
        (Standing::Latent | Standing::Blocked, Some(t)) => {
            format!("breaks at {t} ({})", d.how.as_deref().unwrap_or("its next use of the key"))
        }
        (Standing::Latent, None) if d.kind == NodeKind::Snapshot => {
            "breaks at its next restore or copy (none before the horizon)".into()
        }
        (Standing::Latent, None) if matches!(d.kind, NodeKind::Image | NodeKind::Group) => {
            "breaks at its next launch (none before the horizon)".into()
        }
        (Standing::Latent, None) if d.kind == NodeKind::Service => {
            "breaks when its service notices, its held key lapses or it restarts (none before the horizon)".into()
        }
        (Standing::Blocked, None) if d.kind == NodeKind::Service => {
            "breaks at its next request (none before the horizon)".into()
        }
        (Standing::Latent, None) => "breaks at its next detach, stop or restart (none before the horizon)".into(),
        (Standing::Blocked, None) => "breaks at its next attach or start (none before the horizon)".into(),
        (Standing::Broken, Some(t)) => match &d.how {
            Some(how) => format!("broke at {t} ({how})"),
            None => format!("unusable since {t}"),
        },
        _ => String::new(),
    }
}

/// Per key, its dependents grouped by standing, for the run summary.
#[must_use]
pub fn render_compact(impacts: &[Impact]) -> String {
    let mut out = String::new();
    let name_w = impacts.iter().flat_map(|i| &i.dependents).map(|d| d.name.len()).max().unwrap_or(0);
    let name_w = name_w.max(impacts.iter().flat_map(|i| &i.gone).map(|d| d.name.len()).max().unwrap_or(0));
    for i in impacts {
        let _ = writeln!(out, "  key {} ({}): {}{}", i.key, i.key_state, counts(&i.tally), gone_words(i));
        for d in i.dependents.iter().take(DEPENDENTS_LISTED) {
            let line = format!("    {:<10} {:<name_w$}  {}", d.standing.as_str(), d.name, when_words(d));
            let _ = writeln!(out, "{}", line.trim_end());
        }
        if let Some(more) = more_dependents(i) {
            let _ = writeln!(out, "    ({more})");
        }
        for d in i.gone.iter().take(DEPENDENTS_LISTED) {
            let _ = writeln!(out, "    {:<10} {:<name_w$}  {}; {}", "gone", d.name, gone_when(d), d.state);
        }
        if i.gone_count > DEPENDENTS_LISTED {
            let _ = writeln!(out, "    ({} more gone not listed)", i.gone_count - DEPENDENTS_LISTED);
        }
    }
    out
}

/// The dependents beyond the first [`DEPENDENTS_LISTED`], counted in words.
#[must_use]
pub fn more_dependents(impact: &Impact) -> Option<String> {
    let listed = impact.dependents.len().min(DEPENDENTS_LISTED);
    // Dependents come gravest first: the first `listed` of the tally are the ones listed.
    let mut skip = listed;
    let rest: Vec<(Standing, usize)> = impact
        .tally
        .iter()
        .filter_map(|&(st, n)| {
            let taken = skip.min(n);
            skip -= taken;
            (n > taken).then_some((st, n - taken))
        })
        .collect();
    let total: usize = rest.iter().map(|(_, n)| n).sum();
    (total > 0).then(|| format!("{total} more not listed: {}", counts(&rest)))
}

/// The graph in Graphviz DOT, nodes coloured by the standing of `impact`'s dependents.
#[must_use]
pub fn dot(g: &Graph, impact: &Impact) -> String {
    let standing: BTreeMap<&str, Standing> = impact.dependents.iter().map(|d| (d.name.as_str(), d.standing)).collect();
    let mut out = String::from(
        "digraph kmsim {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"sans-serif\"];\n",
    );
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    for n in g.graph.node_indices() {
        let node = &g.graph[n];
        let words = node.to_string();
        // A data key and a host carry their volume's and instance's name: only those have a standing.
        let standing = standing.get(&*node.name).filter(|_| node.kind.is_resource());
        let colour = match standing {
            Some(Standing::Broken) => "#ef9a9a",
            Some(Standing::Blocked) => "#f48fb1",
            Some(Standing::Latent) => "#ffe082",
            Some(Standing::Recovered) => "#90caf9",
            Some(Standing::Unaffected) => "#c8e6c9",
            None if node.kind == NodeKind::Key && *node.name == *impact.key => "#ffcc80",
            None => "#eceff1",
        };
        let label = match standing {
            Some(st) => format!("{}\\n{}", quote(&words), st.as_str()),
            None => quote(&words),
        };
        let _ = writeln!(out, "  n{} [label=\"{label}\", fillcolor=\"{colour}\"];", n.index());
    }
    for e in g.graph.edge_indices() {
        let (a, b) = g.graph.edge_endpoints(e).expect("edge");
        let _ = writeln!(out, "  n{} -> n{} [label=\"{}\"];", a.index(), b.index(), g.graph[e].as_str());
    }
    out.push_str("}\n");
    out
}

/// The blast radius as JSON (`kmsim impact --format json`; `docs/schemas/impact.schema.json`):
/// its instants as offsets in milliseconds (`at`, `when`) with the RFC 3339 instants they stand
/// for beside them (`at_utc`, `when_utc`).
#[must_use]
pub fn json(impact: &Impact, scenario: &crate::scenario::Scenario) -> String {
    use serde_json::{Value, json};
    let mut doc = serde_json::to_value(impact).expect("an impact serializes");
    let utc = |ms: &Value| {
        ms.as_u64().map_or(Value::Null, |ms| Value::String(scenario.instant(crate::engine::SimTime::from_ms(ms))))
    };
    let object = doc.as_object_mut().expect("an impact is an object");
    let at_utc = utc(&object["at"]);
    for list in ["dependents", "gone"] {
        for d in object[list].as_array_mut().expect("dependents are a list") {
            let when = utc(&d["when"]);
            d.as_object_mut().expect("a dependent is an object").insert("when_utc".into(), when);
        }
    }
    let mut out = serde_json::Map::new();
    out.insert("version".into(), json!(crate::analysis::JSON_VERSION));
    out.insert("scenario".into(), json!(scenario.name));
    out.insert("start".into(), json!(scenario.instant(crate::engine::SimTime::ZERO)));
    for (k, v) in std::mem::take(object) {
        out.insert(k.clone(), v);
        if k == "at" {
            out.insert("at_utc".into(), at_utc.clone());
        }
    }
    serde_json::to_string_pretty(&Value::Object(out)).expect("json") + "\n"
}
