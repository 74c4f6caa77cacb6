//! Each class of invalid input gets a precise message with its position; valid input resolves.

use super::*;

const VALID: &str = r#"Scenario(
    version: 1,
    name: "t",
    start: "2026-03-01T09:00:00Z",
    horizon: "10d",
    seed: 7,
    keys: [Key(id: "cmk", origin: External, aliases: ["alias/a"])],
    instances: [Instance(id: "i-1")],
    volumes: [Volume(id: "vol-1", key: "cmk")],
    timeline: [
        At("0s", ImportKeyMaterial(key: "cmk", material: "m1", expires: After("30d"))),
        At("1h", CreateVolume(volume: "vol-1")),
        At("2h", AttachVolume(volume: "vol-1", instance: "i-1")),
    ],
)"#;

fn problems(text: &str) -> Vec<String> {
    match parse("s.ron", text, Overrides::default()) {
        Ok(_) => panic!("expected the scenario to be invalid"),
        Err(e) => e.to_string().lines().map(String::from).collect(),
    }
}

fn one_problem(text: &str) -> String {
    let p = problems(text);
    assert_eq!(p.len(), 1, "{p:#?}");
    p.into_iter().next().unwrap()
}

#[test]
fn a_valid_scenario_resolves_names_and_times() {
    let s = parse("s.ron", VALID, Overrides::default()).unwrap();
    assert_eq!(s.keys[0].spec.origin, crate::actors::kms::Origin::External);
    assert!(s.keys[0].spec.arn.starts_with("arn:aws:kms:us-east-1:111122223333:key/"));
    // Two declared creations, then the three timeline actions.
    assert_eq!(s.actions.len(), 5);
    assert_eq!(s.actions.get(4).unwrap().at.as_ms(), 2 * 3_600_000);
    assert_eq!(s.horizon.as_ms(), 10 * 86_400_000);
    let ActionSource::Timeline { line, .. } = &s.actions.get(2).unwrap().source else { panic!() };
    assert_eq!(*line, Some(11));
}

#[test]
fn key_ids_come_from_the_seed_and_the_key_name() {
    let a = parse("s.ron", VALID, Overrides::default()).unwrap();
    let b = parse("s.ron", VALID, Overrides::default()).unwrap();
    let c = parse("s.ron", VALID, Overrides { seed: Some(8), ..Overrides::default() }).unwrap();
    assert_eq!(a.keys[0].spec.key_id, b.keys[0].spec.key_id);
    assert_ne!(a.keys[0].spec.key_id, c.keys[0].spec.key_id);
    assert_eq!(c.seed, 8);
}

