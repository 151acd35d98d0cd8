/**
 * chacha20-poly1305@openssh.com (OpenSSH PROTOCOL.chacha20poly1305, draft-ietf-sshm-chacha20-poly1305).
 *
 * Why these primitives: ChaCha20 comes from node:crypto (OpenSSL). node:crypto has no
 * standalone Poly1305: OpenSSL's runs only inside its RFC 8439 AEAD, whose tag also covers
 * padding and a length block that OpenSSH's layout lacks. So Poly1305 is @noble/ciphers',
 * the only implementation installed. bench/ciphers.ts puts it at ~270 MB/s against ~5.7 GB/s
 * for OpenSSL's inside that AEAD, and a float64 JavaScript variant we tried was only ~1.5x
 * noble, not worth owning a MAC for. Poly1305 is therefore nearly all of this cipher's cost
 * (~120 MB/s seal+open at 32 KiB, a tenth of AES-GCM); a WASM or native Poly1305 is the lever
 * if chacha20 throughput matters.
 *
 *   uint32   packet_length   encrypted with K_1 alone, so it can be read before the rest
 *   byte[]   padding_length ‖ payload ‖ padding   encrypted with K_2 from block counter 1
 *   byte[16] tag = Poly1305(K_2 keystream block 0 [0..32], encrypted length ‖ ciphertext)
 *
 * The 64 bytes of key material are K_2 (first 32, main) ‖ K_1 (last 32, length). The nonce is
 * the sequence number as a big-endian uint64. OpenSSL's 'chacha20' takes a 16-byte IV that is
 * the whole last row of the ChaCha state, so, as OpenSSH's cipher-chachapoly-libcrypto.c does,
 * it is built as u64le block counter ‖ u64be seqnr; with the counter below 2^32 that is also
 * the original (djb) 64-bit-nonce ChaCha20 the protocol specifies.
 *
 * Per packet: one cipher object for the length (K_1) and one for the rest (K_2); the K_2
 * stream is first run over 64 zero bytes to get block 0 (the Poly1305 key), which leaves it
 * at block 1 for the payload, saving a third object.
 */
import { createCipheriv, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { Poly1305 } from '@noble/ciphers/_poly1305.js';
import { MacError } from '../errors.js';
import type { OpeningKey, SealingKey } from './types.js';

const TAG = 16;
/** One ChaCha20 block of zeros: encrypting it yields keystream block 0. */
const BLOCK0 = new Uint8Array(64);

abstract class ChaChaPolyKey {
  readonly blockSize = 8;
  readonly lengthAligned = false;
  readonly macLength = TAG;
  protected readonly main: KeyObject;
  protected readonly header: KeyObject;
  /** u64le block counter (always 0 here) ‖ u64be seqnr; createCipheriv copies it. */
  protected readonly iv = Buffer.alloc(16);
  protected readonly tag = new Uint8Array(TAG);

  constructor(key: Uint8Array) {
    if (key.length !== 64) throw new RangeError('chacha20-poly1305@openssh.com needs 64 bytes of key');
    this.main = createSecretKey(key.subarray(0, 32));
    this.header = createSecretKey(key.subarray(32, 64));
  }

  /** Sets the nonce to `seq`; the sequence number is uint32, so the high half stays 0. */
  protected setSeq(seq: number): void {
    this.iv.writeUInt32BE(seq >>> 0, 12);
  }

  /** Poly1305 over encrypted length ‖ ciphertext (contiguous in the packet) into `this.tag`. */
  protected computeTag(polyKey: Buffer, packet: Buffer, end: number): void {
    new Poly1305(polyKey.subarray(0, 32)).update(packet.subarray(0, end)).digestInto(this.tag);
  }
}

class ChaChaPolySealingKey extends ChaChaPolyKey implements SealingKey {
  seal(seq: number, packet: Buffer): void {
    const end = packet.length - TAG;
    this.setSeq(seq);
    createCipheriv('chacha20', this.header, this.iv).update(packet.subarray(0, 4)).copy(packet, 0);
    const c = createCipheriv('chacha20', this.main, this.iv);
    const polyKey = c.update(BLOCK0);
    c.update(packet.subarray(4, end)).copy(packet, 4);
    this.computeTag(polyKey, packet, end);
    packet.set(this.tag, end);
  }
}

class ChaChaPolyOpeningKey extends ChaChaPolyKey implements OpeningKey {
  readonly lengthBytes = 4;
  readonly #len = Buffer.alloc(4);

  /**
   * Decrypts the length into a scratch buffer, never in place: the tag covers the encrypted
   * length, so `open` must still see it as it came off the wire.
   */
  packetLength(seq: number, head: Buffer): number {
    this.setSeq(seq);
    createCipheriv('chacha20', this.header, this.iv).update(head.subarray(0, 4)).copy(this.#len, 0);
    return this.#len.readUInt32BE(0);
  }

  open(seq: number, packet: Buffer): void {
    const end = packet.length - TAG;
    if (end < 4) throw new MacError();
    this.setSeq(seq);
    const c = createCipheriv('chacha20', this.main, this.iv);
    const polyKey = c.update(BLOCK0);
    this.computeTag(polyKey, packet, end);
    // Constant-time, and before any byte is decrypted: a forged packet reveals nothing.
    if (!timingSafeEqual(this.tag, packet.subarray(end))) throw new MacError();
    createCipheriv('chacha20', this.header, this.iv).update(packet.subarray(0, 4)).copy(packet, 0);
    c.update(packet.subarray(4, end)).copy(packet, 4);
  }
}

export function chachaPolySealingKey(key: Uint8Array): SealingKey {
  return new ChaChaPolySealingKey(key);
}

export function chachaPolyOpeningKey(key: Uint8Array): OpeningKey {
  return new ChaChaPolyOpeningKey(key);
}
