import { createECDH, createHash } from 'node:crypto';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ecdhNistKex } from '../../../src/transport/kex/ecdh-nist.js';
import { DISCONNECT } from '../../../src/transport/constants.js';
import { DisconnectError } from '../../../src/transport/errors.js';
import { MalformedError } from '../../../src/wire/errors.js';

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

function stringField(b: Uint8Array): Uint8Array {
  const out = Buffer.alloc(4 + b.length);
  out.writeUInt32BE(b.length, 0);
  out.set(b, 4);
  return out;
}

/** RFC 4251 §5 mpint of an unsigned big-endian magnitude, built by hand. */
function mpintField(magnitude: Uint8Array): Uint8Array {
  let i = 0;
  while (i < magnitude.length && magnitude[i] === 0) i++;
  const m = magnitude.subarray(i);
  const body = m.length > 0 && m[0]! & 0x80 ? Buffer.concat([Buffer.of(0), m]) : Buffer.from(m);
  return stringField(body);
}

function assertKexFailed(fn: () => unknown, message?: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.instance(caught, DisconnectError, 'expected DisconnectError');
  assert.is((caught as DisconnectError).reason, DISCONNECT.KEY_EXCHANGE_FAILED);
  if (message) assert.match((caught as DisconnectError).message, message);
}

/** Per method: the OpenSSL curve name (for an independent client), noble curve, field bytes, hash. */
const CASES = [
  { name: 'ecdh-sha2-nistp256', openssl: 'prime256v1', curve: p256, fieldLen: 32, hash: 'sha256' },
  { name: 'ecdh-sha2-nistp384', openssl: 'secp384r1', curve: p384, fieldLen: 48, hash: 'sha384' },
  { name: 'ecdh-sha2-nistp521', openssl: 'secp521r1', curve: p521, fieldLen: 66, hash: 'sha512' },
] as const;

/** A valid client point for a curve, from node:crypto. */
function clientPoint(openssl: string): Buffer {
  const c = createECDH(openssl);
  return c.generateKeys();
}

const Ecdh = suite('ecdh-nist');

Ecdh('round trip with node:crypto (OpenSSL) as the client: both sides get the same K', () => {
  for (const { name, openssl, fieldLen } of CASES) {
    const client = createECDH(openssl);
    const qc = client.generateKeys(); // uncompressed 0x04 || X || Y
    const ex = ecdhNistKex(name).exchange(stringField(qc));
    const qs = ex.serverField.subarray(4);
    assert.is(qs.length, 1 + 2 * fieldLen, `${name} Q_S length`);
    assert.is(qs[0], 0x04, `${name} Q_S is uncompressed`);
    const x = client.computeSecret(qs); // the x coordinate, fixed length
    assert.is(hex(ex.sharedSecret), hex(mpintField(x)), `${name} K`);
    assert.is(hex(ex.clientField), hex(stringField(qc)));
  }
});

Ecdh('each method uses its RFC 5656 §6.2.1 hash', () => {
  for (const { name, hash } of CASES) {
    const m = ecdhNistKex(name);
    assert.is(m.name, name);
    assert.is(m.hash, hash);
  }
});

Ecdh('Q_S is the fixed secret times the generator, and K is mpint(x) with leading zeros dropped', () => {
  // A P-256 scalar found by search so that the x of [s]G starts with 0x00; with G as Q_C, the
  // shared point is the server's own public point.
  const secret = createHash('sha256').update('p256-leading-zero-542').digest();
  const G = p256.Point.BASE.toBytes(false);
  const ex = ecdhNistKex('ecdh-sha2-nistp256', () => Uint8Array.from(secret)).exchange(stringField(G));
  const pub = p256.getPublicKey(secret, false);
  assert.is(hex(ex.serverField), hex(stringField(pub)));
  const x = pub.subarray(1, 33);
  assert.is(x[0], 0);
  assert.is(hex(ex.sharedSecret), hex(mpintField(x)));
  // x = 00 82 ..: the zero byte goes, and a new 0x00 comes back because 0x82 has the top bit set.
  assert.is(hex(ex.sharedSecret.subarray(0, 6)), '00000020' + '0082');
});

