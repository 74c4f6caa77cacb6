//! The command line: the only module that reads files, writes output and sets the exit code.
//!
//! Exit codes: 0 success; 1 reserved for failed expectations; 2 invalid input (usage, unreadable
//! or invalid scenario); 3 a run stopped by `--max-events`; 4 an output file could not be written.

#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::analysis::check::{self, FileResult};
use crate::engine::SimDuration;
use crate::report::{self, explain, trace};
use crate::run::{RunOptions, run};
use crate::scenario::{self, Overrides, Scenario};

/// Deterministic simulation of AWS KMS key material deletion and what it breaks, when.
#[derive(Parser, Debug)]
#[command(name = "kmsim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a scenario: print its timeline and what broke, and when.
    Run {
        #[command(flatten)]
        common: Common,
        /// Write the event trace to this file as the run goes: JSON Lines, or CSV (see
        /// --trace-format).
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
        /// `full`: every field; `compact`: without `time` and `message`, for big runs; `csv`: the
        /// compact fields as comma-separated values, half the size again. Default: `csv` for a
        /// FILE ending in `.csv`, else `full`.
        #[arg(long, value_enum)]
        trace_format: Option<TraceFormat>,
        /// Write the run's KMS and EC2 activity as a CloudTrail log file (`{"Records": [...]}`).
        #[arg(long, value_name = "FILE")]
        cloudtrail: Option<PathBuf>,
        /// Write a report to this folder: timeline.svg, timeline.png, report.html, summary.md,
        /// trace.jsonl.
        #[arg(long, value_name = "DIR")]
        report: Option<PathBuf>,
        /// Print nothing on success (errors still go to stderr).
        #[arg(long, short)]
        quiet: bool,
    },
    /// Explain why events happened: the chain of causes back to the scenario's actions.
    ///
    /// Without SEQ, explains every failure caused by a key. SEQ is the `#` number in `kmsim run`'s
    /// timeline (the `seq` field of the trace).
    Explain {
        #[command(flatten)]
        common: Common,
        /// Record numbers to explain.
        #[arg(value_name = "SEQ")]
        seq: Vec<u64>,
    },
    /// What depends on a key, and how each dependent stands: unaffected, latent or broken.
    ///
    /// With --delete-material-at, adds that deletion to the scenario first (what if?), and looks
    /// at that instant unless --at says otherwise. Latent resources are listed with the time the
    /// scenario breaks them (their next detach, stop or restart).
    Impact {
        #[command(flatten)]
        common: Common,
        /// The key: its id in the scenario, an alias, or its ARN.
        #[arg(long)]
        key: String,
        /// The instant to look at: an offset ("2d 4h") or an RFC 3339 instant. Default: the end
        /// of the run, or the deletion added by --delete-material-at.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Add DeleteImportedKeyMaterial for the key at this time before running.
        #[arg(long, value_name = "TIME")]
        delete_material_at: Option<String>,
        /// `text` for people, `json` for machines.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Also write the dependency graph in Graphviz DOT, nodes coloured by standing.
        #[arg(long, value_name = "FILE")]
        dot: Option<PathBuf>,
    },
    /// Read CloudTrail logs and write a scenario that replays them.
    ///
    /// Accepts delivered log files ({"Records": [...]}, plain or gzip) and JSON Lines. The
    /// scenario's header lists what was read, sorted, deduplicated, not replayed or not understood.
    ImportCloudtrail {
        /// CloudTrail log files.
        #[arg(value_name = "LOG", required = true)]
        logs: Vec<PathBuf>,
        /// The scenario file to write.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// How long the scenario runs after the last event (default 1d): time for latent
        /// resources to break at the events that follow.
        #[arg(long, value_name = "DUR", value_parser = parse_horizon, default_value = "1d")]
        after: SimDuration,
    },
    /// Run a scenario under many seeds and report distributions (Monte Carlo).
    ///
    /// Run i uses a seed derived from the scenario's seed and i alone. Results are the same
    /// whatever --jobs is. With --shard K/N only the K-th of N disjoint slices of the runs is done
    /// (K from 0), and a partial result is written for `kmsim merge`; with --shard N, K comes from
    /// JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs) or SLURM_ARRAY_TASK_ID (Slurm job arrays).
    Sweep {
        /// The scenario file (RON).
        file: PathBuf,
        /// How many runs (seeds): 1 to 1,000,000.
        #[arg(long, default_value_t = 100)]
        runs: u64,
        /// Threads (default: every core; at most 256).
        #[arg(long, short)]
        jobs: Option<usize>,
        /// Where to write sweep.json and the chart (sweep.svg, sweep.png); without it, nothing is
        /// written (a sharded sweep needs it for its part).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Do only shard K of N: `K/N`, or `N` with K from the environment.
        #[arg(long, value_name = "K/N")]
        shard: Option<String>,
        /// No progress bar and no summary.
        #[arg(long, short)]
        quiet: bool,
        /// Stop a runaway run after this many events.
        #[arg(long, value_name = "N", default_value_t = 1_000_000_000)]
        max_events: u64,
    },
    /// Time one untraced run of a scenario: the figures the performance comparison reads.
    ///
    /// Prints one line of `key=value` pairs in the form of the reference models
    /// (benches/reference): events counted as they count them, failure times, the seconds the
    /// simulation took (`sim_s`; parsing and building are `setup_s`) and events per second.
    /// Wall-clock time is measured here and only here; it never enters a simulation.
    Bench {
        /// The scenario file (RON).
        file: PathBuf,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Override the scenario's horizon (a duration such as "30d").
        #[arg(long, value_parser = parse_horizon)]
        horizon: Option<SimDuration>,
        /// Stop a runaway run after this many events (nothing is kept in memory here).
        #[arg(long, value_name = "N", default_value_t = 1_000_000_000_000)]
        max_events: u64,
        /// Also stream the trace to this file, as `kmsim run --trace` does; no record is kept
        /// in memory.
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
        /// `full`: every field; `compact`: without `time` and `message`; `csv`: the compact
        /// fields as comma-separated values. Default: `csv` for a FILE ending in `.csv`, else
        /// `compact` (unlike `kmsim run`).
        #[arg(long, value_enum)]
        trace_format: Option<TraceFormat>,
    },
    /// Merge the partial results of a sharded sweep into what the unsharded sweep writes.
    Merge {
        /// The partial results (sweep.part-K-of-N.json).
        #[arg(value_name = "PART", required = true)]
        parts: Vec<PathBuf>,
        /// Where to write sweep.json and the chart; without it, the result is only printed.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Run scenarios and check their expectations: the regression suite.
    ///
    /// Prints one line per scenario and a total. Exit code 0 when every expectation holds, 1 when
    /// any fails, 2 when any scenario is invalid. Folders named `bench` (benchmark fleets) are
    /// skipped unless named.
    Check {
        /// Scenario files, or folders searched recursively for `.ron` files.
        #[arg(value_name = "PATH", default_value = "scenarios")]
        paths: Vec<PathBuf>,
        /// `text` for people, `json` for machines.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Scenarios run in parallel on this many threads (default: every core; at most 256).
        /// No event is kept: each takes the memory of its actors.
        #[arg(long, short)]
        jobs: Option<usize>,
        /// Stop a runaway scenario after this many events (it then counts as invalid).
        #[arg(long, value_name = "N", default_value_t = MAX_EVENTS)]
        max_events: u64,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TraceFormat {
    Full,
    Compact,
    Csv,
}

/// The trace format asked for, else CSV for a file named `*.csv`, else `json`.
fn trace_format(asked: Option<TraceFormat>, path: &Path, json: trace::Format) -> trace::Format {
    let csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    match asked {
        Some(TraceFormat::Full) => trace::Format::Full,
        Some(TraceFormat::Compact) => trace::Format::Compact,
        Some(TraceFormat::Csv) => trace::Format::Csv,
        None if csv => trace::Format::Csv,
        None => json,
    }
}

#[derive(Args, Debug)]
struct Common {
    /// The scenario file (RON).
    file: PathBuf,
    /// Override the scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Override the scenario's horizon (a duration such as "30d").
    #[arg(long, value_parser = parse_horizon)]
    horizon: Option<SimDuration>,
    /// Stop a runaway run after this many events. No command keeps the events (a run of any
    /// length takes the memory of its actors): the limit bounds time only.
    #[arg(long, value_name = "N", default_value_t = MAX_EVENTS)]
    max_events: u64,
}

/// The default --max-events: a runaway run costs time, not memory.
const MAX_EVENTS: u64 = 1_000_000_000;

fn parse_horizon(s: &str) -> Result<SimDuration, scenario::TimeError> {
    scenario::parse_duration(s)
}

/// Errors that end the process, each with its exit code.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Expectations(String),
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Limit(String),
    #[error("{0}")]
    Output(String),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Failure::Expectations(_) => 1,
            Failure::Input(_) => 2,
            Failure::Limit(_) => 3,
            Failure::Output(_) => 4,
        }
    }
}

