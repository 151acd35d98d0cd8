/**
 * Helpers for the interop suites (spec/interop/): running real clients as child processes with
 * a deadline, OpenSSH with a throw-away askpass and known_hosts, user keys from ssh-keygen, and a
 * test server whose transports can be watched (negotiated algorithms, strict KEX, rekeys, logins).
 *
 * Everything here is asynchronous on purpose: the server under test runs in this very process,
 * so a synchronous spawn would block the event loop the server needs to answer.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { serveConnection, type SessionInfo, type SshServerOptions } from '../../src/server.js';
import type { Transport } from '../../src/transport/transport.js';
import type { Negotiated } from '../../src/transport/negotiate.js';
import type { Authenticator } from '../../src/auth/authenticator.js';
import { FIXTURES, SOURCE_BYTES, SOURCE_SEED, TEST_PASSWORD, TEST_USER, startTestServer } from './test-server.js';
import { patternBlock } from './subsystems.js';

// ------------------------------------------------------------------ hashes and payloads

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export interface Digest {
  sha256: string;
  bytes: number;
}

let sourceDigest: Digest | null = null;

/** What test-source sends: recomputed here from the same pattern, independently of the server. */
export function expectedSource(): Digest {
  if (sourceDigest) return sourceDigest;
  const h = createHash('sha256');
  let left = SOURCE_BYTES;
  for (let block = 0; left > 0; block++) {
    const b = patternBlock(SOURCE_SEED, block);
    const n = Math.min(b.length, left);
    h.update(b.subarray(0, n));
    left -= n;
  }
  sourceDigest = { sha256: h.digest('hex'), bytes: SOURCE_BYTES };
  return sourceDigest;
}

/** Parses test-sink's one line, "<sha256 hex> <bytes>\n"; null when it is anything else. */
export function parseSinkLine(text: string): Digest | null {
  const m = /^([0-9a-f]{64}) (\d+)\n$/.exec(text);
  return m ? { sha256: m[1]!, bytes: Number(m[2]) } : null;
}

// ------------------------------------------------------------------ child processes

export interface RunResult {
  /** Exit code, or null when the process died of a signal (including our deadline). */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the deadline killed the process: a hang, reported as a failure. */
  timedOut: boolean;
  /** The first STDOUT_KEEP bytes of stdout (all of it for the small outputs we parse). */
  stdout: Buffer;
  /** Digest of all of stdout, hashed as it streams (50 MiB echoes are never held whole). */
  stdoutDigest: Digest;
  stderr: string;
}

/**
 * What goes to the child's stdin: nothing (/dev/null), a buffer, or a feeder that writes at
 * its own pace and must end the stream.
 */
export type StdinSource = 'null' | Buffer | ((stdin: Writable, child: ChildProcess) => Promise<void>);

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  stdin?: StdinSource;
  timeoutMs?: number;
  cwd?: string;
  /** Leave stdout unread this long at first: a consumer that falls behind, so the client must hold data. */
  stdoutDelayMs?: number;
}

const STDOUT_KEEP = 1024 * 1024;
const STDERR_KEEP = 4 * 1024 * 1024;
const live = new Set<ChildProcess>();

