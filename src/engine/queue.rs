//! The pending-event queue: a radix heap over simulated time, first-in first-out within an instant.
//!
//! A discrete-event simulation only ever schedules at or after the present, so its queue is a
//! *monotone* priority queue, and a radix heap (Ahuja, Mehlhorn, Orlin, Tarjan 1990) fits. This
//! one has byte-wide digits: an entry sits in the bucket named by the highest byte in which its
//! time differs from the last time popped, and that byte's value (8 levels of 256 buckets).
//! Pushing is an append; popping takes from the FIFO of the present instant and, when it is
//! empty, spreads the lowest non-empty bucket into lower levels. An entry moves at most once per
//! level, three or four times for an event hours ahead in milliseconds, always through
//! sequential memory, so the cost per event barely grows with the number pending, unlike a
//! binary heap's, whose cache misses grow with it.
//!
//! Order: by time, then by scheduling order. Entries for one instant always share a bucket in
//! the order they were pushed, and moving a bucket keeps its order, so the present instant is a
//! FIFO: a message sent with no delay costs an append and a pop. (The `radix-heap` crate pops
//! equal keys last-in first-out, which would break the engine's determinism contract.)
//!
//! Only 16-byte keys (time, slot, hint) move between buckets and into the FIFO; sequence
//! numbers and payloads wait in a slab, written once and read once.
//!
//! Each instant has two lanes, [`Lane::First`] before [`Lane::Then`]. The lane rides in the top
//! bit of the slot number; when an instant becomes the present, its first-lane entries move to
//! the front of the FIFO (a stable partition, done only when the instant has any). Keeping the
//! lane out of the time spares the heap a bit of key: with it there, entries crossed more
//! levels and fleet-10k ran 7% slower.

#![forbid(unsafe_code)]

use super::time::SimTime;

/// Where an entry stands among those due at its instant: every `First` entry before any `Then`
/// entry, each lane in scheduling order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    First,
    Then,
}

/// The slot bit that marks a first-lane entry.
const FIRST: u32 = 1 << 31;

fn is_first(slot: u32) -> bool {
    slot & FIRST != 0
}

/// One delivery taken off the queue.
pub(crate) struct Entry<P> {
    pub at: SimTime,
    pub seq: u64,
    /// What the pusher noted: known without reading the payload's line.
    pub hint: u32,
    pub payload: P,
}

/// A payload in the slab, on a cache line of its own (when it fits one): in a big estate every
/// delivery reads one that has not been touched for hours of simulated time, a cache miss, and
/// an unaligned one would often be two.
#[repr(align(64))]
pub(crate) struct Line<P>(Option<(u64, P)>);

/// A later entry as the buckets hold it; its sequence number and payload wait in `slots[slot]`
/// (16 bytes move between buckets, not 24).
#[derive(Clone, Copy)]
struct Key {
    at: u64,
    slot: u32,
    /// The pusher's note about the entry (the engine: its recipient), for [`Queue::upcoming`]
    /// and [`Entry::hint`].
    hint: u32,
}

const _: () = assert!(std::mem::size_of::<Key>() == 16);

const DIGIT_BITS: u32 = 8;
const DIGITS: usize = 1 << DIGIT_BITS;
const LEVELS: usize = 64 / DIGIT_BITS as usize;

const WORDS_PER_LEVEL: usize = DIGITS / 64;
/// Occupancy words in all: exactly the bits of [`Queue::words_in_use`].
const WORDS: usize = LEVELS * WORDS_PER_LEVEL;
const _: () = assert!(WORDS == u32::BITS as usize);

/// The set bits of [`Queue::occupied`] in order, as bucket indices (`level * DIGITS + digit`):
/// the words named by the summary, then their bits. `settle` asks for the first on every pop.
struct OccupiedBuckets<'a> {
    occupied: &'a [u64; WORDS],
    /// Words not yet read.
    words: u32,
    /// The word being read, and its bits not yet returned.
    word: usize,
    bits: u64,
}

impl Iterator for OccupiedBuckets<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.bits == 0 {
            if self.words == 0 {
                return None;
            }
            self.word = self.words.trailing_zeros() as usize;
            self.words &= self.words - 1;
            self.bits = self.occupied[self.word];
        }
        let bucket = self.word * 64 + self.bits.trailing_zeros() as usize;
        self.bits &= self.bits - 1;
        Some(bucket)
    }
}

