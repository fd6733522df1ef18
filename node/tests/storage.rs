//! Storage against real files and real fsync: reopen, truncation, torn tails,
//! corruption, the lock, snapshots with compaction, and segment rollover.

use node::raft::types::{Entry, HardState, Index, Payload, Snapshot, SnapshotMeta, Term};
use node::storage::{Pace, Storage, StorageError, StorageOptions};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

fn entry(index: Index, term: Term) -> Entry {
    Entry {
        term,
        index,
        payload: Payload::Command(format!("cmd-{index}-{term}").into_bytes()),
    }
}

fn entries(from: Index, to: Index, term: Term) -> Vec<Entry> {
    (from..=to).map(|i| entry(i, term)).collect()
}

fn open(dir: &Path) -> (Storage, node::raft::Recovered) {
    match Storage::open(dir, StorageOptions::default()) {
        Ok(x) => x,
        Err(e) => panic!("open failed: {e}"),
    }
}

fn small_segments() -> StorageOptions {
    StorageOptions {
        segment_max_bytes: 1024,
        ..StorageOptions::default()
    }
}

/// Segment files of `dir`, oldest first.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    v.sort();
    v
}

fn snapshot(last_index: Index, last_term: Term) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta {
            last_index,
            last_term,
            membership: Default::default(),
        },
        data: vec![42; 100].into(),
    }
}

#[test]
fn fresh_directory_recovers_empty() {
    let dir = tempfile::tempdir().unwrap();
    let (s, r) = open(dir.path());
    assert_eq!(r.hard_state, HardState::default());
    assert!(r.snapshot.is_none());
    assert!(r.entries.is_empty());
    assert_eq!((s.first_index(), s.last_index()), (1, 0));
}

#[test]
fn round_trip_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let hs = HardState {
        term: 3,
        vote: Some(2),
        commit: 7,
    };
    {
        let (mut s, _) = open(dir.path());
        s.write(None, None, &entries(1, 5, 1), None).unwrap();
        s.write(None, None, &entries(6, 10, 3), Some(&hs)).unwrap();
        s.sync().unwrap();
        assert_eq!(s.last_index(), 10);
        assert_eq!(s.fsync_stats().count, 1, "one fsync for both writes");
        s.close().unwrap();
    }
    let (s, r) = open(dir.path());
    assert_eq!(r.hard_state, hs);
    let mut want = entries(1, 5, 1);
    want.extend(entries(6, 10, 3));
    assert_eq!(r.entries, want);
    assert_eq!((s.first_index(), s.last_index()), (1, 10));
    assert_eq!(s.term(6), Some(3));
}

#[test]
fn truncate_then_append_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = open(dir.path());
        s.write(None, None, &entries(1, 10, 1), None).unwrap();
        s.sync().unwrap();
        s.write(None, Some(6), &entries(6, 8, 2), None).unwrap();
        s.sync().unwrap();
    }
    {
        let (mut s, r) = open(dir.path());
        let mut want = entries(1, 5, 1);
        want.extend(entries(6, 8, 2));
        assert_eq!(r.entries, want);
        // Truncating everything is allowed too.
        s.write(None, Some(1), &entries(1, 2, 4), None).unwrap();
        s.sync().unwrap();
    }
    let (_, r) = open(dir.path());
    assert_eq!(r.entries, entries(1, 2, 4));
}

#[test]
fn invalid_writes_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path());
    s.write(None, None, &entries(1, 3, 1), None).unwrap();
    let gap = s.write(None, None, &entries(5, 6, 1), None);
    assert!(matches!(gap, Err(StorageError::InvalidWrite(_))), "{gap:?}");
    let beyond = s.write(None, Some(9), &[], None);
    assert!(
        matches!(beyond, Err(StorageError::InvalidWrite(_))),
        "{beyond:?}"
    );
    assert_eq!(s.last_index(), 3);
    s.sync().unwrap();
    drop(s);
    let (_, r) = open(dir.path());
    assert_eq!(r.entries, entries(1, 3, 1));
}

