import { randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  CIPHERS,
  MACS,
  createOpeningKey,
  createSealingKey,
  noneOpeningKey,
  noneSealingKey,
} from '../../../src/transport/cipher/index.js';
import type { DirectionKeys, OpeningKey, PacketProtection, SealingKey } from '../../../src/transport/cipher/types.js';
import { MacError } from '../../../src/transport/errors.js';

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

/** Every cipher, and for the non-AEAD ones every MAC: the combinations negotiation can pick. */
function combinations(): DirectionKeys[] {
  const out: DirectionKeys[] = [];
  for (const [cipher, c] of Object.entries(CIPHERS)) {
    const macs = c.aead ? [null] : Object.keys(MACS);
    for (const mac of macs) {
      out.push({
        cipher,
        mac,
        key: randomBytes(c.keyLength),
        iv: randomBytes(c.ivLength),
        macKey: randomBytes(mac === null ? 0 : MACS[mac]!.keyLength),
      });
    }
  }
  return out;
}

const label = (k: DirectionKeys): string => (k.mac === null ? k.cipher : `${k.cipher} + ${k.mac}`);

/**
 * What the transport does with one received packet: read the length, check the size, open.
 * Returns the plaintext packet without its MAC: uint32 length ‖ the body `open` returned.
 */
function receive(open: OpeningKey, seq: number, wire: Buffer): Buffer {
  const head = wire.subarray(0, open.lengthBytes);
  const len = open.packetLength(seq, head);
  assert.is(4 + len + open.macLength, wire.length, 'packetLength');
  const body = open.open(seq, wire);
  assert.is(body.length, len, 'open returns packet_length bytes');
  const out = Buffer.alloc(4 + len);
  out.writeUInt32BE(len, 0);
  body.copy(out, 4);
  return out;
}

const SIZES = [0, 1, 15, 16, 17, 32768];

const Ciphers = suite('cipher factory');

Ciphers('CIPHERS lists the six ciphers with their key, IV and block sizes', () => {
  assert.equal(CIPHERS, {
    'chacha20-poly1305@openssh.com': { keyLength: 64, ivLength: 0, blockSize: 8, aead: true },
    'aes128-gcm@openssh.com': { keyLength: 16, ivLength: 12, blockSize: 16, aead: true },
    'aes256-gcm@openssh.com': { keyLength: 32, ivLength: 12, blockSize: 16, aead: true },
    'aes128-ctr': { keyLength: 16, ivLength: 16, blockSize: 16, aead: false },
    'aes192-ctr': { keyLength: 24, ivLength: 16, blockSize: 16, aead: false },
    'aes256-ctr': { keyLength: 32, ivLength: 16, blockSize: 16, aead: false },
  });
});

Ciphers('MACS lists the six HMACs with key and MAC lengths and EtM flags', () => {
  assert.equal(MACS, {
    'hmac-sha2-256-etm@openssh.com': { keyLength: 32, macLength: 32, etm: true },
    'hmac-sha2-512-etm@openssh.com': { keyLength: 64, macLength: 64, etm: true },
    'hmac-sha1-etm@openssh.com': { keyLength: 20, macLength: 20, etm: true },
    'hmac-sha2-256': { keyLength: 32, macLength: 32, etm: false },
    'hmac-sha2-512': { keyLength: 64, macLength: 64, etm: false },
    'hmac-sha1': { keyLength: 20, macLength: 20, etm: false },
  });
});

Ciphers('each key reports the alignment, MAC length and head size of its construction', () => {
  for (const k of combinations()) {
    const seal = createSealingKey(k);
    const open = createOpeningKey(k);
    const info = CIPHERS[k.cipher]!;
    const mac = k.mac === null ? null : MACS[k.mac]!;
    const etm = mac?.etm ?? false;
    const want = {
      blockSize: info.blockSize,
      lengthAligned: !info.aead && !etm,
      macLength: mac?.macLength ?? 16,
    };
    for (const p of [seal, open]) {
      assert.equal({ blockSize: p.blockSize, lengthAligned: p.lengthAligned, macLength: p.macLength }, want, label(k));
    }
    assert.is(open.lengthBytes, !info.aead && !etm ? 16 : 4, label(k));
  }
});

Ciphers('seal then open round-trips every combination, size and sequence number in one stream', () => {
  for (const k of combinations()) {
    const seal = createSealingKey(k);
    const open = createOpeningKey(k);
    // Several rounds of every size on one pair of keys: CTR's counter and GCM's invocation
    // counter must stay in step across packets, and the sequence number crosses 2^32.
    let seq = 0xfffffff0;
    for (let round = 0; round < 4; round++) {
      for (const size of SIZES) {
        const payload = randomBytes(size);
        const packet = makePacket(seal, payload);
        const plain = Buffer.from(packet.subarray(0, packet.length - seal.macLength));
        seal.seal(seq, packet);
        if (size >= 16) assert.not.ok(packet.includes(payload.subarray(0, 16)), `${label(k)}: payload not in clear`);
        assert.ok(receive(open, seq, packet).equals(plain), `${label(k)} size ${size} seq ${seq}`);
        seq = (seq + 1) >>> 0;
      }
    }
  }
});

