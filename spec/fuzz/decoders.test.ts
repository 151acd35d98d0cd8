/**
 * Property and mutation tests over every decoder that takes bytes from outside: the peer
 * (SshReader, KEXINIT, the identification line, the SFTP framer, user public keys, each key
 * exchange's client value) or a file (host keys). The property is the same everywhere: the
 * input decodes, or the decoder throws one of the error classes its caller maps to a clean
 * refusal — never a TypeError, RangeError or library error that would escape as an internal
 * failure. Inputs are bounded (at most a few tens of KB) and runs are counted, so the file
 * finishes in seconds; a hang would show as this file never finishing.
 *
 * Inputs come from three sources: uniformly random bytes (shallow: they fail at the first
 * length), structured values (reach the checks behind the framing), and mutations of valid
 * encodings — a real OpenSSH KEXINIT, the fixture keys — with bytes flipped, set, inserted,
 * deleted, truncated or extended, and uint32 fields overwritten with boundary values.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { generateKeyPairSync, getDiffieHellman } from 'node:crypto';
import { x25519 } from '@noble/curves/ed25519.js';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { SshReader } from '../../src/wire/reader.js';
import { SshWriter } from '../../src/wire/writer.js';
import { MalformedError } from '../../src/wire/errors.js';
import { LengthPrefixedFramer } from '../../src/wire/framer.js';
import { DisconnectError } from '../../src/transport/errors.js';
import { IdentReader, type IdentResult } from '../../src/transport/ident.js';
import { decodeKexInit, encodeKexInit, type KexInit } from '../../src/transport/negotiate.js';
import { parsePublicKey, verifySignature } from '../../src/auth/public-key.js';
import { HostKeyError, parseHostKey } from '../../src/transport/host-keys.js';
import { KEX_METHODS } from '../../src/transport/kex/index.js';
import { ROOT, packet } from '../helpers/golden.js';

const Fuzz = suite('fuzz: every decoder refuses hostile bytes with its own error class');

type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * Runs `fn`; returns its value, or undefined if it threw one of `allowed`. Anything else is
 * rethrown with the input named, so fast-check reports (and shrinks) it as a failure.
 */
function decodesOrRefuses<T>(fn: () => T, allowed: readonly ErrorClass[]): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (allowed.some((c) => err instanceof c)) return undefined;
    const e = err as Error;
    throw new Error(`escaped as ${e?.constructor?.name ?? typeof err}: ${e?.message ?? String(err)}`, { cause: err });
  }
}

/**
 * fast-check settings: a bounded number of runs, and the escaped error in the failure report.
 * FUZZ_SCALE=20 multiplies every count, for a longer run by hand.
 */
const SCALE = Math.max(1, Number(process.env.FUZZ_SCALE) || 1);
const runs = (numRuns: number): fc.Parameters<unknown> => ({ numRuns: numRuns * SCALE, includeErrorInReport: true });

const WIRE: readonly ErrorClass[] = [MalformedError];
const TRANSPORT: readonly ErrorClass[] = [MalformedError, DisconnectError];
const HOST_KEY: readonly ErrorClass[] = [HostKeyError, MalformedError];

// --- mutations -----------------------------------------------------------------------------

type Mutation =
  | { k: 'flip'; at: number; bit: number }
  | { k: 'set'; at: number; v: number }
  | { k: 'u32'; at: number; v: number }
  | { k: 'insert'; at: number; bytes: Uint8Array }
  | { k: 'delete'; at: number; n: number }
  | { k: 'truncate'; at: number }
  | { k: 'extend'; bytes: Uint8Array };

/** uint32 values that sit on the edges of length checks. */
const BOUNDARY_U32 = [0, 1, 2, 3, 4, 15, 16, 17, 31, 32, 33, 255, 256, 1024, 8192, 8193, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ k: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ k: fc.constant('set' as const), at: fc.nat(), v: fc.oneof(fc.constantFrom(0, 0x2c, 0x7f, 0x80, 0xff), fc.integer({ min: 0, max: 255 })) }),
  fc.record({ k: fc.constant('u32' as const), at: fc.nat(), v: fc.oneof(fc.constantFrom(...BOUNDARY_U32), fc.integer({ min: 0, max: 0xffffffff })) }),
  fc.record({ k: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ k: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ k: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ k: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
);

function mutate(base: Uint8Array, ms: readonly Mutation[]): Buffer {
  let b = Buffer.from(base);
  for (const m of ms) {
    const at = b.length === 0 ? 0 : (m as { at?: number }).at! % (b.length + 1);
    switch (m.k) {
      case 'flip':
        if (at < b.length) b[at]! ^= 1 << m.bit;
        break;
      case 'set':
        if (at < b.length) b[at] = m.v;
        break;
      case 'u32':
        if (at + 4 <= b.length) b.writeUInt32BE(m.v, at);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.n)]);
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'extend':
        b = Buffer.concat([b, m.bytes]);
        break;
    }
  }
  return b;
}

