//! A cheap swarm: one busy scenario with random KMS latency, run under many seeds, checking
//! invariants that must hold whatever the interleaving.

use std::collections::BTreeMap;

use kmsim::actors::Obs;
use kmsim::actors::ebs::VolumeState;
use kmsim::actors::ec2::InstanceState;
use kmsim::actors::kms::{KeyIdx, KeyState, KmsObs, KmsOp};
use kmsim::engine::Cause;
use kmsim::run::{RunOptions, instance_actor, run};
use kmsim::scenario::{self, Overrides};

/// Attaches, detaches, stops, starts, reboots and key changes, bunched so that calls in flight
/// (random latency, mean 300 ms) race with key changes.
fn busy_scenario() -> String {
    let mut timeline = String::new();
    let mut at = |t: &str, action: String| timeline.push_str(&format!("        At(\"{t}\", {action}),\n"));
    for k in ["k0", "k1"] {
        at("0s", format!("ImportKeyMaterial(key: \"{k}\", material: \"m-{k}\", expires: After(\"2h\"))"));
    }
    for v in 0..6 {
        at("1m", format!("CreateVolume(volume: \"vol-{v}\")"));
        at("2m", format!("AttachVolume(volume: \"vol-{v}\", instance: \"i-{}\")", v % 3));
    }
    for round in 0..6u32 {
        let base = 10 + round * 20; // minutes
        at(&format!("{base}m"), "DeleteImportedKeyMaterial(key: \"k0\")".into());
        at(&format!("{base}m 300ms"), format!("DetachVolume(volume: \"vol-{}\")", round % 6));
        at(&format!("{base}m 500ms"), format!("StopInstances(instance: \"i-{}\")", round % 3));
        at(
            &format!("{}m", base + 1),
            format!("AttachVolume(volume: \"vol-{}\", instance: \"i-{}\")", round % 6, (round + 1) % 3),
        );
        at(
            &format!("{}m 200ms", base + 1),
            "ImportKeyMaterial(key: \"k0\", material: \"m-k0\", expires: After(\"3h\"))".into(),
        );
        at(&format!("{}m 400ms", base + 1), format!("StartInstances(instance: \"i-{}\")", round % 3));
        at(&format!("{}m", base + 2), format!("RebootInstances(instance: \"i-{}\")", (round + 2) % 3));
        at(&format!("{}m", base + 3), "DisableKey(key: \"k1\")".into());
        at(&format!("{}m 100ms", base + 3), format!("HostMaintenance(instance: \"i-{}\")", (round + 1) % 3));
        at(&format!("{}m 300ms", base + 3), "EnableKey(key: \"k1\")".into());
        for v in 0..6 {
            at(&format!("{}m", base + 4), format!("Write(volume: \"vol-{v}\")"));
        }
    }
    let volumes: Vec<String> = (0..6).map(|v| format!("Volume(id: \"vol-{v}\", key: \"k{}\")", v % 2)).collect();
    format!(
        r#"Scenario(
    version: 1, name: "swarm", start: "2026-01-01T00:00:00Z", horizon: "6h", seed: 0,
    latency: (kms: Exponential("300ms")),
    keys: [Key(id: "k0", origin: External), Key(id: "k1", origin: External)],
    instances: [Instance(id: "i-0"), Instance(id: "i-1"), Instance(id: "i-2")],
    volumes: [{}],
    timeline: [
{timeline}    ],
)"#,
        volumes.join(", ")
    )
}

#[test]
fn invariants_hold_across_seeds() {
    let text = busy_scenario();
    let mut failures_seen = 0;
    for seed in 0..40 {
        failures_seen += check_invariants(&text, seed);
    }
    assert!(failures_seen > 0, "the swarm should reach refused calls");
}

