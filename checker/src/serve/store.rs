//! The checks the service knows, in memory and on disk.
//!
//! Each check lives in `DATA/<id>/`: `history` (the body as received), `check.json`
//! (a [`Record`]: state, options, times, the verdict's summary), `verdict.json` (what
//! `checker check --json` prints) and `report/report.html`. Memory holds only the
//! records; verdicts and reports are read from disk when asked for, so the service's
//! memory does not grow with the size of the verdicts it keeps.
//!
//! `check.json` is replaced atomically (write, then rename), so a service killed at any
//! point leaves either the old or the new record. At start the records are loaded
//! again, and the checks that were queued or running are queued again, oldest first:
//! a check accepted is never lost. One that was cut off [`MAX_RUNS`] times (a history
//! that kills the service, say) ends in "error" instead of stopping it forever.

use super::clock;
use super::params::Params;
use checker::verdict::Validity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

pub const RECORD_FILE: &str = "check.json";
pub const HISTORY_FILE: &str = "history";
pub const VERDICT_FILE: &str = "verdict.json";
pub const REPORT_DIR: &str = "report";
/// Attempts at a fresh id before giving up (ids collide only across restarts within
/// one second).
const ID_ATTEMPTS: u32 = 1000;
/// Starts of one check before it is given up: a check that was running when the
/// service stopped this many times ends in "error".
pub const MAX_RUNS: u32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Queued,
    Running,
    Done,
    Error,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Done => "done",
            State::Error => "error",
        }
    }

    pub fn finished(self) -> bool {
        matches!(self, State::Done | State::Error)
    }
}

/// One check, as `check.json` holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub state: State,
    #[serde(flatten)]
    pub params: Params,
    pub created: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    pub body_bytes: u64,
    /// Why the check ended in "error" (the parser's file, line and reason).
    pub error: Option<String>,
    /// The verdict, once done.
    pub valid: Option<Validity>,
    pub ops: Option<usize>,
    pub check_s: Option<f64>,
    /// The verdict stands, but the report could not be written.
    pub report_error: Option<String>,
    /// How many times the check was started (more than once after a restart).
    #[serde(default)]
    pub runs: u32,
}

impl Record {
    /// A check just accepted: queued, not run yet.
    pub fn queued(id: String, params: Params, created: String, body_bytes: u64) -> Record {
        Record {
            id,
            state: State::Queued,
            params,
            created,
            started: None,
            finished: None,
            body_bytes,
            error: None,
            valid: None,
            ops: None,
            check_s: None,
            report_error: None,
            runs: 0,
        }
    }
}

/// Every known check, by id (ids sort in creation order).
pub struct Store {
    dir: PathBuf,
    /// A std mutex: it is held for map operations only, never across an await or I/O.
    records: Mutex<BTreeMap<String, Record>>,
    counter: AtomicU64,
    /// Finished checks kept; older ones are deleted from disk.
    keep: usize,
}

