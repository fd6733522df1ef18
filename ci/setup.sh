#!/usr/bin/env bash
# Installs what CI needs on a fresh machine (idempotent).
set -euo pipefail
if ! command -v cargo >/dev/null; then echo "cargo is required" >&2; exit 3; fi
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy || true
