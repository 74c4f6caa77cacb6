//! One integration-test binary. Modules:
//! - `scenarios`: every bundled scenario runs, and its key outcomes are the documented ones;
//! - `determinism`: same scenario and seed give byte-identical traces; sinks do not change runs;
//! - `impact`: the dependency graph, blast radius, what-if and DOT;
//! - `invariants`: a cheap swarm over seeds and latencies checks cross-actor invariants;
//! - `cloudtrail`: CloudTrail records, golden log, round trip and hostile input;
//! - `estate`: the account as the AWS CLI describes it, alone and at the end of a trail;
//! - `cli`: exit codes, error messages, `--trace` files and `explain`, through the binary;
//! - `check`: the regression suite (expectations, golden traces) and the checker's own tests;
//! - `report`: the chart (SVG, PNG), the HTML report and the Markdown summary;
//! - `reports`: the committed `reports/` match what the code produces;
//! - `schemas`: every JSON output against its schema in `docs/schemas/`;
//! - `sweep`: fleets, Monte Carlo sweeps, shards and merge, throttling;
//! - `fuzzed`: the fuzz targets' kept inputs (corpus and crashes) replayed on stable;
//! - `golden`: the shared golden-file comparison (`KMSIM_BLESS=1` re-blesses).

mod architecture;
mod check;
mod cli;
mod cloudtrail;
mod determinism;
mod estate;
mod fuzzed;
mod golden;
mod impact;
mod invariants;
mod report;
mod reports;
mod scenarios;
mod schemas;
mod sweep;

use std::path::{Path, PathBuf};

use kmsim::scenario::{self, Overrides, Scenario};

/// The repository's `scenarios/` folder.
pub fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// Every `.ron` file under `scenarios/`, sorted, but for the benchmark fleets in `bench/`, as
/// `kmsim check` walks them (the fleets have tests of their own).
pub fn all_scenarios() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("bench") {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "ron") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&scenarios_dir(), &mut out);
    out.sort();
    out
}

pub fn load(rel: &str) -> Scenario {
    let path = scenarios_dir().join(rel);
    let text = std::fs::read_to_string(&path).unwrap();
    scenario::parse(rel, &text, Overrides::default()).unwrap_or_else(|e| panic!("{e}"))
}
