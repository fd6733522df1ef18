//! The key-value state machine. PURE and deterministic: `BTreeMap`, no I/O.
//!
//! Values are JSON values. Commands reach it through the log as encoded [`Command`]s.
//! A per-client session table makes retries idempotent: a command whose
//! `(client, seq)` was already applied returns the recorded result instead of
//! being applied twice (`client == 0` opts out).
//!
//! The maps are persistent (structurally shared) red-black trees, so a clone of the
//! whole state is O(1) and later writes copy only the path they touch. That is what
//! makes snapshots copy-on-write: the replica hands a clone to the driver, which
//! serializes it on another thread while writes go on here.
//!
//! Snapshots can also be incremental. While tracking is on ([`Kv::begin_changes`]),
//! the store notes which keys and clients changed; a snapshot's bytes may then be
//! the previous snapshot's bytes followed by a *delta section* holding only those
//! entries (see [`SnapshotSource`]). Decoding applies the sections in order, so
//! bytes of either shape describe one state, and no reader needs to know how they
//! were built.

// PURE (docs/design.md, "Purity"): clippy rejects clocks, files, sockets, tokio and
// unseeded randomness here (the lists are in clippy.toml).
#![deny(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    clippy::disallowed_macros
)]

use rpds::RedBlackTreeMapSync;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

mod snapshot;
pub use snapshot::{
    CHAIN_FACTOR, CHAIN_FACTOR_ONE_BLOB, Layout, MAX_DELTAS, SnapshotBase, SnapshotSource,
    chain_limit,
};

/// One key-value operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum KvOp {
    /// Read `key`. `stale: true` reads local state with no consensus.
    Get {
        key: String,
        stale: bool,
    },
    Put {
        key: String,
        value: Value,
    },
    /// Compare-and-set. `from: None` means "the key is absent".
    Cas {
        key: String,
        from: Option<Value>,
        to: Value,
    },
    Delete {
        key: String,
    },
    /// Appends a string to the key's string value (absent = "").
    Append {
        key: String,
        value: String,
    },
}

/// The result of applying (or reading) one operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum KvResult {
    /// The value after the operation (for a read: the value seen; `None` = absent).
    Value(Option<Value>),
    /// A CAS whose compare did not match; `current` is the value it saw.
    CasMismatch { current: Option<Value> },
}

/// A command as stored in a log entry: the op plus its deduplication id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Command {
    pub client: u64,
    pub seq: u64,
    pub op: KvOp,
}

impl Command {
    /// The log encoding. JSON, because values are arbitrary JSON (self-describing
    /// formats only).
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Command, KvError> {
        serde_json::from_slice(bytes).map_err(|e| KvError::Decode(e.to_string()))
    }
}

/// Deepest nesting of arrays and objects a value may have (a scalar is 0 deep, `[]`
/// is 1). The log holds a command as JSON with the value three levels down
/// (`{"op":{"Put":{"value":..}}}`), a snapshot's session table holds results two
/// levels down, and serde_json refuses to read anything nested deeper than 128
/// levels; a bound well below that keeps every accepted value readable everywhere
/// it is stored, so applying a committed command never fails to decode it.
pub const MAX_VALUE_DEPTH: usize = 100;

impl KvOp {
    /// Refuses what must never reach consensus: a `null` value (absent and `null`
    /// would be one state: DELETE removes a key, `Cas { from: None }` compares with
    /// absent), and a value nested deeper than [`MAX_VALUE_DEPTH`].
    pub fn validate(&self) -> Result<(), KvError> {
        let values: Vec<(&str, &Value)> = match self {
            KvOp::Get { .. } | KvOp::Delete { .. } | KvOp::Append { .. } => Vec::new(),
            KvOp::Put { value, .. } => vec![("value", value)],
            KvOp::Cas { from, to, .. } => {
                let mut v = vec![("to", to)];
                v.extend(from.iter().map(|f| ("from", f)));
                v
            }
        };
        for (name, v) in values {
            if v.is_null() {
                return Err(KvError::Invalid(format!(
                    "{name} must not be null: a key holds a value or is absent (DELETE removes it)"
                )));
            }
            if depth(v) > MAX_VALUE_DEPTH {
                return Err(KvError::Invalid(format!(
                    "{name} is nested more than {MAX_VALUE_DEPTH} arrays or objects deep"
                )));
            }
        }
        Ok(())
    }
}

