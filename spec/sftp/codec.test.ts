import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  DATA_HEADER_BYTES,
  decodeInit,
  decodeRequest,
  encodeAttrsReply,
  encodeDataHeader,
  encodeHandle,
  encodeLimitsReply,
  encodeName,
  encodeStatus,
  encodeStatvfsReply,
  encodeVersion,
  requestId,
  type Request,
} from '../../src/sftp/codec.js';
import { EXTENSIONS, FX } from '../../src/sftp/constants.js';
import { MalformedError } from '../../src/wire/errors.js';
import { SshWriter } from '../../src/wire/writer.js';
import { hex } from '../helpers/golden.js';
import { decodeReply, packet, T, writeAttrs, type TestAttrs } from './client.js';

const Codec = suite('sftp/codec: requests and replies');

/** The body of a framed packet (what the framer hands the decoder). */
const body = (framed: Buffer): Buffer => framed.subarray(4);
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const golden = (...fields: string[]): string => hex(...fields).toString('hex');

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

// ----------------------------------------------------------------------- golden requests

Codec('INIT decodes the version and skips extension pairs', () => {
  const init = decodeInit(
    hex(
      '01', // SSH_FXP_INIT
      '00 00 00 03', // version 3
      '00 00 00 01 61', // extension-name "a"
      '00 00 00 01 62', // extension-data "b"
    ),
  );
  assert.is(init.version, 3);
  assert.equal(init.extensions.map(([n, d]) => [n, Buffer.from(d).toString()]), [['a', 'b']]);
});

Codec('INIT with a half extension pair is malformed', () => {
  throwsMalformed(() => decodeInit(hex('01', '00 00 00 03', '00 00 00 01 61')));
});

Codec('OPEN decodes filename, pflags and ATTRS (golden)', () => {
  const req = decodeRequest(
    hex(
      '03', // SSH_FXP_OPEN
      '00 00 00 07', // id 7
      '00 00 00 05 2f 61 2f 62 63', // filename "/a/bc"
      '00 00 00 1a', // pflags WRITE|CREAT|TRUNC
      '00 00 00 04', // ATTRS flags: PERMISSIONS
      '00 00 01 a4', // permissions 0644
    ),
  );
  assert.equal(req, { op: 'open', id: 7, filename: '/a/bc', pflags: 0x1a, attrs: { permissions: 0o644 } });
});

Codec('READ decodes handle, uint64 offset and length (golden)', () => {
  const req = decodeRequest(
    hex(
      '05', // SSH_FXP_READ
      '00 00 00 02', // id
      '00 00 00 04 00 00 00 09', // handle
      '00 00 00 01 00 00 00 00', // offset 2^32
      '00 00 80 00', // len 32768
    ),
  );
  assert.is(req.op, 'read');
  if (req.op !== 'read') return;
  assert.is(hexOf(req.handle), '00000009');
  assert.is(req.offset, 2 ** 32);
  assert.is(req.length, 32768);
});

Codec('WRITE data is a view of the request, not a copy (golden)', () => {
  const b = hex(
    '06', // SSH_FXP_WRITE
    '00 00 00 03', // id
    '00 00 00 04 00 00 00 01', // handle
    '00 00 00 00 00 00 00 10', // offset 16
    '00 00 00 03 61 62 63', // data "abc"
  );
  const req = decodeRequest(b);
  assert.is(req.op, 'write');
  if (req.op !== 'write') return;
  assert.is(req.offset, 16);
  assert.is(req.data.toString(), 'abc');
  assert.ok(Buffer.isBuffer(req.data));
  assert.is(req.data.buffer, b.buffer, 'same memory');
  assert.is(req.data.byteOffset, b.byteOffset + b.length - 3);
});

Codec('SYMLINK keeps OpenSSH field order: targetpath then linkpath (golden)', () => {
  const req = decodeRequest(
    hex(
      '14', // SSH_FXP_SYMLINK
      '00 00 00 09', // id
      '00 00 00 01 74', // targetpath "t"
      '00 00 00 01 6c', // linkpath "l"
    ),
  );
  assert.equal(req, { op: 'symlink', id: 9, targetpath: 't', linkpath: 'l' });
});

