import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { silentLogger } from '../../src/log.js';
import { serveSftp } from '../../src/sftp/server.js';
import { MemoryBackend } from '../helpers/memory-backend.js';
import { hex } from '../helpers/golden.js';
import { duplexPair, F, openSession, packet, S, settle, startSession, T, writeAttrs, type Reply, type Session } from './client.js';

const Hostile = suite('sftp/server: hostile and malformed input');

async function end(s: Session): Promise<void> {
  s.client.stream.end();
  await s.served;
}

/** Expects the server to close the stream without answering. */
async function expectClosed(s: Session): Promise<void> {
  await s.served;
  await s.client.closedP;
  assert.ok(s.client.closed);
  assert.equal(s.client.unexpected, []);
}

function badMessage(r: Reply, re?: RegExp): void {
  assert.is(r.type, 'status');
  if (r.type !== 'status') return;
  assert.is(r.code, S.BAD_MESSAGE, `status ${r.code} "${r.message}"`);
  if (re) assert.match(r.message, re);
}

/** Sends a request whose fields are written raw (possibly malformed) and waits for its reply. */
function rawRequest(s: Session, type: number, fields: (w: import('../../src/wire/writer.js').SshWriter) => void): Promise<Reply> {
  const id = s.client.nextId();
  const p = s.client.expect(id);
  s.client.raw(
    packet(type, (w) => {
      w.u32(id);
      fields(w);
    }),
  );
  return p;
}

// ----------------------------------------------------------------------- before and at INIT

Hostile('a request before INIT closes the stream', async () => {
  const s = startSession();
  s.client.raw(packet(T.STAT, (w) => w.u32(1).string('/')));
  await expectClosed(s);
});

Hostile('a truncated INIT closes the stream', async () => {
  const s = startSession();
  s.client.raw(hex('00 00 00 03', '01', '00 00'));
  await expectClosed(s);
});

Hostile('an INIT for versions 1 and 2 closes the stream', async () => {
  for (const v of [1, 2]) {
    const s = startSession();
    s.client.raw(packet(T.INIT, (w) => w.u32(v)));
    await expectClosed(s);
  }
});

Hostile('a second INIT closes the stream', async () => {
  const s = await openSession();
  s.client.raw(packet(T.INIT, (w) => w.u32(3)));
  await expectClosed(s);
});

Hostile('a declared length over the cap closes the stream before anything is allocated', async () => {
  const s = await openSession();
  s.client.raw(hex('00 04 00 01')); // 262145: one past the default 256 KiB
  await expectClosed(s);
  const s2 = startSession();
  s2.client.raw(hex('ff ff ff ff'));
  await expectClosed(s2);
});

Hostile('a message too short to carry an id closes the stream', async () => {
  for (const body of [hex('11'), hex('11 00 00 00')]) {
    const s = await openSession();
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    s.client.raw(Buffer.concat([len, body]));
    await expectClosed(s);
  }
  const s = await openSession();
  s.client.raw(hex('00 00 00 00')); // an empty message
  await expectClosed(s);
});

Hostile('a maxPacket below 34000 is a configuration error', () => {
  const [a] = duplexPair();
  assert.throws(() => serveSftp(a, new MemoryBackend(), { log: silentLogger, maxPacket: 1000 }), /at least 34000/);
});

// ----------------------------------------------------------------------- malformed with an id

Hostile('malformed requests with an id get BAD_MESSAGE for that id, and the session goes on', async () => {
  const s = await openSession();
  s.backend.putFile('/f', 'x');
  badMessage(await rawRequest(s, T.OPEN, (w) => w.string('/f')), /truncated/);
  badMessage(await rawRequest(s, T.STAT, (w) => w.string('/f').u8(0)), /trailing/);
  badMessage(await rawRequest(s, T.STAT, (w) => w.string(hex('2f c3 28'))), /UTF-8/);
  badMessage(await rawRequest(s, T.STAT, (w) => w.string('/f\0/../etc')), /NUL/);
  badMessage(await rawRequest(s, T.RENAME, (w) => w.string('/f').string('/g\0')), /NUL/);
  badMessage(await rawRequest(s, T.CLOSE, (w) => w.string(Buffer.alloc(300))), /handle of 300 bytes/);
  badMessage(
    await rawRequest(s, T.SETSTAT, (w) => {
      w.string('/f').u32(0x20).u32(0);
    }),
    /unknown flag bits/,
  );
  badMessage(await rawRequest(s, T.READ, (w) => w.string('h').u64(2n ** 63n).u32(1)), /2\^53/);
  badMessage(await rawRequest(s, T.WRITE, (w) => w.string('h').u64(0).u32(100).raw(Buffer.alloc(10))), /truncated data/);
  badMessage(await rawRequest(s, T.MKDIR, (w) => w.string('/m').u32(0x80000000).u32(1000)), /extended pairs/);
  badMessage(await rawRequest(s, T.EXTENDED, (w) => w.string('statvfs@openssh.com').string('/').u8(1)), /trailing/);
  badMessage(await rawRequest(s, T.EXTENDED, (w) => w.u32(5)), /truncated/);
  badMessage(await rawRequest(s, T.SYMLINK, (w) => w.string('/only-one')), /truncated/);
  // Still a working session:
  const st = await s.client.stat('/f');
  assert.is(st.type, 'attrs');
  assert.ok(s.backend.exists('/f'));
  assert.not.ok(s.backend.exists('/m'));
  await end(s);
});

