//! The scenario file as written: a serde mirror of the RON grammar, with no meaning checked yet.
//!
//! Every struct denies unknown fields, so a typo is an error that lists the allowed names.
//! Times and durations stay strings here; [`super::validate`] parses and checks them.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "Scenario")]
pub struct RawScenario {
    pub version: u32,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub start: String,
    pub horizon: String,
    /// The instant `now` stands for in `--at` and `--delete-material-at` (an import's estate).
    #[serde(default)]
    pub now: Option<String>,
    pub seed: u64,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub parameters: Option<RawParameters>,
    #[serde(default)]
    pub latency: Option<RawLatencies>,
    #[serde(default)]
    pub keys: Vec<RawKey>,
    #[serde(default)]
    pub instances: Vec<RawInstance>,
    #[serde(default)]
    pub volumes: Vec<RawVolume>,
    #[serde(default)]
    pub snapshots: Vec<RawSnapshot>,
    #[serde(default)]
    pub images: Vec<RawImage>,
    #[serde(default)]
    pub groups: Vec<RawGroup>,
    #[serde(default)]
    pub services: Vec<RawService>,
    #[serde(default)]
    pub fleets: Vec<RawFleet>,
    #[serde(default)]
    pub timeline: Vec<At>,
    #[serde(default)]
    pub expect: Vec<RawExpect>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename = "Parameters")]
pub struct RawParameters {
    #[serde(default)]
    pub material_expiry_lag: Option<String>,
    #[serde(default)]
    pub key_deletion_lag: Option<String>,
    #[serde(default)]
    pub kms_propagation_delay: Option<String>,
    /// Cryptographic requests per second before ThrottlingException ([RPS] in docs/model.md).
    #[serde(default)]
    pub crypto_quota: Option<u32>,
    /// On-demand rotations a key allows before LimitExceededException (25).
    #[serde(default)]
    pub max_on_demand_rotations: Option<u32>,
    /// How long RDS and Aurora take to notice a change of their key (D12, 5m).
    #[serde(default)]
    pub rds_detection: Option<String>,
    #[serde(default)]
    pub redshift_detection: Option<String>,
    #[serde(default)]
    pub dynamodb_detection: Option<String>,
    /// How long DynamoDB keeps a table key after decrypting it (5m, documented).
    #[serde(default)]
    pub dynamodb_key_refresh: Option<String>,
    /// How long S3 keeps a bucket key (D11, 1h).
    #[serde(default)]
    pub s3_bucket_key_lifetime: Option<String>,
    /// How long a mounted EFS file system works on after its key changed (D11, 1h).
    #[serde(default)]
    pub efs_grace: Option<String>,
    /// How long a Lambda execution environment stays warm without invocations (D23, 15m).
    #[serde(default)]
    pub lambda_idle: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename = "Latency")]
pub struct RawLatencies {
    #[serde(default)]
    pub kms: Option<RawDist>,
}

/// A distribution of durations: `Fixed("1h")`, `Uniform("1m", "5m")`, `Exponential("6h")`,
/// `LogNormal("6h", 0.5)` (median, sigma of the logarithm), `Empirical([("1h", 3), ("1d", 1)])`.
#[derive(Debug, Deserialize, Clone)]
pub enum RawDist {
    Fixed(String),
    Uniform(String, String),
    Exponential(String),
    LogNormal(String, f64),
    Empirical(Vec<(String, u32)>),
}

