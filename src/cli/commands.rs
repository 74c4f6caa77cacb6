//! One body per command that is more than a few lines: `impact`, `sweep`, `check`, `bench`, and
//! the one pass `run` makes.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::files::{AtomicFile, read_text, scenario_files, with_trace, write_atomically, write_set};
use super::parallel::{Budget, jobs_or_cores, parallel_map};
use super::{CheckFormat, Common, Failure, Format, load, print_text, stdout_error};
use crate::analysis::check::{self, FileResult};
use crate::report::{self, trace};
use crate::run::RunOptions;
use crate::scenario::{self, Overrides, Scenario};

/// What `kmsim impact` is asked.
pub(super) struct ImpactAsk<'a> {
    pub key: &'a str,
    pub material: Option<&'a str>,
    pub at: Option<&'a str>,
    pub delete_at: Option<&'a str>,
    pub format: Format,
    pub dot_file: Option<&'a Path>,
}

pub(super) fn impact_command(common: &Common, ask: &ImpactAsk<'_>) -> Result<(), Failure> {
    use crate::scenario::parse_time;
    let ImpactAsk { key, material, at, delete_at, format, dot_file } = *ask;
    let mut scenario = load(common)?;
    let key_idx = scenario.key_named(key).ok_or_else(|| {
        let known: Vec<&str> = scenario.keys.iter().map(|d| d.name.as_str()).collect();
        Failure::Input(format!("--key {key:?}: no such key in the scenario (keys: {})", known.join(", ")))
    })?;
    let material = material
        .map(|m| {
            scenario.material_named(m).ok_or_else(|| {
                let known = if scenario.materials.is_empty() { "none".into() } else { scenario.materials.join(", ") };
                Failure::Input(format!("--material {m:?}: the timeline names no such material (materials: {known})"))
            })
        })
        .transpose()?;
    // `now` is the instant an imported scenario's estate or trail was taken.
    let instant = |flag: &str, s: &str, scenario: &Scenario| -> Result<crate::engine::SimTime, Failure> {
        if s.trim() == "now" {
            return scenario.now.ok_or_else(|| {
                Failure::Input(format!(
                    "{flag} now: the scenario has no `now` (an imported one has): give an offset or an instant"
                ))
            });
        }
        parse_time(s, scenario.start).map_err(|e| Failure::Input(format!("{flag}: {e}")))
    };
    let delete_at = delete_at.map(|s| instant("--delete-material-at", s, &scenario)).transpose()?;
    // A deletion after the horizon moves it: what breaks after the deletion is the question.
    if let Some(t) = delete_at {
        let after = crate::engine::SimDuration::from_days(30);
        let moved = scenario.reach(t, after).map_err(|e| Failure::Input(format!("--delete-material-at: {e}")))?;
        if let Some(was) = moved {
            eprintln!(
                "kmsim: the horizon moves from {} to {}, 30 days after the deletion",
                was.since_start(),
                scenario.horizon.since_start()
            );
        }
    }
    let time = |flag: &str, s: &str| -> Result<crate::engine::SimTime, Failure> {
        let t = instant(flag, s, &scenario)?;
        if t > scenario.horizon {
            return Err(Failure::Input(format!(
                "{flag} {s:?} is after the horizon ({})",
                scenario.horizon.since_start()
            )));
        }
        Ok(t)
    };
    let at = match (at.map(|s| time("--at", s)).transpose()?, delete_at) {
        (Some(t), _) | (None, Some(t)) => t,
        (None, None) => scenario.horizon,
    };
    if let Some(t) = delete_at {
        scenario.delete_material_at(key_idx, material, t);
    }
    // One pass: the summary of the whole run (it knows when each latent resource breaks) and the
    // world at the instant asked about.
    let options = RunOptions { max_events: Some(common.max_events), probes: vec![at], ..RunOptions::default() };
    let observed = crate::analysis::observe(&scenario, &options, crate::analysis::Wanted::default(), None)
        .map_err(|e| Failure::Limit(format!("{}: {e}", common.file.display())))?;
    let run = observed.run;
    let mut impact = crate::analysis::impact::analyze_with(&run, &observed.summary, key_idx, at);
    impact.material = material.map(|m| scenario.materials[m.0 as usize].clone());
    if let Some(path) = dot_file {
        let snap = run.snapshot_at(at).cloned().unwrap_or_else(|| run.final_snapshot());
        let g = crate::analysis::impact::graph(&run, &snap);
        let text = crate::report::impact::dot(&g, &impact);
        write_atomically(path, |out| out.write_all(text.as_bytes()))?;
    }
    let text = match format {
        Format::Text => crate::report::impact::render(&impact, &run),
        Format::Json => crate::report::impact::json(&impact, run.scenario),
    };
    print_text(&text).or_else(stdout_error)
}

