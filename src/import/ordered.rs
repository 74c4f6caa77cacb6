//! Records read on every core and added in their order: a cutter hands out each record's bytes,
//! threads read them in batches, and one thread applies what each says in the input's order, so
//! the outcome is the same for any number of threads. Memory is bounded by the channels between
//! them (a few batches per thread).

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::split::{SplitError, Splitter};

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
}
