#!/usr/bin/env bash
# Throughput and latency of a 3-node cluster of ours (release build, fsync on) against
# a 3-member etcd 3.4 cluster, both on loopback, both driven by wrk + Lua the same way:
# 8-byte keys, 256-byte values, writes then linearizable reads, at 1, 16 and 64
# connections, each run against the leader. Prints one table, side by side.
#
#   ci/bench/node-vs-etcd.sh                 # 10 s per run
#   DURATION=20s CONNS="1 16 64" ci/bench/node-vs-etcd.sh
#   SYSTEMS=ours NODE_FLAGS="--worker-threads 2" ci/bench/node-vs-etcd.sh   # tuning runs
#
# Installs wrk and etcd with apt-get when they are missing. Every process it starts
# is killed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export BENCH_DIR=$ROOT/ci/bench
DURATION=${DURATION:-10s}
CONNS=${CONNS:-"1 16 64"}
SYSTEMS=${SYSTEMS:-"ours etcd"}
NODE_FLAGS=${NODE_FLAGS:-}
WORK=$(mktemp -d /tmp/node-vs-etcd.XXXXXX)
declare -a PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

need_pkg() { # command package...
  local cmd=$1; shift
  command -v "$cmd" >/dev/null && return
  echo "+ apt-get install -y $*" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >/dev/null 2>&1 || {
    apt-get update >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >/dev/null
  }
}
need_pkg wrk wrk
need_pkg etcd etcd-server etcd-client

echo "+ cargo build --release -p node" >&2
cargo build --release -p node >&2
NODE=$(cd "$ROOT" && bash ci/target-dir.sh)/release/node

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---- our cluster ----
NP=(0 18101 18102 18103)
PEERS="1=127.0.0.1:${NP[1]},2=127.0.0.1:${NP[2]},3=127.0.0.1:${NP[3]}"
for i in 1 2 3; do
  RUST_LOG=warn "$NODE" --id "$i" --listen "127.0.0.1:${NP[$i]}" --peers "$PEERS" \
    --data-dir "$WORK/n$i" $NODE_FLAGS 2>"$WORK/n$i.log" &
  PIDS+=($!)
done
node_leader() {
  local i
  for i in 1 2 3; do
    if curl -s -m 1 "http://127.0.0.1:${NP[$i]}/status" | grep -q '"role":"leader"'; then
      echo "${NP[$i]}"; return 0
    fi
  done
  return 1
}
NODE_PORT=""
for _ in $(seq 1 200); do NODE_PORT=$(node_leader) && break; sleep 0.05; done
[ -n "$NODE_PORT" ] || { echo "our cluster elected no leader" >&2; exit 1; }

# ---- etcd cluster ----
ETCD_PORT=""
if [[ " $SYSTEMS " == *" etcd "* ]]; then
EC=(0 23791 23792 23793); EP=(0 23801 23802 23803)
INIT="e1=http://127.0.0.1:${EP[1]},e2=http://127.0.0.1:${EP[2]},e3=http://127.0.0.1:${EP[3]}"
for i in 1 2 3; do
  etcd --name "e$i" --data-dir "$WORK/e$i" \
    --listen-client-urls "http://127.0.0.1:${EC[$i]}" --advertise-client-urls "http://127.0.0.1:${EC[$i]}" \
    --listen-peer-urls "http://127.0.0.1:${EP[$i]}" --initial-advertise-peer-urls "http://127.0.0.1:${EP[$i]}" \
    --initial-cluster "$INIT" --initial-cluster-state new --initial-cluster-token bench \
    --log-level error >"$WORK/e$i.log" 2>&1 &
  PIDS+=($!)
done
for _ in $(seq 1 200); do
  for i in 1 2 3; do
    if ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:${EC[$i]}" endpoint status -w simple 2>/dev/null \
        | awk -F', ' '{print $5}' | grep -q true; then
      ETCD_PORT=${EC[$i]}; break 2
    fi
  done
  sleep 0.1
done
[ -n "$ETCD_PORT" ] || { echo "etcd elected no leader" >&2; exit 1; }
fi
echo "leaders: ours 127.0.0.1:$NODE_PORT, etcd 127.0.0.1:$ETCD_PORT" >&2

# run SCRIPT PORT CONNS -> "rps p50 p99 errors"
run() {
  local script=$1 port=$2 c=$3 t
  t=$(( c < 2 ? 1 : 2 ))
  wrk -t "$t" -c "$c" -d "$DURATION" --timeout 5s -s "$BENCH_DIR/$script" "http://127.0.0.1:$port" \
    | sed -n 's/^RESULT rps=\([^ ]*\) p50_ms=\([^ ]*\) p99_ms=\([^ ]*\) requests=[^ ]* errors=\([^ ]*\)$/\1 \2 \3 \4/p'
}

node_term() { curl -s -m 1 "http://127.0.0.1:$NODE_PORT/status" | sed -n 's/.*"term":\([0-9]*\).*/\1/p'; }
TERM0=$(node_term)
declare -A R
for op in write read; do
  for c in $CONNS; do
    if [ $op = write ]; then ns=node-put.lua; es=etcd-put.lua; else ns=node-get.lua; es=etcd-get.lua; fi
    echo "+ $op c=$c ours" >&2; R[ours,$op,$c]=$(run $ns "$NODE_PORT" "$c")
    if [ -n "$ETCD_PORT" ]; then
      echo "+ $op c=$c etcd" >&2; R[etcd,$op,$c]=$(run $es "$ETCD_PORT" "$c")
    fi
  done
done

printf '\n%-6s %5s | %10s %8s %8s %6s | %10s %8s %8s %6s | %6s\n' \
  op conns "ours req/s" "p50 ms" "p99 ms" errors "etcd req/s" "p50 ms" "p99 ms" errors ratio
printf -- '-%.0s' $(seq 1 104); echo
for op in write read; do
  for c in $CONNS; do
    read -r orps op50 op99 oerr <<<"${R[ours,$op,$c]:-0 0 0 -}"
    read -r erps ep50 ep99 eerr <<<"${R[etcd,$op,$c]:-0 0 0 -}"
    ratio=$(awk -v a="$orps" -v b="$erps" 'BEGIN { printf (b > 0 ? "%.2fx" : "-"), a / b }')
    printf '%-6s %5s | %10s %8s %8s %6s | %10s %8s %8s %6s | %6s\n' \
      "$op" "$c" "$orps" "$op50" "$op99" "$oerr" "$erps" "$ep50" "$ep99" "$eerr" "$ratio"
  done
done
TERM1=$(node_term)
echo
echo "our leader's term went from ${TERM0:-?} to ${TERM1:-?} during the runs (a change means an election under load)"
