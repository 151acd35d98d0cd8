import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { poly1305 } from '@noble/ciphers/_poly1305.js';
import fc from 'fast-check';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createOpeningKey, createSealingKey } from '../../../src/transport/cipher/index.js';
import {
  POLY1305_INPUT_SIZE,
  POLY1305_SOURCE_SHA256,
  POLY1305_WASM,
  poly1305Tag,
} from '../../../src/transport/cipher/poly1305-wasm.js';

/** The repository root (this file runs from dist/spec/transport/cipher). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

interface Rfc8439 {
  poly1305: { name: string; key: string; message: string; tag: string }[];
}
const vectors = (
  JSON.parse(readFileSync(path.join(ROOT, 'fixtures/vectors/chacha20-poly1305-rfc8439.json'), 'utf8')) as Rfc8439
).poly1305;

// Neither TypeScript's ES2022 lib nor @types/node 20 declares WebAssembly; this is the part used.
declare namespace WebAssembly {
  class Module {
    constructor(bytes: Uint8Array);
    static exports(m: Module): { name: string; kind: string }[];
    static imports(m: Module): { module: string; name: string; kind: string }[];
  }
  class Instance {
    constructor(module: Module, imports: object);
    readonly exports: Record<string, unknown>;
  }
}

function wasmTag(key: Uint8Array, data: Uint8Array): string {
  const out = new Uint8Array(16);
  poly1305Tag(key, data, out);
  return toHex(out);
}

const nobleTag = (key: Uint8Array, data: Uint8Array): string => toHex(poly1305(data, key));

/** `n` deterministic pseudo-random bytes from a 16-byte seed (AES-CTR keystream). */
const expand = (seed: Uint8Array, n: number): Buffer => createCipheriv('aes-128-ctr', seed, Buffer.alloc(16)).update(Buffer.alloc(n));

const Poly = suite('poly1305-wasm');

Poly('gives the RFC 8439 §2.5.2 tag', () => {
  const v = vectors.find((x) => x.name === 'RFC 8439 §2.5.2')!;
  assert.is(wasmTag(hex(v.key), hex(v.message)), v.tag);
});

Poly('gives the RFC 8439 Appendix A.3 tags, the #5–#11 carry and reduction edge cases included', () => {
  const names = vectors.map((v) => v.name);
  for (const n of [1, 5, 6, 7, 8, 9, 10, 11]) assert.ok(names.includes(`RFC 8439 A.3 #${n}`), `fixture has A.3 #${n}`);
  for (const v of vectors) assert.is(wasmTag(hex(v.key), hex(v.message)), v.tag, v.name);
});

Poly('the tag of the empty message is s, the second key half', () => {
  const key = randomBytes(32);
  assert.is(wasmTag(key, new Uint8Array(0)), toHex(key.subarray(16)));
  assert.is(wasmTag(key, new Uint8Array(0)), nobleTag(key, new Uint8Array(0)));
});

Poly('equals noble for every length 0..64 and around 16-byte boundaries', () => {
  const key = randomBytes(32);
  const data = randomBytes(4200);
  const lengths = [...Array(65).keys(), 127, 128, 129, 255, 256, 257, 1023, 1024, 1025, 4095, 4096, 4097, 4111, 4112, 4113];
  for (const n of lengths) assert.is(wasmTag(key, data.subarray(0, n)), nobleTag(key, data.subarray(0, n)), `length ${n}`);
});

Poly('equals noble when every limb is at its maximum (all-ones key and message)', () => {
  // r clamps to its largest value and every block adds 2^129 - 1: the accumulator carries out
  // of every limb and needs the final subtraction of p.
  const key = new Uint8Array(32).fill(0xff);
  for (const n of [1, 15, 16, 17, 32, 33, 64, 1000, 32768]) {
    const data = new Uint8Array(n).fill(0xff);
    assert.is(wasmTag(key, data), nobleTag(key, data), `length ${n}`);
  }
});

Poly('equals noble on messages longer than one wasm input, fed in slices', () => {
  const key = randomBytes(32);
  const data = randomBytes(2 * POLY1305_INPUT_SIZE + 100);
  for (const n of [
    POLY1305_INPUT_SIZE - 1,
    POLY1305_INPUT_SIZE,
    POLY1305_INPUT_SIZE + 1,
    POLY1305_INPUT_SIZE + 16,
    2 * POLY1305_INPUT_SIZE,
    2 * POLY1305_INPUT_SIZE + 100,
  ]) {
    assert.is(wasmTag(key, data.subarray(0, n)), nobleTag(key, data.subarray(0, n)), `length ${n}`);
  }
});

Poly('holds the largest packet MAC input (4 + 256 KiB) in one wasm input', () => {
  assert.ok(POLY1305_INPUT_SIZE >= 4 + 256 * 1024);
  assert.is(POLY1305_INPUT_SIZE % 16, 0);
});

Poly('reads a view at any offset, writes exactly 16 bytes and leaves the input alone', () => {
  const key = randomBytes(32);
  const backing = randomBytes(300);
  const view = backing.subarray(3, 203);
  const before = Buffer.from(backing);
  const out = new Uint8Array(20).fill(0xaa);
  poly1305Tag(key, view, out);
  assert.is(toHex(out.subarray(0, 16)), nobleTag(key, view));
  assert.is(toHex(out.subarray(16)), 'aaaaaaaa');
  assert.ok(backing.equals(before));
});

Poly('refuses a key that is not 32 bytes and an output shorter than 16', () => {
  assert.throws(() => poly1305Tag(new Uint8Array(31), new Uint8Array(1), new Uint8Array(16)), /32-byte key/);
  assert.throws(() => poly1305Tag(new Uint8Array(32), new Uint8Array(1), new Uint8Array(15)), /16-byte tag/);
});

