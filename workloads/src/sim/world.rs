//! One seeded simulated run: replicas, network, disks, clients and faults on virtual
//! time, with the safety invariants checked after every output.
//!
//! The world pops the next event, feeds the matching `Input` to a replica, and carries
//! out the returned outputs strictly in order (docs/design.md, "The persistence rule": the replica holds
//! back whatever depends on a write until `Input::Persisted`). A run has two phases:
//! faults (the nemesis schedule of `nemesis.rs`), then liveness: everything is
//! healed and a new write must commit within [`LIVENESS_BOUND_NS`].
//!
//! Replicas snapshot every 20-200 applied entries or slots (drawn per seed); the
//! snapshot's bytes come back a few virtual milliseconds later, as from a driver's
//! blocking thread, so compaction races with replication, crashes and snapshot
//! transfer (Raft's InstallSnapshot, the Paxos engines' own snapshot message).

use super::clients::{self, Client};
use super::describe::describe;
use super::disk::Disk;
use super::invariants::Invariants;
use super::net::Network;
use super::paxos_store::{PaxosStore, PaxosWatch};
use super::queue::Queue;
pub use super::stats::Stats;
use crate::args::FaultSet;
use crate::faults::{self, Fault};
use crate::history::Recording;
use crate::ops::{Generator, Mix};
use checker::history::{Actor, EventType, History};
use node::engine::{DurableWrite, EngineKind, PeerMessage};
use node::raft::RaftConfig;
use node::raft::types::{Index, NodeId, Term};
use node::replica::{
    ClientRequest, Config, Input, Mutants, Output, Recovered, Replica, Response, Role, Status,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

pub const MS: u64 = 1_000_000;
pub const TICK_NS: u64 = 10 * MS;
pub const CLIENT_TIMEOUT_NS: u64 = 400 * MS;
pub const LIVENESS_BOUND_NS: u64 = 4_000 * MS;
/// Stops a run that would otherwise never end (e.g. a message storm).
pub const MAX_STEPS: u64 = 3_000_000;

/// What the user chose for every seed.
#[derive(Clone, Debug)]
pub struct Options {
    /// Cluster size; `None` picks 3 or 5 from the seed.
    pub nodes: Option<usize>,
    /// The consensus engine every replica runs.
    pub engine: EngineKind,
    /// The kinds of fault the schedule may inject (`--nemesis`).
    pub nemesis: FaultSet<Fault>,
    pub mutants: Mutants,
    /// Driver mutant: report writes durable before they are.
    pub no_fsync: bool,
    pub trace: bool,
    /// Check each seed's history for linearizability (after its invariants pass).
    pub check_linearizability: bool,
}

impl Default for Options {
    /// Raft, its default faults, no mutant, no trace, no linearizability check.
    fn default() -> Options {
        Options {
            nodes: None,
            engine: EngineKind::Raft,
            nemesis: faults::sim_default(EngineKind::Raft),
            mutants: Mutants::default(),
            no_fsync: false,
            trace: false,
            check_linearizability: false,
        }
    }
}

/// The first invariant broken in a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    pub step: u64,
    pub time_ns: u64,
    pub message: String,
}

/// The result of one seed.
pub struct SeedReport {
    pub seed: u64,
    pub nodes: usize,
    pub violation: Option<Violation>,
    pub stats: Stats,
    pub history: History,
    /// The event trace, when `Options::trace`.
    pub trace: Vec<String>,
    /// Why the linearizability check could not decide (never counted as a pass).
    pub unknown: Option<String>,
}

impl SeedReport {
    /// The report of a seed that panicked: the panic is its violation.
    pub fn panicked(seed: u64, message: String) -> SeedReport {
        SeedReport {
            seed,
            nodes: 0,
            violation: Some(Violation {
                step: 0,
                time_ns: 0,
                message,
            }),
            stats: Stats::default(),
            history: History::default(),
            trace: Vec::new(),
            unknown: None,
        }
    }
}

