import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { SshReader } from '../../src/wire/reader.js';
import { MalformedError } from '../../src/wire/errors.js';
import { hex } from '../helpers/golden.js';

const Reader = suite('wire/reader: SshReader');

/** A reader over golden bytes, one wire field per argument. */
const read = (...fields: string[]): SshReader => new SshReader(hex(...fields));

/** Runs `fn`, expects a MalformedError whose message matches `pattern`, and returns it. */
function malformed(fn: () => unknown, pattern?: RegExp): MalformedError {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof MalformedError)) throw err;
    assert.is(err.code, 'ERR_MALFORMED');
    assert.is(err.name, 'MalformedError');
    if (pattern) assert.match(err.message, pattern);
    return err;
  }
  assert.unreachable('expected a MalformedError');
  throw new Error('unreachable');
}

// --- byte, boolean -------------------------------------------------------------------------

Reader('u8 reads one byte and advances by one', () => {
  const r = read('00', 'ff', '7f');
  assert.is(r.u8(), 0);
  assert.is(r.u8(), 255);
  assert.is(r.u8(), 127);
  assert.is(r.remaining, 0);
});

Reader('u8 throws on 0 remaining bytes', () => {
  malformed(() => read('').u8(), /truncated byte: needs 1 bytes, 0 left/);
});

Reader('bool reads 0 as false and every non-zero value as true (RFC 4251 §5)', () => {
  const r = read('00', '01', '02', 'ff');
  assert.is(r.bool(), false);
  assert.is(r.bool(), true);
  assert.is(r.bool(), true);
  assert.is(r.bool(), true);
});

Reader('bool throws on 0 remaining bytes', () => {
  malformed(() => read('').bool(), /truncated/);
});

// --- uint32 --------------------------------------------------------------------------------

Reader('u32 reads big-endian and unsigned (RFC 4251 §5 example 0x29b7f4aa)', () => {
  const r = read(
    '29 b7 f4 aa', // 699921578
    'ff ff ff ff', // 4294967295, not -1
    '80 00 00 00', // 2147483648, not negative
    '00 00 00 00',
  );
  assert.is(r.u32(), 0x29b7f4aa);
  assert.is(r.u32(), 0xffffffff);
  assert.is(r.u32(), 0x80000000);
  assert.is(r.u32(), 0);
  assert.is(r.remaining, 0);
});

Reader('u32 throws on 3 remaining bytes and does not advance', () => {
  const r = read('00 00 01');
  malformed(() => r.u32(), /truncated uint32: needs 4 bytes, 3 left/);
  assert.is(r.pos, 0);
});

// --- uint64 --------------------------------------------------------------------------------

Reader('u64 reads big-endian values up to 2^53 - 1', () => {
  const r = read(
    '00 00 00 00 00 00 00 00',
    '00 00 00 01 00 00 00 02', // 2^32 + 2
    '00 1f ff ff ff ff ff ff', // 2^53 - 1
  );
  assert.is(r.u64(), 0);
  assert.is(r.u64(), 2 ** 32 + 2);
  assert.is(r.u64(), Number.MAX_SAFE_INTEGER);
});

Reader('u64 refuses 2^53 rather than rounding', () => {
  malformed(() => read('00 20 00 00 00 00 00 00').u64(), /2\^53/);
});

Reader('u64 refuses 2^53 + 1 (which a double would round to 2^53)', () => {
  malformed(() => read('00 20 00 00 00 00 00 01').u64(), /2\^53/);
});

Reader('u64 refuses 2^64 - 1', () => {
  malformed(() => read('ff ff ff ff ff ff ff ff').u64(), /2\^53/);
});

Reader('u64 throws on 7 remaining bytes', () => {
  malformed(() => read('00 00 00 00 00 00 01').u64(), /truncated uint32/);
});

Reader('u64n reads the whole 64-bit range as a bigint', () => {
  const r = read('ff ff ff ff ff ff ff ff', '00 20 00 00 00 00 00 01', '00 00 00 00 00 00 00 00');
  assert.is(r.u64n(), 2n ** 64n - 1n);
  assert.is(r.u64n(), 2n ** 53n + 1n);
  assert.is(r.u64n(), 0n);
});