Poly('property: equals noble for random keys and messages up to 70 KB', () => {
  const bytes32 = fc.oneof(
    fc.uint8Array({ minLength: 32, maxLength: 32 }),
    fc.constantFrom(new Uint8Array(32), new Uint8Array(32).fill(0xff)),
  );
  const message = fc
    .tuple(fc.integer({ min: 0, max: 70_000 }), fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.constantFrom(-1, 0x00, 0xff))
    .map(([n, seed, fill]) => (fill < 0 ? expand(seed, n) : new Uint8Array(n).fill(fill)));
  fc.assert(
    fc.property(bytes32, message, (key, data) => wasmTag(key, data) === nobleTag(key, data)),
    { numRuns: 200 },
  );
});

Poly.run();

const Module = suite('poly1305-wasm: module');

Module('exports its memory and the Poly1305 functions, and imports nothing', () => {
  const m = new WebAssembly.Module(POLY1305_WASM);
  assert.equal(WebAssembly.Module.imports(m), []);
  assert.equal(
    WebAssembly.Module.exports(m)
      .map((e) => `${e.kind} ${e.name}`)
      .sort(),
    [
      'function input_buffer',
      'function input_size',
      'function key_buffer',
      'function poly1305_blocks',
      'function poly1305_finish',
      'function poly1305_init',
      'function tag_buffer',
      'memory memory',
    ],
  );
});

Module('has a fixed memory that cannot grow, so a view of it is never detached', () => {
  const e = new WebAssembly.Instance(new WebAssembly.Module(POLY1305_WASM), {}).exports as {
    memory: { buffer: ArrayBuffer; grow(pages: number): number };
    input_buffer(): number;
    input_size(): number;
  };
  const bytes = e.memory.buffer.byteLength;
  assert.ok(e.input_buffer() + e.input_size() <= bytes, 'input area inside memory');
  assert.throws(() => e.memory.grow(1), RangeError);
  assert.is(e.memory.buffer.byteLength, bytes);
});

Module('was built from the poly1305.c in the tree (rerun scripts/build-wasm.sh after editing it)', () => {
  // clang is not needed to test; the generated module records the hash of the source it came from.
  const src = readFileSync(path.join(ROOT, 'src/transport/cipher/wasm/poly1305.c'));
  assert.is(createHash('sha256').update(src).digest('hex'), POLY1305_SOURCE_SHA256);
});

Module('the bytes are the ones the generated header describes', () => {
  const header = readFileSync(path.join(ROOT, 'src/transport/cipher/poly1305-wasm.ts'), 'utf8');
  const m = /poly1305\.wasm: (\d+) bytes, sha256 ([0-9a-f]{64})/.exec(header);
  assert.ok(m, 'header line present');
  assert.is(POLY1305_WASM.length, Number(m[1]));
  assert.is(createHash('sha256').update(POLY1305_WASM).digest('hex'), m[2]);
});

Module.run();

// chacha20-poly1305.ts reuses the length packetLength decrypted when open sees the same packet;
// these pin down that a reused length can never be the wrong one.
const Reuse = suite('chacha20-poly1305: length reuse in open');

const chachaKeys = (key: Uint8Array) => {
  const k = { cipher: 'chacha20-poly1305@openssh.com', mac: null, key, iv: new Uint8Array(0), macKey: new Uint8Array(0) };
  return { seal: createSealingKey(k), open: createOpeningKey(k) };
};

/** A sealed packet with `payloadLength` payload bytes (padding to 8, at least 4). */
function sealed(seal: ReturnType<typeof chachaKeys>['seal'], seq: number, payloadLength: number): { wire: Buffer; plain: Buffer } {
  let pad = 8 - ((1 + payloadLength) % 8);
  if (pad < 4) pad += 8;
  const plain = Buffer.alloc(4 + 1 + payloadLength + pad + 16);
  plain.writeUInt32BE(1 + payloadLength + pad, 0);
  plain[4] = pad;
  randomBytes(payloadLength + pad).copy(plain, 5);
  const wire = Buffer.from(plain);
  seal.seal(seq, wire);
  return { wire, plain: plain.subarray(0, plain.length - 16) };
}

Reuse('open without packetLength decrypts the length itself', () => {
  const { seal, open } = chachaKeys(randomBytes(64));
  const p = sealed(seal, 3, 100);
  open.open(3, p.wire);
  assert.ok(p.wire.subarray(0, p.wire.length - 16).equals(p.plain));
});

Reuse('a length read for another packet or another seq is not reused', () => {
  const { seal, open } = chachaKeys(randomBytes(64));
  const a = sealed(seal, 5, 40);
  const b = sealed(seal, 5, 1000);
  const c = sealed(seal, 6, 40);
  open.packetLength(5, a.wire);
  open.open(5, b.wire); // same seq, different wire length bytes
  assert.ok(b.wire.subarray(0, b.wire.length - 16).equals(b.plain), 'other packet, same seq');
  open.packetLength(5, a.wire);
  open.open(6, c.wire); // different seq
  assert.ok(c.wire.subarray(0, c.wire.length - 16).equals(c.plain), 'other seq');
});

Reuse('packetLength then open, packet after packet, recovers every plaintext', () => {
  const { seal, open } = chachaKeys(randomBytes(64));
  for (let seq = 0; seq < 20; seq++) {
    const p = sealed(seal, seq, seq * 37);
    assert.is(open.packetLength(seq, p.wire), p.plain.readUInt32BE(0));
    open.open(seq, p.wire);
    assert.ok(p.wire.subarray(0, p.wire.length - 16).equals(p.plain), `seq ${seq}`);
  }
});

Reuse.run();
