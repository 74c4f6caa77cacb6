//! CloudTrail in, a scenario out: `kmsim import-cloudtrail`.
//!
//! Reads delivered log files (`{"Records": [...]}`, plain or gzip) and JSON Lines, streaming, one
//! record at a time, keeping only what a scenario needs. It reproduces keys (origin, key ID),
//! key materials (by their `keyMaterialId`), volumes, instances, attachments and the user's key and
//! EC2 actions with their times. Calls AWS services made on the user's behalf are not replayed
//! (kmsim makes them again), nor are calls that failed (they changed nothing), but for an
//! AttachVolume refused because of its key, which kmsim refuses again; events it does not
//! understand are counted and listed at the top of the scenario, never silently dropped. Records
//! are sorted by time and duplicates (same `eventID`) removed.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::io::{BufRead, BufReader, Read};

use serde::Deserialize;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
/// A record's JSON as it lies in the input: strings borrowed, objects as lists (a record's
/// objects are small, and hashing their keys cost more than the search).
type Value<'a> = serde_json_borrow::Value<'a>;

use crate::actors::service::Kind;
use crate::engine::SimDuration;

use super::ordered::Each;

/// At most this many understood events in one scenario: it bounds memory on hostile input.
pub const MAX_EVENTS: usize = 1_000_000;
/// At most this many bytes in one JSON Lines record.
pub const MAX_LINE: u64 = 16 << 20;

/// What went wrong, naming the file and, where it applies, the record.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {what}")]
pub struct ImportError {
    pub file: String,
    pub what: String,
}

/// The logs held no event kmsim models: there is no scenario to write.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("no KMS or EC2 event that kmsim models in {records} record(s)")]
pub struct NothingToImport {
    pub records: u64,
}

/// The reading buffer's size.
const BUFFER: usize = 1 << 20;
/// Records read together, in bytes, and the most threads that read them.
const BATCH: usize = 1 << 20;
const MAX_WORKERS: usize = 8;

/// The fields of a record the importer reads; the rest are skipped without being kept. Text is
/// borrowed from the record's bytes where it has no escapes.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "'a: 'de"))]
struct RawRecord<'a> {
    #[serde(borrow)]
    event_time: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_name: Option<Cow<'a, str>>,
    #[serde(rename = "eventID", borrow)]
    event_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    aws_region: Option<Cow<'a, str>>,
    #[serde(borrow)]
    recipient_account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    error_code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_identity: Option<Value<'a>>,
    #[serde(borrow)]
    request_parameters: Option<Value<'a>>,
    #[serde(borrow)]
    response_elements: Option<Value<'a>>,
    #[serde(borrow)]
    resources: Option<Value<'a>>,
}

/// One understood event.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum What {
    Import {
        key: String,
        material: String,
        valid_to: Option<jiff::Timestamp>,
        /// `importType` NEW_KEY_MATERIAL.
        new: bool,
    },
    DeleteMaterial {
        key: String,
        material: Option<String>,
    },
    Rotate {
        key: String,
    },
    /// CreateKey, or a key an estate describes: where the key's material comes from.
    Created {
        key: String,
        external: bool,
        /// Every material the key has had since is in the input (a CreateKey, or an estate
        /// whose materials no trail event changes): none comes from before it.
        listed: bool,
    },
    Expired {
        key: String,
    },
    Enable {
        key: String,
    },
    Disable {
        key: String,
    },
    Schedule {
        key: String,
        days: u32,
        deletion: Option<jiff::Timestamp>,
    },
    Cancel {
        key: String,
    },
    KeyDeleted {
        key: String,
    },
    /// A key seen in any other KMS event, with the volume its `aws:ebs:id` context names, or
    /// the other service's resource its context names.
    KeyUse {
        key: String,
        volume: Option<String>,
        /// The other service's resource its encryption context names, and whether the call
        /// was that service's Decrypt.
        resource: Option<(Kind, String)>,
        decrypt: bool,
        instance: Option<String>,
        ok: bool,
        /// EC2 loading the volume's key at an attach, a launch or a start: a Decrypt by the
        /// instance's `aws:ec2-infrastructure` role, or EC2's grant for the instance refused
        /// because of the key's state.
        by_instance: bool,
    },
    CreateVolume {
        volume: String,
        key: String,
        size: Option<u64>,
        /// The snapshot it restores, if any.
        snapshot: Option<String>,
    },
    CreateSnapshot {
        snapshot: String,
        volume: String,
    },
    /// `key`: the copy's key, when the call names one (else the source's, as the scenario's default).
    CopySnapshot {
        snapshot: String,
        source: String,
        key: Option<String>,
    },
    DeleteSnapshot {
        snapshot: String,
    },
    RegisterImage {
        image: String,
        snapshots: Vec<String>,
    },
    DeregisterImage {
        image: String,
    },
    /// RunInstances from an image, with the volumes its block-device mappings made; by auto
    /// scaling for the group its `aws:autoscaling:groupName` tag names.
    Launch {
        instance: String,
        image: String,
        volumes: Vec<String>,
        group: Option<String>,
    },
    /// CreateAutoScalingGroup: its image when the request names it (else its launches do).
    CreateGroup {
        group: String,
        image: Option<String>,
        max: Option<u32>,
        desired: u32,
    },
    /// SetDesiredCapacity, or an UpdateAutoScalingGroup that sets it.
    SetDesired {
        group: String,
        desired: u32,
    },
    Attach {
        volume: String,
        instance: String,
    },
    /// The grant EC2 made for a volume, revoked.
    RevokeGrant {
        key: String,
        volume: String,
    },
    /// The user's RevokeGrant or RetireGrant, by grant ID: a `RevokeGrant` once the grant is
    /// known (its CreateGrant may come later in the logs than it does in time).
    RevokeGrantId {
        key: Option<String>,
        grant: String,
    },
    /// DetachVolume, with the instance its response names.
    Detach {
        volume: String,
        instance: Option<String>,
    },
    Instance {
        action: &'static str,
        id: String,
        /// Called by auto scaling (a health check's or a scale-in's termination).
        by_group: bool,
    },
    /// A resource of another service made under a key: its create call, or for an S3 bucket
    /// PutBucketEncryption (which says whether it has a bucket key).
    CreateResource {
        kind: Kind,
        id: String,
        key: String,
        bucket_key: bool,
    },
    /// A reboot, stop, start or restore of one, or a GetSecretValue: the scenario's action.
    ResourceAction {
        id: String,
        action: &'static str,
    },
}

impl What {
    /// The key the event is about, if any.
    fn key(&self) -> Option<&str> {
        match self {
            What::Import { key, .. }
            | What::DeleteMaterial { key, .. }
            | What::Rotate { key }
            | What::Created { key, .. }
            | What::Expired { key }
            | What::Enable { key }
            | What::Disable { key }
            | What::Schedule { key, .. }
            | What::Cancel { key }
            | What::KeyDeleted { key }
            | What::KeyUse { key, .. }
            | What::CreateVolume { key, .. }
            | What::CreateResource { key, .. }
            | What::RevokeGrant { key, .. }
            | What::CopySnapshot { key: Some(key), .. } => Some(key),
            What::RevokeGrantId { key, .. } => key.as_deref(),
            What::Attach { .. }
            | What::Detach { .. }
            | What::Instance { .. }
            | What::CreateSnapshot { .. }
            | What::CopySnapshot { key: None, .. }
            | What::DeleteSnapshot { .. }
            | What::RegisterImage { .. }
            | What::DeregisterImage { .. }
            | What::Launch { .. }
            | What::CreateGroup { .. }
            | What::SetDesired { .. }
            | What::ResourceAction { .. } => None,
        }
    }
}

impl What {
    /// The ids of resources the event names (not keys: those are checked as key IDs).
    fn ids(&self) -> Vec<&str> {
        match self {
            What::KeyUse { volume, resource, instance, .. } => volume
                .iter()
                .chain(instance)
                .map(String::as_str)
                .chain(resource.iter().map(|(_, id)| id.as_str()))
                .collect(),
            What::CreateVolume { volume, snapshot, .. } => {
                std::iter::once(volume).chain(snapshot).map(String::as_str).collect()
            }
            What::CreateSnapshot { snapshot, volume } => vec![snapshot, volume],
            What::CopySnapshot { snapshot, source, .. } => vec![snapshot, source],
            What::DeleteSnapshot { snapshot } => vec![snapshot],
            What::RegisterImage { image, snapshots } => {
                std::iter::once(image).chain(snapshots).map(String::as_str).collect()
            }
            What::DeregisterImage { image } => vec![image],
            What::Launch { instance, image, volumes, group } => {
                [instance, image].into_iter().chain(volumes).chain(group).map(String::as_str).collect()
            }
            What::CreateGroup { group, .. } | What::SetDesired { group, .. } => vec![group],
            What::Attach { volume, instance } | What::Detach { volume, instance: Some(instance) } => {
                vec![volume, instance]
            }
            What::RevokeGrant { volume, .. } | What::Detach { volume, instance: None } => vec![volume],
            What::Instance { id, .. } | What::CreateResource { id, .. } | What::ResourceAction { id, .. } => vec![id],
            What::Import { .. }
            | What::DeleteMaterial { .. }
            | What::Rotate { .. }
            | What::Created { .. }
            | What::Expired { .. }
            | What::Enable { .. }
            | What::Disable { .. }
            | What::Schedule { .. }
            | What::Cancel { .. }
            | What::KeyDeleted { .. }
            | What::RevokeGrantId { .. } => Vec::new(),
        }
    }
}

/// The sizes an EBS volume can have, in GiB.
pub(super) const VOLUME_SIZES: std::ops::RangeInclusive<u64> = 1..=65_536;

/// An id a scenario can name: AWS's ids are never empty and have no spaces.
pub(super) fn usable_id(id: &str) -> bool {
    !id.trim().is_empty() && !id.chars().any(char::is_whitespace)
}

/// The other service's resource an encryption context names (as `kmsim`'s CloudTrail writer
/// and AWS write them), if it names one.
fn context_resource(ctx: &Value) -> Option<(Kind, String)> {
    let after =
        |key: &str, marker: &str| ctx.get(key).as_str().and_then(|a| a.split_once(marker)).map(|(_, r)| r.to_string());
    let plain = |key: &str| ctx.get(key).as_str().map(String::from);
    if let Some(id) = plain("aws:rds:db-id") {
        return Some((Kind::Rds, id));
    }
    if let Some(id) = plain("aws:rds:dbc-id") {
        return Some((Kind::Aurora, id));
    }
    if let Some(id) = after("aws:redshift:arn", ":cluster:") {
        return Some((Kind::Redshift, id));
    }
    if let Some(id) = plain("aws:dynamodb:tableName") {
        return Some((Kind::DynamoDb, id));
    }
    if let Some(id) = after("aws:s3:arn", ":::") {
        // An object's ARN names its bucket first.
        return Some((Kind::S3, id.split('/').next().unwrap_or_default().to_string()));
    }
    if let Some(id) = plain("aws:elasticfilesystem:filesystem:id") {
        return Some((Kind::Efs, id));
    }
    if let Some(id) = after("aws:lambda:FunctionArn", ":function:") {
        return Some((Kind::Lambda, id));
    }
    after("SecretARN", ":secret:").map(|id| (Kind::Secret, id))
}

#[derive(Clone, Debug)]
struct Event {
    time: jiff::Timestamp,
    what: What,
}

/// A volume's first attachment event in a trail: an attach (or EC2's decrypt for one), or a
/// detach from the instance it names, which means it was attached before the trail began.
#[derive(PartialEq, Eq)]
pub(super) enum First {
    Attach,
    Detach(Option<String>),
}

