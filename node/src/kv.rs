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
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;

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
}

impl Default for Kv {
    fn default() -> Kv {
        Kv {
            data: RedBlackTreeMapSync::new_sync(),
            sessions: RedBlackTreeMapSync::new_sync(),
            by_stamp: RedBlackTreeMapSync::new_sync(),
            next_stamp: 0,
            changes: Tracking(None),
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

/// A snapshot's bytes are the previous snapshot's plus a delta only while the deltas
/// after the last whole image add up to no more than that image, and there are at
/// most this many of them: decoding reads at most twice the state, and no chain
/// grows without end.
pub const MAX_DELTAS: u32 = 64;

/// Bytes that start every snapshot, so a foreign or older encoding is refused
/// with a clear error instead of being misread. `linkv-s2` images may be followed by
/// delta sections; a node that only knows `linkv-s1` ignored bytes after the image,
/// so it must not be handed those (it refuses the new magic instead).
const SNAPSHOT_MAGIC: &[u8; 8] = b"linkv-s2";
/// The magic of images written before delta sections existed: read, never written,
/// and nothing may follow them.
const SNAPSHOT_MAGIC_V1: &[u8; 8] = b"linkv-s1";
/// Bytes that start each delta section after the whole image.
const DELTA_MAGIC: &[u8; 8] = b"linkv-d1";

/// A JSON value written as its JSON text: postcard is not self-describing, so it
/// cannot carry `serde_json::Value` directly.
struct JsonText<'a, T>(&'a T);

impl<T: Serialize> Serialize for JsonText<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = serde_json::to_string(self.0).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }
}

/// The data map as a sequence of `(key, value as JSON)`, written without copying.
struct DataImage<'a>(&'a RedBlackTreeMapSync<String, Value>);

impl Serialize for DataImage<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|(k, v)| (k, JsonText(v))))
    }
}

/// The session table as a sequence of [`SessionImage`], written without copying.
struct SessionsImage<'a>(&'a RedBlackTreeMapSync<u64, Session>);

impl Serialize for SessionsImage<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.0
                .iter()
                .map(|(c, x)| (c, x.seq, x.stamp, JsonText(&x.result))),
        )
    }
}

/// One session as stored in a snapshot: `(client, seq, stamp, result as JSON)`.
type SessionImage = (u64, u64, u64, String);

/// The snapshot encoding, read back (`by_stamp` is derived from the sessions).
#[derive(Deserialize)]
struct Image {
    data: Vec<(String, String)>,
    sessions: Vec<SessionImage>,
    next_stamp: u64,
}

/// A delta section, read back: what changed since the sections before it.
#[derive(Deserialize)]
struct DeltaImage {
    /// Keys that now hold these values.
    puts: Vec<(String, String)>,
    /// Keys that no longer exist.
    deletes: Vec<String>,
    /// Sessions as they now read.
    sessions: Vec<SessionImage>,
    /// Clients whose session was evicted.
    ended: Vec<u64>,
    next_stamp: u64,
}

/// How a snapshot's bytes are laid out: the length of the whole image they start
/// with, and how many delta sections follow it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub image_len: usize,
    pub deltas: u32,
}

/// The previous snapshot's bytes, which the next one may extend with a delta.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotBase {
    pub data: bytes::Bytes,
    pub layout: Layout,
}

impl SnapshotBase {
    /// Bytes taken as one whole image (their layout not known), so deltas may add
    /// up to their size before the next image.
    pub fn opaque(data: bytes::Bytes) -> SnapshotBase {
        let layout = Layout {
            image_len: data.len(),
            deltas: 0,
        };
        SnapshotBase { data, layout }
    }
}

/// What the driver turns into a snapshot's bytes, off the replica's path: the state
/// (an O(1) clone) and, when it can be written as a delta, the changes since the
/// previous snapshot together with that snapshot's bytes.
#[derive(Clone, Debug)]
pub struct SnapshotSource {
    kv: Kv,
    changes: Option<Changes>,
    base: Option<SnapshotBase>,
}

