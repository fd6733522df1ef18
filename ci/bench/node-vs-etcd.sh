#!/usr/bin/env bash
# Throughput and latency of a 3-node cluster of ours (release build, fsync on) against
# a 3-member etcd 3.4 cluster, both on loopback, both driven by wrk + Lua the same way:
# 8-byte keys, 256-byte values, writes then linearizable reads, at 1, 16 and 64
# connections, each run against the leader. Prints one table, side by side.
#
#   ci/bench/node-vs-etcd.sh                 # 10 s per run
#   DURATION=20s CONNS="1 16 64" ci/bench/node-vs-etcd.sh
#   SYSTEMS=ours NODE_FLAGS="--worker-threads 2" ci/bench/node-vs-etcd.sh   # tuning runs
#   ci/bench/node-vs-etcd.sh --snapshot-every 10000,0 --conns 64 --ops write
#   ci/bench/node-vs-etcd.sh --consensus raft,multi-paxos,basic-paxos --duration 8s
#
# --consensus LIST starts one cluster of ours per engine (node --consensus E), each
# beside etcd in the same run. Raft and Multi-Paxos are driven through their leader,
# as etcd is. Basic Paxos has no leader: every node proposes, and clients spread over
# the three nodes make the proposers duel for slots, which is its real cost; so its
# connections are split over all three nodes (one wrk each, run at once), its req/s
# is their sum and its p50 and p99 the worst of the three.
#
# --snapshot-every LIST starts one cluster of ours per value (node --snapshot-every N,
# 0 = no automatic snapshots) and runs each beside etcd, interleaved per connection
# count, so the ratios come from the same run. Without it the node's default is used.
# Each row of the table shows how many snapshots the three nodes took during that run
# as whole+delta (from node_snapshots_taken_total and node_snapshot_deltas_total in
# /metrics: written whole, and as the previous snapshot plus a delta), so a reader
# sees whether one fell inside, and the load average when the row's run started.
#
# --prefill DURATION first writes the key space at 64 connections for that long into
# every cluster (etcd's too; not measured), so the measured runs overwrite a full
# store instead of filling an empty one (snapshots then stay deltas most of the time).
#
# --rounds N runs every measurement N times, round after round (etcd, then each
# cluster of ours, as in one round), and reports for each row the median req/s,
# p50 and p99 over the rounds (errors and snapshots summed); the ratios are of those
# medians, and a line per row lists each round's throughput ratio. On a shared
# machine one 15 s run of etcd can land in a slow or fast minute; rounds spread
# both systems over the same minutes.
#
# Worker threads: the three members of a cluster share this machine's cores, so each
# node of ours runs with --worker-threads (cores / 3, at least 1) unless NODE_FLAGS
# sets it. On 2 cores one worker per node served 12-22% more writes than two (one
# thread runs the HTTP handlers and the driver: no hand-off between threads). etcd
# keeps its default GOMAXPROCS (every core): GOMAXPROCS=1 made it 13% slower here.
#
# NODE_BIN=PATH runs that node binary instead of building this tree's (to compare
# two builds, run the script once with each).
#
# KEEP_LOGS=DIR copies every node's and etcd member's log into DIR before the work
# folder is deleted (the nodes log warnings and errors).
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
if [[ " $NODE_FLAGS " != *" --worker-threads"* ]]; then
  WORKERS=$(($(nproc) / 3))
  NODE_FLAGS="--worker-threads $((WORKERS > 0 ? WORKERS : 1)) $NODE_FLAGS"
fi
OPS=${OPS:-"write read"}
SWEEP=""
PREFILL=""
ENGINES=""
ROUNDS=1
while [ $# -gt 0 ]; do
  case $1 in
    --snapshot-every) SWEEP=${2//,/ }; shift 2 ;;
    --consensus) ENGINES=${2//,/ }; shift 2 ;;
    --conns) CONNS=${2//,/ }; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --ops) OPS=${2//,/ }; shift 2 ;;
    --prefill) PREFILL=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    -h|--help) sed -n '2,52p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 3 ;;
  esac
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "--rounds takes a positive number, got '$ROUNDS'" >&2; exit 3; }
for v in $SWEEP; do
  [[ $v =~ ^[0-9]+$ ]] || { echo "--snapshot-every takes numbers, got '$v'" >&2; exit 3; }
