import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ctr } from '@noble/ciphers/aes.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha1 } from '@noble/hashes/legacy.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createOpeningKey, createSealingKey } from '../../../src/transport/cipher/index.js';
import type { PacketProtection } from '../../../src/transport/cipher/types.js';
import { MacError } from '../../../src/transport/errors.js';

/** The repository root (this file runs from dist/spec/transport/cipher). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const fixture = <T>(name: string): T => JSON.parse(readFileSync(path.join(ROOT, 'fixtures/vectors', name), 'utf8')) as T;
const hex = (s: string): Buffer => Buffer.from(s, 'hex');

interface CtrVectors {
  vectors: { name: string; key: string; iv: string; plaintext: string; ciphertext: string }[];
}
interface HmacVectors {
  vectors: { name: string; hash: 'sha1' | 'sha256' | 'sha512'; key: string; data: string; mac: string }[];
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

const CTR_NAMES = { 16: 'aes128-ctr', 24: 'aes192-ctr', 32: 'aes256-ctr' } as const;
const MAC_KEYS = { 'hmac-sha1': 20, 'hmac-sha2-256': 32, 'hmac-sha2-512': 64 } as const;
const NOBLE_HASH = { 'hmac-sha1': sha1, 'hmac-sha2-256': sha256, 'hmac-sha2-512': sha512 } as const;
type BaseMac = keyof typeof MAC_KEYS;

function keys(cipher: string, mac: string, key: Uint8Array, iv: Uint8Array, macKey: Uint8Array) {
  const k = { cipher, mac, key, iv, macKey };
  return { seal: createSealingKey(k), open: createOpeningKey(k) };
}

/** uint32 seq ‖ data, the input to every SSH MAC. */
function macInput(seq: number, data: Uint8Array): Buffer {
  const b = Buffer.alloc(4 + data.length);
  b.writeUInt32BE(seq, 0);
  b.set(data, 4);
  return b;
}

const CtrHmac = suite('aes-ctr-hmac');

CtrHmac('encrypt-and-MAC seal gives the SP 800-38A ciphertexts, split over two packets', () => {
  for (const v of fixture<CtrVectors>('aes-ctr-sp800-38a.json').vectors) {
    const key = hex(v.key);
    const name = CTR_NAMES[key.length as 16 | 24 | 32];
    const { seal } = keys(name, 'hmac-sha2-256', key, hex(v.iv), randomBytes(32));
    // encrypt-and-MAC encrypts the whole packet, so its bytes are exactly the CTR stream's input;
    // the second packet only matches if the counter carried on from the first.
    const pt = hex(v.plaintext);
    let out = '';
    for (const part of [pt.subarray(0, 32), pt.subarray(32)]) {
      const packet = Buffer.concat([part, Buffer.alloc(32)]);
      seal.seal(0, packet);
      out += packet.subarray(0, 32).toString('hex');
    }
    assert.is(out, v.ciphertext, v.name);
  }
});

CtrHmac('node createHmac gives the RFC 4231 and RFC 2202 MACs', () => {
  for (const v of fixture<HmacVectors>('hmac-rfc4231-rfc2202.json').vectors) {
    const mac = createHmac(v.hash, hex(v.key)).update(hex(v.data)).digest('hex');
    assert.is(mac.slice(0, v.mac.length), v.mac, `${v.name} ${v.hash}`);
  }
});