pub(super) fn shard_of(spec: &str) -> Result<(u64, u64), Failure> {
    let bad =
        || Failure::Input(format!("--shard {spec:?}: write K/N (K from 0 to N-1), or N with K in the environment"));
    let (k, n) = match spec.split_once('/') {
        Some((k, n)) => (k.trim().parse::<u64>().map_err(|_| bad())?, n.trim().parse::<u64>().map_err(|_| bad())?),
        None => {
            let n = spec.trim().parse::<u64>().map_err(|_| bad())?;
            let k = ["JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"]
                .iter()
                .find_map(|v| std::env::var(v).ok())
                .ok_or_else(|| {
                    Failure::Input("--shard N: set JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID, or write K/N".into())
                })?;
            (k.trim().parse::<u64>().map_err(|_| bad())?, n)
        }
    };
    if n == 0 || k >= n {
        return Err(Failure::Input(format!("--shard {k}/{n}: K must be from 0 to N-1")));
    }
    Ok((k, n))
}

/// Writes sweep.json and the chart into `dir`, and says so on standard error.
pub(super) fn write_sweep(dir: &Path, sweep: &crate::analysis::sweep::Sweep) -> Result<(), Failure> {
    let files = [
        ("sweep.json", crate::analysis::sweep::to_json(sweep).into_bytes()),
        ("sweep.svg", report::chart::sweep::svg(sweep).into_bytes()),
        ("sweep.png", report::chart::sweep::png(sweep)),
    ];
    write_set(dir, "sweep", &files)?;
    let wrote = files.map(|(f, _)| dir.join(f).display().to_string()).join(", ");
    eprintln!("wrote {}", super::terminal_safe(&wrote));
    Ok(())
}

#[allow(clippy::too_many_arguments)]
/// What `kmsim sweep` is asked for, beside the scenario and its overrides.
pub(super) struct SweepAsk<'a> {
    pub runs: u64,
    pub jobs: Option<usize>,
    pub out: Option<&'a Path>,
    pub shard: Option<&'a str>,
    pub quiet: bool,
    pub format: Format,
}

/// Prints a sweep as `--format` says, unless quiet.
pub(super) fn print_sweep(sweep: &crate::analysis::sweep::Sweep, quiet: bool, format: Format) -> Result<(), Failure> {
    if quiet {
        return Ok(());
    }
    let text = match format {
        Format::Text => crate::analysis::sweep::render(sweep),
        Format::Json => crate::analysis::sweep::to_json(sweep),
    };
    print_text(&text).or_else(stdout_error)
}

