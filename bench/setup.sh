#!/usr/bin/env bash
# Installs what bench/ssh-throughput.ts compares against, outside the project's dependencies:
#   - OpenSSH's sshd (Debian openssh-server) for the reference server, and the ssh client;
#   - npm ssh2 1.17.0 in bench/.deps, with its optional native crypto binding compiled by node-gyp.
# The benchmark loads ssh2 from bench/.deps twice: once as installed (binding) and once with the
# binding hidden from require (node:crypto only). Idempotent: does nothing when all is present.
set -euo pipefail
cd "$(dirname "$0")"

SSH2_VERSION=1.17.0
DEPS="$PWD/.deps"

need_apt=()
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need_apt+=(openssh-client)
command -v ssh-keygen >/dev/null 2>&1 || need_apt+=(openssh-client)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# node-gyp needs a compiler, make and python to build ssh2's binding.
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
command -v make >/dev/null 2>&1 || need_apt+=(make)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bench/setup.sh: missing ${need_apt[*]}: run 'sudo apt-get install -y ${need_apt[*]}'" >&2
    exit 1
  fi
  echo "bench/setup.sh: installing ${need_apt[*]}" >&2
  # Installing openssh-server must not start a system-wide sshd on port 22: the benchmark runs
  # its own on loopback. policy-rc.d is Debian's switch for that; put one only for this install.
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
  fi
  trap '[ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# The download counter splices the client's output into /dev/null (os.splice: Python 3.10+).
python3 -c 'import os; os.splice' 2>/dev/null || {
  echo "bench/setup.sh: python3 >= 3.10 with os.splice is needed for the download byte counter" >&2
  exit 1
}

binding="$DEPS/node_modules/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node"
installed_version() { node -p "require('$DEPS/node_modules/ssh2/package.json').version" 2>/dev/null || true; }
if [ "$(installed_version)" != "$SSH2_VERSION" ] || [ ! -f "$binding" ]; then
  echo "bench/setup.sh: installing ssh2@$SSH2_VERSION into bench/.deps (builds its native binding)" >&2
  mkdir -p "$DEPS"
  # A package.json of its own keeps npm from walking up to the project's and adding ssh2 there.
  [ -f "$DEPS/package.json" ] || echo '{ "name": "s3gw-bench-deps", "private": true }' > "$DEPS/package.json"
  # node-gyp needs Node's headers; it would download them unless told where the local ones are.
  node_prefix=$(node -p 'require("path").resolve(process.execPath, "../..")')
  if [ -f "$node_prefix/include/node/node.h" ]; then export npm_config_nodedir="$node_prefix"; fi
  # ssh2's install script runs node-gyp on lib/protocol/crypto; its failure is not an npm error,
  # so the binding's presence is checked below.
  npm install --prefix "$DEPS" --no-audit --no-fund --no-save --foreground-scripts "ssh2@$SSH2_VERSION" >&2
fi
if [ ! -f "$binding" ]; then
  echo "bench/setup.sh: ssh2's native binding did not build ($binding missing)." >&2
  echo "  It needs g++, make, python3 and Node's headers; see the npm output above." >&2
  exit 1
fi
node -e "
  const c = require('$DEPS/node_modules/ssh2/lib/protocol/crypto.js');
  if (!c.bindingAvailable) { console.error('bench/setup.sh: ssh2 does not load its binding'); process.exit(1); }
"
echo "bench/setup.sh: ready (sshd $(/usr/sbin/sshd -V 2>&1 | head -1 || true), ssh2 $(installed_version) with binding)" >&2
