//! The resources of the other services a key protects: RDS instances and Aurora clusters,
//! Redshift clusters, DynamoDB tables, S3 buckets, EFS file systems, Lambda functions and
//! Secrets Manager secrets, as one actor whose behaviour is its service's [`Policy`].
//!
//! ```text
//!   (not created) ──Create: GenerateDataKey──> available (the plaintext held, per the policy)
//!   available ──request: the held key, or Decrypt──> served, or failed (the service's error)
//!   available ──KMS tells of a key change; after the detection delay, Decrypt refused (D12)──> inaccessible
//!   inaccessible ──the key is back (noticed the same way), or a start that decrypts──> available
//!   inaccessible ──the service's deadline──> its terminal state
//! ```
//!
//! What the services share is here once: a data key made at creation; a plaintext held
//! [`Hold::PerRequest`] (never), [`Hold::For`] a time after each decrypt, [`Hold::Idle`] while
//! requests keep coming, or [`Hold::UntilRestart`]; and, for a service that notices, a
//! [`Reaction`]: a detection delay, a state, how it recovers and its deadlines. A service is
//! declared by its [`Kind`]: its policy (from the scenario's parameters), its names and words.
//! The source tags in comments (`[RDS-ENC]`, ...) and the decisions (D11, D12, D22-D24) are
//! those of `docs/model.md`.

use crate::engine::{ActorId, Scheduled, SimDuration, SimTime};

use super::dist::Dist;
use super::kms::{
    Caller, Ciphertext, CiphertextRef, ContextId, KeyIdx, KeyRef, KmsError, KmsException, KmsMsg, KmsOp, KmsOutput,
    KmsRequest, Service,
};
use super::{Msg, Obs, Reply, WorldCtx};

/// The services kmsim models beside EBS, each resource of which is a [`Resource`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Rds,
    Aurora,
    Redshift,
    DynamoDb,
    S3,
    Efs,
    Lambda,
    Secret,
}

impl Kind {
    pub const ALL: [Kind; 8] =
        [Kind::Rds, Kind::Aurora, Kind::Redshift, Kind::DynamoDb, Kind::S3, Kind::Efs, Kind::Lambda, Kind::Secret];

