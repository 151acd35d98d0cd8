/**
 * /metrics and /health end to end: the in-process gateway against the real MinIO with its
 * metrics and the HTTP endpoint on 127.0.0.1:0, driven by OpenSSH sftp; the scrape is parsed by
 * spec/helpers/prometheus.ts and its numbers checked against what the clients did.
 */
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { GatewayMetrics, render } from '../../src/ops/metrics.js';
import { createHealthServer } from '../../src/ops/http.js';
import { killStrayChildren } from '../helpers/openssh.js';
import { parsePrometheus, sampleValue } from '../helpers/prometheus.js';
import { BUCKET, assertOk, e2ePrefix, payload, removePrefix, sftpBatch, show, startGateway, tempDir } from '../helpers/gateway.js';

const PREFIX = e2ePrefix('metrics');
const test = suite('gateway: metrics and health endpoint');

function get(port: number, p: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test.after(async () => {
  killStrayChildren();
  await removePrefix(BUCKET, PREFIX + '/');
});

test('a scrape after real sessions: logins by outcome, sessions, transfers and bytes, S3 latency by operation', async () => {
  const metrics = new GatewayMetrics();
  const gw = await startGateway([], { metrics });
  let state = 'ok';
  const health = createHealthServer({ health: () => state, metrics: () => render(metrics.registry.snapshot()) });
  await new Promise<void>((r) => health.listen(0, '127.0.0.1', r));
  const hport = (health.address() as AddressInfo).port;
  try {
    const f = await payload(6 * 1024 * 1024 + 3);
    const back = path.join(tempDir('metrics'), 'back.bin');
    const d = `/${BUCKET}/${PREFIX}`;
    assertOk(await sftpBatch(gw, 'least', [`put ${f.path} ${d}/a.bin`, `get ${d}/a.bin ${back}`, `mkdir ${d}/dir`, `rmdir ${d}/dir`]));
    const bad = await sftpBatch(gw, 'least', ['ls /'], { secret: 'wrong-secret-for-metrics' });
    assert.is(bad.code, 255, show(bad));
    await new Promise((r) => setTimeout(r, 200));

    const res = await get(hport, '/metrics');
    assert.is(res.status, 200);
    assert.is(res.type, 'text/plain; version=0.0.4; charset=utf-8');
    const { samples, types } = parsePrometheus(res.body);
    const v = (name: string, labels: Record<string, string> = {}) => sampleValue(samples, name, labels);
    assert.is(v('s3gw_logins_total', { outcome: 'success' }), 1);
    assert.is(v('s3gw_logins_total', { outcome: 'failure' }), 1);
    assert.is(v('s3gw_sessions_total', { protocol: 'sftp' }), 1);
    assert.is(v('s3gw_sessions', { protocol: 'sftp' }), 0, 'the session has ended');
    assert.is(v('s3gw_connections'), 0);
    assert.is(v('s3gw_transfers_total', { kind: 'upload', outcome: 'ok' }), 1);
    assert.is(v('s3gw_transfers_total', { kind: 'download', outcome: 'ok' }), 1);
    assert.is(v('s3gw_transfer_bytes_total', { direction: 'in' }), f.size);
    assert.is(v('s3gw_transfer_bytes_total', { direction: 'out' }), f.size);
    assert.is(v('s3gw_file_operations_total', { operation: 'mkdir', outcome: 'ok' }), 1);
    assert.is(v('s3gw_file_operations_total', { operation: 'rmdir', outcome: 'ok' }), 1);
    // 6 MiB + 3 is a multipart upload: Create, two UploadParts, Complete, then GETs for the download.
    assert.is(types.s3gw_s3_request_duration_seconds, 'histogram');
    assert.ok((v('s3gw_s3_request_duration_seconds_count', { operation: 'UploadPart' }) ?? 0) >= 2, res.body);
    assert.is(v('s3gw_s3_request_duration_seconds_count', { operation: 'CreateMultipartUpload' }), 1);
    assert.is(v('s3gw_s3_request_duration_seconds_count', { operation: 'CompleteMultipartUpload' }), 1);
    assert.ok((v('s3gw_s3_request_duration_seconds_count', { operation: 'GetObject' }) ?? 0) >= 1);
    assert.ok((v('s3gw_s3_request_duration_seconds_sum', { operation: 'UploadPart' }) ?? 0) > 0);
    assert.ok((v('process_resident_memory_bytes') ?? 0) > 0);
    assert.ok(v('s3gw_event_loop_lag_seconds', { quantile: '0.99' }) !== undefined);

    // A failing S3 request is counted by operation and code: a missing file's download.
    const miss = await sftpBatch(gw, 'least', [`-get ${d}/missing.bin ${back}.2`]);
    assert.is(miss.code, 0, show(miss));
    const again = parsePrometheus((await get(hport, '/metrics')).body).samples;
    const errs = again.filter((s) => s.name === 's3gw_s3_errors_total');
    assert.ok(errs.some((s) => /^(NotFound|NoSuchKey)$/.test(s.labels.code ?? '')), JSON.stringify(errs));

    // /health: 200 while serving, 503 while draining; anything else is 404 or 405.
    assert.equal(await get(hport, '/health'), { status: 200, type: 'text/plain', body: 'ok\n' });
    state = 'draining';
    assert.equal((await get(hport, '/health')).status, 503);
    assert.is((await get(hport, '/health')).body, 'draining\n');
    assert.is((await get(hport, '/nope')).status, 404);
    assert.is((await get(hport, '/metrics', 'POST')).status, 405);
  } finally {
    await gw.close();
    health.close();
    metrics.stop();
  }
});

test.run();
