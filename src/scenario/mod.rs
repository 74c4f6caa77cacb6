//! Scenario files: RON text in, a validated [`Scenario`] out, or every problem found.
//!
//! Parsing happens in two steps, as in ripgrep's low-level and high-level arguments: [`raw`] mirrors
//! the file with serde, then [`validate`] resolves names, parses times and checks every rule,
//! collecting all problems rather than stopping at the first. Nothing downstream re-checks input.
//! The format is documented in `scenarios/README.md`.

#![forbid(unsafe_code)]

mod actions;
pub use actions::Actions;
pub(crate) use actions::Made;
pub mod expect;
mod locate;
pub mod raw;
mod timefmt;
mod validate;
pub(crate) use validate::is_key_id;

use std::fmt;
use std::sync::Arc;

use crate::actors::dist::Dist;
use crate::actors::ebs::IoKind;
use crate::actors::ec2::InstanceAction;
use crate::actors::kms::{KeyIdx, KeySpec, KmsOp, KmsParams};
use crate::engine::{SimDuration, SimTime};

pub use timefmt::{TimeError, format_instant, parse_duration, parse_time};

/// The scenario format version this build reads.
pub const VERSION: u32 = 1;

/// A scenario whose every name resolves and every time lies within the horizon.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    pub description: Option<String>,
    /// The instant simulated time 0 stands for.
    pub start: jiff::Timestamp,
    pub horizon: SimTime,
    /// What `now` means in `--at` and `--delete-material-at`: for an imported scenario, the
    /// instant its estate or trail was taken.
    pub now: Option<SimTime>,
    pub seed: u64,
    pub account: String,
    pub region: String,
    /// The IAM user who performs the timeline's actions.
    pub user: String,
    pub kms: KmsParams,
    /// Delay of each call a service makes to KMS.
    pub kms_latency: Dist,
    pub keys: Vec<KeyDecl>,
    /// Key materials, by the names the timeline gives them; `MaterialId(i)` is `materials[i]`.
    pub materials: Vec<String>,
    pub instances: Vec<Arc<str>>,
    pub volumes: Vec<VolumeDecl>,
    pub snapshots: Vec<SnapshotDecl>,
    pub images: Vec<ImageDecl>,
    pub groups: Vec<GroupDecl>,
    /// The resources of the other services (RDS, Redshift, DynamoDB, S3, EFS, Lambda, Secrets
    /// Manager), each created at its `created` instant.
    pub services: Vec<ServiceDecl>,
    /// The services' named parameters (D11, D12, D23), as the scenario sets them.
    pub service_params: crate::actors::service::Params,
    /// The instances launched from an image, by instance (few: a map, beside a fleet's million).
    pub launches: std::collections::BTreeMap<usize, Launch>,
    pub fleets: Vec<FleetDecl>,
    /// Declared creations first (keys, instances), then the timeline, in file order.
    pub actions: Actions,
    /// What must be true of the run, in file order.
    pub expectations: Vec<expect::Expectation>,
}

#[derive(Clone, Debug)]
pub struct KeyDecl {
    /// The scenario's name for the key.
    pub name: String,
    pub spec: KeySpec,
}

/// A declared volume: a fleet's million stay for the run, so its indices are kept in 32 bits
/// (the validator sets them, through [`small`]).
#[derive(Clone, Debug)]
pub struct VolumeDecl {
    pub name: Arc<str>,
    pub key: KeyIdx,
    pub size_gib: u32,
    fleet: Option<(u32, u32)>,
    snapshot: Option<u32>,
}

const _: () = assert!(std::mem::size_of::<VolumeDecl>() == 48);

/// An index the validator bounded (`MAX_ACTORS`, or the count of what it indexes).
fn small(i: usize) -> u32 {
    u32::try_from(i).expect("a scenario's indices fit 32 bits")
}