#[test]
fn garbage_after_the_last_record_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = open(dir.path());
        s.write(None, None, &entries(1, 20, 1), None).unwrap();
        s.sync().unwrap();
    }
    let seg = segments(dir.path()).pop().unwrap();
    let good_len = fs::metadata(&seg).unwrap().len();
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&[0xA5; 37]).unwrap();
    drop(f);
    {
        let (mut s, r) = open(dir.path());
        assert_eq!(r.entries, entries(1, 20, 1));
        assert_eq!(
            fs::metadata(&seg).unwrap().len(),
            good_len,
            "file truncated"
        );
        s.write(None, None, &entries(21, 22, 1), None).unwrap();
        s.sync().unwrap();
    }
    let (_, r) = open(dir.path());
    assert_eq!(r.entries, entries(1, 22, 1));
}

#[test]
fn a_record_cut_midway_loses_only_that_record() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = open(dir.path());
        s.write(None, None, &entries(1, 20, 1), None).unwrap();
        s.sync().unwrap();
    }
    let seg = segments(dir.path()).pop().unwrap();
    let whole = fs::read(&seg).unwrap();
    // Every cut inside the last record (at least 9 bytes long) recovers 1..19.
    for cut in 1..9 {
        fs::write(&seg, &whole[..whole.len() - cut]).unwrap();
        let (_, r) = open(dir.path());
        assert_eq!(r.entries, entries(1, 19, 1), "cut {cut}");
    }
}

#[test]
fn a_corrupted_middle_record_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = open(dir.path());
        s.write(None, None, &entries(1, 20, 1), None).unwrap();
        s.sync().unwrap();
    }
    let seg = segments(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    fs::write(&seg, &bytes).unwrap();
    let err = Storage::open(dir.path(), StorageOptions::default())
        .err()
        .expect("must refuse");
    let msg = err.to_string();
    let name = seg.file_name().unwrap().to_string_lossy().to_string();
    assert!(matches!(err, StorageError::Corrupt { .. }), "{msg}");
    assert!(msg.contains(&name), "message names the file: {msg}");
    assert!(msg.contains("offset"), "message names the offset: {msg}");
}

#[test]
fn the_lock_prevents_a_second_open() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(dir.path());
    let err = Storage::open(dir.path(), StorageOptions::default())
        .err()
        .expect("locked");
    assert!(matches!(err, StorageError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("LOCK"), "{err}");
    assert!(
        err.to_string().contains(&std::process::id().to_string()),
        "{err}"
    );
    drop(s);
    let _ = open(dir.path());
}

#[test]
fn segments_roll_over_and_recover_in_order() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = synced_entries(dir.path(), 200);
        // A truncation reaching back across a segment boundary.
        s.write(None, Some(150), &entries(150, 160, 2), None)
            .unwrap();
        s.sync().unwrap();
        assert!(s.segment_count() > 3, "{} segments", s.segment_count());
    }
    assert!(segments(dir.path()).len() > 3);
    let (s, r) = Storage::open(dir.path(), small_segments()).unwrap();
    let mut want = entries(1, 149, 1);
    want.extend(entries(150, 160, 2));
    assert_eq!(r.entries, want);
    assert_eq!(s.last_index(), 160);
}

#[test]
fn a_missing_middle_segment_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(synced_entries(dir.path(), 100));
    let segs = segments(dir.path());
    assert!(segs.len() >= 3);
    fs::remove_file(&segs[1]).unwrap();
    let err = Storage::open(dir.path(), small_segments())
        .err()
        .expect("must refuse");
    assert!(matches!(err, StorageError::Inconsistent { .. }), "{err}");
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn snapshot_compacts_segments_and_recovers_with_its_tail() {
    let dir = tempfile::tempdir().unwrap();
    let hs = HardState {
        term: 1,
        vote: Some(1),
        commit: 150,
    };
    {
        let (mut s, _) = Storage::open(dir.path(), small_segments()).unwrap();
        for i in 1..=200 {
            let hs = HardState {
                commit: i.min(150),
                ..hs
            };
            s.write(None, None, &[entry(i, 1)], Some(&hs)).unwrap();
            s.sync().unwrap();
        }
        let before = s.segment_count();
        s.write(Some(&snapshot(150, 1)), None, &[], None).unwrap();
        s.sync().unwrap();
        assert!(
            s.segment_count() < before,
            "{} -> {}",
            before,
            s.segment_count()
        );
        assert_eq!((s.first_index(), s.last_index()), (151, 200));
    }
    let (s, r) = Storage::open(dir.path(), small_segments()).unwrap();
    assert_eq!(r.snapshot, Some(snapshot(150, 1)));
    assert_eq!(r.entries, entries(151, 200, 1));
    assert_eq!(r.hard_state, hs, "hard state survives compaction");
    assert_eq!(s.term(150), Some(1));
}

