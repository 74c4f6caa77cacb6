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

/// Memory shared by the threads of a [`parallel_map`], in estimated bytes: work takes its share
/// before it starts and gives it back when done, so what runs side by side stays within the bound.
/// Work bigger than the whole bound runs alone.
pub(super) struct Budget {
    bound: u64,
    used: std::sync::Mutex<u64>,
    freed: std::sync::Condvar,
}

/// A share of a [`Budget`], given back when dropped.
pub(super) struct Share<'a> {
    budget: &'a Budget,
    bytes: u64,
}

impl Budget {
    pub(super) fn new(bound: u64) -> Budget {
        Budget { bound, used: std::sync::Mutex::new(0), freed: std::sync::Condvar::new() }
    }

    fn fits(&self, used: u64, bytes: u64) -> bool {
        used == 0 || used.saturating_add(bytes) <= self.bound
    }

    /// Waits until `bytes` fit beside what runs, or nothing runs.
    pub(super) fn take(&self, bytes: u64) -> Share<'_> {
        let used = self.used.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut used = self
            .freed
            .wait_while(used, |used| !self.fits(*used, bytes))
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *used += bytes;
        Share { budget: self, bytes }
    }
}

impl Share<'_> {
    /// Grows this share to `bytes` if that fits now (never waits: two shares waiting to grow
    /// would wait for each other). False leaves the share as it was.
    pub(super) fn grow(&mut self, bytes: u64) -> bool {
        if bytes <= self.bytes {
            return true;
        }
        let mut used = self.budget.used.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let others = *used - self.bytes;
        if !self.budget.fits(others, bytes) {
            return false;
        }
        *used = others + bytes;
        self.bytes = bytes;
        true
    }
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        let mut used = self.budget.used.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *used -= self.bytes;
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_beyond_the_bound_wait_and_one_bigger_than_it_runs_alone() {
        let budget = Budget::new(100);
        let a = budget.take(60);
        let mut b = budget.take(40);
        assert!(!b.grow(41), "60 + 41 is beyond 100");
        assert!(b.grow(40));
        drop(a);
        assert!(b.grow(100), "alone, a share may take everything");
        assert!(b.grow(500), "alone, a share may take more than the bound");
        drop(b);
        let big = budget.take(1_000);
        drop(big);
        assert_eq!(*budget.used.lock().unwrap(), 0);
    }

    #[test]
    fn a_waiting_share_starts_when_another_is_given_back() {
        let budget = Budget::new(100);
        let first = budget.take(80);
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                let share = budget.take(30);
                share.bytes
            });
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!waiter.is_finished(), "80 + 30 is beyond 100: the second waits");
            drop(first);
            assert_eq!(waiter.join().unwrap(), 30);
        });
    }
}
