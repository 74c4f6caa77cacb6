// Copied unchanged from the project's shared bench material (shared/bench/heap_fleet), so that
// `benches/compare.py` can rebuild the reference from a clone.
//! 'fleet' reference workload as a minimal hand-written event loop:
//! std BinaryHeap of (Reverse((time_ns, seq)), event), one ChaCha8Rng,
//! rand_distr::Exp for the exponential holding times.
//!
//! usage: heap_fleet N [SEED]
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};

const SEC: u64 = 1_000_000_000; // time unit: nanoseconds (u64)
const HOUR: u64 = 3600 * SEC;
const DAY: u64 = 24 * HOUR;
const MEAN_ATTACHED_S: f64 = 6.0 * 3600.0;
const MEAN_DETACHED_S: f64 = 10.0 * 60.0;
const RETRY_DELAY: u64 = HOUR;
const T_DELETE: u64 = 30 * DAY;
const T_IMPORT: u64 = 32 * DAY;
const HORIZON: u64 = 60 * DAY;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Ev {
    Attach(u32), // attach attempt after a detach (or the initial one at t=0)
    Retry(u32),  // attach attempt after a failed one
    Detach(u32), // plaintext data key dropped from hypervisor memory
    KeyDelete,   // DeleteImportedKeyMaterial -> PendingImport
    KeyImport,   // ImportKeyMaterial -> Enabled
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u32 = args.get(1).map(|s| s.parse().unwrap()).unwrap_or(1000);
    let seed: u64 = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(42);

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let exp_att = Exp::new(1.0 / MEAN_ATTACHED_S).unwrap();
    let exp_det = Exp::new(1.0 / MEAN_DETACHED_S).unwrap();
    let secs_to_ns = |s: f64| (s * SEC as f64) as u64;

    let mut heap: BinaryHeap<(Reverse<(u64, u64)>, Ev)> = BinaryHeap::with_capacity(n as usize + 2);
    let mut seq: u64 = 0;
    let mut push = |heap: &mut BinaryHeap<(Reverse<(u64, u64)>, Ev)>, t: u64, ev: Ev| {
        heap.push((Reverse((t, seq)), ev));
        seq += 1;
    };

    let mut key_enabled = true;
    let mut broken = vec![false; n as usize];
    let (mut n_attach, mut n_retry, mut n_detach, mut n_key) = (0u64, 0u64, 0u64, 0u64);
    let mut ever_failed = 0u64;
    let mut first_failure: Option<u64> = None;
    let mut last_failure: Option<u64> = None;

    push(&mut heap, T_DELETE, Ev::KeyDelete);
    push(&mut heap, T_IMPORT, Ev::KeyImport);
    for i in 0..n {
        push(&mut heap, 0, Ev::Attach(i));
    }

    let t0 = Instant::now();
    while let Some((Reverse((t, _)), ev)) = heap.pop() {
        if t >= HORIZON {
            break;
        }
        match ev {
            Ev::Attach(v) | Ev::Retry(v) => {
                if matches!(ev, Ev::Attach(_)) { n_attach += 1 } else { n_retry += 1 }
                // KMS Decrypt of the volume's encrypted data key
                if key_enabled {
                    let dt = secs_to_ns(exp_att.sample(&mut rng));
                    push(&mut heap, t + dt, Ev::Detach(v));
                } else {
                    let b = &mut broken[v as usize];
                    if !*b {
                        *b = true;
                        ever_failed += 1;
                    }
                    first_failure.get_or_insert(t);
                    last_failure = Some(t);
                    push(&mut heap, t + RETRY_DELAY, Ev::Retry(v));
                }
            }
            Ev::Detach(v) => {
                n_detach += 1;
                let dt = secs_to_ns(exp_det.sample(&mut rng));
                push(&mut heap, t + dt, Ev::Attach(v));
            }
            Ev::KeyDelete => {
                n_key += 1;
                key_enabled = false;
            }
            Ev::KeyImport => {
                n_key += 1;
                key_enabled = true;
            }
        }
    }
    let dt = t0.elapsed().as_secs_f64();
    let events = n_attach + n_retry + n_detach + n_key;
    let h = |x: Option<u64>| x.map(|t| t as f64 / HOUR as f64).unwrap_or(f64::NAN);
    println!(
        "impl=heap N={n} seed={seed} events={events} attach={n_attach} detach={n_detach} retry={n_retry} key={n_key} \
         ever_failed={ever_failed} first_failure_h={:.3} last_failure_h={:.3} sim_s={dt:.3} events_per_s={:.0}",
        h(first_failure),
        h(last_failure),
        events as f64 / dt
    );
}
