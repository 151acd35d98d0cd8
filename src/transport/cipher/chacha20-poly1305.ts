/**
 * chacha20-poly1305@openssh.com (OpenSSH PROTOCOL.chacha20poly1305, draft-ietf-sshm-chacha20-poly1305).
 *
 * Why these primitives: ChaCha20 comes from node:crypto (OpenSSL). node:crypto has no
 * standalone Poly1305: OpenSSL's runs only inside its RFC 8439 AEAD, whose tag also covers
 * padding and a length block that OpenSSH's layout lacks. @noble/ciphers' pure-JS Poly1305
 * manages ~270 MB/s (bench/ciphers.ts), which made the MAC nearly all of this cipher's cost
 * (~120 MB/s seal+open at 32 KiB, a tenth of AES-GCM), and OpenSSH clients pick this cipher
 * first. So Poly1305 is our own, in WebAssembly (poly1305-wasm.ts, built from
 * wasm/poly1305.c by scripts/build-wasm.sh): ~1.6 GB/s, about 6x noble, which takes seal+open
 * to ~420 MB/s, 3.5x what it was (OpenSSL's ChaCha20 and Poly1305 now cost about the same).
 * noble's Poly1305 stays the independent reference in the tests.
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
 * Per packet, two cipher objects: one for the length (K_1) and one for the rest (K_2). The K_2
 * object starts at block 0 and is first run over 64 zero bytes: the first 32 bytes of that
 * keystream block are the Poly1305 key and the other 32 are discarded, which leaves the same
 * object at block 1 for the payload. On the opening side `packetLength` keeps the length it
 * decrypted, so `open` reuses it instead of building a third object.
 */
import { createCipheriv, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { MacError } from '../errors.js';
import { poly1305Tag } from './poly1305-wasm.js';
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

  /**
   * Poly1305 over encrypted length ‖ ciphertext (contiguous in the packet) into `this.tag`;
   * the key is the first 32 bytes of keystream block 0 (the other 32 are unused).
   */
  protected computeTag(block0: Buffer, packet: Buffer, end: number): void {
    poly1305Tag(block0.subarray(0, 32), packet.subarray(0, end), this.tag);
  }
}

class ChaChaPolySealingKey extends ChaChaPolyKey implements SealingKey {
  seal(seq: number, packet: Buffer): void {
    const end = packet.length - TAG;
    this.setSeq(seq);
    createCipheriv('chacha20', this.header, this.iv).update(packet.subarray(0, 4)).copy(packet, 0);
    const c = createCipheriv('chacha20', this.main, this.iv);
    const block0 = c.update(BLOCK0);
    c.update(packet.subarray(4, end)).copy(packet, 4);
    this.computeTag(block0, packet, end);
    packet.set(this.tag, end);
  }
}

class ChaChaPolyOpeningKey extends ChaChaPolyKey implements OpeningKey {
  readonly lengthBytes = 4;
  /** The last length `packetLength` decrypted, with the sequence number and wire bytes it came from. */
  readonly #len = Buffer.alloc(4);
  readonly #lenWire = Buffer.alloc(4);
  #lenSeq = -1;

  /**
   * Decrypts the length into a scratch buffer, never in place: the tag covers the encrypted
   * length, so `open` must still see it as it came off the wire.
   */
  packetLength(seq: number, head: Buffer): number {
    this.setSeq(seq);
    createCipheriv('chacha20', this.header, this.iv).update(head.subarray(0, 4)).copy(this.#len, 0);
    head.copy(this.#lenWire, 0, 0, 4);
    this.#lenSeq = seq >>> 0;
    return this.#len.readUInt32BE(0);
  }

  open(seq: number, packet: Buffer): Buffer {
    const end = packet.length - TAG;
    if (end < 4) throw new MacError();
    this.setSeq(seq);
    const c = createCipheriv('chacha20', this.main, this.iv);
    const block0 = c.update(BLOCK0);
    this.computeTag(block0, packet, end);
    // Constant-time, and before any byte is decrypted: a forged packet reveals nothing.
    if (!timingSafeEqual(this.tag, packet.subarray(end))) throw new MacError();
    // The transport always asks for the length first, so the plaintext length is usually known
    // already; it is reused only for the same seq and the same (public) encrypted bytes.
    if (this.#lenSeq === seq >>> 0 && this.#lenWire.equals(packet.subarray(0, 4))) {
      this.#len.copy(packet, 0);
    } else {
      createCipheriv('chacha20', this.header, this.iv).update(packet.subarray(0, 4)).copy(packet, 0);
    }
    this.#lenSeq = -1;
    c.update(packet.subarray(4, end)).copy(packet, 4);
    return packet.subarray(4, end);
  }
}

export function chachaPolySealingKey(key: Uint8Array): SealingKey {
  return new ChaChaPolySealingKey(key);
}

export function chachaPolyOpeningKey(key: Uint8Array): OpeningKey {
  return new ChaChaPolyOpeningKey(key);
}
