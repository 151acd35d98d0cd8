#!/usr/bin/env bash
# The project's local S3: MinIO on loopback, with SSE-S3, two buckets and four users, for
# development, the tests and the README quick start.
#
#   bash scripts/local-s3.sh install   build minio and mc into .tools/bin (go install, pinned versions)
#   bash scripts/local-s3.sh start     install if needed, start MinIO, create buckets/users, write .state/s3-env
#   bash scripts/local-s3.sh stop      stop the MinIO this script started (pid file)
#   bash scripts/local-s3.sh status    exit 0 when running and healthy, 3 when not
#   bash scripts/local-s3.sh env       print .state/s3-env (`eval "$(bash scripts/local-s3.sh env)"`)
#   bash scripts/local-s3.sh reset     stop, then delete .state/minio (data, keys, credentials) and .state/s3-env
#
# MinIO and mc are AGPL-3.0 and are built from source here, never committed (.tools/ is git-ignored).
# MinIO's community edition is source-only and has no semver tags, so both are pinned to pseudo-versions.
#
# State, all under .state/ (git-ignored), generated once and kept until `reset`:
#   .state/minio/secrets.env   root credentials, the KMS static key, the four users' access keys (mode 600)
#   .state/minio/data/         the single-drive data directory
#   .state/minio/mc/           mc's config directory (so ~/.mc is never touched)
#   .state/minio/minio.log, minio.pid, minio.port
#   .state/.local-s3.lock      start, stop and reset wait for each other (flock)
#   .state/s3-env              `export VAR=value` lines the tests read (spec/helpers/s3-env.ts):
#       S3GW_TEST_S3_ENDPOINT, S3GW_TEST_REGION, and S3GW_TEST_{ADMIN,LEAST,ONEBUCKET,NORIGHTS}_
#       {ACCESS_KEY_ID,SECRET_ACCESS_KEY}
#
# Settings:
#   S3GW_MINIO_PORT   S3 API port on 127.0.0.1 (default 9000); the console port is PORT+1 (browser off).
#   S3GW_S3_EXTERNAL  set to 1 to use another S3 endpoint instead of this MinIO: `start` then does nothing
#                     and the tests read the S3GW_TEST_* variables above from the environment only (never
#                     from .state/s3-env). That endpoint must have buckets example-bucket and other-bucket and
#                     four users with the policies in fixtures/s3/policies (see fixtures/s3/README.md).
#
# `start` on a running MinIO is a no-op for the server but still checks its health and re-applies buckets,
# policies and users, so it is safe to run before every test run. SSE-S3 works through a static KMS key
# (MINIO_KMS_SECRET_KEY); buckets get no default encryption because the gateway sends the SSE headers itself.
set -euo pipefail

MINIO_MODULE=github.com/minio/minio
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c   # master 7aac2a2c5 (2026-02-12), last commit of the repository
MC_MODULE=github.com/minio/mc
MC_VERSION=v0.0.0-20250313080218-cf909e1063a9      # the proxy's @latest (2025-03-13; later commits aren't served)
GO_MIN_MINOR=24                                     # minio's go.mod says go 1.24.0

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS="$ROOT/.tools/bin"
STATE="$ROOT/.state"
DIR="$STATE/minio"
DATA="$DIR/data"
SECRETS="$DIR/secrets.env"
PIDFILE="$DIR/minio.pid"
PORTFILE="$DIR/minio.port"
LOG="$DIR/minio.log"
ENVFILE="$STATE/s3-env"
POLICIES="$ROOT/fixtures/s3/policies"
PORT="${S3GW_MINIO_PORT:-9000}"
ENDPOINT="http://127.0.0.1:$PORT"
ALIAS=s3gw
BUCKETS=(example-bucket other-bucket)
# user (env-name prefix) and the policy file it gets; "-" means no policy at all (see fixtures/s3/README.md).
USERS=(ADMIN:admin LEAST:least ONEBUCKET:onebucket NORIGHTS:-)

say() { echo "local-s3: $*" >&2; }
die() { echo "local-s3: error: $*" >&2; exit 1; }

# ------------------------------------------------------------------ install

# Prints "<module>@<version>" recorded next to a binary, or nothing.
installed_version() { cat "$TOOLS/$1.version" 2>/dev/null || true; }

