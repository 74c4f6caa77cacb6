//! Any bytes given as the AWS CLI output of an account: read, and when understood, turned into a
//! scenario, which must itself be valid. Nothing may panic.
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::estate(data));
