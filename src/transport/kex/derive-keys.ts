import { KEX_HASHES, type KexHash } from './exchange-hash.js';

/** The key letters of RFC 4253 §7.2. */
export type KeyLetter = 'A' | 'B' | 'C' | 'D' | 'E' | 'F';

/**
 * One key of RFC 4253 §7.2:
 *
 *   K1 = HASH(K || H || X || session_id)
 *   K2 = HASH(K || H || K1)
 *   Kn+1 = HASH(K || H || K1 || ... || Kn)
 *   key = K1 || K2 || ... truncated to `length`
 *
 * `sharedSecret` is K already encoded as an mpint with its length prefix (KexExchange's
 * field); `H` is this exchange's hash and `sessionId` the first exchange's H.
 */
export function deriveKey(
  hash: KexHash,
  sharedSecret: Uint8Array,
  H: Uint8Array,
  letter: KeyLetter,
  sessionId: Uint8Array,
  length: number,
): Uint8Array {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`key length ${length} is not a byte count`);
  const out = new Uint8Array(length);
  if (length === 0) return out;

  // Every block starts with K || H, so hash that prefix once and clone it.
  const prefix = KEX_HASHES[hash].create().update(sharedSecret).update(H);
  const first = prefix.clone().update(Uint8Array.of(letter.charCodeAt(0))).update(sessionId).digest();
  let filled = copyInto(out, 0, first);
  // `acc` is K || H || K1 || ... || Kn so far; each extension block is a digest of a clone.
  // Only whole blocks are ever absorbed: a block is truncated only when it is the last.
  const acc = prefix;
  let block = first;
  while (filled < length) {
    acc.update(block);
    block = acc.clone().digest();
    filled = copyInto(out, filled, block);
  }
  acc.destroy();
  return out;
}

function copyInto(out: Uint8Array, at: number, block: Uint8Array): number {
  const n = Math.min(block.length, out.length - at);
  out.set(n === block.length ? block : block.subarray(0, n), at);
  return at + n;
}

/** Byte lengths of the six keys, as the negotiated cipher and MAC need them. */
export interface KeyLengths {
  ivC2S: number;
  ivS2C: number;
  keyC2S: number;
  keyS2C: number;
  macC2S: number;
  macS2C: number;
}

/** The six keys of RFC 4253 §7.2: IVs 'A'/'B', cipher keys 'C'/'D', MAC keys 'E'/'F'. */
export interface DerivedKeys {
  ivC2S: Uint8Array;
  ivS2C: Uint8Array;
  keyC2S: Uint8Array;
  keyS2C: Uint8Array;
  macC2S: Uint8Array;
  macS2C: Uint8Array;
}

export function deriveAll(
  hash: KexHash,
  sharedSecret: Uint8Array,
  H: Uint8Array,
  sessionId: Uint8Array,
  lengths: KeyLengths,
): DerivedKeys {
  return {
    ivC2S: deriveKey(hash, sharedSecret, H, 'A', sessionId, lengths.ivC2S),
    ivS2C: deriveKey(hash, sharedSecret, H, 'B', sessionId, lengths.ivS2C),
    keyC2S: deriveKey(hash, sharedSecret, H, 'C', sessionId, lengths.keyC2S),
    keyS2C: deriveKey(hash, sharedSecret, H, 'D', sessionId, lengths.keyS2C),
    macC2S: deriveKey(hash, sharedSecret, H, 'E', sessionId, lengths.macC2S),
    macS2C: deriveKey(hash, sharedSecret, H, 'F', sessionId, lengths.macS2C),
  };
}
