//! The KMS service of one account and Region: keys, imported material, grants, and its own timers.
//!
//! ```text
//!   CreateKey(EXTERNAL) ──> PendingImport ──ImportKeyMaterial──> Enabled <──EnableKey── Disabled
//!                              ^    ^                              │  └───DisableKey───────^  │
//!                              │    └─DeleteImportedKeyMaterial────┘     (or ValidTo passes)  │
//!                              │      (Enabled or Disabled)                                   │
//!   ScheduleKeyDeletion (from Enabled, Disabled, PendingImport) ──> PendingDeletion ──window──> deleted
//!   CancelKeyDeletion: PendingDeletion ──> Disabled, or PendingImport without material (D8)
//! ```
//!
//! A key holds several materials: the first import's is CURRENT; a NEW_KEY_MATERIAL import waits
//! in PENDING_ROTATION until RotateKeyOnDemand makes it CURRENT and the previous one NON_CURRENT.
//! The key is usable only while every material but a pending one is imported: deleting or
//! expiring any of them makes it PendingImport.
//!
//! Every call is checked against the key-state table ([`table::admit`]) and recorded with its
//! outcome. Expiry at each material's `ValidTo` and deletion at the end of the waiting period are
//! KMS's own timers, recorded as service events. Simplifications: symmetric single-Region keys in
//! the default key store (D14), and an encryption context that is at most one `aws:ebs:id` pair. kmsim never holds key bytes: materials are names, ciphertexts are
//! values bound to (key, material, context).

pub mod table;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::engine::{ActorId, RecordId, Scheduled, SimDuration, SimTime};

use super::ebs::VolumeMsg;
use super::{Msg, Obs, WorldCtx};
pub use table::{KeyState, KmsError, KmsException, Operation, Origin, admit};

/// A key's position in the KMS actor's key table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyIdx(pub u32);

/// A key material, by the name the scenario gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MaterialId(pub u32);

/// A grant, by issue order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GrantId(pub u32);

/// How a caller names a key, as the `KeyId` parameter allows: key ID, key ARN or alias.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRef {
    Id(KeyIdx),
    Arn(KeyIdx),
    Alias(Arc<str>),
}

/// `ValidTo` and `ExpirationModel` of an import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// `KEY_MATERIAL_DOES_NOT_EXPIRE`.
    Never,
    /// `KEY_MATERIAL_EXPIRES` with this `ValidTo`.
    At(SimTime),
    /// `KEY_MATERIAL_EXPIRES` (the API's default) with no `ValidTo`: KMS refuses it.
    WithoutValidTo,
}

/// The AWS service that makes a call on the user's behalf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Ebs,
    Ec2,
    /// One of the other services a key protects, making its calls for its resource.
    Other(super::service::Kind),
}

/// Who makes a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The scenario's user principal.
    User,
    /// A service in the user's identity (EBS creating a data key, EC2 creating a grant).
    UserVia(Service),
    /// The `aws:ec2-infrastructure` role session of an instance, which decrypts its volumes' keys.
    Instance(ActorId),
}

/// Who a grant is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grantee {
    Instance(ActorId),
    Principal(Arc<str>),
}

/// A ciphertext blob: bound to its key, its key material and its encryption context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ciphertext {
    pub key: KeyIdx,
    /// The imported material it was made with; `None` for the material KMS generated for an
    /// `AWS_KMS` key.
    pub material: Option<MaterialId>,
    pub serial: u64,
    /// The encryption context, if any.
    pub context: Option<ContextId>,
}

/// An encryption context, naming the resource it belongs to by its place in the scenario: the
/// volumes (`{"aws:ebs:id": <volume>}`), then the snapshots, then the other services' resources
/// (each with its service's pairs, [`crate::scenario::Scenario::context_pairs`]). KMS only
/// compares contexts, and outputs word them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContextId(pub u32);

/// `SourceEncryptionContext` and `DestinationEncryptionContext` of a ReEncrypt (boxed in the
/// operation: an operation's size is every call's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReEncryptContexts {
    pub source: Option<ContextId>,
    pub destination: Option<ContextId>,
}

/// A ciphertext passed to Decrypt or ReEncrypt: a blob, or one the scenario named when it was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CiphertextRef {
    Blob(Ciphertext),
    Named(Arc<str>),
}

/// `ImportType` of an ImportKeyMaterial call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportType {
    /// `NEW_KEY_MATERIAL`: the first material, or one for an on-demand rotation.
    New,
    /// `EXISTING_KEY_MATERIAL`: a reimport of a material already associated with the key.
    Existing,
}

impl ImportType {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ImportType::New => "NEW_KEY_MATERIAL",
            ImportType::Existing => "EXISTING_KEY_MATERIAL",
        }
    }
}

/// `KeyMaterialState`: how a material associated with a key serves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MaterialState {
    /// Encrypts and decrypts.
    Current,
    /// Decrypts what it encrypted while it was current.
    NonCurrent,
    /// Imported for an on-demand rotation that has not happened: not permanently associated.
    PendingRotation,
}

impl MaterialState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            MaterialState::Current => "CURRENT",
            MaterialState::NonCurrent => "NON_CURRENT",
            MaterialState::PendingRotation => "PENDING_ROTATION",
        }
    }
}

/// One material of a key, as `ListKeyRotations` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationEntry {
    pub material: MaterialId,
    pub state: MaterialState,
    /// `ImportState`: `IMPORTED` or `PENDING_IMPORT` (deleted or expired, awaiting reimport).
    pub imported: bool,
    /// The expiration of its last import.
    pub expiry: Expiry,
    /// When an on-demand rotation made it current (`None` for the first material and a pending one).
    pub rotated_at: Option<SimTime>,
}

/// The import token of an ImportKeyMaterial call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenRef {
    /// A token the scenario named in an earlier GetParametersForImport.
    Named(Arc<str>),
    /// One step: KMS makes the GetParametersForImport call and uses its token at once.
    Fresh,
}

/// A grant passed to RetireGrant or RevokeGrant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantRef {
    Id(GrantId),
    /// A grant the scenario named when it created it.
    Named(Arc<str>),
    /// The live grant whose constraint names this `aws:ebs:id` (the grant EC2 made for a volume).
    ForContext(ContextId),
}

