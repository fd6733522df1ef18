#!/usr/bin/env bash
# The linearizability gate: correct runs must pass and known-bug mutants must be caught.
# Writes the result as JUnit XML to $GATE_JUNIT (default: results/junit.xml) and the
# suite's page to results/suite-<UTC timestamp>/index.html.
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(bash ci/target-dir.sh)
junit=${GATE_JUNIT:-results/junit.xml}
echo "+ cargo build --release --workspace"
cargo build --release --workspace
echo "+ $target/release/workloads suite ci --junit $junit"
"$target/release/workloads" suite ci --junit "$junit"
