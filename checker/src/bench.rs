//! What the benchmarks share: the options each reference history is checked with.

use crate::check::{CheckOptions, ModelKind};
use serde_json::Value;
use std::path::Path;

/// The options a reference file is checked with: the etcd set is a cas-register read
/// the Knossos way (it starts from nil); the kv set reads keys never written as "".
pub fn options_for(path: &Path) -> CheckOptions {
    let etcd = path.to_string_lossy().contains("etcd");
    CheckOptions {
        model: if etcd {
            ModelKind::CasRegister
        } else {
            ModelKind::Kv
        },
        knossos: etcd,
        initial: (!etcd).then(|| Value::String(String::new())),
        all_keys: true,
        ..CheckOptions::default()
    }
}