    /// The name a scenario gives the kind.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Rds => "Rds",
            Kind::Aurora => "Aurora",
            Kind::Redshift => "Redshift",
            Kind::DynamoDb => "DynamoDb",
            Kind::S3 => "S3",
            Kind::Efs => "Efs",
            Kind::Lambda => "Lambda",
            Kind::Secret => "Secret",
        }
    }

    /// What the resource is, in words (the summary's kind column).
    #[must_use]
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Rds => "rds instance",
            Kind::Aurora => "aurora cluster",
            Kind::Redshift => "redshift cluster",
            Kind::DynamoDb => "dynamodb table",
            Kind::S3 => "s3 bucket",
            Kind::Efs => "efs file system",
            Kind::Lambda => "lambda function",
            Kind::Secret => "secret",
        }
    }

    /// The service, in words.
    #[must_use]
    pub fn service_name(self) -> &'static str {
        match self {
            Kind::Rds | Kind::Aurora => "RDS",
            Kind::Redshift => "Redshift",
            Kind::DynamoDb => "DynamoDB",
            Kind::S3 => "S3",
            Kind::Efs => "EFS",
            Kind::Lambda => "Lambda",
            Kind::Secret => "Secrets Manager",
        }
    }

    /// The service's endpoint, as CloudTrail names it.
    #[must_use]
    pub fn host(self) -> &'static str {
        match self {
            Kind::Rds | Kind::Aurora => "rds.amazonaws.com",
            Kind::Redshift => "redshift.amazonaws.com",
            Kind::DynamoDb => "dynamodb.amazonaws.com",
            Kind::S3 => "s3.amazonaws.com",
            Kind::Efs => "elasticfilesystem.amazonaws.com",
            Kind::Lambda => "lambda.amazonaws.com",
            Kind::Secret => "secretsmanager.amazonaws.com",
        }
    }

    /// The call that creates the resource and its data key.
    #[must_use]
    pub fn create_api(self) -> &'static str {
        match self {
            Kind::Rds => "CreateDBInstance",
            Kind::Aurora => "CreateDBCluster",
            Kind::Redshift => "CreateCluster",
            Kind::DynamoDb => "CreateTable",
            // A bucket holds no data key: its first object (or its bucket key) does.
            Kind::S3 => "PutObject",
            Kind::Efs => "CreateFileSystem",
            Kind::Lambda => "CreateFunction",
            Kind::Secret => "CreateSecret",
        }
    }

    /// One use of the resource: a query, a read, an invocation.
    #[must_use]
    pub fn request_api(self) -> &'static str {
        match self {
            Kind::Rds | Kind::Aurora | Kind::Redshift => "Query",
            Kind::DynamoDb => "GetItem",
            Kind::S3 => "GetObject",
            Kind::Efs => "ReadFile",
            Kind::Lambda => "Invoke",
            Kind::Secret => "GetSecretValue",
        }
    }

    /// Whether the user can reboot, stop and start it.
    #[must_use]
    pub fn restartable(self) -> bool {
        matches!(self, Kind::Rds | Kind::Aurora | Kind::Redshift)
    }

    /// Whether it can be restored from its backup once past its service's deadline.
    #[must_use]
    pub fn restorable(self) -> bool {
        matches!(self, Kind::Rds | Kind::Aurora | Kind::Redshift | Kind::DynamoDb)
    }

    /// The service's call for a reboot, a stop or a start (of a kind that has them).
    #[must_use]
    pub fn api(self, what: Lifecycle) -> &'static str {
        match (self, what) {
            (Kind::Rds, Lifecycle::Reboot) => "RebootDBInstance",
            (Kind::Rds, Lifecycle::Stop) => "StopDBInstance",
            (Kind::Rds, Lifecycle::Start) => "StartDBInstance",
            (Kind::Aurora, Lifecycle::Reboot) => "RebootDBCluster",
            (Kind::Aurora, Lifecycle::Stop) => "StopDBCluster",
            (Kind::Aurora, Lifecycle::Start) => "StartDBCluster",
            (Kind::Redshift, Lifecycle::Reboot) => "RebootCluster",
            (Kind::Redshift, Lifecycle::Stop) => "PauseCluster",
            (Kind::Redshift, Lifecycle::Start) => "ResumeCluster",
            (Kind::Redshift, Lifecycle::Resize) => "ResizeCluster",
            (_, Lifecycle::Resize) => "Resize",
            (Kind::Rds, Lifecycle::Restore) => "RestoreDBInstanceFromDBSnapshot",
            (Kind::Aurora, Lifecycle::Restore) => "RestoreDBClusterFromSnapshot",
            (Kind::Redshift, Lifecycle::Restore) => "RestoreFromClusterSnapshot",
            (Kind::DynamoDb, Lifecycle::Restore) => "RestoreTableFromBackup",
            (_, Lifecycle::Restore) => "Restore",
            (_, Lifecycle::Reboot) => "Reboot",
            (_, Lifecycle::Stop) => "Stop",
            (_, Lifecycle::Start) => "Start",
        }
    }

    /// The request parameter that names a resource of the kind in its service's calls.
    #[must_use]
    pub fn id_param(self) -> &'static str {
        match self {
            Kind::Rds => "dBInstanceIdentifier",
            Kind::Aurora => "dBClusterIdentifier",
            Kind::Redshift => "clusterIdentifier",
            Kind::DynamoDb => "tableName",
            Kind::S3 => "bucketName",
            Kind::Efs => "creationToken",
            Kind::Lambda => "functionName",
            Kind::Secret => "name",
        }
    }

    /// The kind whose creation call is `name` (Lambda's also as CloudTrail logs it,
    /// `CreateFunction20150331`). An S3 bucket has none: its encryption is PutBucketEncryption.
    #[must_use]
    pub fn created_by(name: &str) -> Option<Kind> {
        let name = if name == "CreateFunction20150331" { "CreateFunction" } else { name };
        Kind::ALL.into_iter().find(|k| *k != Kind::S3 && k.create_api() == name)
    }

    /// The kind and the reboot, stop, start, resize or restore whose call is `name`.
    #[must_use]
    pub fn lifecycle_of(name: &str) -> Option<(Kind, Lifecycle)> {
        Kind::ALL.into_iter().flat_map(|k| Lifecycle::ALL.map(|l| (k, l))).find(|&(k, l)| k.has(l) && k.api(l) == name)
    }

    /// Whether a resource of the kind can be `what`ed by the user.
    #[must_use]
    pub fn has(self, what: Lifecycle) -> bool {
        match what {
            Lifecycle::Reboot | Lifecycle::Stop | Lifecycle::Start => self.restartable(),
            Lifecycle::Resize => self == Kind::Redshift,
            Lifecycle::Restore => self.restorable(),
        }
    }

    /// The key of the encryption context the service gives its data key.
    #[must_use]
    pub fn context_key(self) -> &'static str {
        match self {
            Kind::Rds => "aws:rds:db-id",
            Kind::Aurora => "aws:rds:dbc-id",
            Kind::Redshift => "aws:redshift:arn",
            Kind::DynamoDb => "aws:dynamodb:tableName",
            Kind::S3 => "aws:s3:arn",
            Kind::Efs => "aws:elasticfilesystem:filesystem:id",
            Kind::Lambda => "aws:lambda:FunctionArn",
            Kind::Secret => "SecretARN",
        }
    }

    /// The resource's state, as its service names it.
    #[must_use]
    pub fn state_name(self, state: State) -> &'static str {
        match (self, state) {
            (Kind::DynamoDb, State::Available) => "ACTIVE",
            (Kind::DynamoDb, State::Inaccessible) => "INACCESSIBLE_ENCRYPTION_CREDENTIALS",
            (Kind::DynamoDb, State::Terminal) => "ARCHIVED",
            (Kind::Lambda, State::Available) => "Active",
            (Kind::Lambda, State::Inaccessible) => "Failed",
            (Kind::Rds | Kind::Aurora, State::Inaccessible) => "inaccessible-encryption-credentials-recoverable",
            (Kind::Rds | Kind::Aurora, State::Terminal) => "inaccessible-encryption-credentials",
            (Kind::Redshift, State::Inaccessible) => "inaccessible-kms-key",
            (Kind::Redshift, State::Terminal) => "deleted",
            (Kind::Redshift, State::Stopped) => "paused",
            // EFS documents no state for a file system that stopped working (D11).
            (Kind::Efs, State::Inaccessible) => "available (I/O failing)",
            (_, State::Available) => "available",
            (_, State::Stopped) => "stopped",
            (_, State::Inaccessible) => "inaccessible",
            (_, State::Terminal) => "gone",
        }
    }

    /// The service's error when it could not decrypt its data key: the code, from KMS's
    /// exception (a service that documents one maps it; the others pass KMS's on, D22).
    #[must_use]
    pub fn error_code(self, exception: KmsException) -> &'static str {
        match self {
            Kind::Secret => "DecryptionFailure",
            Kind::Lambda => match exception {
                KmsException::Disabled => "KMSDisabledException",
                KmsException::InvalidState => "KMSInvalidStateException",
                KmsException::NotFound => "KMSNotFoundException",
                _ => "KMSAccessDeniedException",
            },
            _ => match exception {
                KmsException::Disabled => "KMS.DisabledException",
                KmsException::InvalidState => "KMS.KMSInvalidStateException",
                KmsException::NotFound => "KMS.NotFoundException",
                KmsException::Throttling => "KMS.ThrottlingException",
                _ => "KMS.AccessDeniedException",
            },
        }
    }

    /// The service's error when it could not make the resource's data key at its creation:
    /// RDS's `KMSKeyNotAccessibleFault`; the others as [`Kind::error_code`].
    #[must_use]
    pub fn create_error_code(self, exception: KmsException) -> &'static str {
        match self {
            Kind::Rds | Kind::Aurora if exception != KmsException::Throttling => "KMSKeyNotAccessibleFault",
            _ => self.error_code(exception),
        }
    }

    /// Lambda's `StateReasonCode` for a function that could not decrypt its environment.
    #[must_use]
    pub fn lambda_reason(exception: KmsException) -> &'static str {
        match exception {
            KmsException::Disabled => "DisabledKMSKey",
            KmsException::InvalidState => "InvalidStateKMSKey",
            KmsException::NotFound => "KMSKeyNotFound",
            _ => "KMSKeyAccessDenied",
        }
    }

    /// The service principal its KMS calls are made through.
    #[must_use]
    pub fn caller(self) -> Caller {
        Caller::UserVia(Service::Other(self))
    }
}

