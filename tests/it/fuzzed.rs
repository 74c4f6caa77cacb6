//! The fuzz targets' inputs worth keeping, replayed on the stable toolchain: the minimized corpus
//! of each target and every input that once made one fail (`tests/fuzzed/<target>/`), through
//! the same code the targets run (`fuzz/bodies.rs`).

use std::path::Path;

#[path = "../../fuzz/bodies.rs"]
mod bodies;

fn replay(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzzed").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty(), "{}: no inputs", dir.display());
    for file in files {
        let data = std::fs::read(&file).unwrap();
        // A panic names the input that caused it.
        let outcome = std::panic::catch_unwind(|| body(&data));
        assert!(outcome.is_ok(), "{} panicked", file.display());
    }
}

/// The scenario corpus, parsed and, when valid, run and rendered (the `scenario_run` target's
/// body, which parses as the `scenario` target does).
#[test]
fn scenario_inputs_never_panic() {
    replay("scenario", bodies::scenario_run);
}

#[test]
fn cloudtrail_inputs_never_panic() {
    replay("cloudtrail", bodies::cloudtrail);
}

#[test]
fn merge_inputs_never_panic() {
    replay("merge", bodies::merge);
}

#[test]
fn estate_inputs_never_panic() {
    replay("estate", bodies::estate);
}
