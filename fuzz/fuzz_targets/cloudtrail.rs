//! Any bytes given as a CloudTrail log: read, and when understood, turned into a scenario, which
//! must itself be valid. Nothing may panic.
#![no_main]

use kmsim::engine::SimDuration;
use kmsim::import::Trail;
use kmsim::scenario::{Overrides, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut trail = Trail::default();
    if trail.read("fuzz.json", data).is_err() {
        return;
    }
    let Ok(text) = trail.scenario(&["fuzz.json".to_string()], SimDuration::from_days(1)) else { return };
    if let Err(e) = parse("imported.ron", &text, Overrides::default()) {
        panic!("the importer wrote a scenario that does not parse: {e}\n{text}");
    }
});
