//! The nemesis: real, uncooperative faults on a seeded schedule that alternates quiet
//! periods and faults. Partitions cut proxied links (grudges), kills SIGKILL and later
//! restart on the same data directory, pauses SIGSTOP and later SIGCONT, membership
//! faults remove a voter through the admin API and later add it back (on etcd:
//! through its member API, see [`super::etcd_members`]), wipes kill a node, delete
//! its data directory and restart it with the same command line (our node only).
//!
//! Some faults aim at the leader on purpose, because that is where safety bugs show:
//! isolating the leader while clients keep reading from it exposes stale reads, and
//! killing a majority of its followers before killing it exposes writes acknowledged
//! before they committed (the survivors elect a leader that never saw them).

use super::api::Api;
use super::client::Workload;
use super::cluster::Cluster;
use super::etcd_members::{self, Removed};
use super::http::HttpClient;
use super::membership;
use super::recorder::Recorder;
use super::status::ClusterView;
use super::wipe;
use crate::faults::Fault;
use checker::report::FaultInterval;
use rand::RngExt;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Ways to split the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grudge {
    RandomHalves,
    IsolateOne,
    IsolateLeader,
    MajoritiesRing,
    Bridge,
}

impl Grudge {
    pub fn name(self) -> &'static str {
        match self {
            Grudge::RandomHalves => "random-halves",
            Grudge::IsolateOne => "isolate-one",
            Grudge::IsolateLeader => "isolate-leader",
            Grudge::MajoritiesRing => "majorities-ring",
            Grudge::Bridge => "bridge",
        }
    }
}

/// The directed links a grudge cuts. Every grudge is symmetric: if `a -> b` is cut,
/// so is `b -> a`. `leader` is used by `IsolateLeader` (a random node when unknown).
pub fn grudge_links(
    grudge: Grudge,
    ids: &[u64],
    leader: Option<u64>,
    rng: &mut ChaCha8Rng,
) -> Vec<(u64, u64)> {
    let mut order = ids.to_vec();
    order.shuffle(rng);
    let n = order.len();
    // Whether a and b (positions in `order`) may still talk.
    let connected: Box<dyn Fn(usize, usize) -> bool> = match grudge {
        Grudge::RandomHalves => {
            let half = n / 2;
            Box::new(move |a, b| (a < half) == (b < half))
        }
        Grudge::IsolateOne | Grudge::IsolateLeader => {
            let victim = match (grudge, leader) {
                (Grudge::IsolateLeader, Some(l)) => order.iter().position(|&x| x == l).unwrap_or(0),
                _ => 0,
            };
            Box::new(move |a, b| (a == victim) == (b == victim))
        }
        Grudge::MajoritiesRing => {
            // Each node keeps its nearest ring neighbours, enough to see a majority
            // (itself included), and no two nodes see the same majority.
            let majority = n / 2 + 1;
            let reach = majority / 2;
            Box::new(move |a, b| {
                let d = a.abs_diff(b);
                d.min(n - d) <= reach
            })
        }
        Grudge::Bridge => {
            // Two halves that only the middle node connects.
            let mid = n / 2;
            Box::new(move |a, b| a == mid || b == mid || (a < mid) == (b < mid))
        }
    };
    let mut cuts = Vec::new();
    for a in 0..n {
        for b in 0..n {
            if a != b && !connected(a, b) {
                cuts.push((order[a], order[b]));
            }
        }
    }
    cuts.sort_unstable();
    cuts
}

/// Healed time between two isolations, for the new leader to settle.
const LEADER_SETTLE: Duration = Duration::from_millis(300);

/// How long the end of a membership fault keeps trying to add the voter back
/// before leaving it to the run's final heal.
const MEMBERSHIP_RESTORE: Duration = Duration::from_secs(10);

/// Nodes that can reach fewer peers than a majority needs, under these cuts.
pub fn minority_nodes(ids: &[u64], cuts: &[(u64, u64)]) -> Vec<u64> {
    let majority = ids.len() / 2 + 1;
    ids.iter()
        .copied()
        .filter(|&a| {
            let reach = ids
                .iter()
                .filter(|&&b| b != a && !cuts.contains(&(a, b)))
                .count();
            reach + 1 < majority
        })
        .collect()
}

