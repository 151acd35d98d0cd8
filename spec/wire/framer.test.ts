import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { LengthPrefixedFramer } from '../../src/wire/framer.js';
import { MalformedError } from '../../src/wire/errors.js';
import { hex, ownBuffer } from '../helpers/golden.js';

const Framer = suite('wire/framer: LengthPrefixedFramer');

/** A length-prefixed message whose body is `len` bytes counting up from `seed`. */
function frame(len: number, seed: number): Buffer {
  const b = Buffer.alloc(4 + len);
  b.writeUInt32BE(len, 0);
  for (let i = 0; i < len; i++) b[4 + i] = (seed + i) & 0xff;
  return b;
}

/** A framer that records a copy of each body (the views are valid only during the callback). */
function recorder(maxLength = 1 << 20): { framer: LengthPrefixedFramer; got: Buffer[] } {
  const got: Buffer[] = [];
  const framer = new LengthPrefixedFramer(maxLength, (body) => got.push(Buffer.from(body)));
  return { framer, got };
}

function assertBodies(got: Buffer[], frames: Buffer[], label = ''): void {
  assert.is(got.length, frames.length, `message count ${label}`);
  for (let i = 0; i < frames.length; i++) {
    assert.ok(got[i]!.equals(frames[i]!.subarray(4)), `message ${i} differs ${label}`);
  }
}

/** Three messages of different sizes; the largest crosses the framer's 1024-byte initial buffer. */
const THREE = [frame(1, 0x10), frame(300, 0x20), frame(2000, 0x30)];
const STREAM = Buffer.concat(THREE);

Framer('delivers three messages from one chunk', () => {
  const { framer, got } = recorder();
  framer.push(STREAM);
  assertBodies(got, THREE);
  assert.is(framer.buffered, 0);
});

Framer('delivers the exact messages when the stream is cut at every offset', () => {
  for (let cut = 0; cut <= STREAM.length; cut++) {
    const { framer, got } = recorder();
    framer.push(STREAM.subarray(0, cut));
    framer.push(STREAM.subarray(cut));
    assertBodies(got, THREE, `(cut at ${cut})`);
    assert.is(framer.buffered, 0, `buffered after cut at ${cut}`);
  }
});

Framer('delivers the exact messages when the stream is cut at every pair of offsets around the message boundaries', () => {
  // Every (a, b) pair would be 2.6 M runs; the interesting cuts are near the length prefixes.
  const near = new Set<number>();
  let off = 0;
  for (const f of THREE) {
    for (let d = -3; d <= 6; d++) if (off + d >= 0 && off + d <= STREAM.length) near.add(off + d);
    off += f.length;
  }
  near.add(STREAM.length);
  const cuts = [...near].sort((a, b) => a - b);
  for (const a of cuts) {
    for (let b = a; b <= STREAM.length; b += 7) {
      const { framer, got } = recorder();
      framer.push(STREAM.subarray(0, a));
      framer.push(STREAM.subarray(a, b));
      framer.push(STREAM.subarray(b));
      assertBodies(got, THREE, `(cuts at ${a}, ${b})`);
    }
  }
});

Framer('delivers the exact messages when the stream arrives one byte at a time', () => {
  const { framer, got } = recorder();
  for (let i = 0; i < STREAM.length; i++) {
    framer.push(STREAM.subarray(i, i + 1));
    // Nothing is delivered before its last byte arrives.
    let complete = 0;
    for (let end = 0, k = 0; k < THREE.length; k++) {
      end += THREE[k]!.length;
      if (i + 1 >= end) complete++;
    }
    assert.is(got.length, complete, `after byte ${i}`);
  }
  assertBodies(got, THREE);
  assert.is(framer.buffered, 0);
});

