//! What broke, and when: per key, the periods it was unusable; per resource, its latent window.
//!
//! A pure function of a finished [`Run`]. A *loss* is a key leaving `Enabled` (material deleted
//! or expired, disabled, scheduled for deletion); a resource *breaks* at its first failure caused
//! by the key during a loss; its *latent window* is the time from the loss to the break, during
//! which it kept working on a plaintext data key cached in host memory.

use std::fmt::Write as _;

use crate::actors::Obs;
use crate::actors::ebs::{VolumeObs, VolumeState};
use crate::actors::ec2::{InstanceObs, InstanceState};
use crate::actors::kms::{KeyIdx, KeyState, KmsObs};
use crate::engine::{Cause, SimDuration, SimTime};
use crate::run::{Role, Run, instance_actor, role, volume_actor};

use super::describe::{caller_words, describe};
use super::standing::{self, Standing};

/// A period during which a key could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loss {
    pub at: SimTime,
    /// What made the key unusable, in words (`DeleteImportedKeyMaterial by alice`).
    pub why: String,
    /// When the key was `Enabled` again, if it was.
    pub restored_at: Option<SimTime>,
    /// When the key was deleted, which ends every hope of restoring it.
    pub deleted_at: Option<SimTime>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySummary {
    pub key: KeyIdx,
    pub name: String,
    /// Each state change: when, from, to (`None` for deleted), and what caused it.
    pub changes: Vec<(SimTime, Option<KeyState>, Option<KeyState>, String)>,
    pub losses: Vec<Loss>,
    /// `None` once deleted.
    pub state_at_end: Option<KeyState>,
}

/// A resource's first failure during one loss of its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Break {
    /// The key whose refusal it was.
    pub key: Option<KeyIdx>,
    /// When the key became unusable (as the failed call saw it, D13); `None` if it was not.
    pub loss_at: Option<SimTime>,
    /// Whether the key had ever been usable before the break.
    pub key_was_usable: bool,
    pub last_good_use: Option<(SimTime, &'static str)>,
    pub broke_at: SimTime,
    /// The failed operation and its error code.
    pub how: String,
    pub recovered_at: Option<SimTime>,
}