impl VolumeDecl {
    /// The fleet the volume belongs to, whose cycle it follows, and its instance there.
    #[must_use]
    pub fn fleet(&self) -> Option<(usize, usize)> {
        self.fleet.map(|(f, i)| (f as usize, i as usize))
    }

    /// The snapshot its CreateVolume restores, if any.
    #[must_use]
    pub fn snapshot(&self) -> Option<usize> {
        self.snapshot.map(|x| x as usize)
    }
}

/// A declared EBS snapshot.
#[derive(Clone, Debug)]
pub struct SnapshotDecl {
    pub name: Arc<str>,
    /// The key its data key is under: its volume's, or the one its copy was made under.
    pub key: KeyIdx,
    pub source: SnapshotSource,
}

/// A declared AMI: the snapshots of its block-device mappings, the root volume's first.
#[derive(Clone, Debug)]
pub struct ImageDecl {
    pub name: Arc<str>,
    pub snapshots: Vec<usize>,
}

/// A declared auto scaling group, or a fleet's (A14): its places are instances launched from
/// its image.
#[derive(Clone, Debug)]
pub struct GroupDecl {
    pub name: Arc<str>,
    pub image: usize,
    /// The fleet whose instances the places are, if the group is a fleet's.
    pub fleet: Option<usize>,
    /// The instances it launches into, in order (`<id>-i0`, ...).
    pub places: Vec<usize>,
    pub desired: u32,
    pub replace_every: Option<Dist>,
    pub cooldown: SimDuration,
}

/// A declared resource of another service: its kind, key, and what its service does with it.
#[derive(Clone, Debug)]
pub struct ServiceDecl {
    pub name: Arc<str>,
    pub kind: crate::actors::service::Kind,
    pub key: KeyIdx,
    pub policy: crate::actors::service::Policy,
    /// How often it is used (queries, reads, invocations), if it has activity of its own.
    pub requests: Option<Dist>,
    /// How often it is rebooted, if it is (RDS, Aurora, Redshift).
    pub reboot_every: Option<Dist>,
    /// When it is created.
    pub created: SimTime,
}

/// How an instance declared with an image is launched: the image, and the volumes the launch
/// makes, one per snapshot of the image in its order (each restored from its snapshot).
#[derive(Clone, Debug)]
pub struct Launch {
    pub image: usize,
    pub volumes: Vec<usize>,
}

/// What a snapshot is made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotSource {
    /// CreateSnapshot of the `i`-th volume.
    Volume(usize),
    /// CopySnapshot of the `i`-th snapshot.
    Copy(usize),
}

pub use crate::actors::ebs::Cycle;

/// A declared fleet, expanded into `instances` and `volumes` (named `<id>-i<n>`, `<id>-v<n>`).
#[derive(Clone, Debug)]
pub struct FleetDecl {
    pub name: String,
    pub cycle: Arc<Cycle>,
    /// The instances' own behaviour, if the fleet declares any.
    pub instance_cycle: Option<Arc<crate::actors::ec2::InstanceCycle>>,
    pub instances: usize,
    pub volumes: usize,
    /// `volumes / instances`, kept: naming an actor of a fleet divides by it on every record.
    pub per_instance: usize,
    /// Where the fleet's instances and volumes start in [`Scenario::instances`] and
    /// [`Scenario::volumes`]; instance `j` of the fleet has volumes `j * per` to `j * per + per - 1`.
    pub first_instance: usize,
    pub first_volume: usize,
}

/// Something that happens to the world at a given time, from outside it.
#[derive(Clone, Debug)]
pub struct Action {
    pub at: SimTime,
    pub what: ActionKind,
    pub source: ActionSource,
}

/// Where an action comes from, for explanations.
#[derive(Clone, Debug)]
pub enum ActionSource {
    /// A key or instance declared in the scenario (`keys[0]`, `instances[1]`), created at time 0.
    Declared { path: String },
    /// The start of a fleet's volume: created and attached at time 0.
    Fleet { fleet: usize },
    /// The `index`-th timeline entry, on `line` of the file, reading `text`.
    Timeline { index: usize, line: Option<usize>, text: Option<String> },
}

