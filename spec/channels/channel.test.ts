import { EventEmitter } from 'node:events';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Channel } from '../../src/channels/channel.js';
import { MSG } from '../../src/transport/constants.js';
import { PAYLOAD_OFFSET, type Transport } from '../../src/transport/transport.js';

/**
 * The outbound side of one channel against a transport stand-in that records every payload:
 * writes of one tick coalesce into CHANNEL_DATA packets bounded by the peer's maximum packet and
 * window, nothing waits past the tick, and write callbacks wait for window and for 'drain'.
 */

const REMOTE_ID = 7;

/** What Channel uses of Transport; `tickEnd` runs what flushAtTickEnd registered, as the uncork does. */
class FakeTransport extends EventEmitter {
  readonly config = { maxPacketLength: 256 * 1024 };
  writable = true;
  closed = false;
  /** Every payload sent, copied at send time. */
  readonly sent: Buffer[] = [];
  #flush: (() => void)[] = [];
  #scheduled = false;

  allocPacket(payloadLength: number): Buffer {
    return Buffer.alloc(PAYLOAD_OFFSET + payloadLength + 32);
  }

  allocPacketUpTo(maxPayload: number): Buffer {
    // Garbage in it, as a reused buffer would have.
    return Buffer.alloc(PAYLOAD_OFFSET + maxPayload + 32, 0xee);
  }

  sendPacket(packet: Buffer, payloadLength: number): void {
    this.sent.push(Buffer.from(packet.subarray(PAYLOAD_OFFSET, PAYLOAD_OFFSET + payloadLength)));
    // The buffer belongs to the transport now: scribble on it, as a reuse would.
    packet.fill(0xdd);
  }

  send(payload: Uint8Array): void {
    this.sent.push(Buffer.from(payload));
  }

