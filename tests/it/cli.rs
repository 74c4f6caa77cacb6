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

/// A service resource's failure is a failure caused by a key too: a secret's refused
/// GetSecretValue, back to the deletion that made the key unusable.
#[test]
fn explain_follows_a_services_failure_to_the_key() {
    let file = super::scenarios_dir().join("services/secret-and-lambda.ron");
    let out = kmsim(&["explain", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    assert!(lines[0].contains("db-password GetSecretValue FAILED DecryptionFailure"), "{lines:#?}");
    assert!(lines[1].contains("Decrypt FAILED KMSInvalidStateException"), "{lines:#?}");
    assert!(lines[2].contains("Enabled -> PendingImport"), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("resize Invoke FAILED KMSInvalidStateException")), "{lines:#?}");
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
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.jsonl");
    std::fs::write(&trace, "an earlier run's trace\n").unwrap();
    let out = kmsim(&["run", &story(), "--max-events", "10", "--trace", trace.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("stopped after 10 events"), "{}", text(&out.stderr));
    // The streamed trace of a run that did not finish is not left behind, whole or in part, and
    // neither is the earlier trace it was to replace (removed while the run went on).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // A trace that cannot be written is refused before the run, not after it.
    let out = kmsim(&["run", &story(), "--trace", "/nonexistent-dir/t.jsonl"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(text(&out.stderr).contains("/nonexistent-dir/t.jsonl: cannot write"), "{}", text(&out.stderr));
}

#[test]
fn an_unwritable_trace_exits_4() {
    let out = kmsim(&["run", &story(), "--quiet", "--trace", "/nonexistent-dir/t.jsonl"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(text(&out.stderr).contains("/nonexistent-dir/t.jsonl: cannot write"));
}

/// Writing a trace to a device or a FIFO writes into it, and leaves it what it was (a rename
/// into place would replace `/dev/null` with a plain file).
#[cfg(unix)]
#[test]
fn a_trace_to_a_fifo_is_written_into_it_not_over_it() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("trace.fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let out = kmsim(&["run", &story(), "--quiet", "--trace", fifo.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Checked before joining the reader, which would wait forever on a replaced FIFO.
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file beside it");
    let trace = reader.join().unwrap();
    assert!(trace.lines().count() > 10 && trace.lines().all(|l| l.starts_with("{\"seq\":")), "{trace}");
}

#[test]
fn help_lists_the_commands() {
    let out = kmsim(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    assert!(help.contains("run") && help.contains("explain"));
}

/// `kmsim bench`'s `key=value` line as pairs.
fn bench_fields(out: &Output) -> std::collections::BTreeMap<String, String> {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    assert!(line.starts_with("impl=kmsim "), "{line}");
    line.split_whitespace().map(|kv| kv.split_once('=').unwrap()).map(|(k, v)| (k.into(), v.into())).collect()
}

#[test]
fn bench_counts_the_fleet_as_the_reference_models_do() {
    let fleet = scenarios_dir().join("bench/fleet-1k.ron").display().to_string();
    let f = bench_fields(&kmsim(&["bench", &fleet]));
    let num = |k: &str| f[k].parse::<f64>().unwrap();
    // The heap loop at N = 1,000, seed 42: 495,219 events, 1,000 volumes failed, 720 h / 768 h.
    assert_eq!(f["N"], "1000");
    assert!((482_000.0..=512_000.0).contains(&num("events")), "{f:?}");
    let count = |k: &str| f[k].parse::<u64>().unwrap();
    assert_eq!(count("events"), count("attach") + count("detach") + count("retry") + count("key"));
    assert!(num("ever_failed") >= 990.0, "{f:?}");
    assert!((720.0..721.0).contains(&num("first_failure_h")), "{f:?}");
    assert!((740.0..=768.0).contains(&num("last_failure_h")), "{f:?}");
    assert!(count("engine_messages") > count("events"));
}

#[test]
fn a_streamed_trace_is_the_trace_of_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (from_run, from_bench) = (dir.path().join("run.jsonl"), dir.path().join("bench.jsonl"));
    let out = kmsim(&["run", &story(), "--quiet", "--trace", from_run.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let full = ["--trace-format", "full"];
    let f = bench_fields(&kmsim(&[&["bench", &story(), "--trace", from_bench.to_str().unwrap()][..], &full].concat()));
    let (a, b) = (std::fs::read_to_string(&from_run).unwrap(), std::fs::read_to_string(&from_bench).unwrap());
    assert_eq!(a, b);
    assert_eq!(a.lines().count().to_string(), f["records"]);
    assert!(
        !std::fs::read_dir(dir.path()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with("kmsim-tmp"))
    );
    // Written again over itself: the same trace, and nothing else left beside it.
    let again =
        bench_fields(&kmsim(&[&["bench", &story(), "--trace", from_bench.to_str().unwrap()][..], &full].concat()));
    assert_eq!(again["records"], f["records"]);
    assert_eq!(std::fs::read_to_string(&from_bench).unwrap(), a);
    let hidden = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with('.'));
    assert_eq!(hidden.count(), 0, "no temporary or earlier file left");
    // Compact, bench's own default: one line per record too, each without the sentence.
    let compact = dir.path().join("compact.jsonl");
    let g = bench_fields(&kmsim(&["bench", &story(), "--trace", compact.to_str().unwrap()]));
    let c = std::fs::read_to_string(&compact).unwrap();
    assert_eq!(c.lines().count().to_string(), g["records"]);
    assert!(c.lines().all(|l| l.starts_with("{\"seq\":") && !l.contains("\"message\"")), "{c}");
    // CSV: the header, then a row per record, numbered as the compact lines are.
    // (A file named .csv gets CSV unless asked otherwise.)
    let csv = dir.path().join("trace.csv");
    let h = bench_fields(&kmsim(&["bench", &story(), "--trace", csv.to_str().unwrap()]));
    let v = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(v.lines().next(), Some("seq,t_ms,actor,key,event,outcome,error,cause,action,reason"));
    assert_eq!(v.lines().skip(1).count().to_string(), h["records"]);
    assert!(
        v.lines().skip(1).zip(c.lines()).all(|(row, line)| line[7..].starts_with(&row[..row.find(',').unwrap() + 1]))
    );
}

/// A report folder is written as a set: when one of the new files cannot be put in place (here a
/// folder bears its name), none is, and the earlier report stays whole; nothing is left beside it.
#[test]
fn a_report_folder_is_replaced_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r");
    let r = report.to_str().unwrap();
    let out = kmsim(&["run", &story(), "--quiet", "--report", r]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let before: Vec<(String, Vec<u8>)> = ["report.html", "timeline.svg", "timeline.png", "summary.md"]
        .iter()
        .map(|f| (f.to_string(), std::fs::read(report.join(f)).unwrap()))
        .collect();
    std::fs::remove_file(report.join("trace.jsonl")).unwrap();
    std::fs::create_dir(report.join("trace.jsonl")).unwrap();
    let other = scenarios_dir().join("ec2/host-maintenance.ron");
    let out = kmsim(&["run", other.to_str().unwrap(), "--quiet", "--report", r]);
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("trace.jsonl is in the way"), "{}", text(&out.stderr));
    for (f, bytes) in &before {
        assert_eq!(&std::fs::read(report.join(f)).unwrap(), bytes, "{f} changed");
    }
    let names: Vec<String> =
        std::fs::read_dir(&report).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "left behind: {names:?}");
}

/// Temporary files carry the process id; those of a run that no longer lives are removed by the
/// next run writing beside them, and nothing else is touched.
#[cfg(target_os = "linux")]
#[test]
fn temporaries_a_killed_run_left_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let dead = u32::MAX - 1; // above any pid_max: no such process
    let stale_trace = dir.path().join(format!(".t.jsonl.{dead}.kmsim-tmp"));
    let stale_old = dir.path().join(format!(".t.jsonl.{dead}.kmsim-old"));
    let unrelated = dir.path().join(".t.jsonl.notes");
    for p in [&stale_trace, &stale_old, &unrelated] {
        std::fs::write(p, "x").unwrap();
    }
    let report = dir.path().join("r");
    let stale_staging = report.join(format!(".report.{dead}.kmsim-tmp"));
    std::fs::create_dir_all(&stale_staging).unwrap();
    std::fs::write(stale_staging.join("report.html"), "half").unwrap();
    let trace = dir.path().join("t.jsonl");
    let out =
        kmsim(&["run", &story(), "--quiet", "--trace", trace.to_str().unwrap(), "--report", report.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!stale_trace.exists() && !stale_old.exists() && !stale_staging.exists());
    assert!(unrelated.exists());
    assert!(trace.exists() && report.join("report.html").exists());
}

#[test]
fn a_byte_order_mark_reads_and_a_file_not_in_utf8_names_its_first_bad_byte() {
    let dir = tempfile::tempdir().unwrap();
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend(std::fs::read(story()).unwrap());
    let with_bom = dir.path().join("bom.ron");
    std::fs::write(&with_bom, bom).unwrap();
    let out = kmsim(&["run", with_bom.to_str().unwrap(), "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Latin-1 where UTF-8 was expected: the byte, its line and its column, for every command
    // that reads the file.
    let latin1 = dir.path().join("latin1.ron");
    std::fs::write(&latin1, b"Scenario(\n  name: \"caf\xE9\")").unwrap();
    let expected = "not UTF-8: byte 22 (line 2, column 13) is 0xE9; save the file as UTF-8";
    for args in [vec!["run", "-q"], vec!["check"], vec!["sweep", "--runs", "1"], vec!["explain"]] {
        let mut args = args.clone();
        args.insert(1, latin1.to_str().unwrap());
        let out = kmsim(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let said = text(&out.stderr) + &text(&out.stdout);
        assert!(said.contains(expected), "{args:?}: {said}");
    }
}

#[test]
fn control_characters_in_ids_never_reach_the_terminal_raw() {
    let dir = tempfile::tempdir().unwrap();
    let body = std::fs::read_to_string(story()).unwrap().replace("\"vol-data\"", "\"vol\\u{1b}[2Jdata\"");
    let file = write(dir.path(), "escape.ron", &body);
    for args in
        [vec!["run", file.as_str()], vec!["explain", file.as_str()], vec!["impact", file.as_str(), "--key", "cmk"]]
    {
        let out = kmsim(&args);
        assert!(out.status.code().is_some_and(|c| c <= 1), "{args:?}: {}", text(&out.stderr));
        let said = [out.stdout, out.stderr].concat();
        assert!(!said.contains(&0x1b), "{args:?} printed a raw escape");
        assert!(text(&said).contains("vol\\u{1b}[2Jdata"), "{args:?}: the id is shown escaped");
    }
}

#[test]
fn every_command_spells_output_quiet_and_json_the_same_way_old_spellings_kept() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).display().to_string();
    // -o / --out, and the old --report and --output.
    for (args, written) in [
        (vec!["run", &story(), "-q", "-o", &d("r1")], d("r1/report.html")),
        (vec!["run", &story(), "-q", "--report", &d("r2")], d("r2/report.html")),
        (vec!["sweep", &story(), "--runs", "2", "-q", "-o", &d("s")], d("s/sweep.json")),
        (vec!["man", "-o", &d("man")], d("man/kmsim-run.1")),
    ] {
        let out = kmsim(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out.stderr));
        assert!(Path::new(&written).exists(), "{args:?} wrote {written}");
    }
    let trail = dir.path().join("trail.json");
    assert!(kmsim(&["run", &story(), "-q", "--cloudtrail", trail.to_str().unwrap()]).status.success());
    for flag in ["-o", "--out", "--output"] {
        let out = kmsim(&["import-cloudtrail", trail.to_str().unwrap(), flag, &d("imported.ron"), "-q"]);
        assert_eq!(out.status.code(), Some(0), "{flag}: {}", text(&out.stderr));
        assert!(out.stderr.is_empty(), "-q: nothing on stderr");
    }
    // -q: check prints only what fails, and the total.
    let out = kmsim(&["check", &story(), "-q"]);
    assert_eq!(text(&out.stdout), "1 scenario: 1 passed, 0 failed, 0 invalid\n");
    // --format json where there is a result to read; each with its version.
    for args in
        [vec!["sweep", &story(), "--runs", "2", "--format", "json"], vec!["bench", &story(), "--format", "json"]]
    {
        let out = kmsim(&args);
        let doc: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
        assert_eq!(doc["version"], 1, "{args:?}");
    }
    // --seed and --horizon on a sweep, as on a run: another base seed, a longer horizon.
    let out = kmsim(&["sweep", &story(), "--runs", "1", "--seed", "5", "--horizon", "20d", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!((doc["base_seed"].as_u64(), doc["horizon_ms"].as_u64()), (Some(5), Some(20 * 86_400_000)));
}

#[test]
fn help_gives_examples_and_exit_codes_and_completions_and_man_page_come_from_the_grammar() {
    for command in ["run", "explain", "impact", "import-cloudtrail", "sweep", "bench", "merge", "check"] {
        let help = text(&kmsim(&[command, "--help"]).stdout);
        assert!(help.contains("Examples:\n  kmsim "), "{command}: {help}");
        assert!(help.contains("Exit codes: 0 "), "{command}: {help}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let script = text(&kmsim(&["completions", shell]).stdout);
        assert!(script.contains("import-cloudtrail") && script.contains("--delete-material-at"), "{shell}");
    }
    let page = text(&kmsim(&["man"]).stdout);
    assert!(page.contains(".TH kmsim 1") && page.contains("import\\-cloudtrail"), "{page}");
}

/// A what-if past the horizon moves the horizon beyond it, but not past the ten years a
/// scenario may span: that is bad input (exit 2), said with the instant.
#[test]
fn a_what_if_more_than_ten_years_on_is_refused() {
    let out = kmsim(&["impact", &story(), "--key", "cmk", "--delete-material-at", "3650d"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--delete-material-at: 3650d is more than ten years after the start"), "{err}");
    assert!(out.stdout.is_empty());
    let out = kmsim(&["impact", &story(), "--key", "cmk", "--delete-material-at", "3000d"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}