#[derive(Clone, Debug)]
pub enum ActionKind {
    CreateKey(KeyIdx),
    RunInstance(usize),
    /// A KMS call by the scenario's user (boxed: most actions of a big fleet are small).
    Kms(Box<KmsOp>),
    Volume {
        volume: usize,
        op: VolumeOp,
    },
    Instance {
        instance: usize,
        op: InstanceAction,
    },
    /// CreateSnapshot or CopySnapshot (as the snapshot is declared), or DeleteSnapshot.
    Snapshot {
        snapshot: usize,
        op: SnapshotOp,
    },
    /// RegisterImage (`true`) or DeregisterImage.
    Image {
        image: usize,
        register: bool,
    },
    /// RunInstances of an instance declared with an image.
    LaunchFromImage(usize),
    /// An auto scaling group starts (at 0s) or is set to a new desired capacity.
    Group {
        group: usize,
        desired: u32,
    },
    /// A group replaces the instance in the place of the `instance`-th instance.
    GroupReplace {
        group: usize,
        instance: usize,
    },
    /// The `resource`-th service resource is created (at 0s), used, rebooted, stopped or started.
    Service {
        resource: usize,
        op: crate::actors::service::ServiceMsg,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotOp {
    Create,
    Delete,
}

#[derive(Clone, Copy, Debug)]
pub enum VolumeOp {
    Create,
    Attach { instance: usize },
    Detach,
    Io(IoKind),
    IoLoad { kind: IoKind, every: SimDuration, until: SimTime },
}

/// Command-line overrides, applied before validation so that every rule holds after them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Overrides {
    pub seed: Option<u64>,
    pub horizon: Option<SimDuration>,
}

/// One thing wrong with a scenario file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line and column, where known.
    pub position: Option<(usize, usize)>,
    /// Where in the scenario, as a field path: `timeline[3]`, `volumes[0].key`.
    pub path: String,
    pub message: String,
}

/// Every problem found in one scenario file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioError {
    pub file: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ScenarioError {
    /// One line per problem, `file:line:col: path: message`, the form editors jump to.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file)?;
            if let Some((line, col)) = p.position {
                write!(f, ":{line}:{col}")?;
            }
            if p.path.is_empty() {
                write!(f, ": {}", p.message)?;
            } else {
                write!(f, ": {}: {}", p.path, p.message)?;
            }
        }
        Ok(())
    }
}

/// Parses and validates scenario text. `file` names it in error messages.
pub fn parse(file: &str, text: &str, overrides: Overrides) -> Result<Scenario, ScenarioError> {
    // A byte-order mark is not part of the text (editors on Windows write one).
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let options = ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    let raw: raw::RawScenario = options.from_str(text).map_err(|e| ScenarioError {
        file: file.to_string(),
        problems: vec![Problem {
            position: Some((e.span.start.line, e.span.start.col)),
            path: String::new(),
            message: e.code.to_string(),
        }],
    })?;
    validate::validate(raw, text, overrides).map_err(|problems| ScenarioError { file: file.to_string(), problems })
}

impl ActionSource {
    /// Where in the file the action is: `timeline[3]`, `keys[0]`.
    #[must_use]
    pub fn path(&self) -> String {
        match self {
            ActionSource::Declared { path } => path.clone(),
            ActionSource::Fleet { fleet } => format!("fleets[{fleet}]"),
            ActionSource::Timeline { index, .. } => format!("timeline[{index}]"),
        }
    }
}

/// A what-if's instant a scenario cannot reach: its horizon would be more than ten years on.
#[derive(Debug, thiserror::Error)]
#[error("{0} is more than ten years after the start")]
pub struct TooFar(pub SimDuration);