check_go() {
  command -v go >/dev/null 2>&1 ||
    die "Go 1.$GO_MIN_MINOR or newer is needed to build MinIO and mc, and 'go' is not on PATH." \
      "Install it from https://go.dev/dl/ (unpack the tarball into /usr/local, then" \
      "export PATH=/usr/local/go/bin:\$PATH); Debian 12's golang-go 1.19 is too old."
  local v minor
  v=$(go env GOVERSION)
  minor=$(sed -E 's/^go1\.([0-9]+).*/\1/' <<<"$v")
  if ! [[ "$minor" =~ ^[0-9]+$ ]] || ((minor < GO_MIN_MINOR)); then
    die "Go 1.$GO_MIN_MINOR or newer is needed to build MinIO and mc, found $v: install a newer Go from https://go.dev/dl/"
  fi
}

install_one() { # name module version
  local name=$1 module=$2 version=$3 want have
  want="$module@$version"
  have=$(installed_version "$name")
  if [ -x "$TOOLS/$name" ] && [ "$have" = "$want" ]; then
    say "$name is up to date ($want)"
    return
  fi
  check_go
  if [ -x "$TOOLS/$name" ]; then
    say "$name: installed ${have:-version unknown}, want $want: rebuilding"
  fi
  local slow=''
  [ "$name" != minio ] || slow=' (3 to 6 minutes with a cold Go build cache)'
  say "building $name: GOBIN=$TOOLS go install $want$slow"
  mkdir -p "$TOOLS"
  rm -f "$TOOLS/$name.version"
  local t0=$SECONDS
  GOBIN="$TOOLS" go install "$want" || die "go install $want failed (see above)"
  echo "$want" >"$TOOLS/$name.version"
  say "built $TOOLS/$name in $((SECONDS - t0)) s"
}

cmd_install() {
  install_one minio "$MINIO_MODULE" "$MINIO_VERSION"
  install_one mc "$MC_MODULE" "$MC_VERSION"
}

# ------------------------------------------------------------------ secrets

