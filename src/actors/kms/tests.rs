//! The KMS actor's lifecycle rules, driven by requests on a bare engine (no scenario file).

use std::sync::Arc;

use super::*;
use crate::actors::World;
use crate::engine::{Cause, Limits, Record, Simulation};

const DAY: u64 = 86_400_000;
const HOUR: u64 = 3_600_000;

struct Harness {
    sim: Simulation<World>,
    inputs: u32,
}

fn spec(n: u32, origin: Origin) -> KeySpec {
    let key_id = format!("0000000{n}-0000-4000-8000-000000000000");
    KeySpec {
        arn: format!("arn:aws:kms:us-east-1:111122223333:key/{key_id}"),
        key_id,
        origin,
        aliases: vec![Arc::from(format!("alias/k{n}").as_str())],
    }
}

fn harness(params: KmsParams, origins: &[Origin]) -> Harness {
    let mut sim = Simulation::new(1);
    let specs = origins.iter().enumerate().map(|(i, o)| spec(u32::try_from(i).unwrap(), *o)).collect();
    let kms = sim.add_actor("kms", World::Kms(Box::new(Kms::new(params, specs))));
    for i in 0..origins.len() {
        sim.schedule(
            SimTime::ZERO,
            kms,
            Msg::Kms(KmsMsg::CreateKey(KeyIdx(u32::try_from(i).unwrap()))),
            Cause::Input(0),
        );
    }
    Harness { sim, inputs: 1 }
}

const K0: KeyIdx = KeyIdx(0);
const K1: KeyIdx = KeyIdx(1);
const M1: MaterialId = MaterialId(1);
const M2: MaterialId = MaterialId(2);

impl Harness {
    fn at(&mut self, ms: u64, op: KmsOp) -> &mut Self {
        let req = KmsRequest { caller: Caller::User, op: Box::new(op) };
        self.sim.schedule(SimTime::from_ms(ms), ActorId(0), Msg::Kms(KmsMsg::Request(req)), Cause::Input(self.inputs));
        self.inputs += 1;
        self
    }

    fn run(&mut self, until_ms: u64) -> Vec<Record<Obs>> {
        let mut records = Vec::new();
        self.sim.run(Limits { horizon: SimTime::from_ms(until_ms), max_events: Some(10_000) }, &mut records).unwrap();
        records
    }

    fn kms(&self) -> &Kms {
        match self.sim.actor(ActorId(0)) {
            World::Kms(k) => k,
            _ => unreachable!(),
        }
    }
}

fn import(key: KeyIdx, material: MaterialId, expiry: Expiry) -> KmsOp {
    KmsOp::ImportKeyMaterial { key: KeyRef::Id(key), token: TokenRef::Fresh, material, expiry, import_type: None }
}

fn delete_material(key: KeyIdx) -> KmsOp {
    KmsOp::DeleteImportedKeyMaterial { key: KeyRef::Id(key), material: None }
}

fn encrypt(key: KeyIdx, name: &str) -> KmsOp {
    KmsOp::Encrypt { key: KeyRef::Id(key), context: None, name: Some(name.into()) }
}

fn decrypt(name: &str) -> KmsOp {
    KmsOp::Decrypt { ciphertext: CiphertextRef::Named(name.into()), key: None, context: None }
}

/// A user's CreateGrant of `key` to a role, with no constraint, named if `name` is given.
fn grant(key: KeyIdx, name: Option<&str>) -> KmsOp {
    KmsOp::CreateGrant {
        key: KeyRef::Id(key),
        grantee: Grantee::Principal("arn:aws:iam::111122223333:role/app".into()),
        context: None,
        name: name.map(Into::into),
    }
}

/// (time, operation, exception) of every call, `None` for success.
fn calls(records: &[Record<Obs>]) -> Vec<(u64, Operation, Option<KmsException>)> {
    records
        .iter()
        .filter_map(|r| match &r.obs {
            Obs::Kms(KmsObs::Called { op, result, .. }) => {
                Some((r.at.as_ms(), op.operation(), result.as_ref().err().map(|e| e.exception)))
            }
            _ => None,
        })
        .collect()
}

/// When the KMS observations matching `pred` happened.
fn times(records: &[Record<Obs>], pred: impl Fn(&KmsObs) -> bool) -> Vec<u64> {
    records.iter().filter(|r| matches!(&r.obs, Obs::Kms(o) if pred(o))).map(|r| r.at.as_ms()).collect()
}

