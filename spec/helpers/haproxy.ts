/**
 * HAProxy (Debian's, installed by scripts/setup-test-deps.sh) in front of gateways: a TCP
 * frontend on 127.0.0.1 and a port of our choosing, balancing to the given servers with or
 * without a PROXY header, run in the foreground as a child process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort } from './test-server.js';

export interface HaproxyServer {
  name: string;
  port: number;
  proxy: 'v1' | 'v2' | 'none';
  /** A port with GET /health for HAProxy's checks (marks a dead instance down). */
  healthPort?: number;
}

export interface Haproxy {
  port: number;
  child: ChildProcess;
  log(): string;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

export function haproxyBinary(): string {
  for (const p of ['/usr/sbin/haproxy', '/usr/bin/haproxy']) if (fs.existsSync(p)) return p;
  throw new Error("haproxy is missing: run 'apt-get install -y haproxy' (scripts/setup-test-deps.sh does)");
}

export async function startHaproxy(dir: string, servers: HaproxyServer[]): Promise<Haproxy> {
  const port = await freePort();
  const lines = [
    'global',
    '  maxconn 256',
    'defaults',
    '  mode tcp',
    '  timeout connect 2s',
    '  timeout client 120s',
    '  timeout server 120s',
    '  timeout check 1s',
    '  retries 3',
    '  option redispatch',
    'frontend ssh',
    `  bind 127.0.0.1:${port}`,
    '  default_backend gateways',
    'backend gateways',
    '  balance roundrobin',
    ...(servers.some((s) => s.healthPort) ? ['  option httpchk GET /health'] : []),
    ...servers.map((s) => {
      const proxy = s.proxy === 'v2' ? ' send-proxy-v2' : s.proxy === 'v1' ? ' send-proxy' : '';
      const check = s.healthPort ? ` check port ${s.healthPort} inter 300ms fall 1 rise 1` : '';
      return `  server ${s.name} 127.0.0.1:${s.port}${proxy}${check}`;
    }),
  ];
  const cfg = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(cfg, lines.join('\n') + '\n');
  const child = spawn(haproxyBinary(), ['-f', cfg, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => (running.delete(child), r())));
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (up) break;
    if (child.exitCode !== null) throw new Error(`haproxy exited: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    child,
    log: () => out,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
