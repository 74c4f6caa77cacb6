//! The pending-event queue: a binary min-heap keyed by (time, sequence number).
//!
//! The sequence number is the order in which events were scheduled, so two events at the same
//! instant always run in the order they were sent: that is the engine's determinism contract.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::time::SimTime;

/// One scheduled delivery. Ordered by `(at, seq)` only; the payload never takes part.
pub(crate) struct Entry<P> {
    pub at: SimTime,
    pub seq: u64,
    pub payload: P,
}

impl<P> PartialEq for Entry<P> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl<P> Eq for Entry<P> {}
impl<P> PartialOrd for Entry<P> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<P> Ord for Entry<P> {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest entry first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A min-queue of payloads ordered by `(time, scheduling order)`.
pub(crate) struct Queue<P> {
    heap: BinaryHeap<Entry<P>>,
    next_seq: u64,
}

impl<P> Queue<P> {
    pub fn new() -> Self {
        Queue { heap: BinaryHeap::new(), next_seq: 0 }
    }

    /// Schedules `payload` at `at` and returns its sequence number, unique for the queue's life.
    pub fn push(&mut self, at: SimTime, payload: P) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry { at, seq, payload });
        seq
    }

    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.peek().map(|e| e.at)
    }

    pub fn pop(&mut self) -> Option<Entry<P>> {
        self.heap.pop()
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_by_time_then_by_scheduling_order() {
        let mut q = Queue::new();
        q.push(SimTime::from_ms(20), "late");
        q.push(SimTime::from_ms(10), "first at 10");
        q.push(SimTime::from_ms(10), "second at 10");
        q.push(SimTime::from_ms(0), "earliest");
        let order: Vec<_> = std::iter::from_fn(|| q.pop().map(|e| e.payload)).collect();
        assert_eq!(order, ["earliest", "first at 10", "second at 10", "late"]);
    }
}
