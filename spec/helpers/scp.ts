/**
 * Legacy SCP clients for the end-to-end suites: OpenSSH `scp -O` (exec `scp -t` / `scp -f`
 * instead of the SFTP subsystem), curl's scp:// (libssh2), and `ssh host command` for exec
 * requests that are not scp. Same gateway, users and pinned host keys as spec/helpers/gateway.ts.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fixtureHostKeyBlob, runProcess, runSsh } from './openssh.js';
import {
  askpassEnv,
  creds,
  sshClientEnv,
  sshOptions,
  type ClientRun,
  type Gateway,
  type UserName,
} from './gateway.js';

function described(r: Awaited<ReturnType<typeof runProcess>>, what: string): ClientRun {
  return { ...r, out: r.stdout.toString('utf8'), what };
}

export interface ScpOptions {
  timeoutMs?: number;
  cwd?: string;
}

/**
 * The argv of `scp -O` as `user`: -O first, then our options (BatchMode=no leads them, as ssh
 * keeps the first value it sees), the port, then `args`.
 */
function scpArgv(gw: Gateway, args: string[]): string[] {
  return ['-O', ...sshOptions(sshClientEnv()), '-P', String(gw.port), ...args];
}

/** `scp -O args…` logged in as `user`, with a deadline. */
export async function scpLegacy(gw: Gateway, user: UserName, args: string[], opts: ScpOptions = {}): Promise<ClientRun> {
  const c = await creds(user);
  const r = await runProcess('scp', scpArgv(gw, args), {
    env: askpassEnv(sshClientEnv(), c.secretAccessKey),
    timeoutMs: opts.timeoutMs ?? 60_000,
    cwd: opts.cwd,
  });
  return described(r, `scp -O ${args.join(' ')}`);
}

/**
 * Starts `scp -O` without waiting: the child's pid (once it exists) and the run, for tests that
 * kill the client mid-transfer.
 */
export async function scpLegacyStarted(
  gw: Gateway,
  user: UserName,
  args: string[],
  opts: ScpOptions = {},
): Promise<{ pid: () => number | undefined; done: Promise<ClientRun> }> {
  const c = await creds(user);
  let pid: number | undefined;
  const done = runProcess('scp', scpArgv(gw, args), {
    env: askpassEnv(sshClientEnv(), c.secretAccessKey),
    timeoutMs: opts.timeoutMs ?? 60_000,
    cwd: opts.cwd,
    // The feeder runs once the child exists: a way to learn its pid. stdin stays open and unused.
    stdin: async (_stdin, child) => {
      pid = child.pid;
    },
  }).then((r) => described(r, `scp -O ${args.join(' ')}`));
  return { pid: () => pid, done };
}

/** `ssh user@gateway command`: an exec request with an arbitrary command line. */
export async function sshExec(gw: Gateway, user: UserName, command: string): Promise<ClientRun> {
  const c = await creds(user);
  const r = await runSsh(sshClientEnv(), {
    port: gw.port,
    user: c.accessKeyId,
    password: c.secretAccessKey,
    command,
    timeoutMs: 30_000,
  });
  return described(r, `ssh ${JSON.stringify(command)}`);
}

/** curl's scp:// URL for `remotePath` ("/bucket/key"), the secret percent-encoded. */
export async function curlScpUrl(gw: Gateway, user: UserName, remotePath: string): Promise<string> {
  const c = await creds(user);
  const enc = (s: string) => encodeURIComponent(s);
  const p = remotePath.split('/').map(enc).join('/');
  return `scp://${enc(c.accessKeyId)}:${enc(c.secretAccessKey)}@127.0.0.1:${gw.port}${p}`;
}

/**
 * The host keys curl may be offered, as `--hostpubsha256` wants them (base64 of the SHA-256 of
 * the key blob, no padding). libssh2 checks the one the server signed the exchange with.
 */
export function hostKeySha256(name: string): string {
  return createHash('sha256').update(fixtureHostKeyBlob(name)).digest('base64').replace(/=+$/, '');
}

/**
 * curl against scp:// URLs. Host-key checking: libssh2 would look the host up in
 * ~/.ssh/known_hosts, which tests must not touch, so `--insecure` turns that lookup off and
 * `--hostpubsha256` pins the gateway's ECDSA P-256 key instead (libssh2 1.10 prefers
 * ecdsa-sha2-nistp256 among the keys the gateway offers), so a wrong key still fails.
 */
export async function curlScp(args: string[], opts: { timeoutMs?: number; pin?: string } = {}): Promise<ClientRun> {
  const pin = opts.pin ?? hostKeySha256('ecdsa256');
  const r = await runProcess(
    'curl',
    ['--silent', '--show-error', '--insecure', '--hostpubsha256', pin, '--max-time', '60', ...args],
    { timeoutMs: opts.timeoutMs ?? 70_000 },
  );
  // The URL holds the secret: keep it out of assertion messages.
  const what = 'curl ' + args.map((a) => (a.startsWith('scp://') ? a.replace(/\/\/[^@]*@/, '//<user>:<secret>@') : a)).join(' ');
  return described(r, what);
}

/** Writes `files` (relative name → bytes) under `root`, making directories on the way. */
export function writeTree(root: string, files: Record<string, Buffer>): void {
  for (const [name, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    fs.writeFileSync(path.join(root, name), data);
  }
}

/** Every regular file under `root`, relative and sorted, with `/` separators. */
export function listTree(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(dir, e.name), r);
      else out.push(r);
    }
  };
  walk(root, '');
  return out.sort();
}