/// A fleet under auto scaling (launches with volumes, failed launches, cooldowns), stops,
/// starts, host maintenance and the user revoking EC2's grants, with latency, through two
/// deletions and reimports.
#[test]
fn invariants_hold_for_a_scaling_fleet_with_revoked_grants() {
    let mut timeline =
        String::from("        At(\"0s\", ImportKeyMaterial(key: \"k\", material: \"m\", expires: Never)),\n");
    for (del, back) in [("6h", "9h"), ("20h", "1d 2h")] {
        timeline.push_str(&format!("        At(\"{del}\", DeleteImportedKeyMaterial(key: \"k\")),\n"));
        timeline.push_str(&format!(
            "        At(\"{back}\", ImportKeyMaterial(key: \"k\", material: \"m\", expires: Never)),\n"
        ));
    }
    for h in (1..30).step_by(3) {
        let v = h % 8;
        timeline.push_str(&format!("        At(\"{h}h 17m\", RevokeGrant(key: \"k\", grant: \"f-v{v}\")),\n"));
    }
    let text = format!(
        r#"Scenario(
    version: 1, name: "scaling swarm", start: "2026-01-01T00:00:00Z", horizon: "1d 12h", seed: 0,
    latency: (kms: Exponential("200ms")),
    keys: [Key(id: "k", origin: External)],
    fleets: [Fleet(id: "f", instances: 4, volumes_per_instance: 2, keys: [("k", 1)],
                   attached: Exponential("2h"), detached: Exponential("20m"), retry: Fixed("15m"),
                   stop_every: Exponential("5h"), stopped_for: Fixed("10m"),
                   host_maintenance_every: Exponential("12h"), replace_every: Exponential("4h"),
                   cooldown: "20m")],
    timeline: [
{timeline}    ],
)"#
    );
    let mut failures_seen = 0;
    for seed in 0..25 {
        failures_seen += check_invariants(&text, seed);
    }
    assert!(failures_seen > 0, "the swarm should reach refused calls");
}

