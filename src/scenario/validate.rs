//! From [`RawScenario`] to [`Scenario`]: resolve every name, parse every time, check every rule,
//! and report all problems at once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::locate::Calls;
use super::raw::{
    At, RawAction, RawDist, RawExpect, RawExpires, RawFleet, RawGroup, RawImage, RawImportType, RawInstance, RawIo,
    RawKey, RawOrigin, RawScenario, RawService, RawServiceKind, RawSnapshot, RawVolume,
};
use super::timefmt::{parse_duration, parse_time};
use super::{
    Action, ActionKind, ActionSource, Actions, Cycle, FleetDecl, GroupDecl, ImageDecl, KeyDecl, Launch, Made,
    Overrides, Problem, Scenario, ServiceDecl, SnapshotDecl, SnapshotOp, SnapshotSource, VERSION, VolumeDecl, VolumeOp,
    small,
};
use crate::actors::dist::Dist;
use crate::actors::ebs::IoKind;
use crate::actors::ec2::InstanceAction;
use crate::actors::kms::{
    CiphertextRef, ContextId, Expiry, GrantRef, Grantee, ImportType, KeyIdx, KeyRef, KeySpec, KmsOp, KmsParams,
    MaterialId, Origin, TokenRef,
};
use crate::actors::service::{self, Kind, Lifecycle, ServiceMsg};
use crate::engine::{SimDuration, SimTime};

/// The longest horizon a scenario may have: ten years of simulated time.
pub(crate) const MAX_HORIZON: SimDuration = SimDuration::from_days(3_653);
/// D3: the documentation allows up to 24 h between the end of the window and the deletion.
const MAX_KEY_DELETION_LAG: SimDuration = SimDuration::from_hours(24);
/// At most this many instances and volumes in one scenario, fleets included.
const MAX_ACTORS: usize = 5_000_000;
/// An `IoLoad` may schedule at most this many operations.
const MAX_IO_TICKS: u64 = 1_000_000;

struct Checker<'a> {
    calls: Calls<'a>,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, position: Option<(usize, usize)>, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem { position, path: path.into(), message: message.into() });
    }

    fn at(&self, ident: &str, n: usize) -> Option<(usize, usize)> {
        self.calls.nth(ident, n)
    }

    /// Parses a duration, or records a problem and returns `None`.
    fn duration(&mut self, pos: Option<(usize, usize)>, path: &str, s: &str) -> Option<SimDuration> {
        parse_duration(s).map_err(|e| self.problem(pos, path, e.to_string())).ok()
    }
}

/// The names a timeline can refer to.
#[derive(Default)]
struct Names {
    keys: BTreeMap<String, KeyIdx>,
    aliases: BTreeSet<String>,
    arns: BTreeMap<String, KeyIdx>,
    volumes: BTreeMap<String, usize>,
    instances: BTreeMap<String, usize>,
    snapshots: BTreeMap<String, usize>,
    images: BTreeMap<String, usize>,
    groups: BTreeMap<String, usize>,
    services: BTreeMap<String, (usize, Kind)>,
    /// Every id declared so far, with what it names: ids share one namespace.
    ids: BTreeMap<String, &'static str>,
}

/// The scenario's header: when it starts and ends, its seed, and whose account it runs in.
struct Header {
    start: jiff::Timestamp,
    horizon: SimTime,
    seed: u64,
    account: String,
    region: String,
    user: String,
}

pub(super) fn validate(raw: RawScenario, text: &str, overrides: Overrides) -> Result<Scenario, Vec<Problem>> {
    let mut c = Checker { calls: Calls::new(text), problems: Vec::new() };
    let top = c.at("Scenario", 0).or(Some((1, 1)));
    let RawScenario {
        version,
        name,
        description,
        start,
        horizon,
        now,
        seed,
        account,
        region,
        user,
        parameters: raw_parameters,
        latency,
        keys,
        instances,
        volumes,
        snapshots,
        images,
        groups,
        services,
        fleets,
        timeline,
        expect,
    } = raw;

    if version != VERSION {
        c.problem(top, "version", format!("version {version} is not supported: this kmsim reads version {VERSION}"));
    }
    if name.trim().is_empty() {
        c.problem(top, "name", "the scenario needs a name: say in a line what it shows");
    }
    let h = header(&mut c, top, &overrides, (&start, &horizon, seed), (account, region, user));
    let now = now.and_then(|t| parse_time(&t, h.start).map_err(|e| c.problem(top, "now", e.to_string())).ok());
    let (kms, service_params) = parameters(&mut c, raw_parameters.unwrap_or_default(), top, &h.region);
    let kms_latency = match latency.and_then(|l| l.kms) {
        None => Dist::default(),
        Some(l) => dist(&mut c, &l, top, "latency.kms").unwrap_or_default(),
    };

    let mut names = Names::default();
    names.ids.insert("kms".into(), "the KMS service");
    let keys = declare_keys(&mut c, keys, &mut names, &h);
    let mut image_of: Vec<ImageOf> = instances.iter().map(|i| (i.image.clone(), i.key.clone())).collect();
    let mut instances = declare_instances(&mut c, instances, &mut names);
    let group_places = group_instances(&mut c, &groups, &mut names, &mut instances, &mut image_of);
    let restores: Vec<Option<String>> = volumes.iter().map(|v| v.snapshot.clone()).collect();
    let mut volumes = declare_volumes(&mut c, volumes, &mut names);
    // Snapshots are of declared volumes, and a launch's volumes are declared ones: all come
    // before the fleets', which the actors' layout needs last.
    let snapshots = declare_snapshots(&mut c, snapshots, &mut names, &volumes);
    restored_from(&mut c, &restores, &names, &mut volumes);
    let images = declare_images(&mut c, images, &mut names);
    let mut launches = image_launches(&mut c, (&image_of, &instances), (&images, &snapshots), &mut names, &mut volumes);
    let mut groups = declare_groups(&mut c, groups, group_places, &names);
    let services = declare_services(&mut c, services, &mut names, &service_params, &h);
    let first_fleet_instance = instances.len();
    fleet_launches(
        &mut c,
        &fleets,
        &mut names,
        first_fleet_instance,
        (&images, &snapshots),
        &mut volumes,
        &mut launches,
    );
    let fleets = expand_fleets(&mut c, fleets, &mut names, (&mut instances, &mut volumes, &mut groups), h.seed);
    let mut actions = initial_actions(keys.len(), instances.len(), &fleets, &launches);
    // A declared group starts before the timeline; a fleet's after the timeline's 0s actions,
    // which make its image, and before its volumes.
    let (mut declared_starts, mut fleet_starts) = (Vec::new(), Vec::new());
    for (g, group) in groups.iter().enumerate() {
        let what = ActionKind::Group { group: g, desired: group.desired };
        match group.fleet {
            Some(fleet) => fleet_starts.push(Action { at: SimTime::ZERO, what, source: ActionSource::Fleet { fleet } }),
            None => declared_starts.push(Action {
                at: SimTime::ZERO,
                what,
                source: ActionSource::Declared { path: format!("groups[{g}]") },
            }),
        }
    }
    actions.extend(declared_starts);
    let mut materials: Vec<String> = Vec::new();
    actions.extend(resolve_timeline(&mut c, &timeline, (&names, &snapshots, &launches), &mut materials, &h));
    // The other services' resources are created after the timeline's actions at their instant
    // (0s ones may import their key's material).
    actions.extend(services.iter().enumerate().map(|(r, decl)| Action {
        at: decl.created,
        what: ActionKind::Service { resource: r, op: ServiceMsg::Create },
        source: ActionSource::Declared { path: format!("services[{r}]") },
    }));
    actions.extend(fleet_starts);
    // Each fleet volume is created at 0s, after the timeline's own 0s actions (an import,
    // typically); it then attaches itself and follows its cycle.
    for (f, fleet) in fleets.iter().enumerate() {
        actions.generate(Made::CreateVolume, fleet.first_volume, fleet.volumes, f);
    }
    let expectations = expectations(
        &mut c,
        expect,
        (&keys, &volumes, &instances, &fleets, &snapshots, &images, &groups, &services),
        text,
        &h,
    );

    if c.problems.is_empty() {
        let Header { start, horizon, seed, account, region, user } = h;
        Ok(Scenario {
            name,
            description,
            start,
            horizon,
            now,
            seed,
            account,
            region,
            user,
            kms,
            kms_latency,
            keys,
            materials,
            instances,
            volumes,
            snapshots,
            images,
            groups,
            services,
            service_params,
            launches,
            fleets,
            actions,
            expectations,
        })
    } else {
        c.problems.sort_by_key(|p| p.position.unwrap_or((usize::MAX, 0)));
        Err(c.problems)
    }
}

