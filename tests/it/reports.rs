//! `reports/` holds real output; these tests keep it current. `KMSIM_BLESS=1` rewrites it.

use std::path::Path;
use std::process::Command;

fn check_or_bless(rel: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    if std::env::var_os("KMSIM_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        let (n, (want, got)) = expected
            .lines()
            .chain(std::iter::repeat(""))
            .zip(actual.lines().chain(std::iter::repeat("")))
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .expect("texts differ somewhere");
        panic!(
            "{rel} is out of date at line {}:\n  committed: {want}\n  now:       {got}\nIf the change is intended, run: KMSIM_BLESS=1 cargo test --test it reports",
            n + 1
        );
    }
}

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