/** Valid encodings with 1 to 4 mutations applied. */
const mutationsOf = (bases: readonly Uint8Array[]): fc.Arbitrary<Buffer> =>
  fc
    .tuple(fc.constantFrom(...bases), fc.array(mutation, { minLength: 1, maxLength: 4 }))
    .map(([base, ms]) => mutate(base, ms));

/** Cut points for splitting a stream into chunks. */
const split = (stream: Uint8Array, cuts: readonly number[]): Buffer[] => {
  const at = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...at, stream.length]) {
    out.push(Buffer.from(stream.subarray(prev, c)));
    prev = c;
  }
  return out;
};

const stringField = (b: Uint8Array): Buffer => new SshWriter(b.length + 4).string(b).bytes();

// --- SshReader -----------------------------------------------------------------------------

type ReadOp =
  | { op: 'u8' | 'bool' | 'u32' | 'u64' | 'u64n' | 'rest' | 'assertEnd' }
  | { op: 'bytes' | 'utf8' | 'ascii' | 'mpintBytes'; max: number }
  | { op: 'nameList'; max: number; names: number };

const cap = fc.oneof(fc.constantFrom(0, 1, 4, 32, 64, 255, 8192), fc.integer({ min: 0, max: 1 << 16 }));
const readOp: fc.Arbitrary<ReadOp> = fc.oneof(
  fc.constantFrom('u8', 'bool', 'u32', 'u64', 'u64n', 'rest', 'assertEnd').map((op) => ({ op }) as ReadOp),
  fc.record({ op: fc.constantFrom('bytes', 'utf8', 'ascii', 'mpintBytes'), max: cap }) as fc.Arbitrary<ReadOp>,
  fc.record({ op: fc.constant('nameList'), max: cap, names: fc.integer({ min: 0, max: 200 }) }) as fc.Arbitrary<ReadOp>,
);

/** Well-formed field sequences, to mutate: they get past the first length, unlike random bytes. */
const encodedFields: fc.Arbitrary<Buffer> = fc
  .array(
    fc.oneof(
      fc.integer({ min: 0, max: 0xffffffff }).map((v) => new SshWriter(8).u32(v).bytes()),
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((v) => new SshWriter(8).u64(v).bytes()),
      fc.uint8Array({ maxLength: 40 }).map((b) => stringField(b)),
      fc.array(fc.stringMatching(/^[\x21-\x2b\x2d-\x7e]{1,8}$/), { maxLength: 6 }).map((l) => new SshWriter(64).nameList(l).bytes()),
      fc.bigInt({ min: 0n, max: 2n ** 300n }).map((v) => new SshWriter(64).mpintBig(v).bytes()),
      fc.string({ unit: 'binary', maxLength: 8 }).map((s) => new SshWriter(64).string(s).bytes()),
    ),
    { maxLength: 8 },
  )
  .map((parts) => Buffer.concat(parts));

const readerInput = fc.oneof(
  fc.uint8Array({ maxLength: 256 }),
  encodedFields,
  fc.tuple(encodedFields, fc.array(mutation, { minLength: 1, maxLength: 3 })).map(([b, ms]) => mutate(b, ms)),
);

