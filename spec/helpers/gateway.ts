/**
 * What the end-to-end suites (spec/gateway/) share: the whole gateway of src/gateway.ts started
 * in this process on 127.0.0.1:0 against the real S3 of spec/helpers/s3-env.ts (path-style, the
 * fixture host keys, a captured logger), real clients run with a deadline (OpenSSH sftp and scp,
 * curl, paramiko), payload files made once per run, and admin-side inspection of what reached S3.
 *
 * Nothing here mocks S3: every client talks SSH to the gateway, which talks HTTP to MinIO.
 */
import { ensureManyObjects as makeManyObjects } from './many-objects.js';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { suite, type Test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig, type Config } from '../../src/config.js';
import { createGateway, type GatewayOps } from '../../src/gateway.js';
import { createLogger } from '../../src/log.js';
import { admin, s3env, BUCKET, pendingUploads, removePrefix } from '../s3/fixture.js';
import type { S3Credentials, S3TestEnv } from './s3-env.js';
import { createSshClientEnv, killStrayChildren, runProcess, sleep, type RunResult, type SshClientEnv } from './openssh.js';
import { fixtureHostKeys, ROOT } from './test-server.js';

export { BUCKET, OTHER_BUCKET, MiB, admin, s3env, headAsAdmin, pendingUploads, removePrefix } from '../s3/fixture.js';

// ------------------------------------------------------------------ the gateway

export interface Gateway {
  port: number;
  config: Config;
  /** The gateway's log records (JSON lines, debug level), at least the last LOG_KEEP of them. */
  logs: string[];
  /** A position in the log, for `logsSince`: the number of records ever written. */
  logMark(): number;
  /** The records written since `logMark()` returned `mark` (as far as they are still kept). */
  logsSince(mark: number): string[];
  /** Connections accepted and not yet closed. */
  readonly openConnections: number;
  close(): Promise<void>;
}

const LOG_KEEP = 5000;

/**
 * Starts the gateway on 127.0.0.1:0 with the local S3 as its endpoint. Logs are kept in memory
 * (and printed too with S3GW_TEST_LOG=1) so a failing test can show what the gateway said.
 */
