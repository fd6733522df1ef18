//! How snapshots and recovery cost grows with the state: prints one table.
//!
//!   cargo bench -p node --bench snapshot                       # 1e5, 1e6, 1e7 keys
//!   cargo bench -p node --bench snapshot -- --keys 100000,1000000 --value-bytes 64
//!   cargo bench -p node --bench snapshot -- --recovery 1000000 # + 1e6 log entries
//!
//! Snapshot rows: the time to serialize the state machine the way the node does (on
//! the paced writer, into memory) and to write the snapshot file (streamed, synced,
//! as the node writes it), and the process's peak resident memory (VmHWM) before and
//! after, so `extra` is what taking the snapshot cost on top of holding the state.
//! Each size runs in a child process of its own so the peaks do not mix. Then
//! 10,000 of the keys are overwritten and the next snapshot is taken the way the
//! node takes it after them: the previous bytes plus a delta (`delta s`: building
//! those bytes, which shares the previous ones' pieces; `delta write s`: writing
//! the delta file, which holds only what the delta adds, `delta KiB`).
//!
//! Recovery row: a data directory holding a snapshot of N keys and N more log
//! entries (writes of existing keys) is opened the way the node opens it at start:
//! `Storage::open` (reads the snapshot and replays the log) and `Replica::try_new`
//! (decodes the snapshot into the state machine), then the N entries are applied.