impl Store {
    /// Opens `dir` (creating it) and loads every check found there; returns the store,
    /// the ids of the checks to run again (oldest first), and one line per folder that
    /// could not be read, for the log.
    pub fn open(dir: &Path, keep: usize) -> anyhow::Result<(Store, Vec<String>, Vec<String>)> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("--data {}: {e}", dir.display()))?;
        let mut records = BTreeMap::new();
        let mut problems = Vec::new();
        let entries =
            std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("--data {}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| anyhow::anyhow!("--data {}: {e}", dir.display()))?;
            let path = entry.path().join(RECORD_FILE);
            if !entry.path().is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if !path.exists() && looks_like_id(&name) {
                // An upload cut short by a stop: the record is written only after the
                // whole body, so nothing refers to this folder.
                if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                    problems.push(format!("removing {}: {e}", entry.path().display()));
                }
                continue;
            }
            let rec = match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Record>(&b).map_err(|e| e.to_string()))
            {
                Ok(r) => r,
                Err(e) => {
                    problems.push(format!("skipping {}: {e}", path.display()));
                    continue;
                }
            };
            if entry.file_name().to_str() != Some(rec.id.as_str()) {
                problems.push(format!("skipping {}: id {:?}", path.display(), rec.id));
                continue;
            }
            records.insert(rec.id.clone(), rec);
        }
        let store = Store {
            dir: dir.to_path_buf(),
            records: Mutex::new(records),
            counter: AtomicU64::new(0),
            keep,
        };
        let unfinished: Vec<Record> = store
            .lock()
            .values_mut()
            .filter(|r| !r.state.finished())
            .map(|r| {
                if r.runs >= MAX_RUNS {
                    r.state = State::Error;
                    r.error = Some(format!(
                        "interrupted: the service stopped during each of the {} runs of this check",
                        r.runs
                    ));
                    r.finished = Some(clock::now());
                } else {
                    r.state = State::Queued;
                    r.started = None;
                }
                r.clone()
            })
            .collect();
        let mut resume = Vec::new();
        for r in &unfinished {
            if let Err(e) = store.write_record(r) {
                problems.push(e);
            }
            if r.state == State::Queued {
                resume.push(r.id.clone());
            }
        }
        problems.extend(store.prune());
        Ok((store, resume, problems))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Record>> {
        // A poisoned lock only means a panic elsewhere; the map itself stays usable.
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn check_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Reserves a fresh id by creating its folder; the record is added by [`insert`]
    /// once the body is stored.
    ///
    /// [`insert`]: Store::insert
    pub fn reserve(&self) -> Result<(String, PathBuf), String> {
        let stamp = clock::now_compact();
        for _ in 0..ID_ATTEMPTS {
            let n = self.counter.fetch_add(1, Ordering::Relaxed);
            let id = format!("{stamp}-{n:06}");
            let dir = self.check_dir(&id);
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok((id, dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("creating {}: {e}", dir.display())),
            }
        }
        Err("no free check id".to_string())
    }

    /// Forgets a reserved or stored check and deletes its folder.
    pub fn discard(&self, id: &str) {
        self.lock().remove(id);
        let _ = std::fs::remove_dir_all(self.check_dir(id));
    }

    /// Adds a new record and writes its `check.json`.
    pub fn insert(&self, rec: Record) -> Result<(), String> {
        self.write_record(&rec)?;
        self.lock().insert(rec.id.clone(), rec);
        Ok(())
    }

    /// Changes a record and writes it; returns the new record.
    pub fn update(&self, id: &str, f: impl FnOnce(&mut Record)) -> Result<Record, String> {
        let rec = {
            let mut map = self.lock();
            let rec = map
                .get_mut(id)
                .ok_or_else(|| format!("check {id} is gone"))?;
            f(rec);
            rec.clone()
        };
        self.write_record(&rec)?;
        Ok(rec)
    }

    pub fn get(&self, id: &str) -> Option<Record> {
        self.lock().get(id).cloned()
    }

    /// The newest `limit` records, newest first.
    pub fn recent(&self, limit: usize) -> Vec<Record> {
        self.lock().values().rev().take(limit).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// How many checks are in each state: queued, running, done, error.
    pub fn state_counts(&self) -> [(State, usize); 4] {
        let mut c = [
            (State::Queued, 0),
            (State::Running, 0),
            (State::Done, 0),
            (State::Error, 0),
        ];
        for r in self.lock().values() {
            if let Some(slot) = c.iter_mut().find(|(s, _)| *s == r.state) {
                slot.1 += 1;
            }
        }
        c
    }

    /// How many done checks have each verdict: true, false, unknown.
    pub fn verdict_counts(&self) -> [(Validity, usize); 3] {
        let mut c = [
            (Validity::Linearizable, 0),
            (Validity::NotLinearizable, 0),
            (Validity::Unknown, 0),
        ];
        for v in self.lock().values().filter_map(|r| r.valid) {
            if let Some(slot) = c.iter_mut().find(|(s, _)| *s == v) {
                slot.1 += 1;
            }
        }
        c
    }

    /// Deletes the oldest finished checks beyond `keep`; returns problems for the log.
    pub fn prune(&self) -> Vec<String> {
        let doomed: Vec<String> = {
            let mut map = self.lock();
            let finished: Vec<String> = map
                .values()
                .filter(|r| r.state.finished())
                .map(|r| r.id.clone())
                .collect();
            let excess = finished.len().saturating_sub(self.keep);
            let doomed: Vec<String> = finished.into_iter().take(excess).collect();
            for id in &doomed {
                map.remove(id);
            }
            doomed
        };
        doomed
            .iter()
            .filter_map(|id| {
                std::fs::remove_dir_all(self.check_dir(id))
                    .err()
                    .map(|e| format!("deleting old check {id}: {e}"))
            })
            .collect()
    }

    fn write_record(&self, rec: &Record) -> Result<(), String> {
        let dir = self.check_dir(&rec.id);
        let bytes = serde_json::to_vec_pretty(rec).map_err(|e| e.to_string())?;
        write_atomic(&dir.join(RECORD_FILE), &bytes)
    }
}

/// Whether a folder name has the form of the ids [`Store::reserve`] makes
/// (`20261126T031026Z-000001`).
fn looks_like_id(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 18
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[16] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| matches!(i, 8 | 15 | 16) || c.is_ascii_digit())
}

