#!/usr/bin/env bash
# Installs the real clients the interop tests drive: OpenSSH's ssh/sftp/scp and ssh-keygen,
# curl with libssh2, paramiko, and HAProxy (a load balancer in front of gateways), and the
# checkers of deploy/: systemd-analyze, shellcheck and cfn-lint. Idempotent: does nothing when
# all are present.
set -euo pipefail
need_apt=()
command -v ssh >/dev/null 2>&1 || need_apt+=(openssh-client)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
# HAProxy in front of gateways (spec/gateway/haproxy.test.ts): PROXY protocol v1/v2, failover.
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need_apt+=(haproxy)
# systemd-analyze verify checks deploy/systemd/s3gw.service (spec/deploy/systemd.test.ts).
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
# ShellCheck lints the instance bootstrap (spec/deploy/bootstrap.test.ts).
command -v shellcheck >/dev/null 2>&1 || need_apt+=(shellcheck)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing ${need_apt[*]}: run 'sudo apt-get install -y ${need_apt[*]}'" >&2
    exit 1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! python3 -c 'import paramiko' >/dev/null 2>&1; then
  echo "setup: installing paramiko (pip)" >&2
  python3 -m pip install --quiet --disable-pip-version-check 'paramiko==3.5.1' \
    || { echo "setup: paramiko is missing: run 'python3 -m pip install paramiko==3.5.1'" >&2; exit 1; }
fi
# cfn-lint checks the synthesized CloudFormation templates (spec/deploy/templates.test.ts).
CFN_LINT_VERSION=1.51.0
if [ "$(python3 -c 'import importlib.metadata as m; print(m.version("cfn-lint"))' 2>/dev/null)" != "$CFN_LINT_VERSION" ]; then
  echo "setup: installing cfn-lint $CFN_LINT_VERSION (pip)" >&2
  python3 -m pip install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION" \
    || { echo "setup: cfn-lint is missing: run 'python3 -m pip install cfn-lint==$CFN_LINT_VERSION'" >&2; exit 1; }
fi