#[test]
fn a_snapshot_that_conflicts_with_the_log_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = open(dir.path());
        s.write(None, None, &entries(1, 10, 1), None).unwrap();
        s.sync().unwrap();
        // A leader's snapshot through 20 in term 3: the whole local log goes.
        s.write(Some(&snapshot(20, 3)), None, &entries(21, 22, 3), None)
            .unwrap();
        s.sync().unwrap();
        assert_eq!((s.first_index(), s.last_index()), (21, 22));
    }
    let (_, r) = open(dir.path());
    assert_eq!(r.snapshot.map(|s| s.meta.last_index), Some(20));
    assert_eq!(r.entries, entries(21, 22, 3));
}

#[test]
fn a_damaged_snapshot_file_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = open(dir.path());
        s.write(None, None, &entries(1, 10, 1), None).unwrap();
        s.write(Some(&snapshot(5, 1)), None, &[], None).unwrap();
        s.sync().unwrap();
    }
    let path = dir.path().join("snapshot");
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let err = Storage::open(dir.path(), StorageOptions::default())
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains("snapshot"), "{err}");
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
}

#[test]
fn unsynced_writes_reach_the_file_on_a_clean_drop() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = open(dir.path());
        s.write(None, None, &entries(1, 3, 1), None).unwrap();
    }
    let (_, r) = open(dir.path());
    assert_eq!(r.entries, entries(1, 3, 1));
}

#[test]
fn a_torn_record_in_an_older_segment_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(synced_entries(dir.path(), 100));
    let segs = segments(dir.path());
    assert!(segs.len() >= 2);
    let bytes = fs::read(&segs[0]).unwrap();
    fs::write(&segs[0], &bytes[..bytes.len() - 3]).unwrap();
    let err = Storage::open(dir.path(), small_segments())
        .err()
        .expect("must refuse");
    let name = segs[0].file_name().unwrap().to_string_lossy().to_string();
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains(&name), "{err}");
}

#[test]
fn leftover_temporary_files_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = open(dir.path());
        s.write(None, None, &entries(1, 3, 1), None).unwrap();
        s.sync().unwrap();
    }
    let junk = dir.path().join("snapshot.tmp");
    fs::write(&junk, b"half a snapshot").unwrap();
    let (_, r) = open(dir.path());
    assert!(!junk.exists());
    assert!(r.snapshot.is_none());
    assert_eq!(r.entries, entries(1, 3, 1));
}

#[test]
fn an_oversized_entry_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path());
    s.write(None, None, &entries(1, 2, 1), None).unwrap();
    let huge = Entry {
        term: 1,
        index: 3,
        payload: Payload::Command(vec![0; node::storage::MAX_RECORD_BYTES + 1]),
    };
    let err = s
        .write(None, None, &[entry(3, 1), huge], None)
        .expect_err("too large");
    assert!(matches!(err, StorageError::InvalidWrite(_)), "{err}");
    assert_eq!(s.last_index(), 2);
    s.write(None, None, &entries(3, 4, 1), None).unwrap();
    s.sync().unwrap();
    drop(s);
    let (_, r) = open(dir.path());
    assert_eq!(r.entries, entries(1, 4, 1));
}

#[test]
fn no_fsync_acknowledges_writes_that_are_only_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StorageOptions {
        no_fsync: true,
        ..StorageOptions::default()
    };
    let (mut s, _) = Storage::open(dir.path(), opts).unwrap();
    let seg = segments(dir.path()).pop().unwrap();
    let before = fs::metadata(&seg).unwrap().len();
    s.write(None, None, &entries(1, 5, 1), None).unwrap();
    s.sync().unwrap();
    assert_eq!(
        fs::metadata(&seg).unwrap().len(),
        before,
        "nothing reached the file"
    );
    assert_eq!(s.fsync_stats().count, 0);
    assert_eq!(s.last_index(), 5);
}

#[test]
fn storage_can_move_to_a_sync_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Storage>();
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path());
    s.write(None, None, &entries(1, 3, 1), None).unwrap();
    let s = std::thread::spawn(move || {
        s.sync().unwrap();
        s
    })
    .join()
    .unwrap();
    assert_eq!(s.fsync_stats().count, 1);
}