Framer('delivers the exact messages for random cuts (property)', () => {
  const frames = fc.array(
    fc.integer({ min: 0, max: 3000 }).map((n) => frame(n, n)),
    { minLength: 1, maxLength: 6 },
  );
  fc.assert(
    fc.property(frames, fc.array(fc.nat(), { maxLength: 12 }), (fs, rawCuts) => {
      const stream = Buffer.concat(fs);
      const cuts = [...new Set(rawCuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
      const { framer, got } = recorder();
      let prev = 0;
      for (const c of [...cuts, stream.length]) {
        framer.push(stream.subarray(prev, c));
        prev = c;
      }
      assertBodies(got, fs);
      assert.is(framer.buffered, 0);
    }),
    { numRuns: 300 },
  );
});

Framer('reports the bytes held for an incomplete message', () => {
  const { framer, got } = recorder();
  framer.push(STREAM.subarray(0, 5 + 4 + 100)); // message 1 whole, message 2 partial
  assert.is(got.length, 1);
  assert.is(framer.buffered, 104);
  framer.push(STREAM.subarray(109, 110));
  assert.is(framer.buffered, 105);
});

Framer('a declared length over the cap throws when only the 4 length bytes have arrived', () => {
  const { framer, got } = recorder(32 * 1024);
  const err = (() => {
    try {
      framer.push(hex('00 00 80 01')); // 32769, one over the cap, and nothing behind it
    } catch (e) {
      return e;
    }
    return null;
  })();
  assert.instance(err, MalformedError);
  assert.match((err as Error).message, /message length 32769 exceeds the limit of 32768/);
  assert.is(got.length, 0);
  assert.is(framer.buffered, 0, 'nothing was buffered for the oversized message');
});

Framer('a declared length over the cap throws when the length bytes arrive split', () => {
  const { framer } = recorder(1024);
  framer.push(hex('ff ff')); // the first half of 0xffffffff
  assert.is(framer.buffered, 2);
  assert.throws(() => framer.push(hex('ff ff')), (e: unknown) => e instanceof MalformedError && /4294967295/.test((e as Error).message));
});

Framer('a declared length over the cap throws after the whole messages before it were delivered', () => {
  const { framer, got } = recorder(16);
  assert.throws(() => framer.push(Buffer.concat([frame(3, 0), hex('00 00 00 11')])), (e: unknown) => e instanceof MalformedError);
  assert.is(got.length, 1);
});

Framer('a message of exactly the cap is delivered', () => {
  const { framer, got } = recorder(2000);
  framer.push(frame(2000, 7).subarray(0, 1000));
  framer.push(frame(2000, 7).subarray(1000));
  assertBodies(got, [frame(2000, 7)]);
});

Framer('zero-length messages are delivered as empty bodies', () => {
  const { framer, got } = recorder();
  framer.push(hex(
    '00 00 00 00', // empty
    '00 00 00 00', // empty
    '00 00 00 01', '2a', // one byte
    '00 00 00 00', // empty
  ));
  assert.equal(got.map((b) => b.length), [0, 0, 1, 0]);
  assert.is(framer.buffered, 0);
});

Framer('zero-length messages arriving one byte at a time are each delivered once', () => {
  const { framer, got } = recorder();
  const stream = hex('00 00 00 00', '00 00 00 00', '00 00 00 00');
  for (let i = 0; i < stream.length; i++) framer.push(stream.subarray(i, i + 1));
  assert.equal(got.map((b) => b.length), [0, 0, 0]);
});

Framer('an empty chunk changes nothing', () => {
  const { framer, got } = recorder();
  framer.push(Buffer.alloc(0));
  framer.push(STREAM.subarray(0, 3));
  framer.push(Buffer.alloc(0));
  framer.push(STREAM.subarray(3));
  assertBodies(got, THREE);
});

Framer('many messages in one chunk are delivered as views of that chunk (no copy)', () => {
  const frames = Array.from({ length: 50 }, (_, i) => frame(i * 3, i));
  const chunk = ownBuffer(Buffer.concat(frames));
  const views: Array<{ buffer: ArrayBufferLike; offset: number; length: number }> = [];
  const framer = new LengthPrefixedFramer(1 << 16, (b) => views.push({ buffer: b.buffer, offset: b.byteOffset, length: b.length }));
  framer.push(chunk);
  assert.is(views.length, 50);
  let off = 0;
  for (let i = 0; i < 50; i++) {
    assert.is(views[i]!.buffer, chunk.buffer, `message ${i} is a view of the chunk`);
    assert.is(views[i]!.offset, off + 4);
    assert.is(views[i]!.length, i * 3);
    off += 4 + i * 3;
  }
});

Framer('whole messages after a split one are still views of the new chunk', () => {
  // The framer's contract: "only a message split across chunks is assembled". In a steady
  // stream nearly every chunk starts with the tail of a message, so if the whole messages
  // behind that tail are copied too, the no-copy path is almost never taken.
  const frames = [frame(10, 1), frame(20, 2), frame(30, 3)];
  const stream = Buffer.concat(frames);
  const first = ownBuffer(stream.subarray(0, 6)); // message 1 split after 2 body bytes
  const second = ownBuffer(stream.subarray(6)); // its tail, then messages 2 and 3 whole
  const buffers: ArrayBufferLike[] = [];
  const framer = new LengthPrefixedFramer(1 << 16, (b) => buffers.push(b.buffer));
  framer.push(first);
  framer.push(second);
  assert.is(buffers.length, 3);
  assert.is.not(buffers[0], second.buffer, 'the split message is assembled');
  assert.is(buffers[1], second.buffer, 'message 2 is a view of the chunk it arrived in whole');
  assert.is(buffers[2], second.buffer, 'message 3 is a view of the chunk it arrived in whole');
});

Framer('a large message split into small chunks is assembled exactly', () => {
  const big = frame(200_000, 99);
  const { framer, got } = recorder(200_000);
  for (let i = 0; i < big.length; i += 1000) framer.push(big.subarray(i, i + 1000));
  assertBodies(got, [big]);
  assert.is(framer.buffered, 0);
});

Framer('holds every byte of an incomplete message until its last byte arrives', () => {
  const { framer } = recorder(5000);
  const f = frame(5000, 3);
  for (let i = 0; i < f.length - 1; i += 100) framer.push(f.subarray(i, Math.min(i + 100, f.length - 1)));
  assert.is(framer.buffered, f.length - 1);
});

Framer.run();