/// A KMS API call. Optional `name`s let a scenario refer to what the call returns later.
#[derive(Clone, Debug, PartialEq)]
pub enum KmsOp {
    DescribeKey {
        key: KeyRef,
    },
    EnableKey {
        key: KeyRef,
    },
    DisableKey {
        key: KeyRef,
    },
    ScheduleKeyDeletion {
        key: KeyRef,
        pending_window_days: u32,
    },
    CancelKeyDeletion {
        key: KeyRef,
    },
    GetParametersForImport {
        key: KeyRef,
        name: Option<Arc<str>>,
    },
    /// `import_type` `None`: AWS's default (new for a key that never had material, else existing).
    ImportKeyMaterial {
        key: KeyRef,
        token: TokenRef,
        material: MaterialId,
        expiry: Expiry,
        import_type: Option<ImportType>,
    },
    /// `material` `None`: the current material.
    DeleteImportedKeyMaterial {
        key: KeyRef,
        material: Option<MaterialId>,
    },
    RotateKeyOnDemand {
        key: KeyRef,
    },
    /// `all`: `IncludeKeyMaterial=ALL_KEY_MATERIAL` (the first and pending materials too).
    ListKeyRotations {
        key: KeyRef,
        all: bool,
    },
    EnableKeyRotation {
        key: KeyRef,
    },
    Encrypt {
        key: KeyRef,
        context: Option<ContextId>,
        name: Option<Arc<str>>,
    },
    Decrypt {
        ciphertext: CiphertextRef,
        key: Option<KeyRef>,
        context: Option<ContextId>,
    },
    ReEncrypt {
        ciphertext: CiphertextRef,
        destination: KeyRef,
        name: Option<Arc<str>>,
        /// The encryption contexts EBS passes when it re-encrypts a snapshot's data key (D19).
        contexts: Option<Box<ReEncryptContexts>>,
    },
    GenerateDataKey {
        key: KeyRef,
        context: Option<ContextId>,
        name: Option<Arc<str>>,
    },
    GenerateDataKeyWithoutPlaintext {
        key: KeyRef,
        context: Option<ContextId>,
        name: Option<Arc<str>>,
    },
    CreateGrant {
        key: KeyRef,
        grantee: Grantee,
        context: Option<ContextId>,
        name: Option<Arc<str>>,
    },
    RetireGrant {
        grant: GrantRef,
    },
    RevokeGrant {
        key: KeyRef,
        grant: GrantRef,
    },
}

impl KmsOp {
    #[must_use]
    pub fn operation(&self) -> Operation {
        match self {
            KmsOp::DescribeKey { .. } => Operation::DescribeKey,
            KmsOp::EnableKey { .. } => Operation::EnableKey,
            KmsOp::DisableKey { .. } => Operation::DisableKey,
            KmsOp::ScheduleKeyDeletion { .. } => Operation::ScheduleKeyDeletion,
            KmsOp::CancelKeyDeletion { .. } => Operation::CancelKeyDeletion,
            KmsOp::GetParametersForImport { .. } => Operation::GetParametersForImport,
            KmsOp::ImportKeyMaterial { .. } => Operation::ImportKeyMaterial,
            KmsOp::DeleteImportedKeyMaterial { .. } => Operation::DeleteImportedKeyMaterial,
            KmsOp::Encrypt { .. } => Operation::Encrypt,
            KmsOp::Decrypt { .. } => Operation::Decrypt,
            KmsOp::ReEncrypt { .. } => Operation::ReEncrypt,
            KmsOp::GenerateDataKey { .. } => Operation::GenerateDataKey,
            KmsOp::GenerateDataKeyWithoutPlaintext { .. } => Operation::GenerateDataKeyWithoutPlaintext,
            KmsOp::CreateGrant { .. } => Operation::CreateGrant,
            KmsOp::RetireGrant { .. } => Operation::RetireGrant,
            KmsOp::RevokeGrant { .. } => Operation::RevokeGrant,
            KmsOp::RotateKeyOnDemand { .. } => Operation::RotateKeyOnDemand,
            KmsOp::ListKeyRotations { .. } => Operation::ListKeyRotations,
            KmsOp::EnableKeyRotation { .. } => Operation::EnableKeyRotation,
        }
    }
}

/// What a successful call returns (only what later steps or the trace need).
#[derive(Clone, Debug, PartialEq)]
pub enum KmsOutput {
    Done,
    /// `current`: `CurrentKeyMaterialId`.
    Described {
        state: KeyState,
        current: Option<MaterialId>,
    },
    DeletionScheduled {
        deletion_date: SimTime,
    },
    ImportParameters {
        parameters_valid_to: SimTime,
    },
    /// `import_type`: as the call asked or AWS's default chose; `state`: the material's now.
    Imported {
        material: MaterialId,
        expiry: Expiry,
        import_type: ImportType,
        state: MaterialState,
    },
    /// `None`: nothing was imported to delete.
    MaterialDeleted {
        material: Option<MaterialId>,
    },
    /// An on-demand rotation: the material that was current and the one that is now (both
    /// `None` for a key whose material AWS generates).
    Rotated {
        from: Option<MaterialId>,
        to: Option<MaterialId>,
    },
    Rotations(Vec<RotationEntry>),
    Ciphertext(Ciphertext),
    /// `material`: the one that served the call.
    Decrypted {
        key: KeyIdx,
        material: Option<MaterialId>,
    },
    Grant(GrantId),
}

/// A request to KMS: a message when nobody waits for the answer (the scenario's user, EC2
/// retiring a grant), a call ([`crate::engine::Ctx::call`]) when the caller goes on with it.
#[derive(Clone, Debug, PartialEq)]
pub struct KmsRequest {
    pub caller: Caller,
    /// Boxed: requests travel through the event queue, which moves small messages fastest.
    pub op: Box<KmsOp>,
}

/// Messages the KMS actor handles.
#[derive(Debug)]
pub enum KmsMsg {
    /// Brings a declared key into existence (CreateKey).
    CreateKey(KeyIdx),
    Request(KmsRequest),
    /// KMS's own timer: a material's `ValidTo` (plus `material_expiry_lag`) has passed.
    ExpireMaterial(KeyIdx, MaterialId),
    /// KMS's own timer: the waiting period (plus `key_deletion_lag`) has ended.
    DeleteKey(KeyIdx),
}

/// Facts the KMS actor records.
#[derive(Clone, Debug, PartialEq)]
pub enum KmsObs {
    /// An API call and its outcome. `key` is the key the call resolved to, if any.
    Called { caller: Caller, op: Box<KmsOp>, key: Option<KeyIdx>, result: Result<KmsOutput, KmsError> },
    /// A key changed state; `from` is `None` when the key is created.
    StateChanged { key: KeyIdx, from: Option<KeyState>, to: KeyState },
    /// KMS deleted expired material (CloudTrail `DeleteExpiredKeyMaterial`, a service event).
    MaterialExpired { key: KeyIdx, material: MaterialId },
    /// KMS deleted the key at the end of its waiting period (CloudTrail `DeleteKey`, a service event).
    KeyDeleted { key: KeyIdx },
    /// KMS rotated the key on demand (CloudTrail `RotateKey`, a service event): `from` and `to`
    /// are the materials that were and are current (`None` for AWS-generated material).
    Rotated { key: KeyIdx, from: Option<MaterialId>, to: Option<MaterialId> },
}