/// The start, the horizon (overridden or not), the seed, the account, the Region and the user.
fn header(
    c: &mut Checker<'_>,
    top: Option<(usize, usize)>,
    overrides: &Overrides,
    (start, horizon, seed): (&str, &str, u64),
    (account, region, user): (Option<String>, Option<String>, Option<String>),
) -> Header {
    let start = start.trim().parse::<jiff::Timestamp>().map_err(|e| {
        c.problem(
            top,
            "start",
            format!("{start:?} is not an RFC 3339 instant ({e}); write it like \"2026-03-01T09:00:00Z\""),
        );
    });
    let start = start.unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let horizon = match overrides.horizon {
        Some(h) => Some(SimTime::ZERO + h),
        None => parse_time(horizon, start).map_err(|e| c.problem(top, "horizon", e.to_string())).ok(),
    };
    let horizon = match horizon {
        Some(h) if h == SimTime::ZERO => {
            c.problem(top, "horizon", "the horizon must be after the start");
            SimTime::ZERO
        }
        Some(h) if h.since_start() > MAX_HORIZON => {
            c.problem(top, "horizon", format!("{} is longer than the ten years a scenario may span", h.since_start()));
            h
        }
        Some(h) => h,
        None => SimTime::MAX,
    };
    let seed = overrides.seed.unwrap_or(seed);
    let account = account.unwrap_or_else(|| "111122223333".to_string());
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        c.problem(top, "account", format!("{account:?} is not an AWS account ID: it must be 12 digits"));
    }
    let region = region.unwrap_or_else(|| "us-east-1".to_string());
    if !region.split('-').count().eq(&3) || !region.ends_with(|ch: char| ch.is_ascii_digit()) {
        c.problem(top, "region", format!("{region:?} is not a Region name like \"us-east-1\""));
    }
    let user = user.unwrap_or_else(|| "alice".to_string());
    Header { start, horizon, seed, account, region, user }
}

/// The declared keys: ids, key IDs and ARNs, aliases and origins.
fn declare_keys(c: &mut Checker<'_>, raw: Vec<RawKey>, names: &mut Names, h: &Header) -> Vec<KeyDecl> {
    let mut keys = Vec::new();
    for (i, k) in raw.into_iter().enumerate() {
        let pos = c.at("Key", i);
        let path = format!("keys[{i}]");
        check_id(c, &mut names.ids, pos, &path, &k.id, "key");
        let idx = KeyIdx(u32::try_from(i).expect("few keys"));
        let key_id = match k.key_id {
            Some(id) => {
                if !is_key_id(&id) {
                    c.problem(
                        pos,
                        format!("{path}.key_id"),
                        format!("{id:?} is not a key ID like \"1234abcd-12ab-34cd-56ef-1234567890ab\""),
                    );
                }
                id
            }
            None => generated_key_id(h.seed, &k.id),
        };
        let arn = format!("arn:aws:kms:{}:{}:key/{key_id}", h.region, h.account);
        if names.arns.insert(arn.clone(), idx).is_some() {
            c.problem(pos, format!("{path}.key_id"), format!("key ID {key_id} is used by two keys"));
        }
        let mut aliases = Vec::new();
        for a in k.aliases {
            if !a.starts_with("alias/") || a.len() <= "alias/".len() {
                c.problem(
                    pos,
                    format!("{path}.aliases"),
                    format!("{a:?} is not an alias: aliases start with \"alias/\""),
                );
            } else if a.starts_with("alias/aws/") {
                c.problem(
                    pos,
                    format!("{path}.aliases"),
                    format!("{a:?}: aliases starting with \"alias/aws/\" are reserved for AWS managed keys"),
                );
            } else if !names.aliases.insert(a.clone()) {
                c.problem(pos, format!("{path}.aliases"), format!("alias {a:?} is given to two keys"));
            }
            aliases.push(Arc::from(a.as_str()));
        }
        names.keys.insert(k.id.clone(), idx);
        let origin = match k.origin {
            RawOrigin::AwsKms => Origin::AwsKms,
            RawOrigin::External => Origin::External,
        };
        keys.push(KeyDecl { name: k.id, spec: KeySpec { key_id, arn, origin, aliases } });
    }
    keys
}

/// The declared instances.
fn declare_instances(c: &mut Checker<'_>, raw: Vec<RawInstance>, names: &mut Names) -> Vec<Arc<str>> {
    let mut instances: Vec<Arc<str>> = Vec::new();
    for (i, inst) in raw.into_iter().enumerate() {
        let pos = c.at("Instance", i);
        check_id(c, &mut names.ids, pos, &format!("instances[{i}]"), &inst.id, "instance");
        names.instances.insert(inst.id.clone(), i);
        instances.push(inst.id.into());
    }
    instances
}

/// The declared volumes: their keys and sizes.
fn declare_volumes(c: &mut Checker<'_>, raw: Vec<RawVolume>, names: &mut Names) -> Vec<VolumeDecl> {
    let mut volumes = Vec::new();
    for (i, v) in raw.into_iter().enumerate() {
        let pos = c.at("Volume", i);
        let path = format!("volumes[{i}]");
        check_id(c, &mut names.ids, pos, &path, &v.id, "volume");
        let key = match names.keys.get(&v.key) {
            Some(k) => *k,
            None => {
                let msg = unknown("key", &v.key, names.keys.keys());
                c.problem(pos, format!("{path}.key"), msg);
                KeyIdx(0)
            }
        };
        let size_gib = v.size_gib.unwrap_or(8);
        if !(1..=65_536).contains(&size_gib) {
            c.problem(
                pos,
                format!("{path}.size_gib"),
                format!("{size_gib} GiB is out of range: EBS volumes are 1 to 65,536 GiB"),
            );
        }
        names.volumes.insert(v.id.clone(), i);
        volumes.push(VolumeDecl { name: v.id.into(), key, size_gib, fleet: None, snapshot: None });
    }
    volumes
}

/// The declared snapshots: each of a volume, or a copy of a snapshot declared before it.
fn declare_snapshots(
    c: &mut Checker<'_>,
    raw: Vec<RawSnapshot>,
    names: &mut Names,
    volumes: &[VolumeDecl],
) -> Vec<SnapshotDecl> {
    let mut snapshots: Vec<SnapshotDecl> = Vec::new();
    let all: BTreeSet<String> = raw.iter().map(|x| x.id.clone()).collect();
    for (i, snap) in raw.into_iter().enumerate() {
        let pos = c.at("Snapshot", i);
        let path = format!("snapshots[{i}]");
        check_id(c, &mut names.ids, pos, &path, &snap.id, "snapshot");
        let key = snap.key.as_ref().map(|k| {
            names.keys.get(k).copied().unwrap_or_else(|| {
                c.problem(pos, format!("{path}.key"), unknown("key", k, names.keys.keys()));
                KeyIdx(0)
            })
        });
        let (source, key) = match (&snap.volume, &snap.copy_of) {
            (Some(v), None) => {
                let Some(&v) = names.volumes.get(v) else {
                    c.problem(pos, format!("{path}.volume"), unknown("volume", v, names.volumes.keys()));
                    continue;
                };
                if key.is_some_and(|k| k != volumes[v].key) {
                    c.problem(
                        pos,
                        format!("{path}.key"),
                        "a snapshot of a volume is under the volume's key: leave `key` out, or declare a copy \
                         (`copy_of`) under another key",
                    );
                }
                (SnapshotSource::Volume(v), volumes[v].key)
            }
            (None, Some(source)) => {
                let Some(&from) = names.snapshots.get(source) else {
                    let msg = if all.contains(source) {
                        format!("{source:?} is not declared before {}: a copy names an earlier snapshot", snap.id)
                    } else {
                        unknown("snapshot", source, names.snapshots.keys())
                    };
                    c.problem(pos, format!("{path}.copy_of"), msg);
                    continue;
                };
                (SnapshotSource::Copy(from), key.unwrap_or(snapshots[from].key))
            }
            _ => {
                c.problem(
                    pos,
                    &path,
                    "say what the snapshot is made from: `volume` (CreateSnapshot) or `copy_of` (CopySnapshot), one of them",
                );
                continue;
            }
        };
        names.snapshots.insert(snap.id.clone(), snapshots.len());
        snapshots.push(SnapshotDecl { name: snap.id.into(), key, source });
    }
    snapshots
}

