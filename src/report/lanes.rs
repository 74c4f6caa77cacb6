//! The chart's model: per key, resource and instance, what it was doing over time, and when.
//!
//! A pure function of a finished run, kept apart from drawing so that the HTML report, the chart
//! and the tests read the same facts. Volumes combine their own state, the host's key cache and
//! their key's usability into one band per interval; the latent window comes from the summary.

use crate::actors::Obs;
use crate::actors::ebs::VolumeObs;
use crate::actors::ec2::{InstanceObs, InstanceState};
use crate::actors::kms::{KeyIdx, KeyState, KmsObs, KmsOp, KmsOutput};
use crate::engine::SimTime;
use crate::run::{Run, instance_actor, volume_actor};

use super::summary::{StartedBy, Summary};

/// What a lane shows over one interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Band {
    Key(KeyState),
    KeyDeleted,
    /// Attached, plaintext data key in host memory, key usable.
    Working(String),
    /// Attached and running on the cached data key while the key is unusable.
    Latent(String),
    /// Attached to an instance that holds no plaintext key (stopped, or failed to start).
    Idle(String),
    Detached,
    /// Holds no plaintext key and its key is unusable: the next attach or start fails.
    Unusable,
    Instance(InstanceState),
}

impl Band {
    /// The legend's name for the band's kind.
    #[must_use]
    pub fn legend(&self) -> &'static str {
        match self {
            Band::Key(s) => s.as_str(),
            Band::KeyDeleted => "key deleted",
            Band::Working(_) => "attached, key in memory",
            Band::Latent(_) => "latent: running on a cached key",
            Band::Idle(_) => "attached, no key in memory",
            Band::Detached => "detached",
            Band::Unusable => "unusable: key unusable",
            Band::Instance(s) => match s {
                InstanceState::Pending => "instance pending",
                InstanceState::Running => "instance running",
                InstanceState::Stopped => "instance stopped",
                InstanceState::Terminated => "instance terminated",
            },
        }
    }

    /// Text drawn inside the band when there is room.
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            Band::Key(s) => s.as_str().to_string(),
            Band::KeyDeleted => "deleted".into(),
            Band::Working(i) => format!("on {i}"),
            Band::Latent(i) => format!("latent on {i}"),
            Band::Idle(i) => format!("on {i}, no key"),
            Band::Detached => "detached".into(),
            Band::Unusable => "unusable".into(),
            Band::Instance(s) => s.as_str().into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub from: SimTime,
    pub to: SimTime,
    pub band: Band,
}

