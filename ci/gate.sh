#!/usr/bin/env bash
# The linearizability gate: correct runs must pass and known-bug mutants must be caught.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "+ cargo build --release --workspace"
cargo build --release --workspace
echo "+ workloads suite ci"
target/release/workloads suite ci