Reader('u64n throws on 7 remaining bytes', () => {
  malformed(() => read('00 00 00 00 00 00 01').u64n(), /truncated/);
});

// --- string --------------------------------------------------------------------------------

Reader('bytes returns a view of the string body, not a copy', () => {
  const buf = hex(
    '00 00 00 07', // length 7
    '74 65 73 74 69 6e 67', // "testing" (RFC 4251 §5 example)
  );
  const r = new SshReader(buf);
  const v = r.bytes();
  assert.is(Buffer.from(v).toString('latin1'), 'testing');
  assert.is(v.buffer, buf.buffer);
  assert.is(v.byteOffset, buf.byteOffset + 4);
  assert.is(r.remaining, 0);
});

Reader('bytes reads an empty string', () => {
  const r = read('00 00 00 00');
  assert.is(r.bytes().length, 0);
  assert.is(r.remaining, 0);
});

Reader('bytes throws on 3 bytes of length', () => {
  malformed(() => read('00 00 00').bytes(), /truncated uint32/);
});

Reader('bytes throws when the body is one byte short', () => {
  malformed(
    () =>
      read(
        '00 00 00 05', // declares 5
        '61 62 63 64', // 4 follow
      ).bytes(16, 'user name'),
    /truncated user name: needs 5 bytes, 4 left/,
  );
});

Reader('bytes with a max refuses a larger declared length before looking at the data', () => {
  const err = malformed(
    () =>
      read(
        'ff ff ff ff', // declares 4 GiB
        '61 62', // 2 bytes behind it
      ).bytes(1024, 'string'),
  );
  // The cap is reported, not the truncation: the length was refused before the data was looked at.
  assert.match(err.message, /4294967295 bytes exceeds the limit of 1024/);
  assert.not.match(err.message, /truncated/);
});

Reader('bytes accepts a string exactly at its max', () => {
  assert.equal([...read('00 00 00 03', '01 02 03').bytes(3)], [1, 2, 3]);
});

Reader('bytes honours a window: it never reads past `end` into the rest of the buffer', () => {
  const buf = hex(
    'ee ee', // before the window
    '00 00 00 04', // declares 4
    '61 62', // only 2 inside the window
    '63 64', // after the window
  );
  const r = new SshReader(buf, 2, 8);
  malformed(() => r.bytes(), /truncated string: needs 4 bytes, 2 left/);
});

// --- utf8, ascii ---------------------------------------------------------------------------

Reader('utf8 decodes multi-byte UTF-8', () => {
  const r = read(
    '00 00 00 0a', // 10 bytes
    '68 c3 a9 e2 82 ac f0 9f 94 91', // "h" "é" "€" "🔑"
  );
  assert.is(r.utf8(), 'hé€🔑');
});

for (const [label, body] of [
  ['a lone continuation byte', '80'],
  ['a 0xff byte', 'ff'],
  ['an overlong "/" (c0 af)', 'c0 af'],
  ['an overlong NUL (e0 80 80)', 'e0 80 80'],
  ['a UTF-16 surrogate (ed a0 80)', 'ed a0 80'],
  ['a code point above U+10FFFF (f4 90 80 80)', 'f4 90 80 80'],
  ['a truncated sequence (e2 82)', 'e2 82'],
  ['a truncated sequence followed by ASCII (e2 82 41)', 'e2 82 41'],
] as const) {
  Reader(`utf8 refuses ${label}`, () => {
    const len = hex(body).length.toString(16).padStart(8, '0');
    malformed(() => read(len, body).utf8(64, 'user name'), /user name is not valid UTF-8/);
  });
}

Reader('utf8 applies its max before decoding', () => {
  malformed(() => read('00 00 01 00').utf8(255, 'user name'), /user name of 256 bytes exceeds the limit of 255/);
});

Reader('utf8 keeps a leading U+FEFF: decoding must not drop bytes the peer sent', () => {
  // TextDecoder strips a leading byte order mark unless `ignoreBOM: true`; then "\uFEFFalice"
  // and "alice" decode to the same string although the bytes differ.
  const r = read(
    '00 00 00 08',
    'ef bb bf', // U+FEFF
    '61 6c 69 63 65', // "alice"
  );
  assert.is(r.utf8(), '\uFEFFalice');
});

