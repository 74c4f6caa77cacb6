//! Blast radius: what depends on a key at an instant, how, and how each dependent stands.
//!
//! From a [`Snapshot`] the module builds a dependency graph with petgraph: keys, their key
//! material, the encrypted data keys made under it, the volumes they protect, the instances the
//! volumes are attached to and the hosts whose memory caches the plaintext keys, plus the grants
//! keys give instances. Edges point from what is depended on to what depends on it. A walk from
//! one key finds its dependents; each one's standing is [`super::standing`]'s verdict at
//! the instant, the same the run summary shows, and the run (which knows the future of the
//! scenario) says when each latent or blocked one breaks.
//!
//! ```text
//!   key ──material-of──> material ──encrypts──> data key ──protects──> volume ──attached-to──> instance ──runs-on──> host
//!    └──────────────────────────granted-to──────────────────────────────────────────────────────┘       volume ──cached-in──> host
//!                             material ──encrypts──> data key ──protects──> snapshot
//!   snapshot ──image-of──> image ──template-of──> group (every launch reads its snapshots)
//!   lineage, walked by no dependence: volume ──snapshot-of──> snapshot ──copy-of──> snapshot ──restored-from──> volume,
//!   image ──launched-from──> instance
//! ```

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use petgraph::Direction;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::{Bfs, EdgeFiltered, EdgeRef};
use serde::Serialize;

use super::standing::{self, Standing};
use super::summary::{How, ResourceSummary, Summary, summarize};
use crate::actors::ebs::VolumeState;
use crate::actors::ec2::InstanceState;
use crate::actors::image::ImageState;
use crate::actors::kms::KeyIdx;
use crate::actors::snapshot::SnapshotState;
use crate::engine::SimTime;
use crate::run::{Run, Snapshot};
use crate::scenario::SnapshotSource;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeKind {
    Key,
    Material,
    DataKey,
    Volume,
    Instance,
    Host,
    Snapshot,
    Image,
    Group,
    /// A resource of another service (RDS, Redshift, DynamoDB, S3, EFS, Lambda, Secrets Manager).
    Service,
}

impl NodeKind {
    /// Whether a node of this kind is a resource, with a standing of its own (a key, a
    /// material, a data key and a host are not).
    #[must_use]
    pub fn is_resource(self) -> bool {
        matches!(
            self,
            NodeKind::Volume
                | NodeKind::Instance
                | NodeKind::Snapshot
                | NodeKind::Image
                | NodeKind::Group
                | NodeKind::Service
        )
    }
}

/// A node: what it is and whose. Its words ([`Node`]'s `Display`) are made only when shown, so
/// that a fleet's graph holds no text of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    /// The scenario's name of the key, material (`key/material`), volume or instance; of the
    /// volume a data key protects; of the instance a host runs.
    pub name: Arc<str>,
    /// The volume's or instance's index in the scenario (unused for other kinds).
    pub index: usize,
    /// A host's number (unused for other kinds).
    pub host: u32,
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            NodeKind::DataKey => write!(f, "data key of {}", self.name),
            NodeKind::Host => write!(f, "host {} of {}", self.host, self.name),
            _ => f.write_str(&self.name),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeKind {
    MaterialOf,
    Encrypts,
    Protects,
    AttachedTo,
    CachedIn,
    RunsOn,
    GrantedTo,
    /// A volume and the snapshot made of it (lineage: the snapshot keeps its own copy of the
    /// volume's data key, and outlives the volume).
    SnapshotOf,
    /// A snapshot and a copy made of it (lineage).
    CopyOf,
    /// A snapshot and a volume restored from it (lineage).
    RestoredFrom,
    /// A snapshot and an image whose block-device mapping it is: every launch reads it.
    ImageOf,
    /// An image and an instance launched from it (lineage: the instance's volumes carry its keys).
    LaunchedFrom,
    /// An image and the auto scaling group whose launch template it is: every launch reads it.
    TemplateOf,
}