/// A reboot, stop, start, resize or restore by the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    Reboot,
    Stop,
    Start,
    /// A Redshift cluster's resize: like a reboot, it needs KMS to decrypt the cluster key.
    Resize,
    /// From the backup the service took, once past its deadline: the only way back for an RDS
    /// instance or Aurora cluster in `inaccessible-encryption-credentials`, a deleted Redshift
    /// cluster, an archived DynamoDB table; it needs a usable key.
    Restore,
}

impl Lifecycle {
    pub const ALL: [Lifecycle; 5] =
        [Lifecycle::Reboot, Lifecycle::Stop, Lifecycle::Start, Lifecycle::Resize, Lifecycle::Restore];

    /// The scenario's action for it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Reboot => "Reboot",
            Lifecycle::Stop => "Stop",
            Lifecycle::Start => "Start",
            Lifecycle::Resize => "Resize",
            Lifecycle::Restore => "Restore",
        }
    }
}

/// A resource's state; [`Kind::state_name`] words it as its service does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Available,
    Stopped,
    /// The service noticed that its key is unusable.
    Inaccessible,
    /// Past the service's deadline: archived, deleted, or recoverable only from a backup.
    Terminal,
}

/// How long a decrypted data key stays in the service's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// Not at all: every request decrypts (Secrets Manager, S3 without a bucket key).
    PerRequest,
    /// This long after each decrypt (DynamoDB's table key, an S3 bucket key).
    For(SimDuration),
    /// While requests come at most this far apart (a warm Lambda execution environment).
    Idle(SimDuration),
    /// Until the resource restarts (a database's or cluster's key, a mounted file system's).
    UntilRestart,
}

impl Hold {
    /// Until when a plaintext decrypted (or, idle, last used) at `now` is held: `None` for not
    /// at all, `SimTime::MAX` for until a restart.
    #[must_use]
    pub fn until(self, now: SimTime) -> Option<SimTime> {
        match self {
            Hold::PerRequest => None,
            Hold::For(d) | Hold::Idle(d) => Some(now + d),
            Hold::UntilRestart => Some(SimTime::MAX),
        }
    }

