//! EBS snapshots: a volume's data key kept with a point-in-time copy of its blocks, and the
//! KMS calls that restoring or copying one needs.
//!
//! ```text
//!   (not created) ──CreateSnapshot (no KMS call, D7: the volume's data key)──> completed
//!   (not created) ──CopySnapshot: ReEncrypt, or Decrypt + GenerateDataKeyWithoutPlaintext──> completed
//!                                 └──KMS refuses (D20)──> (not created)
//!   completed ──DeleteSnapshot──> deleted
//! ```
//!
//! A snapshot of a volume shares the volume's data key and its encryption context (the volume's
//! id); a copy gets a data key of its own context (its own id). Restoring a volume from a
//! snapshot and copying one give the new resource its data key as [`Derive`] says (D19): under
//! the same key the same data key, re-encrypted to the new context; under another key a new data
//! key, after the source's is decrypted to read its blocks. The new resource makes the calls, as
//! EBS does on the user's behalf, and tells the source how reading it went, so the record of a
//! snapshot that could not be read sits on the snapshot: it needs its key only then.

use std::sync::Arc;

use crate::engine::{ActorId, SimDuration};

use super::dist::Dist;
use super::ebs::{Outstanding, VolumeMsg};
use super::ec2::{Ec2Error, Ec2Message};
use super::kms::{
    Caller, Ciphertext, CiphertextRef, ContextId, KeyIdx, KeyRef, KmsError, KmsException, KmsMsg, KmsOp, KmsOutput,
    KmsRequest, Outcome, ReEncryptContexts, Service,
};
use super::{Msg, Obs, Reply, WorldCtx};

/// The snapshot states kmsim uses, named as EC2 names them (and `deleted`, once it is gone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotState {
    Pending,
    Completed,
    Deleted,
}

impl SnapshotState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotState::Pending => "pending",
            SnapshotState::Completed => "completed",
            SnapshotState::Deleted => "deleted",
        }
    }
}

/// What a snapshot is made from: a volume's actor, or another snapshot's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Volume(ActorId),
    Copy(ActorId),
}

/// What a source snapshot was read for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// CreateVolume from it.
    Restore,
    /// CopySnapshot of it.
    Copy,
}

impl Use {
    #[must_use]
    pub fn action(self) -> &'static str {
        match self {
            Use::Restore => "CreateVolume",
            Use::Copy => "CopySnapshot",
        }
    }
}

/// One step of giving a new volume or snapshot copy its data key from a source's (D19).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Derive {
    /// Under the source's key: the same data key, re-encrypted to the new resource's context.
    ReEncrypt,
    /// Under another key: the source's data key decrypted, to read its blocks ...
    Decrypt,
    /// ... and a new data key under the new key.
    Generate,
}

impl Derive {
    /// The first step for a new resource under `key` made from `source`.
    #[must_use]
    pub fn first(source: &Ciphertext, key: KeyIdx) -> Derive {
        if source.key == key { Derive::ReEncrypt } else { Derive::Decrypt }
    }

    /// Whether this step reads the source: a refusal of it is the source's key standing in the way.
    #[must_use]
    pub fn reads_source(self) -> bool {
        self != Derive::Generate
    }

    /// Where the restore or copy stands once KMS answered this step (not throttled).
    #[must_use]
    pub fn after(self, result: Outcome) -> Derived {
        match (self, result) {
            (Derive::Decrypt, Ok(KmsOutput::Decrypted { .. })) => Derived::Next(Derive::Generate),
            (_, Ok(KmsOutput::Ciphertext(c))) => Derived::Made(c),
            (step, Err(error)) => {
                let source_refused = step.reads_source().then_some(error.exception);
                Derived::Failed { error, source_refused }
            }
            (step, result) => unreachable!("unexpected KMS answer {result:?} to {step:?}"),
        }
    }