impl EdgeKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::MaterialOf => "material-of",
            EdgeKind::Encrypts => "encrypts",
            EdgeKind::Protects => "protects",
            EdgeKind::AttachedTo => "attached-to",
            EdgeKind::CachedIn => "cached-in",
            EdgeKind::RunsOn => "runs-on",
            EdgeKind::GrantedTo => "granted-to",
            EdgeKind::SnapshotOf => "snapshot-of",
            EdgeKind::CopyOf => "copy-of",
            EdgeKind::RestoredFrom => "restored-from",
            EdgeKind::ImageOf => "image-of",
            EdgeKind::LaunchedFrom => "launched-from",
            EdgeKind::TemplateOf => "template-of",
        }
    }

    /// Whether what the edge points to needs what it points from to be usable. Lineage edges
    /// do not: a volume restored under another key, or a copy under another key, no longer
    /// needs its source's key, and a snapshot does not need its volume.
    #[must_use]
    pub fn carries_dependence(self) -> bool {
        !matches!(self, EdgeKind::SnapshotOf | EdgeKind::CopyOf | EdgeKind::RestoredFrom | EdgeKind::LaunchedFrom)
    }
}

/// The dependency graph of a whole scenario at one instant.
pub struct Graph {
    pub graph: StableDiGraph<Node, EdgeKind>,
    keys: Vec<NodeIndex>,
    /// The volumes attached to each instance ([`standing::attachments`]), for every key's
    /// verdicts on this instant.
    attached: Vec<Vec<usize>>,
}

/// Builds the graph of the world in `snap`.
#[must_use]
pub fn graph(run: &Run<'_>, snap: &Snapshot) -> Graph {
    let s = run.scenario;
    let mut g = StableDiGraph::new();
    let add = |g: &mut StableDiGraph<Node, EdgeKind>, kind, name: &Arc<str>, index, host| {
        g.add_node(Node { kind, name: name.clone(), index, host })
    };
    let keys: Vec<NodeIndex> =
        s.keys.iter().map(|k| add(&mut g, NodeKind::Key, &Arc::from(k.name.as_str()), 0, 0)).collect();
    // Materials a key holds now, or that its volumes' data keys were made with.
    let mut materials: BTreeMap<(usize, String), NodeIndex> = BTreeMap::new();
    for (k, held) in snap.materials.iter().enumerate() {
        for m in held {
            let name = s.materials[m.0 as usize].clone();
            let n = add(&mut g, NodeKind::Material, &format!("{}/{name}", s.keys[k].name).into(), 0, 0);
            g.add_edge(keys[k], n, EdgeKind::MaterialOf);
            materials.insert((k, name), n);
        }
    }
    let mut instances = Vec::new();
    let mut hosts = Vec::new();
    for (i, name) in s.instances.iter().enumerate() {
        let n = add(&mut g, NodeKind::Instance, name, i, 0);
        let (state, host, _) = snap.instances[i];
        let h = add(&mut g, NodeKind::Host, name, i, host);
        if state.is_some_and(|st| st != InstanceState::Terminated) {
            g.add_edge(n, h, EdgeKind::RunsOn);
        }
        instances.push(n);
        hosts.push(h);
    }
    // A resource and its data key, encrypted under the key's material it was made with (or,
    // without that material now, under the key).
    let protected = |g: &mut StableDiGraph<Node, EdgeKind>,
                     kind: NodeKind,
                     name: &Arc<str>,
                     index: usize,
                     key: KeyIdx,
                     material: Option<crate::actors::kms::MaterialId>| {
        let k = key.0 as usize;
        let node = add(g, kind, name, index, 0);
        let dk = add(g, NodeKind::DataKey, name, index, 0);
        let parent =
            material.and_then(|m| materials.get(&(k, s.materials[m.0 as usize].clone())).copied()).unwrap_or(keys[k]);
        g.add_edge(parent, dk, EdgeKind::Encrypts);
        g.add_edge(dk, node, EdgeKind::Protects);
        node
    };
    let mut volume_nodes = vec![None; s.volumes.len()];
    for (v, decl) in s.volumes.iter().enumerate() {
        let (state, cached) = snap.volumes[v];
        let Some(state) = state else {
            continue;
        };
        let vol = protected(&mut g, NodeKind::Volume, &decl.name, v, decl.key, run.data_key_material(v));
        volume_nodes[v] = Some(vol);
        if let VolumeState::InUse(a) | VolumeState::Attaching(a) = state {
            let crate::run::Role::Instance(i) = crate::run::role(s, a) else {
                unreachable!("volumes attach to instances")
            };
            g.add_edge(vol, instances[i], EdgeKind::AttachedTo);
            if cached {
                g.add_edge(vol, hosts[i], EdgeKind::CachedIn);
            }
        }
    }
    let mut snapshots = Vec::with_capacity(s.snapshots.len());
    for (x, decl) in s.snapshots.iter().enumerate() {
        if snap.snapshots[x] != Some(SnapshotState::Completed) {
            snapshots.push(None);
            continue;
        }
        let material = run.ebs_snapshot(x).data_key_material();
        let node = protected(&mut g, NodeKind::Snapshot, &decl.name, x, decl.key, material);
        match decl.source {
            SnapshotSource::Volume(v) => {
                if let Some(vol) = volume_nodes[v] {
                    g.add_edge(vol, node, EdgeKind::SnapshotOf);
                }
            }
            SnapshotSource::Copy(from) => {
                if let Some(src) = snapshots.get(from).copied().flatten() {
                    g.add_edge(src, node, EdgeKind::CopyOf);
                }
            }
        }
        snapshots.push(Some(node));
    }
    for (v, decl) in s.volumes.iter().enumerate() {
        if let (Some(x), Some(vol)) = (decl.snapshot(), volume_nodes[v])
            && let Some(src) = snapshots[x]
        {
            g.add_edge(src, vol, EdgeKind::RestoredFrom);
        }
    }
    for (x, decl) in s.images.iter().enumerate() {
        if snap.images[x] != Some(ImageState::Available) {
            continue;
        }
        let node = add(&mut g, NodeKind::Image, &decl.name, x, 0);
        for &y in &decl.snapshots {
            if let Some(src) = snapshots[y] {
                g.add_edge(src, node, EdgeKind::ImageOf);
            }
        }
        for (&i, launch) in &s.launches {
            if launch.image == x && snap.instances[i].0.is_some() {
                g.add_edge(node, instances[i], EdgeKind::LaunchedFrom);
            }
        }
        for (y, group) in s.groups.iter().enumerate().filter(|(_, gr)| gr.image == x) {
            let n = add(&mut g, NodeKind::Group, &group.name, y, 0);
            g.add_edge(node, n, EdgeKind::TemplateOf);
        }
    }
    for (x, decl) in s.services.iter().enumerate() {
        if snap.services[x].0.is_none() {
            continue;
        }
        let material = run.service(x).data_key().and_then(|c| c.material);
        protected(&mut g, NodeKind::Service, &decl.name, x, decl.key, material);
    }
    // One edge per key and instance however many grants: a set, since asking the graph walks
    // every edge of the key (a fleet's key has millions).
    let mut granted = std::collections::BTreeSet::new();
    for &(k, i) in &snap.grants {
        if granted.insert((k, i)) {
            g.add_edge(keys[k.0 as usize], instances[i], EdgeKind::GrantedTo);
        }
    }
    Graph { graph: g, keys, attached: standing::attachments(run, snap) }
}