fn states(records: &[Record<Obs>], key: KeyIdx) -> Vec<(u64, KeyState)> {
    records
        .iter()
        .filter_map(|r| match &r.obs {
            Obs::Kms(KmsObs::StateChanged { key: k, to, .. }) if *k == key => Some((r.at.as_ms(), *to)),
            _ => None,
        })
        .collect()
}

#[test]
fn external_key_starts_pending_import_and_a_one_step_import_enables_it() {
    let mut h = harness(KmsParams::default(), &[Origin::External, Origin::AwsKms]);
    h.at(1_000, import(K0, M1, Expiry::Never));
    let recs = h.run(DAY);
    assert_eq!(states(&recs, K0), [(0, KeyState::PendingImport), (1_000, KeyState::Enabled)]);
    assert_eq!(states(&recs, K1), [(0, KeyState::Enabled)]);
    assert_eq!(
        calls(&recs),
        [(1_000, Operation::GetParametersForImport, None), (1_000, Operation::ImportKeyMaterial, None)]
    );
}

#[test]
fn deleted_material_makes_the_key_pending_import_and_only_the_same_material_restores_it() {
    let mut h = harness(KmsParams::default(), &[Origin::External]);
    h.at(0, import(K0, M1, Expiry::Never))
        .at(10, encrypt(K0, "c"))
        .at(2 * DAY, delete_material(K0))
        .at(2 * DAY + 1, decrypt("c"))
        .at(3 * DAY, import(K0, M2, Expiry::Never))
        .at(4 * DAY, import(K0, M1, Expiry::Never))
        .at(4 * DAY + 1, decrypt("c"));
    let recs = h.run(10 * DAY);
    assert_eq!(
        states(&recs, K0),
        [
            (0, KeyState::PendingImport),
            (0, KeyState::Enabled),
            (2 * DAY, KeyState::PendingImport),
            (4 * DAY, KeyState::Enabled)
        ]
    );
    let c = calls(&recs);
    assert!(c.contains(&(2 * DAY + 1, Operation::Decrypt, Some(KmsException::InvalidState))));
    assert!(c.contains(&(3 * DAY, Operation::ImportKeyMaterial, Some(KmsException::IncorrectKeyMaterial))));
    assert!(c.contains(&(4 * DAY + 1, Operation::Decrypt, None)), "the old ciphertext decrypts again: {c:?}");
}

#[test]
fn material_expires_at_valid_to_as_a_service_event_after_the_configured_lag() {
    let params = KmsParams { material_expiry_lag: SimDuration::from_hours(1), ..KmsParams::default() };
    let mut h = harness(params, &[Origin::External]);
    h.at(0, import(K0, M1, Expiry::At(SimTime::from_ms(3 * DAY))));
    let recs = h.run(10 * DAY);
    let expired = times(&recs, |o| matches!(o, KmsObs::MaterialExpired { .. }));
    assert_eq!(expired, [3 * DAY + HOUR]);
    assert_eq!(states(&recs, K0).last(), Some(&(3 * DAY + HOUR, KeyState::PendingImport)));
}

#[test]
fn reimport_with_a_new_valid_to_replaces_the_old_expiry() {
    let mut h = harness(KmsParams::default(), &[Origin::External]);
    h.at(0, import(K0, M1, Expiry::At(SimTime::from_ms(3 * DAY))))
        .at(DAY, import(K0, M1, Expiry::At(SimTime::from_ms(5 * DAY))));
    let recs = h.run(10 * DAY);
    let expired = times(&recs, |o| matches!(o, KmsObs::MaterialExpired { .. }));
    assert_eq!(expired, [5 * DAY], "the day-3 expiry was replaced (D10)");
}