/// Runs the scenario under `seed` and checks what must hold whatever the interleaving; returns
/// how many cryptographic calls KMS refused.
fn check_invariants(text: &str, seed: u64) -> usize {
    let mut failures_seen = 0;
    let s = scenario::parse("swarm", text, Overrides { seed: Some(seed), ..Overrides::default() })
        .unwrap_or_else(|e| panic!("{e}"));
    let r = run(&s, &RunOptions::default(), None).unwrap();

    // Links point backwards: every cause and reason is an earlier record.
    for rec in &r.records {
        if let Cause::Record(c) = rec.cause {
            assert!(c < rec.id, "seed {seed}: #{} caused by later #{c}", rec.id);
        }
        if let Some(reason) = rec.reason {
            assert!(reason < rec.id);
        }
    }

    // No successful cryptographic call on a key that is not Enabled.
    let mut state: BTreeMap<KeyIdx, Option<KeyState>> = BTreeMap::new();
    for rec in &r.records {
        match &rec.obs {
            Obs::Kms(KmsObs::StateChanged { key, to, .. }) => {
                state.insert(*key, Some(*to));
            }
            Obs::Kms(KmsObs::Called { op, key: Some(key), result, .. }) => {
                let crypto = matches!(**op, KmsOp::Decrypt { .. } | KmsOp::GenerateDataKeyWithoutPlaintext { .. });
                if crypto && result.is_ok() {
                    assert_eq!(state.get(key), Some(&Some(KeyState::Enabled)), "seed {seed}: #{}", rec.id);
                }
                if crypto && result.is_err() {
                    failures_seen += 1;
                }
            }
            _ => {}
        }
    }

    // A service resource its service marked inaccessible (or past its deadline) serves nothing
    // until its service marks it available again.
    let mut down: BTreeMap<kmsim::engine::ActorId, bool> = BTreeMap::new();
    for rec in &r.records {
        use kmsim::actors::service::{ServiceObs, State};
        match &rec.obs {
            Obs::Service(ServiceObs::StateChanged { to, .. }) => {
                down.insert(rec.actor, matches!(to, State::Inaccessible | State::Terminal));
            }
            Obs::Service(ServiceObs::Served { .. }) => {
                assert!(!down.get(&rec.actor).copied().unwrap_or(false), "seed {seed}: #{} served while down", rec.id);
            }
            _ => {}
        }
    }

    // Both sides of every attachment agree, and so do the two views of the key cache.
    for v in 0..s.volumes.len() {
        let vol = r.volume(v);
        let me = kmsim::run::volume_actor(&s, v);
        for i in 0..s.instances.len() {
            let inst = r.instance(i);
            let listed = inst.attachments().find(|(vol_id, _)| *vol_id == me);
            let attached_here = vol.state() == Some(VolumeState::InUse(instance_actor(&s, i)));
            let name = &s.volumes[v].name;
            assert_eq!(listed.is_some(), attached_here, "seed {seed}: {name} and instance {i} disagree");
            if let Some((_, cached)) = listed {
                assert_eq!(cached, vol.key_in_memory(), "seed {seed}: cache views of {name} differ");
                if inst.state() != Some(InstanceState::Running) {
                    assert!(!cached, "seed {seed}: an instance that is not running holds a key");
                }
            }
        }
    }

    // As it runs, after every instant at which something happened: a plaintext data key is in
    // a host's memory only while its volume is attached to that host and the host runs.
    {
        use kmsim::actors::ebs::VolumeObs;
        use kmsim::actors::ec2::InstanceObs;
        let mut attached: BTreeMap<kmsim::engine::ActorId, kmsim::engine::ActorId> = BTreeMap::new();
        let mut running: BTreeMap<kmsim::engine::ActorId, bool> = BTreeMap::new();
        let mut cached: std::collections::BTreeSet<(kmsim::engine::ActorId, kmsim::engine::ActorId)> =
            std::collections::BTreeSet::new();
        let mut i = 0;
        while i < r.records.len() {
            let at = r.records[i].at;
            while i < r.records.len() && r.records[i].at == at {
                let rec = &r.records[i];
                match &rec.obs {
                    Obs::Volume(VolumeObs::Attached { instance }) => {
                        attached.insert(rec.actor, *instance);
                    }
                    Obs::Volume(VolumeObs::Detached { .. }) => {
                        attached.remove(&rec.actor);
                    }
                    Obs::Instance(InstanceObs::StateChanged { to, .. }) => {
                        running.insert(rec.actor, *to == InstanceState::Running);
                    }
                    Obs::Instance(InstanceObs::DataKeyCached { volume }) => {
                        cached.insert((rec.actor, *volume));
                    }
                    Obs::Instance(InstanceObs::DataKeyEvicted { volume, .. }) => {
                        cached.remove(&(rec.actor, *volume));
                    }
                    _ => {}
                }
                i += 1;
            }
            for (host, volume) in &cached {
                assert_eq!(
                    attached.get(volume),
                    Some(host),
                    "seed {seed}: at {at}, a key cached for a volume not attached there"
                );
                assert!(
                    running.get(host).copied().unwrap_or(true),
                    "seed {seed}: at {at}, a host that does not run holds a key"
                );
            }
        }
    }

    // One verdict: the summary and impact agree on every resource at the end.
    let summary = kmsim::analysis::summary::summarize(&r);
    // Each break the summary gives is a failure the run recorded, of that resource, at that
    // instant: by that operation, or (an instance's) a state change for that reason.
    let recorded: std::collections::BTreeSet<(kmsim::engine::SimTime, &str, &str)> = r
        .records
        .iter()
        .map(|rec| {
            let what = match &rec.obs {
                Obs::Instance(kmsim::actors::ec2::InstanceObs::StateChanged { reason: Some((code, _)), .. }) => code,
                // A group's failed launch is the RunInstances of its place.
                Obs::Group(kmsim::actors::group::GroupObs::LaunchFailed { .. }) => "RunInstances",
                other => other.event_name(),
            };
            (rec.at, kmsim::run::actor_name(&s, rec.actor), what)
        })
        .collect();
    for res in &summary.resources {
        for b in &res.breaks {
            assert!(
                recorded.contains(&(b.broke_at, &*res.name, b.how.action))
                    || recorded.contains(&(b.broke_at, &*res.name, b.how.code)),
                "seed {seed}: {} broke at {} by {}, which no record of it shows",
                res.name,
                b.broke_at,
                b.how
            );
        }
    }
    for impact in kmsim::analysis::impact::at_end(&r, &summary, None) {
        for d in impact.dependents {
            let res = summary.resources.iter().find(|x| *x.name == *d.name).unwrap();
            assert_eq!(res.status, d.standing, "seed {seed}: {}", d.name);
        }
    }
    lanes_agree_with_the_summary(&r, &summary).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
    failures_seen
}