/// Each group's places: `max` instances `<id>-i0`, ... declared with the group's image and key,
/// after the declared instances.
fn group_instances(
    c: &mut Checker<'_>,
    raw: &[RawGroup],
    names: &mut Names,
    instances: &mut Vec<Arc<str>>,
    image_of: &mut Vec<ImageOf>,
) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    for (g, group) in raw.iter().enumerate() {
        let pos = c.at("Group", g);
        let path = format!("groups[{g}]");
        check_id(c, &mut names.ids, pos, &path, &group.id, "group");
        names.groups.insert(group.id.clone(), g);
        let max = group.max.unwrap_or(group.desired);
        if max > MAX_GROUP_SIZE || group.desired > max {
            c.problem(
                pos,
                format!("{path}.max"),
                format!(
                    "desired {} and max {max}: a group runs at most {MAX_GROUP_SIZE} instances here, and desired is at most max",
                    group.desired
                ),
            );
            out.push(Vec::new());
            continue;
        }
        let mut places = Vec::new();
        for j in 0..max {
            let name = format!("{}-i{j}", group.id);
            check_id(c, &mut names.ids, pos, &path, &name, "instance");
            names.instances.insert(name.clone(), instances.len());
            places.push(instances.len());
            instances.push(name.into());
            image_of.push((Some(group.image.clone()), group.key.clone()));
        }
        out.push(places);
    }
    out
}

/// The auto scaling groups, their places made by [`group_instances`].
fn declare_groups(c: &mut Checker<'_>, raw: Vec<RawGroup>, places: Vec<Vec<usize>>, names: &Names) -> Vec<GroupDecl> {
    let mut out = Vec::new();
    for (g, (group, places)) in raw.into_iter().zip(places).enumerate() {
        let pos = c.at("Group", g);
        let path = format!("groups[{g}]");
        let image = names.images.get(&group.image).copied().unwrap_or_else(|| {
            c.problem(pos, format!("{path}.image"), unknown("image", &group.image, names.images.keys()));
            0
        });
        let replace_every =
            group.replace_every.as_ref().and_then(|d| dist(c, d, pos, &format!("{path}.replace_every")));
        let cooldown = cooldown(c, pos, &path, group.cooldown.as_deref());
        out.push(GroupDecl {
            name: group.id.into(),
            image,
            fleet: None,
            places,
            desired: group.desired,
            replace_every,
            cooldown,
        });
    }
    out
}

/// Auto scaling's wait after a failed launch, `raw` at `path.cooldown`: longer than zero, and
/// 300s when left out.
fn cooldown(c: &mut Checker<'_>, pos: Option<(usize, usize)>, path: &str, raw: Option<&str>) -> SimDuration {
    match raw.map(parse_duration) {
        None => crate::actors::ec2::DEFAULT_COOLDOWN,
        Some(Ok(d)) if d > SimDuration::ZERO => d,
        Some(Ok(_)) => {
            c.problem(pos, format!("{path}.cooldown"), "the cooldown must last longer than zero");
            crate::actors::ec2::DEFAULT_COOLDOWN
        }
        Some(Err(e)) => {
            c.problem(pos, format!("{path}.cooldown"), e.to_string());
            crate::actors::ec2::DEFAULT_COOLDOWN
        }
    }
}

/// A group's places are actors: a bound on them is a bound on memory.
const MAX_GROUP_SIZE: u32 = 10_000;

/// An instance's `image` and `key`, as written.
type ImageOf = (Option<String>, Option<String>);

/// The declared AMIs, each from snapshots declared before.
fn declare_images(c: &mut Checker<'_>, raw: Vec<RawImage>, names: &mut Names) -> Vec<ImageDecl> {
    let mut images = Vec::new();
    for (i, image) in raw.into_iter().enumerate() {
        let pos = c.at("Image", i);
        let path = format!("images[{i}]");
        check_id(c, &mut names.ids, pos, &path, &image.id, "image");
        if image.snapshots.is_empty() {
            c.problem(pos, format!("{path}.snapshots"), "an image needs at least one snapshot: its root volume's");
        }
        let snapshots = image
            .snapshots
            .iter()
            .filter_map(|x| match names.snapshots.get(x) {
                Some(&x) => Some(x),
                None => {
                    c.problem(pos, format!("{path}.snapshots"), unknown("snapshot", x, names.snapshots.keys()));
                    None
                }
            })
            .collect();
        names.images.insert(image.id.clone(), images.len());
        images.push(ImageDecl { name: image.id.into(), snapshots });
    }
    images
}

/// The instances declared with an image: each gets a volume per snapshot of the image
/// (`<id>-v0`, ...), under the instance's `key` or the snapshot's, restored at its launch.
fn image_launches(
    c: &mut Checker<'_>,
    (image_of, instances): (&[ImageOf], &[Arc<str>]),
    (images, snapshots): (&[ImageDecl], &[SnapshotDecl]),
    names: &mut Names,
    volumes: &mut Vec<VolumeDecl>,
) -> BTreeMap<usize, Launch> {
    let mut launches = BTreeMap::new();
    for (i, (image, key)) in image_of.iter().enumerate() {
        let pos = c.at("Instance", i);
        let path = format!("instances[{i}]");
        let key = key.as_ref().and_then(|k| match names.keys.get(k) {
            Some(&k) => Some(k),
            None => {
                c.problem(pos, format!("{path}.key"), unknown("key", k, names.keys.keys()));
                None
            }
        });
        let Some(image) = image else {
            if key.is_some() {
                c.problem(pos, format!("{path}.key"), "`key` is the key of a launch's volumes: it needs an `image`");
            }
            continue;
        };
        let Some(&img) = names.images.get(image) else {
            // A group's place: the group's declaration says it.
            if pos.is_some() {
                c.problem(pos, format!("{path}.image"), unknown("image", image, names.images.keys()));
            }
            continue;
        };
        let launch =
            launch_volumes(c, (pos, &path), &instances[i], (img, &images[img], key), snapshots, names, volumes);
        launches.insert(i, launch);
    }
    launches
}

/// The launch of `instance` from an image: a volume per snapshot of the image
/// (`<instance>-v0`, ...), under `key` or the snapshot's, each restored at the launch.
fn launch_volumes(
    c: &mut Checker<'_>,
    (pos, path): (Option<(usize, usize)>, &str),
    instance: &str,
    (img, image, key): (usize, &ImageDecl, Option<KeyIdx>),
    snapshots: &[SnapshotDecl],
    names: &mut Names,
    volumes: &mut Vec<VolumeDecl>,
) -> Launch {
    let mut made = Vec::new();
    for (j, &x) in image.snapshots.iter().enumerate() {
        let name = format!("{instance}-v{j}");
        check_id(c, &mut names.ids, pos, path, &name, "volume");
        names.volumes.insert(name.clone(), volumes.len());
        made.push(volumes.len());
        let key = key.unwrap_or(snapshots[x].key);
        volumes.push(VolumeDecl { name: name.into(), key, size_gib: 8, fleet: None, snapshot: Some(small(x)) });
    }
    Launch { image: img, volumes: made }
}

/// The name of a fleet's `n`-th instance (`infix` "-i") or volume ("-v") of `count`, with as
/// many digits as the largest.
fn fleet_member(fleet: &str, infix: &str, n: usize, count: usize) -> String {
    let width = count.to_string().len();
    format!("{fleet}{infix}{n:0width$}")
}

/// The fleets on a group (A14): each instance is a place launched from the fleet's image, with
/// a volume per snapshot of it (`<instance>-v0`, ...) under the snapshot's key, declared before
/// the fleets' own volumes as the actors' layout needs. `first_instance`: the fleets' first.
fn fleet_launches(
    c: &mut Checker<'_>,
    raw: &[RawFleet],
    names: &mut Names,
    first_instance: usize,
    (images, snapshots): (&[ImageDecl], &[SnapshotDecl]),
    volumes: &mut Vec<VolumeDecl>,
    launches: &mut BTreeMap<usize, Launch>,
) {
    let mut first = first_instance;
    for (f, fleet) in raw.iter().enumerate() {
        let n_inst = fleet.instances as usize;
        let this = first;
        first += n_inst;
        let Some(image) = &fleet.image else { continue };
        let pos = c.at("Fleet", f);
        let path = format!("fleets[{f}]");
        let Some(&img) = names.images.get(image) else {
            c.problem(pos, format!("{path}.image"), unknown("image", image, names.images.keys()));
            continue;
        };
        if fleet.instances > MAX_GROUP_SIZE {
            c.problem(
                pos,
                format!("{path}.instances"),
                format!(
                    "{} instances: a fleet on a group runs at most {MAX_GROUP_SIZE} here (without `image`, a fleet has no such bound)",
                    fleet.instances
                ),
            );
            continue;
        }
        for i in 0..n_inst {
            let instance = fleet_member(&fleet.id, "-i", i, n_inst);
            let launch =
                launch_volumes(c, (pos, &path), &instance, (img, &images[img], None), snapshots, names, volumes);
            launches.insert(this + i, launch);
        }
    }
}

