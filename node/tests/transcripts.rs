//! Data-driven transcript tests of the Raft core, in the style of etcd-io/raft.
//!
//! Each `node/testdata/*.txt` file is a sequence of blocks:
//!
//! ```text
//! # comments
//! command arg arg
//! ----
//! expected output
//! ```
//!
//! The test replays every command against a small in-memory cluster and compares
//! the output with the golden text; any difference fails the test with the file
//! and line. `REWRITE=1 cargo test -p node --test transcripts` rewrites the golden
//! output instead (review the diff before committing it).
//!
//! Nothing happens behind the test's back: a node's storage writes complete only on
//! `persist`, messages travel only on `deliver-msgs`, time passes only on `tick`.
//!
//! Commands:
//! - `add-nodes N [pre-vote=B] [check-quorum=B] [max-entries=N] [inflight=N]
//!   [commit-old-term=B] [vote-any-log=B]`: nodes 1..=N, all voters.
//! - `add-node ID`: an empty node that knows the voters but is not one.
//! - `campaign ID` (an election timeout: PreVote first when configured),
//!   `tick ID [N]`, `propose ID DATA`, `read-index ID`, `transfer-leader A->B`,
//!   `change-membership ID 1,2,4 [learners=5,6]`.
//! - `persist [ID...]` / `persist-all`: storage completes every issued write.
//! - `deliver-msgs [ID...]`: deliver what is in flight now (to these nodes only).
//! - `drop A->B ...`, `isolate ID`, `heal [A->B ...]`: cut and restore links.
//! - `crash ID` (unsynced writes and unsent messages are lost), `restart ID`.
//! - `stabilize`: persist and deliver until nothing moves.
//! - `raft-log [ID...]`, `status [ID...]`.
//!
//! Every apply is checked against every other node's (state machine safety,
//! §5.4.3); a conflict prints `SAFETY VIOLATION`.

use node::raft::types::{Entry, HardState, Message, MessageBody, NodeId, Payload, Snapshot};
use node::raft::{Mutants, PersistWrite, Raft, RaftConfig, Ready, Role};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One simulated node: the core plus what its disk holds.
struct Node {
    raft: Raft,
    /// Writes issued but not yet durable, oldest first.
    unpersisted: VecDeque<PersistWrite>,
    /// Durable state, to restart from.
    disk_hs: HardState,
    disk_log: Vec<Entry>,
    disk_snapshot: Option<Snapshot>,
    applied: Vec<Entry>,
    cfg: RaftConfig,
    down: bool,
}

#[derive(Default)]
struct Env {
    nodes: BTreeMap<NodeId, Node>,
    /// Messages in flight, in send order.
    net: VecDeque<Message>,
    /// Directed links that drop everything.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// `index -> (first node that applied it, term)`: the safety oracle.
    applied_anywhere: BTreeMap<u64, (NodeId, u64)>,
}

/// Upper bound on rounds in `stabilize`, so a livelock fails instead of hanging.
const STABILIZE_ROUNDS: usize = 1000;

impl Env {
    fn node(&mut self, id: NodeId) -> Result<&mut Node, String> {
        self.nodes.get_mut(&id).ok_or(format!("no node {id}"))
    }

