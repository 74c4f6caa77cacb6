//! The engine's contract, shown with a toy ping-pong actor that knows nothing of AWS.

use rand::RngExt;

use super::*;

#[derive(Debug)]
enum Msg {
    Ping {
        to: ActorId,
        left: u32,
        gap: SimDuration,
    },
    Draw,
    Timer,
    /// Call this actor, and record what it answers.
    Ask(ActorId),
    /// Call the first actor with `Ask(second)`: a nested call.
    Forward(ActorId, ActorId),
}

#[derive(Debug, Clone, PartialEq)]
enum Obs {
    Got(u32),
    Drew(u64),
    Rang,
}

struct Player;

impl Actor for Player {
    type Msg = Msg;
    type Obs = Obs;
    type Reply = u32;
    fn answer(&mut self, msg: Msg, ctx: &mut Ctx<'_, Self>) -> u32 {
        match msg {
            Msg::Ask(to) => ctx.call(to, Msg::Timer),
            _ => {
                ctx.record(Obs::Rang);
                7
            }
        }
    }
    fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_, Self>) {
        match msg {
            Msg::Ping { to, left, gap } => {
                ctx.record(Obs::Got(left));
                if left > 0 {
                    let me = ctx.me();
                    ctx.send(to, Msg::Ping { to: me, left: left - 1, gap }, gap);
                }
            }
            Msg::Draw => {
                let x = ctx.rng().random::<u64>();
                ctx.record(Obs::Drew(x));
            }
            Msg::Timer => {
                ctx.record(Obs::Rang);
            }
            Msg::Ask(to) => {
                let answer = ctx.call(to, Msg::Timer);
                ctx.record(Obs::Got(answer));
            }
            Msg::Forward(to, then) => {
                ctx.call(to, Msg::Ask(then));
            }
        }
    }
}

fn limits(horizon_ms: u64) -> Limits {
    Limits { horizon: SimTime::from_ms(horizon_ms), max_events: None }
}

#[test]
fn ping_pong_records_chain_back_to_the_input() {
    let mut sim = Simulation::new(1);
    let a = sim.add_actor("a", Player);
    let b = sim.add_actor("b", Player);
    sim.schedule(SimTime::ZERO, a, Msg::Ping { to: b, left: 3, gap: SimDuration::from_secs(1) }, Cause::Input(0));
    let mut trace = Vec::new();
    let stats = sim.run(limits(60_000), &mut trace).unwrap();
    assert_eq!(stats.events, 4);
    let got: Vec<_> = trace.iter().map(|r| (r.at.as_ms(), r.actor, r.obs.clone())).collect();
    assert_eq!(got, [(0, a, Obs::Got(3)), (1_000, b, Obs::Got(2)), (2_000, a, Obs::Got(1)), (3_000, b, Obs::Got(0)),]);
    assert_eq!(trace[0].cause, Cause::Input(0));
    for pair in trace.windows(2) {
        assert_eq!(pair[1].cause, Cause::Record(pair[0].id));
    }
}

#[test]
fn same_instant_messages_run_in_scheduling_order() {
    let mut sim = Simulation::new(1);
    let a = sim.add_actor("a", Player);
    let gap = SimDuration::ZERO;
    for i in 0..5 {
        sim.schedule(SimTime::from_ms(10), a, Msg::Ping { to: a, left: 0, gap }, Cause::Input(i));
    }
    let mut trace = Vec::new();
    sim.run(limits(100), &mut trace).unwrap();
    let causes: Vec<_> = trace.iter().map(|r| r.cause).collect();
    assert_eq!(causes, (0..5).map(Cause::Input).collect::<Vec<_>>());
}

#[test]
fn horizon_stops_the_run_and_leaves_later_messages_pending() {
    let mut sim = Simulation::new(1);
    let a = sim.add_actor("a", Player);
    let b = sim.add_actor("b", Player);
    sim.schedule(SimTime::ZERO, a, Msg::Ping { to: b, left: 100, gap: SimDuration::from_secs(1) }, Cause::Input(0));
    let mut trace = Vec::new();
    let stats = sim.run(limits(2_500), &mut trace).unwrap();
    assert_eq!(trace.len(), 3, "deliveries at 0 s, 1 s and 2 s only");
    assert!(stats.stopped_at_horizon);
    assert_eq!(sim.now(), SimTime::from_ms(2_500));
    assert_eq!(sim.pending(), 1);
}

