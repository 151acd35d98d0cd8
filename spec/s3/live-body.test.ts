/**
 * The chunks of streamed part bodies: each pushed buffer becomes one aws-chunked chunk when a
 * part carries a CRC32 trailer, and S3 refuses chunks under 8 KiB but the last. Bodies must come
 * out byte-exact, in chunks of at least 16 KiB except the last, whatever the WRITE sizes.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PartBuffer } from '../../src/s3/slabs.js';
import { coalesce, LiveBody } from '../../src/s3/upload.js';

const test = suite('s3/upload: streamed body chunks');
const MIN = 16 * 1024;

async function collect(r: Readable): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of r) out.push(c as Buffer);
  return out;
}

function checkChunks(chunks: Buffer[], want: Buffer, what: string): void {
  assert.ok(Buffer.concat(chunks).equals(want), `${what}: the bytes`);
  chunks.slice(0, -1).forEach((c, i) => assert.ok(c.length >= MIN, `${what}: chunk ${i} is ${c.length} bytes`));
}

for (const writeSize of [1000, 4096, 32 * 1024, 261_120, 700_000]) {
  test(`LiveBody: ${writeSize}-byte writes fed while the body is read`, async () => {
    const total = 5 * 1024 * 1024;
    const data = randomBytes(total);
    const part = new PartBuffer();
    const body = new LiveBody(part, total);
    const reading = collect(body);
    for (let at = 0; at < total; at += writeSize) {
      const piece = data.subarray(at, Math.min(total, at + writeSize));
      for (let pos = 0; pos < piece.length; ) pos += part.append(piece, pos, piece.length - pos);
      body.feed();
      await new Promise((r) => setImmediate(r));
    }
    checkChunks(await reading, data, `${writeSize}-byte writes`);
    part.release();
  });
}

test('coalesce: short chunks are joined, long ones pass through, the last may be short', async () => {
  const sizes = [10, 8000, 70_000, 1, 1, 65_535, 200_000, 5];
  const pieces = sizes.map((n) => randomBytes(n));
  const out = await collect(Readable.from(pieces).pipe(coalesce()));
  checkChunks(out, Buffer.concat(pieces), 'coalesce');
});

test.run();
