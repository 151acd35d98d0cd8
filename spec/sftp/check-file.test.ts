/**
 * check-file-handle / check-file-name (draft-ietf-secsh-filexfer-extensions-00 §3): the codec
 * (golden bytes, hostile lengths, truncation) and the handler over an in-process stream with the
 * memory backend, which offers the CRC32 of each file as the stored checksum.
 */
import zlib from 'node:zlib';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeRequest, encodeCheckFileReply, MAX_HASH_LIST_BYTES } from '../../src/sftp/codec.js';
import { MalformedError } from '../../src/wire/errors.js';
import { SshReader } from '../../src/wire/reader.js';
import type { SshWriter } from '../../src/wire/writer.js';
import { hex } from '../helpers/golden.js';
import { F, openSession, packet, S, summary, T, type Reply, type Session } from './client.js';

// ------------------------------------------------------------------------ codec

const Codec = suite('sftp/check-file: codec');

const body = (framed: Buffer): Buffer => framed.subarray(4);

function throwsMalformed(fn: () => unknown, re?: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, MalformedError);
    if (re) assert.match((err as Error).message, re);
    return;
  }
  assert.unreachable('expected MalformedError');
}

Codec('check-file-handle decodes handle, algorithm list, offsets and block size (golden)', () => {
  const req = decodeRequest(
    hex(
      'c8', // SSH_FXP_EXTENDED
      '00 00 00 07', // request-id 7
      '00 00 00 11 63 68 65 63 6b 2d 66 69 6c 65 2d 68 61 6e 64 6c 65', // "check-file-handle"
      '00 00 00 04 00 00 00 01', // handle
      '00 00 00 0a 73 68 61 31 2c 63 72 63 33 32', // hash-algorithm-list "sha1,crc32"
      '00 00 00 00 00 00 00 05', // start-offset 5
      '00 00 00 01 00 00 00 00', // length 2^32
      '00 00 01 00', // block-size 256
    ),
  );
  assert.equal(req, {
    op: 'check-file-handle',
    id: 7,
    handle: hex('00000001'),
    algorithms: ['sha1', 'crc32'],
    startOffset: 5,
    length: 2 ** 32,
    blockSize: 256,
  });
});

Codec('check-file-name decodes the filename (golden)', () => {
  const req = decodeRequest(
    hex(
      'c8', // SSH_FXP_EXTENDED
      '00 00 00 08', // request-id 8
      '00 00 00 0f 63 68 65 63 6b 2d 66 69 6c 65 2d 6e 61 6d 65', // "check-file-name"
      '00 00 00 04 2f 62 2f 6b', // filename "/b/k"
      '00 00 00 05 63 72 63 33 32', // hash-algorithm-list "crc32"
      '00 00 00 00 00 00 00 00', // start-offset 0
      '00 00 00 00 00 00 00 00', // length 0
      '00 00 00 00', // block-size 0
    ),
  );
  assert.equal(req, { op: 'check-file-name', id: 8, path: '/b/k', algorithms: ['crc32'], startOffset: 0, length: 0, blockSize: 0 });
});

Codec("paramiko's \"check-file\" (a handle and the same fields) decodes as check-file-handle", () => {
  const req = decodeRequest(
    body(packet(T.EXTENDED, (w) => w.u32(9).string('check-file').string(hex('00000002')).string('md5').u64(0).u64(0).u32(0))),
  );
  assert.is(req.op, 'check-file-handle');
  assert.equal(req.op === 'check-file-handle' ? [req.handle, req.algorithms] : null, [hex('00000002'), ['md5']]);
});

Codec('the reply is "check-file", the algorithm, then the hash bytes unprefixed (golden)', () => {
  assert.is(
    encodeCheckFileReply(7, 'crc32', hex('cbf43926')).toString('hex'),
    hex(
      '00 00 00 20', // length 32
      'c9', // SSH_FXP_EXTENDED_REPLY
      '00 00 00 07', // request-id 7
      '00 00 00 0a 63 68 65 63 6b 2d 66 69 6c 65', // "check-file"
      '00 00 00 05 63 72 63 33 32', // hash-algorithm-used "crc32"
      'cb f4 39 26', // hash: CRC32("123456789"), big-endian
    ).toString('hex'),
  );
});

const checkFileName = (list: string | Buffer, rest: (w: SshWriter) => void = (w) => w.u64(0).u64(0).u32(0)) =>
  body(
    packet(T.EXTENDED, (w) => {
      w.u32(1).string('check-file-name').string('/f').string(list);
      rest(w);
    }),
  );

