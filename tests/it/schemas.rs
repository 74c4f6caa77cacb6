//! Every JSON output kmsim writes, from the bundled scenarios, against its schema in
//! `docs/schemas/` (formats such as `date-time` checked too); and the schemas refuse what the
//! outputs must not hold, so that they say something.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use super::scenarios_dir;

fn kmsim(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kmsim")).args(args).output().unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

fn schema(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schemas").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// A validator for `schema`, or for its `$defs/{def}` when given.
fn validator(schema: &Value, def: Option<&str>) -> jsonschema::Validator {
    let mut schema = schema.clone();
    if let Some(def) = def {
        schema = json!({"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": format!("#/$defs/{def}")});
    }
    jsonschema::options().should_validate_formats(true).build(&schema).expect("a valid schema")
}

fn assert_valid(v: &jsonschema::Validator, doc: &Value, what: &str) {
    let errors: Vec<String> = v.iter_errors(doc).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{what}:\n{}", errors.join("\n"));
}

fn scenario(rel: &str) -> String {
    scenarios_dir().join(rel).display().to_string()
}

#[test]
fn impact_json_follows_its_schema() {
    let v = validator(&schema("impact.schema.json"), None);
    let asks: [&[&str]; 5] = [
        &["ebs/ebs-story.ron", "--key", "cmk", "--at", "3d"],
        &["ebs/ebs-story.ron", "--key", "cmk", "--at", "5d"],
        &["ebs/ebs-story.ron", "--key", "cmk", "--material", "m1"],
        &["services/mixed-estate.ron", "--key", "shared", "--at", "2d"],
        &["snapshots/migration.ron", "--key", "old", "--delete-material-at", "1d"],
    ];
    let mut standings = std::collections::BTreeSet::new();
    for ask in asks {
        let file = scenario(ask[0]);
        let mut args = vec!["impact", file.as_str()];
        args.extend(&ask[1..]);
        args.extend(["--format", "json"]);
        let (code, out) = kmsim(&args);
        assert_eq!(code, Some(0), "{args:?}");
        let doc: Value = serde_json::from_str(&out).unwrap();
        assert_valid(&v, &doc, &format!("{args:?}"));
        standings.extend(doc["dependents"].as_array().unwrap().iter().map(|d| d["standing"].to_string()));
    }
    assert!(standings.len() >= 3, "the outputs tried cover several standings: {standings:?}");
    // The schema says something: a standing it does not know, or an instant that is not one.
    let (_, out) = kmsim(&["impact", &scenario("ebs/ebs-story.ron"), "--key", "cmk", "--at", "3d", "--format", "json"]);
    let mut doc: Value = serde_json::from_str(&out).unwrap();
    doc["dependents"][0]["standing"] = json!("fine");
    assert!(!v.is_valid(&doc));
    let mut doc: Value = serde_json::from_str(&out).unwrap();
    doc["at_utc"] = json!("the fourth of March");
    assert!(!v.is_valid(&doc));
}

#[test]
fn check_json_follows_its_schema() {
    let v = validator(&schema("check.schema.json"), None);
    let (code, out) = kmsim(&["check", &scenarios_dir().display().to_string(), "--format", "json"]);
    assert_eq!(code, Some(0));
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_valid(&v, &doc, "check scenarios/");
    assert!(doc["total"].as_u64().unwrap() > 40);
    // Invalid and failing scenarios too.
    let dir = tempfile::tempdir().unwrap();
    let story = std::fs::read_to_string(scenario("ebs/ebs-story.ron")).unwrap();
    std::fs::write(dir.path().join("invalid.ron"), story.replace("key: \"cmk\", size_gib", "key: \"nope\", size_gib"))
        .unwrap();
    std::fs::write(dir.path().join("failing.ron"), story.replace("is: PendingImport", "is: Enabled")).unwrap();
    let (code, out) = kmsim(&["check", &dir.path().display().to_string(), "--format", "json"]);
    assert_eq!(code, Some(2));
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_valid(&v, &doc, "check of an invalid and a failing scenario");
    assert_eq!((doc["failed"].as_u64(), doc["invalid"].as_u64()), (Some(1), Some(1)));
    let mut wrong = doc.clone();
    wrong["scenarios"][0]["status"] = json!("skipped");
    assert!(!v.is_valid(&wrong));
}

#[test]
fn sweep_json_its_parts_and_bench_json_follow_their_schemas() {
    let sweep = schema("sweep.schema.json");
    let (whole, part) = (validator(&sweep, None), validator(&sweep, Some("part")));
    let dir = tempfile::tempdir().unwrap();
    let file = scenario("fleet/fleet-material-deleted.ron");
    let out_dir = dir.path().join("sweep");
    let (code, printed) =
        kmsim(&["sweep", &file, "--runs", "3", "--out", out_dir.to_str().unwrap(), "--format", "json", "--jobs", "1"]);
    assert_eq!(code, Some(0));
    let written: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&printed).unwrap(), written, "--format json prints sweep.json");
    assert_valid(&whole, &written, "sweep.json");
    assert!(!written["marks"].as_array().unwrap().is_empty(), "the scenario's deletion is marked");
    let parts = dir.path().join("parts");
    let (code, _) = kmsim(&["sweep", &file, "--runs", "3", "--shard", "1/2", "--out", parts.to_str().unwrap(), "-q"]);
    assert_eq!(code, Some(0));
    let p: Value =
        serde_json::from_str(&std::fs::read_to_string(parts.join("sweep.part-1-of-2.json")).unwrap()).unwrap();
    assert_valid(&part, &p, "a sweep part");
    assert!(!whole.is_valid(&p), "a part is not a sweep");

    let v = validator(&schema("bench.schema.json"), None);
    let (code, out) = kmsim(&["bench", &scenario("ebs/ebs-story.ron"), "--format", "json"]);
    assert_eq!(code, Some(0));
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_valid(&v, &doc, "bench");
    assert_eq!(doc["N"], 1);
}

