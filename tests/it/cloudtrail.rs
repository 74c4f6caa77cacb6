//! CloudTrail both ways: records shaped as the reference's examples, a golden log for the EBS
//! story, the round trip (run, export, import, run: same outcomes), and hostile input.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use kmsim::analysis::summary::{AtEnd, summarize};
use kmsim::engine::SimDuration;
use kmsim::import::Trail;
use kmsim::report::cloudtrail;
use kmsim::run::{Run, RunOptions, run};
use kmsim::scenario::{self, Overrides, Scenario};

use super::golden::check_or_bless;
use super::{all_scenarios, load};

pub(super) fn records_of(rel: &str) -> Vec<Value> {
    let s = load(rel);
    let r = run(&s, &RunOptions::default(), None).unwrap();
    cloudtrail::records(&r)
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

/// Compares one emitted record with the reference's example of the same event: the same fields at
/// the top, in `userIdentity`, `requestParameters`, `responseElements` and `resources`, and the same
/// values where a value is not an ID, a time, an account or a Region.
fn compare(example: &Value, ours: &Value) {
    let name = example["eventName"].as_str().unwrap();
    assert_eq!(keys(example), keys(ours), "{name}: top-level fields");
    assert_eq!(keys(&example["userIdentity"]), keys(&ours["userIdentity"]), "{name}: userIdentity fields");
    for field in ["requestParameters", "responseElements", "serviceEventDetails"] {
        let (e, o) = (&example[field], &ours[field]);
        assert_eq!(e.is_null(), o.is_null(), "{name}: {field} null or not");
        // kmsim does not model key material descriptions.
        let mut expected = keys(e);
        expected.remove("keyMaterialDescription");
        assert_eq!(expected, keys(o), "{name}: {field} fields");
    }
    // kmsim writes the current version; older example pages show 1.08.
    if example["eventVersion"] == cloudtrail::EVENT_VERSION {
        assert_eq!(ours["eventVersion"], cloudtrail::EVENT_VERSION);
    }
    for field in [
        "eventSource",
        "eventName",
        "eventType",
        "readOnly",
        "managementEvent",
        "eventCategory",
        "errorCode",
        "userAgent",
    ] {
        assert_eq!(example.get(field), ours.get(field), "{name}: {field}");
    }
    assert_eq!(example["userIdentity"]["type"], ours["userIdentity"]["type"], "{name}: identity type");
    assert_eq!(example["userIdentity"]["invokedBy"], ours["userIdentity"]["invokedBy"], "{name}: invokedBy");
    assert_eq!(example["resources"][0]["type"], ours["resources"][0]["type"], "{name}: resource type");
    if example["sourceIPAddress"] == "AWS Internal" {
        assert_eq!(ours["sourceIPAddress"], "AWS Internal", "{name}: service events come from AWS Internal");
    }
    if let Some(msg) = example["errorMessage"].as_str() {
        let tail = msg.split_once(' ').unwrap().1;
        assert!(ours["errorMessage"].as_str().unwrap().ends_with(tail), "{name}: error message");
    }
    let ctx = &example["requestParameters"]["encryptionContext"];
    if !ctx.is_null() {
        assert_eq!(keys(ctx), keys(&ours["requestParameters"]["encryptionContext"]), "{name}: encryption context");
    }
}

#[test]
fn records_match_the_reference_examples_field_by_field() {
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/cloudtrail-examples.json");
    let Ok(text) = std::fs::read_to_string(&reference) else {
        // The reference lives beside the repository; a checkout without it has nothing to compare.
        eprintln!("{} not found: skipped", reference.display());
        return;
    };
    let examples: Value = serde_json::from_str(&text).unwrap();
    let ours: Vec<Value> =
        ["import/expiry-valid-to.ron", "ebs/ebs-story.ron", "lifecycle/scheduled-deletion-irreversible.ron"]
            .iter()
            .flat_map(|s| records_of(s))
            .collect();
    let examples = examples["Records"].as_array().unwrap();
    assert_eq!(examples.len(), 6);
    for example in examples {
        let name = &example["eventName"];
        let error = example.get("errorCode");
        let found = ours
            .iter()
            .find(|r| &r["eventName"] == name && r.get("errorCode") == error)
            .unwrap_or_else(|| panic!("kmsim writes no {name} record like the example"));
        compare(example, found);
    }
}

#[test]
fn the_ebs_story_log_is_golden() {
    let s = load("ebs/ebs-story.ron");
    let r = run(&s, &RunOptions::default(), None).unwrap();
    check_or_bless("tests/golden/cloudtrail/ebs-story.json", &cloudtrail::log_file(&r));
}

/// What must survive the round trip: each key's state changes and each volume's and instance's
/// breaks and status, in absolute time.
/// Per key ID, its state changes as (absolute ms, state).
type KeyChanges = Vec<(String, Vec<(i64, String)>)>;

fn outcomes(s: &Scenario, r: &Run<'_>, unit: i64) -> (KeyChanges, Vec<String>) {
    let sum = summarize(r);
    let abs = |t: kmsim::engine::SimTime| (s.start.as_millisecond() + i64::try_from(t.as_ms()).unwrap()) / unit;
    let keys = sum
        .keys
        .iter()
        .map(|k| {
            let changes = k
                .changes
                .iter()
                .map(|(t, _, to, _)| (abs(*t), to.map_or("deleted".into(), |x| x.to_string())))
                .collect();
            (s.key(k.key).spec.key_id.clone(), changes)
        })
        .collect();
    // A volume or snapshot that was never made and never broke leaves no trace in a trail (a
    // refused CreateVolume names no volume; a refused DeleteSnapshot of one never made, none
    // either): it is not something a round trip can bring back.
    let never_made = |res: &&kmsim::analysis::summary::ResourceSummary| {
        matches!(res.at_end, AtEnd::Volume { state: None, .. } | AtEnd::State { state: None })
            && res.kind != "image"
            && res.status == kmsim::analysis::standing::Standing::Unaffected
            && res.breaks.is_empty()
    };
    let mut resources: Vec<String> = sum
        .resources
        .iter()
        .filter(|res| !never_made(res))
        .map(|res| {
            let breaks: Vec<String> = res.breaks.iter().map(|b| format!("{} {}", abs(b.broke_at), b.how)).collect();
            format!("{} {} [{}]", res.name, res.status.as_str(), breaks.join(", "))
        })
        .collect();
    resources.sort();
    (keys, resources)
}

fn round_trip(rel: &str) {
    round_trip_in(rel, 1);
}

/// The round trip, with times compared in `unit` milliseconds (CloudTrail's are whole seconds).
fn round_trip_in(rel: &str, unit: i64) {
    let s = load(rel);
    let r = run(&s, &RunOptions::default(), None).unwrap();
    let log = cloudtrail::log_file(&r);
    let mut trail = Trail::default();
    trail.read("log.json", log.as_bytes()).unwrap();
    // The imported run ends where the original did.
    let last = r.records.last().unwrap().at;
    let after = s.horizon - last;
    let text = trail.scenario(&["log.json".into()], after).unwrap();
    let imported =
        scenario::parse("imported.ron", &text, Overrides::default()).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let r2 = run(&imported, &RunOptions::default(), None).unwrap();
    let (k1, res1) = outcomes(&s, &r, unit);
    let (k2, res2) = outcomes(&imported, &r2, unit);
    assert_eq!(res1, res2, "{rel}: resource outcomes differ after the round trip\n{text}");
    for (id, changes) in &k1 {
        let other = k2.iter().find(|(i, _)| i == id).map(|x| &x.1);
        // A key that never showed up in the trail (no call touched it) cannot come back.
        if let Some(other) = other {
            assert_eq!(changes, other, "{rel}: key {id} changes differ\n{text}");
        }
    }
}

#[test]
fn every_bundled_ebs_scenario_survives_the_round_trip() {
    let dir = super::scenarios_dir().join("ebs");
    let mut n = 0;
    for path in all_scenarios().into_iter().filter(|p| p.starts_with(&dir)) {
        round_trip(path.strip_prefix(super::scenarios_dir()).unwrap().to_str().unwrap());
        n += 1;
    }
    assert!(n >= 3);
}

#[test]
fn other_scenarios_with_ec2_actions_survive_the_round_trip() {
    for rel in [
        "import/expiry-valid-to.ron",
        "lifecycle/disable-vs-delete-material.ron",
        "lifecycle/scheduled-deletion-irreversible.ron",
        "ec2/instance-several-keys.ron",
        "ec2/hibernate-and-resume.ron",
    ] {
        round_trip(rel);
    }
}

/// Snapshots, copies under another key and restores: the trail carries CreateSnapshot,
/// CopySnapshot (with its key), DeleteSnapshot and CreateVolume's snapshotId, and EBS's KMS
/// calls name the copy's own id as their context; the imported scenario tells the same story.
#[test]
fn every_snapshot_scenario_survives_the_round_trip() {
    let dir = super::scenarios_dir().join("snapshots");
    let mut n = 0;
    for path in all_scenarios().into_iter().filter(|p| p.starts_with(&dir)) {
        round_trip(path.strip_prefix(super::scenarios_dir()).unwrap().to_str().unwrap());
        n += 1;
    }
    assert!(n >= 4);
}

/// Auto scaling groups (A13) and a fleet on one (A14): the trail carries the group's creation, its
/// desired capacities, its launches (tagged with its name) and auto scaling's terminations; the
/// imported scenario declares the group, replays a health check's termination as
/// TerminateInstanceInAutoScalingGroup, names each launched instance by its place and finds the
/// cooldown from the trail, and every resource (the group, its places, their volumes, the fleet's
/// volumes) ends as it did, breaking at the same second.
#[test]
fn groups_survive_the_round_trip() {
    for rel in ["groups/capacity-drains.ron", "fleet/fleet-on-group.ron"] {
        round_trip_in(rel, 1000);
        let s = load(rel);
        let r = run(&s, &RunOptions::default(), None).unwrap();
        let mut trail = Trail::default();
        trail.read("log.json", cloudtrail::log_file(&r).as_bytes()).unwrap();
        let text = trail.scenario(&["log.json".into()], SimDuration::ZERO).unwrap();
        assert!(text.contains("cooldown: \"1h\""), "{rel}: the cooldown is found from the trail\n{text}");
        assert!(text.contains("TerminateInstanceInAutoScalingGroup"), "{rel}: health checks replayed\n{text}");
        assert!(!text.contains("-r1"), "{rel}: launched instances are named by their place\n{text}");
    }
}

/// A rotation, the old material's deletion and its reimport: the trail carries the import types,
/// the rotation and the deleted material's id, and the imported scenario tells the same story.
#[test]
fn the_rotation_story_survives_the_round_trip() {
    round_trip("rotation/rotate-then-delete-old.ron");
    round_trip("rotation/non-current-expires.ron");
}

/// A multi-Region key (D14) is not understood: its volumes are left out with their events, said
/// so in the header, and the scenario written is valid (it was not: it named undeclared volumes).
#[test]
fn volumes_of_a_key_not_understood_are_left_out_with_their_events() {
    let log = serde_json::to_string(&serde_json::json!({"Records": records_of("rotation/rotate-then-delete-old.ron")}))
        .unwrap();
    let key_id = load("rotation/rotate-then-delete-old.ron").keys[0].spec.key_id.clone();
    let log = log.replace(&key_id, "mrk-1234abcd12ab34cd56ef1234567890ab");
    let mut trail = Trail::default();
    trail.read("mrk.json", log.as_bytes()).unwrap();
    let text = trail.scenario(&["mrk.json".into()], kmsim::engine::SimDuration::from_days(1)).unwrap();
    scenario::parse("imported.ron", &text, Overrides::default()).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(text.contains("not a single-Region key ID"), "{text}");
    assert!(
        text.contains("volume vol-old is attached but no understood event names its key: left out, with its 4 events"),
        "{text}"
    );
    assert!(!text.contains("AttachVolume(volume: \"vol-old\""), "{text}");
}

/// A key the trail shows only being used: its origin is not guessed silently. The header and the
/// command's output say so, `--external` states it, and a CreateKey record tells it.
#[test]
fn a_key_whose_origin_the_trail_does_not_show_is_said_so_and_can_be_stated() {
    let records: Vec<Value> = records_of("ebs/ebs-story.ron")
        .into_iter()
        .filter(|r| {
            !["ImportKeyMaterial", "GetParametersForImport", "DeleteImportedKeyMaterial"]
                .contains(&r["eventName"].as_str().unwrap())
        })
        .collect();
    let key_id = load("ebs/ebs-story.ron").keys[0].spec.key_id.clone();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("trail.json");
    std::fs::write(&log, serde_json::to_string(&serde_json::json!({"Records": records})).unwrap()).unwrap();
    let import = |extra: &[&str]| {
        let out_file = dir.path().join("estate.ron");
        let out = Command::new(env!("CARGO_BIN_EXE_kmsim"))
            .args(["import-cloudtrail", log.to_str().unwrap(), "-o", out_file.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        (String::from_utf8_lossy(&out.stderr).into_owned(), std::fs::read_to_string(out_file).unwrap())
    };
    let (said, text) = import(&[]);
    assert!(said.contains("does not show where its material comes from"), "{said}");
    assert!(said.contains(&format!("--external {key_id}")), "{said}");
    assert!(text.contains("// Note: key key-") && text.contains("origin: AwsKms"), "{text}");
    let (said, text) = import(&["--external", &key_id]);
    assert!(said.contains("imported material, as --external says"), "{said}");
    assert!(text.contains("origin: External"), "{text}");
    assert!(text.contains("material: \"m-before-trail\""), "{text}");
    // A CreateKey record of an EXTERNAL key tells the origin: nothing to say.
    let mut with_create = records_of("ebs/ebs-story.ron");
    let mut create = with_create[0].clone();
    create["eventName"] = "CreateKey".into();
    create["requestParameters"] = serde_json::json!({"origin": "EXTERNAL", "keySpec": "SYMMETRIC_DEFAULT"});
    create["responseElements"] = serde_json::json!({"keyMetadata": {"keyId": key_id, "origin": "EXTERNAL"}});
    create["eventID"] = "00000000-0000-4000-8000-000000000000".into();
    with_create.insert(0, create);
    let mut trail = Trail::default();
    trail
        .read("log.json", serde_json::to_string(&serde_json::json!({"Records": with_create})).unwrap().as_bytes())
        .unwrap();
    let text = trail.scenario(&["log.json".into()], kmsim::engine::SimDuration::from_days(1)).unwrap();
    assert!(!text.contains("does not show where its material comes from"), "{text}");
    assert!(text.contains("origin: External"), "{text}");
}

/// `aws cloudtrail lookup-events` prints the newest event first, each record as a JSON string;
/// piped into `kmsim import-cloudtrail -` it gives the scenario the delivered log file gives.
#[test]
fn lookup_events_output_on_standard_input_imports_as_the_log_file_does() {
    let records = records_of("ebs/ebs-story.ron");
    let events: Vec<Value> = records
        .iter()
        .rev()
        .map(|r| {
            serde_json::json!({
                "EventId": r["eventID"], "EventName": r["eventName"], "ReadOnly": "false",
                "EventSource": r["eventSource"], "Resources": [], "CloudTrailEvent": r.to_string(),
            })
        })
        .collect();
    let lookup = serde_json::to_string_pretty(&serde_json::json!({"Events": events, "NextToken": "t"})).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let from_stdin = dir.path().join("stdin.ron");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kmsim"))
        .args(["import-cloudtrail", "-", "-o", from_stdin.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(lookup.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    let mut trail = Trail::default();
    trail
        .read("log.json", serde_json::to_string(&serde_json::json!({"Records": records})).unwrap().as_bytes())
        .unwrap();
    let delivered = trail.scenario(&["log.json".into()], kmsim::engine::SimDuration::from_days(1)).unwrap();
    let body = |t: &str| t.lines().filter(|l| !l.starts_with("//")).collect::<Vec<_>>().join("\n");
    let imported = std::fs::read_to_string(&from_stdin).unwrap();
    assert_eq!(body(&imported), body(&delivered));
    assert!(imported.starts_with("// Imported from CloudTrail by `kmsim import-cloudtrail`: standard input"));
}

/// A launch with block-device mappings logs no AttachVolume: EC2's grant and Decrypt by the
/// instance's role show the attachment. Without the EBS story's AttachVolume records, the volume
/// is still attached at each of those Decrypts, and the verdicts are the story's.
#[test]
fn an_attachment_seen_only_through_ec2s_decrypt_is_replayed() {
    let s = load("ebs/ebs-story.ron");
    let r = run(&s, &RunOptions::default(), None).unwrap();
    let records: Vec<Value> = cloudtrail::records(&r)
        .into_iter()
        .filter(|x| !(x["eventSource"] == "ec2.amazonaws.com" && x["eventName"] == "AttachVolume"))
        .collect();
    let mut trail = Trail::default();
    trail
        .read("log.json", serde_json::to_string(&serde_json::json!({"Records": records})).unwrap().as_bytes())
        .unwrap();
    let after = s.horizon - r.records.last().unwrap().at;
    let text = trail.scenario(&["log.json".into()], after).unwrap();
    assert_eq!(text.matches("AttachVolume(volume: \"vol-data\", instance: \"i-app\")").count(), 3, "{text}");
    assert!(text.contains("no AttachVolume in the trail"), "{text}");
    let imported = scenario::parse("imported.ron", &text, Overrides::default()).unwrap();
    let r2 = run(&imported, &RunOptions::default(), None).unwrap();
    assert_eq!(outcomes(&s, &r, 1).1, outcomes(&imported, &r2, 1).1, "{text}");
}

/// A delivered log file whose record is longer than a line may be is refused with the record's
/// number, as a JSON Lines file is, before the record is held whole.
#[test]
fn a_record_longer_than_the_limit_is_refused_in_a_delivered_file() {
    let mut records = records_of("ebs/ebs-story.ron");
    records[1]["requestParameters"]["padding"] =
        "x".repeat(usize::try_from(kmsim::import::MAX_LINE + 1024).unwrap()).into();
    let log = serde_json::to_string(&serde_json::json!({"Records": records})).unwrap();
    let e = import_err(log.as_bytes());
    assert!(e.contains("record 2") && e.contains("longer than 16 MiB"), "{e}");
}

fn import_err(input: &[u8]) -> String {
    let mut trail = Trail::default();
    trail.read("bad.json", input).unwrap_err().to_string()
}

#[test]
fn hostile_input_gets_a_clear_error_naming_file_and_record() {
    let good = records_of("ebs/ebs-story.ron");
    let log = serde_json::to_string(&serde_json::json!({"Records": good})).unwrap();
    let truncated = import_err(&log.as_bytes()[..log.len() / 2]);
    assert!(truncated.starts_with("bad.json: ") && truncated.contains("truncated"), "{truncated}");
    let mut missing = good.clone();
    missing[3].as_object_mut().unwrap().remove("eventTime");
    let e = import_err(serde_json::to_string(&serde_json::json!({"Records": missing})).unwrap().as_bytes());
    assert!(e.contains("record 4: missing eventTime"), "{e}");
    let mut wrong = good.clone();
    wrong[2]["eventTime"] = serde_json::json!(5);
    let e = import_err(serde_json::to_string(&serde_json::json!({"Records": wrong})).unwrap().as_bytes());
    assert!(e.contains("record 3"), "{e}");
    let e = import_err(b"this is not json");
    assert!(e.starts_with("bad.json: line 1: not a CloudTrail record"), "{e}");
    let huge_line = vec![b'x'; usize::try_from(kmsim::import::MAX_LINE).unwrap() + 10];
    let e = import_err(&huge_line);
    assert!(e.contains("longer than 16 MiB"), "{e}");
}

#[test]
fn gzip_jsonl_duplicates_and_disorder_give_the_same_scenario() {
    let good = records_of("ebs/ebs-story.ron");
    let plain = serde_json::to_string(&serde_json::json!({"Records": good})).unwrap();
    let mut a = Trail::default();
    a.read("a.json", plain.as_bytes()).unwrap();
    let expected = a.scenario(&["x".into()], kmsim::engine::SimDuration::from_days(1)).unwrap();
    // JSON Lines, shuffled, with every record twice, gzipped.
    let mut lines: Vec<String> = good.iter().map(|r| serde_json::to_string(r).unwrap()).collect();
    lines.extend(lines.clone());
    lines.reverse();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(lines.join("\n").as_bytes()).unwrap();
    let bytes = gz.finish().unwrap();
    let mut b = Trail::default();
    b.read("b.jsonl.gz", bytes.as_slice()).unwrap();
    let got = b.scenario(&["x".into()], kmsim::engine::SimDuration::from_days(1)).unwrap();
    let body = |t: &str| t.lines().filter(|l| !l.starts_with("//")).collect::<Vec<_>>().join("\n");
    assert_eq!(body(&expected), body(&got));
    assert!(
        got.contains(&format!(
            "// {} records read; {} duplicates of understood events removed (same eventID);",
            2 * good.len(),
            good.len()
        )),
        "{got}"
    );
    assert!(!got.contains(" 0 out of order"), "the reversed records were counted as out of order");
}

#[test]
fn events_not_understood_are_listed_never_dropped() {
    let mut recs = records_of("ebs/ebs-story.ron");
    let mut odd = recs[0].clone();
    odd["eventName"] = serde_json::json!("PutBucketPolicy");
    odd["eventSource"] = serde_json::json!("s3.amazonaws.com");
    odd["eventID"] = serde_json::json!("00000000-0000-4000-8000-000000000001");
    recs.push(odd);
    let mut t = Trail::default();
    t.read("x", serde_json::to_string(&serde_json::json!({"Records": recs})).unwrap().as_bytes()).unwrap();
    let text = t.scenario(&["x".into()], kmsim::engine::SimDuration::from_days(1)).unwrap();
    assert!(text.contains("// 1 events not understood, left out: PutBucketPolicy x1."), "{text}");
}

#[test]
fn cli_exports_and_imports() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("trail.json");
    let out_ron = dir.path().join("imported.ron");
    let story = super::scenarios_dir().join("ebs/ebs-story.ron");
    let bin = env!("CARGO_BIN_EXE_kmsim");
    let ok = Command::new(bin)
        .args(["run", story.to_str().unwrap(), "-q", "--cloudtrail", log.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(ok.success());
    let out = Command::new(bin)
        .args(["import-cloudtrail", log.to_str().unwrap(), "-o", out_ron.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(bin).args(["run", out_ron.to_str().unwrap(), "-q"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    std::fs::write(&log, "{\"Records\": [").unwrap();
    let out = Command::new(bin)
        .args(["import-cloudtrail", log.to_str().unwrap(), "-o", out_ron.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("trail.json: "));
}

/// The fields issue #15 named: a refused AttachVolume carries EC2's error, an import's type
/// says whether the material is new, EnableKey and DisableKey name the key in their response.
#[test]
fn records_carry_outcomes_import_types_and_key_arns_as_aws_does() {
    let story = records_of("ebs/ebs-story.ron");
    let attaches: Vec<&Value> = story.iter().filter(|r| r["eventName"] == "AttachVolume").collect();
    assert_eq!(attaches.len(), 3);
    assert!(attaches[0].get("errorCode").is_none());
    assert_eq!(attaches[1]["errorCode"], "CustomerKeyHasBeenRevoked");
    assert_eq!(
        attaches[1]["errorMessage"],
        "Volume vol-data cannot be attached. The encrypted volume was unable to access the KMS master key."
    );
    assert_eq!(attaches[1]["responseElements"], Value::Null);
    let imports: Vec<&Value> = story.iter().filter(|r| r["eventName"] == "ImportKeyMaterial").collect();
    let types: Vec<&Value> = imports.iter().map(|r| &r["requestParameters"]["importType"]).collect();
    assert_eq!(types, ["NEW_KEY_MATERIAL", "EXISTING_KEY_MATERIAL"]);
    // Terminating an instance detaches its volumes: EC2's doing, no DetachVolume call.
    let terminated = records_of("ec2/terminate-and-replace.ron");
    assert!(!terminated.iter().any(|r| r["eventName"] == "DetachVolume"));
    let lifecycle = records_of("lifecycle/disable-vs-delete-material.ron");
    for name in ["EnableKey", "DisableKey"] {
        let r = lifecycle.iter().find(|r| r["eventName"] == name && r.get("errorCode").is_none()).unwrap();
        assert_eq!(r["responseElements"]["keyId"], r["resources"][0]["ARN"], "{name}");
    }
}

/// A fleet's own actions are calls in the log, made by the user's automation, and importing the
/// log gives every resource the same verdict (times to CloudTrail's second).
#[test]
fn a_fleets_log_has_its_actions_and_imports_back_to_the_same_verdicts() {
    let s = load("fleet/fleet-material-deleted.ron");
    let r = run(&s, &RunOptions::default(), None).unwrap();
    let log = cloudtrail::log_file(&r);
    let v: Value = serde_json::from_str(&log).unwrap();
    let recs = v["Records"].as_array().unwrap();
    for name in ["RunInstances", "StopInstances", "StartInstances", "RebootInstances", "AttachVolume", "DetachVolume"] {
        let calls: Vec<&Value> = recs.iter().filter(|r| r["eventName"] == name).collect();
        assert!(!calls.is_empty(), "no {name} in the fleet's log");
        assert!(calls.iter().all(|c| c["userIdentity"]["userName"] == "alice"), "{name} by someone else");
    }
    let mut trail = Trail::default();
    trail.read("log.json", log.as_bytes()).unwrap();
    let after = s.horizon - r.records.last().unwrap().at;
    let text = trail.scenario(&["log.json".into()], after).unwrap();
    let imported = scenario::parse("imported.ron", &text, Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
    let r2 = run(&imported, &RunOptions::default(), None).unwrap();
    let verdicts = |s: &Scenario, r: &Run<'_>| {
        let sum = summarize(r);
        let second = |t: kmsim::engine::SimTime| (s.start.as_millisecond() + i64::try_from(t.as_ms()).unwrap()) / 1000;
        let mut out: Vec<String> = sum
            .resources
            .iter()
            .map(|res| {
                let breaks: Vec<String> =
                    res.breaks.iter().map(|b| format!("{} {}", second(b.broke_at), b.how)).collect();
                format!("{} {} [{}]", res.name, res.status.as_str(), breaks.join(", "))
            })
            .collect();
        out.sort();
        out
    };
    assert_eq!(verdicts(&s, &r), verdicts(&imported, &r2), "{text}");
}

/// Ids that share their first eight characters stay apart in the scenario written (the shortest
/// prefix that tells them apart), and a key id that is not one is listed, never guessed or a panic.
#[test]
fn ids_sharing_a_prefix_stay_apart_and_any_text_is_a_name() {
    let import = |key: &str, material: &str, t: &str| {
        format!(
            r#"{{"eventVersion":"1.11","userIdentity":{{"type":"IAMUser","userName":"alice","accountId":"111122223333"}},"eventTime":"{t}","eventSource":"kms.amazonaws.com","eventName":"ImportKeyMaterial","awsRegion":"us-east-1","requestParameters":{{"keyId":"{key}","expirationModel":"KEY_MATERIAL_DOES_NOT_EXPIRE"}},"responseElements":{{"keyId":"arn:aws:kms:us-east-1:111122223333:key/{key}","keyMaterialId":"{material}"}},"eventID":"{t}{key}"}}"#
        )
    };
    let log = format!(
        "{{\"Records\": [{}, {}, {}]}}",
        import("1234abcd-0000-0000-0000-000000000001", "aaaaaaaa11", "2026-01-01T00:00:00Z"),
        import("1234abcd-0000-0000-0000-000000000002", "aaaaaaaa22", "2026-01-01T00:01:00Z"),
        import("1234abcd-0000-0000-0000-000000000002", "aaaaaaaa11", "2026-01-01T00:02:00Z"),
    );
    let mut trail = Trail::default();
    trail.read("log.json", log.as_bytes()).unwrap();
    let text = trail.scenario(&["log.json".into()], kmsim::engine::SimDuration::from_days(1)).unwrap();
    let s = scenario::parse("imported.ron", &text, Overrides::default()).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(s.keys.len(), 2, "{text}");
    assert!(text.contains("key-1234abcd-0000-0000-0000-000000000001"), "{text}");
    // The second key's second import is of another material: KMS refuses it, as it should.
    let r = run(&s, &RunOptions::default(), None).unwrap();
    let refused = r.records.iter().filter(|x| {
        let d = kmsim::report::describe::describe(&r.names, x);
        d.event == "ImportKeyMaterial" && d.error.as_deref() == Some("IncorrectKeyMaterialException")
    });
    assert_eq!(refused.count(), 1, "{text}");
    // Not a key ID (non-ASCII here): listed as not understood, not guessed, never a panic.
    let mut trail = Trail::default();
    let bad = format!(
        "{{\"Records\": [{}, {}]}}",
        import("1234abcd-0000-0000-0000-000000000001", "aaaaaaaa11", "2026-01-01T00:00:00Z"),
        import("ééééééééé-ü", "ééééééééé", "2026-01-01T00:03:00Z")
    );
    trail.read("bad.json", bad.as_bytes()).unwrap();
    let text = trail.scenario(&["bad.json".into()], kmsim::engine::SimDuration::from_days(1)).unwrap();
    assert!(text.contains("not a single-Region key ID"), "{text}");
}

/// A random estate of what CloudTrail carries: keys with imported material, volumes attached and
/// detached, instances stopped, started and rebooted, material deleted, reimported and rotated,
/// keys disabled and enabled, and in a third of them a fleet cycling by itself (sometimes
/// stopping its instances).
fn random_estate(seed: u64) -> String {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let keys = rng.random_range(1..=2usize);
    let instances = rng.random_range(1..=3usize);
    let volumes = rng.random_range(1..=4usize);
    let mut timeline: Vec<String> = (0..keys)
        .map(|k| format!("At(\"0s\", ImportKeyMaterial(key: \"k{k}\", material: \"m{k}\", expires: Never))"))
        .collect();
    for v in 0..volumes {
        timeline.push(format!("At(\"{}m\", CreateVolume(volume: \"v{v}\"))", rng.random_range(1..30)));
    }
    for _ in 0..rng.random_range(5..30) {
        let at = format!("{}m", rng.random_range(30..2 * 24 * 60));
        let (v, i, k) = (rng.random_range(0..volumes), rng.random_range(0..instances), rng.random_range(0..keys));
        let m = ["", "b"][rng.random_range(0..2usize)];
        let action = match rng.random_range(0..14) {
            0..=2 => format!("AttachVolume(volume: \"v{v}\", instance: \"i{i}\")"),
            3 | 4 => format!("DetachVolume(volume: \"v{v}\")"),
            5 => format!("StopInstances(instance: \"i{i}\")"),
            6 => format!("StartInstances(instance: \"i{i}\")"),
            7 => format!("RebootInstances(instance: \"i{i}\")"),
            8 => format!("DeleteImportedKeyMaterial(key: \"k{k}\")"),
            9 => format!("ImportKeyMaterial(key: \"k{k}\", material: \"m{k}{m}\", expires: Never)"),
            10 => format!("ImportKeyMaterial(key: \"k{k}\", material: \"m{k}b\", expires: Never, import_type: New)"),
            11 => format!("RotateKeyOnDemand(key: \"k{k}\")"),
            12 => format!("DisableKey(key: \"k{k}\")"),
            _ => format!("EnableKey(key: \"k{k}\")"),
        };
        timeline.push(format!("At(\"{at}\", {action})"));
    }
    // Sometimes a fleet that cycles by itself (its automation's calls are in the trail), and
    // whose instances stop now and then.
    let fleet = if rng.random_range(0..3) == 0 {
        let stops = if rng.random_range(0..2) == 0 {
            ", stop_every: Exponential(\"1d\"), stopped_for: Fixed(\"10m\")"
        } else {
            ""
        };
        // And sometimes auto scaling replaces its instances (A10).
        let replaced = if rng.random_range(0..3) == 0 { ", replace_every: Exponential(\"1d\")" } else { "" };
        format!(
            "fleets: [Fleet(id: \"f\", instances: {}, volumes_per_instance: {}, keys: [(\"k0\", 1)], attached: Exponential(\"{}h\"), detached: Exponential(\"30m\"){stops}{replaced})],",
            rng.random_range(1..=3),
            rng.random_range(1..=2),
            rng.random_range(2..12)
        )
    } else {
        String::new()
    };
    let list = |n: usize, f: &dyn Fn(usize) -> String| (0..n).map(f).collect::<Vec<_>>().join(", ");
    format!(
        "Scenario(version: 1, name: \"estate {seed}\", start: \"2026-01-01T00:00:00Z\", horizon: \"3d\", seed: {seed},
    keys: [{}], instances: [{}], volumes: [{}], {fleet}
    timeline: [{}],
)",
        list(keys, &|k| format!("Key(id: \"k{k}\", origin: External)")),
        list(instances, &|i| format!("Instance(id: \"i{i}\")")),
        list(volumes, &|v| format!("Volume(id: \"v{v}\", key: \"k{}\")", v % keys)),
        timeline.join(",\n        ")
    )
}

/// The round trip as a property: for random estates, run -> CloudTrail -> import -> run gives every
/// resource the same verdict and breaks.
#[test]
fn random_estates_survive_the_round_trip() {
    let n: u64 = std::env::var("KMSIM_SWARM").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let mut differ = Vec::new();
    let mut with_breaks = 0;
    let mut replaced = 0;
    for seed in 0..n {
        let text = random_estate(seed);
        let s = scenario::parse("estate.ron", &text, Overrides::default()).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let r = run(&s, &RunOptions::default(), None).unwrap();
        let mut trail = Trail::default();
        trail.read("log.json", cloudtrail::log_file(&r).as_bytes()).unwrap();
        let after = s.horizon - r.records.last().unwrap().at;
        let imported_text = trail.scenario(&["log.json".into()], after).unwrap();
        let imported = scenario::parse("imported.ron", &imported_text, Overrides::default())
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{imported_text}"));
        let r2 = run(&imported, &RunOptions::default(), None).unwrap();
        // A fleet's steps fall between whole seconds; CloudTrail's instants are whole seconds.
        let (mut before, mut after) = (outcomes(&s, &r, 1000).1, outcomes(&imported, &r2, 1000).1);
        // A10's replacement launches with the volumes of the instance it replaces, which no
        // AWS launch does, so no trail can say which place a launch fills: the fleet's places
        // come back as one instance per launch, and only its volumes are compared.
        if text.contains("replace_every") {
            let place = |line: &String| line.starts_with("f-i");
            before.retain(|line| !place(line));
            after.retain(|line| !place(line));
            replaced += 1;
        }
        with_breaks += usize::from(before.iter().any(|line| !line.ends_with("[]")));
        if before != after {
            differ.push(seed);
        }
    }
    assert!(with_breaks * 4 > usize::try_from(n).unwrap(), "few estates break anything: {with_breaks} of {n}");
    assert!(replaced * 20 > n, "few estates' fleets are replaced: {replaced} of {n}");
    assert!(differ.is_empty(), "{} of {n} estates differ after the round trip: seeds {differ:?}", differ.len());
}

/// The other services' resources (#19): the trail carries their creation (an S3 bucket's as
/// PutBucketEncryption, with its bucket key), the user's reboots, stops, starts and restores,
/// GetSecretValue, and the services' KMS calls in their encryption contexts; the imported
/// scenario declares each resource and replays what the trail shows, and every resource ends as
/// it did, breaking at the same second. `services/mixed-estate.ron` is left out: its resources'
/// own activity (queries, GetItem, file reads) is data events a trail does not log.
#[test]
fn service_scenarios_survive_the_round_trip() {
    for rel in [
        "services/rds-recoverable-window.ron",
        "services/redshift-and-dynamodb.ron",
        "services/s3-bucket-key.ron",
        "services/secret-and-lambda.ron",
        "services/efs-grace.ron",
    ] {
        round_trip_in(rel, 1000);
    }
}

/// A user's RevokeGrant of the grant EC2 made for a volume is replayed (the grant found by the ID
/// EC2's CreateGrant returned); a revoked grant of anything else is listed as changing nothing
/// kmsim models, never counted as replayed.
#[test]
fn revoked_grants_are_replayed_or_listed() {
    round_trip("grants/revoke-ec2-grant.ron");
    let s = load("grants/revoke-ec2-grant.ron");
    let r = run(&s, &RunOptions::default(), None).unwrap();
    let mut trail = Trail::default();
    trail.read("log.json", cloudtrail::log_file(&r).as_bytes()).unwrap();
    let text = trail.scenario(&["log.json".into()], SimDuration::from_days(1)).unwrap();
    assert_eq!(text.matches("RevokeGrant(key: ").count(), 2, "{text}");
    assert!(text.contains("At(\"6h\", RevokeGrant(key: \"key-"), "{text}");
    // The same RevokeGrant with a grant ID no CreateGrant in the trail returned.
    let mut records = records_of("grants/revoke-ec2-grant.ron");
    for r in records.iter_mut().filter(|r| r["eventName"] == "RevokeGrant") {
        r["requestParameters"]["grantId"] = "f".repeat(64).into();
    }
    let mut trail = Trail::default();
    trail
        .read("log.json", serde_json::to_string(&serde_json::json!({"Records": records})).unwrap().as_bytes())
        .unwrap();
    let text = trail.scenario(&["log.json".into()], SimDuration::from_days(1)).unwrap();
    assert!(!text.contains("RevokeGrant(key: "), "{text}");
    assert!(text.contains("RevokeGrant or RetireGrant of a grant not made by EC2 for a volume x2"), "{text}");
}

/// With `--repeat-activity`, the restarts and detaches a trail shows again and again go on after
/// it (A16), so `impact --delete-material-at now` says when each latent resource breaks: at the
/// instance's next stop and start, at the volume's next detach and attach.
#[test]
fn the_trails_rhythm_goes_on_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rhythm.ron");
    let (log, imported) = (dir.path().join("trail.json"), dir.path().join("imported.ron"));
    let kmsim = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_kmsim")).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    kmsim(&["run", scenario.to_str().unwrap(), "-q", "--cloudtrail", log.to_str().unwrap()]);
    let (_, said) = kmsim(&[
        "import-cloudtrail",
        log.to_str().unwrap(),
        "-o",
        imported.to_str().unwrap(),
        "--after",
        "10d",
        "--repeat-activity",
    ]);
    assert!(said.contains("instance stopped i-a: 2 times in the trail, every 1d on average: repeated 10 times after it, each undone after 10m"), "{said}");
    assert!(said.contains("volume detached vol-b: 2 times in the trail, every 1d on average"), "{said}");
    let text = std::fs::read_to_string(&imported).unwrap();
    assert!(text.contains("At(\"4d\", StopInstances(instance: \"i-a\")),"), "{text}");
    assert!(text.contains("At(\"3d 12h 5m\", AttachVolume(volume: \"vol-b\", instance: \"i-b\")),"), "{text}");
    let key = text.split("Key(id: \"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let (out, _) = kmsim(&["impact", imported.to_str().unwrap(), "--key", &key, "--delete-material-at", "now"]);
    assert!(out.contains("vol-b  in-use on i-b, plaintext key in host memory  breaks at +3d 12h 5m (AttachVolume CustomerKeyHasBeenRevoked)"), "{out}");
    assert!(out.contains("breaks at +4d 10m (StartInstances Client.InternalError)"), "{out}");
    // Without the flag, nothing is repeated: the same resources are latent with no break ahead.
    kmsim(&["import-cloudtrail", log.to_str().unwrap(), "-o", imported.to_str().unwrap(), "--after", "10d"]);
    let (out, _) = kmsim(&["impact", imported.to_str().unwrap(), "--key", &key, "--delete-material-at", "now"]);
    assert_eq!(out.matches("(none before the horizon)").count(), 4, "{out}");
}

/// A trail that begins after a volume was attached (the EBS story from day 2): its first event
/// for the volume is a detach, whose response names the instance, so the volume is attached to it
/// at the start (said), and its verdict is the story's: broken at the refused reattach, recovered.
#[test]
fn a_volume_detached_first_was_attached_before_the_trail() {
    let records: Vec<Value> = records_of("ebs/ebs-story.ron")
        .into_iter()
        .filter(|r| r["eventTime"].as_str().unwrap() >= "2026-03-03T09:00:00Z")
        .collect();
    let mut trail = Trail::default();
    trail
        .read("cut.json", serde_json::to_string(&serde_json::json!({"Records": records})).unwrap().as_bytes())
        .unwrap();
    let text = trail.scenario(&["cut.json".into()], SimDuration::from_days(1)).unwrap();
    assert!(
        text.contains("volume vol-data: the trail's first event for it detaches it from i-app: attached to it at 0s"),
        "{text}"
    );
    assert!(text.contains("At(\"0s\", AttachVolume(volume: \"vol-data\", instance: \"i-app\")),"), "{text}");
    let s = scenario::parse("cut.ron", &text, Overrides::default()).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let r = run(&s, &RunOptions::default(), None).unwrap();
    let vol = summarize(&r).resources.into_iter().find(|x| &*x.name == "vol-data").unwrap();
    assert_eq!(vol.status.as_str(), "recovered", "{text}");
    assert_eq!(vol.breaks[0].how.to_string(), "AttachVolume CustomerKeyHasBeenRevoked");
}

/// Each service's creation record names its resource by the request parameter AWS's CloudTrail
/// records use: the writer and the importer share the name, so a round trip alone cannot tell a
/// wrong one.
#[test]
fn each_service_names_its_resource_as_aws_records_do() {
    let s = load("services/mixed-estate.ron");
    let r = run(&s, &RunOptions::default(), None).unwrap();
    let log: Value = serde_json::from_str(&cloudtrail::log_file(&r)).unwrap();
    let expected = [
        ("CreateDBInstance", "dBInstanceIdentifier"),
        ("CreateDBCluster", "dBClusterIdentifier"),
        ("CreateCluster", "clusterIdentifier"),
        ("CreateTable", "tableName"),
        ("CreateFileSystem", "creationToken"),
        ("CreateFunction", "functionName"),
        ("CreateSecret", "name"),
    ];
    for (event, param) in expected {
        let records: Vec<&Value> =
            log["Records"].as_array().unwrap().iter().filter(|r| r["eventName"] == event).collect();
        assert!(!records.is_empty(), "no {event} record");
        for record in records {
            assert!(record["requestParameters"][param].is_string(), "{event} without {param}: {record}");
        }
    }
}

/// A refused creation (CreateKey, CreateSnapshot, CopySnapshot, RegisterImage) has an error code
/// and no response, so nothing names what it would have made: the import leaves it out, and the
/// scenario is the one the trail gives without it.
#[test]
fn refused_creations_are_left_out() {
    let records = records_of("snapshots/migration.ron");
    let import = |records: &[Value]| {
        let log = serde_json::to_string(&serde_json::json!({"Records": records})).unwrap();
        let mut trail = Trail::default();
        trail.read("log.json", log.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        trail.scenario(&["log.json".into()], SimDuration::from_days(1)).unwrap_or_else(|e| panic!("{e}"))
    };
    let clean = import(&records);
    let mut with_refusals = records.clone();
    for (source, name, request) in [
        ("kms.amazonaws.com", "CreateKey", serde_json::json!({"origin": "EXTERNAL"})),
        ("ec2.amazonaws.com", "CreateSnapshot", serde_json::json!({"volumeId": "vol-nowhere"})),
        ("ec2.amazonaws.com", "CopySnapshot", serde_json::json!({"sourceSnapshotId": "snap-nowhere"})),
        ("ec2.amazonaws.com", "RegisterImage", serde_json::json!({"name": "nothing"})),
    ] {
        let mut refused = records[1].clone();
        refused["eventSource"] = source.into();
        refused["eventName"] = name.into();
        refused["requestParameters"] = request;
        refused["responseElements"] = Value::Null;
        refused["errorCode"] = "Client.UnauthorizedOperation".into();
        refused["errorMessage"] = "You are not authorized to perform this operation.".into();
        refused["eventID"] = format!("00000000-0000-4000-8000-{:012}", with_refusals.len()).into();
        with_refusals.insert(2, refused);
    }
    let text = import(&with_refusals);
    let body = |t: &str| t.lines().filter(|l| !l.starts_with("//")).collect::<Vec<_>>().join("\n");
    assert_eq!(body(&clean), body(&text));
}
