//! The engine's hot paths, on actors that know nothing of AWS, and the whole simulator on the
//! `fleet` reference workload at N = 1,000.
//!
//! `cargo bench --bench engine`. Throughput is in delivered messages or calls (engine) or counted
//! events (fleet) per second. The side-by-side comparison with the reference models is
//! `benches/compare.py`; this is for seeing the effect of a change to the engine.

use criterion::{BatchSize, Bencher, Criterion, Throughput, criterion_group, criterion_main};
use kmsim::analysis::sweep::Fold;
use kmsim::engine::{Actor, ActorId, Cause, Ctx, Limits, NullSink, SimDuration, SimTime, Simulation};
use kmsim::run::{RunOptions, prepare};
use kmsim::scenario::{self, Overrides};
use rand::RngExt;

/// The classic "hold" model: each message schedules the next one for the same actor after a
/// random delay, so the queue always holds one message per actor.
struct Hold;

/// A relay: each message is passed on at once to the next actor, `hops` times, then held.
struct Relay {
    next: ActorId,
}

enum Msg {
    Tick,
    Pass(u8),
}

impl Actor for Hold {
    type Msg = Msg;
    type Obs = ();
    type Reply = ();
    fn answer(&mut self, _msg: Msg, _ctx: &mut Ctx<'_, Self>) {}
    fn handle(&mut self, _msg: Msg, ctx: &mut Ctx<'_, Self>) {
        rearm(ctx, Msg::Tick);
    }
}

impl Actor for Relay {
    type Msg = Msg;
    type Obs = ();
    type Reply = ();
    fn answer(&mut self, _msg: Msg, ctx: &mut Ctx<'_, Self>) {
        ctx.record(());
    }
    fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_, Self>) {
        match msg {
            Msg::Pass(left) if left > 0 => {
                ctx.record(());
                ctx.send(self.next, Msg::Pass(left - 1), SimDuration::ZERO);
            }
            _ => {
                rearm(ctx, Msg::Pass(4));
            }
        }
    }
}

/// The actor's next timer, within 2 s.
fn rearm<A: Actor<Msg = Msg>>(ctx: &mut Ctx<'_, A>, msg: Msg) {
    let after = SimDuration::from_ms(ctx.rng().random_range(1..2_000));
    let me = ctx.me();
    ctx.send(me, msg, after);
}

const MESSAGES: u64 = 200_000;

/// `n` actors in a ring, each knowing the next, each with a first timer within 2 s.
fn ring<A: Actor<Msg = Msg, Obs = ()>>(n: u32, actor: impl Fn(ActorId) -> A) -> Simulation<A> {
    let mut sim = Simulation::new(7);
    for i in 0..n {
        let a = sim.add_actor(format!("a{i}"), actor(ActorId((i + 1) % n)));
        sim.schedule(SimTime::from_ms(u64::from(i) % 2_000), a, Msg::Tick, Cause::Input(0));
    }
    sim
}

/// Measures `messages` deliveries on a fresh ring of `n` actors.
fn bench_ring<A: Actor<Msg = Msg, Obs = ()>>(b: &mut Bencher<'_>, n: u32, messages: u64, actor: impl Fn(ActorId) -> A) {
    b.iter_batched(
        || ring(n, &actor),
        |mut sim| {
            let limits = Limits { horizon: SimTime::MAX, max_events: Some(messages) };
            let _ = sim.run(limits, &mut NullSink);
        },
        BatchSize::LargeInput,
    );
}

fn hold(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine/hold");
    g.throughput(Throughput::Elements(MESSAGES));
    for pending in [1_000u32, 100_000] {
        g.bench_function(format!("{pending} pending"), |b| bench_ring(b, pending, MESSAGES, |_| Hold));
    }
    g.finish();
}

fn relay(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine/relay");
    g.throughput(Throughput::Elements(MESSAGES));
    g.bench_function("4 sends with no delay per timer, 1000 actors", |b| {
        bench_ring(b, 1_000, MESSAGES, |next| Relay { next });
    });
    g.finish();
}

/// Calls: each timer makes four synchronous calls to the next actor, then waits again.
struct Asker {
    next: ActorId,
}

impl Actor for Asker {
    type Msg = Msg;
    type Obs = ();
    type Reply = ();
    fn answer(&mut self, _msg: Msg, ctx: &mut Ctx<'_, Self>) {
        ctx.record(());
    }
    fn handle(&mut self, _msg: Msg, ctx: &mut Ctx<'_, Self>) {
        for _ in 0..4 {
            ctx.call(self.next, Msg::Pass(0));
        }
        rearm(ctx, Msg::Tick);
    }
}

fn call(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine/call");
    // Timers: each brings four calls.
    g.throughput(Throughput::Elements(MESSAGES / 5 * 4));
    g.bench_function("4 calls per timer, 1000 actors", |b| {
        bench_ring(b, 1_000, MESSAGES / 5, |next| Asker { next });
    });
    g.finish();
}

fn fleet(c: &mut Criterion) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/bench/fleet-1k.ron");
    let text = std::fs::read_to_string(path).expect("the bench scenario");
    let scenario = scenario::parse(path, &text, Overrides::default()).expect("a valid scenario");
    let options = RunOptions { stream: true, ..RunOptions::default() };
    let events = {
        let mut fold = Fold::new(&scenario, 0, scenario.seed);
        prepare(&scenario).run(&options, Some(&mut fold)).expect("no limit");
        fold.finish().events
    };
    let mut g = c.benchmark_group("fleet");
    g.sample_size(10);
    g.throughput(Throughput::Elements(events));
    g.bench_function("fleet-1k, counted events", |b| {
        b.iter_batched(
            || (prepare(&scenario), Fold::new(&scenario, 0, scenario.seed)),
            |(world, mut fold)| {
                world.run(&options, Some(&mut fold)).expect("no limit");
                fold.finish()
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

criterion_group!(benches, hold, relay, call, fleet);
criterion_main!(benches);
