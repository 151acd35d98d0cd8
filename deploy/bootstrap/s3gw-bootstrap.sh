#!/usr/bin/env bash
# Instance bootstrap for the CloudFormation templates (deploy/cloudformation/), run once by
# cloud-init as EC2 user data on Amazon Linux 2023. The template puts its parameters in front
# of this file as exported variables:
#
#   S3GW_PACKAGE          what to install, the output of `npm pack`: s3://bucket/key of it,
#                         an https:// URL of it, or an npm spec (name@version)
#   S3GW_PACKAGE_SHA256   the tarball's SHA-256 in hex, or empty to skip the check
#   S3GW_NODE_MAJOR       Node.js major version to install from the AL2023 repositories
#   S3GW_HOST_KEY_SECRET  Secrets Manager secret holding the shared host key (derive_host_key)
#   S3GW_LOG_GROUP        CloudWatch Logs group for the audit log
#   S3GW_SSE              server-side encryption: AES256, aws:kms or aws:kms:KEY-ARN
#   S3GW_REGION, S3GW_STACK, S3GW_RESOURCE   where to send the cfn-signal
#
# It installs Node.js and the package, checks the Node.js version against the package's
# "engines", writes the shared host key and /etc/s3gw/s3gw.env, starts the systemd unit that
# ships in the package (deploy/systemd/s3gw.service), waits for /health and then for the load
# balancer's checks, and signals CloudFormation: success only when the gateway answers, failure
# with the reason otherwise.
# Nothing here prints a secret: the host key never reaches a command line or the log.
set -euo pipefail
umask 022

# Fixed for the templates; the variables exist so that spec/deploy/bootstrap.test.ts can run
# the whole script on a test machine (its own user, directories and ports).
ETC_DIR=${S3GW_ETC_DIR:-/etc/s3gw}
PREFIX=${S3GW_PREFIX:-/usr}
UNIT_DIR=${S3GW_UNIT_DIR:-/etc/systemd/system}
SERVICE_USER=${S3GW_SERVICE_USER:-s3gw}
HEALTH_PORT=${S3GW_HEALTH_PORT:-9100}
# Seconds between the gateway's first healthy answer and the signal: the load balancer marks a
# target healthy after 2 checks 10 s apart (the template's target group), and CloudFormation
# retires an old instance as soon as the new one signals.
SIGNAL_DELAY=${S3GW_SIGNAL_DELAY:-30}
BOOTSTRAP_LOG=${S3GW_BOOTSTRAP_LOG:-/var/log/s3gw-bootstrap.log}
CFN_SIGNAL=${S3GW_CFN_SIGNAL:-/opt/aws/bin/cfn-signal}
HOST_KEY_FILE=ssh_host_ed25519_key