/// The chart says what the summary says: each resource's band at the end of its lane is one its
/// standing allows (a band is a state, so several standings allow it: a volume detached with its
/// key unusable is blocked, or broken if an attach failed; broken lasts until the resource works
/// again, whatever its key does meanwhile).
pub fn lanes_agree_with_the_summary(
    r: &kmsim::run::Run<'_>,
    summary: &kmsim::analysis::summary::Summary,
) -> Result<(), String> {
    use kmsim::analysis::lanes::Band;
    use kmsim::analysis::standing::Standing::{Blocked, Broken, Latent, Recovered, Unaffected};
    let lanes = kmsim::analysis::lanes::build(r, summary);
    for lane in &lanes.lanes {
        // A lane whose resource is gone (deleted, never made) is not drawn to the end.
        let ends = lane.segments.last().filter(|s| s.to == lanes.end);
        let (Some(last), Some(res)) = (ends, summary.resources.iter().find(|x| *x.name == *lane.name)) else {
            continue;
        };
        let allowed: &[_] = match &last.band {
            Band::Working(_) | Band::Serving(_) => &[Unaffected, Recovered],
            // A snapshot is broken from a failed restore or copy until one works, key back or not.
            Band::Kept => &[Unaffected, Recovered, Broken],
            Band::Latent(_) | Band::ServingLatent(_) => &[Latent],
            Band::KeptUnreadable => &[Latent, Broken],
            Band::Unusable => &[Blocked, Broken],
            Band::Down(_) => &[Broken],
            _ => continue,
        };
        if !allowed.contains(&res.status) {
            return Err(format!("{}'s lane ends {:?}, but it stands {}", lane.name, last.band, res.status.as_str()));
        }
    }
    Ok(())
}