#[test]
fn a_damaged_hard_state_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let hs = HardState {
        term: 9,
        vote: Some(3),
        commit: 0,
    };
    {
        let (mut s, _) = open(dir.path());
        s.write(None, None, &[], Some(&hs)).unwrap();
        s.write(None, None, &entries(1, 3, 9), None).unwrap();
        s.sync().unwrap();
    }
    let seg = segments(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    // Header (28 bytes), the initial hard state record, then ours: flip its last byte.
    let initial = 8 + u32::from_le_bytes(bytes[28..32].try_into().unwrap()) as usize;
    let ours = 28 + initial;
    let ours_len = 8 + u32::from_le_bytes(bytes[ours..ours + 4].try_into().unwrap()) as usize;
    bytes[ours + ours_len - 1] ^= 0x01;
    fs::write(&seg, &bytes).unwrap();
    let err = Storage::open(dir.path(), StorageOptions::default())
        .err()
        .expect("must refuse");
    assert!(
        err.to_string().contains(&format!("offset {ours}")),
        "names the record's offset: {err}"
    );
}

#[test]
fn writes_during_an_inflight_sync_ride_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path());
    s.write(None, None, &entries(1, 2, 1), None).unwrap();
    let pending = s.begin_sync().unwrap();
    s.write(None, None, &entries(3, 4, 1), None).unwrap();
    let done = std::thread::spawn(move || pending.wait()).join().unwrap();
    s.finish_sync(done).unwrap();
    assert_eq!(s.fsync_stats().count, 1);
    s.sync().unwrap();
    assert_eq!(
        s.fsync_stats().count,
        2,
        "entries 3..4 needed their own fsync"
    );
    s.sync().unwrap();
    assert_eq!(s.fsync_stats().count, 2, "nothing new: no fsync");
    drop(s);
    let (_, r) = open(dir.path());
    assert_eq!(r.entries, entries(1, 4, 1));
}

/// Opens `dir` with small segments and writes entries 1..=n of term 1, each synced.
fn synced_entries(dir: &Path, n: Index) -> Storage {
    let (mut s, _) = Storage::open(dir, small_segments()).unwrap();
    for i in 1..=n {
        s.write(None, None, &[entry(i, 1)], None).unwrap();
        s.sync().unwrap();
    }
    s
}

#[test]
fn a_prepared_compaction_snapshot_is_put_in_place_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = synced_entries(dir.path(), 200);
        let before = s.segment_count();
        // The file is written while the log keeps taking writes.
        let p =
            Storage::prepare_snapshot(dir.path(), &snapshot(150, 1), None, false, Pace::default())
                .unwrap();
        s.write(None, None, &entries(201, 210, 1), None).unwrap();
        assert!(s.install_prepared(p).unwrap());
        s.sync().unwrap();
        assert!(s.segment_count() < before);
        assert_eq!((s.first_index(), s.last_index()), (151, 210));
    }
    let (_, r) = Storage::open(dir.path(), small_segments()).unwrap();
    assert_eq!(r.snapshot, Some(snapshot(150, 1)));
    assert_eq!(r.entries, entries(151, 210, 1));
}

#[test]
fn a_snapshot_file_written_in_paced_synced_pieces_reads_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut big = snapshot(150, 1);
    big.data = (0..300_000u32)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let pace = Pace {
        chunk_bytes: 4096,
        bytes_per_s: 0,
        sync_every_bytes: 16 << 10,
    };
    {
        let mut s = synced_entries(dir.path(), 200);
        let p = Storage::prepare_snapshot(dir.path(), &big, None, false, pace).unwrap();
        assert!(s.install_prepared(p).unwrap());
        s.sync().unwrap();
    }
    let (_, r) = Storage::open(dir.path(), small_segments()).unwrap();
    assert_eq!(r.snapshot, Some(big));
    assert_eq!(r.entries, entries(151, 200, 1));
}

