import { Readable } from 'node:stream';
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';

/**
 * The 100,000-object directory that the S3 and gateway suites list. It is made once per S3
 * store and kept under a fixed prefix, with a marker object written last, so later runs find
 * it ready.
 */
export const MANY = 100_000;
export const MANY_PREFIX = 's3gw-spec-fixtures/100k';
const MANY_DONE = 's3gw-spec-fixtures/100k.complete';
export const manyName = (i: number): string => `f${String(i).padStart(6, '0')}`;

/** A ustar header for an empty regular file. */
function tarHeader(name: string): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write('00000000000\0', 124); // size 0
  h.write('14000000000\0', 136); // mtime
  h.fill(' ', 148, 156);
  h.write('0', 156); // regular file
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

/** Makes the directory unless an earlier run did; returns whether it made it now. */
export async function ensureManyObjects(c: S3Client, bucket: string): Promise<boolean> {
  try {
    await c.send(new HeadObjectCommand({ Bucket: bucket, Key: MANY_DONE }));
    return false;
  } catch {
    // not made yet
  }
  if (process.env.S3GW_S3_EXTERNAL !== '1') {
    // MinIO unpacks a tar uploaded with snowball-auto-extract into objects, server-side:
    // about 1,600 objects a second here, against ~1,000 for 64 parallel PutObjects.
    function* tar(): Generator<Buffer> {
      let batch: Buffer[] = [];
      for (let i = 0; i < MANY; i++) {
        batch.push(tarHeader(`${MANY_PREFIX}/${manyName(i)}`));
        if (batch.length === 512) {
          yield Buffer.concat(batch);
          batch = [];
        }
      }
      if (batch.length) yield Buffer.concat(batch);
      yield Buffer.alloc(1024); // end of archive
    }
    await c.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 's3gw-spec-fixtures/100k.tar',
        Body: Readable.from(tar()),
        ContentLength: 512 * MANY + 1024,
        Metadata: { 'snowball-auto-extract': 'true' },
      }),
    );
  } else {
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < MANY) {
          const i = next++;
          await c.send(new PutObjectCommand({ Bucket: bucket, Key: `${MANY_PREFIX}/${manyName(i)}`, Body: '', ContentLength: 0 }));
        }
      }),
    );
  }
  await c.send(new PutObjectCommand({ Bucket: bucket, Key: MANY_DONE, Body: '', ContentLength: 0 }));
  return true;
}