/** Runs a command with a deadline: a hang becomes `timedOut`, never a stuck suite. */
export function runProcess(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const stdinSource = opts.stdin ?? 'null';
  const child = spawn(cmd, args, {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    stdio: [stdinSource === 'null' ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  live.add(child);
  const hash = createHash('sha256');
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let outBytes = 0;
  let stderr = '';
  let timedOut = false;
  let feederError: unknown = null;
  child.stdout!.on('data', (d: Buffer) => {
    hash.update(d);
    outBytes += d.length;
    if (keptBytes < STDOUT_KEEP) {
      kept.push(d.subarray(0, STDOUT_KEEP - keptBytes));
      keptBytes += Math.min(d.length, STDOUT_KEEP - keptBytes);
    }
  });
  if (opts.stdoutDelayMs) {
    child.stdout!.pause();
    setTimeout(() => child.stdout!.resume(), opts.stdoutDelayMs).unref();
  }
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    if (stderr.length < STDERR_KEEP) stderr += d;
  });
  if (child.stdin) {
    // The client may exit before reading everything (a refused session): EPIPE is expected then.
    child.stdin.on('error', () => {});
    if (Buffer.isBuffer(stdinSource)) child.stdin.end(stdinSource);
    else if (typeof stdinSource === 'function') {
      stdinSource(child.stdin, child).catch((err: unknown) => {
        feederError = err;
        child.stdin?.destroy();
      });
    }
  }
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? 30_000);
  return new Promise((resolve, reject) => {
    child.on('error', (err) => {
      clearTimeout(timer);
      live.delete(child);
      reject(new Error(`${cmd} could not be started (${err.message}); run: bash scripts/setup-test-deps.sh`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      if (feederError) {
        reject(feederError instanceof Error ? feederError : new Error(String(feederError)));
        return;
      }
      resolve({
        code,
        signal,
        timedOut,
        stdout: Buffer.concat(kept),
        stdoutDigest: { sha256: hash.digest('hex'), bytes: outBytes },
        stderr,
      });
    });
  });
}

/** Kills whatever a failed test left running (suites call this in `after`). */
export function killStrayChildren(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Writes with backpressure; resolves once the chunk was taken. */
export function writeChunk(stream: Writable, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}

/** Resolves when `cond` holds, polling; rejects after `timeoutMs`. */
export async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

// ------------------------------------------------------------------ temp dirs

export function makeTempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `s3gw-${prefix}-`));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

// ------------------------------------------------------------------ OpenSSH

/** The alias under which every test server's host keys are pinned in our known_hosts. */
const HOST_ALIAS = 's3gw-test';
const FIXTURE_HOST_KEYS = ['ed25519', 'ecdsa256', 'ecdsa384', 'ecdsa521', 'rsa3072'];

/** The public blob of a fixture host key (what a client must have been shown). */
export function fixtureHostKeyBlob(name: string): Buffer {
  const line = fs.readFileSync(path.join(FIXTURES, 'host-keys', `${name}.pub`), 'utf8').trim();
  return Buffer.from(line.split(/\s+/)[1]!, 'base64');
}

/**
 * A client-side sandbox: an askpass program that answers with the password from its
 * environment, and a known_hosts that pins the fixture host keys, so OpenSSH runs with
 * StrictHostKeyChecking=yes and checks every host key signature against the right key.
 */
export interface SshClientEnv {
  readonly dir: string;
  readonly askpass: string;
  readonly knownHosts: string;
  cleanup(): void;
}

export function createSshClientEnv(): SshClientEnv {
  const dir = makeTempDir('openssh');
  const askpass = path.join(dir, 'askpass.sh');
  fs.writeFileSync(askpass, '#!/bin/sh\nprintf "%s\\n" "$S3GW_TEST_ASKPASS_ANSWER"\n', { mode: 0o700 });
  const knownHosts = path.join(dir, 'known_hosts');
  const lines = FIXTURE_HOST_KEYS.map((n) => {
    const [type, b64] = fs.readFileSync(path.join(FIXTURES, 'host-keys', `${n}.pub`), 'utf8').trim().split(/\s+/);
    return `${HOST_ALIAS} ${type} ${b64}`;
  });
  fs.writeFileSync(knownHosts, lines.join('\n') + '\n');
  return { dir, askpass, knownHosts, cleanup: () => removeDir(dir) };
}

export interface SshRun {
  port: number;
  /** Options before ours: OpenSSH keeps the first value it sees, so these override the defaults. */
  args?: readonly string[];
  /** Run this subsystem (`-s`); otherwise `command` (exec) or nothing (shell). */
  subsystem?: string;
  command?: string;
  /** Password (or keyboard-interactive answer) the askpass program gives; TEST_PASSWORD by default. */
  password?: string;
  /** Methods tried, `PreferredAuthentications`: password unless told. */
  auth?: string;
  user?: string;
  /** 0: ssh's default (INFO), 1..3: -v .. -vvv. */
  verbose?: 0 | 1 | 2 | 3;
  stdin?: StdinSource;
  timeoutMs?: number;
  stdoutDelayMs?: number;
}

/** Runs OpenSSH's `ssh` against 127.0.0.1 in the sandbox, never touching the user's ~/.ssh. */
export function runSsh(env: SshClientEnv, run: SshRun): Promise<RunResult> {
  const verbose = run.verbose ?? 0;
  const args = [
    ...(run.args ?? []),
    '-F', '/dev/null',
    '-p', String(run.port),
    '-o', `HostKeyAlias=${HOST_ALIAS}`,
    '-o', `UserKnownHostsFile=${env.knownHosts}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'UpdateHostKeys=no',
    '-o', 'BatchMode=no',
    '-o', 'ConnectTimeout=10',
    '-o', 'NumberOfPasswordPrompts=1',
    '-o', 'IdentityAgent=none',
    '-o', 'IdentitiesOnly=yes',
    '-o', `PreferredAuthentications=${run.auth ?? 'password'}`,
    ...(verbose === 0 ? [] : [`-${'v'.repeat(verbose)}`]),
    ...(run.subsystem ? ['-s'] : []),
    `${run.user ?? TEST_USER}@127.0.0.1`,
    ...(run.subsystem ? [run.subsystem] : run.command ? [run.command] : []),
  ];
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    SSH_ASKPASS: env.askpass,
    SSH_ASKPASS_REQUIRE: 'force',
    DISPLAY: ':0',
    S3GW_TEST_ASKPASS_ANSWER: run.password ?? TEST_PASSWORD,
  };
  delete childEnv.SSH_AUTH_SOCK;
  return runProcess('ssh', args, {
    env: childEnv,
    stdin: run.stdin,
    timeoutMs: run.timeoutMs,
    stdoutDelayMs: run.stdoutDelayMs,
  });
}

/** Counts the lines of `text` that contain `needle`. */
export function countLines(text: string, needle: string): number {
  return text.split('\n').filter((l) => l.includes(needle)).length;
}

export interface UserKey {
  /** The private key file, for `ssh -i`. */
  path: string;
  /** The public key blob (RFC 4253 §6.6), what the server compares. */
  blob: Buffer;
}

/** Generates a user key with ssh-keygen (no passphrase) in `dir`. */
export async function generateUserKey(dir: string, name: string, type: string, bits?: number): Promise<UserKey> {
  const file = path.join(dir, name);
  const size = bits ? ['-b', String(bits)] : [];
  const args = ['-q', '-t', type, ...size, '-N', '', '-C', `s3gw-test-${name}`, '-f', file];
  const r = await runProcess('ssh-keygen', args);
  if (r.code !== 0) throw new Error(`ssh-keygen ${args.join(' ')} failed: ${r.stderr}`);
  const pub = fs.readFileSync(`${file}.pub`, 'utf8').trim().split(/\s+/);
  return { path: file, blob: Buffer.from(pub[1]!, 'base64') };
}

/** An authenticator that lets `tester` in with exactly these public keys and nothing else. */
export function publicKeyAuth(allowed: () => readonly Uint8Array[]): Authenticator<string> {
  const known = (blob: Uint8Array) => allowed().some((b) => Buffer.from(b).equals(Buffer.from(blob)));
  return {
    methods: ['publickey'],
    async publicKeyAcceptable(ctx, key) {
      return ctx.username === TEST_USER && known(key.blob);
    },
    async checkPublicKey(ctx, key) {
      if (ctx.username === TEST_USER && known(key.blob)) return { ok: true, principal: ctx.username };
      return { ok: false, reason: 'key not allowed' };
    },
  };
}

// ------------------------------------------------------------------ a watched server

/** What the server side saw of one connection. */
export interface ObservedConnection {
  readonly transport: Transport;
  /** The algorithms of every completed key exchange, the first one first. */
  readonly kexes: Negotiated[];
  /** Completed re-exchanges ('rekeyed' events): the proof that a rekey really happened. */
  rekeys: number;
  /** Whether strict KEX (OpenSSH PROTOCOL §1.10) was in force, read once the first KEX is done. */
  strictKex: boolean;
  closed: boolean;
}

export interface ObservedServer {
  readonly port: number;
  readonly options: SshServerOptions<string>;
  readonly connections: ObservedConnection[];
  /** Every successful login (sessions() call), in order. */
  readonly logins: SessionInfo[];
  close(): Promise<void>;
}

/**
 * The test server of spec/helpers/test-server.ts (same host keys, authenticator and
 * subsystems), served through `serveConnection` so each Transport can be watched. The server
 * sees what was negotiated independently of what the client claims, so interop assertions
 * can check both sides.
 */
export async function startObservedServer(extra: Partial<SshServerOptions<string>> = {}): Promise<ObservedServer> {
  // startTestServer builds the options every other suite uses; take them and serve them with
  // our own listener instead of its.
  const probe = await startTestServer(extra);
  await probe.close();
  const base = probe.options;
  const logins: SessionInfo[] = [];
  const options: SshServerOptions<string> = {
    ...base,
    sessions: (principal, info) => {
      logins.push(info);
      return base.sessions(principal, info);
    },
  };
  const connections: ObservedConnection[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const transport = serveConnection(socket, options);
    const conn: ObservedConnection = { transport, kexes: [], rekeys: 0, strictKex: false, closed: false };
    connections.push(conn);
    transport.on('ready', () => {
      conn.strictKex = transport.strictKex;
      if (transport.negotiated) conn.kexes.push({ ...transport.negotiated });
    });
    transport.on('rekeyed', () => {
      conn.rekeys++;
      if (transport.negotiated) conn.kexes.push({ ...transport.negotiated });
    });
    transport.on('close', () => {
      conn.closed = true;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    options,
    connections,
    logins,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