#[test]
fn deferred_segment_deletion_leaves_the_files_to_the_caller_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StorageOptions {
        defer_segment_deletion: true,
        ..small_segments()
    };
    let on_disk_before;
    {
        let (mut s, _) = Storage::open(dir.path(), opts.clone()).unwrap();
        for i in 1..=200 {
            s.write(None, None, &[entry(i, 1)], None).unwrap();
            s.sync().unwrap();
        }
        on_disk_before = segments(dir.path());
        s.write(Some(&snapshot(150, 1)), None, &[], None).unwrap();
        s.sync().unwrap();
        let obsolete = s.take_obsolete();
        assert!(!obsolete.is_empty(), "the snapshot covers whole segments");
        // Still on disk: the log let go of them, the files are the caller's.
        assert_eq!(segments(dir.path()), on_disk_before);
        assert_eq!(obsolete, on_disk_before[..obsolete.len()].to_vec());
        assert!(s.take_obsolete().is_empty(), "handed out once");
        drop(s);
        // A crash here leaves them: recovery replays past them as before.
        let (_, r) = Storage::open(dir.path(), small_segments()).unwrap();
        assert_eq!(r.snapshot, Some(snapshot(150, 1)));
        assert_eq!(r.entries, entries(151, 200, 1));
        node::storage::delete_segments(dir.path(), &obsolete, false).unwrap();
        assert_eq!(
            segments(dir.path()),
            on_disk_before[obsolete.len()..].to_vec()
        );
    }
    let (_, r) = Storage::open(dir.path(), opts).unwrap();
    assert_eq!(r.snapshot, Some(snapshot(150, 1)));
    assert_eq!(r.entries, entries(151, 200, 1));
}

#[test]
fn a_prepared_snapshot_overtaken_by_a_newer_one_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = synced_entries(dir.path(), 200);
        let old =
            Storage::prepare_snapshot(dir.path(), &snapshot(100, 1), None, false, Pace::default())
                .unwrap();
        // A newer snapshot (from a leader) lands first.
        s.write(Some(&snapshot(150, 1)), None, &[], None).unwrap();
        assert!(!s.install_prepared(old).unwrap());
        s.sync().unwrap();
        assert_eq!(s.first_index(), 151);
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let (_, r) = Storage::open(dir.path(), small_segments()).unwrap();
    assert_eq!(r.snapshot, Some(snapshot(150, 1)));
}

#[test]
fn a_crash_before_a_prepared_snapshot_is_placed_recovers_the_whole_log() {
    let dir = tempfile::tempdir().unwrap();
    {
        let _s = synced_entries(dir.path(), 200);
        let _p =
            Storage::prepare_snapshot(dir.path(), &snapshot(150, 1), None, false, Pace::default())
                .unwrap();
        // Dropped here without install_prepared: as if the process died.
    }
    let (_, r) = Storage::open(dir.path(), small_segments()).unwrap();
    assert_eq!(r.snapshot, None);
    assert_eq!(r.entries, entries(1, 200, 1));
    assert!(
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .all(|e| !e.file_name().to_string_lossy().ends_with(".tmp")),
        "the unplaced file is removed at open"
    );
}

fn identity(incarnation: u64) -> node::raft::types::Identity {
    node::raft::types::Identity {
        cluster: 7,
        incarnation,
        bootstrap: Default::default(),
    }
}

/// The identity is written before anything else and every new segment starts with
/// it, so neither rollover nor compaction (which deletes old segments) loses it.
#[test]
fn the_identity_survives_rollover_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut s, r) = Storage::open(dir.path(), small_segments()).unwrap();
        assert_eq!(r.identity, None);
        s.write_identity(&identity(41)).unwrap();
        s.sync().unwrap();
        for i in 1..=200 {
            s.write(None, None, &[entry(i, 1)], None).unwrap();
            s.sync().unwrap();
        }
        let before = s.segment_count();
        s.write(Some(&snapshot(190, 1)), None, &[], None).unwrap();
        s.sync().unwrap();
        assert!(s.segment_count() < before, "compaction deleted no segment");
    }
    let (_, r) = Storage::open(dir.path(), small_segments()).unwrap();
    assert_eq!(r.identity, Some(identity(41)));
    assert_eq!(r.entries, entries(191, 200, 1));
}

