import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { SshWriter, encodeString } from '../../src/wire/writer.js';
import { SshReader } from '../../src/wire/reader.js';
import { hex } from '../helpers/golden.js';

const Writer = suite('wire/writer: SshWriter');

const bytesOf = (w: SshWriter): string => w.bytes().toString('hex');
const golden = (...fields: string[]): string => hex(...fields).toString('hex');

// --- golden bytes, one field per line ------------------------------------------------------

Writer('u8 writes one byte', () => {
  assert.is(bytesOf(new SshWriter().u8(0).u8(0x7f).u8(0xff)), golden('00', '7f', 'ff'));
});

Writer('bool writes 1 and 0', () => {
  assert.is(bytesOf(new SshWriter().bool(true).bool(false)), golden('01', '00'));
});

Writer('u32 writes big-endian (RFC 4251 §5 example 699921578)', () => {
  const w = new SshWriter().u32(699921578).u32(0xffffffff).u32(0);
  assert.is(
    bytesOf(w),
    golden(
      '29 b7 f4 aa', //
      'ff ff ff ff',
      '00 00 00 00',
    ),
  );
});

Writer('u64 writes big-endian from a number and from a bigint', () => {
  const w = new SshWriter().u64(Number.MAX_SAFE_INTEGER).u64(2n ** 64n - 1n).u64(2 ** 32 + 2);
  assert.is(
    bytesOf(w),
    golden(
      '00 1f ff ff ff ff ff ff', // 2^53 - 1
      'ff ff ff ff ff ff ff ff', // 2^64 - 1
      '00 00 00 01 00 00 00 02', // 2^32 + 2
    ),
  );
});

Writer('raw writes bytes with no length', () => {
  assert.is(bytesOf(new SshWriter().raw(Uint8Array.of(1, 2, 3))), golden('01 02 03'));
});

Writer('string writes a length then the bytes (RFC 4251 §5 example "testing")', () => {
  assert.is(
    bytesOf(new SshWriter().string(Buffer.from('testing'))),
    golden(
      '00 00 00 07', //
      '74 65 73 74 69 6e 67',
    ),
  );
});

Writer('string writes a JS string as UTF-8 and counts bytes, not characters', () => {
  assert.is(
    bytesOf(new SshWriter().string('é€🔑')),
    golden(
      '00 00 00 09', // 9 bytes for 3 characters
      'c3 a9', // é
      'e2 82 ac', // €
      'f0 9f 94 91', // 🔑
    ),
  );
});

Writer('string writes an empty string as a zero length', () => {
  assert.is(bytesOf(new SshWriter().string('').string(new Uint8Array(0))), golden('00 00 00 00', '00 00 00 00'));
});

Writer('nameList joins with commas (RFC 4251 §5 example "zlib,none")', () => {
  assert.is(
    bytesOf(new SshWriter().nameList(['zlib', 'none']).nameList([])),
    golden(
      '00 00 00 09', //
      '7a 6c 69 62 2c 6e 6f 6e 65', // "zlib,none"
      '00 00 00 00', // ()
    ),
  );
});

Writer('encodeString returns one string field', () => {
  assert.is(encodeString('ssh-userauth').toString('hex'), golden('00 00 00 0c', '73 73 68 2d 75 73 65 72 61 75 74 68'));
  assert.is(encodeString(Uint8Array.of(9)).toString('hex'), golden('00 00 00 01', '09'));
  assert.is(encodeString('🔑🔑').toString('hex'), golden('00 00 00 08', 'f0 9f 94 91', 'f0 9f 94 91'));
});

// --- mpint, RFC 4251 §5 --------------------------------------------------------------------

/** RFC 4251 §5's non-negative examples: [value, encoding]. -1234 and -deadbeef have no unsigned form. */
const RFC4251_MPINTS: ReadonlyArray<[bigint, string]> = [
  [0n, '00 00 00 00'],
  [0x9a378f9b2e332a7n, '00 00 00 08  09 a3 78 f9 b2 e3 32 a7'],
  [0x80n, '00 00 00 02  00 80'],
];

for (const [value, encoding] of RFC4251_MPINTS) {
  Writer(`mpintBig(0x${value.toString(16)}) is the RFC 4251 §5 encoding`, () => {
    assert.is(bytesOf(new SshWriter().mpintBig(value)), golden(encoding));
  });

  Writer(`mpint of the magnitude of 0x${value.toString(16)} is the RFC 4251 §5 encoding`, () => {
    let h = value === 0n ? '' : value.toString(16);
    if (h.length & 1) h = '0' + h;
    assert.is(bytesOf(new SshWriter().mpint(Buffer.from(h, 'hex'))), golden(encoding));
  });
}