Hostile('a WRITE filling the largest accepted message is accepted', async () => {
  const s = await openSession();
  const h = await s.client.handle(s.client.open('/max', F.WRITE | F.CREAT));
  // 262144 = 1 type + 4 id + 8 handle string + 8 offset + 4 data length + data
  const data = Buffer.alloc(262144 - 25, 7);
  const r = await s.client.write(h, 0, data);
  assert.ok(r.type === 'status' && r.code === S.OK);
  assert.ok(r.type === 'status' && (await s.client.close(h)).type === 'status');
  assert.is(s.backend.file('/max')!.length, data.length);
  await end(s);
});

Hostile('a session delivered one byte at a time gets the same replies', async () => {
  const s = startSession();
  s.backend.putFile('/f', 'hello');
  const stream = Buffer.concat([
    packet(T.INIT, (w) => w.u32(3)),
    packet(T.STAT, (w) => w.u32(1).string('/f')),
    packet(T.OPEN, (w) => {
      w.u32(2).string('/f').u32(F.READ);
      writeAttrs(w);
    }),
    packet(T.REALPATH, (w) => w.u32(3).string('a/..')),
    packet(T.STAT, (w) => w.u32(4).string('/f').u8(9)),
  ]);
  const replies = [1, 2, 3, 4].map((id) => s.client.expect(id));
  for (let i = 0; i < stream.length; i++) {
    s.client.raw(stream.subarray(i, i + 1));
    if (i % 7 === 0) await settle(1);
  }
  const [stat, open, real, bad] = await Promise.all(replies);
  assert.is(stat!.type, 'attrs');
  assert.is(open!.type, 'handle');
  assert.ok(real!.type === 'name' && real!.entries[0]!.filename === '/');
  badMessage(bad!, /trailing/);
  await end(s);
});

Hostile('fuzz: random requests after INIT each get exactly one reply, and the server stays up', async () => {
  const s = await openSession({ maxHandles: 8 });
  s.backend.putFile('/f', 'x'.repeat(100));
  s.backend.mkdirp('/d');
  const types = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 200, 0, 2, 101, 255];
  const samples = fc.sample(
    fc.record({
      type: fc.constantFrom(...types),
      tail: fc.oneof(
        fc.uint8Array({ maxLength: 64 }),
        // Well-formed-looking prefixes: a short path string or a 4-byte handle, then noise.
        fc.tuple(fc.constantFrom('/f', '/d', '', '..', '/d/x'), fc.uint8Array({ maxLength: 16 })).map(([p, n]) => {
          const b = Buffer.alloc(4 + p.length);
          b.writeUInt32BE(p.length);
          b.write(p, 4);
          return Buffer.concat([b, n]);
        }),
        fc.tuple(fc.nat({ max: 40 }), fc.uint8Array({ maxLength: 24 })).map(([h, n]) =>
          Buffer.concat([hex('00 00 00 04'), Buffer.from([0, 0, 0, h]), n]),
        ),
      ),
    }),
    { numRuns: 3000, seed: 42 },
  );
  const pending: Promise<Reply>[] = [];
  for (const { type, tail } of samples) {
    const id = s.client.nextId();
    pending.push(s.client.expect(id));
    s.client.raw(packet(type, (w) => w.u32(id).raw(tail)));
    if (id % 64 === 0) await settle(2);
  }
  const replies = await Promise.all(pending);
  assert.is(replies.length, samples.length);
  for (const r of replies) assert.ok(r.type === 'status' || r.type === 'attrs' || r.type === 'handle' || r.type === 'name' || r.type === 'data' || r.type === 'extended');
  assert.equal(s.client.unexpected, [], 'no reply without a request, no second reply');
  // /f may have been removed or renamed by now; "/" always exists.
  assert.is((await s.client.stat('/')).type, 'attrs');
  await end(s);
  assert.is(s.backend.pending.size, 0);
});

Hostile.run();