export async function startGateway(extraArgs: string[] = [], ops: GatewayOps = {}): Promise<Gateway> {
  const env = await s3env();
  const { config } = loadConfig(
    [
      '--listen', '127.0.0.1:0',
      '--s3-endpoint', env.endpoint,
      '--s3-region', env.region,
      '--s3-path-style',
      '--log-level', 'debug',
      // Suites log in with wrong secrets on purpose, all from 127.0.0.1, in one gateway: the
      // default lockout (10 failures) would refuse later cases. spec/gateway/limits.test.ts
      // tests the lockout with its own settings (a later flag wins).
      '--lockout-failures', '0',
      ...extraArgs,
    ],
    {},
  );
  const logs: string[] = [];
  let dropped = 0;
  const echo = process.env.S3GW_TEST_LOG === '1';
  const log = createLogger(config.logLevel, (line) => {
    if (echo) process.stderr.write(line + '\n');
    logs.push(line);
    // Trimmed in batches, so a debug line per packet costs no more than the push.
    if (logs.length > 2 * LOG_KEEP) dropped += logs.splice(0, logs.length - LOG_KEEP).length;
  });
  const server = createGateway(config, fixtureHostKeys(), log, ops);
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listenPort, config.listenHost, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    config,
    logs,
    logMark: () => dropped + logs.length,
    logsSince: (mark) => logs.slice(Math.max(0, mark - dropped)),
    get openConnections() {
      return sockets.size;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The gateway's log lines that match `re`, for failure messages and checks. */
export function logLines(gw: Gateway, re: RegExp): string[] {
  return gw.logs.filter((l) => re.test(l));
}

/** The last `n` log lines, for an assertion message. */
export function logTail(gw: Gateway, n = 30): string {
  return gw.logs.slice(-n).join('\n');
}

// ------------------------------------------------------------------ users

export type UserName = 'admin' | 'least' | 'oneBucket' | 'noRights';

export async function creds(user: UserName | S3Credentials): Promise<S3Credentials> {
  if (typeof user !== 'string') return user;
  const env: S3TestEnv = await s3env();
  return env[user];
}

// ------------------------------------------------------------------ per-run names and files

/** A unique key prefix for one suite in this run, "e2e-<suite>-<random>" (no trailing slash). */
/**
 * A uvu suite with a gateway of its own: started before the first test, closed after the last,
 * with stray client processes killed and everything under `prefix` in BUCKET removed. `extraArgs`
 * go to the gateway's command line (startGateway).
 */
export function gatewaySuite(name: string, prefix: string, extraArgs: string[] = []): Test<{ gw: Gateway }> {
  const test = suite<{ gw: Gateway }>(name, { gw: undefined as unknown as Gateway });
  test.before(async (ctx) => {
    ctx.gw = await startGateway(extraArgs);
  });
  test.after(async (ctx) => {
    killStrayChildren();
    await ctx.gw?.close();
    await removePrefix(BUCKET, prefix + '/');
  });
  return test;
}

export function e2ePrefix(suite: string): string {
  return `e2e-${suite}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

let tempRoot: string | null = null;

/** One temp directory per run, removed when the process exits. */
export function runDir(): string {
  if (tempRoot === null) {
    tempRoot = fs.mkdtempSync(path.join(os.tmpdir(), 's3gw-e2e-'));
    const dir = tempRoot;
    process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  return tempRoot;
}

/** A fresh subdirectory of the run's temp directory. */
export function tempDir(name: string): string {
  return fs.mkdtempSync(path.join(runDir(), `${name}-`));
}

export interface Payload {
  path: string;
  size: number;
  sha256: string;
}

const payloads = new Map<number, Promise<Payload>>();

/**
 * A file of `size` random bytes, made once per run and shared by every suite (uvu runs all files
 * in one process). Written in 1 MiB pieces, so 200 MiB never sits in memory.
 */
export function payload(size: number): Promise<Payload> {
  let p = payloads.get(size);
  if (!p) {
    p = (async () => {
      const file = path.join(runDir(), `payload-${size}.bin`);
      const hash = createHash('sha256');
      const fd = fs.openSync(file, 'w');
      try {
        for (let left = size; left > 0; ) {
          const chunk = randomBytes(Math.min(left, 1024 * 1024));
          hash.update(chunk);
          fs.writeSync(fd, chunk);
          left -= chunk.length;
        }
      } finally {
        fs.closeSync(fd);
      }
      return { path: file, size, sha256: hash.digest('hex') };
    })();
    payloads.set(size, p);
  }
  return p;
}

/** sha256 of a local file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

// ------------------------------------------------------------------ S3, seen by the admin

export interface Stored {
  size: number;
  etag: string | undefined;
  sse: string | undefined;
  metadata: Record<string, string>;
}

/** HeadObject as admin; null when there is no such object. */
export async function headOrNull(bucket: string, key: string): Promise<Stored | null> {
  try {
    const h = await (await admin()).send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return { size: h.ContentLength ?? -1, etag: h.ETag, sse: h.ServerSideEncryption, metadata: h.Metadata ?? {} };
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404) return null;
    throw err;
  }
}

/** The object exists with this size and carries SSE-S3 (issue 3 §6: the configured SSE, AES256 by default). */
export async function assertStored(bucket: string, key: string, size: number): Promise<Stored> {
  const h = await headOrNull(bucket, key);
  assert.ok(h, `${bucket}/${key} should exist in S3`);
  assert.is(h.size, size, `${bucket}/${key}: size in S3`);
  assert.is(h.sse, 'AES256', `${bucket}/${key}: ServerSideEncryption`);
  return h;
}

/** sha256 and size of an object as the admin downloads it, streamed (large objects never sit in memory). */
export async function sha256Object(bucket: string, key: string): Promise<{ sha256: string; size: number }> {
  const r = await (await admin()).send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of r.Body as AsyncIterable<Uint8Array>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}

export async function assertAbsent(bucket: string, key: string): Promise<void> {
  const h = await headOrNull(bucket, key);
  assert.is(h, null, `${bucket}/${key} should not exist in S3`);
}

/** Polls `cond` until it holds (async), failing after `timeoutMs`: a deadline, not a fixed sleep. */
export async function eventually(what: string, cond: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

// ------------------------------------------------------------------ OpenSSH clients

let clientEnv: SshClientEnv | null = null;

/** The askpass program and pinned known_hosts (spec/helpers/openssh.ts), made once per run. */
export function sshClientEnv(): SshClientEnv {
  if (clientEnv === null) {
    clientEnv = createSshClientEnv();
    const env = clientEnv;
    process.once('exit', () => env.cleanup());
  }
  return clientEnv;
}

/**
 * The `-o` options every OpenSSH client gets: the pinned fixture host keys checked strictly,
 * password authentication only, one prompt, nothing from the user's ~/.ssh or agent.
 * BatchMode=no comes first, because `sftp -b` adds BatchMode=yes and ssh keeps the first value.
 */
export function sshOptions(env: SshClientEnv): string[] {
  return [
    '-F', '/dev/null',
    '-o', 'BatchMode=no',
    '-o', 'HostKeyAlias=s3gw-test',
    '-o', `UserKnownHostsFile=${env.knownHosts}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'UpdateHostKeys=no',
    '-o', 'ConnectTimeout=10',
    '-o', 'NumberOfPasswordPrompts=1',
    '-o', 'IdentityAgent=none',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'PubkeyAuthentication=no',
    '-o', 'PreferredAuthentications=password',
  ];
}

export function askpassEnv(env: SshClientEnv, secret: string): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {
    ...process.env,
    SSH_ASKPASS: env.askpass,
    SSH_ASKPASS_REQUIRE: 'force',
    DISPLAY: ':0',
    S3GW_TEST_ASKPASS_ANSWER: secret,
  };
  delete e.SSH_AUTH_SOCK;
  return e;
}