/// Runs the command line and returns the process's exit code.
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("kmsim: {f}");
            ExitCode::from(f.code())
        }
    }
}

fn dispatch(command: Command) -> Result<(), Failure> {
    match command {
        Command::Run { common, trace, trace_format: asked_format, cloudtrail, report: report_dir, quiet } => {
            let scenario = load(&common)?;
            let file = common.file.display().to_string();
            // One pass: the run's records go to the folds and the files as they come.
            let wanted = crate::analysis::Wanted { timeline: !quiet, report: report_dir.is_some() };
            let trace = trace.map(|path| {
                let format = trace_format(asked_format, &path, trace::Format::Full);
                (path, format)
            });
            let mut set = report_dir.as_deref().map(|dir| SetWriter::begin(dir, "report")).transpose()?;
            let report_trace = set.as_ref().map(|set| set.path("trace.jsonl"));
            let observed =
                one_pass(&scenario, &common, wanted, trace.as_ref(), report_trace.as_deref(), cloudtrail.as_deref())?;
            if let (Some(set), Some((lanes, events))) = (&mut set, &observed.report) {
                let parts = report::ReportParts {
                    run: &observed.run,
                    summary: &observed.summary,
                    verdicts: &observed.verdicts,
                    lanes,
                    events,
                };
                for (name, bytes) in report::report_files(&parts, &file) {
                    set.write(name, &bytes)?;
                }
            }
            if let Some(set) = set {
                set.commit(&["timeline.svg", "timeline.png", "summary.md", "trace.jsonl", "report.html"])?;
            }
            if let Some(shown) = &observed.timeline {
                let timeline = report::timeline_text(&observed.run.names, shown);
                let text = report::run_text_of(&observed.run, &file, &timeline, &observed.summary, &observed.verdicts);
                print_text(&text).or_else(stdout_error)?;
            }
            expectations_held(&observed.verdicts)
        }
        Command::Explain { common, seq } => {
            let scenario = load(&common)?;
            // A run is deterministic: the first keeps each record's cause in 16 bytes, the
            // second only the records the chains pass through.
            let options = RunOptions { max_events: Some(common.max_events), stream: true, ..RunOptions::default() };
            let limit = |e: crate::engine::EngineError| Failure::Limit(format!("{}: {e}", common.file.display()));
            let mut index = crate::analysis::causes::CauseIndex::default();
            run(&scenario, &options, Some(&mut index)).map_err(limit)?;
            let (failures, all_failures) = index.key_failures();
            let none_asked = seq.is_empty();
            let ids = if none_asked { failures.to_vec() } else { seq };
            let mut wanted = std::collections::BTreeSet::new();
            for &id in &ids {
                let chain = index.chain(id).ok_or_else(|| {
                    Failure::Input(format!(
                        "there is no record #{id}: this run has records #0 to #{}",
                        index.len().saturating_sub(1)
                    ))
                })?;
                wanted.extend(chain);
            }
            let mut keep = crate::analysis::causes::Keep { wanted: &wanted, kept: std::collections::BTreeMap::new() };
            let second = run(&scenario, &options, Some(&mut keep)).map_err(limit)?;
            let find = |id| keep.kept.get(&id);
            let mut out = String::new();
            if ids.is_empty() {
                out.push_str("No failure caused by a key in this run.\n");
            }
            for id in ids {
                out.push_str(&explain::explain(&second.names, &find, id).expect("the second run kept the chain"));
                out.push('\n');
            }
            if none_asked && all_failures > failures.len() as u64 {
                let _ = std::fmt::Write::write_fmt(
                    &mut out,
                    format_args!(
                        "({all_failures} failures caused by a key in all; these are the first {}. `kmsim explain FILE SEQ...` explains any record.)\n",
                        failures.len()
                    ),
                );
            }
            io::stdout().write_all(out.as_bytes()).or_else(stdout_error)
        }
        Command::Check { paths, format, jobs, max_events } => check_command(&paths, format, jobs, max_events),
        Command::Sweep { file, runs, jobs, out, shard, quiet, max_events } => {
            sweep_command(&file, runs, jobs, out.as_deref(), shard.as_deref(), quiet, max_events)
        }
        Command::Bench { file, seed, horizon, max_events, trace, trace_format } => {
            // Bench runs are big: a sentence per record would only slow them (8x at fleet-10k).
            let json = trace::Format::Compact;
            let trace = trace.as_deref().map(|path| (path, self::trace_format(trace_format, path, json)));
            bench_command(&Common { file, seed, horizon, max_events }, trace)
        }
        Command::Merge { parts, out } => {
            let mut loaded = Vec::new();
            for p in &parts {
                let text =
                    fs::read_to_string(p).map_err(|e| Failure::Input(format!("{}: cannot read: {e}", p.display())))?;
                let part: crate::analysis::sweep::Part = serde_json::from_str(&text)
                    .map_err(|e| Failure::Input(format!("{}: not a partial sweep result: {e}", p.display())))?;
                loaded.push(part);
            }
            let sweep = crate::analysis::sweep::merge(loaded).map_err(|e| Failure::Input(e.to_string()))?;
            if let Some(out) = &out {
                write_sweep(out, &sweep)?;
            }
            io::stdout().write_all(crate::analysis::sweep::render(&sweep).as_bytes()).or_else(stdout_error)
        }
        Command::ImportCloudtrail { logs, output, after } => {
            let mut trail = crate::import::Trail::default();
            for path in &logs {
                let name = path.display().to_string();
                let file = fs::File::open(path).map_err(|e| Failure::Input(format!("{name}: cannot open: {e}")))?;
                trail.read(&name, file).map_err(|e| Failure::Input(e.to_string()))?;
            }
            let names: Vec<String> = logs.iter().map(|p| p.display().to_string()).collect();
            let text =
                trail.scenario(&names, after).map_err(|e| Failure::Input(format!("{}: {e}", names.join(", "))))?;
            // The scenario must be valid before it is written: a bug here is not the user's input.
            let out_name = output.display().to_string();
            scenario::parse(&out_name, &text, Overrides::default())
                .map_err(|e| Failure::Input(format!("the imported scenario is not valid:\n{e}")))?;
            write_atomically(&output, |out| out.write_all(text.as_bytes()))
        }
        Command::Impact { common, key, at, delete_material_at, format, dot } => {
            impact_command(&common, &key, at.as_deref(), delete_material_at.as_deref(), format, dot.as_deref())
        }
    }
}