#[test]
fn event_limit_stops_a_runaway_run_with_a_message() {
    let mut sim = Simulation::new(1);
    let a = sim.add_actor("a", Player);
    sim.schedule(SimTime::ZERO, a, Msg::Ping { to: a, left: u32::MAX, gap: SimDuration::ZERO }, Cause::Input(0));
    let err = sim.run(Limits { horizon: SimTime::MAX, max_events: Some(1_000) }, &mut NullSink).unwrap_err();
    assert_eq!(err, EngineError::EventLimit { limit: 1_000, at: SimTime::ZERO, actor: "a".into() });
    assert!(err.to_string().contains("--max-events"));
}

#[test]
fn cancelled_messages_are_never_delivered() {
    struct Canceller;
    impl Actor for Canceller {
        type Msg = Msg;
        type Obs = Obs;
        type Reply = ();
        fn answer(&mut self, _msg: Msg, _ctx: &mut Ctx<'_, Self>) {}
        fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_, Self>) {
            if let Msg::Draw = msg {
                let me = ctx.me();
                let doomed = ctx.send(me, Msg::Timer, SimDuration::from_secs(5));
                ctx.send(me, Msg::Timer, SimDuration::from_secs(6));
                ctx.cancel(doomed);
            } else {
                ctx.record(Obs::Rang);
            }
        }
    }
    let mut sim = Simulation::new(1);
    let a = sim.add_actor("a", Canceller);
    sim.schedule(SimTime::ZERO, a, Msg::Draw, Cause::Input(0));
    let mut trace = Vec::new();
    sim.run(limits(60_000), &mut trace).unwrap();
    assert_eq!(trace.len(), 1);
    assert_eq!(trace[0].at, SimTime::from_ms(6_000));
}

fn draws_of(names: &[&str], who: &str, seed: u64) -> Vec<u64> {
    let mut sim = Simulation::new(seed);
    let ids: Vec<_> = names.iter().map(|n| sim.add_actor(*n, Player)).collect();
    for (i, id) in ids.iter().enumerate() {
        for k in 0..3 {
            sim.schedule(SimTime::from_ms(k), *id, Msg::Draw, Cause::Input(u32::try_from(i).unwrap()));
        }
    }
    let mut trace = Vec::new();
    sim.run(limits(10), &mut trace).unwrap();
    let who = ids[names.iter().position(|n| *n == who).unwrap()];
    trace
        .iter()
        .filter(|r| r.actor == who)
        .map(|r| match r.obs {
            Obs::Drew(x) => x,
            _ => unreachable!(),
        })
        .collect()
}

#[test]
fn adding_an_actor_does_not_change_another_actors_draws() {
    let alone = draws_of(&["vol-a"], "vol-a", 7);
    let crowded = draws_of(&["new-first", "vol-a", "new-last"], "vol-a", 7);
    assert_eq!(alone, crowded);
    assert_ne!(draws_of(&["vol-a"], "vol-a", 8), alone, "the seed matters");
    assert_ne!(draws_of(&["vol-b"], "vol-b", 7), alone, "each actor has its own stream");
}

#[test]
fn a_call_is_answered_at_once_before_anything_queued_and_passes_its_cause_back() {
    let mut sim = Simulation::new(1);
    let a = sim.add_actor("a", Player);
    let b = sim.add_actor("b", Player);
    // b has a message waiting at t = 0 already; a's call to b is answered before it.
    sim.schedule(SimTime::ZERO, a, Msg::Ask(b), Cause::Input(0));
    sim.schedule(SimTime::ZERO, b, Msg::Timer, Cause::Input(1));
    let mut trace = Vec::new();
    let stats = sim.run(limits(1_000), &mut trace).unwrap();
    assert_eq!(stats.events, 2, "a call is not a message");
    let got: Vec<_> = trace.iter().map(|r| (r.actor, r.obs.clone(), r.cause)).collect();
    assert_eq!(
        got,
        [(b, Obs::Rang, Cause::Input(0)), (a, Obs::Got(7), Cause::Record(0)), (b, Obs::Rang, Cause::Input(1)),]
    );
}