/// Each declared volume's `snapshot`, the snapshot its CreateVolume restores.
fn restored_from(c: &mut Checker<'_>, restores: &[Option<String>], names: &Names, volumes: &mut [VolumeDecl]) {
    for (i, name) in restores.iter().enumerate() {
        let Some(name) = name else { continue };
        match names.snapshots.get(name) {
            Some(&s) => volumes[i].snapshot = Some(small(s)),
            None => {
                let pos = c.at("Volume", i);
                c.problem(pos, format!("volumes[{i}].snapshot"), unknown("snapshot", name, names.snapshots.keys()));
            }
        }
    }
}

/// Fleets, expanded into instances and volumes (appended to the declared ones), each volume's
/// key drawn by weight from the fleet's own stream, so that one fleet's draws never depend on
/// another's.
fn expand_fleets(
    c: &mut Checker<'_>,
    raw: Vec<RawFleet>,
    names: &mut Names,
    (instances, volumes, groups): (&mut Vec<Arc<str>>, &mut Vec<VolumeDecl>, &mut Vec<GroupDecl>),
    seed: u64,
) -> Vec<FleetDecl> {
    let mut fleets = Vec::new();
    let mut total = volumes.len() + instances.len();
    for (f, fleet) in raw.into_iter().enumerate() {
        let pos = c.at("Fleet", f);
        let path = format!("fleets[{f}]");
        check_id(c, &mut names.ids, pos, &path, &fleet.id, "fleet");
        let per = fleet.volumes_per_instance.unwrap_or(1);
        let n_inst = fleet.instances as usize;
        let n_vol = n_inst * per as usize;
        total += n_inst + n_vol;
        if fleet.instances == 0 || per == 0 || per > 26 {
            c.problem(pos, &path, "a fleet needs at least one instance, and 1 to 26 volumes per instance");
            continue;
        }
        if total > MAX_ACTORS {
            c.problem(pos, &path, format!("more than {MAX_ACTORS} instances and volumes in all: split the estate"));
            continue;
        }
        let mut weights = Vec::new();
        for (k, w) in &fleet.keys {
            match names.keys.get(k) {
                Some(idx) => weights.push((*idx, u64::from(*w))),
                None => {
                    let msg = unknown("key", k, names.keys.keys());
                    c.problem(pos, format!("{path}.keys"), msg);
                }
            }
        }
        let total_weight: u64 = weights.iter().map(|(_, w)| w).sum();
        if total_weight == 0 {
            c.problem(pos, format!("{path}.keys"), "give at least one key with a weight above zero");
            continue;
        }
        let Some(FleetCycles { volumes: cycle, instances: instance_cycle, group }) =
            fleet_cycles(c, &fleet, pos, &path)
        else {
            continue;
        };
        // A declared id the fleet also generates would put two actors under one name, sharing
        // one random stream. (Two fleets cannot collide: a generated id ends in "-i" or "-v" and
        // digits, so it names its fleet.)
        let clashes: Vec<String> = names
            .ids
            .iter()
            .filter(|(id, _)| generated_by(&fleet.id, "-i", n_inst, id) || generated_by(&fleet.id, "-v", n_vol, id))
            .map(|(id, kind)| format!("{id:?} ({})", article(kind)))
            .collect();
        if !clashes.is_empty() {
            c.problem(
                pos,
                format!("{path}.id"),
                format!(
                    "fleet {:?} generates the id{} {}, already declared: rename one",
                    fleet.id,
                    if clashes.len() == 1 { "" } else { "s" },
                    clashes.join(", ")
                ),
            );
            continue;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(crate::engine::stream_key(&format!("fleet/{}", fleet.id)));
        let first_instance = instances.len();
        // Exactly: a fleet's declarations stay for the run, and doubling would leave up to half
        // of them spare.
        instances.reserve_exact(n_inst);
        volumes.reserve_exact(n_vol);
        for i in 0..n_inst {
            let name = fleet_member(&fleet.id, "-i", i, n_inst);
            names.instances.insert(name.clone(), instances.len());
            instances.push(name.into());
        }
        let first_volume = volumes.len();
        for v in 0..n_vol {
            let mut pick = rng.random_range(0..total_weight);
            let key = weights
                .iter()
                .find(|(_, w)| {
                    let hit = pick < *w;
                    pick = pick.saturating_sub(*w);
                    hit
                })
                .map_or(weights[0].0, |(k, _)| *k);
            let name = fleet_member(&fleet.id, "-v", v, n_vol);
            let volume = volumes.len();
            names.volumes.insert(name.clone(), volume);
            let instance = first_instance + v / per as usize;
            volumes.push(VolumeDecl {
                name: name.into(),
                key,
                size_gib: 8,
                fleet: Some((small(fleets.len()), small(instance))),
                snapshot: None,
            });
        }
        if let (Some((replace_every, cooldown)), Some(&image)) =
            (group, fleet.image.as_ref().and_then(|i| names.images.get(i)))
        {
            names.groups.insert(fleet.id.clone(), groups.len());
            groups.push(GroupDecl {
                name: fleet.id.as_str().into(),
                image,
                fleet: Some(fleets.len()),
                places: (first_instance..first_instance + n_inst).collect(),
                desired: fleet.instances,
                replace_every,
                cooldown,
            });
        }
        fleets.push(FleetDecl {
            name: fleet.id,
            cycle: Arc::new(cycle),
            instance_cycle,
            instances: n_inst,
            volumes: n_vol,
            per_instance: per as usize,
            first_instance,
            first_volume,
        });
    }
    fleets
}

/// A fleet's cycles, checked.
struct FleetCycles {
    volumes: Cycle,
    /// Its instances' own (`None` when they only run).
    instances: Option<Arc<crate::actors::ec2::InstanceCycle>>,
    /// A fleet on a group (A14): the group's health-check replacement and cooldown, which the
    /// instances then leave to it.
    group: Option<(Option<Dist>, SimDuration)>,
}

/// A fleet's cycles, or `None` with the problems recorded.
fn fleet_cycles(c: &mut Checker<'_>, fleet: &RawFleet, pos: Option<(usize, usize)>, path: &str) -> Option<FleetCycles> {
    let cycle = Cycle {
        attached: dist(c, &fleet.attached, pos, &format!("{path}.attached")).unwrap_or_default(),
        detached: dist(c, &fleet.detached, pos, &format!("{path}.detached")).unwrap_or_default(),
        retry: fleet
            .retry
            .as_ref()
            .and_then(|r| dist(c, r, pos, &format!("{path}.retry")))
            .unwrap_or(Dist::Fixed(SimDuration::from_hours(1))),
        by_group: fleet.image.is_some(),
    };
    let cooldown = cooldown(c, pos, path, fleet.cooldown.as_deref());
    let mut optional =
        |d: &Option<RawDist>, name: &str| d.as_ref().and_then(|d| dist(c, d, pos, &format!("{path}.{name}")));
    let instance_cycle = crate::actors::ec2::InstanceCycle {
        stop_every: optional(&fleet.stop_every, "stop_every"),
        stopped_for: optional(&fleet.stopped_for, "stopped_for").unwrap_or(Dist::Fixed(SimDuration::from_mins(5))),
        reboot_every: optional(&fleet.reboot_every, "reboot_every"),
        maintenance_every: optional(&fleet.host_maintenance_every, "host_maintenance_every"),
        replace_every: optional(&fleet.replace_every, "replace_every"),
        cooldown,
    };
    let every = [
        &instance_cycle.stop_every,
        &instance_cycle.reboot_every,
        &instance_cycle.maintenance_every,
        &instance_cycle.replace_every,
    ];
    if every.iter().any(|d| d.as_ref().is_some_and(|d| d.mean_ms() < 1.0)) {
        c.problem(
            pos,
            path,
            "stop_every, reboot_every, host_maintenance_every and replace_every must last longer than zero on average",
        );
        return None;
    }
    if cycle.attached.mean_ms() < 1.0 || cycle.detached.mean_ms() < 1.0 || cycle.retry.mean_ms() < 1.0 {
        c.problem(pos, path, "attached, detached and retry must last longer than zero on average");
        return None;
    }
    let mut instance_cycle = instance_cycle;
    // On a group (A14), the group replaces the instances, not they themselves (A10).
    let group = cycle.by_group.then(|| (instance_cycle.replace_every.take(), cooldown));
    let ic = &instance_cycle;
    let cycles =
        [&ic.stop_every, &ic.reboot_every, &ic.maintenance_every, &ic.replace_every].iter().any(|d| d.is_some());
    let instances = cycles.then(|| Arc::new(instance_cycle));
    Some(FleetCycles { volumes: cycle, instances, group })
}

/// What runs first, at time 0: the declared keys and instances, in declaration order, then
/// the fleets' instances (their volumes are created after the timeline's own 0s actions).
fn initial_actions(keys: usize, instances: usize, fleets: &[FleetDecl], launches: &BTreeMap<usize, Launch>) -> Actions {
    let declared_instances = instances - fleet_instances(fleets);
    let mut actions = Actions::default();
    actions.extend((0..keys).map(|i| Action {
        at: SimTime::ZERO,
        what: ActionKind::CreateKey(KeyIdx(u32::try_from(i).expect("few keys"))),
        source: ActionSource::Declared { path: format!("keys[{i}]") },
    }));
    // An instance launched from an image runs when the timeline's RunInstances or its group says.
    actions.extend((0..declared_instances).filter(|i| !launches.contains_key(i)).map(|i| Action {
        at: SimTime::ZERO,
        what: ActionKind::RunInstance(i),
        source: ActionSource::Declared { path: format!("instances[{i}]") },
    }));
    for (f, fleet) in fleets.iter().enumerate() {
        let members = fleet.first_instance..fleet.first_instance + fleet.instances;
        // A fleet's instances all run, or all launch from its image.
        if !members.clone().any(|i| launches.contains_key(&i)) {
            actions.generate(Made::RunInstance, fleet.first_instance, fleet.instances, f);
        }
    }
    actions
}

/// The timeline's actions, in file order, each resolved against the names declared and those
/// earlier actions defined; the materials they name are collected in `materials`.
fn resolve_timeline(
    c: &mut Checker<'_>,
    raw: &[At],
    (names, snapshots, launches): (&Names, &[SnapshotDecl], &BTreeMap<usize, Launch>),
    materials: &mut Vec<String>,
    h: &Header,
) -> Vec<Action> {
    let (start, horizon) = (h.start, h.horizon);
    let mut timeline = Timeline { names, snapshots, launches, materials, start, horizon, defined: Defined::default() };
    // Names defined by earlier actions (tokens, ciphertexts, grants) must be defined *earlier in
    // time*; resolve in time order, keeping file order for ties.
    let mut order: Vec<(usize, &At, Result<SimTime, _>)> =
        raw.iter().enumerate().map(|(i, at)| (i, at, parse_time(&at.0, start))).collect();
    order.sort_by_key(|(i, _, t)| (t.as_ref().map_or(SimTime::ZERO, |t| *t), *i));
    let mut resolved: Vec<Option<Action>> = (0..raw.len()).map(|_| None).collect();
    for (i, At(when, action), parsed) in order {
        let pos = c.at("At", i);
        let path = || format!("timeline[{i}]");
        let at = match parsed {
            Ok(t) if t > horizon => {
                c.problem(
                    pos,
                    path(),
                    format!(
                        "{when:?} is after the horizon ({}): move it earlier or extend the horizon",
                        horizon.since_start()
                    ),
                );
                continue;
            }
            Ok(t) => t,
            Err(e) => {
                c.problem(pos, path(), e.to_string());
                continue;
            }
        };
        match timeline.action(action, at) {
            Ok(what) => {
                let line = pos.map(|p| p.0);
                let text = c.calls.nth_text("At", i, 160);
                resolved[i] = Some(Action { at, what, source: ActionSource::Timeline { index: i, line, text } });
            }
            Err(errors) => {
                for (field, msg) in errors {
                    let p = if field.is_empty() { path() } else { format!("{}.{field}", path()) };
                    c.problem(pos, p, msg);
                }
            }
        }
    }
    resolved.into_iter().flatten().collect()
}

/// Everything declared, fleets expanded.
type Declared<'a> = (
    &'a [KeyDecl],
    &'a [VolumeDecl],
    &'a [Arc<str>],
    &'a [FleetDecl],
    &'a [SnapshotDecl],
    &'a [ImageDecl],
    &'a [GroupDecl],
    &'a [ServiceDecl],
);