pub(super) fn sweep_command(common: &Common, ask: &SweepAsk<'_>) -> Result<(), Failure> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let &SweepAsk { runs, jobs, out, shard, quiet, format } = ask;
    let max_events = common.max_events;
    let name = common.file.display().to_string();
    let text = read_text(&common.file, "the scenario")?;
    let overrides = Overrides { seed: common.seed, horizon: common.horizon };
    let scenario = scenario::parse(&name, &text, overrides).map_err(|e| Failure::Input(e.to_string()))?;
    let max_runs = crate::analysis::sweep::MAX_RUNS;
    if runs == 0 || runs > max_runs {
        return Err(Failure::Input(format!("--runs {runs}: give 1 to {max_runs} runs")));
    }
    let (k, n) = match shard {
        Some(spec) => shard_of(spec)?,
        None => (0, 1),
    };
    if n > runs {
        return Err(Failure::Input(format!("--shard {k}/{n}: more shards than runs ({runs})")));
    }
    if n > 1 && out.is_none() {
        return Err(Failure::Input("--shard writes a partial result: name its folder with --out DIR".into()));
    }
    let indices: Vec<u64> = crate::analysis::sweep::shard_runs(runs, k, n).collect();
    let jobs = jobs_or_cores(jobs)?;
    let options = RunOptions { max_events: Some(max_events), ..RunOptions::default() };
    // The progress bar hides itself when stderr is not a terminal.
    let bar = if quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(indices.len() as u64) };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} runs · {msg} · ETA {eta}")
            .expect("a valid template"),
    );
    let events = AtomicU64::new(0);
    // The wall clock measures the progress bar's rate only; it never reaches a simulation.
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let results = parallel_map(&indices, jobs, |&i| {
        let r = crate::analysis::sweep::run_one(&scenario, &text, &name, i, &options, common.horizon);
        if let Ok(r) = &r {
            let total = events.fetch_add(r.events, Ordering::Relaxed) + r.events;
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            #[allow(clippy::cast_precision_loss)]
            bar.set_message(format!("{:.1}M events/s", total as f64 / secs / 1e6));
        }
        bar.inc(1);
        r
    });
    bar.finish_and_clear();
    let per_run: Vec<crate::analysis::sweep::RunResult> =
        results.into_iter().collect::<Result<_, _>>().map_err(|e| match e {
            crate::analysis::sweep::RunError::Scenario(e) => Failure::Input(e.to_string()),
            crate::analysis::sweep::RunError::Engine(e) => Failure::Limit(e.to_string()),
        })?;
    let marks = crate::analysis::sweep::marks(&scenario);
    let part = crate::analysis::sweep::Part {
        scenario: scenario.name.clone(),
        file: name.clone(),
        base_seed: scenario.seed,
        runs,
        digest: crate::analysis::sweep::digest(&text, max_events, common.horizon),
        shard: k,
        shards: n,
        resources: (scenario.volumes.len() + scenario.services.len()) as u64,
        horizon_ms: scenario.horizon.as_ms(),
        start: scenario.instant(crate::engine::SimTime::ZERO),
        grid_ms: crate::analysis::sweep::grid(scenario.horizon.as_ms(), &marks),
        marks,
        per_run,
    };
    if let (true, Some(out)) = (n > 1, out) {
        fs::create_dir_all(out)
            .map_err(|e| Failure::Output(format!("{}: cannot create the folder: {e}", out.display())))?;
        let json = serde_json::to_string_pretty(&part).expect("parts serialize") + "\n";
        let path = out.join(format!("sweep.part-{k}-of-{n}.json"));
        write_atomically(&path, |o| o.write_all(json.as_bytes()))?;
        if !quiet {
            let line = format!("shard {k} of {n}: {} runs written to {}\n", part.per_run.len(), path.display());
            print_text(&line).or_else(stdout_error)?;
        }
        return Ok(());
    }
    let per_run = part.per_run.clone();
    let sweep = crate::analysis::sweep::aggregate(&part, per_run);
    if let Some(out) = out {
        write_sweep(out, &sweep)?;
    }
    print_sweep(&sweep, quiet, format)
}

/// What reading and parsing a scenario file takes: a base, and this much per byte of the file.
const PARSE_BASE: u64 = 16 << 20;
const PARSE_PER_BYTE: u64 = 16;

