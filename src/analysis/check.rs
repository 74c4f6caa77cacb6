//! The regression suite's driver: parse a scenario, run it, and judge its expectations.

#![forbid(unsafe_code)]

use serde::Serialize;

use crate::analysis::verdicts::Verdict;
use crate::run::RunOptions;
use crate::scenario::{self, Overrides, Scenario, ScenarioError};

/// The result of checking one scenario file.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum FileResult {
    /// Every expectation held.
    Passed { verdicts: Vec<Verdict> },
    /// At least one expectation failed.
    Failed { verdicts: Vec<Verdict> },
    /// The scenario is invalid, or its run stopped at a limit.
    Invalid { errors: Vec<String> },
}

impl FileResult {
    #[must_use]
    pub fn status(&self) -> &'static str {
        match self {
            FileResult::Passed { .. } => "passed",
            FileResult::Failed { .. } => "failed",
            FileResult::Invalid { .. } => "invalid",
        }
    }
}

/// Parses, runs and checks one scenario's text. `file` names it in messages.
#[must_use]
pub fn check_text(file: &str, text: &str, overrides: Overrides, options: &RunOptions) -> FileResult {
    match parse_text(file, text, overrides) {
        Ok(s) => check_scenario(file, &s, options),
        Err(invalid) => invalid,
    }
}

/// A scenario's text, parsed and validated, or the [`FileResult::Invalid`] that says why not.
///
/// # Errors
/// The scenario's problems, one line each.
pub fn parse_text(file: &str, text: &str, overrides: Overrides) -> Result<Scenario, FileResult> {
    scenario::parse(file, text, overrides).map_err(|ScenarioError { problems, .. }| {
        let e = ScenarioError { file: file.to_string(), problems };
        FileResult::Invalid { errors: e.to_string().lines().map(String::from).collect() }
    })
}

/// Runs a validated scenario and judges its expectations. `file` names it in messages.
#[must_use]
pub fn check_scenario(file: &str, s: &Scenario, options: &RunOptions) -> FileResult {
    // One pass, no record kept: a fleet is checked in the memory its actors take.
    let verdicts = match crate::analysis::observe(s, options, crate::analysis::Wanted::default(), None) {
        Ok(observed) => observed.verdicts,
        Err(e) => return FileResult::Invalid { errors: vec![format!("{file}: {e}")] },
    };
    if verdicts.iter().all(|v| v.held) { FileResult::Passed { verdicts } } else { FileResult::Failed { verdicts } }
}