#[test]
fn explain_json_follows_its_schema() {
    let v = validator(&schema("explain.schema.json"), None);
    for args in [
        vec!["explain", "ebs/ebs-story.ron", "--format", "json"],
        vec!["explain", "ebs/ebs-story.ron", "3", "21", "--format", "json"],
        vec!["explain", "services/mixed-estate.ron", "--format", "json"],
        vec!["explain", "fleet/fleet-material-deleted.ron", "--format", "json"],
    ] {
        let mut args: Vec<String> = args.into_iter().map(String::from).collect();
        args[1] = scenario(&args[1]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out) = kmsim(&args);
        assert_eq!(code, Some(0), "{args:?}");
        let doc: Value = serde_json::from_str(&out).unwrap();
        assert_valid(&v, &doc, &format!("{args:?}"));
        assert!(!doc["explanations"].as_array().unwrap().is_empty(), "{args:?}");
    }
    // The story's failure: its chain ends at the timeline's deletion, on its line.
    let (_, out) = kmsim(&["explain", &scenario("ebs/ebs-story.ron"), "--format", "json"]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    let chain = doc["explanations"][0]["chain"].as_array().unwrap();
    assert_eq!(chain.last().unwrap()["action"], "timeline[4]");
    assert!(chain.iter().any(|l| l["link"] == "because"));
    let mut wrong = doc.clone();
    wrong["explanations"][0]["chain"][0]["link"] = json!("after");
    assert!(!v.is_valid(&wrong));
}

#[test]
fn run_json_follows_its_schema() {
    let v = validator(&schema("run.schema.json"), None);
    for rel in ["ebs/ebs-story.ron", "services/mixed-estate.ron", "snapshots/migration.ron", "bench/fleet-1k.ron"] {
        let (code, out) = kmsim(&["run", &scenario(rel), "--format", "json"]);
        assert_eq!(code, Some(0), "{rel}");
        let doc: Value = serde_json::from_str(&out).unwrap();
        assert_valid(&v, &doc, rel);
    }
    // The story's volume: broken at the attach of +4d 1h, 2d 1h after the deletion, recovered.
    let (_, out) = kmsim(&["run", &scenario("ebs/ebs-story.ron"), "--format", "json"]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    let vol = &doc["resources"][0];
    assert_eq!((vol["name"].as_str(), vol["standing"].as_str()), (Some("vol-data"), Some("recovered")));
    assert_eq!(vol["breaks"][0]["broke_at_utc"], "2026-03-05T10:00:00.000Z");
    assert_eq!(vol["breaks"][0]["latent_window_ms"], (2 * 24 + 1) * 3_600_000);
    let mut wrong = doc.clone();
    wrong["resources"][0]["breaks"][0]["broke_at_utc"] = json!("soon");
    assert!(!v.is_valid(&wrong));
}
