//! `cargo bench -p checker`: checking the reference histories and generated ones, and
//! reading a generated history as JSONL and as EDN (the 1,000,000-op figure is
//! `checker bench FILE`, see the README).

use checker::bench::options_for;
use checker::check::{CheckOptions, check};
use checker::r#gen::{GenOptions, Mix, generate};
use criterion::{Criterion, criterion_group, criterion_main};
use std::path::PathBuf;

fn reference(c: &mut Criterion) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/reference");
    let mut group = c.benchmark_group("reference");
    group.sample_size(10);
    for name in ["etcd/etcd_002", "etcd/etcd_080", "kv/c50-ok", "kv/c50-bad"] {
        let path = dir.join(format!("{name}.edn"));
        let Ok(h) = checker::parse::parse_file(&path) else {
            continue;
        };
        let mut opts = options_for(&path);
        // As Porcupine does: stop at the first failing key.
        opts.all_keys = false;
        group.bench_function(name, |b| b.iter(|| check(&h, &opts)));
    }
    group.finish();
}

/// Reading 100,000 operations (about 200,000 lines) from memory, in both formats.
fn parse(c: &mut Criterion) {
    let h = generate(&GenOptions {
        seed: 5,
        ops: 100_000,
        keys: 100,
        clients: 50,
        ..GenOptions::default()
    });
    let mut jsonl = Vec::new();
    h.write_jsonl(&mut jsonl).expect("writing to memory");
    let mut edn = Vec::new();
    h.write_edn(&mut edn).expect("writing to memory");
    let edn = String::from_utf8(edn).expect("EDN is text");
    let mut group = c.benchmark_group("parse");
    group.sample_size(10);
    group.throughput(criterion::Throughput::Elements(h.events.len() as u64));
    group.bench_function("100k-ops-jsonl", |b| {
        b.iter(|| checker::parse::parse_reader(&jsonl[..], "bench.jsonl"))
    });
    group.bench_function("100k-ops-edn", |b| {
        b.iter(|| checker::parse::parse_str(&edn, "bench.edn"))
    });
    group.finish();
}

fn generated(c: &mut Criterion) {
    let mut group = c.benchmark_group("generated");
    group.sample_size(10);
    for (keys, clients, mix) in [
        (100, 100, Mix::Cas),
        (10, 50, Mix::Append),
        (1, 20, Mix::Register),
    ] {
        let h = generate(&GenOptions {
            seed: 11,
            ops: 100_000,
            keys,
            clients,
            mix,
            info_rate: 0.05,
            ..GenOptions::default()
        });
        let opts = CheckOptions {
            all_keys: true,
            ..CheckOptions::default()
        };
        group.bench_function(
            format!("100k-ops-{keys}-keys-{clients}-clients-{mix:?}"),
            |b| b.iter(|| check(&h, &opts)),
        );
    }
    group.finish();
}

criterion_group!(benches, reference, generated, parse);
criterion_main!(benches);