Codec(`a hash-algorithm-list over ${MAX_HASH_LIST_BYTES} bytes is malformed; ${MAX_HASH_LIST_BYTES} is accepted`, () => {
  assert.is(decodeRequest(checkFileName('a'.repeat(MAX_HASH_LIST_BYTES))).op, 'check-file-name');
  throwsMalformed(() => decodeRequest(checkFileName('a'.repeat(MAX_HASH_LIST_BYTES + 1))), /hash-algorithm-list/);
});

Codec('a hash-algorithm-list claiming 4 GiB is malformed before anything is allocated', () => {
  const b = body(
    packet(T.EXTENDED, (w) => w.u32(1).string('check-file-name').string('/f').u32(0xffff_ffff).raw(Buffer.from('crc32'))),
  );
  throwsMalformed(() => decodeRequest(b), /hash-algorithm-list/);
});

Codec('a handle over 256 bytes, a filename over 4096 bytes, a non-UTF-8 list are malformed', () => {
  throwsMalformed(() =>
    decodeRequest(body(packet(T.EXTENDED, (w) => w.u32(1).string('check-file-handle').string(Buffer.alloc(257)).string('crc32').u64(0).u64(0).u32(0)))),
  );
  throwsMalformed(() =>
    decodeRequest(body(packet(T.EXTENDED, (w) => w.u32(1).string('check-file-name').string('/'.repeat(4097)).string('crc32').u64(0).u64(0).u32(0)))),
  );
  throwsMalformed(() => decodeRequest(checkFileName(hex('63 ff 72'))), /UTF-8/);
});

Codec('offsets above 2^53 - 1 are malformed', () => {
  throwsMalformed(() => decodeRequest(checkFileName('crc32', (w) => w.u64(2n ** 63n).u64(0).u32(0))), /2\^53/);
  throwsMalformed(() => decodeRequest(checkFileName('crc32', (w) => w.u64(0).u64(2n ** 60n).u32(0))), /2\^53/);
});

Codec('every truncation is malformed, and so is a trailing byte', () => {
  for (const b of [
    checkFileName('crc32'),
    body(packet(T.EXTENDED, (w) => w.u32(1).string('check-file-handle').string(hex('00000001')).string('crc32').u64(0).u64(0).u32(0))),
  ]) {
    decodeRequest(b);
    for (let cut = 5; cut < b.length; cut++) throwsMalformed(() => decodeRequest(b.subarray(0, cut)));
    throwsMalformed(() => decodeRequest(Buffer.concat([b, Buffer.of(0)])));
  }
});

Codec.run();

// ------------------------------------------------------------------------ handler

const Handler = suite('sftp/check-file: answered from the stored checksum');

const CRC = (data: string | Buffer) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(zlib.crc32(data) >>> 0, 0);
  return b;
};

interface Ask {
  list?: string;
  start?: number;
  length?: number;
  blockSize?: number;
}

function byName(s: Session, path: string, a: Ask = {}): Promise<Reply> {
  return s.client.extended('check-file-name', (w) =>
    w.string(path).string(a.list ?? 'crc32').u64(a.start ?? 0).u64(a.length ?? 0).u32(a.blockSize ?? 0),
  );
}

function byHandle(s: Session, handle: Buffer, a: Ask = {}, name = 'check-file-handle'): Promise<Reply> {
  return s.client.extended(name, (w) =>
    w.string(handle).string(a.list ?? 'crc32').u64(a.start ?? 0).u64(a.length ?? 0).u32(a.blockSize ?? 0),
  );
}

/** The reply's algorithm and hash bytes. */
function answer(r: Reply): { algorithm: string; hash: Buffer } {
  assert.is(r.type, 'extended', `expected EXTENDED_REPLY, got ${JSON.stringify(summary(r))}`);
  if (r.type !== 'extended') throw new Error('unreachable');
  const rd = new SshReader(r.data);
  assert.is(rd.utf8(), 'check-file');
  const algorithm = rd.utf8();
  return { algorithm, hash: Buffer.from(rd.rest()) };
}

function isStatus(r: Reply, code: number, message?: RegExp): void {
  assert.is(r.type, 'status', `expected STATUS ${code}, got ${JSON.stringify(summary(r))}`);
  if (r.type !== 'status') return;
  assert.is(r.code, code, `status ${r.code} "${r.message}", expected ${code}`);
  if (message) assert.match(r.message, message);
}

async function end(s: Session): Promise<void> {
  s.client.stream.end();
  await s.served;
}

const DATA = Buffer.from('123456789'.repeat(1000));

async function session(): Promise<Session> {
  const s = await openSession({ memory: { checksums: true } });
  s.backend.putFile('/b/f', DATA);
  s.backend.putFile('/b/empty', '');
  s.backend.putFile('/b/old', 'stored before checksums');
  s.backend.withoutChecksum.add('/b/old');
  s.backend.mkdirp('/b/dir');
  return s;
}

