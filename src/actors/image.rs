//! AMIs: a set of snapshots an instance is launched from.
//!
//! ```text
//!   (not registered) ──RegisterImage (its snapshots exist; no KMS call, D21)──> available
//!   available ──DeregisterImage──> deregistered
//!   available ──RunInstances: each snapshot restored to a new volume, then decrypted (D19, D6)──> launched, or failed
//! ```
//!
//! An image holds no data key of its own: its snapshots do. A launch from it breaks when one of
//! them cannot be read (the launched instance ends terminated, D6), so the image is latent while
//! a snapshot's key cannot decrypt its data key, and broken at the launch that fails.

use crate::engine::ActorId;

use super::ec2::{Ec2Error, Ec2Message};
use super::snapshot::SnapshotMsg;
use super::{Msg, Obs, Reply, WorldCtx};

/// The image states kmsim uses, named as EC2 names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageState {
    Available,
    Deregistered,
}

impl ImageState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ImageState::Available => "available",
            ImageState::Deregistered => "deregistered",
        }
    }
}

/// Messages an image handles.
#[derive(Clone, Copy, Debug)]
pub enum ImageMsg {
    Register,
    Deregister,
    /// A call: whether it can be launched from (registered, not deregistered).
    Available,
    /// A call: a launch from it ended, `ok` or not.
    Launched {
        instance: ActorId,
        ok: bool,
    },
}

/// Facts an image records.
#[derive(Clone, Debug, PartialEq)]
pub enum ImageObs {
    Registered,
    Deregistered,
    /// RegisterImage or DeregisterImage refused by EC2.
    Refused {
        action: &'static str,
        error: Ec2Error,
    },
    /// An instance launched from it runs.
    Launched {
        instance: ActorId,
    },
    /// A launch from it ended terminated: a volume's data key could not be had (D6).
    LaunchFailed {
        instance: ActorId,
    },
}

/// An AMI and the snapshots of its block-device mappings.
#[derive(Debug)]
pub struct Image {
    snapshots: Vec<ActorId>,
    state: Option<ImageState>,
}

impl Image {
    #[must_use]
    pub fn new(snapshots: Vec<ActorId>) -> Self {
        Image { snapshots, state: None }
    }

    #[must_use]
    pub fn state(&self) -> Option<ImageState> {
        self.state
    }

    pub fn handle(&mut self, msg: ImageMsg, ctx: &mut WorldCtx<'_>) {
        match msg {
            ImageMsg::Register => self.register(ctx),
            ImageMsg::Deregister => {
                if self.state == Some(ImageState::Available) {
                    self.state = Some(ImageState::Deregistered);
                    self.tell_snapshots(false, ctx);
                    ctx.record(Obs::Image(ImageObs::Deregistered));
                } else {
                    let error = not_found(ctx.my_name());
                    ctx.record(Obs::Image(ImageObs::Refused { action: "DeregisterImage", error }));
                }
            }
            ImageMsg::Available | ImageMsg::Launched { .. } => {
                unreachable!("{msg:?} is a call, answered by Image::answer")
            }
        }
    }

    /// The calls an image answers.
    pub fn answer(&mut self, msg: ImageMsg, ctx: &mut WorldCtx<'_>) -> Reply {
        match msg {
            ImageMsg::Available => Reply::Available(self.state == Some(ImageState::Available)),
            ImageMsg::Launched { instance, ok } => {
                let obs = if ok { ImageObs::Launched { instance } } else { ImageObs::LaunchFailed { instance } };
                ctx.record(Obs::Image(obs));
                Reply::Done
            }
            other => unreachable!("{other:?} is not a call"),
        }
    }

    /// D21: RegisterImage needs its snapshots to exist, and calls no KMS operation.
    fn register(&mut self, ctx: &mut WorldCtx<'_>) {
        // A deregistered image's name is free again (A17).
        if self.state == Some(ImageState::Available) {
            let error = Ec2Error {
                code: "InvalidAMIName.Duplicate",
                message: Ec2Message::Text(format!("AMI name {} is already in use.", ctx.my_name())),
            };
            ctx.record(Obs::Image(ImageObs::Refused { action: "RegisterImage", error }));
            return;
        }
        for i in 0..self.snapshots.len() {
            let x = self.snapshots[i];
            let exists =
                matches!(ctx.call(x, Msg::Snapshot(SnapshotMsg::DataKey { started: false })), Reply::DataKey(Some(_)));
            if !exists {
                let error = super::snapshot::not_found(ctx.name_of(x));
                ctx.record(Obs::Image(ImageObs::Refused { action: "RegisterImage", error }));
                return;
            }
        }
        self.state = Some(ImageState::Available);
        self.tell_snapshots(true, ctx);
        ctx.record(Obs::Image(ImageObs::Registered));
    }

    /// Its snapshots learn that it uses them, or no longer does.
    fn tell_snapshots(&self, registered: bool, ctx: &mut WorldCtx<'_>) {
        let image = ctx.me();
        for &x in &self.snapshots {
            ctx.call(x, Msg::Snapshot(SnapshotMsg::Image { image, registered }));
        }
    }
}

/// The code of EC2's refusal of an image that is not registered.
pub const NOT_FOUND: &str = "InvalidAMIID.NotFound";

/// EC2's refusal of an image that is not registered.
#[must_use]
pub fn not_found(name: &str) -> Ec2Error {
    Ec2Error { code: NOT_FOUND, message: Ec2Message::Text(format!("The image id '[{name}]' does not exist")) }
}
