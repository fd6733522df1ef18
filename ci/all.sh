#!/usr/bin/env bash
# Everything CI checks, in order of cost. Each step prints what it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
bash ci/lint.sh
bash ci/test.sh
bash ci/gate.sh
bash ci/report-check.sh