#[derive(Clone, Copy)]
pub(super) struct CheckAsk {
    pub format: CheckFormat,
    pub jobs: Option<usize>,
    pub max_events: u64,
    /// Scenarios run side by side while their estimated peaks together stay under this.
    pub max_memory_mib: u64,
    pub quiet: bool,
}

pub(super) fn check_command(paths: &[PathBuf], ask: &CheckAsk) -> Result<(), Failure> {
    let CheckAsk { format, jobs, max_events, max_memory_mib, quiet } = *ask;
    let files = scenario_files(paths)?;
    let jobs = jobs_or_cores(jobs)?;
    let options = RunOptions { max_events: Some(max_events), ..RunOptions::default() };
    let budget = Budget::new(max_memory_mib.saturating_mul(1 << 20));
    let parse = |path: &PathBuf, name: &str| {
        read_text(path, "the scenario")
            .map_err(|e| FileResult::Invalid { errors: vec![e.to_string()] })
            .and_then(|text| check::parse_text(name, &text, Overrides::default()))
    };
    let check_one = |path: &PathBuf| {
        let name = path.display().to_string();
        // Reading and parsing take about this much (measured on a scenario that lists 100,000
        // resources); the run, what its scenario's size says.
        let size = fs::metadata(path).map_or(0, |m| m.len());
        let check = |parsed: Result<_, _>| {
            parsed.map_or_else(|invalid| invalid, |s| check::check_scenario(&name, &s, &options))
        };
        let mut share = budget.take(PARSE_BASE.saturating_add(size.saturating_mul(PARSE_PER_BYTE)));
        let scenario = match parse(path, &name) {
            Ok(s) => s,
            Err(invalid) => return invalid,
        };
        let needs = crate::run::estimated_peak_bytes(&scenario);
        if share.grow(needs) {
            return check(Ok(scenario));
        }
        // Waiting for more while holding this share could wait forever on another doing the same:
        // give everything back, wait for the whole, and parse again.
        drop((scenario, share));
        let _share = budget.take(needs);
        check(parse(path, &name))
    };
    let results = parallel_map(&files, jobs, check_one);
    let count = |status| results.iter().filter(|r| r.status() == status).count();
    let (passed, failed, invalid) = (count("passed"), count("failed"), count("invalid"));
    let mut out = String::new();
    match format {
        CheckFormat::Junit => {
            let named: Vec<(String, &FileResult)> =
                files.iter().map(|f| f.display().to_string()).zip(&results).collect();
            out = report::junit::render(&named);
        }
        CheckFormat::Json => {
            let scenarios: Vec<serde_json::Value> = files
                .iter()
                .zip(&results)
                .map(|(f, r)| {
                    let mut v = serde_json::to_value(r).expect("results serialize");
                    v["file"] = serde_json::Value::String(f.display().to_string());
                    v
                })
                .collect();
            let doc = serde_json::json!({
                "version": crate::analysis::JSON_VERSION,
                "scenarios": scenarios,
                "total": files.len(), "passed": passed, "failed": failed, "invalid": invalid,
            });
            out = serde_json::to_string_pretty(&doc).expect("json") + "\n";
        }
        CheckFormat::Text => {
            for (f, r) in files.iter().zip(&results).filter(|(_, r)| !quiet || r.status() != "passed") {
                render_check(&mut out, f, r);
            }
            let n = files.len();
            let s = if n == 1 { "" } else { "s" };
            out.push_str(&format!("{n} scenario{s}: {passed} passed, {failed} failed, {invalid} invalid\n"));
        }
    }
    print_text(&out).or_else(stdout_error)?;
    if invalid > 0 {
        Err(Failure::Input(format!("{invalid} invalid scenario file(s)")))
    } else if failed > 0 {
        Err(Failure::Expectations(format!("{failed} scenario(s) with failed expectations")))
    } else {
        Ok(())
    }
}