/// Writes `path` through a temporary file and a rename, so readers (and a restart)
/// never see half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("renaming {}: {e}", tmp.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, state: State) -> Record {
        let params = Params::from_query(None, 60.0).unwrap();
        Record {
            state,
            ..Record::queued(id.to_string(), params, "2026-01-01T00:00:00Z".into(), 0)
        }
    }

    #[test]
    fn reopen_queues_unfinished_checks_again_and_prunes() {
        let tmp = tempfile::tempdir().unwrap();
        let mut ids = Vec::new();
        {
            let (store, resume, problems) = Store::open(tmp.path(), 2).unwrap();
            assert!(problems.is_empty() && resume.is_empty());
            for (state, runs) in [
                (State::Done, 1),
                (State::Done, 1),
                (State::Error, 1),
                (State::Running, 1),
                (State::Queued, 0),
                (State::Running, MAX_RUNS),
            ] {
                let (id, _) = store.reserve().unwrap();
                store
                    .insert(Record {
                        runs,
                        ..record(&id, state)
                    })
                    .unwrap();
                ids.push(id);
            }
            // A folder of ours without a record is an upload cut short: removed.
            std::fs::create_dir(tmp.path().join("20260101T000000Z-000099")).unwrap();
            // Any other folder without a record is skipped, not fatal.
            std::fs::create_dir(tmp.path().join("stray")).unwrap();
        }
        let (store, resume, problems) = Store::open(tmp.path(), 2).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        // The running and the queued check run again, oldest first.
        assert_eq!(resume, [ids[3].clone(), ids[4].clone()]);
        for id in &resume {
            let r = store.get(id).unwrap();
            assert_eq!(r.state, State::Queued);
            assert_eq!(r.started, None);
        }
        // One cut off in each of its runs is given up.
        let given_up = store.get(&ids[5]).unwrap();
        assert_eq!(given_up.state, State::Error);
        assert!(given_up.error.as_deref().unwrap().contains("interrupted"));
        // Two finished checks are kept (the given-up one and the newest before it).
        let left = store.recent(10);
        assert_eq!(left.len(), 4, "{left:?}");
        assert!(left[0].id > left[1].id, "newest first");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 5);
        assert!(looks_like_id(&left[0].id));
        assert!(!looks_like_id("stray") && !looks_like_id("20260101T000000Z-00a001"));
    }
}
