//! A small cluster of Paxos engines on simulated disks and a simulated network, with
//! an oracle that checks the Paxos invariants on everything that happens.
//!
//! Nothing happens behind a test's back: writes become durable only on `sync`,
//! messages travel only on `deliver`, time passes only on `tick`. A crash throws
//! away the writes not yet durable, exactly what a real disk can do.
//!
//! The oracle:
//! - a value is *chosen* in a slot once a majority of acceptors has durably accepted
//!   it under one ballot; at most one value may ever be chosen per slot;
//! - a value learned (decided) anywhere must be the chosen one;
//! - the state machines agree: the hash of the applied prefix at each slot is the
//!   same on every node (snapshots carry it);
//! - an acknowledged proposal is the value its proposer proposed;
//! - a confirmed read waits for a slot at or above every write acknowledged before
//!   the read started (linearizability of reads).

use node::consensus::rng::SplitMix64;
use node::paxos::basic::{self, BasicPaxos};
use node::paxos::multi::{self, MultiPaxos};
use node::paxos::{
    Ballot, Envelope, NodeId, PaxosConfig, PaxosMutants, ProposalId, ProposeError, Ready,
    Recovered, Slot, Snapshot, Stats, Status, Value, Write,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Debug;
use std::hash::{Hash, Hasher};

/// What the harness needs of an engine; both implement it by forwarding.
pub trait Engine: Sized {
    type Body: Clone + Debug;
    type Record: Clone + Debug;
    fn boot(cfg: PaxosConfig, recovered: Recovered<Self::Record>) -> Self;
    fn tick(&mut self);
    fn step(&mut self, m: Envelope<Self::Body>);
    fn propose(&mut self, command: Vec<u8>) -> Result<ProposalId, ProposeError>;
    fn read_index(&mut self) -> Result<u64, ProposeError>;
    fn persisted(&mut self, seq: u64);
    fn ready(&mut self) -> Ready<Self::Body, Self::Record>;
    fn compact(&mut self, slot: Slot, data: Vec<u8>) -> bool;
    fn install_snapshot(&mut self, from: NodeId, snapshot: Snapshot) -> bool;
    fn status(&self) -> Status;
    fn stats(&self) -> &Stats;
    /// Multi-Paxos: start phase 1 now. Basic Paxos: nothing.
    fn campaign(&mut self);
    /// The proposal a durable record says its acceptor accepted.
    fn accepted(r: &Self::Record) -> Option<(Slot, Ballot, &Value)>;
}

macro_rules! forward_engine {
    ($t:ty, $m:ident, $campaign:expr) => {
        impl Engine for $t {
            type Body = $m::Body;
            type Record = $m::Record;
            fn boot(cfg: PaxosConfig, recovered: Recovered<Self::Record>) -> Self {
                <$t>::new(cfg, recovered)
            }
            fn tick(&mut self) {
                <$t>::tick(self)
            }
            fn step(&mut self, m: Envelope<Self::Body>) {
                <$t>::step(self, m)
            }
            fn propose(&mut self, command: Vec<u8>) -> Result<ProposalId, ProposeError> {
                <$t>::propose(self, command)
            }
            fn read_index(&mut self) -> Result<u64, ProposeError> {
                <$t>::read_index(self)
            }
            fn persisted(&mut self, seq: u64) {
                <$t>::persisted(self, seq)
            }
            fn ready(&mut self) -> Ready<Self::Body, Self::Record> {
                <$t>::ready(self)
            }
            fn compact(&mut self, slot: Slot, data: Vec<u8>) -> bool {
                <$t>::compact(self, slot, data)
            }
            fn install_snapshot(&mut self, from: NodeId, snapshot: Snapshot) -> bool {
                <$t>::install_snapshot(self, from, snapshot)
            }
            fn status(&self) -> Status {
                <$t>::status(self)
            }
            fn stats(&self) -> &Stats {
                <$t>::stats(self)
            }
            fn campaign(&mut self) {
                let f: fn(&mut $t) = $campaign;
                f(self)
            }
            fn accepted(r: &Self::Record) -> Option<(Slot, Ballot, &Value)> {
                match r {
                    $m::Record::Accepted {
                        slot,
                        ballot,
                        value,
                    } => Some((*slot, *ballot, value)),
                    _ => None,
                }
            }
        }
    };
}

forward_engine!(MultiPaxos, multi, MultiPaxos::campaign_now);
forward_engine!(BasicPaxos, basic, |_| {});

/// The state machine of the tests: the slot applied through and a hash of every
/// value applied so far. Snapshots carry exactly this.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct App {
    pub slot: Slot,
    pub hash: u64,
}

