//! Fleets and sweeps: the reference workload, reproducibility whatever the threads, shards that
//! merge into exactly the unsharded result, throttling, and no progress bar off a terminal.

use std::path::Path;
use std::process::{Command, Output};

use kmsim::actors::Obs;
use kmsim::actors::kms::{KmsException, KmsObs};
use kmsim::run::{RunOptions, run};
use kmsim::scenario::{self, Overrides};

use super::scenarios_dir;

const SMALL_FLEET: &str = r#"// A small fleet for fast sweeps.
Scenario(
    version: 1, name: "small fleet", start: "2026-01-01T00:00:00Z", horizon: "4d", seed: 9,
    keys: [Key(id: "a", origin: External), Key(id: "b", origin: External)],
    fleets: [
        Fleet(id: "web", instances: 40, volumes_per_instance: 2, keys: [("a", 3), ("b", 1)],
              attached: LogNormal("6h", 0.8), detached: Uniform("5m", "15m"), retry: Exponential("30m")),
        Fleet(id: "db", instances: 10, keys: [("b", 1)],
              attached: Empirical([("1d", 1), ("2d", 1)]), detached: Fixed("10m")),
    ],
    timeline: [
        At("0s", ImportKeyMaterial(key: "a", material: "ma", expires: Never)),
        At("0s", ImportKeyMaterial(key: "b", material: "mb", expires: Never)),
        At("1d", DeleteImportedKeyMaterial(key: "a")),
        At("2d", ImportKeyMaterial(key: "a", material: "ma", expires: Never)),
    ],
)
"#;

fn kmsim(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kmsim"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn sweep_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("sweep.json")).unwrap()).unwrap()
}

