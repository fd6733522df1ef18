#!/usr/bin/env bash
# Opens rendered reports in headless Chromium and fails on any console message
# (uncaught exceptions, failed loads, console.error). Leaves a screenshot of each
# page next to it for a human look.
#
# Reports come from the checker CLI (`checker check ... --report DIR`) when it has
# --report, otherwise from the report tests (REPORT_KEEP_DIR keeps their output); the
# newest suite page of the gate (results/suite-*/index.html) is opened too.
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(bash ci/target-dir.sh)

out=${REPORT_CHECK_DIR:-$target/report-check}
rm -rf "$out"
mkdir -p "$out"

browser=""
for b in chromium chromium-browser; do
  if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
done
if [ -z "$browser" ]; then
  echo "+ apt-get install chromium"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  browser=chromium
fi

# 1. Render reports.
reports=()
cli=$target/release/checker
bad=""
for f in checker/testdata/reference/kv/c10-bad.edn ../shared/reference-histories/kv/c10-bad.edn; do
  if [ -f "$f" ]; then bad=$f; break; fi
done
if [ ! -x "$cli" ]; then
  echo "+ cargo build --release -p checker"
  cargo build --release -p checker
fi
check_help=$("$cli" check --help 2>&1 || true)
if [ -n "$bad" ] && [[ "$check_help" == *--report* ]]; then
  echo "+ $cli check $bad --model kv --report $out/c10-bad"
  set +e
  timeout 120 "$cli" check "$bad" --model kv --report "$out/c10-bad"
  rc=$?
  set -e
  if [ "$rc" -ne 1 ]; then echo "checker exited $rc on $bad (expected 1: not linearizable)"; exit 1; fi
  reports+=("$out/c10-bad/report.html")
fi
echo "+ REPORT_KEEP_DIR=$out cargo test -p checker --test report"
REPORT_KEEP_DIR="$(realpath "$out")" cargo test -q -p checker --test report
reports+=("$out/ok/report.html" "$out/bad/report.html" "$out/results/index.html")

# The gate's suite page, when ci/gate.sh ran first (it links every scenario's report).
suite_page=$(ls -d results/suite-*/index.html 2>/dev/null | sort | tail -n 1 || true)
if [ -n "$suite_page" ]; then reports+=("$suite_page"); fi

# 2. Open each page; any console line fails the check.
fail=0
for r in "${reports[@]}"; do
  [ -f "$r" ] || { echo "missing $r"; fail=1; continue; }
  if grep -qE "(src|href)=[\"']?(https?:)?//" "$r"; then
    echo "FAIL $r: loads from the network:"; grep -oE "(src|href)=[\"']?(https?:)?//[^\"' >]*" "$r" | sed -n 1,3p; fail=1
  fi
  profile=$(mktemp -d)
  log="${r%.html}.console.log"
  shot="${r%.html}.png"
  set +e
  timeout 90 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --enable-logging=stderr --v=0 \
    --virtual-time-budget=3000 --window-size=1280,2400 --hide-scrollbars \
    --screenshot="$shot" "file://$(realpath "$r")" >/dev/null 2>"$log"
  rc=$?
  set -e
  rm -rf "$profile"
  if [ "$rc" -ne 0 ]; then echo "FAIL $r: chromium exited $rc (log: $log)"; tail -5 "$log"; fail=1; continue; fi
  if grep -E "CONSOLE|Uncaught" "$log" >/dev/null; then
    echo "FAIL $r: console messages:"; grep -E "CONSOLE|Uncaught" "$log" | sed -n 1,10p; fail=1
  else
    echo "ok   $r ($(du -k "$r" | cut -f1) KiB, no console messages; screenshot $shot)"
  fi
done
# 3. The counterexample hover works: a copy of a failing report (the reference
# history's when the CLI wrote one) hovers a stuck operation and logs what the
# detail panel shows.
src="$out/bad/report.html"
[ -f "$out/c10-bad/report.html" ] && src="$out/c10-bad/report.html"
probe="${src%.html}-hover-probe.html"
{
  cat "$src"
  echo '<script>(function(){var g=document.querySelector(".cx-op.stuck");'
  echo 'if(!g){throw new Error("probe: no stuck operation");}'
  echo 'g.dispatchEvent(new MouseEvent("mouseenter"));'
  echo 'var t=document.querySelector(".cx-detail").textContent;'
  echo 'if(t.indexOf("before")<0){throw new Error("probe: hover panel empty");}'
  echo 'console.log("probe: hover ok");})();</script>'
} > "$probe"
profile=$(mktemp -d)
set +e
timeout 90 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --enable-logging=stderr --v=0 --virtual-time-budget=3000 \
  --dump-dom "file://$(realpath "$probe")" >/dev/null 2>"$probe.log"
set -e
rm -rf "$profile"
if grep -q '"probe: hover ok"' "$probe.log" && ! grep -q "Uncaught" "$probe.log"; then
  echo "ok   counterexample hover shows the model states"
else
  echo "FAIL counterexample hover:"; grep -E "CONSOLE|Uncaught" "$probe.log" | sed -n 1,5p; fail=1
fi
exit $fail