/// A fleet: `instances` instances with `volumes_per_instance` volumes each, every volume cycling
/// attached / detached with durations drawn from its own stream, retrying a failed attach.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "Fleet")]
pub struct RawFleet {
    pub id: String,
    pub instances: u32,
    #[serde(default)]
    pub volumes_per_instance: Option<u32>,
    /// Keys, each with a weight: a volume's key is drawn by weight.
    pub keys: Vec<(String, u32)>,
    pub attached: RawDist,
    pub detached: RawDist,
    #[serde(default)]
    pub retry: Option<RawDist>,
    /// How often each instance is stopped, and for how long (default 5m).
    #[serde(default)]
    pub stop_every: Option<RawDist>,
    #[serde(default)]
    pub stopped_for: Option<RawDist>,
    #[serde(default)]
    pub reboot_every: Option<RawDist>,
    /// How often AWS moves each instance to another host (a stop and start, D5).
    #[serde(default)]
    pub host_maintenance_every: Option<RawDist>,
    /// How often each instance is terminated and replaced (auto scaling).
    #[serde(default)]
    pub replace_every: Option<RawDist>,
    /// Auto scaling's wait after a failed launch before it launches again (D6); default 300s.
    #[serde(default)]
    pub cooldown: Option<String>,
    /// The AMI an auto scaling group of the fleet's instances launches from (A14); without it,
    /// replacement relaunches an instance with its volumes (A10).
    #[serde(default)]
    pub image: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
pub enum RawOrigin {
    #[serde(alias = "AWS_KMS")]
    AwsKms,
    #[serde(alias = "EXTERNAL")]
    External,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "Key")]
pub struct RawKey {
    pub id: String,
    pub origin: RawOrigin,
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "Instance")]
pub struct RawInstance {
    pub id: String,
    /// Launched from this AMI by `RunInstances` (not at 0s): a volume per snapshot of the image,
    /// `<id>-v0`, `<id>-v1`, ... restored from it.
    #[serde(default)]
    pub image: Option<String>,
    /// The key of the volumes a launch from an image makes (default: each snapshot's key).
    #[serde(default)]
    pub key: Option<String>,
}

/// An auto scaling group: a launch template (an image, and the key of its volumes), a desired
/// capacity up to `max` instances (`<id>-i0`, ...), health-check replacement and a cooldown.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "Group")]
pub struct RawGroup {
    pub id: String,
    pub image: String,
    #[serde(default)]
    pub key: Option<String>,
    pub desired: u32,
    /// The most instances it runs (its places); default `desired`.
    #[serde(default)]
    pub max: Option<u32>,
    /// How long each instance runs before a health check replaces it.
    #[serde(default)]
    pub replace_every: Option<RawDist>,
    /// The wait after a failed launch before launching again (default 300s).
    #[serde(default)]
    pub cooldown: Option<String>,
}

/// An AMI: its block-device mappings' snapshots, the first the root volume's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "Image")]
pub struct RawImage {
    pub id: String,
    pub snapshots: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "Volume")]
pub struct RawVolume {
    pub id: String,
    pub key: String,
    #[serde(default)]
    pub size_gib: Option<u32>,
    /// The snapshot its CreateVolume restores (under `key`: the snapshot's key or another).
    #[serde(default)]
    pub snapshot: Option<String>,
}

/// An EBS snapshot: of a volume (CreateSnapshot, under the volume's key) or a copy of an earlier
/// declared snapshot (CopySnapshot, under `key`, by default the source's).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "Snapshot")]
pub struct RawSnapshot {
    pub id: String,
    #[serde(default)]
    pub volume: Option<String>,
    #[serde(default)]
    pub copy_of: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
}

/// The services beside EBS a key protects.
#[derive(Debug, Deserialize, Clone, Copy)]
pub enum RawServiceKind {
    Rds,
    Aurora,
    Redshift,
    DynamoDb,
    S3,
    Efs,
    Lambda,
    Secret,
}

/// A resource of another service: `Service(kind: Rds, id: "orders", key: "k")`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "Service")]
pub struct RawService {
    pub kind: RawServiceKind,
    pub id: String,
    pub key: String,
    /// How often it is used: queries, reads, invocations, retrievals.
    #[serde(default)]
    pub requests: Option<RawDist>,
    /// S3 only: the bucket uses an S3 Bucket Key.
    #[serde(default)]
    pub bucket_key: bool,
    /// DynamoDB only: the table is a global table's replica.
    #[serde(default)]
    pub replica: bool,
    /// Declares this many alike resources, `<id>-0`, `<id>-1`, ... (zero-padded to the same
    /// width), each with its own activity drawn from its own stream.
    #[serde(default)]
    pub count: Option<u32>,
    /// RDS, Aurora, Redshift: how often each is rebooted (each reboot decrypts its data key again).
    #[serde(default)]
    pub reboot_every: Option<RawDist>,
    /// When it is created (an offset or an RFC 3339 instant; default 0s), after the timeline's
    /// actions at that instant.
    #[serde(default)]
    pub created: Option<String>,
}

