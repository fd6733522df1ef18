//! The seeded fault schedule, and node start / crash / restart / pause.
//!
//! Faults are chosen to reach Raft's hard cases, not just to be noisy: the leader is a
//! favourite target, and a leader can be crashed a moment after it proposes, while its
//! entry sits on a minority (Raft paper figure 8). Restarts come quickly, so a node with
//! a lagging or divergent log soon runs for election again.

use super::net::Faults;
use super::world::{Driven, Ev, MS, Phase, TICK_NS, World};
use crate::faults::Fault;
use node::engine::EngineKind;
use node::raft::RaftConfig;
use node::raft::types::NodeId;
use node::replica::{Config, Role};
use rand::RngExt;
use serde_json::{Value, json};

impl<R: Driven> World<R> {
    /// Arms the schedule at the start of a run: the first fault, the end of the
    /// fault phase, and (half the time, with crashes on) a figure-8 schedule where
    /// leadership stays unstable for most of the fault phase.
    pub(super) fn schedule_faults(&mut self) {
        let fault_ns = self.rng.random_range(3_000 * MS..6_000 * MS);
        let first = self.rng.random_range(50 * MS..300 * MS);
        self.queue.push(first, Ev::Nemesis);
        self.queue.push(fault_ns, Ev::Heal);
        if self.opts.nemesis.contains(Fault::Kill) && self.rng.random_bool(0.5) {
            self.triggers.short_leaders_until = fault_ns;
        }
    }

    /// A leader just proposed: crashes it soon if the schedule armed that, leaving
    /// its entry on a minority (Raft paper figure 8).
    pub(super) fn on_leader_proposed(&mut self, node: NodeId, epoch: u64) {
        if self.triggers.crash_on_propose && self.phase == Phase::Faults {
            self.triggers.crash_on_propose = false;
            let t = self.now + self.rng.random_range(0..3 * MS);
            self.queue.push(t, Ev::CrashSoon { node, epoch });
        }
    }

    /// A leader applying an entry of an earlier term has just counted replicas for
    /// it; crashing it now, before its own entries spread, is the step of figure 8
    /// that turns a wrong commit into a lost one.
    pub(super) fn on_leader_applied_old_term(&mut self, node: NodeId, epoch: u64) {
        if self.phase == Phase::Faults
            && self.opts.nemesis.contains(Fault::Kill)
            && self.rng.random_bool(0.3)
        {
            let t = self.now + self.rng.random_range(0..MS);
            self.queue.push(t, Ev::CrashSoon { node, epoch });
        }
    }

    /// Fires the armed figure-8 triggers at a node that just became leader.
    pub(super) fn on_new_leader(&mut self, node: NodeId, epoch: u64) {
        if self.phase != Phase::Faults {
            return;
        }
        if self.now < self.triggers.short_leaders_until && self.rng.random_bool(0.7) {
            // Leaves the new leader's first entries on itself, or on a few nodes.
            if self.rng.random_bool(0.5) || !self.opts.nemesis.contains(Fault::Partition) {
                let t = self.now + self.rng.random_range(0..4 * MS);
                self.queue.push(t, Ev::CrashSoon { node, epoch });
            } else {
                let t = self.now + self.rng.random_range(0..2 * MS);
                self.queue.push(t, Ev::IsolateSoon { node });
            }
        }
        if self.triggers.crash_new_leader {
            self.triggers.crash_new_leader = false;
            let t = self.now + self.rng.random_range(0..15 * MS);
            self.queue.push(t, Ev::CrashSoon { node, epoch });
        }
        if self.triggers.lossy_new_leader {
            self.triggers.lossy_new_leader = false;
            let p = self.rng.random_range(0.4..0.9);
            self.net.set_lossy(node, p);
            let t = self.now + self.rng.random_range(20 * MS..300 * MS);
            self.queue.push(t, Ev::LossyEnd { node });
            self.trace_line(|| format!("nemesis lossy n{node} {p:.2}"));
        }
        if self.triggers.isolate_new_leader {
            self.triggers.isolate_new_leader = false;
            let t = self.now + self.rng.random_range(0..15 * MS);
            self.queue.push(t, Ev::IsolateSoon { node });
        }
    }