    /// Until when the plaintext is held after `obs`, a record of the resource, when it was held
    /// until `before`: what the resource's own bookkeeping does, read from its records.
    #[must_use]
    pub fn after(self, obs: &ServiceObs, at: SimTime, before: Option<SimTime>) -> Option<SimTime> {
        match obs {
            ServiceObs::Created { .. }
            | ServiceObs::Served { decrypted: true, .. }
            | ServiceObs::StateChanged { to: State::Available, .. } => self.until(at),
            ServiceObs::Served { decrypted: false, .. } if matches!(self, Hold::Idle(_)) => self.until(at),
            ServiceObs::Lifecycle { what, failure: None, .. } if *what != Lifecycle::Stop => self.until(at),
            // A stop; a reboot, which drops the key before it decrypts again; inaccessible, or
            // past its deadline.
            ServiceObs::Lifecycle { failure: None, .. }
            | ServiceObs::Lifecycle {
                what: Lifecycle::Reboot | Lifecycle::Resize,
                failure: Some(Failure::Kms(_)),
                ..
            }
            | ServiceObs::StateChanged { .. } => None,
            _ => before,
        }
    }
}

/// How a resource comes back once its key is usable again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// The service notices, as it noticed the loss (Redshift, DynamoDB, EFS).
    Automatic,
    /// Only a start by the user re-checks the key (RDS: `start-db-instance`).
    ByStart,
}

/// What happens at a deadline after the service noticed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Milestone {
    /// The terminal state.
    Terminal,
    /// A global-table replica is dropped from replication (DynamoDB, 20 hours).
    ReplicaDropped,
}

/// What a service does when it notices its key is unusable (D12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reaction {
    /// How long after a change of the key the service checks it.
    pub detect: SimDuration,
    pub recovery: Recovery,
    /// Deadlines counted from the instant it noticed.
    pub milestones: [Option<(SimDuration, Milestone)>; 2],
}

/// A service's behaviour towards its key: what every resource of the kind shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub hold: Hold,
    pub reaction: Option<Reaction>,
}

/// The services' named parameters (D11, D12, D23), each with its default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// How long RDS and Aurora take to notice their key changed (D12).
    pub rds_detection: SimDuration,
    pub redshift_detection: SimDuration,
    pub dynamodb_detection: SimDuration,
    /// How long DynamoDB keeps a table key after decrypting it (documented: 5 minutes).
    pub dynamodb_key_refresh: SimDuration,
    /// How long S3 keeps a bucket key (D11).
    pub s3_bucket_key_lifetime: SimDuration,
    /// How long a mounted EFS file system keeps working after its key changed (D11).
    pub efs_grace: SimDuration,
    /// How long a Lambda execution environment stays warm without an invocation (D23).
    pub lambda_idle: SimDuration,
}

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

impl Default for Params {
    fn default() -> Self {
        Params {
            rds_detection: SimDuration::from_ms(5 * MINUTE),
            redshift_detection: SimDuration::from_ms(5 * MINUTE),
            dynamodb_detection: SimDuration::from_ms(5 * MINUTE),
            dynamodb_key_refresh: SimDuration::from_ms(5 * MINUTE),
            s3_bucket_key_lifetime: SimDuration::from_ms(HOUR),
            efs_grace: SimDuration::from_ms(HOUR),
            lambda_idle: SimDuration::from_ms(15 * MINUTE),
        }
    }
}

impl Params {
    /// The policy of a resource of `kind`: the one table of what each service does with its
    /// key (docs/model.md, D22-D24). `bucket_key`: an S3 bucket with a bucket key; `replica`:
    /// a DynamoDB table that is a global table's replica.
    #[must_use]
    pub fn policy(&self, kind: Kind, bucket_key: bool, replica: bool) -> Policy {
        let d = SimDuration::from_ms;
        let reaction = |detect, recovery, milestones| Some(Reaction { detect, recovery, milestones });
        match kind {
            // [RDS-ENC]: recoverable for 7 days, by a start only; then terminal.
            Kind::Rds | Kind::Aurora => Policy {
                hold: Hold::UntilRestart,
                reaction: reaction(
                    self.rds_detection,
                    Recovery::ByStart,
                    [Some((d(7 * DAY), Milestone::Terminal)), None],
                ),
            },
            // [REDSHIFT-ENC]: inaccessible-kms-key for 14 days, access restored if the key returns, then deleted.
            Kind::Redshift => Policy {
                hold: Hold::UntilRestart,
                reaction: reaction(
                    self.redshift_detection,
                    Recovery::Automatic,
                    [Some((d(14 * DAY), Milestone::Terminal)), None],
                ),
            },
            // [DDB-ENC]: the table key refreshed every 5 minutes; inaccessible, archived after 7 days;
            // a replica dropped from replication 20 hours after detection.
            Kind::DynamoDb => Policy {
                hold: Hold::For(self.dynamodb_key_refresh),
                reaction: reaction(
                    self.dynamodb_detection,
                    Recovery::Automatic,
                    [
                        Some((d(7 * DAY), Milestone::Terminal)),
                        replica.then_some((d(20 * HOUR), Milestone::ReplicaDropped)),
                    ],
                ),
            },
            // [S3-BK]: per request without a bucket key; a bucket key kept for a time (D11).
            Kind::S3 => Policy {
                hold: if bucket_key { Hold::For(self.s3_bucket_key_lifetime) } else { Hold::PerRequest },
                reaction: None,
            },
            // [EFS-KMS]: keeps working for a period (D11), then stops; disable is reversible.
            Kind::Efs => Policy {
                hold: Hold::UntilRestart,
                reaction: reaction(self.efs_grace, Recovery::Automatic, [None, None]),
            },
            // [LAMBDA-EXC]: decrypted at each cold start (D11, D23).
            Kind::Lambda => Policy { hold: Hold::Idle(self.lambda_idle), reaction: None },
            // [SM-ENC]: every retrieval decrypts.
            Kind::Secret => Policy { hold: Hold::PerRequest, reaction: None },
        }
    }
}