Reader('ascii maps each byte to one code point (Latin-1)', () => {
  assert.is(read('00 00 00 03', '61 ff 00').ascii(), 'a\u00ff\u0000');
});

Reader('ascii applies its max before looking at the data', () => {
  malformed(() => read('00 00 00 41').ascii(64, 'key type'), /key type of 65 bytes exceeds the limit of 64/);
});

// --- name-list -----------------------------------------------------------------------------

Reader('nameList splits a name-list (RFC 4251 §5 example "zlib,none")', () => {
  const r = read(
    '00 00 00 09', // 9 bytes
    '7a 6c 69 62 2c 6e 6f 6e 65', // "zlib,none"
  );
  assert.equal(r.nameList(64, 8), ['zlib', 'none']);
});

Reader('nameList reads an empty list as no names (RFC 4251 §5 example "")', () => {
  assert.equal(read('00 00 00 00').nameList(64, 8), []);
});

Reader('nameList reads a single name (RFC 4251 §5 example "zlib")', () => {
  assert.equal(read('00 00 00 04', '7a 6c 69 62').nameList(64, 8), ['zlib']);
});

Reader('nameList keeps names with @, dots and dashes', () => {
  const s = 'kex-strict-c-v00@openssh.com,aes128-gcm@openssh.com';
  const r = new SshReader(Buffer.concat([hex(s.length.toString(16).padStart(8, '0')), Buffer.from(s)]));
  assert.equal(r.nameList(64, 8), ['kex-strict-c-v00@openssh.com', 'aes128-gcm@openssh.com']);
});

for (const [label, text] of [
  ['a lone comma', ','],
  ['a leading comma', ',zlib'],
  ['a trailing comma', 'zlib,'],
  ['two commas in a row', 'zlib,,none'],
] as const) {
  Reader(`nameList refuses an empty name: ${label}`, () => {
    const r = new SshReader(Buffer.concat([hex(text.length.toString(16).padStart(8, '0')), Buffer.from(text)]));
    malformed(() => r.nameList(64, 8, 'compression'), /compression has an empty name/);
  });
}

for (const [label, body] of [
  ['a space', '61 20 62'],
  ['a tab', '61 09 62'],
  ['a NUL', '61 00 62'],
  ['a CR', '61 0d'],
  ['DEL (0x7f)', '61 7f'],
  ['a byte above 0x7f', '61 e9'],
] as const) {
  Reader(`nameList refuses a non-printable character: ${label}`, () => {
    const len = hex(body).length.toString(16).padStart(8, '0');
    malformed(() => read(len, body).nameList(64, 8, 'kex_algorithms'), /kex_algorithms has a non-printable character/);
  });
}

Reader('nameList refuses a declared length over its byte cap before looking at the data', () => {
  const err = malformed(() => read('ff ff ff ff').nameList(8192, 128, 'kex_algorithms'));
  assert.match(err.message, /kex_algorithms of 4294967295 bytes exceeds the limit of 8192/);
});

Reader('nameList accepts exactly its byte cap', () => {
  assert.equal(read('00 00 00 03', '61 2c 62').nameList(3, 8), ['a', 'b']);
});

Reader('nameList refuses one name more than its cap', () => {
  // "a,b,c,d": 4 names against a cap of 3.
  malformed(() => read('00 00 00 07', '61 2c 62 2c 63 2c 64').nameList(64, 3, 'mac'), /mac has 4 names, the limit is 3/);
});

Reader('nameList accepts exactly its name cap', () => {
  assert.equal(read('00 00 00 05', '61 2c 62 2c 63').nameList(64, 3), ['a', 'b', 'c']);
});

Reader('nameList throws on a truncated list', () => {
  malformed(() => read('00 00 00 09', '7a 6c 69 62 2c').nameList(64, 8), /truncated/);
});

// --- mpint ---------------------------------------------------------------------------------

Reader('mpintBytes reads zero as the empty string (RFC 4251 §5 example 0)', () => {
  const r = read('00 00 00 00');
  assert.is(r.mpintBytes(32).length, 0);
  assert.is(r.remaining, 0);
});

