//! A deterministic discrete-event engine, generic over a closed set of actors.
//!
//! The engine knows nothing of KMS or AWS. It owns the actors, a queue of messages ordered by
//! (time, scheduling order), one ChaCha stream per actor, and the record counter. Actors react to
//! messages through a [`Ctx`], which offers a small set of verbs: [`Ctx::now`], [`Ctx::rng`],
//! [`Ctx::send`], [`Ctx::call`], [`Ctx::cancel`] and [`Ctx::record`]. Records go to a [`Sink`],
//! which observes the run and cannot change it.
//!
//! A *call* is a synchronous request: the callee answers within the caller's handling, in the
//! same instant, before anything queued (as a service waits for another's API to answer). It
//! costs no trip through the queue, which is most of what a message costs; latency, where there
//! is some, is a message the caller sends itself before calling.
//!
//! Determinism contract: for the same actors, inputs and seed, the sequence of records is
//! identical on every machine. Messages at the same instant are delivered in two lanes: first
//! those sent with [`Ctx::send_first`], then all others: the run's [`Inputs`] due then, in their
//! order, then messages [`Simulation::schedule`]d and what actors sent, in the order they were
//! scheduled. (Inputs come as if scheduled before anything else; they wait in their source, not
//! in the queue, until their instant.) Every record names its [`Cause`], so any outcome can be
//! traced back to an input.

mod prefetch;
mod queue;
mod stream;
pub mod time;

use std::collections::BTreeSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

pub use prefetch::prefetch;
use queue::{Lane, Queue};
pub use stream::ActorRng;
use stream::{Block, Key};
pub use time::{SimDuration, SimTime};

/// Index of an actor in its simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActorId(pub u32);

impl ActorId {
    #[must_use]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Identifies a record: its position in the run's sequence of records, from 0.
pub type RecordId = u64;

/// Why something happened: the record that led to it, or an input given to the run from outside
/// (in kmsim, a timeline action, by its index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    Input(u32),
    Record(RecordId),
}

/// A handle on a scheduled message, for [`Ctx::cancel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Scheduled(u64);

/// A fact an actor recorded, with when, who and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Record<O> {
    pub id: RecordId,
    pub at: SimTime,
    pub actor: ActorId,
    /// What led to this record: the record current when the message being handled was sent.
    pub cause: Cause,
    /// An earlier record that explains the outcome (for instance the state change that made a
    /// call fail), when it differs from the cause.
    pub reason: Option<RecordId>,
    pub obs: O,
}

/// Receives every record of a run, in order. Sinks observe; they cannot change the run.
pub trait Sink<O> {
    fn record(&mut self, rec: Record<O>);

    /// `actor` will likely handle a message soon: a sink that keeps state per actor may start
    /// loading it (see [`prefetch`]). A hint only.
    fn prepare(&self, actor: ActorId) {
        let _ = actor;
    }
}

impl<O> Sink<O> for Vec<Record<O>> {
    fn record(&mut self, rec: Record<O>) {
        self.push(rec);
    }
}

/// A sink that drops every record.
pub struct NullSink;

impl<O> Sink<O> for NullSink {
    fn record(&mut self, _rec: Record<O>) {}
}