/// Messages a resource handles.
#[derive(Clone, Copy, Debug)]
pub enum ServiceMsg {
    Create,
    /// One request by the user.
    Request,
    /// The resource's own activity: a request, and the next one drawn.
    Activity,
    /// Its own reboots: one, and the next one drawn.
    RebootCycle,
    Lifecycle(Lifecycle),
    /// From KMS: its key's state changed.
    KeyChanged,
    /// The detection delay after a change has passed: the service checks its key.
    Check,
    /// The `i`-th deadline of its reaction.
    Deadline(u8),
}

/// Why a request or a start failed.
#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    /// KMS refused the data key's decrypt.
    Kms(KmsError),
    /// The service had already marked the resource as unable to reach its key (or past it).
    Inaccessible(State),
    /// Not created, or stopped: nothing to do with a key.
    Unavailable(Option<State>),
}

impl Failure {
    /// The error code the user sees from a resource of `kind`.
    #[must_use]
    pub fn code(&self, kind: Kind) -> &'static str {
        match self {
            Failure::Kms(e) => kind.error_code(e.exception),
            // What a client of a file system that stopped working sees: an I/O error.
            Failure::Inaccessible(_) if kind == Kind::Efs => "EIO",
            Failure::Inaccessible(s) | Failure::Unavailable(Some(s)) => kind.state_name(*s),
            Failure::Unavailable(None) => "ResourceNotFoundException",
        }
    }

    /// The error in words, as the service words it where it documents its words; `arn` words a
    /// key for KMS's message.
    #[must_use]
    pub fn message<'a>(&'a self, kind: Kind, arn: &dyn Fn(KeyIdx) -> &'a str) -> String {
        match self {
            Failure::Kms(e) => {
                let kms = e.message(arn);
                match kind {
                    Kind::Secret => {
                        "Secrets Manager can't decrypt the protected secret text using the provided KMS key.".into()
                    }
                    Kind::Lambda => format!(
                        "Lambda was unable to decrypt the environment variables because KMS access was denied. \
                         Please check the function's KMS key settings. KMS Exception: {} KMS Message: {kms}",
                        e.exception.as_str()
                    ),
                    _ => format!("{}: {kms}", kind.error_code(e.exception)),
                }
            }
            Failure::Inaccessible(s) | Failure::Unavailable(Some(s)) => {
                format!("the {} is {}", kind.noun(), kind.state_name(*s))
            }
            Failure::Unavailable(None) => format!("the {} does not exist", kind.noun()),
        }
    }

    /// KMS's exception, when KMS refused (throttling included).
    #[must_use]
    pub fn refusal(&self) -> Option<KmsException> {
        match self {
            Failure::Kms(e) => Some(e.exception),
            _ => None,
        }
    }

    /// Whether KMS refused: a failure because of the key, not of the resource's state.
    #[must_use]
    pub fn by_kms(&self) -> bool {
        matches!(self, Failure::Kms(e) if e.exception != KmsException::Throttling)
    }
}

/// Facts a resource records.
#[derive(Clone, Debug, PartialEq)]
pub enum ServiceObs {
    Created {
        kind: Kind,
    },
    CreateFailed {
        kind: Kind,
        error: KmsError,
    },
    /// A request worked; `decrypted`: it needed KMS.
    Served {
        kind: Kind,
        decrypted: bool,
    },
    RequestFailed {
        kind: Kind,
        failure: Failure,
    },
    /// A reboot, stop or start by the user, and whether it worked.
    Lifecycle {
        kind: Kind,
        what: Lifecycle,
        failure: Option<Failure>,
    },
    /// The service moved it to another state; `reason`: KMS's refusal that made it (a Lambda
    /// function's `StateReasonCode` words it).
    StateChanged {
        kind: Kind,
        from: State,
        to: State,
        reason: Option<KmsException>,
    },
    ReplicaDropped {
        kind: Kind,
    },
}