Reader('mpintBytes reads a minimal positive value as is (RFC 4251 §5 example 9a378f9b2e332a7)', () => {
  const r = read(
    '00 00 00 08',
    '09 a3 78 f9 b2 e3 32 a7',
  );
  assert.is(Buffer.from(r.mpintBytes(32)).toString('hex'), '09a378f9b2e332a7');
});

Reader('mpintBytes strips the 0x00 that a set top bit needs (RFC 4251 §5 example 80)', () => {
  const buf = hex(
    '00 00 00 02',
    '00 80', // 0x80: the 00 keeps it positive
  );
  const m = new SshReader(buf).mpintBytes(32);
  assert.equal([...m], [0x80]);
  assert.is(m.buffer, buf.buffer); // still a view
});

Reader('mpintBytes refuses a negative value (RFC 4251 §5 example -1234)', () => {
  malformed(() => read('00 00 00 02', 'ed cc').mpintBytes(32, 'e'), /e is negative/);
});

Reader('mpintBytes refuses a negative value (RFC 4251 §5 example -deadbeef)', () => {
  malformed(() => read('00 00 00 05', 'ff 21 52 41 11').mpintBytes(32, 'e'), /e is negative/);
});

Reader('mpintBytes refuses a leading zero that is not needed', () => {
  malformed(
    () =>
      read(
        '00 00 00 02',
        '00 7f', // 0x7f needs no 00
      ).mpintBytes(32, 'f'),
    /f is not minimally encoded/,
  );
});

Reader('mpintBytes refuses zero written as one 0x00 byte', () => {
  malformed(() => read('00 00 00 01', '00').mpintBytes(32), /not minimally encoded/);
});

Reader('mpintBytes refuses two leading zeros before a high byte', () => {
  malformed(() => read('00 00 00 03', '00 00 80').mpintBytes(32), /not minimally encoded/);
});

Reader('mpintBytes accepts a magnitude of exactly maxBytes with its 0x00 prefix', () => {
  const m = read('00 00 00 05', '00 80 00 00 01').mpintBytes(4);
  assert.equal([...m], [0x80, 0, 0, 1]);
});

Reader('mpintBytes refuses a magnitude of maxBytes + 1 bytes that needs no prefix', () => {
  // 0x0100000001 is 5 bytes of magnitude against a cap of 4. The field is 5 bytes long, which
  // is exactly what a capped value with its 0x00 prefix may take, so only the first byte tells
  // the two apart.
  malformed(() => read('00 00 00 05', '01 00 00 00 01').mpintBytes(4, 'RSA exponent'), /RSA exponent/);
});

Reader('mpintBytes refuses a declared length over its cap before looking at the data', () => {
  const err = malformed(() => read('7f ff ff ff', '01').mpintBytes(512, 'e'));
  assert.match(err.message, /exceeds the limit/);
});

Reader('mpintBytes throws on a truncated body', () => {
  malformed(() => read('00 00 00 08', '09 a3 78').mpintBytes(32), /truncated/);
});

// --- rest, assertEnd, remaining ------------------------------------------------------------

Reader('rest returns what is left as a view and moves to the end', () => {
  const buf = hex('01', '02 03 04');
  const r = new SshReader(buf);
  r.u8();
  const rest = r.rest();
  assert.equal([...rest], [2, 3, 4]);
  assert.is(rest.buffer, buf.buffer);
  assert.is(r.remaining, 0);
  assert.is(r.rest().length, 0);
  r.assertEnd();
});

Reader('assertEnd passes when every byte was read', () => {
  const r = read('00 00 00 01', '61');
  r.bytes();
  r.assertEnd('SERVICE_REQUEST');
});

Reader('assertEnd throws with trailing bytes and says how many', () => {
  const r = read(
    '00 00 00 01', '61', // string "a"
    'de ad', // trailing
  );
  r.bytes();
  malformed(() => r.assertEnd('SERVICE_REQUEST'), /2 trailing bytes after SERVICE_REQUEST/);
});

Reader('remaining tracks every read inside a window', () => {
  const r = new SshReader(hex('ff', '01', '00 00 00 02', 'ff'), 1, 6);
  assert.is(r.remaining, 5);
  r.u8();
  assert.is(r.remaining, 4);
  r.u32();
  assert.is(r.remaining, 0);
  malformed(() => r.u8());
});

Reader.run();