/// One resource that depends on the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dependent {
    pub name: String,
    pub kind: NodeKind,
    /// How it depends on the key: the path through the graph, in words.
    pub via: String,
    /// Its state at the instant.
    pub state: String,
    /// Its standing at the instant: the verdict every output shows.
    pub standing: Standing,
    /// Latent or blocked: when it breaks later in the scenario (its next detach, stop, restart,
    /// attach or start), if it does before the horizon. Broken: since when.
    #[serde(serialize_with = "ser_time")]
    pub when: Option<SimTime>,
    /// The operation that fails (or failed) then.
    pub how: Option<String>,
    /// The key that decides its standing, when it is broken, blocked, latent or recovered (an
    /// instance may depend on several keys).
    pub key: Option<String>,
    /// What made that key unusable, and when (`DeleteImportedKeyMaterial by alice at +2d`).
    pub cause: Option<String>,
    /// A volume's: the material its data key was made with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub material: Option<String>,
}

#[allow(clippy::ref_option)] // serde's serialize_with passes a reference
fn ser_time<S: serde::Serializer>(t: &Option<SimTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&t.as_ms()),
        None => s.serialize_none(),
    }
}

/// The blast radius of one key at one instant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Impact {
    pub key: String,
    pub arn: String,
    #[serde(serialize_with = "ser_at")]
    pub at: SimTime,
    /// The key's state at the instant (`deleted` once deleted).
    pub key_state: String,
    /// The material asked about (`kmsim impact --material`), if one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub material: Option<String>,
    /// Broken first, then latent, then unaffected; by time within each.
    pub dependents: Vec<Dependent>,
    /// How many dependents of each standing there are, listed or not, gravest first (every
    /// standing, none too).
    #[serde(skip)]
    pub tally: Vec<(Standing, usize)>,
    /// What broke because of the key and no longer depends on it at the instant (an instance
    /// terminated, a volume whose creation failed): outside the graph, yet broken in every
    /// table, so counted here too. The first to break first.
    pub gone: Vec<Gone>,
    /// How many there are, listed or not.
    #[serde(skip)]
    pub gone_count: usize,
}