Fuzz('SshReader: any read of any bytes returns a bounded value or throws MalformedError', () => {
  fc.assert(
    fc.property(readerInput, fc.array(readOp, { minLength: 1, maxLength: 12 }), (bytes, ops) => {
      // Read from a window inside a larger buffer, as decoders do with packet payloads.
      const framed = Buffer.concat([Buffer.of(0xee, 0xee), bytes, Buffer.of(0xee)]);
      const r = new SshReader(framed, 2, 2 + bytes.length);
      for (const o of ops) {
        const before = r.pos;
        const out = decodesOrRefuses(() => {
          switch (o.op) {
            case 'u8': return r.u8();
            case 'bool': return r.bool();
            case 'u32': return r.u32();
            case 'u64': return r.u64();
            case 'u64n': return r.u64n();
            case 'rest': return r.rest();
            case 'assertEnd': return r.assertEnd();
            case 'bytes': return r.bytes(o.max);
            case 'utf8': return r.utf8(o.max);
            case 'ascii': return r.ascii(o.max);
            case 'mpintBytes': return r.mpintBytes(o.max);
            case 'nameList': return r.nameList(o.max, o.names);
          }
        }, WIRE);
        assert.ok(r.pos >= before && r.pos <= r.end, 'the position stays inside the window');
        if (out === undefined && o.op !== 'assertEnd') break; // decoders stop at the first error
        if (o.op === 'u8') assert.ok((out as number) >= 0 && (out as number) <= 255);
        if (o.op === 'u32') assert.ok(Number.isInteger(out) && (out as number) >= 0 && (out as number) <= 0xffffffff);
        if (o.op === 'u64') assert.ok(Number.isSafeInteger(out) && (out as number) >= 0);
        if (o.op === 'bytes') assert.ok((out as Uint8Array).length <= o.max);
        if (o.op === 'utf8' || o.op === 'ascii') assert.type(out, 'string');
        if (o.op === 'mpintBytes') {
          const m = out as Uint8Array;
          assert.ok(m.length === 0 || m[0] !== 0, 'the magnitude is minimal');
        }
        if (o.op === 'nameList') {
          const l = out as string[];
          assert.ok(l.length <= Math.max(o.names, 0) || l.length === 0);
          for (const n of l) assert.match(n, /^[\x21-\x2b\x2d-\x7e]+$/);
        }
      }
    }),
    runs(2000),
  );
});

// --- KEXINIT -------------------------------------------------------------------------------

const OPENSSH_KEXINIT = packet('openssh-9.2-kexinit');
const SMALL_KEXINIT = encodeKexInit({
  cookie: new Uint8Array(16),
  kex: ['curve25519-sha256', 'ext-info-c'],
  hostKey: ['ssh-ed25519'],
  cipherC2S: ['aes128-gcm@openssh.com'],
  cipherS2C: ['aes128-gcm@openssh.com'],
  macC2S: ['hmac-sha2-256'],
  macS2C: ['hmac-sha2-256'],
  compC2S: ['none'],
  compS2C: ['none'],
  langC2S: [],
  langS2C: [],
  firstKexFollows: false,
});

const plain = (m: KexInit) => ({ ...m, cookie: [...m.cookie] });

Fuzz('decodeKexInit: random and mutated KEXINITs decode or throw MalformedError/DisconnectError', () => {
  const input = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.concat([Buffer.of(20), b])),
    mutationsOf([OPENSSH_KEXINIT, SMALL_KEXINIT]),
    mutationsOf([OPENSSH_KEXINIT]),
  );
  fc.assert(
    fc.property(input, (bytes) => {
      const m = decodesOrRefuses(() => decodeKexInit(bytes), TRANSPORT);
      if (m === undefined) return;
      assert.is(m.cookie.length, 16);
      for (const l of [m.kex, m.hostKey, m.cipherC2S, m.cipherS2C, m.macC2S, m.macS2C, m.compC2S, m.compS2C, m.langC2S, m.langS2C]) {
        assert.ok(l.length <= 128);
        assert.ok(l.join(',').length <= 8192);
      }
      // What decodes re-encodes to something that decodes the same (the reserved word and the
      // boolean are normalised, nothing else).
      assert.equal(plain(decodeKexInit(encodeKexInit(m))), plain(m));
    }),
    runs(2000),
  );
});

// --- identification line -------------------------------------------------------------------

type IdentOutcome = { kind: 'ident'; ident: string; rest: string } | { kind: 'more' } | { kind: 'refused'; reason: number };

/** Feeds the chunks in order; later chunks after the identification count as its `rest`. */
function identOutcome(chunks: readonly Buffer[]): IdentOutcome {
  const r = new IdentReader();
  const after: Buffer[] = [];
  let done: IdentResult | null = null;
  for (const c of chunks) {
    if (done) {
      after.push(c);
      continue;
    }
    try {
      done = r.push(c);
    } catch (err) {
      if (err instanceof DisconnectError) return { kind: 'refused', reason: err.reason };
      const e = err as Error;
      throw new Error(`escaped as ${e?.constructor?.name}: ${e?.message}`, { cause: err });
    }
  }
  return done ? { kind: 'ident', ident: done.ident, rest: Buffer.concat([done.rest, ...after]).toString('hex') } : { kind: 'more' };
}

const OPENSSH_IDENT = 'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10';
const identStreams: readonly Buffer[] = [
  Buffer.from(`${OPENSSH_IDENT}\r\n`),
  Buffer.from(`${OPENSSH_IDENT}\r\n\x00\x00\x05\xdc\x0a\x14`, 'latin1'),
  Buffer.from(`banner line\r\n\r\nsecond\n${OPENSSH_IDENT}\r\n`),
  Buffer.from('SSH-1.99-x\n'),
  Buffer.from(Array.from({ length: 16 }, (_, i) => `l${i}\n`).join('') + 'SSH-2.0-x\r\n'),
];