#[test]
fn import_tokens_live_24_hours_and_belong_to_one_key() {
    let mut h = harness(KmsParams::default(), &[Origin::External, Origin::External]);
    let get = |key, name: &str| KmsOp::GetParametersForImport { key: KeyRef::Id(key), name: Some(name.into()) };
    let import_with = |key, name: &str| KmsOp::ImportKeyMaterial {
        key: KeyRef::Id(key),
        token: TokenRef::Named(name.into()),
        material: M1,
        expiry: Expiry::Never,
        import_type: None,
    };
    h.at(0, get(K0, "t0"))
        .at(0, get(K1, "t1"))
        .at(HOUR, import_with(K0, "t1"))
        .at(24 * HOUR, import_with(K1, "t1"))
        .at(24 * HOUR - 1, import_with(K0, "t0"));
    let recs = h.run(2 * DAY);
    let imports: Vec<_> = calls(&recs).into_iter().filter(|c| c.1 == Operation::ImportKeyMaterial).collect();
    assert_eq!(
        imports,
        [
            (HOUR, Operation::ImportKeyMaterial, Some(KmsException::InvalidImportToken)),
            (24 * HOUR - 1, Operation::ImportKeyMaterial, None),
            (24 * HOUR, Operation::ImportKeyMaterial, Some(KmsException::ExpiredImportToken)),
        ]
    );
}

#[test]
fn delete_imported_key_material_takes_a_key_id_or_arn_but_not_an_alias() {
    let mut h = harness(KmsParams::default(), &[Origin::External]);
    h.at(0, import(K0, M1, Expiry::Never))
        .at(1, KmsOp::DeleteImportedKeyMaterial { key: KeyRef::Alias("alias/k0".into()), material: None })
        .at(2, KmsOp::DescribeKey { key: KeyRef::Alias("alias/k0".into()) })
        .at(3, KmsOp::DeleteImportedKeyMaterial { key: KeyRef::Arn(K0), material: None })
        .at(4, delete_material(K0));
    let recs = h.run(DAY);
    let c = calls(&recs);
    assert_eq!(c[2], (1, Operation::DeleteImportedKeyMaterial, Some(KmsException::NotFound)));
    assert_eq!(c[3], (2, Operation::DescribeKey, None));
    assert_eq!(c[4], (3, Operation::DeleteImportedKeyMaterial, None));
    assert_eq!(c[5], (4, Operation::DeleteImportedKeyMaterial, None), "PendingImport: succeeds with no effect");
    assert_eq!(states(&recs, K0).len(), 3);
}

#[test]
fn disable_then_delete_material_then_reimport_enables_the_key() {
    let mut h = harness(KmsParams::default(), &[Origin::External]);
    h.at(0, import(K0, M1, Expiry::Never))
        .at(1, KmsOp::DisableKey { key: KeyRef::Id(K0) })
        .at(2, import(K0, M1, Expiry::Never))
        .at(3, delete_material(K0))
        .at(4, import(K0, M1, Expiry::Never));
    let recs = h.run(DAY);
    let s: Vec<_> = states(&recs, K0).into_iter().map(|(_, s)| s).collect();
    // A3: the reimport at 2 leaves the Disabled key Disabled; D9: after deletion, import enables.
    assert_eq!(
        s,
        [KeyState::PendingImport, KeyState::Enabled, KeyState::Disabled, KeyState::PendingImport, KeyState::Enabled]
    );
}

#[test]
fn scheduled_deletion_keeps_pending_deletion_through_material_deletion_and_cancel_follows_d8() {
    let mut h = harness(KmsParams::default(), &[Origin::External, Origin::External]);
    let schedule = |key| KmsOp::ScheduleKeyDeletion { key: KeyRef::Id(key), pending_window_days: 7 };
    let cancel = |key| KmsOp::CancelKeyDeletion { key: KeyRef::Id(key) };
    h.at(0, import(K0, M1, Expiry::Never))
        .at(0, import(K1, M1, Expiry::Never))
        .at(HOUR, schedule(K0))
        .at(HOUR, schedule(K1))
        .at(2 * HOUR, delete_material(K0))
        .at(3 * HOUR, cancel(K0))
        .at(3 * HOUR, cancel(K1));
    let recs = h.run(30 * DAY);
    let s0: Vec<_> = states(&recs, K0).into_iter().map(|(_, s)| s).collect();
    let s1: Vec<_> = states(&recs, K1).into_iter().map(|(_, s)| s).collect();
    assert_eq!(s0, [KeyState::PendingImport, KeyState::Enabled, KeyState::PendingDeletion, KeyState::PendingImport]);
    assert_eq!(s1, [KeyState::PendingImport, KeyState::Enabled, KeyState::PendingDeletion, KeyState::Disabled]);
    assert!(!recs.iter().any(|r| matches!(r.obs, Obs::Kms(KmsObs::KeyDeleted { .. }))), "cancelled in time");
}

