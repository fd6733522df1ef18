#!/usr/bin/env bash
# The README's test command: every test of the workspace (nextest when installed).
set -euo pipefail
cd "$(dirname "$0")/.."
if cargo nextest --version >/dev/null 2>&1; then
  echo "+ cargo nextest run --workspace --no-fail-fast"
  cargo nextest run --workspace --no-fail-fast
  echo "+ cargo test --workspace --doc"
  cargo test --workspace --doc
else
  echo "+ cargo test --workspace"
  cargo test --workspace
fi
