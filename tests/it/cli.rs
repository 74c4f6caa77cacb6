//! The binary as a user meets it: exit codes, messages, files.

use std::path::Path;
use std::process::{Command, Output};

use super::scenarios_dir;

fn kmsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kmsim")).args(args).output().unwrap()
}

fn story() -> String {
    scenarios_dir().join("ebs/ebs-story.ron").display().to_string()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn run_prints_the_timeline_and_the_summary() {
    let out = kmsim(&["run", &story()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("AttachVolume                     FAILED  CustomerKeyHasBeenRevoked"), "{stdout}");
    assert!(stdout.contains("FINALLY BROKE"));
    assert!(stdout.contains("+4d 1h AttachVolume CustomerKeyHasBeenRevoked  2d 1h"), "{stdout}");
}

#[test]
fn quiet_prints_nothing_and_trace_writes_json_lines_with_the_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.jsonl");
    let out = kmsim(&["run", &story(), "--quiet", "--trace", trace.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&trace).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["seq"], i);
        for field in ["t_ms", "time", "actor", "event", "outcome", "error", "message", "cause", "action", "reason"] {
            assert!(l.get(field).is_some(), "line {i} lacks {field}: {l}");
        }
    }
    let failed_attach = lines.iter().find(|l| l["event"] == "AttachVolume" && l["outcome"] == "failed").unwrap();
    assert_eq!(failed_attach["error"], "CustomerKeyHasBeenRevoked");
    assert_eq!(failed_attach["time"], "2026-03-05T10:00:00.000Z");
    assert_eq!(failed_attach["t_ms"], (4 * 24 + 1) * 3_600_000u64);
    let decrypt = &lines[usize::try_from(failed_attach["cause"].as_u64().unwrap()).unwrap()];
    assert_eq!(decrypt["event"], "Decrypt");
    assert_eq!(decrypt["error"], "KMSInvalidStateException");
    assert_eq!(decrypt["key"], "cmk");
    let because = &lines[usize::try_from(decrypt["reason"].as_u64().unwrap()).unwrap()];
    assert_eq!(because["event"], "KeyStateChanged");
    assert_eq!(because["message"], "Enabled -> PendingImport");
}

#[test]
fn seed_and_horizon_overrides_apply() {
    let out = kmsim(&["run", &story(), "--seed", "99", "--horizon", "3d"]);
    assert_eq!(out.status.code(), Some(2), "the timeline has actions after 3d");
    assert!(text(&out.stderr).contains("is after the horizon (3d)"), "{}", text(&out.stderr));
    let out = kmsim(&["run", &story(), "--seed", "99", "--horizon", "20d"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("seed 99"));
    assert!(text(&out.stdout).contains("horizon 20d"));
}

#[test]
fn explain_prints_the_cause_chain_of_each_key_failure() {
    let out = kmsim(&["explain", &story()]);
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    assert!(lines[0].contains("vol-data AttachVolume FAILED CustomerKeyHasBeenRevoked"), "{lines:#?}");
    assert!(lines[1].contains("<- #") && lines[1].contains("cmk Decrypt FAILED KMSInvalidStateException"));
    assert!(lines[2].contains("because #") && lines[2].contains("Enabled -> PendingImport"));
    assert!(lines[3].contains("DeleteImportedKeyMaterial ok"));
    assert!(
        lines[4].contains(r#"timeline[4], line 23: At("2d", DeleteImportedKeyMaterial(key: "cmk"))"#),
        "{}",
        lines[4]
    );
    assert!(lines[5].contains("triggered by timeline[7]"));
    let out = kmsim(&["explain", &story(), "9999"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("there is no record #9999"));
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

#[test]
fn invalid_scenarios_exit_2_with_file_line_and_column_and_leave_no_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(story()).unwrap();
    let bad = write(dir.path(), "bad.ron", &good.replace(r#"key: "cmk", size_gib"#, r#"key: "cmk-x", size_gib"#));
    let trace = dir.path().join("t.jsonl");
    let out = kmsim(&["run", &bad, "--trace", trace.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{bad}:17:15: volumes[0].key: unknown key \"cmk-x\"")), "{err}");
    assert!(!trace.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left either");

    let syntax = write(dir.path(), "syntax.ron", "Scenario(version: 1, name: \"x\"");
    let out = kmsim(&["run", &syntax]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(&format!("{syntax}:1:")), "{}", text(&out.stderr));

    let out = kmsim(&["run", &dir.path().join("missing.ron").display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read the scenario"));
}

#[test]
fn a_runaway_run_stops_at_max_events_with_exit_3() {
    let out = kmsim(&["run", &story(), "--max-events", "10", "--trace", "/nonexistent-dir/t.jsonl"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("stopped after 10 events"), "{}", text(&out.stderr));
}

#[test]
fn an_unwritable_trace_exits_4() {
    let out = kmsim(&["run", &story(), "--quiet", "--trace", "/nonexistent-dir/t.jsonl"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(text(&out.stderr).contains("/nonexistent-dir/t.jsonl: cannot write"));
}

#[test]
fn help_lists_the_commands() {
    let out = kmsim(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    assert!(help.contains("run") && help.contains("explain"));
}
