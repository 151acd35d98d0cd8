import { createCipheriv, createHmac, timingSafeEqual, type Cipher } from 'node:crypto';
import { MacError } from '../errors.js';
import type { OpeningKey, SealingKey } from './types.js';
import { unpooled } from '../unpooled.js';

/**
 * aes{128,192,256}-ctr (RFC 4344 §4) with an HMAC, in either of two compositions:
 *
 * encrypt-and-MAC (RFC 4253 §6.4: hmac-sha2-256, hmac-sha2-512, hmac-sha1)
 *   the whole packet, length included, is encrypted; mac = HMAC(seq ‖ plaintext packet).
 *   The receiver must decrypt the first block to learn the length, and decrypts everything
 *   before it can check the MAC. Padding covers the length (lengthAligned).
 *
 * encrypt-then-MAC (OpenSSH PROTOCOL §1.5: *-etm@openssh.com)
 *   packet_length stays in clear; mac = HMAC(seq ‖ packet_length ‖ ciphertext), checked
 *   before anything is decrypted. Padding leaves the length out.
 *
 * CTR's counter is continuous across packets (RFC 4344 §4), which is exactly what one
 * streaming OpenSSL cipher object per direction gives: it is created once from the KDF's IV
 * and never reset. node's `update` returns a new buffer, copied back into the packet.
 *
 * HMAC: a new createHmac per packet. bench/ciphers.ts found a prebuilt KeyObject and cloned
 * pre-keyed hashes (hash.copy()) no faster at 32 KiB, where the hashing itself dominates.
 * MACs are compared with timingSafeEqual so a forger learns nothing from timing.
 */

export type CtrAlgorithm = 'aes-128-ctr' | 'aes-192-ctr' | 'aes-256-ctr';
export type HmacHash = 'sha1' | 'sha256' | 'sha512';

/** The MAC half of one direction's keys, as index.ts resolves it from the negotiated name. */
export interface HmacSpec {
  readonly hash: HmacHash;
  readonly key: Uint8Array;
  readonly macLength: number;
  readonly etm: boolean;
}

const BLOCK = 16;
/**
 * The uint32 sequence number fed to the HMAC, rewritten for every packet. HMAC copies what it
 * is fed and nothing runs in between, so one buffer serves every key of the process.
 */
const SEQ = Buffer.alloc(4);

abstract class CtrHmacKey {
  readonly blockSize = BLOCK;
  readonly lengthAligned: boolean;
  readonly macLength: number;
  protected readonly cipher: Cipher;
  protected readonly etm: boolean;
  readonly #hash: HmacHash;
  /** Lives as long as the keys: kept out of the shared Buffer pool (unpooled.ts). */
  readonly #macKey: Buffer;

  constructor(cipher: Cipher, mac: HmacSpec) {
    this.cipher = cipher;
    this.etm = mac.etm;
    this.lengthAligned = !mac.etm;
    this.macLength = mac.macLength;
    this.#hash = mac.hash;
    this.#macKey = unpooled(mac.key);
  }

  /** HMAC(key, uint32 seq ‖ packet[0, end)); a new Buffer of `macLength` bytes. */
  protected mac(seq: number, packet: Buffer, end: number): Buffer {
    SEQ.writeUInt32BE(seq >>> 0, 0);
    return createHmac(this.#hash, this.#macKey).update(SEQ).update(packet.subarray(0, end)).digest();
  }
}

class CtrHmacSealingKey extends CtrHmacKey implements SealingKey {
  seal(seq: number, packet: Buffer): void {
    const end = packet.length - this.macLength;
    if (this.etm) {
      this.cipher.update(packet.subarray(4, end)).copy(packet, 4);
      this.mac(seq, packet, end).copy(packet, end);
    } else {
      // MAC over the plaintext first, then encrypt it; the MAC itself travels in clear.
      this.mac(seq, packet, end).copy(packet, end);
      this.cipher.update(packet.subarray(0, end)).copy(packet, 0);
    }
  }
}

class CtrHmacOpeningKey extends CtrHmacKey implements OpeningKey {
  readonly lengthBytes: number;
  /**
   * Encrypt-and-MAC only: the length `packetLength` decrypted, or -1. The first block is
   * decrypted exactly once per packet, because decrypting advances the shared CTR stream;
   * a second call before `open` returns this value instead of decrypting again.
   */
  #pendingLength = -1;

  constructor(cipher: Cipher, mac: HmacSpec) {
    super(cipher, mac);
    this.lengthBytes = mac.etm ? 4 : BLOCK;
  }

  packetLength(_seq: number, head: Buffer): number {
    if (this.etm) return head.readUInt32BE(0);
    if (this.#pendingLength < 0) {
      this.cipher.update(head.subarray(0, BLOCK)).copy(head, 0);
      this.#pendingLength = head.readUInt32BE(0);
    }
    return this.#pendingLength;
  }

  open(seq: number, packet: Buffer): Buffer {
    const end = packet.length - this.macLength;
    if (this.etm) {
      if (end < 4) throw new MacError();
      // Verify first: no ciphertext from a forger reaches the cipher.
      const mac = this.mac(seq, packet, end);
      if (!timingSafeEqual(mac, packet.subarray(end))) throw new MacError();
      this.cipher.update(packet.subarray(4, end)).copy(packet, 4);
      return packet.subarray(4, end);
    }
    if (this.#pendingLength < 0) {
      throw new Error('packetLength must decrypt the first block before open (encrypt-and-MAC)');
    }
    this.#pendingLength = -1;
    if (end < BLOCK) throw new MacError();
    // The first block is already plaintext (packetLength); the stream continues from there.
    this.cipher.update(packet.subarray(BLOCK, end)).copy(packet, BLOCK);
    const mac = this.mac(seq, packet, end);
    if (!timingSafeEqual(mac, packet.subarray(end))) throw new MacError();
    return packet.subarray(4, end);
  }
}

function ctrCipher(algorithm: CtrAlgorithm, key: Uint8Array, iv: Uint8Array): Cipher {
  const keyLength = algorithm === 'aes-128-ctr' ? 16 : algorithm === 'aes-192-ctr' ? 24 : 32;
  if (key.length !== keyLength) throw new RangeError(`${algorithm} needs a ${keyLength}-byte key`);
  if (iv.length !== BLOCK) throw new RangeError(`${algorithm} needs a 16-byte IV`);
  // CTR encryption and decryption are the same keystream XOR, so a Cipher serves both ways.
  return createCipheriv(algorithm, key, iv);
}

export function ctrHmacSealingKey(algorithm: CtrAlgorithm, key: Uint8Array, iv: Uint8Array, mac: HmacSpec): SealingKey {
  return new CtrHmacSealingKey(ctrCipher(algorithm, key, iv), mac);
}

export function ctrHmacOpeningKey(algorithm: CtrAlgorithm, key: Uint8Array, iv: Uint8Array, mac: HmacSpec): OpeningKey {
  return new CtrHmacOpeningKey(ctrCipher(algorithm, key, iv), mac);
}