  flushAtTickEnd(flush: () => void): void {
    this.#flush.push(flush);
    if (this.#scheduled) return;
    this.#scheduled = true;
    process.nextTick(() => this.tickEnd());
  }

  tickEnd(): void {
    this.#scheduled = false;
    const f = this.#flush;
    this.#flush = [];
    for (const fn of f) fn();
  }

  /** CHANNEL_DATA payloads so far: their data, after checking recipient and length fields. */
  data(): Buffer[] {
    return this.sent
      .filter((p) => p[0] === MSG.CHANNEL_DATA)
      .map((p) => {
        assert.is(p.readUInt32BE(1), REMOTE_ID, 'recipient channel');
        assert.is(p.readUInt32BE(5), p.length - 9, 'data length field');
        return p.subarray(9);
      });
  }
}

function channel(window: number, maxPacket: number): { ch: Channel; t: FakeTransport } {
  const t = new FakeTransport();
  const ch = new Channel(t as unknown as Transport, 0, REMOTE_ID, window, maxPacket, { windowSize: 1 << 20, maxPacket: 32768 }, () => {});
  return { ch, t };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const bytes = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

/** Writes `chunk`; resolves to whether its callback ran (and with no error) by the next turn. */
function write(ch: Channel, chunk: Buffer): { done: () => boolean } {
  let called = false;
  ch.write(chunk, (err) => {
    assert.not.ok(err);
    called = true;
  });
  return { done: () => called };
}

const Coalesce = suite('channels/channel: coalescing CHANNEL_DATA');

Coalesce('SFTP replies written in one tick fill packets up to the maximum packet, the rest at the end of the tick', async () => {
  const { ch, t } = channel(1 << 24, 32768);
  const parts = [bytes(13, 1), bytes(32768, 2), bytes(13, 3), bytes(20000, 4), bytes(12755, 5)];
  for (const p of parts) ch.write(p);
  // The full packets left at once; the partial one waits for the end of the tick.
  assert.equal(t.data().map((d) => d.length), [32768, 32768]);
  await tick();
  assert.equal(t.data().map((d) => d.length), [32768, 32768, 13]);
  assert.ok(Buffer.concat(t.data()).equals(Buffer.concat(parts)));
});

Coalesce('nothing is held past the tick: a small write goes out alone at its end', async () => {
  const { ch, t } = channel(1 << 24, 32768);
  ch.write(bytes(100, 1));
  assert.is(t.sent.length, 0);
  await tick();
  assert.equal(t.data().map((d) => d.length), [100]);
  ch.write(bytes(50, 2));
  await tick();
  assert.equal(t.data().map((d) => d.length), [100, 50]);
});

Coalesce('a packet never exceeds the window: the write waits for WINDOW_ADJUST, then completes exactly', async () => {
  const { ch, t } = channel(1000, 32768);
  const data = bytes(5000, 9);
  const w = write(ch, data);
  await tick();
  assert.equal(t.data().map((d) => d.length), [1000]);
  assert.not.ok(w.done(), 'callback waits for window');
  ch.onWindowAdjust(3000);
  await tick();
  assert.equal(t.data().map((d) => d.length), [1000, 3000]);
  assert.not.ok(w.done());
  ch.onWindowAdjust(1500);
  await tick();
  assert.equal(t.data().map((d) => d.length), [1000, 3000, 1000]);
  assert.ok(w.done(), 'callback once every byte was accepted');
  assert.ok(Buffer.concat(t.data()).equals(data));
  // 500 bytes of window left: the next write's packet is 500 bytes at most.
  ch.write(bytes(800, 1));
  await tick();
  assert.equal(t.data().slice(3).map((d) => d.length), [500]);
});

Coalesce('a packet started with less window than the maximum packet is sent when that window is used up', async () => {
  const { ch, t } = channel(40000, 32768);
  ch.write(bytes(32768 + 13, 1));
  ch.write(bytes(10000, 2));
  assert.equal(t.data().map((d) => d.length), [32768, 40000 - 32768]);
  await tick();
  assert.equal(t.data().map((d) => d.length), [32768, 40000 - 32768]);
});

Coalesce("the transport's backpressure parks the write until 'drain', and no new packet starts meanwhile", async () => {
  const { ch, t } = channel(1 << 24, 32768);
  t.writable = false;
  const w = write(ch, bytes(1000, 1));
  await tick();
  assert.is(t.sent.length, 0);
  assert.not.ok(w.done());
  t.writable = true;
  ch.resumeWrite();
  await tick();
  assert.ok(w.done());
  assert.equal(t.data().map((d) => d.length), [1000]);
});

Coalesce('a write that fills a packet while the transport turned unwritable completes only after drain', async () => {
  const { ch, t } = channel(1 << 24, 32768);
  const orig = t.sendPacket.bind(t);
  t.sendPacket = (p, n) => {
    orig(p, n);
    t.writable = false;
  };
  const w = write(ch, bytes(40000, 3));
  await tick();
  // The first packet went out; the second could not start.
  assert.equal(t.data().map((d) => d.length), [32768]);
  assert.not.ok(w.done());
  t.writable = true;
  t.sendPacket = orig;
  ch.resumeWrite();
  await tick();
  assert.ok(w.done());
  assert.equal(t.data().map((d) => d.length), [32768, 40000 - 32768]);
});

Coalesce('stderr, EOF, exit-status and CLOSE come after the data written before them', async () => {
  const { ch, t } = channel(1 << 24, 32768);
  ch.write(bytes(300, 1));
  ch.writeStderr('oops');
  ch.write(bytes(200, 2));
  ch.exit(3);
  await tick();
  await tick();
  const kinds = t.sent.map((p) => (p[0] === MSG.CHANNEL_DATA ? `data ${p.length - 9}` : p[0] === MSG.CHANNEL_EXTENDED_DATA ? 'stderr' : p[0] === MSG.CHANNEL_REQUEST ? 'exit-status' : p[0] === MSG.CHANNEL_EOF ? 'eof' : p[0] === MSG.CHANNEL_CLOSE ? 'close' : String(p[0])));
  // exit() ends the stream first (EOF from _final), then sends exit-status and CLOSE.
  assert.equal(kinds, ['data 300', 'stderr', 'data 200', 'eof', 'exit-status', 'close']);
});

Coalesce('stderr takes its window after the pending data: the window is never exceeded', async () => {
  const { ch, t } = channel(1000, 32768);
  ch.write(bytes(700, 1));
  ch.writeStderr(Buffer.alloc(500, 0x41));
  ch.write(bytes(100, 2));
  await tick();
  const used = t.sent.reduce((n, p) => n + (p[0] === MSG.CHANNEL_DATA ? p.length - 9 : p[0] === MSG.CHANNEL_EXTENDED_DATA ? p.readUInt32BE(9) : 0), 0);
  assert.is(used, 1000);
  assert.equal(t.data().map((d) => d.length), [700]);
});

Coalesce('a channel closed by the peer gets its pending data and then CLOSE; a lost connection sends nothing', async () => {
  const a = channel(1 << 24, 32768);
  a.ch.write(bytes(10, 1));
  a.ch.onClose();
  assert.equal(a.t.sent.map((p) => p[0]), [MSG.CHANNEL_DATA, MSG.CHANNEL_CLOSE]);
  const b = channel(1 << 24, 32768);
  b.ch.on('error', () => {});
  b.ch.write(bytes(10, 1));
  b.t.closed = true;
  b.ch.onConnectionGone();
  await tick();
  assert.is(b.t.sent.length, 0);
});

Coalesce.run();

// ------------------------------------------------------------------ inbound window

const Credit = suite('channel: the inbound window');

/** The WINDOW_ADJUST grants sent so far. */
function grants(t: FakeTransport): number[] {
  return t.sent.filter((p) => p[0] === MSG.CHANNEL_WINDOW_ADJUST).map((p) => p.readUInt32BE(5));
}

Credit('by default the window reopens as data is read', async () => {
  const { ch, t } = channel(1 << 24, 32768); // our window: 1 MiB (channel() limits)
  ch.on('data', () => {});
  for (let i = 0; i < 20; i++) ch.onData(bytes(32768, i)); // 640 KiB: more than half the window
  await tick();
  assert.equal(grants(t), [20 * 32768]);
});

Credit('with creditOnRelease the window reopens only for released bytes, however fast they are read', async () => {
  const { ch, t } = channel(1 << 24, 32768);
  ch.creditOnRelease();
  let read = 0;
  ch.on('data', (d: Buffer) => (read += d.length));
  for (let i = 0; i < 32; i++) ch.onData(bytes(32768, i)); // the whole 1 MiB window
  await tick();
  assert.is(read, 1 << 20, 'everything was read');
  assert.equal(grants(t), [], 'nothing granted while the reader holds it');
  assert.throws(() => ch.onData(bytes(1, 0)), /exceeds the window/, 'the peer is held to the window');
  ch.release(256 * 1024);
  assert.equal(grants(t), [], 'less than half the window released: no adjustment yet');
  ch.release(256 * 1024);
  assert.equal(grants(t), [512 * 1024], 'half the window released: it is granted back');
  ch.release(512 * 1024);
  assert.equal(grants(t), [512 * 1024, 512 * 1024]);
  assert.throws(() => ch.release(1), /more channel bytes than were received/);
});

Credit.run();
