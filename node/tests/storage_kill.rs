//! A writer process is killed with SIGKILL in the middle of its appends: every entry
//! it had synced (and reported) survives, the log is contiguous, and the lock it held
//! is released by its death. While it runs, a second open fails with its pid.

use node::raft::types::{Entry, Index, Payload};
use node::storage::{Storage, StorageError, StorageOptions};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const DIR_VAR: &str = "LINKV_STORAGE_KILL_DIR";
/// The child stops by itself after this many entries if nobody kills it.
const CHILD_MAX_ENTRIES: Index = 20_000;
/// The parent kills the child once it has reported this many synced entries.
const KILL_AFTER: Index = 50;

fn entry(index: Index) -> Entry {
    Entry {
        term: 1,
        index,
        payload: Payload::Command(format!("value-{index}").into_bytes()),
    }
}

/// Starts the ignored test `child` of this binary with `dir` in `var`, and reads its
/// "synced N" lines until it has acknowledged `kill_after`. Returns the running
/// child (for the caller to inspect, then kill) and the last number it acknowledged.
fn start_child_until(
    child: &str,
    var: &str,
    dir: &std::path::Path,
    kill_after: u64,
) -> (Child, u64) {
    let exe = std::env::current_exe().unwrap();
    let mut proc = Command::new(exe)
        .args([
            child,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(var, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = proc.stdout.take().unwrap();
    let mut acknowledged = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("synced ") {
            acknowledged = n.parse::<u64>().unwrap();
            if acknowledged >= kill_after {
                break;
            }
        }
    }
    assert!(acknowledged >= kill_after, "the child stopped early");
    (proc, acknowledged)
}

/// The child process: appends and syncs one entry at a time, printing each index
/// once `sync` returned. Run only by `sigkill_keeps_every_synced_entry`.
#[test]
#[ignore = "helper process started by sigkill_keeps_every_synced_entry"]
fn kill_child_writer() {
    let dir = std::env::var(DIR_VAR).expect("run by the parent test");
    let (mut s, r) = Storage::open(std::path::Path::new(&dir), StorageOptions::default()).unwrap();
    assert!(r.entries.is_empty());
    for i in 1..=CHILD_MAX_ENTRIES {
        s.write(None, None, &[entry(i)], None).unwrap();
        s.sync().unwrap();
        println!("synced {i}");
    }
}

#[test]
fn sigkill_keeps_every_synced_entry() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, acknowledged) =
        start_child_until("kill_child_writer", DIR_VAR, dir.path(), KILL_AFTER);
    match Storage::open(dir.path(), StorageOptions::default()) {
        Err(StorageError::Locked { holder, .. }) => {
            assert_eq!(holder, format!(" by pid {}", child.id()));
        }
        Err(e) => panic!("expected the lock error, got {e}"),
        Ok(_) => panic!("opened a directory another process holds"),
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let (s, r) = Storage::open(dir.path(), StorageOptions::default()).unwrap();
    assert!(
        r.entries.len() as Index >= acknowledged,
        "{} entries recovered, {acknowledged} were acknowledged",
        r.entries.len()
    );
    let want: Vec<Entry> = (1..=r.entries.len() as Index).map(entry).collect();
    assert_eq!(r.entries, want);
    assert_eq!(s.last_index(), r.entries.len() as Index);
}

const PAXOS_DIR_VAR: &str = "LINKV_PAXOS_KILL_DIR";
/// The Paxos child saves a snapshot (with one record) every this many writes.
const PAXOS_SNAPSHOT_EVERY: u64 = 64;

/// What the Paxos child writes at `seq`: one chosen value per slot.
fn paxos_record(seq: u64) -> node::paxos::multi::Record {
    node::paxos::multi::Record::Chosen {
        slot: seq,
        value: node::paxos::Value::Command(format!("value-{seq}").into_bytes()),
    }
}

/// The Paxos child: one write and one sync at a time, a snapshot (which replaces
/// every earlier record) every `PAXOS_SNAPSHOT_EVERY` writes, printing each `seq`
/// once `sync` returned. Run only by `sigkill_keeps_every_synced_paxos_write`.
#[test]
#[ignore = "helper process started by sigkill_keeps_every_synced_paxos_write"]
fn kill_child_paxos_writer() {
    use node::paxos::{Snapshot, Write};
    use node::storage::paxos::PaxosLog;
    let dir = std::env::var(PAXOS_DIR_VAR).expect("run by the parent test");
    let (mut log, r) =
        PaxosLog::open(std::path::Path::new(&dir), StorageOptions::default()).unwrap();
    assert!(r.records.is_empty() && r.snapshot.is_none());
    for seq in 1..=CHILD_MAX_ENTRIES {
        let snapshot = seq.is_multiple_of(PAXOS_SNAPSHOT_EVERY).then(|| Snapshot {
            last_slot: seq - 1,
            data: format!("through-{}", seq - 1).into_bytes(),
        });
        log.write(&Write {
            seq,
            snapshot,
            records: vec![paxos_record(seq)],
        })
        .unwrap();
        log.sync().unwrap();
        println!("synced {seq}");
    }
}

#[test]
fn sigkill_keeps_every_synced_paxos_write() {
    use node::storage::paxos::PaxosLog;
    let dir = tempfile::tempdir().unwrap();
    // Past a few snapshots, so the kill may land on any step of one.
    let kill_after = 3 * PAXOS_SNAPSHOT_EVERY + 17;
    let (mut child, acknowledged) = start_child_until(
        "kill_child_paxos_writer",
        PAXOS_DIR_VAR,
        dir.path(),
        kill_after,
    );
    child.kill().unwrap();
    child.wait().unwrap();

    let (_, r) =
        PaxosLog::<node::paxos::multi::Record>::open(dir.path(), StorageOptions::default())
            .unwrap();
    // The newest snapshot and every record after it, in order, through at least
    // the last acknowledged write.
    let snap = r.snapshot.expect("a snapshot was saved");
    let first = snap.last_slot + 1;
    assert_eq!(
        snap.data,
        format!("through-{}", snap.last_slot).into_bytes()
    );
    let want: Vec<_> = (first..first + r.records.len() as u64)
        .map(paxos_record)
        .collect();
    assert_eq!(r.records, want);
    assert!(
        snap.last_slot + r.records.len() as u64 >= acknowledged,
        "recovered through {}, {acknowledged} were acknowledged",
        snap.last_slot + r.records.len() as u64
    );
}
