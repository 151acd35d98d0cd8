/**
 * The OpenSSH client side of a run, through client-driver.py: `head -c SIZE /dev/zero | ssh …`
 * for uploads, `ssh … | splice-into-/dev/null-and-count` for downloads, with ssh's exact CPU
 * time from wait4(2). See that file for why it is Python.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { killTree, track } from './children.js';
import type { Cpu } from './proc.js';

/** bench/lib/client-driver.py, from dist/bench/lib (it is not compiled). */
const DRIVER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bench/lib/client-driver.py');

export interface SshTarget {
  port: number;
  user: string;
  identityFile: string;
}

export interface Algorithms {
  cipher: string;
  mac: string;
}

/** Options that make the client deterministic and quiet, and that force the algorithms. */
export function sshArgs(t: SshTarget, alg: Algorithms): string[] {
  const o = (kv: string) => ['-o', kv];
  return [
    '-F', '/dev/null',
    '-p', String(t.port),
    '-l', t.user,
    '-i', t.identityFile,
    ...o('IdentitiesOnly=yes'),
    ...o('IdentityAgent=none'),
    ...o('BatchMode=yes'),
    ...o('StrictHostKeyChecking=no'),
    ...o('UserKnownHostsFile=/dev/null'),
    ...o('GlobalKnownHostsFile=/dev/null'),
    ...o('LogLevel=ERROR'),
    ...o('ControlMaster=no'),
    ...o('ControlPath=none'),
    ...o('RequestTTY=no'),
    ...o('ForwardAgent=no'),
    ...o('ForwardX11=no'),
    ...o('Compression=no'),
    ...o('ConnectTimeout=10'),
    ...o('KexAlgorithms=curve25519-sha256'),
    ...o('HostKeyAlgorithms=ssh-ed25519'),
    ...o('PubkeyAcceptedAlgorithms=ssh-ed25519'),
    ...o(`Ciphers=${alg.cipher}`),
    ...o(`MACs=${alg.mac}`),
    '-T',
  ];
}

/** What runs on the server: a subsystem (s3gw, ssh2, internal-sftp) or a shell command (sshd). */
export type Remote = { subsystem: string } | { command: string };

export interface ClientRun {
  wallSec: number;
  exitCode: number;
  /** CPU of the ssh process itself. */
  sshCpu: Cpu;
  /** Seconds of CPU of the whole client side: ssh, head, the counting driver. */
  clientSideCpu: number;
  /** Remote stderr (sshd's commands report there) plus ssh's own errors. */
  stderr: string;
  /** Bytes the download counter saw (downloads only). */
  downloaded?: number;
}

function remoteArgs(r: Remote): string[] {
  return 'subsystem' in r ? ['-s', '127.0.0.1', r.subsystem] : ['127.0.0.1', r.command];
}

/**
 * One ssh client run. `upload` bytes of zeros go to its stdin (none: /dev/null); with
 * `download`, its stdout is counted into /dev/null, else it goes to /dev/null.
 */
export async function runSsh(
  t: SshTarget,
  alg: Algorithms,
  remote: Remote,
  opts: { upload?: number; download?: boolean; timeoutMs: number },
): Promise<ClientRun> {
  const spec = {
    argv: ['ssh', ...sshArgs(t, alg), ...remoteArgs(remote)],
    upload: opts.upload ?? null,
    download: opts.download === true,
  };
  const driver = track(spawn('python3', [DRIVER, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killTree(driver);
  }, opts.timeoutMs);
  try {
    let out = '';
    let err = '';
    driver.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    driver.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const code = await new Promise<number | null>((resolve, reject) => {
      driver.once('error', reject);
      driver.once('close', (c) => resolve(c));
    });
    if (timedOut) throw new Error(`ssh run timed out after ${Math.round(opts.timeoutMs / 1000)} s`);
    if (code !== 0) throw new Error(`client driver failed (${code}): ${err.trim().slice(0, 2000)}`);
    const r = JSON.parse(out) as {
      exit: number;
      wall: number;
      ssh_user: number;
      ssh_sys: number;
      downloaded: number | null;
      all_cpu: number;
      stderr: string;
    };
    const run: ClientRun = {
      wallSec: r.wall,
      exitCode: r.exit,
      sshCpu: { user: r.ssh_user, sys: r.ssh_sys },
      clientSideCpu: r.all_cpu,
      stderr: r.stderr,
    };
    if (r.downloaded !== null) run.downloaded = r.downloaded;
    return run;
  } finally {
    clearTimeout(timer);
    killTree(driver);
  }
}
