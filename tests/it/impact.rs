//! Blast radius: the dependency graph's nodes and edges, every standing reached, what-if
//! deletions, and DOT output that parses.

use std::process::Command;

use kmsim::actors::kms::KeyIdx;
use kmsim::analysis::impact::{self, EdgeKind, NodeKind};
use kmsim::analysis::standing::Standing;
use kmsim::engine::SimTime;
use kmsim::run::{RunOptions, run};

use super::{load, scenarios_dir};

const H: u64 = 3_600_000;
const D: u64 = 24 * H;

/// (kind of source, name of source, edge, name of target), sorted.
fn edges(g: &impact::Graph) -> Vec<(String, &'static str, String)> {
    let mut out: Vec<_> = g
        .graph
        .edge_indices()
        .map(|e| {
            let (a, b) = g.graph.edge_endpoints(e).unwrap();
            (g.graph[a].to_string(), g.graph[e].as_str(), g.graph[b].to_string())
        })
        .collect();
    out.sort();
    out
}

fn story_at(ms: u64) -> (Vec<(String, &'static str, String)>, impact::Impact) {
    let s = load("ebs/ebs-story.ron");
    let at = SimTime::from_ms(ms);
    let r = run(&s, &RunOptions { probes: vec![at], ..RunOptions::default() }, None).unwrap();
    let g = impact::graph(&r, r.snapshot_at(at).unwrap());
    (edges(&g), impact::analyze(&r, KeyIdx(0), at))
}

fn e(a: &str, kind: EdgeKind, b: &str) -> (String, &'static str, String) {
    (a.to_string(), kind.as_str(), b.to_string())
}

#[test]
fn the_graph_of_the_ebs_story_before_and_after_the_deletion() {
    let (before, impact) = story_at(D);
    assert_eq!(
        before,
        [
            e("cmk", EdgeKind::GrantedTo, "i-app"),
            e("cmk", EdgeKind::MaterialOf, "cmk/m1"),
            e("cmk/m1", EdgeKind::Encrypts, "data key of vol-data"),
            e("data key of vol-data", EdgeKind::Protects, "vol-data"),
            e("i-app", EdgeKind::RunsOn, "host 1 of i-app"),
            e("vol-data", EdgeKind::AttachedTo, "i-app"),
            e("vol-data", EdgeKind::CachedIn, "host 1 of i-app"),
        ]
    );
    assert!(
        impact.dependents.iter().all(|d| d.standing == Standing::Unaffected && d.key.is_none() && d.cause.is_none())
    );
    // After the deletion the material node is gone: the data key hangs on the key itself.
    let (after, impact) = story_at(3 * D);
    assert!(after.contains(&e("cmk", EdgeKind::Encrypts, "data key of vol-data")));
    assert!(!after.iter().any(|x| x.1 == EdgeKind::MaterialOf.as_str()));
    let vol = impact.dependents.iter().find(|d| d.name == "vol-data").unwrap();
    assert_eq!((vol.standing, vol.when.map(SimTime::as_ms)), (Standing::Latent, Some(4 * D + H)));
    assert_eq!(vol.key.as_deref(), Some("cmk"), "a latent resource names the key that decides it");
    let app = impact.dependents.iter().find(|d| d.name == "i-app").unwrap();
    assert_eq!((app.standing, &app.key, &app.cause), (Standing::Latent, &Some("cmk".into()), &vol.cause));
    // Detached, with the key unusable: blocked, and it breaks at the scenario's next attach.
    let (detached, impact) = story_at(4 * D + 30 * 60_000);
    assert!(!detached.iter().any(|x| x.1 == EdgeKind::AttachedTo.as_str()));
    let vol = impact.dependents.iter().find(|d| d.name == "vol-data").unwrap();
    assert_eq!((vol.standing, vol.when.map(SimTime::as_ms)), (Standing::Blocked, Some(4 * D + H)));
    assert_eq!(vol.cause.as_deref(), Some("DeleteImportedKeyMaterial by alice at +2d"));
    assert_eq!(impact.dependents[0].name, "vol-data", "what is at risk comes before what is not");
    // After the failed attach: broken, since then.
    let (_, impact) = story_at(4 * D + 2 * H);
    let vol = impact.dependents.iter().find(|d| d.name == "vol-data").unwrap();
    assert_eq!((vol.standing, vol.when.map(SimTime::as_ms)), (Standing::Broken, Some(4 * D + H)));
}

#[test]
fn every_standing_is_reached_and_grouped_in_order() {
    let s = load("ec2/stop-start-vs-reboot.ron");
    let r = run(&s, &RunOptions::default(), None).unwrap();
    let i = impact::analyze(&r, KeyIdx(0), r.end);
    let standings: Vec<(&str, Standing)> = i.dependents.iter().map(|d| (d.name.as_str(), d.standing)).collect();
    assert_eq!(
        standings,
        [
            ("i-stop", Standing::Broken),
            ("vol-stop", Standing::Broken),
            ("i-moved", Standing::Broken),
            ("vol-moved", Standing::Broken),
            ("i-reboot", Standing::Latent),
            ("vol-reboot", Standing::Latent),
        ]
    );
    // The volume broke and works again after the reimport; the instance never broke.
    let s = load("ebs/ebs-story.ron");
    let r = run(&s, &RunOptions::default(), None).unwrap();
    let standings: Vec<(String, Standing)> =
        impact::analyze(&r, KeyIdx(0), r.end).dependents.into_iter().map(|d| (d.name, d.standing)).collect();
    assert_eq!(standings, [("vol-data".to_string(), Standing::Recovered), ("i-app".to_string(), Standing::Unaffected)]);
}

#[test]
fn what_if_adds_the_deletion_and_looks_at_that_instant() {
    let out = Command::new(env!("CARGO_BIN_EXE_kmsim"))
        .args(["impact", scenarios_dir().join("ebs/ebs-story.ron").to_str().unwrap(), "--key", "alias/app-data"])
        .args(["--delete-material-at", "1d", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["key"], "cmk");
    assert_eq!(v["at"], D);
    assert_eq!(v["key_state"], "PendingImport");
    let vol = v["dependents"].as_array().unwrap().iter().find(|d| d["name"] == "vol-data").unwrap();
    assert_eq!(vol["standing"], "latent");
    assert_eq!(vol["when"], 4 * D + H, "it breaks at the scenario's reattach");
    let out = Command::new(env!("CARGO_BIN_EXE_kmsim"))
        .args(["impact", scenarios_dir().join("ebs/ebs-story.ron").to_str().unwrap(), "--key", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// After a rotation, each volume's data key is under its own material, but deleting the old one
/// puts every dependent at risk: the volume made under the new material breaks at its next attach
/// as the old one does.
#[test]
fn what_if_deleting_the_old_material_after_a_rotation() {
    let scenario = scenarios_dir().join("rotation/rotate-then-delete-old.ron");
    let impact = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_kmsim"))
            .args(["impact", scenario.to_str().unwrap(), "--key", "cmk", "--format", "json"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let dependent = |v: &serde_json::Value, name: &str| {
        v["dependents"].as_array().unwrap().iter().find(|d| d["name"] == name).unwrap().clone()
    };
    // Before the deletion: each volume's data key names its own material.
    let before = impact(&["--at", "1d 5h", "--material", "m1"]);
    assert_eq!(before["material"], "m1");
    assert_eq!(dependent(&before, "vol-old")["material"], "m1");
    assert_eq!(dependent(&before, "vol-new")["material"], "m2");
    assert_eq!(dependent(&before, "vol-new")["standing"], "unaffected");
    // Deleting m1 there: the key is PendingImport, and both volumes break at their next attach.
    let after = impact(&["--material", "m1", "--delete-material-at", "1d 5h"]);
    assert_eq!(after["key_state"], "PendingImport");
    for name in ["vol-old", "vol-new"] {
        let d = dependent(&after, name);
        assert_eq!(d["standing"], "latent", "{name}");
        assert_eq!(d["when"], 4 * D + H, "{name} breaks at the scenario's reattach");
    }
    // Deleting the pending material instead breaks nothing (the timeline's own deletion at 2d
    // still does, later): at the instant, the key stays Enabled.
    let pending = impact(&["--material", "m2", "--delete-material-at", "1d"]);
    assert_eq!(pending["key_state"], "Enabled");
    let out = Command::new(env!("CARGO_BIN_EXE_kmsim"))
        .args(["impact", scenario.to_str().unwrap(), "--key", "cmk", "--material", "m9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("materials: m1, m2"));
}

#[test]
fn dot_output_parses_and_has_every_node_and_edge() {
    let dir = tempfile::tempdir().unwrap();
    let dot = dir.path().join("g.dot");
    let out = Command::new(env!("CARGO_BIN_EXE_kmsim"))
        .args(["impact", scenarios_dir().join("fleet/many-volumes-staggered-detach.ron").to_str().unwrap()])
        .args(["--key", "cmk", "--at", "3d", "--dot", dot.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&dot).unwrap();
    // The key asked about stands out; what does not depend on it stays grey.
    assert!(text.contains("[label=\"cmk\", fillcolor=\"#ffcc80\"]"), "{text}");
    assert!(text.contains("[label=\"host 1 of i-1\", fillcolor=\"#eceff1\"]"), "{text}");
    // Only the key asked about: the other keys of an estate stay grey.
    let several = dir.path().join("several.dot");
    let out = Command::new(env!("CARGO_BIN_EXE_kmsim"))
        .args(["impact", scenarios_dir().join("ec2/instance-several-keys.ron").to_str().unwrap()])
        .args(["--key", "cmk-data", "--dot", several.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let several = std::fs::read_to_string(&several).unwrap();
    assert!(several.contains("[label=\"cmk-data\", fillcolor=\"#ffcc80\"]"), "{several}");
    assert!(several.contains("[label=\"cmk-root\", fillcolor=\"#eceff1\"]"), "{several}");
    let ast = dot_parser::ast::Graph::try_from(text.as_str()).expect("valid DOT");
    let g = dot_parser::canonical::Graph::from(ast);
    assert!(g.is_digraph);
    // 1 key, 6 data keys, 6 volumes, 3 instances, 3 hosts (no material: it was deleted at 1d).
    assert_eq!(g.nodes.set.len(), 19);
    let labels: Vec<String> = g
        .nodes
        .set
        .values()
        .flat_map(|n| n.attr.elems.iter())
        .filter(|(k, _)| format!("{k:?}") == "ID(\"label\")")
        .map(|(_, v)| format!("{v:?}"))
        .collect();
    assert!(labels.iter().any(|l| l.contains("vol-1") && l.contains("broken")), "{labels:?}");
    assert!(labels.iter().any(|l| l.contains("vol-6") && l.contains("latent")));
    let s = load("fleet/many-volumes-staggered-detach.ron");
    let at = SimTime::from_ms(3 * D);
    let r = run(&s, &RunOptions { probes: vec![at], ..RunOptions::default() }, None).unwrap();
    let graph = impact::graph(&r, r.snapshot_at(at).unwrap());
    assert_eq!(g.edges.set.len(), graph.graph.edge_count());
    // One edge of a kind between two nodes: two volumes' grants to one instance are one edge.
    let mut seen = std::collections::BTreeSet::new();
    for e in graph.graph.edge_indices() {
        let (a, b) = graph.graph.edge_endpoints(e).unwrap();
        assert!(
            seen.insert((a.index(), b.index(), graph.graph[e].as_str())),
            "a repeated {} edge",
            graph.graph[e].as_str()
        );
    }
    assert!(seen.iter().any(|x| x.2 == "granted-to"));
    assert_eq!(graph.graph.node_weights().filter(|n| n.kind == NodeKind::Volume).count(), 6);
}

/// An instance is latent for a key only through volumes under that key, not through volumes
/// under other keys that happen to be attached to it.
#[test]
fn an_instance_depends_on_a_key_only_through_that_keys_volumes() {
    let s = load("ec2/instance-several-keys.ron");
    let r = run(&s, &RunOptions::default(), None).unwrap();
    let data = s.key_named("cmk-data").unwrap();
    let i = impact::analyze(&r, data, r.end);
    let app = i.dependents.iter().find(|d| d.name == "i-app").unwrap();
    // Its standing is its own, the same under every key: it failed to start because of cmk-data
    // and runs again since vol-data was detached.
    assert_eq!(app.standing, Standing::Recovered, "vol-data was detached: i-app keeps only a grant on cmk-data");
    assert_eq!(app.via, "a grant on cmk-data");
}

/// One verdict per resource: for every bundled scenario, at every instant something happens
/// (and the horizon), the summary of the run cut off there and `impact` on the whole run at that
/// instant give every resource the same standing. The two reach it from different places: the
/// summary from the final state of a shorter run, `impact` from a snapshot taken mid-run.
#[test]
fn the_summary_and_impact_agree_on_every_resource_at_every_instant() {
    let mut compared = 0;
    for path in super::all_scenarios() {
        let text = std::fs::read_to_string(&path).unwrap();
        let s = kmsim::scenario::parse("s.ron", &text, kmsim::scenario::Overrides::default()).unwrap();
        let whole = run(&s, &RunOptions::default(), None).unwrap();
        let mut instants: Vec<SimTime> = whole.records.iter().map(|r| r.at).collect();
        instants.push(s.horizon);
        instants.dedup();
        let probed = run(&s, &RunOptions { probes: instants.clone(), ..RunOptions::default() }, None).unwrap();
        for &at in &instants {
            let mut cut = s.clone();
            cut.horizon = at;
            cut.expectations.clear();
            let shorter = run(&cut, &RunOptions::default(), None).unwrap();
            let summary = kmsim::analysis::summary::summarize(&shorter);
            // The chart drawn up to just after that instant (a band that begins at the end of
            // a chart has no width) ends as the summary stands.
            cut.horizon = at + kmsim::engine::SimDuration::from_ms(1);
            let just_after = run(&cut, &RunOptions::default(), None).unwrap();
            super::invariants::lanes_agree_with_the_summary(
                &just_after,
                &kmsim::analysis::summary::summarize(&just_after),
            )
            .unwrap_or_else(|e| panic!("{} at {at}: {e}", path.display()));
            for k in 0..s.keys.len() {
                let key = KeyIdx(u32::try_from(k).unwrap());
                let im = impact::analyze(&probed, key, at);
                // Whatever the summary has broken because of this key, the blast radius counts:
                // among the dependents, or among those gone (terminated, never created).
                for r in summary
                    .resources
                    .iter()
                    .filter(|r| r.status == Standing::Broken && r.key.as_deref() == Some(s.keys[k].name.as_str()))
                {
                    let listed = im.dependents.iter().any(|d| *d.name == *r.name && d.standing == Standing::Broken)
                        || im.gone.iter().any(|d| *d.name == *r.name);
                    assert!(
                        listed,
                        "{}: {} at {at} is broken because of {} in the summary, but not in its blast radius",
                        path.display(),
                        r.name,
                        s.keys[k].name
                    );
                }
                for d in &im.gone {
                    let r = summary.resources.iter().find(|r| *r.name == *d.name).unwrap();
                    assert_eq!(r.status, Standing::Broken, "{}: {} at {at} is gone", path.display(), d.name);
                    compared += 1;
                }
                for d in im.dependents {
                    let r = summary.resources.iter().find(|r| *r.name == *d.name).unwrap();
                    assert_eq!(
                        r.status,
                        d.standing,
                        "{}: {} at {at}: the summary says {}, impact on {} says {}",
                        path.display(),
                        d.name,
                        r.status.as_str(),
                        s.keys[k].name,
                        d.standing.as_str()
                    );
                    compared += 1;
                }
            }
        }
    }
    assert!(compared > 1_000, "only {compared} comparisons");
}

/// The text `kmsim impact` prints: the key, the counts, each group under its title with its
/// members, when each broke, how it depends on the key and what made the key unusable.
#[test]
fn impact_prints_each_group_with_its_members_and_their_cause() {
    let out = Command::new(env!("CARGO_BIN_EXE_kmsim"))
        .args(["impact", scenarios_dir().join("ebs/ebs-story.ron").to_str().unwrap(), "--key", "cmk", "--at", "4d 2h"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("Key cmk (arn:aws:kms:us-east-1:111122223333:key/"), "{text}");
    assert!(lines[0].ends_with(") at +4d 2h (2026-03-05T11:00:00.000Z): PendingImport"), "{text}");
    assert_eq!(
        lines[1..],
        [
            "  1 broken, 0 blocked, 0 latent, 0 recovered, 1 unaffected",
            "",
            "BROKEN: failed because of its key, and not working since (1)",
            "  vol-data  available  broke at +4d 1h (AttachVolume CustomerKeyHasBeenRevoked)",
            "            via data key encrypted under cmk (its material is gone)",
            "            because cmk: DeleteImportedKeyMaterial by alice at +2d",
            "",
            "UNAFFECTED: its key never stood in its way (1)",
            "  i-app     running",
            "            via a grant on cmk",
        ]
    );
    // Latent: when it will break, and how.
    let out = Command::new(env!("CARGO_BIN_EXE_kmsim"))
        .args(["impact", scenarios_dir().join("ebs/ebs-story.ron").to_str().unwrap(), "--key", "cmk", "--at", "3d"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(
            "  vol-data  in-use on i-app, plaintext key in host memory  breaks at +4d 1h (AttachVolume CustomerKeyHasBeenRevoked)\n"
        ),
        "{text}"
    );
}

/// A host maintenance moves the instance to another host: the graph's host node is the one it
/// runs on at the instant asked (cargo mutants on `ec2.rs`: `Instance::host` always 1 failed no
/// test).
#[test]
fn the_graph_follows_an_instance_to_its_new_host() {
    let s = load("ec2/host-maintenance.ron");
    let (before, after) = (SimTime::from_ms(H), SimTime::from_ms(D));
    let r = run(&s, &RunOptions { probes: vec![before, after], ..RunOptions::default() }, None).unwrap();
    let runs_on = |at: SimTime| -> Vec<_> {
        edges(&impact::graph(&r, r.snapshot_at(at).unwrap())).into_iter().filter(|x| x.1 == "runs-on").collect()
    };
    assert_eq!(runs_on(before), [e("i-web", EdgeKind::RunsOn, "host 1 of i-web")]);
    assert_eq!(runs_on(after), [e("i-web", EdgeKind::RunsOn, "host 2 of i-web")]);
}

/// A key whose material AWS generated has no material to lose: its volume's data key is
/// encrypted under the key, never "its material is gone" (cargo mutants on `impact`).
#[test]
fn a_volume_under_an_aws_generated_key_is_encrypted_under_the_key() {
    let s = load("lifecycle/aws-kms-key-contrast.ron");
    let at = SimTime::from_ms(D);
    let r = run(&s, &RunOptions { probes: vec![at], ..RunOptions::default() }, None).unwrap();
    let i = impact::analyze(&r, s.key_named("cmk-aws").unwrap(), at);
    let vol = i.dependents.iter().find(|d| d.name == "vol-1").unwrap();
    assert_eq!(vol.via, "data key encrypted under cmk-aws", "{i:?}");
}

/// What `impact` says of each dependent is as it stood at the instant asked, not at the run's
/// end: an auto scaling group had 3 of 3 instances in service a day in, though it ends with 0 of
/// 4 (it showed the end's). Each kind words its own state and path (cargo mutants on `impact`).
#[test]
fn impact_words_each_kind_as_it_stood_at_the_instant() {
    let s = load("groups/capacity-drains.ron");
    let at = SimTime::from_ms(D);
    let r = run(&s, &RunOptions { probes: vec![at], ..RunOptions::default() }, None).unwrap();
    let i = impact::analyze(&r, KeyIdx(0), at);
    let find = |name: &str| i.dependents.iter().find(|d| d.name == name).unwrap_or_else(|| panic!("{name}: {i:?}"));
    let web = find("web");
    assert_eq!(web.state, "3 of 3 desired instances in service; needs the key at its next launch");
    assert_eq!(web.via, "launch template ami-web (snapshots under cmk)");
    assert_eq!(find("ami-web").via, "snapshot snap-golden (data keys under cmk)");
    assert_eq!(find("web-i2").via, "attached web-i2-v0 (data keys under cmk)");
    assert_eq!(find("snap-golden").material.as_deref(), Some("m1"));
    assert_eq!(find("vol-golden").material.as_deref(), Some("m1"));
    let end = impact::analyze(&r, KeyIdx(0), r.end);
    let web = end.dependents.iter().find(|d| d.name == "web").unwrap();
    assert_eq!(web.state, "0 of 4 desired instances in service; needs the key at its next launch");
    // Another service's resource names the material of its data key too.
    let s = load("services/s3-bucket-key.ron");
    let r = run(&s, &RunOptions::default(), None).unwrap();
    let i = impact::analyze(&r, KeyIdx(0), r.end);
    assert!(i.dependents.iter().all(|d| d.material.as_deref() == Some("m1")), "{i:?}");
}

/// The standing's own edges (cargo mutants on `report::standing`): a Disabled key blocks and
/// keeps latent what it protects although its material is there; a resource that works again
/// at an instant is recovered at that instant; a latent resource's cause is the loss it is in,
/// not a later one.
#[test]
fn standings_at_the_edges() {
    let text = r#"Scenario(
    version: 1, name: "edges", start: "2026-01-01T00:00:00Z", horizon: "5d", seed: 1,
    keys: [Key(id: "k", origin: External), Key(id: "d", origin: External)],
    instances: [Instance(id: "i")],
    volumes: [Volume(id: "v", key: "k"), Volume(id: "held", key: "d"), Volume(id: "idle", key: "d")],
    timeline: [
        At("0s", ImportKeyMaterial(key: "k", material: "m", expires: Never)),
        At("0s", ImportKeyMaterial(key: "d", material: "n", expires: Never)),
        At("1m", CreateVolume(volume: "v")),
        At("1m", CreateVolume(volume: "held")),
        At("1m", CreateVolume(volume: "idle")),
        At("2m", AttachVolume(volume: "v", instance: "i")),
        At("2m", AttachVolume(volume: "held", instance: "i")),
        At("1d", DeleteImportedKeyMaterial(key: "k")),
        At("1d", DisableKey(key: "d")),
        At("2d", ImportKeyMaterial(key: "k", material: "m", expires: Never)),
        At("3d", DeleteImportedKeyMaterial(key: "k")),
        At("4d", DetachVolume(volume: "v")),
        At("4d 1h", ImportKeyMaterial(key: "k", material: "m", expires: Never)),
        At("4d 1h", AttachVolume(volume: "v", instance: "i")),
        At("4d 2h", DetachVolume(volume: "v")),
        At("4d 3h", DeleteImportedKeyMaterial(key: "k")),
        At("4d 4h", AttachVolume(volume: "v", instance: "i")),
        At("4d 5h", ImportKeyMaterial(key: "k", material: "m", expires: Never)),
        At("4d 6h", AttachVolume(volume: "v", instance: "i")),
    ],
)"#;
    let s = kmsim::scenario::parse("edges.ron", text, kmsim::scenario::Overrides::default()).unwrap();
    let probes = [SimTime::from_ms(D + 12 * H), SimTime::from_ms(4 * D + 6 * H), SimTime::from_ms(5 * D)];
    let r = run(&s, &RunOptions { probes: probes.to_vec(), ..RunOptions::default() }, None).unwrap();
    let find = |key: &str, at: SimTime, name: &str| {
        let k = s.key_named(key).unwrap();
        impact::analyze(&r, k, at).dependents.into_iter().find(|d| d.name == name).unwrap()
    };
    // A Disabled key with its material: the attached volume latent, the idle one blocked.
    assert_eq!(find("d", probes[2], "held").standing, Standing::Latent);
    assert_eq!(find("d", probes[2], "idle").standing, Standing::Blocked);
    // In the first of two losses, the cause is that loss.
    let v = find("k", probes[0], "v");
    assert_eq!(v.standing, Standing::Latent);
    assert_eq!(v.cause.as_deref(), Some("DeleteImportedKeyMaterial by alice at +1d"));
    // v broke at 4d 4h and works again at 4d 6h: recovered at that very instant.
    assert_eq!(find("k", probes[1], "v").standing, Standing::Recovered);
}

/// `kmsim impact`'s text lists at most 100 dependents of each standing and says how many more
/// there are; its JSON lists every one.
#[test]
fn the_text_of_a_fleets_blast_radius_stays_readable() {
    let text = r#"Scenario(version: 1, name: "fleet", start: "2026-01-01T00:00:00Z", horizon: "2d", seed: 5,
        keys: [Key(id: "k", origin: External)],
        fleets: [Fleet(id: "web", instances: 120, keys: [("k", 1)], attached: Fixed("30d"), detached: Fixed("1m"))],
        timeline: [
            At("0s", ImportKeyMaterial(key: "k", material: "m", expires: Never)),
            At("1d", DeleteImportedKeyMaterial(key: "k")),
        ])"#;
    let s = kmsim::scenario::parse("fleet.ron", text, kmsim::scenario::Overrides::default()).unwrap();
    let r = kmsim::run::run(&s, &kmsim::run::RunOptions::default(), None).unwrap();
    let impact = kmsim::analysis::impact::analyze(&r, kmsim::actors::kms::KeyIdx(0), r.end);
    let latent = impact.dependents.iter().filter(|d| d.standing.as_str() == "latent").count();
    assert_eq!(latent, 240, "every volume and instance runs on a cached key");
    let words = kmsim::report::impact::render(&impact, &r);
    assert!(
        words.contains(
            "LATENT: still working: on a plaintext data key in memory, until a service notices, or a snapshot until it is read (240)"
        ),
        "{words}"
    );
    assert!(words.contains("  (140 more latent: `--format json` lists every one)"), "{words}");
    assert_eq!(words.lines().filter(|l| l.trim_start().starts_with("via ")).count(), 100);
    // The run's summary keeps only the 100 gravest of the 240 as it goes, and counts the rest.
    let text = kmsim::report::run_text(&r, "fleet.ron");
    let radius = &text[text.find("Blast radius at the end").unwrap()..];
    assert_eq!(radius.lines().filter(|l| l.starts_with("    latent ")).count(), 100, "{radius}");
    assert!(
        radius.contains("    (140 more not listed: 0 broken, 0 blocked, 140 latent, 0 recovered, 0 unaffected)"),
        "{radius}"
    );
}

/// An image's edges to the instances launched from it: only those launched by the instant asked
/// about (i-app-2 is launched at 2d), and only from that image.
#[test]
fn an_image_leads_to_the_instances_launched_from_it_so_far() {
    let s = load("snapshots/ami-launch-after-deletion.ron");
    let launched = |ms: u64| {
        let at = SimTime::from_ms(ms);
        let r = run(&s, &RunOptions { probes: vec![at], ..RunOptions::default() }, None).unwrap();
        let g = impact::graph(&r, r.snapshot_at(at).unwrap());
        edges(&g).into_iter().filter(|(_, kind, _)| *kind == EdgeKind::LaunchedFrom.as_str()).collect::<Vec<_>>()
    };
    let one = launched(2 * H);
    assert_eq!(one.len(), 1, "{one:?}");
    assert!(one[0].0.contains("ami-app") && one[0].2.contains("i-app-1"), "{one:?}");
    let two = launched(3 * D - 1);
    assert_eq!(two.len(), 2, "{two:?}");
}

/// A volume still being created when the run ends has no data key yet: it will have one made
/// with the key's current material, after a rotation the new one, though the old one is
/// imported and listed first (cargo mutants on the KMS actor: `Kms::material` as `None`, or
/// its test of the material's state inverted or widened).
#[test]
fn a_volume_being_created_will_be_under_the_current_material() {
    let text = r#"Scenario(
        version: 1,
        name: "a volume still being created after a rotation",
        start: "2026-06-01T09:00:00Z",
        horizon: "2h",
        seed: 1,
        latency: (kms: Fixed("1s")),
        keys: [Key(id: "cmk", origin: External)],
        volumes: [Volume(id: "vol-new", key: "cmk", size_gib: 50)],
        timeline: [
            At("0s", ImportKeyMaterial(key: "cmk", material: "m1", expires: Never)),
            At("1h", ImportKeyMaterial(key: "cmk", material: "m2", expires: Never, import_type: New)),
            At("1h 1m", RotateKeyOnDemand(key: "cmk")),
            At("2h", CreateVolume(volume: "vol-new")),
        ],
    )"#;
    let s = kmsim::scenario::parse("creating.ron", text, kmsim::scenario::Overrides::default()).unwrap();
    let r = run(&s, &RunOptions::default(), None).unwrap();
    let i = impact::analyze(&r, KeyIdx(0), r.end);
    let [vol] = &i.dependents[..] else { panic!("{i:?}") };
    assert_eq!((vol.state.as_str(), vol.via.as_str()), ("creating", "data key encrypted under cmk (material m2)"));
}
