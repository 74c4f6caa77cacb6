//! What broke, and when: per key, the periods it was unusable; per resource, its latent window.
//!
//! A pure function of a finished [`Run`]. A *loss* is a key leaving `Enabled` (material deleted
//! or expired, disabled, scheduled for deletion); a resource *breaks* at its first failure caused
//! by the key during a loss; its *latent window* is the time from the loss to the break, during
//! which it kept working on a plaintext data key cached in host memory.

use std::fmt::Write as _;

use crate::actors::Obs;
use crate::actors::ebs::{VolumeObs, VolumeState};
use crate::actors::ec2::InstanceObs;
use crate::actors::kms::{KeyIdx, KeyState, KmsObs};
use crate::engine::{Cause, SimDuration, SimTime};
use crate::run::{Role, Run, instance_actor, role, volume_actor};

use super::describe::{caller_words, describe};

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

/// How a resource stands at the end of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Its key never became unusable while it mattered.
    Unaffected,
    /// Broke during a loss, then worked again after the key came back.
    Recovered,
    /// Its key is unusable, but it still runs on the plaintext data key in host memory: it breaks
    /// at its next detach, stop or host maintenance.
    Latent,
    /// Its key is unusable and it holds no plaintext key: the next attach or start will fail.
    Blocked,
    /// Failed because of its key, and not working since.
    Broken,
}

impl Status {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unaffected => "unaffected",
            Status::Recovered => "recovered",
            Status::Latent => "latent",
            Status::Blocked => "blocked",
            Status::Broken => "broken",
        }
    }
}

/// A resource's first failure during one loss of its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Break {
    /// When the key became unusable; `None` if it had never been usable.
    pub loss_at: Option<SimTime>,
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
    pub status: Status,
    /// For a latent resource: since when its key has been unusable.
    pub latent_since: Option<SimTime>,
    pub at_end: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub keys: Vec<KeySummary>,
    pub resources: Vec<ResourceSummary>,
    pub end: SimTime,
}

#[must_use]
pub fn summarize(run: &Run<'_>) -> Summary {
    let s = run.scenario;
    let keys: Vec<KeySummary> =
        (0..s.keys.len()).map(|i| key_summary(run, KeyIdx(u32::try_from(i).expect("few keys")))).collect();
    let mut resources = Vec::new();
    for (i, v) in s.volumes.iter().enumerate() {
        resources.push(volume_summary(run, i, &keys[v.key.0 as usize]));
    }
    for i in 0..s.instances.len() {
        resources.push(instance_summary(run, i, &keys));
    }
    Summary { keys, resources, end: run.end }
}

fn cause_words(run: &Run<'_>, cause: Cause) -> String {
    let Cause::Record(id) = cause else { return "declared in the scenario".to_string() };
    match run.record(id).map(|r| &r.obs) {
        Some(Obs::Kms(KmsObs::Called { caller, op, .. })) => {
            format!("{} {}", op.operation().as_str(), caller_words(run.scenario, *caller))
        }
        Some(Obs::Kms(KmsObs::MaterialExpired { .. })) => "material expired at its ValidTo".to_string(),
        Some(Obs::Kms(KmsObs::KeyDeleted { .. })) => "waiting period ended".to_string(),
        Some(_) => describe(run.scenario, run.record(id).expect("found")).event.to_string(),
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

/// The loss a failure at `t` falls in.
fn loss_at(key: &KeySummary, t: SimTime) -> Option<&Loss> {
    key.losses.iter().rev().find(|l| l.at <= t && l.restored_at.is_none_or(|r| t < r))
}

fn volume_summary(run: &Run<'_>, i: usize, key: &KeySummary) -> ResourceSummary {
    let s = run.scenario;
    let me = volume_actor(s, i);
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
            let loss_at = loss_at(key, r.at).map(|l| l.at);
            if breaks.iter().any(|b| b.loss_at == loss_at && b.recovered_at.is_none()) {
                continue;
            }
            breaks.push(Break { loss_at, last_good_use: last_good, broke_at: r.at, how, recovered_at: None });
        }
    }
    let v = run.volume(i);
    let key_usable = key.state_at_end == Some(KeyState::Enabled);
    let open_loss = key.losses.last().filter(|l| l.restored_at.is_none());
    let unrecovered = breaks.last().is_some_and(|b| b.recovered_at.is_none());
    let (status, latent_since) = if unrecovered {
        (Status::Broken, None)
    } else if !key_usable && v.key_in_memory() {
        (Status::Latent, open_loss.map(|l| l.at))
    } else if !key_usable && (open_loss.is_some() || key.state_at_end.is_none()) {
        (Status::Blocked, None)
    } else if breaks.is_empty() {
        (Status::Unaffected, None)
    } else {
        (Status::Recovered, None)
    };
    let at_end = match v.state() {
        None => "not created".to_string(),
        Some(VolumeState::InUse(inst)) => {
            let memory =
                if v.key_in_memory() { "plaintext data key in host memory" } else { "no plaintext data key in memory" };
            format!("in-use on {}, {memory}", run.actor_name(inst))
        }
        Some(st) => st.as_str().to_string(),
    };
    ResourceSummary {
        name: run.scenario.volumes[i].name.to_string(),
        kind: "volume",
        key: Some(key.name.clone()),
        breaks,
        last_good_use: last_good,
        status,
        latent_since,
        at_end,
    }
}

