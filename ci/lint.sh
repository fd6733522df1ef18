#!/usr/bin/env bash
# Formatting and clippy with warnings as errors.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "+ cargo fmt --all --check"
cargo fmt --all --check
echo "+ cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
