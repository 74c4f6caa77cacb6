//! Parallelism: how many threads, and a map over them that keeps the items' order.

use super::Failure;

/// The most threads `--jobs` may ask for.
pub(super) const MAX_JOBS: usize = 256;

/// `--jobs`, checked against [`MAX_JOBS`], or every core.
pub(super) fn jobs_or_cores(jobs: Option<usize>) -> Result<usize, Failure> {
    match jobs {
        Some(j) if j == 0 || j > MAX_JOBS => Err(Failure::Input(format!("--jobs {j}: give 1 to {MAX_JOBS} threads"))),
        Some(j) => Ok(j),
        None => Ok(std::thread::available_parallelism().map_or(1, usize::from)),
    }
}

/// `f` over `items` on `jobs` threads; results in the order of `items`.
pub(super) fn parallel_map<T: Sync, R: Send>(items: &[T], jobs: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs.min(items.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        mine.push((i, f(item)));
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("a check thread panicked")).collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}