/// A participant in the simulation. An actor holds only domain state; the engine lends it a
/// [`Ctx`] for the duration of each message.
pub trait Actor: Sized {
    type Msg;
    type Obs;
    /// What an in-instant call returns (see [`Ctx::call`]).
    type Reply;
    /// Handles a message from the queue.
    fn handle(&mut self, msg: Self::Msg, ctx: &mut Ctx<'_, Self>);
    /// Answers a call ([`Ctx::call`]), at once, within the caller's handling. It may record and
    /// send, but not call in turn.
    fn answer(&mut self, msg: Self::Msg, ctx: &mut Ctx<'_, Self>) -> Self::Reply;
}

/// What whoever built the actors knows of their next steps, for the run loop's look-ahead
/// ([`Simulation::run_with`]). Hints only: they change nothing but speed, and keep the cache
/// machinery out of the actors' own interface.
pub trait Hints<A> {
    /// The actors `actor` will likely call when it next handles a message, if that can be told,
    /// each with a note for [`Hints::prepare`] (for a callee that is surely in the cache already,
    /// such as a single service). The engine starts loading them while an earlier message is
    /// handled.
    fn likely_calls(&self, actor: &A) -> [Option<(ActorId, Option<u32>)>; 2] {
        let _ = actor;
        [None, None]
    }

    /// Starts loading what `callee` will read answering a call described by `note`, with
    /// [`prefetch`].
    fn prepare(&self, callee: &A, note: u32) {
        let _ = (callee, note);
    }
}

/// No hints: the look-ahead loads the next messages and their actors only.
pub struct NoHints;

impl<A> Hints<A> for NoHints {}

/// Messages from outside the simulation, in order of time, taken by the run as their instants
/// come: each waits in its source, not in the queue, where a big estate's inputs at 0s would each
/// hold a line of the queue's slab until taken.
pub trait Inputs<M> {
    /// When the next input is due: never before an input taken earlier.
    fn next_at(&self) -> Option<SimTime>;
    /// Takes the next input: to whom, what, and why (its [`Cause::Input`]).
    fn take(&mut self) -> Option<(ActorId, M, Cause)>;
}

/// No inputs but those [`Simulation::schedule`]d.
pub struct NoInputs;

impl<M> Inputs<M> for NoInputs {
    fn next_at(&self) -> Option<SimTime> {
        None
    }

    fn take(&mut self) -> Option<(ActorId, M, Cause)> {
        None
    }
}

struct Delivery<M> {
    msg: M,
    cause: Cause,
}

/// Per-actor randomness: the actor's stream number, its place in the stream and the block it
/// is reading, inline beside the actor: a draw reads memory the actor's handling just touched.
struct Stream {
    key: u64,
    block: Block,
}

/// An actor and its stream, side by side: a call borrows both. Aligned to cache lines, so that
/// an actor of 80 bytes and its stream (48) take exactly two, never three.
#[repr(C, align(64))]
struct Slot<A> {
    actor: A,
    stream: Stream,
}

/// The bytes an actor's slot takes, its stream's included: what the actors' own size budgets
/// are for.
#[must_use]
pub const fn slot_bytes<A: Actor>() -> usize {
    std::mem::size_of::<Slot<A>>()
}

/// The actors before and after the one handling a message.
type Peers<'a, A> = (&'a mut [Slot<A>], &'a mut [Slot<A>]);

/// The verbs an actor may use while it handles one message.
pub struct Ctx<'a, A: Actor> {
    now: SimTime,
    me: ActorId,
    cause: Cause,
    /// The actor whose call this handling answers, if it is one.
    caller: Option<ActorId>,
    chacha: &'a Key,
    stream: &'a mut Stream,
    queue: &'a mut Queue<Delivery<A::Msg>>,
    cancelled: &'a mut BTreeSet<u64>,
    next_record: &'a mut RecordId,
    sink: &'a mut dyn Sink<A::Obs>,
    names: &'a [Arc<str>],
    /// The other actors (those before `me`, those after), for calls; `None` within a call.
    peers: Option<Peers<'a, A>>,
}

impl<A: Actor> Ctx<'_, A> {
    /// The current simulated instant.
    #[must_use]
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// The actor handling the message.
    #[must_use]
    pub fn me(&self) -> ActorId {
        self.me
    }

    /// The name of the actor handling the message.
    #[must_use]
    pub fn my_name(&self) -> &str {
        &self.names[self.me.index()]
    }

    /// The name of another actor (for the words of a refusal that names it).
    #[must_use]
    pub fn name_of(&self, id: ActorId) -> &str {
        &self.names[id.index()]
    }

    /// The actor whose [`Ctx::call`] this handling answers; `None` for a delivered message.
    #[must_use]
    pub fn caller(&self) -> Option<ActorId> {
        self.caller
    }

    /// What the next record or message will name as its cause.
    #[must_use]
    pub fn cause(&self) -> Cause {
        self.cause
    }

