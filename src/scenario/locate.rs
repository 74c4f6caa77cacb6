//! Finds where things are in scenario text, so that errors found after parsing name a line.
//!
//! serde does not keep positions, so this scans the text for the n-th `Name(` outside comments
//! and strings: the n-th `At(` is the n-th timeline entry, the n-th `Volume(` the n-th volume.

/// 1-based (line, column) of the `n`-th (0-based) occurrence of `ident(` as a RON struct name.
pub fn nth_call(text: &str, ident: &str, n: usize) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let (mut i, mut line, mut line_start, mut seen) = (0, 1, 0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                line += 1;
                line_start = i + 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    if bytes[i] == b'\n' {
                        line += 1;
                        line_start = i + 1;
                    }
                    i += 1;
                }
                i += 2;
                continue;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            _ if text[i..].starts_with(ident)
                && bytes.get(i + ident.len()) == Some(&b'(')
                && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_')) =>
            {
                if seen == n {
                    return Some((line, text[line_start..i].chars().count() + 1));
                }
                seen += 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The text of a 1-based line, trimmed, without a trailing comment or comma.
pub fn line_text(text: &str, line: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?;
    let code = match l.find("//") {
        Some(i) if !l[..i].contains('"') || l[..i].matches('"').count() % 2 == 0 => &l[..i],
        _ => l,
    };
    Some(code.trim().trim_end_matches(',').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_comments_and_strings() {
        let text = "// At(\"x\")\n  At(\"0s\", X), /* At( */ At(\"1s\", Y),\n  \"At(\" At(\"2s\", Z)";
        assert_eq!(nth_call(text, "At", 0), Some((2, 3)));
        assert_eq!(nth_call(text, "At", 1), Some((2, 26)));
        assert_eq!(nth_call(text, "At", 2), Some((3, 9)));
        assert_eq!(nth_call(text, "At", 3), None);
        assert_eq!(line_text(text, 2).unwrap(), "At(\"0s\", X), /* At( */ At(\"1s\", Y)");
    }
}