Codec('EXTENDED posix-rename decodes both paths (golden)', () => {
  const req = decodeRequest(
    hex(
      'c8', // SSH_FXP_EXTENDED
      '00 00 00 0a', // id 10
      '00 00 00 18', // name length 24
      '70 6f 73 69 78 2d 72 65 6e 61 6d 65 40 6f 70 65 6e 73 73 68 2e 63 6f 6d', // "posix-rename@openssh.com"
      '00 00 00 02 2f 61', // oldpath "/a"
      '00 00 00 02 2f 62', // newpath "/b"
    ),
  );
  assert.equal(req, { op: 'posix-rename', id: 10, oldpath: '/a', newpath: '/b' });
});

Codec('EXTENDED limits takes no fields; a trailing byte is malformed', () => {
  const name = Buffer.from('limits@openssh.com');
  const ok = Buffer.concat([hex('c8', '00 00 00 01', '00 00 00 12'), name]);
  assert.equal(decodeRequest(ok), { op: 'limits', id: 1 });
  throwsMalformed(() => decodeRequest(Buffer.concat([ok, hex('00')])), /trailing/);
});

Codec('an unknown EXTENDED keeps its name and ignores its fields', () => {
  const b = body(packet(T.EXTENDED, (w) => w.u32(4).string('copy-data').string('whatever').u64(1)));
  assert.equal(decodeRequest(b), { op: 'extended', id: 4, name: 'copy-data' });
});

Codec('an unknown packet type decodes to op "unknown" with its id', () => {
  assert.equal(decodeRequest(hex('63', '00 00 00 05', 'ff ff')), { op: 'unknown', id: 5, type: 0x63 });
});

Codec('requestId reads the id of any body of 5 bytes or more', () => {
  assert.is(requestId(hex('11', '00 00 01 00')), 256);
  assert.is(requestId(hex('11', '00 00 01')), null);
  assert.is(requestId(new Uint8Array(0)), null);
});

// ----------------------------------------------------------------------- hostile requests

Codec('trailing bytes after any request are malformed', () => {
  const b = Buffer.concat([body(packet(T.STAT, (w) => w.u32(1).string('/x'))), hex('00')]);
  throwsMalformed(() => decodeRequest(b), /trailing/);
});

Codec('every truncation of every request type is malformed, never a wrong request', () => {
  const reqs = [
    packet(T.OPEN, (w) => {
      w.u32(1).string('/f').u32(3);
      writeAttrs(w, { size: 1, uid: 1, gid: 2, permissions: 0o644, mtime: 5 });
    }),
    packet(T.CLOSE, (w) => w.u32(1).string(hex('00000001'))),
    packet(T.READ, (w) => w.u32(1).string(hex('00000001')).u64(0).u32(10)),
    packet(T.WRITE, (w) => w.u32(1).string(hex('00000001')).u64(0).string('abc')),
    packet(T.SETSTAT, (w) => {
      w.u32(1).string('/f');
      writeAttrs(w, { mtime: 5, extended: [['a', Buffer.from('b')]] });
    }),
    packet(T.RENAME, (w) => w.u32(1).string('/a').string('/b')),
    packet(T.SYMLINK, (w) => w.u32(1).string('/a').string('/b')),
    packet(T.EXTENDED, (w) => w.u32(1).string('statvfs@openssh.com').string('/')),
    packet(T.EXTENDED, (w) => w.u32(1).string('fsync@openssh.com').string(hex('00000001'))),
  ];
  for (const framed of reqs) {
    const b = body(framed);
    decodeRequest(b);
    for (let cut = 5; cut < b.length; cut++) {
      throwsMalformed(() => decodeRequest(b.subarray(0, cut)));
    }
  }
});

Codec('a path over 4096 bytes, a handle over 256 bytes, and non-UTF-8 paths are malformed', () => {
  throwsMalformed(() => decodeRequest(body(packet(T.STAT, (w) => w.u32(1).string('a'.repeat(4097))))), /4097/);
  assert.is(decodeRequest(body(packet(T.STAT, (w) => w.u32(1).string('a'.repeat(4096))))).op, 'stat');
  throwsMalformed(() => decodeRequest(body(packet(T.CLOSE, (w) => w.u32(1).string(Buffer.alloc(257))))), /257/);
  throwsMalformed(() => decodeRequest(body(packet(T.STAT, (w) => w.u32(1).string(hex('2f ff fe'))))), /UTF-8/);
});

