/**
 * Behind a load balancer, with HAProxy as the balancer and the real MinIO behind the gateways.
 *
 * - PROXY v2 (`send-proxy-v2`) and v1 (`send-proxy`): a client bound to 127.0.0.2 reaches the
 *   gateway through HAProxy (which connects from 127.0.0.1), and the audit log shows 127.0.0.2.
 *   Without a header, or from an address outside --trusted-proxy, a connection is refused.
 * - Two instances (the real `s3gw` command) behind HAProxy: the one serving an upload is killed
 *   with SIGKILL mid-upload. New sessions go to the other; the client's retry of the upload
 *   through HAProxy completes; the killed instance's multipart upload is aborted by the retry's
 *   stale-upload sweep, so the bucket holds exactly the retried file and nothing is pending.
 */
import net from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startGatewayProcess } from '../helpers/big-upload.js';
import { startHaproxy, type Haproxy } from '../helpers/haproxy.js';
import { KeptAudit, healthPortOf } from '../helpers/ops.js';
import { killStrayChildren } from '../helpers/openssh.js';
import {
  BUCKET,
  assertOk,
  e2ePrefix,
  eventually,
  payload,
  pendingUploads,
  removePrefix,
  s3env,
  sftpBatch,
  sftpBatchStarted,
  sha256Object,
  show,
  startGateway,
  tempDir,
  type Gateway,
} from '../helpers/gateway.js';
import { keysUnder } from '../s3/fixture.js';

const PREFIX = e2ePrefix('haproxy');
const test = suite('gateway: behind HAProxy');

test.after(async () => {
  killStrayChildren();
  await removePrefix(BUCKET, PREFIX + '/');
});

const via = (port: number) => ({ port }) as Gateway;
const bind = (addr: string) => ({ args: ['-o', `BindAddress=${addr}`] });

for (const version of ['v2', 'v1'] as const) {
  test(`PROXY ${version}: the audit log shows the client's own address; no header or an untrusted peer is refused`, async () => {
    const kept = new KeptAudit();
    const gw = await startGateway(['--proxy-protocol', '--trusted-proxy', '127.0.0.1/32'], { audit: kept });
    let hp: Haproxy | undefined;
    try {
      hp = await startHaproxy(tempDir(`haproxy-${version}`), [{ name: 'a', port: gw.port, proxy: version }]);
      const before = kept.records.length;
      assertOk(await sftpBatch(via(hp.port), 'least', ['ls /'], bind('127.0.0.2')));
      const start = kept.records.slice(before).find((r) => r.event === 'session_start');
      assert.ok(start && start.event === 'session_start', 'a session through HAProxy');
      assert.is(start.clientAddress, '127.0.0.2', 'the address from the PROXY header, not HAProxy’s 127.0.0.1');
      assert.ok(start.clientPort > 0);
      // Straight to the gateway from a trusted address but with no header: refused.
      const direct = await sftpBatch(gw, 'least', ['ls /']);
      assert.is(direct.code, 255, show(direct));
      // From an address outside --trusted-proxy: refused before any header is read.
      const untrusted = await sftpBatch(gw, 'least', ['ls /'], bind('127.0.0.3'));
      assert.is(untrusted.code, 255, show(untrusted));
      // A TCP health check (connect, close without a byte) is not a refusal worth auditing.
      const refusedBefore = kept.records.filter((r) => r.event === 'connection_refused').length;
      await new Promise<void>((resolve) => {
        const probe = net.connect(gw.port, '127.0.0.1', () => probe.end());
        probe.on('close', () => resolve());
        probe.resume();
      });
      await new Promise((r) => setTimeout(r, 200));
      assert.is(kept.records.filter((r) => r.event === 'connection_refused').length, refusedBefore, 'a silent probe is not audited');
      const reasons = kept.records.filter((r) => r.event === 'connection_refused').map((r) => `${r.clientAddress} ${(r as { reason: string }).reason}`);
      assert.ok(reasons.some((r) => /^127\.0\.0\.1 no PROXY protocol header/.test(r)), reasons.join('\n'));
      assert.ok(reasons.some((r) => /^127\.0\.0\.3 .*not a --trusted-proxy/.test(r)), reasons.join('\n'));
    } finally {
      await hp?.stop();
      await gw.close();
    }
  });
}

test('two instances: one killed mid-upload; new sessions go to the other, the retry completes, nothing is left pending', async () => {
  const env = await s3env();
  const args = ['--proxy-protocol', '--trusted-proxy', '127.0.0.1/32', '--stale-upload-age', '2s', '--health-listen', '127.0.0.1:0'];
  const start = async (name: string) => {
    const gp = await startGatewayProcess({ endpoint: env.endpoint, region: env.region, dir: tempDir(`two-${name}`), args });
    return { gp, health: await healthPortOf(gp) };
  };
  const a = await start('a');
  const b = await start('b');
  let hp: Haproxy | undefined;
  try {
    hp = await startHaproxy(tempDir('haproxy-two'), [
      { name: 'a', port: a.gp.port, proxy: 'v2', healthPort: a.health },
      { name: 'b', port: b.gp.port, proxy: 'v2', healthPort: b.health },
    ]);
    const f = await payload(24 * 1024 * 1024 + 5);
    const key = `${PREFIX}/two/file.bin`;
    // About 2 MB/s: several 5 MiB parts reach S3 before the kill, most of the file after it.
    const up = await sftpBatchStarted(via(hp.port), 'least', [`put ${f.path} /${BUCKET}/${key}`], { args: ['-l', '16000'] });
    await eventually('the upload has a pending multipart upload', async () => (await pendingUploads(BUCKET, key)).length > 0, 30_000);
    await new Promise((r) => setTimeout(r, 1500));
    const serving = a.gp.records('login') > 0 ? a : b;
    const other = serving === a ? b : a;
    assert.is(serving.gp.records('login'), 1, 'one instance took the upload');
    serving.gp.child.kill('SIGKILL');
    const cut = await up.done;
    assert.is.not(cut.code, 0, `the client saw its upload cut\n${show(cut)}`);
    assert.is((await pendingUploads(BUCKET, key)).length, 1, 'the killed instance left its multipart upload behind');

    // New sessions through HAProxy reach the survivor.
    const loginsBefore = other.gp.records('login');
    assertOk(await sftpBatch(via(hp.port), 'least', ['ls /']));
    assert.ok(other.gp.records('login') > loginsBefore, 'served by the other instance');

    // The client retries once the dead upload is older than --stale-upload-age (2 s).
    await new Promise((r) => setTimeout(r, 2500));
    assertOk(await sftpBatch(via(hp.port), 'least', [`put ${f.path} /${BUCKET}/${key}`], { timeoutMs: 120_000 }));
    assert.equal(await sha256Object(BUCKET, key), { sha256: f.sha256, size: f.size });
    await eventually('the dead upload is aborted', async () => (await pendingUploads(BUCKET, key)).length === 0, 20_000);
    assert.equal(await keysUnder(BUCKET, `${PREFIX}/two/`), [key], 'the bucket holds the retried file and nothing else');
  } finally {
    await hp?.stop();
    await a.gp.stop(2000);
    await b.gp.stop(2000);
  }
});

test.run();