export interface ClientRun extends RunResult {
  out: string;
  /** The command, for assertion messages. */
  what: string;
}

function describe(r: RunResult, what: string): ClientRun {
  return { ...r, out: r.stdout.toString('utf8'), what };
}

/** Everything about a client run, for an assertion message. */
export function show(r: ClientRun): string {
  return `${r.what}: exit ${r.code}${r.signal ? ` (${r.signal})` : ''}${r.timedOut ? ' TIMED OUT' : ''}\n--- stdout\n${r.out}\n--- stderr\n${r.stderr}`;
}

export function assertOk(r: ClientRun): void {
  assert.not.ok(r.timedOut, `hung: ${show(r)}`);
  assert.is(r.code, 0, show(r));
}

export interface SftpOptions {
  /** Extra sftp options before ours (e.g. ['-l', '8192'] to limit the rate). */
  args?: string[];
  timeoutMs?: number;
  cwd?: string;
  /** The SSH user name to send instead of the access key ID (malformed names). */
  userName?: string;
  /** The password to give instead of the user's secret. */
  secret?: string;
}

/**
 * Runs `sftp -b` with `lines` as the batch file, logged in as `user`. A line starting with `-`
 * may fail without ending the batch (sftp's own convention).
 */
export async function sftpBatch(
  gw: Gateway,
  user: UserName | S3Credentials,
  lines: string[],
  opts: SftpOptions = {},
): Promise<ClientRun> {
  const c = await creds(user);
  const env = sshClientEnv();
  const batch = path.join(tempDir('batch'), 'commands');
  fs.writeFileSync(batch, lines.join('\n') + '\n');
  const name = opts.userName ?? c.accessKeyId;
  const args = [...(opts.args ?? []), ...sshOptions(env), '-P', String(gw.port), '-b', batch, `${name}@127.0.0.1`];
  const r = await runProcess('sftp', args, {
    env: askpassEnv(env, opts.secret ?? c.secretAccessKey),
    timeoutMs: opts.timeoutMs ?? 60_000,
    cwd: opts.cwd,
  });
  return describe(r, `sftp -b [${lines.join(' ; ')}] as ${name}`);
}

