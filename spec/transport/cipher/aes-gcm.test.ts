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

AesGcm('sealTo writes length, ciphertext and tag: the bytes of seal and of an independent GCM, the packet untouched', () => {
  for (const [name, keyLength] of [['aes128-gcm@openssh.com', 16], ['aes256-gcm@openssh.com', 32]] as const) {
    const key = randomBytes(keyLength);
    const iv = hex('a1b2c3d400000000fffffffe');
    // Twin keys in step: one seals in place, the other writes pieces.
    const inPlace = keys(name, key, iv).seal;
    const { seal } = keys(name, key, iv);
    const nonce = Buffer.from(iv);
    for (const size of [0, 1, 15, 16, 17, 100, 32768 + 9]) {
      const packet = makePacket(seal, randomBytes(size));
      const length = packet.length - 16;
      // A buffer larger than the packet, as allocPacketUpTo gives: the bytes after `length` are not read.
      const roomy = Buffer.alloc(length + 100, 0x5a);
      packet.copy(roomy, 0, 0, length);
      const before = Buffer.from(roomy);
      const pieces: Buffer[] = [];
      seal.sealTo!(0, roomy, length, { write: (b: Buffer) => pieces.push(b) });
      assert.equal(pieces.map((p) => p.length), [4, length - 4, 16], `pieces, size ${size}`);
      assert.ok(roomy.equals(before), 'the packet buffer is left as it was');
      const wire = Buffer.concat(pieces);
      const want = Buffer.from(gcm(key, nonce, packet.subarray(0, 4)).encrypt(packet.subarray(4, length)));
      assert.is(wire.subarray(4).toString('hex'), want.toString('hex'), `independent GCM, size ${size}`);
      inPlace.seal(0, packet);
      assert.ok(wire.equals(packet), `seal in place, size ${size}`);
      nonce.writeUInt32BE((nonce.readUInt32BE(8) + 1) >>> 0, 8);
      if (nonce.readUInt32BE(8) === 0) nonce.writeUInt32BE(nonce.readUInt32BE(4) + 1, 4);
    }
  }
});

AesGcm('sealTo gives the McGrew-Viega ciphertext and tag for a packet-shaped vector (4-byte AAD)', () => {
  // Test case 3's key, nonce and plaintext; the AAD is the uint32 packet length, so the
  // expected output comes from node's GCM checked against the published vectors above.
  const v = fixture<GcmVectors>('aes-gcm-mcgrew-viega.json').vectors.find((x) => x.key.length === 32 && x.iv.length === 24 && x.aad === '' && x.plaintext.length === 128);
  assert.ok(v, 'a vector with a 128-bit key, 96-bit IV, 64-byte plaintext and no AAD');
  const plain = hex(v!.plaintext);
  const packet = Buffer.alloc(4 + plain.length);
  packet.writeUInt32BE(plain.length, 0);
  plain.copy(packet, 4);
  const { seal } = keys('aes128-gcm@openssh.com', hex(v!.key), hex(v!.iv));
  const pieces: Buffer[] = [];
  seal.sealTo!(0, packet, packet.length, { write: (b: Buffer) => pieces.push(b) });
  // The ciphertext is AAD-independent: it must be the published one.
  assert.is(pieces[1]!.toString('hex'), v!.ciphertext);
  const c = createCipheriv('aes-128-gcm', hex(v!.key), hex(v!.iv));
  c.setAAD(packet.subarray(0, 4));
  c.update(plain);
  c.final();
  assert.is(pieces[2]!.toString('hex'), c.getAuthTag().toString('hex'));
  assert.is(pieces[0]!.toString('hex'), packet.subarray(0, 4).toString('hex'));
});

AesGcm('open returns the plaintext body in a buffer of its own and leaves the packet as received', () => {
  const { seal, open } = keys('aes128-gcm@openssh.com', randomBytes(16), randomBytes(12));
  for (const size of [0, 33, 32768]) {
    const packet = makePacket(seal, randomBytes(size));
    const plain = Buffer.from(packet.subarray(0, packet.length - 16));
    seal.seal(0, packet);
    const received = Buffer.from(packet);
    const body = open.open(0, packet);
    assert.ok(body.equals(plain.subarray(4)), `body, size ${size}`);
    assert.ok(packet.equals(received), 'packet not written to');
    assert.is.not(body.buffer, packet.buffer);
  }
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