#[test]
#[should_panic(expected = "cannot call")]
fn calls_do_not_nest() {
    let mut sim = Simulation::new(1);
    let a = sim.add_actor("a", Player);
    let b = sim.add_actor("b", Player);
    let c = sim.add_actor("c", Player);
    // b would answer a's call by calling c: a bug the engine refuses.
    sim.schedule(SimTime::ZERO, a, Msg::Forward(b, c), Cause::Input(0));
    sim.run(limits(1_000), &mut NullSink).unwrap();
}

/// Inputs given as a run's source, in order of time and taken as their instants come.
struct Listed(std::collections::VecDeque<(SimTime, ActorId, u32, Cause)>);

impl Inputs<Fan> for Listed {
    fn next_at(&self) -> Option<SimTime> {
        self.0.front().map(|i| i.0)
    }

    fn take(&mut self) -> Option<(ActorId, Fan, Cause)> {
        self.0.pop_front().map(|(_, to, id, cause)| (to, Fan(id, 3), cause))
    }
}

/// A message that records its id and fans out while its depth lasts: one plain send and one in
/// the first lane, at delays of 0 to 2 ms that the id decides (many ties, some zero-delay
/// first-lane sends, which are plain).
#[derive(Debug)]
struct Fan(u32, u8);

struct Fanner(u32);

impl Actor for Fanner {
    type Msg = Fan;
    type Obs = u32;
    type Reply = ();
    fn answer(&mut self, _msg: Fan, _ctx: &mut Ctx<'_, Self>) {}
    fn handle(&mut self, Fan(id, depth): Fan, ctx: &mut Ctx<'_, Self>) {
        ctx.record(id);
        if depth > 0 {
            let peer = ActorId((ctx.me().0 + id) % self.0);
            ctx.send(peer, Fan(id * 3 + 1, depth - 1), SimDuration::from_ms(u64::from(id % 3)));
            ctx.send_first(peer, Fan(id * 3 + 2, depth - 1), SimDuration::from_ms(u64::from(id % 2)));
        }
    }
}

proptest::proptest! {
    /// A run's inputs are delivered as if all were scheduled before it: after the first lane of
    /// their instant, before every other message due then. So a source gives the records that
    /// scheduling them all gives, run in one go or in legs.
    #[test]
    fn inputs_from_a_source_come_as_if_scheduled_before_the_run(
        mut times in proptest::collection::vec(0u64..8, 0..40),
        legs in proptest::collection::vec(0u64..12, 0..4),
    ) {
        times.sort_unstable();
        let actors = 3;
        let inputs: Vec<(SimTime, ActorId, u32, Cause)> = times
            .iter()
            .enumerate()
            .map(|(i, &at)| {
                let i = u32::try_from(i).unwrap();
                (SimTime::from_ms(at), ActorId(i % actors), 1000 + i, Cause::Input(i))
            })
            .collect();
        let world = || {
            let mut sim = Simulation::new(1);
            for name in ["a", "b", "c"] {
                sim.add_actor(name, Fanner(actors));
            }
            sim
        };
        let mut scheduled = world();
        for &(at, to, id, cause) in &inputs {
            scheduled.schedule(at, to, Fan(id, 3), cause);
        }
        let mut want: Vec<Record<u32>> = Vec::new();
        let want_stats = scheduled.run(limits(20), &mut want).unwrap();

        let mut sourced = world();
        let mut source = Listed(inputs.into_iter().collect());
        let mut got: Vec<Record<u32>> = Vec::new();
        let mut legs = legs;
        legs.sort_unstable();
        for leg in legs.into_iter().chain([20]) {
            sourced.run_with(limits(leg), &mut source, &mut got, &NoHints).unwrap();
        }
        proptest::prop_assert_eq!(&got, &want);
        proptest::prop_assert_eq!(sourced.now(), scheduled.now());
        proptest::prop_assert_eq!(want_stats.events, u64::try_from(want.len()).unwrap());
    }
}
