//! Any JSON given as the partial results of a sweep: merged, rendered and charted, or refused with
//! a reason. Nothing may panic.
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::merge(data));