Codec('a uint64 offset above 2^53 - 1 is malformed', () => {
  throwsMalformed(() => decodeRequest(body(packet(T.READ, (w) => w.u32(1).string('h').u64(2n ** 60n).u32(1)))), /2\^53/);
});

Codec('fuzz: decodeRequest either returns a request or throws MalformedError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), fc.integer({ min: 1, max: 20 }), (tail, type) => {
      const b = Buffer.concat([Buffer.of(type === 19 ? 200 : type), Buffer.from(tail)]);
      try {
        const r = decodeRequest(b);
        assert.type(r.op, 'string');
      } catch (err) {
        if (!(err instanceof MalformedError)) throw err;
      }
    }),
    { numRuns: 3000 },
  );
});

// ----------------------------------------------------------------------- golden replies

Codec('VERSION lists version 3 and the OpenSSH extensions (golden)', () => {
  const v = encodeVersion(3, [['limits@openssh.com', '1']]);
  assert.is(
    hexOf(v),
    golden(
      '00 00 00 20', // length 32
      '02', // SSH_FXP_VERSION
      '00 00 00 03', // version 3
      '00 00 00 12 6c 69 6d 69 74 73 40 6f 70 65 6e 73 73 68 2e 63 6f 6d', // "limits@openssh.com"
      '00 00 00 01 31', // "1"
    ),
  );
  assert.equal(
    EXTENSIONS.map(([n, d]) => `${n}=${d}`),
    [
      'posix-rename@openssh.com=1',
      'statvfs@openssh.com=2',
      'fstatvfs@openssh.com=2',
      'limits@openssh.com=1',
      'fsync@openssh.com=1',
      'check-file-handle=crc32',
      'check-file-name=crc32',
    ],
  );
});

Codec('STATUS carries code, message and an empty language tag (golden)', () => {
  assert.is(
    hexOf(encodeStatus(5, FX.NO_SUCH_FILE, 'no')),
    golden(
      '00 00 00 13', // length 19
      '65', // SSH_FXP_STATUS
      '00 00 00 05', // id
      '00 00 00 02', // SSH_FX_NO_SUCH_FILE
      '00 00 00 02 6e 6f', // message "no"
      '00 00 00 00', // language tag ""
    ),
  );
});

Codec('HANDLE (golden)', () => {
  assert.is(
    hexOf(encodeHandle(1, hex('00 00 00 2a'))),
    golden(
      '00 00 00 0d', // length 13
      '66', // SSH_FXP_HANDLE
      '00 00 00 01', // id
      '00 00 00 04 00 00 00 2a', // handle
    ),
  );
});

Codec('DATA header is 13 bytes announcing the payload that follows it (golden)', () => {
  const h = encodeDataHeader(9, 3);
  assert.is(h.length, DATA_HEADER_BYTES);
  assert.is(
    hexOf(h),
    golden(
      '00 00 00 0c', // length 12 = 1 + 4 + 4 + 3 payload bytes
      '67', // SSH_FXP_DATA
      '00 00 00 09', // id
      '00 00 00 03', // data length (the 3 bytes go out as a separate chunk)
    ),
  );
  assert.equal(decodeReply(Buffer.concat([h, Buffer.from('xyz')]).subarray(4)), { type: 'data', id: 9, data: Buffer.from('xyz') });
});

Codec('NAME with one entry (golden)', () => {
  const n = encodeName(2, [{ filename: 'f', longname: 'l', attrs: { size: 1 } }]);
  assert.is(
    hexOf(n),
    golden(
      '00 00 00 1f', // length 31
      '68', // SSH_FXP_NAME
      '00 00 00 02', // id
      '00 00 00 01', // count
      '00 00 00 01 66', // filename "f"
      '00 00 00 01 6c', // longname "l"
      '00 00 00 01', // ATTRS flags SIZE
      '00 00 00 00 00 00 00 01', // size 1
    ),
  );
});

