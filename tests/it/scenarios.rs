//! The bundled scenarios show what the reference documents. Each test states the outcome the
//! reference predicts and reads it off the run's summary and records.

use kmsim::actors::Obs;
use kmsim::actors::kms::{KeyState, KmsObs};
use kmsim::analysis::standing::Standing;
use kmsim::analysis::summary::{Summary, summarize};
use kmsim::report::describe::{Outcome, describe};
use kmsim::run::{Run, RunOptions, run};

use super::{all_scenarios, load};

const H: u64 = 3_600_000;
const D: u64 = 24 * H;

fn resource<'a>(s: &'a Summary, name: &str) -> &'a kmsim::analysis::summary::ResourceSummary {
    s.resources.iter().find(|r| *r.name == *name).unwrap_or_else(|| panic!("no resource {name}"))
}

/// (t_ms, event, outcome, error) of every record about `subject`.
fn events(run: &Run<'_>, subject: &str) -> Vec<(u64, &'static str, Outcome, Option<String>)> {
    run.records
        .iter()
        .map(|r| (r, describe(&run.names, r)))
        .filter(|(_, d)| d.subject == subject)
        .map(|(r, d)| (r.at.as_ms(), d.event, d.outcome, d.error))
        .collect()
}

fn failed(run: &Run<'_>, subject: &str, event: &str) -> Vec<(u64, Option<String>)> {
    events(run, subject).into_iter().filter(|e| e.1 == event && e.2 == Outcome::Failed).map(|e| (e.0, e.3)).collect()
}

fn ok(run: &Run<'_>, subject: &str, event: &str) -> Vec<u64> {
    events(run, subject).into_iter().filter(|e| e.1 == event && e.2 == Outcome::Ok).map(|e| e.0).collect()
}

