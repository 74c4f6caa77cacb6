//! What each fuzz target does with its input, shared by the targets (`fuzz_targets/`, nightly)
//! and the regression test that replays the committed corpus and every crash found
//! (`tests/it/fuzzed.rs`, stable). Nothing here may panic on any input.

// Each target uses one of the four.
#![allow(dead_code)]

use kmsim::engine::SimDuration;
use kmsim::import::Trail;
use kmsim::run::{RunOptions, run};
use kmsim::scenario::{Overrides, parse};

/// Any text as a scenario: parsed and validated, which ends in an error with a position or a
/// scenario.
pub fn scenario(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = parse("fuzz.ron", &text, Overrides::default());
}

/// Any text as a scenario: parsed, and when valid and small, run and rendered.
pub fn scenario_run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(s) = parse("fuzz.ron", &text, Overrides::default()) else { return };
    // Big estates and long runs cost time, not coverage: the events after the first thousands
    // repeat what came before.
    if kmsim::run::actor_count(&s) > 100 {
        return;
    }
    let options = RunOptions { max_events: Some(2_000), ..RunOptions::default() };
    let Ok(r) = run(&s, &options, None) else { return };
    let _ = kmsim::report::run_text(&r, "fuzz.ron");
    let _ = kmsim::report::cloudtrail::log_file(&r);
    let summary = kmsim::analysis::summary::summarize(&r);
    let _ = kmsim::analysis::impact::at_end(&r, &summary, None);
}

/// Any bytes as a CloudTrail log: read, and when understood, turned into a scenario, which must
/// itself be valid.
pub fn cloudtrail(data: &[u8]) {
    let mut trail = Trail::default();
    if trail.read("fuzz.json", data).is_err() {
        return;
    }
    let Ok(text) = trail.scenario(&["fuzz.json".to_string()], SimDuration::from_days(1)) else { return };
    if let Err(e) = parse("imported.ron", &text, Overrides::default()) {
        panic!("the importer wrote a scenario that does not parse: {e}\n{text}");
    }
}

/// Any JSON as the partial results of a sweep: merged, rendered and charted, or refused.
pub fn merge(data: &[u8]) {
    let Ok(parts) = serde_json::from_slice::<Vec<kmsim::analysis::sweep::Part>>(data) else { return };
    let Ok(sweep) = kmsim::analysis::sweep::merge(parts) else { return };
    let _ = kmsim::analysis::sweep::render(&sweep);
    let _ = kmsim::analysis::sweep::to_json(&sweep);
    let _ = kmsim::report::chart::sweep::svg(&sweep);
}

/// Any bytes as AWS CLI output of an account: read, and when understood, turned into a scenario at
/// a fixed instant, which must itself be valid.
pub fn estate(data: &[u8]) {
    let mut estate = kmsim::import::estate::Estate::default();
    if estate.read("fuzz.json", data).is_err() {
        return;
    }
    let now = estate.latest().unwrap_or(jiff::Timestamp::UNIX_EPOCH).max(jiff::Timestamp::UNIX_EPOCH);
    let mut trail = Trail::default();
    estate.into_trail(now, &mut trail);
    let Ok(text) = trail.scenario(&["fuzz.json".to_string()], SimDuration::from_days(1)) else { return };
    if let Err(e) = parse("imported.ron", &text, Overrides::default()) {
        panic!("the estate importer wrote a scenario that does not parse: {e}\n{text}");
    }
}
