//! Jepsen-style clients: each is one logical process with at most one outstanding
//! operation, talking to its assigned member. Operations come from the generator the
//! simulator uses too ([`crate::ops::Generator`], here 40% reads, 35% writes, 25%
//! cas). The member's protocol ([`super::api`]) turns an operation into a request
//! and its reply into an outcome.
//!
//! Outcomes on our node follow docs/design.md ("HTTP API", [`classify`]): 200 ok; 409 cas_mismatch
//! fail; 404 on read ok with null; 503 and other rejections fail; 504, timeouts and
//! broken connections info, after which the client carries on under a fresh process
//! id. etcd's are in [`super::etcd`].
//!
//! Writes to our node name themselves with `Client-Id` (the process id + 1) and
//! `Request-Seq` (increasing), as an exactly-once client does. No request is ever
//! retried, so this changes no outcome; it runs the node's deduplication table
//! (replicated, snapshotted, forwarded by followers) under every fault of the run.

use super::api::Api;
use super::http::{HttpClient, Reply};
use super::recorder::Recorder;
pub use crate::ops::Op;
use crate::ops::{Generator, Mix, OpKind};
use checker::history::EventType;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
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

/// What the protocol made of one reply.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    pub kind: EventType,
    pub value: Value,
    pub error: Option<String>,
    /// For a cas that did not match: the key's current value, when the reply said.
    pub current: Option<Value>,
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

/// Maps a node API reply to the completion event: (type, value, error).
pub fn classify(op: &Op, input: &Value, reply: &Reply) -> (EventType, Value, Option<String>) {
    let err = |body: &Value, fallback: &str| {
        body.get("error")
            .and_then(Value::as_str)
            .unwrap_or(fallback)
            .to_string()
    };
    match reply {
        Reply::Response { status: 200, body } => match (op, body.get("value")) {
            (Op::Read { .. }, Some(v)) => (EventType::Ok, v.clone(), None),
            // A read answer without a value says nothing we could check.
            (Op::Read { .. }, None) => (
                EventType::Info,
                Value::Null,
                Some("bad_response".to_string()),
            ),
            _ => (EventType::Ok, input.clone(), None),
        },
        Reply::Response { status: 404, .. } if matches!(op, Op::Read { .. }) => {
            (EventType::Ok, Value::Null, None)
        }
        Reply::Response { status: 409, body } if matches!(op, Op::Cas { .. }) => (
            EventType::Fail,
            input.clone(),
            Some(err(body, "cas_mismatch")),
        ),
        Reply::Response { status: 504, body } => {
            (EventType::Info, input.clone(), Some(err(body, "timeout")))
        }
        // 503 and every 4xx: rejected before consensus, certainly not applied.
        Reply::Response { status, body } if *status == 503 || (400..500).contains(status) => (
            EventType::Fail,
            input.clone(),
            Some(err(body, &format!("http_{status}"))),
        ),
        // Anything else from the server (500, ...) promises nothing either way.
        Reply::Response { status, body } => (
            EventType::Info,
            input.clone(),
            Some(err(body, &format!("http_{status}"))),
        ),
        Reply::NotSent(_) => (
            EventType::Fail,
            input.clone(),
            reply.transport_error().map(str::to_string),
        ),
        Reply::Indeterminate(_) => (
            EventType::Info,
            input.clone(),
            reply.transport_error().map(str::to_string),
        ),
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
    use serde_json::json;

    fn resp(status: u16, body: Value) -> Reply {
        Reply::Response { status, body }
    }

    #[test]
    fn outcomes_follow_the_error_contract() {
        let read = Op::Read { key: 0 };
        let cas = Op::Cas {
            key: 0,
            from: json!(1),
            to: 2,
        };
        let inp = json!([1, 2]);
        let r = classify(
            &read,
            &Value::Null,
            &resp(200, json!({"key":"k0","value":7})),
        );
        assert_eq!(r, (EventType::Ok, json!(7), None));
        let r = classify(
            &read,
            &Value::Null,
            &resp(404, json!({"error":"not_found"})),
        );
        assert_eq!(r, (EventType::Ok, Value::Null, None));
        let r = classify(
            &cas,
            &inp,
            &resp(409, json!({"error":"cas_mismatch","current":3})),
        );
        assert_eq!(r.0, EventType::Fail);
        assert_eq!(r.2.as_deref(), Some("cas_mismatch"));
        assert_eq!(
            classify(&cas, &inp, &resp(503, Value::Null)).0,
            EventType::Fail
        );
        assert_eq!(
            classify(&cas, &inp, &resp(504, Value::Null)).0,
            EventType::Info
        );
        assert_eq!(
            classify(&cas, &inp, &resp(500, Value::Null)).0,
            EventType::Info
        );
        assert_eq!(
            classify(&cas, &inp, &Reply::NotSent("x".into())).0,
            EventType::Fail
        );
        let r = classify(&cas, &inp, &Reply::Indeterminate("timeout".into()));
        assert_eq!((r.0, r.2.as_deref()), (EventType::Info, Some("timeout")));
    }

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
