//! The estate as it is now: the JSON the AWS CLI prints for `describe-*` and `list-*` commands
//! (KMS keys, their materials, aliases and grants; EBS volumes, instances, snapshots and images;
//! the other services' resources), read into the understood events of a trail at one instant.
//!
//! `cloudtrail::Trail::scenario` writes them as the scenario every import writes: at its start
//! the keys get their materials, every resource is made and attached while its key can still
//! be used, and then each key is put in the state it is in now (disabled, material deleted,
//! deletion scheduled). kmsim reads files; it never calls AWS.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, Read};

use serde::Deserialize;
use serde_json::Value;

use super::cloudtrail::{First, ImportError, Trail, VOLUME_SIZES, What, describe_json_error, key_id_of, usable_id};
use crate::actors::service::Kind;

/// An instant as the AWS CLI prints it: RFC 3339 (version 2) or seconds since the epoch
/// (version 1 prints KMS's dates so).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Instant(Option<jiff::Timestamp>);

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(d)? {
            Value::Null => Ok(Instant(None)),
            Value::String(s) => s
                .parse::<jiff::Timestamp>()
                .map(|t| Instant(Some(t)))
                .map_err(|e| D::Error::custom(format!("{s:?} is not an RFC 3339 instant ({e})"))),
            Value::Number(n) => {
                let secs = n.as_f64().ok_or_else(|| D::Error::custom("a date that is not a number of seconds"))?;
                #[allow(clippy::cast_possible_truncation)] // checked by jiff's range below
                let ms = (secs * 1000.0).round() as i64;
                jiff::Timestamp::from_millisecond(ms)
                    .map(|t| Instant(Some(t)))
                    .map_err(|e| D::Error::custom(format!("{secs} seconds is not an instant ({e})")))
            }
            other => Err(D::Error::custom(format!("a date that is neither text nor a number: {other}"))),
        }
    }
}

/// The top-level fields of every output read; a file may hold several, one after another (the
/// output of a loop over `describe-key`, say).
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Doc {
    keys: Option<Vec<ListedKey>>,
    key_metadata: Option<KeyMetadata>,
    rotations: Option<Vec<Rotation>>,
    grants: Option<Vec<Grant>>,
    aliases: Option<Vec<Alias>>,
    volumes: Option<Vec<Volume>>,
    reservations: Option<Vec<Reservation>>,
    snapshots: Option<Vec<Snapshot>>,
    images: Option<Vec<Image>>,
    #[serde(rename = "DBInstances")]
    db_instances: Option<Vec<DbInstance>>,
    #[serde(rename = "DBClusters")]
    db_clusters: Option<Vec<DbCluster>>,
    clusters: Option<Vec<RedshiftCluster>>,
    table: Option<Table>,
    server_side_encryption_configuration: Option<S3Encryption>,
    /// Not in `get-bucket-encryption`'s output: the README's commands add it.
    bucket: Option<String>,
    file_systems: Option<Vec<FileSystem>>,
    functions: Option<Vec<Function>>,
    /// `get-function-configuration`: one function at the top level.
    function_name: Option<String>,
    #[serde(rename = "KMSKeyArn")]
    kms_key_arn: Option<String>,
    secret_list: Option<Vec<Secret>>,
    /// `describe-secret`: one secret at the top level.
    #[serde(rename = "ARN")]
    arn: Option<String>,
    name: Option<String>,
    kms_key_id: Option<String>,
    next_token: Option<String>,
    truncated: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListedKey {
    key_id: String,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "PascalCase")]
struct KeyMetadata {
    key_id: String,
    key_state: String,
    origin: Option<String>,
    key_spec: Option<String>,
    key_usage: Option<String>,
    #[serde(default)]
    multi_region: bool,
    #[serde(default)]
    valid_to: Instant,
    expiration_model: Option<String>,
    #[serde(default)]
    deletion_date: Instant,
    #[serde(default)]
    creation_date: Instant,
    current_key_material_id: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "PascalCase")]
