//! Any text given as a scenario: parsed, and when valid and small, run and rendered. Nothing may
//! panic: bad input is an error with a position, a valid scenario a run.
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::scenario(data));