/// Where the documentation is silent (docs/model.md): KMS's numeric choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KmsParams {
    /// D2: from `ValidTo` to the deletion of the expired material.
    pub material_expiry_lag: SimDuration,
    /// D3: from the end of the waiting period to the deletion of the key (AWS: up to 24 h).
    pub key_deletion_lag: SimDuration,
    /// D13: how long a state change takes to reach the operations that use the key.
    pub kms_propagation_delay: SimDuration,
    /// The shared quota of cryptographic requests per second ([RPS] in docs/model.md); beyond it, calls
    /// get `ThrottlingException`. `None`: unlimited.
    pub crypto_quota_per_s: Option<u32>,
    /// On-demand rotations a key allows (the current API reference: 25; older copies: 10).
    pub max_on_demand_rotations: u32,
}

/// The current API reference's limit on on-demand rotations per key.
pub const DEFAULT_MAX_ON_DEMAND_ROTATIONS: u32 = 25;

impl Default for KmsParams {
    fn default() -> Self {
        KmsParams {
            material_expiry_lag: SimDuration::ZERO,
            key_deletion_lag: SimDuration::ZERO,
            kms_propagation_delay: SimDuration::ZERO,
            crypto_quota_per_s: None,
            max_on_demand_rotations: DEFAULT_MAX_ON_DEMAND_ROTATIONS,
        }
    }
}

/// The identity of a declared key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySpec {
    pub key_id: String,
    pub arn: String,
    pub origin: Origin,
    pub aliases: Vec<Arc<str>>,
}

/// How long an import token and its public key stay valid.
pub const IMPORT_TOKEN_LIFE: SimDuration = SimDuration::from_hours(24);
/// The latest `ValidTo` an import may set, after the request.
pub const MAX_VALID_FOR: SimDuration = SimDuration::from_days(365);

/// The key-state table's answer ([`admit`]).
type Verdict = Result<(), KmsError>;

#[derive(Debug)]
struct Key {
    spec: KeySpec,
    /// The last answer of the key-state table for this key, and what it was asked.
    verdict: RefCell<Option<(Operation, KeyState, Verdict)>>,
    /// `None` until CreateKey, and again once the key is deleted.
    state: Option<KeyState>,
    deleted: bool,
    /// The materials associated with the key, in the order they were first imported, each
    /// with its expiry timer.
    materials: Vec<(RotationEntry, Option<Scheduled>)>,
    /// On-demand rotations so far.
    rotations: u32,
    deletion_timer: Option<Scheduled>,
    /// The record that put the key in its current state: the reason a refused call cites.
    state_record: Option<RecordId>,
    /// (since, state) history, for D13's propagation delay.
    history: Vec<(SimTime, KeyState)>,
}

impl Key {
    /// The current material, imported or not.
    fn current(&self) -> Option<MaterialId> {
        self.materials.iter().find(|(m, _)| m.state == MaterialState::Current).map(|(m, _)| m.material)
    }

    fn held(&self, material: MaterialId) -> Option<usize> {
        self.materials.iter().position(|(m, _)| m.material == material)
    }

    /// Whether every material permanently associated with the key is imported: only then can
    /// it be used.
    fn complete(&self) -> bool {
        let mut permanent = self.materials.iter().filter(|(m, _)| m.state != MaterialState::PendingRotation);
        !self.materials.is_empty() && permanent.all(|(m, _)| m.imported)
    }
}

#[derive(Debug)]
struct Token {
    key: KeyIdx,
    valid_to: SimTime,
}

#[derive(Debug)]
struct LiveGrant {
    id: GrantId,
    key: KeyIdx,
    context: Option<ContextId>,
}

#[derive(Debug)]
struct Grant {
    key: KeyIdx,
    grantee: Grantee,
    context: Option<ContextId>,
    live: bool,
    /// Named by the user: kept once retired, for a later call may name it.
    named: bool,
    /// The actor that holds the grant for a service (the volume EC2 made it for), told when
    /// the user retires or revokes it.
    holder: Option<ActorId>,
}

/// The KMS actor.
#[derive(Debug)]
pub struct Kms {
    params: KmsParams,
    keys: Vec<Key>,
    tokens: Vec<Token>,
    named_tokens: BTreeMap<Arc<str>, usize>,
    named_ciphertexts: BTreeMap<Arc<str>, Ciphertext>,
    /// Live grants, and the retired ones the user named: an unnamed grant is forgotten once
    /// retired (only EC2 names it, by id, and only while it lives), so that an estate whose
    /// instances are launched again and again keeps the memory of its live grants only.
    grants: BTreeMap<GrantId, Grant>,
    next_grant: u32,
    named_grants: BTreeMap<Arc<str>, GrantId>,
    /// Live grants to each instance, by actor index, with what the check on every EBS Decrypt
    /// reads kept inline: one place to look at, not three.
    grants_by_instance: Vec<SmallVec<[LiveGrant; 1]>>,
    next_serial: u64,
    /// By key: the resources of other services that notice a change of the key (D12), told of
    /// each change of its state.
    watchers: Vec<Vec<ActorId>>,
    /// The current one-second quota window and the crypto requests counted in it.
    window: (u64, u32),
}

/// What a call to KMS returns.
pub type Outcome = Result<KmsOutput, KmsError>;

impl Kms {
    #[must_use]
    pub fn new(params: KmsParams, keys: Vec<KeySpec>) -> Self {
        let keys_len = keys.len();
        let keys = keys
            .into_iter()
            .map(|spec| Key {
                spec,
                verdict: RefCell::new(None),
                state: None,
                deleted: false,
                materials: Vec::new(),
                rotations: 0,
                deletion_timer: None,
                state_record: None,
                history: Vec::new(),
            })
            .collect();
        Kms {
            params,
            keys,
            tokens: Vec::new(),
            named_tokens: BTreeMap::new(),
            named_ciphertexts: BTreeMap::new(),
            grants: BTreeMap::new(),
            next_grant: 0,
            named_grants: BTreeMap::new(),
            grants_by_instance: Vec::new(),
            next_serial: 0,
            watchers: vec![Vec::new(); keys_len],
            window: (0, 0),
        }
    }

    /// The identity of a key, for messages and outputs.
    #[must_use]
    pub fn spec(&self, key: KeyIdx) -> &KeySpec {
        &self.keys[key.0 as usize].spec
    }