impl Break {
    #[must_use]
    pub fn latent_window(&self) -> Option<SimDuration> {
        self.loss_at.map(|l| self.broke_at - l)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceSummary {
    pub name: String,
    pub kind: &'static str,
    pub key: Option<String>,
    pub breaks: Vec<Break>,
    pub last_good_use: Option<(SimTime, &'static str)>,
    /// Its standing at the end, from [`standing`](super::standing).
    pub status: Standing,
    /// For a latent resource: since when its key has been unusable.
    pub latent_since: Option<SimTime>,
    pub at_end: String,
}

/// What happened to a resource, before any verdict: its breaks and its last good use.
struct History {
    breaks: Vec<Break>,
    last_good: Option<(SimTime, &'static str)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub keys: Vec<KeySummary>,
    /// The volumes, in scenario order, then the instances.
    pub resources: Vec<ResourceSummary>,
    pub end: SimTime,
}

impl Summary {
    /// The summary of the `v`-th volume.
    #[must_use]
    pub fn volume(&self, v: usize) -> &ResourceSummary {
        &self.resources[v]
    }

    /// The summary of the `i`-th instance.
    #[must_use]
    pub fn instance(&self, i: usize, scenario: &crate::scenario::Scenario) -> &ResourceSummary {
        &self.resources[scenario.volumes.len() + i]
    }
}

#[must_use]
pub fn summarize(run: &Run<'_>) -> Summary {
    let s = run.scenario;
    let keys: Vec<KeySummary> =
        (0..s.keys.len()).map(|i| key_summary(run, KeyIdx(u32::try_from(i).expect("few keys")))).collect();
    let snap = run.final_snapshot();
    let attached = standing::attachments(run, &snap);
    let mut resources = Vec::new();
    for i in 0..s.volumes.len() {
        let history = volume_history(run, i, &keys);
        let verdict = standing::of_volume(run, &snap, &keys, i, &history.breaks);
        resources.push(volume_summary(run, i, history, &verdict, &keys));
    }
    for (i, attached) in attached.iter().enumerate() {
        let history = instance_history(run, i, &keys);
        let verdict = standing::of_instance(run, &snap, &keys, i, attached, &history.breaks);
        resources.push(instance_summary(run, i, history, &verdict, &keys));
    }
    Summary { keys, resources, end: run.end }
}

fn cause_words(run: &Run<'_>, cause: Cause) -> String {
    let Cause::Record(id) = cause else { return "declared in the scenario".to_string() };
    match run.record(id).map(|r| &r.obs) {
        Some(Obs::Kms(KmsObs::Called { caller, op, .. })) => {
            format!("{} {}", op.operation().as_str(), caller_words(&run.names, *caller, id))
        }
        Some(Obs::Kms(KmsObs::MaterialExpired { .. })) => "material expired at its ValidTo".to_string(),
        Some(Obs::Kms(KmsObs::KeyDeleted { .. })) => "waiting period ended".to_string(),
        Some(_) => describe(&run.names, run.record(id).expect("found")).event.to_string(),
        None => String::new(),
    }
}

fn key_summary(run: &Run<'_>, key: KeyIdx) -> KeySummary {
    let mut changes = Vec::new();
    let mut losses: Vec<Loss> = Vec::new();
    for r in run.records_of_key(key) {
        match &r.obs {
            Obs::Kms(KmsObs::StateChanged { key: k, from, to }) if *k == key => {
                let why = cause_words(run, r.cause);
                if *from == Some(KeyState::Enabled) {
                    losses.push(Loss { at: r.at, why: why.clone(), restored_at: None, deleted_at: None });
                }
                if *to == KeyState::Enabled
                    && let Some(open) = losses.last_mut().filter(|l| l.restored_at.is_none())
                {
                    open.restored_at = Some(r.at);
                }
                changes.push((r.at, *from, Some(*to), why));
            }
            Obs::Kms(KmsObs::KeyDeleted { key: k }) if *k == key => {
                if let Some(open) = losses.last_mut().filter(|l| l.restored_at.is_none()) {
                    open.deleted_at = Some(r.at);
                }
                let from = changes.last().and_then(|c: &(SimTime, Option<KeyState>, Option<KeyState>, String)| c.2);
                changes.push((r.at, from, None, "waiting period ended".to_string()));
            }
            _ => {}
        }
    }
    KeySummary { key, name: run.scenario.key(key).name.clone(), changes, losses, state_at_end: run.kms().state(key) }
}

/// The loss a failure at `t` falls in, as the failed call saw the key: D13's propagation delay
/// late.
fn loss_at<'k>(run: &Run<'_>, key: &'k KeySummary, t: SimTime) -> Option<&'k Loss> {
    let seen = t.saturating_sub(run.scenario.kms.kms_propagation_delay);
    key.losses.iter().rev().find(|l| l.at <= seen && l.restored_at.is_none_or(|r| seen < r))
}

/// Whether the key had been Enabled at some point before `t`.
fn was_usable(key: &KeySummary, t: SimTime) -> bool {
    key.changes.iter().any(|(at, _, to, _)| *at <= t && *to == Some(KeyState::Enabled))
}

/// A break at `at` caused by `key` (if known).
fn new_break(
    run: &Run<'_>,
    keys: &[KeySummary],
    key: Option<KeyIdx>,
    at: SimTime,
    how: String,
    last_good: Option<(SimTime, &'static str)>,
) -> Break {
    let k = key.map(|k| &keys[k.0 as usize]);
    Break {
        key,
        loss_at: k.and_then(|k| loss_at(run, k, at)).map(|l| l.at),
        key_was_usable: k.is_some_and(|k| was_usable(k, at)),
        last_good_use: last_good,
        broke_at: at,
        how,
        recovered_at: None,
    }
}

fn volume_history(run: &Run<'_>, i: usize, keys: &[KeySummary]) -> History {
    let s = run.scenario;
    let me = volume_actor(s, i);
    let key = s.volumes[i].key;
    let mut last_good: Option<(SimTime, &'static str)> = None;
    let mut breaks: Vec<Break> = Vec::new();
    for r in run.records_of(me) {
        let good = match &r.obs {
            Obs::Volume(VolumeObs::Created) if r.actor == me => Some("CreateVolume"),
            Obs::Volume(VolumeObs::Attached { .. }) if r.actor == me => Some("AttachVolume"),
            Obs::Volume(VolumeObs::Io { kind, result: Ok(()) }) if r.actor == me => Some(kind.as_str()),
            Obs::Instance(InstanceObs::DataKeyCached { volume }) if *volume == me => Some("decrypted at start"),
            _ => None,
        };
        if let Some(what) = good {
            last_good = Some((r.at, what));
            if let Some(b) = breaks.last_mut().filter(|b| b.recovered_at.is_none()) {
                b.recovered_at = Some(r.at);
            }
            continue;
        }
        let failure = match &r.obs {
            Obs::Volume(VolumeObs::AttachFailed { error, kms: Some(_), .. }) if r.actor == me => {
                Some(format!("AttachVolume {}", error.code))
            }
            Obs::Volume(VolumeObs::KeyLoadFailed { error, .. }) if r.actor == me => {
                Some(format!("ReattachVolume {}", error.code))
            }
            Obs::Volume(VolumeObs::CreateFailed { error }) if r.actor == me => {
                Some(format!("CreateVolume {}", error.exception.as_str()))
            }
            _ => None,
        };
        if let Some(how) = failure {
            // Failures before it works again are one break.
            if breaks.last().is_some_and(|b| b.recovered_at.is_none()) {
                continue;
            }
            breaks.push(new_break(run, keys, Some(key), r.at, how, last_good));
        }
    }
    History { breaks, last_good }
}

fn volume_summary(
    run: &Run<'_>,
    i: usize,
    history: History,
    verdict: &standing::Verdict,
    keys: &[KeySummary],
) -> ResourceSummary {
    let v = run.volume(i);
    let at_end = match v.state() {
        None => "not created".to_string(),
        Some(VolumeState::InUse(inst)) => {
            let memory =
                if v.key_in_memory() { "plaintext data key in host memory" } else { "no plaintext data key in memory" };
            format!("in-use on {}, {memory}", run.names.at(inst, crate::engine::RecordId::MAX))
        }
        Some(st) => st.as_str().to_string(),
    };
    let key = &keys[run.scenario.volumes[i].key.0 as usize];
    let name = run.scenario.volumes[i].name.to_string();
    resource_summary(name, "volume", Some(key.name.clone()), history, verdict, at_end)
}

/// A resource's summary: its history, and its verdict at the end.
fn resource_summary(
    name: String,
    kind: &'static str,
    key: Option<String>,
    history: History,
    verdict: &standing::Verdict,
    at_end: String,
) -> ResourceSummary {
    ResourceSummary {
        name,
        kind,
        key,
        breaks: history.breaks,
        last_good_use: history.last_good,
        status: verdict.standing,
        latent_since: (verdict.standing == Standing::Latent).then_some(verdict.since).flatten(),
        at_end,
    }
}

fn instance_history(run: &Run<'_>, i: usize, keys: &[KeySummary]) -> History {
    let s = run.scenario;
    let me = instance_actor(s, i);
    let mut last_good: Option<(SimTime, &'static str)> = None;
    let mut breaks: Vec<Break> = Vec::new();
    let mut failed_key: Option<KeyIdx> = None;
    let mut started_by = StartedBy::default();
    for r in run.records_of(me) {
        let failed_start = match &r.obs {
            Obs::Instance(o) if r.actor == me => started_by.failed(o),
            _ => None,
        };
        match &r.obs {
            Obs::Volume(
                VolumeObs::KeyLoadFailed { instance, .. } | VolumeObs::AttachFailed { instance, kms: Some(_), .. },
            ) if *instance == me => {
                if let Role::Volume(vol) = role(s, r.actor) {
                    failed_key = Some(s.volumes[vol].key);
                }
            }
            Obs::Instance(InstanceObs::StateChanged { to, reason, .. }) if r.actor == me => {
                if let (Some(action), Some((code, _))) = (failed_start, reason) {
                    if breaks.last().is_none_or(|b| b.recovered_at.is_some()) {
                        let how = format!("{action} {code}");
                        breaks.push(new_break(run, keys, failed_key, r.at, how, last_good));
                    }
                } else if *to == InstanceState::Running {
                    last_good = Some((r.at, "running"));
                    if let Some(b) = breaks.last_mut().filter(|b| b.recovered_at.is_none()) {
                        b.recovered_at = Some(r.at);
                    }
                }
            }
            _ => {}
        }
    }
    History { breaks, last_good }
}

/// Reads an instance's own records in order and says what a start that failed was: the user's
/// StartInstances, AWS moving the instance to another host (D5) or auto scaling's launch (D6).
#[derive(Default)]
pub(super) struct StartedBy(Option<&'static str>);

impl StartedBy {
    /// Takes the instance's next record; for one that ends a start in failure, the action.
    pub(super) fn failed(&mut self, obs: &InstanceObs) -> Option<&'static str> {
        match obs {
            InstanceObs::HostMaintenance { .. } => self.0 = Some("HostMaintenance"),
            InstanceObs::StateChanged { from: None, to: InstanceState::Pending, .. } => self.0 = Some("RunInstances"),
            InstanceObs::StateChanged { reason: Some(_), .. } => {
                return Some(self.0.take().unwrap_or("StartInstances"));
            }
            InstanceObs::StateChanged { to: InstanceState::Running, .. } => self.0 = None,
            _ => {}
        }
        None
    }
}

fn instance_summary(
    run: &Run<'_>,
    i: usize,
    history: History,
    verdict: &standing::Verdict,
    keys: &[KeySummary],
) -> ResourceSummary {
    let key = verdict.key.or_else(|| history.breaks.last().and_then(|b| b.key));
    let x = run.instance(i);
    let at_end = super::describe::instance_now(&run.scenario.instances[i], x.state(), x.life());
    let name = run.scenario.instances[i].to_string();
    resource_summary(name, "instance", key.map(|k| keys[k.0 as usize].name.clone()), history, verdict, at_end)
}

/// One row per resource and break: resource, key, key unusable from, last good use, finally
/// broke, latent window, recovered, status.
#[must_use]
pub fn rows(summary: &Summary) -> Vec<[String; 8]> {
    let mut rows: Vec<[String; 8]> = Vec::new();
    for r in &summary.resources {
        let key = r.key.clone().unwrap_or_else(|| "-".into());
        let good = |g: Option<(SimTime, &str)>| g.map_or("-".into(), |(t, what)| format!("{t} {what}"));
        if r.breaks.is_empty() {
            let (unusable, latent) = match r.latent_since {
                Some(t) => (t.to_string(), format!(">= {} (open)", summary.end - t)),
                None => ("-".into(), "-".into()),
            };
            rows.push([
                r.name.clone(),
                key.clone(),
                unusable,
                good(r.last_good_use),
                "-".into(),
                latent,
                "-".into(),
                r.status.as_str().into(),
            ]);
        }
        for b in &r.breaks {
            rows.push([
                r.name.clone(),
                key.clone(),
                match (b.loss_at, b.key_was_usable) {
                    (Some(t), _) => t.to_string(),
                    (None, false) if b.key.is_some() => "never usable".into(),
                    (None, _) => "-".into(),
                },
                good(b.last_good_use),
                format!("{} {}", b.broke_at, b.how),
                b.latent_window().map_or("-".into(), |d| d.to_string()),
                b.recovered_at.map_or("-".into(), |t| t.to_string()),
                r.status.as_str().into(),
            ]);
        }
    }
    rows
}

/// The summary as text, for the terminal.
#[must_use]
pub fn render(summary: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Keys");
    for k in &summary.keys {
        let end = k.state_at_end.map_or("deleted".to_string(), |s| s.to_string());
        let _ = writeln!(out, "  {}: {end} at the end", k.name);
        for (t, from, to, why) in &k.changes {
            let to = to.map_or("deleted".to_string(), |s| s.to_string());
            let change = match from {
                None => format!("created, {to}"),
                Some(f) => format!("{f} -> {to}"),
            };
            let _ = writeln!(out, "    {:<10} {change:<32} {why}", t.to_string());
        }
        for l in &k.losses {
            let span = match (l.restored_at, l.deleted_at) {
                (Some(r), _) => format!("usable again at {r}, after {}", r - l.at),
                (None, Some(d)) => format!("deleted at {d}: never usable again"),
                (None, None) => format!("still unusable at the end ({} so far)", summary.end - l.at),
            };
            let _ = writeln!(out, "    unusable from {} ({}): {span}", l.at, l.why);
        }
    }
    let _ = writeln!(out, "\nResources");
    if summary.resources.is_empty() {
        let _ = writeln!(out, "  (the scenario has no volumes or instances)");
        return out;
    }
    let header =
        ["RESOURCE", "KEY", "KEY UNUSABLE", "LAST GOOD USE", "FINALLY BROKE", "LATENT WINDOW", "RECOVERED", "STATUS"];
    let rows = rows(summary);
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut l = String::from(" ");
        for (cell, w) in cells.iter().zip(widths) {
            let _ = write!(l, " {cell:<w$} ");
        }
        l.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(&header.map(String::from)));
    for row in &rows {
        let _ = writeln!(out, "{}", line(row));
    }
    let mut notes = Vec::new();
    for r in &summary.resources {
        if let Some(note) = standing_note(r) {
            notes.push(format!("{}{note}", r.name));
        }
        notes.push(format!("{} at the end: {}", r.name, r.at_end));
    }
    let _ = writeln!(out);
    for n in notes {
        let _ = writeln!(out, "  {n}");
    }
    out
}

/// What a latent or blocked resource's standing means for it, in words that follow its name.
#[must_use]
pub fn standing_note(r: &ResourceSummary) -> Option<&'static str> {
    match (r.status, r.kind) {
        (Standing::Latent, _) => Some(
            " still runs on its cached plaintext data key: it will break at its next detach, stop or host maintenance",
        ),
        (Standing::Blocked, "instance") => {
            Some(": its key is unusable and no host holds its data key, so its next start will fail")
        }
        (Standing::Blocked, _) => {
            Some(": its key is unusable and no host holds its data key, so its next attach will fail")
        }
        _ => None,
    }
}

/// The per-resource table as Markdown, for tickets and pull requests.
#[must_use]
pub fn markdown(summary: &Summary, title: &str) -> String {
    let mut out = format!("### {title}\n\n");
    out.push_str(
        "| Resource | Key | Key unusable from | Last good use | Finally broke | Latent window | Recovered | Status |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    for row in rows(summary) {
        let _ = writeln!(out, "| {} |", row.map(|c| c.replace('|', "\\|")).join(" | "));
    }
    for k in &summary.keys {
        for l in &k.losses {
            let span = match (l.restored_at, l.deleted_at) {
                (Some(r), _) => format!("usable again at {r}"),
                (None, Some(d)) => format!("deleted at {d}"),
                (None, None) => "still unusable at the end".to_string(),
            };
            let _ = writeln!(out, "\nKey `{}` unusable from {} ({}); {span}.", k.name, l.at, l.why);
        }
    }
    out
}