    /// Collects a node's Ready and prints it; messages go onto the network.
    fn ready(&mut self, id: NodeId, out: &mut String) {
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        if n.down {
            return;
        }
        let applied_anywhere = &mut self.applied_anywhere;
        let Ready {
            persist,
            messages,
            snapshot,
            committed,
            reads,
            refused,
        } = n.raft.ready();
        for r in refused {
            let _ = writeln!(
                out,
                "n{id}: refused from {}: {}",
                r.from,
                r.reason.describe()
            );
        }
        if let Some(p) = persist {
            let _ = write!(out, "n{id}: persist seq={}", p.seq);
            if let Some(s) = &p.snapshot {
                let m = &s.meta;
                let _ = write!(out, " snapshot={}/{}", m.last_index, m.last_term);
            }
            if let Some(t) = p.truncate_from {
                let _ = write!(out, " truncate>={t}");
            }
            if !p.entries.is_empty() {
                let _ = write!(out, " entries={}", fmt_entries(&p.entries));
            }
            if let Some(hs) = p.hard_state {
                let _ = write!(out, " hs=(term={} vote={})", hs.term, fmt_opt(hs.vote));
            }
            out.push('\n');
            n.unpersisted.push_back(p);
        }
        if let Some(s) = snapshot {
            let data = String::from_utf8_lossy(&s.data.contiguous()).into_owned();
            let _ = writeln!(
                out,
                "n{id}: restore snapshot {}/{} voters={:?} data={data}",
                s.meta.last_index, s.meta.last_term, s.meta.membership.voters
            );
            // The state machine now holds everything through the snapshot.
            n.applied.clear();
        }
        for e in &committed {
            let _ = writeln!(out, "n{id}: apply {}", fmt_entry(e));
            // State machine safety (§5.4.3): one entry per index, on every node.
            match applied_anywhere.get(&e.index) {
                Some(&(other, term)) if term != e.term => {
                    let _ = writeln!(
                        out,
                        "SAFETY VIOLATION: n{id} applied {}/{} but n{other} applied {}/{term}",
                        e.index, e.term, e.index
                    );
                }
                Some(_) => {}
                None => {
                    applied_anywhere.insert(e.index, (id, e.term));
                }
            }
        }
        n.applied.extend(committed);
        for r in reads {
            let _ = writeln!(out, "n{id}: read round={} index={}", r.round, r.index);
        }
        for m in messages {
            let _ = writeln!(out, "{}", fmt_msg(&m));
            self.net.push_back(m);
        }
    }

    fn persist(&mut self, id: NodeId, out: &mut String) -> Result<bool, String> {
        let n = self.node(id)?;
        if n.down {
            return Ok(false);
        }
        let mut last = None;
        while let Some(p) = n.unpersisted.pop_front() {
            if let Some(s) = p.snapshot {
                // Raft §7: the log after the snapshot stays only if it continues it.
                let (i, t) = (s.meta.last_index, s.meta.last_term);
                let continues = n.disk_log.iter().any(|e| e.index == i && e.term == t);
                if continues {
                    n.disk_log.retain(|e| e.index > i);
                } else {
                    n.disk_log.clear();
                }
                n.disk_snapshot = Some(s);
            }
            if let Some(t) = p.truncate_from {
                n.disk_log.retain(|e| e.index < t);
            }
            n.disk_log.extend(p.entries);
            if let Some(hs) = p.hard_state {
                n.disk_hs = hs;
            }
            last = Some(p.seq);
        }
        let Some(seq) = last else {
            return Ok(false);
        };
        let before = (n.raft.role(), n.raft.term(), n.raft.log().commit);
        n.raft.persisted(seq);
        let after = (n.raft.role(), n.raft.term(), n.raft.log().commit);
        let _ = writeln!(out, "n{id}: persisted seq={seq}");
        self.report_change(id, before, after, out);
        self.ready(id, out);
        Ok(true)
    }

    fn report_change(
        &self,
        id: NodeId,
        before: (Role, u64, u64),
        after: (Role, u64, u64),
        out: &mut String,
    ) {
        if before.0 != after.0 || before.1 != after.1 {
            let _ = writeln!(out, "n{id}: became {:?} term={}", after.0, after.1);
        }
        if after.2 > before.2 {
            let _ = writeln!(out, "n{id}: commit={}", after.2);
        }
    }

    /// Runs `f` on node `id`, then prints role/commit changes and its Ready.
    fn with(
        &mut self,
        id: NodeId,
        out: &mut String,
        f: impl FnOnce(&mut Raft),
    ) -> Result<(), String> {
        let n = self.node(id)?;
        if n.down {
            return Err(format!("node {id} is down"));
        }
        let before = (n.raft.role(), n.raft.term(), n.raft.log().commit);
        f(&mut n.raft);
        let after = (n.raft.role(), n.raft.term(), n.raft.log().commit);
        self.report_change(id, before, after, out);
        self.ready(id, out);
        Ok(())
    }

    /// Delivers every message in flight now to the nodes in `to` (all if empty).
    /// Messages produced while delivering stay in flight for the next round.
    fn deliver(&mut self, to: &BTreeSet<NodeId>, out: &mut String) -> Result<bool, String> {
        let batch: Vec<Message> = self.net.drain(..).collect();
        let mut any = false;
        for m in batch {
            if !to.is_empty() && !to.contains(&m.to) {
                self.net.push_back(m);
                continue;
            }
            any = true;
            let down = self.nodes.get(&m.to).is_none_or(|n| n.down);
            if self.cut.contains(&(m.from, m.to)) || down {
                let _ = writeln!(out, "dropped: {}", fmt_msg(&m));
                continue;
            }
            let to = m.to;
            self.with(to, out, |r| r.step(m))?;
        }
        Ok(any)
    }