#[derive(Debug)]
pub(super) enum Ev {
    Tick {
        node: NodeId,
        epoch: u64,
    },
    /// `sender_epoch`: the sender's incarnation when it sent the message.
    Deliver {
        msg: PeerMessage,
        sender_epoch: u64,
    },
    Fsync {
        node: NodeId,
        epoch: u64,
    },
    /// The driver finished serializing a snapshot of `node`'s state through `index`
    /// (`None`: it could not).
    SnapshotReady {
        node: NodeId,
        epoch: u64,
        index: Index,
        data: Option<(node::raft::types::SnapshotData, node::kv::Layout)>,
    },
    /// Driver mutant `no-fsync`: claims `seq` durable at once.
    FakeSynced {
        node: NodeId,
        epoch: u64,
        seq: u64,
    },
    ClientArrive {
        node: NodeId,
        slot: usize,
        op_id: u64,
        request: ClientRequest,
    },
    ClientReply {
        node: NodeId,
        slot: usize,
        op_id: u64,
        response: Response,
    },
    ClientTimeout {
        slot: usize,
        op_id: u64,
    },
    ClientNext {
        slot: usize,
    },
    Nemesis,
    /// A membership change request reaching `node` (the admin API).
    Admin {
        node: NodeId,
        voters: Vec<NodeId>,
        learners: Option<Vec<NodeId>>,
    },
    /// Ask `node` to snapshot (and compact) now.
    CompactSoon {
        node: NodeId,
    },
    /// A hostile peer message for `to`, made when it arrives.
    Hostile {
        to: NodeId,
    },
    Restart {
        node: NodeId,
    },
    Resume {
        node: NodeId,
    },
    HealNet,
    IsolateSoon {
        node: NodeId,
    },
    LossyEnd {
        node: NodeId,
    },
    CrashSoon {
        node: NodeId,
        epoch: u64,
    },
    /// Power loss at `node` (life `epoch`) while a write is in flight.
    PowerLoss {
        node: NodeId,
        epoch: u64,
    },
    Heal,
    Deadline,
    End,
}

/// What the simulator drives: the real [`Replica`], or a test double with the same
/// contract (the simulator's own tests use a small reference Raft).
pub trait Driven {
    fn boot(config: Config, recovered: Recovered) -> Self;
    fn handle(&mut self, input: Input) -> Vec<Output>;
    /// The replica's current term (for the leader-completeness check).
    fn current_term(&self) -> Term;
    /// Role, indexes and membership, as `/status` reports them.
    fn status(&self) -> Status;
}

impl Driven for Replica {
    fn boot(config: Config, recovered: Recovered) -> Self {
        Replica::new(config, recovered)
    }
    fn handle(&mut self, input: Input) -> Vec<Output> {
        Replica::handle(self, input)
    }
    fn current_term(&self) -> Term {
        Replica::status(self).term
    }
    fn status(&self) -> Status {
        Replica::status(self)
    }
}

pub(super) struct SimNode<R> {
    pub replica: Option<R>,
    /// Raft's disk (empty under Paxos).
    pub disk: Disk,
    /// A Paxos node's disk (empty under Raft).
    pub paxos: Disk<PaxosStore>,
    pub paused: bool,
    /// Bumped by every crash, so the dead incarnation's ticks and fsyncs are ignored.
    pub epoch: u64,
    /// When the node last started (virtual time).
    pub started_ns: u64,
    /// Events that reached the node while it was paused, delivered on resume.
    pub deferred: Vec<Ev>,
    pub role: Option<(Role, Term)>,
    pub(super) next_request: u64,
    requests: BTreeMap<u64, (usize, u64)>,
    /// Membership requests (admin API) waiting for their answer.
    pub(super) admin: std::collections::BTreeSet<u64>,
}