const identLine = fc.oneof(
  fc.stringMatching(/^[ -~]{0,40}$/),
  fc.constantFrom('SSH-2.0-', 'SSH-1.99-', 'SSH-1.5-', 'SSH-', 'SSH-2.0'),
  fc.tuple(fc.constantFrom('SSH-2.0-', 'SSH-'), fc.integer({ min: 200, max: 1100 })).map(([p, n]) => p + 'x'.repeat(n)),
);
const lineStream = fc
  .tuple(fc.array(identLine, { maxLength: 20 }), fc.constantFrom('\r\n', '\n'), fc.uint8Array({ maxLength: 16 }))
  .map(([lines, eol, tail]) => Buffer.concat([Buffer.from(lines.map((l) => l + eol).join(''), 'latin1'), tail]));

Fuzz('IdentReader: any stream in any chunks gives an identification, needs more, or throws DisconnectError', () => {
  const stream = fc.oneof(fc.uint8Array({ maxLength: 2000 }), lineStream, mutationsOf(identStreams));
  fc.assert(
    fc.property(stream, fc.array(fc.nat(), { maxLength: 16 }), (s, cuts) => {
      const outcome = identOutcome(split(s, cuts));
      if (outcome.kind === 'ident') {
        // 255 bytes with the line end: 253 before CR LF, 254 before a bare LF.
        assert.ok(outcome.ident.length <= 254, 'at most 255 bytes with the line end');
        assert.match(outcome.ident, /^SSH-(2\.0|1\.99)-[\x20-\x7e]*$/);
      }
    }),
    runs(2000),
  );
});

Fuzz('IdentReader: the outcome does not depend on how the stream is cut', () => {
  const stream = fc.oneof(lineStream, mutationsOf(identStreams));
  fc.assert(
    fc.property(stream, fc.array(fc.nat(), { maxLength: 16 }), (s, cuts) => {
      assert.equal(identOutcome(split(s, cuts)), identOutcome([Buffer.from(s)]));
    }),
    runs(1000),
  );
});

Fuzz('IdentReader: byte-by-byte delivery of hostile streams gives the whole-stream outcome', () => {
  fc.assert(
    fc.property(fc.oneof(lineStream, mutationsOf(identStreams)), (s) => {
      const bytes = [...s].map((b) => Buffer.of(b));
      assert.equal(identOutcome(bytes), identOutcome([Buffer.from(s)]));
    }),
    runs(200),
  );
});

// --- SFTP framer ---------------------------------------------------------------------------

type FramerOutcome = { messages: string[]; refused: boolean; buffered: number };

function framerOutcome(maxLength: number, chunks: readonly Buffer[]): FramerOutcome {
  const messages: string[] = [];
  const f = new LengthPrefixedFramer(maxLength, (b) => messages.push(Buffer.from(b).toString('hex')));
  for (const c of chunks) {
    const ok = decodesOrRefuses(() => (f.push(c), true), WIRE);
    if (ok === undefined) return { messages, refused: true, buffered: -1 };
  }
  return { messages, refused: false, buffered: f.buffered };
}

const frames = fc
  .array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 })
  .map((bodies) => Buffer.concat(bodies.map((b) => stringField(b))));

Fuzz('LengthPrefixedFramer: any stream gives messages within the cap or throws MalformedError', () => {
  const stream = fc.oneof(
    fc.uint8Array({ maxLength: 1200 }),
    frames,
    fc.tuple(frames, fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([b, ms]) => mutate(b, ms)),
  );
  fc.assert(
    fc.property(stream, fc.array(fc.nat(), { maxLength: 10 }), fc.integer({ min: 0, max: 400 }), (s, cuts, maxLength) => {
      const out = framerOutcome(maxLength, split(s, cuts));
      for (const m of out.messages) assert.ok(m.length / 2 <= maxLength);
    }),
    runs(2000),
  );
});

Fuzz('LengthPrefixedFramer: messages and refusal do not depend on how the stream is cut', () => {
  const stream = fc.oneof(
    frames,
    fc.tuple(frames, fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([b, ms]) => mutate(b, ms)),
  );
  fc.assert(
    fc.property(stream, fc.array(fc.nat(), { maxLength: 10 }), fc.integer({ min: 0, max: 400 }), (s, cuts, maxLength) => {
      const whole = framerOutcome(maxLength, [Buffer.from(s)]);
      const parts = framerOutcome(maxLength, split(s, cuts));
      assert.equal(parts.messages, whole.messages);
      assert.is(parts.refused, whole.refused);
      if (!whole.refused) assert.is(parts.buffered, whole.buffered);
    }),
    runs(1000),
  );
});