    fn restart(&mut self, id: NodeId, out: &mut String) -> Result<(), String> {
        let n = self.node(id)?;
        let cfg = n.cfg.clone();
        n.raft = Raft::new(
            cfg,
            n.disk_hs,
            None,
            n.disk_snapshot.as_ref(),
            n.disk_log.clone(),
        );
        n.unpersisted.clear();
        n.applied.clear();
        n.down = false;
        let _ = writeln!(
            out,
            "n{id}: restarted term={} last={}",
            n.raft.term(),
            n.raft.log().last_index()
        );
        Ok(())
    }
}

fn fmt_opt(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

fn fmt_entry(e: &Entry) -> String {
    let p = match &e.payload {
        Payload::Noop => "noop".to_string(),
        Payload::Command(b) => String::from_utf8_lossy(b).into_owned(),
        Payload::Config(m) => {
            let learners = if m.learners.is_empty() {
                String::new()
            } else {
                format!(" learners{:?}", m.learners)
            };
            match &m.voters_old {
                Some(old) => format!("conf{:?}&{:?}{learners}", m.voters, old),
                None => format!("conf{:?}{learners}", m.voters),
            }
        }
    };
    format!("{}/{} {p}", e.index, e.term)
}

fn fmt_entries(es: &[Entry]) -> String {
    let v: Vec<String> = es.iter().map(fmt_entry).collect();
    format!("[{}]", v.join(", "))
}

fn fmt_msg(m: &Message) -> String {
    let head = format!("{}->{} term={}", m.from, m.to, m.term);
    match &m.body {
        MessageBody::Vote {
            pre_vote,
            last_log_index,
            last_log_term,
            transfer,
        } => format!(
            "{head} {} last={last_log_index}/{last_log_term}{}",
            if *pre_vote { "PreVote" } else { "Vote" },
            if *transfer { " transfer" } else { "" }
        ),
        MessageBody::VoteResponse { pre_vote, granted } => format!(
            "{head} {} {}",
            if *pre_vote { "PreVoteResp" } else { "VoteResp" },
            if *granted { "granted" } else { "rejected" }
        ),
        MessageBody::Append {
            prev_index,
            prev_term,
            entries,
            commit,
            read_ctx,
        } => {
            let mut s = format!("{head} App prev={prev_index}/{prev_term} commit={commit}");
            if !entries.is_empty() {
                s += &format!(" entries={}", fmt_entries(entries));
            }
            if *read_ctx > 0 {
                s += &format!(" ctx={read_ctx}");
            }
            s
        }
        MessageBody::AppendResponse {
            success,
            match_index,
            conflict_index,
            conflict_term,
            read_ctx,
        } => {
            let mut s = if *success {
                format!("{head} AppResp ok match={match_index}")
            } else {
                format!(
                    "{head} AppResp reject prev={match_index} hint={conflict_index}/{}",
                    fmt_opt(*conflict_term)
                )
            };
            if *read_ctx > 0 {
                s += &format!(" ctx={read_ctx}");
            }
            s
        }
        MessageBody::InstallSnapshot { snapshot } => {
            format!("{head} Snapshot last={}", snapshot.meta.last_index)
        }
        MessageBody::InstallSnapshotResponse { last_index } => {
            format!("{head} SnapshotResp last={last_index}")
        }
        MessageBody::TimeoutNow => format!("{head} TimeoutNow"),
        MessageBody::Discover => format!("{head} Discover inc={}", m.incarnation),
        MessageBody::DiscoverReply {
            asker,
            cluster,
            bootstrap,
        } => format!(
            "{head} DiscoverReply asker={asker} cluster={cluster} bootstrap={:?}",
            bootstrap.incarnations
        ),
        MessageBody::HeartbeatAck { read_ctx } => {
            let mut s = format!("{head} HeartbeatAck");
            if *read_ctx > 0 {
                s += &format!(" ctx={read_ctx}");
            }
            s
        }
    }
}

fn parse_id(s: &str) -> Result<NodeId, String> {
    s.parse().map_err(|_| format!("bad node id {s:?}"))
}

fn parse_ids(args: &[&str]) -> Result<BTreeSet<NodeId>, String> {
    args.iter().map(|a| parse_id(a)).collect()
}

/// `A->B` link syntax.
fn parse_link(s: &str) -> Result<(NodeId, NodeId), String> {
    let (a, b) = s
        .split_once("->")
        .ok_or(format!("bad link {s:?}, want A->B"))?;
    Ok((parse_id(a)?, parse_id(b)?))
}

fn flag(args: &[&str], name: &str) -> Option<String> {
    args.iter()
        .find_map(|a| a.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
        .map(str::to_string)
}

fn add_nodes(env: &mut Env, args: &[&str]) -> Result<String, String> {
    let n: u64 = args
        .first()
        .and_then(|a| a.parse().ok())
        .ok_or("add-nodes N [option=value ...]")?;
    let yes = |name: &str, default: bool| flag(args, name).map_or(default, |v| v == "true");
    let num = |name: &str, default: usize| {
        flag(args, name).map_or(Ok(default), |v| {
            v.parse().map_err(|_| format!("bad {name}"))
        })
    };
    let max_entries = num("max-entries", 64)?;
    let inflight = num("inflight", 4)?;
    let peers: Vec<NodeId> = (1..=n).collect();
    for &id in &peers {
        let cfg = RaftConfig {
            id,
            peers: peers.clone(),
            election_ticks_min: 10,
            election_ticks_max: 20,
            heartbeat_ticks: 2,
            max_entries_per_msg: max_entries,
            max_inflight_msgs: inflight,
            pre_vote: yes("pre-vote", true),
            check_quorum: yes("check-quorum", true),
            seed: 7,
            incarnation: 0,
            discover: false,
            mutants: Mutants {
                commit_old_term: yes("commit-old-term", false),
                vote_any_log: yes("vote-any-log", false),
                joint_skip: yes("joint-skip", false),
                ..Mutants::default()
            },
        };
        let raft = Raft::new(cfg.clone(), HardState::default(), None, None, Vec::new());
        env.nodes.insert(
            id,
            Node {
                raft,
                unpersisted: VecDeque::new(),
                disk_hs: HardState::default(),
                disk_log: Vec::new(),
                disk_snapshot: None,
                applied: Vec::new(),
                cfg,
                down: false,
            },
        );
    }
    Ok(format!("added {n} nodes"))
}

fn targets(env: &Env, args: &[&str]) -> Result<Vec<NodeId>, String> {
    if args.is_empty() {
        Ok(env.nodes.keys().copied().collect())
    } else {
        Ok(parse_ids(args)?.into_iter().collect())
    }
}

fn run_command(env: &mut Env, line: &str) -> Result<String, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let (cmd, args) = words.split_first().ok_or("empty command")?;
    let mut out = String::new();
    match *cmd {
        "add-nodes" => return add_nodes(env, args),
        "add-node" => {
            // A new, empty node that knows the current voters but is not one.
            let id = parse_id(args.first().ok_or("add-node ID")?)?;
            let template = env.nodes.values().next().ok_or("add-nodes first")?;
            let cfg = RaftConfig {
                id,
                ..template.cfg.clone()
            };
            let raft = Raft::new(cfg.clone(), HardState::default(), None, None, Vec::new());
            env.nodes.insert(
                id,
                Node {
                    raft,
                    unpersisted: VecDeque::new(),
                    disk_hs: HardState::default(),
                    disk_log: Vec::new(),
                    disk_snapshot: None,
                    applied: Vec::new(),
                    cfg,
                    down: false,
                },
            );
            let _ = writeln!(out, "n{id}: added as {:?}", env.node(id)?.raft.role());
        }
        "change-membership" => {
            let id = parse_id(args.first().ok_or("change-membership ID VOTERS")?)?;
            let voters = args.get(1).ok_or("change-membership ID 1,2,3")?;
            let voters = voters.split(',').map(parse_id).collect::<Result<_, _>>()?;
            let learners = match flag(args, "learners") {
                Some(l) => Some(l.split(',').map(parse_id).collect::<Result<_, _>>()?),
                None => None,
            };
            let mut res = Ok(0);
            env.with(id, &mut out, |r| {
                res = r.propose_membership(voters, learners)
            })?;
            if let Err(e) = res {
                let _ = writeln!(out, "n{id}: membership change refused: {e}");
            }
        }
        "campaign" => {
            let id = parse_id(args.first().ok_or("campaign ID")?)?;
            env.with(id, &mut out, |r| r.hup())?;
        }
        "tick" => {
            let id = parse_id(args.first().ok_or("tick ID [N]")?)?;
            let times: u32 = args
                .get(1)
                .map_or(Ok(1), |a| a.parse().map_err(|_| "bad count"))?;
            for _ in 0..times {
                env.with(id, &mut out, |r| r.tick())?;
            }
        }
        "propose" => {
            let id = parse_id(args.first().ok_or("propose ID DATA")?)?;
            let data = args.get(1).ok_or("propose ID DATA")?.as_bytes().to_vec();
            let mut res = Ok(0);
            env.with(id, &mut out, |r| res = r.propose(Payload::Command(data)))?;
            if let Err(e) = res {
                let _ = writeln!(out, "n{id}: propose refused: {e}");
            }
        }
        "read-index" => {
            let id = parse_id(args.first().ok_or("read-index ID")?)?;
            let mut res = Ok(0);
            env.with(id, &mut out, |r| res = r.read_index())?;
            match res {
                Ok(round) => {
                    let _ = writeln!(out, "n{id}: read round={round} started");
                }
                Err(e) => {
                    let _ = writeln!(out, "n{id}: read refused: {e}");
                }
            }
        }
        "transfer-leader" => {
            let (from, to) = parse_link(args.first().ok_or("transfer-leader A->B")?)?;
            env.with(from, &mut out, |r| r.transfer_leader(to))?;
        }
        "persist" | "persist-all" => {
            for id in targets(env, args)? {
                env.persist(id, &mut out)?;
            }
        }
        "deliver-msgs" => {
            env.deliver(&parse_ids(args)?, &mut out)?;
        }
        "drop" => {
            for a in args {
                env.cut.insert(parse_link(a)?);
            }
        }
        "isolate" => {
            let id = parse_id(args.first().ok_or("isolate ID")?)?;
            let ids: Vec<NodeId> = env.nodes.keys().copied().collect();
            for other in ids {
                if other != id {
                    env.cut.insert((id, other));
                    env.cut.insert((other, id));
                }
            }
        }
        "heal" if args.is_empty() => env.cut.clear(),
        "heal" => {
            for a in args {
                env.cut.remove(&parse_link(a)?);
            }
        }
        "crash" => {
            let id = parse_id(args.first().ok_or("crash ID")?)?;
            env.node(id)?.down = true;
            let before = env.net.len();
            env.net.retain(|m| m.from != id);
            let _ = writeln!(
                out,
                "n{id}: crashed; unpersisted writes and {} unsent messages lost",
                before - env.net.len()
            );
        }
        "restart" => {
            let id = parse_id(args.first().ok_or("restart ID")?)?;
            env.restart(id, &mut out)?;
        }
        "stabilize" => {
            let ids: Vec<NodeId> = env.nodes.keys().copied().collect();
            let mut rounds = 0;
            loop {
                let mut any = false;
                for &id in &ids {
                    any |= env.persist(id, &mut out)?;
                }
                any |= env.deliver(&BTreeSet::new(), &mut out)?;
                if !any {
                    break;
                }
                rounds += 1;
                if rounds > STABILIZE_ROUNDS {
                    return Err("stabilize did not converge".into());
                }
            }
        }
        "compact" => {
            let id = parse_id(args.first().ok_or("compact ID INDEX")?)?;
            let index: u64 = args
                .get(1)
                .ok_or("compact ID INDEX")?
                .parse()
                .map_err(|_| "bad index")?;
            let data = format!("state@{index}").into_bytes();
            let mut done = false;
            env.with(id, &mut out, |r| done = r.compact(index, data))?;
            let n = env.node(id)?;
            let _ = writeln!(
                out,
                "n{id}: compact {index} {}; log starts at {}",
                if done { "done" } else { "refused" },
                n.raft.log().first_index()
            );
        }
        "raft-log" => {
            for id in targets(env, args)? {
                let n = env.node(id)?;
                let log = n.raft.log();
                let es = log.slice(log.first_index(), log.last_index());
                let _ = writeln!(
                    out,
                    "n{id}: commit={} applied={} log={}",
                    log.commit,
                    log.applied,
                    fmt_entries(es)
                );
            }
        }
        "status" => {
            let env_ids: Vec<NodeId> = env.nodes.keys().copied().collect();
            for id in targets(env, args)? {
                let n = env.node(id)?;
                let r = &n.raft;
                let _ = write!(
                    out,
                    "n{id}: {:?} term={} vote={} leader={} commit={} last={} persisted={}",
                    r.role(),
                    r.term(),
                    fmt_opt(r.vote()),
                    fmt_opt(r.leader()),
                    r.log().commit,
                    r.log().last_index(),
                    r.persisted_index()
                );
                if n.down {
                    out.push_str(" (down)");
                }
                out.push('\n');
                let m = r.membership();
                let _ = write!(out, "  voters={:?}", m.voters);
                if let Some(old) = &m.voters_old {
                    let _ = write!(out, " voters_old={old:?}");
                }
                out.push('\n');
                if r.role() == Role::Leader {
                    let peers: Vec<NodeId> = env_ids.clone();
                    for p in peers.into_iter().filter(|&p| p != id) {
                        if let Some(pr) = r.progress(p) {
                            let _ = writeln!(
                                out,
                                "  {p}: match={} next={} {:?} inflight={}",
                                pr.match_index,
                                pr.next_index,
                                pr.state,
                                pr.inflight.len()
                            );
                        }
                    }
                }
            }
        }
        other => return Err(format!("unknown command {other:?}")),
    }
    if out.is_empty() {
        out.push_str("ok");
    }
    Ok(out.trim_end().to_string())
}

/// One parsed block of a transcript file.
struct Block {
    comments: Vec<String>,
    command: String,
    line: usize,
    expected: String,
}

fn parse(path: &Path, text: &str) -> Result<Vec<Block>, String> {
    let mut blocks = Vec::new();
    let mut comments = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with('#') {
            comments.push(line.to_string());
            continue;
        }
        let sep = lines.next().map(|(_, l)| l);
        if sep != Some("----") {
            return Err(format!(
                "{}:{}: expected ---- after the command",
                path.display(),
                i + 2
            ));
        }
        let mut expected = Vec::new();
        while let Some(&(_, l)) = lines.peek() {
            if l.trim().is_empty() {
                break;
            }
            expected.push(l);
            lines.next();
        }
        blocks.push(Block {
            comments: std::mem::take(&mut comments),
            command: line.trim().to_string(),
            line: i + 1,
            expected: expected.join("\n"),
        });
    }
    Ok(blocks)
}