impl<R> SimNode<R> {
    /// A crash forgets the requests in flight; their clients will time out.
    pub fn clear_requests(&mut self) {
        self.requests.clear();
        self.admin.clear();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Faults,
    Liveness,
    Done,
}

/// The simulated clients and what they share.
pub(super) struct Clients {
    pub(super) slots: Vec<Client>,
    pub(super) next_process: u64,
    pub(super) next_op: u64,
    pub(super) generator: Generator,
    /// When the healed phase's liveness probe started, if it has.
    pub(super) probe_from: Option<u64>,
    pub(super) liveness_met: bool,
}

/// Faults the schedule armed, which fire when the world reaches the moment.
#[derive(Debug, Default)]
pub(super) struct Triggers {
    /// Crash the next leader that proposes a command, a moment later (figure 8).
    pub(super) crash_on_propose: bool,
    /// Crash the next node to become leader a moment later, typically after its first
    /// entries reached only some followers (figure 8).
    pub(super) crash_new_leader: bool,
    /// Cut the next node to become leader off from the others a moment later: what it
    /// has in flight then is lost, so a commit may reach only part of the cluster.
    pub(super) isolate_new_leader: bool,
    /// Until this time, most new leaders are crashed moments after their election, so
    /// short-lived leaders leave entries of many terms on parts of the cluster.
    pub(super) short_leaders_until: u64,
    /// Make the next node to become leader lose most of what it sends for a while.
    pub(super) lossy_new_leader: bool,
    /// Until this time, a node that issues a write loses power before its fsync
    /// ends with probability `power_loss_p` (power-loss fault).
    pub(super) power_loss_until: u64,
    pub(super) power_loss_p: f64,
}

pub struct World<R = Replica> {
    pub(super) rng: ChaCha8Rng,
    pub(super) now: u64,
    pub(super) queue: Queue<Ev>,
    pub(super) nodes: BTreeMap<NodeId, SimNode<R>>,
    pub(super) net: Network,
    pub(super) opts: Options,
    base_config: Config,
    pub(super) phase: Phase,
    pub(super) inv: Invariants,
    /// The Paxos invariants, under a Paxos engine.
    pub(super) paxos: Option<PaxosWatch>,
    pub(super) stats: Stats,
    pub(super) history: Recording,
    trace: Vec<String>,
    violation: Option<Violation>,
    pub(super) clients: Clients,
    /// What the fault schedule (`nemesis.rs`) armed.
    pub(super) triggers: Triggers,
    /// A node whose disk was lost, and the commit index the cluster had then: no
    /// other disk is lost until it has caught up again and votes again.
    pub(super) wiped: Option<(NodeId, Index)>,
    /// Configuration entries already counted in the stats, by index.
    pub(super) configs_seen: std::collections::BTreeSet<Index>,
}

impl<R: Driven> World<R> {
    pub fn new(seed: u64, opts: Options) -> World<R> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = opts
            .nodes
            .unwrap_or(if rng.random_bool(0.5) { 3 } else { 5 });
        let ids: Vec<NodeId> = (1..=n as u64).collect();
        // Field order is draw order: keep it, or every seed changes.
        let base_config = Config {
            raft: RaftConfig {
                id: 0,
                peers: ids.clone(),
                election_ticks_min: 10,
                election_ticks_max: 20,
                heartbeat_ticks: 2,
                max_entries_per_msg: [1, 1, 2, 4, 64][rng.random_range(0..5usize)],
                max_inflight_msgs: [1, 2, 8][rng.random_range(0..3usize)],
                pre_vote: rng.random_bool(0.5),
                check_quorum: rng.random_bool(0.5),
                seed: 0,
                incarnation: 0,
                discover: true,
                mutants: opts.mutants,
            },
            // Often enough that most seeds compact and many install snapshots.
            snapshot_every: rng.random_range(20..200),
        };
        let engine = opts.engine;
        let mut w = World {
            rng,
            now: 0,
            queue: Queue::new(),
            nodes: BTreeMap::new(),
            net: Network::new(),
            opts,
            base_config,
            phase: Phase::Faults,
            inv: Invariants::default(),
            paxos: (engine != EngineKind::Raft).then(|| PaxosWatch::new(n)),
            stats: Stats::default(),
            history: Recording::new(),
            trace: Vec::new(),
            violation: None,
            clients: Clients {
                slots: Vec::new(),
                next_process: 0,
                next_op: 0,
                generator: Generator::new(clients::KEYS as usize, Mix::EVEN),
                probe_from: None,
                liveness_met: false,
            },
            triggers: Triggers::default(),
            wiped: None,
            configs_seen: Default::default(),
        };
        for id in ids {
            w.nodes.insert(
                id,
                SimNode {
                    replica: None,
                    disk: Disk::default(),
                    paxos: Disk::new(PaxosStore::empty(engine)),
                    paused: false,
                    epoch: 0,
                    started_ns: 0,
                    deferred: Vec::new(),
                    role: None,
                    next_request: 0,
                    requests: BTreeMap::new(),
                    admin: Default::default(),
                },
            );
            w.start_node(id);
        }
        let n_clients = n + 1;
        for slot in 0..n_clients {
            w.clients.slots.push(Client {
                process: slot as u64,
                seq: 0,
                pending: None,
            });
            let t = w.rng.random_range(0..20 * MS);
            w.queue.push(t, Ev::ClientNext { slot });
        }
        w.clients.next_process = n_clients as u64;
        w.schedule_faults();
        w
    }

