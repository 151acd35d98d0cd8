import { createDiffieHellman, getDiffieHellman } from 'node:crypto';
import { x25519 } from '@noble/curves/ed25519.js';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KEX_METHODS } from '../../../src/transport/kex/index.js';

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
function str(b: Uint8Array): Buffer {
  const out = Buffer.alloc(4 + b.length);
  out.writeUInt32BE(b.length, 0);
  out.set(b, 4);
  return out;
}
function mpint(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length && magnitude[i] === 0) i++;
  const m = Buffer.from(magnitude.subarray(i));
  return str(m.length > 0 && m[0]! & 0x80 ? Buffer.concat([Buffer.of(0), m]) : m);
}

/** Method name → hash (RFC 8731 §3, RFC 5656 §6.2.1, RFC 8268 §3). */
const EXPECTED = {
  'curve25519-sha256': 'sha256',
  'curve25519-sha256@libssh.org': 'sha256',
  'ecdh-sha2-nistp256': 'sha256',
  'ecdh-sha2-nistp384': 'sha384',
  'ecdh-sha2-nistp521': 'sha512',
  'diffie-hellman-group16-sha512': 'sha512',
  'diffie-hellman-group18-sha512': 'sha512',
  'diffie-hellman-group14-sha256': 'sha256',
} as const;

/**
 * A simulated client per method: noble for the curves (node:crypto's clients are in the
 * per-method suites), node:crypto for the MODP groups. Returns the init body and the
 * client's own K, encoded as an mpint, from the server's reply field.
 */
function client(name: keyof typeof EXPECTED): { init: Buffer; k: (serverField: Uint8Array) => Buffer } {
  if (name.startsWith('curve25519')) {
    const sk = x25519.utils.randomSecretKey();
    return { init: str(x25519.getPublicKey(sk)), k: (sf) => mpint(x25519.getSharedSecret(sk, sf.subarray(4))) };
  }
  if (name.startsWith('ecdh-sha2-')) {
    const curve = { 'ecdh-sha2-nistp256': p256, 'ecdh-sha2-nistp384': p384, 'ecdh-sha2-nistp521': p521 }[name as 'ecdh-sha2-nistp256']!;
    const sk = curve.utils.randomSecretKey();
    return {
      init: str(curve.getPublicKey(sk, false)),
      k: (sf) => mpint(curve.getSharedSecret(sk, sf.subarray(4), true).subarray(1)),
    };
  }
  const group = { 'diffie-hellman-group14-sha256': 'modp14', 'diffie-hellman-group16-sha512': 'modp16', 'diffie-hellman-group18-sha512': 'modp18' }[name as 'diffie-hellman-group14-sha256']!;
  const dh = createDiffieHellman(getDiffieHellman(group).getPrime(), 2);
  return { init: mpint(dh.generateKeys()), k: (sf) => mpint(dh.computeSecret(sf.subarray(4))) };
}

const Index = suite('kex/index');

Index('KEX_METHODS offers exactly the eight methods, curves first', () => {
  assert.equal(Object.keys(KEX_METHODS), Object.keys(EXPECTED));
});

Index('each factory returns a method with its own name and hash', () => {
  for (const [name, hash] of Object.entries(EXPECTED)) {
    const m = KEX_METHODS[name]!();
    assert.is(m.name, name);
    assert.is(m.hash, hash);
  }
});

Index('round trip for every method: server and simulated client compute the same K', () => {
  for (const name of Object.keys(EXPECTED) as (keyof typeof EXPECTED)[]) {
    const c = client(name);
    const ex = KEX_METHODS[name]!().exchange(c.init);
    assert.is(hex(ex.clientField), hex(c.init), `${name} clientField`);
    assert.is(hex(c.k(ex.serverField)), hex(ex.sharedSecret), `${name} K`);
  }
});

Index('every call of a factory gives a new method object', () => {
  for (const name of Object.keys(EXPECTED)) {
    assert.is.not(KEX_METHODS[name]!(), KEX_METHODS[name]!());
  }
});

Index('names from Object.prototype are not methods', () => {
  for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
    assert.is(KEX_METHODS[name], undefined, name);
  }
  assert.not.ok('diffie-hellman-group14-sha1' in KEX_METHODS);
});

Index('the table cannot be changed at run time', () => {
  assert.ok(Object.isFrozen(KEX_METHODS));
});

Index.run();