/// A resource that broke because of the key and is no longer among its dependents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Gone {
    pub name: String,
    pub kind: NodeKind,
    /// Its state at the instant (`terminated as web-i0-r3`, `not created`).
    pub state: String,
    /// When it broke.
    #[serde(serialize_with = "ser_time")]
    pub when: Option<SimTime>,
    /// The operation that failed then.
    pub how: Option<String>,
}

fn ser_at<S: serde::Serializer>(t: &SimTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(t.as_ms())
}

/// The dependents of `key` in `g` (volumes, instances and snapshots, in graph order), along
/// the edges that carry dependence.
#[must_use]
pub fn dependents_of(g: &Graph, key: KeyIdx) -> Vec<NodeIndex> {
    let mut out = Vec::new();
    let carrying = EdgeFiltered::from_fn(&g.graph, |e| e.weight().carries_dependence());
    let mut bfs = Bfs::new(&carrying, g.keys[key.0 as usize]);
    while let Some(n) = bfs.next(&carrying) {
        if g.graph[n].kind.is_resource() {
            out.push(n);
        }
    }
    out
}

/// Analyses `key` at `at`, which must be an instant the run took a snapshot at (or its end).
#[must_use]
pub fn analyze(run: &Run<'_>, key: KeyIdx, at: SimTime) -> Impact {
    analyze_with(run, &summarize(run), key, at)
}

/// [`analyze`] with the run's summary already made (by one pass over a run whose records were
/// not kept, for instance).
#[must_use]
pub fn analyze_with(run: &Run<'_>, summary: &Summary, key: KeyIdx, at: SimTime) -> Impact {
    let snap = if at == run.end { run.final_snapshot() } else { run.snapshot_at(at).expect("probed").clone() };
    let g = graph(run, &snap);
    analyze_graph(run, summary, &snap, &g, key, at, None)
}

/// A dependent before it is put in words: its node, verdict and when it breaks. Ordered the
/// way dependents are listed: by standing, the gravest first, then by when it breaks (those
/// that do not, last), then by name.
struct Reached<'g> {
    n: NodeIndex,
    node: &'g Node,
    verdict: standing::Verdict,
    when: Option<SimTime>,
    how: Option<How>,
}

impl Reached<'_> {
    fn order(&self) -> (Standing, bool, Option<SimTime>, &str) {
        (self.verdict.standing, self.when.is_none(), self.when, &self.node.name)
    }
}

impl PartialEq for Reached<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.order() == other.order()
    }
}

impl Eq for Reached<'_> {}

impl PartialOrd for Reached<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Reached<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.order().cmp(&other.order())
    }
}