/// The expectations, resolved against every resource's name (a replaced fleet instance's
/// later lives included, D6).
fn expectations(
    c: &mut Checker<'_>,
    raw: Vec<RawExpect>,
    (keys, volumes, instances, fleets, snapshots, images, groups, services): Declared<'_>,
    text: &str,
    h: &Header,
) -> Vec<super::expect::Expectation> {
    let key_names: Vec<String> = keys.iter().map(|k| k.name.clone()).collect();
    let volume_names: Vec<String> = volumes.iter().map(|v| v.name.to_string()).collect();
    let instance_names: Vec<String> = instances.iter().map(ToString::to_string).collect();
    let other_names: Vec<String> = snapshots
        .iter()
        .map(|s| s.name.to_string())
        .chain(images.iter().map(|i| i.name.to_string()))
        .chain(groups.iter().map(|g| g.name.to_string()))
        .chain(services.iter().map(|r| r.name.to_string()))
        .collect();
    let service_names: Vec<(String, Kind)> = services.iter().map(|r| (r.name.to_string(), r.kind)).collect();
    // Auto scaling launches new instances in the place of a fleet's that it replaces (D6).
    let mut replaced = vec![false; instance_names.len()];
    for f in fleets.iter().filter(|f| f.instance_cycle.as_ref().is_some_and(|c| c.replace_every.is_some())) {
        replaced[f.first_instance..f.first_instance + f.instances].fill(true);
    }
    // And so does a group, in its places (A13).
    for &i in groups.iter().flat_map(|g| &g.places) {
        replaced[i] = true;
    }
    let names = super::expect::Names {
        keys: &key_names,
        volumes: &volume_names,
        instances: &instance_names,
        others: &other_names,
        services: &service_names,
        replaced: &replaced,
    };
    super::expect::validate(raw, &names, text, &c.calls, h.start, h.horizon, &mut c.problems)
}

/// The documented default of the shared symmetric crypto quota, by Region ([RPS] in docs/model.md).
fn default_crypto_quota(region: &str) -> u32 {
    match region {
        "us-east-1" | "us-west-2" | "eu-west-1" => 50_000,
        "eu-west-2" | "ap-southeast-1" => 10_000,
        _ => 5_500,
    }
}

fn parameters(
    c: &mut Checker<'_>,
    p: super::raw::RawParameters,
    pos: Option<(usize, usize)>,
    region: &str,
) -> (KmsParams, service::Params) {
    let get = |c: &mut Checker<'_>, name: &str, v: Option<String>| {
        v.and_then(|s| c.duration(pos, &format!("parameters.{name}"), &s)).unwrap_or(SimDuration::ZERO)
    };
    // The services' delays and lifetimes: each a duration of at least a millisecond, its
    // default when not given.
    let mut services = service::Params::default();
    for (name, given, value) in [
        ("rds_detection", &p.rds_detection, &mut services.rds_detection),
        ("redshift_detection", &p.redshift_detection, &mut services.redshift_detection),
        ("dynamodb_detection", &p.dynamodb_detection, &mut services.dynamodb_detection),
        ("dynamodb_key_refresh", &p.dynamodb_key_refresh, &mut services.dynamodb_key_refresh),
        ("s3_bucket_key_lifetime", &p.s3_bucket_key_lifetime, &mut services.s3_bucket_key_lifetime),
        ("efs_grace", &p.efs_grace, &mut services.efs_grace),
        ("lambda_idle", &p.lambda_idle, &mut services.lambda_idle),
    ] {
        let path = format!("parameters.{name}");
        match given.as_deref().and_then(|text| c.duration(pos, &path, text)) {
            Some(SimDuration::ZERO) => {
                c.problem(pos, path, format!("0s is too short: give at least 1ms (default {value})"));
            }
            Some(d) => *value = d,
            None => {}
        }
    }
    let params = KmsParams {
        material_expiry_lag: get(c, "material_expiry_lag", p.material_expiry_lag),
        key_deletion_lag: get(c, "key_deletion_lag", p.key_deletion_lag),
        kms_propagation_delay: get(c, "kms_propagation_delay", p.kms_propagation_delay),
        crypto_quota_per_s: Some(p.crypto_quota.unwrap_or_else(|| default_crypto_quota(region))),
        max_on_demand_rotations: p
            .max_on_demand_rotations
            .unwrap_or(crate::actors::kms::DEFAULT_MAX_ON_DEMAND_ROTATIONS),
    };
    if p.crypto_quota == Some(0) {
        c.problem(
            pos,
            "parameters.crypto_quota",
            "a quota of 0 refuses every call: give requests per second, at least 1",
        );
    }
    if params.key_deletion_lag > MAX_KEY_DELETION_LAG {
        c.problem(
            pos,
            "parameters.key_deletion_lag",
            format!(
                "{} is out of range: AWS deletes a key at most 24h after its deletion date (D3)",
                params.key_deletion_lag
            ),
        );
    }
    (params, services)
}