    /// This actor's own random stream. Draws by one actor never shift the draws of another.
    pub fn rng(&mut self) -> ActorRng<'_> {
        ActorRng { key: self.chacha, stream: self.stream.key, block: &mut self.stream.block }
    }

    /// Calls `to` at once: it answers `msg` within this handling, in this instant, before
    /// anything else happens (a synchronous request, as an AWS service calling another is). What
    /// it records names the current cause, and its last record becomes the caller's cause.
    ///
    /// # Panics
    /// Within a call (calls do not nest), or to the caller itself: both are bugs in an actor.
    pub fn call(&mut self, to: ActorId, msg: A::Msg) -> A::Reply {
        let me = self.me.index();
        let (before, after) = self.peers.as_mut().expect("an actor answering a call cannot call");
        let slot = match to.index().cmp(&me) {
            std::cmp::Ordering::Less => &mut before[to.index()],
            std::cmp::Ordering::Greater => &mut after[to.index() - me - 1],
            std::cmp::Ordering::Equal => panic!("an actor cannot call itself"),
        };
        let mut ctx = Ctx {
            now: self.now,
            me: to,
            cause: self.cause,
            caller: Some(self.me),
            chacha: self.chacha,
            stream: &mut slot.stream,
            queue: &mut *self.queue,
            cancelled: &mut *self.cancelled,
            next_record: &mut *self.next_record,
            sink: &mut *self.sink,
            names: self.names,
            peers: None,
        };
        let reply = slot.actor.answer(msg, &mut ctx);
        self.cause = ctx.cause;
        reply
    }

    /// Delivers `msg` to `to` after `after` (zero: later in this same instant, after everything
    /// already scheduled for it). The message carries the current cause.
    pub fn send(&mut self, to: ActorId, msg: A::Msg, after: SimDuration) -> Scheduled {
        let at = self.now + after;
        Scheduled(self.queue.push(at, to.0, Delivery { msg, cause: self.cause }))
    }

    /// Like [`Ctx::send`], but in the first lane of its instant: delivered before every message
    /// of the second lane due then, whoever scheduled it and whenever. For a service's own timers,
    /// which take effect before anything else that happens at their instant. With no delay it
    /// is an ordinary send: the present instant's second lane is already being delivered.
    pub fn send_first(&mut self, to: ActorId, msg: A::Msg, after: SimDuration) -> Scheduled {
        // Said here, not left to the queue: while an input is handled, the queue's present may
        // still be an earlier instant, and it would take a zero delay for a later one.
        if after == SimDuration::ZERO {
            return self.send(to, msg, after);
        }
        let at = self.now + after;
        Scheduled(self.queue.push_in(at, Lane::First, to.0, Delivery { msg, cause: self.cause }))
    }

    /// Cancels a message that has not been delivered yet; cancelling twice or too late is harmless.
    pub fn cancel(&mut self, handle: Scheduled) {
        self.cancelled.insert(handle.0);
    }

    /// Records a fact. It becomes the cause of whatever this handler records or sends next.
    pub fn record(&mut self, obs: A::Obs) -> RecordId {
        self.record_because(obs, None)
    }

    /// Records a fact together with an earlier record that explains it.
    pub fn record_because(&mut self, obs: A::Obs, reason: Option<RecordId>) -> RecordId {
        let id = *self.next_record;
        *self.next_record += 1;
        self.sink.record(Record { id, at: self.now, actor: self.me, cause: self.cause, reason, obs });
        self.cause = Cause::Record(id);
        id
    }
}

/// When a run stops.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Messages due after this instant are not delivered.
    pub horizon: SimTime,
    /// Stop with [`EngineError::EventLimit`] after delivering this many messages.
    pub max_events: Option<u64>,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunStats {
    /// Messages delivered.
    pub events: u64,
    /// Records made.
    pub records: u64,
    /// The instant of the last delivered message.
    pub last_event_at: SimTime,
    /// True if messages were still pending past the horizon.
    pub stopped_at_horizon: bool,
}

/// A run that could not complete. Not fatal to the process: the records made so far stand.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    #[error(
        "stopped after {limit} events at {at} (next event for actor {actor}); \
         the run looks runaway: raise --max-events if this is expected"
    )]
    EventLimit { limit: u64, at: SimTime, actor: String },
}

/// How many entries ahead the run loop looks (see [`Simulation::prefetch_upcoming`]).
const AHEAD: usize = 3;
/// Actors this big in all stay in the last-level cache (8 to 32 MiB and more today), where the
/// full look-ahead costs more than it saves: with only the next payload prefetched, fleet-10k
/// (3.8 MB of actors) ran 4% and a fleet of 20k (7.7 MB) 8% faster, a fleet of 30k (11.5 MB)
/// 30% slower.
pub const LOOK_AHEAD_ABOVE_BYTES: usize = 8 << 20;