/// A min-queue of payloads ordered by `(time, scheduling order)`.
pub(crate) struct Queue<P> {
    /// Entries due exactly at `last`, in scheduling order: (slot, hint); those before `head`
    /// are taken. Emptied only when all are taken: cheaper than a ring's wrapping.
    now: Vec<(u32, u32)>,
    head: usize,
    /// `later[level * DIGITS + d]`: entries whose time first differs from `last` in byte
    /// `level` (from the least significant), where its value is `d`; in scheduling order per
    /// instant.
    later: Vec<Vec<Key>>,
    /// Bit `b % 64` of `occupied[b / 64]` set when bucket `later[b]` is not empty.
    occupied: [u64; WORDS],
    /// Bit `w` set when `occupied[w]` is not zero: the first bucket is two bit scans away.
    words_in_use: u32,
    slots: Vec<Line<P>>,
    free: Vec<u32>,
    /// The time of the entries in `now`: the last time popped, or the next, once known.
    last: u64,
    next_seq: u64,
    /// First-lane entries pending: while there are none, no instant needs a partition.
    firsts: usize,
}

impl<P> Queue<P> {
    pub fn new() -> Self {
        Queue {
            now: Vec::new(),
            head: 0,
            later: (0..LEVELS * DIGITS).map(|_| Vec::new()).collect(),
            occupied: [0; WORDS],
            words_in_use: 0,
            slots: Vec::new(),
            free: Vec::new(),
            last: 0,
            next_seq: 0,
            firsts: 0,
        }
    }

    /// Schedules `payload` at `at`, in the instant's second lane, and returns its sequence
    /// number, unique for the queue's life.
    #[inline(always)]
    pub fn push(&mut self, at: SimTime, hint: u32, payload: P) -> u64 {
        self.push_in(at, Lane::Then, hint, payload)
    }