fn impact_command(
    common: &Common,
    key: &str,
    at: Option<&str>,
    delete_at: Option<&str>,
    format: Format,
    dot_file: Option<&Path>,
) -> Result<(), Failure> {
    use crate::actors::kms::{KeyRef, KmsOp};
    use crate::scenario::{Action, ActionKind, ActionSource, parse_time};
    let mut scenario = load(common)?;
    let k = scenario
        .keys
        .iter()
        .position(|d| {
            d.name == key || d.spec.arn == key || d.spec.key_id == key || d.spec.aliases.iter().any(|a| &**a == key)
        })
        .ok_or_else(|| {
            let known: Vec<&str> = scenario.keys.iter().map(|d| d.name.as_str()).collect();
            Failure::Input(format!("--key {key:?}: no such key in the scenario (keys: {})", known.join(", ")))
        })?;
    let key_idx = crate::actors::kms::KeyIdx(u32::try_from(k).expect("few keys"));
    let time = |flag: &str, s: &str| -> Result<crate::engine::SimTime, Failure> {
        let t = parse_time(s, scenario.start).map_err(|e| Failure::Input(format!("{flag}: {e}")))?;
        if t > scenario.horizon {
            return Err(Failure::Input(format!(
                "{flag} {s:?} is after the horizon ({})",
                scenario.horizon.since_start()
            )));
        }
        Ok(t)
    };
    let delete_at = delete_at.map(|s| time("--delete-material-at", s)).transpose()?;
    let at = match (at.map(|s| time("--at", s)).transpose()?, delete_at) {
        (Some(t), _) | (None, Some(t)) => t,
        (None, None) => scenario.horizon,
    };
    if let Some(t) = delete_at {
        scenario.actions.push(Action {
            at: t,
            what: ActionKind::Kms(Box::new(KmsOp::DeleteImportedKeyMaterial { key: KeyRef::Id(key_idx) })),
            source: ActionSource::Declared { path: "--delete-material-at".into() },
        });
    }
    // One pass: the summary of the whole run (it knows when each latent resource breaks) and the
    // world at the instant asked about.
    let options = RunOptions { max_events: Some(common.max_events), probes: vec![at], ..RunOptions::default() };
    let observed = crate::analysis::observe(&scenario, &options, crate::analysis::Wanted::default(), None)
        .map_err(|e| Failure::Limit(format!("{}: {e}", common.file.display())))?;
    let run = observed.run;
    let impact = crate::analysis::impact::analyze_with(&run, &observed.summary, key_idx, at);
    if let Some(path) = dot_file {
        let snap = run.snapshot_at(at).cloned().unwrap_or_else(|| run.final_snapshot());
        let g = crate::analysis::impact::graph(&run, &snap);
        let text = crate::report::impact::dot(&g, &impact);
        write_atomically(path, |out| out.write_all(text.as_bytes()))?;
    }
    let text = match format {
        Format::Text => crate::report::impact::render(&impact, &run),
        Format::Json => serde_json::to_string_pretty(&impact).expect("json") + "\n",
    };
    io::stdout().write_all(text.as_bytes()).or_else(stdout_error)
}