impl SnapshotSource {
    /// The state, to be written whole.
    pub fn whole(kv: Kv) -> SnapshotSource {
        SnapshotSource {
            kv,
            changes: None,
            base: None,
        }
    }

    /// The state, which may be written as `base` plus `changes`. The caller
    /// guarantees that `changes` is exactly what changed between the state `base`
    /// describes and `kv` (see [`Kv::begin_changes`]).
    pub fn after(kv: Kv, changes: Option<Changes>, base: Option<SnapshotBase>) -> SnapshotSource {
        SnapshotSource { kv, changes, base }
    }

    /// The state these bytes describe.
    pub fn kv(&self) -> &Kv {
        &self.kv
    }

    /// The snapshot's bytes as the base followed by one delta section, while the
    /// chain stays within its bounds (see [`MAX_DELTAS`]); `None` when they must be
    /// the whole state ([`SnapshotSource::write_whole`]). Costs about the changes,
    /// plus one copy of the base.
    pub fn as_delta(&self) -> Result<Option<(Vec<u8>, Layout)>, KvError> {
        let (Some(changes), Some(base)) = (&self.changes, &self.base) else {
            return Ok(None);
        };
        if base.layout.deltas >= MAX_DELTAS || base.layout.image_len == 0 {
            return Ok(None);
        }
        let mut delta = Vec::new();
        self.kv.write_delta(changes, &mut delta)?;
        let chained = base.data.len().saturating_sub(base.layout.image_len) + delta.len();
        if chained > base.layout.image_len {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(base.data.len() + delta.len());
        out.extend_from_slice(&base.data);
        out.extend_from_slice(&delta);
        let layout = Layout {
            image_len: base.layout.image_len,
            deltas: base.layout.deltas + 1,
        };
        Ok(Some((out, layout)))
    }

    /// Writes the whole state into `w` (see [`Kv::write_snapshot`]); returns the
    /// layout of those bytes.
    pub fn write_whole<W: Write>(&self, w: W) -> Result<Layout, KvError> {
        let mut counted = Counted { inner: w, n: 0 };
        self.kv.write_snapshot(&mut counted)?;
        Ok(Layout {
            image_len: counted.n,
            deltas: 0,
        })
    }

    /// The snapshot's bytes and their layout: [`SnapshotSource::as_delta`] when it
    /// gives them, the whole state otherwise.
    pub fn to_bytes(&self) -> Result<(Vec<u8>, Layout), KvError> {
        if let Some(delta) = self.as_delta()? {
            return Ok(delta);
        }
        let mut out = Vec::new();
        let layout = self.write_whole(&mut out)?;
        Ok((out, layout))
    }
}

/// A writer that counts the bytes that go through it.
struct Counted<W> {
    inner: W,
    n: usize,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

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
            tmp.data.insert_mut(key.to_string(), v.clone());
        }
        tmp.apply_op(op)
    }

    fn apply_op(&mut self, op: &KvOp) -> KvResult {
        let result = match op {
            KvOp::Get { key, .. } => return KvResult::Value(self.data.get(key).cloned()),
            KvOp::Put { key, value } => {
                self.data.insert_mut(key.clone(), value.clone());
                KvResult::Value(Some(value.clone()))
            }
            KvOp::Cas { key, from, to } => {
                let current = self.data.get(key);
                if current != from.as_ref() {
                    return KvResult::CasMismatch {
                        current: current.cloned(),
                    };
                }
                self.data.insert_mut(key.clone(), to.clone());
                KvResult::Value(Some(to.clone()))
            }
            KvOp::Delete { key } => {
                self.data.remove_mut(key);
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
                self.data.insert_mut(key.clone(), v.clone());
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
        self.sessions
            .insert_mut(client, Session { seq, result, stamp });
        self.by_stamp.insert_mut(stamp, client);
        self.changed_client(client);
        while self.sessions.size() > MAX_SESSIONS {
            let Some((&oldest, &victim)) = self.by_stamp.first() else {
                break;
            };
            self.by_stamp.remove_mut(&oldest);
            self.sessions.remove_mut(&victim);
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

    /// Snapshot encoding of the whole state machine (data and sessions): a magic
    /// prefix, then postcard, with each JSON value as its JSON text. Cost is linear
    /// in the state; call it off the hot path on a clone (see the module docs).
    /// The state as snapshot bytes. An error means no snapshot (never a damaged one):
    /// the caller skips this compaction.
    pub fn to_snapshot(&self) -> Result<Vec<u8>, KvError> {
        let mut out = Vec::new();
        self.write_snapshot(&mut out)?;
        Ok(out)
    }

    /// The bytes of [`Kv::to_snapshot`], streamed into `w` as the maps are walked
    /// (no whole-state buffer here: the writer decides how to pace and where to put
    /// them).
    pub fn write_snapshot<W: Write>(&self, mut w: W) -> Result<(), KvError> {
        let image = (
            DataImage(&self.data),
            SessionsImage(&self.sessions),
            self.next_stamp,
        );
        w.write_all(SNAPSHOT_MAGIC)
            .map_err(|e| KvError::Encode(e.to_string()))?;
        postcard::to_io(&image, w).map_err(|e| KvError::Encode(e.to_string()))?;
        Ok(())
    }

    /// A delta section holding the entries of `changes` as they are now: values of
    /// changed keys that exist, changed keys that do not, sessions of changed clients
    /// that exist, and those evicted.
    fn write_delta<W: Write>(&self, changes: &Changes, mut w: W) -> Result<(), KvError> {
        let (mut puts, mut deletes) = (Vec::new(), Vec::new());
        for k in &changes.keys {
            match self.data.get(k) {
                Some(v) => puts.push((k, JsonText(v))),
                None => deletes.push(k),
            }
        }
        let (mut sessions, mut ended) = (Vec::new(), Vec::new());
        for &c in &changes.clients {
            match self.sessions.get(&c) {
                Some(x) => sessions.push((c, x.seq, x.stamp, JsonText(&x.result))),
                None => ended.push(c),
            }
        }
        let image = (puts, deletes, sessions, ended, self.next_stamp);
        w.write_all(DELTA_MAGIC)
            .map_err(|e| KvError::Encode(e.to_string()))?;
        postcard::to_io(&image, w).map_err(|e| KvError::Encode(e.to_string()))?;
        Ok(())
    }

    /// The state that snapshot bytes describe: the whole image they start with, then
    /// each delta section after it, in order.
    pub fn from_snapshot(bytes: &[u8]) -> Result<Kv, KvError> {
        Kv::decode_snapshot(bytes).map(|(kv, _)| kv)
    }

    /// [`Kv::from_snapshot`], with the layout of the bytes (so a chain read back
    /// keeps its bounds).
    pub fn decode_snapshot(bytes: &[u8]) -> Result<(Kv, Layout), KvError> {
        let bad = |why: String| KvError::Decode(format!("snapshot: {why}"));
        let (body, v1) = match bytes.strip_prefix(SNAPSHOT_MAGIC) {
            Some(body) => (body, false),
            None => (bytes.strip_prefix(SNAPSHOT_MAGIC_V1))
                .map(|body| (body, true))
                .ok_or_else(|| bad("not a key-value snapshot (bad magic bytes)".into()))?,
        };
        let (image, mut rest) =
            postcard::take_from_bytes::<Image>(body).map_err(|e| bad(e.to_string()))?;
        if v1 && !rest.is_empty() {
            return Err(bad(format!(
                "{} bytes after an image that takes none",
                rest.len()
            )));
        }
        let image_len = bytes.len() - rest.len();
        let mut kv = Kv::new();
        for (k, text) in image.data {
            let v = json_value(&text).map_err(|e| bad(format!("value of {k:?}: {e}")))?;
            kv.data.insert_mut(k, v);
        }
        kv.next_stamp = image.next_stamp;
        for s in image.sessions {
            kv.load_session(s).map_err(bad)?;
        }
        let mut n: u32 = 0;
        while !rest.is_empty() {
            n = n.saturating_add(1);
            let body = rest.strip_prefix(DELTA_MAGIC).ok_or_else(|| {
                bad(format!(
                    "{} bytes after section {n} are not a delta section",
                    rest.len()
                ))
            })?;
            let (delta, more) = postcard::take_from_bytes::<DeltaImage>(body)
                .map_err(|e| bad(format!("delta section {n}: {e}")))?;
            kv.apply_delta(delta)
                .map_err(|why| bad(format!("delta section {n}: {why}")))?;
            rest = more;
        }
        let layout = Layout {
            image_len,
            deltas: n,
        };
        Ok((kv, layout))
    }

    /// Applies a decoded delta section.
    fn apply_delta(&mut self, d: DeltaImage) -> Result<(), String> {
        if d.next_stamp < self.next_stamp {
            return Err(format!(
                "its stamp counter {} is behind the {} before it",
                d.next_stamp, self.next_stamp
            ));
        }
        self.next_stamp = d.next_stamp;
        for (k, text) in d.puts {
            let v = json_value(&text).map_err(|e| format!("value of {k:?}: {e}"))?;
            self.data.insert_mut(k, v);
        }
        for k in d.deletes {
            self.data.remove_mut(&k);
        }
        for client in d.ended {
            self.drop_session(client);
        }
        for s in d.sessions {
            self.drop_session(s.0);
            self.load_session(s)?;
        }
        Ok(())
    }

    fn drop_session(&mut self, client: u64) {
        if let Some(old) = self.sessions.get(&client) {
            let stamp = old.stamp;
            self.by_stamp.remove_mut(&stamp);
            self.sessions.remove_mut(&client);
        }
    }

    /// Adds one decoded session (whose client has none yet), checking its stamp.
    fn load_session(&mut self, (client, seq, stamp, text): SessionImage) -> Result<(), String> {
        let result: KvResult =
            serde_json::from_str(&text).map_err(|e| format!("session of client {client}: {e}"))?;
        if self.by_stamp.contains_key(&stamp) || stamp > self.next_stamp {
            return Err(format!(
                "session of client {client} has a duplicate or future stamp {stamp}"
            ));
        }
        self.by_stamp.insert_mut(stamp, client);
        self.sessions
            .insert_mut(client, Session { seq, result, stamp });
        Ok(())
    }
}

/// A stored value from its JSON text.
fn json_value(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str(text)
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

    fn cmd(client: u64, seq: u64, op: KvOp) -> Command {
        Command { client, seq, op }
    }
    fn put(k: &str, v: Value) -> KvOp {
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

    /// A deterministic mix of every kind of write over a few keys and clients.
    fn churn(kv: &mut Kv, step: u64) {
        let r = step
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
            >> 33;
        let key = format!("k{}", r % 40);
        let op = match r % 7 {
            0 | 1 => put(&key, json!(r)),
            2 => KvOp::Delete { key },
            3 => KvOp::Append {
                key,
                value: "x".into(),
            },
            4 => KvOp::Cas {
                key,
                from: None,
                to: json!("fresh"),
            },
            5 => KvOp::Get { key, stale: false },
            _ => put(&key, json!({ "step": step })),
        };
        // Client 0 opts out of sessions; the rest make sessions change.
        let client = r % 9;
        let _ = kv.apply(&cmd(client, step, op));
    }

    #[test]
    fn delta_snapshots_decode_to_the_state_they_were_taken_from() {
        let mut kv = Kv::new();
        kv.begin_changes();
        let mut base: Option<SnapshotBase> = None;
        let (mut deltas, mut wholes) = (0, 0);
        for step in 1..=3000 {
            churn(&mut kv, step);
            if step % 23 != 0 {
                continue;
            }
            let changes = kv.begin_changes();
            let source = SnapshotSource::after(kv.clone(), changes, base.take());
            let (data, layout) = source.to_bytes().expect("encodes");
            assert_eq!(
                Kv::decode_snapshot(&data),
                Ok((kv.clone(), layout)),
                "at step {step}"
            );
            assert!(layout.deltas <= MAX_DELTAS);
            assert!(data.len() - layout.image_len <= layout.image_len);
            match layout.deltas {
                0 => wholes += 1,
                _ => deltas += 1,
            }
            base = Some(SnapshotBase {
                data: data.into(),
                layout,
            });
        }
        assert!(deltas > 50 && wholes > 3, "{deltas} deltas, {wholes} whole");
    }

    #[test]
    fn a_delta_holds_only_what_changed_and_sessions_evicted_go_with_it() {
        let mut kv = Kv::new();
        for i in 0..200 {
            kv.apply(&cmd(0, 0, put(&format!("key{i}"), json!("v".repeat(50)))))
                .expect("applies");
        }
        kv.begin_changes();
        let (image, layout) = SnapshotSource::whole(kv.clone())
            .to_bytes()
            .expect("encodes");
        assert_eq!(
            layout,
            Layout {
                image_len: image.len(),
                deltas: 0
            }
        );
        kv.apply(&cmd(7, 1, put("key3", json!(3))))
            .expect("applies");
        kv.apply(&cmd(0, 0, KvOp::Delete { key: "key4".into() }))
            .expect("applies");
        let changes = kv.begin_changes();
        assert_eq!(
            changes.as_ref().map(Changes::len),
            Some(3),
            "two keys, one client"
        );
        let base = SnapshotBase::opaque(image.clone().into());
        let (data, layout) = SnapshotSource::after(kv.clone(), changes, Some(base))
            .to_bytes()
            .expect("encodes");
        assert_eq!(layout.deltas, 1);
        assert!(data.starts_with(&image));
        assert!(
            data.len() - image.len() < 100,
            "delta of {} bytes",
            data.len() - image.len()
        );
        let back = Kv::from_snapshot(&data).expect("decodes");
        assert_eq!(back, kv);
        assert_eq!(back.get("key4"), None);
        // The restored session still answers the retry.
        let mut back = back;
        assert_eq!(
            back.apply(&cmd(7, 1, put("key3", json!(9)))),
            Ok(KvResult::Value(Some(json!(3))))
        );
        // An image of the first encoding still reads, but nothing may follow it: a
        // node that knows only that encoding would ignore the deltas.
        let mut v1 = image.clone();
        v1[..8].copy_from_slice(SNAPSHOT_MAGIC_V1);
        assert!(Kv::from_snapshot(&v1).is_ok());
        let mut v1_chain = data.clone();
        v1_chain[..8].copy_from_slice(SNAPSHOT_MAGIC_V1);
        assert!(Kv::from_snapshot(&v1_chain).is_err());
        // Garbage after the sections is refused, not ignored.
        let mut bad = data.clone();
        bad.extend_from_slice(b"junk");
        assert!(Kv::from_snapshot(&bad).is_err());
        let mut cut = data;
        cut.truncate(cut.len() - 1);
        assert!(Kv::from_snapshot(&cut).is_err());
    }

    #[test]
    fn without_tracking_or_without_a_base_the_state_is_written_whole() {
        let mut kv = Kv::new();
        kv.apply(&cmd(1, 1, put("a", json!(1)))).expect("applies");
        let image = kv.to_snapshot().expect("encodes");
        let base = Some(SnapshotBase::opaque(image.into()));
        // Not tracking: no changes to write a delta from.
        let changes = kv.begin_changes();
        assert!(changes.is_none());
        let (_, layout) = SnapshotSource::after(kv.clone(), changes, base)
            .to_bytes()
            .expect("encodes");
        assert_eq!(layout.deltas, 0);
        // Tracking but no base.
        kv.apply(&cmd(1, 2, put("a", json!(2)))).expect("applies");
        let changes = kv.begin_changes();
        assert!(changes.is_some());
        let (data, layout) = SnapshotSource::after(kv.clone(), changes, None)
            .to_bytes()
            .expect("encodes");
        assert_eq!(layout.deltas, 0);
        assert_eq!(Kv::from_snapshot(&data), Ok(kv));
    }
}
