//! Jepsen-style clients: each is one logical process with at most one outstanding
//! operation, talking to its assigned member. Operations come from the generator the
//! simulator uses too ([`crate::ops::Generator`], here 40% reads, 35% writes, 25%
//! cas). The member's protocol ([`super::api`]) turns an operation into a request
//! and its reply into an outcome.
//!
//! Outcomes on our node are decided by [`crate::reply`], the one classifier of node
//! answers, which the simulator uses too; etcd's by its own protocol module.
//!
//! Writes to our node name themselves with `Client-Id` (the process id + 1) and
//! `Request-Seq` (increasing), as an exactly-once client does. No request is ever
//! retried, so this changes no outcome; it runs the node's deduplication table
//! (replicated, snapshotted, forwarded by followers) under every fault of the run.

use super::api::Api;
use super::http::HttpClient;
use super::recorder::Recorder;
use crate::ops::{Generator, Mix, Op, OpKind};
use checker::history::EventType;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// What every client shares.
#[derive(Debug)]
pub struct Workload {
    pub recorder: Arc<Recorder>,
    /// The members' client protocol.
    pub api: Api,
    pub keys: usize,
    pub op_timeout: Duration,
    /// Draws the operations and remembers each key's latest value.
    generator: Generator,
    next_process: AtomicU64,
    /// `Request-Seq` of the next write (increasing for every process).
    next_seq: AtomicU64,
    pub ok_count: AtomicU64,
    pub op_count: AtomicU64,
    /// Nodes whose clients only read for now: the nemesis cut them off, and reads
    /// served by a node that lost its majority are where stale reads show.
    read_focus: Mutex<BTreeSet<u64>>,
}

/// How an operation ended, as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Ok,
    Fail,
    Info,
}

impl Workload {
    /// `first_process` is the first id handed out for replacement processes (the
    /// initial clients use 0..clients).
    pub fn new(
        recorder: Arc<Recorder>,
        api: Api,
        keys: usize,
        op_timeout: Duration,
        first_process: u64,
    ) -> Workload {
        Workload {
            recorder,
            api,
            keys: keys.max(1),
            op_timeout,
            generator: Generator::new(keys, Mix::READ_HEAVY),
            next_process: AtomicU64::new(first_process),
            next_seq: AtomicU64::new(1),
            ok_count: AtomicU64::new(0),
            op_count: AtomicU64::new(0),
            read_focus: Mutex::new(BTreeSet::new()),
        }
    }

    pub fn fresh_process(&self) -> u64 {
        self.next_process.fetch_add(1, Ordering::Relaxed)
    }

    /// Makes the clients of `nodes` read only, until [`Workload::clear_read_focus`].
    pub fn set_read_focus(&self, nodes: &[u64]) {
        let mut f = match self.read_focus.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f.clear();
        f.extend(nodes.iter().copied());
    }

    pub fn clear_read_focus(&self) {
        self.set_read_focus(&[]);
    }

    fn read_only(&self, node: u64) -> bool {
        match self.read_focus.lock() {
            Ok(g) => g.contains(&node),
            Err(p) => p.into_inner().contains(&node),
        }
    }

    /// The next operation from the seeded generator; only reads when `read_only`.
    pub fn generate(&self, rng: &mut ChaCha8Rng, read_only: bool) -> Op {
        self.generator.next(rng, read_only.then_some(OpKind::Read))
    }