    /// The call EBS makes for this step, for a resource under `key` with encryption context
    /// `context`; `source` is the source's data key (unused by [`Derive::Generate`]).
    #[must_use]
    pub fn request(self, source: Option<Ciphertext>, key: KeyIdx, context: ContextId) -> KmsRequest {
        let op = match (self, source) {
            (Derive::ReEncrypt, Some(c)) => KmsOp::ReEncrypt {
                contexts: Some(Box::new(ReEncryptContexts { source: c.context, destination: Some(context) })),
                ciphertext: CiphertextRef::Blob(c),
                destination: KeyRef::Id(key),
                name: None,
            },
            (Derive::Decrypt, Some(c)) => {
                KmsOp::Decrypt { context: c.context, ciphertext: CiphertextRef::Blob(c), key: None }
            }
            (Derive::Generate, _) => {
                KmsOp::GenerateDataKeyWithoutPlaintext { key: KeyRef::Id(key), context: Some(context), name: None }
            }
            (step, None) => unreachable!("{step:?} reads a source's data key, and none was given"),
        };
        KmsRequest { caller: Caller::UserVia(Service::Ebs), op: Box::new(op) }
    }
}

/// A restore or copy after one step: the next step, the new resource's data key, or a refusal
/// (`source_refused`: the exception, when reading the source was refused).
#[derive(Debug)]
pub enum Derived {
    Next(Derive),
    Made(Ciphertext),
    Failed { error: KmsError, source_refused: Option<KmsException> },
}

/// Messages a snapshot handles.
#[derive(Clone, Copy, Debug)]
pub enum SnapshotMsg {
    /// CreateSnapshot or CopySnapshot, as the snapshot is made.
    Create,
    Delete,
    /// The copy's KMS call is due, after its latency or a throttled call's backoff.
    CallDue {
        tag: u32,
    },
    /// A call: its data key, if it exists (a volume's CreateVolume or a copy asks; `started`:
    /// for a restore or copy already under way, which reads it even if it was deleted since).
    DataKey {
        started: bool,
    },
    /// A call: `image`, which references it, was registered or deregistered.
    Image {
        image: ActorId,
        registered: bool,
    },
    /// A call: a restore or copy read it (`refused`: KMS's exception when reading failed).
    Used {
        by: ActorId,
        what: Use,
        refused: Option<KmsException>,
    },
}

/// Facts a snapshot records.
#[derive(Clone, Debug, PartialEq)]
pub enum SnapshotObs {
    /// Made: by CreateSnapshot, or by CopySnapshot (`copy`).
    Created {
        copy: bool,
    },
    /// KMS refused a copy's call: no copy is made (D20).
    CreateFailed {
        error: KmsError,
    },
    /// CreateSnapshot, CopySnapshot or DeleteSnapshot refused by EC2.
    Refused {
        action: &'static str,
        error: Ec2Error,
    },
    Deleted,
    /// A restore or copy read it (the good use of a snapshot).
    Used {
        by: ActorId,
        what: Use,
    },
    /// A restore or copy could not read it: KMS refused its data key.
    UseFailed {
        by: ActorId,
        what: Use,
        exception: KmsException,
    },
}

/// An EBS snapshot encrypted under a KMS key.
#[derive(Debug)]
pub struct Snapshot {
    /// Its own `aws:ebs:id`: the context of a copy's data key.
    context: ContextId,
    kms: ActorId,
    key: KeyIdx,
    source: Source,
    latency: Arc<Dist>,
    state: Option<SnapshotState>,
    data_key: Option<Ciphertext>,
    /// A copy's outstanding KMS call.
    call: Outstanding<Derive>,
    /// The registered images that reference it: it cannot be deleted while there are any.
    images: Vec<ActorId>,
}

impl Snapshot {
    #[must_use]
    pub fn new(context: ContextId, kms: ActorId, key: KeyIdx, source: Source, latency: Arc<Dist>) -> Self {
        Snapshot {
            context,
            kms,
            key,
            source,
            latency,
            state: None,
            data_key: None,
            call: Outstanding::default(),
            images: Vec::new(),
        }
    }

    #[must_use]
    pub fn state(&self) -> Option<SnapshotState> {
        self.state
    }

    /// The key material its data key was encrypted with, once it exists.
    #[must_use]
    pub fn data_key_material(&self) -> Option<super::kms::MaterialId> {
        self.data_key.as_ref().and_then(|c| c.material)
    }

