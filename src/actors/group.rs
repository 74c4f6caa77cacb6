//! Auto scaling groups: a launch template (an image, the key of its volumes), a desired capacity
//! kept by launching into the group's places, health-check replacement and a cooldown.
//!
//! ```text
//!   place: empty ──launch (RunInstances from the image)──> launching ──ok──> in service
//!                                                             └──failed (D6)──> waiting ──cooldown──> launching
//!   in service ──health check (replace_every)──> terminated, waiting ──a minute──> launching
//!   SetDesiredCapacity: launches into empty places, or terminates the last ones in service
//! ```
//!
//! While the key cannot read the image's snapshots, the instances in service keep running on
//! their cached keys, and every launch fails: the capacity drains as health checks replace them
//! (A13). The group launches only; what happens to an instance otherwise (a user's stop or
//! termination) is not a health check here.

use crate::engine::{ActorId, SimDuration};

use super::dist::Dist;
use super::ebs::VolumeMsg;
use super::ec2::{ImageLaunch, InstanceAction, InstanceMsg, REPLACEMENT_DELAY};
use super::{Msg, Obs, WorldCtx};

/// Messages a group handles.
#[derive(Clone, Copy, Debug)]
pub enum GroupMsg {
    /// SetDesiredCapacity (and the group's start, at its declared capacity).
    SetDesired(u32),
    /// Launch into `place` again, unless it changed since (`generation`).
    Fill { place: u32, generation: u32 },
    /// An instance's launch ended: running (`ok`), or not; `refused`: EC2 refused it at once
    /// (the image not registered), KMS had no part in it.
    LaunchEnded { instance: ActorId, ok: bool, refused: bool },
    /// A health check replaces the instance in `place`, unless it changed since.
    HealthCheck { place: u32, generation: u32 },
    /// TerminateInstanceInAutoScalingGroup: replaces the instance in the place of `instance`,
    /// if one is in service there.
    Replace { instance: ActorId },
}

/// Facts a group records.
#[derive(Clone, Debug, PartialEq)]
pub enum GroupObs {
    /// The user set the desired capacity (the first time: the group's creation).
    DesiredSet {
        desired: u32,
    },
    /// Instances in service, and the desired capacity, from now on.
    Capacity {
        in_service: u32,
        desired: u32,
    },
    Launched {
        instance: ActorId,
    },
    /// A launch failed: ended terminated because a data key could not be had (`by_kms`, D6), or
    /// refused by EC2. The group launches again after its cooldown.
    LaunchFailed {
        instance: ActorId,
        by_kms: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Empty,
    Launching,
    InService,
    /// A launch again is scheduled.
    Waiting,
}

/// Where the group launches an instance, and what each launch there has.
#[derive(Debug)]
pub struct PlaceDecl {
    pub instance: ActorId,
    /// Each block-device mapping: the volume the launch makes, and its snapshot.
    pub volumes: Vec<(ActorId, ActorId)>,
    /// A fleet's volumes of this place, told when an instance is in service there (A14).
    pub kept: Vec<ActorId>,
}

#[derive(Debug)]
struct Place {
    decl: PlaceDecl,
    status: Status,
    generation: u32,
}

/// An auto scaling group.
#[derive(Debug)]
pub struct Group {
    image: ActorId,
    places: Vec<Place>,
    /// The actors between one place's instance and the next's: 1, or a fleet's stride.
    stride: u32,
    desired: u32,
    replace_every: Option<Dist>,
    cooldown: SimDuration,
    /// What the last Capacity record said.
    shown: Option<(u32, u32)>,
    /// Places in service, kept as statuses change (a group has thousands of places).
    serving: u32,
}

impl Group {
    /// `places`: each instance the group launches into, evenly spaced among the actors.
    #[must_use]
    pub fn new(image: ActorId, places: Vec<PlaceDecl>, replace_every: Option<Dist>, cooldown: SimDuration) -> Self {
        let stride = match &places[..] {
            [a, b, ..] => b.instance.0 - a.instance.0,
            _ => 1,
        };
        debug_assert!(
            places.windows(2).all(|w| w[1].instance.0 == w[0].instance.0 + stride),
            "a group's places are evenly spaced actors"
        );
        let places =
            places.into_iter().map(|decl| Place { decl, status: Status::Empty, generation: 0 }).collect::<Vec<_>>();
        Group { image, places, stride, desired: 0, replace_every, cooldown, shown: None, serving: 0 }
    }

    /// Instances in service now.
    #[must_use]
    pub fn in_service(&self) -> u32 {
        self.serving
    }

    /// Place `i` is now `status`, and its pending timers stale.
    fn set(&mut self, i: usize, status: Status) {
        let p = &mut self.places[i];
        if p.status == Status::InService {
            self.serving -= 1;
        }
        if status == Status::InService {
            self.serving += 1;
        }
        p.status = status;
        p.generation = p.generation.wrapping_add(1);
    }