/// What the nemesis needs from the runner.
pub struct Nemesis {
    pub cluster: Arc<Cluster>,
    pub view: Arc<ClusterView>,
    pub recorder: Arc<Recorder>,
    pub workload: Arc<Workload>,
    pub kinds: Vec<Fault>,
    pub interval: Duration,
    /// How long one isolation of the leader lasts: long enough for the majority to
    /// elect a new leader and for the old one to notice (the target says how long
    /// its elections take).
    pub leader_isolation: Duration,
    pub rng: ChaCha8Rng,
    /// Partition faults started so far.
    pub partitions: usize,
    pub faults: Vec<FaultInterval>,
    /// Setup problems met while injecting (a node that would not restart, ...).
    pub errors: Vec<String>,
    /// For admin calls (membership faults).
    pub http: HttpClient,
    /// The members' protocol: membership faults go through it.
    pub api: Api,
    /// etcd members taken out by membership faults and not yet back.
    pub etcd_removed: Removed,
    /// Voters a membership fault took out (or may have: the call's outcome was
    /// unknown) and has not yet seen back; the final heal re-adds them.
    pub removed: BTreeSet<u64>,
}

/// Faults still in force, so they can be ended when the run stops mid-fault.
struct Open {
    kind: Fault,
    start_ns: u64,
    detail: String,
    nodes: Vec<u64>,
}

impl Nemesis {
    fn event(&self, f: &str, value: Value) -> u64 {
        self.recorder
            .nemesis(f, value)
            .unwrap_or_else(|| self.recorder.now_ns())
    }

    fn note(&mut self, r: anyhow::Result<()>) {
        if let Err(e) = r {
            self.errors.push(format!("{e:#}"));
        }
    }

    fn leader(&self) -> Option<u64> {
        self.view.leader(self.recorder.now_ns())
    }

    fn pick_node(&mut self, prefer_leader: bool) -> u64 {
        let ids = self.cluster.ids();
        if prefer_leader && let Some(l) = self.leader() {
            return l;
        }
        ids[self.rng.random_range(0..ids.len())]
    }

    fn start(&mut self, kind: Fault, detail: String, nodes: Vec<u64>, value: Value) -> Open {
        let start_ns = self.event(&format!("{}-start", kind.name()), value);
        Open {
            kind,
            start_ns,
            detail,
            nodes,
        }
    }

    /// Ends a fault: heals it and records the interval.
    fn end(&mut self, open: Open) {
        match open.kind {
            Fault::Partition => {
                self.cluster.heal_links();
                self.workload.clear_read_focus();
            }
            Fault::Kill => {
                for &id in &open.nodes {
                    let r = self.cluster.restart(id);
                    self.note(r);
                }
            }
            Fault::Pause => {
                for &id in &open.nodes {
                    let r = self.cluster.resume(id);
                    self.note(r);
                }
            }
            // Ended by their own functions, which await the admin API or /status;
            // the simulator-only kinds never reach a real run (`faults::for_real_run`).
            Fault::Membership | Fault::Wipe | Fault::Loss | Fault::Hostile | Fault::PowerLoss => {}
        }
        let end_ns = self.event(
            &format!("{}-stop", open.kind.name()),
            json!({ "detail": open.detail, "nodes": open.nodes }),
        );
        self.faults.push(FaultInterval {
            kind: open.kind.name().to_string(),
            start_ns: open.start_ns,
            end_ns: Some(end_ns),
            detail: open.detail,
        });
    }

    /// The first partition of a run isolates the leader, where most bugs show; later
    /// ones are drawn from every grudge, the leader's isolation weighted up.
    fn pick_grudge(&mut self) -> Grudge {
        self.partitions += 1;
        if self.partitions == 1 {
            return Grudge::IsolateLeader;
        }
        let grudges = [
            (Grudge::IsolateLeader, 6),
            (Grudge::IsolateOne, 1),
            (Grudge::RandomHalves, 1),
            (Grudge::MajoritiesRing, 1),
            (Grudge::Bridge, 1),
        ];
        let total: u32 = grudges.iter().map(|g| g.1).sum();
        let mut roll = self.rng.random_range(0..total);
        for (g, w) in grudges {
            if roll < w {
                return g;
            }
            roll -= w;
        }
        Grudge::IsolateLeader
    }

    /// Cuts the links of one grudge. The clients of nodes left without a majority
    /// only read while it lasts.
    fn partition(&mut self, grudge: Grudge) -> Open {
        let leader = self.leader();
        let ids = self.cluster.ids();
        let cuts = grudge_links(grudge, &ids, leader, &mut self.rng);
        for &(a, b) in &cuts {
            self.cluster.cut(a, b);
        }
        let minority = minority_nodes(&ids, &cuts);
        self.workload.set_read_focus(&minority);
        let detail = match (grudge, leader) {
            (Grudge::IsolateLeader, Some(l)) => format!("isolate-leader n{l}"),
            _ => grudge.name().to_string(),
        };
        self.start(
            Fault::Partition,
            detail,
            minority.clone(),
            json!({ "grudge": grudge.name(), "cut": cuts, "minority": minority }),
        )
    }

