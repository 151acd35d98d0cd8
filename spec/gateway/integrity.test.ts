/**
 * Bytes in equal bytes out, through the gateway and the real S3: sizes around the 5 MiB part
 * boundary (a single PutObject below it, multipart from it on), 3 parts + 17 bytes, and 200 MiB,
 * uploaded and downloaded by OpenSSH sftp and by paramiko, compared by sha256. Every object is
 * also checked from the admin's side: its size and SSE-S3.
 *
 * The payload files are made once per run (spec/helpers/gateway.ts); 200 MiB goes through
 * OpenSSH only, to keep the suite fast.
 */
import path from 'node:path';
import * as assert from 'uvu/assert';
import {
  BUCKET,
  MiB,
  assertOk,
  assertStored,
  e2ePrefix,
  paramiko,
  payload,
  sftpBatch,
  sha256File,
  show,
  tempDir,
  gatewaySuite,
} from '../helpers/gateway.js';

const PREFIX = e2ePrefix('integrity');
const PART = 5 * MiB;
const SIZES = [0, 1, PART - 1, PART, PART + 1, 3 * PART + 17];

const test = gatewaySuite('gateway: sha256 equality up and down', PREFIX);

test(`OpenSSH sftp: sizes ${SIZES.join(', ')}`, async ({ gw }) => {
  const files = await Promise.all(SIZES.map((s) => payload(s)));
  const local = tempDir('integrity-sftp');
  const remote = (s: number) => `/${BUCKET}/${PREFIX}/sftp/${s}.bin`;
  const r = await sftpBatch(gw, 'least', [
    ...files.map((f) => `put ${f.path} ${remote(f.size)}`),
    ...files.map((f) => `get ${remote(f.size)} ${path.join(local, `${f.size}.bin`)}`),
  ]);
  assertOk(r);
  for (const f of files) {
    assert.is(await sha256File(path.join(local, `${f.size}.bin`)), f.sha256, `${f.size} bytes: sha256 after the round trip`);
    await assertStored(BUCKET, `${PREFIX}/sftp/${f.size}.bin`, f.size);
  }
});

test(`paramiko: sizes ${SIZES.join(', ')}`, async ({ gw }) => {
  const files = await Promise.all(SIZES.map((s) => payload(s)));
  const local = tempDir('integrity-paramiko');
  const remote = (s: number) => `/${BUCKET}/${PREFIX}/paramiko/${s}.bin`;
  const run = await paramiko<{ results: Array<{ ok: boolean; value?: { sha256?: string; size: number }; message?: string }> }>(
    gw,
    'least',
    'ops',
    {
      ops: [
        ...files.map((f) => ({ op: 'put', local: f.path, remote: remote(f.size), expectError: false })),
        ...files.map((f) => ({ op: 'get', remote: remote(f.size), local: path.join(local, `${f.size}.bin`), expectError: false })),
      ],
    },
  );
  files.forEach((f, i) => {
    assert.is(run.results[i]!.value!.size, f.size, `${f.size} bytes: paramiko's STAT after put`);
    const got = run.results[files.length + i]!.value!;
    assert.equal(got, { sha256: f.sha256, size: f.size }, `${f.size} bytes: sha256 after the round trip`);
  });
  for (const f of files) await assertStored(BUCKET, `${PREFIX}/paramiko/${f.size}.bin`, f.size);
});

test('several clients at once, as different users, each get their own bytes back', async ({ gw }) => {
  const sizes = [PART + 1, 3 * PART + 17, PART - 1, 1];
  const users = ['least', 'oneBucket', 'least', 'oneBucket'] as const;
  const files = await Promise.all(sizes.map((s) => payload(s)));
  const local = tempDir('integrity-parallel');
  const runs = await Promise.all(
    files.map((f, i) => {
      const remote = `/${BUCKET}/${PREFIX}/parallel/${i}.bin`;
      return sftpBatch(gw, users[i]!, [`put ${f.path} ${remote}`, `get ${remote} ${path.join(local, `${i}.bin`)}`]);
    }),
  );
  for (const [i, f] of files.entries()) {
    assertOk(runs[i]!);
    assert.is(await sha256File(path.join(local, `${i}.bin`)), f.sha256, `client ${i} (${users[i]}, ${f.size} bytes)`);
    await assertStored(BUCKET, `${PREFIX}/parallel/${i}.bin`, f.size);
  }
});

test('OpenSSH sftp: 200 MiB up and down', async ({ gw }) => {
  const f = await payload(200 * MiB);
  const local = path.join(tempDir('integrity-200'), 'back.bin');
  const remote = `/${BUCKET}/${PREFIX}/200mib.bin`;
  const r = await sftpBatch(gw, 'least', [`put ${f.path} ${remote}`, `get ${remote} ${local}`], { timeoutMs: 120_000 });
  assertOk(r);
  assert.is(await sha256File(local), f.sha256, show(r));
  const stored = await assertStored(BUCKET, `${PREFIX}/200mib.bin`, f.size);
  assert.ok(stored, '200 MiB stored with SSE');
});

test.run();
