/**
 * --workers 2 with the real `s3gw` command against the real MinIO: both workers serve, limits
 * are one per instance (held by the primary), a worker killed with SIGKILL is replaced while
 * the other keeps serving, /metrics merges the workers, and SIGTERM to the primary stops all of
 * them with status 0.
 */
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startGatewayProcess } from '../helpers/big-upload.js';
import { killStrayChildren } from '../helpers/openssh.js';
import { parsePrometheus, sampleValue } from '../helpers/prometheus.js';
import { firstLine, healthPortOf } from '../helpers/ops.js';
import {
  BUCKET,
  assertOk,
  childPids,
  e2ePrefix,
  eventually,
  payload,
  removePrefix,
  s3env,
  sftpBatch,
  sha256Object,
  tempDir,
  type Gateway,
} from '../helpers/gateway.js';

const PREFIX = e2ePrefix('cluster');
const test = suite('ops/cluster: --workers 2');

test.after(async () => {
  killStrayChildren();
  await removePrefix(BUCKET, PREFIX + '/');
});

function getText(port: number, p: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: p }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

test('two workers serve, share the limits, one killed is replaced, SIGTERM stops all', async () => {
  const env = await s3env();
  const dir = tempDir('cluster');
  const auditFile = path.join(dir, 'audit.jsonl');
  const gp = await startGatewayProcess({
    endpoint: env.endpoint,
    region: env.region,
    dir,
    args: ['--workers', '2', '--health-listen', '127.0.0.1:0', '--max-connections-per-address', '3', '--audit-log', auditFile],
  });
  const exit = new Promise<number | null>((resolve) => gp.child.once('exit', (code) => resolve(code)));
  try {
    const health = await healthPortOf(gp);
    await eventually('both workers listen', async () => (gp.logTail(200).match(/listening on 127\.0\.0\.1/g) ?? []).length >= 2);
    const gw = { port: gp.port } as Gateway;
    const workers = childPids(gp.pid);
    assert.is(workers.length, 2, 'two worker processes');

    // Sessions work, and connections are spread over both workers (round robin).
    const f = await payload(300_007);
    for (let i = 0; i < 4; i++) assertOk(await sftpBatch(gw, 'least', [`put ${f.path} /${BUCKET}/${PREFIX}/f${i}.bin`]));
    const logins = gp.logTail(400).split('\n').filter((l) => l.includes('"msg":"login"'));
    assert.ok(logins.some((l) => l.includes('"worker":1')) && logins.some((l) => l.includes('"worker":2')), logins.join('\n'));
    // Both workers' audit records reach the primary's one audit log.
    await eventually('the audit log has the four uploads', async () => {
      const recs = fs.existsSync(auditFile) ? fs.readFileSync(auditFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event: string; path?: string; bytes?: number }) : [];
      const ups = recs.filter((r) => r.event === 'upload' && r.bytes === f.size).map((r) => r.path);
      return [0, 1, 2, 3].every((i) => ups.includes(`/${BUCKET}/${PREFIX}/f${i}.bin`)) && recs.filter((r) => r.event === 'session_end').length >= 4;
    });

    // The per-address limit is the instance's, not each worker's: the fourth connection is
    // refused whichever worker it lands on.
    const held = [await firstLine(gp.port), await firstLine(gp.port), await firstLine(gp.port)];
    for (const h of held) assert.match(h.line, /^SSH-2\.0-/);
    const fourth = await firstLine(gp.port);
    assert.is(fourth.line, 's3gw: too many connections from this address');
    for (const h of [...held, fourth]) h.socket.destroy();

    // Kill one worker: a new one replaces it, and the other kept serving meanwhile. The session
    // waits until the primary has seen the death: a connection the primary hands over in the
    // milliseconds before (node's round-robin handoff) is lost with the worker, as are the
    // connections the worker held (docs/operations.md).
    const victim = workers[0]!;
    process.kill(victim, 'SIGKILL');
    await eventually('the primary sees the death', async () => gp.records('worker exited; replacing it') >= 1);
    assertOk(await sftpBatch(gw, 'least', ['ls /']));
    await eventually('the dead worker is replaced', async () => {
      const now = childPids(gp.pid);
      return now.length === 2 && !now.includes(victim);
    });
    // The dead worker's connections were released: three fit again.
    await eventually('the replacement listens', async () => (gp.logTail(400).match(/listening on 127\.0\.0\.1/g) ?? []).length >= 3);
    for (let i = 0; i < 3; i++) assertOk(await sftpBatch(gw, 'least', ['ls /']));
    assert.equal(await sha256Object(BUCKET, `${PREFIX}/f3.bin`), { sha256: f.sha256, size: f.size });

    // /metrics: both workers' figures merged, the restart counted.
    const { samples } = parsePrometheus(await getText(health, '/metrics'));
    assert.is(sampleValue(samples, 's3gw_workers'), 2);
    assert.is(sampleValue(samples, 's3gw_worker_restarts_total'), 1);
    assert.ok((sampleValue(samples, 's3gw_logins_total', { outcome: 'success' }) ?? 0) >= 3, 'logins of the surviving and the new worker');
    for (const w of ['1', '2', 'primary']) assert.ok(sampleValue(samples, 'process_resident_memory_bytes', { worker: w }), `memory of ${w}`);
    assert.is(await getText(health, '/health'), 'ok\n');

    // SIGTERM to the primary: everything stops, status 0.
    const all = childPids(gp.pid);
    gp.child.kill('SIGTERM');
    assert.is(await exit, 0, gp.logTail());
    for (const pid of all) {
      let alive = true;
      for (let i = 0; i < 50 && alive; i++) {
        try {
          process.kill(pid, 0);
          await new Promise((r) => setTimeout(r, 50));
        } catch {
          alive = false;
        }
      }
      assert.not.ok(alive, `worker ${pid} stopped`);
    }
  } finally {
    await gp.stop(2000);
  }
});

test.run();
