//! The key-value store's snapshot encoding: the whole image, the delta sections
//! that may follow it, and [`SnapshotSource`], which turns a state into snapshot
//! bytes (see the parent module's docs). PURE, like the store.

// PURE (docs/design.md, "Purity"): clippy rejects clocks, files, sockets, tokio and
// unseeded randomness here (the lists are in clippy.toml).
#![deny(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    clippy::disallowed_macros
)]

use super::{Changes, Kv, KvError, KvResult, Session};
use crate::raft::types::SnapshotData;
use rpds::RedBlackTreeMapSync;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::io::Write;

/// A snapshot's bytes are the previous snapshot's plus a delta only while there are
/// at most this many deltas after the last whole image and the bytes stay within
/// [`chain_limit`]: decoding reads at most about [`CHAIN_FACTOR`] times the state,
/// and no chain grows without end.
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
/// with (0: no delta may extend them), and how many delta sections follow it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub image_len: usize,
    pub deltas: u32,
}

/// How many times the state's size a chain (image and deltas together) may reach
/// where deltas are stored and sent as files of their own (Raft).
///
/// Each whole image is the state to serialize, write and sync at once. With a
/// factor `k` a chain takes up to about `(k - 1) * state / delta` deltas (at most
/// [`MAX_DELTAS`]) before the next image, so images add about `1 / (k - 1)` to the
/// bytes the deltas write; decoding (a restart, a follower's install) reads, and a
/// node keeps in memory, up to about `k` times the state. At 2, a full store
/// rewritten at 20,000 writes per second wrote an image every ten or so deltas, and
/// those images were what was left of snapshots in the write p99 (1.31-1.87x the
/// snapshot-free p99 of the same run, four runs); at 4 it was 0.54-1.26x (six runs;
/// README, "Snapshots under load, and at scale").
pub const CHAIN_FACTOR: usize = 4;

/// The factor where every snapshot is stored and sent as one blob (the Paxos
/// engines): each snapshot writes the whole chain, so a longer chain costs every
/// snapshot, not only the images.
pub const CHAIN_FACTOR_ONE_BLOB: usize = 2;

/// The most bytes (image and deltas together) a chain may reach while the state
/// takes about `state_bytes` ([`Kv::approx_bytes`]): `factor` times the state
/// ([`CHAIN_FACTOR`], [`CHAIN_FACTOR_ONE_BLOB`]). Bounding by the state, not by the
/// image the chain starts with, lets a state that grows (a store filling up) keep
/// extending its first image instead of writing itself whole every other snapshot,
/// and makes one that shrank be written whole again soon.
pub fn chain_limit(state_bytes: usize, factor: usize) -> usize {
    state_bytes.saturating_mul(factor)
}

/// The previous snapshot's bytes, which the next one may extend with a delta.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotBase {
    pub data: SnapshotData,
    pub layout: Layout,
}

impl SnapshotBase {
    /// Bytes taken as one whole image (their layout not known), which deltas may
    /// extend within [`chain_limit`].
    pub fn opaque(data: SnapshotData) -> SnapshotBase {
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
    /// See [`chain_limit`].
    factor: usize,
}

impl SnapshotSource {
    /// The state, to be written whole.
    pub fn whole(kv: Kv) -> SnapshotSource {
        SnapshotSource {
            kv,
            changes: None,
            base: None,
            factor: CHAIN_FACTOR,
        }
    }

    /// The state, which may be written as `base` plus `changes`. The caller
    /// guarantees that `changes` is exactly what changed between the state `base`
    /// describes and `kv` (see [`Kv::begin_changes`]).
    pub fn after(kv: Kv, changes: Option<Changes>, base: Option<SnapshotBase>) -> SnapshotSource {
        SnapshotSource {
            kv,
            changes,
            base,
            factor: CHAIN_FACTOR,
        }
    }

    /// The same, with the chain bounded by `factor` times the state instead of
    /// [`CHAIN_FACTOR`] (see [`chain_limit`]).
    pub fn chain_factor(self, factor: usize) -> SnapshotSource {
        SnapshotSource { factor, ..self }
    }