    /// A key's current state, `None` before creation or after deletion.
    #[must_use]
    pub fn state(&self, key: KeyIdx) -> Option<KeyState> {
        self.keys[key.0 as usize].state
    }

    /// The current material of a key, if it is imported.
    #[must_use]
    pub fn material(&self, key: KeyIdx) -> Option<MaterialId> {
        let k = &self.keys[key.0 as usize];
        k.materials.iter().find(|(m, _)| m.state == MaterialState::Current && m.imported).map(|(m, _)| m.material)
    }

    /// The materials associated with a key, as `ListKeyRotations` with every material lists them.
    #[must_use]
    pub fn materials(&self, key: KeyIdx) -> Vec<RotationEntry> {
        self.keys[key.0 as usize].materials.iter().map(|(m, _)| m.clone()).collect()
    }

    /// Live grants: key, grantee and the `aws:ebs:id` constraint, in creation order.
    pub fn live_grants(&self) -> impl Iterator<Item = (KeyIdx, &Grantee, Option<ContextId>)> {
        self.grants.values().filter(|g| g.live).map(|g| (g.key, &g.grantee, g.context))
    }

    pub fn handle(&mut self, msg: KmsMsg, ctx: &mut WorldCtx<'_>) {
        match msg {
            KmsMsg::CreateKey(key) => self.on_create_key(key, ctx),
            // Nobody waits for the outcome of a request sent as a message; it is recorded.
            KmsMsg::Request(req) => drop(self.answer(req, ctx)),
            KmsMsg::ExpireMaterial(key, material) => self.on_expire_material(key, material, ctx),
            KmsMsg::DeleteKey(key) => self.on_delete_key(key, ctx),
        }
    }

    fn on_create_key(&mut self, key: KeyIdx, ctx: &mut WorldCtx<'_>) {
        let state = match self.keys[key.0 as usize].spec.origin {
            Origin::AwsKms => KeyState::Enabled,
            Origin::External => KeyState::PendingImport,
        };
        self.set_state(key, state, ctx);
    }

    /// Evaluates a request, records it (and the GetParametersForImport of a one-step import),
    /// applies its effects, and returns its outcome.
    pub fn answer(&mut self, req: KmsRequest, ctx: &mut WorldCtx<'_>) -> Outcome {
        let KmsRequest { caller, op } = req;
        let mut result = Ok(KmsOutput::Done);
        if let KmsOp::ImportKeyMaterial { key, token: TokenRef::Fresh, .. } = &*op {
            // One step: the GetParametersForImport a user makes first, recorded as its own call.
            let get = Box::new(KmsOp::GetParametersForImport { key: key.clone(), name: Some(FRESH_TOKEN.into()) });
            result = self.call_and_record(caller, get, ctx);
        }
        if result.is_ok() {
            result = self.call_and_record(caller, op, ctx);
        }
        result
    }

    fn call_and_record(&mut self, caller: Caller, op: Box<KmsOp>, ctx: &mut WorldCtx<'_>) -> Outcome {
        let (key, result) = self.call(caller, &op, ctx.now());
        let reason = self.reason_for(key, &result);
        let effect = match (&result, key) {
            (Ok(out), Some(key)) => Effect::of(&op, out).map(|e| (key, e)),
            _ => None,
        };
        let grant = match (&*op, &result) {
            (KmsOp::CreateGrant { .. }, Ok(KmsOutput::Grant(id))) => Some((*id, true)),
            (KmsOp::RetireGrant { .. } | KmsOp::RevokeGrant { .. }, Ok(KmsOutput::Grant(id))) => Some((*id, false)),
            _ => None,
        };
        ctx.record_because(Obs::Kms(KmsObs::Called { caller, op, key, result: result.clone() }), reason);
        if let Some((key, effect)) = effect {
            self.apply(key, effect, ctx);
        }
        match grant {
            // A service calling for its resource holds the grant it made.
            Some((id, true)) => {
                if let Some(g) = self.grants.get_mut(&id) {
                    g.holder = ctx.caller();
                }
            }
            Some((id, false)) => {
                // EC2 learns that the user ended a grant it holds, and makes a new one when it
                // next needs it (A4). It ends its own grants itself, and knows.
                let holder = self.grants.get(&id).and_then(|g| g.holder);
                if let (Some(holder), Caller::User) = (holder, caller) {
                    ctx.send(holder, Msg::Volume(VolumeMsg::GrantEnded { grant: id }), SimDuration::ZERO);
                }
                self.forget_if_unnamed(id);
            }
            None => {}
        }
        result
    }

    /// A refusal caused by the key's state cites the record that put the key in that state.
    fn reason_for(&self, key: Option<KeyIdx>, result: &Outcome) -> Option<RecordId> {
        match (key, result) {
            (Some(k), Err(e)) if matches!(e.exception, KmsException::InvalidState | KmsException::Disabled) => {
                self.keys[k.0 as usize].state_record
            }
            _ => None,
        }
    }

    /// Evaluates a call without changing key states (those follow in [`Kms::apply`], after the
    /// call is recorded, so that state changes name the call as their cause).
    fn call(&mut self, caller: Caller, op: &KmsOp, now: SimTime) -> (Option<KeyIdx>, Outcome) {
        let operation = op.operation();
        if operation.is_crypto()
            && let Some(quota) = self.params.crypto_quota_per_s
        {
            // Requests are counted per account and Region in one-second intervals.
            let second = now.as_ms() / 1_000;
            if self.window.0 != second {
                self.window = (second, 0);
            }
            if self.window.1 >= quota {
                return (None, Err(KmsError::new(KmsException::Throttling, &"Rate exceeded")));
            }
            self.window.1 += 1;
        }
        let key_ref = match op {
            KmsOp::DescribeKey { key }
            | KmsOp::EnableKey { key }
            | KmsOp::DisableKey { key }
            | KmsOp::ScheduleKeyDeletion { key, .. }
            | KmsOp::CancelKeyDeletion { key }
            | KmsOp::GetParametersForImport { key, .. }
            | KmsOp::ImportKeyMaterial { key, .. }
            | KmsOp::DeleteImportedKeyMaterial { key, .. }
            | KmsOp::RotateKeyOnDemand { key }
            | KmsOp::ListKeyRotations { key, .. }
            | KmsOp::EnableKeyRotation { key }
            | KmsOp::Encrypt { key, .. }
            | KmsOp::GenerateDataKey { key, .. }
            | KmsOp::GenerateDataKeyWithoutPlaintext { key, .. }
            | KmsOp::CreateGrant { key, .. }
            | KmsOp::RevokeGrant { key, .. }
            | KmsOp::ReEncrypt { destination: key, .. } => Some(key),
            KmsOp::Decrypt { key, .. } => key.as_ref(),
            KmsOp::RetireGrant { .. } => None,
        };
        let named = match key_ref {
            Some(r) => match self.resolve(r, operation) {
                Ok(k) => Some(k),
                // A deleted key is still the key the caller meant: the record names it.
                Err(e) => {
                    let meant = match r {
                        KeyRef::Id(k) | KeyRef::Arn(k) => Some(*k),
                        KeyRef::Alias(_) => None,
                    };
                    return (meant, Err(e));
                }
            },
            None => None,
        };
        // The key a Decrypt is about is the one its ciphertext names.
        let subject = match op {
            KmsOp::Decrypt { ciphertext, .. } => self.blob(ciphertext).map(|c| c.key).or(named),
            _ => named,
        };
        let outcome = match op {
            KmsOp::Decrypt { ciphertext, context, .. } => self.decrypt(caller, named, ciphertext, *context, now),
            KmsOp::ReEncrypt { ciphertext, contexts, name, .. } => {
                let (source_context, destination_context) =
                    contexts.as_ref().map_or((None, None), |c| (c.source, c.destination));
                let dest = named.expect("ReEncrypt names a destination key");
                match self.decrypt(caller, None, ciphertext, source_context, now) {
                    Ok(_) => self
                        .check(operation, dest, now)
                        .map(|()| self.new_ciphertext(dest, destination_context, name.as_ref())),
                    Err(e) => Err(e),
                }
            }
            KmsOp::RetireGrant { grant } => return self.retire(grant, None),
            _ => {
                let key = named.expect("every other operation names a key");
                self.check(operation, key, now).and_then(|()| self.evaluate(caller, op, key, now))
            }
        };
        (subject, outcome)
    }