    pub(super) fn nemesis_event(&mut self, f: &'static str, value: Value) {
        if self.opts.trace {
            self.trace_line(|| format!("nemesis {f} {value}"));
        }
        self.history.nemesis(self.now, f, value);
    }

    /// The running node that most recently said it leads (highest term).
    pub(super) fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.replica.is_some())
            .filter_map(|(id, n)| match n.role {
                Some((Role::Leader, t)) => Some((t, *id)),
                _ => None,
            })
            .max()
            .map(|(_, id)| id)
    }

    pub(super) fn up_nodes(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.replica.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    /// A target: the leader most of the time, else any running node.
    fn target(&mut self) -> Option<NodeId> {
        let up = self.up_nodes();
        if up.is_empty() {
            return None;
        }
        match self.leader() {
            Some(l) if self.rng.random_bool(0.6) => Some(l),
            _ => Some(up[self.rng.random_range(0..up.len())]),
        }
    }

    /// (Re)starts a node from its durable state.
    pub(super) fn start_node(&mut self, id: NodeId) {
        let seed = self.rng.random::<u64>();
        // What a driver draws from the operating system: a node that starts without
        // state is a new incarnation.
        let incarnation = self.rng.random::<u64>().max(1);
        let base = self.base_config();
        let config = Config {
            raft: RaftConfig {
                id,
                seed,
                incarnation,
                ..base.raft.clone()
            },
            ..base.clone()
        };
        let phase = self.rng.random_range(0..TICK_NS);
        let engine = self.opts.engine;
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        let recovered = match engine {
            EngineKind::Raft => n.disk.durable.clone().into(),
            _ => n.paxos.durable.recovered(),
        };
        n.replica = Some(R::boot(config, recovered));
        n.started_ns = self.now;
        n.paused = false;
        n.role = None;
        let epoch = n.epoch;
        self.queue
            .push(self.now + phase, Ev::Tick { node: id, epoch });
        self.trace_line(|| format!("n{id} start"));
        if engine != EngineKind::Raft {
            self.paxos_started(id);
        }
    }

    /// A write of `node` (life `epoch`) was just issued, its fsync to end at `done`:
    /// while a power-loss fault is on, the node may lose power before then.
    /// A write that only records a vote or promise (`vote`) is the likelier victim:
    /// losing one is what the persistence rule is about.
    pub(super) fn maybe_power_loss(&mut self, node: NodeId, epoch: u64, done: u64, vote: bool) {
        if self.now >= self.triggers.power_loss_until || self.phase != Phase::Faults {
            return;
        }
        let p = if vote {
            0.8
        } else {
            self.triggers.power_loss_p
        };
        if self.rng.random_bool(p) {
            let t = self.now + self.rng.random_range(0..(done - self.now).max(1));
            self.queue.push(t, Ev::PowerLoss { node, epoch });
        }
    }

    /// The power goes out at `node` while a write is in flight: it is lost.
    pub(super) fn power_loss(&mut self, node: NodeId, epoch: u64) {
        if self.phase == Phase::Faults && self.nodes.get(&node).is_some_and(|n| n.epoch == epoch) {
            self.stats.power_losses += 1;
            // Power comes back soon: the node is up again while the peers it
            // answered still act on what it told them.
            self.crash_then_restart(node, "power-loss", MS..60 * MS);
        }
    }

    pub(super) fn crash(&mut self, id: NodeId, why: &'static str) {
        self.crash_then_restart(id, why, 10 * MS..400 * MS);
    }

    /// Crashes `id` and restarts it after a delay drawn from `down`.
    fn crash_then_restart(&mut self, id: NodeId, why: &'static str, down: std::ops::Range<u64>) {
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        if n.replica.is_none() {
            return;
        }
        n.replica = None;
        n.disk.crash();
        n.paxos.crash();
        n.epoch += 1;
        n.deferred.clear();
        n.paused = false;
        n.role = None;
        n.clear_requests();
        self.stats.crashes += 1;
        self.nemesis_event("kill-start", json!({"node": id, "why": why}));
        let t = self.now + self.rng.random_range(down);
        self.queue.push(t, Ev::Restart { node: id });
    }

    pub(super) fn restart(&mut self, id: NodeId) {
        if self.nodes.get(&id).is_some_and(|n| n.replica.is_none()) {
            self.start_node(id);
            self.nemesis_event("kill-stop", json!({"node": id}));
        }
    }

    fn pause(&mut self, id: NodeId) {
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        if n.replica.is_none() || n.paused {
            return;
        }
        n.paused = true;
        self.stats.pauses += 1;
        self.nemesis_event("pause-start", json!({"node": id}));
        let t = self.now + self.rng.random_range(50 * MS..500 * MS);
        self.queue.push(t, Ev::Resume { node: id });
    }

    pub(super) fn resume(&mut self, id: NodeId) {
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        if !n.paused {
            return;
        }
        n.paused = false;
        let deferred = std::mem::take(&mut n.deferred);
        for ev in deferred {
            self.queue.push(self.now, ev);
        }
        self.nemesis_event("pause-stop", json!({"node": id}));
    }

    pub(super) fn heal_net(&mut self) {
        if self.net.any_cut() {
            self.net.heal();
            self.nemesis_event("partition-stop", Value::Null);
        }
    }

    /// Cuts `victim` off from every other node until a heal.
    pub(super) fn isolate(&mut self, victim: NodeId, grudge: &'static str) {
        if self.nodes.len() < 2 {
            return;
        }
        self.net.heal();
        let rest: Vec<NodeId> = self
            .nodes
            .keys()
            .copied()
            .filter(|&i| i != victim)
            .collect();
        self.net.partition(&[victim], &rest);
        self.stats.partitions += 1;
        self.nemesis_event(
            "partition-start",
            json!({"grudge": grudge, "detail": {"node": victim}}),
        );
        let t = self.now + self.rng.random_range(50 * MS..600 * MS);
        self.queue.push(t, Ev::HealNet);
    }

    fn partition(&mut self) {
        if self.nodes.len() < 2 {
            return;
        }
        self.net.heal();
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        let n = ids.len();
        // Schedules with power loss also draw the bridge (kind 4); the others keep
        // the draws they always had, so their seeds replay as recorded.
        let kinds = if self.opts.nemesis.contains(Fault::PowerLoss) && n >= 3 {
            5
        } else {
            4
        };
        let kind = self.rng.random_range(0..kinds);
        let (grudge, value) = match kind {
            0 => {
                // Random halves: a shuffled split with a minority side.
                let mut shuffled = ids.clone();
                for i in (1..n).rev() {
                    let j = self.rng.random_range(0..=i);
                    shuffled.swap(i, j);
                }
                let k = self.rng.random_range(1..=n / 2);
                let (a, b) = shuffled.split_at(k);
                self.net.partition(a, b);
                ("halves", json!({"minority": a}))
            }
            1 | 2 => {
                let victim = if kind == 1 {
                    self.leader().unwrap_or(ids[0])
                } else {
                    ids[self.rng.random_range(0..n)]
                };
                let rest: Vec<NodeId> = ids.iter().copied().filter(|&i| i != victim).collect();
                self.net.partition(&[victim], &rest);
                ("isolate", json!({"node": victim}))
            }
            4 => {
                // A bridge: two sides that hear each other only through one node,
                // so two would-be leaders can each win it over in turn.
                let bridge = ids[self.rng.random_range(0..n)];
                let mut rest: Vec<NodeId> = ids.iter().copied().filter(|&i| i != bridge).collect();
                for i in (1..rest.len()).rev() {
                    let j = self.rng.random_range(0..=i);
                    rest.swap(i, j);
                }
                let (a, b) = rest.split_at(rest.len() / 2);
                self.net.partition(a, b);
                ("bridge", json!({"node": bridge, "sides": [a, b]}))
            }
            _ => {
                // One-way: the victim can hear but not be heard (or the reverse).
                let victim = self.leader().unwrap_or(ids[0]);
                let rest: Vec<NodeId> = ids.iter().copied().filter(|&i| i != victim).collect();
                if self.rng.random_bool(0.5) {
                    self.net.cut_one_way(victim, &rest);
                    ("one-way-out", json!({"node": victim}))
                } else {
                    for &r in &rest {
                        self.net.cut_one_way(r, &[victim]);
                    }
                    ("one-way-in", json!({"node": victim}))
                }
            }
        };
        self.stats.partitions += 1;
        self.nemesis_event(
            "partition-start",
            json!({"grudge": grudge, "detail": value}),
        );
        let t = self.now + self.rng.random_range(50 * MS..600 * MS);
        self.queue.push(t, Ev::HealNet);
    }

    /// One step of the fault schedule; schedules the next.
    pub(super) fn nemesis(&mut self) {
        if self.phase != Phase::Faults {
            return;
        }
        let has = |f| self.opts.nemesis.contains(f);
        let (partition, loss) = (has(Fault::Partition), has(Fault::Loss));
        let mut menu: Vec<u32> = Vec::new();
        if partition {
            menu.extend([0, 0]);
        }
        if has(Fault::Kill) {
            menu.extend([1, 2, 2]);
        }
        if has(Fault::Pause) {
            menu.push(3);
        }
        if loss {
            menu.push(4);
        }
        if has(Fault::Membership) {
            menu.extend([5, 5]);
        }
        if has(Fault::Wipe) {
            menu.push(6);
        }
        if has(Fault::Hostile) {
            menu.push(7);
        }
        if has(Fault::PowerLoss) {
            menu.extend([8, 8]);
        }
        if let Some(&pick) = menu.get(self.rng.random_range(0..menu.len().max(1))) {
            match pick {
                0 => self.partition(),
                1 => {
                    if let Some(t) = self.target() {
                        self.crash(t, "scheduled");
                    }
                }
                2 => match self.rng.random_range(0..5u32) {
                    4 => {
                        self.triggers.short_leaders_until =
                            self.now + self.rng.random_range(200 * MS..800 * MS);
                        self.trace_line(|| "nemesis short-lived leaders".to_string());
                    }
                    0 => self.triggers.crash_on_propose = true,
                    1 => self.triggers.crash_new_leader = true,
                    2 if partition => self.triggers.isolate_new_leader = true,
                    3 if loss => self.triggers.lossy_new_leader = true,
                    _ => self.triggers.crash_new_leader = true,
                },
                3 => {
                    if let Some(t) = self.target() {
                        self.pause(t);
                    }
                }
                5 => self.membership_change(),
                6 => self.disk_loss(),
                7 => self.hostile(),
                8 => {
                    // A spell of power cuts: writes issued in it may be lost with
                    // their node (a Paxos promise or vote among them).
                    let until = self.now + self.rng.random_range(100 * MS..600 * MS);
                    let p = self.rng.random_range(0.05..0.4);
                    self.triggers.power_loss_until = until;
                    self.triggers.power_loss_p = p;
                    self.trace_line(|| format!("nemesis power-loss until {until} p {p:.2}"));
                }
                _ => {
                    let f = if self.rng.random_bool(0.3) {
                        Faults::NONE
                    } else {
                        Faults {
                            drop: self.rng.random_range(0.0..0.3),
                            duplicate: self.rng.random_range(0.0..0.1),
                            long_delay: self.rng.random_range(0.0..0.1),
                        }
                    };
                    self.net.faults = f;
                    self.nemesis_event(
                        "loss",
                        json!({"drop": f.drop, "duplicate": f.duplicate, "delay": f.long_delay}),
                    );
                }
            }
        }
        let t = self.now + self.rng.random_range(20 * MS..250 * MS);
        self.queue.push(t, Ev::Nemesis);
    }

    /// Ends the fault phase: heal everything and start the liveness clock.
    pub(super) fn heal_all(&mut self) {
        self.phase = Phase::Liveness;
        self.triggers.crash_on_propose = false;
        self.triggers.crash_new_leader = false;
        self.triggers.isolate_new_leader = false;
        self.triggers.lossy_new_leader = false;
        self.triggers.power_loss_until = 0;
        self.net.clear_lossy();
        self.heal_net();
        if self.net.faults != Faults::NONE {
            self.net.faults = Faults::NONE;
            self.nemesis_event("loss", json!({"drop": 0.0, "duplicate": 0.0, "delay": 0.0}));
        }
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.restart(id);
            self.resume(id);
        }
        self.trace_line(|| "heal: faults over, liveness phase".to_string());
        self.set_probe();
    }
}
