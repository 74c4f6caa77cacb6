//! Which records a timeline shows: every one of a short run; of a long one, its first records,
//! the keys' own events, the first failures after the head and its last records, kept as the
//! run goes in bounded memory. The terminal and the HTML report show this selection.

#![forbid(unsafe_code)]

use crate::actors::Obs;
use crate::engine::Record;
use crate::run::{Lives, Names};
use crate::scenario::Scenario;

use super::record::{Outcome, verdict};

/// Runs of up to this many records are shown whole on a terminal; longer ones by their first
/// records, the first failures after those, and their last records.
pub const WHOLE_TIMELINE: usize = 2000;
const HEAD: usize = 100;
const FAILURES: usize = 20;
const KEY_EVENTS: usize = 100;
const TAIL: usize = 20;
const _: () = assert!(TAIL as u64 <= crate::run::RECENT);

/// The text timeline as a fold: it keeps the first [`WHOLE_TIMELINE`] records, and beyond them
/// only the keys' own events (state changes, the user's calls), the first failures after the
/// head and the last few records, so a run of any length prints in bounded memory.
pub struct TimelineFold<'s> {
    scenario: &'s Scenario,
    kept: Vec<Kept>,
    failures: Vec<Kept>,
    key_events: Vec<Kept>,
    /// The last records, named only when shown: they are within
    /// [`RECENT`](crate::run::RECENT) of the end, where the run's names still know them.
    /// A ring: once full, the oldest is at `oldest`.
    tail: Vec<Record<Obs>>,
    oldest: usize,
    total: usize,
}

impl<'s> TimelineFold<'s> {
    #[must_use]
    pub fn new(scenario: &'s Scenario) -> Self {
        TimelineFold {
            scenario,
            kept: Vec::new(),
            failures: Vec::new(),
            key_events: Vec::new(),
            tail: Vec::with_capacity(TAIL),
            oldest: 0,
            total: 0,
        }
    }

    fn failed(&self, rec: &Record<Obs>) -> bool {
        verdict(self.scenario, rec).1 == Outcome::Failed
    }

    /// A key's own event: a change of its state, or a call the user made.
    fn key_event(rec: &Record<Obs>) -> bool {
        use crate::actors::kms::{Caller, KmsObs};
        match &rec.obs {
            Obs::Kms(KmsObs::Called { caller, .. }) => *caller == Caller::User,
            Obs::Kms(_) => true,
            _ => false,
        }
    }

    /// Takes the next record; `names` knows every record until this one (the instances a kept
    /// record names are taken with it, so that it is named later as it was then).
    pub fn observe(&mut self, names: &Names<'_>, rec: &Record<Obs>) {
        self.take(names, rec.clone());
    }

    /// Takes the next record as [`observe`](Self::observe) does, but owned: the last records
    /// are held as they are rather than cloned, so the fold is a delay line of [`TAIL`] records.
    /// Returns the record that leaves it (the one given, while the run is short), in order;
    /// those still [`held`](Self::held) at the end are the last ones.
    pub fn take(&mut self, names: &Names<'_>, rec: Record<Obs>) -> Option<Record<Obs>> {
        self.total += 1;
        let keep = |rec: &Record<Obs>| (rec.clone(), names.lives_at(rec));
        if self.kept.len() < WHOLE_TIMELINE {
            self.kept.push(keep(&rec));
            return Some(rec);
        }
        if self.failures.len() < FAILURES && self.failed(&rec) {
            self.failures.push(keep(&rec));
        } else if self.key_events.len() < KEY_EVENTS && Self::key_event(&rec) {
            self.key_events.push(keep(&rec));
        }
        if self.tail.len() < TAIL {
            self.tail.push(rec);
            return None;
        }
        let oldest = std::mem::replace(&mut self.tail[self.oldest], rec);
        self.oldest = (self.oldest + 1) % TAIL;
        Some(oldest)
    }

    /// The records [`take`](Self::take) still holds, in order.
    pub fn held(&self) -> impl Iterator<Item = &Record<Obs>> {
        let (newer, older) = self.tail.split_at(self.oldest);
        older.iter().chain(newer)
    }

    /// The records to show, `None` where some were left out, and what was left out in words;
    /// `names` knows every record of the run.
    #[must_use]
    pub fn select(self, names: &Names<'_>) -> Shown {
        if self.total <= WHOLE_TIMELINE {
            return Shown { rows: self.kept.into_iter().map(Some).collect(), total: self.total, left_out: None };
        }
        let later = &self.kept[HEAD..];
        let failures: Vec<&Kept> =
            later.iter().filter(|r| self.failed(&r.0)).chain(&self.failures).take(FAILURES).collect();
        let key_events: Vec<&Kept> = later
            .iter()
            .filter(|r| !self.failed(&r.0) && Self::key_event(&r.0))
            .chain(&self.key_events)
            .take(KEY_EVENTS)
            .collect();
        let mut middle: Vec<&Kept> = failures.iter().chain(&key_events).copied().collect();
        middle.sort_by_key(|r| r.0.id);
        let tail: Vec<Kept> = self
            .held()
            .filter(|r| middle.last().is_none_or(|m| r.id > m.0.id))
            .map(|r| (r.clone(), names.lives_at(r)))
            .collect();
        let mut rows: Vec<Option<Kept>> = self.kept[..HEAD].iter().cloned().map(Some).collect();
        let mut next = HEAD as u64;
        for r in middle.iter().copied().chain(&tail) {
            if r.0.id > next {
                rows.push(None);
            }
            rows.push(Some(r.clone()));
            next = r.0.id + 1;
        }
        let not_shown = self.total - HEAD - middle.len() - tail.len();
        let left_out = format!(
            "{} records in all: the first {HEAD}, the keys' own events, the first {} failures after them and the last {}; {not_shown} not shown",
            self.total,
            failures.len(),
            tail.len()
        );
        Shown { rows, total: self.total, left_out: Some(left_out) }
    }
}

/// A record a timeline keeps, with the instances it names as they were then.
pub type Kept = (Record<Obs>, Lives);

/// The records a bounded timeline shows.
#[derive(Clone, Debug)]
pub struct Shown {
    /// In order; `None` where records were left out. Name each with `names.pinned(lives)`.
    pub rows: Vec<Option<Kept>>,
    pub total: usize,
    /// What was left out, in words, if anything was.
    pub left_out: Option<String>,
}