impl Scenario {
    /// The key an id, key ID, alias or ARN in this scenario refers to, if any.
    #[must_use]
    pub fn key_named(&self, name: &str) -> Option<KeyIdx> {
        self.keys
            .iter()
            .position(|d| {
                d.name == name
                    || d.spec.arn == name
                    || d.spec.key_id == name
                    || d.spec.aliases.iter().any(|a| &**a == name)
            })
            .map(|i| KeyIdx(u32::try_from(i).expect("few keys")))
    }

    /// The material a timeline names so, if any.
    #[must_use]
    pub fn material_named(&self, name: &str) -> Option<crate::actors::kms::MaterialId> {
        let i = self.materials.iter().position(|m| m == name)?;
        Some(crate::actors::kms::MaterialId(u32::try_from(i).expect("few materials")))
    }

    /// A what-if: the user deletes `key`'s imported material (`material`, or the current one) at
    /// `at`, after everything else the timeline does then.
    pub fn delete_material_at(&mut self, key: KeyIdx, material: Option<crate::actors::kms::MaterialId>, at: SimTime) {
        use crate::actors::kms::{KeyRef, KmsOp};
        self.actions.push(Action {
            at,
            what: ActionKind::Kms(Box::new(KmsOp::DeleteImportedKeyMaterial { key: KeyRef::Id(key), material })),
            source: ActionSource::Declared { path: "--delete-material-at".into() },
        });
    }

    /// A what-if's instant past the horizon moves the horizon `after` beyond it, within the ten
    /// years a scenario may span; the horizon it had, if it moved.
    pub fn reach(&mut self, at: SimTime, after: SimDuration) -> Result<Option<SimTime>, TooFar> {
        if at <= self.horizon {
            return Ok(None);
        }
        let horizon = at + after;
        if horizon.since_start() > validate::MAX_HORIZON {
            return Err(TooFar(at.since_start()));
        }
        Ok(Some(std::mem::replace(&mut self.horizon, horizon)))
    }

    #[must_use]
    pub fn key(&self, key: KeyIdx) -> &KeyDecl {
        &self.keys[key.0 as usize]
    }

    /// A key's ARN, for the messages that name it.
    #[must_use]
    pub fn key_arn(&self, key: KeyIdx) -> &str {
        &self.key(key).spec.arn
    }

    /// The resource an encryption context names: the volumes come first, then the snapshots (a
    /// copy's context is its own id), then the other services' resources.
    #[must_use]
    pub fn volume_name(&self, id: crate::actors::kms::ContextId) -> &str {
        let i = id.0 as usize;
        match self.volumes.get(i) {
            Some(v) => &v.name,
            None => match self.snapshots.get(i - self.volumes.len()) {
                Some(x) => &x.name,
                None => &self.services[i - self.volumes.len() - self.snapshots.len()].name,
            },
        }
    }

    /// The encryption context of the `r`-th service resource.
    #[must_use]
    pub fn service_context(&self, r: usize) -> crate::actors::kms::ContextId {
        crate::actors::kms::ContextId(
            u32::try_from(self.volumes.len() + self.snapshots.len() + r).expect("resource count fits u32"),
        )
    }

    /// The service resource an encryption context belongs to, if it is one.
    #[must_use]
    pub fn context_service(&self, id: crate::actors::kms::ContextId) -> Option<usize> {
        (id.0 as usize).checked_sub(self.volumes.len() + self.snapshots.len())
    }

    /// The `aws:ebs:id` of the `s`-th snapshot.
    #[must_use]
    pub fn snapshot_context(&self, s: usize) -> crate::actors::kms::ContextId {
        crate::actors::kms::ContextId(u32::try_from(self.volumes.len() + s).expect("volume count fits u32"))
    }

    /// The absolute instant a simulated time stands for, as RFC 3339 with milliseconds.
    #[must_use]
    pub fn instant(&self, t: SimTime) -> String {
        format_instant(self.start, t)
    }
}

#[cfg(test)]
mod tests;