impl App {
    fn apply(&mut self, slot: Slot, value: &Value) {
        let mut h = DefaultHasher::new();
        (self.hash, value).hash(&mut h);
        self.hash = h.finish();
        self.slot = slot;
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = self.slot.to_le_bytes().to_vec();
        v.extend_from_slice(&self.hash.to_le_bytes());
        v
    }

    fn decode(data: &[u8]) -> Option<App> {
        let slot = u64::from_le_bytes(data.get(0..8)?.try_into().ok()?);
        let hash = u64::from_le_bytes(data.get(8..16)?.try_into().ok()?);
        Some(App { slot, hash })
    }
}

/// One node: the engine (absent while crashed), its disk and its state machine.
pub struct Node<E: Engine> {
    pub cfg: PaxosConfig,
    pub engine: Option<E>,
    /// What survives a crash.
    pub durable: Recovered<E::Record>,
    /// Writes issued and not yet durable, each with the tick its fsync completes.
    pub unsynced: VecDeque<(u64, Write<E::Record>)>,
    pub app: App,
    /// Every value applied since the last (re)start, in order (snapshots excluded).
    pub decided: Vec<(Slot, Value)>,
    /// Own proposals outstanding in this run of the engine: id -> command.
    pub proposals: BTreeMap<ProposalId, Vec<u8>>,
    /// Reads outstanding: round -> the highest acknowledged write slot at the start.
    pub reads: BTreeMap<u64, Slot>,
    /// Reads confirmed: (round, slot to wait for).
    pub confirmed: Vec<(u64, Slot)>,
    /// Proposals acknowledged (decided as this node's own): id -> slot.
    pub acked: BTreeMap<ProposalId, Slot>,
}

impl<E: Engine> Node<E> {
    pub fn engine(&mut self) -> &mut E {
        self.engine.as_mut().expect("the node is up")
    }
    pub fn up(&self) -> bool {
        self.engine.is_some()
    }
}

/// A message or an out-of-band snapshot in flight.
#[derive(Clone, Debug)]
pub enum Packet<B> {
    Msg(Envelope<B>),
    Snapshot {
        from: NodeId,
        to: NodeId,
        snapshot: Snapshot,
    },
}

impl<B> Packet<B> {
    pub fn from(&self) -> NodeId {
        match self {
            Packet::Msg(m) => m.from,
            Packet::Snapshot { from, .. } => *from,
        }
    }
    pub fn to(&self) -> NodeId {
        match self {
            Packet::Msg(m) => m.to,
            Packet::Snapshot { to, .. } => *to,
        }
    }
}

/// How the network and the disks misbehave (all zero: a perfect network, delivered
/// only when a test says so, and disks that sync only when told).
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Per mille of messages lost.
    pub drop: u64,
    /// Per mille of messages delivered twice.
    pub duplicate: u64,
    /// Extra delivery delay, uniform in `0..=max_delay` ticks (so messages reorder).
    pub max_delay: u64,
    /// A write becomes durable after `0..=max_fsync` ticks.
    pub max_fsync: u64,
}

/// The shared invariant checker, with the assertions the tests make on it.
pub type Oracle = node::paxos::check::Checker;

pub trait OracleExt {
    /// Panics with the violations found, if any.
    fn assert_safe(&self);
    /// Panics unless a second value was chosen in `slot`.
    fn assert_chosen_twice(&self, slot: Slot);
}

impl OracleExt for Oracle {
    fn assert_safe(&self) {
        assert!(self.violations.is_empty(), "{:?}", self.violations);
    }

    fn assert_chosen_twice(&self, slot: Slot) {
        let what = format!("slot {slot}: a second value chosen");
        let found = self.violations.iter().any(|v| v.contains(&what));
        assert!(found, "{:?}", self.violations);
    }
}

/// The cluster: nodes, the network and the oracle.
pub struct Cluster<E: Engine> {
    pub nodes: BTreeMap<NodeId, Node<E>>,
    /// Packets in flight, each with the tick from which it may be delivered.
    pub net: Vec<(u64, Packet<E::Body>)>,
    /// Directed links that lose everything.
    pub cut: BTreeSet<(NodeId, NodeId)>,
    pub oracle: Oracle,
    pub faults: Faults,
    pub rng: SplitMix64,
    pub now: u64,
    pub trace: Option<VecDeque<String>>,
}

/// Bound on ready rounds per collect (each hands out at most a few thousand values).
const MAX_READY_ROUNDS: usize = 16;

