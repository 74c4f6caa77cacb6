//! Expectations: what a scenario says must be true of its run, validated like the rest.

use std::fmt;

use super::Problem;
use super::locate::Calls;
use super::raw::{RawExpect, RawKeyState, RawOutcome};
use super::timefmt::{parse_duration, parse_time};
use crate::actors::event_names;
use crate::actors::kms::{KeyIdx, KeyState};
use crate::engine::{SimDuration, SimTime};

/// Volume states an expectation may name, as EBS spells them (plus `not-created`).
pub const VOLUME_STATES: [&str; 5] = ["not-created", "creating", "available", "attaching", "in-use"];
/// Instance states an expectation may name, as EC2 spells them.
pub const INSTANCE_STATES: [&str; 4] = ["pending", "running", "stopped", "terminated"];
/// Resource statuses at the end of a run (see the summary).
pub const STATUSES: [&str; 5] = ["unaffected", "recovered", "latent", "blocked", "broken"];
/// Outcomes an event may have.
pub const OUTCOMES: [&str; 3] = ["ok", "failed", "info"];

/// An inclusive span of simulated time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: SimTime,
    pub to: SimTime,
}

impl Window {
    #[must_use]
    pub fn contains(self, t: SimTime) -> bool {
        self.from <= t && t <= self.to
    }
}

/// Which events an expectation is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventPattern {
    /// A key's scenario name, a volume or instance id, or `kms`.
    pub subject: String,
    pub event: &'static str,
    pub outcome: Option<&'static str>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// `None` means deleted.
    KeyState {
        key: KeyIdx,
        at: SimTime,
        is: Option<KeyState>,
    },
    VolumeState {
        volume: usize,
        at: SimTime,
        is: &'static str,
    },
    InstanceState {
        instance: usize,
        at: SimTime,
        is: &'static str,
    },
    Cached {
        volume: usize,
        at: SimTime,
        is: bool,
    },
    Event {
        pattern: EventPattern,
        when: Window,
    },
    Never {
        pattern: EventPattern,
        when: Window,
    },
    Count {
        pattern: EventPattern,
        when: Window,
        is: u64,
    },
    BrokeAt {
        resource: String,
        at: SimTime,
        within: SimDuration,
    },
    Status {
        resource: String,
        is: &'static str,
    },
    /// The `resource`-th service resource's state, as its service names it.
    ServiceState {
        resource: usize,
        at: SimTime,
        is: &'static str,
    },
}

/// One expectation, with where it is in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    /// Its index in the `expect` list.
    pub index: usize,
    pub line: Option<usize>,
    pub expect: Expect,
    /// The expectation in words, with the scenario's names.
    pub text: String,
}

impl Expect {
    /// The instant at which the world's state must be looked at, for state expectations.
    #[must_use]
    pub fn probe(&self) -> Option<SimTime> {
        match self {
            Expect::KeyState { at, .. }
            | Expect::VolumeState { at, .. }
            | Expect::InstanceState { at, .. }
            | Expect::Cached { at, .. }
            | Expect::ServiceState { at, .. } => Some(*at),
            _ => None,
        }
    }
}

impl fmt::Display for EventPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.subject, self.event)?;
        if let Some(o) = self.outcome {
            write!(f, " {o}")?;
        }
        if let Some(e) = &self.error {
            write!(f, " with {e}")?;
        }
        Ok(())
    }
}

fn window_words(w: Window, horizon: SimTime) -> String {
    if w.from == w.to {
        format!("at {}", w.from)
    } else if w.from == SimTime::ZERO && w.to == horizon {
        "during the run".to_string()
    } else {
        format!("between {} and {}", w.from, w.to)
    }
}

/// The names an expectation can refer to.
pub(super) struct Names<'a> {
    pub keys: &'a [String],
    pub volumes: &'a [String],
    pub instances: &'a [String],
    /// The other resources' names: snapshots, images, groups and the other services' resources.
    pub others: &'a [String],
    /// The other services' resources, with their kinds.
    pub services: &'a [(String, crate::actors::service::Kind)],
    /// Whether auto scaling replaces the instance of each place, so that a subject may name a
    /// replacement (`web-i0-r2`).
    pub replaced: &'a [bool],
}

