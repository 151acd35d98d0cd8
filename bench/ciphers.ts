/**
 * Binary-packet cipher and MAC throughput: seal + open of 32 KiB-payload packets per algorithm,
 * our node:crypto implementations against @noble alternatives, and the primitive choices
 * behind src/transport/cipher (Poly1305: noble's pure JS against our WebAssembly one and the
 * OpenSSL ceiling; HMAC keying; GCM key import).
 *
 * Run: npx tsc -p . && node dist/bench/ciphers.js [--rounds N] [--ms N]
 *
 * The machine is small and noisy (2 vCPUs, ±30 %), so cases in a group run interleaved in
 * rounds of a fixed time each, and the figure is the median round. Ratios compare cases of
 * the same group measured in the same rounds. MB/s counts payload bytes once per seal+open.
 * Not a test: nothing here asserts a speed.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createSecretKey,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import { gcm, ctr } from '@noble/ciphers/aes.js';
import { chacha20orig } from '@noble/ciphers/chacha.js';
import { Poly1305, poly1305 } from '@noble/ciphers/_poly1305.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { CIPHERS, MACS, createOpeningKey, createSealingKey } from '../src/transport/cipher/index.js';
import { poly1305Tag } from '../src/transport/cipher/poly1305-wasm.js';
import type { PacketProtection } from '../src/transport/cipher/types.js';

const PAYLOAD = 32 * 1024;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const ROUNDS = arg('--rounds', 5);
const ROUND_MS = arg('--ms', 150);

interface Case {
  name: string;
  /** One unit of work (one packet sealed and opened, or one MAC) over PAYLOAD bytes. */
  run: () => void;
}

function mbPerSecond(c: Case, ms: number): number {
  const stop = performance.now() + ms;
  let n = 0;
  const t0 = performance.now();
  do {
    c.run();
    n++;
  } while (performance.now() < stop);
  return (n * PAYLOAD) / ((performance.now() - t0) / 1000) / 1e6;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
};

/** Runs `cases` interleaved and prints MB/s and the ratio to `cases[0]`. */
function group(title: string, cases: Case[]): number[] {
  for (const c of cases) mbPerSecond(c, 50); // warm-up: JIT and OpenSSL contexts
  const samples = cases.map(() => [] as number[]);
  for (let r = 0; r < ROUNDS; r++) cases.forEach((c, i) => samples[i]!.push(mbPerSecond(c, ROUND_MS)));
  const med = samples.map(median);
  const width = Math.max(...cases.map((c) => c.name.length));
  console.log(`\n${title}`);
  console.log(`  ${'case'.padEnd(width)}  ${'MB/s'.padStart(7)}  ratio`);
  cases.forEach((c, i) => {
    const ratio = i === 0 ? '1.00 (reference)' : (med[i]! / med[0]!).toFixed(2);
    console.log(`  ${c.name.padEnd(width)}  ${med[i]!.toFixed(0).padStart(7)}  ${ratio}`);
  });
  return med;
}

function makePacket(p: PacketProtection, payloadLength: number): Buffer {
  const covered = (p.lengthAligned ? 5 : 1) + payloadLength;
  let pad = p.blockSize - (covered % p.blockSize);
  if (pad < 4) pad += p.blockSize;
  const packetLength = 1 + payloadLength + pad;
  const buf = randomBytes(4 + packetLength + p.macLength);
  buf.writeUInt32BE(packetLength, 0);
  buf[4] = pad;
  return buf;
}

/** Our seal + open of one packet, the way the transport drives them. */
function ours(cipher: string, mac: string | null): Case {
  const info = CIPHERS[cipher]!;
  const k = {
    cipher,
    mac,
    key: randomBytes(info.keyLength),
    iv: randomBytes(info.ivLength),
    macKey: randomBytes(mac === null ? 0 : MACS[mac]!.keyLength),
  };
  const seal = createSealingKey(k);
  const open = createOpeningKey(k);
  const packet = makePacket(seal, PAYLOAD);
  const head = packet.subarray(0, open.lengthBytes);
  let seq = 0;
  return {
    name: mac === null ? cipher : `${cipher} + ${mac}`,
    run: () => {
      seal.seal(seq, packet);
      open.packetLength(seq, head);
      open.open(seq, packet);
      seq = (seq + 1) >>> 0;
    },
  };
}

// ---- @noble-only versions of the same constructions, for comparison ----

