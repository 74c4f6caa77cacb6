//! `kmsim check`'s results as JUnit XML, the report CI systems read: a test suite per scenario
//! file, a test case per expectation (a failure says what was found instead), and an invalid
//! scenario as one case in error.

use std::fmt::Write as _;

use crate::analysis::check::FileResult;

/// Text as XML content or an attribute value: escaped, and without the control characters XML
/// 1.0 cannot hold.
fn esc(s: &str) -> String {
    let clean: String = s.chars().map(|c| if c.is_control() && !matches!(c, '\n' | '\t') { '?' } else { c }).collect();
    crate::report::html::esc(&clean)
}

/// The results of `kmsim check`, each with its file's name.
#[must_use]
pub fn render(results: &[(String, &FileResult)]) -> String {
    let count = |f: &dyn Fn(&FileResult) -> usize| results.iter().map(|(_, r)| f(r)).sum::<usize>();
    let cases = |r: &FileResult| match r {
        FileResult::Passed { verdicts } | FileResult::Failed { verdicts } => verdicts.len(),
        FileResult::Invalid { .. } => 1,
    };
    let failures = |r: &FileResult| match r {
        FileResult::Failed { verdicts } => verdicts.iter().filter(|v| !v.held).count(),
        _ => 0,
    };
    let errors = |r: &FileResult| usize::from(matches!(r, FileResult::Invalid { .. }));
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"kmsim check\" tests=\"{}\" failures=\"{}\" errors=\"{}\">",
        count(&cases),
        count(&failures),
        count(&errors)
    );
    for (file, r) in results {
        let file = esc(file);
        let _ = writeln!(
            out,
            "  <testsuite name=\"{file}\" tests=\"{}\" failures=\"{}\" errors=\"{}\">",
            cases(r),
            failures(r),
            errors(r)
        );
        match r {
            FileResult::Passed { verdicts } | FileResult::Failed { verdicts } => {
                for v in verdicts {
                    let line = v.line.map_or(String::new(), |l| format!(", line {l}"));
                    let name = esc(&format!("expect[{}]{line}: {}", v.index, v.expected));
                    if v.held {
                        let _ = writeln!(out, "    <testcase classname=\"{file}\" name=\"{name}\"/>");
                    } else {
                        let found = esc(v.found.as_deref().unwrap_or(""));
                        let _ = writeln!(
                            out,
                            "    <testcase classname=\"{file}\" name=\"{name}\">\n      \
                             <failure message=\"found: {found}\">found: {found}</failure>\n    </testcase>"
                        );
                    }
                }
            }
            FileResult::Invalid { errors } => {
                let text = esc(&errors.join("\n"));
                let first = esc(errors.first().map_or("", String::as_str));
                let _ = writeln!(
                    out,
                    "    <testcase classname=\"{file}\" name=\"the scenario is valid and runs\">\n      \
                     <error message=\"{first}\">{text}</error>\n    </testcase>"
                );
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
