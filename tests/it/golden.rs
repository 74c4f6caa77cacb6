//! Golden files: compare text with a committed copy, show a readable diff, or re-bless.
//!
//! `KMSIM_BLESS=1 cargo test` rewrites every golden file from the current output; review the diff
//! in git before committing it.

use std::path::Path;

use similar::TextDiff;

/// Asserts that `actual` equals the committed file `rel` (relative to the crate root).
pub fn check_or_bless(rel: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    if std::env::var_os("KMSIM_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        let diff = TextDiff::from_lines(&expected, actual);
        let shown: String = diff
            .unified_diff()
            .context_radius(2)
            .header(rel, "now")
            .to_string()
            .lines()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n");
        panic!(
            "{rel} differs from what the code produces now (first differences):\n{shown}\n\nIf the change is intended, re-bless: KMSIM_BLESS=1 cargo test"
        );
    }
}

/// Like [`check_or_bless`], for binary files (the PNG chart): equal bytes, or a re-bless hint.
pub fn check_or_bless_bytes(rel: &str, actual: &[u8]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    if std::env::var_os("KMSIM_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{rel} differs from what the code produces now ({} bytes committed, {} now). \
         If the change is intended, re-bless: KMSIM_BLESS=1 cargo test",
        expected.len(),
        actual.len()
    );
}
