//! The client operations, for simulated and real runs alike: what an operation is
//! ([`Op`], its kind an [`OpKind`]) and which one comes next ([`Generator`]).
//!
//! Operations are reads, writes and compare-and-sets over a few keys named `k0`,
//! `k1`, ... Every value written is unique in the run, which keeps the history cheap
//! to check: a read names the one write it saw.

use checker::history::Function;
use node::kv::KvOp;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// What an operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Read,
    Write,
    Cas,
}

/// One operation on key `k<key>`.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Read {
        key: usize,
    },
    Write {
        key: usize,
        value: u64,
    },
    /// `from` is null for "the key is absent".
    Cas {
        key: usize,
        from: Value,
        to: u64,
    },
}

impl Op {
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Read { .. } => OpKind::Read,
            Op::Write { .. } => OpKind::Write,
            Op::Cas { .. } => OpKind::Cas,
        }
    }

    /// The history's `f`.
    pub fn function(&self) -> Function {
        match self {
            Op::Read { .. } => Function::Read,
            Op::Write { .. } => Function::Write,
            Op::Cas { .. } => Function::Cas,
        }
    }

    pub fn key(&self) -> usize {
        match self {
            Op::Read { key } | Op::Write { key, .. } | Op::Cas { key, .. } => *key,
        }
    }

    pub fn key_name(&self) -> String {
        key_name(self.key())
    }

    /// The invoke's value: null for a read, the value for a write, `[from, to]`
    /// for a cas.
    pub fn input(&self) -> Value {
        match self {
            Op::Read { .. } => Value::Null,
            Op::Write { value, .. } => json!(value),
            Op::Cas { from, to, .. } => json!([from, to]),
        }
    }

    /// The value the key holds once the operation took effect (`None` for a read).
    pub fn written(&self) -> Option<Value> {
        match self {
            Op::Read { .. } => None,
            Op::Write { value, .. } => Some(json!(value)),
            Op::Cas { to, .. } => Some(json!(to)),
        }
    }

    /// The operation as the key-value state machine takes it (linearizable reads).
    pub fn kv_op(&self) -> KvOp {
        let key = self.key_name();
        match self {
            Op::Read { .. } => KvOp::Get { key, stale: false },
            Op::Write { value, .. } => KvOp::Put {
                key,
                value: json!(value),
            },
            Op::Cas { from, to, .. } => KvOp::Cas {
                key,
                from: (!from.is_null()).then(|| from.clone()),
                to: json!(to),
            },
        }
    }
}

/// The name of key number `key`.
pub fn key_name(key: usize) -> String {
    format!("k{key}")
}

/// How often each kind is drawn, as weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    pub read: u32,
    pub write: u32,
    pub cas: u32,
}

impl Mix {
    /// The simulator's: as many reads as writes as cas.
    pub const EVEN: Mix = Mix {
        read: 1,
        write: 1,
        cas: 1,
    };
    /// A real run's: 40% reads, 35% writes, 25% cas.
    pub const READ_HEAVY: Mix = Mix {
        read: 40,
        write: 35,
        cas: 25,
    };
}

/// Draws operations from a seeded generator, hands out unique values, and remembers
/// each key's latest value (the last one it handed out, or one a client saw since),
/// so that a cas has a fair chance to match. Shared by the clients of a real run.
#[derive(Debug)]
pub struct Generator {
    keys: u64,
    mix: Mix,
    next_value: AtomicU64,
    latest: Mutex<Vec<Value>>,
}

impl Generator {
    pub fn new(keys: usize, mix: Mix) -> Generator {
        let keys = keys.max(1);
        Generator {
            keys: keys as u64,
            mix,
            next_value: AtomicU64::new(1),
            latest: Mutex::new(vec![Value::Null; keys]),
        }
    }

    pub fn keys(&self) -> usize {
        self.keys as usize
    }

    fn latest(&self) -> std::sync::MutexGuard<'_, Vec<Value>> {
        self.latest.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next operation: a key, then its kind by the mix, unless `force` says the
    /// kind (no roll is drawn then).
    pub fn next(&self, rng: &mut ChaCha8Rng, force: Option<OpKind>) -> Op {
        let key = rng.random_range(0..self.keys) as usize;
        let kind = force.unwrap_or_else(|| {
            let m = self.mix;
            let roll = rng.random_range(0..m.read + m.write + m.cas);
            if roll < m.read {
                OpKind::Read
            } else if roll < m.read + m.write {
                OpKind::Write
            } else {
                OpKind::Cas
            }
        });
        match kind {
            OpKind::Read => Op::Read { key },
            OpKind::Write => {
                let value = self.fresh_value();
                self.learn(key, json!(value));
                Op::Write { key, value }
            }
            OpKind::Cas => {
                let to = self.fresh_value();
                let from = std::mem::replace(&mut self.latest()[key], json!(to));
                Op::Cas { key, from, to }
            }
        }
    }

    fn fresh_value(&self) -> u64 {
        self.next_value.fetch_add(1, Ordering::Relaxed)
    }

    /// A client saw `key` hold `value`.
    pub fn learn(&self, key: usize, value: Value) {
        if let Some(slot) = self.latest().get_mut(key) {
            *slot = value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn written_values_are_unique_and_the_mix_is_seeded() {
        let g = Generator::new(4, Mix::READ_HEAVY);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let ops: Vec<Op> = (0..500).map(|_| g.next(&mut rng, None)).collect();
        let mut written: Vec<Value> = ops.iter().filter_map(Op::written).collect();
        let n = written.len();
        written.sort_by_key(|v| v.as_u64());
        written.dedup();
        assert_eq!(written.len(), n);
        for kind in [OpKind::Read, OpKind::Write, OpKind::Cas] {
            assert!(ops.iter().any(|o| o.kind() == kind), "{kind:?}");
        }
        let again = Generator::new(4, Mix::READ_HEAVY);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        assert!(ops.iter().all(|o| *o == again.next(&mut rng, None)));
        assert!((0..50).all(|_| g.next(&mut rng, Some(OpKind::Read)).kind() == OpKind::Read));
    }

    #[test]
    fn a_cas_starts_from_the_latest_value_of_its_key() {
        let g = Generator::new(1, Mix::EVEN);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let Op::Write { value, .. } = g.next(&mut rng, Some(OpKind::Write)) else {
            panic!("a write was forced");
        };
        let Op::Cas { from, to, .. } = g.next(&mut rng, Some(OpKind::Cas)) else {
            panic!("a cas was forced");
        };
        assert_eq!(from, json!(value));
        g.learn(0, json!("seen"));
        let Op::Cas { from, .. } = g.next(&mut rng, Some(OpKind::Cas)) else {
            panic!("a cas was forced");
        };
        assert_eq!(from, json!("seen"));
        assert_ne!(from, json!(to));
    }
}