#[test]
fn deletion_at_the_end_of_the_window_is_irreversible() {
    let params = KmsParams { key_deletion_lag: SimDuration::from_hours(6), ..KmsParams::default() };
    let mut h = harness(params, &[Origin::External]);
    h.at(0, import(K0, M1, Expiry::Never))
        .at(1, encrypt(K0, "c"))
        .at(HOUR, KmsOp::ScheduleKeyDeletion { key: KeyRef::Id(K0), pending_window_days: 7 })
        .at(HOUR + 1, decrypt("c"))
        .at(8 * DAY, KmsOp::CancelKeyDeletion { key: KeyRef::Id(K0) })
        .at(8 * DAY, import(K0, M1, Expiry::Never))
        .at(8 * DAY, decrypt("c"))
        .at(8 * DAY, KmsOp::DescribeKey { key: KeyRef::Alias("alias/k0".into()) });
    let recs = h.run(30 * DAY);
    let deleted = times(&recs, |o| matches!(o, KmsObs::KeyDeleted { .. }));
    assert_eq!(deleted, [HOUR + 7 * DAY + 6 * HOUR], "window plus D3's lag");
    let c = calls(&recs);
    assert!(c.contains(&(HOUR + 1, Operation::Decrypt, Some(KmsException::InvalidState))), "D1");
    let after: Vec<_> = c.iter().filter(|x| x.0 == 8 * DAY).map(|x| x.2).collect();
    assert_eq!(after, [Some(KmsException::NotFound); 4], "nothing brings a deleted key back: {c:?}");
    assert_eq!(h.kms().state(K0), None);
}

#[test]
fn aws_kms_keys_refuse_import_operations() {
    let mut h = harness(KmsParams::default(), &[Origin::AwsKms]);
    h.at(0, import(K0, M1, Expiry::Never)).at(1, delete_material(K0));
    let recs = h.run(DAY);
    let c = calls(&recs);
    assert_eq!(c[0].2, Some(KmsException::UnsupportedOperation));
    assert_eq!(c.len(), 2, "a refused one-step import makes no ImportKeyMaterial call");
    assert_eq!(c[1].2, Some(KmsException::UnsupportedOperation));
}

#[test]
fn propagation_delay_lets_crypto_see_the_old_state_for_a_while() {
    let params = KmsParams { kms_propagation_delay: SimDuration::from_secs(30), ..KmsParams::default() };
    let mut h = harness(params, &[Origin::External]);
    h.at(0, import(K0, M1, Expiry::Never))
        .at(10, encrypt(K0, "c"))
        .at(HOUR, delete_material(K0))
        .at(HOUR + 29_999, decrypt("c"))
        .at(HOUR + 30_000, decrypt("c"))
        .at(HOUR + 1, KmsOp::EnableKey { key: KeyRef::Id(K0) });
    let recs = h.run(DAY);
    let c = calls(&recs);
    assert!(c.contains(&(HOUR + 29_999, Operation::Decrypt, None)), "{c:?}");
    assert!(c.contains(&(HOUR + 30_000, Operation::Decrypt, Some(KmsException::InvalidState))));
    assert!(
        c.contains(&(HOUR + 1, Operation::EnableKey, Some(KmsException::InvalidState))),
        "D13 is for the calls that use the key, not those that manage it"
    );
}

#[test]
fn refusals_cite_the_state_change_that_caused_them() {
    let mut h = harness(KmsParams::default(), &[Origin::External]);
    h.at(0, import(K0, M1, Expiry::Never))
        .at(1, encrypt(K0, "c"))
        .at(DAY, delete_material(K0))
        .at(2 * DAY, decrypt("c"));
    let recs = h.run(3 * DAY);
    let change =
        recs.iter().find(|r| r.at.as_ms() == DAY && matches!(r.obs, Obs::Kms(KmsObs::StateChanged { .. }))).unwrap();
    let refusal = recs.iter().find(|r| r.at.as_ms() == 2 * DAY).unwrap();
    assert_eq!(refusal.reason, Some(change.id));
    let deletion_call = recs.iter().find(|r| r.at.as_ms() == DAY).unwrap();
    assert_eq!(change.cause, Cause::Record(deletion_call.id), "the state change names the call");
}