Ciphers('a flipped bit anywhere in length, body or MAC throws MacError', () => {
  for (const k of combinations()) {
    const probe = createSealingKey(k);
    const length = makePacket(probe, new Uint8Array(17)).length;
    for (let i = 0; i < length; i++) {
      // Fresh keys per trial: a stream cipher's position must not carry over from a failure.
      const seal = createSealingKey(k);
      const open = createOpeningKey(k);
      const packet = makePacket(seal, randomBytes(17));
      seal.seal(1234, packet);
      packet[i]! ^= 1 << (i % 8);
      assert.throws(
        () => {
          // A flipped length bit changes what packetLength returns; the transport would then
          // read a different number of bytes. Opening the bytes as sent shows that the MAC or
          // tag covers the length too.
          open.packetLength(1234, packet.subarray(0, open.lengthBytes));
          open.open(1234, packet);
        },
        (e: unknown) => e instanceof MacError,
        `${label(k)} byte ${i}`,
      );
    }
  }
});

Ciphers('opening under the wrong sequence number throws MacError', () => {
  for (const k of combinations()) {
    // AES-GCM does not use the sequence number; the invocation counter binds order instead.
    if (k.cipher.includes('-gcm@')) continue;
    const seal = createSealingKey(k);
    const open = createOpeningKey(k);
    const packet = makePacket(seal, randomBytes(33));
    seal.seal(100, packet);
    // Under chacha20-poly1305 the length is keyed by the sequence number too, so packetLength
    // returns garbage; the bytes as sent must still fail to open.
    assert.throws(
      () => {
        open.packetLength(101, packet.subarray(0, open.lengthBytes));
        open.open(101, packet);
      },
      (e: unknown) => e instanceof MacError,
      label(k),
    );
  }
});

Ciphers('AES-GCM refuses a packet opened out of order (the invocation counter is out of step)', () => {
  for (const k of combinations().filter((c) => c.cipher.includes('-gcm@'))) {
    const seal = createSealingKey(k);
    const open = createOpeningKey(k);
    const first = makePacket(seal, randomBytes(20));
    const second = makePacket(seal, randomBytes(20));
    seal.seal(0, first);
    seal.seal(1, second);
    assert.throws(() => receive(open, 0, second), (e: unknown) => e instanceof MacError, label(k));
  }
});

Ciphers('the none keys pass packets through unchanged with 8-byte, length-aligned padding', () => {
  const seal: SealingKey = noneSealingKey();
  const open: OpeningKey = noneOpeningKey();
  for (const p of [seal, open]) {
    assert.equal({ blockSize: p.blockSize, lengthAligned: p.lengthAligned, macLength: p.macLength }, { blockSize: 8, lengthAligned: true, macLength: 0 });
  }
  assert.is(open.lengthBytes, 4);
  for (const size of SIZES) {
    const packet = makePacket(seal, randomBytes(size));
    assert.is(packet.length % 8, 0);
    const plain = Buffer.from(packet);
    seal.seal(size, packet);
    assert.ok(packet.equals(plain));
    assert.ok(receive(open, size, packet).equals(plain));
  }
});

Ciphers('unknown ciphers, missing MACs and wrong key sizes are refused', () => {
  const ctr = { cipher: 'aes128-ctr', mac: 'hmac-sha2-256', key: randomBytes(16), iv: randomBytes(16), macKey: randomBytes(32) };
  assert.throws(() => createSealingKey({ ...ctr, cipher: 'aes128-cbc' }), /unsupported cipher/);
  assert.throws(() => createOpeningKey({ ...ctr, cipher: 'toString' }), /unsupported cipher/);
  assert.throws(() => createSealingKey({ ...ctr, mac: null }), /needs a supported MAC/);
  assert.throws(() => createOpeningKey({ ...ctr, mac: 'hmac-md5' }), /needs a supported MAC/);
  assert.throws(() => createSealingKey({ ...ctr, macKey: randomBytes(20) }), /32-byte key/);
  const gcm = { cipher: 'aes256-gcm@openssh.com', mac: null, key: randomBytes(16), iv: randomBytes(12), macKey: new Uint8Array(0) };
  assert.throws(() => createSealingKey(gcm), /32-byte key/);
  assert.throws(() => createOpeningKey({ ...gcm, key: randomBytes(32), iv: randomBytes(16) }), /12-byte IV/);
});

Ciphers.run();
