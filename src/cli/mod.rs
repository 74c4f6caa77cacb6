//! The command line: the only module that reads files, writes output and sets the exit code.
//!
//! Exit codes: 0 success; 1 reserved for failed expectations; 2 invalid input (usage, unreadable
//! or invalid scenario); 3 a run stopped by `--max-events`; 4 an output file could not be written.

#![forbid(unsafe_code)]

mod commands;
mod files;
mod parallel;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::engine::SimDuration;
use crate::report::{self, explain, trace};
use crate::run::{RunOptions, run};
use crate::scenario::{self, Overrides, Scenario};
use commands::{CheckAsk, bench_command, check_command, impact_command, one_pass, sweep_command, write_sweep};
use files::{SetWriter, write_atomically};

/// Deterministic simulation of AWS KMS key material deletion and what it breaks, when.
#[derive(Parser, Debug)]
#[command(name = "kmsim", version, about, long_about = None, after_help = EXIT_CODES)]
pub(super) struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The exit codes, as every command's help gives them.
const EXIT_CODES: &str = "Exit codes: 0 success; 1 an expectation failed; 2 invalid input (usage, a file that \
cannot be read or is not valid); 3 a run stopped at --max-events; 4 an output could not be written.";

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a scenario: print its timeline and what broke, and when.
    #[command(after_help = concat!(
        "Examples:\n",
        "  kmsim run scenarios/ebs/ebs-story.ron\n",
        "  kmsim run scenarios/ebs/ebs-story.ron --out report/      # report.html, timeline.png, ...\n",
        "  kmsim run fleet.ron -q --trace trace.csv --cloudtrail trail.json\n",
        "  kmsim run scenarios/ebs/ebs-story.ron --format json | jq '.resources[] | {name, standing}'\n\n",
        "Exit codes: 0 success; 1 an expectation failed; 2 invalid input; 3 a run stopped at --max-events; \
         4 an output could not be written."))]
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
        /// trace.jsonl (`--report` before).
        #[arg(short = 'o', long = "out", visible_alias = "report", value_name = "DIR")]
        report: Option<PathBuf>,
        /// Print nothing on success (errors still go to stderr).
        #[arg(long, short)]
        quiet: bool,
        /// `text`: the timeline, the summary and the expectations; `json`: the summary and the
        /// expectations for machines (no timeline: that is the trace).
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Explain why events happened: the chain of causes back to the scenario's actions.
    ///
    /// Without SEQ, explains every failure caused by a key. SEQ is the `#` number in `kmsim run`'s
    /// timeline (the `seq` field of the trace).
    #[command(after_help = concat!(
        "Examples:\n",
        "  kmsim explain scenarios/ebs/ebs-story.ron\n",
        "  kmsim explain scenarios/ebs/ebs-story.ron 17 18\n",
        "  kmsim explain scenarios/ebs/ebs-story.ron --format json | jq '.explanations[].chain'\n\n",
        "Exit codes: 0 success; 2 invalid input (or no such record); 3 a run stopped at --max-events."))]
    Explain {
        #[command(flatten)]
        common: Common,
        /// Record numbers to explain.
        #[arg(value_name = "SEQ")]
        seq: Vec<u64>,
        /// `text` for people, `json` for machines (each record with its chain, link by link).
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// What depends on a key, and how each dependent stands: unaffected, latent or broken.
    ///
    /// With --delete-material-at, adds that deletion to the scenario first (what if?), and looks
    /// at that instant unless --at says otherwise. Latent resources are listed with the time the
    /// scenario breaks them (their next detach, stop or restart).
    #[command(after_help = concat!(
        "Examples:\n",
        "  kmsim impact scenarios/ebs/ebs-story.ron --key cmk --at 3d\n",
        "  kmsim impact estate.ron --key alias/app --delete-material-at 2026-07-01T00:00:00Z --format json\n",
        "  kmsim impact estate.ron --key cmk --dot graph.dot && dot -Tpng graph.dot -o graph.png\n\n",
        "Exit codes: 0 success; 2 invalid input (an unknown key, a bad time); 3 a run stopped at \
         --max-events; 4 the DOT file could not be written."))]
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
        /// A material of the key, by the timeline's name for it: which dependents' data keys it
        /// encrypts; with --delete-material-at, the material deleted (default: the current one).
        #[arg(long, value_name = "NAME")]
        material: Option<String>,
        /// `text` for people, `json` for machines.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Also write the dependency graph in Graphviz DOT, nodes coloured by standing.
        #[arg(long, value_name = "FILE")]
        dot: Option<PathBuf>,
    },
    /// Read CloudTrail logs and write a scenario that replays them.
    ///
    /// Accepts delivered log files ({"Records": [...]}, plain or gzip), JSON Lines and the output
    /// of `aws cloudtrail lookup-events` ({"Events": [...]}), from files or standard input (`-`).
    /// The scenario's header lists what was read, sorted, deduplicated, not replayed or not
    /// understood.
    #[command(after_help = concat!(
        "Examples:\n",
        "  kmsim import-cloudtrail AWSLogs/111122223333/CloudTrail/us-east-1/2026/06/*.json.gz -o estate.ron\n",
        "  aws cloudtrail lookup-events --max-results 1000 | kmsim import-cloudtrail - -o estate.ron\n\n",
        "Exit codes: 0 success; 2 invalid input (the file and record that is wrong); 4 the scenario \
         could not be written."))]
    ImportCloudtrail {
        /// CloudTrail log files; `-` reads standard input.
        #[arg(value_name = "LOG", required = true)]
        logs: Vec<PathBuf>,
        /// How long the scenario runs after the last event (default 1d): time for latent
        /// resources to break at the events that follow.
        #[arg(long, value_name = "DUR", value_parser = parse_horizon, default_value = "1d")]
        after: SimDuration,
        #[command(flatten)]
        import: ImportOptions,
    },
    /// Read the JSON the AWS CLI prints for an account now and write a scenario that starts from it.
    ///
    /// Reads the output of `aws kms list-keys`, `describe-key`, `list-key-rotations`,
    /// `list-grants` and `list-aliases`; `aws ec2 describe-volumes`, `describe-instances`,
    /// `describe-snapshots` and `describe-images`; and the other services' describe and list
    /// commands (README: "Start from your account"). A file may hold several outputs, one after
    /// another. kmsim never calls AWS. The scenario's `now` is the estate's instant; with
    /// --trail, the trail's history leads up to it.
    #[command(after_help = concat!(
        "Examples:\n",
        "  kmsim import-estate estate/*.json -o estate.ron\n",
        "  kmsim import-estate estate/*.json --trail AWSLogs/.../2026/06/*.json.gz -o estate.ron\n",
        "  kmsim impact estate.ron --key alias/app --delete-material-at now\n\n",
        "Exit codes: 0 success; 2 invalid input (the file and document that is wrong); 4 the scenario \
         could not be written."))]
    ImportEstate {
        /// Files of AWS CLI output (JSON); `-` reads standard input.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
        /// The instant the files were taken (RFC 3339). Default: the latest instant they (and the
        /// trail) show, which the scenario's header names.
        #[arg(long, value_name = "INSTANT")]
        now: Option<String>,
        /// CloudTrail logs whose history leads up to the estate. Repeatable.
        #[arg(long, value_name = "LOG")]
        trail: Vec<PathBuf>,
        /// How long the scenario runs after now.
        #[arg(long, value_name = "DUR", value_parser = parse_horizon, default_value = "30d")]
        after: SimDuration,
        #[command(flatten)]
        import: ImportOptions,
    },
    /// Run a scenario under many seeds and report distributions (Monte Carlo).
    ///
    /// Run i uses a seed derived from the scenario's seed and i alone. Results are the same
    /// whatever --jobs is. With --shard K/N only the K-th of N disjoint slices of the runs is done
    /// (K from 0), and a partial result is written for `kmsim merge`; with --shard N, K comes from
    /// JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs) or SLURM_ARRAY_TASK_ID (Slurm job arrays).
    #[command(after_help = concat!(
        "Examples:\n",
        "  kmsim sweep scenarios/bench/fleet-1k.ron --runs 8 --out sweep/\n",
        "  kmsim sweep fleet.ron --runs 1000 --shard 3/8 --out parts/ -q      # then kmsim merge\n",
        "  kmsim sweep fleet.ron --runs 100 --format json | jq .first_failure_ms\n\n",
        "Exit codes: 0 success; 2 invalid input; 3 a run stopped at --max-events; 4 an output could \
         not be written."))]
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
        #[arg(short = 'o', long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Do only shard K of N: `K/N`, or `N` with K from the environment.
        #[arg(long, value_name = "K/N")]
        shard: Option<String>,
        /// No progress bar and no summary.
        #[arg(long, short)]
        quiet: bool,
        /// `text` for people; `json` prints what sweep.json holds.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Override the scenario's seed, from which every run's is derived.
        #[arg(long)]
        seed: Option<u64>,
        /// Override the scenario's horizon (a duration such as "30d").
        #[arg(long, value_parser = parse_horizon)]
        horizon: Option<SimDuration>,
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
    #[command(after_help = concat!(
        "Examples:\n",
        "  kmsim bench scenarios/bench/fleet-10k.ron\n",
        "  kmsim bench scenarios/bench/fleet-10k.ron --format json\n\n",
        "Exit codes: 0 success; 2 invalid input; 3 a run stopped at --max-events; 4 the trace could \
         not be written."))]
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
        /// `text`: one line of `key=value` pairs, as the reference models print; `json`: the
        /// same pairs as an object.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Merge the partial results of a sharded sweep into what the unsharded sweep writes.
    #[command(after_help = concat!(
        "Examples:\n",
        "  kmsim merge parts/sweep.part-*-of-8.json --out merged/\n\n",
        "Exit codes: 0 success; 2 parts that do not make one sweep (the reason is given); 4 an output \
         could not be written."))]
    Merge {
        /// The partial results (sweep.part-K-of-N.json).
        #[arg(value_name = "PART", required = true)]
        parts: Vec<PathBuf>,
        /// Where to write sweep.json and the chart; without it, the result is only printed.
        #[arg(short = 'o', long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Print nothing on success.
        #[arg(long, short)]
        quiet: bool,
        /// `text` for people; `json` prints what sweep.json holds.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Run scenarios and check their expectations: the regression suite.
    ///
    /// Prints one line per scenario and a total. Exit code 0 when every expectation holds, 1 when
    /// any fails, 2 when any scenario is invalid. Folders named `bench` (benchmark fleets) are
    /// skipped unless named.
    #[command(after_help = concat!(
        "Examples:\n",
        "  kmsim check                                   # every scenario under scenarios/\n",
        "  kmsim check tests/ --format junit > junit.xml  # for a CI system\n",
        "  kmsim check my.ron -q                         # only what fails\n\n",
        "Exit codes: 0 every expectation holds; 1 an expectation failed; 2 a scenario is invalid."))]
    Check {
        /// Scenario files, or folders searched recursively for `.ron` files.
        #[arg(value_name = "PATH", default_value = "scenarios")]
        paths: Vec<PathBuf>,
        /// `text` for people, `json` for machines, `junit` (JUnit XML) for CI systems.
        #[arg(long, value_enum, default_value = "text")]
        format: CheckFormat,
        /// Scenarios run in parallel on this many threads (default: every core; at most 256).
        /// No event is kept: each takes the memory of its actors.
        #[arg(long, short)]
        jobs: Option<usize>,
        /// Scenarios run side by side only while their estimated peak memory together stays
        /// under this many MiB (about 1 KiB per volume, instance or other resource); one bigger
        /// than that runs alone.
        #[arg(long, value_name = "MIB", default_value_t = 2048, value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
        max_memory: u64,
        /// Stop a runaway scenario after this many events (it then counts as invalid).
        #[arg(long, value_name = "N", default_value_t = MAX_EVENTS)]
        max_events: u64,
        /// Print only the scenarios that fail or are invalid, and the total.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Print a shell completion script: `kmsim completions bash > /etc/bash_completion.d/kmsim`.
    #[command(after_help = concat!(
        "Examples:\n",
        "  kmsim completions bash > ~/.local/share/bash-completion/completions/kmsim\n",
        "  kmsim completions zsh > ~/.zfunc/_kmsim\n",
        "  kmsim completions fish > ~/.config/fish/completions/kmsim.fish\n\n",
        "Exit codes: 0 success; 2 an unknown shell."))]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write one per command into a folder.
    #[command(after_help = concat!(
        "Examples:\n",
        "  kmsim man | man -l -\n",
        "  kmsim man --out /usr/local/share/man/man1\n\n",
        "Exit codes: 0 success; 4 a page could not be written."))]
    Man {
        /// Write kmsim.1 and a page per command (kmsim-run.1, ...) into this folder.
        #[arg(short = 'o', long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum CheckFormat {
    Text,
    Json,
    Junit,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum TraceFormat {
    Full,
    Compact,
    Csv,
}

/// The trace format asked for, else CSV for a file named `*.csv`, else `json`.
pub(super) fn trace_format(asked: Option<TraceFormat>, path: &Path, json: trace::Format) -> trace::Format {
    let csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    match asked {
        Some(TraceFormat::Full) => trace::Format::Full,
        Some(TraceFormat::Compact) => trace::Format::Compact,
        Some(TraceFormat::Csv) => trace::Format::Csv,
        None if csv => trace::Format::Csv,
        None => json,
    }
}

/// What both imports take beside their inputs.
#[derive(Args, Debug)]
pub(super) struct ImportOptions {
    /// The scenario file to write (`--output` before).
    #[arg(short = 'o', long = "out", visible_alias = "output", value_name = "FILE")]
    output: PathBuf,
    /// A key (key ID or ARN) that has imported material though the input does not show it (no
    /// CreateKey, import or deletion of its material in a trail; no describe-key output).
    /// Repeatable.
    #[arg(long, value_name = "KEY")]
    external: Vec<String>,
    /// After the trail, repeat each instance's stops and reboots and each volume's detaches
    /// that it shows at least twice, at their mean interval (A16): what breaks after a deletion
    /// then has the trail's rhythm to break at.
    #[arg(long)]
    repeat_activity: bool,
    /// Print nothing on success: not even what the input could not tell (the scenario's header
    /// still says it).
    #[arg(long, short)]
    quiet: bool,
}

impl ImportOptions {
    /// A trail told what these options say.
    fn trail(&self) -> crate::import::Trail {
        let mut trail = crate::import::Trail::default();
        if self.repeat_activity {
            trail.repeat_activity();
        }
        for key in &self.external {
            trail.state_external(key);
        }
        trail
    }
}

#[derive(Args, Debug)]
pub(super) struct Common {
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
pub(super) const MAX_EVENTS: u64 = 1_000_000_000;

pub(super) fn parse_horizon(s: &str) -> Result<SimDuration, scenario::TimeError> {
    scenario::parse_duration(s)
}

/// Errors that end the process, each with its exit code.
#[derive(Debug, thiserror::Error)]
pub(super) enum Failure {
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
            eprintln!("kmsim: {}", terminal_safe(&f.to_string()));
            ExitCode::from(f.code())
        }
    }
}