    pub(super) fn base_config(&self) -> &Config {
        &self.base_config
    }

    pub fn cluster_size(&self) -> usize {
        self.nodes.len()
    }

    pub(super) fn trace_line(&mut self, f: impl FnOnce() -> String) {
        if self.opts.trace {
            let line = format!("{:>12} {}", self.now, f());
            self.trace.push(line);
        }
    }

    pub(super) fn fail(&mut self, message: String) {
        if self.violation.is_none() {
            self.trace_line(|| format!("VIOLATION {message}"));
            self.violation = Some(Violation {
                step: self.stats.steps,
                time_ns: self.now,
                message,
            });
        }
    }

    /// Runs the seed to its end (liveness met, a violation, or the step limit).
    pub fn run(mut self, seed: u64) -> SeedReport {
        while self.violation.is_none() && self.phase != Phase::Done {
            let Some((t, ev)) = self.queue.pop() else {
                self.fail("the event queue ran dry".into());
                break;
            };
            self.now = t;
            self.stats.steps += 1;
            if self.stats.steps > MAX_STEPS {
                self.fail(format!("step limit of {MAX_STEPS} reached"));
                break;
            }
            self.step(ev);
        }
        self.stats.virtual_ns = self.now;
        let (history, unknown) = match self.history.finish() {
            Ok(h) => (h, None),
            Err(why) => (History::default(), Some(why)),
        };
        for e in &history.events {
            if let Actor::Client { .. } = e.actor {
                match e.kind {
                    EventType::Ok => self.stats.ops_ok += 1,
                    EventType::Fail => self.stats.ops_fail += 1,
                    EventType::Info => self.stats.ops_info += 1,
                    EventType::Invoke => {}
                }
            }
        }
        self.stats.seeds_with_install = u64::from(self.stats.snapshots_installed > 0);
        self.stats.slots_chosen = self.paxos.as_ref().map_or(0, |w| w.learned);
        SeedReport {
            seed,
            nodes: self.nodes.len(),
            violation: self.violation,
            stats: self.stats,
            history,
            trace: self.trace,
            unknown,
        }
    }

