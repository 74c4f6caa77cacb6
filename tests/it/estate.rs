//! The estate as it is now: `kmsim import-estate` on the JSON the AWS CLI prints (the files in
//! `tests/fixtures/estate/` follow the shapes of AWS's documented examples), alone and at the
//! end of a trail, and `impact --delete-material-at now` on the result.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use super::cloudtrail::records_of;

fn kmsim(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kmsim")).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fixtures() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/estate");
    let mut files: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path().display().to_string()).collect();
    files.sort();
    files
}

/// Imports `files` (and `extra` arguments) and returns the scenario's text and what was said.
fn import(files: &[String], extra: &[&str]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("estate.ron");
    let mut args: Vec<&str> = vec!["import-estate"];
    args.extend(files.iter().map(String::as_str));
    args.extend(["-o", out.to_str().unwrap()]);
    args.extend(extra);
    let (code, _, said) = kmsim(&args);
    assert_eq!(code, Some(0), "{said}");
    (std::fs::read_to_string(out).unwrap(), said)
}

fn run_json(text: &str, extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("estate.ron");
    std::fs::write(&file, text).unwrap();
    let mut args = vec!["run", file.to_str().unwrap(), "--format", "json"];
    args.extend(extra);
    let (code, out, err) = kmsim(&args);
    assert_eq!(code, Some(0), "{err}\n{text}");
    serde_json::from_str(&out).unwrap()
}

fn standing<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["resources"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("{name}: {run}"))
}