    /// Finds a live key by ID, ARN or alias; aliases only where the operation accepts them.
    fn resolve(&self, key: &KeyRef, op: Operation) -> Result<KeyIdx, KmsError> {
        match key {
            KeyRef::Id(k) | KeyRef::Arn(k) => {
                let entry = &self.keys[k.0 as usize];
                // A key has no state before CreateKey and none once deleted.
                if entry.state.is_none() {
                    Err(KmsError::new(KmsException::NotFound, format!("Key '{}' does not exist", entry.spec.arn)))
                } else {
                    Ok(*k)
                }
            }
            KeyRef::Alias(alias) => {
                if !op.accepts_alias() {
                    // A1: the API takes only a key ID or ARN here; an alias is not found as a key.
                    return Err(KmsError::new(KmsException::NotFound, format!("Invalid keyId {alias}")));
                }
                self.keys
                    .iter()
                    .position(|k| k.state.is_some() && k.spec.aliases.contains(alias))
                    .map(|i| KeyIdx(u32::try_from(i).expect("key count fits u32")))
                    .ok_or_else(|| KmsError::new(KmsException::NotFound, format!("Alias {alias} is not found.")))
            }
        }
    }

    /// The key-state table, applied to the state the operation sees.
    fn check(&self, op: Operation, key: KeyIdx, now: SimTime) -> Result<(), KmsError> {
        let k = &self.keys[key.0 as usize];
        // D13 applies to the operations that use the key (crypto and CreateGrant), not to the
        // calls that manage it, which must act on its real state.
        let uses_key = op.is_crypto() || op == Operation::CreateGrant;
        let state = if uses_key { self.visible_state(key, now) } else { k.state.expect("live key") };
        // The table is a function of (operation, state) for a key: the answer given last time is
        // the answer now, without looking it up or formatting a refusal's message again.
        if let Some((o, s, verdict)) = &*k.verdict.borrow()
            && (*o, *s) == (op, state)
        {
            return verdict.clone();
        }
        let verdict = admit(op, state, k.spec.origin, key);
        *k.verdict.borrow_mut() = Some((op, state, verdict.clone()));
        verdict
    }

    /// D13: operations that use the key see a state change only `kms_propagation_delay` after it.
    fn visible_state(&self, key: KeyIdx, now: SimTime) -> KeyState {
        let k = &self.keys[key.0 as usize];
        let delay = self.params.kms_propagation_delay;
        if delay == SimDuration::ZERO {
            return k.state.expect("live key");
        }
        let seen_at = now.saturating_sub(delay);
        k.history
            .iter()
            .rev()
            .find(|(since, _)| *since <= seen_at)
            .or_else(|| k.history.first())
            .map(|(_, s)| *s)
            .expect("a live key has a state history")
    }