/// [`analyze`] on a graph already built (for repeated queries on one instant). With `list`,
/// only the gravest `list` dependents are put in words; the others are counted in
/// [`Impact::tally`] (a fleet's key has millions).
#[must_use]
pub fn analyze_graph<'g>(
    run: &Run<'_>,
    summary: &'g Summary,
    snap: &Snapshot,
    g: &'g Graph,
    key: KeyIdx,
    at: SimTime,
    list: Option<usize>,
) -> Impact {
    let s = run.scenario;
    let k = key.0 as usize;
    let key_name = &s.keys[k].name;
    let aws_material = s.keys[k].spec.origin == crate::actors::kms::Origin::AwsKms;
    // What a data key is encrypted under, given the key's material that holds it now, if any.
    let under = |held: Option<crate::actors::kms::MaterialId>| match held {
        Some(m) => format!("{key_name} (material {})", s.materials[m.0 as usize]),
        // AWS generated the key's material: nobody can delete it.
        None if aws_material => key_name.clone(),
        None => format!("{key_name} (its material is gone)"),
    };
    let reached = dependents_of(g, key);
    // Membership by node index: an instance asks it of each of its volumes.
    let mut is_reached = vec![false; g.graph.node_indices().map(|n| n.index() + 1).max().unwrap_or(0)];
    for n in &reached {
        is_reached[n.index()] = true;
    }
    let mut tally = [0usize; 5];
    // With `list`, the gravest ones in a bounded heap, the greatest (least grave) on top: a fleet's
    // key is not held whole in memory twice.
    let mut found: std::collections::BinaryHeap<Reached<'g>> = std::collections::BinaryHeap::new();
    for &n in &reached {
        let node = &g.graph[n];
        let (verdict, resource) = verdict_of(run, summary, snap, g, node.kind, node.index);
        tally[verdict.standing as usize] += 1;
        let (when, how) = when_it_breaks(&verdict, resource, at);
        found.push(Reached { n, node, verdict, when, how });
        if list.is_some_and(|l| found.len() > l) {
            found.pop();
        }
    }
    let tally: Vec<(Standing, usize)> = Standing::ALL.iter().copied().zip(tally).collect();
    let found = found.into_sorted_vec();
    let dependents = found
        .into_iter()
        .map(|r| {
            let state = state_of(run, snap, r.node.kind, r.node.index);
            let (state, via) = match r.node.kind {
                NodeKind::Volume => {
                    // A volume not created yet will have its data key made with the current material.
                    let material = match run.data_key_material(r.node.index) {
                        Some(m) => Some(m).filter(|m| snap.materials[k].contains(m)),
                        None => snap.current[k],
                    };
                    (state, format!("data key encrypted under {}", under(material)))
                }
                NodeKind::Snapshot => {
                    let x = r.node.index;
                    let held = run.ebs_snapshot(x).data_key_material().filter(|m| snap.materials[k].contains(m));
                    let under = under(held);
                    let via = match s.snapshots[x].source {
                        SnapshotSource::Volume(v) => {
                            format!("{}'s data key, kept encrypted under {under}", s.volumes[v].name)
                        }
                        SnapshotSource::Copy(_) => format!("its own data key, encrypted under {under}"),
                    };
                    (format!("{state}; needs the key at its next restore or copy"), via)
                }
                NodeKind::Group => {
                    let image = &s.images[s.groups[r.node.index].image].name;
                    (
                        format!("{state}; needs the key at its next launch"),
                        format!("launch template {image} (snapshots under {key_name})"),
                    )
                }
                NodeKind::Service => {
                    let x = r.node.index;
                    let held_material =
                        run.service(x).data_key().and_then(|c| c.material).filter(|m| snap.materials[k].contains(m));
                    (state, format!("data key encrypted under {}", under(held_material)))
                }
                NodeKind::Image => {
                    let x = r.node.index;
                    let mine: Vec<&str> = s.images[x]
                        .snapshots
                        .iter()
                        .filter(|&&y| s.snapshots[y].key == key)
                        .map(|&y| &*s.snapshots[y].name)
                        .collect();
                    (
                        format!("{state}; needs the key at its next launch"),
                        format!("snapshot {} (data keys under {key_name})", mine.join(", ")),
                    )
                }
                _ => {
                    let mut mine: Vec<&str> = g
                        .graph
                        .edges_directed(r.n, Direction::Incoming)
                        // Only volumes under this key count; others may be attached too.
                        .filter(|e| *e.weight() == EdgeKind::AttachedTo && is_reached[e.source().index()])
                        .map(|e| &*g.graph[e.source()].name)
                        .collect();
                    mine.sort_unstable();
                    let via = if mine.is_empty() {
                        format!("a grant on {key_name}")
                    } else {
                        format!("attached {} (data keys under {key_name})", mine.join(", "))
                    };
                    (state, via)
                }
            };
            let verdict = &r.verdict;
            let cause = verdict.key.and_then(|k| cause_at(summary, k, at, verdict));
            let decided_by = verdict.key.filter(|_| verdict.standing != Standing::Unaffected);
            Dependent {
                name: r.node.name.to_string(),
                kind: r.node.kind,
                via,
                state,
                standing: verdict.standing,
                when: r.when,
                how: r.how.map(|h| h.to_string()),
                key: decided_by.map(|k| s.keys[k.0 as usize].name.clone()),
                cause,
                material: match r.node.kind {
                    NodeKind::Volume => run.data_key_material(r.node.index),
                    NodeKind::Snapshot => run.ebs_snapshot(r.node.index).data_key_material(),
                    NodeKind::Service => run.service(r.node.index).data_key().and_then(|c| c.material),
                    _ => None,
                }
                .map(|m| s.materials[m.0 as usize].clone()),
            }
        })
        .collect();
    let key_state = snap.keys[k].map_or("deleted".to_string(), |st| st.to_string());
    let (gone, gone_count) = gone(run, summary, snap, g, (key, at), &reached, list);
    Impact {
        key: key_name.clone(),
        arn: s.keys[k].spec.arn.clone(),
        at,
        key_state,
        material: None,
        dependents,
        tally,
        gone,
        gone_count,
    }
}