impl<E: Engine> Cluster<E> {
    /// Nodes 1..=n. `tweak` adjusts every node's configuration.
    pub fn new(n: u64, seed: u64, tweak: impl Fn(&mut PaxosConfig)) -> Self {
        let peers: Vec<NodeId> = (1..=n).collect();
        let mut nodes = BTreeMap::new();
        for &id in &peers {
            let mut cfg = PaxosConfig {
                id,
                peers: peers.clone(),
                election_ticks_min: 10,
                election_ticks_max: 20,
                heartbeat_ticks: 2,
                max_values_per_msg: 16,
                max_inflight_msgs: 4,
                seed,
                mutants: PaxosMutants::default(),
            };
            tweak(&mut cfg);
            let engine = E::boot(cfg.clone(), Recovered::default());
            let node = Node {
                cfg,
                engine: Some(engine),
                durable: Recovered::default(),
                unsynced: VecDeque::new(),
                app: App::default(),
                decided: Vec::new(),
                proposals: BTreeMap::new(),
                reads: BTreeMap::new(),
                confirmed: Vec::new(),
                acked: BTreeMap::new(),
            };
            nodes.insert(id, node);
        }
        let mut c = Cluster {
            nodes,
            net: Vec::new(),
            cut: BTreeSet::new(),
            oracle: Oracle::new(peers.len()),
            faults: Faults::default(),
            rng: SplitMix64::new(seed, 0),
            now: 0,
            trace: std::env::var("TRACE").is_ok().then(VecDeque::new),
        };
        for id in peers {
            c.collect(id);
        }
        c
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    pub fn node(&mut self, id: NodeId) -> &mut Node<E> {
        self.nodes.get_mut(&id).expect("a node of the cluster")
    }

    fn chance(&mut self, per_mille: u64) -> bool {
        per_mille > 0 && self.rng.next_u64() % 1000 < per_mille
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.rng.next_u64() % n }
    }

    fn send(&mut self, p: Packet<E::Body>) {
        if self.chance(self.faults.drop) {
            return;
        }
        let copies = if self.chance(self.faults.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let at = self.now + self.below(self.faults.max_delay + 1);
            self.net.push((at, p.clone()));
        }
    }

    /// Carries out a node's `Ready` (repeatedly, while it has more to apply).
    pub fn collect(&mut self, id: NodeId) {
        for _ in 0..MAX_READY_ROUNDS {
            let Some(n) = self.nodes.get_mut(&id) else {
                return;
            };
            let Some(engine) = n.engine.as_mut() else {
                return;
            };
            let ready = engine.ready();
            let more = ready.committed.len() >= 4096;
            self.carry_out(id, ready);
            if !more {
                break;
            }
        }
    }

    fn carry_out(&mut self, id: NodeId, r: Ready<E::Body, E::Record>) {
        let now = self.now;
        let fsync = self.below(self.faults.max_fsync + 1);
        let n = self.nodes.get_mut(&id).expect("node");
        if let Some(w) = r.persist {
            // Durable no sooner than the write before it.
            let after = n.unsynced.back().map_or(0, |(t, _)| *t);
            n.unsynced.push_back(((now + fsync).max(after), w));
        }
        let snapshot = n.durable.snapshot.clone();
        for m in r.messages {
            self.send(Packet::Msg(m));
        }
        for to in r.send_snapshot {
            if let Some(s) = snapshot.clone() {
                self.send(Packet::Snapshot {
                    from: id,
                    to,
                    snapshot: s,
                });
            }
        }
        let n = self.nodes.get_mut(&id).expect("node");
        if let Some(s) = r.installed {
            match App::decode(&s.data) {
                Some(app) if app.slot == s.last_slot => {
                    n.app = app;
                    self.oracle.on_state(id, app.slot, app.hash);
                }
                _ => self
                    .oracle
                    .violation(format!("node {id} installed a malformed snapshot")),
            }
        }
        let n = self.nodes.get_mut(&id).expect("node");
        for d in r.committed {
            if d.slot != n.app.slot + 1 {
                let what = format!(
                    "node {id} applied slot {} after slot {}: not in order",
                    d.slot, n.app.slot
                );
                self.oracle.violation(what);
            }
            n.app.apply(d.slot, &d.value);
            n.decided.push((d.slot, d.value.clone()));
            self.oracle.on_learned(id, d.slot, &d.value);
            self.oracle.on_state(id, n.app.slot, n.app.hash);
            if let Some(pid) = d.proposal {
                match n.proposals.remove(&pid) {
                    Some(cmd) if d.value.command() == Some(&cmd[..]) => {
                        n.acked.insert(pid, d.slot);
                        self.oracle.max_acked = self.oracle.max_acked.max(d.slot);
                    }
                    other => {
                        let what = format!(
                            "node {id}: proposal {pid} reported decided at slot {} as {:?}, but it proposed {other:?}",
                            d.slot, d.value
                        );
                        self.oracle.violation(what);
                    }
                }
            }
        }
        for rs in r.reads {
            match n.reads.remove(&rs.round) {
                Some(floor) if rs.index < floor => {
                    let what = format!(
                        "node {id}: read round {} confirmed at slot {} below the acknowledged write at slot {floor}",
                        rs.round, rs.index
                    );
                    self.oracle.violation(what);
                }
                Some(_) => n.confirmed.push((rs.round, rs.index)),
                None => {
                    let what = format!("node {id}: unknown read round {} confirmed", rs.round);
                    self.oracle.violation(what);
                }
            }
        }
        for round in r.failed_reads {
            n.reads.remove(&round);
        }
        for pid in r.abandoned {
            n.proposals.remove(&pid);
        }
    }