/// Each fleet instance is followed by its own volumes among the engine's actors, after KMS and
/// the declared instances and volumes, then the snapshots, images and groups, and the other
/// services' resources last; the maps between scenario indices and actors agree with
/// the names the engine gave, both ways, for every actor.
#[test]
fn each_fleet_instance_is_followed_by_its_volumes() {
    use kmsim::run::{Role, actor_name, role, volume_actor};
    let text = r#"Scenario(
    version: 1, name: "layout", start: "2026-01-01T00:00:00Z", horizon: "1d", seed: 3,
    keys: [Key(id: "k", origin: AwsKms)],
    instances: [Instance(id: "i-a"), Instance(id: "i-b")],
    volumes: [Volume(id: "vol-a", key: "k"), Volume(id: "vol-b", key: "k", snapshot: "snap-a")],
    snapshots: [Snapshot(id: "snap-a", volume: "vol-a"), Snapshot(id: "snap-b", copy_of: "snap-a")],
    images: [Image(id: "ami-a", snapshots: ["snap-a"])],
    groups: [Group(id: "asg", image: "ami-a", desired: 1, max: 2)],
    services: [Service(kind: Rds, id: "db-x", key: "k"), Service(kind: Secret, id: "sec", key: "k")],
    fleets: [
        Fleet(id: "web", instances: 3, volumes_per_instance: 2, keys: [("k", 1)],
              attached: Exponential("6h"), detached: Exponential("10m")),
        Fleet(id: "db", instances: 2, keys: [("k", 1)],
              attached: Exponential("6h"), detached: Exponential("10m")),
    ],
    timeline: [],
)"#;
    let s = scenario::parse("layout", text, Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
    let (sim, _) = kmsim::run::build(&s);
    let names = sim.names();
    assert_eq!(
        names.len(),
        1 + s.instances.len()
            + s.volumes.len()
            + s.snapshots.len()
            + s.images.len()
            + s.groups.len()
            + s.services.len()
    );
    let mut order = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let id = kmsim::engine::ActorId(u32::try_from(index).unwrap());
        assert_eq!(actor_name(&s, id), &**name, "actor {index}");
        match role(&s, id) {
            Role::Kms => assert_eq!(index, 0),
            Role::Instance(i) => assert_eq!(instance_actor(&s, i), id, "instance {i}"),
            Role::Volume(v) => assert_eq!(volume_actor(&s, v), id, "volume {v}"),
            Role::Snapshot(x) => assert_eq!(kmsim::run::snapshot_actor(&s, x), id, "snapshot {x}"),
            Role::Image(x) => assert_eq!(kmsim::run::image_actor(&s, x), id, "image {x}"),
            Role::Group(x) => assert_eq!(kmsim::run::group_actor(&s, x), id, "group {x}"),
            Role::Service(x) => assert_eq!(kmsim::run::service_actor(&s, x), id, "service resource {x}"),
        }
        order.push(&**name);
    }
    assert_eq!(
        order,
        [
            "kms",
            "i-a",
            "i-b",
            "asg-i0",
            "asg-i1",
            "vol-a",
            "vol-b",
            "asg-i0-v0",
            "asg-i1-v0",
            "web-i0",
            "web-v0",
            "web-v1",
            "web-i1",
            "web-v2",
            "web-v3",
            "web-i2",
            "web-v4",
            "web-v5",
            "db-i0",
            "db-v0",
            "db-i1",
            "db-v1",
            "snap-a",
            "snap-b",
            "ami-a",
            "asg",
            "db-x",
            "sec",
        ]
    );
}