#[test]
fn every_bundled_scenario_parses_and_runs_to_its_horizon() {
    let files = all_scenarios();
    assert!(files.len() >= 8, "{files:?}");
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let s = kmsim::scenario::parse(&path.display().to_string(), &text, Default::default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(text.trim_start().starts_with("//"), "{}: starts with a comment naming the behaviour", path.display());
        let r = run(&s, &RunOptions { max_events: Some(1_000_000), ..RunOptions::default() }, None).unwrap();
        assert_eq!(r.end, s.horizon);
        assert!(!r.records.is_empty());
        let summary = summarize(&r);
        super::invariants::lanes_agree_with_the_summary(&r, &summary)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[test]
fn ebs_story_volume_outlives_deleted_material_until_the_next_attach() {
    let s = load("ebs/ebs-story.ron");
    let r = run(&s, &RunOptions::default(), None).unwrap();
    // Writes before and after the deletion at 2d both succeed: the data key is in memory.
    assert_eq!(ok(&r, "vol-data", "Write"), [D, 3 * D, 7 * D]);
    // The reattach at 4d 1h fails with EC2's error, because KMS refused the Decrypt.
    assert_eq!(failed(&r, "vol-data", "AttachVolume"), [(4 * D + H, Some("CustomerKeyHasBeenRevoked".into()))]);
    assert_eq!(failed(&r, "cmk", "Decrypt"), [(4 * D + H, Some("KMSInvalidStateException".into()))]);
    // After m1 is reimported at 6d, the attach at 6d 1h works.
    assert_eq!(ok(&r, "vol-data", "AttachVolume"), [5 * 60_000, 6 * D + H]);
    let sum = summarize(&r);
    let vol = resource(&sum, "vol-data");
    assert_eq!(vol.status, Standing::Recovered);
    let b = &vol.breaks[0];
    assert_eq!(b.loss_at.map(|t| t.as_ms()), Some(2 * D));
    assert_eq!(b.broke_at.as_ms(), 4 * D + H);
    assert_eq!(b.latent_window().unwrap().as_ms(), 2 * D + H);
    assert_eq!(b.last_good_use.map(|(t, what)| (t.as_ms(), what)), Some((3 * D, "Write")));
    assert_eq!(b.recovered_at.map(|t| t.as_ms()), Some(6 * D + H));
}

#[test]
fn expiry_is_a_service_event_and_breaks_the_next_start() {
    let s = load("import/expiry-valid-to.ron");
    let r = run(&s, &RunOptions::default(), None).unwrap();
    let expired: Vec<_> = r
        .records
        .iter()
        .filter(|x| matches!(x.obs, Obs::Kms(KmsObs::MaterialExpired { .. })))
        .map(|x| x.at.as_ms())
        .collect();
    assert_eq!(expired, [3 * D], "KMS deletes the material at ValidTo, by itself");
    assert!(!ok(&r, "cmk", "DeleteImportedKeyMaterial").iter().any(|_| true), "no user call deleted it");
    // Writes every 12 h from 1d go on past the expiry until the stop at 5d.
    let writes = ok(&r, "vol-web", "Write");
    assert!(writes.contains(&(4 * D + 12 * H)), "{writes:?}");
    assert_eq!(
        failed(&r, "vol-web", "ReattachVolume"),
        [(5 * D + 10 * 60_000, Some("CustomerKeyHasBeenRevoked".into()))]
    );
    // D6: the failed start puts the instance back to stopped with Client.InternalError.
    assert_eq!(
        failed(&r, "i-web", "InstanceStateChanged"),
        [(5 * D + 10 * 60_000, Some("Client.InternalError".into()))]
    );
    assert_eq!(r.instance(0).state().map(|st| st.as_str()), Some("running"), "started again after the reimport");
}

#[test]
fn reimporting_a_different_material_is_refused() {
    let s = load("import/reimport-different-material.ron");
    let r = run(&s, &RunOptions::default(), None).unwrap();
    assert_eq!(failed(&r, "cmk", "ImportKeyMaterial"), [(2 * D, Some("IncorrectKeyMaterialException".into()))]);
    assert_eq!(failed(&r, "vol-db", "AttachVolume").len(), 1);
    assert_eq!(ok(&r, "vol-db", "AttachVolume"), [10 * 60_000, 4 * D + H]);
    assert_eq!(r.kms().state(s.key_named("cmk").unwrap()), Some(KeyState::Enabled));
}

#[test]
fn import_tokens_expire_after_24_hours_and_belong_to_their_key() {
    let s = load("import/import-token-expiry.ron");
    let r = run(&s, &RunOptions::default(), None).unwrap();
    assert_eq!(failed(&r, "cmk-a", "ImportKeyMaterial"), [(25 * H, Some("ExpiredImportTokenException".into()))]);
    assert_eq!(failed(&r, "cmk-b", "ImportKeyMaterial"), [(2 * D + H, Some("InvalidImportTokenException".into()))]);
    assert_eq!(failed(&r, "vol-a", "CreateVolume"), [(26 * H, Some("KMSInvalidStateException".into()))]);
    assert_eq!(ok(&r, "vol-a", "CreateVolume"), [2 * D + 3 * H]);
    assert_eq!(r.kms().state(s.key_named("cmk-b").unwrap()), Some(KeyState::PendingImport));
}

#[test]
fn disable_and_material_deletion_differ_in_error_and_way_back() {
    let s = load("lifecycle/disable-vs-delete-material.ron");
    let r = run(&s, &RunOptions::default(), None).unwrap();
    assert_eq!(ok(&r, "vol-a", "Write"), [D + 12 * H]);
    assert_eq!(ok(&r, "vol-b", "Write"), [D + 12 * H]);
    assert_eq!(failed(&r, "cmk-disabled", "Decrypt"), [(2 * D + H, Some("DisabledException".into()))]);
    assert_eq!(
        failed(&r, "cmk-deleted", "Decrypt"),
        [(2 * D + H, Some("KMSInvalidStateException".into())), (3 * D + H, Some("KMSInvalidStateException".into()))]
    );
    assert_eq!(failed(&r, "cmk-deleted", "EnableKey"), [(3 * D, Some("KMSInvalidStateException".into()))]);
    assert_eq!(ok(&r, "vol-a", "AttachVolume"), [10 * 60_000, 3 * D + H], "EnableKey brings vol-a back");
    assert_eq!(ok(&r, "vol-b", "AttachVolume"), [10 * 60_000, 4 * D + H], "only the reimport brings vol-b back");
}

#[test]
fn scheduled_deletion_makes_the_volume_permanently_unrecoverable() {
    let s = load("lifecycle/scheduled-deletion-irreversible.ron");
    let r = run(&s, &RunOptions::default(), None).unwrap();
    let deleted: Vec<_> = r
        .records
        .iter()
        .filter(|x| matches!(x.obs, Obs::Kms(KmsObs::KeyDeleted { .. })))
        .map(|x| x.at.as_ms())
        .collect();
    assert_eq!(deleted, [8 * D + 6 * H], "7-day window from 1d, plus the scenario's 6h key_deletion_lag");
    assert_eq!(ok(&r, "vol-archive", "Write"), [8 * D + 12 * H], "the cached key outlives even the key");
    assert_eq!(failed(&r, "vol-archive", "AttachVolume").iter().map(|f| f.0).collect::<Vec<_>>(), [9 * D + H, 10 * D]);
    assert_eq!(failed(&r, "cmk", "CancelKeyDeletion"), [(9 * D + 2 * H, Some("NotFoundException".into()))]);
    let sum = summarize(&r);
    assert_eq!(resource(&sum, "vol-archive").status, Standing::Broken);
    assert_eq!(sum.keys[0].state_at_end, None);
}

#[test]
fn reboot_keeps_keys_while_stop_start_and_host_maintenance_break() {
    let s = load("ec2/stop-start-vs-reboot.ron");
    let r = run(&s, &RunOptions::default(), None).unwrap();
    assert_eq!(ok(&r, "vol-reboot", "Write"), [2 * D + 6 * H]);
    assert_eq!(failed(&r, "vol-stop", "Write"), [(2 * D + 6 * H, Some("NoDataKey".into()))]);
    assert_eq!(failed(&r, "i-stop", "InstanceStateChanged").len(), 1);
    assert_eq!(failed(&r, "vol-moved", "ReattachVolume"), [(3 * D, Some("CustomerKeyHasBeenRevoked".into()))]);
    let sum = summarize(&r);
    assert_eq!(resource(&sum, "vol-reboot").status, Standing::Latent);
    assert_eq!(resource(&sum, "vol-stop").status, Standing::Broken);
    assert_eq!(resource(&sum, "i-moved").status, Standing::Broken);
}

#[test]
fn latency_lets_a_deletion_land_between_grant_and_decrypt() {
    let s = load("races/deletion-between-attach-and-decrypt.ron");
    let r = run(&s, &RunOptions::default(), None).unwrap();
    assert_eq!(ok(&r, "cmk", "CreateGrant"), [D + 400]);
    assert_eq!(failed(&r, "cmk", "Decrypt"), [(D + 800, Some("KMSInvalidStateException".into()))]);
    assert_eq!(failed(&r, "vol-batch", "AttachVolume"), [(D + 800, Some("CustomerKeyHasBeenRevoked".into()))]);
}

#[test]
fn the_complete_example_in_the_format_documentation_is_valid_and_runs() {
    let doc = std::fs::read_to_string(super::scenarios_dir().join("README.md")).unwrap();
    let start = doc.find("```ron\n").expect("a ron block") + "```ron\n".len();
    let end = start + doc[start..].find("```").unwrap();
    let s = kmsim::scenario::parse("scenarios/README.md", &doc[start..end], Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let r = run(&s, &RunOptions::default(), None).unwrap();
    assert_eq!(failed(&r, "vol-data", "AttachVolume").len(), 1, "the attach at 4d 1h fails");
    assert_eq!(ok(&r, "cmk", "RevokeGrant"), [6 * D], "a volume id names EC2's grant");
    assert_eq!(ok(&r, "cmk", "CancelKeyDeletion"), [11 * D]);
    let unexpected: Vec<_> = r
        .records
        .iter()
        .map(|x| describe(&r.names, x))
        .filter(|d| d.outcome == Outcome::Failed && d.event != "AttachVolume" && d.event != "Decrypt")
        .filter(|d| !(d.subject.starts_with("web") && d.error.as_deref() == Some("InvalidAMIID.NotFound")))
        .collect();
    // The fleet on a group launches from 0s, and its image is registered at 1d 3h (A14).
    let refused = r.records.iter().map(|x| (x.at.as_ms(), describe(&r.names, x))).filter(|(_, d)| {
        d.subject == "web" && d.outcome == Outcome::Failed && d.error.as_deref() == Some("InvalidAMIID.NotFound")
    });
    assert!(refused.clone().count() > 0 && refused.clone().all(|(t, _)| t < D + 3 * H), "launches wait for the image");
    let first = ok(&r, "web", "Launch")[0];
    assert!(
        (D + 3 * H..D + 3 * H + 1000).contains(&first),
        "the first launch follows the image's registration: {first}"
    );
    assert!(unexpected.is_empty(), "only the documented failure happens: {unexpected:#?}");
}

#[test]
fn the_complete_example_meets_every_kind_of_expectation() {
    let doc = std::fs::read_to_string(super::scenarios_dir().join("README.md")).unwrap();
    let start = doc.find("```ron\n").expect("a ron block") + "```ron\n".len();
    let end = start + doc[start..].find("```").unwrap();
    let result = kmsim::analysis::check::check_text(
        "scenarios/README.md",
        &doc[start..end],
        Default::default(),
        &RunOptions::default(),
    );
    let kmsim::analysis::check::FileResult::Passed { verdicts } = result else { panic!("{result:#?}") };
    assert_eq!(verdicts.len(), 11);
}

/// Every source tag (`[UNUSABLE]`, `[API ImportKeyMaterial]`, `[CT-ec2two]`) and decision (`D6`,
/// `A4`) a bundled scenario's header cites is defined in `docs/model.md`, which ships with the
/// code; nothing shipped points at material that does not.
#[test]
fn scenario_headers_cite_only_what_docs_model_defines() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = std::fs::read_to_string(root.join("docs/model.md")).unwrap();
    let mut cited = 0;
    for path in all_scenarios() {
        let text = std::fs::read_to_string(&path).unwrap();
        let header: String = text.lines().take_while(|l| l.starts_with("//")).collect::<Vec<_>>().join("\n");
        assert!(
            !header.contains("§") && !header.contains("shared/"),
            "{}: cites the unshipped reference",
            path.display()
        );
        for tag in header.split('[').skip(1).filter_map(|t| t.split(']').next()) {
            let name = tag.split([' ', ':']).next().unwrap();
            // Footnote numbers of the key-state table, such as [5], are the page's own.
            if name.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            let defined = if let Some(ct) = name.strip_prefix("CT-") {
                model.contains("| [CT-*] |") && !ct.is_empty()
            } else {
                model.contains(&format!("| [{name}] |"))
            };
            assert!(defined, "{}: [{name}] is not a source in docs/model.md", path.display());
            cited += 1;
        }
        for word in header.split(|c: char| !c.is_ascii_alphanumeric()) {
            let decision = word.len() >= 2
                && (word.starts_with('D') || word.starts_with('A'))
                && word[1..].chars().all(|c| c.is_ascii_digit());
            if decision {
                assert!(model.contains(&format!("| {word} |")), "{}: {word} is not in docs/model.md", path.display());
                cited += 1;
            }
        }
    }
    assert!(cited > 50, "only {cited} citations found");
    for doc in ["README.md", "ARCHITECTURE.md", "scenarios/README.md", "docs/model.md"] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        assert!(!text.contains("kms-semantics"), "{doc} points at the unshipped reference");
    }
}
