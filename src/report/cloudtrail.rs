//! The run as a CloudTrail log file: what a security engineer would find in the account's trail.
//!
//! One record per KMS API call and per KMS service event (`DeleteExpiredKeyMaterial`,
//! `DeleteKey`), plus the EC2 API calls behind what happened to volumes and instances
//! (`RunInstances`, `CreateVolume`, `AttachVolume`, `DetachVolume`,
//! `Stop/Start/Reboot/TerminateInstances`), whether the timeline or a fleet's cycle made them (a
//! fleet stands for the user's automation; its replacements are auto scaling's, in its service-linked
//! role), in event-time order, each with its outcome (a refused AttachVolume carries EC2's error),
//! shaped as the reference's examples: calls EBS and EC2 make for the user carry `invokedBy` and
//! the `aws:ebs:id` encryption context; EC2's Decrypt runs as the instance's
//! `aws:ec2-infrastructure` role session; service events come from `AWS Internal`. Request and
//! event IDs are drawn from the scenario's seed. CloudTrail times have second precision.

use std::collections::BTreeMap;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

use crate::actors::Obs;
use crate::actors::ebs::VolumeObs;
use crate::actors::ec2::{Ec2Error, Eviction, InstanceAction, InstanceObs, InstanceState};
use crate::actors::kms::{
    Caller, CiphertextRef, EbsId, Expiry, GrantRef, Grantee, KeyIdx, KeyRef, KmsObs, KmsOp, KmsOutput, MaterialId,
    Service,
};
use crate::engine::{ActorId, Cause, Record, RecordId, SimTime};
use crate::run::Run;

/// The `eventVersion` kmsim writes (the current KMS examples' version).
pub const EVENT_VERSION: &str = "1.11";
/// The caller address in AWS's examples (TEST-NET-1).
pub const USER_IP: &str = "192.0.2.0";

struct Ids(ChaCha8Rng);

impl Ids {
    fn new(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(crate::engine::stream_key("cloudtrail"));
        Ids(rng)
    }

    fn uuid(&mut self) -> String {
        let mut b: [u8; 16] = self.0.random();
        b[6] = 0x40 | (b[6] & 0x0f);
        b[8] = 0x80 | (b[8] & 0x3f);
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    }
}

/// A key material's 64-hex ID: KMS derives it from the key ID and the material.
#[must_use]
pub fn key_material_id(key_id: &str, material: &str) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    rng.set_stream(crate::engine::stream_key(&format!("{key_id}/{material}")));
    let b: [u8; 32] = rng.random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// CloudTrail's `eventTime`: UTC, to the second.
