//! `reports/` holds real output; this test keeps it current. `KMSIM_BLESS=1` rewrites it.

use std::path::Path;
use std::process::Command;

use super::golden::check_or_bless;

#[test]
fn the_ebs_story_report_is_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_kmsim"))
        .current_dir(root)
        .args(["run", "scenarios/ebs/ebs-story.ron", "--trace", trace.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    check_or_bless("reports/ebs-story/run.txt", &String::from_utf8(out.stdout).unwrap());
    check_or_bless("reports/ebs-story/trace.jsonl", &std::fs::read_to_string(trace).unwrap());
}