/// Whether the run loop prefetches what the next events will touch. A matter of speed only:
/// the run is the same either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LookAhead {
    /// When the actors outgrow the last-level cache ([`LOOK_AHEAD_ABOVE_BYTES`]); below, looking
    /// ahead costs what it saves, or more.
    #[default]
    Auto,
    Always,
    Never,
}

/// Actors, their names, the pending messages and the clock.
pub struct Simulation<A: Actor> {
    slots: Vec<Slot<A>>,
    /// Shared with whoever built the actors: a big estate does not hold its names twice.
    names: Vec<Arc<str>>,
    queue: Queue<Delivery<A::Msg>>,
    cancelled: BTreeSet<u64>,
    now: SimTime,
    seed: u64,
    chacha: Key,
    next_record: RecordId,
    events: u64,
    look_ahead: LookAhead,
}

impl<A: Actor> Simulation<A> {
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Simulation {
            slots: Vec::new(),
            names: Vec::new(),
            queue: Queue::new(),
            cancelled: BTreeSet::new(),
            now: SimTime::ZERO,
            seed,
            chacha: Key::from_seed(seed),
            next_record: 0,
            events: 0,
            look_ahead: LookAhead::Auto,
        }
    }

    /// Makes room for `more` actors at once (an estate of known size grows its slots once, with
    /// no spare capacity).
    pub fn reserve(&mut self, more: usize) {
        self.slots.reserve_exact(more);
        self.names.reserve_exact(more);
    }

    /// Adds an actor. Its random stream is derived from its name, so adding other actors never
    /// changes its draws.
    pub fn add_actor(&mut self, name: impl Into<Arc<str>>, actor: A) -> ActorId {
        let name = name.into();
        let id = ActorId(u32::try_from(self.slots.len()).expect("more than 2^32 actors"));
        self.slots.push(Slot { actor, stream: Stream { key: stream_key(&name), block: Block::new() } });
        self.names.push(name);
        id
    }

    #[must_use]
    pub fn actor(&self, id: ActorId) -> &A {
        &self.slots[id.index()].actor
    }

    #[must_use]
    pub fn name(&self, id: ActorId) -> &str {
        &self.names[id.index()]
    }

    #[must_use]
    pub fn names(&self) -> &[Arc<str>] {
        &self.names
    }

    #[must_use]
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Sets when the run loop looks ahead (tests use it to show that it changes nothing).
    pub fn set_look_ahead(&mut self, look_ahead: LookAhead) {
        self.look_ahead = look_ahead;
    }

    /// Schedules a message from outside the simulation (a run's [`Inputs`] come before it at
    /// its instant, as if scheduled earlier).
    pub fn schedule(&mut self, at: SimTime, to: ActorId, msg: A::Msg, cause: Cause) {
        self.queue.push(at, to.0, Delivery { msg, cause });
    }

    /// Delivers messages in (time, scheduling order) until none is left or the next is past the
    /// horizon. The clock ends at the horizon in the latter case.
    pub fn run(&mut self, limits: Limits, sink: &mut dyn Sink<A::Obs>) -> Result<RunStats, EngineError> {
        self.run_with(limits, &mut NoInputs, sink, &NoHints)
    }

    /// [`Simulation::run`] with `inputs` from outside, looking ahead with `hints` of what the
    /// actors will call. Inputs past the horizon stay in their source, for a later run.
    pub fn run_with<I: Inputs<A::Msg>, H: Hints<A>>(
        &mut self,
        limits: Limits,
        inputs: &mut I,
        sink: &mut dyn Sink<A::Obs>,
        hints: &H,
    ) -> Result<RunStats, EngineError> {
        let first_record = self.next_record;
        let mut last_event_at = self.now;
        let look_ahead = match self.look_ahead {
            LookAhead::Auto => self.slots.len() * std::mem::size_of::<Slot<A>>() > LOOK_AHEAD_ABOVE_BYTES,
            LookAhead::Always => true,
            LookAhead::Never => false,
        };
        // The next input due by the horizon: known until it is taken.
        let due = |inputs: &I| inputs.next_at().filter(|&at| at <= limits.horizon);
        let mut input_at = due(inputs);
        loop {
            let next = match input_at {
                None => self.queue.pop_until(limits.horizon),
                Some(at) => self.queue.pop_before_input(at),
            };
            let (at, to, Delivery { msg, cause }) = match next {
                None => {
                    let Some(at) = input_at else { break };
                    debug_assert!(at >= self.now, "inputs come in order of time, none in the past");
                    let (to, msg, cause) = inputs.take().expect("an input is due");
                    input_at = due(inputs);
                    (at, to, Delivery { msg, cause })
                }
                Some(entry) => {
                    if look_ahead {
                        self.prefetch_upcoming(&*sink, hints);
                    } else if let [Some((line, _))] = self.queue.upcoming::<1>() {
                        // Even a small estate's payload line has left the core's own cache by
                        // the time it is due (fleet-10k 5%, fleet-1k 3% faster for this one
                        // prefetch).
                        prefetch(line);
                    }
                    if !self.cancelled.is_empty() && self.cancelled.remove(&entry.seq) {
                        continue;
                    }
                    // The recipient rides in the queue's key: its slot can load while the
                    // payload's does.
                    (entry.at, ActorId(entry.hint), entry.payload)
                }
            };
            if limits.max_events.is_some_and(|max| self.events >= max) {
                return Err(EngineError::EventLimit {
                    limit: self.events,
                    at,
                    actor: self.names[to.index()].to_string(),
                });
            }
            self.events += 1;
            self.now = at;
            last_event_at = at;
            let (before, rest) = self.slots.split_at_mut(to.index());
            let (slot, after) = rest.split_first_mut().expect("messages go to actors that exist");
            let mut ctx = Ctx {
                now: at,
                me: to,
                cause,
                caller: None,
                chacha: &self.chacha,
                stream: &mut slot.stream,
                queue: &mut self.queue,
                cancelled: &mut self.cancelled,
                next_record: &mut self.next_record,
                sink,
                names: &self.names,
                peers: Some((before, after)),
            };
            let actor = &mut slot.actor;
            // A panic in an actor is a bug; say where in the run it happened so it can be replayed.
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| actor.handle(msg, &mut ctx))) {
                self.actor_panicked(to, at, &*payload);
            }
        }
        let stopped_at_horizon = !self.queue.is_empty() || inputs.next_at().is_some();
        if stopped_at_horizon {
            self.now = limits.horizon;
        }
        Ok(RunStats {
            events: self.events,
            records: self.next_record - first_record,
            last_event_at,
            stopped_at_horizon,
        })
    }

    /// Reports a panic in an actor's handling, with what is needed to replay it.
    #[cold]
    #[inline(never)]
    fn actor_panicked(&self, to: ActorId, at: SimTime, payload: &(dyn std::any::Any + Send)) -> ! {
        let what = payload
            .downcast_ref::<&str>()
            .map(ToString::to_string)
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        panic!("bug: actor {} panicked at {} (seed {}): {what}", self.names[to.index()], at, self.seed);
    }

    /// Starts loading what the next events will touch, while this one is handled: in a big
    /// estate it has gone cold since they were scheduled. The messages and actors of the next
    /// few entries; the actors the next one will call, which only that actor (loaded by now)
    /// knows; and what the sink keeps for the farthest one. Out of line: the run loop keeps
    /// more of its own values in registers (2% at fleet-10k).
    #[inline(never)]
    fn prefetch_upcoming<H: Hints<A>>(&self, sink: &dyn Sink<A::Obs>, hints: &H) {
        let upcoming = self.queue.upcoming::<AHEAD>();
        for (line, to) in upcoming.iter().rev().flatten() {
            prefetch(*line);
            if let Some(slot) = self.slots.get(*to as usize) {
                prefetch(slot);
            }
        }
        // Sinks hear of the farthest entry in view only (a call each time): the nearer ones
        // were usually the farthest a moment ago.
        if let Some((_, to)) = upcoming.iter().flatten().last() {
            sink.prepare(ActorId(*to));
        }
        if let Some((_, to)) = upcoming[0]
            && let Some(next) = self.slots.get(to as usize)
        {
            for (peer, note) in hints.likely_calls(&next.actor).into_iter().flatten() {
                if let Some(slot) = self.slots.get(peer.index()) {
                    // Callees seldom draw from their streams (an instance never does).
                    prefetch(&slot.actor);
                    if let Some(note) = note {
                        hints.prepare(&slot.actor, note);
                    }
                }
            }
        }
    }

    /// Messages still waiting, cancelled ones included.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.queue.len()
    }
}

/// FNV-1a: a stable hash of a name, used as a ChaCha stream number (per actor, per generated ID).
#[must_use]
pub fn stream_key(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests;