/// What a trail's events show, by id: an estate leaves these to the trail's history.
#[derive(Default)]
pub(super) struct Shown {
    /// The trail's first event.
    pub first: Option<jiff::Timestamp>,
    pub created_keys: BTreeSet<String>,
    /// Keys whose materials the trail imports, deletes or rotates.
    pub materials: BTreeSet<String>,
    /// Keys whose state the trail changes.
    pub states: BTreeSet<String>,
    /// Volumes, snapshots, images and other resources the trail makes.
    pub made: BTreeSet<String>,
    /// Volumes the trail attaches or detaches, and which of the two it does first.
    pub attachments: BTreeMap<String, First>,
    /// Instances the trail launches, stops, starts, reboots or terminates.
    pub instances: BTreeSet<String>,
}

/// An eventID: a UUID as its 128 bits (every ID AWS writes), else the text.
#[derive(PartialEq, Eq, Hash)]
enum EventId {
    Uuid(u128),
    Text(Box<str>),
}

impl EventId {
    fn of(id: &str) -> Self {
        let canonical = id.len() == 36 && [8, 13, 18, 23].iter().all(|&i| id.as_bytes()[i] == b'-');
        let bits = id
            .bytes()
            .filter(|&b| b != b'-')
            .try_fold(0u128, |n, b| char::from(b).to_digit(16).map(|d| n << 4 | u128::from(d)));
        match bits {
            Some(n) if canonical => EventId::Uuid(n),
            _ => EventId::Text(id.into()),
        }
    }
}

/// Everything read from the logs, before it becomes a scenario.
#[derive(Default)]
pub struct Trail {
    events: Vec<Event>,
    /// The eventIDs of the events kept, for duplicates: a UUID as its 128 bits, another text
    /// whole. Only asked whether it holds one, never listed (clippy's `iter_over_hash_type`
    /// refuses a loop over it): a hash set, a lookup in a million without a walk down a tree.
    #[allow(clippy::disallowed_types, reason = "membership only: its order is never seen")]
    ids: std::collections::HashSet<EventId>,
    records: u64,
    duplicates: u64,
    out_of_order: u64,
    failed: BTreeMap<String, u64>,
    unknown: BTreeMap<String, u64>,
    service_calls: u64,
    account: Option<String>,
    region: Option<String>,
    user: Option<String>,
    last_time: Option<jiff::Timestamp>,
    /// Keys the user says have imported material (`--external`), by key ID.
    external: BTreeSet<String>,
    /// The estate the events lead to, when one was read.
    estate: Option<super::estate::Header>,
    /// Each key's aliases, by key ID, as the estate lists them.
    aliases: BTreeMap<String, Vec<String>>,
    /// The grants EC2 made for volumes: grant ID to key and volume.
    volume_grants: BTreeMap<String, (String, String)>,
    /// Repeat after the trail the restarts and detaches it shows again and again (A16).
    repeat: bool,
}

impl Trail {
    /// The user says this key (key ID or ARN) has imported material: the trail may not show it.
    pub fn state_external(&mut self, key: &str) {
        self.external.insert(key_id_of(key));
    }

    /// After the trail, the instances' stops and reboots and the volumes' detaches that it
    /// shows at least twice go on at their mean interval (A16).
    pub fn repeat_activity(&mut self) {
        self.repeat = true;
    }

    /// An event the estate shows.
    pub(super) fn push(&mut self, time: jiff::Timestamp, what: What) {
        self.events.push(Event { time, what });
    }

    pub(super) fn alias(&mut self, key: &str, alias: &str) {
        self.aliases.entry(key.to_string()).or_default().push(alias.to_string());
    }

    pub(super) fn set_estate(&mut self, header: super::estate::Header) {
        self.estate = Some(header);
    }

    /// What the trail's own events show, for an estate to leave to them.
    pub(super) fn shown(&self) -> Shown {
        let mut shown = Shown { first: self.events.iter().map(|e| e.time).min(), ..Shown::default() };
        for e in &self.events {
            match &e.what {
                What::Created { key, .. } => {
                    shown.created_keys.insert(key.clone());
                }
                What::Import { key, .. }
                | What::DeleteMaterial { key, .. }
                | What::Rotate { key }
                | What::Expired { key } => {
                    shown.materials.insert(key.clone());
                    shown.states.insert(key.clone());
                }
                What::Enable { key }
                | What::Disable { key }
                | What::Schedule { key, .. }
                | What::Cancel { key }
                | What::KeyDeleted { key } => {
                    shown.states.insert(key.clone());
                }
                What::CreateVolume { volume, .. } => {
                    shown.made.insert(volume.clone());
                }
                What::Attach { volume, .. }
                | What::KeyUse { volume: Some(volume), by_instance: true, ok: true, .. } => {
                    shown.attachments.entry(volume.clone()).or_insert(First::Attach);
                }
                What::Detach { volume, instance } => {
                    shown.attachments.entry(volume.clone()).or_insert_with(|| First::Detach(instance.clone()));
                }
                What::CreateSnapshot { snapshot: id, .. }
                | What::CopySnapshot { snapshot: id, .. }
                | What::RegisterImage { image: id, .. }
                | What::CreateResource { id, .. } => {
                    shown.made.insert(id.clone());
                }
                What::Instance { id, .. } | What::Launch { instance: id, .. } => {
                    shown.instances.insert(id.clone());
                }
                _ => {}
            }
        }
        shown
    }

    /// The instant of the trail's last event, if it has one.
    #[must_use]
    pub fn last_event(&self) -> Option<jiff::Timestamp> {
        self.events.iter().map(|e| e.time).max()
    }

    /// Reads one log file (any of the accepted forms) into the trail.
    pub fn read(&mut self, file: &str, input: impl Read) -> Result<(), ImportError> {
        let err = |what: String| ImportError { file: file.to_string(), what };
        // Big buffers: a record that lies whole in one is parsed where it lies.
        let mut reader = BufReader::with_capacity(BUFFER, input);
        let head = reader.fill_buf().map_err(|e| err(format!("cannot read: {e}")))?;
        if head.starts_with(&[0x1f, 0x8b]) {
            let gz = flate2::read::MultiGzDecoder::new(reader);
            return self.read_plain(file, BufReader::with_capacity(BUFFER, gz));
        }
        self.read_plain(file, reader)
    }

    fn read_plain(&mut self, file: &str, mut reader: impl BufRead) -> Result<(), ImportError> {
        let err = |what: String| ImportError { file: file.to_string(), what };
        let head = reader.fill_buf().map_err(|e| err(format!("cannot read: {e}")))?;
        let text = String::from_utf8_lossy(&head[..head.len().min(4096)]).into_owned();
        let trimmed = text.trim_start();
        let first_key = trimmed.strip_prefix('{').map(str::trim_start);
        let delivered = first_key.is_some_and(|k| k.starts_with("\"Records\""));
        // `aws cloudtrail lookup-events` prints {"Events": [{..., "CloudTrailEvent": "<record>"}]}.
        let looked_up = first_key.is_some_and(|k| k.starts_with("\"Events\""));
        if looked_up {
            let mut de = serde_json::Deserializer::from_reader(reader);
            let seed = LookupSeed { trail: self };
            seed.deserialize(&mut de).map_err(|e| err(describe_json_error(&e)))?;
            de.end().map_err(|e| err(format!("unexpected data after the Events object ({e})")))
        } else if delivered {
            // Each record is cut from the stream, bounded as a line is, and parsed from its bytes.
            let splitter = super::split::Splitter::new(reader, usize::try_from(MAX_LINE).unwrap_or(usize::MAX));
            let cut = |each: &mut Each<'_>| splitter.records(each).map_err(|super::split::SplitError(e)| e);
            self.side_by_side(cut, "record").map_err(err)
        } else {
            self.read_lines(file, reader)
        }
    }

    fn read_lines(&mut self, file: &str, mut reader: impl BufRead) -> Result<(), ImportError> {
        let cut = |each: &mut Each<'_>| {
            let mut line = Vec::new();
            for n in 1.. {
                line.clear();
                let read = (&mut reader)
                    .take(MAX_LINE + 1)
                    .read_until(b'\n', &mut line)
                    .map_err(|e| format!("cannot read: {e}"))?;
                if read == 0 {
                    break;
                }
                if read as u64 > MAX_LINE {
                    return Err(format!(
                        "line {n}: a record longer than {} MiB: this is not a CloudTrail record",
                        MAX_LINE >> 20
                    ));
                }
                if !line.trim_ascii().is_empty() {
                    each(n, &line)?;
                }
            }
            Ok(())
        };
        self.side_by_side(cut, "line").map_err(|what| ImportError { file: file.to_string(), what })
    }

    /// Records, each read on one of the cores and added to the trail in their order;
    /// `record` names one in messages.
    fn side_by_side(
        &mut self,
        cut: impl FnOnce(&mut Each<'_>) -> Result<(), String>,
        record: &str,
    ) -> Result<(), String> {
        let workers = std::thread::available_parallelism().map_or(1, usize::from).min(MAX_WORKERS);
        let read = |n: u64, bytes: &[u8]| {
            let said = serde_json::from_slice(bytes)
                .map_err(|e| format!("not a CloudTrail record: {}", describe_json_error(&e)))
                .and_then(|raw: RawRecord| Record::of(&raw));
            (n, said)
        };
        let apply = |(n, said): (u64, Result<Record, String>)| {
            said.and_then(|r| self.apply(r)).map_err(|what| format!("{record} {n}: {what}"))
        };
        super::ordered::side_by_side(workers, BATCH, cut, read, apply)
    }

    fn add(&mut self, raw: &RawRecord) -> Result<(), String> {
        self.apply(Record::of(raw)?)
    }

    /// Adds what a record says to the trail, in the records' order.
    fn apply(&mut self, record: Record) -> Result<(), String> {
        self.records += 1;
        let Record { time, account, region, user, said } = record;
        if self.last_time.is_some_and(|t| time < t) {
            self.out_of_order += 1;
        }
        self.last_time = Some(self.last_time.map_or(time, |t| t.max(time)));
        if self.account.is_none() {
            self.account = account;
        }
        if self.region.is_none() {
            self.region = region;
        }
        if self.user.is_none() {
            self.user = user;
        }
        let Understood { what, id, failed, by_service, grant } = match said {
            Said::Unknown(label) => {
                *self.unknown.entry(label).or_default() += 1;
                return Ok(());
            }
            Said::Event(understood) => understood,
        };
        // Only events kept are deduplicated, so memory stays bounded by what a scenario needs.
        if let Some(id) = id
            && !self.ids.insert(id)
        {
            self.duplicates += 1;
            return Ok(());
        }
        if let Some(name) = failed {
            *self.failed.entry(name).or_default() += 1;
            return Ok(());
        }
        if by_service {
            self.service_calls += 1;
        }
        if let Some((grant, key_and_volume)) = grant {
            self.volume_grants.insert(grant, key_and_volume);
        }
        if self.events.len() >= MAX_EVENTS {
            return Err(format!("more than {MAX_EVENTS} understood events: split the trail by time or by key"));
        }
        self.events.push(Event { time, what });
        Ok(())
    }
}

/// What one record says, read on its own (records are read side by side); [`Trail::apply`] adds
/// it to the trail in the records' order.
struct Record {
    time: jiff::Timestamp,
    account: Option<String>,
    region: Option<String>,
    /// The IAM user who made the call, if one did.
    user: Option<String>,
    said: Said,
}

// One per record, and only while it is read: boxing the event would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Said {
    /// Not understood: counted under this label.
    Unknown(String),
    Event(Understood),
}

/// An event kmsim models, as one record says it.
struct Understood {
    what: What,
    id: Option<EventId>,
    /// Refused, and not a refusal kmsim tells again from the key's state: the event's name.
    failed: Option<String>,
    by_service: bool,
    /// A grant EC2 made for a volume: its ID, key and volume.
    grant: Option<(String, (String, String))>,
}