Writer('mpint strips leading zero bytes of the magnitude', () => {
  assert.is(bytesOf(new SshWriter().mpint(Uint8Array.of(0, 0, 0x7f, 1))), golden('00 00 00 02', '7f 01'));
  assert.is(bytesOf(new SshWriter().mpint(Uint8Array.of(0, 0, 0x80, 1))), golden('00 00 00 03', '00 80 01'));
});

Writer('mpint of an all-zero magnitude is zero', () => {
  assert.is(bytesOf(new SshWriter().mpint(new Uint8Array(32))), golden('00 00 00 00'));
});

Writer('mpintBig refuses a negative value', () => {
  assert.throws(() => new SshWriter().mpintBig(-1n), (e: unknown) => e instanceof RangeError);
});

// --- growth, reserve, views ----------------------------------------------------------------

Writer('grows past its initial size and keeps what was written', () => {
  const w = new SshWriter(16);
  const expected: number[] = [];
  for (let i = 0; i < 1000; i++) {
    w.u8(i & 0xff);
    expected.push(i & 0xff);
  }
  assert.ok(w.buf.length >= 1000);
  assert.equal([...w.bytes()], expected);
});

Writer('grows for one field much larger than the buffer', () => {
  const big = Buffer.alloc(100_000, 0xab);
  const w = new SshWriter(16).u8(1).string(big).u8(2);
  const b = w.bytes();
  assert.is(b.length, 1 + 4 + 100_000 + 1);
  assert.is(b[0], 1);
  assert.is(b.readUInt32BE(1), 100_000);
  assert.ok(b.subarray(5, 5 + 100_000).equals(big));
  assert.is(b[b.length - 1], 2);
});

Writer('grows for a JS string whose UTF-8 is longer than its length', () => {
  const s = '€'.repeat(200); // 600 bytes of UTF-8
  const w = new SshWriter(16).string(s);
  assert.is(w.bytes().readUInt32BE(0), 600);
  assert.is(w.bytes().subarray(4).toString('utf8'), s);
});

Writer('every field type grows the buffer at its boundary', () => {
  // Starting each field exactly at the end of a 16-byte buffer forces a grow on every type.
  const fields: Array<[string, (w: SshWriter) => void, string]> = [
    ['u8', (w) => w.u8(0xaa), 'aa'],
    ['bool', (w) => w.bool(true), '01'],
    ['u32', (w) => w.u32(0x01020304), '01020304'],
    ['u64', (w) => w.u64(0x0102030405n), '0000000102030405'],
    ['raw', (w) => w.raw(Uint8Array.of(9, 9)), '0909'],
    ['string', (w) => w.string('ab'), '000000026162'],
    ['nameList', (w) => w.nameList(['a', 'b']), '00000003612c62'],
    ['mpint', (w) => w.mpint(Uint8Array.of(0x80)), '000000020080'],
    ['mpintBig', (w) => w.mpintBig(0x80n), '000000020080'],
  ];
  for (const [name, write, expected] of fields) {
    const w = new SshWriter(16).raw(Buffer.alloc(16, 0xee));
    assert.is(w.buf.length, 16, name);
    write(w);
    assert.is(w.bytes().toString('hex'), 'ee'.repeat(16) + expected, name);
  }
});

Writer('reserve leaves room at the front for a header filled in later', () => {
  const w = new SshWriter(64, 5);
  assert.is(w.pos, 5);
  w.u8(5).string('ssh-userauth');
  // The SSH packet header: uint32 packet_length, byte padding_length (RFC 4253 §6).
  const b = w.bytes();
  b.writeUInt32BE(b.length - 4, 0);
  b[4] = 0;
  assert.is(
    b.toString('hex'),
    golden(
      '00 00 00 12', // packet_length (filled in later)
      '00', // padding_length (filled in later)
      '05', // SSH_MSG_SERVICE_REQUEST
      '00 00 00 0c', // service name
      '73 73 68 2d 75 73 65 72 61 75 74 68',
    ),
  );
});

Writer('reserve larger than the initial size is honoured', () => {
  const w = new SshWriter(4, 32);
  assert.is(w.pos, 32);
  assert.ok(w.buf.length >= 32 + 16);
  w.u32(7);
  assert.is(w.bytes().length, 36);
  assert.is(w.bytes().readUInt32BE(32), 7);
});