function nobleGcm(keyLength: 16 | 32): Case {
  const key = randomBytes(keyLength);
  const nonce = randomBytes(12);
  const packet = makePacket({ blockSize: 16, lengthAligned: false, macLength: 16 }, PAYLOAD);
  const aad = packet.subarray(0, 4);
  const body = packet.subarray(4, packet.length - 16);
  return {
    name: `@noble gcm (aes${keyLength * 8})`,
    run: () => {
      const sealed = gcm(key, nonce, aad).encrypt(body);
      gcm(key, nonce, aad).decrypt(sealed);
      nonce[11] = (nonce[11]! + 1) & 0xff;
    },
  };
}

function nobleChaChaPoly(): Case {
  const key = randomBytes(64);
  const k2 = key.subarray(0, 32);
  const k1 = key.subarray(32);
  const nonce = new Uint8Array(8);
  const packet = makePacket({ blockSize: 8, lengthAligned: false, macLength: 16 }, PAYLOAD);
  const end = packet.length - 16;
  const zeros = new Uint8Array(32);
  return {
    name: '@noble chacha20orig + poly1305',
    run: () => {
      chacha20orig(k1, nonce, packet.subarray(0, 4), packet.subarray(0, 4));
      chacha20orig(k2, nonce, packet.subarray(4, end), packet.subarray(4, end), 1);
      packet.set(poly1305(packet.subarray(0, end), chacha20orig(k2, nonce, zeros)), end);
      const tag = poly1305(packet.subarray(0, end), chacha20orig(k2, nonce, zeros));
      if (!timingSafeEqual(tag, packet.subarray(end))) throw new Error('tag');
      chacha20orig(k1, nonce, packet.subarray(0, 4), packet.subarray(0, 4));
      chacha20orig(k2, nonce, packet.subarray(4, end), packet.subarray(4, end), 1);
    },
  };
}

function nobleCtrEtm(): Case {
  const key = randomBytes(16);
  const iv = randomBytes(16);
  const macKey = randomBytes(32);
  const packet = makePacket({ blockSize: 16, lengthAligned: false, macLength: 32 }, PAYLOAD);
  const end = packet.length - 32;
  return {
    name: '@noble ctr + hmac(sha256), EtM',
    run: () => {
      // noble's ctr is one-shot, so a fresh instance per packet stands in for the stream.
      packet.set(ctr(key, iv).encrypt(packet.subarray(4, end)), 4);
      packet.set(hmac(sha256, macKey, packet.subarray(0, end)), end);
      const mac = hmac(sha256, macKey, packet.subarray(0, end));
      if (!timingSafeEqual(mac, packet.subarray(end))) throw new Error('mac');
      packet.set(ctr(key, iv).decrypt(packet.subarray(4, end)), 4);
    },
  };
}

// ---- primitives behind the implementation choices ----

function poly1305Cases(): Case[] {
  const data = randomBytes(PAYLOAD);
  const key = randomBytes(32);
  const out = new Uint8Array(16);
  const aeadKey = randomBytes(32);
  const nonce = randomBytes(12);
  // The MAC input of a 32 KiB-payload packet: 4-byte length plus the rest, a view into a buffer.
  const packet = randomBytes(4 + PAYLOAD + 16);
  const macInput = packet.subarray(0, 4 + PAYLOAD);
  return [
    { name: '@noble Poly1305 (pure JS)', run: () => new Poly1305(key).update(data).digestInto(out) },
    // Includes the copy of the message into wasm memory, as the cipher uses it.
    { name: 'WebAssembly Poly1305 (ours, poly1305-wasm.ts)', run: () => poly1305Tag(key, macInput, out) },
    {
      // OpenSSL's Poly1305 is reachable only inside its RFC 8439 AEAD; with the data as AAD and
      // no plaintext this is Poly1305 plus one ChaCha20 block: the native ceiling, unusable
      // for SSH because the tag covers padding and lengths OpenSSH's layout does not have.
      name: 'OpenSSL Poly1305 via IETF AEAD (AAD only)',
      run: () => {
        const c = createCipheriv('chacha20-poly1305', aeadKey, nonce, { authTagLength: 16 });
        c.setAAD(data, { plaintextLength: 0 });
        c.final();
        c.getAuthTag();
      },
    },
  ];
}