fn dispatch(command: Command) -> Result<(), Failure> {
    match command {
        Command::Run { common, trace, trace_format: asked_format, cloudtrail, report: report_dir, quiet, format } => {
            let scenario = load(&common)?;
            let file = common.file.display().to_string();
            // One pass: the run's records go to the folds and the files as they come.
            let json = matches!(format, Format::Json);
            let wanted = crate::analysis::Wanted {
                timeline: !quiet && !json,
                report: report_dir.is_some(),
                timeline_beside: false,
            };
            let trace = trace.map(|path| {
                let format = trace_format(asked_format, &path, trace::Format::Full);
                (path, format)
            });
            let mut set = report_dir.as_deref().map(|dir| SetWriter::begin(dir, "report")).transpose()?;
            let report_trace = set.as_ref().map(|set| set.path("trace.jsonl"));
            let observed =
                one_pass(&scenario, &common, wanted, trace.as_ref(), report_trace.as_deref(), cloudtrail.as_deref())?;
            if let (Some(set), Some(lanes), Some(events)) = (&mut set, &observed.lanes, &observed.shown) {
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
            if json && !quiet {
                let text = report::summary::json(
                    &observed.summary,
                    &observed.verdicts,
                    &scenario,
                    &file,
                    observed.run.stats.records,
                );
                print_text(&text).or_else(stdout_error)?;
            }
            if let Some(shown) = observed.shown.as_ref().filter(|_| wanted.timeline) {
                let timeline = report::timeline_text(&observed.run.names, shown);
                let text = report::run_text_of(&observed.run, &file, &timeline, &observed.summary, &observed.verdicts);
                print_text(&text).or_else(stdout_error)?;
            }
            expectations_held(&observed.verdicts)
        }
        Command::Explain { common, seq, format } => {
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
            if let Format::Json = format {
                let total = none_asked.then_some(all_failures);
                return print_text(&explain::json(&second.names, &find, &ids, total)).or_else(stdout_error);
            }
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
            print_text(&out).or_else(stdout_error)
        }
        Command::Check { paths, format, jobs, max_events, max_memory, quiet } => {
            check_command(&paths, &CheckAsk { format, jobs, max_events, max_memory_mib: max_memory, quiet })
        }
        Command::Sweep { file, runs, jobs, out, shard, quiet, format, seed, horizon, max_events } => {
            let common = Common { file, seed, horizon, max_events };
            let ask = commands::SweepAsk { runs, jobs, out: out.as_deref(), shard: shard.as_deref(), quiet, format };
            sweep_command(&common, &ask)
        }
        Command::Bench { file, seed, horizon, max_events, trace, trace_format, format } => {
            // Bench runs are big: a sentence per record would only slow them (8x at fleet-10k).
            let json = trace::Format::Compact;
            let trace = trace.as_deref().map(|path| (path, self::trace_format(trace_format, path, json)));
            bench_command(&Common { file, seed, horizon, max_events }, trace, format)
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "kmsim", &mut script);
            io::stdout().write_all(&script).or_else(stdout_error)
        }
        Command::Man { out } => {
            let command = <Cli as clap::CommandFactory>::command();
            match out {
                Some(dir) => {
                    fs::create_dir_all(&dir).and_then(|()| clap_mangen::generate_to(command, &dir)).map_err(|e| {
                        Failure::Output(format!("{}: cannot write the manual pages: {e}", dir.display()))
                    })?;
                    eprintln!("wrote the manual pages to {}", terminal_safe(&dir.display().to_string()));
                    Ok(())
                }
                None => {
                    let mut page = Vec::new();
                    clap_mangen::Man::new(command).render(&mut page).expect("rendering to memory cannot fail");
                    io::stdout().write_all(&page).or_else(stdout_error)
                }
            }
        }
        Command::Merge { parts, out, quiet, format } => {
            let mut loaded = Vec::new();
            for p in &parts {
                let text = files::read_text(p, "the partial result")?;
                let part: crate::analysis::sweep::Part = serde_json::from_str(&text)
                    .map_err(|e| Failure::Input(format!("{}: not a partial sweep result: {e}", p.display())))?;
                loaded.push(part);
            }
            let sweep = crate::analysis::sweep::merge(loaded).map_err(|e| Failure::Input(e.to_string()))?;
            if let Some(out) = &out {
                write_sweep(out, &sweep)?;
            }
            commands::print_sweep(&sweep, quiet, format)
        }
        Command::ImportCloudtrail { logs, after, import } => {
            let mut trail = import.trail();
            read_inputs(&logs, |name, input| trail.read(name, input))?;
            let text = trail
                .scenario(&input_names(&logs), after)
                .map_err(|e| Failure::Input(format!("{}: {e}", input_names(&logs).join(", "))))?;
            write_imported(&import.output, &text, import.quiet)
        }
        Command::ImportEstate { files: inputs, now, trail: logs, after, import } => {
            let mut estate = crate::import::estate::Estate::default();
            let mut trail = import.trail();
            for key in &import.external {
                estate.state_external(key);
            }
            read_inputs(&inputs, |name, input| estate.read(name, input))?;
            read_inputs(&logs, |name, input| trail.read(name, input))?;
            let now = match now {
                Some(t) => t.trim().parse::<jiff::Timestamp>().map_err(|e| {
                    Failure::Input(format!(
                        "--now {t:?} is not an RFC 3339 instant ({e}); write it like \"2026-03-01T09:00:00Z\""
                    ))
                })?,
                None => estate.latest().max(trail.last_event()).ok_or_else(|| {
                    Failure::Input(
                        "the files show no instant (no creation, attachment or rotation date): give --now".into(),
                    )
                })?,
            };
            if trail.last_event().is_some_and(|t| t > now) {
                return Err(Failure::Input(format!(
                    "--now {now} is before the trail's last event: the trail leads up to the estate"
                )));
            }
            estate.into_trail(now, &mut trail);
            let mut names = input_names(&inputs);
            names.extend(input_names(&logs));
            let text = trail.scenario(&names, after).map_err(|_| {
                Failure::Input(format!("{}: nothing in the estate that kmsim models (no key, volume, instance or other service's resource)", names.join(", ")))
            })?;
            write_imported(&import.output, &text, import.quiet)
        }
        Command::Impact { common, key, at, delete_material_at, material, format, dot } => {
            let ask = commands::ImpactAsk {
                key: &key,
                material: material.as_deref(),
                at: at.as_deref(),
                delete_at: delete_material_at.as_deref(),
                format,
                dot_file: dot.as_deref(),
            };
            impact_command(&common, &ask)
        }
    }
}

