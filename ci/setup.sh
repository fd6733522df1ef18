#!/usr/bin/env bash
# Installs what CI needs on a fresh machine (idempotent).
set -euo pipefail
if ! command -v cargo >/dev/null; then echo "cargo is required" >&2; exit 3; fi
# No early-exit reader (grep -q, head) after a pipe anywhere in ci/: under pipefail the
# writer can die of SIGPIPE (exit 141) and fail the step.
installed=$(rustup component list --installed 2>/dev/null || true)
case "$installed" in *rustfmt*) ;; *) rustup component add rustfmt clippy || true ;; esac
# A C compiler and make: the node's allocator (jemalloc, through tikv-jemalloc-sys)
# is built from C sources.
if ! command -v cc >/dev/null || ! command -v make >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "+ apt-get install -y gcc make"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc make >/dev/null
  else
    echo "ci/setup.sh: a C compiler (cc) and make are needed to build the node's allocator" >&2
    exit 3
  fi
fi
# etcd (Debian's etcd-server) for the etcd target's tests and gate steps, and iproute2
# and util-linux's setpriv, which the etcd target uses (network namespaces need root).
# Installed only when missing; where it cannot be, those tests and steps are SKIPPED
# with this reason.
if ! command -v etcd >/dev/null || ! command -v ip >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "+ apt-get install -y etcd-server iproute2"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server iproute2 >/dev/null; }; then
      echo "ci/setup.sh: could not install etcd-server: the etcd tests and gate steps will be SKIPPED" >&2
    fi
  else
    echo "ci/setup.sh: etcd is missing and cannot be installed here (needs root and apt-get): the etcd tests and gate steps will be SKIPPED" >&2
  fi
fi
if command -v etcd >/dev/null; then version=$(etcd --version 2>&1 || true); echo "${version%%$'\n'*}"; fi
