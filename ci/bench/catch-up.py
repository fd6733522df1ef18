#!/usr/bin/env python3
"""Catch-up of a wiped follower from a large snapshot, while the cluster serves writes.

    python3 ci/bench/catch-up.py                  # a state of 1 GiB
    python3 ci/bench/catch-up.py --gib 0.25 --value-kib 64 --chunk-kib 4096
    python3 ci/bench/catch-up.py --delta-share 0.4   # the last 40% after a first snapshot

Starts a 3-node cluster of ours (release build, fsync on) on loopback, loads it with
GIB of state (keys of VALUE-KIB each, through the leader), has the leader take a
snapshot (which compacts its log, so a blank follower can only catch up from it;
with --delta-share, the nodes snapshot once before the last share of the keys and
again after, so the second snapshot is saved as a delta beside the first and the
follower is sent the two as one),
then SIGKILLs one follower, deletes its data directory and starts it again with the
same command line, while one client keeps writing 256-byte values to the leader.
Prints: the time until the follower holds the leader's snapshot, until it has applied
everything the leader had committed at its restart, and until it votes again; its
peak resident memory (VmHWM, from /proc) against the size of the snapshot; the
snapshot chunks it took; and the writes served meanwhile with their p50 and p99.

Every process it starts is killed on exit; the data lives in a temporary folder
(--work to choose it) that is deleted at the end.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def request(port, method, path, body=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"content-type": "application/json"} if body is not None else {}
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def status(port):
    try:
        code, body = request(port, "GET", "/status", timeout=2)
        return json.loads(body) if code == 200 else None
    except (OSError, ValueError, http.client.HTTPException):
        return None


def metric(port, name):
    try:
        _, body = request(port, "GET", "/metrics", timeout=5)
    except (OSError, http.client.HTTPException):
        return None
    for line in body.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def peak_rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def current_leader(ports, wait=20):
    """The node every live node names as leader (waits up to `wait` seconds)."""
    end = time.time() + wait
    while time.time() < end:
        named = set()
        for p in ports.values():
            s = status(p)
            named.add(s.get("leader") if s else None)
        if len(named) == 1 and None not in named:
            return named.pop()
        time.sleep(0.1)
    return None


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, int(round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[i]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gib", type=float, default=1.0, help="state to load, GiB (default 1)")
    ap.add_argument("--value-kib", type=int, default=64, help="bytes per value, KiB (default 64)")
    ap.add_argument("--chunk-kib", type=int, default=4096, help="node --snapshot-chunk-kib (default 4096)")
    ap.add_argument("--loaders", type=int, default=8, help="concurrent loading clients (default 8)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds the catch-up may take (default 900)")
    ap.add_argument("--work", help="folder for the data directories (default: a temporary one)")
    ap.add_argument("--delta-share", type=float, default=0.0,
                    help="share of the keys loaded after a first snapshot (default 0: one snapshot)")
    args = ap.parse_args()

    print("+ cargo build --release -p node", file=sys.stderr, flush=True)
    subprocess.run(["cargo", "build", "--release", "-p", "node"], cwd=ROOT, check=True)
    target = subprocess.run(["bash", "ci/target-dir.sh"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    node = os.path.join(target, "release", "node")
    work = args.work or tempfile.mkdtemp(prefix="catch-up.")
    os.makedirs(work, exist_ok=True)
    ports = {1: 18301, 2: 18302, 3: 18303}
    peers = ",".join(f"{i}=127.0.0.1:{p}" for i, p in ports.items())
    procs = {}

    def start(i):
        cmd = [node, "--id", str(i), "--listen", f"127.0.0.1:{ports[i]}", "--peers", peers,
               "--data-dir", os.path.join(work, f"n{i}"), "--snapshot-every", "0",
               "--snapshot-rate-mib", "0", "--snapshot-chunk-kib", str(args.chunk_kib),
               "--exit-with-parent"]
        log = open(os.path.join(work, f"n{i}.log"), "ab")
        procs[i] = subprocess.Popen(cmd, stdout=log, stderr=log, env={**os.environ, "RUST_LOG": "info"})

    def stop_all():
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()

    try:
        for i in ports:
            start(i)
        leader = current_leader(ports)
        if leader is None:
            sys.exit("no leader elected")
        lport = ports[leader]

        # ---- load ----
        value_bytes = args.value_kib << 10
        keys = int(args.gib * (1 << 30)) // value_bytes + 1
        body = json.dumps({"value": "v" * value_bytes})
        next_key = [0]
        lock = threading.Lock()
        failures = []

        def loader():
            c = http.client.HTTPConnection("127.0.0.1", lport, timeout=60)
            while True:
                with lock:
                    k = next_key[0]
                    next_key[0] += 1
                if k >= keys:
                    break
                try:
                    c.request("PUT", f"/kv/big{k:08d}", body=body,
                              headers={"content-type": "application/json"})
                    r = c.getresponse()
                    r.read()
                    if r.status != 200:
                        failures.append(r.status)
                except (OSError, http.client.HTTPException) as e:
                    failures.append(str(e))
                    c.close()
                    c = http.client.HTTPConnection("127.0.0.1", lport, timeout=60)
            c.close()

        def load_until(n):
            nonlocal keys
            keys = n
            threads = [threading.Thread(target=loader) for _ in range(args.loaders)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()

        def snapshot_all(t):
            """Has every node snapshot through the commit index; returns it."""
            commit = max(status(p)["commit_index"] for p in ports.values())
            for i, p in ports.items():
                while True:
                    try:
                        request(p, "POST", "/admin/snapshot", timeout=600)
                    except (OSError, http.client.HTTPException):
                        pass
                    s = status(p)
                    # The core compacts first; the files are written in the background.
                    if s and s["snapshot_index"] >= commit and os.path.exists(
                            os.path.join(work, f"n{i}", "snapshot")):
                        break
                    if time.time() - t > 900:
                        sys.exit(f"n{i} took no snapshot in 900 s")
                    time.sleep(0.5)
            return commit

        t = time.time()
        all_keys = keys
        if args.delta_share > 0:
            load_until(int(all_keys * (1 - args.delta_share)))
            snapshot_all(time.time())
        load_until(all_keys)
        load_s = time.time() - t
        if failures:
            sys.exit(f"{len(failures)} of {keys} loading writes failed: {failures[:5]}")
        print(f"loaded {keys} keys of {args.value_kib} KiB ({keys * value_bytes / 2**30:.2f} GiB) "
              f"in {load_s:.1f} s", file=sys.stderr, flush=True)

        # ---- every node's snapshot (whichever leads then has one) ----
        t = time.time()
        commit = snapshot_all(t)
        leader = current_leader(ports)
        if leader is None:
            sys.exit("no leader after the snapshots")
        lport = ports[leader]
        # The snapshot file and the delta files beside it, which travel as one file.
        ldir = os.path.join(work, f"n{leader}")
        snap_files = [f for f in os.listdir(ldir)
                      if f == "snapshot" or (f.startswith("snapshot-delta-") and not f.endswith(".tmp"))]
        snap_bytes = sum(os.path.getsize(os.path.join(ldir, f)) for f in snap_files)
        print(f"leader's snapshot files: {sorted(snap_files)}", file=sys.stderr, flush=True)
        print(f"snapshots through index {commit}: {snap_bytes / 2**20:.0f} MiB "
              f"in {time.time() - t:.1f} s (three nodes)", file=sys.stderr, flush=True)

        # ---- wipe a follower, restart it, write meanwhile ----
        victim = next(i for i in ports if i != leader)
        procs[victim].kill()
        procs[victim].wait()
        shutil.rmtree(os.path.join(work, f"n{victim}"))
        stop_writes = threading.Event()
        latencies = []
        write_errors = []

        def writer():
            c = http.client.HTTPConnection("127.0.0.1", lport, timeout=30)
            k = 0
            small = json.dumps({"value": "w" * 256})
            while not stop_writes.is_set():
                t0 = time.perf_counter()
                try:
                    c.request("PUT", f"/kv/w{k % 1000}", body=small,
                              headers={"content-type": "application/json"})
                    r = c.getresponse()
                    r.read()
                    if r.status == 200:
                        latencies.append(time.perf_counter() - t0)
                    else:
                        write_errors.append(r.status)
                except (OSError, http.client.HTTPException) as e:
                    write_errors.append(str(e))
                    c.close()
                    c = http.client.HTTPConnection("127.0.0.1", lport, timeout=30)
                k += 1
            c.close()

        w = threading.Thread(target=writer)
        w.start()
        time.sleep(1.0)
        target_commit = status(lport)["commit_index"]
        t0 = time.time()
        start(victim)
        vport = ports[victim]
        got_snapshot = caught_up = voting = None
        while time.time() - t0 < args.timeout and voting is None:
            s = status(vport)
            now = time.time() - t0
            if s:
                if got_snapshot is None and s.get("snapshot_index", 0) >= commit:
                    got_snapshot = now
                if caught_up is None and s.get("applied_index", 0) >= target_commit:
                    caught_up = now
                if caught_up is not None and s.get("role") in ("follower", "leader"):
                    voting = now
            time.sleep(0.1)
        stop_writes.set()
        w.join()
        peak = peak_rss_mib(procs[victim].pid)
        leader_peak = peak_rss_mib(procs[leader].pid)
        chunks = metric(vport, "node_snapshot_chunks_received_total")
        refused = metric(vport, "node_snapshot_chunks_refused_total")
        lat = sorted(latencies)
        span = time.time() - t0

        def secs(x):
            return f"{x:.1f} s" if x is not None else f"not within {args.timeout:.0f} s"

        print()
        print(f"| state | snapshot file | follower holds the snapshot | applied to leader's commit "
              f"| votes again | follower peak RSS | leader peak RSS | chunks taken (refused) "
              f"| writes meanwhile | write p50 | write p99 |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        print(f"| {keys} keys x {args.value_kib} KiB | {snap_bytes / 2**20:.0f} MiB | {secs(got_snapshot)} "
              f"| {secs(caught_up)} | {secs(voting)} | {peak or 0:.0f} MiB | {leader_peak or 0:.0f} MiB "
              f"| {chunks or 0:.0f} ({refused or 0:.0f}) | {len(lat)} ok, {len(write_errors)} failed "
              f"in {span:.1f} s | {percentile(lat, 50) * 1000:.1f} ms | {percentile(lat, 99) * 1000:.1f} ms |")
        print(f"\nchunk {args.chunk_kib} KiB; machine: {os.cpu_count()} cores, load "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        if voting is None:
            sys.exit(1)
        if not chunks:
            sys.exit("the follower caught up without a snapshot stream: the figures above "
                     "do not measure one")
    finally:
        stop_all()
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