fn event_time(run: &Run<'_>, t: SimTime) -> String {
    let ms = run.scenario.start.as_millisecond() + i64::try_from(t.as_ms()).unwrap_or(i64::MAX);
    jiff::Timestamp::from_millisecond(ms)
        .map_or_else(|_| String::new(), |ts| ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// The console's date format in KMS request and response elements: `May 21, 2026, 5:42:00 AM`.
fn console_date(run: &Run<'_>, t: SimTime) -> String {
    let ms = run.scenario.start.as_millisecond() + i64::try_from(t.as_ms()).unwrap_or(i64::MAX);
    jiff::Timestamp::from_millisecond(ms)
        .map_or_else(|_| String::new(), |ts| ts.strftime("%b %-d, %Y, %-I:%M:%S %p").to_string())
}

struct Writer<'r, 's> {
    run: &'r Run<'s>,
    ids: Ids,
    /// What each AttachVolume request came to: EC2's error when it failed (D4), by the request's
    /// record id.
    attach_errors: BTreeMap<RecordId, Ec2Error>,
    /// Keys whose material has been imported: a later import's type is EXISTING_KEY_MATERIAL.
    imported: Vec<bool>,
}

/// Who made a call: the scenario's user, or auto scaling on its behalf.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Principal {
    User,
    AutoScaling,
}

impl Writer<'_, '_> {
    fn account(&self) -> &str {
        &self.run.scenario.account
    }

    /// The identity auto scaling's calls carry: its service-linked role.
    fn auto_scaling(&self) -> Value {
        let acct = self.account();
        json!({
            "type": "AssumedRole",
            "principalId": format!("AROA{:016X}:AutoScaling", crate::engine::stream_key("AWSServiceRoleForAutoScaling")),
            "arn": format!("arn:aws:sts::{acct}:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling"),
            "accountId": acct,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "arn": format!("arn:aws:iam::{acct}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"),
                    "accountId": acct,
                    "userName": "AWSServiceRoleForAutoScaling",
                }
            },
            "invokedBy": "autoscaling.amazonaws.com",
        })
    }

    fn user(&self) -> Value {
        let s = self.run.scenario;
        // Stable, made-up principal and access key IDs in AWS's shapes.
        let tag = format!("{:016X}", crate::engine::stream_key(&s.user));
        json!({
            "type": "IAMUser",
            "principalId": format!("AIDA{}", &tag[..16]),
            "arn": format!("arn:aws:iam::{}:user/{}", s.account, s.user),
            "accountId": s.account,
            "accessKeyId": format!("AKIA{}", &tag[..16]),
            "userName": s.user,
        })
    }

    /// Who made a call at record `rec`, at `at`.
    fn identity(&self, caller: Caller, at: SimTime, rec: RecordId) -> Value {
        let acct = self.account();
        match caller {
            Caller::User => self.user(),
            Caller::UserVia(_) => {
                let mut u = self.user();
                u["invokedBy"] = json!("ec2.amazonaws.com");
                u
            }
            Caller::Instance(i) => {
                let id = self.run.names.at(i, rec);
                json!({
                    "type": "AssumedRole",
                    "principalId": format!("{acct}:aws:ec2-infrastructure:{id}"),
                    "arn": format!("arn:aws:sts::{acct}:assumed-role/aws:ec2-infrastructure/{id}"),
                    "accountId": acct,
                    "accessKeyId": "",
                    "sessionContext": {
                        "attributes": {"mfaAuthenticated": "false", "creationDate": event_time(self.run, at)},
                        "sessionIssuer": {
                            "type": "Role",
                            "principalId": format!("{acct}:aws:ec2-infrastructure"),
                            "arn": format!("arn:aws:iam::{acct}:role/aws:ec2-infrastructure"),
                            "accountId": acct,
                            "userName": "aws:ec2-infrastructure",
                        }
                    }
                })
            }
        }
    }

    fn key_resource(&self, key: KeyIdx) -> Value {
        json!([{"accountId": self.account(), "type": "AWS::KMS::Key", "ARN": self.run.scenario.key(key).spec.arn}])
    }

    /// The `keyId` parameter as the caller gave it.
    fn key_param(&self, key: &KeyRef) -> Value {
        let s = self.run.scenario;
        match key {
            KeyRef::Id(k) => json!(s.key(*k).spec.key_id),
            KeyRef::Arn(k) => json!(s.key(*k).spec.arn),
            KeyRef::Alias(a) => json!(a.to_string()),
        }
    }

    fn material_id(&self, key: KeyIdx, m: MaterialId) -> String {
        let s = self.run.scenario;
        key_material_id(&s.key(key).spec.key_id, &s.materials[m.0 as usize])
    }

    fn base(&mut self, t: SimTime, source: &str, name: &str, identity: Value) -> Map<String, Value> {
        let mut r = Map::new();
        r.insert("eventVersion".into(), json!(EVENT_VERSION));
        r.insert("userIdentity".into(), identity);
        r.insert("eventTime".into(), json!(event_time(self.run, t)));
        r.insert("eventSource".into(), json!(source));
        r.insert("eventName".into(), json!(name));
        r.insert("awsRegion".into(), json!(self.run.scenario.region));
        r
    }

    fn finish_call(&mut self, mut r: Map<String, Value>, read_only: bool, resources: Option<Value>) -> Value {
        r.insert("requestID".into(), json!(self.ids.uuid()));
        r.insert("eventID".into(), json!(self.ids.uuid()));
        r.insert("readOnly".into(), json!(read_only));
        if let Some(res) = resources {
            r.insert("resources".into(), res);
        }
        r.insert("eventType".into(), json!("AwsApiCall"));
        r.insert("managementEvent".into(), json!(true));
        r.insert("recipientAccountId".into(), json!(self.account()));
        r.insert("eventCategory".into(), json!("Management"));
        Value::Object(r)
    }

    fn kms_call(
        &mut self,
        rec: &Record<Obs>,
        caller: Caller,
        op: &KmsOp,
        key: Option<KeyIdx>,
        result: &Result<KmsOutput, crate::actors::kms::KmsError>,
    ) -> Value {
        let s = self.run.scenario;
        let identity = self.identity(caller, rec.at, rec.id);
        let mut r = self.base(rec.at, "kms.amazonaws.com", op.operation().as_str(), identity);
        let (ip, agent) = match caller {
            Caller::User => (USER_IP, Some("AWS Internal")),
            Caller::UserVia(Service::Ebs | Service::Ec2) => ("ec2.amazonaws.com", Some("ec2.amazonaws.com")),
            Caller::Instance(_) => (USER_IP, None),
        };
        r.insert("sourceIPAddress".into(), json!(ip));
        if let Some(a) = agent {
            r.insert("userAgent".into(), json!(a));
        }
        if let Err(e) = result {
            r.insert("errorCode".into(), json!(e.exception.as_str()));
            r.insert("errorMessage".into(), json!(e.message(|k| s.key_arn(k))));
        }
        let arn = |k: Option<KeyIdx>| k.map_or(Value::Null, |k| json!(s.key(k).spec.arn));
        let ebs_context = |c: &Option<EbsId>| c.map(|v| json!({"aws:ebs:id": s.volume_name(v)}));
        let (request, response, read_only): (Value, Value, bool) = match (op, result) {
            (KmsOp::ImportKeyMaterial { key: kr, material, expiry, .. }, res) => {
                let mut req = json!({"keyId": self.key_param(kr)});
                match expiry {
                    Expiry::Never => req["expirationModel"] = json!("KEY_MATERIAL_DOES_NOT_EXPIRE"),
                    Expiry::At(t) => {
                        req["validTo"] = json!(console_date(self.run, *t));
                        req["expirationModel"] = json!("KEY_MATERIAL_EXPIRES");
                    }
                    Expiry::WithoutValidTo => req["expirationModel"] = json!("KEY_MATERIAL_EXPIRES"),
                }
                // The API's default: new material when nothing was ever imported into the key.
                let first = key.is_some_and(|k| !self.imported[k.0 as usize]);
                req["importType"] = json!(if first { "NEW_KEY_MATERIAL" } else { "EXISTING_KEY_MATERIAL" });
                if let (Ok(_), Some(k)) = (res, key) {
                    self.imported[k.0 as usize] = true;
                }
                let resp = match (res, key) {
                    (Ok(_), Some(k)) => json!({"keyId": arn(Some(k)), "keyMaterialId": self.material_id(k, *material)}),
                    _ => Value::Null,
                };
                (req, resp, false)
            }
            (KmsOp::DeleteImportedKeyMaterial { key: kr }, res) => match (res, key) {
                (Ok(KmsOutput::MaterialDeleted { material: Some(m) }), Some(k)) => {
                    let id = self.material_id(k, *m);
                    (
                        json!({"keyId": self.key_param(kr), "keyMaterialId": id}),
                        json!({"keyId": arn(Some(k)), "keyMaterialId": id}),
                        false,
                    )
                }
                (Ok(_), Some(k)) => (json!({"keyId": self.key_param(kr)}), json!({"keyId": arn(Some(k))}), false),
                _ => (json!({"keyId": self.key_param(kr)}), Value::Null, false),
            },
            (KmsOp::GetParametersForImport { key: kr, .. }, _) => (
                json!({"keyId": self.key_param(kr), "wrappingAlgorithm": "RSAES_OAEP_SHA_256", "wrappingKeySpec": "RSA_2048"}),
                Value::Null,
                true,
            ),
            (KmsOp::ScheduleKeyDeletion { key: kr, pending_window_days }, res) => {
                let req = json!({"pendingWindowInDays": pending_window_days, "keyId": self.key_param(kr)});
                let resp = match res {
                    Ok(KmsOutput::DeletionScheduled { deletion_date }) => json!({
                        "keyId": arn(key),
                        "keyState": "PendingDeletion",
                        "deletionDate": console_date(self.run, *deletion_date),
                        "pendingWindowInDays": pending_window_days,
                    }),
                    _ => Value::Null,
                };
                (req, resp, false)
            }
            (KmsOp::CancelKeyDeletion { key: kr }, res) => (
                json!({"keyId": self.key_param(kr)}),
                if res.is_ok() { json!({"keyId": arn(key)}) } else { Value::Null },
                false,
            ),
            // Recorded since December 2022 with the key's ARN, though the API returns nothing
            // (ct-enablekey, ct-disablekey).
            (KmsOp::EnableKey { key: kr } | KmsOp::DisableKey { key: kr }, _) => {
                (json!({"keyId": self.key_param(kr)}), json!({"keyId": arn(key)}), false)
            }
            (KmsOp::DescribeKey { key: kr }, _) => (json!({"keyId": self.key_param(kr)}), Value::Null, true),
            (KmsOp::Encrypt { key: kr, context, .. }, _) => {
                let mut req = json!({"keyId": self.key_param(kr), "encryptionAlgorithm": "SYMMETRIC_DEFAULT"});
                if let Some(c) = ebs_context(context) {
                    req["encryptionContext"] = c;
                }
                (req, Value::Null, true)
            }
            (
                KmsOp::GenerateDataKey { key: kr, context, .. }
                | KmsOp::GenerateDataKeyWithoutPlaintext { key: kr, context, .. },
                _,
            ) => {
                let mut req = json!({"keyId": self.key_param(kr)});
                if let Some(c) = ebs_context(context) {
                    req["encryptionContext"] = c;
                    req["numberOfBytes"] = json!(64);
                } else {
                    req["keySpec"] = json!("AES_256");
                }
                (req, Value::Null, true)
            }
            (KmsOp::Decrypt { ciphertext, key: kr, context }, _) => {
                let mut req = json!({"encryptionAlgorithm": "SYMMETRIC_DEFAULT"});
                let ctx = match ciphertext {
                    CiphertextRef::Blob(c) => c.context,
                    CiphertextRef::Named(_) => *context,
                };
                if let Some(c) = ebs_context(&ctx) {
                    req["encryptionContext"] = c;
                }
                if let Some(kr) = kr {
                    req["keyId"] = self.key_param(kr);
                }
                (req, Value::Null, true)
            }
            (KmsOp::ReEncrypt { destination, .. }, _) => (
                json!({"destinationKeyId": self.key_param(destination), "sourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT", "destinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT"}),
                Value::Null,
                true,
            ),
            (KmsOp::CreateGrant { key: kr, grantee, context, .. }, res) => {
                let grantee = match grantee {
                    Grantee::Instance(i) => {
                        format!("{}:aws:ec2-infrastructure:{}", s.account, self.run.names.at(*i, rec.id))
                    }
                    Grantee::Principal(p) => p.to_string(),
                };
                let mut req =
                    json!({"keyId": self.key_param(kr), "granteePrincipal": grantee, "operations": ["Decrypt"]});
                if let Some(c) = ebs_context(context) {
                    req["constraints"] = json!({"encryptionContextSubset": c});
                }
                let resp = match res {
                    Ok(KmsOutput::Grant(g)) => json!({"grantId": grant_id(s.seed, g.0), "keyId": arn(key)}),
                    _ => Value::Null,
                };
                (req, resp, false)
            }
            (KmsOp::RetireGrant { grant } | KmsOp::RevokeGrant { grant, .. }, res) => {
                let mut req = match op {
                    KmsOp::RevokeGrant { key: kr, .. } => json!({"keyId": self.key_param(kr)}),
                    _ => json!({}),
                };
                let gid = match (grant, res) {
                    (_, Ok(KmsOutput::Grant(g))) | (GrantRef::Id(g), _) => Some(grant_id(s.seed, g.0)),
                    _ => None,
                };
                if let Some(g) = gid {
                    req["grantId"] = json!(g);
                }
                (req, Value::Null, false)
            }
        };
        r.insert("requestParameters".into(), request);
        r.insert("responseElements".into(), if result.is_ok() { response } else { Value::Null });
        let resources = key.map(|k| self.key_resource(k));
        self.finish_call(r, read_only, resources)
    }

    fn service_event(&mut self, rec: &Record<Obs>, name: &str, key: KeyIdx, details: Option<Value>) -> Value {
        let identity = json!({"accountId": self.account(), "invokedBy": "AWS Internal"});
        let mut r = self.base(rec.at, "kms.amazonaws.com", name, identity);
        r.insert("sourceIPAddress".into(), json!("AWS Internal"));
        r.insert("userAgent".into(), json!("AWS Internal"));
        r.insert("requestParameters".into(), Value::Null);
        r.insert("responseElements".into(), Value::Null);
        r.insert("eventID".into(), json!(self.ids.uuid()));
        r.insert("readOnly".into(), json!(false));
        r.insert("resources".into(), self.key_resource(key));
        r.insert("eventType".into(), json!("AwsServiceEvent"));
        r.insert("recipientAccountId".into(), json!(self.account()));
        match details {
            // As in the DeleteExpiredKeyMaterial example: details, and no managementEvent.
            Some(d) => {
                r.insert("serviceEventDetails".into(), d);
            }
            None => {
                r.insert("managementEvent".into(), json!(true));
            }
        }
        r.insert("eventCategory".into(), json!("Management"));
        Value::Object(r)
    }

    fn ec2_call(
        &mut self,
        by: Principal,
        t: SimTime,
        name: &str,
        request: Value,
        response: Value,
        error: Option<(&str, &str)>,
    ) -> Value {
        let (identity, address) = match by {
            Principal::User => (self.user(), USER_IP),
            Principal::AutoScaling => (self.auto_scaling(), "autoscaling.amazonaws.com"),
        };
        let mut r = self.base(t, "ec2.amazonaws.com", name, identity);
        r.insert("sourceIPAddress".into(), json!(address));
        r.insert("userAgent".into(), json!(if by == Principal::User { "AWS Internal" } else { address }));
        if let Some((code, message)) = error {
            r.insert("errorCode".into(), json!(code));
            r.insert("errorMessage".into(), json!(message));
        }
        r.insert("requestParameters".into(), request);
        r.insert("responseElements".into(), if error.is_some() { Value::Null } else { response });
        let read_only = false;
        self.finish_call(r, read_only, None)
    }

    /// Whether the record follows from an instance's termination: its cause is the termination
    /// itself or, when the instance held keys, the last key it dropped for it.
    fn caused_by_termination(&self, rec: &Record<Obs>) -> bool {
        let Cause::Record(c) = rec.cause else { return false };
        matches!(
            self.run.record(c).map(|r| &r.obs),
            Some(Obs::Instance(
                InstanceObs::StateChanged { to: InstanceState::Terminated, .. }
                    | InstanceObs::DataKeyEvicted { why: Eviction::Terminate, .. }
            ))
        )
    }

    fn instances_set(id: &str) -> Value {
        json!({"instancesSet": {"items": [{"instanceId": id}]}})
    }

    /// The EC2 API call behind a volume or instance record, if one was made: by the user (the
    /// timeline, or a fleet's own cycle, which stands for the user's automation) or by auto
    /// scaling. What EC2 or AWS do by themselves (a detach at termination, a failed start going
    /// back to stopped, host maintenance) is no call.
    fn ec2_record(&mut self, rec: &Record<Obs>) -> Option<Value> {
        let s = self.run.scenario;
        let actor = self.run.names.at(rec.actor, rec.id).into_owned();
        match &rec.obs {
            Obs::Volume(VolumeObs::CreateRequested) => {
                let v = s.volumes.iter().find(|v| *v.name == *actor)?;
                let arn = &s.key(v.key).spec.arn;
                let az = format!("{}a", s.region);
                let req = json!({"size": v.size_gib, "availabilityZone": az, "volumeType": "gp3", "encrypted": true, "kmsKeyId": arn});
                let resp = json!({"volumeId": actor, "size": v.size_gib, "availabilityZone": az, "status": "creating", "encrypted": true, "kmsKeyId": arn, "createTime": event_time(self.run, rec.at)});
                Some(self.ec2_call(Principal::User, rec.at, "CreateVolume", req, resp, None))
            }
            Obs::Volume(VolumeObs::Refused { action, error }) => {
                let req = json!({"volumeId": actor});
                let message = error.message(|v| s.volume_name(v));
                Some(self.ec2_call(Principal::User, rec.at, action, req, Value::Null, Some((error.code, &message))))
            }
            Obs::Volume(VolumeObs::AttachRequested { instance }) => {
                let inst = self.run.names.at(*instance, rec.id).into_owned();
                let refused = self.attach_errors.get(&rec.id).cloned();
                let req = json!({"volumeId": actor, "instanceId": inst, "device": "/dev/sdf"});
                let resp = json!({"volumeId": actor, "instanceId": inst, "device": "/dev/sdf", "status": "attaching", "attachTime": event_time(self.run, rec.at)});
                let message = refused.as_ref().map(|e| e.message(|v| s.volume_name(v)));
                let error = refused.as_ref().zip(message.as_deref()).map(|(e, m)| (e.code, m));
                Some(self.ec2_call(Principal::User, rec.at, "AttachVolume", req, resp, error))
            }
            // A detach caused by the instance's termination is EC2's doing, not a call.
            Obs::Volume(VolumeObs::Detached { instance }) if !self.caused_by_termination(rec) => {
                let inst = self.run.names.at(*instance, rec.id).into_owned();
                let req = json!({"volumeId": actor});
                let resp = json!({"volumeId": actor, "instanceId": inst, "device": "/dev/sdf", "status": "detaching"});
                Some(self.ec2_call(Principal::User, rec.at, "DetachVolume", req, resp, None))
            }
            Obs::Instance(InstanceObs::StateChanged { from, to, reason: None }) => {
                let by_user = Principal::User;
                let (name, by) = match (from, to) {
                    // Auto scaling launches a new instance in place of one it terminated.
                    (None, InstanceState::Pending) => ("RunInstances", Principal::AutoScaling),
                    (None, _) => ("RunInstances", by_user),
                    (_, InstanceState::Stopped) => ("StopInstances", by_user),
                    // From running: host maintenance moving it, not a call.
                    (Some(InstanceState::Stopped), InstanceState::Pending) => ("StartInstances", by_user),
                    // Not asked for by the timeline: a fleet's replacement.
                    (_, InstanceState::Terminated) if !matches!(rec.cause, Cause::Input(_)) => {
                        ("TerminateInstances", Principal::AutoScaling)
                    }
                    (_, InstanceState::Terminated) => ("TerminateInstances", by_user),
                    _ => return None,
                };
                let set = Self::instances_set(&actor);
                Some(self.ec2_call(by, rec.at, name, set.clone(), set, None))
            }
            Obs::Instance(InstanceObs::Rebooted) => {
                let set = Self::instances_set(&actor);
                Some(self.ec2_call(Principal::User, rec.at, "RebootInstances", set, json!({"_return": true}), None))
            }
            Obs::Instance(InstanceObs::Refused { action, error }) if *action != InstanceAction::HostMaintenance => {
                let set = Self::instances_set(&actor);
                let message = error.message(|v| s.volume_name(v));
                Some(self.ec2_call(
                    Principal::User,
                    rec.at,
                    action.as_str(),
                    set,
                    Value::Null,
                    Some((error.code, &message)),
                ))
            }
            _ => None,
        }
    }
}