log() { printf 's3gw-bootstrap: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# version_at_least HAVE WANT: true when dotted version HAVE >= WANT (missing parts are 0).
version_at_least() {
  local -a have want
  IFS=. read -r -a have <<<"${1#v}"
  IFS=. read -r -a want <<<"${2#v}"
  local i h w
  for i in 0 1 2; do
    h=${have[i]:-0} w=${want[i]:-0}
    [[ $h =~ ^[0-9]+$ && $w =~ ^[0-9]+$ ]] || return 1
    ((10#$h > 10#$w)) && return 0
    ((10#$h < 10#$w)) && return 1
  done
  return 0
}

# engines_minimum RANGE: the lowest version a ">=X.Y[.Z]" engines range allows. Other range
# forms are refused rather than guessed at.
engines_minimum() {
  local range=${1// /}
  [[ $range =~ ^\>=v?([0-9]+(\.[0-9]+){0,2})$ ]] || return 1
  printf '%s\n' "${BASH_REMATCH[1]}"
}

# check_node NODE_VERSION ENGINES_RANGE: fails with the reason unless NODE_VERSION satisfies
# the range.
check_node() {
  local min
  min=$(engines_minimum "$2") || die "package engines.node \"$2\" is not of the form >=X.Y.Z"
  version_at_least "$1" "$min" || die "Node.js $1 is older than the package needs ($2)"
  log "Node.js $1 satisfies engines.node $2"
}

# fetch_package SOURCE DIR: puts the package tarball into DIR and prints its path.
fetch_package() {
  local src=$1 dir=$2 out
  case $src in
    s3://*)
      out="$dir/package.tgz"
      aws s3 cp --only-show-errors "$src" "$out" >&2 || die "cannot download $src"
      ;;
    https://*)
      out="$dir/package.tgz"
      curl -fsSL --proto '=https' --retry 5 -o "$out" "$src" || die "cannot download $src"
      ;;
    http://*) die "refusing to install over plain http: $src" ;;
    *)
      # An npm spec (name@version) or a local tarball: npm pack fetches it from the registry.
      out=$(cd "$dir" && npm pack --silent "$src" | tail -n 1) || die "npm pack $src failed"
      out="$dir/$out"
      ;;
  esac
  [ -s "$out" ] || die "no package tarball from $src"
  printf '%s\n' "$out"
}

# verify_sha256 FILE WANT: no-op when WANT is empty.
verify_sha256() {
  [ -n "$2" ] || return 0
  local have
  have=$(sha256sum "$1" | cut -d' ' -f1)
  [ "$have" = "${2,,}" ] || die "package SHA-256 is $have, expected $2"
  log "package SHA-256 verified"
}

# package_engines TARBALL: the engines.node range in the tarball's package.json.
package_engines() {
  tar -xzOf "$1" package/package.json |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const e=(JSON.parse(s).engines||{}).node;if(!e)process.exit(1);console.log(e)})'
}

# derive_host_key: reads a secret on stdin and writes an ed25519 private key (PKCS#8 PEM) to
# stdout. A secret that is already a private key (PEM or OpenSSH format) is written as it is.
# Otherwise the key's 32-byte seed is SHA-256("s3gw-host-key-v1:" || secret): every instance
# that reads the same secret derives the same key, and the template can create the secret
# with CloudFormation's random generator (64 letters and digits, about 381 bits).
derive_host_key() {
  local secret
  secret=$(cat)
  [ -n "$secret" ] || die "the host key secret is empty"
  if [[ $secret == -----BEGIN* ]]; then
    printf '%s\n' "$secret"
    return
  fi
  # PKCS#8 PrivateKeyInfo for Ed25519 (RFC 8410 §7) is this 16-byte prefix and the seed.
  { printf '\x30\x2e\x02\x01\x00\x30\x05\x06\x03\x2b\x65\x70\x04\x22\x04\x20'
    printf 's3gw-host-key-v1:%s' "$secret" | openssl dgst -sha256 -binary
  } | openssl pkey -inform DER -outform PEM
}

# write_host_key SECRET_ID FILE GROUP: the shared key, readable by the gateway's group only.
write_host_key() {
  local tmp
  tmp=$(mktemp "$2.XXXXXX")
  chmod 0640 "$tmp"
  aws secretsmanager get-secret-value --secret-id "$1" --query SecretString --output text |
    derive_host_key >"$tmp" || { rm -f "$tmp"; die "cannot read the host key from secret $1"; }
  chgrp "$3" "$tmp"
  mv -f "$tmp" "$2"
}

# set_env FILE KEY VALUE: sets KEY=VALUE in an environment file, replacing an earlier line
# (commented out or not) for the same key.
set_env() {
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  awk -v key="$2" -v line="$2=$3" '
    $0 ~ "^#?" key "=" { if (!done) print line; done = 1; next }
    { print }
    END { if (!done) print line }
  ' "$1" >"$tmp"
  chown --reference="$1" "$tmp"
  chmod --reference="$1" "$tmp"
  mv -f "$tmp" "$1"
}

imds() {
  local token
  token=$(curl -fsS -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token)
  curl -fsS -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"
}

signal() { # 0|1 [reason]
  "$CFN_SIGNAL" -e "$1" --stack "$S3GW_STACK" --resource "$S3GW_RESOURCE" \
    --region "$S3GW_REGION" ${2:+--reason "$2"} || log "cfn-signal failed"
}

# Any failure after this point tells CloudFormation at once, instead of after the timeout.
on_exit() {
  local rc=$?
  [ "$rc" -eq 0 ] || signal 1 "bootstrap exited with status $rc; see $BOOTSTRAP_LOG"
}

wait_healthy() {
  local i
  for i in $(seq 1 60); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$HEALTH_PORT/health"; then return 0; fi
    sleep 2
  done
  log "attempts: $i"
  return 1
}

main() {
  : "${S3GW_PACKAGE:?}" "${S3GW_NODE_MAJOR:?}" "${S3GW_HOST_KEY_SECRET:?}" "${S3GW_LOG_GROUP:?}"
  : "${S3GW_SSE:?}" "${S3GW_REGION:?}" "${S3GW_STACK:?}" "${S3GW_RESOURCE:?}"
  exec > >(tee -a "$BOOTSTRAP_LOG") 2>&1
  trap on_exit EXIT
  export AWS_DEFAULT_REGION=$S3GW_REGION
  # cloud-init may run this without HOME, which npm needs; its cache goes with the work dir.
  export HOME=${HOME:-/root}

  local m=$S3GW_NODE_MAJOR work tarball app
  # cfn-signal first, on its own, so that any later failure can be reported at once.
  dnf install -y -q aws-cfn-bootstrap
  dnf install -y -q "nodejs$m" "nodejs$m-npm"
  alternatives --set node "/usr/bin/node-$m"

  work=$(mktemp -d)
  export npm_config_cache="$work/npm-cache"
  tarball=$(fetch_package "$S3GW_PACKAGE" "$work")
  verify_sha256 "$tarball" "${S3GW_PACKAGE_SHA256:-}"
  check_node "$(node --version)" "$(package_engines "$tarball")"
  # The unit runs /usr/lib/node_modules/s3gw; no package script runs as root. The package
  # bundles its dependencies (the versions the tests ran), so nothing comes from a registry.
  app="$PREFIX/lib/node_modules/s3gw"
  npm install --global --prefix "$PREFIX" --offline --omit=dev --ignore-scripts --no-audit --no-fund "$tarball"
  log "installed $(node "$app/dist/src/cli.js" --version)"

  id "$SERVICE_USER" >/dev/null 2>&1 ||
    useradd --system --no-create-home --home-dir / --shell /sbin/nologin "$SERVICE_USER"
  install -d -m 0750 -g "$SERVICE_USER" "$ETC_DIR"
  write_host_key "$S3GW_HOST_KEY_SECRET" "$ETC_DIR/$HOST_KEY_FILE" "$SERVICE_USER"

  local env="$ETC_DIR/s3gw.env"
  install -m 0640 -g "$SERVICE_USER" "$app/deploy/systemd/s3gw.env" "$env"
  set_env "$env" S3GW_HOST_KEY "$ETC_DIR/$HOST_KEY_FILE"
  set_env "$env" S3GW_S3_REGION "$S3GW_REGION"
  set_env "$env" S3GW_SSE "$S3GW_SSE"
  set_env "$env" S3GW_HEALTH_LISTEN "0.0.0.0:$HEALTH_PORT"
  set_env "$env" S3GW_CLOUDWATCH_LOG_GROUP "$S3GW_LOG_GROUP"
  set_env "$env" S3GW_INSTANCE_ID "$(imds instance-id)"

  install -m 0644 "$app/deploy/systemd/s3gw.service" "$UNIT_DIR/s3gw.service"
  systemctl daemon-reload
  systemctl enable --now s3gw
  wait_healthy || die "the gateway did not become healthy; see journalctl -u s3gw"
  log "healthy; signalling in ${SIGNAL_DELAY}s, once the load balancer has seen it too"
  sleep "$SIGNAL_DELAY"
  systemctl is-active --quiet s3gw || die "the gateway stopped; see journalctl -u s3gw"
  rm -rf "$work"
  trap - EXIT
  signal 0
  log "done"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then main "$@"; fi
