#!/usr/bin/env bash
# The one test command (README: `npm test`). Installs what the tests need, builds, runs every
# suite under spec/, and ends with a plain "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-test-deps.sh
[ -d node_modules/.bin ] || npm ci --no-audit --no-fund
npx tsc -p .

pattern="${1:-}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
# uvu runs each file in this process; --bail is off so every failure is listed.
node node_modules/uvu/bin.js dist/spec "${pattern:-\\.test\\.js$}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
total=$(grep -Eo 'Total: +[0-9]+' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
passed=$(grep -Eo 'Passed: +[0-9]+' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
skipped=$(grep -Eo 'Skipped: +[0-9]+' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
failed=$((total - passed - skipped))
echo "tests: ${passed} passed, ${failed} failed"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$total" -eq 0 ] || [ "$skipped" -ne 0 ]; then
  [ "$skipped" -ne 0 ] && echo "error: ${skipped} tests were skipped; nothing may be skipped" >&2
  exit 1
fi
