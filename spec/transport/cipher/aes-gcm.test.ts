import { createCipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gcm } from '@noble/ciphers/aes.js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createOpeningKey, createSealingKey } from '../../../src/transport/cipher/index.js';
import type { PacketProtection } from '../../../src/transport/cipher/types.js';
import { MacError } from '../../../src/transport/errors.js';

/** The repository root (this file runs from dist/spec/transport/cipher). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const fixture = <T>(name: string): T => JSON.parse(readFileSync(path.join(ROOT, 'fixtures/vectors', name), 'utf8')) as T;
const hex = (s: string): Buffer => Buffer.from(s, 'hex');

interface GcmVectors {
  vectors: { name: string; key: string; iv: string; plaintext: string; aad: string; ciphertext: string; tag: string }[];
}

/** A plaintext packet as the transport builds one: padding >= 4, aligned per `p`, room for the tag. */
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

function keys(name: 'aes128-gcm@openssh.com' | 'aes256-gcm@openssh.com', key: Uint8Array, iv: Uint8Array) {
  const k = { cipher: name, mac: null, key, iv, macKey: new Uint8Array(0) };
  return { seal: createSealingKey(k), open: createOpeningKey(k) };
}

const AesGcm = suite('aes-gcm');

AesGcm('node aes-gcm gives the McGrew-Viega ciphertexts and tags', () => {
  for (const v of fixture<GcmVectors>('aes-gcm-mcgrew-viega.json').vectors) {
    const algorithm = v.key.length === 32 ? 'aes-128-gcm' : 'aes-256-gcm';
    const c = createCipheriv(algorithm, hex(v.key), hex(v.iv));
    c.setAAD(hex(v.aad));
    const ct = Buffer.concat([c.update(hex(v.plaintext)), c.final()]);
    assert.is(ct.toString('hex'), v.ciphertext, v.name);
    assert.is(c.getAuthTag().toString('hex'), v.tag, v.name);
  }
});

AesGcm('seal equals an independent GCM with the length as AAD and the nonce counter stepped per packet', () => {
  for (const [name, keyLength] of [['aes128-gcm@openssh.com', 16], ['aes256-gcm@openssh.com', 32]] as const) {
    const key = randomBytes(keyLength);
    // The counter starts two below a carry out of its low 32 bits.
    const iv = hex('a1b2c3d400000000fffffffe');
    const { seal } = keys(name, key, iv);
    const nonce = Buffer.from(iv);
    for (let i = 0; i < 5; i++) {
      const packet = makePacket(seal, randomBytes(i * 7));
      const plain = Buffer.from(packet);
      seal.seal(1000 + i, packet);
      const body = plain.subarray(4, plain.length - 16);
      const want = gcm(key, nonce, plain.subarray(0, 4)).encrypt(body);
      assert.is(packet.subarray(0, 4).toString('hex'), plain.subarray(0, 4).toString('hex'), 'length in clear');
      assert.is(packet.subarray(4).toString('hex'), Buffer.from(want).toString('hex'), `packet ${i}`);
      nonce.writeUInt32BE((nonce.readUInt32BE(8) + 1) >>> 0, 8);
      if (nonce.readUInt32BE(8) === 0) nonce.writeUInt32BE(nonce.readUInt32BE(4) + 1, 4);
    }
    assert.is(nonce.toString('hex'), 'a1b2c3d40000000100000003', 'the carry reached the high word');
  }
});

AesGcm('the invocation counter wraps modulo 2^64 and leaves the fixed field alone', () => {
  const key = randomBytes(16);
  const { seal } = keys('aes128-gcm@openssh.com', key, hex('01020304ffffffffffffffff'));
  seal.seal(0, makePacket(seal, new Uint8Array(3)));
  const packet = makePacket(seal, new Uint8Array(3));
  const plain = Buffer.from(packet);
  seal.seal(1, packet);
  const want = gcm(key, hex('010203040000000000000000'), plain.subarray(0, 4)).encrypt(plain.subarray(4, plain.length - 16));
  assert.is(packet.subarray(4).toString('hex'), Buffer.from(want).toString('hex'));
});

AesGcm('a bad tag throws MacError and no plaintext reaches the packet', () => {
  const { seal, open } = keys('aes256-gcm@openssh.com', randomBytes(32), randomBytes(12));
  const packet = makePacket(seal, Buffer.from('secret payload'));
  seal.seal(3, packet);
  packet[packet.length - 1]! ^= 0x80;
  const received = Buffer.from(packet);
  assert.throws(() => open.open(3, packet), (e: unknown) => e instanceof MacError);
  assert.ok(packet.equals(received), 'packet left as received');
});

AesGcm('packetLength reads the clear length without changing the head', () => {
  const { seal, open } = keys('aes128-gcm@openssh.com', randomBytes(16), randomBytes(12));
  const packet = makePacket(seal, new Uint8Array(100));
  seal.seal(0, packet);
  const head = Buffer.from(packet.subarray(0, open.lengthBytes));
  assert.is(open.lengthBytes, 4);
  assert.is(open.packetLength(0, head), packet.length - 4 - 16);
  assert.ok(head.equals(packet.subarray(0, 4)));
});

AesGcm('a packet too short to hold a tag throws MacError', () => {
  const { open } = keys('aes128-gcm@openssh.com', randomBytes(16), randomBytes(12));
  assert.throws(() => open.open(0, Buffer.alloc(19)), (e: unknown) => e instanceof MacError);
});

AesGcm.run();
