/**
 * The CLI serves from a node started with NODE_FLAGS: run without them, it starts a child with
 * them, forwards SIGTERM, and exits when the child does.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NODE_FLAGS } from '../../src/node-flags.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli.js');

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Field 4 (ppid) comes after the parenthesised command name.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('without NODE_FLAGS the CLI serves from a child node started with them, and stops with it', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 's3gw-respawn-'));
  const env = { ...process.env };
  delete env.S3GW_NO_RESPAWN;
  const parent = spawn(
    process.execPath,
    [CLI, '--listen', '127.0.0.1:0', '--state-dir', dir, '--s3-endpoint', 'http://127.0.0.1:9', '--s3-path-style', '--workers', '1', ...(process.getuid?.() === 0 ? ['--allow-root'] : [])],
    { stdio: ['ignore', 'pipe', 'pipe'], env },
  );
  try {
    let log = '';
    parent.stdout.on('data', (d: Buffer) => (log += d.toString()));
    parent.stderr.on('data', (d: Buffer) => (log += d.toString()));
    for (let i = 0; i < 200 && !log.includes('listening on'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(log, /listening on 127\.0\.0\.1:\d+/);
    const kids = childrenOf(parent.pid!);
    assert.is(kids.length, 1, 'one child node');
    const argv = readFileSync(`/proc/${kids[0]}/cmdline`, 'utf8').split('\0');
    for (const f of NODE_FLAGS) assert.ok(argv.includes(f), `child runs with ${f}: ${argv.join(' ')}`);
    const exited = new Promise<number | null>((resolve) => parent.on('exit', (code) => resolve(code)));
    parent.kill('SIGTERM');
    assert.is(await exited, 0, 'the parent exits with the child status');
    for (let i = 0; i < 40 && alive(kids[0]!); i++) await new Promise((r) => setTimeout(r, 50));
    assert.not.ok(alive(kids[0]!), 'the child stopped too');
  } finally {
    parent.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
