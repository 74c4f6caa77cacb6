//! `reports/` holds the real reports of the headline scenarios, so a visitor sees kmsim's output
//! without running anything. This test keeps them current; to regenerate them after an intended
//! change, run `KMSIM_BLESS=1 cargo test --test it reports`.

use std::path::Path;

use kmsim::report;
use kmsim::run::{RunOptions, run};
use kmsim::scenario::{self, Overrides};

use super::golden::{check_or_bless, check_or_bless_bytes};

const HEADLINES: [(&str, &str); 5] = [
    ("scenarios/ebs/ebs-story.ron", "reports/ebs-story"),
    ("scenarios/import/expiry-valid-to.ron", "reports/expiry-valid-to"),
    ("scenarios/rotation/rotate-then-delete-old.ron", "reports/rotation"),
    ("scenarios/snapshots/migration.ron", "reports/migration"),
    ("scenarios/services/mixed-estate.ron", "reports/services"),
];

#[test]
fn the_headline_reports_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (file, dir) in HEADLINES {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let s = scenario::parse(file, &text, Overrides::default()).unwrap();
        let r = run(&s, &RunOptions::default(), None).unwrap();
        check_or_bless(&format!("{dir}/run.txt"), &report::run_text(&r, file));
        for (name, bytes) in report::bundle(&r, file) {
            let rel = format!("{dir}/{name}");
            match std::str::from_utf8(&bytes) {
                Ok(text) if !name.ends_with(".png") => check_or_bless(&rel, text),
                _ => check_or_bless_bytes(&rel, &bytes),
            }
        }
    }
}