Codec('ATTRS reply (golden)', () => {
  assert.is(
    hexOf(encodeAttrsReply(3, { size: 10, permissions: 0o100644, atime: 1, mtime: 2 })),
    golden(
      '00 00 00 1d', // length 29
      '69', // SSH_FXP_ATTRS
      '00 00 00 03', // id
      '00 00 00 0d', // flags SIZE|PERMISSIONS|ACMODTIME
      '00 00 00 00 00 00 00 0a', // size
      '00 00 81 a4', // permissions 0100644
      '00 00 00 01', // atime
      '00 00 00 02', // mtime
    ),
  );
});

Codec('limits@openssh.com reply: four uint64 (golden)', () => {
  const r = encodeLimitsReply(4, { maxPacketLength: 262144, maxReadLength: 261120, maxWriteLength: 261120, maxOpenHandles: 64 });
  assert.is(
    hexOf(r),
    golden(
      '00 00 00 25', // length 37
      'c9', // SSH_FXP_EXTENDED_REPLY
      '00 00 00 04', // id
      '00 00 00 00 00 04 00 00', // max-packet-length 262144
      '00 00 00 00 00 03 fc 00', // max-read-length 261120
      '00 00 00 00 00 03 fc 00', // max-write-length 261120
      '00 00 00 00 00 00 00 40', // max-open-handles 64
    ),
  );
});

Codec('statvfs@openssh.com reply: eleven uint64 in struct statvfs order', () => {
  const r = encodeStatvfsReply(1, {
    bsize: 1, frsize: 2, blocks: 3, bfree: 4, bavail: 5, files: 6, ffree: 7, favail: 8, fsid: 9, flag: 10, namemax: 11,
  });
  assert.is(r.readUInt32BE(0), 1 + 4 + 11 * 8);
  assert.is(r[4], 201);
  for (let i = 0; i < 11; i++) assert.is(Number(r.readBigUInt64BE(9 + i * 8)), i + 1);
});

// ----------------------------------------------------------------------- round trips

Codec('round trip: every request type encoded by the test client decodes to the same fields', () => {
  const h = hex('00 00 00 07');
  const attrs: TestAttrs = { size: 3, uid: 1, gid: 2, permissions: 0o755, atime: 4, mtime: 5 };
  const cases: [Buffer, Request][] = [
    [packet(T.OPEN, (w) => { w.u32(1).string('é/x').u32(0x3f); writeAttrs(w, attrs); }),
      { op: 'open', id: 1, filename: 'é/x', pflags: 0x3f, attrs: { size: 3, uid: 1, gid: 2, permissions: 0o755, atime: 4, mtime: 5 } }],
    [packet(T.CLOSE, (w) => w.u32(2).string(h)), { op: 'close', id: 2, handle: h }],
    [packet(T.READ, (w) => w.u32(3).string(h).u64(Number.MAX_SAFE_INTEGER).u32(0xffffffff)),
      { op: 'read', id: 3, handle: h, offset: Number.MAX_SAFE_INTEGER, length: 0xffffffff }],
    [packet(T.LSTAT, (w) => w.u32(4).string('/l')), { op: 'lstat', id: 4, path: '/l' }],
    [packet(T.FSTAT, (w) => w.u32(5).string(h)), { op: 'fstat', id: 5, handle: h }],
    [packet(T.SETSTAT, (w) => { w.u32(6).string('/s'); writeAttrs(w, {}); }), { op: 'setstat', id: 6, path: '/s', attrs: {} }],
    [packet(T.FSETSTAT, (w) => { w.u32(7).string(h); writeAttrs(w, { size: 0 }); }), { op: 'fsetstat', id: 7, handle: h, attrs: { size: 0 } }],
    [packet(T.OPENDIR, (w) => w.u32(8).string('')), { op: 'opendir', id: 8, path: '' }],
    [packet(T.READDIR, (w) => w.u32(9).string(h)), { op: 'readdir', id: 9, handle: h }],
    [packet(T.REMOVE, (w) => w.u32(10).string('/r')), { op: 'remove', id: 10, path: '/r' }],
    [packet(T.MKDIR, (w) => { w.u32(11).string('/m'); writeAttrs(w, { permissions: 0o700 }); }),
      { op: 'mkdir', id: 11, path: '/m', attrs: { permissions: 0o700 } }],
    [packet(T.RMDIR, (w) => w.u32(12).string('/d')), { op: 'rmdir', id: 12, path: '/d' }],
    [packet(T.REALPATH, (w) => w.u32(13).string('.')), { op: 'realpath', id: 13, path: '.' }],
    [packet(T.STAT, (w) => w.u32(14).string('/st')), { op: 'stat', id: 14, path: '/st' }],
    [packet(T.RENAME, (w) => w.u32(15).string('/a').string('/b')), { op: 'rename', id: 15, oldpath: '/a', newpath: '/b' }],
    [packet(T.READLINK, (w) => w.u32(16).string('/k')), { op: 'readlink', id: 16, path: '/k' }],
    [packet(T.EXTENDED, (w) => w.u32(17).string('statvfs@openssh.com').string('/')), { op: 'statvfs', id: 17, path: '/' }],
    [packet(T.EXTENDED, (w) => w.u32(18).string('fstatvfs@openssh.com').string(h)), { op: 'fstatvfs', id: 18, handle: h }],
    [packet(T.EXTENDED, (w) => w.u32(19).string('fsync@openssh.com').string(h)), { op: 'fsync', id: 19, handle: h }],
    [packet(T.EXTENDED, (w) => w.u32(0xffffffff).string('limits@openssh.com')), { op: 'limits', id: 0xffffffff }],
  ];
  for (const [framed, want] of cases) assert.equal(decodeRequest(body(framed)), want, want.op);
});

