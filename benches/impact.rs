//! How fast `kmsim impact` answers for one key once the run is done, on an estate of 100,000
//! volumes under 1,000 keys (100 volumes a key), 1,000 instances, with one key's material deleted.
//!
//! `cargo bench --bench impact`. The scenario is generated, parsed and run once, outside the
//! measurement; what is measured is what `kmsim impact` does after the run: take the world at the
//! instant, build the whole dependency graph, walk it from one key and classify its dependents.

use std::fmt::Write as _;

use criterion::{Criterion, criterion_group, criterion_main};
use kmsim::actors::kms::KeyIdx;
use kmsim::analysis::impact;
use kmsim::analysis::summary::summarize;
use kmsim::engine::SimTime;
use kmsim::run::{RunOptions, run};
use kmsim::scenario::{self, Overrides};

const KEYS: usize = 1_000;
const VOLUMES: usize = 100_000;
const INSTANCES: usize = 1_000;

fn estate() -> String {
    let mut t = String::from(
        "Scenario(version: 1, name: \"estate\", start: \"2026-01-01T00:00:00Z\", horizon: \"3d\", seed: 1,\n keys: [",
    );
    for k in 0..KEYS {
        let _ = write!(t, "Key(id: \"k{k}\", origin: External),");
    }
    t.push_str("],\n instances: [");
    for i in 0..INSTANCES {
        let _ = write!(t, "Instance(id: \"i{i}\"),");
    }
    t.push_str("],\n volumes: [");
    for v in 0..VOLUMES {
        let _ = write!(t, "Volume(id: \"v{v}\", key: \"k{}\"),", v % KEYS);
    }
    t.push_str("],\n timeline: [");
    for k in 0..KEYS {
        let _ = write!(t, "At(\"0s\", ImportKeyMaterial(key: \"k{k}\", material: \"m{k}\", expires: Never)),");
    }
    for v in 0..VOLUMES {
        let _ = write!(t, "At(\"1m\", CreateVolume(volume: \"v{v}\")),");
        let _ = write!(t, "At(\"2m\", AttachVolume(volume: \"v{v}\", instance: \"i{}\")),", (v / KEYS) % INSTANCES);
    }
    for v in (0..VOLUMES).step_by(KEYS * 2) {
        let _ = write!(t, "At(\"1d 6h\", DetachVolume(volume: \"v{v}\")),");
        let _ = write!(t, "At(\"1d 7h\", AttachVolume(volume: \"v{v}\", instance: \"i{}\")),", (v / KEYS) % INSTANCES);
    }
    t.push_str("At(\"1d\", DeleteImportedKeyMaterial(key: \"k0\")),\n ],\n)\n");
    t
}

fn bench(c: &mut Criterion) {
    let text = estate();
    let s = scenario::parse("estate", &text, Overrides::default()).unwrap();
    let at = SimTime::from_ms(36 * 3_600_000);
    let r = run(&s, &RunOptions { probes: vec![at], ..RunOptions::default() }, None).unwrap();
    let summary = summarize(&r);
    let snap = r.snapshot_at(at).unwrap().clone();
    let check = impact::analyze_graph(&r, &summary, &snap, &impact::graph(&r, &snap), KeyIdx(0), at, None);
    assert_eq!(check.dependents.len(), VOLUMES / KEYS + VOLUMES / KEYS, "100 volumes and their 100 instances");
    let mut group = c.benchmark_group("impact");
    group.sample_size(10);
    group.bench_function("one key of 1,000, 100,000 volumes: graph + walk + classify", |b| {
        b.iter(|| {
            let g = impact::graph(&r, &snap);
            impact::analyze_graph(&r, &summary, &snap, &g, KeyIdx(0), at, None)
        });
    });
    group.bench_function("summary of the run (100,000 volumes)", |b| b.iter(|| summarize(&r)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
