//! A resource's standing at an instant: the one function every output takes it from.
//!
//! The run summary, the end-of-run blast radius, `kmsim impact` (text, JSON, DOT), the HTML
//! report and the charts all ask [`of_volume`], [`of_instance`], [`of_snapshot`], [`of_image`],
//! [`of_group`] or [`of_service`], over the same facts: the
//! world at the instant (a [`Snapshot`]: key states and materials, volume and instance states,
//! which plaintext data keys are in host memory), the material each volume's data key was made
//! under, and the resource's history of breaks up to the instant ([`Break`]s, from the summary).
//!
//! | standing | when |
//! |---|---|
//! | broken | it failed because of its key and has not worked since |
//! | latent | its data key cannot be decrypted now, but a running host holds it in plaintext; or a snapshot whose key cannot decrypt its data key, which breaks at its next restore or copy; or an image or group one of whose image's snapshots cannot be read, which breaks at its next launch; or another service's resource that still works on a plaintext its service holds, or until its service notices (D12) |
//! | blocked | its data key cannot be decrypted now, no host holds it: the next attach or start (or a service's next request) fails |
//! | recovered | it broke before and its data key can be decrypted now |
//! | unaffected | none of the above |
//!
//! A grant is not a fact of its own: EC2 makes a new one whenever it needs one (A4), and
//! CreateGrant needs exactly what Decrypt needs, a usable key.

use serde::Serialize;

use crate::actors::ebs::VolumeState;
use crate::actors::ec2::InstanceState;
use crate::actors::image::ImageState;
use crate::actors::kms::{KeyIdx, KeyState};
use crate::actors::snapshot::SnapshotState;
use crate::engine::SimTime;
use crate::run::{Role, Run, Snapshot, role};

use super::summary::{Break, KeySummary};

/// How a resource stands at an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Standing {
    /// Failed because of its key, and not working since.
    Broken,
    /// Its key cannot decrypt its data key and no host holds the plaintext: the next attach or
    /// start will fail.
    Blocked,
    /// Its key cannot decrypt its data key, but it still runs on the plaintext data key in host
    /// memory: it breaks at its next detach, stop or host maintenance.
    Latent,
    /// Broke while its key was unusable; its data key can be decrypted again.
    Recovered,
    /// Its key never stood in its way.
    Unaffected,
}

impl Standing {
    /// Every standing, the gravest first.
    pub const ALL: [Standing; 5] =
        [Standing::Broken, Standing::Blocked, Standing::Latent, Standing::Recovered, Standing::Unaffected];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Broken => "broken",
            Standing::Blocked => "blocked",
            Standing::Latent => "latent",
            Standing::Recovered => "recovered",
            Standing::Unaffected => "unaffected",
        }
    }
}

/// A resource's standing at an instant, with the key that decides it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub standing: Standing,
    /// The key whose state decides the standing (for a recovered or unaffected instance, the
    /// key of its last break, if any).
    pub key: Option<KeyIdx>,
    /// Latent or blocked: since when that key has been unusable (`None` if it never was usable).
    /// Broken: when it broke.
    pub since: Option<SimTime>,
}

/// Whether the `v`-th volume's data key can be decrypted in the world of `snap`: its key is
/// Enabled and holds the material the data key was made under. A volume not created yet needs
/// an Enabled key to be created.
#[must_use]
pub fn decryptable(run: &Run<'_>, snap: &Snapshot, v: usize) -> bool {
    let k = run.scenario.volumes[v].key.0 as usize;
    let enabled = snap.keys[k] == Some(KeyState::Enabled);
    let material_ok = match (snap.volumes[v].0, run.data_key_material(v)) {
        (Some(_), Some(m)) => snap.materials[k].contains(&m),
        _ => true,
    };
    enabled && material_ok
}

/// The break of `breaks` still open at `at`: broke by then and not working again by then.
fn open_break(breaks: &[Break], at: SimTime) -> Option<&Break> {
    breaks.iter().rev().find(|b| b.broke_at <= at && b.recovered_at.is_none_or(|r| r > at))
}

/// Since when `key` has been unusable at `at`: the start of its loss then, if it ever was usable.
#[must_use]
pub fn unusable_since(key: &KeySummary, at: SimTime) -> Option<SimTime> {
    key.losses.iter().rev().find(|l| l.at <= at && l.restored_at.is_none_or(|r| r > at)).map(|l| l.at)
}

fn decide(
    breaks: &[Break],
    at: SimTime,
    undecryptable: Option<KeyIdx>,
    held_in_memory: bool,
    keys: &[KeySummary],
) -> Verdict {
    if let Some(b) = open_break(breaks, at) {
        return Verdict { standing: Standing::Broken, key: b.key.or(undecryptable), since: Some(b.broke_at) };
    }
    if let Some(k) = undecryptable {
        let standing = if held_in_memory { Standing::Latent } else { Standing::Blocked };
        return Verdict { standing, key: Some(k), since: unusable_since(&keys[k.0 as usize], at) };
    }
    match breaks.iter().rev().find(|b| b.broke_at <= at) {
        Some(b) => Verdict { standing: Standing::Recovered, key: b.key, since: None },
        None => Verdict { standing: Standing::Unaffected, key: None, since: None },
    }
}

/// The standing of the `v`-th volume at `snap.at`, given its breaks (from the summary).
#[must_use]
pub fn of_volume(run: &Run<'_>, snap: &Snapshot, keys: &[KeySummary], v: usize, breaks: &[Break]) -> Verdict {
    let key = run.scenario.volumes[v].key;
    let undecryptable = (!decryptable(run, snap, v)).then_some(key);
    let mut verdict = decide(breaks, snap.at, undecryptable, snap.volumes[v].1, keys);
    // A volume's key is always the one it depends on.
    verdict.key = Some(key);
    verdict
}