struct Rotation {
    key_id: String,
    key_material_id: Option<String>,
    import_state: Option<String>,
    key_material_state: Option<String>,
    #[serde(default)]
    valid_to: Instant,
    #[serde(default)]
    rotation_date: Instant,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Grant {
    key_id: String,
    #[serde(default)]
    constraints: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Alias {
    alias_name: String,
    target_key_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Volume {
    volume_id: String,
    state: String,
    #[serde(default)]
    encrypted: bool,
    kms_key_id: Option<String>,
    size: Option<u64>,
    #[serde(default)]
    attachments: Vec<Attachment>,
    #[serde(default)]
    create_time: Instant,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Attachment {
    instance_id: String,
    state: String,
    #[serde(default)]
    attach_time: Instant,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Reservation {
    #[serde(default)]
    instances: Vec<Instance>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Instance {
    instance_id: String,
    state: InstanceState,
    #[serde(default)]
    launch_time: Instant,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InstanceState {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Snapshot {
    snapshot_id: String,
    volume_id: Option<String>,
    #[serde(default)]
    encrypted: bool,
    kms_key_id: Option<String>,
    state: Option<String>,
    #[serde(default)]
    start_time: Instant,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Image {
    image_id: String,
    state: Option<String>,
    #[serde(default)]
    creation_date: Instant,
    #[serde(default)]
    block_device_mappings: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DbInstance {
    #[serde(rename = "DBInstanceIdentifier")]
    id: String,
    #[serde(rename = "DBClusterIdentifier")]
    cluster: Option<String>,
    #[serde(default)]
    storage_encrypted: bool,
    kms_key_id: Option<String>,
    #[serde(rename = "DBInstanceStatus")]
    status: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DbCluster {
    #[serde(rename = "DBClusterIdentifier")]
    id: String,
    engine: Option<String>,
    #[serde(default)]
    storage_encrypted: bool,
    kms_key_id: Option<String>,
    status: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RedshiftCluster {
    cluster_identifier: String,
    #[serde(default)]
    encrypted: bool,
    kms_key_id: Option<String>,
    cluster_status: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Table {
    table_name: String,
    #[serde(rename = "SSEDescription")]
    sse: Option<Value>,
    table_status: Option<String>,
    #[serde(default)]
    replicas: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct S3Encryption {
    #[serde(default)]
    rules: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FileSystem {
    file_system_id: String,
    #[serde(default)]
    encrypted: bool,
    kms_key_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Function {
    function_name: String,
    #[serde(rename = "KMSKeyArn")]
    kms_key_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Secret {
    name: String,
    kms_key_id: Option<String>,
}

/// A resource of another service, as read: its kind, id, the key it names (an id, an ARN or an
/// alias) and, for a bucket, whether it has a bucket key.
struct Resource {
    kind: Kind,
    id: String,
    key: String,
    bucket_key: bool,
    /// A state that is not the service's usual available one, said in a note.
    status: Option<String>,
}

impl Resource {
    fn of(kind: Kind, id: String, key: Option<String>, status: Option<String>) -> Self {
        Resource { kind, id, key: key.unwrap_or_default(), bucket_key: false, status }
    }
}

/// Everything read from the files, before it becomes events.
#[derive(Default)]
pub struct Estate {
    files: Vec<String>,
    documents: u64,
    listed_keys: BTreeSet<String>,
    keys: BTreeMap<String, KeyMetadata>,
    rotations: BTreeMap<String, Vec<Rotation>>,
    /// Per key whose grants were listed, the volumes an EC2 grant names (`aws:ebs:id`).
    grants: BTreeMap<String, BTreeSet<String>>,
    grants_read: u64,
    aliases: BTreeMap<String, String>,
    volumes: Vec<Volume>,
    volumes_read: bool,
    instances: Vec<Instance>,
    snapshots: Vec<Snapshot>,
    images: Vec<Image>,
    resources: Vec<Resource>,
    latest: Option<jiff::Timestamp>,
    notes: Vec<String>,
    /// Things read and left out, by what they are, counted.
    left_out: BTreeMap<String, u64>,
    items: usize,
    /// Keys the user says have imported material (`--external`).
    external: BTreeSet<String>,
}

/// Every top-level field kmsim reads, for the message about a file that has none.
const OUTPUTS: &str = "aws kms list-keys, describe-key, list-key-rotations, list-grants, list-aliases; aws ec2 \
                       describe-volumes, describe-instances, describe-snapshots, describe-images; aws rds \
                       describe-db-instances, describe-db-clusters; aws redshift describe-clusters; aws dynamodb \
                       describe-table; aws s3api get-bucket-encryption (with a Bucket field); aws efs \
                       describe-file-systems; aws lambda list-functions, get-function-configuration; aws \
                       secretsmanager list-secrets, describe-secret";

impl Estate {
    /// The user says this key (key ID or ARN) has imported material.
    pub fn state_external(&mut self, key: &str) {
        self.external.insert(key_id_of(key));
    }

    /// Reads one file of AWS CLI output: one JSON document or several one after another.
    pub fn read(&mut self, file: &str, input: impl Read) -> Result<(), ImportError> {
        let err = |what: String| ImportError { file: file.to_string(), what };
        self.files.push(file.to_string());
        let mut n = 0;
        for doc in serde_json::Deserializer::from_reader(BufReader::new(input)).into_iter::<Doc>() {
            let doc = doc.map_err(|e| {
                err(format!("not the output of an AWS CLI command kmsim reads: {}", describe_json_error(&e)))
            })?;
            n += 1;
            self.documents += 1;
            let recognized = self.take(doc, file).map_err(|what| err(format!("document {n}: {what}")))?;
            if !recognized {
                return Err(err(format!("document {n}: nothing kmsim reads (it reads the JSON printed by {OUTPUTS})")));
            }
            if self.items > crate::import::MAX_EVENTS {
                return Err(err(format!(
                    "more than {} resources, keys and grants: import the estate by Region or by account",
                    crate::import::MAX_EVENTS
                )));
            }
        }
        if n == 0 {
            return Err(err("empty: no JSON document".into()));
        }
        Ok(())
    }
}

/// Steps of the estate's setup, in the order they are replayed: keys are made, then materials
/// and resources in the order they were made (a volume's data key is under the material
/// current when it was made), then attachments, then what was stopped or revoked since, and,
/// one second later, once every other service's resource is made too, each key's state now.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Keys,
    Made,
    Attached,
    Since,
    KeyStates,
}

impl Estate {
    fn seen(&mut self, t: Instant) {
        if let Some(t) = t.0 {
            self.latest = Some(self.latest.map_or(t, |l| l.max(t)));
        }
    }

    /// A resource encrypted under a key the output names (and none, or an empty name, for one
    /// that is not: left out and counted).
    fn resource(&mut self, r: Resource, encrypted: bool) {
        if !usable_id(&r.id) {
            self.leave_out(&format!(
                "{} resources whose name is not an id kmsim can use (empty, or with spaces)",
                r.kind.as_str()
            ));
        } else if encrypted && !r.key.is_empty() {
            self.resources.push(r);
        } else {
            self.leave_out(&format!("{} resources not encrypted under a customer managed key", r.kind.as_str()));
        }
    }

    fn leave_out(&mut self, what: &str) {
        *self.left_out.entry(what.to_string()).or_default() += 1;
    }

    /// Every resource id the document names is one AWS could have given.
    fn check_ids(doc: &Doc) -> Result<(), String> {
        let bad =
            |what: &str, id: &str| Err(format!("{what} {id:?} is not an AWS resource id (empty, or with spaces)"));
        for v in doc.volumes.iter().flatten() {
            if !usable_id(&v.volume_id) {
                return bad("volume", &v.volume_id);
            }
            if let Some(size) = v.size.filter(|s| !VOLUME_SIZES.contains(s)) {
                return Err(format!("volume {:?} of {size} GiB: EBS volumes are 1 to 65,536 GiB", v.volume_id));
            }
            if let Some(a) = v.attachments.iter().find(|a| !usable_id(&a.instance_id)) {
                return bad("instance", &a.instance_id);
            }
        }
        for i in doc.reservations.iter().flatten().flat_map(|r| &r.instances) {
            if !usable_id(&i.instance_id) {
                return bad("instance", &i.instance_id);
            }
        }
        for x in doc.snapshots.iter().flatten() {
            if !usable_id(&x.snapshot_id) || x.volume_id.as_deref().is_some_and(|v| !usable_id(v)) {
                return bad("snapshot", &x.snapshot_id);
            }
        }
        for im in doc.images.iter().flatten() {
            let snapshots = im.block_device_mappings.iter().filter_map(|m| m["Ebs"]["SnapshotId"].as_str());
            if !usable_id(&im.image_id) || snapshots.clone().any(|x| !usable_id(x)) {
                return bad("image", &im.image_id);
            }
        }
        Ok(())
    }

    /// Takes one document; whether it held anything kmsim reads.
    fn take(&mut self, doc: Doc, file: &str) -> Result<bool, String> {
        Self::check_ids(&doc)?;
        let mut recognized = false;
        let resources_before = self.resources.len();
        if doc.next_token.is_some() || doc.truncated == Some(true) {
            self.notes.push(format!(
                "{file}: a listing cut short (NextToken or Truncated): give every page (the AWS CLI pages by itself \
                 unless told --max-items or --no-paginate)"
            ));
        }
        if let Some(keys) = doc.keys {
            recognized = true;
            self.items += keys.len();
            self.listed_keys.extend(keys.into_iter().map(|k| key_id_of(&k.key_id)));
        }
        if let Some(m) = doc.key_metadata {
            recognized = true;
            self.items += 1;
            self.seen(m.creation_date);
            self.keys.insert(key_id_of(&m.key_id), m);
        }
        if let Some(rotations) = doc.rotations {
            recognized = true;
            self.items += rotations.len();
            for r in rotations {
                self.seen(r.rotation_date);
                self.rotations.entry(key_id_of(&r.key_id)).or_default().push(r);
            }
        }
        if let Some(grants) = doc.grants {
            recognized = true;
            self.items += grants.len();
            self.grants_read += grants.len() as u64;
            for g in grants {
                let volumes = self.grants.entry(key_id_of(&g.key_id)).or_default();
                let named = g.constraints.as_ref().and_then(|c| {
                    c["EncryptionContextSubset"]["aws:ebs:id"]
                        .as_str()
                        .or(c["EncryptionContextEquals"]["aws:ebs:id"].as_str())
                });
                if let Some(v) = named {
                    volumes.insert(v.to_string());
                }
            }
        }
        if let Some(aliases) = doc.aliases {
            recognized = true;
            self.items += aliases.len();
            for a in aliases.into_iter().filter(|a| a.alias_name.starts_with("alias/") && usable_id(&a.alias_name)) {
                if let Some(target) = a.target_key_id {
                    self.aliases.insert(a.alias_name, target);
                }
            }
        }
        if let Some(volumes) = doc.volumes {
            recognized = true;
            self.volumes_read = true;
            self.items += volumes.len();
            for v in &volumes {
                self.seen(v.create_time);
                for a in &v.attachments {
                    self.seen(a.attach_time);
                }
            }
            self.volumes.extend(volumes);
        }
        if let Some(reservations) = doc.reservations {
            recognized = true;
            for r in reservations {
                self.items += r.instances.len();
                for i in &r.instances {
                    self.seen(i.launch_time);
                }
                self.instances.extend(r.instances);
            }
        }
        if let Some(snapshots) = doc.snapshots {
            recognized = true;
            self.items += snapshots.len();
            for x in &snapshots {
                self.seen(x.start_time);
            }
            self.snapshots.extend(snapshots);
        }
        if let Some(images) = doc.images {
            recognized = true;
            self.items += images.len();
            self.images.extend(images);
        }
        if let Some(dbs) = doc.db_instances {
            recognized = true;
            for db in dbs {
                // An Aurora cluster's instances share the cluster's storage, and its key.
                if db.cluster.is_none() {
                    let status = db.status.filter(|s| s != "available");
                    self.resource(Resource::of(Kind::Rds, db.id, db.kms_key_id, status), db.storage_encrypted);
                }
            }
        }
        if let Some(clusters) = doc.db_clusters {
            recognized = true;
            for c in clusters {
                let kind =
                    if c.engine.as_deref().is_some_and(|e| e.starts_with("aurora")) { Kind::Aurora } else { Kind::Rds };
                let status = c.status.filter(|s| s != "available");
                self.resource(Resource::of(kind, c.id, c.kms_key_id, status), c.storage_encrypted);
            }
        }
        if let Some(clusters) = doc.clusters {
            recognized = true;
            for c in clusters {
                let status = c.cluster_status.filter(|s| s != "available");
                self.resource(Resource::of(Kind::Redshift, c.cluster_identifier, c.kms_key_id, status), c.encrypted);
            }
        }
        if let Some(t) = doc.table {
            recognized = true;
            let sse = t.sse.unwrap_or(Value::Null);
            let key = sse["KMSMasterKeyArn"].as_str().map(String::from);
            let customer = sse["SSEType"] == "KMS" && sse["Status"] != "DISABLED";
            let status = t.table_status.filter(|s| s != "ACTIVE");
            if !t.replicas.is_empty() {
                self.notes.push(format!(
                    "table {}: a global table's replicas are not read (a replica's table is imported from its own Region)",
                    t.table_name
                ));
            }
            self.resource(Resource::of(Kind::DynamoDb, t.table_name, key, status), customer);
        }
        if let Some(enc) = doc.server_side_encryption_configuration {
            recognized = true;
            let Some(bucket) = doc.bucket else {
                return Err("get-bucket-encryption's output names no bucket: add a \"Bucket\" field (the README's \
                            commands do)"
                    .into());
            };
            let rule = enc.rules.first().cloned().unwrap_or(Value::Null);
            let by_default = &rule["ApplyServerSideEncryptionByDefault"];
            let kms = by_default["SSEAlgorithm"].as_str().is_some_and(|a| a.starts_with("aws:kms"));
            let key = by_default["KMSMasterKeyID"].as_str().map(String::from);
            let bucket_key = rule["BucketKeyEnabled"] == true;
            self.resource(
                Resource { kind: Kind::S3, id: bucket, key: key.unwrap_or_default(), bucket_key, status: None },
                kms,
            );
        }
        if let Some(systems) = doc.file_systems {
            recognized = true;
            for f in systems {
                self.resource(Resource::of(Kind::Efs, f.file_system_id, f.kms_key_id, None), f.encrypted);
            }
        }
        if let Some(functions) = doc.functions {
            recognized = true;
            for f in functions {
                self.resource(Resource::of(Kind::Lambda, f.function_name, f.kms_key_arn, None), true);
            }
        }
        if let Some(name) = doc.function_name {
            recognized = true;
            self.resource(Resource::of(Kind::Lambda, name, doc.kms_key_arn, None), true);
        }
        if let Some(secrets) = doc.secret_list {
            recognized = true;
            for x in secrets {
                self.resource(Resource::of(Kind::Secret, x.name, x.kms_key_id, None), true);
            }
        }
        if let (Some(name), Some(arn)) = (doc.name, doc.arn.as_deref())
            && arn.contains(":secret:")
        {
            recognized = true;
            self.resource(Resource::of(Kind::Secret, name, doc.kms_key_id, None), true);
        }
        self.items += self.resources.len() - resources_before;
        Ok(recognized)
    }
}

/// What the estate adds to a scenario's header.
pub(super) struct Header {
    pub files: Vec<String>,
    pub now: jiff::Timestamp,
    pub documents: u64,
    /// How many of the trail's events the estate gave.
    pub events: usize,
    pub lines: Vec<String>,
    pub notes: Vec<String>,
}

const ONE_SECOND: jiff::SignedDuration = jiff::SignedDuration::from_secs(1);

impl Estate {
    /// The latest instant the files show (a creation, an attachment, a launch, a rotation): the
    /// estate is at least that recent.
    #[must_use]
    pub fn latest(&self) -> Option<jiff::Timestamp> {
        self.latest
    }

    /// The key ID a reference names (a key ID, a key ARN, an alias name or an alias ARN), if the
    /// estate can tell.
    fn resolve(&self, r: &str) -> Option<String> {
        let id = if let Some((_, alias)) = r.split_once(":alias/") {
            self.aliases.get(&format!("alias/{alias}"))?.clone()
        } else if r.starts_with("alias/") {
            self.aliases.get(r)?.clone()
        } else {
            key_id_of(r)
        };
        Some(id)
    }

    /// Gives the estate to `trail` as events: its setup a second before `now`, each key's state
    /// at `now`.
    pub fn into_trail(mut self, now: jiff::Timestamp, trail: &mut Trail) {
        use crate::scenario::is_key_id;
        let mut steps: Vec<(Phase, Instant, What)> = Vec::new();
        let mut notes = std::mem::take(&mut self.notes);
        let now_instant = Instant(Some(now));
        // Keys, by key ID: those described, and those only named by a resource or a listing.
        let mut declared: BTreeSet<String> = BTreeSet::new();
        let mut refused: BTreeMap<String, String> = BTreeMap::new();
        let keys = std::mem::take(&mut self.keys);
        for (id, m) in &keys {
            let origin = m.origin.as_deref().unwrap_or("AWS_KMS");
            let why = if m.key_spec.as_deref().is_some_and(|s| s != "SYMMETRIC_DEFAULT")
                || m.key_usage.as_deref().is_some_and(|u| u != "ENCRYPT_DECRYPT")
            {
                Some("not a symmetric encryption key".to_string())
            } else if m.multi_region || !is_key_id(id) {
                Some("a multi-Region key (D14: not modelled)".to_string())
            } else if origin != "AWS_KMS" && origin != "EXTERNAL" {
                Some(format!("origin {origin}, a custom key store (not modelled)"))
            } else if !matches!(m.key_state.as_str(), "Enabled" | "Disabled" | "PendingImport" | "PendingDeletion") {
                Some(format!("in state {} (not modelled at the start)", m.key_state))
            } else {
                None
            };
            if let Some(why) = why {
                refused.insert(id.clone(), why);
                continue;
            }
            declared.insert(id.clone());
            let external = origin == "EXTERNAL";
            steps.push((Phase::Keys, Instant(None), What::Created { key: id.clone(), external, listed: true }));
            if external {
                self.materials(id, m, now, &mut steps, &mut notes);
            }
            match m.key_state.as_str() {
                "Disabled" => steps.push((Phase::KeyStates, now_instant, What::Disable { key: id.clone() })),
                "PendingDeletion" => {
                    let remaining = m.deletion_date.0.map_or(30, |d| {
                        let ms = d.as_millisecond() - now.as_millisecond();
                        u32::try_from(ms.max(0).unsigned_abs().div_ceil(86_400_000)).unwrap_or(30)
                    });
                    let days = remaining.clamp(7, 30);
                    let deletion = now + jiff::SignedDuration::from_hours(24 * i64::from(days));
                    notes.push(format!(
                        "key {id}: its deletion is scheduled for {}; replayed as ScheduleKeyDeletion with {days} days at \
                         the start (deletion {deletion}: the waiting period is 7 to 30 whole days)",
                        m.deletion_date.0.map_or_else(|| "an instant describe-key does not give".to_string(), |d| d.to_string())
                    ));
                    steps.push((
                        Phase::KeyStates,
                        now_instant,
                        What::Schedule { key: id.clone(), days, deletion: Some(deletion) },
                    ));
                }
                _ => {}
            }
        }
        for (id, why) in &refused {
            notes.push(format!("key {id}: {why}: left out, with its resources"));
        }
        // A key a resource names that no describe-key output gives: its origin is not known.
        let stated_external = self.external.clone();
        let mut undescribed = |id: &str, steps: &mut Vec<(Phase, Instant, What)>, notes: &mut Vec<String>| {
            if declared.contains(id) || refused.contains_key(id) || !is_key_id(id) {
                return declared.contains(id);
            }
            declared.insert(id.to_string());
            let external = stated_external.contains(id);
            steps.push((Phase::Keys, Instant(None), What::Created { key: id.to_string(), external, listed: true }));
            if external {
                notes.push(format!("key {id}: no describe-key output; imported material, as --external says, imported at the start as m-before-estate"));
                steps.push((
                    Phase::Made,
                    Instant(None),
                    What::Import { key: id.to_string(), material: "m-before-estate".into(), valid_to: None, new: true },
                ));
            } else {
                notes.push(format!(
                    "key {id}: no describe-key output: taken as AWS_KMS, whose material cannot be deleted; if it has \
                     imported material, add its describe-key output or --external {id}"
                ));
            }
            true
        };
        for id in &self.listed_keys {
            if !keys.contains_key(id) && !refused.contains_key(id) && is_key_id(id) && !self.external.contains(id) {
                self.left_out
                    .entry("keys listed but not described (give their describe-key output)".into())
                    .and_modify(|n| *n += 1)
                    .or_insert(1);
            }
        }
        for id in self.external.clone() {
            if !keys.contains_key(&id) {
                undescribed(&id, &mut steps, &mut notes);
            }
        }

        // Instances: those running or stopped now.
        let mut instance_state: BTreeMap<String, bool> = BTreeMap::new();
        let instances_read = !self.instances.is_empty();
        for i in std::mem::take(&mut self.instances) {
            let running = match i.state.name.as_str() {
                "pending" | "running" => true,
                "stopping" | "stopped" => false,
                _ => {
                    self.leave_out("instances terminated or shutting down");
                    continue;
                }
            };
            instance_state.insert(i.instance_id.clone(), running);
            steps.push((
                Phase::Made,
                i.launch_time,
                What::Instance { action: "Running", id: i.instance_id.clone(), by_group: false },
            ));
            if !running {
                steps.push((
                    Phase::Since,
                    now_instant,
                    What::Instance { action: "StopInstances", id: i.instance_id, by_group: false },
                ));
            }
        }

        // Volumes, and their attachments; EC2's grants where the key's grants were listed.
        let mut volume_key: BTreeMap<String, String> = BTreeMap::new();
        let mut unknown_instances: BTreeSet<String> = BTreeSet::new();
        for v in std::mem::take(&mut self.volumes) {
            if !matches!(v.state.as_str(), "creating" | "available" | "in-use") {
                self.leave_out("volumes being deleted or in error");
                continue;
            }
            let key = v.kms_key_id.as_deref().filter(|_| v.encrypted).map(|k| self.resolve(k));
            let Some(key) = key else {
                self.leave_out("volumes not encrypted");
                continue;
            };
            let Some(key) = key.filter(|k| undescribed(k, &mut steps, &mut notes)) else {
                self.leave_out("volumes whose key is left out or not known");
                continue;
            };
            volume_key.insert(v.volume_id.clone(), key.clone());
            steps.push((
                Phase::Made,
                v.create_time,
                What::CreateVolume { volume: v.volume_id.clone(), key: key.clone(), size: v.size, snapshot: None },
            ));
            for a in v.attachments.iter().filter(|a| matches!(a.state.as_str(), "attached" | "attaching" | "busy")) {
                match instance_state.get(&a.instance_id) {
                    Some(_) => {}
                    None if instances_read => {
                        self.leave_out(
                            "attachments to instances describe-instances does not list as running or stopped",
                        );
                        continue;
                    }
                    None => {
                        if unknown_instances.insert(a.instance_id.clone()) {
                            steps.push((
                                Phase::Made,
                                Instant(None),
                                What::Instance { action: "Running", id: a.instance_id.clone(), by_group: false },
                            ));
                        }
                    }
                }
                steps.push((
                    Phase::Attached,
                    a.attach_time,
                    What::Attach { volume: v.volume_id.clone(), instance: a.instance_id.clone() },
                ));
                if let Some(granted) = self.grants.get(&key)
                    && !granted.contains(&v.volume_id)
                {
                    notes.push(format!(
                        "volume {}: attached, but none of its key's grants (list-grants) names it: EC2's grant is taken as \
                         revoked since",
                        v.volume_id
                    ));
                    steps.push((
                        Phase::Since,
                        now_instant,
                        What::RevokeGrant { key: key.clone(), volume: v.volume_id.clone() },
                    ));
                }
            }
        }
        if !unknown_instances.is_empty() {
            notes.push(format!(
                "no describe-instances output: the {} instance(s) volumes are attached to are taken as running",
                unknown_instances.len()
            ));
        }

        // Snapshots of the estate's volumes under their volume's key; images of them.
        for x in std::mem::take(&mut self.snapshots) {
            if !x.encrypted || !matches!(x.state.as_deref(), None | Some("completed" | "pending")) {
                self.leave_out("snapshots not encrypted, or not completed");
                continue;
            }
            let key = x.kms_key_id.as_deref().and_then(|k| self.resolve(k));
            let volume = x.volume_id.as_deref().filter(|v| key.is_some() && volume_key.get(*v) == key.as_ref());
            match volume {
                Some(volume) => steps.push((
                    Phase::Made,
                    x.start_time,
                    What::CreateSnapshot { snapshot: x.snapshot_id, volume: volume.to_string() },
                )),
                None => self.leave_out(
                    "snapshots whose volume is not in the estate under the same key (copies, or their volume deleted)",
                ),
            }
        }
        for im in std::mem::take(&mut self.images) {
            let snapshots: Vec<String> = im
                .block_device_mappings
                .iter()
                .filter_map(|m| m["Ebs"]["SnapshotId"].as_str().map(String::from))
                .collect();
            if snapshots.is_empty() || !matches!(im.state.as_deref(), None | Some("available")) {
                self.leave_out("images with no EBS snapshot, or not available");
                continue;
            }
            let made = if im.creation_date.0.is_some() { im.creation_date } else { now_instant };
            steps.push((Phase::Made, made, What::RegisterImage { image: im.image_id, snapshots }));
        }

        // The other services' resources.
        for r in std::mem::take(&mut self.resources) {
            let Some(key) = self.resolve(&r.key).filter(|k| undescribed(k, &mut steps, &mut notes)) else {
                self.leave_out(&format!(
                    "{} resources whose key is left out or not known (an alias not listed, or an AWS managed key)",
                    r.kind.as_str()
                ));
                continue;
            };
            if let Some(status) = &r.status {
                notes.push(format!(
                    "{} {}: {status} now; made available at the start, and kmsim decides from its key when it breaks",
                    r.kind.as_str(),
                    r.id
                ));
            }
            steps.push((
                Phase::Made,
                Instant(None),
                What::CreateResource { kind: r.kind, id: r.id, key, bucket_key: r.bucket_key },
            ));
        }

        for (alias, target) in &self.aliases {
            let key = key_id_of(target);
            if declared.contains(&key) && !alias.starts_with("alias/aws/") {
                trail.alias(&key, alias);
            }
        }
        steps.sort_by_key(|(phase, at, _)| (*phase, *at));
        // With a trail, what it shows is its own, and the rest of the estate was made before it
        // began or, where the files give the instant, when it was made.
        let shown = trail.shown();
        let covered = |what: &What| match what {
            What::Created { key, .. } => shown.created_keys.contains(key),
            What::Import { key, .. } | What::Rotate { key } => {
                shown.materials.contains(key) || shown.created_keys.contains(key)
            }
            What::DeleteMaterial { key, .. } | What::Disable { key } | What::Schedule { key, .. } => {
                shown.states.contains(key)
            }
            What::CreateVolume { volume: id, .. }
            | What::CreateSnapshot { snapshot: id, .. }
            | What::RegisterImage { image: id, .. }
            | What::CreateResource { id, .. } => shown.made.contains(id),
            // A volume whose first event in the trail is a detach was attached before it began.
            What::Attach { volume, .. } => shown.attachments.get(volume) == Some(&First::Attach),
            What::Instance { action: "StopInstances", id, .. } => shown.instances.contains(id),
            _ => false,
        };
        let mut events = 0;
        for (phase, at, mut what) in steps {
            if covered(&what) {
                continue;
            }
            // The trail's history of a key's materials starts from what it had before.
            if let What::Created { key, listed, .. } = &mut what {
                *listed = !shown.materials.contains(key.as_str());
            }
            let time = match (phase, shown.first) {
                (Phase::KeyStates | Phase::Since, _) => now,
                (_, None) => now - ONE_SECOND,
                (_, Some(first)) => match at.0 {
                    Some(t)
                        if t > first
                            && t <= now
                            && !matches!(&what, What::Attach { volume, .. } if shown.attachments.contains_key(volume)) =>
                    {
                        t
                    }
                    _ => {
                        if let What::Attach { volume, instance } = &what {
                            notes.push(format!(
                                "volume {volume}: attached to {instance} before the trail began (describe-volumes): \
                                 attached at the start"
                            ));
                        }
                        first - ONE_SECOND
                    }
                },
            };
            events += 1;
            trail.push(time, what);
        }
        let mut lines = Vec::new();
        if self.grants_read > 0 {
            lines.push(format!(
                "{} grants read: EC2's for attached volumes are made again by kmsim's attaches; the others change \
                 nothing kmsim models",
                self.grants_read
            ));
        }
        for (what, n) in &self.left_out {
            lines.push(format!("left out: {n} {what}"));
        }
        trail.set_estate(Header { files: self.files, now, documents: self.documents, events, lines, notes });
    }

    /// The materials of an imported key, as `list-key-rotations` (with
    /// `--include-key-material ALL_KEY_MATERIAL`) or else `describe-key` shows them: imported
    /// and rotated in the order they came, each deleted one deleted again with the key's state.
    fn materials(
        &self,
        id: &str,
        m: &KeyMetadata,
        now: jiff::Timestamp,
        steps: &mut Vec<(Phase, Instant, What)>,
        notes: &mut Vec<String>,
    ) {
        let imported = |r: &Rotation| r.import_state.as_deref() != Some("PENDING_IMPORT");
        let mut listed: Vec<Rotation> = self.rotations.get(id).cloned().unwrap_or_default();
        listed.sort_by_key(|r| r.rotation_date);
        if listed.is_empty() {
            match &m.current_key_material_id {
                Some(current) => listed.push(Rotation {
                    key_id: id.to_string(),
                    key_material_id: Some(current.clone()),
                    import_state: Some(
                        if m.key_state == "PendingImport" { "PENDING_IMPORT" } else { "IMPORTED" }.into(),
                    ),
                    key_material_state: Some("CURRENT".into()),
                    valid_to: if m.expiration_model.as_deref() == Some("KEY_MATERIAL_EXPIRES") {
                        m.valid_to
                    } else {
                        Instant(None)
                    },
                    rotation_date: Instant(None),
                }),
                None if m.key_state == "PendingImport" => return,
                None => {
                    notes.push(format!("key {id}: neither list-key-rotations nor describe-key names its material: imported at the start as m-before-estate"));
                    listed.push(Rotation {
                        key_id: id.to_string(),
                        key_material_id: Some("m-before-estate".into()),
                        import_state: Some("IMPORTED".into()),
                        key_material_state: Some("CURRENT".into()),
                        valid_to: m.valid_to,
                        rotation_date: Instant(None),
                    });
                }
            }
        } else if listed.iter().all(|r| r.rotation_date.0.is_some()) {
            notes.push(format!(
                "key {id}: list-key-rotations lists its rotations only (run it with --include-key-material \
                 ALL_KEY_MATERIAL): its first material is taken as imported, as m-first"
            ));
            listed.insert(
                0,
                Rotation {
                    key_id: id.to_string(),
                    key_material_id: Some("m-first".into()),
                    import_state: Some("IMPORTED".into()),
                    key_material_state: Some("NON_CURRENT".into()),
                    valid_to: Instant(None),
                    rotation_date: Instant(None),
                },
            );
        }
        let pending = |r: &Rotation| r.key_material_state.as_deref() == Some("PENDING_ROTATION");
        let mut first = true;
        let mut deleted_any = false;
        for r in listed.iter().filter(|r| !pending(r)) {
            let material = r.key_material_id.clone().unwrap_or_else(|| "m".into());
            let expired = r.valid_to.0.is_some_and(|v| v <= now);
            let valid_to = r.valid_to.0.filter(|_| !expired);
            steps.push((
                Phase::Made,
                r.rotation_date,
                What::Import { key: id.to_string(), material: material.clone(), valid_to, new: true },
            ));
            if !first {
                steps.push((Phase::Made, r.rotation_date, What::Rotate { key: id.to_string() }));
            }
            first = false;
            if !imported(r) || expired {
                if expired {
                    notes.push(format!(
                        "key {id}: material {material} expired at {}: deleted at the start",
                        r.valid_to.0.expect("expired")
                    ));
                }
                deleted_any = true;
                steps.push((
                    Phase::KeyStates,
                    Instant(Some(now)),
                    What::DeleteMaterial { key: id.to_string(), material: Some(material) },
                ));
            }
        }
        // A material waiting for a rotation: imported, not rotated in (a deleted one changes nothing).
        for r in listed.iter().filter(|r| pending(r) && imported(r)) {
            let material = r.key_material_id.clone().unwrap_or_else(|| "m-pending".into());
            steps.push((
                Phase::Made,
                Instant(Some(now)),
                What::Import { key: id.to_string(), material, valid_to: r.valid_to.0.filter(|v| *v > now), new: true },
            ));
        }
        if m.key_state == "PendingImport" && !deleted_any {
            notes.push(format!("key {id}: PendingImport, though every material listed is imported: its current material is deleted at the start"));
            steps.push((
                Phase::KeyStates,
                Instant(Some(now)),
                What::DeleteMaterial { key: id.to_string(), material: None },
            ));
        }
    }
}
