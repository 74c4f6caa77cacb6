//! A delivered CloudTrail log file, `{"Records": [...]}`, cut into its records' bytes as it is
//! read, so that each record is parsed from a slice: serde_json reading a stream goes byte by
//! byte through the reader, several times slower. Only the file's outer structure is checked
//! here (each record is checked when parsed); a record is bounded while it is cut.

use std::io::BufRead;

/// Where the reader is, for messages: line and column of the next byte, 1-based.
#[derive(Clone, Copy)]
struct Place {
    line: u64,
    column: u64,
}

pub(super) struct Splitter<R> {
    input: R,
    place: Place,
    /// At most this many bytes in one record.
    limit: usize,
}

/// Why the file could not be cut, said with where.
pub(super) struct SplitError(pub String);

impl<R: BufRead> Splitter<R> {
    pub(super) fn new(input: R, limit: usize) -> Self {
        Splitter { input, place: Place { line: 1, column: 1 }, limit }
    }

    fn at(&self) -> String {
        format!("line {}, column {}", self.place.line, self.place.column)
    }

    fn ended(&self, within: &str) -> SplitError {
        SplitError(format!("the JSON ends early{within}, at {}: is the file truncated?", self.at()))
    }

    fn peek(&mut self) -> Result<Option<u8>, SplitError> {
        let buf = self.input.fill_buf().map_err(|e| SplitError(format!("cannot read ({e})")))?;
        Ok(buf.first().copied())
    }

    fn advance(&mut self, b: u8) {
        self.input.consume(1);
        if b == b'\n' {
            self.place = Place { line: self.place.line + 1, column: 1 };
        } else {
            self.place.column += 1;
        }
    }

    /// The next byte that is not whitespace, not consumed.
    fn skip_space(&mut self) -> Result<Option<u8>, SplitError> {
        while let Some(b) = self.peek()? {
            if !b.is_ascii_whitespace() {
                return Ok(Some(b));
            }
            self.advance(b);
        }
        Ok(None)
    }

    fn expect(&mut self, want: u8, within: &str) -> Result<(), SplitError> {
        match self.skip_space()? {
            Some(b) if b == want => {
                self.advance(b);
                Ok(())
            }
            Some(b) => Err(SplitError(format!(
                "invalid JSON at {} (expected `{}`, found `{}`)",
                self.at(),
                want as char,
                (b as char).escape_default()
            ))),
            None => Err(self.ended(within)),
        }
    }

    /// Moves the place past `taken`, bytes just consumed.
    fn passed(place: &mut Place, taken: &[u8]) {
        match memchr::memrchr(b'\n', taken) {
            Some(last) => {
                let lines = memchr::memchr_iter(b'\n', taken).count() as u64;
                *place = Place { line: place.line + lines, column: (taken.len() - last) as u64 };
            }
            None => place.column += taken.len() as u64,
        }
    }

    /// One JSON value, its bytes appended to `out` when given (at most `limit` of them): strings
    /// with their escapes, objects and arrays by their brackets, scalars to the next delimiter.
    fn value(&mut self, mut out: Option<&mut Vec<u8>>) -> Result<(), SplitError> {
        let Some(first) = self.skip_space()? else { return Err(self.ended("")) };
        let mut scan = Scan::new(first);
        loop {
            // A whole buffer at a time: copy the bytes of the value found in it.
            let buf = self.input.fill_buf().map_err(|e| SplitError(format!("cannot read ({e})")))?;
            if buf.is_empty() {
                return if scan.scalar && scan.depth == 0 { Ok(()) } else { Err(self.ended("")) };
            }
            let (n, done) = scan.feed(buf);
            let taken = &buf[..n];
            if let Some(out) = out.as_deref_mut() {
                if out.len() + n > self.limit {
                    return Err(self.too_long());
                }
                out.extend_from_slice(taken);
            }
            Self::passed(&mut self.place, taken);
            self.input.consume(n);
            if done {
                return Ok(());
            }
        }
    }