    /// Makes durable every write of `id` whose fsync is due (all of them when
    /// `all`), then reports it to the engine.
    pub fn sync_due(&mut self, id: NodeId, all: bool) -> bool {
        let now = self.now;
        let n = self.nodes.get_mut(&id).expect("node");
        if !n.up() {
            return false;
        }
        let mut last = None;
        while n.unsynced.front().is_some_and(|(t, _)| all || *t <= now) {
            let Some((_, w)) = n.unsynced.pop_front() else {
                break;
            };
            if let Some(s) = w.snapshot {
                n.durable.snapshot = Some(s);
                n.durable.records.clear();
            }
            for r in &w.records {
                if let Some((slot, ballot, value)) = E::accepted(r) {
                    self.oracle.on_durable_accept(id, slot, ballot, value);
                }
            }
            n.durable.records.extend(w.records);
            last = Some(w.seq);
        }
        let Some(seq) = last else {
            return false;
        };
        n.engine().persisted(seq);
        self.collect(id);
        true
    }

    /// Makes every issued write of `id` durable.
    pub fn sync(&mut self, id: NodeId) -> bool {
        self.sync_due(id, true)
    }

    /// Delivers one packet now (or drops it, when its link is cut or its
    /// destination is down).
    pub fn note(&mut self, f: impl FnOnce() -> String) {
        let now = self.now;
        if let Some(t) = self.trace.as_mut() {
            let mut line = format!("t{now} {}", f());
            line.truncate(300);
            t.push_back(line);
            if t.len() > 400 {
                t.pop_front();
            }
        }
    }

    pub fn deliver_packet(&mut self, p: Packet<E::Body>) {
        let (from, to) = (p.from(), p.to());
        if self.cut.contains(&(from, to)) {
            return;
        }
        let up = self.nodes.get(&to).is_some_and(|n| n.up());
        self.note(|| match &p {
            Packet::Msg(m) => format!(
                "{from}->{to} {:?}{}",
                m.body,
                if up { "" } else { " (down)" }
            ),
            Packet::Snapshot { snapshot, .. } => {
                format!("{from}->{to} snapshot {}", snapshot.last_slot)
            }
        });
        let Some(engine) = self.nodes.get_mut(&to).and_then(|n| n.engine.as_mut()) else {
            return;
        };
        match p {
            Packet::Msg(m) => engine.step(m),
            Packet::Snapshot { from, snapshot, .. } => {
                engine.install_snapshot(from, snapshot);
            }
        }
        self.collect(to);
    }

    /// Delivers, in send order, every packet in flight now that `pick` selects.
    /// Packets sent meanwhile stay in flight. Returns how many were taken.
    pub fn deliver(&mut self, pick: impl Fn(&Packet<E::Body>) -> bool) -> usize {
        let (take, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.net)
            .into_iter()
            .partition(|(_, p)| pick(p));
        self.net = keep;
        let n = take.len();
        for (_, p) in take {
            self.deliver_packet(p);
        }
        n
    }

    /// Drops every packet in flight that `pick` selects.
    pub fn drop_where(&mut self, pick: impl Fn(&Packet<E::Body>) -> bool) -> usize {
        let before = self.net.len();
        self.net.retain(|(_, p)| !pick(p));
        before - self.net.len()
    }