Handler('check-file-name answers the stored CRC32 for the whole file (length 0, and length = size)', async () => {
  const s = await session();
  assert.equal(answer(await byName(s, '/b/f')), { algorithm: 'crc32', hash: CRC(DATA) });
  assert.equal(answer(await byName(s, '/b/f', { length: DATA.length })), { algorithm: 'crc32', hash: CRC(DATA) });
  assert.equal(answer(await byName(s, '/b/f', { list: 'md5, sha256 ,CRC32', blockSize: DATA.length })).hash, CRC(DATA));
  assert.equal(answer(await byName(s, '/b/empty')), { algorithm: 'crc32', hash: hex('00000000') });
  await end(s);
});

Handler('check-file-handle and paramiko\'s check-file answer on a read handle', async () => {
  const s = await session();
  const h = await s.client.handle(s.client.open('/b/f', F.READ));
  assert.equal(answer(await byHandle(s, h)).hash, CRC(DATA));
  assert.equal(answer(await byHandle(s, h, { list: 'crc32' }, 'check-file')).hash, CRC(DATA));
  assert.equal(answer(await byHandle(s, h, { length: DATA.length, blockSize: 1 << 20 })).hash, CRC(DATA));
  isStatus(await s.client.close(h), S.OK);
  await end(s);
});

Handler('other algorithms, ranges and per-block hashes are OP_UNSUPPORTED with the reason', async () => {
  const s = await session();
  isStatus(await byName(s, '/b/f', { list: 'md5,sha1' }), S.OP_UNSUPPORTED, /no stored hash for md5,sha1; this server answers crc32 only/);
  isStatus(await byName(s, '/b/f', { list: '' }), S.OP_UNSUPPORTED, /crc32 only/);
  isStatus(await byName(s, '/b/f', { start: 1 }), S.OP_UNSUPPORTED, /start-offset must be 0/);
  isStatus(await byName(s, '/b/f', { length: 10 }), S.OP_UNSUPPORTED, new RegExp(`length must be 0 or ${DATA.length}`));
  isStatus(await byName(s, '/b/f', { length: DATA.length + 1 }), S.OP_UNSUPPORTED, /length must be/);
  isStatus(await byName(s, '/b/f', { blockSize: 256 }), S.OP_UNSUPPORTED, /block-size must be 0 or at least/);
  isStatus(await byName(s, '/b/f', { blockSize: 255 }), S.FAILURE, /block-size 255 is below the minimum of 256/);
  await end(s);
});

Handler('a client-chosen algorithm list reaches the status message without control characters', async () => {
  const s = await session();
  const r = await byName(s, '/b/f', { list: 'md5\u001b[31m' });
  isStatus(r, S.OP_UNSUPPORTED);
  assert.ok(r.type === 'status' && !r.message.includes('\u001b'), 'ESC replaced');
  await end(s);
});

Handler('a file stored without a checksum, a directory, a missing file', async () => {
  const s = await session();
  isStatus(await byName(s, '/b/old'), S.OP_UNSUPPORTED, /\/b\/old has no stored checksum/);
  isStatus(await byName(s, '/b/dir'), S.FAILURE, /is a directory/);
  isStatus(await byName(s, '/b/missing'), S.NO_SUCH_FILE);
  await end(s);
});

Handler('a write handle is unsupported until its upload is closed; then the name answers', async () => {
  const s = await session();
  const h = await s.client.handle(s.client.open('/b/new', F.WRITE | F.CREAT | F.TRUNC));
  isStatus(await s.client.write(h, 0, Buffer.from('abc')), S.OK);
  isStatus(await byHandle(s, h), S.OP_UNSUPPORTED, /\/b\/new has a checksum once its upload is closed/);
  isStatus(await s.client.close(h), S.OK);
  assert.equal(answer(await byName(s, '/b/new')).hash, CRC('abc'));
  await end(s);
});

Handler('a directory handle and an unknown handle fail', async () => {
  const s = await session();
  const d = await s.client.handle(s.client.opendir('/b'));
  isStatus(await byHandle(s, d), S.FAILURE, /directory handle/);
  isStatus(await byHandle(s, hex('0000ffff')), S.FAILURE, /invalid handle/);
  await end(s);
});

Handler('a backend without checksums answers OP_UNSUPPORTED', async () => {
  const s = await openSession();
  s.backend.putFile('/b/f', DATA);
  isStatus(await byName(s, '/b/f'), S.OP_UNSUPPORTED, /keeps no file checksums/);
  await end(s);
});

Handler('a malformed check-file request is BAD_MESSAGE for its id, and the session goes on', async () => {
  const s = await session();
  isStatus(await s.client.extended('check-file-name', (w) => w.string('/b/f').string('crc32').u64(0)), S.BAD_MESSAGE);
  assert.equal(answer(await byName(s, '/b/f')).hash, CRC(DATA));
  await end(s);
});

Handler.run();