    /// Its data key while it exists (a deleted snapshot can be neither restored nor copied).
    #[must_use]
    pub fn data_key(&self) -> Option<Ciphertext> {
        match self.state {
            Some(SnapshotState::Completed) => self.data_key.clone(),
            _ => None,
        }
    }

    pub fn handle(&mut self, msg: SnapshotMsg, ctx: &mut WorldCtx<'_>) {
        match msg {
            SnapshotMsg::Create => self.on_create(ctx),
            SnapshotMsg::Delete => {
                let error = match (self.state, self.images.first()) {
                    (Some(SnapshotState::Completed), None) => {
                        self.state = Some(SnapshotState::Deleted);
                        ctx.record(Obs::Snapshot(SnapshotObs::Deleted));
                        return;
                    }
                    // [EBS-SNAP-DEL]: not while a registered image uses it.
                    (Some(SnapshotState::Completed), Some(&image)) => Ec2Error {
                        code: "InvalidSnapshot.InUse",
                        message: Ec2Message::Text(format!(
                            "The snapshot {} is currently in use by {}",
                            ctx.my_name(),
                            ctx.name_of(image)
                        )),
                    },
                    _ => not_found(ctx.my_name()),
                };
                ctx.record(Obs::Snapshot(SnapshotObs::Refused { action: "DeleteSnapshot", error }));
            }
            SnapshotMsg::CallDue { tag } => {
                if self.call.due(tag) {
                    self.make_call(ctx);
                }
            }
            SnapshotMsg::DataKey { .. } | SnapshotMsg::Image { .. } | SnapshotMsg::Used { .. } => {
                unreachable!("{msg:?} is a call, answered by Snapshot::answer")
            }
        }
    }

    /// The calls a snapshot answers.
    pub fn answer(&mut self, msg: SnapshotMsg, ctx: &mut WorldCtx<'_>) -> Reply {
        match msg {
            SnapshotMsg::DataKey { started: false } => Reply::DataKey(self.data_key()),
            SnapshotMsg::DataKey { started: true } => Reply::DataKey(self.data_key.clone()),
            SnapshotMsg::Image { image, registered } => {
                self.images.retain(|i| *i != image);
                if registered {
                    self.images.push(image);
                }
                Reply::Done
            }
            SnapshotMsg::Used { by, what, refused } => {
                let obs = match refused {
                    None => SnapshotObs::Used { by, what },
                    Some(exception) => SnapshotObs::UseFailed { by, what, exception },
                };
                ctx.record(Obs::Snapshot(obs));
                Reply::Done
            }
            other => unreachable!("{other:?} is not a call"),
        }
    }

    fn on_create(&mut self, ctx: &mut WorldCtx<'_>) {
        let (action, copy) = match self.source {
            Source::Volume(_) => ("CreateSnapshot", false),
            Source::Copy(_) => ("CopySnapshot", true),
        };
        // A deleted snapshot's name may be made again, as a new snapshot (A17).
        if matches!(self.state, Some(SnapshotState::Pending | SnapshotState::Completed)) {
            let error = Ec2Error {
                code: "InvalidSnapshot.Duplicate",
                message: Ec2Message::Text(format!("The snapshot '{}' already exists.", ctx.my_name())),
            };
            ctx.record(Obs::Snapshot(SnapshotObs::Refused { action, error }));
            return;
        }
        match self.source {
            Source::Volume(volume) => match data_key_of(volume, Msg::Volume(VolumeMsg::DataKey), ctx) {
                Some(c) => {
                    // D7: the volume's data key, as it is; no KMS call.
                    self.data_key = Some(c);
                    self.state = Some(SnapshotState::Completed);
                    ctx.record(Obs::Snapshot(SnapshotObs::Created { copy }));
                }
                None => {
                    let error = Ec2Error {
                        code: "InvalidVolume.NotFound",
                        message: Ec2Message::Text(format!("The volume '{}' does not exist.", ctx.name_of(volume))),
                    };
                    ctx.record(Obs::Snapshot(SnapshotObs::Refused { action, error }));
                }
            },
            Source::Copy(from) => {
                match data_key_of(from, Msg::Snapshot(SnapshotMsg::DataKey { started: false }), ctx) {
                    Some(c) => {
                        self.state = Some(SnapshotState::Pending);
                        self.send_call(Derive::first(&c, self.key), 0, SimDuration::ZERO, ctx);
                    }
                    None => {
                        let error = not_found(ctx.name_of(from));
                        ctx.record(Obs::Snapshot(SnapshotObs::Refused { action, error }));
                    }
                }
            }
        }
    }