    /// The state these bytes describe.
    pub fn kv(&self) -> &Kv {
        &self.kv
    }

    /// How many times the state a chain may reach (see [`chain_limit`]).
    pub fn factor(&self) -> usize {
        self.factor
    }

    /// The snapshot's bytes as the base followed by one delta section, while the
    /// chain stays within its bounds (see [`MAX_DELTAS`]); `None` when they must be
    /// the whole state ([`SnapshotSource::write_whole`]). Costs about the changes:
    /// the base's pieces are shared, not copied.
    pub fn as_delta(&self) -> Result<Option<(SnapshotData, Layout)>, KvError> {
        let (Some(changes), Some(base)) = (&self.changes, &self.base) else {
            return Ok(None);
        };
        if base.layout.deltas >= MAX_DELTAS || base.layout.image_len == 0 {
            return Ok(None);
        }
        let mut delta = Vec::new();
        self.kv.write_delta(changes, &mut delta)?;
        let chained = base.data.len() + delta.len();
        if chained > chain_limit(self.kv.approx_bytes(), self.factor) {
            return Ok(None);
        }
        // Kept for as long as the chain: without the growth slack.
        delta.shrink_to_fit();
        let out = base.data.with(delta.into());
        let layout = Layout {
            deltas: base.layout.deltas + 1,
            ..base.layout
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
    pub fn to_bytes(&self) -> Result<(SnapshotData, Layout), KvError> {
        if let Some(delta) = self.as_delta()? {
            return Ok(delta);
        }
        let mut out = Vec::new();
        let layout = self.write_whole(&mut out)?;
        Ok((out.into(), layout))
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
            kv.set_value(k, v);
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
            // An image of the first encoding takes no delta after it (one would not
            // read back), so none may extend it: the next snapshot is whole.
            image_len: if v1 { 0 } else { image_len },
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
            self.set_value(k, v);
        }
        for k in d.deletes {
            self.remove_value(&k);
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
            self.remove_session(client);
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
        self.set_session(client, Session { seq, result, stamp });
        Ok(())
    }
}

/// A stored value from its JSON text.
fn json_value(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::KvOp;
    use crate::kv::tests::{cmd, put};
    use serde_json::json;

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

    /// The next snapshot of `kv` after `base` (the changes since the last one), checked
    /// to decode to `kv` with the layout it was written with and to stay in bounds.
    fn next_snapshot(kv: &mut Kv, base: Option<SnapshotBase>, at: &str) -> SnapshotBase {
        let changes = kv.begin_changes();
        let source = SnapshotSource::after(kv.clone(), changes, base);
        let (data, layout) = source.to_bytes().expect("encodes");
        assert_eq!(
            Kv::decode_snapshot(&data.contiguous()),
            Ok((kv.clone(), layout)),
            "{at}"
        );
        assert!(layout.deltas <= MAX_DELTAS, "{at}");
        assert!(
            layout.deltas == 0 || data.len() <= chain_limit(kv.approx_bytes(), CHAIN_FACTOR),
            "{at}"
        );
        SnapshotBase { data, layout }
    }

    #[test]
    fn a_store_filling_up_extends_its_first_image() {
        // Every snapshot comes after 1,000 writes of keys never written before, as
        // when a store fills up: the state grows by as much as each delta holds.
        let mut kv = Kv::new();
        kv.begin_changes();
        let mut base: Option<SnapshotBase> = None;
        let mut wholes = 0;
        for round in 0..30u64 {
            for i in 0..1000 {
                let key = format!("key{:06}", round * 1000 + i);
                kv.apply(&cmd(0, 0, put(&key, json!("v".repeat(64)))))
                    .expect("applies");
            }
            let next = next_snapshot(&mut kv, base.take(), &format!("round {round}"));
            // Decoding reads at most about CHAIN_FACTOR times the state: no more
            // than that many times what the state written whole takes now.
            let now = SnapshotSource::whole(kv.clone())
                .to_bytes()
                .expect("encodes");
            assert!(
                next.data.len() <= CHAIN_FACTOR * now.0.len() + 64,
                "round {round}: {} bytes for a state of {}",
                next.data.len(),
                now.0.len()
            );
            if next.layout.deltas == 0 {
                wholes += 1;
            }
            base = Some(next);
        }
        // Only the first is whole (bounding the deltas by the image alone made
        // five of these thirty whole).
        assert_eq!(wholes, 1);
    }

    #[test]
    fn a_chain_stays_within_its_factor_of_the_state_whatever_the_sizes() {
        // A few large values first, then many small keys: an estimate from the
        // first image's bytes per key would let the chain grow far past the state
        // while the large values are rewritten. So would a first image that is
        // mostly sessions (clients that read a large value).
        let big = json!("b".repeat(20_000));
        for sessions in [false, true] {
            let mut kv = Kv::new();
            kv.begin_changes();
            for i in 0..10u64 {
                let key = format!("big{i}");
                kv.apply(&cmd(0, 0, put(&key, big.clone())))
                    .expect("applies");
                if sessions {
                    for c in 1..=20 {
                        let get = KvOp::Get {
                            key: key.clone(),
                            stale: false,
                        };
                        kv.apply(&cmd(i * 100 + c, 1, get)).expect("applies");
                    }
                }
            }
            let mut base = Some(next_snapshot(&mut kv, None, "first"));
            for i in 0..990 {
                kv.apply(&cmd(0, 0, put(&format!("k{i:04}"), json!(i))))
                    .expect("applies");
            }
            let (mut wholes, mut most) = (0, 0.0f64);
            for round in 0..50u64 {
                // Rewrite the large values, and end most sessions (which are then
                // small ones; the 80 large ones of clients over 600 stay, so the
                // state is still mostly sessions): each delta holds much of it.
                for i in 0..10 {
                    let v = json!(format!("{round:02}").repeat(10_000));
                    kv.apply(&cmd(0, 0, put(&format!("big{i}"), v)))
                        .expect("applies");
                }
                for c in 0..600u64 {
                    let op = put("small", json!(c));
                    kv.apply(&cmd(c + 1, 2 + round, op)).expect("applies");
                }
                let next = next_snapshot(&mut kv, base.take(), &format!("round {round}"));
                let whole = SnapshotSource::whole(kv.clone())
                    .to_bytes()
                    .expect("encodes");
                most = most.max(next.data.len() as f64 / whole.0.len() as f64);
                if next.layout.deltas == 0 {
                    wholes += 1;
                }
                base = Some(next);
            }
            assert!(
                most <= CHAIN_FACTOR as f64 + 0.5,
                "sessions {sessions}: a chain reached {most:.2}x the state"
            );
            // The bound took effect: the chain was started over.
            assert!(wholes >= 2, "sessions {sessions}: {wholes} whole images");
        }
    }

    #[test]
    fn a_smaller_chain_factor_starts_chains_over_sooner_and_holds() {
        // The same overwrites of a full store, bounded at each factor.
        let wholes = |factor: usize| {
            let mut kv = Kv::new();
            kv.begin_changes();
            let fill = |kv: &mut Kv, round: u64| {
                for i in 0..200u64 {
                    let v = json!(format!("{round}-{i}-{}", "x".repeat(40)));
                    kv.apply(&cmd(0, 0, put(&format!("k{i:03}"), v)))
                        .expect("applies");
                }
            };
            fill(&mut kv, 0);
            let mut base: Option<SnapshotBase> = None;
            let mut wholes = 0;
            for round in 1..=24u64 {
                // Half the keys change between snapshots.
                for i in (0..200u64).step_by(2) {
                    let v = json!(format!("{round}-{i}-{}", "y".repeat(40)));
                    kv.apply(&cmd(0, 0, put(&format!("k{i:03}"), v)))
                        .expect("applies");
                }
                let changes = kv.begin_changes();
                let source =
                    SnapshotSource::after(kv.clone(), changes, base.take()).chain_factor(factor);
                let (data, layout) = source.to_bytes().expect("encodes");
                assert_eq!(
                    Kv::decode_snapshot(&data.contiguous()),
                    Ok((kv.clone(), layout))
                );
                assert!(
                    layout.deltas == 0 || data.len() <= chain_limit(kv.approx_bytes(), factor),
                    "factor {factor}, round {round}: {} bytes",
                    data.len()
                );
                if layout.deltas == 0 {
                    wholes += 1;
                }
                base = Some(SnapshotBase { data, layout });
            }
            wholes
        };
        let (one_blob, files) = (wholes(CHAIN_FACTOR_ONE_BLOB), wholes(CHAIN_FACTOR));
        assert!(
            one_blob > files && files >= 2,
            "whole images: {one_blob} at {CHAIN_FACTOR_ONE_BLOB}x, {files} at {CHAIN_FACTOR}x"
        );
    }

    #[test]
    fn the_estimated_size_is_about_that_of_the_image() {
        // The estimate against the image's bytes, and the image.
        let check = |kv: &Kv, what: &str| {
            let (data, _) = SnapshotSource::whole(kv.clone())
                .to_bytes()
                .expect("encodes");
            let ratio = kv.approx_bytes() as f64 / data.len() as f64;
            assert!(
                (0.7..1.5).contains(&ratio),
                "{what}: estimate {} for {} bytes",
                kv.approx_bytes(),
                data.len()
            );
            data
        };
        let mut kv = Kv::new();
        for step in 1..=3000 {
            churn(&mut kv, step);
        }
        for i in 0..500 {
            let v = json!({ "n": i, "s": "x".repeat(i % 300), "a": [1, 2, 3] });
            kv.apply(&cmd(
                i as u64 % 7 + 1,
                10_000 + i as u64,
                put(&format!("o{i}"), v),
            ))
            .expect("applies");
        }
        let data = check(&kv, "a mixed store");
        // It is a function of the state alone: the decoded copy agrees.
        let back = Kv::from_snapshot(&data.contiguous()).expect("decodes");
        assert_eq!(back.approx_bytes(), kv.approx_bytes());
        // A store of numbers only: floats and large integers are counted at the
        // length they are written with.
        let mut numbers = Kv::new();
        for i in 0..2000u64 {
            let x = i as f64 * std::f64::consts::PI / 7.0;
            let v = json!([x, -x / 3.0, u64::MAX - i, 1.0e300 / (i + 1) as f64]);
            numbers
                .apply(&cmd(0, 0, put(&format!("n{i}"), v)))
                .expect("applies");
        }
        check(&numbers, "numbers");
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
            let next = next_snapshot(&mut kv, base.take(), &format!("at step {step}"));
            match next.layout.deltas {
                0 => wholes += 1,
                _ => deltas += 1,
            }
            base = Some(next);
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
        let image = image.contiguous().to_vec();
        assert_eq!(
            layout,
            Layout {
                image_len: image.len(),
                deltas: 0,
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
        let (data, layout) = SnapshotSource::after(kv.clone(), changes, Some(base.clone()))
            .to_bytes()
            .expect("encodes");
        // The image's bytes are shared, not copied: the delta is one piece more.
        assert_eq!(data.pieces().len(), 2);
        assert!(data.pieces()[0].as_ptr() == base.data.pieces()[0].as_ptr());
        let data = data.contiguous().to_vec();
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
        // So a node that recovered such an image writes its next snapshot whole, in
        // the current encoding: a delta after it would not read back.
        let (mut from_v1, layout) = Kv::decode_snapshot(&v1).expect("decodes");
        from_v1.begin_changes();
        from_v1
            .apply(&cmd(0, 0, put("key5", json!(5))))
            .expect("applies");
        let base = SnapshotBase {
            data: v1.clone().into(),
            layout,
        };
        let next = next_snapshot(&mut from_v1, Some(base), "after a first-encoding image");
        assert_eq!(next.layout.deltas, 0);
        assert!(next.data.contiguous().starts_with(SNAPSHOT_MAGIC));
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
        assert_eq!(Kv::from_snapshot(&data.contiguous()), Ok(kv));
    }
}
