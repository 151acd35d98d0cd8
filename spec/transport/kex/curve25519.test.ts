import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
} from 'node:crypto';
import { x25519 } from '@noble/curves/ed25519.js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { curve25519Kex } from '../../../src/transport/kex/curve25519.js';
import { DISCONNECT } from '../../../src/transport/constants.js';
import { DisconnectError } from '../../../src/transport/errors.js';
import { MalformedError } from '../../../src/wire/errors.js';

/** The repository root (this file runs from dist/spec/transport/kex). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const fixture = <T>(name: string): T => JSON.parse(readFileSync(path.join(ROOT, 'fixtures/vectors', name), 'utf8')) as T;

interface Rfc7748 {
  scalarMult: { scalar: string; u: string; output: string }[];
  iterated: { start: string; after1: string; after1000: string };
  dh: { alicePrivate: string; alicePublic: string; bobPrivate: string; bobPublic: string; shared: string };
}
interface LowOrder {
  points: { u: string; value: string }[];
}
const RFC = fixture<Rfc7748>('x25519-rfc7748.json');
const LOW = fixture<LowOrder>('x25519-low-order.json');

const unhex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** `string` field, built by hand rather than with SshWriter. */
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

/** A curve25519 method whose ephemeral secret is fixed, for the published vectors. */
const fixedKex = (secret: string) => curve25519Kex('curve25519-sha256', () => unhex(secret));

const Curve25519 = suite('curve25519');

Curve25519('RFC 7748 §5.2 vectors: K is the X25519 output read big-endian, as an mpint', () => {
  for (const v of RFC.scalarMult) {
    const ex = fixedKex(v.scalar).exchange(stringField(unhex(v.u)));
    assert.is(hex(ex.sharedSecret), hex(mpintField(unhex(v.output))));
    assert.is(hex(ex.clientField), hex(stringField(unhex(v.u))));
    assert.is(hex(ex.serverField), hex(stringField(x25519.getPublicKey(unhex(v.scalar)))));
  }
});

Curve25519('K gets a leading 0x00 when the first output byte has its top bit set', () => {
  const v = RFC.scalarMult[0]!; // output starts with 0xc3
  const ex = fixedKex(v.scalar).exchange(stringField(unhex(v.u)));
  assert.is(hex(ex.sharedSecret.subarray(0, 6)), '00000021' + '00c3');
  assert.is(hex(ex.sharedSecret.subarray(5)), v.output);
});

Curve25519('leading zero bytes of the X25519 output are dropped from K', () => {
  // A scalar found by search so that X25519(scalar, Alice's public) starts with 0x00.
  const secret = createHash('sha256').update('x25519-leading-zero-971').digest('hex');
  const ex = fixedKex(secret).exchange(stringField(unhex(RFC.dh.alicePublic)));
  const output = x25519.getSharedSecret(unhex(secret), unhex(RFC.dh.alicePublic));
  assert.is(output[0], 0);
  assert.is(hex(ex.sharedSecret), hex(mpintField(output)));
  assert.ok(ex.sharedSecret.length < 4 + 32, 'K is shorter than 32 bytes');
});

Curve25519('RFC 7748 §6.1: server with Bob\'s key and Alice as client agree on K', () => {
  const { dh } = RFC;
  const ex = fixedKex(dh.bobPrivate).exchange(stringField(unhex(dh.alicePublic)));
  assert.is(hex(ex.serverField), hex(stringField(unhex(dh.bobPublic))));
  assert.is(hex(ex.sharedSecret), hex(mpintField(unhex(dh.shared))));
  // And Alice's side, computed by the primitive, gives the same secret.
  assert.is(hex(x25519.getSharedSecret(unhex(dh.alicePrivate), unhex(dh.bobPublic))), dh.shared);
});

Curve25519('the X25519 primitive passes the RFC 7748 §5.2 iterated vectors (1 and 1000)', () => {
  let k = unhex(RFC.iterated.start);
  let u = unhex(RFC.iterated.start);
  for (let i = 1; i <= 1000; i++) {
    const r = x25519.scalarMult(k, u);
    u = k;
    k = r;
    if (i === 1) assert.is(hex(k), RFC.iterated.after1);
  }
  assert.is(hex(k), RFC.iterated.after1000);
});