# random STRING of LENGTH characters drawn uniformly from ALPHABET (no pipes, so no SIGPIPE under pipefail).
random() {
  local alphabet=$1 len=$2 out='' b n=${#1}
  local limit=$((256 - 256 % n))
  while ((${#out} < len)); do
    for b in $(od -An -tu1 -N64 /dev/urandom); do
      ((b < limit)) || continue
      out+=${alphabet:b%n:1}
      ((${#out} == len)) && break
    done
  done
  printf '%s' "$out"
}
UPPER_ALNUM=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789
# AWS secret access keys are 40 characters of the base64 alphabet; '+' and '/' are kept on purpose so the
# gateway's handling of them (SSH passwords, URL-encoding in curl sftp:// URLs) gets exercised.
SECRET_ALPHABET=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/
access_key_id() { printf 'AKIA%s' "$(random "$UPPER_ALNUM" 16)"; }
secret_key() { random "$SECRET_ALPHABET" 40; }

# Creates .state/minio/secrets.env once; adds only what is missing, so keys never change under a data dir.
ensure_secrets() {
  mkdir -p "$DIR"
  chmod 700 "$DIR"
  touch "$SECRETS"
  chmod 600 "$SECRETS"
  # Only the file counts: values exported in this shell (say, from an `eval` of an older s3-env) must not
  # become keys that the file does not remember.
  local u p
  for u in "${USERS[@]}"; do
    p=${u%%:*}
    unset "S3GW_TEST_${p}_ACCESS_KEY_ID" "S3GW_TEST_${p}_SECRET_ACCESS_KEY"
  done
  unset MINIO_ROOT_USER MINIO_ROOT_PASSWORD MINIO_KMS_SECRET_KEY
  # shellcheck disable=SC1090
  . "$SECRETS"
  local added=()
  add() { printf '%s=%s\n' "$1" "$2" >>"$SECRETS"; printf -v "$1" '%s' "$2"; added+=("$1"); }
  [ -n "${MINIO_ROOT_USER:-}" ] || add MINIO_ROOT_USER "$(access_key_id)"
  [ -n "${MINIO_ROOT_PASSWORD:-}" ] || add MINIO_ROOT_PASSWORD "$(secret_key)"
  # "<key name>:<base64 of exactly 32 bytes>" (MinIO internal/kms: any other length is "invalid key length").
  [ -n "${MINIO_KMS_SECRET_KEY:-}" ] || add MINIO_KMS_SECRET_KEY "s3gw-key:$(head -c32 /dev/urandom | base64 -w0)"
  for u in "${USERS[@]}"; do
    p=${u%%:*}
    local id="S3GW_TEST_${p}_ACCESS_KEY_ID" sk="S3GW_TEST_${p}_SECRET_ACCESS_KEY"
    [ -n "${!id:-}" ] || add "$id" "$(access_key_id)"
    [ -n "${!sk:-}" ] || add "$sk" "$(secret_key)"
  done
  ((${#added[@]} == 0)) || say "generated ${added[*]} into ${SECRETS#"$ROOT/"}"
}

# ------------------------------------------------------------------ process

running_pid() { # prints the pid when the pid file names a live minio of ours
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  # The pid must still be our binary: a stale pid file must not make us signal an unrelated process.
  [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$TOOLS/minio" ] || return 1
  echo "$pid"
}

healthy() { curl -fsS -o /dev/null --max-time 2 "$ENDPOINT/minio/health/live" 2>/dev/null; }

wait_healthy() { # pid
  local i
  for ((i = 0; i < 300; i++)); do
    healthy && return 0
    kill -0 "$1" 2>/dev/null || { tail -n 30 "$LOG" >&2; die "minio exited during startup (log: ${LOG#"$ROOT/"})"; }
    sleep 0.1
  done
  tail -n 30 "$LOG" >&2
  die "minio did not become healthy at $ENDPOINT/minio/health/live within 30 s (log: ${LOG#"$ROOT/"})"
}

start_server() {
  local pid running_port
  if pid=$(running_pid); then
    running_port=$(cat "$PORTFILE" 2>/dev/null || echo 9000)
    [ "$running_port" = "$PORT" ] ||
      die "minio is already running on port $running_port (pid $pid):" \
        "run 'bash scripts/local-s3.sh stop' before changing S3GW_MINIO_PORT"
    wait_healthy "$pid"
    say "minio already running (pid $pid) at $ENDPOINT"
    return
  fi
  if healthy || (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    die "something else listens on 127.0.0.1:$PORT; stop it or choose another port with S3GW_MINIO_PORT"
  fi
  mkdir -p "$DATA"
  say "starting minio at $ENDPOINT (data ${DATA#"$ROOT/"}, log ${LOG#"$ROOT/"})"
  # setsid: MinIO outlives this script and a Ctrl-C in the terminal that started it. 9>&-: it must not
  # inherit the lock, or the next start would wait for MinIO to exit.
  # MINIO_KMS_SECRET_KEY enables SSE-S3 (and SSE-KMS with key id s3gw-key) without a KES server.
  MINIO_ROOT_USER="$MINIO_ROOT_USER" MINIO_ROOT_PASSWORD="$MINIO_ROOT_PASSWORD" \
    MINIO_KMS_SECRET_KEY="$MINIO_KMS_SECRET_KEY" MINIO_BROWSER=off MINIO_UPDATE=off \
    setsid "$TOOLS/minio" server "$DATA" --quiet --address "127.0.0.1:$PORT" \
    --console-address "127.0.0.1:$((PORT + 1))" </dev/null >>"$LOG" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$PIDFILE"
  echo "$PORT" >"$PORTFILE"
  wait_healthy "$pid"
  say "minio is up (pid $pid)"
}

# ------------------------------------------------------------------ buckets, policies, users

mc() { "$TOOLS/mc" --config-dir "$DIR/mc" --no-color --quiet "$@"; }

# mc with retries: right after /minio/health/live answers, IAM may still be initialising.
mc_retry() {
  local i out
  for ((i = 0; i < 50; i++)); do
    if out=$(mc "$@" 2>&1); then return 0; fi
    sleep 0.2
  done
  echo "$out" >&2
  die "mc $* failed"
}

provision() {
  mc_retry alias set "$ALIAS" "$ENDPOINT" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" --api s3v4 --path on
  mc_retry ready "$ALIAS"
  local b
  for b in "${BUCKETS[@]}"; do mc_retry mb --ignore-existing "$ALIAS/$b"; done
  local u p file id sk policy
  for u in "${USERS[@]}"; do
    p=${u%%:*} file=${u#*:}
    id="S3GW_TEST_${p}_ACCESS_KEY_ID" sk="S3GW_TEST_${p}_SECRET_ACCESS_KEY"
    # user add on an existing user just sets the secret again (idempotent).
    mc_retry admin user add "$ALIAS" "${!id}" "${!sk}"
    local want=''
    if [ "$file" != - ]; then
      want="s3gw-$file"
      # policy create overwrites a policy of that name, so edits to the fixture take effect on the next start.
      mc_retry admin policy create "$ALIAS" "$want" "$POLICIES/$file.json"
    fi
    # Make the attached policies exactly $want: detach anything else (someone's experiment), attach $want
    # unless it is there. policyName is "a,b" when several are attached, absent when none is.
    local have
    have=$(mc admin user info "$ALIAS" "${!id}" --json | sed -nE 's/.*"policyName": *"([^"]*)".*/\1/p') || have=
    for policy in ${have//,/ }; do
      [ "$policy" = "$want" ] || mc_retry admin policy detach "$ALIAS" "$policy" --user "${!id}"
    done
    if [ -n "$want" ] && [[ ",$have," != *",$want,"* ]]; then
      mc_retry admin policy attach "$ALIAS" "$want" --user "${!id}"
    fi
  done
  say "buckets ${BUCKETS[*]}; users admin, least, onebucket, norights (fixtures/s3/README.md)"
}

write_env() {
  local tmp="$ENVFILE.tmp" u p id sk
  {
    echo "# Written by scripts/local-s3.sh start: the local MinIO for the tests (spec/helpers/s3-env.ts)."
    echo "export S3GW_TEST_S3_ENDPOINT=$ENDPOINT"
    echo "export S3GW_TEST_REGION=us-east-1"
    for u in "${USERS[@]}"; do
      p=${u%%:*} id="S3GW_TEST_${p}_ACCESS_KEY_ID" sk="S3GW_TEST_${p}_SECRET_ACCESS_KEY"
      echo "export $id=${!id}"
      echo "export $sk=${!sk}"
    done
  } >"$tmp"
  chmod 600 "$tmp"
  mv "$tmp" "$ENVFILE"
  say "wrote ${ENVFILE#"$ROOT/"}"
}

# ------------------------------------------------------------------ commands

lock() { # one start/stop/reset at a time (two test runs starting together)
  mkdir -p "$STATE"
  exec 9>"$STATE/.local-s3.lock"
  command -v flock >/dev/null 2>&1 || return 0
  flock -w 600 9 || die "another local-s3.sh holds .state/.local-s3.lock for 10 minutes"
}

cmd_start() {
  if [ "${S3GW_S3_EXTERNAL:-}" = 1 ]; then
    say "S3GW_S3_EXTERNAL=1: not starting MinIO; the tests read S3GW_TEST_* from the environment"
    return
  fi
  command -v curl >/dev/null 2>&1 || die "curl is needed: run 'sudo apt-get install -y curl'"
  lock
  cmd_install
  ensure_secrets
  start_server
  provision
  write_env
  say "ready: $ENDPOINT (credentials: bash scripts/local-s3.sh env)"
}

cmd_stop() {
  lock
  local pid i
  if ! pid=$(running_pid); then
    rm -f "$PIDFILE" "$PORTFILE"
    say "minio is not running"
    return
  fi
  kill -TERM "$pid"
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "minio (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE" "$PORTFILE"
  say "stopped minio (pid $pid)"
}

cmd_status() {
  local pid
  if pid=$(running_pid); then
    PORT=$(cat "$PORTFILE" 2>/dev/null || echo "$PORT")
    ENDPOINT="http://127.0.0.1:$PORT"
    if healthy; then
      echo "running: pid $pid, $ENDPOINT, healthy"
      return 0
    fi
    echo "running: pid $pid, $ENDPOINT, NOT healthy (log: ${LOG#"$ROOT/"})"
    return 3
  fi
  echo "not running"
  return 3
}

cmd_env() {
  [ -f "$ENVFILE" ] || die "${ENVFILE#"$ROOT/"} does not exist: run 'bash scripts/local-s3.sh start'"
  cat "$ENVFILE"
}

cmd_reset() {
  cmd_stop
  rm -rf "$DIR" "$ENVFILE"
  say "deleted .state/minio and .state/s3-env"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  reset) cmd_reset ;;
  *)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