/// A snapshot without the write-ahead log (the segments were deleted) is lost
/// state, not an empty log after the snapshot: no identity, no term or vote, and the
/// snapshot (committed state only) kept.
#[test]
fn a_snapshot_without_its_log_is_lost_state() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = synced_entries(dir.path(), 0);
        s.write_identity(&identity(42)).unwrap();
        let hs = HardState {
            term: 5,
            vote: Some(2),
            commit: 20,
        };
        s.write(None, None, &entries(1, 30, 5), Some(&hs)).unwrap();
        s.write(Some(&snapshot(20, 5)), None, &[], None).unwrap();
        s.sync().unwrap();
    }
    for seg in segments(dir.path()) {
        fs::remove_file(seg).unwrap();
    }
    let (s, r) = open(dir.path());
    assert_eq!(r.identity, None);
    assert_eq!(r.hard_state, HardState::default());
    assert_eq!(r.snapshot, Some(snapshot(20, 5)));
    assert!(r.entries.is_empty());
    assert_eq!(s.first_index(), 21);
}

/// A segment cut back to its header holds not even the hard-state record every
/// segment starts with: lost state, whether it is the only segment or the last.
#[test]
fn a_segment_cut_back_to_its_header_is_lost_state() {
    for cut_last_of_many in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = synced_entries(dir.path(), 0);
            s.write_identity(&identity(43)).unwrap();
            let n = if cut_last_of_many { 200 } else { 5 };
            for i in 1..=n {
                s.write(None, None, &[entry(i, 3)], None).unwrap();
                s.sync().unwrap();
            }
        }
        let segs = segments(dir.path());
        assert_eq!(segs.len() > 1, cut_last_of_many);
        let last = segs.last().unwrap();
        OpenOptions::new()
            .write(true)
            .open(last)
            .unwrap()
            .set_len(28)
            .unwrap();
        let (_, r) = Storage::open(dir.path(), small_segments()).unwrap();
        assert_eq!(r.identity, None, "cut last of many: {cut_last_of_many}");
        assert!(r.entries.is_empty());
        assert_eq!(r.hard_state, HardState::default());
        // The log starts over and the next open finds it whole.
        drop(r);
        let (_, again) = Storage::open(dir.path(), small_segments()).unwrap();
        assert_eq!(again.identity, None);
        assert!(again.entries.is_empty());
    }
}

/// A snapshot through `last_index` whose state-machine bytes are `data`.
fn snapshot_of(last_index: Index, data: &[u8]) -> Snapshot {
    Snapshot {
        data: data.to_vec().into(),
        ..snapshot(last_index, 1)
    }
}

/// Prepares `snap` as the driver's compaction thread does (as a delta when it
/// extends what the files hold) and puts it in place.
fn compact(s: &mut Storage, dir: &Path, snap: &Snapshot) -> bool {
    let saved = s.saved_snapshot().get();
    let p = Storage::prepare_snapshot(dir, snap, saved.as_ref(), false, Pace::default()).unwrap();
    s.install_prepared(p).unwrap()
}