    fn evaluate(&mut self, caller: Caller, op: &KmsOp, key: KeyIdx, now: SimTime) -> Outcome {
        let k = &self.keys[key.0 as usize];
        match op {
            KmsOp::DescribeKey { .. } => {
                Ok(KmsOutput::Described { state: k.state.expect("live key"), current: k.current() })
            }
            KmsOp::EnableKey { .. }
            | KmsOp::DisableKey { .. }
            | KmsOp::CancelKeyDeletion { .. }
            | KmsOp::EnableKeyRotation { .. } => Ok(KmsOutput::Done),
            KmsOp::ScheduleKeyDeletion { pending_window_days, .. } => {
                if !(7..=30).contains(pending_window_days) {
                    return Err(KmsError::new(
                        KmsException::Validation,
                        format!(
                            "1 validation error detected: Value '{pending_window_days}' at 'pendingWindowInDays' \
                             failed to satisfy constraint: Member must have value between 7 and 30"
                        ),
                    ));
                }
                let window = SimDuration::from_days(u64::from(*pending_window_days));
                Ok(KmsOutput::DeletionScheduled { deletion_date: now + window })
            }
            KmsOp::GetParametersForImport { name, .. } => {
                let valid_to = now + IMPORT_TOKEN_LIFE;
                self.tokens.push(Token { key, valid_to });
                if let Some(name) = name {
                    self.named_tokens.insert(name.clone(), self.tokens.len() - 1);
                }
                Ok(KmsOutput::ImportParameters { parameters_valid_to: valid_to })
            }
            KmsOp::ImportKeyMaterial { token, material, expiry, import_type, .. } => {
                self.check_import(key, token, *material, *expiry, *import_type, now)
            }
            KmsOp::DeleteImportedKeyMaterial { material, .. } => {
                let target = match material {
                    Some(m) if k.held(*m).is_none() => {
                        // D17: AWS does not document the refusal of a material the key does not have.
                        return Err(KmsError::new(
                            KmsException::NotFound,
                            format!("The key material is not associated with {}.", k.spec.arn),
                        ));
                    }
                    Some(m) => Some(*m),
                    None => k.current(),
                };
                let imported = target.and_then(|m| k.held(m)).is_some_and(|i| k.materials[i].0.imported);
                Ok(KmsOutput::MaterialDeleted { material: target.filter(|_| imported) })
            }
            KmsOp::RotateKeyOnDemand { .. } => {
                let arn = &k.spec.arn;
                if k.rotations >= self.params.max_on_demand_rotations {
                    return Err(KmsError::new(
                        KmsException::LimitExceeded,
                        format!(
                            "{arn} has reached the limit of {} on-demand rotations.",
                            self.params.max_on_demand_rotations
                        ),
                    ));
                }
                if k.spec.origin == Origin::AwsKms {
                    return Ok(KmsOutput::Rotated { from: None, to: None });
                }
                // D16: the refusal when nothing is pending is not documented.
                let pending = k.materials.iter().find(|(m, _)| m.state == MaterialState::PendingRotation);
                match pending {
                    Some((p, _)) => Ok(KmsOutput::Rotated { from: k.current(), to: Some(p.material) }),
                    None => Err(KmsError::new(
                        KmsException::InvalidState,
                        format!("{arn} has no key material in PENDING_ROTATION: import new key material first."),
                    )),
                }
            }
            KmsOp::ListKeyRotations { all, .. } => Ok(KmsOutput::Rotations(
                k.materials.iter().map(|(m, _)| m.clone()).filter(|m| *all || m.rotated_at.is_some()).collect(),
            )),
            KmsOp::Encrypt { context, name, .. }
            | KmsOp::GenerateDataKey { context, name, .. }
            | KmsOp::GenerateDataKeyWithoutPlaintext { context, name, .. } => {
                Ok(self.new_ciphertext(key, *context, name.as_ref()))
            }
            KmsOp::CreateGrant { grantee, context, name, .. } => {
                let id = GrantId(self.next_grant);
                self.next_grant = self.next_grant.checked_add(1).expect("grant count fits u32");
                let grant = Grant {
                    key,
                    grantee: grantee.clone(),
                    context: *context,
                    live: true,
                    named: name.is_some(),
                    holder: None,
                };
                self.grants.insert(id, grant);
                if let Grantee::Instance(i) = grantee {
                    if self.grants_by_instance.len() <= i.index() {
                        self.grants_by_instance.resize_with(i.index() + 1, SmallVec::new);
                    }
                    self.grants_by_instance[i.index()].push(LiveGrant { id, key, context: *context });
                }
                if let Some(name) = name {
                    self.named_grants.insert(name.clone(), id);
                }
                Ok(KmsOutput::Grant(id))
            }
            KmsOp::RevokeGrant { grant, .. } => self.retire(grant, Some(key)).1,
            KmsOp::Decrypt { .. } | KmsOp::ReEncrypt { .. } | KmsOp::RetireGrant { .. } => {
                unreachable!("handled in call: {caller:?} {op:?}")
            }
        }
    }

    fn check_import(
        &self,
        key: KeyIdx,
        token: &TokenRef,
        material: MaterialId,
        expiry: Expiry,
        import_type: Option<ImportType>,
        now: SimTime,
    ) -> Outcome {
        let k = &self.keys[key.0 as usize];
        // The request's own parameters are checked before the token and the material. The API
        // reference states the rules; AWS's exact words are not documented (model.md, A7).
        match expiry {
            Expiry::At(valid_to) if valid_to <= now || valid_to > now + MAX_VALID_FOR => {
                return Err(KmsError::new(
                    KmsException::Validation,
                    &"ValidTo must be a future date and time, at most 365 days from the request date.",
                ));
            }
            Expiry::WithoutValidTo => {
                return Err(KmsError::new(
                    KmsException::Validation,
                    &"ValidTo is required when ExpirationModel is KEY_MATERIAL_EXPIRES.",
                ));
            }
            Expiry::At(_) | Expiry::Never => {}
        }
        let token = match token {
            TokenRef::Named(name) => self.named_tokens.get(name).map(|&i| &self.tokens[i]),
            TokenRef::Fresh => self.named_tokens.get(FRESH_TOKEN).map(|&i| &self.tokens[i]),
        };
        let arn = &k.spec.arn;
        match token {
            Some(t) if t.key != key => {
                return Err(KmsError::new(
                    KmsException::InvalidImportToken,
                    format!("The import token is not valid for {arn}: it was issued for another key."),
                ));
            }
            Some(t) if now >= t.valid_to => {
                return Err(KmsError::new(
                    KmsException::ExpiredImportToken,
                    &"The import token has expired: call GetParametersForImport for a new one.",
                ));
            }
            Some(_) => {}
            None => return Err(KmsError::new(KmsException::InvalidImportToken, &"The import token is not valid.")),
        }
        let import_type =
            import_type.unwrap_or(if k.materials.is_empty() { ImportType::New } else { ImportType::Existing });
        let state = match (import_type, k.held(material)) {
            (ImportType::Existing, Some(i)) => k.materials[i].0.state,
            (ImportType::Existing, None) => {
                return Err(KmsError::new(
                    KmsException::IncorrectKeyMaterial,
                    format!("The key material is not the key material previously imported into {arn}."),
                ));
            }
            (ImportType::New, Some(_)) => {
                return Err(KmsError::new(
                    KmsException::IncorrectKeyMaterial,
                    format!("The key material is already associated with {arn}: import it as EXISTING_KEY_MATERIAL."),
                ));
            }
            (ImportType::New, None) if k.materials.is_empty() => MaterialState::Current,
            (ImportType::New, None) => {
                if k.materials.iter().any(|(m, _)| m.state == MaterialState::PendingRotation) {
                    // D15: one material at a time waits for a rotation; AWS documents no second.
                    return Err(KmsError::new(
                        KmsException::InvalidState,
                        format!("{arn} already has key material in PENDING_ROTATION: rotate to it or delete it first."),
                    ));
                }
                MaterialState::PendingRotation
            }
        };
        Ok(KmsOutput::Imported { material, expiry, import_type, state })
    }

    fn decrypt(
        &self,
        caller: Caller,
        named_key: Option<KeyIdx>,
        ciphertext: &CiphertextRef,
        context: Option<ContextId>,
        now: SimTime,
    ) -> Outcome {
        let Some(blob) = self.blob(ciphertext) else { return Err(invalid_ciphertext()) };
        let k = &self.keys[blob.key.0 as usize];
        if k.deleted {
            // A2: a ciphertext whose key was deleted names a key that no longer exists.
            return Err(KmsError::new(KmsException::NotFound, format!("Key '{}' does not exist", k.spec.arn)));
        }
        if let Some(named) = named_key
            && named != blob.key
        {
            return Err(KmsError::new(
                KmsException::IncorrectKey,
                // AWS's responses still say "CMK" here (the IncorrectKeyException recorded in 2025).
                &"The key ID in the request does not identify a CMK that can perform this operation.",
            ));
        }
        if let Caller::Instance(instance) = caller
            && !self.has_grant(blob.key, instance, blob.context)
        {
            return Err(KmsError::new(
                KmsException::AccessDenied,
                format!(
                    "The ec2-infrastructure role session of the instance is not authorized to perform: \
                     kms:Decrypt on resource: {} because no grant allows it",
                    k.spec.arn
                ),
            ));
        }
        self.check(Operation::Decrypt, blob.key, now)?;
        if context != blob.context {
            return Err(invalid_ciphertext());
        }
        // An Enabled key holds every material its ciphertexts were made with (a current or
        // non-current one; a pending one never encrypted); D13's delay may show Enabled a
        // moment after one is gone, and the call is served as it was made.
        Ok(KmsOutput::Decrypted { key: blob.key, material: blob.material })
    }

