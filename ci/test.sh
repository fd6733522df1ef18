#!/usr/bin/env bash
# The README's test command: every test of the workspace (nextest when installed).
set -euo pipefail
cd "$(dirname "$0")/.."
# With etcd installed (ci/setup.sh) and root for network namespaces, the etcd tests
# must run: a broken etcd set-up fails them instead of skipping them.
if command -v etcd >/dev/null && [ "$(id -u)" = 0 ]; then
  export WORKLOADS_REQUIRE_ETCD=1
else
  echo "ci/test.sh: etcd tests SKIPPED: $(command -v etcd >/dev/null && echo 'not root (network namespaces)' || echo 'etcd not installed (apt-get install etcd-server)')"
fi
if cargo nextest --version >/dev/null 2>&1; then
  echo "+ cargo nextest run --workspace --no-fail-fast"
  cargo nextest run --workspace --no-fail-fast
  echo "+ cargo test --workspace --doc"
  cargo test --workspace --doc
else
  echo "+ cargo test --workspace"
  cargo test --workspace
fi
