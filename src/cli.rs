//! The command line: the only module that reads files, writes output and sets the exit code.
//!
//! Exit codes: 0 success; 1 reserved for failed expectations; 2 invalid input (usage, unreadable
//! or invalid scenario); 3 a run stopped by `--max-events`; 4 an output file could not be written.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::engine::SimDuration;
use crate::report::{self, explain, summary, trace};
use crate::run::{Run, RunOptions, run};
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
        /// Write the full event trace as JSON Lines to this file.
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
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
    /// Stop a runaway run after this many events.
    #[arg(long, value_name = "N", default_value_t = 100_000_000)]
    max_events: u64,
}

fn parse_horizon(s: &str) -> Result<SimDuration, String> {
    scenario::parse_duration(s)
}

/// Errors that end the process, each with its exit code.
#[derive(Debug, thiserror::Error)]
enum Failure {
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
        Command::Run { common, trace, quiet } => {
            let scenario = load(&common)?;
            let run = simulate(&scenario, &common)?;
            if let Some(path) = trace {
                write_atomically(&path, |out| trace::write_all(&run, out))?;
            }
            if !quiet {
                print_run(&run, &common.file).map_err(|e| Failure::Output(format!("stdout: {e}")))?;
            }
            Ok(())
        }
        Command::Explain { common, seq } => {
            let scenario = load(&common)?;
            let run = simulate(&scenario, &common)?;
            let ids = if seq.is_empty() { explain::key_failures(&run) } else { seq };
            let mut out = String::new();
            if ids.is_empty() {
                out.push_str("No failure caused by a key in this run.\n");
            }
            for id in ids {
                let text = explain::explain(&run, id).ok_or_else(|| {
                    Failure::Input(format!(
                        "there is no record #{id}: this run has records #0 to #{}",
                        run.records.len().saturating_sub(1)
                    ))
                })?;
                out.push_str(&text);
                out.push('\n');
            }
            io::stdout().write_all(out.as_bytes()).map_err(|e| Failure::Output(format!("stdout: {e}")))
        }
    }
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

fn simulate<'s>(scenario: &'s Scenario, common: &Common) -> Result<Run<'s>, Failure> {
    run(scenario, RunOptions { max_events: Some(common.max_events) }, None)
        .map_err(|e| Failure::Limit(format!("{}: {e}", common.file.display())))
}

fn print_run(run: &Run<'_>, file: &Path) -> io::Result<()> {
    let s = run.scenario;
    let mut out = BufWriter::new(io::stdout().lock());
    writeln!(out, "{}", s.name)?;
    writeln!(
        out,
        "{} · seed {} · start {} · horizon {} · {} events\n",
        file.display(),
        s.seed,
        s.instant(crate::engine::SimTime::ZERO),
        s.horizon.since_start(),
        run.stats.events
    )?;
    out.write_all(report::timeline(run).as_bytes())?;
    writeln!(out)?;
    out.write_all(summary::render(&summary::summarize(run)).as_bytes())?;
    out.flush()
}

/// Writes a file through a temporary name in the same folder, so a failure never leaves a
/// half-written file behind.
fn write_atomically(path: &Path, fill: impl FnOnce(&mut BufWriter<fs::File>) -> io::Result<()>) -> Result<(), Failure> {
    let fail = |e: io::Error| Failure::Output(format!("{}: cannot write: {e}", path.display()));
    let name = path.file_name().ok_or_else(|| Failure::Output(format!("{}: not a file name", path.display())))?;
    let tmp = path.with_file_name(format!(".{}.kmsim-tmp", name.to_string_lossy()));
    let result = (|| {
        let mut out = BufWriter::new(fs::File::create(&tmp)?);
        fill(&mut out)?;
        out.into_inner().map_err(io::IntoInnerError::into_error)?.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}