// --- user public keys ----------------------------------------------------------------------

const HOST_KEYS = path.join(ROOT, 'fixtures/host-keys');
const fixture = (name: string): Buffer => readFileSync(path.join(HOST_KEYS, name));
const pubBlob = (name: string): Buffer => Buffer.from(fixture(`${name}.pub`).toString('latin1').split(/\s+/)[1]!, 'base64');

const PUBLIC_BLOBS = ['ed25519', 'ecdsa256', 'ecdsa384', 'ecdsa521', 'rsa1024', 'rsa3072'].map(pubBlob);
const KEY_TYPES = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa', 'ssh-dss', ''];

Fuzz('parsePublicKey: random, structured and mutated blobs parse or throw MalformedError', () => {
  const blob = fc.oneof(
    fc.uint8Array({ maxLength: 200 }),
    // A known type followed by anything: reaches the per-type checks.
    fc.tuple(fc.constantFrom(...KEY_TYPES), fc.uint8Array({ maxLength: 200 })).map(([t, rest]) => Buffer.concat([stringField(Buffer.from(t)), rest])),
    // A known type and well-formed fields of random content.
    fc
      .tuple(fc.constantFrom(...KEY_TYPES), fc.array(fc.uint8Array({ maxLength: 140 }), { maxLength: 3 }))
      .map(([t, fields]) => Buffer.concat([stringField(Buffer.from(t)), ...fields.map(stringField)])),
    mutationsOf(PUBLIC_BLOBS),
  );
  fc.assert(
    fc.property(blob, (b) => {
      const k = decodesOrRefuses(() => parsePublicKey(b), WIRE);
      if (k === undefined) return;
      assert.ok(Buffer.from(k.blob).equals(b), 'the parsed key keeps the exact blob');
      assert.ok(KEY_TYPES.includes(k.type));
      if (k.type === 'ssh-rsa') assert.ok(k.bits >= 1024 && k.bits <= 8192);
    }),
    runs(2000),
  );
});

Fuzz('verifySignature: random and mutated signature blobs return false, never throw', () => {
  const keys = PUBLIC_BLOBS.map((b) => parsePublicKey(b));
  const sigBlob = fc.oneof(
    fc.uint8Array({ maxLength: 200 }),
    fc
      .tuple(fc.constantFrom('ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-256', 'rsa-sha2-512'), fc.uint8Array({ maxLength: 400 }))
      .map(([a, s]) => Buffer.concat([stringField(Buffer.from(a)), stringField(s)])),
    // An ECDSA signature body of two random mpints.
    fc
      .tuple(fc.constantFrom('ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521'), fc.bigInt({ min: 0n, max: 2n ** 530n }), fc.bigInt({ min: 0n, max: 2n ** 530n }))
      .map(([a, r, s]) => Buffer.concat([stringField(Buffer.from(a)), stringField(new SshWriter(160).mpintBig(r).mpintBig(s).bytes())])),
  );
  fc.assert(
    fc.property(fc.constantFrom(...keys), sigBlob, fc.uint8Array({ maxLength: 64 }), (key, sig, data) => {
      const alg = key.type === 'ssh-rsa' ? 'rsa-sha2-256' : key.type;
      const ok = decodesOrRefuses(() => verifySignature(key, alg, sig, data), []);
      assert.is(ok, false);
    }),
    runs(500),
  );
});

// --- host key files ------------------------------------------------------------------------

const KEY_FILES = ['ed25519', 'ecdsa256', 'ecdsa384', 'ecdsa521', 'rsa1024', 'rsa3072', 'rsa3072-pem', 'ecdsa256-pem', 'ecdsa384-pkcs8', 'rsa2048-pkcs8'].map(
  (n) => fixture(n).toString('latin1'),
);
const OPENSSH_FILES = ['ed25519', 'ecdsa256', 'ecdsa384', 'ecdsa521', 'rsa3072'].map((n) => fixture(n).toString('latin1'));

const BEGIN = '-----BEGIN OPENSSH PRIVATE KEY-----';
const END = '-----END OPENSSH PRIVATE KEY-----';
const dearmor = (text: string): Buffer => Buffer.from(text.slice(text.indexOf(BEGIN) + BEGIN.length, text.indexOf(END)).replace(/\s+/g, ''), 'base64');
const armor = (raw: Uint8Array): string => `${BEGIN}\n${Buffer.from(raw).toString('base64').replace(/.{70}/g, '$&\n')}\n${END}\n`;

