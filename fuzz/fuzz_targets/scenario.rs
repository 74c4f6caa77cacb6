//! Any text given as a scenario: parsed, and when valid and small, run and rendered. Nothing may
//! panic: bad input is an error with a position, a valid scenario a run.
#![no_main]

use kmsim::run::{RunOptions, run};
use kmsim::scenario::{Overrides, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(s) = parse("fuzz.ron", &text, Overrides::default()) else { return };
    // Big estates cost time, not coverage.
    if kmsim::run::actor_count(&s) > 200 {
        return;
    }
    let options = RunOptions { max_events: Some(20_000), ..RunOptions::default() };
    let Ok(r) = run(&s, &options, None) else { return };
    let _ = kmsim::report::run_text(&r, "fuzz.ron");
    let _ = kmsim::report::cloudtrail::log_file(&r);
    let summary = kmsim::analysis::summary::summarize(&r);
    let _ = kmsim::analysis::impact::at_end(&r, &summary, None);
});
