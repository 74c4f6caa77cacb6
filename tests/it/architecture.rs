//! The layers of ARCHITECTURE.md, enforced: cli -> report -> analysis -> run (and import) ->
//! scenario -> actors -> engine, nothing pointing up.

use std::path::{Path, PathBuf};

/// Each top-level module's layer: a module may use its own layer's and those below.
const LAYERS: [(&str, u8); 9] = [
    ("engine", 0),
    ("actors", 1),
    ("scenario", 2),
    ("run", 3),
    ("import", 3),
    ("analysis", 4),
    ("report", 5),
    ("cli", 6),
    ("main", 6),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file's code (not its comments) names as `crate::NAME`.
fn uses(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            out.push(name);
        }
    }
    out
}

#[test]
fn no_module_uses_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if top == "lib" {
            continue;
        }
        let mine =
            layer(&top).unwrap_or_else(|| panic!("{}: a module ARCHITECTURE.md's layers do not name", rel.display()));
        for used in uses(&std::fs::read_to_string(file).unwrap()) {
            let theirs =
                layer(&used).unwrap_or_else(|| panic!("{}: uses crate::{used}, which has no layer", rel.display()));
            checked += 1;
            if theirs > mine {
                wrong.push(format!("{} ({top}) uses crate::{used}", rel.display()));
            }
        }
    }
    assert!(checked > 100, "the test reads the code: {checked} uses");
    assert!(wrong.is_empty(), "uses that point up a layer:\n{}", wrong.join("\n"));
}

#[test]
fn the_rule_sees_a_use_that_points_up() {
    assert_eq!(uses("use crate::report::describe; // crate::cli is only a comment"), ["report"]);
    assert_eq!(uses("let x = crate::analysis::summary::summarize(&run);"), ["analysis"]);
    assert!(layer("report") > layer("analysis") && layer("analysis") > layer("run"));
}
