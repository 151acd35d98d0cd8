/**
 * How a --workers 2 instance starts and stops, with the real `s3gw` command: a worker that
 * cannot listen ends the instance (status 1) instead of being replaced forever, and Ctrl-C in a
 * terminal (SIGINT to the whole process group: the re-spawning CLI, the primary and the workers)
 * drains and exits 0, although the primary hears SIGINT twice (the terminal's, and the one its
 * parent forwards). Workers whose primary is killed exit too.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CLI, startGatewayProcess } from '../helpers/big-upload.js';
import { childPids, eventually, s3env, tempDir } from '../helpers/gateway.js';

const test = suite('ops/cluster: starting and stopping');

const asRoot = process.getuid?.() === 0 ? ['--allow-root'] : [];

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A process and all its descendants. */
function tree(pid: number): number[] {
  return [pid, ...childPids(pid).flatMap(tree)];
}

test('a worker that cannot listen stops the instance with status 1, not a restart loop', async () => {
  const env = await s3env();
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as net.AddressInfo).port;
  try {
    const started = startGatewayProcess({
      endpoint: env.endpoint,
      region: env.region,
      dir: tempDir('cluster-taken'),
      args: ['--workers', '2', '--listen', `127.0.0.1:${port}`],
    });
    const err = await started.then(
      async (gp): Promise<Error> => {
        await gp.stop(1000);
        assert.unreachable('the gateway listened on a taken port');
        throw new Error('unreachable');
      },
      (e: Error) => e,
    );
    assert.match(err.message, /exited \(1\) before it listened/);
    assert.match(err.message, /EADDRINUSE/);
    assert.match(err.message, /a worker exited before the instance listened; stopping/);
  } finally {
    taken.close();
  }
});

test('workers exit when the primary is killed (nobody would hand them connections or hold the limits)', async () => {
  const env = await s3env();
  const gp = await startGatewayProcess({ endpoint: env.endpoint, region: env.region, dir: tempDir('cluster-orphans'), args: ['--workers', '2'] });
  let workers: number[] = [];
  try {
    await eventually('both workers listen', async () => (gp.logTail(200).match(/listening on 127\.0\.0\.1/g) ?? []).length >= 2);
    workers = childPids(gp.pid);
    assert.is(workers.length, 2, 'two workers');
    process.kill(gp.pid, 'SIGKILL');
    await eventually('both workers are gone', async () => workers.every((p) => !alive(p)), 10_000);
  } finally {
    for (const p of workers) if (alive(p)) process.kill(p, 'SIGKILL');
    await gp.stop(1000);
  }
});

test('Ctrl-C through the re-spawning CLI: SIGINT to the process group drains all and exits 0', async () => {
  const env = await s3env();
  const dir = tempDir('cluster-ctrl-c');
  const childEnv = { ...process.env };
  delete childEnv.S3GW_NO_RESPAWN;
  // Without NODE_FLAGS: the CLI runs node again with them (src/node-flags.ts) and waits for it.
  // detached: a process group of its own, as a shell gives a foreground job.
  const cli = spawn(
    process.execPath,
    [CLI, '--listen', '127.0.0.1:0', '--state-dir', path.join(dir, 'state'), '--s3-endpoint', env.endpoint,
      '--s3-region', env.region, '--s3-path-style', '--workers', '2', ...asRoot],
    { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv, detached: true },
  );
  let log = '';
  cli.stdout.on('data', (d: Buffer) => (log += d.toString()));
  cli.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const exit = new Promise<number | null>((resolve) => cli.once('exit', (code) => resolve(code)));
  let pids: number[] = [];
  try {
    await eventually('both workers listen', async () => (log.match(/listening on 127\.0\.0\.1:\d+/g) ?? []).length >= 2);
    pids = tree(cli.pid!);
    assert.is(pids.length, 4, `the CLI, the primary and two workers: ${pids.join(' ')}`);
    process.kill(-cli.pid!, 'SIGINT');
    assert.is(await exit, 0, log);
    assert.not.match(log, /again: exiting without waiting/);
    assert.match(log, /"msg":"stopped"/);
    await eventually('every process is gone', async () => pids.every((p) => !alive(p)), 5_000);
  } finally {
    for (const p of pids) if (alive(p)) process.kill(p, 'SIGKILL');
    if (cli.exitCode === null) cli.kill('SIGKILL');
  }
});

test.run();
