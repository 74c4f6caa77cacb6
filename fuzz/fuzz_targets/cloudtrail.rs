//! Any bytes given as a CloudTrail log: read, and when understood, turned into a scenario, which
//! must itself be valid. Nothing may panic.
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::cloudtrail(data));