    /// One partition fault. Isolating the leader repeats for the whole fault period
    /// (isolate, heal, let the new leader settle, isolate it): each time, the old
    /// leader keeps its role for a moment after the majority has elected another,
    /// and only reads in that moment show a leader that serves stale state.
    async fn partition_fault(&mut self, stop: &mut watch::Receiver<bool>) {
        let grudge = self.pick_grudge();
        if grudge != Grudge::IsolateLeader {
            let open = self.partition(grudge);
            Self::hold(self.interval, stop).await;
            self.end(open);
            return;
        }
        let end = tokio::time::Instant::now() + self.interval;
        loop {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            let open = self.partition(grudge);
            let stopped = Self::hold(left.min(self.leader_isolation), stop).await;
            self.end(open);
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            if stopped || left.is_zero() || Self::hold(left.min(LEADER_SETTLE), stop).await {
                return;
            }
            if end <= tokio::time::Instant::now() {
                return;
            }
        }
    }

    fn kill(&mut self, nodes: Vec<u64>, why: &str) -> Open {
        for &id in &nodes {
            let r = self.cluster.kill(id);
            self.note(r);
        }
        let names: Vec<String> = nodes.iter().map(|n| format!("n{n}")).collect();
        let detail = format!("{why} {}", names.join(","));
        self.start(
            Fault::Kill,
            detail,
            nodes.clone(),
            json!({ "target": why, "nodes": nodes }),
        )
    }

    fn pause(&mut self) -> Open {
        let leader = self.rng.random_bool(0.5);
        let id = self.pick_node(leader);
        let r = self.cluster.pause(id);
        self.note(r);
        let why = if leader { "leader" } else { "one" };
        self.start(
            Fault::Pause,
            format!("{why} n{id}"),
            vec![id],
            json!({ "target": why, "nodes": [id] }),
        )
    }

    /// Sleeps for `d` unless the run stops first; returns whether it stopped.
    async fn hold(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
        if *stop.borrow() {
            return true;
        }
        tokio::select! {
            () = tokio::time::sleep(d) => *stop.borrow(),
            _ = stop.changed() => true,
        }
    }

    /// One kill fault. The quorum variant kills a majority of the leader's followers,
    /// then the leader and the rest while the majority comes back, then the rest.
    async fn kill_fault(&mut self, stop: &mut watch::Receiver<bool>) {
        let ids = self.cluster.ids();
        let n = ids.len();
        let majority = n / 2 + 1;
        let roll = self.rng.random_range(0..4u32);
        let leader = self.leader();
        if roll < 2 && n >= 3 {
            let l = leader.unwrap_or(ids[0]);
            let mut followers: Vec<u64> = ids.iter().copied().filter(|&i| i != l).collect();
            followers.shuffle(&mut self.rng);
            let first: Vec<u64> = followers[..majority.min(followers.len())].to_vec();
            let rest: Vec<u64> = ids.iter().copied().filter(|i| !first.contains(i)).collect();
            let a = self.kill(first, "majority-without-leader");
            let stopped = Self::hold(self.interval / 2, stop).await;
            if stopped {
                self.end(a);
                return;
            }
            let b = self.kill(rest, "leader-side");
            self.end(a);
            Self::hold(self.interval / 2, stop).await;
            self.end(b);
        } else {
            let target_leader = roll == 2;
            let id = self.pick_node(target_leader);
            let why = if target_leader { "leader" } else { "one" };
            let open = self.kill(vec![id], why);
            Self::hold(self.interval, stop).await;
            self.end(open);
        }
    }