/// The account of the fixtures: an imported key rotated once (the first volume made before the
/// rotation), an AWS_KMS key, three encrypted volumes (one on a stopped instance, whose EC2 grant
/// list-grants no longer shows), an RDS instance and a secret under the imported key's alias.
#[test]
fn an_estate_becomes_a_scenario_that_starts_from_it() {
    let (text, said) = import(&fixtures(), &[]);
    for line in [
        "now: \"1s\"",
        "origin: External, key_id: \"1234abcd-12ab-34cd-56ef-1234567890ab\", aliases: [\"alias/app\"]",
        "Key(id: \"key-0987dcba\", origin: AwsKms",
        "At(\"1s\", StopInstances(instance: \"i-0598c7d356eba48d7\"))",
        "RevokeGrant(key: \"key-1234abcd\", grant: \"vol-1234567890abcdef0\")",
        "Service(kind: Rds, id: \"orders-db\", key: \"key-1234abcd\")",
        "Service(kind: Secret, id: \"app-token\", key: \"key-1234abcd\")",
        "left out: 1 volumes not encrypted",
        "left out: 1 Secret resources not encrypted under a customer managed key",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    // The first volume was made before the rotation: under the first material.
    let order: Vec<&str> = text.lines().filter(|l| l.contains("At(")).collect();
    let at = |what: &str| order.iter().position(|l| l.contains(what)).unwrap_or_else(|| panic!("{what}\n{text}"));
    assert!(at("material: \"m-0a1b2c3d\"") < at("CreateVolume(volume: \"vol-049df61146c4d7901\")"));
    assert!(at("CreateVolume(volume: \"vol-049df61146c4d7901\")") < at("RotateKeyOnDemand"));
    assert!(at("RotateKeyOnDemand") < at("CreateVolume(volume: \"vol-1234567890abcdef0\")"));
    assert!(said.contains("EC2's grant is taken as revoked"), "{said}");
    let run = run_json(&text, &[]);
    assert_eq!(
        standing(&run, "vol-049df61146c4d7901")["at_end"],
        "in-use on i-1234567890abcdef0, plaintext data key in host memory"
    );
    assert_eq!(
        standing(&run, "vol-1234567890abcdef0")["at_end"],
        "in-use on i-0598c7d356eba48d7, no plaintext data key in memory"
    );
    assert_eq!(run["keys"][1]["materials_at_end"], "m-0a1b2c3d NON_CURRENT, m-cbf5f6a5 CURRENT");

    // What if we deleted the imported material now: by its alias, at `now`.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("estate.ron");
    std::fs::write(&file, &text).unwrap();
    let (code, out, err) =
        kmsim(&["impact", file.to_str().unwrap(), "--key", "alias/app", "--delete-material-at", "now"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("at +1s (2026-06-12T10:00:00.000Z): PendingImport"), "{out}");
    assert!(out.contains("0 broken, 4 blocked, 3 latent, 0 recovered, 0 unaffected"), "{out}");
    assert!(out.contains("orders-db") && out.contains("breaks at +5m"), "{out}");
    // After the horizon: it moves, and says so.
    let (code, out, err) = kmsim(&[
        "impact",
        file.to_str().unwrap(),
        "--key",
        "alias/app",
        "--delete-material-at",
        "2026-12-01T00:00:00Z",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("the horizon moves from 30d 1s to"), "{err}");
    assert!(out.contains("PendingImport"), "{out}");
    // A scenario that has no `now` says so.
    let story = super::scenarios_dir().join("ebs/ebs-story.ron");
    let (code, _, err) = kmsim(&["impact", story.to_str().unwrap(), "--key", "cmk", "--delete-material-at", "now"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("the scenario has no `now`"), "{err}");
}

fn key(id: &str, state: &str, origin: &str, extra: &Value) -> Value {
    let mut m = json!({"KeyMetadata": {
        "KeyId": id, "Arn": format!("arn:aws:kms:us-east-1:111122223333:key/{id}"),
        "CreationDate": "2026-01-01T00:00:00+00:00", "KeyState": state, "Origin": origin,
        "KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT", "MultiRegion": false,
    }});
    for (k, v) in extra.as_object().unwrap() {
        m["KeyMetadata"][k] = v.clone();
    }
    m
}

fn volume(id: &str, key: &str, instance: &str) -> Value {
    json!({"VolumeId": id, "State": "in-use", "Encrypted": true, "Size": 8,
           "KmsKeyId": format!("arn:aws:kms:us-east-1:111122223333:key/{key}"),
           "CreateTime": "2026-02-01T00:00:00Z",
           "Attachments": [{"InstanceId": instance, "State": "attached", "AttachTime": "2026-02-01T00:01:00Z"}]})
}

/// Each key is in its state at `now`, after every resource was made and attached while the key
/// could still be used: disabled, deletion scheduled (the waiting period in whole days), its
/// material deleted (a rotation's current one), expiring later, or the material never imported.
#[test]
fn each_key_is_in_its_state_at_now() {
    let (disabled, pending, deleted, expiring, never) = (
        "11111111-1111-1111-1111-111111111111",
        "22222222-2222-2222-2222-222222222222",
        "33333333-3333-3333-3333-333333333333",
        "44444444-4444-4444-4444-444444444444",
        "55555555-5555-5555-5555-555555555555",
    );
    let docs = [
        key(disabled, "Disabled", "AWS_KMS", &json!({})),
        key(pending, "PendingDeletion", "AWS_KMS", &json!({"DeletionDate": "2026-03-11T00:00:00Z"})),
        key(deleted, "PendingImport", "EXTERNAL", &json!({})),
        key(
            expiring,
            "Enabled",
            "EXTERNAL",
            &json!({"ExpirationModel": "KEY_MATERIAL_EXPIRES", "ValidTo": "2026-03-05T00:00:00Z", "CurrentKeyMaterialId": "e".repeat(64)}),
        ),
        key(never, "PendingImport", "EXTERNAL", &json!({})),
        json!({"Rotations": [
            {"KeyId": deleted, "KeyMaterialId": "a".repeat(64), "ImportState": "IMPORTED", "KeyMaterialState": "NON_CURRENT"},
            {"KeyId": deleted, "KeyMaterialId": "b".repeat(64), "ImportState": "PENDING_IMPORT", "KeyMaterialState": "CURRENT", "RotationDate": "2026-01-15T00:00:00Z"},
        ]}),
        json!({"Volumes": [volume("vol-d", disabled, "i-a"), volume("vol-p", pending, "i-a"), volume("vol-x", deleted, "i-a"), volume("vol-e", expiring, "i-a")]}),
        json!({"Reservations": [{"Instances": [{"InstanceId": "i-a", "State": {"Name": "running"}, "LaunchTime": "2026-01-31T00:00:00Z"}]}]}),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("estate.json");
    let text: Vec<String> = docs.iter().map(|d| serde_json::to_string_pretty(d).unwrap()).collect();
    std::fs::write(&file, text.join("\n")).unwrap();
    let (text, said) = import(&[file.display().to_string()], &["--now", "2026-03-01T00:00:00Z"]);
    assert!(text.contains("start: \"2026-02-28T23:59:59Z\""), "{text}");
    assert!(said.contains("replayed as ScheduleKeyDeletion with 10 days"), "{said}");
    assert!(text.contains("expires: At(\"2026-03-05T00:00:00Z\")"), "{text}");
    let run = run_json(&text, &[]);
    let states: Vec<(&str, &str)> = run["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["name"].as_str().unwrap(), k["state_at_end"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            ("key-11111111", "Disabled"),
            ("key-22222222", "deleted"),
            ("key-33333333", "PendingImport"),
            ("key-44444444", "PendingImport"),
            ("key-55555555", "PendingImport"),
        ],
        "{text}"
    );
    // At now: each volume attached with its key in memory (made while its key could be used).
    let run = run_json(&text, &["--horizon", "2s"]);
    for v in ["vol-d", "vol-p", "vol-x", "vol-e"] {
        assert_eq!(standing(&run, v)["at_end"], "in-use on i-a, plaintext data key in host memory", "{v}\n{text}");
    }
    assert_eq!(run["keys"][1]["state_at_end"], "PendingDeletion");
    assert_eq!(run["keys"][2]["materials_at_end"], "m-aaaaaaaa NON_CURRENT, m-bbbbbbbb CURRENT (PENDING_IMPORT)");
    assert_eq!(run["keys"][4]["materials_at_end"], "none", "never imported: {text}");
}

/// The trail from day 2 of the EBS story (its import, volume and attach cut off) leads up to an
/// estate taken after it: the estate says the key's origin and that the volume was attached
/// before the trail began; the trail's history does the rest, and the volume's verdict is the
/// story's.
#[test]
fn a_trail_leads_up_to_the_estate() {
    let records: Vec<Value> = records_of("ebs/ebs-story.ron")
        .into_iter()
        .filter(|r| r["eventTime"].as_str().unwrap() >= "2026-03-03T09:00:00Z")
        .collect();
    let material = records
        .iter()
        .find(|r| r["eventName"] == "DeleteImportedKeyMaterial")
        .and_then(|r| r["responseElements"]["keyMaterialId"].as_str())
        .unwrap()
        .to_string();
    let key_id = super::load("ebs/ebs-story.ron").keys[0].spec.key_id.clone();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("trail.json");
    std::fs::write(&log, serde_json::to_string(&json!({"Records": records})).unwrap()).unwrap();
    let estate = dir.path().join("estate.json");
    let docs = [
        key(&key_id, "Enabled", "EXTERNAL", &json!({"CurrentKeyMaterialId": material})),
        json!({"Volumes": [{"VolumeId": "vol-data", "State": "in-use", "Encrypted": true, "Size": 100,
            "KmsKeyId": format!("arn:aws:kms:us-east-1:111122223333:key/{key_id}"), "CreateTime": "2026-03-01T09:01:00Z",
            "Attachments": [{"InstanceId": "i-app", "State": "attached", "AttachTime": "2026-03-07T10:00:00Z"}]}]}),
        json!({"Reservations": [{"Instances": [{"InstanceId": "i-app", "State": {"Name": "running"}, "LaunchTime": "2026-03-01T09:00:00Z"}]}]}),
    ];
    let docs: Vec<String> = docs.iter().map(|d| d.to_string()).collect();
    std::fs::write(&estate, docs.join("\n")).unwrap();
    let (text, said) =
        import(&[estate.display().to_string()], &["--trail", log.to_str().unwrap(), "--now", "2026-03-10T00:00:00Z"]);
    assert!(!said.contains("does not show where its material comes from"), "{said}");
    assert!(said.contains("volume vol-data: attached to i-app before the trail began"), "{said}");
    assert!(text.contains("and the estate at 2026-03-10T00:00:00Z"), "{text}");
    let run = run_json(&text, &[]);
    let vol = standing(&run, "vol-data");
    assert_eq!(vol["standing"], "recovered", "{text}\n{vol}");
    assert_eq!(
        vol["breaks"][0]["how"],
        json!({"action": "AttachVolume", "code": "CustomerKeyHasBeenRevoked"}),
        "{vol}"
    );
    assert_eq!(vol["breaks"][0]["broke_at_utc"], "2026-03-05T10:00:00.000Z", "{vol}");
}

/// A file that is not AWS CLI output, or is not JSON, is refused with exit 2, naming the file
/// and the document; so is a bucket's encryption that names no bucket read from standard input.
#[test]
fn what_is_not_an_estate_is_refused_with_the_file_and_document() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("other.json", "{\"Volumes\": []}\n{\"Something\": 1}", "other.json: document 2: nothing kmsim reads"),
        ("broken.json", "{\"Volumes\": [", "broken.json: not the output of an AWS CLI command kmsim reads"),
        ("empty.json", "", "empty.json: empty"),
        (
            "bad-date.json",
            "{\"KeyMetadata\": {\"KeyId\": \"k\", \"KeyState\": \"Enabled\", \"CreationDate\": \"yesterday\"}}",
            "is not an RFC 3339 instant",
        ),
    ];
    for (name, body, expected) in cases {
        let file = dir.path().join(name);
        std::fs::write(&file, body).unwrap();
        let (code, _, err) =
            kmsim(&["import-estate", file.to_str().unwrap(), "-o", dir.path().join("o.ron").to_str().unwrap()]);
        assert_eq!(code, Some(2), "{name}: {err}");
        assert!(err.contains(expected), "{name}: {err}");
    }
    assert!(!dir.path().join("o.ron").exists());
}