    /// Schedules `payload` at `at` in `lane`. An entry for the present instant joins its FIFO
    /// at the end, whatever its lane: the instant is already being taken. (So a first-lane
    /// entry in the FIFO is always one the instant's partition put in front.)
    #[inline(always)]
    pub fn push_in(&mut self, at: SimTime, lane: Lane, hint: u32, payload: P) -> u64 {
        let at = at.as_ms();
        let lane = if at == self.last { Lane::Then } else { lane };
        let seq = self.next_seq;
        self.next_seq += 1;
        if at < self.last {
            // Only an input scheduled from outside, between runs, can go back before an instant
            // the queue has already looked at; the actors never schedule in the past.
            self.rebase(at);
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                // A free slot holds nothing: writing through `get_or_insert` says so, and
                // spares every push the code that would drop an old payload.
                let line = &mut self.slots[slot as usize].0;
                debug_assert!(line.is_none(), "a free slot holds no entry");
                line.get_or_insert((seq, payload));
                slot
            }
            None => {
                if self.slots.len() == self.slots.capacity() {
                    // A quarter more, not double: the slab keeps its peak for the whole run.
                    self.slots.reserve_exact(self.slots.len() / 4 + 64);
                }
                self.slots.push(Line(Some((seq, payload))));
                let slot = u32::try_from(self.slots.len() - 1).expect("fewer than 2^31 pending events");
                assert!(!is_first(slot), "fewer than 2^31 pending events");
                slot
            }
        };
        let slot = if lane == Lane::First {
            self.firsts += 1;
            slot | FIRST
        } else {
            slot
        };
        self.place(Key { at, slot, hint });
        seq
    }

    #[inline(always)]
    fn place(&mut self, key: Key) {
        if key.at == self.last {
            self.now.push((key.slot, key.hint));
        } else {
            let level = (63 - (key.at ^ self.last).leading_zeros()) / DIGIT_BITS;
            #[allow(clippy::cast_possible_truncation)] // a byte
            let digit = ((key.at >> (level * DIGIT_BITS)) as usize) & (DIGITS - 1);
            let b = level as usize * DIGITS + digit;
            self.later[b].push(key);
            self.occupied[b / 64] |= 1 << (b % 64);
            self.words_in_use |= 1 << (b / 64);
        }
    }

    /// The non-empty buckets, by index, in the order they will be settled: buckets are
    /// time windows, each level's after the one below. The first holds the earliest entries.
    fn occupied_buckets(&self) -> OccupiedBuckets<'_> {
        OccupiedBuckets { occupied: &self.occupied, words: self.words_in_use, word: 0, bits: 0 }
    }

    /// Makes `now` hold the earliest entries if they are due at `limit` or before, and says
    /// whether it does. Later ones stay where they are: the present never moves past `limit`,
    /// so what is pushed from an instant up to it is never placed from an instant after it.
    fn settle(&mut self, limit: u64) -> bool {
        if self.head < self.now.len() {
            return self.last <= limit;
        }
        let Some(b) = self.occupied_buckets().next() else { return false };
        // Most buckets hold one entry by the time they are settled: it is the present.
        let alone = match self.later[b][..] {
            [key] => Some(key),
            _ => None,
        };
        let earliest = match alone {
            Some(key) => key.at,
            None => self.later[b].iter().map(|k| k.at).min().expect("an occupied bucket has entries"),
        };
        if earliest > limit {
            return false;
        }
        self.now.clear();
        self.head = 0;
        // A burst (a million messages at time 0) leaves a big FIFO behind: give it back.
        if self.now.capacity() > 1 << 16 {
            self.now = Vec::new();
        }
        self.occupied[b / 64] &= !(1 << (b % 64));
        if self.occupied[b / 64] == 0 {
            self.words_in_use &= !(1 << (b / 64));
        }
        self.last = earliest;
        if let Some(key) = alone {
            // Alone, it needs no partition by lane.
            self.later[b].clear();
            self.now.push((key.slot, key.hint));
            return true;
        }
        let mut bucket = std::mem::take(&mut self.later[b]);
        // Every entry lands in a lower level (or `now`), in the order it had.
        for key in bucket.drain(..) {
            self.place(key);
        }
        self.first_lane_first();
        // Keep a small allocation for the next time this bucket fills, but not one sized for a
        // burst: a million entries pass through the buckets at the start of a big fleet.
        if bucket.capacity() <= 512 {
            self.later[b] = bucket;
        }
        true
    }

    /// Puts the present instant's first-lane entries before its others, each in the order it had.
    fn first_lane_first(&mut self) {
        if self.firsts == 0 {
            return;
        }
        let present = &mut self.now[self.head..];
        if present.len() > 1 && present.iter().any(|&(slot, _)| is_first(slot)) {
            present.sort_by_key(|&(slot, _)| !is_first(slot));
        }
    }

    /// Moves `last` back to `at`, placing every entry afresh (rare: see [`Queue::push`]).
    fn rebase(&mut self, at: u64) {
        let old_last = self.last;
        let mut keys: Vec<Key> =
            self.now.drain(self.head..).map(|(slot, hint)| Key { at: old_last, slot, hint }).collect();
        self.now.clear();
        self.head = 0;
        for bucket in &mut self.later {
            keys.append(bucket);
        }
        // Stable, and the entries of one instant all come from one place in scheduling order.
        keys.sort_by_key(|k| k.at);
        self.occupied = [0; WORDS];
        self.words_in_use = 0;
        self.last = at;
        for key in keys {
            self.place(key);
        }
        self.first_lane_first();
    }

    /// The time of the earliest entry (the tests' view of the queue).
    #[cfg(test)]
    pub fn peek_time(&mut self) -> Option<SimTime> {
        self.settle(u64::MAX).then(|| SimTime::from_ms(self.last))
    }

    /// Takes the earliest entry, whenever it is due (the tests' view of the queue).
    #[cfg(test)]
    pub fn pop(&mut self) -> Option<Entry<P>> {
        self.pop_until(SimTime::MAX)
    }

    /// Takes the earliest entry if it is due at `limit` or before.
    #[inline(always)]
    pub fn pop_until(&mut self, limit: SimTime) -> Option<Entry<P>> {
        self.settle(limit.as_ms()).then(|| self.take())
    }

    /// Takes the earliest entry if it comes before an input from outside due at `input`, which
    /// the queue does not hold (see [`super::Inputs`]): if it is due earlier, or at that instant
    /// in the first lane. `None`: the input is next.
    #[inline(always)]
    pub fn pop_before_input(&mut self, input: SimTime) -> Option<Entry<P>> {
        let input = input.as_ms();
        if !self.settle(input) || (self.last == input && !is_first(self.now[self.head].0)) {
            return None;
        }
        Some(self.take())
    }

    /// Takes the head of `now`, which has one.
    #[inline(always)]
    fn take(&mut self) -> Entry<P> {
        let (slot, hint) = self.now[self.head];
        self.head += 1;
        if is_first(slot) {
            self.firsts -= 1;
        }
        let slot = slot & !FIRST;
        let (seq, payload) = self.slots[slot as usize].0.take().expect("a queued entry has its payload");
        self.free.push(slot);
        Entry { at: SimTime::from_ms(self.last), seq, hint, payload }
    }

    /// Entries due soon, as far as they are known without settling anything: the rest of the
    /// present instant, then the buckets in the order they will be settled. A bucket of level 0
    /// is one instant, in pop order; one of level 1 (256 ms) is taken in no particular order,
    /// and possibly in part, which ends the list; a higher one is taken whole or not at all. So
    /// what is shown pops within the next 256 ms that have entries, or before anything not
    /// shown. Where each one's payload waits, and its hint. For prefetching what the next
    /// events will touch; an instant's lanes are not looked at (a first-lane entry is rare, and
    /// a hint out of order costs only a wasted load).
    #[inline]
    pub fn upcoming<const N: usize>(&self) -> [Option<(&Line<P>, u32)>; N] {
        let mut out = [None; N];
        let mut n = 0;
        for &(slot, hint) in self.now[self.head..].iter().take(N) {
            out[n] = Some((&self.slots[(slot & !FIRST) as usize], hint));
            n += 1;
        }
        for b in self.occupied_buckets() {
            let level = b / DIGITS;
            let bucket = &self.later[b];
            let room = N - n;
            if room == 0 || (level > 1 && bucket.len() > room) {
                break;
            }
            for key in bucket.iter().take(room) {
                out[n] = Some((&self.slots[(key.slot & !FIRST) as usize], key.hint));
                n += 1;
            }
            if bucket.len() > room {
                break;
            }
        }
        out
    }

    /// Entries pending: each holds one slot of the slab.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn pops_by_time_then_by_scheduling_order() {
        let mut q = Queue::new();
        q.push(SimTime::from_ms(20), 0, "late");
        q.push(SimTime::from_ms(10), 0, "first at 10");
        q.push(SimTime::from_ms(10), 0, "second at 10");
        q.push(SimTime::from_ms(0), 0, "earliest");
        let order: Vec<_> = std::iter::from_fn(|| q.pop().map(|e| e.payload)).collect();
        assert_eq!(order, ["earliest", "first at 10", "second at 10", "late"]);
    }

    #[test]
    fn an_input_before_an_instant_already_looked_at_still_comes_first() {
        let mut q = Queue::new();
        q.push(SimTime::from_ms(500), 0, "b");
        assert_eq!(q.peek_time(), Some(SimTime::from_ms(500)));
        q.push(SimTime::from_ms(100), 0, "a");
        q.push(SimTime::from_ms(500), 0, "c");
        let order: Vec<_> = std::iter::from_fn(|| q.pop().map(|e| e.payload)).collect();
        assert_eq!(order, ["a", "b", "c"]);
    }

    #[test]
    fn the_first_lane_of_an_instant_comes_before_its_second_whenever_scheduled() {
        let mut q = Queue::new();
        q.push(SimTime::from_ms(10), 0, "then, scheduled first");
        q.push(SimTime::from_ms(5), 0, "earlier");
        q.push_in(SimTime::from_ms(10), Lane::First, 0, "first lane");
        q.push(SimTime::from_ms(10), 0, "then, scheduled last");
        let order: Vec<_> = std::iter::from_fn(|| q.pop().map(|e| e.payload)).collect();
        assert_eq!(order, ["earlier", "first lane", "then, scheduled first", "then, scheduled last"]);
        // A first-lane entry for the instant being taken joins it at the end.
        q.push(SimTime::from_ms(20), 0, "a");
        q.push(SimTime::from_ms(20), 0, "b");
        assert_eq!(q.pop().map(|e| e.payload), Some("a"));
        q.push_in(SimTime::from_ms(20), Lane::First, 0, "late first");
        let order: Vec<_> = std::iter::from_fn(|| q.pop().map(|e| e.payload)).collect();
        assert_eq!(order, ["b", "late first"]);
        // Each first-lane entry taken is counted off: with none pending, no instant is partitioned.
        assert_eq!(q.firsts, 0);
    }

    /// One step of a simulation driving the queue: pop the next entry, or schedule one at a delay
    /// from the present (often zero, often a tie).
    #[derive(Clone, Debug)]
    enum Step {
        Pop,
        Push(u64),
        /// In the first lane, strictly later than the present.
        PushFirst(u64),
        /// An input from outside at an absolute time, possibly before instants already seen.
        Input(u64),
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        let delay = prop_oneof![Just(0u64), 0u64..4, 0u64..1_000, 0u64..(1 << 20), 0u64..(1 << 40)];
        let first = prop_oneof![1u64..4, 1u64..1_000, 1u64..(1 << 20)];
        let step = prop_oneof![
            4 => Just(Step::Pop),
            4 => delay.prop_map(Step::Push),
            1 => first.prop_map(Step::PushFirst),
            1 => (0u64..2_000).prop_map(Step::Input),
        ];
        prop::collection::vec(step, 0..400)
    }

    proptest! {
        /// The same order as a binary heap keyed by (time, lane, sequence), the engine's contract.
        #[test]
        fn agrees_with_a_binary_heap(steps in steps()) {
            let mut q = Queue::new();
            let mut model = BinaryHeap::new();
            let mut now = 0u64;
            for step in steps {
                match step {
                    Step::Push(delay) => {
                        let seq = q.push(SimTime::from_ms(now + delay), 0, ());
                        model.push(Reverse((now + delay, 1, seq)));
                    }
                    Step::PushFirst(delay) => {
                        let seq = q.push_in(SimTime::from_ms(now + delay), Lane::First, 0, ());
                        model.push(Reverse((now + delay, 0, seq)));
                    }
                    Step::Input(at) => {
                        let seq = q.push(SimTime::from_ms(at), 0, ());
                        model.push(Reverse((at, 1, seq)));
                    }
                    Step::Pop => {
                        let got = q.pop().map(|e| e.seq);
                        let want = model.pop().map(|Reverse((at, _, seq))| { now = at; seq });
                        prop_assert_eq!(got, want);
                    }
                }
                prop_assert_eq!(q.len(), model.len());
            }
            while let Some(Reverse((_, _, seq))) = model.pop() {
                prop_assert_eq!(q.pop().map(|e| e.seq), Some(seq));
            }
            prop_assert!(q.pop().is_none());
        }

        /// What `upcoming` shows is due next: the present instant and level 0 in pop order, then
        /// whole buckets of higher levels, in order, which pop before anything else.
        #[test]
        fn upcoming_entries_are_the_next_to_pop(steps in steps()) {
            let mut q = Queue::new();
            let mut now = 0u64;
            for step in steps {
                // The hint is the sequence number, to tell entries apart.
                let hint = u32::try_from(q.next_seq).unwrap();
                match step {
                    // `upcoming` does not order an instant by lane (it is a hint).
                    Step::Push(delay) | Step::PushFirst(delay) => { q.push(SimTime::from_ms(now + delay), hint, ()); }
                    Step::Input(at) => { q.push(SimTime::from_ms(at), hint, ()); }
                    Step::Pop => if q.pop().is_some() { now = q.last; },
                }
            }
            let shown: Vec<u64> = q.upcoming::<4>().iter().flatten().map(|&(_, hint)| u64::from(hint)).collect();
            let ordered = q.now.len() - q.head + q.later[..DIGITS].iter().map(Vec::len).sum::<usize>();
            // The buckets after level 0, in order, while they fit whole in what is left of the
            // 4; a level-1 bucket that does not fit is shown in part.
            let (mut whole, mut part) = (0, 0);
            for (i, bucket) in q.later.iter().enumerate().skip(DIGITS).filter(|(_, b)| !b.is_empty()) {
                if ordered + whole + bucket.len() > 4 {
                    if i < 2 * DIGITS {
                        part = bucket.len();
                    }
                    break;
                }
                whole += bucket.len();
            }
            let popped: Vec<u64> = std::iter::from_fn(|| q.pop().map(|e| e.seq)).collect();
            let in_order = shown.len().min(ordered);
            prop_assert_eq!(&shown[..in_order], &popped[..in_order]);
            let due = &popped[..(ordered + whole + part).min(popped.len())];
            prop_assert!(shown.iter().all(|seq| due.contains(seq)), "{:?} are not among the next {:?}", shown, due);
            prop_assert_eq!(shown.len(), (ordered + whole + part).min(4));
        }
    }
}
