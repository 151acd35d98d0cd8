/**
 * deploy/bootstrap/s3gw-bootstrap.sh, the instances' user data.
 *
 * Its functions one by one (the version check, the host key derivation, the environment file
 * editor, the package download checks), ShellCheck on it and on scripts/*.sh, and then the user
 * data of the standalone template, as CloudFormation would render it for the test's parameters,
 * run as root on this machine: it installs the `npm pack` output of this checkout with the
 * real npm, creates a real system user, writes the host key and the environment file, and starts
 * the gateway from the installed package's own unit as that user. Only what needs an EC2
 * instance is stood in for by small scripts on PATH that record their arguments: dnf and
 * alternatives (Node.js is already here), the AWS CLI's get-secret-value (prints a secret the
 * test made), the metadata service (an instance id), systemctl (runs the unit's ExecStart with
 * its EnvironmentFile as its User would) and cfn-signal. The started gateway then serves OpenSSH
 * sftp against the local MinIO with the host key derived from the secret, and its audit records
 * reach moto's CloudWatch Logs in the stream named for the instance.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomInt } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CloudWatchLogsClient, CreateLogGroupCommand, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { ed25519 } from '@noble/curves/ed25519.js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config.js';
import { parseHostKey } from '../../src/transport/host-keys.js';
import { BUCKET, assertOk, e2ePrefix, eventually, headOrNull, payload, removePrefix, s3env, sshClientEnv, sshOptions, askpassEnv } from '../helpers/gateway.js';
import { Stack } from '../helpers/cfn.js';
import { startMoto, stopMoto } from '../helpers/moto.js';
import { runProcess, sleep } from '../helpers/openssh.js';
import { parseEnvFile } from '../helpers/s3-env.js';
import { ROOT, freePort } from '../helpers/test-server.js';

const SCRIPT = path.join(ROOT, 'deploy', 'bootstrap', 's3gw-bootstrap.sh');
const UNIT = path.join(ROOT, 'deploy', 'systemd', 's3gw.service');
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  engines: { node: string };
  dependencies: Record<string, string>;
  bundleDependencies: string[];
  files: string[];
};
const test = suite('deploy/bootstrap');

/**
 * Runs `bash -c CODE` with the script's functions loaded (its main does not run when sourced);
 * `args` are $2, $3, ...
 */