pub(super) fn render_check(out: &mut String, file: &Path, r: &FileResult) {
    use std::fmt::Write as _;
    let file = file.display();
    match r {
        FileResult::Passed { verdicts } => {
            let _ = writeln!(out, "ok       {file} ({} expectations)", verdicts.len());
        }
        FileResult::Failed { verdicts } => {
            let bad = verdicts.iter().filter(|v| !v.held).count();
            let _ = writeln!(out, "FAILED   {file} ({bad} of {} expectations failed)", verdicts.len());
            for v in verdicts.iter().filter(|v| !v.held) {
                let at = v.line.map_or(String::new(), |l| format!(":{l}"));
                let _ = writeln!(out, "           {file}{at}: expected {}", v.expected);
                let _ = writeln!(out, "             found: {}", v.found.as_deref().unwrap_or(""));
            }
        }
        FileResult::Invalid { errors } => {
            let _ = writeln!(out, "INVALID  {file}");
            for e in errors {
                let _ = writeln!(out, "           {e}");
            }
        }
    }
}

#[allow(clippy::disallowed_methods, clippy::cast_precision_loss)] // timing the simulator, outside any simulation
pub(super) fn bench_command(
    common: &Common,
    trace: Option<(&Path, trace::Format)>,
    format: Format,
) -> Result<(), Failure> {
    use crate::actors::Obs;
    use crate::engine::{Record, Sink};
    use crate::run::{Names, Observer};
    /// Counts for the figures, and streams the trace too.
    struct Both<'a>(&'a mut crate::analysis::sweep::Fold, &'a mut trace::Handoff);
    impl Observer for Both<'_> {
        fn see(&mut self, _names: &Names<'_>, rec: &Record<Obs>) {
            self.0.fold(rec);
        }

        fn take(&mut self, _names: &Names<'_>, rec: Record<Obs>) {
            self.1.record(rec);
        }

        fn prepare(&self, actor: crate::engine::ActorId) {
            self.0.prepare(actor);
        }
    }

    let started = std::time::Instant::now();
    let scenario = load(common)?;
    let mut fold = crate::analysis::sweep::Fold::new(&scenario, 0, scenario.seed);
    let world = crate::run::prepare(&scenario);
    let setup = started.elapsed().as_secs_f64();
    let options = crate::run::RunOptions { max_events: Some(common.max_events), stream: true, ..Default::default() };
    let limit = |e: crate::engine::EngineError| Failure::Limit(e.to_string());
    let started = std::time::Instant::now();
    let run = match trace {
        None => world.run(&options, Some(&mut fold)).map_err(limit)?,
        Some((path, format)) => with_trace(path, &scenario, format, |stream| {
            world.run(&options, Some(&mut Both(&mut fold, stream))).map_err(limit)
        })?,
    };
    let stats = run.stats;
    let sim_s = started.elapsed().as_secs_f64();
    let r = fold.finish();
    let hours = |ms: Option<u64>| ms.map_or_else(|| "nan".to_string(), |t| format!("{:.3}", t as f64 / 3_600_000.0));
    // The pairs the reference models print, in their order and precision.
    let pairs: [(&str, String); 16] = [
        ("impl", "kmsim".into()),
        ("N", scenario.volumes.len().to_string()),
        ("seed", scenario.seed.to_string()),
        ("events", r.events.to_string()),
        ("attach", r.attaches.to_string()),
        ("detach", r.detaches.to_string()),
        ("retry", r.retries.to_string()),
        ("key", r.key_calls.to_string()),
        ("ever_failed", r.ever_failed.to_string()),
        ("first_failure_h", hours(r.first_failure_ms)),
        ("last_failure_h", hours(r.last_failure_ms)),
        ("sim_s", format!("{sim_s:.3}")),
        ("events_per_s", format!("{:.0}", r.events as f64 / sim_s.max(1e-9))),
        ("setup_s", format!("{setup:.3}")),
        ("engine_messages", stats.events.to_string()),
        ("records", stats.records.to_string()),
    ];
    let line = match format {
        Format::Text => pairs.map(|(k, v)| format!("{k}={v}")).join(" ") + "\n",
        // The same pairs, numbers as numbers (`nan` as null): one object.
        Format::Json => {
            let mut object = serde_json::Map::new();
            object.insert("version".into(), serde_json::json!(crate::analysis::JSON_VERSION));
            for (k, v) in pairs {
                let value = match v.as_str() {
                    "nan" => serde_json::Value::Null,
                    text => serde_json::from_str(text).unwrap_or(serde_json::Value::String(v)),
                };
                object.insert(k.into(), value);
            }
            serde_json::to_string_pretty(&object).expect("json") + "\n"
        }
    };
    print_text(&line).or_else(stdout_error)
}

