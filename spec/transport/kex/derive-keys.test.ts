import { createHash, randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { deriveAll, deriveKey, type KeyLetter } from '../../../src/transport/kex/derive-keys.js';
import type { KexHash } from '../../../src/transport/kex/exchange-hash.js';

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const sha = (alg: string, ...parts: (Uint8Array | string)[]): Buffer => {
  const h = createHash(alg);
  for (const p of parts) h.update(p);
  return h.digest();
};

/** An independent RFC 4253 §7.2 expansion with node:crypto, written as the RFC states it. */
function referenceKey(alg: KexHash, K: Uint8Array, H: Uint8Array, X: string, sid: Uint8Array, len: number): Buffer {
  let key = sha(alg, K, H, X, sid);
  while (key.length < len) key = Buffer.concat([key, sha(alg, K, H, key)]);
  return key.subarray(0, len);
}

// K as the transport passes it: mpint-encoded with its length prefix (a top-bit-set value).
const K = Buffer.concat([Buffer.from('0000002100', 'hex'), Buffer.alloc(32, 0xc3)]);
const H = sha('sha256', 'exchange hash of this key exchange');
const SID = sha('sha256', 'exchange hash of the first key exchange');

const Derive = suite('derive-keys');

Derive('a key longer than one digest is K1 || K2 with K2 = HASH(K || H || K1) (hand-built)', () => {
  const K1 = sha('sha256', K, H, 'C', SID);
  const K2 = sha('sha256', K, H, K1);
  const K3 = sha('sha256', K, H, K1, K2);
  // session_id is only in K1; the extension blocks hash K || H || K1 || ... (RFC 4253 §7.2).
  assert.is(hex(deriveKey('sha256', K, H, 'C', SID, 32)), hex(K1));
  assert.is(hex(deriveKey('sha256', K, H, 'C', SID, 64)), hex(Buffer.concat([K1, K2])));
  assert.is(hex(deriveKey('sha256', K, H, 'C', SID, 40)), hex(Buffer.concat([K1, K2]).subarray(0, 40)));
  assert.is(hex(deriveKey('sha256', K, H, 'C', SID, 80)), hex(Buffer.concat([K1, K2, K3]).subarray(0, 80)));
});

Derive('a key shorter than one digest is the start of K1', () => {
  const K1 = sha('sha512', K, H, 'A', SID);
  assert.is(hex(deriveKey('sha512', K, H, 'A', SID, 12)), hex(K1.subarray(0, 12)));
  assert.is(deriveKey('sha512', K, H, 'A', SID, 0).length, 0);
});

Derive('matches an independent node:crypto expansion for every hash, letter and length', () => {
  const letters: KeyLetter[] = ['A', 'B', 'C', 'D', 'E', 'F'];
  for (const alg of ['sha256', 'sha384', 'sha512'] as const) {
    for (let trial = 0; trial < 4; trial++) {
      const k = Buffer.concat([Buffer.from('00000020', 'hex'), randomBytes(32)]);
      const h = randomBytes(alg === 'sha256' ? 32 : alg === 'sha384' ? 48 : 64);
      const sid = trial === 0 ? h : randomBytes(h.length); // first exchange: session_id = H
      for (const letter of letters) {
        for (const len of [1, 12, 16, 31, 32, 33, 48, 63, 64, 65, 96, 128, 129, 200]) {
          assert.is(hex(deriveKey(alg, k, h, letter, sid, len)), hex(referenceKey(alg, k, h, letter, sid, len)), `${alg} ${letter} ${len}`);
        }
      }
    }
  }
});

Derive('deriveAll uses A/B for IVs, C/D for cipher keys and E/F for MAC keys, at the given lengths', () => {
  const lengths = { ivC2S: 12, ivS2C: 16, keyC2S: 32, keyS2C: 64, macC2S: 0, macS2C: 20 };
  const keys = deriveAll('sha256', K, H, SID, lengths);
  const want = {
    ivC2S: referenceKey('sha256', K, H, 'A', SID, 12),
    ivS2C: referenceKey('sha256', K, H, 'B', SID, 16),
    keyC2S: referenceKey('sha256', K, H, 'C', SID, 32),
    keyS2C: referenceKey('sha256', K, H, 'D', SID, 64),
    macC2S: Buffer.alloc(0),
    macS2C: referenceKey('sha256', K, H, 'F', SID, 20),
  };
  for (const field of Object.keys(want) as (keyof typeof want)[]) {
    assert.is(hex(keys[field]), hex(want[field]), field);
  }
});

Derive('different letters, H or session ids give different keys', () => {
  const base = hex(deriveKey('sha256', K, H, 'C', SID, 32));
  assert.is.not(hex(deriveKey('sha256', K, H, 'D', SID, 32)), base);
  assert.is.not(hex(deriveKey('sha256', K, SID, 'C', SID, 32)), base);
  assert.is.not(hex(deriveKey('sha256', K, H, 'C', H, 32)), base);
});

Derive('a negative or fractional length is a RangeError', () => {
  assert.throws(() => deriveKey('sha256', K, H, 'A', SID, -1), RangeError);
  assert.throws(() => deriveKey('sha256', K, H, 'A', SID, 1.5), RangeError);
});

Derive.run();