impl Record {
    fn of(raw: &RawRecord) -> Result<Record, String> {
        let time = raw.event_time.as_deref().ok_or("missing eventTime")?;
        let time: jiff::Timestamp =
            time.parse().map_err(|e| format!("eventTime {time:?} is not an RFC 3339 instant ({e})"))?;
        let name = raw.event_name.as_deref().ok_or("missing eventName")?;
        let source = raw.event_source.as_deref().ok_or("missing eventSource")?;
        let identity = raw.user_identity.as_ref().unwrap_or(&Value::Null);
        let user = if identity.get("type").as_str() == Some("IAMUser") {
            identity.get("userName").as_str().map(String::from)
        } else {
            None
        };
        let read = |said| Record {
            time,
            account: raw.recipient_account_id.as_deref().map(String::from),
            region: raw.aws_region.as_deref().map(String::from),
            user: user.clone(),
            said,
        };
        let Some(what) = understand(source, name, raw, identity)? else {
            return Ok(read(Said::Unknown(name.to_string())));
        };
        if let Some(key) = what.key()
            && !crate::scenario::is_key_id(key)
        {
            // An alias alone, a multi-Region key (mrk-..., D14) or no key ID at all: listed as
            // not understood, never guessed.
            return Ok(read(Said::Unknown(format!("{name} (key {key:?}: not a single-Region key ID)"))));
        }
        if let What::CreateVolume { size: Some(size), .. } = &what
            && !VOLUME_SIZES.contains(size)
        {
            return Err(format!("{name} of {size} GiB: EBS volumes are 1 to 65,536 GiB"));
        }
        if let Some(id) = what.ids().into_iter().find(|id| !usable_id(id)) {
            return Err(format!("{name} names {id:?}, which is not an AWS resource id (empty, or with spaces)"));
        }
        let by_service = !identity.get("invokedBy").is_null()
            && identity.get("invokedBy").as_str() != Some("AWS Internal")
            || identity.get("type").as_str() == Some("AssumedRole");
        let failed = match &what {
            // A refused service call is a story kmsim tells again from the key's state.
            What::KeyUse { .. } | What::ResourceAction { .. } | What::CreateResource { .. } => false,
            // Refused because of the key (D4): the attempt is the story, and kmsim refuses it
            // again from the key's state.
            What::Attach { .. } if raw.error_code.as_deref() == Some("CustomerKeyHasBeenRevoked") => false,
            _ => raw.error_code.is_some(),
        };
        let grant = match &what {
            What::KeyUse { key, volume: Some(volume), ok: true, .. } if name == "CreateGrant" => raw
                .response_elements
                .as_ref()
                .and_then(|r| r.get("grantId").as_str())
                .map(|grant| (grant.to_string(), (key.clone(), volume.clone()))),
            _ => None,
        };
        let id = raw.event_id.as_deref().map(EventId::of);
        let failed = failed.then(|| name.to_string());
        Ok(read(Said::Event(Understood { what, id, failed, by_service, grant })))
    }
}

pub(super) fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let at = format!("line {}, column {}", e.line(), e.column());
    if e.to_string().contains("EOF while parsing") {
        let inner = e.to_string();
        let record =
            inner.split(':').next().filter(|r| r.starts_with("record ")).map_or(String::new(), |r| format!(" in {r}"));
        return format!("the JSON ends early{record}, at {at}: is the file truncated?");
    }
    match e.classify() {
        Category::Eof => format!("the JSON ends early, at {at}: is the file truncated?"),
        Category::Syntax => format!("invalid JSON at {at} ({e})"),
        Category::Data => format!("unexpected JSON at {at} ({e})"),
        Category::Io => format!("cannot read ({e})"),
    }
}

/// Reads the output of `aws cloudtrail lookup-events`: each event's `CloudTrailEvent` is a
/// record, as a JSON string (the newest first: the trail sorts them).
struct LookupSeed<'a> {
    trail: &'a mut Trail,
}

impl<'de> DeserializeSeed<'de> for LookupSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LookupSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the output of aws cloudtrail lookup-events: {\"Events\": [...]}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "Events" {
                map.next_value_seed(LookedUpSeed { trail: &mut *self.trail })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct LookedUpSeed<'a> {
    trail: &'a mut Trail,
}

/// One event of lookup-events' output; only the record matters.
#[derive(Deserialize)]
struct LookedUp {
    #[serde(rename = "CloudTrailEvent")]
    record: Option<String>,
}

impl<'de> DeserializeSeed<'de> for LookedUpSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for LookedUpSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of looked-up events")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut n = 0u64;
        let bad = |n: u64, what: String| serde::de::Error::custom(format!("event {n}: {what}"));
        while let Some(event) = seq.next_element::<LookedUp>().map_err(|e| bad(n + 1, e.to_string()))? {
            n += 1;
            let text = event.record.ok_or_else(|| bad(n, "no CloudTrailEvent".into()))?;
            if text.len() as u64 > MAX_LINE {
                return Err(bad(n, format!("a record longer than {} MiB", MAX_LINE >> 20)));
            }
            let raw: RawRecord = serde_json::from_str(&text)
                .map_err(|e| bad(n, format!("CloudTrailEvent is not a record: {}", describe_json_error(&e))))?;
            self.trail.add(&raw).map_err(|what| bad(n, what))?;
        }
        Ok(())
    }
}

fn key_of(raw: &RawRecord) -> Option<String> {
    let from_resources = raw.resources.as_ref().and_then(|r| r.get(0).get("ARN").as_str()).map(String::from);
    let from_request = raw.request_parameters.as_ref().and_then(|p| p.get("keyId").as_str()).map(String::from);
    let from_response = raw.response_elements.as_ref().and_then(|p| p.get("keyId").as_str()).map(String::from);
    from_resources.or(from_response).or(from_request).map(|k| key_id_of(&k))
}

/// A key ID from a key ID or key ARN.
pub(super) fn key_id_of(s: &str) -> String {
    s.rsplit_once("key/").map_or(s, |(_, id)| id).to_string()
}

fn parse_console_date(s: &str) -> Option<jiff::Timestamp> {
    let p = jiff::fmt::strtime::parse("%b %d, %Y, %I:%M:%S %p", s).ok()?;
    jiff::tz::TimeZone::UTC.to_timestamp(p.to_datetime().ok()?).ok()
}

fn instance_of_items(v: &Value) -> Option<String> {
    v.get("instancesSet").get("items").get(0).get("instanceId").as_str().map(String::from)
}

