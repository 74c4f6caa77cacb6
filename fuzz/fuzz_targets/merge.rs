//! Any JSON given as the partial results of a sweep: merged, rendered and charted, or refused with
//! a reason. Nothing may panic.
#![no_main]

use kmsim::analysis::sweep::Part;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(parts) = serde_json::from_slice::<Vec<Part>>(data) else { return };
    let Ok(sweep) = kmsim::analysis::sweep::merge(parts) else { return };
    let _ = kmsim::analysis::sweep::render(&sweep);
    let _ = kmsim::analysis::sweep::to_json(&sweep);
    let _ = kmsim::report::chart::sweep::svg(&sweep);
});