/// The most service resources a scenario may declare, `count`s included.
const MAX_SERVICE_COUNT: u32 = 1_000_000;

/// The declared resources of the other services: their kinds, keys and activity; a declaration
/// with `count` makes that many alike resources, `<id>-0`, `<id>-1`, ...
fn declare_services(
    c: &mut Checker<'_>,
    raw: Vec<RawService>,
    names: &mut Names,
    params: &service::Params,
    h: &Header,
) -> Vec<ServiceDecl> {
    let mut out = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let pos = c.at("Service", i);
        let path = format!("services[{i}]");
        let key = names.keys.get(&r.key).copied().unwrap_or_else(|| {
            c.problem(pos, format!("{path}.key"), unknown("key", &r.key, names.keys.keys()));
            KeyIdx(0)
        });
        let kind = match r.kind {
            RawServiceKind::Rds => Kind::Rds,
            RawServiceKind::Aurora => Kind::Aurora,
            RawServiceKind::Redshift => Kind::Redshift,
            RawServiceKind::DynamoDb => Kind::DynamoDb,
            RawServiceKind::S3 => Kind::S3,
            RawServiceKind::Efs => Kind::Efs,
            RawServiceKind::Lambda => Kind::Lambda,
            RawServiceKind::Secret => Kind::Secret,
        };
        if r.bucket_key && kind != Kind::S3 {
            c.problem(pos, format!("{path}.bucket_key"), "only an S3 bucket has a bucket key: remove it");
        }
        if r.replica && kind != Kind::DynamoDb {
            c.problem(pos, format!("{path}.replica"), "only a DynamoDB table is a global table's replica: remove it");
        }
        let requests = r.requests.as_ref().and_then(|d| dist(c, d, pos, &format!("{path}.requests")));
        let reboot_every = r.reboot_every.as_ref().and_then(|d| dist(c, d, pos, &format!("{path}.reboot_every")));
        if reboot_every.is_some() && !kind.restartable() {
            c.problem(
                pos,
                format!("{path}.reboot_every"),
                format!("{} is not rebooted: only RDS, Aurora and Redshift are; remove it", kind.noun()),
            );
        }
        // Checked before anything is made: a scenario's resources are all in memory.
        let room = MAX_SERVICE_COUNT as usize - out.len().min(MAX_SERVICE_COUNT as usize);
        let ids: Vec<String> = match r.count {
            Some(n) if n == 0 || n as usize > room => {
                c.problem(
                    pos,
                    format!("{path}.count"),
                    format!(
                        "{n} is out of range: a scenario declares 1 to {MAX_SERVICE_COUNT} service resources in all"
                    ),
                );
                Vec::new()
            }
            None if room == 0 => {
                c.problem(
                    pos,
                    &path,
                    format!("more than {MAX_SERVICE_COUNT} service resources in all: split the estate"),
                );
                Vec::new()
            }
            None => vec![r.id.clone()],
            Some(n) => (0..n as usize).map(|j| fleet_member(&r.id, "-", j, n as usize)).collect(),
        };
        let policy = params.policy(kind, r.bucket_key, r.replica);
        let created = match r.created.as_deref().map(|t| parse_time(t, h.start)) {
            None => SimTime::ZERO,
            Some(Ok(t)) if t <= h.horizon => t,
            Some(Ok(_)) => {
                c.problem(pos, format!("{path}.created"), "after the horizon: create it earlier or extend the horizon");
                SimTime::ZERO
            }
            Some(Err(e)) => {
                c.problem(pos, format!("{path}.created"), e.to_string());
                SimTime::ZERO
            }
        };
        for id in ids {
            check_id(c, &mut names.ids, pos, &path, &id, "service resource");
            names.services.insert(id.clone(), (out.len(), kind));
            out.push(ServiceDecl {
                name: id.into(),
                kind,
                key,
                policy,
                requests: requests.clone(),
                reboot_every: reboot_every.clone(),
                created,
            });
        }
    }
    out
}

fn dist(c: &mut Checker<'_>, d: &RawDist, pos: Option<(usize, usize)>, path: &str) -> Option<Dist> {
    Some(match d {
        RawDist::Fixed(d) => Dist::Fixed(c.duration(pos, path, d)?),
        RawDist::Exponential(d) => Dist::Exponential(c.duration(pos, path, d)?),
        RawDist::Uniform(lo, hi) => {
            let (lo, hi) = (c.duration(pos, path, lo)?, c.duration(pos, path, hi)?);
            if lo > hi {
                c.problem(pos, path, format!("Uniform({lo}, {hi}): the lower bound is above the upper one"));
                return None;
            }
            Dist::Uniform(lo, hi)
        }
        RawDist::LogNormal(median, sigma) => {
            let median = c.duration(pos, path, median)?;
            if !(sigma.is_finite() && *sigma >= 0.0 && *sigma <= 5.0) {
                c.problem(pos, path, format!("LogNormal sigma {sigma} is out of range: use 0 to 5"));
                return None;
            }
            Dist::LogNormal { median, sigma: *sigma }
        }
        RawDist::Empirical(table) => {
            if table.is_empty() || table.iter().all(|(_, w)| *w == 0) {
                c.problem(pos, path, "an Empirical table needs at least one entry with a weight above zero");
                return None;
            }
            let mut out = Vec::with_capacity(table.len());
            for (d, w) in table {
                out.push((c.duration(pos, path, d)?, *w));
            }
            Dist::Empirical(out.into())
        }
    })
}

fn fleet_instances(fleets: &[super::FleetDecl]) -> usize {
    fleets.iter().map(|f| f.instances).sum()
}

fn check_id(
    c: &mut Checker<'_>,
    seen: &mut BTreeMap<String, &'static str>,
    pos: Option<(usize, usize)>,
    path: &str,
    id: &str,
    kind: &'static str,
) {
    if id.trim().is_empty() || id.chars().any(char::is_whitespace) {
        c.problem(
            pos,
            format!("{path}.id"),
            format!("{id:?} is not a usable id: ids are non-empty and have no spaces"),
        );
    } else if let Some(other) = seen.insert(id.to_string(), kind) {
        c.problem(pos, format!("{path}.id"), format!("duplicate id {id:?}: it already names {}", article(other)));
    }
}

/// Whether `id` is a name [`fleet_member`] gives, for an `n` below `count`.
fn generated_by(fleet: &str, infix: &str, count: usize, id: &str) -> bool {
    let Some(digits) = id.strip_prefix(fleet).and_then(|rest| rest.strip_prefix(infix)) else { return false };
    digits.len() == count.to_string().len()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.parse::<usize>().is_ok_and(|n| n < count)
}

fn article(kind: &str) -> String {
    if kind.starts_with("the ") {
        kind.to_string()
    } else if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {kind}")
    } else {
        format!("a {kind}")
    }
}

fn unknown<'a>(kind: &str, name: &str, known: impl Iterator<Item = &'a String>) -> String {
    let known: Vec<&str> = known.map(String::as_str).collect();
    if known.is_empty() {
        format!("unknown {kind} {name:?}: the scenario declares no {kind}s")
    } else {
        format!("unknown {kind} {name:?}: declared {kind}s are {}", known.join(", "))
    }
}

pub(crate) fn is_key_id(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
}

/// A UUID-shaped key ID drawn from the seed and the key's name, so that adding a key leaves the
/// others' IDs unchanged.
fn generated_key_id(seed: u64, name: &str) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(crate::engine::stream_key(name));
    let mut b: [u8; 16] = rng.random();
    b[8] = 0x80 | (b[8] & 0x3f); // RFC 4122 variant
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-4{}-{}-{}", &hex[0..8], &hex[8..12], &hex[13..16], &hex[16..20], &hex[20..32])
}

/// Names that earlier actions define: import tokens, ciphertexts, grants.
#[derive(Default)]
struct Defined {
    tokens: BTreeSet<String>,
    ciphertexts: BTreeSet<String>,
    grants: BTreeSet<String>,
}