#[test]
fn the_reference_workload_sweeps_and_matches_the_models() {
    let dir = tempfile::tempdir().unwrap();
    let out = kmsim(
        &[
            "sweep",
            scenarios_dir().join("bench/fleet-1k.ron").to_str().unwrap(),
            "--runs",
            "8",
            "--out",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // Off a terminal, no progress bar: standard error says only where the files went.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("wrote "), "{stderr}");
    let v = sweep_json(dir.path());
    assert_eq!(v["runs"], 8);
    for r in v["per_run"].as_array().unwrap() {
        // The reference models: about 497 counted events per volume over 60 days (4.97 M at
        // N = 10,000), nearly every volume failing once, the first failure at 720 h.
        let events = r["events"].as_u64().unwrap();
        assert!((482_000..=512_000).contains(&events), "events {events}");
        assert!(r["ever_failed"].as_u64().unwrap() >= 990);
        let first = r["first_failure_ms"].as_u64().unwrap();
        assert!((720 * 3_600_000..721 * 3_600_000).contains(&first), "first failure {first}");
        let last = r["last_failure_ms"].as_u64().unwrap();
        assert!((740 * 3_600_000..=768 * 3_600_000).contains(&last), "last failure {last}");
    }
    for f in ["sweep.json", "sweep.svg", "sweep.png"] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    // The chart's marks: what the timeline does to the key after its first import, at the
    // instants the scenario says (its import at 0s is setup, not marked).
    let marks: Vec<(u64, &str)> = v["marks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["at_ms"].as_u64().unwrap(), m["what"].as_str().unwrap()))
        .collect();
    assert_eq!(marks, [(30 * 86_400_000, "cmk: material deleted"), (32 * 86_400_000, "cmk: m1 imported")]);
    // The grid spans the horizon and is densest around them: three quarters of its instants
    // fall in the two days between the marks and the day or two after.
    let grid: Vec<u64> = v["grid_ms"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect();
    assert!(grid.len() <= 240 && grid.windows(2).all(|w| w[0] < w[1]));
    assert_eq!((grid[0], *grid.last().unwrap()), (0, 60 * 86_400_000));
    let near = grid.iter().filter(|&&t| (29 * 86_400_000..=34 * 86_400_000).contains(&t)).count();
    assert!(near >= 180, "{near} of {} grid instants near the marks", grid.len());
    for r in v["per_run"].as_array().unwrap() {
        assert_eq!(r["broken"].as_array().unwrap().len(), grid.len());
    }
    // The same sweep in two shards, merged, is the same sweep.
    let parts = dir.path().join("parts");
    let fleet = scenarios_dir().join("bench/fleet-1k.ron");
    for k in ["0/2", "1/2"] {
        let out = kmsim(
            &["sweep", fleet.to_str().unwrap(), "--runs", "8", "--shard", k, "--out", parts.to_str().unwrap(), "-q"],
            &[],
        );
        assert!(out.status.success());
    }
    let merged = dir.path().join("merged");
    let out = kmsim(
        &[
            "merge",
            parts.join("sweep.part-0-of-2.json").to_str().unwrap(),
            parts.join("sweep.part-1-of-2.json").to_str().unwrap(),
            "--out",
            merged.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success());
    assert_eq!(
        std::fs::read(dir.path().join("sweep.json")).unwrap(),
        std::fs::read(merged.join("sweep.json")).unwrap()
    );
}

fn write_small(dir: &Path) -> String {
    let p = dir.join("small.ron");
    std::fs::write(&p, SMALL_FLEET).unwrap();
    p.display().to_string()
}

#[test]
fn results_are_identical_whatever_the_threads() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_small(dir.path());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    assert!(
        kmsim(&["sweep", &file, "--runs", "6", "--jobs", "1", "--out", a.to_str().unwrap(), "-q"], &[])
            .status
            .success()
    );
    assert!(
        kmsim(&["sweep", &file, "--runs", "6", "--jobs", "3", "--out", b.to_str().unwrap(), "-q"], &[])
            .status
            .success()
    );
    assert_eq!(std::fs::read(a.join("sweep.json")).unwrap(), std::fs::read(b.join("sweep.json")).unwrap());
    let v = sweep_json(&a);
    let seeds: Vec<u64> = v["per_run"].as_array().unwrap().iter().map(|r| r["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds.len(), 6);
    assert!(seeds.windows(2).all(|w| w[0] != w[1]), "each run has its own seed");
}

#[test]
fn four_shards_merge_into_exactly_the_unsharded_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_small(dir.path());
    let whole = dir.path().join("whole");
    let parts = dir.path().join("parts");
    let merged = dir.path().join("merged");
    assert!(kmsim(&["sweep", &file, "--runs", "7", "--out", whole.to_str().unwrap(), "-q"], &[]).status.success());
    for k in 0..4 {
        let shard = format!("{k}/4");
        let out =
            kmsim(&["sweep", &file, "--runs", "7", "--shard", &shard, "--out", parts.to_str().unwrap(), "-q"], &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut args = vec!["merge".to_string()];
    for k in 0..4 {
        args.push(parts.join(format!("sweep.part-{k}-of-4.json")).display().to_string());
    }
    args.extend(["--out".to_string(), merged.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = kmsim(&args, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in ["sweep.json", "sweep.svg", "sweep.png"] {
        assert_eq!(std::fs::read(whole.join(f)).unwrap(), std::fs::read(merged.join(f)).unwrap(), "{f} differs");
    }
    // A missing shard is refused.
    let out = kmsim(&[args[0], args[1], args[2], args[3], args[5], args[6]], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing shard"));
}

#[test]
fn the_shard_index_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_small(dir.path());
    let out_dir = dir.path().join("o");
    for (var, k) in [("JOB_COMPLETION_INDEX", "1"), ("SLURM_ARRAY_TASK_ID", "2")] {
        let out = kmsim(
            &["sweep", &file, "--runs", "3", "--shard", "3", "--out", out_dir.to_str().unwrap(), "-q"],
            &[(var, k)],
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(out_dir.join(format!("sweep.part-{k}-of-3.json")).exists());
    }
    let out = kmsim(&["sweep", &file, "--runs", "3", "--shard", "5/3", "--out", out_dir.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_mass_restart_over_the_quota_is_throttled_and_recovers() {
    // 300 volumes attach at once against a quota of 20 crypto requests a second: most calls are
    // throttled at first, and retries with backoff and jitter get every volume attached.
    let text = r#"Scenario(
        version: 1, name: "throttled", start: "2026-01-01T00:00:00Z", horizon: "1h", seed: 3,
        parameters: (crypto_quota: 20),
        keys: [Key(id: "k", origin: External)],
        fleets: [Fleet(id: "f", instances: 300, keys: [("k", 1)], attached: Fixed("2h"), detached: Fixed("1m"))],
        timeline: [At("0s", ImportKeyMaterial(key: "k", material: "m", expires: Never))],
    )"#;
    let s = scenario::parse("t", text, Overrides::default()).unwrap();
    let r = run(&s, &RunOptions::default(), None).unwrap();
    let throttled = r
        .records
        .iter()
        .filter(|x| matches!(&x.obs, Obs::Kms(KmsObs::Called { result: Err(e), .. }) if e.exception == KmsException::Throttling))
        .count();
    assert!(throttled > 300, "{throttled} throttled calls");
    let end = r.final_snapshot();
    assert!(end.volumes.iter().all(|(_, cached)| *cached), "every volume attached in the end");
    // Never more than the quota's worth of successful crypto calls in one second.
    let mut per_second = std::collections::BTreeMap::new();
    for x in &r.records {
        if let Obs::Kms(KmsObs::Called { op, result: Ok(_), .. }) = &x.obs
            && op.operation().is_crypto()
        {
            *per_second.entry(x.at.as_ms() / 1_000).or_insert(0) += 1;
        }
    }
    assert!(per_second.values().all(|n| *n <= 20), "{per_second:?}");
}

#[test]
fn fleets_are_validated() {
    let bad =
        SMALL_FLEET.replace(r#"keys: [("b", 1)]"#, r#"keys: [("zz", 1)]"#).replace("instances: 40", "instances: 0");
    let e = scenario::parse("f.ron", &bad, Overrides::default()).unwrap_err().to_string();
    assert!(e.contains("fleets[0]: a fleet needs at least one instance"), "{e}");
    assert!(e.contains(r#"fleets[1].keys: unknown key "zz""#), "{e}");
}

#[test]
fn the_bench_fleet_of_a_thousand_meets_its_expectations_when_named() {
    let out = kmsim(&["check", scenarios_dir().join("bench/fleet-1k.ron").to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn fleet_instances_stop_reboot_and_move_hosts_by_themselves() {
    let text = r#"Scenario(
        version: 1, name: "restless", start: "2026-01-01T00:00:00Z", horizon: "4d", seed: 5,
        keys: [Key(id: "k", origin: External)],
        fleets: [Fleet(id: "f", instances: 30, keys: [("k", 1)], attached: Exponential("1d"), detached: Fixed("5m"),
                       stop_every: Exponential("12h"), stopped_for: Uniform("1m", "10m"),
                       reboot_every: Exponential("8h"), host_maintenance_every: Exponential("2d"))],
        timeline: [
            At("0s", ImportKeyMaterial(key: "k", material: "m", expires: Never)),
            At("1d", DeleteImportedKeyMaterial(key: "k")),
        ],
    )"#;
    let s = scenario::parse("r", text, Overrides::default()).unwrap();
    let r = run(&s, &RunOptions::default(), None).unwrap();
    let described: Vec<_> =
        r.records.iter().map(|x| (x.at.as_ms(), kmsim::report::describe::describe(&r.names, x))).collect();
    let count = |event: &str| described.iter().filter(|(_, d)| d.event == event).count();
    assert!(count("RebootInstances") > 100, "reboots: {}", count("RebootInstances"));
    assert!(count("HostMaintenance") > 10, "host maintenance: {}", count("HostMaintenance"));
    let failed_starts: Vec<u64> = described
        .iter()
        .filter(|(_, d)| d.event == "InstanceStateChanged" && d.error.as_deref() == Some("Client.InternalError"))
        .map(|(t, _)| *t)
        .collect();
    assert!(!failed_starts.is_empty(), "starts after the deletion fail");
    assert!(failed_starts.iter().all(|t| *t >= 86_400_000), "and only after it");
}

#[test]
fn auto_scaling_replaces_instances_whose_volumes_then_need_kms() {
    let text = r#"Scenario(
        version: 1, name: "scaling", start: "2026-01-01T00:00:00Z", horizon: "3d", seed: 8,
        keys: [Key(id: "k", origin: External)],
        fleets: [Fleet(id: "asg", instances: 20, volumes_per_instance: 2, keys: [("k", 1)],
                       attached: Fixed("30d"), detached: Fixed("5m"), replace_every: Exponential("12h"))],
        timeline: [
            At("0s", ImportKeyMaterial(key: "k", material: "m", expires: Never)),
            At("1d", DeleteImportedKeyMaterial(key: "k")),
        ],
    )"#;
    let s = scenario::parse("a", text, Overrides::default()).unwrap();
    let r = run(&s, &RunOptions::default(), None).unwrap();
    let d: Vec<_> = r.records.iter().map(|x| (x.at.as_ms(), kmsim::report::describe::describe(&r.names, x))).collect();
    let terminated = d.iter().filter(|(_, x)| x.message.ends_with("-> terminated")).count();
    // A replacement is launched with its volumes: pending, then running or, once the key is
    // unusable, terminated with Client.InternalError (D6), and launched again after the cooldown.
    // Each launch is a new instance with an id of its own (D6), pending from no state.
    let launches: Vec<&str> = d
        .iter()
        .filter(|(_, x)| x.message.starts_with("launched by auto scaling in place of asg-i"))
        .map(|(_, x)| x.subject.as_str())
        .collect();
    let relaunched = launches.len();
    assert!(terminated > 20 && relaunched > 20, "{terminated} terminations, {relaunched} replacements");
    let ids: std::collections::BTreeSet<&str> = launches.iter().copied().collect();
    assert_eq!(ids.len(), relaunched, "every launch has its own id");
    assert!(ids.iter().all(|id| id.starts_with("asg-i") && id.contains("-r")), "{ids:?}");
    assert!(!d.iter().any(|(_, x)| x.message == "terminated -> pending"), "no instance comes back from terminated");
    let failed_launches: Vec<u64> = d
        .iter()
        .filter(|(_, x)| {
            x.message.starts_with("pending -> terminated") && x.error.as_deref() == Some("Client.InternalError")
        })
        .map(|(t, _)| *t)
        .collect();
    assert!(failed_launches.len() > 20, "launches after the deletion fail: {}", failed_launches.len());
    assert!(failed_launches.iter().all(|t| *t >= 86_400_000), "and only after it");
    let day = 86_400_000;
    // Volumes never detach by themselves here (30d attached): only replacements reattach them.
    let ok_before =
        d.iter().filter(|(t, x)| *t < day && x.event == "AttachVolume" && x.outcome.as_str() == "ok").count();
    let failed_after =
        d.iter().filter(|(t, x)| *t >= day && x.event == "AttachVolume" && x.outcome.as_str() == "failed").count();
    assert!(ok_before > 40, "replacements before the deletion reattach: {ok_before}");
    assert!(failed_after > 0, "replacements after it cannot");
    assert!(d.iter().all(|(t, x)| !(x.event == "AttachVolume" && x.outcome.as_str() == "failed") || *t >= day));
}

/// A sweep writes only into a folder the user names, and says where; a shard needs one.
#[test]
fn a_sweep_writes_nothing_unless_told_where() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_small(dir.path());
    let work = dir.path().join("cwd");
    std::fs::create_dir(&work).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kmsim"))
        .args(["sweep", &file, "--runs", "2"])
        .current_dir(&work)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 runs"));
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0, "it wrote into the working folder");
    let named = dir.path().join("named");
    let out = kmsim(&["sweep", &file, "--runs", "2", "-q", "--out", named.to_str().unwrap()], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(&named.join("sweep.json").display().to_string()));
    assert!(named.join("sweep.png").exists());
    let out = kmsim(&["sweep", &file, "--runs", "2", "--shard", "0/2"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out DIR"));
}

/// Counts are checked against their documented limits before anything is allocated: a sweep of
/// 10^10 runs, or on a million threads, is refused at once.
#[test]
fn counts_beyond_their_limits_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_small(dir.path());
    let out_dir = dir.path().join("o");
    let o = out_dir.to_str().unwrap();
    for (args, says) in [
        (vec!["--runs", "10000000000"], "give 1 to 1000000 runs"),
        (vec!["--runs", "0"], "give 1 to 1000000 runs"),
        (vec!["--runs", "4", "--jobs", "1000000"], "give 1 to 256 threads"),
        (vec!["--runs", "4", "--shard", "0/9", "--out", o], "more shards than runs"),
    ] {
        let mut all = vec!["sweep", &file];
        all.extend(args);
        let out = kmsim(&all, &[]);
        assert_eq!(out.status.code(), Some(2), "{all:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{all:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = kmsim(&["check", "--jobs", "0", &file], &[]);
    assert_eq!(out.status.code(), Some(2));
}

/// `merge` takes only parts of one sweep, each run once, with values in range.
#[test]
fn merge_refuses_parts_of_another_sweep_repeated_runs_and_values_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_small(dir.path());
    let parts = dir.path().join("parts");
    for k in ["0/2", "1/2"] {
        let out = kmsim(&["sweep", &file, "--runs", "4", "--shard", k, "--out", parts.to_str().unwrap(), "-q"], &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let read = |k: u64| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(parts.join(format!("sweep.part-{k}-of-2.json"))).unwrap())
            .unwrap()
    };
    let merge_with = |second: &serde_json::Value| {
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, serde_json::to_string(second).unwrap()).unwrap();
        let first = parts.join("sweep.part-0-of-2.json");
        let out = kmsim(&["merge", first.to_str().unwrap(), bad.to_str().unwrap()], &[]);
        (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    assert_eq!(merge_with(&read(1)).0, Some(0), "the two true parts merge");
    // Another scenario under the same name: its text, so its digest, differs.
    let other = dir.path().join("other.ron");
    std::fs::write(
        &other,
        std::fs::read_to_string(&file).unwrap().replace("seed: 9", "seed: 9, description: \"other\""),
    )
    .unwrap();
    let out = kmsim(
        &[
            "sweep",
            other.to_str().unwrap(),
            "--runs",
            "4",
            "--shard",
            "1/2",
            "--out",
            dir.path().join("x").to_str().unwrap(),
            "-q",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let foreign: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("x/sweep.part-1-of-2.json")).unwrap()).unwrap();
    assert_eq!(foreign["scenario"], read(1)["scenario"]);
    let (code, err) = merge_with(&foreign);
    assert_eq!(code, Some(2));
    assert!(err.contains("from another sweep"), "{err}");
    // A part counted on another grid, or marked otherwise.
    let mut regrid = read(1);
    regrid["grid_ms"][1] = serde_json::json!(1);
    assert!(merge_with(&regrid).1.contains("from another sweep"));
    let mut remarked = read(1);
    remarked["marks"][0]["at_ms"] = serde_json::json!(1);
    assert!(merge_with(&remarked).1.contains("from another sweep"));
    // A run repeated in place of the shard's own.
    let mut repeated = read(1);
    repeated["per_run"][1] = repeated["per_run"][0].clone();
    let (code, err) = merge_with(&repeated);
    assert_eq!(code, Some(2));
    assert!(err.contains("not the shard's next run"), "{err}");
    // A failure after the horizon.
    let mut late = read(1);
    late["per_run"][0]["last_failure_ms"] = serde_json::json!(u64::MAX);
    let (code, err) = merge_with(&late);
    assert_eq!(code, Some(2));
    assert!(err.contains("beyond the horizon"), "{err}");
}