/// What a record means for a scenario; `None` for events kmsim does not model.
fn understand(source: &str, name: &str, raw: &RawRecord, identity: &Value) -> Result<Option<What>, String> {
    let req = raw.request_parameters.as_ref().unwrap_or(&Value::Null);
    let resp = raw.response_elements.as_ref().unwrap_or(&Value::Null);
    let need = |v: Option<String>, what: &str| v.ok_or_else(|| format!("{name} without {what}"));
    Ok(Some(match (source, name) {
        ("kms.amazonaws.com", _) => {
            let key = || need(key_of(raw), "a key");
            match name {
                "ImportKeyMaterial" => What::Import {
                    key: key()?,
                    material: resp.get("keyMaterialId").as_str().map_or_else(|| "m".to_string(), |m| m.to_string()),
                    valid_to: req.get("validTo").as_str().and_then(parse_console_date),
                    new: req.get("importType").as_str() == Some("NEW_KEY_MATERIAL"),
                },
                "RotateKeyOnDemand" if raw.error_code.is_none() => What::Rotate { key: key()? },
                // Refused, it made no key, and no response names one.
                "CreateKey" if raw.error_code.is_some() => return Ok(None),
                "CreateKey" => What::Created {
                    listed: true,
                    key: need(resp.get("keyMetadata").get("keyId").as_str().map(String::from), "keyMetadata.keyId")?,
                    external: req.get("origin").as_str() == Some("EXTERNAL")
                        || resp.get("keyMetadata").get("origin").as_str() == Some("EXTERNAL"),
                },
                "DeleteImportedKeyMaterial" => What::DeleteMaterial {
                    key: key()?,
                    material: resp.get("keyMaterialId").as_str().or(req.get("keyMaterialId").as_str()).map(String::from),
                },
                "DeleteExpiredKeyMaterial" => What::Expired { key: key()? },
                "EnableKey" => What::Enable { key: key()? },
                "DisableKey" => What::Disable { key: key()? },
                "ScheduleKeyDeletion" => What::Schedule {
                    key: key()?,
                    days: req.get("pendingWindowInDays").as_u64().and_then(|d| u32::try_from(d).ok()).unwrap_or(30),
                    deletion: resp.get("deletionDate").as_str().and_then(parse_console_date),
                },
                "RevokeGrant" | "RetireGrant"
                    if raw.error_code.is_none() && identity.get("invokedBy").is_null() && identity.get("type").as_str() != Some("AssumedRole") =>
                {
                    let Some(grant) = req.get("grantId").as_str() else { return Ok(None) };
                    What::RevokeGrantId { key: key_of(raw), grant: grant.to_string() }
                }
                "CancelKeyDeletion" => What::Cancel { key: key()? },
                "DeleteKey" => What::KeyDeleted { key: key()? },
                "Decrypt"
                | "Encrypt"
                | "GenerateDataKey"
                | "GenerateDataKeyWithoutPlaintext"
                | "ReEncrypt"
                | "CreateGrant"
                | "RetireGrant"
                | "RevokeGrant"
                | "DescribeKey"
                | "ListKeyRotations"
                | "EnableKeyRotation"
                // KMS's own record of a rotation RotateKeyOnDemand asked for: nothing more to replay.
                | "RotateKey"
                | "GetParametersForImport" => {
                    let Some(key) = key_of(raw) else { return Ok(None) };
                    let volume = req.get("encryptionContext").get("aws:ebs:id")
                        .as_str()
                        .or(req.get("destinationEncryptionContext").get("aws:ebs:id").as_str())
                        .or(req.get("constraints").get("encryptionContextSubset").get("aws:ebs:id").as_str())
                        .map(String::from);
                    let instance = identity.get("arn")
                        .as_str()
                        .and_then(|a| a.rsplit_once("aws:ec2-infrastructure/"))
                        .map(|(_, i)| i.to_string())
                        .or_else(|| {
                            req.get("granteePrincipal")
                                .as_str()
                                .and_then(|g| g.rsplit_once("ec2-infrastructure:"))
                                .map(|(_, i)| i.to_string())
                        });
                    // EC2 loading the volume's key for an instance: its Decrypt under the
                    // instance's role, or the grant it asked for the instance and the key's state
                    // refused (then no Decrypt follows: a launch that fails, D6).
                    let by_instance = match name {
                        "Decrypt" => identity.get("arn").as_str().is_some_and(|a| a.contains("aws:ec2-infrastructure/")),
                        "CreateGrant" => {
                            identity.get("invokedBy").as_str() == Some("ec2.amazonaws.com")
                                && matches!(
                                    raw.error_code.as_deref(),
                                    Some("KMSInvalidStateException" | "DisabledException")
                                )
                        }
                        _ => false,
                    };
                    let resource = context_resource(req.get("encryptionContext"));
                    let decrypt = name == "Decrypt";
                    What::KeyUse { key, volume, resource, decrypt, instance, ok: raw.error_code.is_none(), by_instance }
                }
                _ => return Ok(None),
            }
        }
        (
            "rds.amazonaws.com"
            | "redshift.amazonaws.com"
            | "dynamodb.amazonaws.com"
            | "elasticfilesystem.amazonaws.com"
            | "lambda.amazonaws.com"
            | "secretsmanager.amazonaws.com",
            _,
        ) if Kind::created_by(name).is_some() => {
            let kind = Kind::created_by(name).expect("the guard");
            let id_param = kind.id_param();
            let key = req
                .get("kmsKeyId")
                .as_str()
                .or(req.get("kMSKeyArn").as_str())
                .or(req.get("sSESpecification").get("kMSMasterKeyId").as_str())
                .map(key_id_of);
            // Not under a customer managed key: nothing kmsim models. A refused one is made again
            // (and refused again from the key's state).
            let Some(key) = key else { return Ok(None) };
            What::CreateResource {
                kind,
                id: need(req.get(id_param).as_str().map(String::from), id_param)?,
                key,
                bucket_key: false,
            }
        }
        ("s3.amazonaws.com", "PutBucketEncryption") => {
            let rule = &req.get("ServerSideEncryptionConfiguration").get("Rule");
            let by_default = &rule.get("ApplyServerSideEncryptionByDefault");
            let Some(key) = by_default
                .get("KMSMasterKeyID")
                .as_str()
                .filter(|_| by_default.get("SSEAlgorithm").as_str() == Some("aws:kms"))
            else {
                return Ok(None);
            };
            What::CreateResource {
                kind: Kind::S3,
                id: need(req.get("bucketName").as_str().map(String::from), "bucketName")?,
                key: key_id_of(key),
                bucket_key: rule.get("BucketKeyEnabled").as_bool() == Some(true),
            }
        }
        ("rds.amazonaws.com" | "redshift.amazonaws.com" | "dynamodb.amazonaws.com", _)
            if Kind::lifecycle_of(name).is_some() =>
        {
            let (kind, what) = Kind::lifecycle_of(name).expect("the guard");
            let param = kind.id_param();
            What::ResourceAction { id: need(req.get(param).as_str().map(String::from), param)?, action: what.as_str() }
        }
        ("secretsmanager.amazonaws.com", "GetSecretValue") => What::ResourceAction {
            id: need(req.get("secretId").as_str().map(String::from), "secretId")?,
            action: "Request",
        },
        ("ec2.amazonaws.com", "CreateVolume") => {
            let volume = need(resp.get("volumeId").as_str().map(String::from), "responseElements.volumeId");
            let key = req.get("kmsKeyId").as_str().or(resp.get("kmsKeyId").as_str()).map(key_id_of);
            match (volume, key) {
                (Ok(volume), Some(key)) => What::CreateVolume {
                    volume,
                    key,
                    size: req.get("size").as_u64(),
                    snapshot: req.get("snapshotId").as_str().map(String::from),
                },
                // Unencrypted volumes, or failed calls: nothing kmsim models.
                _ if raw.error_code.is_some() => return Ok(None),
                (Err(e), _) => return Err(e),
                (Ok(_), None) => return Ok(None),
            }
        }
        // Refused, it made nothing, and no response names what it would have made.
        ("ec2.amazonaws.com", "CreateSnapshot" | "CopySnapshot" | "RegisterImage") if raw.error_code.is_some() => {
            return Ok(None);
        }
        ("ec2.amazonaws.com", "CreateSnapshot") => What::CreateSnapshot {
            snapshot: need(resp.get("snapshotId").as_str().map(String::from), "responseElements.snapshotId")?,
            volume: need(req.get("volumeId").as_str().map(String::from), "requestParameters.volumeId")?,
        },
        ("ec2.amazonaws.com", "CopySnapshot") => What::CopySnapshot {
            snapshot: need(resp.get("snapshotId").as_str().map(String::from), "responseElements.snapshotId")?,
            source: need(req.get("sourceSnapshotId").as_str().map(String::from), "requestParameters.sourceSnapshotId")?,
            key: req.get("kmsKeyId").as_str().map(key_id_of),
        },
        ("ec2.amazonaws.com", "DeleteSnapshot") => What::DeleteSnapshot {
            snapshot: need(req.get("snapshotId").as_str().map(String::from), "requestParameters.snapshotId")?,
        },
        ("ec2.amazonaws.com", "RegisterImage") => What::RegisterImage {
            image: need(resp.get("imageId").as_str().map(String::from), "responseElements.imageId")?,
            snapshots: mapping_items(req.get("blockDeviceMapping"), "snapshotId"),
        },
        ("ec2.amazonaws.com", "DeregisterImage") => What::DeregisterImage {
            image: need(req.get("imageId").as_str().map(String::from), "requestParameters.imageId")?,
        },
        ("ec2.amazonaws.com", "RunInstances") if req.get("imageId").is_string() && raw.error_code.is_none() => {
            let item = resp.get("instancesSet").get("items").get(0);
            let group = req.get("tagSpecificationSet").get("items").as_array().and_then(|items| {
                items.iter().flat_map(|i| i.get("tags").as_array().into_iter().flatten()).find_map(|t| {
                    (t.get("key").as_str() == Some("aws:autoscaling:groupName"))
                        .then(|| t.get("value").as_str().map(String::from))
                        .flatten()
                })
            });
            What::Launch {
                instance: need(item.get("instanceId").as_str().map(String::from), "an instance ID")?,
                image: need(req.get("imageId").as_str().map(String::from), "requestParameters.imageId")?,
                volumes: mapping_items(item.get("blockDeviceMapping"), "volumeId"),
                group,
            }
        }
        ("autoscaling.amazonaws.com", "CreateAutoScalingGroup") => What::CreateGroup {
            group: need(req.get("autoScalingGroupName").as_str().map(String::from), "autoScalingGroupName")?,
            image: req.get("launchTemplate").get("imageId").as_str().map(String::from),
            max: req.get("maxSize").as_u64().and_then(|m| u32::try_from(m).ok()),
            desired: req
                .get("desiredCapacity")
                .as_u64()
                .or(req.get("minSize").as_u64())
                .and_then(|d| u32::try_from(d).ok())
                .unwrap_or(0),
        },
        ("autoscaling.amazonaws.com", "SetDesiredCapacity" | "UpdateAutoScalingGroup")
            if req.get("desiredCapacity").is_u64() =>
        {
            What::SetDesired {
                group: need(req.get("autoScalingGroupName").as_str().map(String::from), "autoScalingGroupName")?,
                desired: req
                    .get("desiredCapacity")
                    .as_u64()
                    .and_then(|d| u32::try_from(d).ok())
                    .ok_or_else(|| format!("{name} with a desiredCapacity beyond 32 bits"))?,
            }
        }
        ("ec2.amazonaws.com", "AttachVolume") => What::Attach {
            volume: need(req.get("volumeId").as_str().map(String::from), "requestParameters.volumeId")?,
            instance: need(req.get("instanceId").as_str().map(String::from), "requestParameters.instanceId")?,
        },
        ("ec2.amazonaws.com", "DetachVolume") => What::Detach {
            volume: need(req.get("volumeId").as_str().map(String::from), "requestParameters.volumeId")?,
            instance: resp.get("instanceId").as_str().or(req.get("instanceId").as_str()).map(String::from),
        },
        (
            "ec2.amazonaws.com",
            "RunInstances" | "StopInstances" | "StartInstances" | "RebootInstances" | "TerminateInstances",
        ) => {
            let id = instance_of_items(resp).or_else(|| instance_of_items(req));
            let action = match name {
                "RunInstances" => "RunInstances",
                "StopInstances" if req.get("hibernate").as_bool() == Some(true) => "Hibernate",
                "StopInstances" => "StopInstances",
                "StartInstances" => "StartInstances",
                "RebootInstances" => "RebootInstances",
                _ => "TerminateInstances",
            };
            let by_group = identity.get("invokedBy").as_str() == Some("autoscaling.amazonaws.com");
            What::Instance { action, id: need(id, "an instance ID")?, by_group }
        }
        _ => return Ok(None),
    }))
}