Ecdh('a point that is not on the curve is refused with KEY_EXCHANGE_FAILED', () => {
  for (const { name, openssl } of CASES) {
    const q = clientPoint(openssl);
    q[q.length - 1]! ^= 0x01; // change Y: the equation no longer holds
    assertKexFailed(() => ecdhNistKex(name).exchange(stringField(q)), /not a point on the curve/);
  }
});

Ecdh('a coordinate not below p is refused', () => {
  for (const { name, curve, fieldLen } of CASES) {
    const p = curve.Point.CURVE().p;
    const pBytes = Buffer.from(p.toString(16).padStart(fieldLen * 2, '0'), 'hex');
    const q = Buffer.concat([Buffer.of(4), pBytes, Buffer.alloc(fieldLen)]);
    assertKexFailed(() => ecdhNistKex(name).exchange(stringField(q)), /not a point on the curve/);
  }
});

Ecdh('a compressed point is refused, even though it is a valid point', () => {
  for (const { name, openssl } of CASES) {
    const c = createECDH(openssl);
    c.generateKeys();
    const compressed = c.getPublicKey(null, 'compressed');
    assert.ok(compressed[0] === 2 || compressed[0] === 3);
    assertKexFailed(() => ecdhNistKex(name).exchange(stringField(compressed)), /uncompressed point/);
  }
});

Ecdh('the hybrid form (tag 0x06/0x07) at full length is refused', () => {
  for (const { name, openssl } of CASES) {
    const q = clientPoint(openssl);
    q[0] = 0x06 | (q[q.length - 1]! & 1);
    assertKexFailed(() => ecdhNistKex(name).exchange(stringField(q)), /uncompressed point/);
  }
});

Ecdh('Q_C of the wrong length is refused', () => {
  for (const { name, openssl } of CASES) {
    const q = clientPoint(openssl);
    for (const bad of [new Uint8Array(0), q.subarray(0, q.length - 1), Buffer.concat([q, Buffer.of(0)])]) {
      assertKexFailed(() => ecdhNistKex(name).exchange(stringField(bad)), /uncompressed point/);
    }
    // A P-256 point offered to P-384 and so on: right form, wrong curve size.
    const other = q.length === 65 ? clientPoint('secp384r1') : clientPoint('prime256v1');
    assertKexFailed(() => ecdhNistKex(name).exchange(stringField(other)), /uncompressed point/);
  }
});

Ecdh('the point at infinity is refused in both of its possible encodings', () => {
  for (const { name, fieldLen } of CASES) {
    // SEC1 §2.3.3: infinity is the single byte 0x00.
    assertKexFailed(() => ecdhNistKex(name).exchange(stringField(Buffer.of(0))));
    // Some implementations write it as 0x04 with zero coordinates; (0, 0) is not on these curves.
    const zeros = Buffer.concat([Buffer.of(4), Buffer.alloc(2 * fieldLen)]);
    assertKexFailed(() => ecdhNistKex(name).exchange(stringField(zeros)));
  }
});

Ecdh('a truncated or over-long KEX_ECDH_INIT body is malformed', () => {
  const init = stringField(clientPoint('prime256v1'));
  const method = ecdhNistKex('ecdh-sha2-nistp256');
  assert.throws(() => method.exchange(init.subarray(0, 40)), (e: unknown) => e instanceof MalformedError);
  assert.throws(() => method.exchange(Buffer.concat([init, Buffer.of(1)])), (e: unknown) => e instanceof MalformedError);
});

Ecdh('each exchange uses a fresh server key', () => {
  const method = ecdhNistKex('ecdh-sha2-nistp256');
  const init = stringField(clientPoint('prime256v1'));
  assert.is.not(hex(method.exchange(init).serverField), hex(method.exchange(init).serverField));
});

Ecdh.run();