CtrHmac('seal equals independent noble CTR + HMAC for every MAC, in both compositions', () => {
  for (const base of Object.keys(MAC_KEYS) as BaseMac[]) {
    for (const etm of [false, true]) {
      const mac = etm ? `${base}-etm@openssh.com` : base;
      const key = randomBytes(32);
      const iv = randomBytes(16);
      const macKey = randomBytes(MAC_KEYS[base]);
      const { seal } = keys('aes256-ctr', mac, key, iv, macKey);
      // One noble CTR stream over everything the sealing key encrypts, packet after packet.
      const plainStream: Buffer[] = [];
      const sealed: Buffer[] = [];
      const macs: string[] = [];
      for (let i = 0; i < 6; i++) {
        const seq = (0xfffffffd + i) >>> 0; // crosses the uint32 wrap
        const packet = makePacket(seal, randomBytes(i * 11));
        const end = packet.length - seal.macLength;
        const plain = Buffer.from(packet.subarray(0, end));
        seal.seal(seq, packet);
        plainStream.push(etm ? plain.subarray(4) : plain);
        sealed.push(etm ? packet.subarray(4, end) : packet.subarray(0, end));
        if (etm) assert.ok(packet.subarray(0, 4).equals(plain.subarray(0, 4)), 'EtM leaves the length in clear');
        const macData = etm ? packet.subarray(0, end) : plain;
        macs.push(Buffer.from(hmac(NOBLE_HASH[base], macKey, macInput(seq, macData))).toString('hex'));
        assert.is(packet.subarray(end).toString('hex'), macs[i], `${mac} packet ${i} MAC`);
      }
      const want = ctr(key, iv).encrypt(Buffer.concat(plainStream));
      assert.is(Buffer.concat(sealed).toString('hex'), Buffer.from(want).toString('hex'), `${mac} CTR stream`);
    }
  }
});

CtrHmac('encrypt-and-MAC packetLength decrypts the first block in place and open continues from it', () => {
  const { seal, open } = keys('aes128-ctr', 'hmac-sha2-256', randomBytes(16), randomBytes(16), randomBytes(32));
  assert.is(open.lengthBytes, 16);
  const packet = makePacket(seal, Buffer.from('hello, world'));
  const plain = Buffer.from(packet);
  seal.seal(5, packet);
  assert.is(open.packetLength(5, packet), plain.readUInt32BE(0));
  assert.ok(packet.subarray(0, 16).equals(plain.subarray(0, 16)), 'first block is plaintext now');
  // A repeated call must not run the CTR stream over the block a second time.
  assert.is(open.packetLength(5, packet), plain.readUInt32BE(0));
  open.open(5, packet);
  const end = packet.length - open.macLength;
  assert.ok(packet.subarray(0, end).equals(plain.subarray(0, end)));
});

CtrHmac('encrypt-and-MAC open without packetLength first is a programming error, not a MAC error', () => {
  const { seal, open } = keys('aes128-ctr', 'hmac-sha1', randomBytes(16), randomBytes(16), randomBytes(20));
  const packet = makePacket(seal, new Uint8Array(8));
  seal.seal(0, packet);
  assert.throws(() => open.open(0, packet), (e: unknown) => e instanceof Error && !(e instanceof MacError));
});

CtrHmac('EtM checks the MAC before decrypting: a forged packet is left as received', () => {
  const { seal, open } = keys('aes192-ctr', 'hmac-sha2-512-etm@openssh.com', randomBytes(24), randomBytes(16), randomBytes(64));
  assert.is(open.lengthBytes, 4);
  const packet = makePacket(seal, Buffer.from('transfer $100'));
  seal.seal(77, packet);
  packet[10]! ^= 0x04;
  const received = Buffer.from(packet);
  assert.throws(() => open.open(77, packet), (e: unknown) => e instanceof MacError);
  assert.ok(packet.equals(received));
});

CtrHmac('EtM packetLength reads the clear length without touching the head', () => {
  const { seal, open } = keys('aes128-ctr', 'hmac-sha2-256-etm@openssh.com', randomBytes(16), randomBytes(16), randomBytes(32));
  const packet = makePacket(seal, new Uint8Array(40));
  seal.seal(1, packet);
  const head = Buffer.from(packet.subarray(0, 4));
  assert.is(open.packetLength(1, head), packet.length - 4 - 32);
  assert.ok(head.equals(packet.subarray(0, 4)));
});

CtrHmac('keys of the wrong length are refused', () => {
  assert.throws(() => keys('aes128-ctr', 'hmac-sha2-256', randomBytes(32), randomBytes(16), randomBytes(32)), /16-byte key/);
  assert.throws(() => keys('aes128-ctr', 'hmac-sha2-256', randomBytes(16), randomBytes(12), randomBytes(32)), /16-byte IV/);
  assert.throws(() => keys('aes128-ctr', 'hmac-sha2-256', randomBytes(16), randomBytes(16), randomBytes(20)), /32-byte key/);
});

CtrHmac.run();