struct Timeline<'a> {
    names: &'a Names,
    snapshots: &'a [SnapshotDecl],
    launches: &'a BTreeMap<usize, Launch>,
    materials: &'a mut Vec<String>,
    start: jiff::Timestamp,
    horizon: SimTime,
    defined: Defined,
}

type FieldErrors = Vec<(&'static str, String)>;

impl Timeline<'_> {
    fn action(&mut self, action: &RawAction, at: SimTime) -> Result<ActionKind, FieldErrors> {
        let mut errs: FieldErrors = Vec::new();
        let kind = self.resolve(action, at, &mut errs);
        if errs.is_empty() { Ok(kind.expect("no errors means resolved")) } else { Err(errs) }
    }

    fn key(&self, s: &str, errs: &mut FieldErrors, field: &'static str) -> KeyRef {
        if let Some(k) = self.names.keys.get(s) {
            KeyRef::Id(*k)
        } else if let Some(k) = self.names.arns.get(s) {
            KeyRef::Arn(*k)
        } else if s.starts_with("alias/") && self.names.aliases.contains(s) {
            KeyRef::Alias(s.into())
        } else {
            let what = if s.starts_with("alias/") { "alias" } else { "key" };
            let msg = if what == "alias" {
                let known: Vec<&str> = self.names.aliases.iter().map(String::as_str).collect();
                format!(
                    "unknown alias {s:?}: declared aliases are {}",
                    if known.is_empty() { "none".into() } else { known.join(", ") }
                )
            } else {
                unknown("key", s, self.names.keys.keys())
            };
            errs.push((field, msg));
            KeyRef::Id(KeyIdx(0))
        }
    }

    fn volume(&self, s: &str, errs: &mut FieldErrors) -> usize {
        self.names.volumes.get(s).copied().unwrap_or_else(|| {
            errs.push(("volume", unknown("volume", s, self.names.volumes.keys())));
            0
        })
    }

    fn instance(&self, s: &str, errs: &mut FieldErrors) -> usize {
        self.names.instances.get(s).copied().unwrap_or_else(|| {
            errs.push(("instance", unknown("instance", s, self.names.instances.keys())));
            0
        })
    }

    fn material(&mut self, name: &str) -> MaterialId {
        let i = self.materials.iter().position(|m| m == name).unwrap_or_else(|| {
            self.materials.push(name.to_string());
            self.materials.len() - 1
        });
        MaterialId(u32::try_from(i).expect("few materials"))
    }

    fn defines(set: &mut BTreeSet<String>, name: Option<&String>) -> Option<Arc<str>> {
        name.map(|n| {
            set.insert(n.clone());
            Arc::from(n.as_str())
        })
    }

    #[allow(clippy::too_many_lines)] // one arm per action of the grammar
    fn resolve(&mut self, action: &RawAction, at: SimTime, errs: &mut FieldErrors) -> Option<ActionKind> {
        use RawAction as A;
        let kms = |op| Some(ActionKind::Kms(Box::new(op)));
        match action {
            A::DescribeKey { key } => kms(KmsOp::DescribeKey { key: self.key(key, errs, "key") }),
            A::EnableKey { key } => kms(KmsOp::EnableKey { key: self.key(key, errs, "key") }),
            A::DisableKey { key } => kms(KmsOp::DisableKey { key: self.key(key, errs, "key") }),
            A::ScheduleKeyDeletion { key, pending_window_days } => {
                let days = pending_window_days.unwrap_or(30);
                if !(7..=30).contains(&days) {
                    errs.push((
                        "pending_window_days",
                        format!("{days} days is out of range: the waiting period is 7 to 30 days"),
                    ));
                }
                kms(KmsOp::ScheduleKeyDeletion { key: self.key(key, errs, "key"), pending_window_days: days })
            }
            A::CancelKeyDeletion { key } => kms(KmsOp::CancelKeyDeletion { key: self.key(key, errs, "key") }),
            A::GetParametersForImport { key, token } => {
                let name = Self::defines(&mut self.defined.tokens, Some(token));
                kms(KmsOp::GetParametersForImport { key: self.key(key, errs, "key"), name })
            }
            A::ImportKeyMaterial { key, material, expires, token, import_type } => {
                let key = self.key(key, errs, "key");
                let token = match token {
                    None => TokenRef::Fresh,
                    Some(t) if self.defined.tokens.contains(t) => TokenRef::Named(t.as_str().into()),
                    Some(t) => {
                        errs.push(("token", format!("no earlier GetParametersForImport names the token {t:?}")));
                        TokenRef::Fresh
                    }
                };
                let expiry = self.expiry(expires, at, errs);
                let material = self.material(material);
                let import_type = import_type.map(|t| match t {
                    RawImportType::New => ImportType::New,
                    RawImportType::Existing => ImportType::Existing,
                });
                kms(KmsOp::ImportKeyMaterial { key, token, material, expiry, import_type })
            }
            A::DeleteImportedKeyMaterial { key, material } => {
                let material = material.as_ref().map(|m| self.material(m));
                kms(KmsOp::DeleteImportedKeyMaterial { key: self.key(key, errs, "key"), material })
            }
            A::RotateKeyOnDemand { key } => kms(KmsOp::RotateKeyOnDemand { key: self.key(key, errs, "key") }),
            A::ListKeyRotations { key, all_key_material } => {
                kms(KmsOp::ListKeyRotations { key: self.key(key, errs, "key"), all: *all_key_material })
            }
            A::EnableKeyRotation { key } => kms(KmsOp::EnableKeyRotation { key: self.key(key, errs, "key") }),
            A::Encrypt { key, name } => {
                let name = Self::defines(&mut self.defined.ciphertexts, name.as_ref());
                kms(KmsOp::Encrypt { key: self.key(key, errs, "key"), context: None, name })
            }
            A::GenerateDataKey { key, name } => {
                let name = Self::defines(&mut self.defined.ciphertexts, name.as_ref());
                kms(KmsOp::GenerateDataKey { key: self.key(key, errs, "key"), context: None, name })
            }
            A::GenerateDataKeyWithoutPlaintext { key, name } => {
                let name = Self::defines(&mut self.defined.ciphertexts, name.as_ref());
                kms(KmsOp::GenerateDataKeyWithoutPlaintext { key: self.key(key, errs, "key"), context: None, name })
            }
            A::Decrypt { ciphertext, key } => {
                let ciphertext = self.ciphertext(ciphertext, errs);
                let key = key.as_ref().map(|k| self.key(k, errs, "key"));
                kms(KmsOp::Decrypt { ciphertext, key, context: None })
            }
            A::ReEncrypt { ciphertext, destination_key, name } => {
                let ciphertext = self.ciphertext(ciphertext, errs);
                let destination = self.key(destination_key, errs, "destination_key");
                let name = Self::defines(&mut self.defined.ciphertexts, name.as_ref());
                kms(KmsOp::ReEncrypt { ciphertext, destination, name, contexts: None })
            }
            A::CreateGrant { key, grantee, name } => {
                let name = Self::defines(&mut self.defined.grants, name.as_ref());
                let grantee = Grantee::Principal(grantee.as_str().into());
                kms(KmsOp::CreateGrant { key: self.key(key, errs, "key"), grantee, context: None, name })
            }
            A::RetireGrant { grant } => kms(KmsOp::RetireGrant { grant: self.grant(grant, errs) }),
            A::RevokeGrant { key, grant } => {
                kms(KmsOp::RevokeGrant { key: self.key(key, errs, "key"), grant: self.grant(grant, errs) })
            }
            A::CreateVolume { volume } => self.on_volume(volume, VolumeOp::Create, errs),
            A::AttachVolume { volume, instance } => {
                let instance = self.instance(instance, errs);
                self.on_volume(volume, VolumeOp::Attach { instance }, errs)
            }
            A::DetachVolume { volume } => self.on_volume(volume, VolumeOp::Detach, errs),
            A::CreateSnapshot { snapshot } => self.on_snapshot(snapshot, "CreateSnapshot", errs),
            A::CopySnapshot { snapshot } => self.on_snapshot(snapshot, "CopySnapshot", errs),
            A::DeleteSnapshot { snapshot } => self.on_snapshot(snapshot, "DeleteSnapshot", errs),
            A::Read { volume } => self.on_volume(volume, VolumeOp::Io(IoKind::Read), errs),
            A::Write { volume } => self.on_volume(volume, VolumeOp::Io(IoKind::Write), errs),
            A::IoLoad { volume, io, every, until } => {
                let kind = match io {
                    RawIo::Read => IoKind::Read,
                    RawIo::Write => IoKind::Write,
                };
                let every = parse_duration(every)
                    .map_err(|e| errs.push(("every", e.to_string())))
                    .unwrap_or(SimDuration::from_secs(1));
                let until = match until {
                    None => self.horizon,
                    Some(u) => match parse_time(u, self.start) {
                        Ok(t) if t > self.horizon => {
                            errs.push(("until", format!("{u:?} is after the horizon")));
                            self.horizon
                        }
                        Ok(t) if t < at => {
                            errs.push(("until", format!("{u:?} is before the load starts")));
                            at
                        }
                        Ok(t) => t,
                        Err(e) => {
                            errs.push(("until", e.to_string()));
                            at
                        }
                    },
                };
                if every == SimDuration::ZERO {
                    errs.push(("every", "the period must be longer than zero".into()));
                } else if (until - at).as_ms() / every.as_ms() > MAX_IO_TICKS {
                    errs.push((
                        "every",
                        format!(
                            "{every} over {} is more than {MAX_IO_TICKS} operations: lengthen the period",
                            until - at
                        ),
                    ));
                }
                self.on_volume(volume, VolumeOp::IoLoad { kind, every, until }, errs)
            }
            A::StopInstances { instance, hibernate: false } => self.on_instance(instance, InstanceAction::Stop, errs),
            A::StopInstances { instance, hibernate: true } => {
                self.on_instance(instance, InstanceAction::Hibernate, errs)
            }
            A::RunInstances { instance } => {
                let i = self.instance(instance, errs);
                if errs.is_empty() && !self.launches.contains_key(&i) {
                    errs.push((
                        "instance",
                        format!("{instance} is not declared with an `image`: it runs from 0s; RunInstances launches an instance from its image"),
                    ));
                }
                Some(ActionKind::LaunchFromImage(i))
            }
            A::TerminateInstanceInAutoScalingGroup { group, instance } => {
                let g = self.names.groups.get(group).copied();
                if g.is_none() {
                    errs.push(("group", unknown("group", group, self.names.groups.keys())));
                }
                let i = self.instance(instance, errs);
                let place = instance.strip_prefix(group.as_str()).is_some_and(|rest| rest.starts_with("-i"));
                if errs.is_empty() && !(place && self.launches.contains_key(&i)) {
                    errs.push((
                        "instance",
                        format!(
                            "{instance} is not a place of group {group}: name one of its instances ({group}-i0, ...)"
                        ),
                    ));
                }
                g.map(|group| ActionKind::GroupReplace { group, instance: i })
            }
            A::SetDesiredCapacity { group, desired } => match self.names.groups.get(group) {
                Some(&g) => Some(ActionKind::Group { group: g, desired: *desired }),
                None => {
                    errs.push(("group", unknown("group", group, self.names.groups.keys())));
                    None
                }
            },
            A::RegisterImage { image } | A::DeregisterImage { image } => {
                let register = matches!(action, A::RegisterImage { .. });
                match self.names.images.get(image) {
                    Some(&image) => Some(ActionKind::Image { image, register }),
                    None => {
                        errs.push(("image", unknown("image", image, self.names.images.keys())));
                        None
                    }
                }
            }
            A::StartInstances { instance } => self.on_instance(instance, InstanceAction::Start, errs),
            A::RebootInstances { instance } => self.on_instance(instance, InstanceAction::Reboot, errs),
            A::TerminateInstances { instance } => self.on_instance(instance, InstanceAction::Terminate, errs),
            A::HostMaintenance { instance } => self.on_instance(instance, InstanceAction::HostMaintenance, errs),
            A::Request { resource } => self.on_service(resource, None, errs),
            A::Reboot { resource } => self.on_service(resource, Some(Lifecycle::Reboot), errs),
            A::Stop { resource } => self.on_service(resource, Some(Lifecycle::Stop), errs),
            A::Start { resource } => self.on_service(resource, Some(Lifecycle::Start), errs),
            A::Restore { resource } => self.on_service(resource, Some(Lifecycle::Restore), errs),
            A::Resize { resource } => self.on_service(resource, Some(Lifecycle::Resize), errs),
        }
    }

    /// A request to a service resource, or a reboot, stop or start of one that has them.
    fn on_service(&self, name: &str, what: Option<Lifecycle>, errs: &mut FieldErrors) -> Option<ActionKind> {
        let Some(&(resource, kind)) = self.names.services.get(name) else {
            let known = self.names.services.keys();
            errs.push(("resource", unknown("service resource", name, known)));
            return None;
        };
        let op = match what {
            None => ServiceMsg::Request,
            Some(l) if kind.has(l) => ServiceMsg::Lifecycle(l),
            Some(l) => {
                let who = match l {
                    Lifecycle::Restore => "only RDS, Aurora, Redshift and DynamoDB are restored from a backup",
                    Lifecycle::Resize => "only a Redshift cluster is resized",
                    Lifecycle::Reboot => "only RDS, Aurora and Redshift are rebooted by the user",
                    Lifecycle::Stop => "only RDS, Aurora and Redshift are stopped by the user",
                    Lifecycle::Start => "only RDS, Aurora and Redshift are started by the user",
                };
                errs.push(("resource", format!("{name} is {}: {who} here", kind.noun())));
                return None;
            }
        };
        Some(ActionKind::Service { resource, op })
    }

    fn on_volume(&self, volume: &str, op: VolumeOp, errs: &mut FieldErrors) -> Option<ActionKind> {
        Some(ActionKind::Volume { volume: self.volume(volume, errs), op })
    }

    /// CreateSnapshot names a snapshot of a volume, CopySnapshot a copy, as the snapshot is declared.
    fn on_snapshot(&self, name: &str, action: &str, errs: &mut FieldErrors) -> Option<ActionKind> {
        let Some(&snapshot) = self.names.snapshots.get(name) else {
            errs.push(("snapshot", unknown("snapshot", name, self.names.snapshots.keys())));
            return None;
        };
        let source = self.snapshots[snapshot].source;
        let wrong = match (action, source) {
            ("CreateSnapshot", SnapshotSource::Copy(_)) => Some("a copy (`copy_of`): make it with CopySnapshot"),
            ("CopySnapshot", SnapshotSource::Volume(_)) => Some("a snapshot of a volume: make it with CreateSnapshot"),
            _ => None,
        };
        if let Some(wrong) = wrong {
            errs.push(("snapshot", format!("{name} is declared as {wrong}")));
        }
        let op = if action == "DeleteSnapshot" { SnapshotOp::Delete } else { SnapshotOp::Create };
        Some(ActionKind::Snapshot { snapshot, op })
    }

    fn on_instance(&self, instance: &str, op: InstanceAction, errs: &mut FieldErrors) -> Option<ActionKind> {
        Some(ActionKind::Instance { instance: self.instance(instance, errs), op })
    }

    fn ciphertext(&self, name: &str, errs: &mut FieldErrors) -> CiphertextRef {
        if !self.defined.ciphertexts.contains(name) {
            errs.push((
                "ciphertext",
                format!("no earlier Encrypt, GenerateDataKey or ReEncrypt names the ciphertext {name:?} (give it with `name: {name:?}`)"),
            ));
        }
        CiphertextRef::Named(name.into())
    }

    fn grant(&self, name: &str, errs: &mut FieldErrors) -> GrantRef {
        if self.defined.grants.contains(name) {
            GrantRef::Named(name.into())
        } else if let Some(&v) = self.names.volumes.get(name) {
            // The grant EC2 created when it attached this volume.
            GrantRef::ForContext(ContextId(u32::try_from(v).expect("volume count fits u32")))
        } else {
            errs.push(("grant", format!("{name:?} names no grant: give a CreateGrant's `name`, or a volume for the grant EC2 made when attaching it")));
            GrantRef::Named(name.into())
        }
    }

    fn expiry(&self, expires: &RawExpires, at: SimTime, errs: &mut FieldErrors) -> Expiry {
        let valid_to = match expires {
            RawExpires::Never => return Expiry::Never,
            RawExpires::WithoutValidTo => return Expiry::WithoutValidTo,
            RawExpires::After(d) => match parse_duration(d) {
                Ok(d) => at + d,
                Err(e) => {
                    errs.push(("expires", e.to_string()));
                    return Expiry::Never;
                }
            },
            RawExpires::At(t) => match parse_time(t, self.start) {
                Ok(t) => t,
                Err(e) => {
                    errs.push(("expires", e.to_string()));
                    return Expiry::Never;
                }
            },
        };
        // A ValidTo in the past or more than 365 days ahead is a call KMS refuses, simulated as
        // such (ValidationException), so that a scenario can assert AWS's answer.
        Expiry::At(valid_to)
    }
}