function hmacCases(hash: 'sha256' | 'sha512'): Case[] {
  const key = randomBytes(hash === 'sha256' ? 32 : 64);
  const keyObject = createSecretKey(key);
  const seq = Buffer.alloc(4);
  const data = randomBytes(PAYLOAD);
  const blockLength = hash === 'sha256' ? 64 : 128;
  const ipad = Buffer.alloc(blockLength, 0x36);
  const opad = Buffer.alloc(blockLength, 0x5c);
  for (let i = 0; i < key.length; i++) {
    ipad[i]! ^= key[i]!;
    opad[i]! ^= key[i]!;
  }
  const inner = createHash(hash).update(ipad);
  const outer = createHash(hash).update(opad);
  const nobleHash = hash === 'sha256' ? sha256 : sha512;
  return [
    { name: `createHmac(${hash}, Buffer key) per packet (ours)`, run: () => createHmac(hash, key).update(seq).update(data).digest() },
    { name: `createHmac(${hash}, KeyObject) per packet`, run: () => createHmac(hash, keyObject).update(seq).update(data).digest() },
    {
      name: `pre-keyed ${hash} states, hash.copy() per packet`,
      run: () => outer.copy().update(inner.copy().update(seq).update(data).digest()).digest(),
    },
    { name: `@noble hmac(${hash})`, run: () => hmac.create(nobleHash, key).update(seq).update(data).digest() },
  ];
}

function gcmKeyCases(): Case[] {
  const key = randomBytes(16);
  const keyObject = createSecretKey(key);
  const nonce = randomBytes(12);
  const aad = randomBytes(4);
  const data = randomBytes(PAYLOAD);
  const tag = (k: Buffer | typeof keyObject): void => {
    const c = createCipheriv('aes-128-gcm', k, nonce, { authTagLength: 16 });
    c.setAAD(aad);
    const sealed = c.update(data);
    c.final();
    const d = createDecipheriv('aes-128-gcm', k, nonce, { authTagLength: 16 });
    d.setAAD(aad);
    d.setAuthTag(c.getAuthTag());
    d.update(sealed);
    d.final();
  };
  return [
    { name: 'createCipheriv(KeyObject) (ours)', run: () => tag(keyObject) },
    { name: 'createCipheriv(Buffer key)', run: () => tag(key) },
  ];
}

console.log(`node ${process.version}, OpenSSL ${process.versions.openssl}; ${ROUNDS} rounds of ${ROUND_MS} ms, median`);

group('seal + open, 32 KiB payload, our implementations (ratio to aes128-gcm)', [
  ours('aes128-gcm@openssh.com', null),
  ours('aes256-gcm@openssh.com', null),
  ours('chacha20-poly1305@openssh.com', null),
  ours('aes128-ctr', 'hmac-sha2-256-etm@openssh.com'),
  ours('aes128-ctr', 'hmac-sha2-512-etm@openssh.com'),
  ours('aes128-ctr', 'hmac-sha1-etm@openssh.com'),
  ours('aes128-ctr', 'hmac-sha2-256'),
  ours('aes128-ctr', 'hmac-sha2-512'),
  ours('aes128-ctr', 'hmac-sha1'),
  ours('aes192-ctr', 'hmac-sha2-256-etm@openssh.com'),
  ours('aes256-ctr', 'hmac-sha2-256-etm@openssh.com'),
]);
// 13,000 packets/s per direction is the transport's budget (performance-notes.md, lesson 2).
const need = (13_000 * PAYLOAD) / 1e6;
console.log(`  (13,000 packets/s of 32 KiB, one direction, needs ${need.toFixed(0)} MB/s; seal+open does both ends' work)`);

group('ours against @noble only (ratio = noble / ours)', [ours('aes128-gcm@openssh.com', null), nobleGcm(16)]);
group('ours against @noble only (ratio = noble / ours)', [ours('aes256-gcm@openssh.com', null), nobleGcm(32)]);
group('ours against @noble only (ratio = noble / ours)', [ours('chacha20-poly1305@openssh.com', null), nobleChaChaPoly()]);
group('ours against @noble only (ratio = noble / ours)', [ours('aes128-ctr', 'hmac-sha2-256-etm@openssh.com'), nobleCtrEtm()]);
group('Poly1305 over 32 KiB (ratio to noble; no standalone Poly1305 in node:crypto)', poly1305Cases());
group('HMAC-SHA-256 over seq ‖ 32 KiB, keying per packet', hmacCases('sha256'));
group('HMAC-SHA-512 over seq ‖ 32 KiB, keying per packet', hmacCases('sha512'));
group('AES-128-GCM seal + open per packet: key import', gcmKeyCases());