/// Delta files in `dir`.
fn deltas(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.to_string_lossy();
            name.contains("snapshot-delta-") && !name.ends_with(".tmp")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_snapshot_extending_the_saved_one_is_saved_as_a_delta_and_recovered_whole() {
    let dir = tempfile::tempdir().unwrap();
    let image = vec![7u8; 50_000];
    let mut two = image.clone();
    two.extend_from_slice(b"first delta");
    let mut three = two.clone();
    three.extend_from_slice(b"second delta");
    {
        let mut s = synced_entries(dir.path(), 200);
        assert!(compact(&mut s, dir.path(), &snapshot_of(100, &image)));
        let whole_len = fs::metadata(dir.path().join("snapshot")).unwrap().len();
        assert!(compact(&mut s, dir.path(), &snapshot_of(150, &two)));
        assert!(compact(&mut s, dir.path(), &snapshot_of(180, &three)));
        s.sync().unwrap();
        assert_eq!(s.first_index(), 181);
        // The whole file is untouched; each delta holds about what it adds.
        assert_eq!(
            fs::metadata(dir.path().join("snapshot")).unwrap().len(),
            whole_len
        );
        let d = deltas(dir.path());
        assert_eq!(d.len(), 2, "{d:?}");
        for p in &d {
            assert!(fs::metadata(p).unwrap().len() < 200, "{}", p.display());
        }
    }
    let (s, r) = Storage::open(dir.path(), small_segments()).unwrap();
    assert_eq!(r.snapshot, Some(snapshot_of(180, &three)));
    assert_eq!(r.entries, entries(181, 200, 1));
    // The saved bytes go on as the base of the next delta.
    assert_eq!(
        s.saved_snapshot().get().map(|x| x.data),
        Some(three.clone().into())
    );
    drop(s);

    // A snapshot that does not extend them is written whole and ends the chain.
    {
        let (mut s, _) = Storage::open(dir.path(), small_segments()).unwrap();
        s.write(None, None, &entries(201, 220, 1), None).unwrap();
        s.sync().unwrap();
        assert!(compact(&mut s, dir.path(), &snapshot_of(210, b"other")));
        s.sync().unwrap();
        assert!(deltas(dir.path()).is_empty());
    }
    let (_, r) = Storage::open(dir.path(), small_segments()).unwrap();
    assert_eq!(r.snapshot, Some(snapshot_of(210, b"other")));
    assert_eq!(r.entries, entries(211, 220, 1));
}

#[test]
fn a_lost_delta_file_stops_recovery_instead_of_losing_entries() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = synced_entries(dir.path(), 200);
        assert!(compact(&mut s, dir.path(), &snapshot_of(100, &[1; 1000])));
        let mut more = vec![1; 1000];
        more.push(2);
        assert!(compact(&mut s, dir.path(), &snapshot_of(180, &more)));
        s.sync().unwrap();
        assert_eq!(
            s.first_index(),
            181,
            "entries through 180 are gone from the log"
        );
    }
    for p in deltas(dir.path()) {
        fs::remove_file(p).unwrap();
    }
    let err = Storage::open(dir.path(), small_segments()).err();
    assert!(
        matches!(
            err,
            Some(StorageError::Inconsistent { .. } | StorageError::Corrupt { .. })
        ),
        "{err:?}"
    );
}

#[test]
fn a_damaged_delta_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = synced_entries(dir.path(), 200);
        assert!(compact(&mut s, dir.path(), &snapshot_of(100, &[1; 1000])));
        let mut more = vec![1; 1000];
        more.extend_from_slice(&[3; 100]);
        assert!(compact(&mut s, dir.path(), &snapshot_of(150, &more)));
        s.sync().unwrap();
    }
    let d = deltas(dir.path());
    let mut bytes = fs::read(&d[0]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&d[0], bytes).unwrap();
    match Storage::open(dir.path(), small_segments()) {
        Err(StorageError::Corrupt { path, .. }) => assert_eq!(path, d[0]),
        other => panic!("expected a corrupt delta, got {:?}", other.err()),
    }
}

#[test]
fn deltas_of_a_replaced_snapshot_are_dropped_placed_or_left_over() {
    let dir = tempfile::tempdir().unwrap();
    let image = vec![5u8; 2000];
    let mut extended = image.clone();
    extended.push(6);
    let kept;
    {
        let mut s = synced_entries(dir.path(), 200);
        assert!(compact(&mut s, dir.path(), &snapshot_of(100, &image)));
        assert!(compact(&mut s, dir.path(), &snapshot_of(120, &extended)));
        kept = deltas(dir.path());
        let copy: Vec<_> = kept.iter().map(|p| fs::read(p).unwrap()).collect();
        // A delta prepared against these files...
        let mut later = extended.clone();
        later.push(7);
        let saved = s.saved_snapshot().get();
        let p = Storage::prepare_snapshot(
            dir.path(),
            &snapshot_of(170, &later),
            saved.as_ref(),
            false,
            Pace::default(),
        )
        .unwrap();
        // ...is dropped when a snapshot from the leader replaces them first.
        s.write(Some(&snapshot_of(150, b"leader's")), None, &[], None)
            .unwrap();
        assert!(deltas(dir.path()).is_empty(), "the new base ends the chain");
        assert!(!s.install_prepared(p).unwrap());
        s.sync().unwrap();
        // As if a crash came before the old deltas' deletion reached the disk.
        for (p, b) in kept.iter().zip(copy) {
            fs::write(p, b).unwrap();
        }
    }
    let (_, r) = Storage::open(dir.path(), small_segments()).unwrap();
    assert_eq!(r.snapshot, Some(snapshot_of(150, b"leader's")));
    assert_eq!(r.entries, entries(151, 200, 1));
    assert!(
        deltas(dir.path()).is_empty(),
        "left-over deltas removed at open"
    );
}