    fn blob<'a>(&'a self, c: &'a CiphertextRef) -> Option<&'a Ciphertext> {
        match c {
            CiphertextRef::Blob(c) => Some(c),
            CiphertextRef::Named(name) => self.named_ciphertexts.get(name),
        }
    }

    /// Where the live grants to an instance are kept (what an EBS Decrypt from it reads first).
    pub(crate) fn grants_of(&self, instance: ActorId) -> Option<&impl Sized> {
        self.grants_by_instance.get(instance.index())
    }

    /// Whether a live grant lets this instance use the key for this context.
    fn has_grant(&self, key: KeyIdx, instance: ActorId, context: Option<ContextId>) -> bool {
        let fits = |g: &LiveGrant| g.key == key && g.context == context;
        self.grants_by_instance.get(instance.index()).is_some_and(|live| live.iter().any(fits))
    }

    fn new_ciphertext(&mut self, key: KeyIdx, context: Option<ContextId>, name: Option<&Arc<str>>) -> KmsOutput {
        let k = &self.keys[key.0 as usize];
        // Bound to the current material. During D13's propagation window after a deletion, the
        // calls that still see the key Enabled are served by it: reimporting it makes their
        // ciphertexts decryptable again.
        let material = k.current();
        let c = Ciphertext { key, material, serial: self.next_serial, context };
        self.next_serial += 1;
        if let Some(name) = name {
            self.named_ciphertexts.insert(name.clone(), c.clone());
        }
        KmsOutput::Ciphertext(c)
    }

    /// Forgets a retired grant nobody can name any more.
    fn forget_if_unnamed(&mut self, id: GrantId) {
        if let std::collections::btree_map::Entry::Occupied(g) = self.grants.entry(id)
            && !g.get().live
            && !g.get().named
        {
            g.remove();
        }
    }

    fn retire(&mut self, grant: &GrantRef, key: Option<KeyIdx>) -> (Option<KeyIdx>, Outcome) {
        let found = match grant {
            GrantRef::Id(id) => Some(*id),
            GrantRef::Named(name) => self.named_grants.get(name).copied(),
            // The newest live one: only a user names a grant so, rarely, and a look through every
            // grant then spares each grant an entry in an index by context.
            GrantRef::ForContext(ctx) => self
                .grants
                .iter()
                .rev()
                .find(|(_, g)| g.context == Some(*ctx) && g.live && key.is_none_or(|k| g.key == k))
                .map(|(id, _)| *id),
        };
        match found.and_then(|id| self.grants.get_mut(&id).map(|g| (id, g))) {
            Some((id, g)) if g.live && key.is_none_or(|k| g.key == k) => {
                g.live = false;
                let key = g.key;
                if let Grantee::Instance(i) = g.grantee {
                    self.grants_by_instance[i.index()].retain(|g| g.id != id);
                }
                (Some(key), Ok(KmsOutput::Grant(id)))
            }
            // A grant already retired is still the grant of its key: the record names the key.
            Some((_, g)) => (key.or(Some(g.key)), Err(KmsError::new(KmsException::NotFound, &"Grant not found."))),
            None => (key, Err(KmsError::new(KmsException::NotFound, &"Grant not found."))),
        }
    }

    /// The state changes and timers of a successful call, recorded after the call itself.
    fn apply(&mut self, key: KeyIdx, effect: Effect, ctx: &mut WorldCtx<'_>) {
        let now = ctx.now();
        let me = ctx.me();
        let state = self.keys[key.0 as usize].state.expect("live key");
        match effect {
            // The key-state table admits both only from Enabled or Disabled, and a change to the
            // state the key is in records nothing.
            Effect::Enable => self.set_state(key, KeyState::Enabled, ctx),
            Effect::Disable => self.set_state(key, KeyState::Disabled, ctx),
            Effect::ScheduleDeletion { window } => {
                // KMS's timers take effect before any call at their instant (the same-instant rule).
                let timer = ctx.send_first(me, Msg::Kms(KmsMsg::DeleteKey(key)), window + self.params.key_deletion_lag);
                self.keys[key.0 as usize].deletion_timer = Some(timer);
                self.set_state(key, KeyState::PendingDeletion, ctx);
            }
            Effect::CancelDeletion => {
                let k = &mut self.keys[key.0 as usize];
                if let Some(t) = k.deletion_timer.take() {
                    ctx.cancel(t);
                }
                // D8: a key whose imported material is gone cannot be Disabled; it is
                // PendingImport. A key with KMS-generated material always has it: Disabled.
                let has_material = k.complete() || k.spec.origin == Origin::AwsKms;
                let to = if has_material { KeyState::Disabled } else { KeyState::PendingImport };
                self.set_state(key, to, ctx);
            }
            Effect::Import { material, expiry, state: role } => {
                let k = &mut self.keys[key.0 as usize];
                let entry = RotationEntry { material, state: role, imported: true, expiry, rotated_at: None };
                let i = match k.held(material) {
                    Some(i) => {
                        let (held, timer) = &mut k.materials[i];
                        if let Some(t) = timer.take() {
                            ctx.cancel(t);
                        }
                        held.imported = true;
                        held.expiry = expiry;
                        i
                    }
                    None => {
                        k.materials.push((entry, None));
                        k.materials.len() - 1
                    }
                };
                if let Expiry::At(valid_to) = expiry {
                    let after = (valid_to + self.params.material_expiry_lag) - now;
                    let timer = ctx.send_first(me, Msg::Kms(KmsMsg::ExpireMaterial(key, material)), after);
                    k.materials[i].1 = Some(timer);
                }
                // D9: PendingImport becomes Enabled once every permanently associated material is
                // imported. A3: a Disabled key stays Disabled (its material was present; a
                // reimport only refreshes the expiration).
                if state == KeyState::PendingImport && k.complete() {
                    self.set_state(key, KeyState::Enabled, ctx);
                }
            }
            Effect::DeleteMaterial { material } => self.remove_material(key, material, ctx),
            Effect::Rotate => {
                let k = &mut self.keys[key.0 as usize];
                k.rotations += 1;
                let from = k.current();
                let mut to = None;
                for (m, _) in &mut k.materials {
                    match m.state {
                        MaterialState::Current => m.state = MaterialState::NonCurrent,
                        MaterialState::PendingRotation => {
                            m.state = MaterialState::Current;
                            m.rotated_at = Some(now);
                            to = Some(m.material);
                        }
                        MaterialState::NonCurrent => {}
                    }
                }
                let (from, to) = if to.is_some() { (from, to) } else { (None, None) };
                ctx.record(Obs::Kms(KmsObs::Rotated { key, from, to }));
            }
        }
    }