fn instance_summary(run: &Run<'_>, i: usize, keys: &[KeySummary]) -> ResourceSummary {
    let s = run.scenario;
    let me = instance_actor(s, i);
    let mut last_good: Option<(SimTime, &'static str)> = None;
    let mut breaks: Vec<Break> = Vec::new();
    let mut failed_key: Option<KeyIdx> = None;
    for r in run.records_of(me) {
        match &r.obs {
            Obs::Volume(VolumeObs::KeyLoadFailed { instance, .. }) if *instance == me => {
                if let Role::Volume(vol) = role(s, r.actor) {
                    failed_key = Some(s.volumes[vol].key);
                }
            }
            Obs::Instance(InstanceObs::StateChanged { to, reason, .. }) if r.actor == me => {
                if reason.is_some() {
                    let loss = failed_key.and_then(|k| loss_at(&keys[k.0 as usize], r.at));
                    breaks.push(Break {
                        loss_at: loss.map(|l| l.at),
                        last_good_use: last_good,
                        broke_at: r.at,
                        how: "StartInstances Client.InternalError".to_string(),
                        recovered_at: None,
                    });
                } else if to.as_str() == "running" {
                    last_good = Some((r.at, "running"));
                    if let Some(b) = breaks.last_mut().filter(|b| b.recovered_at.is_none()) {
                        b.recovered_at = Some(r.at);
                    }
                }
            }
            _ => {}
        }
    }
    let inst = run.instance(i);
    // Running on a plaintext key whose KMS key is unusable: it breaks at its next stop or restart.
    let latent_on = inst.attachments().find_map(|(v, cached)| {
        let Role::Volume(v) = role(s, v) else { return None };
        let key = s.volumes[v].key;
        (cached && keys[key.0 as usize].state_at_end != Some(KeyState::Enabled)).then_some(key)
    });
    let status = match (breaks.last(), latent_on) {
        (Some(b), _) if b.recovered_at.is_none() => Status::Broken,
        (_, Some(_)) => Status::Latent,
        (None, None) => Status::Unaffected,
        (Some(_), None) => Status::Recovered,
    };
    let latent_since =
        latent_on.and_then(|k| keys[k.0 as usize].losses.last().filter(|l| l.restored_at.is_none()).map(|l| l.at));
    let key = failed_key.or(latent_on).map(|k| keys[k.0 as usize].name.clone());
    let at_end = inst.state().map_or("not launched".to_string(), |st| st.as_str().to_string());
    ResourceSummary {
        name: run.scenario.instances[i].to_string(),
        kind: "instance",
        key,
        breaks,
        last_good_use: last_good,
        status,
        latent_since,
        at_end,
    }
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
                b.loss_at.map_or("never usable".into(), |t| t.to_string()),
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
        match r.status {
            Status::Latent => notes.push(format!(
                "{} still runs on its cached plaintext data key: it will break at its next detach, stop or host maintenance",
                r.name
            )),
            Status::Blocked => notes.push(format!("{}: its key is unusable, so its next attach will fail", r.name)),
            _ => {}
        }
        notes.push(format!("{} at the end: {}", r.name, r.at_end));
    }
    let _ = writeln!(out);
    for n in notes {
        let _ = writeln!(out, "  {n}");
    }
    out
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
