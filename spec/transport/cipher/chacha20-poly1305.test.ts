import { createCipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Poly1305, poly1305 } from '@noble/ciphers/_poly1305.js';
import { chacha20orig } from '@noble/ciphers/chacha.js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createOpeningKey, createSealingKey } from '../../../src/transport/cipher/index.js';
import type { PacketProtection } from '../../../src/transport/cipher/types.js';
import { MacError } from '../../../src/transport/errors.js';

/** The repository root (this file runs from dist/spec/transport/cipher). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const fixture = <T>(name: string): T => JSON.parse(readFileSync(path.join(ROOT, 'fixtures/vectors', name), 'utf8')) as T;
const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

interface Rfc8439 {
  chacha20: { name: string; key: string; nonce: string; counter: number; plaintext: string; ciphertext: string }[];
  poly1305: { name: string; key: string; message: string; tag: string }[];
}
interface OpenSshVectors {
  vectors: { name: string; seq: number; key: string; plaintext: string; ciphertext: string; tag: string }[];
}

function makePacket(p: PacketProtection, payload: Uint8Array): Buffer {
  const covered = (p.lengthAligned ? 5 : 1) + payload.length;
  let pad = p.blockSize - (covered % p.blockSize);
  if (pad < 4) pad += p.blockSize;
  const packetLength = 1 + payload.length + pad;
  const buf = Buffer.alloc(4 + packetLength + p.macLength);
  buf.writeUInt32BE(packetLength, 0);
  buf[4] = pad;
  buf.set(payload, 5);
  randomBytes(pad).copy(buf, 5 + payload.length);
  return buf;
}

function keys(key: Uint8Array) {
  const k = { cipher: 'chacha20-poly1305@openssh.com', mac: null, key, iv: new Uint8Array(0), macKey: new Uint8Array(0) };
  return { seal: createSealingKey(k), open: createOpeningKey(k) };
}

/**
 * The construction rebuilt from @noble/ciphers alone (original ChaCha20 with a 64-bit nonce),
 * sharing no code with the implementation, which uses node:crypto's chacha20.
 */
function reference(key: Uint8Array, seq: number, plain: Uint8Array): Buffer {
  const k2 = key.subarray(0, 32);
  const k1 = key.subarray(32, 64);
  const nonce = new Uint8Array(8);
  new DataView(nonce.buffer).setUint32(4, seq);
  const out = Buffer.alloc(plain.length + 16);
  out.set(chacha20orig(k1, nonce, plain.subarray(0, 4)), 0);
  out.set(chacha20orig(k2, nonce, plain.subarray(4), undefined, 1), 4);
  const polyKey = chacha20orig(k2, nonce, new Uint8Array(32));
  out.set(poly1305(out.subarray(0, plain.length), polyKey), plain.length);
  return out;
}

const ChaChaPoly = suite('chacha20-poly1305');

ChaChaPoly('node chacha20 with IV = u32le counter ‖ nonce gives the RFC 8439 keystreams', () => {
  for (const v of fixture<Rfc8439>('chacha20-poly1305-rfc8439.json').chacha20) {
    const iv = Buffer.alloc(16);
    iv.writeUInt32LE(v.counter, 0);
    hex(v.nonce).copy(iv, 4);
    assert.is(createCipheriv('chacha20', hex(v.key), iv).update(hex(v.plaintext)).toString('hex'), v.ciphertext, v.name);
  }
});

ChaChaPoly('noble Poly1305 gives the RFC 8439 tags, edge cases included', () => {
  for (const v of fixture<Rfc8439>('chacha20-poly1305-rfc8439.json').poly1305) {
    const out = new Uint8Array(16);
    new Poly1305(hex(v.key)).update(hex(v.message)).digestInto(out);
    assert.is(toHex(out), v.tag, v.name);
  }
});

ChaChaPoly('the u64le counter ‖ u64be seqnr IV is the original 64-bit-nonce ChaCha20', () => {
  const key = randomBytes(32);
  for (const seq of [0, 1, 7, 0x12345678, 0xffffffff]) {
    for (const counter of [0, 1]) {
      const iv = Buffer.alloc(16);
      iv[0] = counter;
      iv.writeUInt32BE(seq, 12);
      const nonce = iv.subarray(8);
      const data = randomBytes(200);
      const got = createCipheriv('chacha20', key, iv).update(data);
      assert.is(got.toString('hex'), toHex(chacha20orig(key, nonce, data, undefined, counter)), `seq ${seq} counter ${counter}`);
    }
  }
});

ChaChaPoly('seal gives the draft-ietf-sshm-chacha20-poly1305 Appendix A packet', () => {
  for (const v of fixture<OpenSshVectors>('chacha20-poly1305-openssh.json').vectors) {
    const { seal } = keys(hex(v.key));
    const packet = Buffer.concat([hex(v.plaintext), Buffer.alloc(16)]);
    seal.seal(v.seq, packet);
    assert.is(packet.toString('hex'), v.ciphertext + v.tag, v.name);
  }
});

ChaChaPoly('packetLength and open recover the Appendix A plaintext; the head is not decrypted in place', () => {
  for (const v of fixture<OpenSshVectors>('chacha20-poly1305-openssh.json').vectors) {
    const { open } = keys(hex(v.key));
    const packet = hex(v.ciphertext + v.tag);
    assert.is(open.packetLength(v.seq, packet), hex(v.plaintext).readUInt32BE(0), v.name);
    assert.is(packet.subarray(0, 4).toString('hex'), v.ciphertext.slice(0, 8), 'encrypted length kept');
    open.open(v.seq, packet);
    assert.is(packet.subarray(0, packet.length - 16).toString('hex'), v.plaintext, v.name);
  }
});

ChaChaPoly('seal equals the independent noble construction across sizes and sequence numbers', () => {
  const key = randomBytes(64);
  const { seal } = keys(key);
  for (const [i, size] of [0, 1, 15, 16, 17, 100, 32768].entries()) {
    for (const seq of [i, 0x7fffffff + i, 0xffffffff - i]) {
      const packet = makePacket(seal, randomBytes(size));
      const want = reference(key, seq, packet.subarray(0, packet.length - 16));
      seal.seal(seq, packet);
      assert.ok(packet.equals(want), `size ${size} seq ${seq}`);
    }
  }
});

ChaChaPoly('a forged packet throws MacError before anything is decrypted', () => {
  const { seal, open } = keys(randomBytes(64));
  for (const at of [0, 3, 4, 20, -17, -16, -1]) {
    const packet = makePacket(seal, Buffer.from('attack at dawn'));
    seal.seal(9, packet);
    const i = at < 0 ? packet.length + at : at;
    packet[i]! ^= 0x01;
    const received = Buffer.from(packet);
    assert.throws(() => open.open(9, packet), (e: unknown) => e instanceof MacError, `byte ${i}`);
    assert.ok(packet.equals(received), `byte ${i}: packet left as received`);
  }
});

ChaChaPoly('the wrong sequence number throws MacError', () => {
  const { seal, open } = keys(randomBytes(64));
  const packet = makePacket(seal, new Uint8Array(64));
  seal.seal(41, packet);
  assert.throws(() => open.open(42, packet), (e: unknown) => e instanceof MacError);
});

ChaChaPoly('key material that is not 64 bytes is refused', () => {
  assert.throws(() => keys(randomBytes(32)), /64 bytes/);
});

ChaChaPoly.run();