/// One pass over the run, no record kept (see [`crate::analysis`]), with the trace the user
/// asked for streamed to its file and a report's streamed to `report_trace`.
pub(super) fn one_pass<'s>(
    scenario: &'s Scenario,
    common: &Common,
    wanted: crate::analysis::Wanted,
    trace: Option<&(PathBuf, trace::Format)>,
    report_trace: Option<&Path>,
    cloudtrail: Option<&Path>,
) -> Result<crate::analysis::Observed<'s>, Failure> {
    let options = RunOptions { max_events: Some(common.max_events), ..RunOptions::default() };
    let observe = |wanted, extra: Option<&mut dyn crate::engine::Sink<crate::actors::Obs>>| {
        crate::analysis::observe(scenario, &options, wanted, extra)
            .map_err(|e| Failure::Limit(format!("{}: {e}", common.file.display())))
    };
    // The report's trace, beside the user's, if both.
    let with_report_trace = |extra: Option<&mut dyn crate::engine::Sink<crate::actors::Obs>>| {
        let Some(path) = report_trace else { return observe(wanted, extra) };
        let cannot = |e: &io::Error| Failure::Output(format!("{}: cannot write: {e}", path.display()));
        let out = fs::File::create(path).map_err(|e| cannot(&e))?;
        let format = trace::report_format(scenario);
        // The records a timeline shows are chosen on the thread that writes the trace: the
        // simulating thread is the busier of the two.
        let mut timeline = crate::analysis::timeline::TimelineFold::new(scenario);
        let beside = |names: &crate::run::Names<'_>, rec| timeline.take(names, rec);
        let wanted = crate::analysis::Wanted { timeline_beside: true, ..wanted };
        let (observed, written) = trace::in_background_beside(scenario, format, out, beside, |stream| match extra {
            Some(extra) => observe(wanted, Some(&mut crate::analysis::Both(extra, stream))),
            None => observe(wanted, Some(stream)),
        });
        let mut observed = observed?;
        written.map_err(|e| cannot(&e))?;
        observed.shown = Some(timeline.select(&observed.run.names));
        Ok(observed)
    };
    // The CloudTrail log, written as the run goes and put in place once whole.
    let with_cloudtrail = |extra: Option<&mut dyn crate::engine::Sink<crate::actors::Obs>>| {
        let Some(path) = cloudtrail else { return with_report_trace(extra) };
        let mut file = AtomicFile::create(path)?;
        let (observed, written) = {
            let mut log = report::cloudtrail::LogFile::new(scenario, file.writer());
            let observed = match extra {
                Some(extra) => with_report_trace(Some(&mut crate::analysis::Both(extra, &mut log))),
                None => with_report_trace(Some(&mut log)),
            };
            (observed, log.finish())
        };
        let observed = observed?;
        written.map_err(|e| file.error(&e))?;
        file.commit()?;
        Ok(observed)
    };
    match trace {
        Some((path, format)) => with_trace(path, scenario, *format, |stream| with_cloudtrail(Some(stream))),
        None => with_cloudtrail(None),
    }
}