impl ServiceObs {
    /// The stable event name.
    #[must_use]
    pub fn event_name(&self) -> &'static str {
        match self {
            ServiceObs::Created { kind } | ServiceObs::CreateFailed { kind, .. } => kind.create_api(),
            ServiceObs::Served { kind, .. } | ServiceObs::RequestFailed { kind, .. } => kind.request_api(),
            ServiceObs::Lifecycle { kind, what, .. } => kind.api(*what),
            ServiceObs::StateChanged { .. } => "ResourceStateChanged",
            ServiceObs::ReplicaDropped { .. } => "ReplicaDropped",
        }
    }

    #[must_use]
    pub fn kind(&self) -> Kind {
        match self {
            ServiceObs::Created { kind }
            | ServiceObs::CreateFailed { kind, .. }
            | ServiceObs::Served { kind, .. }
            | ServiceObs::RequestFailed { kind, .. }
            | ServiceObs::Lifecycle { kind, .. }
            | ServiceObs::StateChanged { kind, .. }
            | ServiceObs::ReplicaDropped { kind } => *kind,
        }
    }
}

/// What a record says of its resource's standing with its key: every output that follows a
/// resource's breaks reads it here ([`ServiceObs::effect`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// It worked: a creation, a request served, a reboot, start or restore, access back.
    Worked(&'static str),
    /// It failed because of its key: KMS refused its service, or its service marked it
    /// inaccessible.
    Broke { action: &'static str, code: &'static str },
}

impl ServiceObs {
    /// What the record says of its resource's standing with its key, if anything.
    #[must_use]
    pub fn effect(&self) -> Option<Effect> {
        let kind = self.kind();
        match self {
            ServiceObs::Created { .. } => Some(Effect::Worked(kind.create_api())),
            ServiceObs::Served { .. } => Some(Effect::Worked(kind.request_api())),
            ServiceObs::Lifecycle { what, failure: None, .. } if *what != Lifecycle::Stop => {
                Some(Effect::Worked(kind.api(*what)))
            }
            ServiceObs::StateChanged { to: State::Available, .. } => Some(Effect::Worked("available again")),
            // The account's request quota, not the key: the resource was never made (D25).
            ServiceObs::CreateFailed { error, .. } if error.exception != KmsException::Throttling => {
                Some(Effect::Broke { action: kind.create_api(), code: kind.create_error_code(error.exception) })
            }
            ServiceObs::RequestFailed { failure, .. } if failure.by_kms() => {
                Some(Effect::Broke { action: kind.request_api(), code: failure.code(kind) })
            }
            ServiceObs::Lifecycle { what, failure: Some(failure), .. } if failure.by_kms() => {
                Some(Effect::Broke { action: kind.api(*what), code: failure.code(kind) })
            }
            ServiceObs::StateChanged { to: State::Inaccessible, .. } => {
                Some(Effect::Broke { action: "ResourceStateChanged", code: kind.state_name(State::Inaccessible) })
            }
            // A deadline passing while inaccessible, whose break is still open (nothing works in
            // between): a graver state, no new failure.
            _ => None,
        }
    }
}

/// Every event name a resource's record can have.
pub fn event_names() -> impl Iterator<Item = &'static str> {
    let per_kind = Kind::ALL.into_iter().flat_map(|k| {
        let life = Lifecycle::ALL.into_iter().filter(move |l| k.has(*l)).map(move |l| k.api(l));
        [k.create_api(), k.request_api()].into_iter().chain(life)
    });
    per_kind.chain(["ResourceStateChanged", "ReplicaDropped"])
}

/// A resource of another service, protected by one key.
#[derive(Debug)]
pub struct Resource {
    kind: Kind,
    policy: Policy,
    kms: ActorId,
    key: KeyIdx,
    context: ContextId,
    requests: Option<Dist>,
    reboots: Option<Dist>,
    data_key: Option<Ciphertext>,
    state: Option<State>,
    /// Until when the plaintext data key is in the service's memory (`SimTime::MAX`: until a
    /// restart); `None`: not held.
    held_until: Option<SimTime>,
    check_pending: bool,
    deadlines: Vec<Scheduled>,
}

impl Resource {
    #[must_use]
    pub fn new(
        kind: Kind,
        policy: Policy,
        kms: ActorId,
        key: KeyIdx,
        context: ContextId,
        requests: Option<Dist>,
    ) -> Self {
        Resource {
            kind,
            policy,
            kms,
            key,
            context,
            requests,
            reboots: None,
            data_key: None,
            state: None,
            held_until: None,
            check_pending: false,
            deadlines: Vec::new(),
        }
    }

    /// Rebooted by itself, at times drawn from `every` (an estate's maintenance).
    #[must_use]
    pub fn rebooting(mut self, every: Option<Dist>) -> Self {
        self.reboots = every;
        self
    }

    #[must_use]
    pub fn state(&self) -> Option<State> {
        self.state
    }

    /// Whether its plaintext data key is in the service's memory at `at`.
    #[must_use]
    pub fn holds_key(&self, at: SimTime) -> bool {
        self.held_until.is_some_and(|t| t > at)
    }

