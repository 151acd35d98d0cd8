#!/usr/bin/env bash
# The README's quick start: builds s3gw, starts the project's local S3 (MinIO, built with
# `go install` at a pinned version on first run), and runs the gateway against it on
# 127.0.0.1:2222 in the foreground. Prints the sftp command line and demo credentials.
# Ctrl-C stops the gateway; `bash scripts/local-s3.sh stop` stops MinIO.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules/.bin ] || npm ci --no-audit --no-fund
npx tsc -p .
bash scripts/local-s3.sh install
bash scripts/local-s3.sh start
# shellcheck disable=SC1091
. .state/s3-env
port="${S3GW_QUICKSTART_PORT:-2222}"
cat <<MSG

s3gw quick start
  S3 endpoint: ${S3GW_TEST_S3_ENDPOINT} (local MinIO, buckets example-bucket and other-bucket)
  Log in with an access key ID as user name and its secret access key as password:
    user:     ${S3GW_TEST_LEAST_ACCESS_KEY_ID}
    password: ${S3GW_TEST_LEAST_SECRET_ACCESS_KEY}
  Connect:
    sftp -P ${port} ${S3GW_TEST_LEAST_ACCESS_KEY_ID}@127.0.0.1
  (other users: bash scripts/local-s3.sh env)

MSG
# The gateway refuses to run as root; a fresh machine (or a container) may well be logged in as
# root, and this is a local demo, so it is allowed here with the flag that says so.
extra=()
if [ "$(id -u)" = 0 ]; then extra+=(--allow-root); fi
exec node --initial-old-space-size=64 --max-semi-space-size=4 dist/src/cli.js --listen "127.0.0.1:${port}" --state-dir .state \
  --s3-endpoint "${S3GW_TEST_S3_ENDPOINT}" --s3-path-style --s3-region "${S3GW_TEST_REGION:-us-east-1}" "${extra[@]}"