fn import_new(key: KeyIdx, material: MaterialId, expiry: Expiry) -> KmsOp {
    KmsOp::ImportKeyMaterial {
        key: KeyRef::Id(key),
        token: TokenRef::Fresh,
        material,
        expiry,
        import_type: Some(ImportType::New),
    }
}

/// The materials of a key as ListKeyRotations with every material lists them: (material, state,
/// imported).
fn materials(h: &Harness, key: KeyIdx) -> Vec<(MaterialId, MaterialState, bool)> {
    h.kms().materials(key).into_iter().map(|m| (m.material, m.state, m.imported)).collect()
}

#[test]
fn a_ciphertext_of_the_old_material_decrypts_after_a_rotation_until_any_material_is_deleted() {
    let mut h = harness(KmsParams::default(), &[Origin::External]);
    h.at(0, import(K0, M1, Expiry::Never))
        .at(HOUR, encrypt(K0, "old"))
        .at(2 * HOUR, import_new(K0, M2, Expiry::Never))
        .at(3 * HOUR, KmsOp::RotateKeyOnDemand { key: KeyRef::Id(K0) })
        .at(4 * HOUR, encrypt(K0, "new"))
        .at(5 * HOUR, decrypt("old"))
        .at(5 * HOUR, decrypt("new"));
    let recs = h.run(6 * HOUR);
    assert!(calls(&recs).iter().all(|(_, _, e)| e.is_none()), "{:?}", calls(&recs));
    assert_eq!(materials(&h, K0), [(M1, MaterialState::NonCurrent, true), (M2, MaterialState::Current, true)]);
    let made = |name: &str| h.kms().named_ciphertexts[name].material;
    assert_eq!((made("old"), made("new")), (Some(M1), Some(M2)), "each ciphertext keeps its material");
    // Deleting the non-current material refuses both: the whole key is PendingImport.
    h.at(DAY, KmsOp::DeleteImportedKeyMaterial { key: KeyRef::Id(K0), material: Some(M1) })
        .at(DAY + HOUR, decrypt("new"))
        .at(2 * DAY, import(K0, M1, Expiry::Never))
        .at(2 * DAY + HOUR, decrypt("old"));
    let recs = h.run(3 * DAY);
    let outcomes: Vec<Option<KmsException>> = calls(&recs).into_iter().map(|(_, _, e)| e).collect();
    assert_eq!(outcomes[1], Some(KmsException::InvalidState), "{outcomes:?}");
    assert!(
        outcomes[2..].iter().all(Option::is_none),
        "the reimport (EXISTING by default) restores the key: {outcomes:?}"
    );
    assert_eq!(h.kms().state(K0), Some(KeyState::Enabled));
}

#[test]
fn list_key_rotations_lists_completed_rotations_unless_every_material_is_asked_for() {
    let mut h = harness(KmsParams::default(), &[Origin::External]);
    let list = |all| KmsOp::ListKeyRotations { key: KeyRef::Id(K0), all };
    h.at(0, import(K0, M1, Expiry::Never))
        .at(HOUR, import_new(K0, M2, Expiry::Never))
        .at(2 * HOUR, list(false))
        .at(2 * HOUR, list(true));
    let recs = h.run(3 * HOUR);
    let listed: Vec<Vec<(MaterialId, MaterialState)>> = recs
        .iter()
        .filter_map(|r| match &r.obs {
            Obs::Kms(KmsObs::Called { result: Ok(KmsOutput::Rotations(l)), .. }) => {
                Some(l.iter().map(|e| (e.material, e.state)).collect())
            }
            _ => None,
        })
        .collect();
    assert_eq!(listed, [vec![], vec![(M1, MaterialState::Current), (M2, MaterialState::PendingRotation)]]);
}

#[test]
fn a_pending_material_expiring_leaves_the_key_enabled_and_is_forgotten() {
    let mut h = harness(KmsParams::default(), &[Origin::External]);
    h.at(0, import(K0, M1, Expiry::Never)).at(HOUR, import_new(K0, M2, Expiry::At(SimTime::from_ms(DAY))));
    let recs = h.run(2 * DAY);
    assert_eq!(times(&recs, |o| matches!(o, KmsObs::MaterialExpired { .. })), [DAY]);
    assert_eq!(h.kms().state(K0), Some(KeyState::Enabled));
    assert_eq!(materials(&h, K0), [(M1, MaterialState::Current, true)]);
}