/** An unencrypted openssh-key-v1 file around a private section built from `fields` (PROTOCOL.key). */
function opensshFile(type: string, publicBlob: Uint8Array, fields: (w: SshWriter) => void): string {
  const priv = new SshWriter(256).u32(0x01020304).u32(0x01020304).string(type);
  fields(priv);
  priv.string('fuzz');
  for (let i = 1; priv.pos % 8 !== 0; i++) priv.u8(i);
  const file = new SshWriter(512)
    .raw(Buffer.from('openssh-key-v1\0', 'latin1'))
    .string('none')
    .string('none')
    .string('')
    .u32(1)
    .string(publicBlob)
    .string(priv.bytes());
  return armor(file.bytes());
}

const mag = (v: bigint): Uint8Array => (v === 0n ? new Uint8Array(0) : Buffer.from(v.toString(16).padStart(Math.ceil(v.toString(16).length / 2) * 2, '0'), 'hex'));

/**
 * RSA files whose numbers pass the file format's own checks (the public blob matches, p·q = n)
 * but are not a key: tiny or degenerate primes, zero exponents. They reach the arithmetic.
 */
const degenerateRsa = fc
  .record({
    p: fc.oneof(fc.constantFrom(0n, 1n, 2n, 3n), fc.bigInt({ min: 0n, max: 2n ** 64n })),
    q: fc.oneof(fc.constantFrom(0n, 1n, 2n, 3n), fc.bigInt({ min: 0n, max: 2n ** 1100n })),
    e: fc.oneof(fc.constantFrom(0n, 1n, 3n, 65537n), fc.bigInt({ min: 0n, max: 2n ** 64n })),
    d: fc.bigInt({ min: 0n, max: 2n ** 1100n }),
    iqmp: fc.bigInt({ min: 0n, max: 2n ** 64n }),
  })
  .map(({ p, q, e, d, iqmp }) => {
    const n = p * q;
    const blob = new SshWriter(512).string('ssh-rsa').mpint(mag(e)).mpint(mag(n)).bytes();
    return opensshFile('ssh-rsa', blob, (w) => {
      for (const v of [n, e, d, iqmp, p, q]) w.mpint(mag(v));
    });
  });

Fuzz('parseHostKey: random text and mutated key files parse or throw HostKeyError/MalformedError', () => {
  const text = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.constantFrom(BEGIN, '-----BEGIN PRIVATE KEY-----', '-----BEGIN RSA PRIVATE KEY-----').chain((b) =>
      fc.string({ maxLength: 200 }).map((s) => `${b}\n${s}\n${b.replace('BEGIN', 'END')}\n`),
    ),
    // Text-level: characters of the armored file changed, dropped or added.
    mutationsOf(KEY_FILES.map((t) => Buffer.from(t, 'latin1'))).map((b) => b.toString('latin1')),
  );
  fc.assert(
    fc.property(text, (t) => {
      decodesOrRefuses(() => parseHostKey(t), HOST_KEY);
    }),
    runs(500),
  );
});

Fuzz('parseHostKey: openssh-key-v1 files with mutated binary parse or throw HostKeyError/MalformedError', () => {
  const raw = OPENSSH_FILES.map(dearmor);
  fc.assert(
    fc.property(mutationsOf(raw), (b) => {
      decodesOrRefuses(() => parseHostKey(armor(b)), HOST_KEY);
    }),
    runs(500),
  );
});

Fuzz('parseHostKey: RSA files with degenerate numbers throw HostKeyError/MalformedError', () => {
  fc.assert(
    fc.property(degenerateRsa, (t) => {
      decodesOrRefuses(() => parseHostKey(t), HOST_KEY);
    }),
    runs(300),
  );
});

// Counterexamples the properties above found, kept as fixed cases so each shows on its own.

/** An openssh-key-v1 RSA file with the given numbers, consistent with its public blob. */
function rsaFile(v: { n: bigint; e: bigint; d: bigint; iqmp: bigint; p: bigint; q: bigint }): string {
  const blob = new SshWriter(600).string('ssh-rsa').mpint(mag(v.e)).mpint(mag(v.n)).bytes();
  return opensshFile('ssh-rsa', blob, (w) => {
    for (const x of [v.n, v.e, v.d, v.iqmp, v.p, v.q]) w.mpint(mag(x));
  });
}

function hostKeyRefusal(text: string | Uint8Array): Error {
  try {
    parseHostKey(text);
  } catch (err) {
    return err as Error;
  }
  assert.unreachable('expected parseHostKey to refuse the file');
  throw new Error('unreachable');
}

