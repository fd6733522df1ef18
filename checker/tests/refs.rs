//! Every reference history gets the verdict its README gives, with an explanation for
//! each failing key, and the fast path agrees with the plain search.

use checker::check::{CheckOptions, ModelKind, check};
use checker::history::History;
use checker::verdict::{Validity, Verdict};
use std::path::PathBuf;
use std::time::Duration;

fn load(rel: &str) -> History {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/reference")
        .join(rel);
    match checker::parse::parse_file(&path) {
        Ok(h) => h,
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

/// The etcd set is read the Knossos way; the kv set reads keys never written as "".
fn options(model: ModelKind, fast_path: bool) -> CheckOptions {
    CheckOptions {
        model,
        knossos: model == ModelKind::CasRegister,
        initial: (model == ModelKind::Kv).then(|| serde_json::json!("")),
        all_keys: true,
        fast_path,
        time_limit: Some(Duration::from_secs(120)),
        ..CheckOptions::default()
    }
}

fn assert_explained(name: &str, v: &Verdict) {
    for k in v
        .keys
        .iter()
        .filter(|k| k.valid == Validity::NotLinearizable)
    {
        let Some(c) = &k.counterexample else {
            panic!("{name}: failing key {:?} has no counterexample", k.key)
        };
        assert_eq!(c.prefix.len(), c.states.len(), "{name}");
        assert!(!c.stuck.is_empty(), "{name}: no stuck ops");
        assert!(!c.window.is_empty(), "{name}: empty window");
    }
}

const ETCD: [(&str, bool); 10] = [
    ("etcd_000", false),
    ("etcd_001", false),
    ("etcd_002", true),
    ("etcd_005", true),
    ("etcd_010", false),
    ("etcd_018", true),
    ("etcd_070", false),
    ("etcd_080", true),
    ("etcd_090", false),
    ("etcd_100", true),
];

const KV: [(&str, bool); 6] = [
    ("c01-ok", true),
    ("c01-bad", false),
    ("c10-ok", true),
    ("c10-bad", false),
    ("c50-ok", true),
    ("c50-bad", false),
];

fn want(ok: bool) -> Validity {
    if ok {
        Validity::Linearizable
    } else {
        Validity::NotLinearizable
    }
}

#[test]
fn etcd_histories_get_their_verdicts() {
    for (name, ok) in ETCD {
        let h = load(&format!("etcd/{name}.edn"));
        for fast in [true, false] {
            let v = check(&h, &options(ModelKind::CasRegister, fast)).unwrap();
            assert_eq!(v.valid, want(ok), "{name} fast_path {fast}");
            assert_explained(name, &v);
        }
    }
}

#[test]
fn kv_histories_get_their_verdicts() {
    for (name, ok) in KV {
        let h = load(&format!("kv/{name}.edn"));
        let v = check(&h, &options(ModelKind::Kv, true)).unwrap();
        assert_eq!(v.valid, want(ok), "{name}");
        assert_explained(name, &v);
        assert!(
            v.keys.iter().all(|k| k.valid != Validity::Unknown),
            "{name}: undecided key"
        );
    }
}

/// Without the initial value "" the kv files read keys never written as absent, and the
/// reads of "" there are violations: one rule for every key.
#[test]
fn kv_histories_read_absent_keys_as_null_without_an_initial_value() {
    let h = load("kv/c01-ok.edn");
    let mut opts = options(ModelKind::Kv, true);
    opts.initial = None;
    let v = check(&h, &opts).unwrap();
    assert_eq!(v.valid, Validity::NotLinearizable);
    assert_explained("c01-ok without initial", &v);
}

/// The plain search decides the small kv files too (c50-bad is out of its reach, which
/// is what the fast path is for); both must agree key by key.
#[test]
fn kv_fast_path_agrees_with_plain_search() {
    for (name, _) in KV.iter().filter(|(n, _)| !n.starts_with("c50")) {
        let h = load(&format!("kv/{name}.edn"));
        let fast = check(&h, &options(ModelKind::Kv, true)).unwrap();
        let plain = check(&h, &options(ModelKind::Kv, false)).unwrap();
        for (a, b) in fast.keys.iter().zip(&plain.keys) {
            assert_eq!((&a.key, a.valid), (&b.key, b.valid), "{name}");
        }
    }
}