/// Reads each input (`-` for standard input) with `read`, which names it in its errors.
fn read_inputs(
    paths: &[PathBuf],
    mut read: impl FnMut(&str, &mut dyn io::Read) -> Result<(), crate::import::ImportError>,
) -> Result<(), Failure> {
    for path in paths {
        if path.as_os_str() == "-" {
            read("standard input", &mut io::stdin().lock()).map_err(|e| Failure::Input(e.to_string()))?;
            continue;
        }
        let name = path.display().to_string();
        let mut file = fs::File::open(path).map_err(|e| Failure::Input(format!("{name}: cannot open: {e}")))?;
        read(&name, &mut file).map_err(|e| Failure::Input(e.to_string()))?;
    }
    Ok(())
}

fn input_names(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| if p.as_os_str() == "-" { "standard input".into() } else { p.display().to_string() }).collect()
}

/// Writes an imported scenario once it is valid (if it is not, the bug is kmsim's, not the
/// input's), and says on standard error what the input could not tell.
fn write_imported(output: &Path, text: &str, quiet: bool) -> Result<(), Failure> {
    let out_name = output.display().to_string();
    scenario::parse(&out_name, text, Overrides::default())
        .map_err(|e| Failure::Input(format!("the imported scenario is not valid:\n{e}")))?;
    write_atomically(output, |out| out.write_all(text.as_bytes()))?;
    for note in text.lines().filter_map(|l| l.strip_prefix("// Note: ")).filter(|_| !quiet) {
        eprintln!("kmsim: {}", terminal_safe(note));
    }
    Ok(())
}

