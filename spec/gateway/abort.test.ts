/**
 * With `--partial-uploads discard`, a client that dies mid-upload leaves nothing behind (issue 3
 * §6): no object, and no multipart upload pending in S3 (which would keep its parts, and their
 * cost, forever); and a resumed upload that dies leaves the object as it was (issue 5 §3). With
 * the default, keep, what arrived is kept for resume instead: spec/gateway/resume.test.ts.
 *
 * OpenSSH sftp uploads 3 parts + 17 bytes at a limited rate (`sftp -l`, Kbit/s), so the upload
 * is reliably in the middle when it is killed: the test waits until the gateway has started the
 * multipart upload (ListMultipartUploads as admin shows it), kills the client, then polls with a
 * deadline until the gateway has noticed and aborted it. Two ways to die: the ssh process is
 * killed (the TCP connection drops with no SSH goodbye), or only sftp is (ssh then ends the
 * channel with EOF, an orderly end of a session whose upload was never closed).
 */
import fs from 'node:fs';
import path from 'node:path';
import * as assert from 'uvu/assert';
import {
  tempDir,
  BUCKET,
  MiB,
  e2ePrefix,
  headOrNull,
  payload,
  sftpBatch,
  sftpBatchStarted,
  killMidUpload,
  assertOk,
  type Gateway,
  gatewaySuite,
} from '../helpers/gateway.js';

const PREFIX = e2ePrefix('abort');
const SIZE = 3 * 5 * MiB + 17;
/** Kbit/s: about 2 MB/s, so the first 5 MiB part fills in under 3 s and the whole file takes 8. */
const RATE = '16000';

const test = gatewaySuite('gateway: a client killed mid-upload, partial uploads discarded', PREFIX, [
  '--partial-uploads',
  'discard',
]);

async function killSftpMidUpload(gw: Gateway, name: string, killSsh: boolean): Promise<void> {
  const f = await payload(SIZE);
  const key = `${PREFIX}/${name}.bin`;
  const run = await sftpBatchStarted(gw, 'least', [`put ${f.path} /${BUCKET}/${key}`], { args: ['-l', RATE] });
  await killMidUpload(gw, key, run, killSsh);
}

test('killing ssh (the connection drops) leaves no object and no pending multipart upload', async ({ gw }) => {
  await killSftpMidUpload(gw, 'connection-dropped', true);
});

test('killing sftp (ssh ends the channel) leaves no object and no pending multipart upload', async ({ gw }) => {
  await killSftpMidUpload(gw, 'channel-ended', false);
});

test('killing a reput leaves the object as it was and no pending multipart upload', async ({ gw }) => {
  const f = await payload(SIZE);
  const key = `${PREFIX}/reput-killed.bin`;
  const head = path.join(tempDir('abort'), 'head.bin');
  fs.writeFileSync(head, fs.readFileSync(f.path).subarray(0, 5 * MiB + 1));
  assertOk(await sftpBatch(gw, 'least', [`put ${head} /${BUCKET}/${key}`]));
  const before = await headOrNull(BUCKET, key);
  assert.ok(before);
  const run = await sftpBatchStarted(gw, 'least', [`reput ${f.path} /${BUCKET}/${key}`], { args: ['-l', RATE] });
  const after = await killMidUpload(gw, key, run, true, 'object');
  assert.is(after?.size, before.size, 'the size it had');
  assert.is(after?.etag, before.etag, 'the same object');
});

test('the gateway serves new logins and uploads after the killed clients', async ({ gw }) => {
  const f = await payload(1);
  const r = await sftpBatch(gw, 'least', [`put ${f.path} /${BUCKET}/${PREFIX}/after.bin`]);
  assertOk(r);
  assert.ok(await headOrNull(BUCKET, `${PREFIX}/after.bin`));
});

test.run();