    fn too_long(&self) -> SplitError {
        SplitError(format!("a record longer than {} MiB: this is not a CloudTrail record", self.limit >> 20))
    }

    /// One record handed to `each`: straight from the reader's buffer when it lies whole there
    /// (no copy), else gathered into `record`.
    fn record(
        &mut self,
        n: u64,
        record: &mut Vec<u8>,
        each: &mut impl FnMut(u64, &[u8]) -> Result<(), String>,
    ) -> Result<(), SplitError> {
        let Some(first) = self.skip_space()? else { return Err(self.ended("")) };
        let buf = self.input.fill_buf().map_err(|e| SplitError(format!("cannot read ({e})")))?;
        let mut scan = Scan::new(first);
        if let (n_bytes, true) = scan.feed(buf)
            && n_bytes <= self.limit
        {
            let taken = &buf[..n_bytes];
            each(n, taken).map_err(SplitError)?;
            Self::passed(&mut self.place, taken);
            self.input.consume(n_bytes);
            return Ok(());
        }
        record.clear();
        self.value(Some(record)).map_err(|SplitError(e)| SplitError(format!("record {n}: {e}")))?;
        each(n, record).map_err(SplitError)
    }

    /// A JSON string key, unescaped only as far as comparing it with `Records` needs.
    fn key(&mut self) -> Result<Vec<u8>, SplitError> {
        let mut raw = Vec::new();
        match self.skip_space()? {
            Some(b'"') => self.value(Some(&mut raw))?,
            Some(b) => {
                return Err(SplitError(format!(
                    "invalid JSON at {} (expected a key, found `{}`)",
                    self.at(),
                    (b as char).escape_default()
                )));
            }
            None => return Err(self.ended("")),
        }
        Ok(raw)
    }

    /// Cuts the file, handing each record's bytes and number (from 1) to `each`; the other
    /// top-level fields are skipped.
    pub(super) fn records(mut self, mut each: impl FnMut(u64, &[u8]) -> Result<(), String>) -> Result<(), SplitError> {
        self.expect(b'{', "")?;
        let mut n = 0u64;
        let mut record = Vec::new();
        if self.skip_space()? == Some(b'}') {
            self.advance(b'}');
        } else {
            loop {
                let key = self.key()?;
                self.expect(b':', "")?;
                if key == b"\"Records\"" {
                    self.expect(b'[', "")?;
                    if self.skip_space()? == Some(b']') {
                        self.advance(b']');
                    } else {
                        loop {
                            n += 1;
                            self.record(n, &mut record, &mut each)?;
                            match self.skip_space()? {
                                Some(b',') => self.advance(b','),
                                Some(b']') => {
                                    self.advance(b']');
                                    break;
                                }
                                Some(b) => {
                                    return Err(SplitError(format!(
                                        "invalid JSON at {} (expected `,` or `]` after record {n}, found `{}`)",
                                        self.at(),
                                        (b as char).escape_default()
                                    )));
                                }
                                None => return Err(self.ended(&format!(" after record {n}"))),
                            }
                        }
                    }
                } else {
                    self.value(None)?;
                }
                match self.skip_space()? {
                    Some(b',') => self.advance(b','),
                    Some(b'}') => {
                        self.advance(b'}');
                        break;
                    }
                    Some(b) => {
                        return Err(SplitError(format!(
                            "invalid JSON at {} (expected `,` or `}}`, found `{}`)",
                            self.at(),
                            (b as char).escape_default()
                        )));
                    }
                    None => return Err(self.ended("")),
                }
            }
        }
        match self.skip_space()? {
            None => Ok(()),
            Some(_) => Err(SplitError(format!("unexpected data after the Records object, at {}", self.at()))),
        }
    }
}