Fuzz('parseHostKey refuses an RSA file whose prime p is 1 with HostKeyError, not a RangeError', () => {
  // p · q = n holds, so the file passes the consistency check and reaches d mod (p − 1) = d mod 0.
  const n = (1n << 2047n) + 12345n;
  const err = hostKeyRefusal(rsaFile({ n, e: 65537n, d: 3n, iqmp: 1n, p: 1n, q: n }));
  assert.ok(err instanceof HostKeyError, `${err.constructor.name}: ${err.message}`);
});

Fuzz('parseHostKey refuses an RSA file whose prime p is 2 with HostKeyError, not an OpenSSL error', () => {
  const q = (1n << 2046n) + 1235n;
  const err = hostKeyRefusal(rsaFile({ n: 2n * q, e: 65537n, d: 5n, iqmp: 2n, p: 2n, q }));
  assert.ok(err instanceof HostKeyError, `${err.constructor.name}: ${err.message}`);
});

Fuzz('parseHostKey refuses an encrypted openssh key with HostKeyError', () => {
  // loadHostKey wraps this, but parseHostKey is exported and documented as the parser.
  const err = hostKeyRefusal(fixture('ed25519-encrypted'));
  assert.match(err.message, /passphrase/);
  assert.ok(err instanceof HostKeyError, `${err.constructor.name}: ${err.message}`);
});

