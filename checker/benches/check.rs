//! `cargo bench -p checker`: the reference histories and generated ones.

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

criterion_group!(benches, reference, generated);
criterion_main!(benches);