    fn send_call(&mut self, step: Derive, attempt: u16, wait: SimDuration, ctx: &mut WorldCtx<'_>) {
        match self.call.start(step, attempt, wait, &self.latency, ctx) {
            None => self.make_call(ctx),
            Some((tag, after)) => {
                let me = ctx.me();
                ctx.send(me, Msg::Snapshot(SnapshotMsg::CallDue { tag }), after);
            }
        }
    }

    fn make_call(&mut self, ctx: &mut WorldCtx<'_>) {
        let Some(step) = self.call.current() else { return };
        let Source::Copy(from) = self.source else { unreachable!("only a copy calls KMS") };
        let source = if step.reads_source() { source_key(from, ctx) } else { None };
        let request = step.request(source, self.key, self.context);
        let result = match ctx.call(self.kms, Msg::Kms(KmsMsg::Request(request))) {
            Reply::Kms(result) => result,
            other => unreachable!("KMS answers with Kms, not {other:?}"),
        };
        self.on_kms_result(from, step, result, ctx);
    }

    fn on_kms_result(&mut self, from: ActorId, step: Derive, result: Outcome, ctx: &mut WorldCtx<'_>) {
        if let Some((attempt, wait)) = self.call.answered(&result, ctx) {
            self.send_call(step, attempt, wait, ctx);
            return;
        }
        let me = ctx.me();
        match step.after(result) {
            Derived::Next(next) => self.send_call(next, 0, SimDuration::ZERO, ctx),
            Derived::Made(c) => {
                self.data_key = Some(c);
                self.state = Some(SnapshotState::Completed);
                ctx.record(Obs::Snapshot(SnapshotObs::Created { copy: true }));
                tell_source(from, me, Use::Copy, None, ctx);
            }
            Derived::Failed { error, source_refused } => {
                self.state = None;
                ctx.record(Obs::Snapshot(SnapshotObs::CreateFailed { error }));
                if source_refused.is_some() {
                    tell_source(from, me, Use::Copy, source_refused, ctx);
                }
            }
        }
    }
}

/// The data key a volume or snapshot actor holds, asked by a call (`msg`, its kind's).
pub(super) fn data_key_of(actor: ActorId, msg: Msg, ctx: &mut WorldCtx<'_>) -> Option<Ciphertext> {
    match ctx.call(actor, msg) {
        Reply::DataKey(c) => c,
        other => unreachable!("a data key is answered with DataKey, not {other:?}"),
    }
}

/// A source snapshot's data key, asked again when a step is made (its latency may have passed).
#[must_use]
pub(super) fn source_key(from: ActorId, ctx: &mut WorldCtx<'_>) -> Option<Ciphertext> {
    data_key_of(from, Msg::Snapshot(SnapshotMsg::DataKey { started: true }), ctx)
}

/// Tells the source snapshot `from` how `me`'s restore or copy read it.
pub(super) fn tell_source(
    from: ActorId,
    me: ActorId,
    what: Use,
    refused: Option<KmsException>,
    ctx: &mut WorldCtx<'_>,
) {
    ctx.call(from, Msg::Snapshot(SnapshotMsg::Used { by: me, what, refused }));
}

/// EC2's refusal of a snapshot that does not exist (not created yet, or deleted).
#[must_use]
pub fn not_found(name: &str) -> Ec2Error {
    Ec2Error {
        code: "InvalidSnapshot.NotFound",
        message: Ec2Message::Text(format!("The snapshot '{name}' does not exist.")),
    }
}