Fuzz('parseHostKey refuses a DSA PKCS#8 key with HostKeyError naming the key type', () => {
  const { privateKey } = generateKeyPairSync('dsa', { modulusLength: 1024, divisorLength: 160 });
  const err = hostKeyRefusal(privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
  assert.ok(err instanceof HostKeyError, `${err.constructor.name}: ${err.message}`);
  assert.match(err.message, /dsa/i);
});

// --- key exchange: the client's public value -----------------------------------------------

interface LowOrder {
  points: { u: string }[];
}
const LOW_ORDER = (JSON.parse(readFileSync(path.join(ROOT, 'fixtures/vectors/x25519-low-order.json'), 'utf8')) as LowOrder).points.map((p) =>
  Buffer.from(p.u, 'hex'),
);

/** Checks a completed exchange: the client field is the input, and the fields are well formed. */
function checkExchange(name: string, body: Uint8Array, out: { clientField: Uint8Array; serverField: Uint8Array; sharedSecret: Uint8Array }): void {
  assert.ok(Buffer.from(out.clientField).equals(Buffer.from(body)), `${name}: clientField is the client's field as sent`);
  const s = new SshReader(out.serverField);
  s.bytes();
  s.assertEnd();
  const k = new SshReader(out.sharedSecret);
  assert.ok(k.mpintBytes(1025).length > 0, `${name}: K is not zero`);
  k.assertEnd();
}

function kexProperty(name: string, body: fc.Arbitrary<Uint8Array>, numRuns: number): void {
  const method = KEX_METHODS[name];
  assert.ok(method, name);
  fc.assert(
    fc.property(body, (b) => {
      const out = decodesOrRefuses(() => method!().exchange(b), TRANSPORT);
      if (out) checkExchange(name, b, out);
    }),
    runs(numRuns),
  );
}

/** Random bodies of any shape, common to every method. */
const anyBody = fc.oneof(fc.uint8Array({ maxLength: 80 }), fc.uint8Array({ maxLength: 80 }).map(stringField));

const CURVE25519 = ['curve25519-sha256', 'curve25519-sha256@libssh.org'];

for (const name of CURVE25519) {
  Fuzz(`${name}: random, low-order and mutated Q_C complete or throw DisconnectError/MalformedError`, () => {
    const valid = Array.from({ length: 4 }, () => stringField(x25519.getPublicKey(x25519.utils.randomSecretKey())));
    const body = fc.oneof(
      anyBody,
      fc.uint8Array({ minLength: 32, maxLength: 32 }).map(stringField),
      fc.constantFrom(...LOW_ORDER).map(stringField),
      fc.constantFrom(...LOW_ORDER).map((u) => {
        const v = Buffer.from(u);
        v[31]! |= 0x80; // bit 255 set: the same point after masking (RFC 7748 §5)
        return stringField(v);
      }),
      mutationsOf(valid),
    );
    kexProperty(name, body, 300);
  });
}

const NIST = { 'ecdh-sha2-nistp256': p256, 'ecdh-sha2-nistp384': p384, 'ecdh-sha2-nistp521': p521 } as const;

for (const [name, curve] of Object.entries(NIST)) {
  Fuzz(`${name}: random, malformed and mutated Q_C complete or throw DisconnectError/MalformedError`, () => {
    const pointLen = 1 + 2 * curve.Point.Fp.BYTES;
    const valid = Array.from({ length: 3 }, () => curve.getPublicKey(curve.utils.randomSecretKey(), false));
    const fieldBytes = (v: bigint): Uint8Array => Buffer.from(v.toString(16).padStart(2 * curve.Point.Fp.BYTES, '0'), 'hex');
    const p = curve.Point.Fp.ORDER;
    const body = fc.oneof(
      anyBody,
      // 0x04 ‖ random X ‖ random Y: off the curve, almost surely.
      fc.uint8Array({ minLength: pointLen - 1, maxLength: pointLen - 1 }).map((xy) => stringField(Buffer.concat([Buffer.of(4), xy]))),
      // Coordinates at and beyond the field prime.
      fc
        .tuple(fc.constantFrom(0n, 1n, p - 1n, p, p + 1n, 2n ** BigInt(8 * curve.Point.Fp.BYTES) - 1n), fc.constantFrom(0n, 1n, p - 1n, p))
        .map(([x, y]) => stringField(Buffer.concat([Buffer.of(4), fieldBytes(x), fieldBytes(y)]))),
      // The compressed forms and the one-byte point at infinity.
      fc.constantFrom(...valid).map((pt) => stringField(Buffer.concat([Buffer.of(2 + (pt[pt.length - 1]! & 1)), pt.subarray(1, 1 + curve.Point.Fp.BYTES)]))),
      fc.constant(stringField(Buffer.of(0))),
      // A valid point whose coordinate has p added (the same point, not reduced).
      fc.constantFrom(...valid).map((pt) => {
        const x = BigInt('0x' + Buffer.from(pt.subarray(1, 1 + curve.Point.Fp.BYTES)).toString('hex'));
        const big = x + p < 2n ** BigInt(8 * curve.Point.Fp.BYTES) ? x + p : x;
        return stringField(Buffer.concat([Buffer.of(4), fieldBytes(big), pt.subarray(1 + curve.Point.Fp.BYTES)]));
      }),
      fc.constantFrom(...valid).map(stringField),
      mutationsOf(valid.map(stringField)),
    );
    kexProperty(name, body, 300);
  });
}

const MODP = {
  'diffie-hellman-group14-sha256': { group: 'modp14', runs: 200 },
  'diffie-hellman-group16-sha512': { group: 'modp16', runs: 150 },
  // Each full group-18 exchange costs two 8192-bit modular exponentiations: fewer runs.
  'diffie-hellman-group18-sha512': { group: 'modp18', runs: 100 },
} as const;

for (const [name, { group, runs }] of Object.entries(MODP)) {
  Fuzz(`${name}: random, boundary and mutated e complete or throw DisconnectError/MalformedError`, () => {
    const prime = getDiffieHellman(group).getPrime();
    const p = BigInt('0x' + prime.toString('hex'));
    const mpint = (v: bigint): Uint8Array => new SshWriter(prime.length + 8).mpintBig(v).bytes();
    const raw = (b: Uint8Array): Uint8Array => stringField(b); // an mpint field with any body
    const body = fc.oneof(
      { weight: 3, arbitrary: anyBody },
      { weight: 3, arbitrary: fc.constantFrom(0n, 1n, 2n, p - 2n, p - 1n, p, p + 1n, 2n ** BigInt(prime.length * 8), 2n ** BigInt(prime.length * 8 + 8) - 1n).map(mpint) },
      // Non-minimal and negative encodings of small values.
      { weight: 2, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 8 }).map((b) => raw(Buffer.concat([Buffer.of(0), b]))) },
      { weight: 2, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 8 }).map((b) => raw(Buffer.concat([Buffer.of(0x80 | b[0]!), b]))) },
      // A field one byte longer than the modulus with a zero prefix, and two bytes longer.
      { weight: 2, arbitrary: fc.constantFrom(raw(Buffer.concat([Buffer.of(0), prime])), raw(Buffer.concat([Buffer.of(0, 0), prime]))) },
      // p − 1 and p with the one 0x00 a minimal encoding needs (the top bit of p is set).
      { weight: 1, arbitrary: fc.bigInt({ min: 2n, max: p - 2n }).map(mpint) },
      { weight: 1, arbitrary: mutationsOf([mpint(p - 1n), mpint(p - 2n), mpint(2n), mpint(p)]) },
    );
    kexProperty(name, body, runs);
  });
}

Fuzz('every method in KEX_METHODS is fuzzed here', () => {
  assert.equal(Object.keys(KEX_METHODS).sort(), [...CURVE25519, ...Object.keys(NIST), ...Object.keys(MODP)].sort());
});

Fuzz.run();