    /// Its data key, once created.
    #[must_use]
    pub fn data_key(&self) -> Option<&Ciphertext> {
        self.data_key.as_ref()
    }

    pub fn handle(&mut self, msg: ServiceMsg, ctx: &mut WorldCtx<'_>) {
        match msg {
            ServiceMsg::Create => self.create(ctx),
            ServiceMsg::Request => self.request(ctx),
            ServiceMsg::Activity => {
                self.request(ctx);
                again(self.requests.as_ref(), ServiceMsg::Activity, ctx);
            }
            ServiceMsg::RebootCycle => {
                self.lifecycle(Lifecycle::Reboot, ctx);
                again(self.reboots.as_ref(), ServiceMsg::RebootCycle, ctx);
            }
            ServiceMsg::Lifecycle(what) => self.lifecycle(what, ctx),
            ServiceMsg::KeyChanged => {
                let watching = matches!(
                    (self.state, self.policy.reaction),
                    (Some(State::Available), Some(_))
                        | (Some(State::Inaccessible), Some(Reaction { recovery: Recovery::Automatic, .. }))
                );
                if watching && !self.check_pending {
                    let detect = self.policy.reaction.map_or(SimDuration::ZERO, |r| r.detect);
                    self.check_pending = true;
                    ctx.send(ctx.me(), Msg::Service(ServiceMsg::Check), detect);
                }
            }
            ServiceMsg::Check => self.check(ctx),
            ServiceMsg::Deadline(i) => self.deadline(i, ctx),
        }
    }

    fn create(&mut self, ctx: &mut WorldCtx<'_>) {
        let kind = self.kind;
        let op = KmsOp::GenerateDataKey { key: KeyRef::Id(self.key), context: Some(self.context), name: None };
        match self.kms_call(op, ctx) {
            Ok(KmsOutput::Ciphertext(c)) => {
                self.data_key = Some(c);
                self.state = Some(State::Available);
                self.hold(ctx.now());
                ctx.record(Obs::Service(ServiceObs::Created { kind }));
                again(self.requests.as_ref(), ServiceMsg::Activity, ctx);
                again(self.reboots.as_ref(), ServiceMsg::RebootCycle, ctx);
            }
            Ok(other) => unreachable!("GenerateDataKey answered {other:?}"),
            Err(error) => {
                ctx.record(Obs::Service(ServiceObs::CreateFailed { kind, error }));
            }
        }
    }

    /// The plaintext has just been decrypted (or made) at `now`: held as the policy says.
    fn hold(&mut self, now: SimTime) {
        self.held_until = self.policy.hold.until(now);
    }

    fn kms_call(&self, op: KmsOp, ctx: &mut WorldCtx<'_>) -> Result<KmsOutput, KmsError> {
        let request = KmsRequest { caller: self.kind.caller(), op: Box::new(op) };
        match ctx.call(self.kms, Msg::Kms(KmsMsg::Request(request))) {
            Reply::Kms(outcome) => outcome,
            other => unreachable!("KMS answered {other:?}"),
        }
    }

    /// Decrypts the data key: the plaintext is held again if it works.
    fn decrypt(&mut self, ctx: &mut WorldCtx<'_>) -> Result<(), KmsError> {
        let c = self.data_key.clone().expect("only a created resource decrypts");
        let op = KmsOp::Decrypt { context: c.context, ciphertext: CiphertextRef::Blob(c), key: None };
        self.kms_call(op, ctx).map(|_| self.hold(ctx.now()))
    }

    fn request(&mut self, ctx: &mut WorldCtx<'_>) {
        let kind = self.kind;
        let now = ctx.now();
        let failure = match self.state {
            Some(State::Available) if self.holds_key(now) => {
                if let Hold::Idle(_) = self.policy.hold {
                    self.hold(now);
                }
                ctx.record(Obs::Service(ServiceObs::Served { kind, decrypted: false }));
                return;
            }
            // A service that does not react to its key tries again at each request (a Lambda
            // function in Failed state at its next cold start).
            Some(s @ (State::Available | State::Inaccessible))
                if s == State::Available || self.policy.reaction.is_none() =>
            {
                match self.decrypt(ctx) {
                    Ok(()) => {
                        if s == State::Inaccessible {
                            self.recovered(s, ctx);
                        }
                        ctx.record(Obs::Service(ServiceObs::Served { kind, decrypted: true }));
                        return;
                    }
                    Err(error) => Failure::Kms(error),
                }
            }
            Some(s @ (State::Inaccessible | State::Terminal)) => Failure::Inaccessible(s),
            other => Failure::Unavailable(other),
        };
        let refused = failure.refusal();
        ctx.record(Obs::Service(ServiceObs::RequestFailed { kind, failure }));
        if let Some(exception) = refused {
            self.refused(exception, ctx);
        }
    }

