//! Appends followed by `sync` (one fsync per sync): entries per second with 1 and 64
//! entries per sync, on real files in a temporary directory. The `no_fsync` case shows
//! what the fsync costs. Run with `cargo bench -p node --bench storage`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use node::raft::types::{Entry, Index, Payload};
use node::storage::{Storage, StorageOptions};
use std::time::Duration;

/// Bytes of command per entry: a small KV write encoded as JSON is about this size.
const PAYLOAD_BYTES: usize = 100;

fn append_and_sync(c: &mut Criterion) {
    let mut group = c.benchmark_group("storage_append_sync");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(6));
    for (per_sync, no_fsync) in [(1u64, false), (64, false), (64, true)] {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("cannot create a temporary directory: {e}"),
        };
        let opts = StorageOptions {
            no_fsync,
            ..StorageOptions::default()
        };
        let (mut storage, _) = match Storage::open(dir.path(), opts) {
            Ok(x) => x,
            Err(e) => panic!("cannot open storage: {e}"),
        };
        let mut next: Index = 1;
        let mut batch: Vec<Entry> = Vec::with_capacity(per_sync as usize);
        let name = if no_fsync { "no_fsync" } else { "fsync" };
        group.throughput(Throughput::Elements(per_sync));
        group.bench_function(
            BenchmarkId::new(name, format!("{per_sync}_per_sync")),
            |b| {
                b.iter(|| {
                    batch.clear();
                    batch.extend((next..next + per_sync).map(|index| Entry {
                        term: 1,
                        index,
                        payload: Payload::Command(vec![b'x'; PAYLOAD_BYTES]),
                    }));
                    next += per_sync;
                    if let Err(e) = storage
                        .write(None, None, &batch, None)
                        .and_then(|()| storage.sync())
                    {
                        panic!("storage failed: {e}");
                    }
                });
            },
        );
        let s = storage.fsync_stats();
        if s.count > 0 {
            eprintln!(
                "{name}/{per_sync}_per_sync: {} fsyncs, mean {} us, max {} us",
                s.count,
                s.total_micros / s.count,
                s.max_micros
            );
        }
    }
    group.finish();
}

criterion_group!(benches, append_and_sync);
criterion_main!(benches);