fn shard_of(spec: &str) -> Result<(u64, u64), Failure> {
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
fn write_sweep(dir: &Path, sweep: &crate::analysis::sweep::Sweep) -> Result<(), Failure> {
    let files = [
        ("sweep.json", crate::analysis::sweep::to_json(sweep).into_bytes()),
        ("sweep.svg", report::chart::sweep::svg(sweep).into_bytes()),
        ("sweep.png", report::chart::sweep::png(sweep)),
    ];
    write_set(dir, "sweep", &files)?;
    eprintln!("wrote {}", files.map(|(f, _)| dir.join(f).display().to_string()).join(", "));
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn sweep_command(
    file: &Path,
    runs: u64,
    jobs: Option<usize>,
    out: Option<&Path>,
    shard: Option<&str>,
    quiet: bool,
    max_events: u64,
) -> Result<(), Failure> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let name = file.display().to_string();
    let text =
        fs::read_to_string(file).map_err(|e| Failure::Input(format!("{name}: cannot read the scenario: {e}")))?;
    let scenario = scenario::parse(&name, &text, Overrides::default()).map_err(|e| Failure::Input(e.to_string()))?;
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
        let r = crate::analysis::sweep::run_one(&scenario, &text, &name, i, &options);
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
    let part = crate::analysis::sweep::Part {
        scenario: scenario.name.clone(),
        file: name.clone(),
        base_seed: scenario.seed,
        runs,
        digest: crate::analysis::sweep::digest(&text, max_events),
        shard: k,
        shards: n,
        volumes: scenario.volumes.len() as u64,
        horizon_ms: scenario.horizon.as_ms(),
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
            io::stdout().write_all(line.as_bytes()).or_else(stdout_error)?;
        }
        return Ok(());
    }
    let per_run = part.per_run.clone();
    let sweep = crate::analysis::sweep::aggregate(&part, per_run);
    if let Some(out) = out {
        write_sweep(out, &sweep)?;
    }
    if !quiet {
        io::stdout().write_all(crate::analysis::sweep::render(&sweep).as_bytes()).or_else(stdout_error)?;
    }
    Ok(())
}