#[test]
fn syntax_errors_give_line_and_column() {
    let text =
        VALID.replace(r#"At("1h", CreateVolume(volume: "vol-1")),"#, r#"At("1h" CreateVolume(volume: "vol-1")),"#);
    let p = one_problem(&text);
    assert!(p.starts_with("s.ron:12:"), "{p}");
}

#[test]
fn unknown_fields_are_named_with_the_allowed_ones() {
    let text = VALID.replace("seed: 7,", "seed: 7,\n    sede: 8,");
    let p = one_problem(&text);
    assert!(p.starts_with("s.ron:7:"), "{p}");
    assert!(p.contains("sede") && p.contains("seed"), "{p}");
}

#[test]
fn dangling_references_name_what_exists() {
    let text =
        VALID.replace(r#"instance: "i-1")"#, r#"instance: "i-2")"#).replace(r#"key: "cmk")]"#, r#"key: "cmk-x")]"#);
    let p = problems(&text);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert_eq!(p[0], r#"s.ron:9:15: volumes[0].key: unknown key "cmk-x": declared keys are cmk"#);
    assert_eq!(p[1], r#"s.ron:13:9: timeline[2].instance: unknown instance "i-2": declared instances are i-1"#);
}

#[test]
fn duplicate_ids_are_refused_across_kinds() {
    let text = VALID.replace(r#"Instance(id: "i-1")"#, r#"Instance(id: "i-1"), Instance(id: "cmk")"#);
    let p = one_problem(&text);
    assert_eq!(p, r#"s.ron:8:38: instances[1].id: duplicate id "cmk": it already names a key"#);
}

#[test]
fn a_declared_id_a_fleet_also_generates_is_refused() {
    let fleet = r#"fleets: [Fleet(id: "web", instances: 12, volumes_per_instance: 2, keys: [("cmk", 1)], attached: Fixed("1h"), detached: Fixed("1h"))],
    timeline:"#;
    // The fleet's ids are web-i00..web-i11 and web-v00..web-v23: web-i0 and web-v24 are not.
    let ok = VALID
        .replace(r#"Instance(id: "i-1")"#, r#"Instance(id: "i-1"), Instance(id: "web-i0"), Instance(id: "web-v24")"#);
    parse("s.ron", &ok.replacen("timeline:", fleet, 1), Overrides::default()).unwrap();
    let text = VALID
        .replace(r#"Instance(id: "i-1")"#, r#"Instance(id: "i-1"), Instance(id: "web-i03")"#)
        .replace(
            r#"Volume(id: "vol-1", key: "cmk")"#,
            r#"Volume(id: "vol-1", key: "cmk"), Volume(id: "web-v23", key: "cmk")"#,
        )
        .replacen("timeline:", fleet, 1);
    let p = one_problem(&text);
    assert_eq!(
        p,
        r#"s.ron:10:14: fleets[0].id: fleet "web" generates the ids "web-i03" (an instance), "web-v23" (a volume), already declared: rename one"#
    );
}

#[test]
fn times_after_the_horizon_are_refused() {
    let text = VALID.replace(r#"At("2h","#, r#"At("11d","#);
    let p = one_problem(&text);
    assert!(p.contains("timeline[2]: \"11d\" is after the horizon (10d)"), "{p}");
}

#[test]
fn durations_out_of_range_are_refused() {
    // A ValidTo more than 365 days ahead is a call KMS refuses, simulated; not an input error.
    let text = VALID.replace(r#"After("30d")"#, r#"After("366d")"#).replace(
        r#"At("1h", CreateVolume(volume: "vol-1")),"#,
        r#"At("1h", ScheduleKeyDeletion(key: "cmk", pending_window_days: 3)),"#,
    );
    let p = one_problem(&text);
    assert!(p.contains("timeline[1].pending_window_days: 3 days is out of range"), "{p}");
}

#[test]
fn unreadable_durations_say_how_to_write_them() {
    let text = VALID.replace(r#"horizon: "10d""#, r#"horizon: "ten days""#);
    let p = one_problem(&text);
    assert!(p.contains("horizon") && p.contains(r#"write it like "90s", "6h", "30d" or "2d 4h""#), "{p}");
}

#[test]
fn names_must_be_defined_by_an_earlier_action() {
    let text = VALID.replace(
        r#"At("1h", CreateVolume(volume: "vol-1")),"#,
        r#"At("1h", ImportKeyMaterial(key: "cmk", material: "m1", expires: Never, token: "t9")),
        At("1h", Decrypt(ciphertext: "c1")),
        At("2h", Encrypt(key: "cmk", name: "c1")),"#,
    );
    let p = problems(&text);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(p[0].contains(r#"no earlier GetParametersForImport names the token "t9""#), "{}", p[0]);
    assert!(p[1].contains(r#"names the ciphertext "c1""#), "{}", p[1]);
}

#[test]
fn unsupported_versions_are_refused() {
    let p = one_problem(&VALID.replace("version: 1", "version: 2"));
    assert!(p.contains("version 2 is not supported"), "{p}");
}

#[test]
fn an_expectation_may_name_a_replacement_only_of_an_instance_auto_scaling_replaces() {
    let fleet = |replace: &str, subject: &str| {
        format!(
            r#"Scenario(version: 1, name: "t", start: "2026-03-01T00:00:00Z", horizon: "1d", seed: 1,
            keys: [Key(id: "k", origin: AWS_KMS)],
            fleets: [Fleet(id: "web", instances: 1, keys: [("k", 1)], attached: Fixed("1h"), detached: Fixed("1m"){replace})],
            expect: [Event(subject: "{subject}", event: "InstanceStateChanged", at: "1h")])"#
        )
    };
    let every = r#", replace_every: Fixed("1h")"#;
    assert!(parse("s.ron", &fleet(every, "web-i0-r1"), Overrides::default()).is_ok());
    assert!(parse("s.ron", &fleet(every, "web-i0-r12"), Overrides::default()).is_ok());
    for bad in ["web-i0-r0", "web-i0-r01", "web-i0-r", "web-i0-rx"] {
        assert!(
            one_problem(&fleet(every, bad)).contains("the replacements of web-i0 are web-i0-r1, web-i0-r2"),
            "{bad}"
        );
    }
    assert!(
        one_problem(&fleet(every, "web-i1-r1"))
            .contains("is not a declared key, volume, instance, snapshot, image, group or service resource")
    );
    let p = one_problem(&fleet("", "web-i0-r1"));
    assert!(p.contains("auto scaling does not replace web-i0"), "{p}");
}

/// The other services' resources: each mistake is one problem, at its field, that says what to do.
#[test]
fn service_resources_are_checked() {
    let scenario = |decls: &str, timeline: &str| {
        format!(
            r#"Scenario(version: 1, name: "s", start: "2026-01-01T00:00:00Z", horizon: "2d", seed: 1,
    keys: [Key(id: "k", origin: AwsKms)],
    {decls}
    timeline: [{timeline}],
)"#
        )
    };
    let cases = [
        (
            r#"services: [Service(kind: Efs, id: "f", key: "k", bucket_key: true)],"#,
            "",
            "only an S3 bucket has a bucket key",
        ),
        (
            r#"services: [Service(kind: S3, id: "b", key: "k", replica: true)],"#,
            "",
            "only a DynamoDB table is a global table's replica",
        ),
        (r#"services: [Service(kind: Rds, id: "d", key: "nope")],"#, "", "services[0].key: unknown key"),
        (r#"services: [Service(kind: Rds, id: "d", key: "k", count: 0)],"#, "", "services[0].count: 0 is out of range"),
        (
            r#"services: [Service(kind: Lambda, id: "l", key: "k", reboot_every: Fixed("1d"))],"#,
            "",
            "lambda function is not rebooted",
        ),
        (
            r#"services: [Service(kind: Rds, id: "d", key: "k", created: "3d")],"#,
            "",
            "services[0].created: after the horizon",
        ),
        (r#"parameters: (rds_detection: "0s"),"#, "", "parameters.rds_detection: 0s is too short"),
        (
            r#"services: [Service(kind: Secret, id: "x", key: "k")],"#,
            r#"At("1h", Reboot(resource: "x"))"#,
            "only RDS, Aurora and Redshift are rebooted",
        ),
        (
            r#"services: [Service(kind: S3, id: "x", key: "k")],"#,
            r#"At("1h", Restore(resource: "x"))"#,
            "only RDS, Aurora, Redshift and DynamoDB are restored",
        ),
        (
            r#"services: [Service(kind: Rds, id: "x", key: "k")],"#,
            r#"At("1h", Resize(resource: "x"))"#,
            "only a Redshift cluster is resized",
        ),
        ("", r#"At("1h", Request(resource: "nope"))"#, "unknown service resource"),
        (
            r#"services: [Service(kind: Rds, id: "x", key: "k")], expect: [Resource(resource: "x", at: "1h", is: "ACTIVE")],"#,
            "",
            "\"ACTIVE\" is not a state",
        ),
    ];
    for (decls, timeline, expected) in cases {
        let p = one_problem(&scenario(decls, timeline));
        assert!(p.contains(expected), "{decls} {timeline}: {p}");
    }
    let ok =
        scenario(r#"services: [Service(kind: Rds, id: "db", key: "k", count: 12, requests: Exponential("1h"))],"#, "");
    let s = parse("s.ron", &ok, Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.services.len(), 12);
    assert_eq!((&*s.services[0].name, &*s.services[11].name), ("db-00", "db-11"), "zero-padded to the same width");
}

/// Snapshots, images and groups: each mistake is one problem, at its field, that says what to do.
#[test]
fn snapshots_images_and_groups_are_checked() {
    let scenario = |decls: &str, timeline: &str| {
        format!(
            r#"Scenario(version: 1, name: "s", start: "2026-01-01T00:00:00Z", horizon: "2d", seed: 1,
    keys: [Key(id: "k", origin: AwsKms)],
    instances: [Instance(id: "i-a")],
    volumes: [Volume(id: "vol-a", key: "k")],
    {decls}
    timeline: [{timeline}],
)"#
        )
    };
    let cases = [
        (
            r#"snapshots: [Snapshot(id: "s1", volume: "vol-a", copy_of: "s0")],"#,
            "",
            "snapshots[0]: say what the snapshot is made from",
        ),
        (
            r#"snapshots: [Snapshot(id: "s1", copy_of: "s2"), Snapshot(id: "s2", volume: "vol-a")],"#,
            "",
            "is not declared before s1",
        ),
        (r#"snapshots: [Snapshot(id: "s1", volume: "vol-b")],"#, "", "snapshots[0].volume: unknown volume"),
        (r#"snapshots: [Snapshot(id: "s1", copy_of: "s0")],"#, "", "snapshots[0].copy_of: unknown snapshot"),
        (
            r#"snapshots: [Snapshot(id: "s1", volume: "vol-a"), Snapshot(id: "s2", copy_of: "s1")],"#,
            r#"At("1h", CreateSnapshot(snapshot: "s2"))"#,
            "s2 is declared as a copy (`copy_of`): make it with CopySnapshot",
        ),
        ("", r#"At("1h", RunInstances(instance: "i-a"))"#, "i-a is not declared with an `image`"),
        (r#"images: [Image(id: "ami", snapshots: ["s9"])],"#, "", "images[0].snapshots: unknown snapshot"),
        (
            r#"snapshots: [Snapshot(id: "s1", volume: "vol-a")], images: [Image(id: "ami", snapshots: ["s1"])], groups: [Group(id: "g", image: "ami", desired: 3, max: 2)],"#,
            "",
            "desired is at most max",
        ),
        (
            r#"snapshots: [Snapshot(id: "s1", volume: "vol-a")], images: [Image(id: "ami", snapshots: ["s1"])], groups: [Group(id: "g", image: "ami", desired: 1, cooldown: "0s")],"#,
            "",
            "groups[0].cooldown: the cooldown must last longer than zero",
        ),
        ("", r#"At("1h", SetDesiredCapacity(group: "nope", desired: 1))"#, "unknown group"),
        (
            r#"snapshots: [Snapshot(id: "s1", volume: "vol-a")], images: [Image(id: "ami", snapshots: ["s1"])], groups: [Group(id: "g", image: "ami", desired: 1)],"#,
            r#"At("1h", TerminateInstanceInAutoScalingGroup(group: "g", instance: "i-a"))"#,
            "i-a is not a place of group g: name one of its instances (g-i0, ...)",
        ),
        (
            r#"fleets: [Fleet(id: "f", instances: 1, image: "nope", keys: [("k", 1)], attached: Fixed("1h"), detached: Fixed("1m"))],"#,
            "",
            "fleets[0].image: unknown image",
        ),
        (
            r#"snapshots: [Snapshot(id: "s1", volume: "vol-a")], images: [Image(id: "ami", snapshots: ["s1"])], fleets: [Fleet(id: "f", instances: 10001, image: "ami", keys: [("k", 1)], attached: Fixed("1h"), detached: Fixed("1m"))],"#,
            "",
            "fleets[0].instances: 10001 instances: a fleet on a group runs at most 10000 here",
        ),
    ];
    for (decls, timeline, expected) in cases {
        let p = one_problem(&scenario(decls, timeline));
        assert!(p.contains(expected), "{decls} {timeline}: {p}");
    }
    let ok = scenario(
        r#"snapshots: [Snapshot(id: "s1", volume: "vol-a")], images: [Image(id: "ami", snapshots: ["s1"])], groups: [Group(id: "g", image: "ami", desired: 1)],"#,
        r#"At("1h", SetDesiredCapacity(group: "g", desired: 0))"#,
    );
    let s = parse("s.ron", &ok, Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&*s.instances[1], "g-i0", "a group of one place");
    assert_eq!(&*s.volumes[1].name, "g-i0-v0", "its launch's volume, restored from s1");
    let on_group = scenario(
        r#"snapshots: [Snapshot(id: "s1", volume: "vol-a")], images: [Image(id: "ami", snapshots: ["s1"])], fleets: [Fleet(id: "f", instances: 2, image: "ami", keys: [("k", 1)], attached: Fixed("1h"), detached: Fixed("1m"), replace_every: Fixed("1d"))],"#,
        r#"At("1h", TerminateInstanceInAutoScalingGroup(group: "f", instance: "f-i1")), At("2h", SetDesiredCapacity(group: "f", desired: 1))"#,
    );
    let s = parse("s.ron", &on_group, Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.groups.len(), 1, "a fleet on a group is a group named after it");
    assert_eq!((&*s.groups[0].name, s.groups[0].fleet, s.groups[0].desired), ("f", Some(0), 2));
    assert_eq!(s.groups[0].places.len(), 2, "its places are the fleet's instances");
    assert!(s.fleets[0].instance_cycle.is_none(), "the group replaces them, not A10");
    assert!(s.fleets[0].cycle.by_group);
    let names: Vec<&str> = s.volumes.iter().map(|v| &*v.name).collect();
    assert_eq!(names, ["vol-a", "f-i0-v0", "f-i1-v0", "f-v0", "f-v1"], "launch volumes before the fleet's own");
    assert_eq!(s.volumes[1].snapshot(), Some(0));
}

#[test]
fn counts_beyond_the_limits_are_refused_before_anything_is_made() {
    let fleet = VALID.replace(
        "    timeline: [",
        "    fleets: [Fleet(id: \"f\", instances: 4000000, volumes_per_instance: 2, keys: [(\"cmk\", 1)],\n              attached: Fixed(\"1h\"), detached: Fixed(\"1m\"))],\n    timeline: [",
    );
    assert!(one_problem(&fleet).contains("more than 5000000 instances and volumes in all: split the estate"));
    let services = VALID.replace(
        "    timeline: [",
        "    services: [Service(kind: S3, id: \"b\", key: \"cmk\", count: 1000001)],\n    timeline: [",
    );
    assert!(
        one_problem(&services)
            .contains("1000001 is out of range: a scenario declares 1 to 1000000 service resources in all")
    );
}

#[test]
fn a_fleet_member_named_without_its_leading_zeros_gets_the_padded_name_suggested() {
    let text = r#"Scenario(version: 1, name: "f", start: "2026-01-01T00:00:00Z", horizon: "1d", seed: 1,
        keys: [Key(id: "k", origin: External)],
        fleets: [Fleet(id: "web", instances: 12, keys: [("k", 1)], attached: Fixed("1h"), detached: Fixed("1m"))],
        expect: [Status(resource: "web-v7", is: "unaffected"), Volume(volume: "web-v7", at: "1h", is: "in-use"),
                 Status(resource: "web-v70", is: "unaffected")],
    )"#;
    let p = problems(text);
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(p[0].ends_with("\"web-v7\" is not a declared volume, instance, snapshot, image, group or service resource; did you mean \"web-v07\"? (a fleet numbers its members with as many digits as its largest)"), "{}", p[0]);
    assert!(p[1].ends_with("unknown volume \"web-v7\"; did you mean \"web-v07\"? (a fleet numbers its members with as many digits as its largest)"), "{}", p[1]);
    assert!(p[2].ends_with("service resource"), "no member is numbered 70: {}", p[2]);
}