/// A grant's ID, 64 hex digits, stable for the seed.
fn grant_id(seed: u64, n: u32) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(crate::engine::stream_key(&format!("grant/{n}")));
    let b: [u8; 32] = rng.random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What each AttachVolume request came to: EC2's error, by the request's record id, where it
/// failed (the outcome is recorded after the request, once KMS has answered).
fn attach_errors(run: &Run<'_>) -> BTreeMap<RecordId, Ec2Error> {
    let mut errors = BTreeMap::new();
    // The attach request each volume has under way.
    let mut asked: BTreeMap<ActorId, RecordId> = BTreeMap::new();
    for rec in &run.records {
        match &rec.obs {
            Obs::Volume(VolumeObs::AttachRequested { .. }) => {
                asked.insert(rec.actor, rec.id);
            }
            Obs::Volume(VolumeObs::Attached { .. }) => {
                asked.remove(&rec.actor);
            }
            Obs::Volume(VolumeObs::AttachFailed { error, .. }) => {
                if let Some(req) = asked.remove(&rec.actor) {
                    errors.insert(req, error.clone());
                }
            }
            _ => {}
        }
    }
    errors
}

/// Every CloudTrail record of the run, in event-time order.
#[must_use]
pub fn records(run: &Run<'_>) -> Vec<Value> {
    let imported = vec![false; run.scenario.keys.len()];
    let mut w = Writer { run, ids: Ids::new(run.scenario.seed), attach_errors: attach_errors(run), imported };
    let mut out = Vec::new();
    for rec in &run.records {
        let v = match &rec.obs {
            Obs::Kms(KmsObs::Called { caller, op, key, result }) => Some(w.kms_call(rec, *caller, op, *key, result)),
            Obs::Kms(KmsObs::MaterialExpired { key, material }) => {
                let details = json!({"keyId": run.scenario.key(*key).spec.key_id, "keyMaterialId": w.material_id(*key, *material)});
                Some(w.service_event(rec, "DeleteExpiredKeyMaterial", *key, Some(details)))
            }
            Obs::Kms(KmsObs::KeyDeleted { key }) => Some(w.service_event(rec, "DeleteKey", *key, None)),
            _ => w.ec2_record(rec),
        };
        out.extend(v);
    }
    out
}

/// The log file CloudTrail would deliver: `{"Records": [...]}`, one record per line.
#[must_use]
pub fn log_file(run: &Run<'_>) -> String {
    let recs = records(run);
    let mut out = String::from("{\"Records\": [\n");
    for (i, r) in recs.iter().enumerate() {
        out.push_str(&serde_json::to_string(r).expect("records serialize"));
        out.push_str(if i + 1 < recs.len() { ",\n" } else { "\n" });
    }
    out.push_str("]}\n");
    out
}
