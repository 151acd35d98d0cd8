#!/usr/bin/env bash
# The one test command (README: `npm test`). Installs what the tests need, builds, runs every
# suite under spec/, and ends with a plain "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-test-deps.sh
[ -d node_modules/.bin ] || npm ci --no-audit --no-fund
npx tsc -p .

# Services the integration tests need. The local MinIO is built (pinned, go install) and
# started here unless S3GW_S3_EXTERNAL=1 points the tests at another endpoint; if this script
# started it, it stops it again. moto (STS) is started by the suites that need it
# (spec/helpers/moto.ts) and installed by scripts/moto.sh on first use.
started_s3=0
if [ "${S3GW_S3_EXTERNAL:-0}" != 1 ]; then
  bash scripts/local-s3.sh install
  if ! bash scripts/local-s3.sh status >/dev/null 2>&1; then started_s3=1; fi
  bash scripts/local-s3.sh start
fi
bash scripts/moto.sh install

pattern="${1:-}"
log=$(mktemp)
cleanup() {
  rm -f "$log"
  if [ "$started_s3" = 1 ]; then bash scripts/local-s3.sh stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
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
