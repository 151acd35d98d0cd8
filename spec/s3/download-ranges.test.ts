/**
 * The ranged GETs of a download against a stand-in for the client pool (no S3): the next range
 * is asked for before the current one has arrived, waits unread for its turn, and a response
 * that breaks while it waits fails only when its turn comes, and the read goes on from there.
 */
import { PassThrough } from 'node:stream';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { GetObjectCommand } from '@aws-sdk/client-s3';
import type { ClientPool } from '../../src/s3/clients.js';
import { S3ReadHandle } from '../../src/s3/download.js';

const KiB = 1024;
const SIZE = 1024 * KiB;
const FILE = Buffer.from(Array.from({ length: SIZE }, (_, i) => (i * 7 + (i >> 10)) & 0xff));

interface Get {
  start: number;
  end: number;
  body: PassThrough;
  respond: () => void;
}

/** A pool whose GETs the test answers: `gets` in order; `respond()` resolves the request. */
function fakePool(): { pool: ClientPool; gets: Get[] } {
  const gets: Get[] = [];
  const pool = {
    send: (_bucket: string, make: () => GetObjectCommand) => {
      const range = make().input.Range!;
      const m = /^bytes=(\d+)-(\d+)$/.exec(range)!;
      return new Promise((resolve) => {
        const body = new PassThrough();
        gets.push({ start: Number(m[1]), end: Number(m[2]), body, respond: () => resolve({ Body: body }) });
      });
    },
  };
  return { pool: pool as unknown as ClientPool, gets };
}

function handle(pool: ClientPool, readAhead = 64 * KiB): S3ReadHandle {
  return new S3ReadHandle({ pool, secrets: [], readAhead, maxWindow: 16 * 1024 * KiB }, 'b', 'k', SIZE, '"etag"');
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Writes the range's bytes from `from` to `to` (file offsets) into its body. */
function feed(g: Get, from: number, to: number): void {
  g.body.write(FILE.subarray(from, to));
}

const Ranges = suite('s3 downloads: ranged GETs in sequence');

Ranges('the next range is requested while the current one still has readAhead to come, and read only after it', async () => {
  const { pool, gets } = fakePool();
  const h = handle(pool);
  const reads: Promise<Buffer[]>[] = [];
  for (let off = 0; off < 512 * KiB; off += 32 * KiB) reads.push(h.readv(off, 32 * KiB));
  await turn();
  assert.is(gets.length, 1);
  const [first] = gets as [Get];
  assert.equal([first.start, first.end], [0, 256 * KiB - 1]);
  first.respond();
  await turn();
  feed(first, 0, 128 * KiB);
  await turn();
  assert.is(gets.length, 1, 'more than readAhead still to come: no second GET yet');
  feed(first, 128 * KiB, 200 * KiB);
  await turn();
  assert.is(gets.length, 2, 'second GET asked for before the first range has arrived');
  const second = gets[1]!;
  assert.equal([second.start, second.end], [256 * KiB, 512 * KiB - 1]);
  // Its response comes, with data, before the first range is done: it must wait its turn.
  second.respond();
  await turn();
  feed(second, 256 * KiB, 300 * KiB);
  await turn();
  feed(first, 200 * KiB, 256 * KiB);
  first.body.end();
  await turn();
  feed(second, 300 * KiB, 512 * KiB);
  const got = Buffer.concat((await Promise.all(reads)).flat());
  assert.ok(got.equals(FILE.subarray(0, 512 * KiB)), 'bytes in file order');
  assert.is(gets.length, 3, 'one GET ahead at most');
  await h.close();
});

Ranges('a waiting response that breaks fails when its turn comes, and the read reopens at its position', async () => {
  const { pool, gets } = fakePool();
  const h = handle(pool);
  const first = h.readv(0, 32 * KiB);
  await turn();
  gets[0]!.respond();
  await turn();
  feed(gets[0]!, 0, 32 * KiB);
  assert.is(Buffer.concat(await first).length, 32 * KiB);
  const rest = h.readv(32 * KiB, 256 * KiB);
  await turn();
  feed(gets[0]!, 32 * KiB, 256 * KiB);
  await turn();
  assert.is(gets.length, 2);
  gets[1]!.respond();
  await turn();
  // Broken while waiting: no listener would mean an uncaught 'error'.
  gets[1]!.body.destroy(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
  await turn();
  gets[0]!.body.end();
  await turn();
  assert.is(gets.length, 3, 'reopened');
  const third = gets[2]!;
  assert.is(third.start, 256 * KiB, 'at the position the queue had reached');
  third.respond();
  await turn();
  feed(third, third.start, third.end + 1);
  third.body.end();
  assert.ok(Buffer.concat(await rest).equals(FILE.subarray(32 * KiB, 288 * KiB)));
  await h.close();
});

Ranges.run();