    /// One membership fault: one voter (the leader half the time) is taken out of the
    /// configuration for the fault period, then every member is made a voter again.
    /// Calls that fail are retried within the window and written into the end event.
    /// On our node the removed node keeps running and its clients keep using it; on
    /// etcd a removed member is wiped and added back afresh ([`etcd_members`]).
    async fn membership_fault(&mut self, stop: &mut watch::Receiver<bool>) {
        let all = self.cluster.ids();
        if all.len() < 2 {
            return;
        }
        let window_end = tokio::time::Instant::now() + self.interval;
        let at_leader = self.rng.random_bool(0.5);
        let victim = self.pick_node(at_leader);
        let why = if at_leader { "leader" } else { "one" };
        let remaining: Vec<u64> = all.iter().copied().filter(|&i| i != victim).collect();
        let start_ns = self.event(
            "membership-start",
            json!({ "target": why, "remove": victim, "voters": remaining }),
        );
        let (outcome, removal_errors) = self.remove_member(victim, &remaining, window_end).await;
        let left = window_end.saturating_duration_since(tokio::time::Instant::now());
        Self::hold(left, stop).await;
        let restored = self
            .restore_members(tokio::time::Instant::now() + MEMBERSHIP_RESTORE)
            .await;
        let (whole, readd_notes) = match restored {
            Ok(notes) => (true, notes),
            Err(notes) => (false, notes),
        };
        if !whole {
            self.errors.push(format!(
                "membership: could not make every member a voter again after removing n{victim}: {}",
                readd_notes.join("; ")
            ));
        }
        let end_ns = self.event(
            "membership-end",
            json!({
                "removed": victim,
                "removal": outcome,
                "removal_errors": removal_errors,
                "voters": if whole { json!(all) } else { Value::Null },
                "readd_errors": readd_notes,
            }),
        );
        self.faults.push(FaultInterval {
            kind: Fault::Membership.name().to_string(),
            start_ns,
            end_ns: Some(end_ns),
            detail: format!("remove {why} n{victim} ({outcome})"),
        });
    }

    /// The leader as the status poller sees it, for calls that must go to it.
    fn leader_view(&self) -> impl Fn() -> Option<u64> + use<> {
        let (view, recorder) = (self.view.clone(), self.recorder.clone());
        move || view.leader(recorder.now_ns())
    }

    /// Takes `victim` out of the configuration, retrying until `window_end`. Returns
    /// the outcome (`removed`, `unknown`, `not-removed`) and the failed attempts.
    async fn remove_member(
        &mut self,
        victim: u64,
        remaining: &[u64],
        window_end: tokio::time::Instant,
    ) -> (&'static str, Vec<String>) {
        match self.api.clone() {
            Api::Node => {
                let addrs = self.cluster.addrs();
                let removal =
                    membership::change_until(&self.http, &addrs, remaining, window_end).await;
                if removal.maybe_applied {
                    self.removed.insert(victim);
                }
                let outcome = match (removal.done, removal.maybe_applied) {
                    (true, _) => "removed",
                    (false, true) => "unknown",
                    (false, false) => "not-removed",
                };
                (outcome, removal.errors)
            }
            Api::Etcd(etcd) => {
                self.etcd_removed.pending.insert(victim);
                let leader = self.leader_view();
                let removal = etcd_members::remove_until(
                    &self.cluster,
                    &self.http,
                    &etcd,
                    victim,
                    leader,
                    window_end,
                )
                .await;
                if removal.confirmed {
                    let r = etcd_members::wipe(&self.cluster, &mut self.etcd_removed, victim);
                    self.note(r);
                }
                let outcome = if removal.confirmed {
                    "removed"
                } else {
                    "unknown"
                };
                (outcome, removal.errors)
            }
        }
    }