done
for e in $ENGINES; do
  [[ $e =~ ^(raft|multi-paxos|basic-paxos)$ ]] || { echo "--consensus takes raft, multi-paxos, basic-paxos; got '$e'" >&2; exit 3; }
done
# One variant of our cluster per engine and sweep value, named ENGINE/SNAPSHOT-EVERY
# ("default": the node's own default).
VARIANTS=""
for e in ${ENGINES:-raft}; do
  for s in ${SWEEP:-default}; do VARIANTS="$VARIANTS $e/$s"; done
done
WORK=$(mktemp -d /tmp/node-vs-etcd.XXXXXX)
declare -a PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP_LOGS:-}" ] && mkdir -p "$KEEP_LOGS" && cp "$WORK"/*.log "$KEEP_LOGS"/ 2>/dev/null; rm -rf "$WORK"
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
need_pkg etcdctl etcd-client

if [ -n "${NODE_BIN:-}" ]; then
  NODE=$NODE_BIN
  [ -x "$NODE" ] || { echo "NODE_BIN=$NODE is not an executable" >&2; exit 3; }
else
  echo "+ cargo build --release -p node" >&2
  cargo build --release -p node >&2
  NODE=$(cd "$ROOT" && bash ci/target-dir.sh)/release/node
fi

# a over b as "1.23x", or "-" when there is no b.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else printf "-" }'; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---- our clusters: one per engine and --snapshot-every value ----
declare -A LEADER NPORTS
# The leader's port (Basic Paxos: the first proposer's; it has no leader).
node_leader() { # ports...
  local p status
  for p in "$@"; do
    status=$(curl -s -m 1 "http://127.0.0.1:$p/status" || true)
    if [[ "$status" == *'"role":"leader"'* || "$status" == *'"role":"proposer"'* ]]; then
      echo "$p"; return 0
    fi
  done
  return 1
}
k=0
for v in $VARIANTS; do
  base=$((18101 + 10 * k)); k=$((k + 1))
  NP=(0 "$base" $((base + 1)) $((base + 2)))
  NPORTS[$v]="${NP[1]} ${NP[2]} ${NP[3]}"
  PEERS="1=127.0.0.1:${NP[1]},2=127.0.0.1:${NP[2]},3=127.0.0.1:${NP[3]}"
  snap_flag=()
  [ "${v#*/}" = default ] || snap_flag=(--snapshot-every "${v#*/}")
  d=${v//\//-}
  for i in 1 2 3; do
    # shellcheck disable=SC2086
    RUST_LOG=warn "$NODE" --id "$i" --listen "127.0.0.1:${NP[$i]}" --peers "$PEERS" \
      --consensus "${v%%/*}" --data-dir "$WORK/$d-n$i" "${snap_flag[@]}" $NODE_FLAGS 2>"$WORK/$d-n$i.log" &
    PIDS+=($!)
  done
done
for v in $VARIANTS; do
  L=""
  # shellcheck disable=SC2086
  for _ in $(seq 1 200); do L=$(node_leader ${NPORTS[$v]}) && break; sleep 0.05; done
  [ -n "$L" ] || { echo "our cluster ($v) elected no leader" >&2; exit 1; }
  LEADER[$v]=$L
done

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
    leader=$(ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:${EC[$i]}" endpoint status -w simple 2>/dev/null \
        | awk -F', ' '{print $5}' || true)
    if [[ "$leader" == *true* ]]; then
      ETCD_PORT=${EC[$i]}; break 2
    fi
  done
  sleep 0.1
done
[ -n "$ETCD_PORT" ] || { echo "etcd elected no leader" >&2; exit 1; }
fi
for v in $VARIANTS; do echo "leader of ours ($v): 127.0.0.1:${LEADER[$v]}" >&2; done
echo "etcd leader: 127.0.0.1:$ETCD_PORT" >&2

# run SCRIPT PORT CONNS -> "rps p50 p99 errors"
run() {
  local script=$1 port=$2 c=$3 t
  t=$(( c < 2 ? 1 : 2 ))
  wrk -t "$t" -c "$c" -d "$DURATION" --timeout 5s -s "$BENCH_DIR/$script" "http://127.0.0.1:$port" \
    | sed -n 's/^RESULT rps=\([^ ]*\) p50_ms=\([^ ]*\) p99_ms=\([^ ]*\) requests=[^ ]* errors=\([^ ]*\)$/\1 \2 \3 \4/p'
}

# run_spread SCRIPT CONNS PORTS... -> "rps p50 p99 errors": CONNS split over the
# ports, one wrk each at once; req/s and errors summed, p50 and p99 the worst.
run_spread() {
  local script=$1 c=$2; shift 2
  local n=$# i=0 p each out
  out=$(mktemp "$WORK/spread.XXXXXX")
  for p in "$@"; do
    each=$(( c / n + (i < c % n ? 1 : 0) )); i=$((i + 1))
    [ "$each" -gt 0 ] || continue
    run "$script" "$p" "$each" >>"$out" &
  done
  wait
  awk '{ r += $1; if ($2 > p50) p50 = $2; if ($3 > p99) p99 = $3; e += $4 }
       END { printf "%.1f %s %s %d\n", r, p50, p99, e }' "$out"
}

node_term() { curl -s -m 1 "http://127.0.0.1:$1/status" | sed -n 's/.*"term":\([0-9]*\).*/\1/p'; }
# Snapshots taken so far by the three nodes of variant $1, and how many of them
# were deltas (the previous snapshot plus the changes since): "taken deltas".
snapshots() {
  local p n=0 d=0 c e m
  for p in ${NPORTS[$1]}; do
    m=$(curl -s -m 2 "http://127.0.0.1:$p/metrics")
    c=$(awk '$1 == "node_snapshots_taken_total" { print $2 }' <<<"$m")
    e=$(awk '$1 == "node_snapshot_deltas_total" { print $2 }' <<<"$m")
    n=$((n + ${c:-0})); d=$((d + ${e:-0}))
  done
  echo "$n $d"
}
load() { cut -d' ' -f1 /proc/loadavg; }
declare -A R TERM0 SNAPS LOAD
if [ -n "$PREFILL" ]; then
  for v in $VARIANTS; do
    echo "+ prefill ours $v for $PREFILL (not measured)" >&2
    DURATION=$PREFILL run node-put.lua "${LEADER[$v]}" 64 >/dev/null
  done
  if [ -n "$ETCD_PORT" ]; then
    echo "+ prefill etcd for $PREFILL (not measured)" >&2
    DURATION=$PREFILL run etcd-put.lua "$ETCD_PORT" 64 >/dev/null
  fi
fi
for v in $VARIANTS; do TERM0[$v]=$(node_term "${LEADER[$v]}"); done
# median "rps p50 p99 errors" lines -> one line: the median of each of the first
# three columns (the lower middle for an even count) and the sum of the errors.
median() {
  awk '{ for (i = 1; i <= 3; i++) v[i, NR] = $i; e += $4 }
       END { m = int((NR + 1) / 2)
             for (i = 1; i <= 3; i++) {
               for (a = 1; a <= NR; a++) x[a] = v[i, a]
               for (a = 1; a <= NR; a++) for (b = a + 1; b <= NR; b++) if (x[b] + 0 < x[a] + 0) { t = x[a]; x[a] = x[b]; x[b] = t }
               printf "%s ", x[m] }
             printf "%d\n", e }'
}
declare -A RR ROUNDR
for op in $OPS; do
  for c in $CONNS; do
    if [ $op = write ]; then ns=node-put.lua; es=etcd-put.lua; else ns=node-get.lua; es=etcd-get.lua; fi
    for ((round = 1; round <= ROUNDS; round++)); do
      tag=""; [ "$ROUNDS" -gt 1 ] && tag=" round $round/$ROUNDS"
      if [ -n "$ETCD_PORT" ]; then
        [ "$round" -gt 1 ] || LOAD[etcd,$op,$c]=$(load)
        echo "+ $op c=$c etcd$tag (load $(load))" >&2
        r=$(run $es "$ETCD_PORT" "$c"); erps=${r%% *}
        # A round whose output did not parse is left out of the medians.
        if [ -n "$r" ]; then RR[etcd,$op,$c]+="$r"$'\n'; fi
      fi
      for v in $VARIANTS; do
        [ "$round" -gt 1 ] || LOAD[$v,$op,$c]=$(load)
        read -r before dbefore <<<"$(snapshots "$v")"
        echo "+ $op c=$c ours $v$tag (load $(load))" >&2
        if [ "${v%%/*}" = basic-paxos ]; then
          # shellcheck disable=SC2086
          r=$(run_spread $ns "$c" ${NPORTS[$v]})
        else
          r=$(run $ns "${LEADER[$v]}" "$c")
        fi
        if [ -n "$r" ]; then RR[$v,$op,$c]+="$r"$'\n'; fi
        ROUNDR[$v,$op,$c]+=" $(ratio "${r%% *}" "${erps:-0}")"
        read -r after dafter <<<"$(snapshots "$v")"
        # whole+delta: snapshots written whole, and as a delta (summed over rounds).
        read -r w d <<<"${SNAPS[$v,$op,$c]:-0 0}"
        SNAPS[$v,$op,$c]="$(( w + after - before - (dafter - dbefore) )) $(( d + dafter - dbefore ))"
      done
    done
    for k in etcd $VARIANTS; do
      if [ -n "${RR[$k,$op,$c]:-}" ]; then R[$k,$op,$c]=$(printf '%s' "${RR[$k,$op,$c]}" | median); fi
      if [ -n "${SNAPS[$k,$op,$c]:-}" ]; then SNAPS[$k,$op,$c]=${SNAPS[$k,$op,$c]/ /+}; fi
    done
  done
done

printf '\n%-6s %5s %-22s | %10s %8s %8s %6s %7s %5s | %10s %8s %8s %6s %5s | %6s %6s\n' \
  op conns "ours engine/snap-every" "ours req/s" "p50 ms" "p99 ms" errors snaps load \
  "etcd req/s" "p50 ms" "p99 ms" errors load "rps x" "p99 x"
printf -- '-%.0s' $(seq 1 144); echo
for op in $OPS; do
  for c in $CONNS; do
    read -r erps ep50 ep99 eerr <<<"${R[etcd,$op,$c]:-0 0 0 -}"
    for v in $VARIANTS; do
      read -r orps op50 op99 oerr <<<"${R[$v,$op,$c]:-0 0 0 -}"
      rpsr=$(ratio "$orps" "$erps")
      p99r=$(ratio "$op99" "$ep99")
      printf '%-6s %5s %-22s | %10s %8s %8s %6s %7s %5s | %10s %8s %8s %6s %5s | %6s %6s\n' \
        "$op" "$c" "$v" "$orps" "$op50" "$op99" "$oerr" "${SNAPS[$v,$op,$c]}" "${LOAD[$v,$op,$c]}" \
        "$erps" "$ep50" "$ep99" "$eerr" "${LOAD[etcd,$op,$c]:--}" "$rpsr" "$p99r"
    done
  done
done
echo
echo "rps x: our throughput over etcd's; p99 x: our p99 over etcd's (below 1 is better)"
echo "ours ran with: $NODE_FLAGS"
if [ "$ROUNDS" -gt 1 ] && [ -n "$ETCD_PORT" ]; then
  echo "medians over $ROUNDS rounds; each round's rps x:"
  for op in $OPS; do for c in $CONNS; do for v in $VARIANTS; do
    echo "  $op c=$c $v:${ROUNDR[$v,$op,$c]}"
  done; done; done
fi
for v in $VARIANTS; do
  echo "ours ($v): the leader's term (Basic Paxos: n1's highest ballot round) went from ${TERM0[$v]:-?} to $(node_term "${LEADER[$v]}") during the runs (a change means an election under load)"
done
