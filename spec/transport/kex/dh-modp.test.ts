import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDiffieHellman, getDiffieHellman } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DH_EXPONENT_BITS, dhModpKex, type ModpName } from '../../../src/transport/kex/dh-modp.js';
import { DISCONNECT } from '../../../src/transport/constants.js';
import { DisconnectError } from '../../../src/transport/errors.js';
import { MalformedError } from '../../../src/wire/errors.js';

/** The repository root (this file runs from dist/spec/transport/kex). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
interface Rfc3526 {
  groups: { node: 'modp14' | 'modp16' | 'modp18'; kex: ModpName; bits: number; k: number }[];
}
const RFC3526 = JSON.parse(readFileSync(path.join(ROOT, 'fixtures/vectors/modp-rfc3526.json'), 'utf8')) as Rfc3526;

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

function stringField(b: Uint8Array): Buffer {
  const out = Buffer.alloc(4 + b.length);
  out.writeUInt32BE(b.length, 0);
  out.set(b, 4);
  return out;
}

/** RFC 4251 §5 mpint of an unsigned big-endian magnitude, built by hand. */
function mpintField(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length && magnitude[i] === 0) i++;
  const m = magnitude.subarray(i);
  const body = m.length > 0 && m[0]! & 0x80 ? Buffer.concat([Buffer.of(0), m]) : Buffer.from(m);
  return stringField(body);
}

function bigToBytes(v: bigint): Buffer {
  if (v === 0n) return Buffer.alloc(0);
  let h = v.toString(16);
  if (h.length & 1) h = '0' + h;
  return Buffer.from(h, 'hex');
}

const mpintBig = (v: bigint): Buffer => mpintField(bigToBytes(v));

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

/** floor(pi * 2^bits) by Machin's formula, pi = 16 atan(1/5) - 4 atan(1/239), with guard bits. */
function piScaled(bits: number): bigint {
  const guard = 64n;
  const one = 1n << (BigInt(bits) + guard);
  const atanInv = (x: bigint): bigint => {
    let sum = 0n;
    let term = one / x;
    let n = 1n;
    let sign = 1n;
    while (term !== 0n) {
      sum += (sign * term) / n;
      term /= x * x;
      n += 2n;
      sign = -sign;
    }
    return sum;
  };
  return (16n * atanInv(5n) - 4n * atanInv(239n)) >> guard;
}

const primeOf = (node: string): bigint => BigInt('0x' + getDiffieHellman(node).getPrime('hex'));

const HASH: Record<ModpName, string> = {
  'diffie-hellman-group14-sha256': 'sha256',
  'diffie-hellman-group16-sha512': 'sha512',
  'diffie-hellman-group18-sha512': 'sha512',
};

/** A method whose exponent source records whether it was ever asked for one. */
function watched(name: ModpName): { method: ReturnType<typeof dhModpKex>; called: () => boolean } {
  let called = false;
  const method = dhModpKex(name, () => {
    called = true;
    return Uint8Array.of(0x80, 1);
  });
  return { method, called: () => called };
}

const Modp = suite('dh-modp');

Modp('node:crypto modp14/16/18 are the RFC 3526 primes, rebuilt from the RFC formula', () => {
  for (const g of RFC3526.groups) {
    const n = BigInt(g.bits);
    const p = 2n ** n - 2n ** (n - 64n) - 1n + 2n ** 64n * (piScaled(g.bits - 130) + BigInt(g.k));
    assert.is(primeOf(g.node) === p, true, `${g.node} is the RFC 3526 ${g.bits}-bit prime`);
    assert.is(getDiffieHellman(g.node).getGenerator('hex'), '02');
  }
});

Modp('round trip with node:crypto as the client: both sides get the same K', () => {
  for (const g of RFC3526.groups) {
    const client = createDiffieHellman(getDiffieHellman(g.node).getPrime(), 2);
    const e = client.generateKeys();
    const method = dhModpKex(g.kex);
    assert.is(method.name, g.kex);
    assert.is(method.hash, HASH[g.kex]);
    const ex = method.exchange(mpintField(e));
    assert.is(hex(ex.clientField), hex(mpintField(e)));
    // Read f back the way a client would: mpint magnitude.
    const fLen = ex.serverField.subarray(0, 4);
    const f = ex.serverField.subarray(4);
    assert.is(Buffer.from(fLen).readUInt32BE(0), f.length);
    const k = client.computeSecret(f);
    assert.is(hex(ex.sharedSecret), hex(mpintField(k)), `${g.kex} K`);
  }
});

