/**
 * deploy/systemd: the unit passes `systemd-analyze verify` with nothing to say, keeps the
 * hardening the deployment promises (docs/operations.md, issue 7 §4), runs the CLI the package
 * installs with the node flags it would otherwise re-run itself with, stops with SIGTERM after
 * the drain has had its time, and its environment file holds only real settings, valid ones,
 * the commented examples included.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config.js';
import { NODE_FLAGS } from '../../src/node-flags.js';
import { ROOT } from '../helpers/test-server.js';

const DIR = path.join(ROOT, 'deploy', 'systemd');
const UNIT = path.join(DIR, 's3gw.service');
const ENV = path.join(DIR, 's3gw.env');
const test = suite('deploy/systemd');

/** The unit's [Service] settings (later values of a key win, as systemd reads them). */
function service(): Map<string, string> {
  const out = new Map<string, string>();
  let section = '';
  for (const raw of fs.readFileSync(UNIT, 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      section = s[1]!;
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    assert.ok(kv, `not a setting: ${line}`);
    if (section === 'Service') out.set(kv[1]!, kv[2]!);
  }
  return out;
}

/** KEY=value lines of the environment file; `examples` also takes the commented-out ones. */
function envFile(examples: boolean): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of fs.readFileSync(ENV, 'utf8').split('\n')) {
    const line = examples ? raw.replace(/^#(?=S3GW_)/, '') : raw;
    if (line.trim() === '' || line.startsWith('#')) continue;
    const m = /^(S3GW_[A-Z0-9_]+)=(.*)$/.exec(line);
    assert.ok(m, `not a KEY=value line: ${line}`);
    env[m[1]!] = m[2]!;
  }
  return env;
}

test('systemd-analyze verify passes with no warning', () => {
  // verify also checks that ExecStart's program exists: on a machine whose node is not
  // /usr/bin/node (nvm, a tarball), check a copy that names the node running this test.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 's3gw-unit-'));
  const unit = path.join(dir, 's3gw.service');
  fs.writeFileSync(unit, fs.readFileSync(UNIT, 'utf8').replace('ExecStart=/usr/bin/node ', `ExecStart=${process.execPath} `));
  const r = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8', timeout: 30_000 });
  fs.rmSync(dir, { recursive: true, force: true });
  assert.is(r.error, undefined, "systemd-analyze is missing: run 'apt-get install -y systemd' (scripts/setup-test-deps.sh does)");
  assert.is(r.status, 0, r.stderr);
  // Unknown keys are only warnings (status 0): any output at all fails the test.
  assert.is((r.stdout + r.stderr).trim(), '');
});

test('hardening: an unprivileged user, no new privileges, a read-only system, a private /tmp, no capabilities', () => {
  const s = service();
  assert.is(s.get('User'), 's3gw');
  assert.is(s.get('NoNewPrivileges'), 'yes');
  assert.is(s.get('ProtectSystem'), 'strict');
  assert.is(s.get('PrivateTmp'), 'yes');
  assert.is(s.get('CapabilityBoundingSet'), '', 'the capability bound is empty');
  assert.is(s.get('AmbientCapabilities'), '');
  assert.not.ok(s.has('ReadWritePaths'), 'nothing is writable');
  assert.is(s.get('Restart'), 'on-failure');
});

test('ExecStart runs the installed package CLI with NODE_FLAGS; stop is SIGTERM with room for the drain', () => {
  const s = service();
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; bin: Record<string, string> };
  const argv = s.get('ExecStart')!.split(' ');
  assert.equal(argv, ['/usr/bin/node', ...NODE_FLAGS, `/usr/lib/node_modules/${pkg.name}/${pkg.bin[pkg.name]}`]);
  assert.is(s.get('KillSignal'), 'SIGTERM');
  assert.is(s.get('KillMode'), 'mixed', 'only the primary is signalled; it drains its workers');
  const drainMs = loadConfig([], envFile(false)).config.drainTimeoutMs;
  const stopS = Number(s.get('TimeoutStopSec'));
  assert.ok(stopS * 1000 >= drainMs + 30_000, `TimeoutStopSec ${stopS} s leaves room after a ${drainMs} ms drain`);
  assert.is(s.get('EnvironmentFile'), '/etc/s3gw/s3gw.env');
});

test('the environment file: real settings with valid values, examples included; no generated host key', () => {
  for (const examples of [false, true]) {
    const env = envFile(examples);
    const { config } = loadConfig([], env);
    assert.equal(config.hostKeys, ['/etc/s3gw/ssh_host_ed25519_key']);
    assert.equal({ host: config.listenHost, port: config.listenPort }, { host: '0.0.0.0', port: 2222 });
    assert.ok(config.healthListen, 'a health listener for the load balancer');
    if (examples) {
      assert.is(config.cloudwatchLogGroup, '/s3gw/audit');
      assert.is(config.proxyProtocol, true);
    }
  }
  // A misspelt key would be ignored by loadConfig: every key must be one --help names.
  const help = spawnSync(process.execPath, [path.join(ROOT, 'dist/src/cli.js'), '--help'], { encoding: 'utf8' }).stdout;
  for (const key of Object.keys(envFile(true))) assert.ok(help.includes(`[${key}]`), `${key} is a setting`);
});

test.run();