Codec('round trip: replies decode to what was encoded, for arbitrary names and attributes', () => {
  const attrsArb = fc.record(
    {
      size: fc.maxSafeNat(),
      permissions: fc.nat({ max: 0xffffffff }),
      atime: fc.nat({ max: 0xffffffff }),
      mtime: fc.nat({ max: 0xffffffff }),
    },
    { requiredKeys: [] },
  );
  fc.assert(
    fc.property(
      fc.nat({ max: 0xffffffff }),
      fc.array(fc.record({ filename: fc.string(), longname: fc.string(), attrs: attrsArb }), { maxLength: 5 }),
      (id, entries) => {
        const normal = entries.map((e) => {
          const a = { ...e.attrs } as TestAttrs;
          // ACMODTIME travels as a pair: a lone atime or mtime comes back with 0 for the other.
          if ((a.atime === undefined) !== (a.mtime === undefined)) {
            a.atime ??= 0;
            a.mtime ??= 0;
          }
          return { filename: e.filename, longname: e.longname, attrs: a };
        });
        const back = decodeReply(encodeName(id, entries).subarray(4));
        assert.equal(back, { type: 'name', id, entries: normal.map((e) => ({ ...e, attrs: sortKeys(e.attrs) })) });
      },
    ),
    { numRuns: 300 },
  );
});

/** decodeReply builds attrs in wire order; equal() ignores key order anyway, this documents it. */
function sortKeys(a: TestAttrs): TestAttrs {
  const out: TestAttrs = {};
  if (a.size !== undefined) out.size = a.size;
  if (a.permissions !== undefined) out.permissions = a.permissions;
  if (a.atime !== undefined) out.atime = a.atime;
  if (a.mtime !== undefined) out.mtime = a.mtime;
  return out;
}

Codec('a STATUS message is written as UTF-8 and decodes back', () => {
  const r = decodeReply(encodeStatus(1, FX.FAILURE, 'héllo "é" €').subarray(4));
  assert.equal(r, { type: 'status', id: 1, code: FX.FAILURE, message: 'héllo "é" €', lang: '' });
});

Codec('SshWriter-based encoders leave no slack: the length prefix equals the bytes that follow', () => {
  const msgs = [
    encodeVersion(3, EXTENSIONS),
    encodeStatus(1, 0, ''),
    encodeHandle(1, Buffer.alloc(4)),
    encodeName(1, []),
    encodeAttrsReply(1, {}),
  ];
  for (const m of msgs) assert.is(m.readUInt32BE(0), m.length - 4);
  void SshWriter;
});

Codec.run();
