#!/usr/bin/env bash
# Prints cargo's target folder as cargo resolves it (CARGO_TARGET_DIR, build.target-dir
# in a cargo config, or ./target), so the CI scripts find the binaries they built.
set -euo pipefail
cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