    /// Syncs and delivers until nothing moves (bounded).
    pub fn stabilize(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            for id in self.ids() {
                moved |= self.sync(id);
            }
            moved |= self.deliver(|_| true) > 0;
            if !moved {
                return;
            }
        }
        panic!("stabilize did not converge");
    }

    pub fn tick(&mut self, id: NodeId) {
        if let Some(e) = self.node(id).engine.as_mut() {
            e.tick();
            self.collect(id);
        }
    }

    /// Starts phase 1 at `id` now (Multi-Paxos).
    pub fn campaign(&mut self, id: NodeId) {
        self.node(id).engine().campaign();
        self.collect(id);
    }

    pub fn propose(&mut self, id: NodeId, command: &str) -> Result<ProposalId, ProposeError> {
        let cmd = command.as_bytes().to_vec();
        let n = self.node(id);
        let res = n.engine().propose(cmd.clone());
        if let Ok(pid) = res {
            n.proposals.insert(pid, cmd);
        }
        self.collect(id);
        res
    }

    /// Proposes several commands before the node's next `ready`, so they travel
    /// together (Multi-Paxos batches them into one Accept per peer).
    pub fn propose_many(&mut self, id: NodeId, commands: &[&str]) {
        let n = self.node(id);
        for command in commands {
            let cmd = command.as_bytes().to_vec();
            let pid = n.engine().propose(cmd.clone()).expect("proposal accepted");
            n.proposals.insert(pid, cmd);
        }
        self.collect(id);
    }

    /// The messages in flight, in send order.
    pub fn messages(&self) -> Vec<&Envelope<E::Body>> {
        self.net
            .iter()
            .filter_map(|(_, p)| match p {
                Packet::Msg(m) => Some(m),
                Packet::Snapshot { .. } => None,
            })
            .collect()
    }

    pub fn read(&mut self, id: NodeId) -> Result<u64, ProposeError> {
        let floor = self.oracle.max_acked;
        let n = self.node(id);
        let res = n.engine().read_index();
        if let Ok(round) = res {
            n.reads.insert(round, floor);
        }
        self.collect(id);
        res
    }

    /// Takes a snapshot of `id`'s state machine and compacts its log.
    pub fn compact(&mut self, id: NodeId) -> bool {
        let n = self.node(id);
        let app = n.app;
        let done = n.engine().compact(app.slot, app.encode());
        self.collect(id);
        done
    }

    /// The node stops: unsynced writes and in-memory state are lost.
    pub fn crash(&mut self, id: NodeId) {
        let lost = self.nodes[&id].unsynced.len();
        self.note(|| format!("CRASH {id} losing {lost} writes"));
        let n = self.node(id);
        n.engine = None;
        n.unsynced.clear();
        n.proposals.clear();
        n.reads.clear();
    }

    /// The node starts again from what its disk holds.
    pub fn restart(&mut self, id: NodeId) {
        self.note(|| format!("RESTART {id}"));
        let n = self.node(id);
        n.engine = Some(E::boot(n.cfg.clone(), n.durable.clone()));
        n.app = n
            .durable
            .snapshot
            .as_ref()
            .and_then(|s| App::decode(&s.data))
            .unwrap_or_default();
        n.decided.clear();
        n.confirmed.clear();
        self.collect(id);
    }

    /// The values `id` applied since it (re)started, in slot order.
    pub fn applied(&self, id: NodeId) -> Vec<Value> {
        self.nodes[&id]
            .decided
            .iter()
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn stats(&mut self, id: NodeId) -> Stats {
        self.node(id).engine().stats().clone()
    }
}

pub fn cmd(s: &str) -> Value {
    Value::Command(s.as_bytes().to_vec())
}

/// Selects packets from `from` to `to` (0: any).
pub fn link<B>(from: NodeId, to: NodeId) -> impl Fn(&Packet<B>) -> bool {
    move |p| (from == 0 || p.from() == from) && (to == 0 || p.to() == to)
}

pub const FORGET_PROMISE: PaxosMutants = PaxosMutants {
    forget_promise: true,
    ignore_accepted: false,
};

pub const IGNORE_ACCEPTED: PaxosMutants = PaxosMutants {
    forget_promise: false,
    ignore_accepted: true,
};

/// Checks that every value survives a postcard round trip (the transport's and the
/// storage's encoding).
pub fn assert_round_trips<T: Serialize + DeserializeOwned + PartialEq + Debug>(values: &[T]) {
    for v in values {
        let bytes = postcard::to_allocvec(v).expect("encodes");
        let back: T = postcard::from_bytes(&bytes).expect("decodes");
        assert_eq!(&back, v);
    }
}
