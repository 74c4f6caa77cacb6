//! What `explain` needs to know of a run without keeping it: each record's cause and reason, in
//! 16 bytes, and the failures caused by a key (the first few). From the index, the records a
//! chain of causes passes through are known; a second, identical run (a run is deterministic)
//! keeps just those ([`Keep`]).

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};

use crate::actors::Obs;
use crate::actors::ebs::VolumeObs;
use crate::engine::{Cause, Record, RecordId, Sink};

/// Failures caused by a key that `explain` explains when asked for none in particular.
pub const KEY_FAILURES_EXPLAINED: usize = 20;

/// Each record's cause and reason, by record id, and the first failures caused by a key.
#[derive(Default)]
pub struct CauseIndex {
    /// Per record: its cause, as `2 * action` for an input or `2 * record + 1`.
    causes: Vec<u64>,
    /// Per record: 0 for no reason, else `1 + the record it names`.
    reasons: Vec<u64>,
    key_failures: Vec<RecordId>,
    key_failures_seen: u64,
}

impl CauseIndex {
    /// How many records the run made.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.causes.len() as u64
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.causes.is_empty()
    }

    /// The first failures caused by a key ([`KEY_FAILURES_EXPLAINED`] at most), and how many
    /// there were in all.
    #[must_use]
    pub fn key_failures(&self) -> (&[RecordId], u64) {
        (&self.key_failures, self.key_failures_seen)
    }

    fn at(&self, id: RecordId) -> Option<(Cause, Option<RecordId>)> {
        let i = usize::try_from(id).ok()?;
        let c = *self.causes.get(i)?;
        let cause = if c % 2 == 0 { Cause::Input(u32::try_from(c / 2).ok()?) } else { Cause::Record(c / 2) };
        let reason = self.reasons[i].checked_sub(1);
        Some((cause, reason))
    }

    /// The records explaining `id` passes through: itself, the chain that follows its reason
    /// (else its cause) back to an action, and the causes at the root of `id`. `None` if the run
    /// made no record `id`.
    #[must_use]
    pub fn chain(&self, id: RecordId) -> Option<BTreeSet<RecordId>> {
        let mut ids = BTreeSet::from([id]);
        let (mut cause, mut reason) = self.at(id)?;
        // Every link points to an earlier record, so both walks end.
        while let Cause::Record(r) = reason.map_or(cause, Cause::Record) {
            ids.insert(r);
            (cause, reason) = self.at(r)?;
        }
        let mut c = self.at(id)?.0;
        while let Cause::Record(r) = c {
            ids.insert(r);
            c = self.at(r)?.0;
        }
        Some(ids)
    }
}

/// Whether a record is a failure caused by a key: a refused attach, reattach or create, or a
/// service resource's request, reboot, start or creation that KMS refused, or its service
/// marking it inaccessible.
#[must_use]
pub fn is_key_failure(rec: &Record<Obs>) -> bool {
    match &rec.obs {
        Obs::Volume(
            VolumeObs::AttachFailed { kms: Some(_), .. }
            | VolumeObs::KeyLoadFailed { .. }
            | VolumeObs::CreateFailed { .. },
        ) => true,
        // A deadline passing while broken is no new failure.
        Obs::Service(o) => matches!(o.effect(), Some(crate::actors::service::Effect::Broke { .. })),
        _ => false,
    }
}

impl Sink<Obs> for CauseIndex {
    fn record(&mut self, rec: Record<Obs>) {
        debug_assert_eq!(rec.id, self.causes.len() as u64, "records come in id order from 0");
        self.causes.push(match rec.cause {
            Cause::Input(i) => 2 * u64::from(i),
            Cause::Record(r) => 2 * r + 1,
        });
        self.reasons.push(rec.reason.map_or(0, |r| r + 1));
        if is_key_failure(&rec) {
            self.key_failures_seen += 1;
            if self.key_failures.len() < KEY_FAILURES_EXPLAINED {
                self.key_failures.push(rec.id);
            }
        }
    }
}

/// Keeps the records whose ids it is given, and no other.
pub struct Keep<'a> {
    pub wanted: &'a BTreeSet<RecordId>,
    pub kept: BTreeMap<RecordId, Record<Obs>>,
}

impl Sink<Obs> for Keep<'_> {
    fn record(&mut self, rec: Record<Obs>) {
        if self.wanted.contains(&rec.id) {
            self.kept.insert(rec.id, rec);
        }
    }
}