/** A client started without waiting for it: its pid once it exists, and its end. */
export interface StartedClient {
  pid: () => number | undefined;
  done: Promise<ClientRun>;
}

/** The pids of a process's children (Linux: /proc/PID/task/PID/children). */
export function childPids(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * What BUCKET/key must be once the gateway is done with a killed client's upload: 'no object'
 * (aborted, the file was new) or 'object' (what arrived was kept, or an old object is still there).
 */
export type AfterKill = 'no object' | 'object';

/**
 * Kills `run` (an upload of `key` to BUCKET) once its multipart upload exists: with `killSsh`
 * its ssh child too, so the connection drops; otherwise only the client, so ssh ends the channel.
 * Then the gateway must have ended the upload: no pending multipart upload, the connection gone,
 * and, by default, no object (a new file aborted). With `outcome` 'object' there must be one: what
 * arrived, kept for resume (--partial-uploads keep), or the object that was there before. Resolves
 * with the object (null when there is none).
 */
export async function killMidUpload(
  gw: Gateway,
  key: string,
  run: StartedClient,
  killSsh: boolean,
  outcome: AfterKill = 'no object',
): Promise<Stored | null> {
  // The multipart upload exists once the first part is full and the next byte arrived.
  await waitOrShow(gw, run, `a multipart upload of ${key} to start`, async () =>
    (await pendingUploads(BUCKET, key)).some((u) => u.key === key),
  );
  return killAndCheck(gw, key, run, killSsh, outcome);
}

/**
 * Kills `run` (an upload to BUCKET/`key`) once the gateway has received a WRITE at offset `bytes`
 * or later (its debug log shows each request), for a cut before the first part is full; then
 * checks the outcome as killMidUpload does. `mark` is gw.logMark() taken before the client started.
 */
export async function killAfterWrite(
  gw: Gateway,
  key: string,
  run: StartedClient,
  mark: number,
  bytes: number,
  outcome: AfterKill,
): Promise<Stored | null> {
  await waitOrShow(gw, run, `a WRITE at offset ${bytes} or later`, async () =>
    gw.logsSince(mark).some((l) => {
      if (!l.includes('"sftp: request"') || !l.includes('"op":"write"')) return false;
      const r = JSON.parse(l) as { offset?: number };
      return (r.offset ?? -1) >= bytes;
    }),
  );
  return killAndCheck(gw, key, run, true, outcome);
}

async function waitOrShow(gw: Gateway, run: StartedClient, what: string, cond: () => Promise<boolean>): Promise<void> {
  try {
    await eventually(what, cond, 30_000);
  } catch (err) {
    const r = await Promise.race([run.done, new Promise<null>((res) => setTimeout(() => res(null), 100))]);
    throw new Error(`${(err as Error).message}\n${r ? show(r) : 'the client is still running'}\n${logTail(gw)}`);
  }
}

async function killAndCheck(
  gw: Gateway,
  key: string,
  run: StartedClient,
  killSsh: boolean,
  outcome: AfterKill,
): Promise<Stored | null> {
  const connectionsBefore = gw.openConnections;
  const clientPid = run.pid();
  assert.ok(clientPid, 'the client is running');
  const ssh = childPids(clientPid);
  assert.ok(ssh.length >= 1, 'the client runs ssh as its child');
  if (killSsh) for (const pid of ssh) process.kill(pid, 'SIGKILL');
  process.kill(clientPid, 'SIGKILL');
  const r = await run.done;
  assert.is(r.signal, 'SIGKILL', 'the client was killed, it did not finish');
  const pending = async () => (await pendingUploads(BUCKET, key)).filter((u) => u.key === key);
  await eventually(
    `the gateway to end the upload (${outcome === 'object' ? 'an object left' : 'no object'}) and drop the connection`,
    async () =>
      gw.openConnections <= connectionsBefore &&
      (await pending()).length === 0 &&
      ((await headOrNull(BUCKET, key)) !== null) === (outcome === 'object'),
    30_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n--- gateway log\n${logTail(gw, 40)}`);
  });
  assert.equal(await pending(), [], 'no pending multipart upload');
  const stored = await headOrNull(BUCKET, key);
  if (outcome === 'no object') assert.is(stored, null, 'no object');
  else assert.ok(stored, 'an object is there');
  return stored;
}

/**
 * Starts `sftp -b` without waiting for it: returns the child's pid and the run's promise, for
 * tests that kill the client mid-transfer.
 */
export async function sftpBatchStarted(
  gw: Gateway,
  user: UserName,
  lines: string[],
  opts: SftpOptions = {},
): Promise<StartedClient> {
  const c = await creds(user);
  const env = sshClientEnv();
  const batch = path.join(tempDir('batch'), 'commands');
  fs.writeFileSync(batch, lines.join('\n') + '\n');
  const args = [...(opts.args ?? []), ...sshOptions(env), '-P', String(gw.port), '-b', batch, `${c.accessKeyId}@127.0.0.1`];
  let pid: number | undefined;
  const done = runProcess('sftp', args, {
    env: askpassEnv(env, c.secretAccessKey),
    timeoutMs: opts.timeoutMs ?? 60_000,
    // The feeder runs once the child exists: a way to learn its pid. stdin stays open and unused.
    stdin: async (_stdin, child) => {
      pid = child.pid;
    },
  }).then((r) => describe(r, `sftp -b [${lines.join(' ; ')}]`));
  return { pid: () => pid, done };
}

/** `scp` (SFTP mode, OpenSSH ≥ 9.0's default) with `args` after our options. */
export async function scp(
  gw: Gateway,
  user: UserName,
  args: string[],
  opts: { timeoutMs?: number; cwd?: string } = {},
): Promise<ClientRun> {
  const c = await creds(user);
  const env = sshClientEnv();
  const r = await runProcess('scp', [...sshOptions(env), '-P', String(gw.port), ...args], {
    env: askpassEnv(env, c.secretAccessKey),
    timeoutMs: opts.timeoutMs ?? 60_000,
    cwd: opts.cwd,
  });
  return describe(r, `scp ${args.join(' ')}`);
}

/** `user@127.0.0.1:path` for scp. */
export async function scpRemote(user: UserName, remotePath: string): Promise<string> {
  return `${(await creds(user)).accessKeyId}@127.0.0.1:${remotePath}`;
}

/**
 * curl's sftp:// URL for `remotePath` ("/bucket/key"), with the secret percent-encoded (MinIO
 * secrets hold '+' and '/'). curl 7.88 with libssh2.
 */
export async function curlUrl(gw: Gateway, user: UserName, remotePath: string): Promise<string> {
  const c = await creds(user);
  const enc = (s: string) => encodeURIComponent(s);
  const p = remotePath.split('/').map(enc).join('/');
  return `sftp://${enc(c.accessKeyId)}:${enc(c.secretAccessKey)}@127.0.0.1:${gw.port}${p}`;
}

export async function curl(args: string[], opts: { timeoutMs?: number } = {}): Promise<ClientRun> {
  // --insecure: libssh2 would otherwise want the host in ~/.ssh/known_hosts.
  const r = await runProcess('curl', ['--silent', '--show-error', '--insecure', '--max-time', '60', ...args], {
    timeoutMs: opts.timeoutMs ?? 70_000,
  });
  // The URL holds the secret: keep it out of assertion messages.
  const what = 'curl ' + args.map((a) => (a.startsWith('sftp://') ? a.replace(/\/\/[^@]*@/, '//<user>:<secret>@') : a)).join(' ');
  return describe(r, what);
}

// ------------------------------------------------------------------ paramiko

export const PARAMIKO_SCRIPT = path.join(ROOT, 'spec', 'gateway', 'paramiko_gateway.py');

/**
 * Runs spec/gateway/paramiko_gateway.py with one JSON argument (port, user, secret, then what
 * the scenario needs); returns its one JSON line. The script reports failures itself.
 */
export async function paramiko<T = Record<string, unknown>>(
  gw: Gateway,
  user: UserName,
  scenario: string,
  args: Record<string, unknown> = {},
  timeoutMs = 90_000,
): Promise<T> {
  const c = await creds(user);
  const input = { port: gw.port, user: c.accessKeyId, secret: c.secretAccessKey, scenario, ...args };
  const r = await runProcess('python3', [PARAMIKO_SCRIPT, JSON.stringify(input)], { timeoutMs });
  const text = r.stdout.toString('utf8').trim();
  assert.not.ok(r.timedOut, `paramiko ${scenario} hung\n${r.stderr}\n--- gateway log\n${logTail(gw)}`);
  let out: { ok: boolean; error?: string; trace?: string; result?: T };
  try {
    out = JSON.parse(text.split('\n').pop() ?? '');
  } catch {
    throw new Error(`paramiko ${scenario}: no JSON on stdout (exit ${r.code})\n${text}\n${r.stderr}`);
  }
  if (!out.ok) {
    throw new Error(`paramiko ${scenario} failed: ${out.error}\n${out.trace ?? ''}\n--- gateway log\n${logTail(gw)}`);
  }
  return out.result as T;
}

// ------------------------------------------------------------------ 100,000 objects

/**
 * The S3 suite's fixture (spec/s3/large.test.ts): 100,000 empty objects f000000..f099999 under
 * example-bucket/s3gw-spec-fixtures/100k/, with a marker written only once all of them exist.
 * The same prefix, names and marker are used here, so whichever suite runs first makes them
 * and every later run, of either suite, reuses them. (large.test.ts keeps its maker private;
 * this is the same procedure.)
 */
export { MANY, MANY_PREFIX, manyName } from './many-objects.js';

/** The 100,000-object directory (spec/helpers/many-objects.ts), made once per store. */
export async function ensureManyObjects(): Promise<void> {
  await makeManyObjects(await admin(), BUCKET);
}

// ------------------------------------------------------------------ streaming a client's output

export interface LineRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  lines: number;
  stderr: string;
}

/**
 * Runs `sftp -b` and hands every stdout line to `onLine` as it arrives, keeping none of them: for
 * listings too long for runProcess's 1 MiB of kept stdout.
 */
export async function sftpBatchLines(
  gw: Gateway,
  user: UserName,
  lines: string[],
  onLine: (line: string) => void,
  timeoutMs = 120_000,
): Promise<LineRun> {
  const c = await creds(user);
  const env = sshClientEnv();
  const batch = path.join(tempDir('batch'), 'commands');
  fs.writeFileSync(batch, lines.join('\n') + '\n');
  const args = [...sshOptions(env), '-P', String(gw.port), '-b', batch, `${c.accessKeyId}@127.0.0.1`];
  const child = spawn('sftp', args, { env: askpassEnv(env, c.secretAccessKey), stdio: ['ignore', 'pipe', 'pipe'] });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  let stderr = '';
  let rest = '';
  let count = 0;
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    const parts = (rest + d).split('\n');
    rest = parts.pop()!;
    for (const l of parts) {
      count++;
      onLine(l);
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    if (stderr.length < 65536) stderr += d;
  });
  return new Promise((resolve, reject) => {
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`sftp could not be started (${err.message}); run: bash scripts/setup-test-deps.sh`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (rest) {
        count++;
        onLine(rest);
      }
      resolve({ code, signal, timedOut, lines: count, stderr });
    });
  });
}
