//! Finds where things are in scenario text, so that errors found after parsing name a line.
//!
//! serde does not keep positions, so this scans the text once for every `Name(` outside comments
//! and strings: the n-th `At(` is the n-th timeline entry, the n-th `Volume(` the n-th volume.

use std::collections::BTreeMap;

/// Positions of every `Ident(` in a text, by identifier, in order.
pub struct Calls<'t> {
    text: &'t str,
    by_ident: BTreeMap<&'t str, Vec<(usize, usize, usize)>>,
}

impl<'t> Calls<'t> {
    /// Scans `text` once.
    #[must_use]
    pub fn new(text: &'t str) -> Self {
        let bytes = text.as_bytes();
        let mut by_ident: BTreeMap<&str, Vec<(usize, usize, usize)>> = BTreeMap::new();
        let (mut i, mut line, mut col) = (0, 1, 1);
        // Advances over one byte, keeping line and (character) column.
        let step = |i: &mut usize, line: &mut usize, col: &mut usize| {
            if bytes[*i] == b'\n' {
                *line += 1;
                *col = 1;
            } else if bytes[*i] & 0xc0 != 0x80 {
                *col += 1;
            }
            *i += 1;
        };
        while i < bytes.len() {
            match bytes[i] {
                b'/' if bytes.get(i + 1) == Some(&b'/') => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        step(&mut i, &mut line, &mut col);
                    }
                }
                b'/' if bytes.get(i + 1) == Some(&b'*') => {
                    while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                        step(&mut i, &mut line, &mut col);
                    }
                    for _ in 0..2 {
                        if i < bytes.len() {
                            step(&mut i, &mut line, &mut col);
                        }
                    }
                }
                b'"' => {
                    step(&mut i, &mut line, &mut col);
                    while i < bytes.len() && bytes[i] != b'"' {
                        if bytes[i] == b'\\' && i + 1 < bytes.len() {
                            step(&mut i, &mut line, &mut col);
                        }
                        step(&mut i, &mut line, &mut col);
                    }
                    if i < bytes.len() {
                        step(&mut i, &mut line, &mut col);
                    }
                }
                b if b.is_ascii_alphabetic() || b == b'_' => {
                    let (start, start_line, start_col) = (i, line, col);
                    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                        step(&mut i, &mut line, &mut col);
                    }
                    if bytes.get(i) == Some(&b'(') {
                        by_ident.entry(&text[start..i]).or_default().push((start_line, start_col, start));
                    }
                }
                _ => step(&mut i, &mut line, &mut col),
            }
        }
        Calls { text, by_ident }
    }

    /// 1-based (line, column) of the `n`-th (0-based) `ident(`.
    #[must_use]
    pub fn nth(&self, ident: &str, n: usize) -> Option<(usize, usize)> {
        self.by_ident.get(ident)?.get(n).map(|&(l, c, _)| (l, c))
    }

    /// Every `ident(` position at or after byte `from`, for any of `idents`, in text order.
    #[must_use]
    pub fn all_after(&self, idents: &[&str], from: usize) -> Vec<(usize, usize)> {
        let mut out: Vec<(usize, usize, usize)> = idents
            .iter()
            .filter_map(|i| self.by_ident.get(i))
            .flatten()
            .copied()
            .filter(|&(_, _, byte)| byte >= from)
            .collect();
        out.sort_unstable_by_key(|&(_, _, byte)| byte);
        out.into_iter().map(|(l, c, _)| (l, c)).collect()
    }

    /// The source of the `n`-th `ident(...)`, up to its closing parenthesis (at most `max` chars).
    #[must_use]
    pub fn nth_text(&self, ident: &str, n: usize, max: usize) -> Option<String> {
        let &(_, _, start) = self.by_ident.get(ident)?.get(n)?;
        let mut depth = 0i32;
        let mut in_string = false;
        let mut end = start;
        for (off, ch) in self.text[start..].char_indices() {
            end = start + off + ch.len_utf8();
            match ch {
                '"' => in_string = !in_string,
                '(' if !in_string => depth += 1,
                ')' if !in_string => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            if off > 4 * max {
                break;
            }
        }
        let mut flat = String::with_capacity(end - start);
        for word in self.text[start..end].split_whitespace() {
            if !flat.is_empty() {
                flat.push(' ');
            }
            flat.push_str(word);
        }
        Some(if flat.chars().count() > max { flat.chars().take(max).collect::<String>() + "..." } else { flat })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_comments_and_strings() {
        let text = "// At(\"x\")\n  At(\"0s\", X), /* At( */ At(\"1s\", Y(a: 1)),\n  \"At(\" At(\"2s\", Z)";
        let calls = Calls::new(text);
        assert_eq!(calls.nth("At", 0), Some((2, 3)));
        assert_eq!(calls.nth("At", 1), Some((2, 26)));
        assert_eq!(calls.nth("At", 2), Some((3, 9)));
        assert_eq!(calls.nth("At", 3), None);
        assert_eq!(calls.nth_text("At", 1, 100).unwrap(), "At(\"1s\", Y(a: 1))");
        assert_eq!(calls.nth_text("At", 1, 5).unwrap(), "At(\"1...");
    }
}