/// A closed pipe on stdout (`kmsim run ... | head`) ends the output quietly, as in other tools.
#[allow(clippy::needless_pass_by_value)] // `or_else` hands the error over
pub(super) fn stdout_error(e: io::Error) -> Result<(), Failure> {
    if e.kind() == io::ErrorKind::BrokenPipe { Ok(()) } else { Err(Failure::Output(format!("stdout: {e}"))) }
}

pub(super) fn load(common: &Common) -> Result<Scenario, Failure> {
    let file = common.file.display().to_string();
    let text = files::read_text(&common.file, "the scenario")?;
    let overrides = Overrides { seed: common.seed, horizon: common.horizon };
    scenario::parse(&file, &text, overrides).map_err(|e| {
        let n = e.problems.len();
        let s = if n == 1 { "" } else { "s" };
        Failure::Input(format!("{n} problem{s} in the scenario:\n{e}"))
    })
}

/// Writes `text` to standard output, its control characters escaped.
pub(super) fn print_text(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(terminal_safe(text).as_bytes())?;
    out.flush()
}

/// `text` with every control character but newline and tab written as an escape (`\u{1b}`):
/// an id in a scenario or a trail must not move the cursor, recolour or clear a terminal.
pub(super) fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let raw = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.contains(raw) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if raw(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// Exit code 1 when an expectation failed.
pub(super) fn expectations_held(verdicts: &[crate::analysis::verdicts::Verdict]) -> Result<(), Failure> {
    match verdicts.iter().filter(|v| !v.held).count() {
        0 => Ok(()),
        failed => Err(Failure::Expectations(format!("{failed} expectation(s) failed"))),
    }
}