/// A resource's summary, by its kind and index.
fn summary_of<'s>(run: &Run<'_>, summary: &'s Summary, kind: NodeKind, index: usize) -> &'s ResourceSummary {
    let s = run.scenario;
    match kind {
        NodeKind::Volume => summary.volume(index),
        NodeKind::Snapshot => summary.snapshot(index, s),
        NodeKind::Image => summary.image(index, s),
        NodeKind::Group => summary.group(index, s),
        NodeKind::Service => summary.service(index, s),
        _ => summary.instance(index, s),
    }
}

/// A resource's verdict at the instant of `snap`, and its summary: the one answer every output
/// shows.
fn verdict_of<'s>(
    run: &Run<'_>,
    summary: &'s Summary,
    snap: &Snapshot,
    g: &Graph,
    kind: NodeKind,
    index: usize,
) -> (standing::Verdict, &'s ResourceSummary) {
    let keys = &summary.keys;
    let resource = summary_of(run, summary, kind, index);
    let breaks = &resource.breaks;
    let verdict = match kind {
        NodeKind::Volume => standing::of_volume(run, snap, keys, index, breaks),
        NodeKind::Snapshot => standing::of_snapshot(run, snap, keys, index, breaks),
        NodeKind::Image => standing::of_image(run, snap, keys, index, breaks),
        NodeKind::Group => standing::of_group(run, snap, keys, index, breaks),
        NodeKind::Service => standing::of_service(run, snap, keys, index, breaks),
        _ => standing::of_instance(run, snap, keys, index, &g.attached[index], breaks),
    };
    (verdict, resource)
}

/// A resource's state at the instant of `snap`, in words (`in-use on i-1, plaintext key in host
/// memory`, `terminated as web-i0-r3`, `not created`).
fn state_of(run: &Run<'_>, snap: &Snapshot, kind: NodeKind, index: usize) -> String {
    let s = run.scenario;
    match kind {
        NodeKind::Volume => match snap.volumes[index] {
            (Some(VolumeState::InUse(a)), cached) => {
                let mem = if cached { "plaintext key in host memory" } else { "no plaintext key in memory" };
                let crate::run::Role::Instance(i) = crate::run::role(s, a) else {
                    unreachable!("volumes are in use on instances")
                };
                format!("in-use on {}, {mem}", crate::run::instance_id(&s.instances[i], snap.instances[i].2))
            }
            (Some(other), _) => other.as_str().to_string(),
            (None, _) => "not created".to_string(),
        },
        NodeKind::Snapshot => snap.snapshots[index].map_or("not created", SnapshotState::as_str).to_string(),
        NodeKind::Image => snap.images[index].map_or("not registered", ImageState::as_str).to_string(),
        NodeKind::Group => {
            let (in_service, desired) = snap.groups[index];
            format!("{in_service} of {desired} desired instances in service")
        }
        NodeKind::Service => {
            let decl = &s.services[index];
            let (st, held) = snap.services[index];
            let state = st.map_or("not created", |st| decl.kind.state_name(st));
            let memory =
                if held { format!(", plaintext data key held by {}", decl.kind.service_name()) } else { String::new() };
            format!("{} {state}{memory}", decl.kind.noun())
        }
        _ => {
            let (state, _, life) = snap.instances[index];
            super::record::instance_now(&s.instances[index], state, life)
        }
    }
}

