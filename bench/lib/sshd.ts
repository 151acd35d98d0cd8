/**
 * A private OpenSSH sshd for the reference figures: its own config, host key and
 * authorized_keys in the benchmark's temp dir, on a loopback port, in the foreground (-D) so
 * that the benchmark owns it. Needs root (privilege separation), as on this project's
 * machines; bench/setup.sh installs Debian's openssh-server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { track } from './children.js';
import { descendants } from './proc.js';

export const SSHD = '/usr/sbin/sshd';

export interface Sshd {
  child: ChildProcess;
  /** The listening master: per-connection processes are its children, reaped by it. */
  pid: number;
  port: number;
  logFile: string;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export async function startSshd(dir: string, hostKeyFile: string, authorizedKeysFile: string): Promise<Sshd> {
  if (!existsSync(SSHD)) throw new Error(`${SSHD} is missing: run 'bash bench/setup.sh'`);
  if (process.getuid?.() !== 0) throw new Error('the reference sshd needs root (privilege separation)');
  // Debian's sshd refuses to start without its privilege separation directory.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const port = await freePort();
  const cfg = path.join(dir, 'sshd_config');
  const logFile = path.join(dir, 'sshd.log');
  writeFileSync(
    cfg,
    [
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKeyFile}`,
      `AuthorizedKeysFile ${authorizedKeysFile}`,
      'PidFile none',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'PermitRootLogin prohibit-password',
      // The temp dir is under /tmp, which StrictModes would reject as world-writable.
      'StrictModes no',
      'UseDNS no',
      'X11Forwarding no',
      'AllowTcpForwarding no',
      'PrintMotd no',
      'PrintLastLog no',
      'MaxStartups 100:30:200',
      // In-process, so a handshake measurement runs no command: the counterpart of test-discard.
      'Subsystem sftp internal-sftp',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  // Absolute path: sshd re-executes itself for each connection.
  const child = track(spawn(SSHD, ['-D', '-f', cfg, '-p', String(port), '-E', logFile], { stdio: 'ignore' }));
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) =>
      reject(new Error(`sshd exited with ${code}: ${existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''}`)),
    ),
  );
  await Promise.race([waitForPort(port, 10_000), exited]);
  return { child, pid: child.pid!, port, logFile };
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/**
 * Waits until the master has no children left: only then has it reaped (and so accounted in
 * its cutime/cstime) every process of the connections that ended.
 */
export async function waitIdle(s: Sshd, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (descendants(s.pid).length > 0) {
    if (Date.now() > deadline) throw new Error(`sshd still has children ${descendants(s.pid).join(',')}`);
    await sleep(10);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