    /// Makes every member a voter again, up to `deadline`: the notes of failed
    /// attempts, as an error when the configuration is not whole.
    async fn restore_members(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<String>, Vec<String>> {
        match self.api.clone() {
            Api::Node => {
                let addrs = self.cluster.addrs();
                let r = membership::restore(&self.http, &addrs, deadline).await;
                if r.is_ok() {
                    self.removed.clear();
                }
                r
            }
            Api::Etcd(etcd) => {
                let leader = self.leader_view();
                etcd_members::restore(
                    &self.cluster,
                    &self.http,
                    &etcd,
                    &mut self.etcd_removed,
                    leader,
                    deadline,
                )
                .await
            }
        }
    }

    /// One disk-loss fault: a voter (the leader half the time) is killed, its data
    /// directory deleted, and it is started again with the same command line, as an
    /// operator replacing a disk would. One at a time: none starts unless the
    /// configuration is whole (not joint, at least three voters, every node a voter
    /// as the incarnation it is), and the fault ends only once the wiped node is a
    /// voter again (re-admitted as its new incarnation), or at the end of its window.
    async fn wipe_fault(&mut self, stop: &mut watch::Receiver<bool>) {
        let addrs = self.cluster.addrs();
        let Some(config) = membership::current_config(&self.http, &addrs).await else {
            return;
        };
        let all_voting = wipe::every_voter_votes(&self.http, &addrs, &config.voters).await;
        if config.joint || config.voters.len() < 3 || !all_voting {
            return;
        }
        let at_leader = self.rng.random_bool(0.5);
        let victim = if at_leader {
            config.leader
        } else {
            config.voters[self.rng.random_range(0..config.voters.len())]
        };
        let window_end = tokio::time::Instant::now() + self.interval;
        let why = if at_leader { "leader" } else { "one" };
        let start_ns = self.event("wipe-start", json!({ "target": why, "node": victim }));
        let r = self.cluster.wipe(victim);
        self.note(r);
        Self::hold(self.interval / 4, stop).await;
        let r = self.cluster.restart(victim);
        self.note(r);
        let back = wipe::wait_voting(&self.http, addrs[&victim], window_end).await;
        if !back {
            self.errors.push(format!(
                "wipe: n{victim} was not a voter again within the fault window"
            ));
        }
        let end_ns = self.event("wipe-stop", json!({ "node": victim, "voting_again": back }));
        self.faults.push(FaultInterval {
            kind: Fault::Wipe.name().to_string(),
            start_ns,
            end_ns: Some(end_ns),
            detail: format!("wipe {why} n{victim}"),
        });
    }

    /// The final heal's share: every removed voter back, and the configuration all
    /// N voters, not joint, before the final reads. Does nothing when membership
    /// faults are off. Returns whether the configuration is whole.
    pub async fn heal_membership(&mut self, limit: Duration) -> bool {
        if !self.kinds.contains(&Fault::Membership) {
            return true;
        }
        let readded: Vec<u64> = self
            .removed
            .iter()
            .chain(&self.etcd_removed.pending)
            .copied()
            .collect();
        let r = self
            .restore_members(tokio::time::Instant::now() + limit)
            .await;
        let (whole, notes) = match r {
            Ok(n) => (true, n),
            Err(n) => (false, n),
        };
        self.removed.clear();
        if !whole {
            self.errors.push(format!(
                "membership: the final heal could not make every member a voter: {}",
                notes.join("; ")
            ));
        }
        self.event(
            "membership-heal",
            json!({ "readded": readded, "voters": self.cluster.ids(), "whole": whole, "errors": notes }),
        );
        whole
    }

    /// Runs the schedule until `stop`: quiet, fault, quiet, fault, ... Every fault is
    /// ended before returning.
    pub async fn run(&mut self, mut stop: watch::Receiver<bool>) {
        if self.kinds.is_empty() {
            return;
        }
        loop {
            if Self::hold(self.interval, &mut stop).await {
                return;
            }
            let kind = self.kinds[self.rng.random_range(0..self.kinds.len())];
            match kind {
                Fault::Partition => self.partition_fault(&mut stop).await,
                Fault::Pause => {
                    let open = self.pause();
                    Self::hold(self.interval, &mut stop).await;
                    self.end(open);
                }
                Fault::Kill => self.kill_fault(&mut stop).await,
                Fault::Membership => self.membership_fault(&mut stop).await,
                Fault::Wipe => self.wipe_fault(&mut stop).await,
                Fault::Loss | Fault::Hostile | Fault::PowerLoss => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn sides(cuts: &[(u64, u64)], ids: &[u64]) -> Vec<usize> {
        // For each node, how many peers it can still reach.
        ids.iter()
            .map(|&a| {
                ids.iter()
                    .filter(|&&b| b != a && !cuts.contains(&(a, b)))
                    .count()
            })
            .collect()
    }

    #[test]
    fn grudges_cut_what_they_say() {
        let ids = [1, 2, 3, 4, 5];
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for g in [
            Grudge::RandomHalves,
            Grudge::IsolateOne,
            Grudge::IsolateLeader,
            Grudge::MajoritiesRing,
            Grudge::Bridge,
        ] {
            let cuts = grudge_links(g, &ids, Some(4), &mut rng);
            for &(a, b) in &cuts {
                assert!(cuts.contains(&(b, a)), "{g:?} not symmetric");
            }
            let minority = minority_nodes(&ids, &cuts);
            let mut reach = sides(&cuts, &ids);
            match g {
                Grudge::IsolateLeader => {
                    assert_eq!(reach[3], 0);
                    assert_eq!(cuts.len(), 8);
                    assert_eq!(minority, [4]);
                }
                Grudge::IsolateOne => assert_eq!(cuts.len(), 8),
                Grudge::RandomHalves => {
                    assert_eq!(cuts.len(), 12);
                    assert_eq!(minority.len(), 2);
                }
                // Everyone sees exactly two others: a majority with itself.
                Grudge::MajoritiesRing => {
                    assert!(reach.iter().all(|&r| r == 2));
                    assert!(minority.is_empty());
                }
                Grudge::Bridge => {
                    reach.sort_unstable();
                    assert_eq!(reach, [2, 2, 2, 2, 4]);
                }
            }
        }
    }
}
