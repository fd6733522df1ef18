#!/usr/bin/env bash
# Formatting, clippy and rustdoc with warnings as errors, and the purity rule's coverage.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "+ cargo fmt --all --check"
cargo fmt --all --check
# The CI scripts run under pipefail, where a reader that stops early (head, grep -q)
# can kill its writer with SIGPIPE and fail the step with exit 141 at random.
echo "+ no early-exit reader after a pipe in the CI scripts"
if grep -nE '\|[[:space:]]*(head|grep[[:space:]]+-[a-zA-Z]*[qm])' .ci/run ci/*.sh ci/bench/*.sh; then
  echo "read the whole output first (out=\$(cmd); [[ \$out == *x* ]], or sed -n 1,Np): exit 141 under pipefail" >&2
  exit 1
fi
# The pure modules: clippy.toml's disallowed clocks, files, sockets, tokio and
# unseeded randomness are denied at the top of each (docs/design.md, "Purity").
# A new engine adds its module root here and the same deny block at its top.
pure=(node/src/consensus/mod.rs node/src/engine/mod.rs node/src/raft/mod.rs node/src/paxos/mod.rs
  node/src/replica.rs node/src/kv.rs workloads/src/sim/mod.rs)
echo "+ purity rule present in ${pure[*]}"
for f in "${pure[@]}"; do
  for lint in disallowed_types disallowed_methods disallowed_macros; do
    deny=$(sed -n '/^#!\[deny(/,/)\]/p' "$f")
    if [[ "$deny" != *"clippy::$lint"* ]]; then
      echo "$f: missing #![deny(clippy::$lint)] (the purity rule, docs/design.md)" >&2
      exit 1
    fi
  done
done
# ... and no opt-out inside them, except the simulator's entry points (sim/mod.rs),
# which time its own speed and write the files it is asked for.
if grep -rn "allow(clippy::disallowed" node/src/consensus node/src/engine node/src/raft \
    node/src/paxos node/src/replica.rs node/src/replica node/src/kv.rs node/src/kv workloads/src/sim \
    --include='*.rs' | grep -v '^workloads/src/sim/mod.rs:'; then
  echo "the pure modules above may not allow the disallowed lints (docs/design.md, \"Purity\")" >&2
  exit 1
fi
echo "+ cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "+ RUSTDOCFLAGS='-D warnings' cargo doc --workspace --no-deps"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