    fn step(&mut self, ev: Ev) {
        match ev {
            Ev::Tick { node, epoch } => {
                let Some(n) = self.nodes.get(&node) else {
                    return;
                };
                if n.epoch != epoch || n.replica.is_none() {
                    return;
                }
                self.queue
                    .push(self.now + TICK_NS, Ev::Tick { node, epoch });
                if !n.paused {
                    self.feed(node, Input::Tick);
                }
            }
            Ev::Deliver { msg, sender_epoch } => {
                // A crash (power loss) loses part of what the node had in flight.
                let sender_crashed = self
                    .nodes
                    .get(&msg.from())
                    .is_some_and(|n| n.epoch != sender_epoch);
                if sender_crashed && self.rng.random_bool(0.5) {
                    self.trace_line(|| format!("lost with its sender {}", describe(&msg)));
                    return;
                }
                if self.net.is_cut(msg.from(), msg.to()) {
                    self.trace_line(|| format!("cut {}", describe(&msg)));
                    return;
                }
                if let Some(Ev::Deliver { msg, .. }) =
                    self.gate(msg.to(), Ev::Deliver { msg, sender_epoch })
                {
                    self.trace_line(|| format!("deliver {}", describe(&msg)));
                    self.feed(msg.to(), Input::Message(msg));
                }
            }
            Ev::Fsync { node, epoch } => {
                let Some(n) = self.nodes.get(&node) else {
                    return;
                };
                if n.epoch != epoch || self.gate(node, Ev::Fsync { node, epoch }).is_none() {
                    return;
                }
                let synced = match self.opts.engine {
                    EngineKind::Raft => match self.nodes.get_mut(&node) {
                        Some(n) => n.disk.sync_until(self.now),
                        None => return,
                    },
                    _ => self.paxos_sync(node),
                };
                match synced {
                    Ok(Some(seq)) if !self.opts.no_fsync => {
                        self.trace_line(|| format!("n{node} durable through seq {seq}"));
                        self.feed(node, Input::Persisted { seq });
                    }
                    Ok(_) => {}
                    Err(e) => self.fail(format!("node {node} disk: {e}")),
                }
            }
            ev @ Ev::SnapshotReady { .. } => self.on_snapshot_ready(ev),
            Ev::FakeSynced { node, epoch, seq } => {
                let Some(n) = self.nodes.get(&node) else {
                    return;
                };
                if n.epoch != epoch
                    || self
                        .gate(node, Ev::FakeSynced { node, epoch, seq })
                        .is_none()
                {
                    return;
                }
                self.feed(node, Input::Persisted { seq });
            }
            Ev::ClientArrive {
                node,
                slot,
                op_id,
                request,
            } => {
                let ev = Ev::ClientArrive {
                    node,
                    slot,
                    op_id,
                    request,
                };
                if let Some(Ev::ClientArrive {
                    slot,
                    op_id,
                    request,
                    ..
                }) = self.gate(node, ev)
                {
                    let Some(n) = self.nodes.get_mut(&node) else {
                        return;
                    };
                    n.next_request += 1;
                    let id = n.next_request;
                    n.requests.insert(id, (slot, op_id));
                    self.trace_line(|| format!("n{node} request {id} {:?}", request.op));
                    self.feed(node, Input::Client { id, request });
                }
            }
            Ev::ClientReply {
                node,
                slot,
                op_id,
                response,
            } => self.client_reply(node, slot, op_id, response),
            Ev::ClientTimeout { slot, op_id } => {
                let c = &self.clients.slots[slot];
                let Some(p) = c.pending.as_ref().filter(|p| p.op_id == op_id) else {
                    return;
                };
                let outcome = clients::on_timeout(p);
                self.finish(slot, outcome);
            }
            Ev::ClientNext { slot } => self.client_next(slot),
            Ev::Nemesis => self.nemesis(),
            ev @ Ev::Admin { .. } => self.on_admin(ev),
            Ev::CompactSoon { node } => {
                if self.gate(node, Ev::CompactSoon { node }).is_some() {
                    self.trace_line(|| format!("n{node} asked to snapshot now"));
                    self.feed(node, Input::TakeSnapshot);
                }
            }
            Ev::Hostile { to } => self.deliver_hostile(to),
            Ev::Restart { node } => self.restart(node),
            Ev::Resume { node } => self.resume(node),
            Ev::HealNet => self.heal_net(),
            Ev::CrashSoon { node, epoch } => {
                if self.phase == Phase::Faults
                    && self.nodes.get(&node).is_some_and(|n| n.epoch == epoch)
                {
                    self.crash(node, "crash-after-propose");
                }
            }
            Ev::PowerLoss { node, epoch } => self.power_loss(node, epoch),
            Ev::IsolateSoon { node } => {
                if self.phase == Phase::Faults {
                    self.isolate(node, "isolate-new-leader");
                }
            }
            Ev::LossyEnd { node } => self.net.set_lossy(node, 0.0),
            Ev::Heal => self.heal_all(),
            Ev::Deadline => {
                if !self.clients.liveness_met {
                    self.fail(format!(
                        "liveness: no write committed within {} ms after every fault was healed",
                        LIVENESS_BOUND_NS / MS
                    ));
                } else if let Some(why) = self.unsettled() {
                    self.fail(format!(
                        "liveness: {why} {} ms after every fault was healed",
                        LIVENESS_BOUND_NS / MS
                    ));
                }
            }
            Ev::End => {
                // The run ends once the cluster has also settled (no joint
                // configuration, every voter voting again); the deadline judges it.
                if self.unsettled().is_none() {
                    self.phase = Phase::Done;
                } else {
                    self.queue.push(self.now + 50 * MS, Ev::End);
                }
            }
        }
    }