Modp('the default exponent is 512 bits and each exchange uses a fresh one', () => {
  assert.is(DH_EXPONENT_BITS, 512);
  const client = getDiffieHellman('modp14');
  const init = mpintField(client.generateKeys());
  const method = dhModpKex('diffie-hellman-group14-sha256');
  assert.is.not(hex(method.exchange(init).serverField), hex(method.exchange(init).serverField));
});

Modp('f is 2^x mod p for the server exponent', () => {
  const x = Uint8Array.of(0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef);
  const p = primeOf('modp14');
  let f = 1n;
  let base = 2n;
  for (let bits = BigInt('0x' + hex(x)); bits > 0n; bits >>= 1n) {
    if (bits & 1n) f = (f * base) % p;
    base = (base * base) % p;
  }
  const init = mpintBig(5n);
  const ex = dhModpKex('diffie-hellman-group14-sha256', () => Uint8Array.from(x)).exchange(init);
  assert.is(hex(ex.serverField), hex(mpintBig(f)));
});

Modp('K gets a leading 0x00 when its top bit is set, and none otherwise', () => {
  // With e = 2 and x = 2047, K = 2^2047 < p: a 256-byte magnitude whose top bit is set.
  const init = mpintBig(2n);
  const set = dhModpKex('diffie-hellman-group14-sha256', () => Uint8Array.of(0x07, 0xff)).exchange(init);
  const expected = Buffer.concat([Buffer.from('00000101' + '00' + '80', 'hex'), Buffer.alloc(255)]);
  assert.is(hex(set.sharedSecret), hex(expected));
  // x = 2046 gives 0x40 00 .. 00: the top bit is clear, so no padding byte.
  const clear = dhModpKex('diffie-hellman-group14-sha256', () => Uint8Array.of(0x07, 0xfe)).exchange(init);
  assert.is(hex(clear.sharedSecret), hex(Buffer.concat([Buffer.from('00000100' + '40', 'hex'), Buffer.alloc(255)])));
});

Modp('e = 0, 1, p - 1, p and p + 1 are refused with KEY_EXCHANGE_FAILED before any work', () => {
  for (const g of RFC3526.groups) {
    const p = primeOf(g.node);
    for (const [e, why] of [
      [0n, /e is 0/],
      [1n, /e is 1/],
      [p - 1n, /not below p - 1/],
      [p, /not below p - 1/],
      [p + 1n, /not below p - 1/],
      [2n ** BigInt(g.bits) - 1n, /not below p - 1/],
    ] as const) {
      const w = watched(g.kex);
      assertKexFailed(() => w.method.exchange(mpintBig(e)), why);
      assert.is(w.called(), false, 'no exponent was drawn');
    }
  }
});

Modp('e = 2 and e = p - 2, the ends of the valid range, are accepted', () => {
  const p = primeOf('modp14');
  for (const e of [2n, p - 2n]) {
    const ex = dhModpKex('diffie-hellman-group14-sha256').exchange(mpintBig(e));
    assert.is(hex(ex.clientField), hex(mpintBig(e)));
  }
});

Modp('an e longer than the modulus is refused before any work', () => {
  for (const g of RFC3526.groups) {
    const bytes = g.bits / 8;
    for (const len of [bytes + 1, bytes + 2, 2 * bytes, 100_000]) {
      const body = Buffer.alloc(len, 0x11); // a positive value with no leading zero
      const w = watched(g.kex);
      assertKexFailed(() => w.method.exchange(stringField(body)), /longer than the|not below p/);
      assert.is(w.called(), false, 'no exponent was drawn');
    }
  }
});

Modp('a negative or non-minimal e is refused', () => {
  const method = dhModpKex('diffie-hellman-group14-sha256');
  assertKexFailed(() => method.exchange(stringField(Buffer.of(0x80, 1))), /negative/);
  assertKexFailed(() => method.exchange(stringField(Buffer.of(0xff))), /negative/);
  assertKexFailed(() => method.exchange(stringField(Buffer.of(0))), /minimal/);
  assertKexFailed(() => method.exchange(stringField(Buffer.of(0, 5))), /minimal/);
  assertKexFailed(() => method.exchange(stringField(Buffer.of(0, 0, 0x85))), /minimal/);
});

Modp('a truncated or over-long KEXDH_INIT body is malformed', () => {
  const method = dhModpKex('diffie-hellman-group14-sha256');
  const init = mpintBig(12345n);
  assert.throws(() => method.exchange(init.subarray(0, 5)), (e: unknown) => e instanceof MalformedError);
  assert.throws(() => method.exchange(Buffer.concat([init, Buffer.of(0)])), (e: unknown) => e instanceof MalformedError);
  // A declared length far beyond the body is a short read, not an allocation.
  assert.throws(() => method.exchange(Buffer.from('ffffffff01', 'hex')), (e: unknown) => e instanceof MalformedError);
});

Modp.run();
