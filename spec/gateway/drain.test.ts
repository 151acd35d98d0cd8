/**
 * SIGTERM drains: the real `s3gw` command as a child process (one process, and a primary with two
 * workers) with
 * its health endpoint, against the real MinIO, an OpenSSH sftp upload slowed to about 100 kB/s
 * by sftp's own rate limit running when the signal arrives.
 *
 * - Within --drain-timeout: /health turns 503 at once, new sessions are refused, the running
 *   upload completes and its object is exact, and the process exits 0.
 * - Past --drain-timeout: the upload is cut off. What arrived is kept for resume (the default
 *   --partial-uploads keep, since no file is replaced): a strict prefix of the file, with no
 *   multipart upload left pending. The process still exits 0.
 */
import fs from 'node:fs';
import http from 'node:http';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startGatewayProcess, type GatewayProcess } from '../helpers/big-upload.js';
import { killStrayChildren } from '../helpers/openssh.js';
import { healthPortOf } from '../helpers/ops.js';
import {
  BUCKET,
  assertOk,
  e2ePrefix,
  headOrNull,
  payload,
  pendingUploads,
  removePrefix,
  s3env,
  sftpBatch,
  sftpBatchStarted,
  sha256Object,
  show,
  tempDir,
  type Gateway,
} from '../helpers/gateway.js';

const PREFIX = e2ePrefix('drain');
const test = suite('gateway: SIGTERM drain');

test.after(async () => {
  killStrayChildren();
  await removePrefix(BUCKET, PREFIX + '/');
});

function status(port: number, p: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: p }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}

async function start(args: string[]): Promise<{ gp: GatewayProcess; healthPort: number; exit: Promise<number | null> }> {
  const env = await s3env();
  const gp = await startGatewayProcess({ endpoint: env.endpoint, region: env.region, dir: tempDir('drain-gw'), args: ['--health-listen', '127.0.0.1:0', ...args] });
  const exit = new Promise<number | null>((resolve) => gp.child.once('exit', (code) => resolve(code)));
  return { gp, healthPort: await healthPortOf(gp), exit };
}

/** Waits until the gateway logged the upload's first WRITEs, so the signal lands mid-upload. */
async function midUpload(gp: GatewayProcess): Promise<void> {
  for (let i = 0; i < 200 && gp.records('login') === 0; i++) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 1500));
}

for (const workers of [1, 2]) {
  test(`--workers ${workers}: SIGTERM mid-upload: health 503, new sessions refused, the upload completes exactly, exit 0`, async () => {
    const { gp, healthPort, exit } = await start(['--workers', String(workers)]);
    try {
      assert.is(await status(healthPort, '/health'), 200);
      const f = await payload(500_003);
      const key = `${PREFIX}/finishes-${workers}.bin`;
      const gw = { port: gp.port } as Gateway;
      const up = await sftpBatchStarted(gw, 'least', [`put ${f.path} /${BUCKET}/${key}`], { args: ['-l', '800'] });
      await midUpload(gp);
      gp.child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      assert.is(await status(healthPort, '/health'), 503, 'unhealthy while draining');
      const late = await sftpBatch(gw, 'least', ['ls /'], { timeoutMs: 20_000 });
      assert.is(late.code, 255, `a new session is refused\n${show(late)}`);
      const r = await up.done;
      assertOk(r);
      assert.is(await exit, 0, gp.logTail());
      const stored = await sha256Object(BUCKET, key);
      assert.equal(stored, { sha256: f.sha256, size: f.size });
      assert.equal(await pendingUploads(BUCKET, key), []);
    } finally {
      await gp.stop(2000);
    }
  });
}

test('past --drain-timeout the upload is cut: a strict prefix kept for resume, nothing pending, exit 0', async () => {
  const { gp, exit } = await start(['--drain-timeout', '1s']);
  try {
    const f = await payload(1_500_007);
    const key = `${PREFIX}/cut.bin`;
    const gw = { port: gp.port } as Gateway;
    const up = await sftpBatchStarted(gw, 'least', [`put ${f.path} /${BUCKET}/${key}`], { args: ['-l', '800'] });
    await midUpload(gp);
    gp.child.kill('SIGTERM');
    const r = await up.done;
    assert.is.not(r.code, 0, `the client sees the cut\n${show(r)}`);
    assert.is(await exit, 0, gp.logTail());
    const head = await headOrNull(BUCKET, key);
    assert.ok(head, 'what arrived is kept for resume');
    assert.ok(head.size > 0 && head.size < f.size, `kept ${head.size} of ${f.size}`);
    const kept = await sha256Object(BUCKET, key);
    const prefix = fs.readFileSync(f.path).subarray(0, head.size);
    const { createHash } = await import('node:crypto');
    assert.is(kept.sha256, createHash('sha256').update(prefix).digest('hex'), 'a prefix of the file');
    assert.equal(await pendingUploads(BUCKET, key), []);
  } finally {
    await gp.stop(2000);
  }
});

test.run();