    /// The service's own decrypt was refused: a service that reacts knows now, without waiting
    /// for its detection delay; a Lambda function fails with the reason.
    fn refused(&mut self, exception: KmsException, ctx: &mut WorldCtx<'_>) {
        if exception == KmsException::Throttling {
            return;
        }
        if self.policy.reaction.is_some() || self.kind == Kind::Lambda {
            self.become_inaccessible(Some(exception), ctx);
        }
    }

    fn lifecycle(&mut self, what: Lifecycle, ctx: &mut WorldCtx<'_>) {
        let kind = self.kind;
        let failure = match (what, self.state) {
            (Lifecycle::Reboot | Lifecycle::Resize, Some(State::Available)) => {
                // A reboot drops the key from memory and needs KMS to get it back ([REDSHIFT-ENC]).
                self.held_until = None;
                self.decrypt(ctx).err().map(Failure::Kms)
            }
            (Lifecycle::Stop, Some(State::Available)) => {
                self.held_until = None;
                self.state = Some(State::Stopped);
                None
            }
            (Lifecycle::Start, Some(was @ (State::Stopped | State::Inaccessible)))
            | (Lifecycle::Restore, Some(was @ State::Terminal)) => match self.decrypt(ctx) {
                Ok(()) => {
                    self.state = Some(State::Available);
                    if was != State::Stopped {
                        self.recovered(was, ctx);
                    }
                    None
                }
                Err(e) => Some(Failure::Kms(e)),
            },
            (Lifecycle::Restore, other) => Some(Failure::Unavailable(other)),
            (_, Some(s @ (State::Inaccessible | State::Terminal))) => Some(Failure::Inaccessible(s)),
            (_, other) => Some(Failure::Unavailable(other)),
        };
        let refused = failure.as_ref().and_then(Failure::refusal);
        ctx.record(Obs::Service(ServiceObs::Lifecycle { kind, what, failure }));
        if let Some(exception) = refused {
            if self.state == Some(State::Stopped) {
                // A start that cannot decrypt leaves the resource where the service puts it.
                self.state = Some(State::Available);
            }
            self.refused(exception, ctx);
        }
    }

    fn check(&mut self, ctx: &mut WorldCtx<'_>) {
        self.check_pending = false;
        let state = self.state;
        match state {
            Some(State::Available) => {
                if let Err(error) = self.decrypt(ctx)
                    && error.exception != KmsException::Throttling
                {
                    self.become_inaccessible(Some(error.exception), ctx);
                }
            }
            Some(State::Inaccessible)
                if self.policy.reaction.is_some_and(|r| r.recovery == Recovery::Automatic)
                    && self.decrypt(ctx).is_ok() =>
            {
                self.recovered(State::Inaccessible, ctx);
            }
            _ => {}
        }
    }

    fn become_inaccessible(&mut self, reason: Option<KmsException>, ctx: &mut WorldCtx<'_>) {
        let from = self.state.expect("a created resource");
        if from == State::Inaccessible || from == State::Terminal {
            return;
        }
        self.state = Some(State::Inaccessible);
        self.held_until = None;
        ctx.record(Obs::Service(ServiceObs::StateChanged { kind: self.kind, from, to: State::Inaccessible, reason }));
        if let Some(r) = self.policy.reaction {
            for (i, m) in r.milestones.iter().enumerate() {
                if let Some((after, _)) = m {
                    let i = u8::try_from(i).expect("two deadlines");
                    self.deadlines.push(ctx.send(ctx.me(), Msg::Service(ServiceMsg::Deadline(i)), *after));
                }
            }
        }
    }

    /// Back to available after the service was inaccessible, or past its deadline (a restore):
    /// its deadlines are off.
    fn recovered(&mut self, from: State, ctx: &mut WorldCtx<'_>) {
        self.state = Some(State::Available);
        for d in self.deadlines.drain(..) {
            ctx.cancel(d);
        }
        ctx.record(Obs::Service(ServiceObs::StateChanged {
            kind: self.kind,
            from,
            to: State::Available,
            reason: None,
        }));
    }

    fn deadline(&mut self, i: u8, ctx: &mut WorldCtx<'_>) {
        let Some((_, milestone)) = self.policy.reaction.and_then(|r| r.milestones[i as usize]) else { return };
        if self.state != Some(State::Inaccessible) {
            return;
        }
        match milestone {
            Milestone::ReplicaDropped => {
                ctx.record(Obs::Service(ServiceObs::ReplicaDropped { kind: self.kind }));
            }
            Milestone::Terminal => {
                self.state = Some(State::Terminal);
                self.deadlines.clear();
                ctx.record(Obs::Service(ServiceObs::StateChanged {
                    kind: self.kind,
                    from: State::Inaccessible,
                    to: State::Terminal,
                    reason: None,
                }));
            }
        }
    }
}

/// The next of a resource's own activities (`msg`), after a time drawn from `every`, if it has any.
fn again(every: Option<&Dist>, msg: ServiceMsg, ctx: &mut WorldCtx<'_>) {
    if let Some(d) = every {
        let after = d.draw(&mut ctx.rng());
        ctx.send(ctx.me(), Msg::Service(msg), after);
    }
}
