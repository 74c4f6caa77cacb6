//! Any text as a scenario: parsed, and when valid and small, run and rendered. Nothing may
//! panic: a valid scenario is a run, whatever it holds.
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::scenario_run(data));
