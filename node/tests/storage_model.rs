//! Random sequences of writes, truncations, snapshots, syncs, clean reopens and
//! crashes (the unsynced tail of the last segment cut at a random byte) against a
//! plain in-memory model of the log. After a crash the recovered state must be one
//! the model passed through since the last sync: nothing synced may be lost, and a
//! partial write may only be lost from its end.

use node::raft::types::{Entry, HardState, Index, Payload, Snapshot, SnapshotMeta, Term};
use node::storage::{PendingSync, Storage, StorageOptions};
use proptest::prelude::*;
use std::fs;
use std::path::{Path, PathBuf};

/// The model: the log after the snapshot, and the hard state.
#[derive(Clone, Debug, PartialEq)]
struct Model {
    snap: (Index, Term),
    entries: Vec<Entry>,
    hs: HardState,
}

impl Model {
    fn first(&self) -> Index {
        self.snap.0 + 1
    }
    fn last(&self) -> Index {
        self.snap.0 + self.entries.len() as Index
    }
    fn term_at(&self, i: Index) -> Option<Term> {
        if i == self.snap.0 {
            return Some(self.snap.1);
        }
        let k = i.checked_sub(self.first())?;
        self.entries.get(k as usize).map(|e| e.term)
    }
    fn last_term(&self) -> Term {
        self.term_at(self.last()).unwrap_or(0)
    }
    /// Raft §7, written independently of the storage code.
    fn install(&mut self, index: Index, term: Term) {
        if index <= self.snap.0 {
            return;
        }
        if self.term_at(index) == Some(term) {
            self.entries.retain(|e| e.index > index);
        } else {
            self.entries.clear();
        }
        self.snap = (index, term);
    }
}

#[derive(Clone, Debug)]
enum Op {
    Append {
        n: u64,
        bump: bool,
    },
    Rewrite {
        back: u64,
        n: u64,
    },
    Hard {
        vote: Option<u64>,
        commit_back: u64,
    },
    Snap {
        ahead: u64,
        conflict: bool,
    },
    Sync,
    /// `begin_sync` (if none is pending): the fsync is then left pending.
    Begin,
    /// `wait` + `finish_sync` of the pending sync, if any.
    Finish,
    Reopen,
    Crash {
        keep_permille: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1..6u64, any::<bool>()).prop_map(|(n, bump)| Op::Append { n, bump }),
        2 => (0..8u64, 0..4u64).prop_map(|(back, n)| Op::Rewrite { back, n }),
        2 => (proptest::option::of(1..4u64), 0..5u64).prop_map(|(vote, commit_back)| Op::Hard { vote, commit_back }),
        1 => (0..12u64, any::<bool>()).prop_map(|(ahead, conflict)| Op::Snap { ahead, conflict }),
        3 => Just(Op::Sync),
        2 => Just(Op::Begin),
        2 => Just(Op::Finish),
        1 => Just(Op::Reopen),
        1 => (0..1000u64).prop_map(|keep_permille| Op::Crash { keep_permille }),
    ]
}

fn entry(index: Index, term: Term) -> Entry {
    Entry {
        term,
        index,
        payload: Payload::Command(vec![index as u8; (index % 40) as usize]),
    }
}

fn opts() -> StorageOptions {
    StorageOptions {
        segment_max_bytes: 600,
        buffer_max_bytes: 300,
        ..StorageOptions::default()
    }
}

fn last_segment(dir: &Path) -> (PathBuf, u64) {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    v.sort();
    let p = v.pop().unwrap();
    let len = fs::metadata(&p).unwrap().len();
    (p, len)
}

