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

/// Why the file could not be cut: the message, and whether the file ended early.
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

/// What takes each record that is cut: its number and bytes.
pub(super) type Each<'a> = dyn FnMut(u64, &[u8]) -> Result<(), String> + 'a;

/// Records that `cut` hands out (number, bytes), each first read by `read` on one of `workers`
/// threads, in batches of about `batch` bytes; `apply` then takes what `read` made of each
/// record on one thread in the records' order, so the outcome is the same for any number of
/// workers. The first error in the records' order is the one returned (an error of `cut` comes
/// after those of the records it handed out).
pub(super) fn side_by_side<P: Send>(
    workers: usize,
    batch: usize,
    cut: impl FnOnce(&mut Each<'_>) -> Result<(), String>,
    read: impl Fn(u64, &[u8]) -> P + Sync,
    apply: impl FnMut(P) -> Result<(), String> + Send,
) -> Result<(), String> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Mutex, mpsc};
    let mut apply = Some(apply);
    let (to_read, batches) = mpsc::sync_channel::<Batch>(2 * workers);
    let batches = Mutex::new(batches);
    let stopped = AtomicBool::new(false);
    let (read, stopped) = (&read, &stopped);
    std::thread::scope(|scope| {
        // The threads start only once the first batch's worth of records has been read here, one
        // by one: a small file costs no thread.
        let mut inline = 0;
        let mut applier = None;
        let mut b = Batch::new(0);
        let cutting = cut(&mut |n, bytes| {
            if applier.is_none() {
                if workers <= 1 || inline < batch {
                    inline += bytes.len();
                    return apply.as_mut().expect("applied here until the threads start")(read(n, bytes));
                }
                let mut apply = apply.take().expect("the threads start once");
                let (to_apply, read_batches) = mpsc::sync_channel::<(u64, Vec<P>)>(2 * workers);
                for _ in 0..workers {
                    let (to_apply, batches) = (to_apply.clone(), &batches);
                    scope.spawn(move || {
                        let mut applying = true;
                        loop {
                            let next = batches.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
                            let Ok(b) = next else { break };
                            // Once nothing is applied any more, batches are only taken, so that
                            // the cutting never waits for room.
                            if applying {
                                let mut start = 0;
                                let each = b.ends.iter().map(|&(n, end)| {
                                    let record = read(n, &b.bytes[start..end]);
                                    start = end;
                                    record
                                });
                                applying = to_apply.send((b.seq, each.collect())).is_ok();
                            }
                        }
                    });
                }
                applier = Some(scope.spawn(move || {
                    let mut waiting = std::collections::BTreeMap::new();
                    let mut next = 0;
                    for (seq, records) in read_batches {
                        waiting.insert(seq, records);
                        while let Some(records) = waiting.remove(&next) {
                            next += 1;
                            for record in records {
                                if let Err(e) = apply(record) {
                                    stopped.store(true, Ordering::Relaxed);
                                    return Err(e);
                                }
                            }
                        }
                    }
                    Ok(())
                }));
            }
            if stopped.load(Ordering::Relaxed) {
                return Err(String::new());
            }
            b.bytes.extend_from_slice(bytes);
            b.ends.push((n, b.bytes.len()));
            if b.bytes.len() >= batch {
                let next = Batch::new(b.seq + 1);
                let full = std::mem::replace(&mut b, next);
                to_read.send(full).map_err(|_| String::new())?;
            }
            Ok(())
        });
        let Some(applier) = applier else { return cutting };
        // The records before a place the input goes wrong are applied first: an error among
        // them comes first.
        if !b.ends.is_empty() {
            let _ = to_read.send(b);
        }
        drop(to_read);
        match applier.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)) {
            Err(e) => Err(e),
            Ok(()) => cutting,
        }
    })
}

/// Records cut from the file, to be read together.
struct Batch {
    /// Its place among the batches.
    seq: u64,
    bytes: Vec<u8>,
    /// Each record's number, and where it ends in `bytes`.
    ends: Vec<(u64, usize)>,
}

impl Batch {
    fn new(seq: u64) -> Self {
        Batch { seq, bytes: Vec::new(), ends: Vec::new() }
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

    /// Read side by side in batches of a few bytes (a record each) or of many, records are
    /// applied in the file's order, and the first error in that order is the one returned.
    #[test]
    fn records_read_side_by_side_are_applied_in_order() {
        let side_by_side = |text: &str, workers: usize, batch: usize| {
            let mut applied = Vec::new();
            let reader = std::io::BufReader::with_capacity(7, text.as_bytes());
            let splitter = Splitter::new(reader, 1 << 20);
            let result = side_by_side(
                workers,
                batch,
                |each| splitter.records(each).map_err(|SplitError(e)| e),
                |n, bytes| (n, String::from_utf8_lossy(bytes).into_owned()),
                |(n, text)| {
                    if text.contains("bad") {
                        return Err(format!("record {n} is bad"));
                    }
                    applied.push(format!("{n}:{text}"));
                    Ok(())
                },
            );
            (result, applied)
        };
        let many: String = (0..500).map(|i| format!("{{\"i\": {i}}}")).collect::<Vec<_>>().join(",");
        let text = format!("{{\"Records\": [{many}]}}");
        let one = side_by_side(&text, 1, 1);
        assert_eq!(one.1.len(), 500);
        assert_eq!(one.1[499], "500:{\"i\": 499}");
        for (workers, batch) in [(2, 1), (3, 10), (4, 1 << 20)] {
            assert_eq!(side_by_side(&text, workers, batch), one, "{workers} workers, batches of {batch} bytes");
        }
        let bad = text.replace("{\"i\": 300}", "{\"bad\": 0}").replace("{\"i\": 400}", "x");
        for (workers, batch) in [(1, 1), (2, 1), (3, 40)] {
            let (result, applied) = side_by_side(&bad, workers, batch);
            assert_eq!(result, Err("record 301 is bad".to_string()));
            assert_eq!(applied.len(), 300, "nothing after the bad record is applied");
        }
        let truncated = &text[..text.len() / 2];
        for (workers, batch) in [(1, 1), (2, 1), (3, 40)] {
            let (result, applied) = side_by_side(truncated, workers, batch);
            assert!(result.unwrap_err().contains("the JSON ends early"));
            assert_eq!(
                applied.len(),
                one.1.iter().take_while(|r| truncated.contains(r.split_once(':').unwrap().1)).count()
            );
        }
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
