/**
 * Pending multipart uploads a dead gateway left are aborted when the same key is uploaded again
 * (src/s3/stale.ts), against the real MinIO: the "dead" uploads are made by the admin directly,
 * with a part or without, and the sweep runs from a user's backend.
 */
import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BUCKET, MiB, admin, backend, closeBackends, pendingUploads, removePrefix, runPrefix, writePattern } from './fixture.js';

const DIR = runPrefix('stale');
const test = suite('s3/stale uploads');

test.after(async () => {
  await closeBackends();
  const a = await admin();
  for (const u of await pendingUploads(BUCKET, DIR)) {
    await a.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: u.key, UploadId: u.uploadId }));
  }
  await removePrefix(BUCKET, DIR + '/');
});

async function deadUpload(key: string, withPart: boolean): Promise<string> {
  const a = await admin();
  const { UploadId } = await a.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
  if (withPart) await a.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 1, Body: Buffer.alloc(1024, 7) }));
  return UploadId!;
}

async function settle(key: string, expect: (ids: string[]) => boolean): Promise<string[]> {
  let ids: string[] = [];
  for (let i = 0; i < 60; i++) {
    ids = (await pendingUploads(BUCKET, key)).filter((u) => u.key === key).map((u) => u.uploadId);
    if (expect(ids)) return ids;
    await new Promise((r) => setTimeout(r, 100));
  }
  return ids;
}

test('a small upload (PutObject) aborts the old uploads of its key, keeps the young and other keys', async () => {
  const key = `${DIR}/small.bin`;
  const other = `${DIR}/small.bin.other`;
  const oldWithPart = await deadUpload(key, true);
  const oldEmpty = await deadUpload(key, false);
  const otherOld = await deadUpload(other, true);
  await new Promise((r) => setTimeout(r, 2100));
  const young = await deadUpload(key, true);
  const b = await backend('least', { staleUploadMs: 2000 });
  const h = await b.openWrite(`/${BUCKET}/${key}`, { exclusive: false });
  await writePattern(h, 100_000);
  await h.commit();
  const left = await settle(key, (ids) => !ids.includes(oldWithPart) && !ids.includes(oldEmpty));
  assert.not.ok(left.includes(oldWithPart), 'the old upload with a part is aborted');
  assert.not.ok(left.includes(oldEmpty), 'the old upload without parts is aborted');
  assert.ok(left.includes(young), 'an upload younger than the age is kept');
  assert.ok((await pendingUploads(BUCKET, other)).some((u) => u.uploadId === otherOld), 'another key (same prefix) is untouched');
});

test('a multipart upload sweeps too, and never its own upload; 0 turns the sweep off', async () => {
  const key = `${DIR}/big.bin`;
  const dead = await deadUpload(key, true);
  await new Promise((r) => setTimeout(r, 1100));
  const off = await backend('least', { staleUploadMs: 0 });
  const h0 = await off.openWrite(`/${BUCKET}/${key}`, { exclusive: false });
  await writePattern(h0, 100_000);
  await h0.commit();
  await new Promise((r) => setTimeout(r, 500));
  assert.ok((await pendingUploads(BUCKET, key)).some((u) => u.uploadId === dead), 'no sweep with 0');
  const b = await backend('least', { staleUploadMs: 1000 });
  const h = await b.openWrite(`/${BUCKET}/${key}`, { exclusive: false });
  await writePattern(h, 7 * MiB);
  const left = await settle(key, (ids) => !ids.includes(dead));
  assert.not.ok(left.includes(dead), 'the dead upload is aborted while ours runs');
  assert.is(left.length, 1, 'ours is still pending, untouched');
  await h.commit();
  assert.equal(await pendingUploads(BUCKET, key), []);
});

test.run();