/// Every `.ron` file at or under the given paths, sorted, without duplicates.
/// A file reached through several names (links, or a folder given twice) is checked once, under
/// the first name found; a folder is entered once, so links that loop end.
fn scenario_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Failure> {
    #[derive(Default)]
    struct Seen {
        dirs: BTreeSet<PathBuf>,
        files: BTreeSet<PathBuf>,
    }
    fn add(path: PathBuf, seen: &mut Seen, out: &mut Vec<PathBuf>) -> io::Result<()> {
        if seen.files.insert(fs::canonicalize(&path)?) {
            out.push(path);
        }
        Ok(())
    }
    fn walk(dir: &Path, seen: &mut Seen, out: &mut Vec<PathBuf>) -> io::Result<()> {
        if !seen.dirs.insert(fs::canonicalize(dir)?) {
            return Ok(());
        }
        let mut entries: Vec<PathBuf> = fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<io::Result<_>>()?;
        // A folder's own files before its subfolders', so a file is named where it lies.
        entries.sort_by_key(|p| (p.is_dir(), p.clone()));
        for path in entries {
            // Benchmark inputs (fleets of up to a million volumes) are not regression tests:
            // they are checked only when named.
            if path.is_dir() && path.file_name().is_some_and(|n| n != "bench") {
                walk(&path, seen, out)?;
            } else if path.is_file() && path.extension().is_some_and(|e| e == "ron") {
                add(path, seen, out)?;
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    let mut seen = Seen::default();
    for p in paths {
        let unreadable = |e: io::Error| Failure::Input(format!("{}: cannot read: {e}", p.display()));
        if p.is_dir() {
            walk(p, &mut seen, &mut files).map_err(unreadable)?;
        } else if p.exists() {
            add(p.clone(), &mut seen, &mut files).map_err(unreadable)?;
        } else {
            return Err(Failure::Input(format!("{}: no such file or folder", p.display())));
        }
    }
    files.sort();
    if files.is_empty() {
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(Failure::Input(format!("no scenario (.ron) files under {}", shown.join(", "))));
    }
    Ok(files)
}

fn check_command(paths: &[PathBuf], format: Format, jobs: Option<usize>, max_events: u64) -> Result<(), Failure> {
    let files = scenario_files(paths)?;
    let jobs = jobs_or_cores(jobs)?;
    let options = RunOptions { max_events: Some(max_events), ..RunOptions::default() };
    let check_one = |path: &PathBuf| {
        let name = path.display().to_string();
        match fs::read_to_string(path) {
            Ok(text) => check::check_text(&name, &text, Overrides::default(), &options),
            Err(e) => FileResult::Invalid { errors: vec![format!("{name}: cannot read the scenario: {e}")] },
        }
    };
    let results = parallel_map(&files, jobs, check_one);
    let count = |status| results.iter().filter(|r| r.status() == status).count();
    let (passed, failed, invalid) = (count("passed"), count("failed"), count("invalid"));
    let mut out = String::new();
    match format {
        Format::Json => {
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
                "scenarios": scenarios,
                "total": files.len(), "passed": passed, "failed": failed, "invalid": invalid,
            });
            out = serde_json::to_string_pretty(&doc).expect("json") + "\n";
        }
        Format::Text => {
            for (f, r) in files.iter().zip(&results) {
                render_check(&mut out, f, r);
            }
            let n = files.len();
            let s = if n == 1 { "" } else { "s" };
            out.push_str(&format!("{n} scenario{s}: {passed} passed, {failed} failed, {invalid} invalid\n"));
        }
    }
    io::stdout().write_all(out.as_bytes()).or_else(stdout_error)?;
    if invalid > 0 {
        Err(Failure::Input(format!("{invalid} invalid scenario file(s)")))
    } else if failed > 0 {
        Err(Failure::Expectations(format!("{failed} scenario(s) with failed expectations")))
    } else {
        Ok(())
    }
}

fn render_check(out: &mut String, file: &Path, r: &FileResult) {
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

/// The most threads `--jobs` may ask for.
const MAX_JOBS: usize = 256;

/// `--jobs`, checked against [`MAX_JOBS`], or every core.
fn jobs_or_cores(jobs: Option<usize>) -> Result<usize, Failure> {
    match jobs {
        Some(j) if j == 0 || j > MAX_JOBS => Err(Failure::Input(format!("--jobs {j}: give 1 to {MAX_JOBS} threads"))),
        Some(j) => Ok(j),
        None => Ok(std::thread::available_parallelism().map_or(1, usize::from)),
    }
}

/// `f` over `items` on `jobs` threads; results in the order of `items`.
fn parallel_map<T: Sync, R: Send>(items: &[T], jobs: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs.min(items.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        mine.push((i, f(item)));
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("a check thread panicked")).collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// A closed pipe on stdout (`kmsim run ... | head`) ends the output quietly, as in other tools.
#[allow(clippy::needless_pass_by_value)] // `or_else` hands the error over
fn stdout_error(e: io::Error) -> Result<(), Failure> {
    if e.kind() == io::ErrorKind::BrokenPipe { Ok(()) } else { Err(Failure::Output(format!("stdout: {e}"))) }
}

#[allow(clippy::disallowed_methods, clippy::cast_precision_loss)] // timing the simulator, outside any simulation
fn bench_command(common: &Common, trace: Option<(&Path, trace::Format)>) -> Result<(), Failure> {
    use crate::actors::Obs;
    use crate::engine::{Record, Sink};
    /// Counts for the figures, and streams the trace too.
    struct Both<'a>(&'a mut crate::analysis::sweep::Fold, &'a mut trace::Handoff);
    impl Sink<Obs> for Both<'_> {
        fn record(&mut self, rec: Record<Obs>) {
            self.0.fold(&rec);
            self.1.record(rec);
        }

        fn prepare(&self, actor: crate::engine::ActorId) {
            self.0.prepare(actor);
        }
    }

    let started = std::time::Instant::now();
    let scenario = load(common)?;
    let mut fold = crate::analysis::sweep::Fold::new(&scenario, 0, scenario.seed);
    let mut sim = crate::run::build(&scenario);
    let setup = started.elapsed().as_secs_f64();
    let limits = crate::engine::Limits { horizon: scenario.horizon, max_events: Some(common.max_events) };
    let limit = |e: crate::engine::EngineError| Failure::Limit(e.to_string());
    let started = std::time::Instant::now();
    let stats = match trace {
        None => sim.run(limits, &mut fold).map_err(limit)?,
        Some((path, format)) => {
            with_trace(path, &scenario, format, |stream| sim.run(limits, &mut Both(&mut fold, stream)).map_err(limit))?
        }
    };
    let sim_s = started.elapsed().as_secs_f64();
    let r = fold.finish();
    let hours = |ms: Option<u64>| ms.map_or_else(|| "nan".to_string(), |t| format!("{:.3}", t as f64 / 3_600_000.0));
    let line = format!(
        "impl=kmsim N={} seed={} events={} attach={} detach={} retry={} key={} ever_failed={} first_failure_h={} \
         last_failure_h={} sim_s={sim_s:.3} events_per_s={:.0} setup_s={setup:.3} engine_messages={} records={}\n",
        scenario.volumes.len(),
        scenario.seed,
        r.events,
        r.attaches,
        r.detaches,
        r.retries,
        r.key_calls,
        r.ever_failed,
        hours(r.first_failure_ms),
        hours(r.last_failure_ms),
        r.events as f64 / sim_s.max(1e-9),
        stats.events,
        stats.records,
    );
    io::stdout().write_all(line.as_bytes()).or_else(stdout_error)
}

fn load(common: &Common) -> Result<Scenario, Failure> {
    let file = common.file.display().to_string();
    let text = fs::read_to_string(&common.file)
        .map_err(|e| Failure::Input(format!("{file}: cannot read the scenario: {e}")))?;
    let overrides = Overrides { seed: common.seed, horizon: common.horizon };
    scenario::parse(&file, &text, overrides).map_err(|e| {
        let n = e.problems.len();
        let s = if n == 1 { "" } else { "s" };
        Failure::Input(format!("{n} problem{s} in the scenario:\n{e}"))
    })
}

fn print_text(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Exit code 1 when an expectation failed.
fn expectations_held(verdicts: &[crate::analysis::verdicts::Verdict]) -> Result<(), Failure> {
    match verdicts.iter().filter(|v| !v.held).count() {
        0 => Ok(()),
        failed => Err(Failure::Expectations(format!("{failed} expectation(s) failed"))),
    }
}

/// One pass over the run, no record kept (see [`crate::analysis`]), with the trace the user
/// asked for streamed to its file and a report's streamed to `report_trace`.
fn one_pass<'s>(
    scenario: &'s Scenario,
    common: &Common,
    wanted: crate::analysis::Wanted,
    trace: Option<&(PathBuf, trace::Format)>,
    report_trace: Option<&Path>,
    cloudtrail: Option<&Path>,
) -> Result<crate::analysis::Observed<'s>, Failure> {
    let options = RunOptions { max_events: Some(common.max_events), ..RunOptions::default() };
    let observe = |extra: Option<&mut dyn crate::engine::Sink<crate::actors::Obs>>| {
        crate::analysis::observe(scenario, &options, wanted, extra)
            .map_err(|e| Failure::Limit(format!("{}: {e}", common.file.display())))
    };
    // The report's trace, beside the user's, if both.
    let with_report_trace = |extra: Option<&mut dyn crate::engine::Sink<crate::actors::Obs>>| {
        let Some(path) = report_trace else { return observe(extra) };
        let cannot = |e: &io::Error| Failure::Output(format!("{}: cannot write: {e}", path.display()));
        let out = fs::File::create(path).map_err(|e| cannot(&e))?;
        let format = trace::report_format(scenario);
        let (observed, written) = trace::in_background(scenario, format, out, |stream| match extra {
            Some(extra) => observe(Some(&mut crate::analysis::Both(extra, stream))),
            None => observe(Some(stream)),
        });
        let observed = observed?;
        written.map_err(|e| cannot(&e))?;
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

/// A file written through a temporary name in the same folder and renamed into place by
/// [`AtomicFile::commit`], so a failure never leaves a half-written file behind: dropped
/// uncommitted, the temporary file is removed. A path that exists and is not a regular file
/// (`/dev/null`, a FIFO, a terminal) is written in place: renaming over it would replace the
/// device with a plain file. Temporary names carry the process id (`.NAME.PID.kmsim-tmp`), so
/// two runs writing one path at once do not share one; those a killed run left are removed.
struct AtomicFile {
    path: PathBuf,
    /// `None` when writing in place.
    tmp: Option<PathBuf>,
    out: Option<BufWriter<fs::File>>,
}

impl AtomicFile {
    fn create(path: &Path) -> Result<Self, Failure> {
        let name = path.file_name().ok_or_else(|| Failure::Output(format!("{}: not a file name", path.display())))?;
        let special = fs::metadata(path).is_ok_and(|m| !m.file_type().is_file());
        let name = name.to_string_lossy();
        if !special {
            remove_stale_temporaries(path.parent().unwrap_or(Path::new(".")), &name);
        }
        let tmp = (!special).then(|| path.with_file_name(temporary_name(&name, "kmsim-tmp")));
        let file = match &tmp {
            Some(tmp) => fs::File::create(tmp),
            None => fs::OpenOptions::new().write(true).open(path),
        }
        .map_err(|e| Failure::Output(format!("{}: cannot write: {e}", path.display())))?;
        Ok(AtomicFile { path: path.to_path_buf(), tmp, out: Some(BufWriter::with_capacity(1 << 20, file)) })
    }

    /// Moves the file now at the path (if a regular one) to a hidden name beside it and returns
    /// that name, for the caller to remove; a failure after this leaves neither file.
    fn set_aside_earlier(&self) -> Option<PathBuf> {
        // A path written in place (a device, a FIFO) is never moved.
        self.tmp.as_ref()?;
        let name = self.path.file_name()?.to_string_lossy().to_string();
        let earlier = self.path.with_file_name(temporary_name(&name, "kmsim-old"));
        fs::rename(&self.path, &earlier).is_ok().then_some(earlier)
    }

    fn writer(&mut self) -> &mut BufWriter<fs::File> {
        self.out.as_mut().expect("not committed yet")
    }

    fn commit(mut self) -> Result<(), Failure> {
        let out = self.out.take().expect("committed once");
        // No fsync: the rename is what keeps a half-written file from ever bearing the name;
        // flushing gigabytes of trace to the disk before returning would only make the user wait.
        let result = out.into_inner().map(drop).map_err(io::IntoInnerError::into_error);
        let renamed = result.and_then(|()| self.tmp.as_ref().map_or(Ok(()), |tmp| replace(tmp, &self.path)));
        renamed.map_err(|e| self.error(&e))
    }

    fn error(&self, e: &io::Error) -> Failure {
        Failure::Output(format!("{}: cannot write: {e}", self.path.display()))
    }
}

/// `.NAME.PID.KIND`: a temporary name of this process for `name`.
fn temporary_name(name: &str, kind: &str) -> String {
    format!(".{name}.{}.{kind}", std::process::id())
}

/// Removes what a run of kmsim that no longer lives left for `name` in `dir`: temporary files and
/// set-aside earlier files (`.NAME.PID.kmsim-tmp`, `.NAME.PID.kmsim-old`) and report staging
/// folders. Where it cannot tell whether a process lives (no `/proc`), it leaves them.
fn remove_stale_temporaries(dir: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().to_string();
        let Some(rest) = file_name.strip_prefix(&prefix) else { continue };
        let Some((pid, kind)) = rest.split_once('.') else { continue };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        let ours = matches!(kind, "kmsim-tmp" | "kmsim-old");
        if ours && pid != std::process::id() && process_gone(pid) {
            let path = entry.path();
            let _ = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
        }
    }
}

/// Whether no process `pid` runs, as far as this system can tell.
fn process_gone(pid: u32) -> bool {
    let proc = Path::new("/proc");
    proc.join("self").exists() && !proc.join(pid.to_string()).exists()
}

/// Writes files into `dir` as a set (a report, a sweep's results): every file is written into a
/// staging folder inside `dir` (`.STEM.PID.kmsim-tmp`) first, and only once all are written, and
/// nothing stands in any one's way, are they moved into place; until then an earlier set in `dir`
/// stays whole, and a failure leaves it so.
fn write_set(dir: &Path, stem: &str, files: &[(&'static str, Vec<u8>)]) -> Result<(), Failure> {
    let set = SetWriter::begin(dir, stem)?;
    for (name, bytes) in files {
        set.write(name, bytes)?;
    }
    set.commit(&files.iter().map(|(name, _)| *name).collect::<Vec<_>>())
}

/// A set of files being written (see [`write_set`]); a file may also be written straight to
/// its [`SetWriter::path`] (a trace, as the run goes).
struct SetWriter {
    dir: PathBuf,
    staging: Staging,
}

impl SetWriter {
    fn begin(dir: &Path, stem: &str) -> Result<Self, Failure> {
        let cannot = |what: &str, e: &dyn std::fmt::Display| Failure::Output(format!("{}: {what}: {e}", dir.display()));
        fs::create_dir_all(dir).map_err(|e| cannot("cannot create the folder", &e))?;
        remove_stale_temporaries(dir, stem);
        let staging = Staging(dir.join(temporary_name(stem, "kmsim-tmp")));
        fs::create_dir(&staging.0).map_err(|e| cannot("cannot write", &e))?;
        Ok(SetWriter { dir: dir.to_path_buf(), staging })
    }

    fn cannot(&self, what: &str, e: &dyn std::fmt::Display) -> Failure {
        Failure::Output(format!("{}: {what}: {e}", self.dir.display()))
    }

    /// Where the set's file `name` is staged.
    fn path(&self, name: &str) -> PathBuf {
        self.staging.0.join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<(), Failure> {
        fs::write(self.path(name), bytes).map_err(|e| self.cannot(&format!("cannot write {name}"), &e))
    }

    /// Moves the staged files `names` into place, once nothing stands in any one's way.
    fn commit(self, names: &[&str]) -> Result<(), Failure> {
        for name in names {
            if fs::symlink_metadata(self.dir.join(name)).is_ok_and(|m| !m.file_type().is_file()) {
                return Err(Failure::Output(format!(
                    "{}: {name} is in the way (not a file): nothing was replaced",
                    self.dir.display()
                )));
            }
        }
        for name in names {
            replace(&self.path(name), &self.dir.join(name))
                .map_err(|e| self.cannot(&format!("cannot write {name}"), &e))?;
        }
        Ok(())
    }
}

/// A staging folder, removed with whatever is left in it.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Puts `tmp` in place of `path`. The old file goes first: renaming over an existing file makes
/// ext4 (`auto_da_alloc`) start writing the new one to the disk inside the rename, which for a
/// gigabyte trace took about a second (and made the next run wait on the disk). The cost is a
/// moment in which neither file bears the name; a half-written file still never does.
fn replace(tmp: &Path, path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => fs::rename(tmp, path),
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some(tmp) = &self.tmp
            && (self.out.take().is_some() || tmp.exists())
        {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// Runs `f` with a trace streaming to `path` as it goes (never held in memory, formatted and
/// written by a second thread), and puts the file in place once `f` and every write succeeded;
/// otherwise no file is left behind, not even the one that was there before.
fn with_trace<T>(
    path: &Path,
    scenario: &Scenario,
    format: trace::Format,
    f: impl FnOnce(&mut trace::Handoff) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let mut file = AtomicFile::create(path)?;
    std::thread::scope(|scope| {
        // An earlier trace goes while the run does: freeing a gigabyte of page cache took a
        // fifth of a second, and the simulating core waits on the writing one anyway.
        if let Some(earlier) = file.set_aside_earlier() {
            scope.spawn(move || fs::remove_file(earlier));
        }
        // The stream buffers whole chunks itself: it writes them to the file, not through a copy.
        let (out, written) = trace::in_background(scenario, format, file.writer().get_mut(), f);
        let out = out?;
        written.map_err(|e| file.error(&e))?;
        Ok(out)
    })
    .and_then(|out| file.commit().map(|()| out))
}

/// Writes a whole file atomically (see [`AtomicFile`]).
fn write_atomically(path: &Path, fill: impl FnOnce(&mut BufWriter<fs::File>) -> io::Result<()>) -> Result<(), Failure> {
    let mut file = AtomicFile::create(path)?;
    fill(file.writer()).map_err(|e| file.error(&e))?;
    file.commit()
}
