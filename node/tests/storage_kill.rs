//! A writer process is killed with SIGKILL in the middle of its appends: every entry
//! it had synced (and reported) survives, the log is contiguous, and the lock it held
//! is released by its death. While it runs, a second open fails with its pid.

use node::raft::types::{Entry, Index, Payload};
use node::storage::{Storage, StorageError, StorageOptions};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

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
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "kill_child_writer",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_VAR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acknowledged = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("synced ") {
            acknowledged = n.parse::<Index>().unwrap();
            if acknowledged >= KILL_AFTER {
                break;
            }
        }
    }
    assert!(acknowledged >= KILL_AFTER, "the child stopped early");
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