    /// A material gone, by the user or by expiry. A material pending rotation is no longer
    /// associated with the key, which is unchanged; any other makes the key PendingImport
    /// (unless PendingDeletion) until it is reimported.
    fn remove_material(&mut self, key: KeyIdx, material: MaterialId, ctx: &mut WorldCtx<'_>) {
        let k = &mut self.keys[key.0 as usize];
        let Some(i) = k.held(material) else { return };
        if !k.materials[i].0.imported {
            return;
        }
        if let Some(t) = k.materials[i].1.take() {
            ctx.cancel(t);
        }
        if k.materials[i].0.state == MaterialState::PendingRotation {
            k.materials.remove(i);
            return;
        }
        k.materials[i].0.imported = false;
        if k.state != Some(KeyState::PendingDeletion) {
            self.set_state(key, KeyState::PendingImport, ctx);
        }
    }

    fn on_expire_material(&mut self, key: KeyIdx, material: MaterialId, ctx: &mut WorldCtx<'_>) {
        let k = &mut self.keys[key.0 as usize];
        let Some(i) = k.held(material) else { return };
        k.materials[i].1 = None;
        // A deleted key holds no material (the `held` above); a material that went is not
        // imported, and its timer was cancelled then: this is a guard.
        if !k.materials[i].0.imported {
            return;
        }
        ctx.record(Obs::Kms(KmsObs::MaterialExpired { key, material }));
        self.remove_material(key, material, ctx);
    }

    fn on_delete_key(&mut self, key: KeyIdx, ctx: &mut WorldCtx<'_>) {
        let k = &mut self.keys[key.0 as usize];
        k.deletion_timer = None;
        for (_, timer) in &mut k.materials {
            if let Some(t) = timer.take() {
                ctx.cancel(t);
            }
        }
        k.deleted = true;
        k.state = None;
        k.materials.clear();
        for g in self.grants.values_mut().filter(|g| g.key == key) {
            g.live = false;
        }
        self.grants.retain(|_, g| g.live || g.named);
        for live in &mut self.grants_by_instance {
            live.retain(|g| g.key != key);
        }
        let id = ctx.record(Obs::Kms(KmsObs::KeyDeleted { key }));
        self.keys[key.0 as usize].state_record = Some(id);
        self.tell_watchers(key, ctx);
    }

    fn set_state(&mut self, key: KeyIdx, to: KeyState, ctx: &mut WorldCtx<'_>) {
        let k = &mut self.keys[key.0 as usize];
        let from = k.state;
        if from == Some(to) {
            return;
        }
        k.state = Some(to);
        k.history.push((ctx.now(), to));
        let id = ctx.record(Obs::Kms(KmsObs::StateChanged { key, from, to }));
        self.keys[key.0 as usize].state_record = Some(id);
        self.tell_watchers(key, ctx);
    }

    /// Makes room, with no spare capacity, for the live grants of instances up to the actor
    /// `last` (the index grows on demand, doubling, and keeps the slack of its last doubling).
    pub fn expect_instances_up_to(&mut self, last: ActorId) {
        self.grants_by_instance.reserve_exact(last.index() + 1);
    }

    /// `actor` (another service's resource) is told of every change of `key`'s state (D12).
    pub fn watch(&mut self, key: KeyIdx, actor: ActorId) {
        self.watchers[key.0 as usize].push(actor);
    }

    /// The resources that watch `key` are told that it changed; each checks it after its own
    /// detection delay, by a call whose answer decides (D12). Out of line: a key's state
    /// changes rarely, and the call paths that can change it are the hot ones.
    #[cold]
    #[inline(never)]
    fn tell_watchers(&self, key: KeyIdx, ctx: &mut WorldCtx<'_>) {
        for &w in &self.watchers[key.0 as usize] {
            ctx.send(w, super::Msg::Service(super::service::ServiceMsg::KeyChanged), SimDuration::ZERO);
        }
    }
}

/// What a successful call does to its key, decided before the call is recorded.
#[derive(Clone, Copy, Debug)]
enum Effect {
    Enable,
    Disable,
    ScheduleDeletion { window: SimDuration },
    CancelDeletion,
    Import { material: MaterialId, expiry: Expiry, state: MaterialState },
    DeleteMaterial { material: MaterialId },
    Rotate,
}

impl Effect {
    fn of(op: &KmsOp, result: &KmsOutput) -> Option<Effect> {
        Some(match (op, result) {
            (KmsOp::EnableKey { .. }, _) => Effect::Enable,
            (KmsOp::DisableKey { .. }, _) => Effect::Disable,
            (KmsOp::ScheduleKeyDeletion { pending_window_days, .. }, _) => {
                Effect::ScheduleDeletion { window: SimDuration::from_days(u64::from(*pending_window_days)) }
            }
            (KmsOp::CancelKeyDeletion { .. }, _) => Effect::CancelDeletion,
            (KmsOp::ImportKeyMaterial { .. }, KmsOutput::Imported { material, expiry, state, .. }) => {
                Effect::Import { material: *material, expiry: *expiry, state: *state }
            }
            // Nothing imported to delete: no effect.
            (KmsOp::DeleteImportedKeyMaterial { .. }, KmsOutput::MaterialDeleted { material: Some(m) }) => {
                Effect::DeleteMaterial { material: *m }
            }
            (KmsOp::RotateKeyOnDemand { .. }, _) => Effect::Rotate,
            _ => return None,
        })
    }
}

const FRESH_TOKEN: &str = "#one-step import";

fn invalid_ciphertext() -> KmsError {
    KmsError::new(
        KmsException::InvalidCiphertext,
        &"The ciphertext is not valid, or its encryption context does not match.",
    )
}

#[cfg(test)]
mod tests;

// Every call's operation is boxed at this size: ReEncrypt's EBS contexts are boxed so that they
// add 8 bytes, not 16.
const _: () = assert!(std::mem::size_of::<KmsOp>() <= 80);