    /// Drops `ev` when its node is down, keeps it for later when the node is paused,
    /// and otherwise hands it back to be run now.
    pub(super) fn gate(&mut self, node: NodeId, ev: Ev) -> Option<Ev> {
        let n = self.nodes.get_mut(&node)?;
        n.replica.as_ref()?;
        if n.paused {
            n.deferred.push(ev);
            return None;
        }
        Some(ev)
    }

    /// Feeds one input to a running replica and carries out its outputs in order.
    pub(super) fn feed(&mut self, node: NodeId, input: Input) {
        let Some(r) = self.nodes.get_mut(&node).and_then(|n| n.replica.as_mut()) else {
            return;
        };
        let outputs = r.handle(input);
        for out in outputs {
            if self.violation.is_some() {
                return;
            }
            self.carry_out(node, out);
        }
    }

    fn carry_out(&mut self, node: NodeId, out: Output) {
        match out {
            Output::Persist(DurableWrite::Raft(w)) => {
                self.trace_line(|| {
                    format!(
                        "n{node} persist seq {} snap {:?} trunc {:?} entries {:?} hs {:?}{}",
                        w.seq,
                        w.snapshot
                            .as_ref()
                            .map(|s| (s.meta.last_index, s.meta.last_term)),
                        w.truncate_from,
                        w.entries
                            .iter()
                            .map(|e| (e.index, e.term))
                            .collect::<Vec<_>>(),
                        w.hard_state,
                        w.entries
                            .iter()
                            .filter_map(|e| match &e.payload {
                                node::raft::types::Payload::Config(m) => Some(format!(
                                    " config@{}: voters {:?} {:x?} old {:?}",
                                    e.index, m.voters, m.incarnations, m.voters_old
                                )),
                                _ => None,
                            })
                            .collect::<String>()
                    )
                });
                let proposes = w
                    .entries
                    .iter()
                    .any(|e| matches!(e.payload, node::raft::types::Payload::Command(_)));
                let vote = w.entries.is_empty() && w.snapshot.is_none() && w.hard_state.is_some();
                let delay = self.rng.random_range(50_000..4 * MS);
                let count = w.entries.len();
                let seq = w.seq;
                let Some(n) = self.nodes.get_mut(&node) else {
                    return;
                };
                let epoch = n.epoch;
                let done = match n.disk.write(w, self.now + delay) {
                    Ok(done) => done,
                    Err(e) => return self.fail(format!("node {node} disk: {e}")),
                };
                let log = &n.disk.written;
                let tail = &log.entries[log.entries.len().saturating_sub(count)..];
                if let Err(e) = self.inv.on_written(node, tail, log) {
                    return self.fail(e);
                }
                self.queue.push(done, Ev::Fsync { node, epoch });
                if self.opts.no_fsync {
                    self.queue
                        .push(self.now, Ev::FakeSynced { node, epoch, seq });
                }
                let leader = matches!(n.role, Some((Role::Leader, _)));
                if proposes && leader {
                    self.on_leader_proposed(node, epoch);
                }
                self.maybe_power_loss(node, epoch, done, vote);
            }
            Output::Persist(other) if other.kind() == self.opts.engine => {
                self.paxos_persist(node, other)
            }
            Output::Persist(other) => {
                let kind = other.kind();
                self.fail(format!(
                    "node {node}: a {kind} write, but this world runs {}",
                    self.opts.engine
                ));
            }
            Output::Send(msg) => {
                self.stats.messages += 1;
                if msg.from() != node {
                    return self.fail(format!(
                        "node {node} sent a message claiming to be from {}",
                        msg.from()
                    ));
                }
                let fates = self.net.fate(&mut self.rng, msg.from(), msg.to());
                let sender_epoch = self.nodes.get(&node).map_or(0, |n| n.epoch);
                if fates.is_empty() {
                    self.trace_line(|| format!("lost {}", describe(&msg)));
                }
                for d in fates {
                    self.queue.push(
                        self.now + d,
                        Ev::Deliver {
                            msg: msg.clone(),
                            sender_epoch,
                        },
                    );
                }
            }
            Output::Reply { id, response } => {
                let Some(n) = self.nodes.get_mut(&node) else {
                    return;
                };
                if n.admin.remove(&id) {
                    return self.on_admin_reply(node, id, &response);
                }
                let Some((slot, op_id)) = n.requests.remove(&id) else {
                    return self.fail(format!("node {node} answered unknown request {id}"));
                };
                let t = self.now + self.rng.random_range(50_000..500_000);
                self.queue.push(
                    t,
                    Ev::ClientReply {
                        node,
                        slot,
                        op_id,
                        response,
                    },
                );
            }
            Output::Applied { index, .. } if self.paxos.is_some() => {
                self.paxos_applied(node, index)
            }
            Output::Applied { index, term } => {
                let Some(n) = self.nodes.get(&node) else {
                    return;
                };
                let node_term = n.replica.as_ref().map_or(0, |r| r.current_term());
                let leads = matches!(n.role, Some((Role::Leader, _)));
                let epoch = n.epoch;
                let config = match n.disk.written.entry(index).map(|e| &e.payload) {
                    Some(node::raft::types::Payload::Config(m)) => Some(m.clone()),
                    _ => None,
                };
                if let Err(e) = self
                    .inv
                    .on_applied(node, index, term, &n.disk.written, node_term)
                {
                    return self.fail(e);
                }
                if let Some(m) = config
                    && self.configs_seen.insert(index)
                {
                    if m.voters_old.is_some() {
                        self.stats.joint_entries += 1;
                    } else {
                        self.stats.final_entries += 1;
                    }
                    self.trace_line(|| {
                        format!(
                            "configuration {index}/{term} committed: voters {:?} {:x?}, \
                             old {:?} {:x?}, learners {:?}",
                            m.voters, m.incarnations, m.voters_old, m.incarnations_old, m.learners
                        )
                    });
                }
                if leads && term < node_term {
                    self.on_leader_applied_old_term(node, epoch);
                }
            }
            Output::Snapshot { index, source } => self.on_snapshot(node, index, &source),
            Output::Refused(r) => {
                self.stats.hostile_rejected += 1;
                self.trace_line(|| {
                    format!(
                        "n{node} refused a message from {} (term {}): {}",
                        r.from, r.term, r.reason
                    )
                });
            }
            Output::Restored { index, term } => self.on_restored(node, index, term),
            Output::RoleChanged { role, term, leader } => {
                let voters = self.status_of(node).map(|s| {
                    let m = s.membership;
                    (m.voters, m.voters_old)
                });
                self.trace_line(|| {
                    format!("n{node} role {role:?} term {term} leader {leader:?} voters {voters:?}")
                });
                let Some(n) = self.nodes.get_mut(&node) else {
                    return;
                };
                n.role = Some((role, term));
                if role == Role::Leader {
                    self.stats.leader_changes += 1;
                    let epoch = n.epoch;
                    let raft = self.paxos.is_none();
                    if raft && let Err(e) = self.inv.on_leader(node, epoch, term, &n.disk.written) {
                        return self.fail(e);
                    }
                    self.on_new_leader(node, epoch);
                }
            }
        }
    }
}