/// Drives one storage and the model through `ops`.
struct Harness {
    dir: tempfile::TempDir,
    storage: Option<Storage>,
    /// A begun sync, the last segment right after it began, and the index in
    /// `candidates` of the state it makes durable (`None` once a full sync did).
    pending: Option<(PendingSync, (PathBuf, u64), Option<usize>)>,
    model: Model,
    /// States the model passed through since the last sync (first: the synced one).
    candidates: Vec<Model>,
    /// The last segment and its length at the last sync: bytes before are durable.
    synced: (PathBuf, u64),
    term: Term,
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Storage::open(dir.path(), opts()).unwrap();
        let model = Model {
            snap: (0, 0),
            entries: vec![],
            hs: HardState::default(),
        };
        let synced = last_segment(dir.path());
        Harness {
            dir,
            storage: Some(s),
            pending: None,
            candidates: vec![model.clone()],
            model,
            synced,
            term: 1,
        }
    }

    fn s(&mut self) -> &mut Storage {
        self.storage.as_mut().unwrap()
    }

    fn step(&mut self) {
        self.candidates.push(self.model.clone());
    }

    fn write(
        &mut self,
        snap: Option<Snapshot>,
        trunc: Option<Index>,
        es: Vec<Entry>,
        hs: Option<HardState>,
    ) {
        self.s()
            .write(snap.as_ref(), trunc, &es, hs.as_ref())
            .unwrap();
        if let Some(sn) = snap {
            self.model.install(sn.meta.last_index, sn.meta.last_term);
            self.step();
        }
        if let Some(from) = trunc {
            let first = self.model.first();
            self.model.entries.truncate((from - first) as usize);
            self.step();
        }
        for e in es {
            self.model.entries.push(e);
            self.step();
        }
        if let Some(h) = hs {
            self.model.hs = h;
            self.step();
        }
    }

    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Append { n, bump } => {
                if bump {
                    self.term += 1;
                }
                let from = self.model.last() + 1;
                let es = (from..from + n).map(|i| entry(i, self.term)).collect();
                self.write(None, None, es, None);
            }
            Op::Rewrite { back, n } => {
                self.term += 1;
                let from = self
                    .model
                    .last()
                    .saturating_sub(back)
                    .max(self.model.first())
                    // Committed entries are never truncated (Raft's log matching).
                    .max(self.model.hs.commit + 1);
                let es = (from..from + n).map(|i| entry(i, self.term)).collect();
                self.write(None, Some(from), es, None);
            }
            Op::Hard { vote, commit_back } => {
                let hs = HardState {
                    term: self.term,
                    vote,
                    commit: self.model.last().saturating_sub(commit_back),
                };
                self.write(None, None, vec![], Some(hs));
            }
            Op::Snap { ahead, conflict } => {
                let mut index = self.model.snap.0 + 1 + ahead;
                let term = match self.model.term_at(index) {
                    Some(t) if !conflict => t,
                    _ => {
                        // A snapshot that replaces the log covers what is committed.
                        index = index.max(self.model.hs.commit);
                        self.model.last_term() + 100
                    }
                };
                let snap = Snapshot {
                    meta: SnapshotMeta {
                        last_index: index,
                        last_term: term,
                        membership: Default::default(),
                    },
                    data: index.to_le_bytes().to_vec().into(),
                };
                self.write(Some(snap), None, vec![], None);
            }
            Op::Sync => {
                self.s().sync().unwrap();
                self.mark_synced();
            }
            Op::Begin => {
                if self.pending.is_none() {
                    let p = self.s().begin_sync().unwrap();
                    let at = last_segment(self.dir.path());
                    self.pending = Some((p, at, Some(self.candidates.len() - 1)));
                }
            }
            Op::Finish => {
                if let Some((p, at, marker)) = self.pending.take() {
                    let done = p.wait();
                    self.s().finish_sync(done).unwrap();
                    let now = last_segment(self.dir.path());
                    if now.0 != self.synced.0 {
                        // finish_sync rolled over: the new segment is whole and synced.
                        self.synced = now;
                    } else if at.0 == now.0 {
                        self.synced.1 = self.synced.1.max(at.1);
                    }
                    if let Some(i) = marker {
                        self.candidates.drain(..i);
                    }
                }
            }
            Op::Reopen => {
                self.pending = None;
                drop(self.storage.take());
                let expected = vec![self.model.clone()];
                self.reopen_expecting(&expected)?;
            }
            Op::Crash { keep_permille } => {
                self.pending = None;
                drop(self.storage.take());
                let (path, len) = last_segment(self.dir.path());
                let (synced_path, synced_len) = self.synced.clone();
                prop_assert_eq!(&path, &synced_path, "segments are only created by sync");
                let cut = synced_len + (len - synced_len) * keep_permille / 1000;
                let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
                f.set_len(cut).unwrap();
                drop(f);
                let candidates = std::mem::take(&mut self.candidates);
                self.reopen_expecting(&candidates)?;
            }
        }
        prop_assert_eq!(
            self.storage.as_ref().unwrap().first_index(),
            self.model.first()
        );
        prop_assert_eq!(
            self.storage.as_ref().unwrap().last_index(),
            self.model.last()
        );
        Ok(())
    }

    fn mark_synced(&mut self) {
        self.candidates = vec![self.model.clone()];
        if let Some((_, _, marker)) = &mut self.pending {
            *marker = None;
        }
        self.synced = last_segment(self.dir.path());
    }

    /// Reopens; the recovered state must equal one of `allowed`, each seen through
    /// the snapshot file that is on disk now (it is saved durably at `write`).
    fn reopen_expecting(&mut self, allowed: &[Model]) -> Result<(), TestCaseError> {
        let (s, r) = match Storage::open(self.dir.path(), opts()) {
            Ok(x) => x,
            Err(e) => return Err(TestCaseError::fail(format!("reopen failed: {e}"))),
        };
        let snap = r
            .snapshot
            .as_ref()
            .map_or((0, 0), |s| (s.meta.last_index, s.meta.last_term));
        let got = Model {
            snap,
            entries: r.entries,
            hs: r.hard_state,
        };
        let matched = allowed.iter().any(|m| {
            let mut m = m.clone();
            m.install(snap.0, snap.1);
            m == got
        });
        prop_assert!(matched, "recovered {:?}\nnot among {:?}", got, allowed);
        self.storage = Some(s);
        self.model = got;
        self.mark_synced();
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn storage_matches_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let mut h = Harness::new();
        for op in ops {
            h.apply(op)?;
        }
        drop(h.storage.take());
        let expected = vec![h.model.clone()];
        h.reopen_expecting(&expected)?;
    }
}