/// The standing of the `x`-th EBS snapshot at `snap.at`, given its breaks. A snapshot needs its
/// key only at its next restore or copy: while its key cannot decrypt its data key it is latent,
/// and broken once a restore or copy fails.
#[must_use]
pub fn of_snapshot(run: &Run<'_>, snap: &Snapshot, keys: &[KeySummary], x: usize, breaks: &[Break]) -> Verdict {
    let key = run.scenario.snapshots[x].key;
    let undecryptable = snapshot_unreadable(run, snap, x).then_some(key);
    let mut verdict = decide(breaks, snap.at, undecryptable, true, keys);
    verdict.key = Some(key);
    verdict
}

/// Whether the `x`-th snapshot exists in `snap` and its key cannot decrypt its data key.
fn snapshot_unreadable(run: &Run<'_>, snap: &Snapshot, x: usize) -> bool {
    let k = run.scenario.snapshots[x].key.0 as usize;
    let exists = snap.snapshots[x] == Some(SnapshotState::Completed);
    let material_ok = run.ebs_snapshot(x).data_key_material().is_none_or(|m| snap.materials[k].contains(&m));
    exists && !(snap.keys[k] == Some(KeyState::Enabled) && material_ok)
}

/// The standing of the `x`-th image at `snap.at`, given its breaks: latent while one of its
/// snapshots cannot be read (its next launch fails), broken at the launch that failed.
#[must_use]
pub fn of_image(run: &Run<'_>, snap: &Snapshot, keys: &[KeySummary], x: usize, breaks: &[Break]) -> Verdict {
    let registered = snap.images[x] == Some(ImageState::Available);
    launched_from(run, snap, keys, x, registered, breaks)
}

/// The standing of what launches from the `x`-th image: latent while one of its snapshots
/// cannot be read (its next launch fails), decided by that snapshot's key.
fn launched_from(
    run: &Run<'_>,
    snap: &Snapshot,
    keys: &[KeySummary],
    x: usize,
    launchable: bool,
    breaks: &[Break],
) -> Verdict {
    let s = run.scenario;
    let undecryptable = s.images[x]
        .snapshots
        .iter()
        .find(|&&y| launchable && snapshot_unreadable(run, snap, y))
        .map(|&y| s.snapshots[y].key);
    let mut verdict = decide(breaks, snap.at, undecryptable, true, keys);
    verdict.key = verdict.key.or(undecryptable);
    verdict
}

/// The standing of the `x`-th auto scaling group at `snap.at`, given its breaks: latent while a
/// snapshot of its image cannot be read (its next launch fails), broken from a launch that
/// failed until one succeeds.
#[must_use]
pub fn of_group(run: &Run<'_>, snap: &Snapshot, keys: &[KeySummary], x: usize, breaks: &[Break]) -> Verdict {
    launched_from(run, snap, keys, run.scenario.groups[x].image, true, breaks)
}

/// The standing of the `x`-th resource of another service at `snap.at`, given its breaks:
/// while its key cannot decrypt its data key it is latent if it still works on a plaintext its
/// service holds, or will only break once its service notices (D12); blocked if its next request
/// decrypts (nothing held, no delay); broken once a request, a reboot or start, or its service's
/// check failed, until it works again.
#[must_use]
pub fn of_service(run: &Run<'_>, snap: &Snapshot, keys: &[KeySummary], x: usize, breaks: &[Break]) -> Verdict {
    use crate::actors::service::State;
    let decl = &run.scenario.services[x];
    let k = decl.key.0 as usize;
    let (state, held) = snap.services[x];
    let material_ok = run.service(x).data_key().and_then(|c| c.material).is_none_or(|m| snap.materials[k].contains(&m));
    let usable = snap.keys[k] == Some(KeyState::Enabled) && material_ok;
    let undecryptable = (state.is_some() && !usable).then_some(decl.key);
    let working = state == Some(State::Available) && (held || decl.policy.reaction.is_some());
    let mut verdict = decide(breaks, snap.at, undecryptable, working, keys);
    verdict.key = Some(decl.key);
    verdict
}

/// The volumes attached to each instance in `snap`, by instance, in volume order.
#[must_use]
pub fn attachments(run: &Run<'_>, snap: &Snapshot) -> Vec<Vec<usize>> {
    let s = run.scenario;
    let mut out = vec![Vec::new(); s.instances.len()];
    for (v, (state, _)) in snap.volumes.iter().enumerate() {
        if let Some(VolumeState::InUse(a)) = state
            && let Role::Instance(i) = role(s, *a)
        {
            out[i].push(v);
        }
    }
    out
}

/// The standing of the `i`-th instance at `snap.at`, given the volumes attached to it then
/// ([`attachments`]) and its breaks: an attached volume whose data key cannot be decrypted
/// decides it.
#[must_use]
pub fn of_instance(
    run: &Run<'_>,
    snap: &Snapshot,
    keys: &[KeySummary],
    i: usize,
    attached: &[usize],
    breaks: &[Break],
) -> Verdict {
    let running = snap.instances[i].0 == Some(InstanceState::Running);
    let undecryptable = attached.iter().find(|&&v| !decryptable(run, snap, v)).map(|&v| run.scenario.volumes[v].key);
    decide(breaks, snap.at, undecryptable, running, keys)
}