/// A random estate drawn from `seed`: one to three keys (most with imported material, some
/// expiring), declared instances and volumes, sometimes snapshots, copies and a restore, sometimes a fleet that stops, moves and is
/// replaced, sometimes other services' resources, sometimes KMS latency, and a timeline of
/// random actions of every kind at random instants over three days.
fn random_scenario(seed: u64) -> String {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let keys = rng.random_range(1..=3usize);
    let external: Vec<bool> = (0..keys).map(|_| rng.random_range(0..5) > 0).collect();
    let instances = rng.random_range(1..=3usize);
    let volumes = rng.random_range(1..=5usize);
    let key_of: Vec<usize> = (0..volumes).map(|_| rng.random_range(0..keys)).collect();
    let mut timeline = Vec::new();
    for (k, ext) in external.iter().enumerate() {
        if *ext {
            let expires = if rng.random_range(0..3) == 0 {
                format!("After(\"{}h\")", rng.random_range(6..72))
            } else {
                "Never".into()
            };
            timeline
                .push(format!("At(\"0s\", ImportKeyMaterial(key: \"k{k}\", material: \"m{k}\", expires: {expires}))"));
        }
    }
    for v in 0..volumes {
        timeline.push(format!("At(\"{}m\", CreateVolume(volume: \"v{v}\"))", rng.random_range(1..30)));
    }
    for _ in 0..rng.random_range(5..40) {
        let at = format!("{}m", rng.random_range(30..3 * 24 * 60));
        let (v, i, k) = (rng.random_range(0..volumes), rng.random_range(0..instances), rng.random_range(0..keys));
        // Several materials per key: a new one for a rotation, the rotation, deleting a named
        // material and reimporting it.
        let m = ["", "b", "c"][rng.random_range(0..3usize)];
        let action = match rng.random_range(0..20) {
            16 => format!("ImportKeyMaterial(key: \"k{k}\", material: \"m{k}{m}\", expires: Never, import_type: New)"),
            17 => format!("RotateKeyOnDemand(key: \"k{k}\")"),
            18 => format!("DeleteImportedKeyMaterial(key: \"k{k}\", material: \"m{k}{m}\")"),
            19 => format!(
                "ImportKeyMaterial(key: \"k{k}\", material: \"m{k}{m}\", expires: Never, import_type: Existing)"
            ),
            0..=2 => format!("AttachVolume(volume: \"v{v}\", instance: \"i{i}\")"),
            3 | 4 => format!("DetachVolume(volume: \"v{v}\")"),
            5 => format!("StopInstances(instance: \"i{i}\")"),
            6 => format!("StartInstances(instance: \"i{i}\")"),
            7 => format!("RebootInstances(instance: \"i{i}\")"),
            8 if rng.random_range(0..2) == 0 => format!("StopInstances(instance: \"i{i}\", hibernate: true)"),
            8 => format!("HostMaintenance(instance: \"i{i}\")"),
            9 => format!("DeleteImportedKeyMaterial(key: \"k{k}\")"),
            10 => format!("ImportKeyMaterial(key: \"k{k}\", material: \"m{k}\", expires: Never)"),
            11 => format!("DisableKey(key: \"k{k}\")"),
            12 => format!("EnableKey(key: \"k{k}\")"),
            13 => format!("RevokeGrant(key: \"k{k}\", grant: \"v{v}\")"),
            14 => format!("ScheduleKeyDeletion(key: \"k{k}\", pending_window_days: 7)"),
            _ => format!("Write(volume: \"v{v}\")"),
        };
        timeline.push(format!("At(\"{at}\", {action})"));
    }
    let key_decls: Vec<String> = external
        .iter()
        .enumerate()
        .map(|(k, ext)| format!("Key(id: \"k{k}\", origin: {})", if *ext { "External" } else { "AwsKms" }))
        .collect();
    let instance_decls: Vec<String> = (0..instances).map(|i| format!("Instance(id: \"i{i}\")")).collect();
    let volume_decls: Vec<String> =
        key_of.iter().enumerate().map(|(v, k)| format!("Volume(id: \"v{v}\", key: \"k{k}\")")).collect();
    let mut fleet = if rng.random_range(0..3) == 0 {
        format!(
            "fleets: [Fleet(id: \"f\", instances: {}, keys: [(\"k{}\", 1)], attached: Exponential(\"8h\"), detached: Exponential(\"30m\"), stop_every: Exponential(\"1d\"), host_maintenance_every: Exponential(\"2d\"), replace_every: Exponential(\"1d\"), cooldown: \"30m\")],",
            rng.random_range(1..4),
            rng.random_range(0..keys)
        )
    } else {
        String::new()
    };
    let latency = if rng.random_range(0..3) == 0 { "latency: (kms: Exponential(\"100ms\"))," } else { "" };
    // Snapshots: one of a volume, a copy of it under a random key and a volume restored from
    // either, each made, deleted and restored at random instants.
    let mut volume_decls = volume_decls;
    let mut snapshots = String::new();
    let (mut images, mut launched) = (String::new(), String::new());
    if rng.random_range(0..2) == 0 {
        let (v, k_copy, k_restore) =
            (rng.random_range(0..volumes), rng.random_range(0..keys), rng.random_range(0..keys));
        let from = ["s0", "s1"][rng.random_range(0..2usize)];
        snapshots = format!(
            "snapshots: [Snapshot(id: \"s0\", volume: \"v{v}\"), Snapshot(id: \"s1\", copy_of: \"s0\", key: \"k{k_copy}\")],"
        );
        volume_decls.push(format!("Volume(id: \"r0\", key: \"k{k_restore}\", snapshot: \"{from}\")"));
        // An image of a snapshot, and an instance launched from it.
        images = format!(
            "images: [Image(id: \"ami\", snapshots: [\"{from}\"])], groups: [Group(id: \"g\", image: \"ami\", desired: {}, max: 2, replace_every: Exponential(\"1d\"), cooldown: \"30m\")],",
            rng.random_range(0..3)
        );
        launched = format!(", Instance(id: \"il\", image: \"ami\", key: \"k{}\")", rng.random_range(0..keys));
        for _ in 0..rng.random_range(1..8) {
            let at = format!("{}m", rng.random_range(30..3 * 24 * 60));
            let action = match rng.random_range(0..11) {
                9 => "SetDesiredCapacity(group: \"g\", desired: 2)",
                10 => "SetDesiredCapacity(group: \"g\", desired: 0)",
                6 => "RegisterImage(image: \"ami\")",
                7 => "RunInstances(instance: \"il\")",
                8 => "DeregisterImage(image: \"ami\")",
                0 | 1 => "CreateSnapshot(snapshot: \"s0\")",
                2 => "CopySnapshot(snapshot: \"s1\")",
                3 => ["DeleteSnapshot(snapshot: \"s0\")", "DeleteSnapshot(snapshot: \"s1\")"]
                    [rng.random_range(0..2usize)],
                _ => "CreateVolume(volume: \"r0\")",
            };
            timeline.push(format!("At(\"{at}\", {action})"));
        }
        // Sometimes the fleet runs on a group launching from the image (A14).
        if !fleet.is_empty() && rng.random_range(0..2) == 0 {
            fleet = fleet.replace("Fleet(id: \"f\", ", "Fleet(id: \"f\", image: \"ami\", ");
            if rng.random_range(0..2) == 0 {
                timeline.push(format!(
                    "At(\"{}m\", SetDesiredCapacity(group: \"f\", desired: 1))",
                    rng.random_range(30..4000)
                ));
            }
        }
    }
    // Sometimes other services' resources, used, rebooted, stopped, started and restored at
    // random instants and by their own activity, with their delays shortened.
    let mut services = String::new();
    if rng.random_range(0..2) == 0 {
        let kinds = ["Rds", "Aurora", "Redshift", "DynamoDb", "S3", "Efs", "Lambda", "Secret"];
        let mut decls = Vec::new();
        for x in 0..rng.random_range(1..5usize) {
            let kind = kinds[rng.random_range(0..kinds.len())];
            let extra = match kind {
                "S3" if rng.random_range(0..2) == 0 => ", bucket_key: true",
                "DynamoDb" if rng.random_range(0..2) == 0 => ", replica: true",
                "Rds" | "Aurora" | "Redshift" if rng.random_range(0..2) == 0 => ", reboot_every: Exponential(\"1d\")",
                _ => "",
            };
            let requests = if rng.random_range(0..3) > 0 { ", requests: Exponential(\"2h\")" } else { "" };
            decls.push(format!(
                "Service(kind: {kind}, id: \"x{x}\", key: \"k{}\"{requests}{extra})",
                rng.random_range(0..keys)
            ));
            for _ in 0..rng.random_range(0..6) {
                let at = format!("{}m", rng.random_range(1..3 * 24 * 60));
                let action = match (kind, rng.random_range(0..5)) {
                    ("Rds" | "Aurora" | "Redshift", 0) => "Reboot",
                    ("Rds" | "Aurora" | "Redshift", 1) => "Stop",
                    ("Rds" | "Aurora" | "Redshift", 2) => "Start",
                    ("Rds" | "Aurora" | "Redshift" | "DynamoDb", 3) => "Restore",
                    _ => "Request",
                };
                timeline.push(format!("At(\"{at}\", {action}(resource: \"x{x}\"))"));
            }
        }
        services = format!(
            "rds_detection: \"{}m\", dynamodb_detection: \"3m\", efs_grace: \"20m\", lambda_idle: \"10m\"), services: [{}],",
            rng.random_range(1..20),
            decls.join(", ")
        );
    }
    // Sometimes a small request quota, so that calls are throttled: the account's quota breaks
    // nothing because of a key (D25).
    let quota =
        if rng.random_range(0..4) == 0 { format!("crypto_quota: {}, ", rng.random_range(1..4)) } else { String::new() };
    let parameters = match (quota.is_empty(), services.is_empty()) {
        (true, true) => String::new(),
        (false, true) => format!("parameters: ({quota}),"),
        (_, false) => format!("parameters: ({quota}{services}"),
    };
    format!(
        "Scenario(version: 1, name: \"random {seed}\", start: \"2026-01-01T00:00:00Z\", horizon: \"3d\", seed: {seed}, {latency}
    keys: [{}], instances: [{}{launched}], volumes: [{}], {snapshots} {images} {fleet} {parameters}
    timeline: [{}],
)",
        key_decls.join(", "),
        instance_decls.join(", "),
        volume_decls.join(", "),
        timeline.join(",\n        ")
    )
}