/// How many arrays and objects `v` nests (a scalar: 0), without recursion.
fn depth(v: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Array(a) => stack.extend(a.iter().map(|c| (c, d + 1))),
            Value::Object(o) => stack.extend(o.values().map(|c| (c, d + 1))),
            _ => continue,
        }
        deepest = deepest.max(d + 1);
    }
    deepest
}

/// Errors of the state machine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// An operation that must not be proposed (see [`KvOp::validate`]).
    #[error("{0}")]
    Invalid(String),
    #[error("cannot decode a command or snapshot: {0}")]
    Decode(String),
    #[error("cannot encode a snapshot: {0}")]
    Encode(String),
    /// A retry older than the newest command recorded for its client: its result is
    /// gone, and it was certainly applied already or superseded. Not applied again.
    #[error("request (client {client}, seq {seq}) is older than the client's latest")]
    StaleRequest { client: u64, seq: u64 },
}

/// The newest command applied for one client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Session {
    seq: u64,
    result: KvResult,
    /// Position in the eviction order.
    stamp: u64,
}

/// Bound on the session table; the least recently active client is forgotten.
const MAX_SESSIONS: usize = 100_000;

/// The key-value store plus the deduplication table. Cloning is O(1), plus the
/// changes being tracked ([`Kv::begin_changes`] hands them over before a snapshot).
#[derive(Clone, Debug, PartialEq)]
pub struct Kv {
    data: RedBlackTreeMapSync<String, Value>,
    sessions: RedBlackTreeMapSync<u64, Session>,
    /// `stamp -> client`, oldest first, for eviction.
    by_stamp: RedBlackTreeMapSync<u64, u64>,
    next_stamp: u64,
    changes: Tracking,
    /// About the bytes of the state's snapshot image: each key with its value's
    /// JSON text, each session with its result's. Kept as the state changes (a
    /// function of the data and sessions alone), so the bound on a snapshot chain
    /// ([`chain_limit`]) is checked without encoding the state.
    approx_bytes: usize,
}

/// Counts the bytes written through it.
struct ByteCount(usize);

impl std::fmt::Write for ByteCount {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// About the length of `v`'s JSON text: exact but for escapes in strings.
fn json_bytes(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(n) => {
            // Formatted as serde_json writes it, into a counter: no allocation.
            let mut count = ByteCount(0);
            let _ = std::fmt::Write::write_fmt(&mut count, format_args!("{n}"));
            count.0
        }
        Value::String(s) => s.len() + 2,
        Value::Array(a) => 2 + a.iter().map(|x| json_bytes(x) + 1).sum::<usize>(),
        Value::Object(o) => {
            2 + o
                .iter()
                .map(|(k, x)| k.len() + 4 + json_bytes(x))
                .sum::<usize>()
        }
    }
}

/// About the bytes one key and its value take in a snapshot.
fn entry_bytes(key: &str, v: &Value) -> usize {
    key.len() + json_bytes(v) + 4
}

/// About the bytes one session takes in a snapshot.
fn session_bytes(s: &Session) -> usize {
    let result = match &s.result {
        KvResult::Value(v) | KvResult::CasMismatch { current: v } => {
            v.as_ref().map_or(5, json_bytes)
        }
    };
    result + 40
}

impl Default for Kv {
    fn default() -> Kv {
        Kv {
            data: RedBlackTreeMapSync::new_sync(),
            sessions: RedBlackTreeMapSync::new_sync(),
            by_stamp: RedBlackTreeMapSync::new_sync(),
            next_stamp: 0,
            changes: Tracking(None),
            approx_bytes: 0,
        }
    }
}

/// The keys and clients whose entries changed since tracking last began: what a
/// delta section must hold. Sorted sets, so a delta's bytes are deterministic.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    keys: BTreeSet<String>,
    clients: BTreeSet<u64>,
}