    /// The place instance actor `instance` fills: places are evenly spaced actors (checked in
    /// [`Group::new`]).
    fn place_of(&self, instance: ActorId) -> Option<usize> {
        let offset = instance.0.checked_sub(self.places.first()?.decl.instance.0)?;
        if offset % self.stride != 0 {
            return None;
        }
        let i = usize::try_from(offset / self.stride).ok()?;
        self.places.get(i).map(|_| i)
    }

    #[must_use]
    pub fn desired(&self) -> u32 {
        self.desired
    }

    pub fn handle(&mut self, msg: GroupMsg, ctx: &mut WorldCtx<'_>) {
        match msg {
            GroupMsg::SetDesired(d) => {
                self.desired = d.min(u32::try_from(self.places.len()).unwrap_or(u32::MAX));
                ctx.record(Obs::Group(GroupObs::DesiredSet { desired: self.desired }));
                self.rebalance(ctx);
            }
            GroupMsg::Fill { place, generation } => {
                let p = &self.places[place as usize];
                if p.generation == generation && p.status == Status::Waiting {
                    self.launch(place as usize, ctx);
                }
            }
            GroupMsg::Replace { instance } => {
                if let Some(i) = self.place_of(instance) {
                    self.replace(i, ctx);
                }
            }
            GroupMsg::HealthCheck { place, generation } => {
                if self.places[place as usize].generation == generation {
                    self.replace(place as usize, ctx);
                }
            }
            GroupMsg::LaunchEnded { instance, ok, refused } => {
                let Some(i) = self.place_of(instance) else { return };
                if self.places[i].status != Status::Launching {
                    return;
                }
                if ok {
                    ctx.record(Obs::Group(GroupObs::Launched { instance }));
                    self.set(i, Status::InService);
                    for &v in &self.places[i].decl.kept {
                        ctx.send(v, Msg::Volume(VolumeMsg::HomeInService), SimDuration::ZERO);
                    }
                    let generation = self.places[i].generation;
                    if let Some(d) = &self.replace_every {
                        let after = d.draw(&mut ctx.rng());
                        let me = ctx.me();
                        let place = u32::try_from(i).expect("few places");
                        ctx.send(me, Msg::Group(GroupMsg::HealthCheck { place, generation }), after);
                    }
                } else {
                    ctx.record(Obs::Group(GroupObs::LaunchFailed { instance, by_kms: !refused }));
                    self.wait(i, self.cooldown, ctx);
                }
                self.show(ctx);
            }
        }
    }

    /// The instance in service in place `i`, if any, is terminated, and a new one launched a
    /// minute later.
    fn replace(&mut self, i: usize, ctx: &mut WorldCtx<'_>) {
        let p = &self.places[i];
        if p.status == Status::InService {
            ctx.send(p.decl.instance, Msg::Instance(InstanceMsg::Do(InstanceAction::Terminate)), SimDuration::ZERO);
            self.wait(i, REPLACEMENT_DELAY, ctx);
        }
    }

    /// Launches into empty places up to the desired capacity, or terminates the last ones.
    fn rebalance(&mut self, ctx: &mut WorldCtx<'_>) {
        let wanted = |p: &Place| p.status != Status::Empty;
        let mut count = self.places.iter().filter(|p| wanted(p)).count();
        let desired = self.desired as usize;
        for i in 0..self.places.len() {
            if count >= desired {
                break;
            }
            if self.places[i].status == Status::Empty {
                self.launch(i, ctx);
                count += 1;
            }
        }
        for i in (0..self.places.len()).rev() {
            if count <= desired {
                break;
            }
            let p = &self.places[i];
            if !wanted(p) {
                continue;
            }
            if matches!(p.status, Status::InService | Status::Launching) {
                ctx.send(p.decl.instance, Msg::Instance(InstanceMsg::Do(InstanceAction::Terminate)), SimDuration::ZERO);
            }
            self.set(i, Status::Empty);
            count -= 1;
        }
        self.show(ctx);
    }

    fn launch(&mut self, i: usize, ctx: &mut WorldCtx<'_>) {
        let me = ctx.me();
        self.set(i, Status::Launching);
        let p = &self.places[i];
        let launch = ImageLaunch { image: self.image, volumes: p.decl.volumes.clone(), group: Some(me) };
        let msg = InstanceMsg::LaunchFromImage(Box::new(launch));
        ctx.send(p.decl.instance, Msg::Instance(msg), SimDuration::ZERO);
    }

    /// The place waits `after` before the group launches into it again.
    fn wait(&mut self, i: usize, after: SimDuration, ctx: &mut WorldCtx<'_>) {
        self.set(i, Status::Waiting);
        let (place, generation) = (u32::try_from(i).expect("few places"), self.places[i].generation);
        let me = ctx.me();
        ctx.send(me, Msg::Group(GroupMsg::Fill { place, generation }), after);
        self.show(ctx);
    }

    /// Records the capacity when it changed.
    fn show(&mut self, ctx: &mut WorldCtx<'_>) {
        let now = (self.in_service(), self.desired);
        if self.shown != Some(now) {
            self.shown = Some(now);
            ctx.record(Obs::Group(GroupObs::Capacity { in_service: now.0, desired: now.1 }));
        }
    }
}