Curve25519('every fixture point has order dividing 8 (checks the blocklist itself)', () => {
  const P = 2n ** 255n - 19n;
  const A = 486662n;
  const mod = (a: bigint) => ((a % P) + P) % P;
  for (const { u, value } of LOW.points) {
    const bytes = unhex(u);
    bytes[31]! &= 0x7f;
    let X = mod(BigInt('0x' + Buffer.from(bytes).reverse().toString('hex')));
    let Z = 1n;
    // Three x-only doublings (RFC 7748 §5 ladder formulas) reach Z = 0 iff [8]P is infinity.
    for (let i = 0; i < 3; i++) {
      const X2 = mod((X * X - Z * Z) ** 2n);
      const Z2 = mod(4n * X * Z * (X * X + A * X * Z + Z * Z));
      X = X2;
      Z = Z2;
    }
    assert.is(Z, 0n, `${value} should have order dividing 8`);
  }
});

Curve25519('every low-order u-coordinate is refused with KEY_EXCHANGE_FAILED', () => {
  const method = curve25519Kex('curve25519-sha256');
  for (const { u } of LOW.points) {
    assertKexFailed(() => method.exchange(stringField(unhex(u))), /low-order/);
    // X25519 masks bit 255 on input (RFC 7748 §5), so the same points come with it set.
    const high = unhex(u);
    high[31]! |= 0x80;
    assertKexFailed(() => method.exchange(stringField(high)), /low-order/);
  }
});

Curve25519('Q_C of the wrong length is refused with KEY_EXCHANGE_FAILED', () => {
  const method = curve25519Kex('curve25519-sha256');
  const good = x25519.getPublicKey(x25519.utils.randomSecretKey());
  for (const q of [new Uint8Array(0), good.subarray(0, 31), Buffer.concat([good, Buffer.of(0)]), new Uint8Array(64)]) {
    assertKexFailed(() => method.exchange(stringField(q)), new RegExp(`is ${q.length} bytes`));
  }
});

Curve25519('a truncated or over-long KEX_ECDH_INIT body is malformed', () => {
  const method = curve25519Kex('curve25519-sha256');
  const init = stringField(x25519.getPublicKey(x25519.utils.randomSecretKey()));
  assert.throws(() => method.exchange(init.subarray(0, 20)), (e: unknown) => e instanceof MalformedError);
  assert.throws(() => method.exchange(Buffer.concat([init, Buffer.of(0)])), (e: unknown) => e instanceof MalformedError);
  assert.throws(() => method.exchange(new Uint8Array(0)), (e: unknown) => e instanceof MalformedError);
});

Curve25519('round trip with node:crypto (OpenSSL) X25519 as the client', () => {
  for (const name of ['curve25519-sha256', 'curve25519-sha256@libssh.org'] as const) {
    const client = generateKeyPairSync('x25519');
    const qc = Buffer.from(client.publicKey.export({ format: 'jwk' }).x!, 'base64url');
    const ex = curve25519Kex(name).exchange(stringField(qc));
    const qs = ex.serverField.subarray(4);
    assert.is(qs.length, 32);
    const serverPublic = createPublicKey({
      key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(qs).toString('base64url') },
      format: 'jwk',
    });
    const k = diffieHellman({ privateKey: client.privateKey, publicKey: serverPublic });
    assert.is(hex(ex.sharedSecret), hex(mpintField(k)));
    assert.is(hex(ex.clientField), hex(stringField(qc)));
  }
});

Curve25519('both names are the same method with sha256', () => {
  for (const name of ['curve25519-sha256', 'curve25519-sha256@libssh.org'] as const) {
    const m = curve25519Kex(name);
    assert.is(m.name, name);
    assert.is(m.hash, 'sha256');
  }
});

Curve25519('each exchange uses a fresh server key', () => {
  const method = curve25519Kex('curve25519-sha256');
  const init = stringField(unhex(RFC.dh.alicePublic));
  const a = method.exchange(init);
  const b = method.exchange(init);
  assert.is.not(hex(a.serverField), hex(b.serverField));
  assert.is.not(hex(a.sharedSecret), hex(b.sharedSecret));
});

Curve25519('clientField is a copy, not a view of the packet', () => {
  const init = Buffer.from(stringField(unhex(RFC.dh.alicePublic)));
  const ex = curve25519Kex('curve25519-sha256').exchange(init);
  init.fill(0xaa);
  assert.is(hex(ex.clientField), hex(stringField(unhex(RFC.dh.alicePublic))));
});

Curve25519('the injected secret can be imported by OpenSSL too (vector sanity)', () => {
  // Guards the fixture: OpenSSL, an implementation independent of noble, agrees on §6.1.
  const b64 = (s: string) => Buffer.from(s, 'hex').toString('base64url');
  const bob = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64(RFC.dh.bobPrivate), x: b64(RFC.dh.bobPublic) }, format: 'jwk' });
  const alice = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64(RFC.dh.alicePublic) }, format: 'jwk' });
  assert.is(diffieHellman({ privateKey: bob, publicKey: alice }).toString('hex'), RFC.dh.shared);
});

Curve25519.run();