use node::kv::{Command, Kv, KvOp, Layout, SnapshotBase, SnapshotSource};
use node::raft::RaftConfig;
use node::raft::types::{
    Entry, HardState, Membership, Payload, Snapshot, SnapshotData, SnapshotMeta,
};
use node::replica::{Config, Mutants, Replica};
use node::storage::{BaseId, Pace, Paced, SavedSnapshot, Storage, StorageOptions};
use std::process::{Command as Process, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let value_bytes: usize = get("--value-bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    if let Some(n) = get("--one") {
        return match n.parse() {
            Ok(n) => one_snapshot(n, value_bytes),
            Err(_) => usage(&format!("--one takes a number, got {n:?}")),
        };
    }
    if let Some(n) = get("--recovery-one") {
        return match n.parse() {
            Ok(n) => one_recovery(n, value_bytes),
            Err(_) => usage(&format!("--recovery-one takes a number, got {n:?}")),
        };
    }
    let keys = get("--keys").unwrap_or_else(|| "100000,1000000,10000000".into());
    let Ok(exe) = std::env::current_exe() else {
        return usage("cannot find this executable");
    };
    println!(
        "machine: {} cores, value {value_bytes} bytes, keys k%010d",
        cores()
    );
    println!(
        "{:>10} {:>10} {:>12} {:>10} {:>11} {:>11} {:>11} {:>9} {:>14} {:>10}",
        "keys",
        "snap MiB",
        "serialize s",
        "write s",
        "state MiB",
        "peak MiB",
        "extra MiB",
        "delta s",
        "delta write s",
        "delta KiB"
    );
    let mut ok = true;
    for k in keys.split(',').filter(|k| !k.is_empty()) {
        ok &= child(
            &exe,
            &["--one", k, "--value-bytes", &value_bytes.to_string()],
        );
    }
    if let Some(n) = get("--recovery") {
        println!(
            "\n{:>10} {:>10} {:>10} {:>12} {:>10} {:>10} {:>10}",
            "keys", "entries", "open s", "decode s", "apply s", "total s", "peak MiB"
        );
        ok &= child(
            &exe,
            &[
                "--recovery-one",
                &n,
                "--value-bytes",
                &value_bytes.to_string(),
            ],
        );
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn usage(why: &str) -> ExitCode {
    eprintln!("snapshot bench: {why}");
    ExitCode::from(3)
}

fn child(exe: &std::path::Path, args: &[&str]) -> bool {
    match Process::new(exe).args(args).status() {
        Ok(s) if s.success() => true,
        Ok(s) => {
            eprintln!("snapshot bench: {args:?} failed: {s}");
            false
        }
        Err(e) => {
            eprintln!("snapshot bench: cannot run {}: {e}", exe.display());
            false
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Peak resident set of this process in MiB (VmHWM), 0 where unknown.
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn put(i: u64, value: &str) -> Command {
    Command {
        client: 0,
        seq: 0,
        op: KvOp::Put {
            key: format!("k{i:010}"),
            value: serde_json::Value::String(value.to_string()),
        },
    }
}

fn state(keys: u64, value_bytes: usize) -> Result<Kv, String> {
    let value = "v".repeat(value_bytes);
    let mut kv = Kv::new();
    for i in 0..keys {
        kv.apply(&put(i, &value)).map_err(|e| e.to_string())?;
    }
    Ok(kv)
}

fn snapshot_of(kv: &Kv, index: u64) -> Result<(Snapshot, f64), String> {
    let t0 = Instant::now();
    let mut out = Paced::new(Vec::new(), Pace::default(), None);
    kv.write_snapshot(&mut out).map_err(|e| e.to_string())?;
    let took = t0.elapsed().as_secs_f64();
    Ok((raft_snapshot(out.into_inner(), index), took))
}

/// The Raft snapshot of one voter through `index` holding `data`.
fn raft_snapshot(data: impl Into<SnapshotData>, index: u64) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta {
            last_index: index,
            last_term: 1,
            membership: Membership {
                voters: [1].into(),
                ..Membership::default()
            },
        },
        data: data.into(),
    }
}

fn one_snapshot(keys: u64, value_bytes: usize) -> ExitCode {
    let run = || -> Result<(), String> {
        let mut kv = state(keys, value_bytes)?;
        kv.begin_changes();
        let before = peak_mib();
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let (snapshot, serialize_s) = snapshot_of(&kv, keys)?;
        let t0 = Instant::now();
        Storage::prepare_snapshot(dir.path(), &snapshot, None, false, Pace::default())
            .map_err(|e| e.to_string())?;
        let write_s = t0.elapsed().as_secs_f64();
        let mib = snapshot.data.len() as f64 / (1 << 20) as f64;
        let peak = peak_mib();

        // 10,000 keys change; the next snapshot is the previous bytes plus a delta.
        let changed = "w".repeat(value_bytes);
        for i in (0..keys)
            .step_by((keys / 10_000).max(1) as usize)
            .take(10_000)
        {
            kv.apply(&put(i, &changed)).map_err(|e| e.to_string())?;
        }
        let base = SnapshotBase {
            data: snapshot.data.clone(),
            layout: Layout {
                image_len: snapshot.data.len(),
                deltas: 0,
            },
        };
        let source = SnapshotSource::after(kv.clone(), kv.begin_changes(), Some(base));
        let t0 = Instant::now();
        let (bytes, _) =
            (source.as_delta().map_err(|e| e.to_string())?).ok_or("the delta was refused")?;
        let delta_s = t0.elapsed().as_secs_f64();
        let delta_kib = (bytes.len() - snapshot.data.len()) as f64 / 1024.0;
        let saved = SavedSnapshot {
            base: BaseId {
                index: keys,
                crc: 0,
            },
            data: snapshot.data.clone(),
        };
        drop(snapshot);
        let next = raft_snapshot(bytes, keys + 10_000);
        let t0 = Instant::now();
        Storage::prepare_snapshot(dir.path(), &next, Some(&saved), false, Pace::default())
            .map_err(|e| e.to_string())?;
        let delta_write_s = t0.elapsed().as_secs_f64();
        println!(
            "{keys:>10} {mib:>10.1} {serialize_s:>12.3} {write_s:>10.3} {before:>11.0} {peak:>11.0} {:>11.0} {delta_s:>9.3} {delta_write_s:>14.3} {delta_kib:>10.0}",
            peak - before
        );
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("snapshot bench ({keys} keys): {e}");
            ExitCode::FAILURE
        }
    }
}

fn one_recovery(n: u64, value_bytes: usize) -> ExitCode {
    let run = || -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        {
            let kv = state(n, value_bytes)?;
            let (snapshot, _) = snapshot_of(&kv, n)?;
            drop(kv);
            let (mut storage, _) =
                Storage::open(dir.path(), StorageOptions::default()).map_err(|e| e.to_string())?;
            let hs = HardState {
                term: 1,
                vote: Some(1),
                commit: 2 * n,
            };
            storage
                .write(Some(&snapshot), None, &[], Some(&hs))
                .map_err(|e| e.to_string())?;
            drop(snapshot);
            let value = "w".repeat(value_bytes);
            let mut batch = Vec::with_capacity(10_000);
            for i in 0..n {
                batch.push(Entry {
                    term: 1,
                    index: n + 1 + i,
                    payload: Payload::Command(put(i, &value).encode()),
                });
                if batch.len() == 10_000 || i + 1 == n {
                    storage
                        .write(None, None, &batch, None)
                        .map_err(|e| e.to_string())?;
                    batch.clear();
                }
            }
            storage.close().map_err(|e| e.to_string())?;
        }
        let t0 = Instant::now();
        let (_storage, recovered) =
            Storage::open(dir.path(), StorageOptions::default()).map_err(|e| e.to_string())?;
        let open_s = t0.elapsed().as_secs_f64();
        let entries: Vec<Entry> = recovered.entries.to_vec();
        let t1 = Instant::now();
        let config = Config {
            raft: RaftConfig {
                id: 1,
                peers: vec![1],
                election_ticks_min: 10,
                election_ticks_max: 20,
                heartbeat_ticks: 1,
                max_entries_per_msg: 512,
                max_inflight_msgs: 256,
                pre_vote: true,
                check_quorum: true,
                seed: 1,
                incarnation: 1,
                discover: true,
                mutants: Mutants::default(),
            },
            snapshot_every: 0,
        };
        let snapshot_data = recovered.snapshot.as_ref().map(|s| s.data.clone());
        let replica = Replica::try_new(config, recovered.into()).map_err(|e| e.to_string())?;
        let decode_s = t1.elapsed().as_secs_f64();
        drop(replica);
        // What the replica does with each committed entry: decode it, then apply it
        // (on the state the snapshot describes, decoded again outside the timing).
        let mut state = Kv::from_snapshot(&snapshot_data.unwrap_or_default().contiguous())
            .map_err(|e| e.to_string())?;
        let t2 = Instant::now();
        let mut applied = 0u64;
        for e in &entries {
            if let Payload::Command(bytes) = &e.payload {
                let cmd = Command::decode(bytes).map_err(|e| e.to_string())?;
                state.apply(&cmd).map_err(|e| e.to_string())?;
                applied += 1;
            }
        }
        let apply_s = t2.elapsed().as_secs_f64();
        if applied != n || state.len() as u64 != n {
            return Err(format!("applied {applied} entries, {} keys", state.len()));
        }
        println!(
            "{n:>10} {applied:>10} {open_s:>10.3} {decode_s:>12.3} {apply_s:>10.3} {:>10.3} {:>10.0}",
            open_s + decode_s + apply_s,
            peak_mib()
        );
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("recovery bench ({n} keys): {e}");
            ExitCode::FAILURE
        }
    }
}