/// A retired grant nobody can name is forgotten (memory stays the estate's however many grants
/// a run makes and ends); a named one is kept, so that naming it again is refused as a grant of
/// its key (cargo mutants: `forget_if_unnamed` as a no-op, or its `!live` test dropped).
#[test]
fn a_retired_grant_is_forgotten_unless_named() {
    let mut h = harness(KmsParams::default(), &[Origin::External]);
    h.at(0, import(K0, M1, Expiry::Never)).at(HOUR, grant(K0, None)).at(HOUR, grant(K0, Some("g1")));
    let records = h.run(HOUR + 1);
    let made: Vec<GrantId> = records
        .iter()
        .filter_map(|r| match &r.obs {
            Obs::Kms(KmsObs::Called { result: Ok(KmsOutput::Grant(id)), .. }) => Some(*id),
            _ => None,
        })
        .collect();
    let [unnamed, named] = made[..] else { panic!("{made:?}") };
    assert_eq!(h.kms().grants.len(), 2);
    h.at(2 * HOUR, KmsOp::RetireGrant { grant: GrantRef::Id(unnamed) });
    h.at(2 * HOUR, KmsOp::RetireGrant { grant: GrantRef::Named("g1".into()) });
    h.at(3 * HOUR, KmsOp::RetireGrant { grant: GrantRef::Named("g1".into()) });
    let records = h.run(4 * HOUR);
    assert_eq!(h.kms().grants.keys().copied().collect::<Vec<_>>(), vec![named], "only the named grant is kept");
    assert!(h.kms().grants.values().all(|g| !g.live));
    assert_eq!(
        calls(&records),
        vec![
            (2 * HOUR, Operation::RetireGrant, None),
            (2 * HOUR, Operation::RetireGrant, None),
            (3 * HOUR, Operation::RetireGrant, Some(KmsException::NotFound)),
        ]
    );
}

/// EnableKey on an Enabled key and DisableKey on a Disabled one succeed and change nothing: no
/// state change is recorded ([KS]: both are allowed in either state; cargo mutants: each
/// effect's guard as always true recorded "Enabled -> Enabled").
#[test]
fn enabling_an_enabled_key_or_disabling_a_disabled_one_changes_nothing() {
    let mut h = harness(KmsParams::default(), &[Origin::External]);
    h.at(0, import(K0, M1, Expiry::Never))
        .at(HOUR, KmsOp::EnableKey { key: KeyRef::Id(K0) })
        .at(2 * HOUR, KmsOp::DisableKey { key: KeyRef::Id(K0) })
        .at(3 * HOUR, KmsOp::DisableKey { key: KeyRef::Id(K0) })
        .at(4 * HOUR, KmsOp::EnableKey { key: KeyRef::Id(K0) });
    let records = h.run(5 * HOUR);
    assert_eq!(
        states(&records, K0),
        vec![
            (0, KeyState::PendingImport),
            (0, KeyState::Enabled),
            (2 * HOUR, KeyState::Disabled),
            (4 * HOUR, KeyState::Enabled)
        ]
    );
    assert!(calls(&records).iter().all(|(_, _, e)| e.is_none()), "{:?}", calls(&records));
}

/// Deleting a key ends its grants; a named one is still known as that key's, so retiring it
/// afterwards is refused naming the key (cargo mutants: the deletion's `live || named` as `&&`
/// forgot the named grant too, and the refusal named no key).
#[test]
fn a_named_grant_outlives_its_deleted_key_as_that_keys() {
    let mut h = harness(KmsParams::default(), &[Origin::External]);
    h.at(0, import(K0, M1, Expiry::Never))
        .at(HOUR, grant(K0, Some("g1")))
        .at(2 * HOUR, KmsOp::ScheduleKeyDeletion { key: KeyRef::Id(K0), pending_window_days: 7 })
        .at(8 * DAY, KmsOp::RetireGrant { grant: GrantRef::Named("g1".into()) });
    let records = h.run(9 * DAY);
    assert_eq!(h.kms().grants.len(), 1);
    assert!(h.kms().grants.values().all(|g| !g.live));
    let retire = records
        .iter()
        .find_map(|r| match &r.obs {
            Obs::Kms(KmsObs::Called { op, key, result, .. }) if op.operation() == Operation::RetireGrant => {
                Some((*key, result.as_ref().err().map(|e| e.exception)))
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(retire, (Some(K0), Some(KmsException::NotFound)));
}