/// A failed operation, marked at the instant it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub at: SimTime,
    /// `AttachVolume: CustomerKeyHasBeenRevoked`.
    pub what: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaneKind {
    Key,
    Volume,
    Instance,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lane {
    pub name: String,
    pub kind: LaneKind,
    /// The key a volume depends on, for grouping.
    pub key: Option<String>,
    pub segments: Vec<Segment>,
    pub failures: Vec<Failure>,
    /// Latent windows: from the key going away to the break (or the end, if still latent).
    pub latent: Vec<(SimTime, SimTime, bool)>,
}

/// What a vertical marker stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkerKind {
    MaterialDeleted,
    MaterialExpired,
    Reimported,
    Disabled,
    Enabled,
    DeletionScheduled,
    DeletionCancelled,
    KeyDeleted,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    pub at: SimTime,
    pub kind: MarkerKind,
    pub label: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lanes {
    pub end: SimTime,
    /// Keys, each followed by its volumes; then the instances.
    pub lanes: Vec<Lane>,
    pub markers: Vec<Marker>,
}

/// Builds the chart's model from a run and its summary.
#[must_use]
pub fn build(run: &Run<'_>, summary: &Summary) -> Lanes {
    let s = run.scenario;
    let end = run.end;
    let key_segments: Vec<Vec<Segment>> =
        (0..s.keys.len()).map(|k| key_segments(run, KeyIdx(u32::try_from(k).expect("few keys")), end)).collect();
    let mut lanes = Vec::new();
    for (k, key) in s.keys.iter().enumerate() {
        lanes.push(Lane {
            name: key.name.clone(),
            kind: LaneKind::Key,
            key: None,
            segments: key_segments[k].clone(),
            failures: Vec::new(),
            latent: Vec::new(),
        });
        for (v, decl) in s.volumes.iter().enumerate().filter(|(_, d)| d.key.0 as usize == k) {
            lanes.push(volume_lane(run, summary, v, &decl.name, &key.name, &key_segments[k], end));
        }
    }
    for i in 0..s.instances.len() {
        lanes.push(instance_lane(run, summary, i, end));
    }
    Lanes { end, lanes, markers: markers(run) }
}

fn close(segments: &mut Vec<Segment>, at: SimTime, band: Option<Band>, open: &mut Option<(SimTime, Band)>) {
    if let Some((from, b)) = open.take()
        && at > from
    {
        match segments.last_mut() {
            Some(last) if last.band == b && last.to == from => last.to = at,
            _ => segments.push(Segment { from, to: at, band: b }),
        }
    }
    *open = band.map(|b| (at, b));
}

fn key_segments(run: &Run<'_>, key: KeyIdx, end: SimTime) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut open = None;
    for r in run.records_of_key(key) {
        match &r.obs {
            Obs::Kms(KmsObs::StateChanged { key: k, to, .. }) if *k == key => {
                close(&mut out, r.at, Some(Band::Key(*to)), &mut open);
            }
            Obs::Kms(KmsObs::KeyDeleted { key: k }) if *k == key => {
                close(&mut out, r.at, Some(Band::KeyDeleted), &mut open);
            }
            _ => {}
        }
    }
    close(&mut out, end, None, &mut open);
    out
}

fn usable_at(key: &[Segment], t: SimTime) -> bool {
    key.iter().any(|s| s.band == Band::Key(KeyState::Enabled) && s.from <= t && t < s.to)
}

fn volume_lane(
    run: &Run<'_>,
    summary: &Summary,
    v: usize,
    name: &str,
    key_name: &str,
    key: &[Segment],
    end: SimTime,
) -> Lane {
    let me = volume_actor(run.scenario, v);
    // (time, exists, attached to, key cached) after each change, in order.
    let mut changes: Vec<(SimTime, bool, Option<String>, bool)> = Vec::new();
    let (mut exists, mut attached, mut cached): (bool, Option<String>, bool) = (false, None, false);
    let mut failures = Vec::new();
    for r in run.records_of(me) {
        let before = (exists, attached.clone(), cached);
        match &r.obs {
            Obs::Volume(o) if r.actor == me => match o {
                VolumeObs::Created => exists = true,
                VolumeObs::CreateFailed { error } => {
                    failures.push(Failure { at: r.at, what: format!("CreateVolume: {}", error.exception.as_str()) });
                }
                VolumeObs::Attached { instance } => attached = Some(run.names.at(*instance, r.id).into_owned()),
                VolumeObs::Detached { .. } => {
                    attached = None;
                    cached = false;
                }
                VolumeObs::AttachFailed { error, .. } => {
                    failures.push(Failure { at: r.at, what: format!("AttachVolume: {}", error.code) });
                }
                VolumeObs::KeyLoadFailed { error, .. } => {
                    failures.push(Failure { at: r.at, what: format!("ReattachVolume: {}", error.code) });
                }
                VolumeObs::Io { kind, result: Err(f) } => {
                    failures.push(Failure { at: r.at, what: format!("{}: {f:?}", kind.as_str()) });
                }
                _ => {}
            },
            Obs::Instance(InstanceObs::DataKeyCached { volume }) if *volume == me => cached = true,
            Obs::Instance(InstanceObs::DataKeyEvicted { volume, .. }) if *volume == me => cached = false,
            _ => {}
        }
        if (exists, attached.clone(), cached) != before {
            changes.push((r.at, exists, attached.clone(), cached));
        }
    }
    // Bands change when the volume changes or its key's usability does.
    let mut times: Vec<SimTime> = changes.iter().map(|c| c.0).chain(key.iter().map(|s| s.from)).collect();
    times.sort_unstable();
    times.dedup();
    let mut segments = Vec::new();
    let mut open = None;
    let mut state: (bool, Option<String>, bool) = (false, None, false);
    let mut ci = 0;
    for t in times {
        while ci < changes.len() && changes[ci].0 <= t {
            state = (changes[ci].1, changes[ci].2.clone(), changes[ci].3);
            ci += 1;
        }
        let usable = usable_at(key, t);
        let band = match &state {
            (false, _, _) => None,
            (true, Some(i), true) if usable => Some(Band::Working(i.clone())),
            (true, Some(i), true) => Some(Band::Latent(i.clone())),
            (true, _, false) if !usable => Some(Band::Unusable),
            (true, Some(i), false) => Some(Band::Idle(i.clone())),
            (true, None, _) => Some(Band::Detached),
        };
        if open.as_ref().map(|(_, b)| b) != band.as_ref() {
            close(&mut segments, t, band, &mut open);
        }
    }
    close(&mut segments, end, None, &mut open);
    let latent = latent_windows(summary, name, end);
    Lane { name: name.to_string(), kind: LaneKind::Volume, key: Some(key_name.to_string()), segments, failures, latent }
}

fn latent_windows(summary: &Summary, name: &str, end: SimTime) -> Vec<(SimTime, SimTime, bool)> {
    let Some(r) = summary.resources.iter().find(|r| r.name == name) else { return Vec::new() };
    let mut out: Vec<(SimTime, SimTime, bool)> =
        r.breaks.iter().filter_map(|b| b.loss_at.map(|l| (l, b.broke_at, true))).collect();
    if let Some(since) = r.latent_since {
        out.push((since, end, false));
    }
    out
}

fn instance_lane(run: &Run<'_>, summary: &Summary, i: usize, end: SimTime) -> Lane {
    let me = instance_actor(run.scenario, i);
    let mut segments = Vec::new();
    let mut open = None;
    let mut failures = Vec::new();
    let mut started_by = StartedBy::default();
    for r in run.records_of(me) {
        let failed_start = match &r.obs {
            Obs::Instance(o) if r.actor == me => started_by.failed(o),
            _ => None,
        };
        match &r.obs {
            Obs::Instance(InstanceObs::StateChanged { to, reason, .. }) if r.actor == me => {
                if let (Some(action), Some((code, _))) = (failed_start, reason) {
                    failures.push(Failure { at: r.at, what: format!("{action}: {code}") });
                }
                close(&mut segments, r.at, Some(Band::Instance(*to)), &mut open);
            }
            Obs::Instance(InstanceObs::Refused { action, error }) if r.actor == me => {
                failures.push(Failure { at: r.at, what: format!("{}: {}", action.as_str(), error.code) });
            }
            _ => {}
        }
    }
    close(&mut segments, end, None, &mut open);
    let name = run.scenario.instances[i].to_string();
    let latent = latent_windows(summary, &name, end);
    Lane { name, kind: LaneKind::Instance, key: None, segments, failures, latent }
}

fn markers(run: &Run<'_>) -> Vec<Marker> {
    let s = run.scenario;
    let mut out = Vec::new();
    let mut imported: Vec<bool> = vec![false; s.keys.len()];
    let material = |m: crate::actors::kms::MaterialId| s.materials.get(m.0 as usize).cloned().unwrap_or_default();
    for r in &run.records {
        let (kind, label) = match &r.obs {
            Obs::Kms(KmsObs::Called { op, key: Some(k), result: Ok(out), .. }) => {
                let key = &s.key(*k).name;
                match (&**op, out) {
                    (KmsOp::DeleteImportedKeyMaterial { .. }, KmsOutput::MaterialDeleted { material: Some(m) }) => {
                        (MarkerKind::MaterialDeleted, format!("{key}: {} deleted", material(*m)))
                    }
                    (KmsOp::ImportKeyMaterial { material: m, .. }, _) => {
                        let first = !imported[k.0 as usize];
                        imported[k.0 as usize] = true;
                        if first {
                            continue;
                        }
                        (MarkerKind::Reimported, format!("{key}: {} reimported", material(*m)))
                    }
                    (KmsOp::DisableKey { .. }, _) => (MarkerKind::Disabled, format!("{key} disabled")),
                    (KmsOp::EnableKey { .. }, _) => (MarkerKind::Enabled, format!("{key} enabled")),
                    (KmsOp::ScheduleKeyDeletion { .. }, _) => {
                        (MarkerKind::DeletionScheduled, format!("{key} deletion scheduled"))
                    }
                    (KmsOp::CancelKeyDeletion { .. }, _) => {
                        (MarkerKind::DeletionCancelled, format!("{key} deletion cancelled"))
                    }
                    _ => continue,
                }
            }
            Obs::Kms(KmsObs::MaterialExpired { key, material: m }) => {
                (MarkerKind::MaterialExpired, format!("{}: {} expired", s.key(*key).name, material(*m)))
            }
            Obs::Kms(KmsObs::KeyDeleted { key }) => (MarkerKind::KeyDeleted, format!("{} deleted", s.key(*key).name)),
            _ => continue,
        };
        out.push(Marker { at: r.at, kind, label });
    }
    out
}