impl Names<'_> {
    fn index(list: &[String], name: &str) -> Option<usize> {
        list.iter().position(|n| n == name)
    }

    fn is_subject(&self, s: &str) -> bool {
        s == "kms"
            || [self.keys, self.volumes, self.instances, self.others].iter().any(|l| l.iter().any(|n| n == s))
            || self.is_replacement(s)
    }

    /// `PLACE-rN` (N from 1, no leading zero) of an instance auto scaling replaces.
    fn is_replacement(&self, s: &str) -> bool {
        let Some((place, n)) = s.rsplit_once("-r") else { return false };
        let number = !n.is_empty() && !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit());
        number && Self::index(self.instances, place).is_some_and(|i| self.replaced[i])
    }

    fn is_resource(&self, s: &str) -> bool {
        self.volumes.iter().chain(self.instances).chain(self.others).any(|n| n == s)
    }
}

fn pick(list: &[&'static str], s: &str) -> Option<&'static str> {
    list.iter().copied().find(|x| *x == s)
}

/// Suggests the event names that look like what was written, or lists them all.
fn unknown_event(event: &str) -> String {
    let lower = event.to_ascii_lowercase();
    let all = event_names();
    let close: Vec<&str> = all
        .iter()
        .copied()
        .filter(|n| {
            let n = n.to_ascii_lowercase();
            !lower.is_empty() && (n.contains(&lower) || lower.contains(&n))
        })
        .collect();
    if close.is_empty() {
        format!("{event:?} is not an event kmsim records; events: {}", all.join(", "))
    } else {
        format!("{event:?} is not an event kmsim records; did you mean {}?", close.join(" or "))
    }
}

/// The index of a declared name, or a problem on the field named after its kind.
fn lookup(list: &[String], name: &str, kind: &'static str, errs: &mut Vec<(&str, String)>) -> usize {
    Names::index(list, name).unwrap_or_else(|| {
        let hint = padded(name, |n| Names::index(list, n).is_some()).unwrap_or_default();
        errs.push((kind, format!("unknown {kind} {name:?}{hint}")));
        0
    })
}

/// A fleet's members are numbered with as many digits as the largest (`web-v07` of twelve): for a
/// name whose number lacks the leading zeros of a declared one, the hint naming it.
fn padded(name: &str, declared: impl Fn(&str) -> bool) -> Option<String> {
    let digits = name.bytes().rev().take_while(u8::is_ascii_digit).count();
    let (stem, number) = name.split_at(name.len() - digits);
    let n: u64 = number.parse().ok()?;
    (digits + 1..=digits + 7).map(|width| format!("{stem}{n:0width$}")).find(|candidate| declared(candidate)).map(
        |candidate| {
            format!("; did you mean {candidate:?}? (a fleet numbers its members with as many digits as its largest)")
        },
    )
}

fn not_declared(resource: &str, names: &Names<'_>) -> String {
    let hint = padded(resource, |n| names.is_resource(n)).unwrap_or_default();
    format!("{resource:?} is not a declared volume, instance, snapshot, image, group or service resource{hint}")
}

/// One of the allowed state names, or a problem on `is`.
fn state(allowed: &[&'static str], is: &str, what: &str, errs: &mut Vec<(&str, String)>) -> &'static str {
    pick(allowed, is).unwrap_or_else(|| {
        errs.push(("is", one_of(what, is, allowed)));
        "?"
    })
}

/// The states an expectation may name for a resource of `kind`, as its service spells them
/// (and `not-created`).
fn service_states(kind: crate::actors::service::Kind) -> Vec<&'static str> {
    use crate::actors::service::State;
    let mut all = vec!["not-created"];
    for st in [State::Available, State::Stopped, State::Inaccessible, State::Terminal] {
        let name = kind.state_name(st);
        if (st != State::Stopped || kind.restartable()) && !all.contains(&name) {
            all.push(name);
        }
    }
    all
}

fn one_of(what: &str, got: &str, list: &[&str]) -> String {
    format!("{got:?} is not a {what}: use one of {}", list.join(", "))
}

pub(super) fn validate(
    raw: Vec<RawExpect>,
    names: &Names<'_>,
    text: &str,
    calls: &Calls<'_>,
    start: jiff::Timestamp,
    horizon: SimTime,
    problems: &mut Vec<Problem>,
) -> Vec<Expectation> {
    let mut out = Vec::new();
    // Positions: the n-th expectation is the n-th struct-like name of any expectation kind
    // after `expect:`; find the list and count entries in order.
    let positions = calls.all_after(&KINDS, expect_field(text));
    for (index, raw) in raw.into_iter().enumerate() {
        let pos = positions.get(index).copied();
        let path = format!("expect[{index}]");
        let mut errs: Vec<(&str, String)> = Vec::new();
        let time = |field: &'static str, s: &str, errs: &mut Vec<(&str, String)>| match parse_time(s, start) {
            Ok(t) if t > horizon => {
                errs.push((field, format!("{s:?} is after the horizon ({})", horizon.since_start())));
                SimTime::ZERO
            }
            Ok(t) => t,
            Err(e) => {
                errs.push((field, e.to_string()));
                SimTime::ZERO
            }
        };
        let whole = Window { from: SimTime::ZERO, to: horizon };
        let window = |between: Option<(String, String)>, errs: &mut Vec<(&str, String)>| match between {
            None => whole,
            Some((a, b)) => {
                let (from, to) = (time("between", &a, errs), time("between", &b, errs));
                if from > to {
                    errs.push(("between", format!("({a:?}, {b:?}) ends before it starts")));
                }
                Window { from, to }
            }
        };
        let pattern = |subject: String,
                       event: String,
                       outcome: Option<RawOutcome>,
                       error: Option<String>,
                       errs: &mut Vec<(&str, String)>| {
            if !names.is_subject(&subject) {
                let place = subject.rsplit_once("-r").and_then(|(p, _)| Some((p, Names::index(names.instances, p)?)));
                errs.push(("subject", match place {
                    Some((p, i)) if names.replaced[i] => format!("{subject:?} is no instance: the replacements of {p} are {p}-r1, {p}-r2, ..."),
                    Some((p, _)) => format!("{subject:?} is no instance: auto scaling does not replace {p} (a fleet replaces its instances with replace_every)"),
                    None => format!("{subject:?} is not a declared key, volume, instance, snapshot, image, group or service resource (or \"kms\")"),
                }));
            }
            let ev = pick(&event_names(), &event).unwrap_or_else(|| {
                errs.push(("event", unknown_event(&event)));
                "?"
            });
            let outcome = outcome.map(|o| match o {
                RawOutcome::Ok => "ok",
                RawOutcome::Failed => "failed",
                RawOutcome::Info => "info",
            });
            EventPattern { subject, event: ev, outcome, error }
        };
        let expect = match raw {
            RawExpect::Key { key, at, is } => {
                let k = lookup(names.keys, &key, "key", &mut errs);
                let is = match is {
                    RawKeyState::Enabled => Some(KeyState::Enabled),
                    RawKeyState::Disabled => Some(KeyState::Disabled),
                    RawKeyState::PendingImport => Some(KeyState::PendingImport),
                    RawKeyState::PendingDeletion => Some(KeyState::PendingDeletion),
                    RawKeyState::Deleted => None,
                };
                Expect::KeyState {
                    key: KeyIdx(u32::try_from(k).expect("few keys")),
                    at: time("at", &at, &mut errs),
                    is,
                }
            }
            RawExpect::Volume { volume, at, is } => {
                let v = lookup(names.volumes, &volume, "volume", &mut errs);
                let st = state(&VOLUME_STATES, &is, "volume state", &mut errs);
                Expect::VolumeState { volume: v, at: time("at", &at, &mut errs), is: st }
            }
            RawExpect::Instance { instance, at, is } => {
                let i = lookup(names.instances, &instance, "instance", &mut errs);
                let st = state(&INSTANCE_STATES, &is, "instance state", &mut errs);
                Expect::InstanceState { instance: i, at: time("at", &at, &mut errs), is: st }
            }
            RawExpect::Resource { resource, at, is } => {
                let list: Vec<String> = names.services.iter().map(|(n, _)| n.clone()).collect();
                let r = lookup(&list, &resource, "service resource", &mut errs);
                let allowed = names.services.get(r).map_or_else(Vec::new, |(_, kind)| service_states(*kind));
                let st = if allowed.is_empty() { "?" } else { state(&allowed, &is, "state", &mut errs) };
                Expect::ServiceState { resource: r, at: time("at", &at, &mut errs), is: st }
            }
            RawExpect::Cached { volume, at, is } => {
                let v = lookup(names.volumes, &volume, "volume", &mut errs);
                Expect::Cached { volume: v, at: time("at", &at, &mut errs), is }
            }
            RawExpect::Event { subject, event, outcome, error, at, between } => {
                let pattern = pattern(subject, event, outcome, error, &mut errs);
                let when = match (at, between) {
                    (Some(_), Some(_)) => {
                        errs.push(("at", "give `at` or `between`, not both".into()));
                        whole
                    }
                    (Some(at), None) => {
                        let t = time("at", &at, &mut errs);
                        Window { from: t, to: t }
                    }
                    (None, between) => window(between, &mut errs),
                };
                Expect::Event { pattern, when }
            }
            RawExpect::Never { subject, event, outcome, error, between } => {
                let pattern = pattern(subject, event, outcome, error, &mut errs);
                Expect::Never { pattern, when: window(between, &mut errs) }
            }
            RawExpect::Count { subject, event, outcome, error, between, is } => {
                let pattern = pattern(subject, event, outcome, error, &mut errs);
                Expect::Count { pattern, when: window(between, &mut errs), is }
            }
            RawExpect::BrokeAt { resource, at, within } => {
                if !names.is_resource(&resource) {
                    errs.push(("resource", not_declared(&resource, names)));
                }
                let within = within
                    .map(|w| parse_duration(&w).map_err(|e| errs.push(("within", e.to_string()))).unwrap_or_default())
                    .unwrap_or_default();
                Expect::BrokeAt { resource, at: time("at", &at, &mut errs), within }
            }
            RawExpect::Status { resource, is } => {
                if !names.is_resource(&resource) {
                    errs.push(("resource", not_declared(&resource, names)));
                }
                let st = state(&STATUSES, &is, "status", &mut errs);
                Expect::Status { resource, is: st }
            }
        };
        if errs.is_empty() {
            let text = words(&expect, names, horizon);
            out.push(Expectation { index, line: pos.map(|p| p.0), expect, text });
        } else {
            for (field, message) in errs {
                problems.push(Problem { position: pos, path: format!("{path}.{field}"), message });
            }
        }
    }
    out
}

fn words(e: &Expect, names: &Names<'_>, horizon: SimTime) -> String {
    match e {
        Expect::KeyState { key, at, is } => {
            let is = is.map_or("deleted", KeyState::as_str);
            format!("key {} is {is} at {at}", names.keys[key.0 as usize])
        }
        Expect::VolumeState { volume, at, is } => format!("volume {} is {is} at {at}", names.volumes[*volume]),
        Expect::InstanceState { instance, at, is } => {
            format!("instance {} is {is} at {at}", names.instances[*instance])
        }
        Expect::Cached { volume, at, is } => {
            let not = if *is { "" } else { "not " };
            format!("the plaintext data key of {} is {not}in host memory at {at}", names.volumes[*volume])
        }
        Expect::Event { pattern, when } => format!("{pattern} {}", window_words(*when, horizon)),
        Expect::Never { pattern, when } => format!("no {pattern} {}", window_words(*when, horizon)),
        Expect::Count { pattern, when, is } => format!("{is} x {pattern} {}", window_words(*when, horizon)),
        Expect::BrokeAt { resource, at, within } => {
            if *within == SimDuration::ZERO {
                format!("{resource} finally breaks at {at}")
            } else {
                format!("{resource} finally breaks at {at} (within {within})")
            }
        }
        Expect::Status { resource, is } => format!("{resource} is {is} at the end"),
        Expect::ServiceState { resource, at, is } => format!("{} is {is} at {at}", names.services[*resource].0),
    }
}

/// Where the `expect:` field starts: the last `expect` followed by `:` outside a comment.
fn expect_field(text: &str) -> usize {
    let mut best = 0;
    for (i, _) in text.match_indices("expect") {
        let line_start = text[..i].rfind('\n').map_or(0, |n| n + 1);
        let in_comment = text[line_start..i].contains("//");
        let followed_by_colon = text[i + "expect".len()..].trim_start().starts_with(':');
        if followed_by_colon && !in_comment {
            best = line_start;
        }
    }
    best
}

/// The names of expectation kinds, to find the entries of the `expect` list.
const KINDS: [&str; 10] =
    ["Key", "Volume", "Instance", "Cached", "Event", "Never", "Count", "BrokeAt", "Status", "Resource"];