/// The `ebs.<field>` of each item of a block-device mapping list (`{"items": [...]}`).
fn mapping_items(mapping: &Value, field: &str) -> Vec<String> {
    mapping
        .get("items")
        .as_array()
        .map(|items| items.iter().filter_map(|m| m.get("ebs").get(field).as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// For each id, its shortest prefix of at least 8 characters that no other id begins with (the
/// whole id when it is a prefix of another): readable names that never merge two ids.
fn short_names<'a>(ids: impl Iterator<Item = &'a str>) -> BTreeMap<&'a str, String> {
    let ids: BTreeSet<&str> = ids.collect();
    let prefix = |id: &str, n: usize| -> String { id.chars().take(n).collect() };
    ids.iter()
        .map(|&id| {
            let len = id.chars().count();
            let n = (8..=len)
                .find(|&n| {
                    let p = prefix(id, n);
                    ids.iter().all(|&other| other == id || !other.starts_with(p.as_str()))
                })
                .unwrap_or(len);
            (id, prefix(id, n))
        })
        .collect()
}

/// Whether an AttachVolume of `volume` to `instance` follows within a minute of `t` (EC2's
/// records of one attach may come in either order).
fn attach_follows(later: &[Event], volume: &str, instance: &str, t: jiff::Timestamp) -> bool {
    later
        .iter()
        .take_while(|e| e.time.as_millisecond() - t.as_millisecond() <= 60_000)
        .any(|e| matches!(&e.what, What::Attach { volume: v, instance: i } if v == volume && i == instance))
}

/// A line of the scenario's header: a comment, whatever the text it quotes holds (a newline in
/// an id from the input must not end it).
fn comment(out: &mut String, text: &str) {
    out.push_str("// ");
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('\n');
}

/// RON string literal.
fn q(s: &str) -> String {
    format!("{s:?}")
}

fn offset(start: jiff::Timestamp, t: jiff::Timestamp) -> String {
    let ms = u64::try_from((t.as_millisecond() - start.as_millisecond()).max(0)).unwrap_or(0);
    SimDuration::from_ms(ms).to_string()
}

impl Trail {
    /// The scenario, as RON text. `files` names the inputs in its header.
    pub fn scenario(mut self, files: &[String], horizon_after: SimDuration) -> Result<String, NothingToImport> {
        if self.events.is_empty() {
            return Err(NothingToImport { records: self.records });
        }
        // Stable: events at the same second keep their order in the logs.
        self.events.sort_by_key(|e| e.time);
        // A revoked or retired grant: EC2's for a volume is replayed; another changes nothing
        // kmsim models, and is listed as such.
        let grants = std::mem::take(&mut self.volume_grants);
        let unknown = &mut self.unknown;
        self.events.retain_mut(|e| {
            let What::RevokeGrantId { grant, .. } = &e.what else { return true };
            match grants.get(grant) {
                Some((key, volume)) => {
                    e.what = What::RevokeGrant { key: key.clone(), volume: volume.clone() };
                    true
                }
                None => {
                    *unknown
                        .entry("RevokeGrant or RetireGrant of a grant not made by EC2 for a volume".into())
                        .or_default() += 1;
                    false
                }
            }
        });
        if self.events.is_empty() {
            return Err(NothingToImport { records: self.records });
        }
        let start = self.events[0].time;
        let last = self.events.last().expect("not empty").time;
        let mut replay = GroupReplay::new(&self.events, start);
        let by_group = |id: &str| replay.place_of.contains_key(id);

        // Keys, by key ID, in order of appearance; their origin from the import events.
        let mut keys: Vec<(String, bool)> = Vec::new();
        let key_index =
            |keys: &mut Vec<(String, bool)>, id: &str, external: bool| match keys.iter().position(|(k, _)| k == id) {
                Some(i) => {
                    keys[i].1 |= external;
                    i
                }
                None => {
                    keys.push((id.to_string(), external));
                    keys.len() - 1
                }
            };
        // Keys whose origin an event shows (CreateKey, or an import, deletion or expiry of
        // material); the others are AWS_KMS unless the user says otherwise.
        let mut origin_known: BTreeSet<String> = BTreeSet::new();
        // In the order the trail names them, each found by name in a map: a trail names
        // hundreds of thousands of volumes.
        let mut volumes: Vec<(String, Option<String>, Option<u64>)> = Vec::new();
        let mut volume_at: BTreeMap<String, usize> = BTreeMap::new();
        let slot = |volumes: &mut Vec<(String, Option<String>, Option<u64>)>,
                    volume_at: &mut BTreeMap<String, usize>,
                    v: &str| {
            *volume_at.entry(v.to_string()).or_insert_with(|| {
                volumes.push((v.to_string(), None, None));
                volumes.len() - 1
            })
        };
        // Snapshots, in order of appearance: a copy's source must come before it. The
        // `aws:ebs:id` of a copy's data key is the copy's own id, not a volume's.
        // Found by name in sets, as volumes are: a trail names thousands of snapshots.
        let mut snapshots: Vec<(String, What)> = Vec::new();
        let mut snapshot_ids: BTreeSet<String> = BTreeSet::new();
        for e in &self.events {
            if let What::CreateSnapshot { snapshot, .. } | What::CopySnapshot { snapshot, .. } = &e.what
                && snapshot_ids.insert(snapshot.clone())
            {
                snapshots.push((snapshot.clone(), e.what.clone()));
            }
        }
        let is_snapshot = |id: &str| snapshot_ids.contains(id);
        // Volumes a launch from an image made: the launch makes them again.
        let mut launched_volumes: BTreeSet<String> = BTreeSet::new();
        for e in &self.events {
            if let What::Launch { volumes, .. } = &e.what {
                launched_volumes.extend(volumes.iter().cloned());
            }
        }
        // The other services' resources, in order of appearance: kind, key, bucket key.
        let mut resources: Vec<(String, Kind, Option<String>, bool)> = Vec::new();
        let mut resource_at: BTreeMap<String, usize> = BTreeMap::new();
        // When each was created, if the trail shows it.
        let mut resource_created: BTreeMap<String, jiff::Timestamp> = BTreeMap::new();
        let mut instances: Vec<String> = Vec::new();
        let mut instance_seen: BTreeSet<String> = BTreeSet::new();
        let mut add_instance = |instances: &mut Vec<String>, id: &str| {
            if instance_seen.insert(id.to_string()) {
                instances.push(id.to_string());
            }
        };
        for e in &self.events {
            match &e.what {
                What::Import { key, .. }
                | What::DeleteMaterial { key, .. }
                | What::Rotate { key }
                | What::Expired { key } => {
                    key_index(&mut keys, key, true);
                    origin_known.insert(key.clone());
                }
                What::Created { key, external, .. } => {
                    key_index(&mut keys, key, *external);
                    origin_known.insert(key.clone());
                }
                What::Enable { key }
                | What::Disable { key }
                | What::Schedule { key, .. }
                | What::Cancel { key }
                | What::KeyDeleted { key }
                | What::CopySnapshot { key: Some(key), .. } => {
                    key_index(&mut keys, key, false);
                }
                What::KeyUse { key, volume, instance, resource, .. } => {
                    key_index(&mut keys, key, false);
                    if let Some((kind, id)) = resource {
                        let i = *resource_at.entry(id.clone()).or_insert_with(|| {
                            resources.push((id.clone(), *kind, None, false));
                            resources.len() - 1
                        });
                        resources[i].2.get_or_insert_with(|| key.clone());
                    }
                    if let Some(v) = volume.as_ref().filter(|v| !is_snapshot(v) && !launched_volumes.contains(*v)) {
                        let i = slot(&mut volumes, &mut volume_at, v);
                        volumes[i].1 = volumes[i].1.take().or(Some(key.clone()));
                    }
                    if let Some(i) = instance.as_deref().filter(|i| !by_group(i)) {
                        add_instance(&mut instances, i);
                    }
                }
                What::RevokeGrant { key, volume } => {
                    key_index(&mut keys, key, false);
                    slot(&mut volumes, &mut volume_at, volume);
                }
                What::CreateVolume { volume, key, size, .. } => {
                    key_index(&mut keys, key, false);
                    let i = slot(&mut volumes, &mut volume_at, volume);
                    volumes[i].1 = Some(key.clone());
                    volumes[i].2 = *size;
                }
                What::Attach { volume, instance } => {
                    if !by_group(instance) {
                        add_instance(&mut instances, instance);
                    }
                    slot(&mut volumes, &mut volume_at, volume);
                }
                What::Launch { instance: id, .. } | What::Instance { id, .. } if !by_group(id) => {
                    add_instance(&mut instances, id);
                }
                What::CreateResource { kind, id, key, bucket_key } => {
                    resource_created.entry(id.clone()).or_insert(e.time);
                    key_index(&mut keys, key, false);
                    let i = *resource_at.entry(id.clone()).or_insert_with(|| {
                        resources.push((id.clone(), *kind, None, false));
                        resources.len() - 1
                    });
                    resources[i].2 = Some(key.clone());
                    resources[i].3 |= *bucket_key;
                }
                What::Detach { volume, instance: Some(i) } => {
                    if !by_group(i) {
                        add_instance(&mut instances, i);
                    }
                    slot(&mut volumes, &mut volume_at, volume);
                }
                What::Detach { .. }
                | What::RevokeGrantId { .. }
                | What::CreateSnapshot { .. }
                | What::CopySnapshot { .. }
                | What::DeleteSnapshot { .. }
                | What::RegisterImage { .. }
                | What::DeregisterImage { .. }
                | What::Launch { .. }
                | What::Instance { .. }
                | What::CreateGroup { .. }
                | What::SetDesired { .. }
                | What::ResourceAction { .. } => {}
            }
        }
        // Where the trail cannot tell a key's origin, the user may; else it is said, not guessed.
        let mut unknown_origin: Vec<(String, bool)> = Vec::new();
        for (id, external) in &mut keys {
            if !origin_known.contains(id.as_str()) {
                let stated = self.external.contains(id.as_str());
                *external |= stated;
                unknown_origin.push((id.clone(), stated));
            }
        }
        let key_names = short_names(keys.iter().map(|(id, _)| id.as_str()));
        let material_ids = self.events.iter().filter_map(|e| match &e.what {
            What::Import { material, .. } | What::DeleteMaterial { material: Some(material), .. } => {
                Some(material.as_str())
            }
            _ => None,
        });
        let material_names = short_names(material_ids);
        let key_name = |id: &str| format!("key-{}", key_names.get(id).map_or(id, String::as_str));
        let material_name = |m: &str| format!("m-{}", material_names.get(m).map_or(m, String::as_str));
        let mut notes: Vec<String> = Vec::new();
        if !resources.is_empty() && self.records > 0 {
            notes.push(
                "the other services' resources are created when the trail shows them created (else at 0s); their requests are data events a trail does \
                 not log, except GetSecretValue and the Decrypt calls S3 and Lambda make for a request (replayed \
                 as requests); DynamoDB's refreshes and the services' checks of their key are made again by kmsim"
                    .to_string(),
            );
        }
        for (id, stated) in &unknown_origin {
            if *stated {
                notes.push(format!("key {}: imported material, as --external says", key_name(id)));
            } else {
                notes.push(format!(
                    "key {}: the trail does not show where its material comes from (no CreateKey, and no import, \
                     deletion or expiry of material): taken as AWS_KMS, whose material cannot be deleted; if it has \
                     imported material, import again with --external {id}",
                    key_name(id)
                ));
            }
        }

        let mut timeline: Vec<String> = Vec::new();
        let at = |t: jiff::Timestamp| offset(start, t);
        // An imported key whose first event in the trail is not an import had its material before.
        let mut before_trail: BTreeSet<String> = BTreeSet::new();
        for (id, external) in &keys {
            if !external {
                continue;
            }
            let first = self.events.iter().find(|e| match &e.what {
                // A successful data-key call for a volume needs the material; a refused one, or
                // GetParametersForImport, does not. A key made in the input had none before.
                What::Import { key, .. }
                | What::Created { key, listed: true, .. }
                | What::DeleteMaterial { key, .. }
                | What::Rotate { key }
                | What::Expired { key }
                | What::KeyUse { key, volume: Some(_), ok: true, .. }
                | What::KeyUse { key, resource: Some(_), ok: true, .. }
                | What::Enable { key }
                | What::Disable { key }
                | What::Schedule { key, .. } => key == id,
                _ => false,
            });
            if let Some(Event { what: What::Import { .. } | What::Created { listed: true, .. }, .. }) = first {
                continue;
            }
            let material = self.events.iter().find_map(|e| match &e.what {
                What::Import { key, material, .. } | What::DeleteMaterial { key, material: Some(material) }
                    if key == id =>
                {
                    Some(material.clone())
                }
                _ => None,
            });
            before_trail.insert(id.clone());
            let m = material.map_or_else(|| "m-before-trail".to_string(), |m| material_name(&m));
            notes.push(format!("key {} had material before the trail began: imported at 0s as {m}", key_name(id)));
            timeline.push(format!(
                "At(\"0s\", ImportKeyMaterial(key: {}, material: {}, expires: Never)),",
                q(&key_name(id)),
                q(&m)
            ));
        }
        let mut created: BTreeSet<String> = BTreeSet::new();
        for e in &self.events {
            if let What::CreateVolume { volume, .. } = &e.what {
                created.insert(volume.clone());
            }
        }
        for (v, key, _) in &volumes {
            if key.is_some() && !created.contains(v) {
                notes.push(format!("volume {v} existed before the trail began: created at 0s"));
                timeline.push(format!("At(\"0s\", CreateVolume(volume: {})),", q(v)));
            }
        }
        // A volume whose first attachment event is a detach was attached before the trail began,
        // to the instance the detach names.
        let shown = self.shown();
        let mut attached_before: Vec<(&str, &str)> = Vec::new();
        for (v, first) in &shown.attachments {
            let First::Detach(instance) = first else { continue };
            let known = volume_at.get(v.as_str()).is_some_and(|&x| volumes[x].1.is_some());
            match instance.as_deref() {
                // Left out (its key unknown) or replayed with its group: said there.
                Some(i) if !known || by_group(i) => {}
                Some(i) => {
                    notes.push(format!(
                        "volume {v}: the trail's first event for it detaches it from {i}: attached to it at 0s"
                    ));
                    timeline.push(format!("At(\"0s\", AttachVolume(volume: {}, instance: {})),", q(v), q(i)));
                    attached_before.push((v, i));
                }
                None => notes.push(format!(
                    "volume {v}: the trail detaches it first, but does not tell from what instance: it is \
                     not attached before the trail"
                )),
            }
        }
        // Snapshots whose volume or source the scenario has (else left out, with their events),
        // and the volumes restored from one of them.
        let mut kept_snapshots: Vec<&(String, What)> = Vec::new();
        let mut kept_ids: BTreeSet<&str> = BTreeSet::new();
        for snap in &snapshots {
            let source_known = match &snap.1 {
                What::CreateSnapshot { volume, .. } => volume_at.get(volume).is_some_and(|&i| volumes[i].1.is_some()),
                What::CopySnapshot { source, .. } => kept_ids.contains(source.as_str()),
                _ => false,
            };
            if source_known {
                kept_ids.insert(&snap.0);
                kept_snapshots.push(snap);
            } else {
                notes.push(format!(
                    "snapshot {}: its volume or source snapshot is not in the scenario (made before the trail \
                     began, or not encrypted): left out, with its events",
                    snap.0
                ));
            }
        }
        let kept = |id: &str| kept_ids.contains(id);
        // Images whose every snapshot the scenario has, and the instances launched from them.
        let mut images: Vec<(&str, &[String])> = Vec::new();
        let mut image_ids: BTreeSet<&str> = BTreeSet::new();
        let mut images_seen: BTreeSet<&str> = BTreeSet::new();
        for e in &self.events {
            if let What::RegisterImage { image, snapshots } = &e.what
                && images_seen.insert(image)
            {
                if !snapshots.is_empty() && snapshots.iter().all(|x| kept(x)) {
                    image_ids.insert(image);
                    images.push((image, snapshots));
                } else {
                    notes.push(format!(
                        "image {image}: a snapshot of it is not in the scenario: left out, with its launches"
                    ));
                }
            }
        }
        let kept_image = |id: &str| image_ids.contains(id);
        let mut launched_from: BTreeMap<&str, &str> = BTreeMap::new();
        for e in &self.events {
            if let What::Launch { instance, image, .. } = &e.what
                && kept_image(image)
            {
                launched_from.entry(instance).or_insert(image);
            }
        }
        let mut restored: BTreeMap<&str, &str> = BTreeMap::new();
        for e in &self.events {
            if let What::CreateVolume { volume, snapshot: Some(x), .. } = &e.what {
                if kept(x) {
                    restored.insert(volume.as_str(), x.as_str());
                } else {
                    notes.push(format!(
                        "volume {volume}: restored from {x}, which is not in the scenario: created empty under its key"
                    ));
                }
            }
        }
        let mut deletion_lag: Option<SimDuration> = None;
        let mut scheduled: BTreeMap<String, jiff::Timestamp> = BTreeMap::new();
        let keyless: BTreeSet<&str> =
            volumes.iter().filter(|(_, key, _)| key.is_none()).map(|(v, _, _)| v.as_str()).collect();
        let mut keyless_events: BTreeMap<&str, usize> = BTreeMap::new();
        // Keys with material so far: those that had it before the trail, then each import.
        let mut has_material: BTreeSet<String> = before_trail;
        let mut key_materials: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for e in &self.events {
            if let What::Import { key, material, .. } | What::DeleteMaterial { key, material: Some(material) } = &e.what
            {
                key_materials.entry(key.as_str()).or_default().insert(material.as_str());
            }
        }
        let materials_of = |id: &str| key_materials.get(id).map_or(0, BTreeSet::len);
        // Attachments as the trail shows them, to tell EC2's Decrypt for a volume no attach names
        // (a launch with block-device mappings, or an attach whose EC2 record is missing).
        let mut attached: BTreeMap<&str, &str> = attached_before.into_iter().collect();
        let mut launched: BTreeSet<&str> = BTreeSet::new();
        // Groups whose image the scenario has; the others are left out with their places.
        for g in &mut replay.groups {
            g.kept = kept_image(&g.image);
            if !g.kept {
                notes.push(format!(
                    "auto scaling group {}: its image {} is not in the scenario: left out, with its instances' events",
                    g.name, g.image
                ));
            }
        }
        let kept_group = |name: &str| replay.groups.iter().any(|g| g.kept && g.name == name);
        for g in replay.groups.iter().filter(|g| g.kept) {
            notes.push(format!(
                "auto scaling group {}: replayed from its creation, its desired capacities and auto scaling's terminations \
                 (a health check's as TerminateInstanceInAutoScalingGroup); its instances are named by their place, \
                 {}-i0 to {}-i{}; its cooldown {}",
                g.name,
                g.name,
                g.name,
                g.max.saturating_sub(1),
                g.cooldown.map_or("is not seen (no launch failed and was tried again): AWS's default, 300s".to_string(), |c| format!("{c}, the shortest wait seen after a failed launch"))
            ));
        }
        for (n, e) in self.events.iter().enumerate() {
            let t = at(e.time);
            if replay.skip.contains(&n) {
                continue;
            }
            let names_dropped = match &e.what {
                What::Attach { instance, .. } | What::Launch { instance, .. } | What::Instance { id: instance, .. } => {
                    replay.dropped(instance)
                }
                What::KeyUse { instance: Some(i), .. } => replay.dropped(i),
                What::CreateGroup { group, .. } | What::SetDesired { group, .. } => !kept_group(group),
                _ => false,
            };
            if names_dropped {
                continue;
            }
            if let Some(line) = replay.lines.get(&n) {
                timeline.push(format!("At({}, {line}),", q(&t)));
                continue;
            }
            let line = match &e.what {
                // A volume whose key no event names is left out, and so are its events: a
                // scenario that named it would not be valid.
                What::CreateVolume { volume, .. } | What::Attach { volume, .. } | What::Detach { volume, .. }
                    if keyless.contains(volume.as_str()) =>
                {
                    *keyless_events.entry(volume.as_str()).or_default() += 1;
                    None
                }
                What::KeyUse { volume: Some(v), instance: Some(i), ok, by_instance: true, .. }
                    if attached.get(v.as_str()) != Some(&i.as_str())
                        && !keyless.contains(v.as_str())
                        && !launched_volumes.contains(v.as_str())
                        && !is_snapshot(v)
                        && !attach_follows(&self.events[n + 1..], v, i, e.time) =>
                {
                    if *ok {
                        attached.insert(v, i);
                    }
                    if launched.insert(v) {
                        let did = if *ok { "decrypted its key" } else { "was refused a grant of its key" };
                        notes.push(format!(
                            "volume {v}: EC2 {did} for {i} with no AttachVolume in the trail (a launch \
                             with block-device mappings, or an attach not logged): replayed as an attach"
                        ));
                    }
                    Some(format!("AttachVolume(volume: {}, instance: {})", q(v), q(replay.name(i))))
                }
                What::Attach { volume, instance } => {
                    attached.insert(volume, instance);
                    Some(format!("AttachVolume(volume: {}, instance: {})", q(volume), q(replay.name(instance))))
                }
                What::CreateGroup { group, desired, .. } => {
                    let at_start = replay.groups.iter().any(|g| &g.name == group && g.at_start);
                    (!at_start).then(|| format!("SetDesiredCapacity(group: {}, desired: {desired})", q(group)))
                }
                What::SetDesired { group, desired } => {
                    Some(format!("SetDesiredCapacity(group: {}, desired: {desired})", q(group)))
                }
                What::RevokeGrant { key, volume } => {
                    Some(format!("RevokeGrant(key: {}, grant: {})", q(&key_name(key)), q(volume)))
                }
                What::Detach { volume, .. } => {
                    attached.remove(volume.as_str());
                    Some(format!("DetachVolume(volume: {})", q(volume)))
                }
                What::Import { key, material, valid_to, new } => {
                    let expires = match valid_to {
                        Some(v) => format!("At({})", q(&v.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())),
                        None => "Never".to_string(),
                    };
                    // New material for a key that has some is a rotation's; AWS's default
                    // covers a first import and every reimport.
                    let had = !has_material.insert(key.clone());
                    let rotation = if *new && had { ", import_type: New" } else { "" };
                    Some(format!(
                        "ImportKeyMaterial(key: {}, material: {}, expires: {expires}{rotation})",
                        q(&key_name(key)),
                        q(&material_name(material))
                    ))
                }
                What::DeleteMaterial { key, material } => {
                    // Which material, once the key has several.
                    let which = match material {
                        Some(m) if materials_of(key) > 1 => format!(", material: {}", q(&material_name(m))),
                        _ => String::new(),
                    };
                    Some(format!("DeleteImportedKeyMaterial(key: {}{which})", q(&key_name(key))))
                }
                What::Rotate { key } => Some(format!("RotateKeyOnDemand(key: {})", q(&key_name(key)))),
                What::Enable { key } => Some(format!("EnableKey(key: {})", q(&key_name(key)))),
                What::Disable { key } => Some(format!("DisableKey(key: {})", q(&key_name(key)))),
                What::Schedule { key, days, deletion } => {
                    if let Some(d) = deletion {
                        scheduled.insert(key.clone(), *d);
                    }
                    Some(format!("ScheduleKeyDeletion(key: {}, pending_window_days: {days})", q(&key_name(key))))
                }
                What::Cancel { key } => Some(format!("CancelKeyDeletion(key: {})", q(&key_name(key)))),
                What::KeyDeleted { key } => {
                    if let Some(d) = scheduled.get(key) {
                        let lag = u64::try_from(e.time.as_millisecond() - d.as_millisecond()).unwrap_or(0);
                        deletion_lag = Some(SimDuration::from_ms(lag));
                    }
                    None
                }
                What::CreateVolume { volume, .. } => Some(format!("CreateVolume(volume: {})", q(volume))),
                What::CreateSnapshot { snapshot, .. } if kept(snapshot) => {
                    Some(format!("CreateSnapshot(snapshot: {})", q(snapshot)))
                }
                What::CopySnapshot { snapshot, .. } if kept(snapshot) => {
                    Some(format!("CopySnapshot(snapshot: {})", q(snapshot)))
                }
                What::DeleteSnapshot { snapshot } if kept(snapshot) => {
                    Some(format!("DeleteSnapshot(snapshot: {})", q(snapshot)))
                }
                What::RegisterImage { image, .. } if kept_image(image) => {
                    Some(format!("RegisterImage(image: {})", q(image)))
                }
                What::DeregisterImage { image } if kept_image(image) => {
                    Some(format!("DeregisterImage(image: {})", q(image)))
                }
                What::Launch { instance, image, .. } if launched_from.get(instance.as_str()) == Some(&image.as_str()) => {
                    Some(format!("RunInstances(instance: {})", q(instance)))
                }
                What::Instance { action, id, .. } => match *action {
                    "StopInstances" | "StartInstances" | "RebootInstances" | "TerminateInstances" => {
                        Some(format!("{action}(instance: {})", q(replay.name(id))))
                    }
                    "Hibernate" => Some(format!("StopInstances(instance: {}, hibernate: true)", q(replay.name(id)))),
                    _ => None,
                },
                What::ResourceAction { id, action } if resource_at.contains_key(id) => {
                    Some(format!("{action}(resource: {})", q(id)))
                }
                // A request S3 or Lambda decrypted for (the others' decrypts kmsim makes again).
                What::KeyUse { resource: Some((Kind::S3 | Kind::Lambda, id)), decrypt: true, .. } => {
                    Some(format!("Request(resource: {})", q(id)))
                }
                What::Expired { .. }
                | What::RevokeGrantId { .. }
                | What::KeyUse { .. }
                | What::Created { .. }
                | What::CreateResource { .. }
                | What::ResourceAction { .. }
                // A snapshot or image left out (its source is not in the scenario), with its events.
                | What::CreateSnapshot { .. }
                | What::CopySnapshot { .. }
                | What::DeleteSnapshot { .. }
                | What::RegisterImage { .. }
                | What::DeregisterImage { .. }
                | What::Launch { .. } => None,
            };
            if let Some(line) = line {
                timeline.push(format!("At({}, {line}),", q(&t)));
            }
        }
        for (v, key, _) in &volumes {
            if key.is_none() {
                let n = keyless_events.get(v.as_str()).copied().unwrap_or(0);
                notes.push(format!(
                    "volume {v} is attached but no understood event names its key: left out, with its {n} event{}",
                    if n == 1 { "" } else { "s" }
                ));
            }
        }
        // Now: the estate's instant, else the trail's last event.
        let now = self.estate.as_ref().map_or(last, |e| e.now.max(last));
        let horizon = SimDuration::from_ms(u64::try_from(now.as_millisecond() - start.as_millisecond()).unwrap_or(0))
            + horizon_after;
        if self.repeat {
            let until = start + jiff::SignedDuration::from_millis(i64::try_from(horizon.as_ms()).unwrap_or(i64::MAX));
            let skip_instance = |i: &str| by_group(i);
            let skip_volume = |v: &str| keyless.contains(v) || launched_volumes.contains(v) || is_snapshot(v);
            let (lines, said) = repeated(&self.events, now, until, skip_instance, skip_volume);
            notes.extend(said);
            timeline.extend(lines.into_iter().map(|(t, line)| format!("At({}, {line}),", q(&at(t)))));
        }
        let detection = detection_delays(&self.events);
        for (param, d) in &detection {
            notes.push(format!(
                "{param} {d}: the time the trail shows between a change of a key and its service's check of it"
            ));
        }

        // Made once at about its size: a trail's scenario runs to tens of megabytes.
        let lines: usize = timeline.iter().map(|l| l.len() + 9).sum();
        let mut out = String::with_capacity(lines + 100 * volumes.len() + 64 * 1024);
        if let Some(estate) = &self.estate {
            comment(
                &mut out,
                &format!(
                    "The estate at {}, as the AWS CLI printed it, imported by `kmsim import-estate`: {}",
                    estate.now,
                    estate.files.join(", ")
                ),
            );
            let _ = writeln!(
                out,
                "// {} documents read. Made a second before `now`: the keys and their materials, then every resource \
                 (in the order AWS made them) and attachment; at `now`, each key is put in its state.",
                estate.documents
            );
            for line in &estate.lines {
                comment(&mut out, &format!("{line}."));
            }
            notes.extend(estate.notes.iter().cloned());
        }
        if self.records > 0 || self.estate.is_none() {
            comment(&mut out, &format!("Imported from CloudTrail by `kmsim import-cloudtrail`: {}", files.join(", ")));
            let _ = writeln!(
                out,
                "// {} records read; {} duplicates of understood events removed (same eventID); {} out of order, sorted by eventTime.",
                self.records, self.duplicates, self.out_of_order
            );
            let _ = writeln!(
                out,
                "// {} events understood; {} calls AWS services made for the user are not replayed (kmsim makes them again).",
                self.events.len() - self.estate.as_ref().map_or(0, |e| e.events),
                self.service_calls
            );
        }
        if !self.failed.is_empty() {
            let list: Vec<String> = self.failed.iter().map(|(n, c)| format!("{n} x{c}")).collect();
            comment(&mut out, &format!("Failed calls, not replayed (they changed nothing): {}.", list.join(", ")));
        }
        let unknown: u64 = self.unknown.values().sum();
        if self.records > 0 && unknown > 0 {
            let list: Vec<String> = self.unknown.iter().map(|(n, c)| format!("{n} x{c}")).collect();
            comment(&mut out, &format!("{unknown} events not understood, left out: {}.", list.join(", ")));
        } else if self.records > 0 {
            comment(&mut out, "Every event was understood.");
        }
        for n in &notes {
            comment(&mut out, &format!("Note: {n}."));
        }
        let _ = writeln!(out, "Scenario(");
        let _ = writeln!(out, "    version: 1,");
        let name = match (&self.estate, self.records) {
            (Some(e), 0) => format!("The estate at {}", e.now),
            (Some(e), _) => format!("Imported from CloudTrail: {start} to {last}, and the estate at {}", e.now),
            (None, _) => format!("Imported from CloudTrail: {start} to {last}"),
        };
        let _ = writeln!(out, "    name: {},", q(&name));
        let _ = writeln!(out, "    start: {},", q(&start.strftime("%Y-%m-%dT%H:%M:%S%.fZ").to_string()));
        let _ = writeln!(out, "    horizon: {},", q(&horizon.to_string()));
        let _ = writeln!(out, "    now: {},", q(&offset(start, now)));
        let _ = writeln!(out, "    seed: 1,");
        if let Some(a) = &self.account {
            let _ = writeln!(out, "    account: {},", q(a));
        }
        if let Some(r) = &self.region {
            let _ = writeln!(out, "    region: {},", q(r));
        }
        if let Some(u) = &self.user {
            let _ = writeln!(out, "    user: {},", q(u));
        }
        let mut parameters: Vec<String> = Vec::new();
        if let Some(lag) = deletion_lag {
            parameters.push(format!("key_deletion_lag: {}", q(&lag.to_string())));
        }
        parameters.extend(detection.iter().map(|(param, d)| format!("{param}: {}", q(&d.to_string()))));
        if !parameters.is_empty() {
            let _ = writeln!(out, "    parameters: ({}),", parameters.join(", "));
        }
        let _ = writeln!(out, "    keys: [");
        for (id, external) in &keys {
            let origin = if *external { "External" } else { "AwsKms" };
            let aliases = match self.aliases.get(id.as_str()) {
                Some(list) => format!(", aliases: [{}]", list.iter().map(|a| q(a)).collect::<Vec<_>>().join(", ")),
                None => String::new(),
            };
            let _ =
                writeln!(out, "        Key(id: {}, origin: {origin}, key_id: {}{aliases}),", q(&key_name(id)), q(id));
        }
        let _ = writeln!(out, "    ],");
        let instance_decl = |i: &String| match launched_from.get(i.as_str()) {
            Some(image) => format!("Instance(id: {}, image: {})", q(i), q(image)),
            None => format!("Instance(id: {})", q(i)),
        };
        let _ =
            writeln!(out, "    instances: [{}],", instances.iter().map(instance_decl).collect::<Vec<_>>().join(", "));
        let _ = writeln!(out, "    volumes: [");
        for (v, key, size) in &volumes {
            let Some(key) = key else { continue };
            let size = size.map_or(String::new(), |s| format!(", size_gib: {s}"));
            let from = restored.get(v.as_str()).map_or(String::new(), |x| format!(", snapshot: {}", q(x)));
            let _ = writeln!(out, "        Volume(id: {}, key: {}{size}{from}),", q(v), q(&key_name(key)));
        }
        let _ = writeln!(out, "    ],");
        if !kept_snapshots.is_empty() {
            let _ = writeln!(out, "    snapshots: [");
            for (id, made) in &kept_snapshots {
                let from = match made {
                    What::CreateSnapshot { volume, .. } => format!("volume: {}", q(volume)),
                    What::CopySnapshot { source, key: Some(k), .. } => {
                        format!("copy_of: {}, key: {}", q(source), q(&key_name(k)))
                    }
                    What::CopySnapshot { source, .. } => format!("copy_of: {}", q(source)),
                    _ => unreachable!("snapshots are made by CreateSnapshot or CopySnapshot"),
                };
                let _ = writeln!(out, "        Snapshot(id: {}, {from}),", q(id));
            }
            let _ = writeln!(out, "    ],");
        }
        if !images.is_empty() {
            let _ = writeln!(out, "    images: [");
            for (id, snapshots) in &images {
                let list: Vec<String> = snapshots.iter().map(|x| q(x)).collect();
                let _ = writeln!(out, "        Image(id: {}, snapshots: [{}]),", q(id), list.join(", "));
            }
            let _ = writeln!(out, "    ],");
        }
        let groups: Vec<&ImportedGroup> = replay.groups.iter().filter(|g| g.kept).collect();
        if !groups.is_empty() {
            let _ = writeln!(out, "    groups: [");
            for g in groups {
                let desired = if g.at_start { g.desired } else { 0 };
                let cooldown = g.cooldown.map_or(String::new(), |c| format!(", cooldown: {}", q(&c.to_string())));
                let _ = writeln!(
                    out,
                    "        Group(id: {}, image: {}, desired: {desired}, max: {}{cooldown}),",
                    q(&g.name),
                    q(&g.image),
                    g.max
                );
            }
            let _ = writeln!(out, "    ],");
        }
        let declared: Vec<&(String, Kind, Option<String>, bool)> = resources.iter().filter(|r| r.2.is_some()).collect();
        if !declared.is_empty() {
            let _ = writeln!(out, "    services: [");
            for (id, kind, key, bucket_key) in declared {
                let key = key.as_deref().expect("filtered");
                let bk = if *bucket_key { ", bucket_key: true" } else { "" };
                let created = match resource_created.get(id.as_str()) {
                    Some(t) if *t > start => format!(", created: {}", q(&offset(start, *t))),
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "        Service(kind: {}, id: {}, key: {}{bk}{created}),",
                    kind.as_str(),
                    q(id),
                    q(&key_name(key))
                );
            }
            let _ = writeln!(out, "    ],");
        }
        let _ = writeln!(out, "    timeline: [");
        for line in timeline {
            let _ = writeln!(out, "        {line}");
        }
        let _ = writeln!(out, "    ],");
        let _ = writeln!(out, ")");
        Ok(out)
    }
}

/// What a resource did again and again in the trail: the instants of each time, and how long it
/// lasted each time it was undone (a start after a stop, an attach after a detach).
#[derive(Default)]
struct Habit {
    at: Vec<jiff::Timestamp>,
    lasted: Vec<i64>,
}

impl Habit {
    /// The mean interval between its instants and the mean time it lasted (at most half the
    /// interval), if it happened at least twice at least a minute apart.
    fn rhythm(&self) -> Option<(i64, Option<i64>)> {
        let (first, last) = (self.at.first()?, self.at.last()?);
        let n = i64::try_from(self.at.len()).ok()?;
        let period = (last.as_millisecond() - first.as_millisecond()) / (n - 1).max(1);
        if n < 2 || period < 60_000 {
            return None;
        }
        let lasted = (!self.lasted.is_empty())
            .then(|| self.lasted.iter().sum::<i64>() / i64::try_from(self.lasted.len()).unwrap_or(1))
            .map(|d| d.min(period / 2));
        Some((period, lasted))
    }
}

/// The restarts and detaches a trail shows at least twice, repeated from `now` to `until` at
/// their mean interval (A16): a stop, then the start after the mean time stopped; a reboot; a
/// detach, then the attach to the instance it was last attached to after the mean time detached.
fn repeated(
    events: &[Event],
    now: jiff::Timestamp,
    until: jiff::Timestamp,
    skip_instance: impl Fn(&str) -> bool,
    skip_volume: impl Fn(&str) -> bool,
) -> (Vec<(jiff::Timestamp, String)>, Vec<String>) {
    /// At most this many repetitions of one habit: a trail's rhythm, not a flood.
    const MAX_REPEATS: i64 = 1000;
    let mut stops: BTreeMap<&str, Habit> = BTreeMap::new();
    let mut reboots: BTreeMap<&str, Habit> = BTreeMap::new();
    let mut detaches: BTreeMap<&str, Habit> = BTreeMap::new();
    let mut home: BTreeMap<&str, &str> = BTreeMap::new();
    let mut undone: BTreeMap<&str, jiff::Timestamp> = BTreeMap::new();
    for e in events {
        let since = |t: &jiff::Timestamp| e.time.as_millisecond() - t.as_millisecond();
        match &e.what {
            What::Instance { action: "StopInstances", id, by_group: false } if !skip_instance(id) => {
                stops.entry(id).or_default().at.push(e.time);
                undone.insert(id, e.time);
            }
            What::Instance { action: "StartInstances", id, by_group: false } => {
                if let (Some(t), Some(h)) = (undone.remove(id.as_str()), stops.get_mut(id.as_str())) {
                    h.lasted.push(since(&t));
                }
            }
            What::Instance { action: "RebootInstances", id, by_group: false } if !skip_instance(id) => {
                reboots.entry(id).or_default().at.push(e.time);
            }
            What::Detach { volume, .. } if !skip_volume(volume) => {
                detaches.entry(volume).or_default().at.push(e.time);
                undone.insert(volume, e.time);
            }
            What::Attach { volume, instance } => {
                home.insert(volume, instance);
                if let (Some(t), Some(h)) = (undone.remove(volume.as_str()), detaches.get_mut(volume.as_str())) {
                    h.lasted.push(since(&t));
                }
            }
            _ => {}
        }
    }
    let mut lines = Vec::new();
    let mut notes = Vec::new();
    let ms = jiff::SignedDuration::from_millis;
    let mut repeat = |habits: &BTreeMap<&str, Habit>, what: &str, does: &dyn Fn(&str) -> (String, Option<String>)| {
        for (id, habit) in habits {
            let Some((period, lasted)) = habit.rhythm() else { continue };
            let last = *habit.at.last().expect("a rhythm has instants");
            let (act, undo) = does(id);
            let mut n = 0;
            let mut t = last + ms(period);
            while t <= until && n < MAX_REPEATS {
                if t > now {
                    lines.push((t, act.clone()));
                    if let (Some(undo), Some(d)) = (&undo, lasted)
                        && t + ms(d) <= until
                    {
                        lines.push((t + ms(d), undo.clone()));
                    }
                    n += 1;
                }
                t += ms(period);
            }
            if n > 0 {
                notes.push(format!(
                    "{what} {id}: {} times in the trail, every {} on average: repeated {n} times after it{}",
                    habit.at.len(),
                    SimDuration::from_ms(u64::try_from(period).unwrap_or(0)),
                    lasted.map_or(String::new(), |d| format!(
                        ", each undone after {}",
                        SimDuration::from_ms(u64::try_from(d).unwrap_or(0))
                    ))
                ));
            }
        }
    };
    repeat(&stops, "instance stopped", &|id| {
        (format!("StopInstances(instance: {})", q(id)), Some(format!("StartInstances(instance: {})", q(id))))
    });
    repeat(&reboots, "instance rebooted", &|id| (format!("RebootInstances(instance: {})", q(id)), None));
    repeat(&detaches, "volume detached", &|id| {
        let attach = home.get(id).map(|i| format!("AttachVolume(volume: {}, instance: {})", q(id), q(i)));
        (format!("DetachVolume(volume: {})", q(id)), attach)
    });
    lines.sort_by_key(|(t, _)| *t);
    (lines, notes)
}

/// The detection delays (D12) and EFS's grace (D11) a trail shows, where they differ from
/// kmsim's defaults: for a resource whose service checks its key after a change (RDS, Aurora,
/// Redshift, EFS), the time from the first change of its key after its previous check to its
/// service's next Decrypt that no reboot, stop, start or restore of it made. The shortest seen,
/// per parameter.
fn detection_delays(events: &[Event]) -> Vec<(&'static str, SimDuration)> {
    let defaults = crate::actors::service::Params::default();
    let param = |kind: Kind| match kind {
        Kind::Rds | Kind::Aurora => Some(("rds_detection", defaults.rds_detection)),
        Kind::Redshift => Some(("redshift_detection", defaults.redshift_detection)),
        Kind::Efs => Some(("efs_grace", defaults.efs_grace)),
        _ => None,
    };
    let acted: BTreeSet<(&str, i64)> = events
        .iter()
        .filter_map(|e| match &e.what {
            What::ResourceAction { id, .. } => Some((id.as_str(), e.time.as_second())),
            _ => None,
        })
        .collect();
    // Per resource, the first change of its key since its service's last check.
    let mut pending: BTreeMap<&str, jiff::Timestamp> = BTreeMap::new();
    let mut watched: BTreeMap<&str, (&str, Kind)> = BTreeMap::new();
    let mut seen: BTreeMap<&'static str, (SimDuration, SimDuration)> = BTreeMap::new();
    for e in events {
        match &e.what {
            What::Import { key, .. }
            | What::DeleteMaterial { key, .. }
            | What::Expired { key }
            | What::Enable { key }
            | What::Disable { key }
            | What::Schedule { key, .. }
            | What::Cancel { key }
            | What::KeyDeleted { key } => {
                for (id, (k, _)) in &watched {
                    if k == key {
                        pending.entry(id).or_insert(e.time);
                    }
                }
            }
            What::KeyUse { key, resource: Some((kind, id)), decrypt: true, .. } if param(*kind).is_some() => {
                watched.entry(id).or_insert((key, *kind));
                if acted.contains(&(id.as_str(), e.time.as_second())) {
                    continue;
                }
                if let (Some(since), Some((name, default))) = (pending.remove(id.as_str()), param(*kind)) {
                    let ms = u64::try_from(e.time.as_millisecond() - since.as_millisecond()).unwrap_or(0);
                    let d = SimDuration::from_ms(ms);
                    if d > SimDuration::ZERO {
                        let entry = seen.entry(name).or_insert((d, default));
                        entry.0 = entry.0.min(d);
                    }
                }
            }
            What::CreateResource { id, key, kind, .. } if param(*kind).is_some() => {
                watched.entry(id).or_insert((key, *kind));
            }
            _ => {}
        }
    }
    seen.into_iter().filter(|(_, (d, default))| d != default).map(|(name, (d, _))| (name, d)).collect()
}

/// The places made ahead for a group's `maxSize` (more are made as launches need them): the
/// scenario's bound on a group.
const MAX_PLACES: u32 = 10_000;

/// An auto scaling group the trail shows created, as the scenario declares it.
#[derive(Debug)]
struct ImportedGroup {
    name: String,
    image: String,
    max: u32,
    /// Its capacity at its creation, and whether that was at the trail's start (declared so)
    /// or later (a SetDesiredCapacity then).
    desired: u32,
    at_start: bool,
    /// The shortest wait seen between a failed launch and the next launch into its place.
    cooldown: Option<SimDuration>,
    /// Whether the scenario has its image, and so the group.
    kept: bool,
}

/// Auto scaling groups read back (A13): the group launches its instances itself, so its
/// launches are not replayed; each launched instance is given a place (see [`Places::pick`]) and
/// is named by it; a termination by auto scaling is a health check's
/// (`TerminateInstanceInAutoScalingGroup`) unless it comes with a lower desired capacity (a
/// scale-in, which SetDesiredCapacity replays).
#[derive(Debug, Default)]
struct GroupReplay {
    groups: Vec<ImportedGroup>,
    /// Each launched instance's group and place.
    place_of: BTreeMap<String, Placed>,
    /// The events the group replays itself.
    skip: BTreeSet<usize>,
    /// Timeline lines for events, by index.
    lines: BTreeMap<usize, String>,
}

/// Where a launched instance stands: its group (an index), its place and the place's name.
#[derive(Debug)]
struct Placed {
    group: usize,
    place: usize,
    name: String,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum PlaceState {
    Empty,
    Live,
    /// Emptied at this instant (ms); `failed`: by a failed launch, else by a health check.
    Waiting {
        at: i64,
        failed: bool,
    },
    /// Terminated by the user: the group does not launch into it again (A13).
    Gone,
}

/// A group's places, indexed by what a launch looks for, so that a trail of millions of
/// launches into thousands of places is read in n log n.
#[derive(Debug, Default)]
struct Places {
    state: Vec<PlaceState>,
    empty: BTreeSet<usize>,
    /// Places waiting for a launch, by (when they were emptied, place).
    checked: BTreeSet<(i64, usize)>,
    failed: BTreeSet<(i64, usize)>,
}

impl Places {
    fn new(n: usize) -> Self {
        Places { state: vec![PlaceState::Empty; n], empty: (0..n).collect(), ..Places::default() }
    }

    fn set(&mut self, p: usize, to: PlaceState) {
        match self.state[p] {
            PlaceState::Empty => self.empty.remove(&p),
            PlaceState::Waiting { at, failed: false } => self.checked.remove(&(at, p)),
            PlaceState::Waiting { at, failed: true } => self.failed.remove(&(at, p)),
            PlaceState::Live | PlaceState::Gone => false,
        };
        match to {
            PlaceState::Empty => self.empty.insert(p),
            PlaceState::Waiting { at, failed: false } => self.checked.insert((at, p)),
            PlaceState::Waiting { at, failed: true } => self.failed.insert((at, p)),
            PlaceState::Live | PlaceState::Gone => false,
        };
        self.state[p] = to;
    }

    /// The place a launch at `now` (ms) fills, and when a failed launch emptied it: at the
    /// group's creation or a scale-out, an empty one; else the place a health check emptied a
    /// minute before (A13's delay, to the second), else the one a failed launch emptied first,
    /// else any emptied one, else an empty one, else a new one.
    fn pick(&mut self, now: i64, scale_out: bool) -> (usize, Option<i64>) {
        if scale_out && let Some(&p) = self.empty.first() {
            return (p, None);
        }
        let due = now - i64::try_from(crate::actors::ec2::REPLACEMENT_DELAY.as_ms()).unwrap_or(0);
        if let Some(&(_, p)) = self.checked.range((due - 1000, 0)..=(due + 1000, usize::MAX)).next() {
            return (p, None);
        }
        if let Some(&(at, p)) = self.failed.first() {
            return (p, Some(at));
        }
        if let Some(&p) = self.checked.first().map(|(_, p)| p).or(self.empty.first()) {
            return (p, None);
        }
        self.state.push(PlaceState::Live);
        (self.state.len() - 1, None)
    }
}

impl GroupReplay {
    fn new(events: &[Event], start: jiff::Timestamp) -> Self {
        let mut replay = GroupReplay::default();
        let mut index: BTreeMap<&str, usize> = BTreeMap::new();
        // When each group was created or set a capacity: a launch then is a scale-out's, a
        // termination then a scale-in's.
        let mut sized: BTreeSet<(&str, jiff::Timestamp)> = BTreeSet::new();
        let mut resized: BTreeSet<(&str, jiff::Timestamp)> = BTreeSet::new();
        for e in events {
            match &e.what {
                What::SetDesired { group, .. } => {
                    sized.insert((group, e.time));
                    resized.insert((group, e.time));
                }
                What::CreateGroup { group, image, max, desired } if !index.contains_key(group.as_str()) => {
                    sized.insert((group, e.time));
                    let image = image.clone().or_else(|| {
                        events.iter().find_map(|l| match &l.what {
                            What::Launch { image, group: Some(g), .. } if g == group => Some(image.clone()),
                            _ => None,
                        })
                    });
                    let Some(image) = image else { continue };
                    index.insert(group, replay.groups.len());
                    replay.groups.push(ImportedGroup {
                        name: group.clone(),
                        image,
                        max: max.unwrap_or(0),
                        desired: *desired,
                        at_start: e.time == start,
                        cooldown: None,
                        kept: true,
                    });
                }
                _ => {}
            }
        }
        if replay.groups.is_empty() {
            return replay;
        }
        // A launch failed when KMS refused a call for one of its volumes before the next launch
        // that names that volume.
        let mut failed: BTreeSet<usize> = BTreeSet::new();
        let mut launch_of: BTreeMap<&str, usize> = BTreeMap::new();
        for (n, e) in events.iter().enumerate() {
            match &e.what {
                What::Launch { volumes, group: Some(_), .. } => {
                    for v in volumes {
                        launch_of.insert(v, n);
                    }
                }
                What::KeyUse { volume: Some(v), ok: false, .. } => {
                    if let Some(&l) = launch_of.get(v.as_str()) {
                        failed.insert(l);
                    }
                }
                _ => {}
            }
        }
        let mut places: Vec<Places> =
            replay.groups.iter().map(|g| Places::new(g.max.min(MAX_PLACES) as usize)).collect();
        for (n, e) in events.iter().enumerate() {
            let now = e.time.as_millisecond();
            match &e.what {
                What::Launch { instance, group: Some(g), .. } => {
                    let Some(&gi) = index.get(g.as_str()) else { continue };
                    let ps = &mut places[gi];
                    let (p, failed_at) = ps.pick(now, sized.contains(&(g.as_str(), e.time)));
                    if let Some(since) = failed_at {
                        let wait = SimDuration::from_ms(u64::try_from(now - since).unwrap_or(0));
                        let c = &mut replay.groups[gi].cooldown;
                        *c = Some(c.map_or(wait, |c| c.min(wait)));
                    }
                    let to = if failed.contains(&n) {
                        PlaceState::Waiting { at: now, failed: true }
                    } else {
                        PlaceState::Live
                    };
                    ps.set(p, to);
                    let placed = Placed { group: gi, place: p, name: format!("{g}-i{p}") };
                    replay.place_of.insert(instance.clone(), placed);
                    replay.skip.insert(n);
                }
                What::Instance { action: "TerminateInstances", id, by_group } => {
                    let Some(&Placed { group: gi, place: p, ref name }) = replay.place_of.get(id) else { continue };
                    if places[gi].state[p] != PlaceState::Live {
                        continue;
                    }
                    let group = &replay.groups[gi].name;
                    if !by_group {
                        places[gi].set(p, PlaceState::Gone);
                    } else if resized.contains(&(group.as_str(), e.time)) {
                        places[gi].set(p, PlaceState::Empty);
                        replay.skip.insert(n);
                    } else {
                        places[gi].set(p, PlaceState::Waiting { at: now, failed: false });
                        let line =
                            format!("TerminateInstanceInAutoScalingGroup(group: {}, instance: {})", q(group), q(name));
                        replay.lines.insert(n, line);
                    }
                }
                _ => {}
            }
        }
        for (g, ps) in replay.groups.iter_mut().zip(&places) {
            g.max = g.max.max(u32::try_from(ps.state.len()).unwrap_or(u32::MAX)).max(g.desired);
        }
        replay
    }

    /// The place an instance the group launched stands in, or the id itself.
    fn name<'a>(&'a self, id: &'a str) -> &'a str {
        self.place_of.get(id).map_or(id, |p| p.name.as_str())
    }

    /// Whether `id` was launched by a group the scenario leaves out.
    fn dropped(&self, id: &str) -> bool {
        self.place_of.get(id).is_some_and(|p| !self.groups[p.group].kept)
    }
}