/// The resources that broke because of `key` by the instant of `snap` and that `reached` (its
/// dependents then) does not hold, the first to break first; at most `list` put in words, and
/// how many there are.
fn gone(
    run: &Run<'_>,
    summary: &Summary,
    snap: &Snapshot,
    g: &Graph,
    (key, at): (KeyIdx, SimTime),
    reached: &[NodeIndex],
    list: Option<usize>,
) -> (Vec<Gone>, usize) {
    let s = run.scenario;
    let kinds = [
        (NodeKind::Volume, s.volumes.len()),
        (NodeKind::Instance, s.instances.len()),
        (NodeKind::Snapshot, s.snapshots.len()),
        (NodeKind::Image, s.images.len()),
        (NodeKind::Group, s.groups.len()),
        (NodeKind::Service, s.services.len()),
    ];
    let mut depends: Vec<Vec<bool>> = kinds.iter().map(|&(_, n)| vec![false; n]).collect();
    for &n in reached {
        let node = &g.graph[n];
        if let Some(k) = kinds.iter().position(|&(kind, _)| kind == node.kind) {
            depends[k][node.index] = true;
        }
    }
    let mut found = Vec::new();
    for (k, &(kind, n)) in kinds.iter().enumerate() {
        for index in (0..n).filter(|&i| !depends[k][i]) {
            // Only what failed by then can be broken: the verdict is asked of few (a key with
            // no part in a fleet's failures asks none of its million resources).
            if !summary_of(run, summary, kind, index).breaks.iter().any(|b| b.broke_at <= at) {
                continue;
            }
            let (verdict, resource) = verdict_of(run, summary, snap, g, kind, index);
            if verdict.standing == Standing::Broken && verdict.key == Some(key) {
                let (when, how) = when_it_breaks(&verdict, resource, at);
                found.push((when, &resource.name, kind, index, how));
            }
        }
    }
    let count = found.len();
    found.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    found.truncate(list.unwrap_or(usize::MAX));
    let words = found
        .into_iter()
        .map(|(when, name, kind, i, how)| Gone {
            name: name.to_string(),
            kind,
            state: state_of(run, snap, kind, i),
            when,
            how: how.map(|h| h.to_string()),
        })
        .collect();
    (words, count)
}

/// When a resource breaks (latent, blocked: its next failure in the run after `at`) or broke
/// (broken), and how.
fn when_it_breaks(
    verdict: &standing::Verdict,
    resource: &ResourceSummary,
    at: SimTime,
) -> (Option<SimTime>, Option<How>) {
    match verdict.standing {
        Standing::Latent | Standing::Blocked => match resource.breaks.iter().find(|b| b.broke_at > at) {
            Some(b) => (Some(b.broke_at), Some(b.how)),
            None => (None, None),
        },
        Standing::Broken => {
            let b = resource.breaks.iter().rev().find(|b| Some(b.broke_at) == verdict.since);
            (verdict.since, b.map(|b| b.how))
        }
        Standing::Recovered | Standing::Unaffected => (None, None),
    }
}

/// What made `key` unusable, as of `at`, in words: the loss open then, or the one a break fell in.
fn cause_at(summary: &Summary, key: KeyIdx, at: SimTime, verdict: &standing::Verdict) -> Option<String> {
    let k = &summary.keys[key.0 as usize];
    let loss = match verdict.standing {
        Standing::Unaffected => return None,
        Standing::Latent | Standing::Blocked => verdict.since.and_then(|t| k.losses.iter().find(|l| l.at == t)),
        Standing::Broken | Standing::Recovered => k.losses.iter().rev().find(|l| l.at <= at),
    }?;
    Some(format!("{} at {}", loss.why, loss.at))
}

/// A key's dependents listed one by one in the run's summary and report (the gravest first),
/// and per standing in `kmsim impact`'s text; its JSON lists them all.
pub const DEPENDENTS_LISTED: usize = 100;

/// The blast radius of every key at the end of the run, each listing its gravest `list`
/// dependents (see [`analyze_graph`]).
#[must_use]
pub fn at_end(run: &Run<'_>, summary: &Summary, list: Option<usize>) -> Vec<Impact> {
    let snap = run.final_snapshot();
    let g = graph(run, &snap);
    (0..run.scenario.keys.len())
        .map(|k| analyze_graph(run, summary, &snap, &g, KeyIdx(u32::try_from(k).expect("few keys")), run.end, list))
        .collect()
}