    /// Records the invoke, sends the request, records the completion.
    pub async fn execute(
        &self,
        http: &HttpClient,
        addr: SocketAddr,
        process: u64,
        op: &Op,
    ) -> Ended {
        let input = op.input();
        self.op_count.fetch_add(1, Ordering::Relaxed);
        self.recorder
            .client(process, EventType::Invoke, op, input.clone(), None);
        let identity = match op {
            Op::Read { .. } => Vec::new(),
            _ => vec![
                ("client-id", (process + 1).to_string()),
                (
                    "request-seq",
                    self.next_seq.fetch_add(1, Ordering::Relaxed).to_string(),
                ),
            ],
        };
        let done = self
            .api
            .execute(http, addr, op, &input, &identity, self.op_timeout)
            .await;
        self.recorder.client(
            process,
            done.kind,
            op,
            done.value.clone(),
            done.error.as_deref(),
        );
        match done.kind {
            EventType::Ok => {
                self.ok_count.fetch_add(1, Ordering::Relaxed);
                let learned = op.written().unwrap_or(done.value);
                self.generator.learn(op.key(), learned);
                Ended::Ok
            }
            EventType::Fail => {
                if let Some(cur) = done.current {
                    self.generator.learn(op.key(), cur);
                }
                Ended::Fail
            }
            _ => Ended::Info,
        }
    }
}

/// Where one client sends its operations, and how often.
#[derive(Clone, Copy, Debug)]
pub struct ClientSpec {
    pub node: u64,
    pub addr: SocketAddr,
    pub first_process: u64,
    /// Time between two operations (clients / rate).
    pub interval: Duration,
}

/// One client: issues operations at its share of the target rate until `stop`.
/// Missed slots are skipped rather than made up in a burst.
pub async fn client_loop(
    workload: Arc<Workload>,
    http: HttpClient,
    spec: ClientSpec,
    mut rng: ChaCha8Rng,
    mut stop: watch::Receiver<bool>,
) {
    let ClientSpec {
        node,
        addr,
        first_process,
        interval,
    } = spec;
    let mut process = first_process;
    let offset_ns = rng.random_range(0..interval.as_nanos().max(1) as u64);
    let mut next = tokio::time::Instant::now() + Duration::from_nanos(offset_ns);
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
        let op = workload.generate(&mut rng, workload.read_only(node));
        if workload.execute(&http, addr, process, &op).await == Ended::Info {
            process = workload.fresh_process();
        }
        next += interval;
        let now = tokio::time::Instant::now();
        if next < now {
            next = now;
        }
    }
}

/// Final reads: every key read once successfully if the cluster allows, trying the
/// nodes in turn (each attempt is an operation in the history).
pub async fn final_reads(
    workload: &Workload,
    http: &HttpClient,
    addrs: &[SocketAddr],
    attempts: usize,
) -> usize {
    let mut done = 0;
    let mut process = workload.fresh_process();
    for key in 0..workload.keys {
        for attempt in 0..attempts.max(1) {
            let Some(&addr) = addrs.get((key + attempt) % addrs.len().max(1)) else {
                return done;
            };
            let ended = workload
                .execute(http, addr, process, &Op::Read { key })
                .await;
            match ended {
                Ended::Ok => {
                    done += 1;
                    break;
                }
                Ended::Info => process = workload.fresh_process(),
                Ended::Fail => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_values_are_unique_and_the_mix_is_seeded() {
        use rand::SeedableRng;
        let w = Workload::new(
            Arc::new(Recorder::new(std::time::Instant::now())),
            Api::Node,
            4,
            Duration::from_secs(1),
            10,
        );
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let ops: Vec<Op> = (0..500).map(|_| w.generate(&mut rng, false)).collect();
        let mut written: Vec<u64> = ops
            .iter()
            .filter_map(|o| o.written().and_then(|v| v.as_u64()))
            .collect();
        let n = written.len();
        written.sort_unstable();
        written.dedup();
        assert_eq!(written.len(), n);
        assert!(ops.iter().any(|o| matches!(o, Op::Read { .. })));
        assert!(ops.iter().any(|o| matches!(o, Op::Cas { .. })));
        w.set_read_focus(&[2]);
        assert!(w.read_only(2) && !w.read_only(1));
        assert!((0..50).all(|_| matches!(w.generate(&mut rng, true), Op::Read { .. })));
        w.clear_read_focus();
        assert!(!w.read_only(2));
        assert_eq!(w.fresh_process(), 10);
        assert_eq!(w.fresh_process(), 11);
    }
}