/// Says, while a seed's checks unwind from a failure, the command that replays that seed alone
/// (forgotten once the seed's checks pass).
struct ReplayHint(u64);

impl Drop for ReplayHint {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "replay this estate: KMSIM_SWARM_SEED={} cargo test --test it invariants_hold_for_random_estates \
                 (its scenario is random_scenario({}) in tests/it/invariants.rs)",
                self.0, self.0
            );
        }
    }
}

/// Random estates: the invariants hold for every one, and a resource breaks only while its key is
/// unusable (or was never usable). `KMSIM_SWARM=N` runs N estates instead of 300 (the README gives
/// the figure of a full swarm); a failure prints the command that replays its seed alone
/// (`KMSIM_SWARM_SEED=S`), and the estate is `random_scenario(seed)`.
#[test]
fn invariants_hold_for_random_estates() {
    let n: u64 = std::env::var("KMSIM_SWARM").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    // One seed alone: what a failure prints to replay it.
    let only: Option<u64> = std::env::var("KMSIM_SWARM_SEED").ok().and_then(|v| v.parse().ok());
    let seeds = only.map_or(0..n, |s| s..s + 1);
    let mut refused = 0;
    let mut standings = std::collections::BTreeSet::new();
    let mut on_group = 0;
    let mut with_services = 0;
    let mut with_quota = 0;
    for seed in seeds {
        let replay = ReplayHint(seed);
        let text = random_scenario(seed);
        on_group += usize::from(text.contains("Fleet(id: \"f\", image:"));
        with_services += usize::from(text.contains("services: ["));
        with_quota += usize::from(text.contains("crypto_quota"));
        refused += check_invariants(&text, seed);
        let s = scenario::parse("random", &text, Overrides::default())
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
        let r = run(&s, &RunOptions::default(), None).unwrap();
        for res in kmsim::analysis::summary::summarize(&r).resources {
            standings.insert(res.status.as_str());
            for b in &res.breaks {
                assert!(
                    b.loss_at.is_some() || !b.key_was_usable,
                    "seed {seed}: {} broke at {} ({}) while its key was usable\n{text}",
                    res.name,
                    b.broke_at,
                    b.how
                );
            }
        }
        std::mem::forget(replay);
    }
    if only.is_some() {
        return;
    }
    assert!(refused > 0, "the swarm should reach refused calls");
    assert!(on_group > 0 || n < 100, "the swarm should reach fleets on a group");
    assert!(with_services > 0 || n < 100, "the swarm should reach other services' resources");
    assert!(with_quota > 0 || n < 100, "the swarm should reach a request quota");
    assert_eq!(standings.len(), 5, "the swarm should reach every standing: {standings:?}");
}