function fn(code: string, input?: string, args: string[] = []): { status: number; out: string; err: string } {
  const r = spawnSync('bash', ['-c', `source "$1"; ${code}`, 'bash', SCRIPT, ...args], {
    input,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** What CloudFormation's GenerateSecretString makes with the template's settings. */
function randomSecret(): string {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from({ length: 64 }, () => abc[randomInt(abc.length)]).join('');
}

/** The ed25519 public key docs/deploy.md says a secret gives: seed = SHA-256("s3gw-host-key-v1:" || secret). */
function expectedPublicKey(secret: string): Uint8Array {
  return ed25519.getPublicKey(createHash('sha256').update(`s3gw-host-key-v1:${secret}`).digest());
}

function publicKeyOf(pem: string): Uint8Array {
  const key = parseHostKey(pem);
  // The key blob is string "ssh-ed25519", string key: the last 32 bytes.
  return key.publicBlob.subarray(key.publicBlob.length - 32);
}

test('the package bundles every dependency and ships the systemd unit the bootstrap installs', () => {
  assert.equal([...PKG.bundleDependencies].sort(), Object.keys(PKG.dependencies).sort());
  assert.ok(PKG.files.includes('deploy/systemd'));
});

test('ShellCheck finds nothing in the bootstrap, in scripts/*.sh or in the test stand-ins', () => {
  const scripts = fs.readdirSync(path.join(ROOT, 'scripts')).filter((f) => f.endsWith('.sh')).map((f) => path.join(ROOT, 'scripts', f));
  const stubs = fs.readdirSync(path.join(ROOT, 'fixtures', 'bootstrap-stubs')).filter((f) => !f.endsWith('.md'));
  assert.ok(stubs.length >= 6);
  scripts.push(...stubs.map((f) => path.join(ROOT, 'fixtures', 'bootstrap-stubs', f)));
  const r = spawnSync('shellcheck', ['--severity=style', SCRIPT, ...scripts], { encoding: 'utf8', timeout: 60_000 });
  assert.is(r.error, undefined, "shellcheck is missing: run 'apt-get install -y shellcheck' (scripts/setup-test-deps.sh does)");
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.is(r.stdout + r.stderr, '');
});

test('version_at_least compares dotted versions numerically, a leading v allowed', () => {
  const at = (have: string, want: string) => fn(`version_at_least ${have} ${want}`).status === 0;
  assert.ok(at('v20.19.0', '20.19'));
  assert.ok(at('v22.1.0', '20.19'));
  assert.ok(at('20.19.1', '20.19.0'));
  assert.ok(at('v20.100.0', '20.19'), 'numeric, not lexical');
  assert.not.ok(at('v20.18.3', '20.19'));
  assert.not.ok(at('v18.20.4', '20.19'));
  assert.not.ok(at('v20.9.0', '20.19'), 'numeric, not lexical');
  assert.not.ok(at('garbage', '20.19'));
});

test("check_node takes the minimum from the package's engines and refuses an older Node.js", () => {
  // The package's own range, as the script reads it from the tarball.
  assert.is(fn(`check_node ${process.version} '${PKG.engines.node}'`).status, 0);
  const old = fn(`check_node v20.18.0 '${PKG.engines.node}'`);
  assert.is(old.status, 1);
  assert.match(old.err, `Node.js v20.18.0 is older than the package needs (${PKG.engines.node})`);
  assert.is(fn(`check_node v24.0.0 '>= 20.19.2'`).status, 0);
  // A range the script cannot read is refused rather than guessed at.
  const caret = fn(`check_node v22.0.0 '^20.19'`);
  assert.is(caret.status, 1);
  assert.match(caret.err, 'is not of the form >=X.Y.Z');
});

test('derive_host_key: the same secret gives the same ed25519 key, the documented one, loadable by the gateway', () => {
  const secret = randomSecret();
  const a = fn('derive_host_key', `${secret}\n`);
  assert.is(a.status, 0, a.err);
  assert.match(a.out, /^-----BEGIN PRIVATE KEY-----\n/);
  assert.not.match(a.out + a.err, secret);
  assert.equal(publicKeyOf(a.out), expectedPublicKey(secret));
  // Another instance reading the same secret (the AWS CLI's trailing newline or not).
  const b = fn('derive_host_key', secret);
  assert.is(b.out, a.out);
  const other = fn('derive_host_key', randomSecret());
  assert.is.not(other.out, a.out);
  assert.equal(publicKeyOf(other.out).length, 32);
});

test('derive_host_key: a secret that is a private key already is used as it is', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 's3gw-bootstrap-'));
  try {
    const file = path.join(dir, 'key');
    const k = spawnSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-b', '384', '-N', '', '-C', '', '-f', file], { encoding: 'utf8' });
    assert.is(k.status, 0, k.stderr);
    const text = fs.readFileSync(file, 'utf8');
    const r = fn('derive_host_key', text);
    assert.is(r.status, 0, r.err);
    assert.is(r.out.trim(), text.trim());
    assert.is(parseHostKey(r.out).type, 'ecdsa-sha2-nistp384');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('derive_host_key refuses an empty secret', () => {
  const r = fn('derive_host_key', '');
  assert.is(r.status, 1);
  assert.match(r.err, 'the host key secret is empty');
  assert.is(r.out, '');
});

test('set_env replaces a setting, uncomments an example, appends a new one, keeps the rest, the mode and the owner', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 's3gw-bootstrap-'));
  try {
    const file = path.join(dir, 's3gw.env');
    fs.copyFileSync(path.join(ROOT, 'deploy', 'systemd', 's3gw.env'), file);
    fs.chmodSync(file, 0o640);
    // As the bootstrap installs it: root-owned, in the service user's group (here: nogroup).
    const gid = 65534;
    if (process.getuid?.() === 0) fs.chownSync(file, 0, gid);
    const before = fs.readFileSync(file, 'utf8');
    const kms = 'aws:kms:arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const r = fn(
      'set_env "$2" S3GW_SSE "$3"; set_env "$2" S3GW_CLOUDWATCH_LOG_GROUP s3gw-audit-AbC123; set_env "$2" S3GW_INSTANCE_ID i-0123456789abcdef0',
      undefined,
      [file, kms],
    );
    assert.is(r.status, 0, r.err);
    const after = fs.readFileSync(file, 'utf8');
    assert.is((fs.statSync(file).mode & 0o777).toString(8), '640');
    if (process.getuid?.() === 0) assert.is(fs.statSync(file).gid, gid, 'the group is kept');
    const lines = after.split('\n');
    assert.equal(lines.filter((l) => /^#?S3GW_SSE=/.test(l)), [`S3GW_SSE=${kms}`]);
    assert.equal(lines.filter((l) => /^#?S3GW_CLOUDWATCH_LOG_GROUP=/.test(l)), ['S3GW_CLOUDWATCH_LOG_GROUP=s3gw-audit-AbC123']);
    assert.is(lines.filter((l) => l === 'S3GW_INSTANCE_ID=i-0123456789abcdef0').length, 1);
    // Everything else is untouched, in order.
    const untouched = (t: string) => t.split('\n').filter((l) => !/^#?S3GW_(SSE|CLOUDWATCH_LOG_GROUP|INSTANCE_ID)=/.test(l) && l !== '');
    assert.equal(untouched(after), untouched(before));
    // And the gateway reads it.
    const { config: cfg } = loadConfig([], { ...Object.fromEntries(parseEnvFile(after)), S3GW_HOST_KEY: '' });
    assert.is(cfg.instanceId, 'i-0123456789abcdef0');
    assert.is(cfg.cloudwatchLogGroup, 's3gw-audit-AbC123');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('fetch_package refuses plain http, and verify_sha256 refuses a tarball with another digest', () => {
  const http = fn('fetch_package http://example.com/s3gw.tgz /tmp');
  assert.is(http.status, 1);
  assert.match(http.err, 'refusing to install over plain http');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 's3gw-bootstrap-'));
  try {
    const file = path.join(dir, 'x.tgz');
    fs.writeFileSync(file, 'not really a tarball');
    const sum = createHash('sha256').update('not really a tarball').digest('hex');
    const check = (want: string) => fn('verify_sha256 "$2" "$3"', undefined, [file, want]);
    assert.is(check(sum).status, 0);
    assert.is(check(sum.toUpperCase()).status, 0, 'hex in either case');
    assert.is(check('').status, 0, 'no digest given: no check');
    const bad = check(sum.replace(/^./, (c) => (c === '0' ? '1' : '0')));
    assert.is(bad.status, 1);
    assert.match(bad.err, `package SHA-256 is ${sum}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ the whole script

/** The user the script creates here instead of s3gw, so that a real s3gw user is never touched. */
const SERVICE_USER = 's3gw-bootstrap-test';
const INSTANCE_ID = 'i-0bootstraptest0';
const SECRET_ID = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:s3gw-host-key-AbCdEf';

/** Stand-ins for what only an EC2 instance has (see their README). */
const STUBS = path.join(ROOT, 'fixtures', 'bootstrap-stubs');

interface Run {
  status: number;
  out: string;
  calls: string[];
}

/** The checked-in template users launch. */
const TEMPLATE = JSON.parse(
  fs.readFileSync(path.join(ROOT, 'deploy', 'cloudformation', 's3gw-standalone.template.json'), 'utf8'),
);

/**
 * Runs the template's user data, rendered for `parameters`, as cloud-init would (a file run by
 * bash, perhaps without HOME). Only the test's own paths and stand-ins come from the environment.
 */
async function bootstrap(root: string, parameters: Record<string, string>, logGroup: string): Promise<Run> {
  const stubs = path.join(root, 'stubs');
  const stack = new Stack(TEMPLATE, {
    parameters,
    stackName: 'bootstrap-test',
    region: 'us-east-1',
    refs: { AuditLogGroup: logGroup, HostKeySecret: SECRET_ID },
    attributes: { 'InstanceProfile.Arn': 'arn:aws:iam::123456789012:instance-profile/test' , 'InstanceSecurityGroup.GroupId': 'sg-0123' },
  });
  const userData = path.join(root, 'user-data');
  fs.writeFileSync(userData, stack.properties('LaunchTemplate').LaunchTemplateData.UserData, { mode: 0o700 });
  const base = { ...process.env };
  delete base.HOME;
  for (const k of Object.keys(base)) if (k.startsWith('S3GW_')) delete base[k];
  const r = await runProcess('bash', [userData], {
    env: {
      ...base,
      PATH: `${STUBS}:${process.env.PATH}`,
      STUB_DIR: stubs,
      STUB_NODE: process.execPath,
      STUB_SECRET_ID: SECRET_ID,
      STUB_INSTANCE_ID: INSTANCE_ID,
      STUB_REAL_CURL: realCurl(),
      S3GW_ETC_DIR: path.join(root, 'etc', 's3gw'),
      S3GW_PREFIX: path.join(root, 'usr'),
      S3GW_UNIT_DIR: path.join(root, 'etc', 'systemd', 'system'),
      S3GW_SERVICE_USER: SERVICE_USER,
      S3GW_BOOTSTRAP_LOG: path.join(root, 'bootstrap.log'),
      S3GW_CFN_SIGNAL: path.join(STUBS, 'cfn-signal'),
      S3GW_HEALTH_PORT: String(healthPortOf(root)),
      // The wait for the load balancer's checks, shortened: there is none here.
      S3GW_SIGNAL_DELAY: '1',
      // The package bundles its dependencies: no registry is needed, and none is reachable.
      npm_config_registry: 'http://127.0.0.1:9/',
    },
    timeoutMs: 300_000,
  });
  const callsFile = path.join(stubs, 'calls.log');
  const calls = fs.existsSync(callsFile) ? fs.readFileSync(callsFile, 'utf8').trim().split('\n') : [];
  fs.rmSync(callsFile, { force: true });
  return { status: r.code ?? -1, out: r.stdout.toString('utf8') + r.stderr, calls };
}

/** The health port the test chose, kept next to the stand-ins. */
function healthPortOf(root: string): number {
  return Number(fs.readFileSync(path.join(root, 'stubs', 'health-port'), 'utf8'));
}

function realCurl(): string {
  return spawnSync('bash', ['-c', 'command -v curl'], { encoding: 'utf8' }).stdout.trim();
}

function userExists(name: string): boolean {
  return spawnSync('id', [name]).status === 0;
}

function statOf(file: string): { mode: string; uid: number; group: string } {
  const st = fs.statSync(file);
  const group = spawnSync('stat', ['-c', '%G', file], { encoding: 'utf8' }).stdout.trim();
  return { mode: (st.mode & 0o777).toString(8), uid: st.uid, group };
}

test('the whole bootstrap as root: installs the npm pack output, runs the unit as an unprivileged user, serves sftp with the shared key, audits to CloudWatch', async () => {
  assert.is(process.getuid?.(), 0, 'this test creates a system user and must run as root (as CI does)');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 's3gw-bootstrap-'));
  fs.chmodSync(root, 0o755); // the service user must reach the installed package
  const stubs = path.join(root, 'stubs');
  fs.mkdirSync(stubs);
  fs.mkdirSync(path.join(root, 'etc', 'systemd', 'system'), { recursive: true });
  if (userExists(SERVICE_USER)) spawnSync('userdel', [SERVICE_USER]);
  let gatewayPid = 0;
  const prefix = e2ePrefix('bootstrap');
  const moto = await startMoto();
  try {
    // The package exactly as `npm pack` makes it (dist/ is already built by the test command).
    const packDir = path.join(root, 'pack');
    fs.mkdirSync(packDir);
    const pack = await runProcess('npm', ['pack', '--ignore-scripts', '--pack-destination', packDir], { cwd: ROOT, timeoutMs: 120_000 });
    assert.is(pack.code, 0, pack.stderr);
    const tarball = path.join(packDir, `${PKG.name}-${PKG.version}.tgz`);
    const sha256 = createHash('sha256').update(fs.readFileSync(tarball)).digest('hex');
    const secret = randomSecret();
    fs.writeFileSync(path.join(stubs, 'secret'), secret, { mode: 0o600 });

    // What the stack would have made: the audit log group.
    const logGroup = `s3gw-bootstrap-test-AuditLogGroup-${Date.now()}`;
    const logs = new CloudWatchLogsClient({
      region: moto.region,
      endpoint: moto.endpoint,
      credentials: { accessKeyId: moto.user.accessKeyId, secretAccessKey: moto.user.secretAccessKey },
    });
    await logs.send(new CreateLogGroupCommand({ logGroupName: logGroup }));

    const sshPort = await freePort();
    const healthPort = await freePort();
    fs.writeFileSync(path.join(stubs, 'health-port'), String(healthPort));
    const s3 = await s3env();
    fs.writeFileSync(
      path.join(stubs, 'overrides.env'),
      [
        `S3GW_LISTEN=127.0.0.1:${sshPort}`,
        `S3GW_S3_ENDPOINT=${s3.endpoint}`,
        'S3GW_S3_PATH_STYLE=true',
        `S3GW_CLOUDWATCH_ENDPOINT=${moto.endpoint}`,
        // The instance role's credentials, as the SDK's default chain would find them.
        `AWS_ACCESS_KEY_ID=${moto.user.accessKeyId}`,
        `AWS_SECRET_ACCESS_KEY=${moto.user.secretAccessKey}`,
      ].join('\n') + '\n',
    );

    // A tarball with another digest: nothing is installed and CloudFormation hears of it.
    const parameters = { PackageSource: tarball, PackageSha256: sha256, NodeMajorVersion: '20' };
    const bad = await bootstrap(root, { ...parameters, PackageSha256: sha256.replace(/^./, (c) => (c === '0' ? '1' : '0')) }, logGroup);
    assert.is.not(bad.status, 0, bad.out);
    assert.match(bad.out, `package SHA-256 is ${sha256}`);
    const badSignal = bad.calls.filter((c) => c.startsWith('cfn-signal '));
    assert.is(badSignal.length, 1, bad.calls.join('\n'));
    assert.match(badSignal[0]!, /^cfn-signal -e 1 --stack bootstrap-test --resource AutoScalingGroup --region us-east-1 --reason bootstrap exited with status 1/);
    assert.not.ok(fs.existsSync(path.join(root, 'usr', 'lib', 'node_modules', 's3gw')), 'nothing installed');
    assert.not.ok(bad.calls.some((c) => c.startsWith('systemctl')));

    // The real run.
    const r = await bootstrap(root, parameters, logGroup);
    if (fs.existsSync(path.join(stubs, 'gateway.pid'))) gatewayPid = Number(fs.readFileSync(path.join(stubs, 'gateway.pid'), 'utf8'));
    const gwErr = () => (fs.existsSync(path.join(stubs, 'gateway.err')) ? fs.readFileSync(path.join(stubs, 'gateway.err'), 'utf8') : '');
    assert.is(r.status, 0, `${r.out}\n--- gateway stderr\n${gwErr()}`);
    assert.equal(
      r.calls.filter((c) => !c.startsWith('curl ')),
      [
        'dnf install -y -q aws-cfn-bootstrap',
        'dnf install -y -q nodejs20 nodejs20-npm',
        'alternatives --set node /usr/bin/node-20',
        `aws secretsmanager get-secret-value --secret-id ${SECRET_ID} --query SecretString --output text`,
        'systemctl daemon-reload',
        'systemctl enable --now s3gw',
        'systemctl is-active --quiet s3gw',
        'cfn-signal -e 0 --stack bootstrap-test --resource AutoScalingGroup --region us-east-1',
      ],
    );
    assert.match(r.out, `Node.js ${process.version} satisfies engines.node ${PKG.engines.node}`);
    assert.match(r.out, 'package SHA-256 verified');
    assert.match(r.out, `installed ${PKG.name} ${PKG.version}`);
    assert.not.match(r.out, secret);
    assert.match(fs.readFileSync(path.join(root, 'bootstrap.log'), 'utf8'), 'done');

    // The files it wrote.
    const etc = path.join(root, 'etc', 's3gw');
    assert.ok(userExists(SERVICE_USER), 'the service user was created');
    const shell = spawnSync('getent', ['passwd', SERVICE_USER], { encoding: 'utf8' }).stdout.trim().split(':');
    assert.is(shell[6], '/sbin/nologin');
    assert.ok(Number(shell[2]) < 1000, `a system user (uid ${shell[2]})`);
    assert.equal(statOf(etc), { mode: '750', uid: 0, group: SERVICE_USER });
    const keyFile = path.join(etc, 'ssh_host_ed25519_key');
    assert.equal(statOf(keyFile), { mode: '640', uid: 0, group: SERVICE_USER });
    assert.equal(publicKeyOf(fs.readFileSync(keyFile, 'utf8')), expectedPublicKey(secret));
    const envText = fs.readFileSync(path.join(etc, 's3gw.env'), 'utf8');
    assert.equal(statOf(path.join(etc, 's3gw.env')), { mode: '640', uid: 0, group: SERVICE_USER });
    for (const line of [
      `S3GW_HOST_KEY=${keyFile}`,
      'S3GW_S3_REGION=us-east-1',
      'S3GW_SSE=AES256',
      `S3GW_HEALTH_LISTEN=0.0.0.0:${healthPort}`,
      `S3GW_CLOUDWATCH_LOG_GROUP=${logGroup}`,
      `S3GW_INSTANCE_ID=${INSTANCE_ID}`,
      'S3GW_LISTEN=0.0.0.0:2222',
    ]) {
      assert.ok(envText.split('\n').includes(line), `s3gw.env has ${line}:\n${envText}`);
    }
    // Every dependency came from the tarball (the registry above is unreachable).
    const installed = path.join(root, 'usr', 'lib', 'node_modules', 's3gw');
    for (const dep of Object.keys(PKG.dependencies)) {
      assert.ok(fs.existsSync(path.join(installed, 'node_modules', dep, 'package.json')), `${dep} is bundled`);
    }
    // The unit is the one in the package, which is the one in this repository.
    assert.is(fs.readFileSync(path.join(root, 'etc', 'systemd', 'system', 's3gw.service'), 'utf8'), fs.readFileSync(UNIT, 'utf8'));

    // The gateway runs as the service user, not root, and passed its health check.
    assert.ok(gatewayPid > 0);
    const status = fs.readFileSync(`/proc/${gatewayPid}/status`, 'utf8');
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
    assert.is(uid, Number(shell[2]), 'the gateway runs as the service user');
    // Under the unit's restrictions: no new privileges, no capabilities, a read-only system.
    assert.match(status, /^NoNewPrivs:\s+1$/m);
    assert.match(status, /^CapBnd:\s+0+$/m);
    assert.match(status, /^CapEff:\s+0+$/m);
    const rootMount = fs.readFileSync(`/proc/${gatewayPid}/mountinfo`, 'utf8').split('\n').find((l) => l.split(' ')[4] === '/');
    assert.match(rootMount ?? '', / ro[, ]/, 'the root file system is read-only for the gateway');

    // OpenSSH sftp, with only the derived key trusted for this host.
    const client = sshClientEnv();
    const knownHosts = path.join(root, 'known_hosts');
    const pub = parseHostKey(fs.readFileSync(keyFile, 'utf8')).publicBlob;
    fs.writeFileSync(knownHosts, `s3gw-bootstrapped ssh-ed25519 ${Buffer.from(pub).toString('base64')}\n`);
    const p = await payload(70_001);
    const key = `${prefix}/through-bootstrap.bin`;
    const batch = path.join(root, 'batch');
    fs.writeFileSync(batch, `put ${p.path} /${BUCKET}/${key}\nls -l /${BUCKET}/${prefix}\n`);
    const s3admin = s3.admin;
    const sftp = await runProcess(
      'sftp',
      ['-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'HostKeyAlias=s3gw-bootstrapped', ...sshOptions(client), '-P', String(sshPort), '-b', batch, `${s3admin.accessKeyId}@127.0.0.1`],
      { env: askpassEnv(client, s3admin.secretAccessKey), timeoutMs: 60_000 },
    );
    assertOk({ ...sftp, out: sftp.stdout.toString('utf8'), what: 'sftp through the bootstrapped gateway' });
    const stored = await headOrNull(BUCKET, key);
    assert.ok(stored, 'the upload reached S3');
    assert.is(stored.size, 70_001);
    assert.is(stored.sse, 'AES256');

    // Its audit records reach the stack's log group, in the stream named for the instance.
    let events: string[] = [];
    await eventually(
      'the upload audit record in CloudWatch Logs',
      async () => {
        try {
          const got = await logs.send(new GetLogEventsCommand({ logGroupName: logGroup, logStreamName: INSTANCE_ID, startFromHead: true }));
          events = (got.events ?? []).map((e) => e.message ?? '');
        } catch {
          return false;
        }
        return events.some((m) => (JSON.parse(m) as { event: string }).event === 'upload');
      },
      30_000,
    );
    const upload = events.map((m) => JSON.parse(m) as Record<string, unknown>).find((x) => x.event === 'upload')!;
    assert.is(upload.path, `/${BUCKET}/${key}`);
    assert.is(upload.bytes, 70_001);
    assert.is(upload.instance, INSTANCE_ID);
    for (const m of events) assert.not.match(m, s3admin.secretAccessKey);
    logs.destroy();

    // systemd's stop: SIGTERM drains and exits 0.
    process.kill(gatewayPid, 'SIGTERM');
    const statusFile = path.join(stubs, 'gateway.status');
    await eventually('the gateway to exit', async () => fs.existsSync(statusFile) && fs.readFileSync(statusFile, 'utf8').endsWith('\n'), 30_000);
    gatewayPid = 0;
    assert.is(fs.readFileSync(statusFile, 'utf8').trim(), '0', gwErr());
    assert.match(gwErr(), 'shutting down: draining');
  } finally {
    if (gatewayPid > 0) {
      try {
        process.kill(gatewayPid, 'SIGKILL');
      } catch {
        // already gone
      }
      await sleep(200);
    }
    spawnSync('userdel', [SERVICE_USER]);
    fs.rmSync(root, { recursive: true, force: true });
    await removePrefix(BUCKET, prefix);
    await stopMoto();
  }
});

test.run();
