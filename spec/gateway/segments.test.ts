/**
 * Uploads past S3's part limit, end to end: with the gateway's part limit lowered to 4 parts of
 * 5 MiB (--max-parts 4), 60 MiB and 300 MiB go up through OpenSSH sftp (size unknown to the
 * gateway) and legacy scp (size known from the C line) into segments copied into the final
 * upload. Each object must come back byte for byte, with no temporary and no multipart upload
 * left. A gateway with a 20 MiB object limit refuses bigger files cleanly.
 */
import path from 'node:path';
import * as assert from 'uvu/assert';
import {
  BUCKET,
  MiB,
  assertOk,
  assertStored,
  e2ePrefix,
  gatewaySuite,
  logLines,
  payload,
  pendingUploads,
  scpRemote,
  sftpBatch,
  sha256File,
  startGateway,
  tempDir,
} from '../helpers/gateway.js';
import { scpLegacy } from '../helpers/scp.js';
import { keysUnder } from '../s3/fixture.js';

const PREFIX = e2ePrefix('segments');
const SIZES = [60 * MiB, 300 * MiB];

const test = gatewaySuite('gateway: uploads past the part limit (4 parts of 5 MiB)', PREFIX, [
  '--max-parts', '4',
  '--max-object-size', '400MiB',
]);

async function assertExact(gw: Parameters<typeof sftpBatch>[0], key: string, want: { size: number; sha256: string }) {
  await assertStored(BUCKET, key, want.size);
  const local = path.join(tempDir('segments-get'), 'back.bin');
  assertOk(await sftpBatch(gw, 'least', [`get /${BUCKET}/${key} ${local}`]));
  assert.is(await sha256File(local), want.sha256, `${key}: sha256 after the round trip`);
}

for (const size of SIZES) {
  test(`OpenSSH sftp put, ${size / MiB} MiB: exact object, no temporaries`, async ({ gw }) => {
    const f = await payload(size);
    const key = `${PREFIX}/sftp-${size}.bin`;
    assertOk(await sftpBatch(gw, 'least', [`put ${f.path} /${BUCKET}/${key}`], { timeoutMs: 300_000 }));
    await assertExact(gw, key, f);
    assert.equal(await keysUnder(BUCKET, key), [key], 'only the object under its name');
    assert.equal(await pendingUploads(BUCKET, key), []);
  });

  test(`legacy scp -O, ${size / MiB} MiB (size known): exact object, no temporaries`, async ({ gw }) => {
    const f = await payload(size);
    const key = `${PREFIX}/scp-${size}.bin`;
    assertOk(await scpLegacy(gw, 'least', [f.path, await scpRemote('least', `/${BUCKET}/${key}`)], { timeoutMs: 300_000 }));
    await assertExact(gw, key, f);
    assert.equal(await keysUnder(BUCKET, key), [key], 'only the object under its name');
    assert.equal(await pendingUploads(BUCKET, key), []);
  });
}

test('past the object limit: sftp fails at the write that passes it, scp at the C line; nothing is left', async () => {
  const gw = await startGateway(['--max-object-size', '20MiB']);
  try {
    const f = await payload(60 * MiB);
    const key = `${PREFIX}/too-big`;
    const r = await sftpBatch(gw, 'least', [`put ${f.path} /${BUCKET}/${key}-sftp`]);
    assert.is.not(r.code, 0, 'sftp reports the failure');
    // OpenSSH prints only the status ("Failure"); the message the gateway sent is in its log.
    assert.match(r.out + r.stderr, /Failure/);
    assert.ok(logLines(gw, /file too large: the limit is 20971520 bytes/).length > 0, 'the reason is logged');
    const s = await scpLegacy(gw, 'least', [f.path, await scpRemote('least', `/${BUCKET}/${key}-scp`)]);
    assert.is.not(s.code, 0, 'scp reports the failure');
    assert.match(s.out + s.stderr, /too large/i, s.out + s.stderr);
    assert.equal(await keysUnder(BUCKET, key), []);
    assert.equal(await pendingUploads(BUCKET, key), []);
  } finally {
    await gw.close();
  }
});

test.run();