fn run_file(path: &Path, rewrite: bool) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let blocks = parse(path, &text)?;
    let mut env = Env::default();
    let mut rewritten = String::new();
    let mut failures = Vec::new();
    for b in &blocks {
        let got = run_command(&mut env, &b.command)
            .map_err(|e| format!("{}:{}: {}: {e}", path.display(), b.line, b.command))?;
        for c in &b.comments {
            rewritten += c;
            rewritten.push('\n');
        }
        let _ = write!(rewritten, "{}\n----\n{}\n\n", b.command, got);
        if got != b.expected {
            failures.push(format!(
                "{}:{}: {}\n--- expected\n{}\n--- got\n{}",
                path.display(),
                b.line,
                b.command,
                b.expected,
                got
            ));
        }
    }
    if rewrite {
        std::fs::write(path, rewritten.trim_end().to_string() + "\n")
            .map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(());
    }
    if let Some(first) = failures.first() {
        return Err(format!(
            "{} block(s) differ; first:\n{first}",
            failures.len()
        ));
    }
    Ok(())
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

#[test]
fn transcripts() {
    let rewrite = std::env::var("REWRITE").is_ok_and(|v| v == "1");
    let mut files: Vec<PathBuf> = std::fs::read_dir(testdata())
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "txt"));
    files.sort();
    let errors: Vec<String> = files
        .iter()
        .filter_map(|f| run_file(f, rewrite).err())
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n\n"));
    assert!(
        files.len() >= 5,
        "transcripts missing in {}",
        testdata().display()
    );
}

/// The golden comparison must be able to fail: a wrong expectation is reported.
#[test]
fn a_wrong_golden_output_fails() {
    let dir = std::env::temp_dir().join(format!("transcript-selftest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok();
    let path = dir.join("wrong.txt");
    std::fs::write(&path, "add-nodes 1\n----\nadded 2 nodes\n").ok();
    let err = run_file(&path, false).expect_err("a mismatch must fail");
    assert!(err.contains("wrong.txt:1"), "{err}");
    std::fs::write(&path, "bogus 1\n----\nok\n").ok();
    let err = run_file(&path, false).expect_err("unknown command must fail");
    assert!(err.contains("unknown command"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