/// One timeline entry: `At("2d 4h", Action(...))`; the time is an offset or an RFC 3339 instant.
#[derive(Debug, Deserialize)]
pub struct At(pub String, pub RawAction);

#[derive(Debug, Deserialize, Clone)]
pub enum RawExpires {
    Never,
    /// `ValidTo` as an offset from the start or an RFC 3339 instant.
    At(String),
    /// `ValidTo` this long after the import.
    After(String),
    /// `KEY_MATERIAL_EXPIRES` with no `ValidTo`, which KMS refuses.
    WithoutValidTo,
}

#[derive(Debug, Deserialize, Clone, Copy)]
pub enum RawIo {
    Read,
    Write,
}

/// `ImportType` of ImportKeyMaterial.
#[derive(Debug, Deserialize, Clone, Copy)]
pub enum RawImportType {
    New,
    Existing,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum RawAction {
    // KMS, called by the scenario's user.
    DescribeKey {
        key: String,
    },
    EnableKey {
        key: String,
    },
    DisableKey {
        key: String,
    },
    ScheduleKeyDeletion {
        key: String,
        #[serde(default)]
        pending_window_days: Option<u32>,
    },
    CancelKeyDeletion {
        key: String,
    },
    GetParametersForImport {
        key: String,
        token: String,
    },
    ImportKeyMaterial {
        key: String,
        material: String,
        expires: RawExpires,
        #[serde(default)]
        token: Option<String>,
        /// `New` or `Existing`; AWS's default when left out.
        #[serde(default)]
        import_type: Option<RawImportType>,
    },
    DeleteImportedKeyMaterial {
        key: String,
        /// The material to delete; the current one when left out.
        #[serde(default)]
        material: Option<String>,
    },
    RotateKeyOnDemand {
        key: String,
    },
    ListKeyRotations {
        key: String,
        /// `IncludeKeyMaterial=ALL_KEY_MATERIAL`: the first and pending materials too.
        #[serde(default)]
        all_key_material: bool,
    },
    EnableKeyRotation {
        key: String,
    },
    Encrypt {
        key: String,
        #[serde(default)]
        name: Option<String>,
    },
    Decrypt {
        ciphertext: String,
        #[serde(default)]
        key: Option<String>,
    },
    ReEncrypt {
        ciphertext: String,
        destination_key: String,
        #[serde(default)]
        name: Option<String>,
    },
    GenerateDataKey {
        key: String,
        #[serde(default)]
        name: Option<String>,
    },
    GenerateDataKeyWithoutPlaintext {
        key: String,
        #[serde(default)]
        name: Option<String>,
    },
    CreateGrant {
        key: String,
        grantee: String,
        #[serde(default)]
        name: Option<String>,
    },
    RetireGrant {
        grant: String,
    },
    RevokeGrant {
        key: String,
        grant: String,
    },
    // EBS and EC2.
    CreateVolume {
        volume: String,
    },
    AttachVolume {
        volume: String,
        instance: String,
    },
    DetachVolume {
        volume: String,
    },
    CreateSnapshot {
        snapshot: String,
    },
    CopySnapshot {
        snapshot: String,
    },
    DeleteSnapshot {
        snapshot: String,
    },
    StopInstances {
        instance: String,
        /// `Hibernate=true`: RAM is saved to the encrypted root volume.
        #[serde(default)]
        hibernate: bool,
    },
    /// Launches an instance declared with an `image`.
    RunInstances {
        instance: String,
    },
    RegisterImage {
        image: String,
    },
    /// Scale an auto scaling group out or in.
    SetDesiredCapacity {
        group: String,
        desired: u32,
    },
    /// Terminate the instance in a group's place, keeping the desired capacity: the group
    /// launches a replacement, as after a failed health check (A13).
    TerminateInstanceInAutoScalingGroup {
        group: String,
        instance: String,
    },
    DeregisterImage {
        image: String,
    },
    StartInstances {
        instance: String,
    },
    RebootInstances {
        instance: String,
    },
    TerminateInstances {
        instance: String,
    },
    HostMaintenance {
        instance: String,
    },
    // The other services' resources.
    /// One use: a query, read, invocation or retrieval.
    Request {
        resource: String,
    },
    /// RebootDBInstance, RebootDBCluster, RebootCluster.
    Reboot {
        resource: String,
    },
    /// StopDBInstance, StopDBCluster, PauseCluster.
    Stop {
        resource: String,
    },
    /// StartDBInstance, StartDBCluster, ResumeCluster.
    Start {
        resource: String,
    },
    /// ResizeCluster of a Redshift cluster: it decrypts the cluster key, as a reboot does.
    Resize {
        resource: String,
    },
    /// From the backup, past the service's deadline: RestoreDBInstanceFromDBSnapshot,
    /// RestoreDBClusterFromSnapshot, RestoreFromClusterSnapshot, RestoreTableFromBackup.
    Restore {
        resource: String,
    },
    // Disk I/O inside the guest.
    Read {
        volume: String,
    },
    Write {
        volume: String,
    },
    IoLoad {
        volume: String,
        io: RawIo,
        every: String,
        #[serde(default)]
        until: Option<String>,
    },
}

#[derive(Debug, Deserialize, Clone, Copy)]
pub enum RawKeyState {
    Enabled,
    Disabled,
    PendingImport,
    PendingDeletion,
    /// The key no longer exists: deleted at the end of its waiting period.
    Deleted,
}

#[derive(Debug, Deserialize, Clone, Copy)]
pub enum RawOutcome {
    Ok,
    Failed,
    Info,
}

/// What a scenario expects of its run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum RawExpect {
    /// A key's state at a time.
    Key { key: String, at: String, is: RawKeyState },
    /// A volume's state at a time: `not-created`, `creating`, `available`, `attaching`, `in-use`.
    Volume { volume: String, at: String, is: String },
    /// An instance's state at a time: `pending`, `running`, `stopped`, `terminated`.
    Instance { instance: String, at: String, is: String },
    /// Whether a volume's plaintext data key is in its host's memory at a time.
    Cached { volume: String, at: String, is: bool },
    /// An event happens: at an exact time, inside a window, or anywhere in the run.
    Event {
        subject: String,
        event: String,
        #[serde(default)]
        outcome: Option<RawOutcome>,
        #[serde(default)]
        error: Option<String>,
        #[serde(default)]
        at: Option<String>,
        #[serde(default)]
        between: Option<(String, String)>,
    },
    /// No such event happens in the window (default: the whole run).
    Never {
        subject: String,
        event: String,
        #[serde(default)]
        outcome: Option<RawOutcome>,
        #[serde(default)]
        error: Option<String>,
        #[serde(default)]
        between: Option<(String, String)>,
    },
    /// Exactly `is` such events happen in the window (default: the whole run).
    Count {
        subject: String,
        event: String,
        #[serde(default)]
        outcome: Option<RawOutcome>,
        #[serde(default)]
        error: Option<String>,
        #[serde(default)]
        between: Option<(String, String)>,
        is: u64,
    },
    /// The instant a resource first failed because of its key, within a tolerance.
    BrokeAt {
        resource: String,
        at: String,
        #[serde(default)]
        within: Option<String>,
    },
    /// A service resource's state at a time, as its service names it
    /// (`inaccessible-encryption-credentials-recoverable`, `ACTIVE`, ...).
    Resource { resource: String, at: String, is: String },
    /// A resource's status at the end of the run: `unaffected`, `recovered`, `latent`, `blocked`, `broken`.
    Status { resource: String, is: String },
}
