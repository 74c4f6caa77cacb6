//! The pending-event queue: a binary min-heap keyed by (time, sequence number).
//!
//! The sequence number is the order in which events were scheduled, so two events at the same
//! instant always run in the order they were sent: that is the engine's determinism contract.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::time::SimTime;

/// A pending delivery as the heap sees it: 24 bytes, ordered by `(at, seq)`. The payload waits
/// in a slab, so the heap's sifting moves small keys, never whole messages.
#[derive(Clone, Copy)]
struct Key {
    at: SimTime,
    seq: u64,
    slot: u32,
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest entry first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// One delivery taken off the queue.
pub(crate) struct Entry<P> {
    pub seq: u64,
    pub payload: P,
}

/// A min-queue of payloads ordered by `(time, scheduling order)`.
pub(crate) struct Queue<P> {
    heap: BinaryHeap<Key>,
    slots: Vec<Option<P>>,
    free: Vec<u32>,
    next_seq: u64,
}

impl<P> Queue<P> {
    pub fn new() -> Self {
        Queue { heap: BinaryHeap::new(), slots: Vec::new(), free: Vec::new(), next_seq: 0 }
    }

    /// Schedules `payload` at `at` and returns its sequence number, unique for the queue's life.
    pub fn push(&mut self, at: SimTime, payload: P) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(payload);
                slot
            }
            None => {
                self.slots.push(Some(payload));
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 pending events")
            }
        };
        self.heap.push(Key { at, seq, slot });
        seq
    }

    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.peek().map(|k| k.at)
    }

    pub fn pop(&mut self) -> Option<Entry<P>> {
        let k = self.heap.pop()?;
        let payload = self.slots[k.slot as usize].take().expect("a queued key has its payload");
        self.free.push(k.slot);
        Some(Entry { seq: k.seq, payload })
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