/// Where a scan is within a JSON value, between the reader's buffers.
struct Scan {
    depth: u32,
    in_string: bool,
    /// The last byte fed was a backslash in a string.
    escaped: bool,
    scalar: bool,
}

impl Scan {
    fn new(first: u8) -> Self {
        Scan { depth: 0, in_string: false, escaped: false, scalar: !matches!(first, b'{' | b'[' | b'"') }
    }

    /// How many bytes of `buf` belong to the value, and whether it ends there.
    fn feed(&mut self, buf: &[u8]) -> (usize, bool) {
        if self.scalar {
            return match buf.iter().position(|&b| b.is_ascii_whitespace() || matches!(b, b',' | b'}' | b']')) {
                Some(i) => (i, true),
                None => (buf.len(), false),
            };
        }
        let mut i = 0;
        while i < buf.len() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    i += 1;
                    continue;
                }
                // Most of a record is strings: jump to the next byte that can end one.
                let Some(j) = memchr::memchr2(b'"', b'\\', &buf[i..]) else { return (buf.len(), false) };
                i += j + 1;
                if buf[i - 1] == b'\\' {
                    self.escaped = true;
                } else {
                    self.in_string = false;
                    if self.depth == 0 {
                        return (i, true);
                    }
                }
                continue;
            }
            let b = buf[i];
            i += 1;
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        return (i, true);
                    }
                }
                _ => {}
            }
        }
        (buf.len(), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cut with a small buffer (values cross the reader's buffer boundaries and are gathered)
    /// and with a big one (records handed out where they lie): the same either way.
    fn cut(text: &str, limit: usize) -> Result<Vec<String>, String> {
        let with = |capacity: usize| {
            let mut out = Vec::new();
            let reader = std::io::BufReader::with_capacity(capacity, text.as_bytes());
            Splitter::new(reader, limit)
                .records(|n, bytes| {
                    out.push(format!("{n}:{}", String::from_utf8_lossy(bytes)));
                    Ok(())
                })
                .map_err(|SplitError(e)| e)?;
            Ok(out)
        };
        let small = with(3);
        assert_eq!(small, with(1 << 16));
        small
    }

    #[test]
    fn records_are_cut_whole_whatever_their_strings_hold() {
        let text = "{\"other\": {\"Records\": [1, \"]\"]}, \"n\": -1.5e3,\n \"Records\" : [ {\"a\": \"}\\\"{\", \"b\": [{}]} ,\n{\"c\": null} ], \"t\": true }  \n";
        assert_eq!(cut(text, 1 << 20).unwrap(), ["1:{\"a\": \"}\\\"{\", \"b\": [{}]}", "2:{\"c\": null}"]);
        let escapes = "{\"Records\": [{\"d\": \"\\\\\", \"e\": \"\\\"]\"}, 7]}";
        assert_eq!(cut(escapes, 1 << 20).unwrap(), ["1:{\"d\": \"\\\\\", \"e\": \"\\\"]\"}", "2:7"]);
        assert_eq!(cut("{\"Records\": []}", 10).unwrap(), Vec::<String>::new());
        assert_eq!(cut("{}", 10).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_bad_file_is_refused_where_it_goes_wrong() {
        let e = cut("{\"Records\": [{\"a\": 1}, {\"b\": ", 1 << 20).unwrap_err();
        assert_eq!(e, "record 2: the JSON ends early, at line 1, column 30: is the file truncated?");
        let e = cut("{\"Records\": [{\"a\": 1}\n x", 1 << 20).unwrap_err();
        assert_eq!(e, "invalid JSON at line 2, column 2 (expected `,` or `]` after record 1, found `x`)");
        let e = cut("{\"Records\": [{\"a\": \"0123456789\"}]}", 10).unwrap_err();
        assert!(e.starts_with("record 1: a record longer than"), "{e}");
        let e = cut("{\"Records\": []} {}", 10).unwrap_err();
        assert_eq!(e, "unexpected data after the Records object, at line 1, column 17");
    }
}
