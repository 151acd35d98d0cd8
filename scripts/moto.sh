#!/usr/bin/env bash
# moto's server mode with IAM enforcement, for the STS path of the IAM authenticator's tests.
#
#   scripts/moto.sh start     install moto if missing, start it on 127.0.0.1:$S3GW_MOTO_PORT (default 5000),
#                             create the test user and its access key, and print where the keys are
#   scripts/moto.sh stop      stop the server started by `start`
#   scripts/moto.sh status    exit 0 and print the endpoint if it runs, exit 1 if not
#   scripts/moto.sh restart   stop, then start (a fresh server: new test user, new keys)
#   scripts/moto.sh install   only install moto into .tools/moto-venv
#
# IAM enforcement: moto checks signatures and policies only after INITIAL_NO_AUTH_ACTION_COUNT
# requests have gone through unchecked (moto/core/authorization.py). We set it to 3 and spend all
# at once, right after the server comes up: CreateUser, CreateAccessKey and PutUserPolicy for the
# test user. From the fourth request on every call is checked: an unknown key gets
# InvalidClientTokenId and a wrong secret SignatureDoesNotMatch. sts:GetCallerIdentity is always
# allowed to a valid key; the policy gives the user what the gateway's own role needs for the
# CloudWatch Logs audit sink (docs/operations.md "What the gateway needs"), plus GetLogEvents for
# the tests that read the records back (moto checks actions, not resources). The keys go to .state/moto-$PORT/test-user.json (mode 600).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

MOTO_VERSION=5.2.5
port=${S3GW_MOTO_PORT:-5000}
venv="$root/.tools/moto-venv"
state="$root/.state/moto-$port"
pidfile="$state/moto.pid"
logfile="$state/moto.log"
creds="$state/test-user.json"
endpoint="http://127.0.0.1:$port"

die() { echo "moto.sh: $*" >&2; exit 1; }

install() {
  if [ -x "$venv/bin/moto_server" ] && [ "$("$venv/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null)" = "$MOTO_VERSION" ]; then
    return 0
  fi
  command -v python3 >/dev/null 2>&1 || die "python3 is missing: run 'apt-get install -y python3 python3-venv'"
  echo "moto.sh: installing moto[server]==$MOTO_VERSION into .tools/moto-venv" >&2
  rm -rf "$venv"
  mkdir -p "$root/.tools"
  python3 -m venv "$venv" || die "cannot create a venv: run 'apt-get install -y python3-venv'"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" \
    || die "pip install failed: run '$venv/bin/pip install moto[server]==$MOTO_VERSION'"
}

running() {
  local pid
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  # The pid must still be our moto_server: a stale pid file must not make `stop` signal another process.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$venv/bin/moto_server -H 127.0.0.1 -p $port"
}

port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

start() {
  if running; then
    [ -f "$creds" ] || die "moto runs (pid $(cat "$pidfile")) but $creds is missing: run 'scripts/moto.sh restart'"
    echo "moto running at $endpoint (pid $(cat "$pidfile")); test user keys in $creds"
    return 0
  fi
  install
  port_busy && die "127.0.0.1:$port is in use by another process: set S3GW_MOTO_PORT to a free port"
  mkdir -p "$state"
  rm -f "$creds"
  INITIAL_NO_AUTH_ACTION_COUNT=3 setsid nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" \
    >"$logfile" 2>&1 </dev/null &
  echo $! >"$pidfile"
  # Wait for the port with plain TCP connects: an HTTP probe could spend one of the free calls.
  for _ in $(seq 1 100); do
    port_busy && break
    # Liveness by pid only: right after the fork the child may not have exec'd moto_server yet
    # (its cmdline is still this shell's), which `running` would take for a dead server.
    kill -0 "$(cat "$pidfile")" 2>/dev/null || die "moto_server exited; see $logfile"
    sleep 0.1
  done
  port_busy || die "moto_server did not open 127.0.0.1:$port within 10 s; see $logfile"
  # The three unchecked calls. boto3 comes with moto; the bootstrap keys are never checked.
  (umask 077; AWS_ACCESS_KEY_ID=AKIABOOTSTRAP0000000 AWS_SECRET_ACCESS_KEY=bootstrap-not-checked \
    "$venv/bin/python" - "$endpoint" "$creds" <<'PY'
import json, sys, boto3
endpoint, out = sys.argv[1], sys.argv[2]
iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")
user = iam.create_user(UserName="s3gw-test")["User"]
key = iam.create_access_key(UserName="s3gw-test")["AccessKey"]
iam.put_user_policy(UserName="s3gw-test", PolicyName="s3gw-audit", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
        "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams",
        "logs:GetLogEvents"]}]}))
with open(out, "w") as f:
    json.dump({"endpoint": endpoint, "userName": user["UserName"], "arn": user["Arn"],
               "accessKeyId": key["AccessKeyId"], "secretAccessKey": key["SecretAccessKey"]}, f)
PY
  ) || { stop; die "creating the test user failed; see $logfile"; }
  echo "moto running at $endpoint (pid $(cat "$pidfile")); test user keys in $creds"
}

stop() {
  if running; then
    local pid
    pid=$(cat "$pidfile")
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    echo "moto stopped (pid $pid)"
  fi
  rm -f "$pidfile" "$creds"
}

status() {
  if running; then
    echo "moto running at $endpoint (pid $(cat "$pidfile"))"
  else
    echo "moto not running"
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  restart) stop; start ;;
  install) install ;;
  *) echo "usage: scripts/moto.sh start|stop|status|restart|install  (port: S3GW_MOTO_PORT, default 5000)" >&2; exit 2 ;;
esac
