//! The regression suite: every bundled scenario's expectations hold, each against a golden
//! trace, and the checker itself is tested on fixtures whose expectations are meant to fail.

use std::path::Path;
use std::process::Command;

use kmsim::analysis::check::{FileResult, check_text};
use kmsim::report;
use kmsim::run::{RunOptions, run};
use kmsim::scenario::{self, Overrides};

use super::all_scenarios;
use super::golden::check_or_bless;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn rel(path: &Path) -> String {
    path.strip_prefix(root()).unwrap().display().to_string()
}

/// Adding a scenario file adds a regression test: this runs each one through `check_text`, the
/// function behind `kmsim check`.
#[test]
fn every_bundled_scenario_meets_its_expectations() {
    let mut failures = Vec::new();
    for path in all_scenarios() {
        let name = rel(&path);
        let text = std::fs::read_to_string(&path).unwrap();
        match check_text(&name, &text, Overrides::default(), &RunOptions::default()) {
            FileResult::Passed { verdicts } if !verdicts.is_empty() => {}
            FileResult::Passed { .. } => failures.push(format!("{name}: has no expectations")),
            FileResult::Failed { verdicts } => {
                for v in verdicts.iter().filter(|v| !v.held) {
                    failures.push(format!(
                        "{name}:{}: expected {}; found {}",
                        v.line.unwrap_or(0),
                        v.expected,
                        v.found.as_deref().unwrap_or("")
                    ));
                }
            }
            FileResult::Invalid { errors } => failures.push(errors.join("\n")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Each bundled scenario's full output (timeline, summary, expectations) against its golden copy
/// under `tests/golden/`, named after the scenario's path.
#[test]
fn every_bundled_scenario_matches_its_golden_trace() {
    let mut expected_goldens = Vec::new();
    for path in all_scenarios() {
        let name = rel(&path);
        let text = std::fs::read_to_string(&path).unwrap();
        let s = scenario::parse(&name, &text, Overrides::default()).unwrap();
        let r = run(&s, &RunOptions::default(), None).unwrap();
        let golden = format!("tests/golden/{}", name.trim_start_matches("scenarios/").replace(".ron", ".txt"));
        check_or_bless(&golden, &report::run_text(&r, &name));
        expected_goldens.push(root().join(&golden));
    }
    // A golden trace whose scenario is gone is stale (other goldens, such as CloudTrail logs, have their own tests).
    let mut stale = Vec::new();
    let mut stack = vec![root().join("tests/golden")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "txt") && !expected_goldens.contains(&p) {
                stale.push(rel(&p));
            }
        }
    }
    assert!(stale.is_empty(), "golden files without a scenario: {stale:?}");
}

fn fixture(rel_path: &str) -> FileResult {
    let text = std::fs::read_to_string(root().join(rel_path)).unwrap();
    check_text(rel_path, &text, Overrides::default(), &RunOptions::default())
}

#[test]
fn wrong_beliefs_are_reported_with_what_happened_instead() {
    let FileResult::Failed { verdicts } = fixture("tests/fixtures/failing/wrong-beliefs.ron") else {
        panic!("the fixture's expectations are meant to fail")
    };
    let failed: Vec<(usize, &str, &str)> = verdicts
        .iter()
        .filter(|v| !v.held)
        .map(|v| (v.line.unwrap(), v.expected.as_str(), v.found.as_deref().unwrap()))
        .collect();
    assert_eq!(
        failed,
        [
            (
                23,
                "vol-data Write failed at +3d",
                "no such event; nearest vol-data Write: #15 at +3d: vol-data Write ok"
            ),
            (
                25,
                "vol-data AttachVolume ok at +4d 1h",
                "no such event; nearest vol-data AttachVolume: #20 at +4d 1h: vol-data AttachVolume failed CustomerKeyHasBeenRevoked"
            ),
            (
                27,
                "vol-data finally breaks at +4d (within 30m)",
                "it broke at +4d 1h (AttachVolume CustomerKeyHasBeenRevoked), 1h later"
            ),
            (29, "key cmk is Disabled at +3d", "it is PendingImport"),
            (
                31,
                "no vol-data AttachVolume failed during the run",
                "it happened: #20 at +4d 1h: vol-data AttachVolume failed CustomerKeyHasBeenRevoked"
            ),
            (33, "3 x vol-data AttachVolume during the run", "2 happened (at +5m, +4d 1h)"),
            (36, "vol-data is latent at the end", "it is broken"),
        ]
    );
    assert_eq!(verdicts.iter().filter(|v| v.held).count(), 1, "the one right belief holds");
}

#[test]
fn invalid_expectations_are_reported_with_positions() {
    let FileResult::Invalid { errors } = fixture("tests/fixtures/invalid/bad-expectations.ron") else {
        panic!("the fixture is meant to be invalid")
    };
    let f = "tests/fixtures/invalid/bad-expectations.ron";
    assert_eq!(
        errors,
        [
            format!(
                "{f}:12:9: expect[0].event: \"Attach\" is not an event kmsim records; did you mean AttachVolumeRequested or AttachVolume or ReattachVolume?"
            ),
            format!(
                "{f}:13:9: expect[1].subject: \"vol-9\" is not a declared key, volume, instance, snapshot, image, group or service resource (or \"kms\")"
            ),
            format!("{f}:14:9: expect[2].at: \"2d\" is after the horizon (1d)"),
            format!(
                "{f}:15:9: expect[3].is: \"attached\" is not a volume state: use one of not-created, creating, available, attaching, in-use"
            ),
        ]
    );
}

fn kmsim_check(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kmsim")).current_dir(root()).arg("check").args(args).output().unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn check_exits_0_1_2_and_prints_a_line_per_scenario_and_a_total() {
    let (code, out) = kmsim_check(&[]);
    assert_eq!(code, Some(0), "{out}");
    let n = all_scenarios().len();
    assert!(out.ends_with(&format!("{n} scenarios: {n} passed, 0 failed, 0 invalid\n")), "{out}");
    assert_eq!(out.lines().count(), n + 1);
    let (code, out) = kmsim_check(&["tests/fixtures/failing"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("FAILED   tests/fixtures/failing/wrong-beliefs.ron (7 of 8 expectations failed)"));
    let (code, _) = kmsim_check(&["tests/fixtures/failing", "tests/fixtures/invalid"]);
    assert_eq!(code, Some(2));
    let (code, _) = kmsim_check(&["no/such/folder"]);
    assert_eq!(code, Some(2));
}

#[test]
fn check_output_is_the_same_whatever_the_number_of_threads() {
    let (_, one) = kmsim_check(&["--jobs", "1", "scenarios", "tests/fixtures"]);
    let (_, four) = kmsim_check(&["--jobs", "4", "scenarios", "tests/fixtures"]);
    assert_eq!(one, four);
    // A bound below every scenario's estimate runs them one at a time, to the same answers.
    let (_, bounded) = kmsim_check(&["--jobs", "4", "--max-memory", "1", "scenarios", "tests/fixtures"]);
    assert_eq!(one, bounded);
    let (code, _) = kmsim_check(&["--max-memory", "0"]);
    assert_eq!(code, Some(2), "a bound of nothing is refused");
}

#[test]
fn check_json_is_machine_readable() {
    let (code, out) = kmsim_check(&["--format", "json", "tests/fixtures/failing"]);
    assert_eq!(code, Some(1));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["failed"], 1);
    let s = &v["scenarios"][0];
    assert_eq!(s["status"], "failed");
    assert_eq!(s["file"], "tests/fixtures/failing/wrong-beliefs.ron");
    assert_eq!(s["verdicts"][0]["held"], false);
    assert_eq!(s["verdicts"][0]["line"], 23);
    assert!(s["verdicts"][0]["found"].as_str().unwrap().contains("nearest vol-data Write"));
}

/// A folder reached again through a link that loops is entered once, and a file with several
/// names is checked once, under the name where it lies.
#[cfg(unix)]
#[test]
fn check_follows_each_file_once_through_links_that_loop() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    std::fs::create_dir_all(a.join("b")).unwrap();
    std::fs::copy(root().join("scenarios/ebs/ebs-story.ron"), a.join("story.ron")).unwrap();
    std::os::unix::fs::symlink("..", a.join("b/loop")).unwrap();
    std::os::unix::fs::symlink("../story.ron", a.join("b/again.ron")).unwrap();
    let a_text = a.to_str().unwrap();
    let story = a.join("story.ron");
    let (code, out) = kmsim_check(&[a_text, a_text, story.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.starts_with(&format!("ok       {}", story.display())), "{out}");
}

/// `--format junit` is XML a CI system reads: a suite per file, a case per expectation, a failure
/// per expectation that did not hold (with what was found), an error per invalid file.
#[test]
fn check_writes_junit_xml_for_ci_systems() {
    let (code, out) = kmsim_check(&[
        "scenarios/ebs/ebs-story.ron",
        "tests/fixtures/failing/wrong-beliefs.ron",
        "tests/fixtures/invalid/bad-expectations.ron",
        "--format",
        "junit",
    ]);
    assert_eq!(code, Some(2), "an invalid file makes the exit code 2");
    let doc = roxmltree::Document::parse(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<roxmltree::Node> = root.children().filter(|n| n.has_tag_name("testsuite")).collect();
    assert_eq!(suites.len(), 3);
    let attr = |n: &roxmltree::Node, a: &str| n.attribute(a).unwrap().parse::<usize>().unwrap();
    let FileResult::Failed { verdicts } = fixture("tests/fixtures/failing/wrong-beliefs.ron") else { unreachable!() };
    let failing = &suites[1];
    assert_eq!(failing.attribute("name"), Some("tests/fixtures/failing/wrong-beliefs.ron"));
    assert_eq!(attr(failing, "tests"), verdicts.len());
    assert_eq!(attr(failing, "failures"), verdicts.iter().filter(|v| !v.held).count());
    let first_failure = failing.descendants().find(|n| n.has_tag_name("failure")).unwrap();
    assert!(first_failure.text().unwrap().starts_with("found: "));
    assert_eq!(attr(&suites[2], "errors"), 1);
    assert!(suites[2].descendants().any(|n| n.has_tag_name("error")));
    assert_eq!(attr(&suites[0], "failures") + attr(&suites[0], "errors"), 0);
    assert_eq!(attr(&root, "tests"), suites.iter().map(|s| attr(s, "tests")).sum::<usize>());
}