Writer('reserved bytes survive a grow', () => {
  const w = new SshWriter(16, 4);
  w.buf.writeUInt32BE(0xcafebabe, 0);
  w.raw(Buffer.alloc(1000, 1));
  assert.is(w.bytes().readUInt32BE(0), 0xcafebabe);
  assert.is(w.bytes().length, 1004);
});

Writer('bytes is a view of the internal buffer, not a copy', () => {
  const w = new SshWriter(64).u32(1);
  const b = w.bytes();
  assert.is(b.buffer, w.buf.buffer);
  assert.is(b.byteOffset, w.buf.byteOffset);
});

// --- round trips ---------------------------------------------------------------------------

/** Strings that UTF-8 can carry unchanged: no lone surrogates (the writer would replace them). */
const wellFormed = fc.string({ unit: 'binary', maxLength: 64 }).filter((s) => Buffer.from(s, 'utf8').toString('utf8') === s);
const name = fc.stringMatching(/^[\x21-\x2b\x2d-\x7e]{1,16}$/);

type Field =
  | { t: 'u8'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'u32'; v: number }
  | { t: 'u64'; v: number }
  | { t: 'u64n'; v: bigint }
  | { t: 'bytes'; v: Uint8Array }
  | { t: 'utf8'; v: string }
  | { t: 'nameList'; v: string[] }
  | { t: 'mpint'; v: bigint };

const field: fc.Arbitrary<Field> = fc.oneof(
  fc.integer({ min: 0, max: 255 }).map((v) => ({ t: 'u8', v }) as Field),
  fc.boolean().map((v) => ({ t: 'bool', v }) as Field),
  fc.integer({ min: 0, max: 0xffffffff }).map((v) => ({ t: 'u32', v }) as Field),
  fc.maxSafeNat().map((v) => ({ t: 'u64', v }) as Field),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((v) => ({ t: 'u64n', v }) as Field),
  fc.uint8Array({ maxLength: 300 }).map((v) => ({ t: 'bytes', v }) as Field),
  wellFormed.map((v) => ({ t: 'utf8', v }) as Field),
  fc.array(name, { maxLength: 12 }).map((v) => ({ t: 'nameList', v }) as Field),
  fc.bigInt({ min: 0n, max: 2n ** 4100n }).map((v) => ({ t: 'mpint', v }) as Field),
);

function write(w: SshWriter, f: Field): void {
  switch (f.t) {
    case 'u8': w.u8(f.v); break;
    case 'bool': w.bool(f.v); break;
    case 'u32': w.u32(f.v); break;
    case 'u64': w.u64(f.v); break;
    case 'u64n': w.u64(f.v); break;
    case 'bytes': w.string(f.v); break;
    case 'utf8': w.string(f.v); break;
    case 'nameList': w.nameList(f.v); break;
    case 'mpint': w.mpintBig(f.v); break;
  }
}

function readBack(r: SshReader, f: Field): unknown {
  switch (f.t) {
    case 'u8': return r.u8();
    case 'bool': return r.bool();
    case 'u32': return r.u32();
    case 'u64': return r.u64();
    case 'u64n': return r.u64n();
    case 'bytes': return r.bytes(300);
    case 'utf8': return r.utf8(256);
    case 'nameList': return r.nameList(12 * 17, 12);
    case 'mpint': {
      const m = r.mpintBytes(513);
      return m.length === 0 ? 0n : BigInt('0x' + Buffer.from(m).toString('hex'));
    }
  }
}

Writer('random field sequences round-trip through SshReader', () => {
  fc.assert(
    fc.property(fc.array(field, { maxLength: 24 }), fc.integer({ min: 0, max: 64 }), (fields, initial) => {
      const w = new SshWriter(initial);
      for (const f of fields) write(w, f);
      const r = new SshReader(w.bytes());
      for (const f of fields) {
        const got = readBack(r, f);
        if (got instanceof Uint8Array) assert.equal([...got], [...(f.v as Uint8Array)]);
        else assert.equal(got, f.v);
      }
      r.assertEnd();
    }),
    { numRuns: 500 },
  );
});

Writer('mpint and mpintBig agree, and mpintBytes returns the minimal magnitude', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), (magnitude) => {
      const v = magnitude.length === 0 ? 0n : BigInt('0x' + Buffer.from(magnitude).toString('hex'));
      const a = new SshWriter(8).mpint(magnitude).bytes();
      const b = new SshWriter(8).mpintBig(v).bytes();
      assert.ok(a.equals(b));
      let i = 0;
      while (i < magnitude.length && magnitude[i] === 0) i++;
      assert.equal([...new SshReader(a).mpintBytes(80)], [...magnitude.subarray(i)]);
    }),
    { numRuns: 1000 },
  );
});

Writer.run();