impl Changes {
    /// How many keys and clients changed.
    pub fn len(&self) -> usize {
        self.keys.len() + self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The changes being tracked (`None`: not tracking, or gave up). Bookkeeping, not
/// state: two stores holding the same data and sessions are equal whatever they
/// tracked.
#[derive(Clone, Debug, Default)]
struct Tracking(Option<Changes>);

impl PartialEq for Tracking {
    fn eq(&self, _: &Tracking) -> bool {
        true
    }
}

/// Tracking gives up (the next snapshot is then written whole) once more than this
/// many keys and clients changed and more than half the keys did: a delta that
/// large saves little, and the sets would only grow.
pub const MAX_TRACKED: usize = 1 << 16;

impl Kv {
    pub fn new() -> Kv {
        Kv::default()
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.data.get(key)
    }

    pub fn len(&self) -> usize {
        self.data.size()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// About the bytes of this state's snapshot image (see the field).
    pub fn approx_bytes(&self) -> usize {
        self.approx_bytes
    }

    /// Sets `key` to `v`, keeping `approx_bytes`.
    fn set_value(&mut self, key: String, v: Value) {
        if let Some(old) = self.data.get(&key) {
            self.approx_bytes = self.approx_bytes.saturating_sub(entry_bytes(&key, old));
        }
        self.approx_bytes += entry_bytes(&key, &v);
        self.data.insert_mut(key, v);
    }

    /// Removes `key`, keeping `approx_bytes`.
    fn remove_value(&mut self, key: &str) {
        if let Some(old) = self.data.get(key) {
            self.approx_bytes = self.approx_bytes.saturating_sub(entry_bytes(key, old));
            self.data.remove_mut(key);
        }
    }

    /// Sets `client`'s session (its stamp already in `by_stamp`), keeping `approx_bytes`.
    fn set_session(&mut self, client: u64, s: Session) {
        if let Some(old) = self.sessions.get(&client) {
            self.approx_bytes = self.approx_bytes.saturating_sub(session_bytes(old));
        }
        self.approx_bytes += session_bytes(&s);
        self.sessions.insert_mut(client, s);
    }

    /// Removes `client`'s session (not its stamp), keeping `approx_bytes`.
    fn remove_session(&mut self, client: u64) {
        if let Some(old) = self.sessions.get(&client) {
            self.approx_bytes = self.approx_bytes.saturating_sub(session_bytes(old));
            self.sessions.remove_mut(&client);
        }
    }

    /// Applies one committed command, deduplicating retries.
    pub fn apply(&mut self, cmd: &Command) -> Result<KvResult, KvError> {
        if cmd.client != 0
            && let Some(s) = self.sessions.get(&cmd.client)
        {
            if cmd.seq == s.seq {
                return Ok(s.result.clone());
            }
            if cmd.seq < s.seq {
                return Err(KvError::StaleRequest {
                    client: cmd.client,
                    seq: cmd.seq,
                });
            }
        }
        let result = self.apply_op(&cmd.op);
        if cmd.client != 0 {
            self.record(cmd.client, cmd.seq, result.clone());
        }
        Ok(result)
    }

    /// What `op` would return on the current state, without changing anything.
    pub fn evaluate(&self, op: &KvOp) -> KvResult {
        // Only the op's own key matters: evaluate on a one-key copy.
        let key = op_key(op);
        let mut tmp = Kv::default();
        if let Some(v) = self.data.get(key) {
            tmp.set_value(key.to_string(), v.clone());
        }
        tmp.apply_op(op)
    }

    fn apply_op(&mut self, op: &KvOp) -> KvResult {
        let result = match op {
            KvOp::Get { key, .. } => return KvResult::Value(self.data.get(key).cloned()),
            KvOp::Put { key, value } => {
                self.set_value(key.clone(), value.clone());
                KvResult::Value(Some(value.clone()))
            }
            KvOp::Cas { key, from, to } => {
                let current = self.data.get(key);
                if current != from.as_ref() {
                    return KvResult::CasMismatch {
                        current: current.cloned(),
                    };
                }
                self.set_value(key.clone(), to.clone());
                KvResult::Value(Some(to.clone()))
            }
            KvOp::Delete { key } => {
                self.remove_value(key);
                KvResult::Value(None)
            }
            KvOp::Append { key, value } => {
                let mut s = match self.data.get(key) {
                    None => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    // A non-string value is extended through its JSON text.
                    Some(other) => other.to_string(),
                };
                s.push_str(value);
                let v = Value::String(s);
                self.set_value(key.clone(), v.clone());
                KvResult::Value(Some(v))
            }
        };
        self.changed_key(op_key(op));
        result
    }

    fn record(&mut self, client: u64, seq: u64, result: KvResult) {
        self.next_stamp += 1;
        let stamp = self.next_stamp;
        if let Some(old) = self.sessions.get(&client) {
            let old_stamp = old.stamp;
            self.by_stamp.remove_mut(&old_stamp);
        }
        self.set_session(client, Session { seq, result, stamp });
        self.by_stamp.insert_mut(stamp, client);
        self.changed_client(client);
        while self.sessions.size() > MAX_SESSIONS {
            let Some((&oldest, &victim)) = self.by_stamp.first() else {
                break;
            };
            self.by_stamp.remove_mut(&oldest);
            self.remove_session(victim);
            self.changed_client(victim);
        }
    }

    /// Starts tracking changes afresh and returns what was tracked since the last
    /// call: the changes between the state then and now. `None` when tracking was
    /// off, or gave up because too much changed (see [`MAX_TRACKED`]).
    pub fn begin_changes(&mut self) -> Option<Changes> {
        self.changes.0.replace(Changes::default())
    }

    fn changed_key(&mut self, key: &str) {
        if let Some(c) = &mut self.changes.0
            && !c.keys.contains(key)
        {
            c.keys.insert(key.to_string());
            self.limit_tracking();
        }
    }

    fn changed_client(&mut self, client: u64) {
        if let Some(c) = &mut self.changes.0
            && c.clients.insert(client)
        {
            self.limit_tracking();
        }
    }

    fn limit_tracking(&mut self) {
        if let Some(c) = &self.changes.0
            && c.len() > MAX_TRACKED
            && c.keys.len() > self.data.size() / 2
        {
            self.changes.0 = None;
        }
    }
}

fn op_key(op: &KvOp) -> &str {
    match op {
        KvOp::Get { key, .. }
        | KvOp::Put { key, .. }
        | KvOp::Cas { key, .. }
        | KvOp::Delete { key }
        | KvOp::Append { key, .. } => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(super) fn cmd(client: u64, seq: u64, op: KvOp) -> Command {
        Command { client, seq, op }
    }
    pub(super) fn put(k: &str, v: Value) -> KvOp {
        KvOp::Put {
            key: k.into(),
            value: v,
        }
    }

    #[test]
    fn cas_from_none_means_absent() {
        let mut kv = Kv::new();
        let op = KvOp::Cas {
            key: "a".into(),
            from: None,
            to: json!(1),
        };
        assert_eq!(
            kv.apply(&cmd(0, 0, op.clone())),
            Ok(KvResult::Value(Some(json!(1))))
        );
        assert_eq!(
            kv.apply(&cmd(0, 0, op)),
            Ok(KvResult::CasMismatch {
                current: Some(json!(1))
            })
        );
    }

    #[test]
    fn retried_command_returns_recorded_result_without_reapplying() {
        let mut kv = Kv::new();
        let app = |v: &str| KvOp::Append {
            key: "l".into(),
            value: v.into(),
        };
        assert_eq!(
            kv.apply(&cmd(7, 1, app("x"))),
            Ok(KvResult::Value(Some(json!("x"))))
        );
        assert_eq!(
            kv.apply(&cmd(7, 1, app("x"))),
            Ok(KvResult::Value(Some(json!("x"))))
        );
        assert_eq!(kv.get("l"), Some(&json!("x")));
        assert_eq!(
            kv.apply(&cmd(7, 2, app("y"))),
            Ok(KvResult::Value(Some(json!("xy"))))
        );
        assert!(matches!(
            kv.apply(&cmd(7, 1, app("x"))),
            Err(KvError::StaleRequest { .. })
        ));
        // client 0 never deduplicates
        kv.apply(&cmd(0, 1, app("z"))).ok();
        kv.apply(&cmd(0, 1, app("z"))).ok();
        assert_eq!(kv.get("l"), Some(&json!("xyzz")));
    }

    #[test]
    fn delete_and_evaluate_do_what_they_say() {
        let mut kv = Kv::new();
        kv.apply(&cmd(0, 0, put("a", json!({"x": 1})))).ok();
        let del = KvOp::Delete { key: "a".into() };
        assert_eq!(kv.evaluate(&del), KvResult::Value(None));
        assert!(kv.get("a").is_some(), "evaluate must not mutate");
        kv.apply(&cmd(0, 0, del)).ok();
        assert_eq!(kv.get("a"), None);
    }

    #[test]
    fn snapshot_round_trips_and_commands_decode() {
        let mut kv = Kv::new();
        kv.apply(&cmd(3, 9, put("k", json!([1, "two", null])))).ok();
        let back = Kv::from_snapshot(&kv.to_snapshot().expect("encodes"));
        assert_eq!(back.as_ref(), Ok(&kv));
        let c = cmd(1, 2, put("k", json!(1.5)));
        assert_eq!(Command::decode(&c.encode()), Ok(c));
        assert!(Command::decode(b"{").is_err());
        assert!(Kv::from_snapshot(b"[1]").is_err());
        let mut cut = kv.to_snapshot().expect("encodes");
        cut.truncate(cut.len() - 1);
        assert!(Kv::from_snapshot(&cut).is_err());
    }

    #[test]
    fn a_clone_is_unaffected_by_later_writes() {
        let mut kv = Kv::new();
        kv.apply(&cmd(1, 1, put("a", json!(1)))).ok();
        let frozen = kv.clone();
        kv.apply(&cmd(1, 2, put("a", json!(2)))).ok();
        kv.apply(&cmd(0, 0, put("b", json!(3)))).ok();
        assert_eq!(frozen.get("a"), Some(&json!(1)));
        assert_eq!(frozen.get("b"), None);
        let back = Kv::from_snapshot(&frozen.to_snapshot().expect("encodes"));
        assert_eq!(back.as_ref(), Ok(&frozen));
        // The restored dedup table still answers the recorded retry.
        let mut back = back.unwrap_or_default();
        assert_eq!(
            back.apply(&cmd(1, 1, put("a", json!(9)))),
            Ok(KvResult::Value(Some(json!(1))))
        );
        assert_eq!(back.get("a"), Some(&json!(1)));
    }

    /// `[[...]]` nested `d` deep (0: a scalar).
    fn nested(d: usize) -> Value {
        let mut v = json!(1);
        for _ in 0..d {
            v = json!([v]);
        }
        v
    }

    #[test]
    fn a_value_at_the_depth_bound_survives_every_encoding_and_a_deeper_one_is_refused() {
        let deep = nested(MAX_VALUE_DEPTH);
        let cas = KvOp::Cas {
            key: "k".into(),
            from: Some(deep.clone()),
            to: deep.clone(),
        };
        assert_eq!(put("k", deep.clone()).validate(), Ok(()));
        assert_eq!(cas.validate(), Ok(()));
        // The log: the command decodes.
        for op in [put("k", deep.clone()), cas.clone()] {
            let c = cmd(5, 1, op);
            assert_eq!(Command::decode(&c.encode()), Ok(c));
        }
        // A snapshot with the value stored and in both kinds of session result.
        let mut kv = Kv::new();
        kv.apply(&cmd(1, 1, put("k", deep.clone())))
            .expect("applies");
        let mismatch = kv.apply(&cmd(
            2,
            1,
            KvOp::Cas {
                key: "k".into(),
                from: None,
                to: json!(0),
            },
        ));
        assert!(matches!(mismatch, Ok(KvResult::CasMismatch { .. })));
        let back = Kv::from_snapshot(&kv.to_snapshot().expect("encodes"));
        assert_eq!(back, Ok(kv));
        // A request body holding it parses.
        let body = json!({ "value": deep }).to_string();
        assert!(serde_json::from_str::<Value>(&body).is_ok());

        let deeper = nested(MAX_VALUE_DEPTH + 1);
        assert!(matches!(
            put("k", deeper.clone()).validate(),
            Err(KvError::Invalid(_))
        ));
        let cas_from = KvOp::Cas {
            key: "k".into(),
            from: Some(deeper),
            to: json!(1),
        };
        assert!(cas_from.validate().is_err());
        // The margin is real: the log's decoder refuses a little deeper than the bound.
        let refused = (MAX_VALUE_DEPTH..200)
            .find(|&d| Command::decode(&cmd(1, 1, put("k", nested(d))).encode()).is_err());
        assert!(
            refused.is_some_and(|d| d > MAX_VALUE_DEPTH + 20),
            "{refused:?}"
        );
        // Objects count as arrays do.
        let mut obj = json!(1);
        for _ in 0..=MAX_VALUE_DEPTH {
            obj = json!({ "a": obj });
        }
        assert!(put("k", obj).validate().is_err());
    }

    #[test]
    fn null_values_are_refused_so_absent_and_null_stay_apart() {
        assert!(put("k", Value::Null).validate().is_err());
        let cas = |from: Option<Value>, to: Value| KvOp::Cas {
            key: "k".into(),
            from,
            to,
        };
        assert!(cas(None, Value::Null).validate().is_err());
        assert!(cas(Some(Value::Null), json!(1)).validate().is_err());
        assert_eq!(cas(None, json!(1)).validate(), Ok(()));
        // Inside a value, null is an ordinary JSON value.
        assert_eq!(put("k", json!([null, {"a": null}])).validate(), Ok(()));
        assert_eq!(KvOp::Delete { key: "k".into() }.validate(), Ok(()));
    }
}
