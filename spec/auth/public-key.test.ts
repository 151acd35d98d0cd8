import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fingerprint, parsePublicKey, verifySignature, type PublicKey } from '../../src/auth/public-key.js';
import { loadHostKey, parseHostKey } from '../../src/transport/host-keys.js';
import { ECDSA_CURVES, encodeOpensshEd25519 } from '../../src/transport/openssh-key.js';
import { MalformedError } from '../../src/wire/errors.js';
import { SshReader } from '../../src/wire/reader.js';
import { SshWriter, encodeString } from '../../src/wire/writer.js';

// Compiled to dist/spec/auth/, so the repository root is three levels up.
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const FIXTURES = path.join(ROOT, 'fixtures/host-keys');
const SSH_KEYGEN = '/usr/bin/ssh-keygen';
if (!fs.existsSync(SSH_KEYGEN)) throw new Error(`${SSH_KEYGEN} is missing: apt-get install -y openssh-client`);

const PUB = ['ed25519', 'ecdsa256', 'ecdsa384', 'ecdsa521', 'rsa3072', 'rsa2048-pkcs8'];
const DATA = Buffer.from('session id ‖ USERAUTH_REQUEST …');

function pubBlob(name: string): Buffer {
  return Buffer.from(fs.readFileSync(path.join(FIXTURES, `${name}.pub`), 'utf8').split(' ')[1]!, 'base64');
}

function malformed(fn: () => unknown, pattern: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, MalformedError);
    assert.match((err as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected MalformedError matching ${pattern}`);
}

const sigBlob = (alg: string, sig: Uint8Array) => new SshWriter().string(alg).string(sig).bytes();
const rsaBlob = (e: Uint8Array, n: Uint8Array) => new SshWriter(n.length + 32).string('ssh-rsa').mpint(e).mpint(n).bytes();
const E65537 = Buffer.from([1, 0, 1]);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

// ---------------------------------------------------------------------------------------------
const Parse = suite('public-key: parsing blobs');

for (const name of PUB) {
  Parse(`${name}.pub parses with the bits and fingerprint ssh-keygen -lf prints`, () => {
    const key = parsePublicKey(pubBlob(name));
    const [bits, fp] = execFileSync(SSH_KEYGEN, ['-lf', path.join(FIXTURES, `${name}.pub`)], { encoding: 'utf8' }).split(' ');
    assert.is(String(key.bits), bits);
    assert.is(key.fingerprint, fp);
    assert.is(fingerprint(pubBlob(name)), fp);
  });
}

Parse('the key keeps its own copy of the blob', () => {
  const blob = pubBlob('ed25519');
  const key = parsePublicKey(blob);
  blob.fill(0);
  assert.is(key.fingerprint, fingerprint(key.blob));
  assert.is(new SshReader(key.blob).ascii(), 'ssh-ed25519');
});

Parse('every truncation of every blob is MalformedError', () => {
  for (const name of PUB) {
    const blob = pubBlob(name);
    for (let i = 0; i < blob.length; i++) malformed(() => parsePublicKey(blob.subarray(0, i)), /truncated|length|uncompressed|bytes/);
  }
});

Parse('a trailing byte after any blob is MalformedError', () => {
  for (const name of PUB) malformed(() => parsePublicKey(Buffer.concat([pubBlob(name), Buffer.of(0)])), /trailing/);
});

Parse('unsupported and hostile key type names are refused, escaped in the message', () => {
  for (const type of ['ssh-dss', 'ssh-ed448', 'ecdsa-sha2-nistp192', 'sk-ssh-ed25519@openssh.com', 'ssh-rsa-cert-v01@openssh.com', '']) {
    malformed(() => parsePublicKey(new SshWriter().string(type).string(new Uint8Array(32)).bytes()), /unsupported public key type/);
  }
  try {
    parsePublicKey(new SshWriter().string('evil\x1b[2J\n"').bytes());
    assert.unreachable();
  } catch (err) {
    assert.not.match((err as Error).message, /[\x00-\x1f]/);
    assert.ok((err as Error).message.includes('evil\\x1b[2J\\x0a\\x22'), (err as Error).message);
  }
});

Parse('ed25519 keys must be exactly 32 bytes', () => {
  for (const len of [0, 31, 33, 64]) {
    malformed(() => parsePublicKey(new SshWriter().string('ssh-ed25519').string(new Uint8Array(len)).bytes()), /ed25519 key|exceeds/);
  }
});

Parse('a 16384-bit RSA modulus is refused from its length field alone, before any work', () => {
  // Only the length prefix: the refusal cannot have looked at (or waited for) the modulus.
  const lengthOnly = new SshWriter().string('ssh-rsa').mpint(E65537).u32(2049).bytes();
  malformed(() => parsePublicKey(lengthOnly), /RSA modulus of 2049 bytes exceeds the limit/);
  const n = Buffer.alloc(2048, 0xff);
  malformed(() => parsePublicKey(rsaBlob(E65537, n)), /RSA modulus of 2049 bytes exceeds the limit/);
});

Parse('RSA moduli outside 1024..8192 bits, even moduli and bad exponents are refused', () => {
  const odd = (bytes: number, top = 0xc0) => {
    const n = Buffer.alloc(bytes, 0x55);
    n[0] = top;
    n[bytes - 1] = 0x01;
    return n;
  };
  assert.is(parsePublicKey(rsaBlob(E65537, odd(128))).bits, 1024);
  assert.is(parsePublicKey(rsaBlob(E65537, odd(1024))).bits, 8192);
  malformed(() => parsePublicKey(rsaBlob(E65537, odd(128, 0x7f))), /1023 bits is outside/);
  malformed(() => parsePublicKey(rsaBlob(E65537, odd(64))), /512 bits is outside/);
  const even = odd(256);
  even[255] = 0x02;
  malformed(() => parsePublicKey(rsaBlob(E65537, even)), /even/);
  for (const e of [[1], [2], [0x01, 0x00, 0x00]]) {
    malformed(() => parsePublicKey(rsaBlob(Buffer.from(e), odd(256))), /odd and at least 3/);
  }
  malformed(() => parsePublicKey(rsaBlob(Buffer.from([0x01, 0, 0, 0, 0x01]), odd(256))), /exponent/);
  malformed(() => parsePublicKey(rsaBlob(new Uint8Array(0), odd(256))), /exponent/);
});

Parse('ECDSA: compressed, off-curve and wrong-size points, and a curve name that disagrees, are refused', () => {
  const blob = pubBlob('ecdsa256');
  const r = new SshReader(blob);
  r.ascii();
  r.ascii();
  const point = Buffer.from(r.bytes());
  const build = (type: string, curve: string, q: Uint8Array) => new SshWriter().string(type).string(curve).string(q).bytes();
  assert.is(parsePublicKey(build('ecdsa-sha2-nistp256', 'nistp256', point)).type, 'ecdsa-sha2-nistp256');
  const compressed = Buffer.concat([Buffer.of(2 + (point[64]! & 1)), point.subarray(1, 33)]);
  malformed(() => parsePublicKey(build('ecdsa-sha2-nistp256', 'nistp256', compressed)), /uncompressed/);
  const offCurve = Buffer.from(point);
  offCurve[64]! ^= 1;
  malformed(() => parsePublicKey(build('ecdsa-sha2-nistp256', 'nistp256', offCurve)), /not on the curve/);
  malformed(() => parsePublicKey(build('ecdsa-sha2-nistp256', 'nistp256', Buffer.concat([Buffer.of(4), Buffer.alloc(64)]))), /not on the curve/);
  malformed(() => parsePublicKey(build('ecdsa-sha2-nistp256', 'nistp384', point)), /curve "nistp384" does not match/);
  malformed(() => parsePublicKey(build('ecdsa-sha2-nistp384', 'nistp384', point)), /uncompressed/);
});

Parse('random bytes only ever give MalformedError', () => {
  const typed = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc
      .tuple(fc.constantFrom('ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp521'), fc.uint8Array({ maxLength: 300 }))
      .map(([t, rest]) => Buffer.concat([encodeString(t), rest])),
  );
  fc.assert(
    fc.property(typed, (b) => {
      try {
        parsePublicKey(b);
      } catch (err) {
        if (!(err instanceof MalformedError)) throw err;
      }
    }),
    { numRuns: 2000 },
  );
});

Parse.run();

// ---------------------------------------------------------------------------------------------
const Rfc = suite('public-key: RFC 8032 §7.1 ed25519 vectors');

interface Vector { name: string; secretKey: string; publicKey: string; message: string; signature: string }
const vectorFile = JSON.parse(fs.readFileSync(path.join(ROOT, 'fixtures/vectors/ed25519-rfc8032.json'), 'utf8')) as {
  source: string;
  vectors: Vector[];
};

Rfc('the vector file names its source and holds TEST 1, 2, 3 and 1024', () => {
  assert.match(vectorFile.source, /RFC 8032/);
  for (const n of ['TEST 1', 'TEST 2', 'TEST 3', 'TEST 1024']) assert.ok(vectorFile.vectors.some((v) => v.name === n), n);
});

for (const v of vectorFile.vectors) {
  const pk = Buffer.from(v.publicKey, 'hex');
  const msg = Buffer.from(v.message, 'hex');
  const sig = Buffer.from(v.signature, 'hex');
  const key = parsePublicKey(new SshWriter().string('ssh-ed25519').string(pk).bytes());

  Rfc(`${v.name}: a host key with this seed signs exactly the published signature`, () => {
    const file = encodeOpensshEd25519(Buffer.from(v.secretKey, 'hex'), pk, v.name, 0x5eed5eed);
    const host = parseHostKey(file);
    assert.is(hex(host.sign('ssh-ed25519', msg)), hex(sigBlob('ssh-ed25519', sig)));
  });

  Rfc(`${v.name}: verifies, and fails for a flipped bit in the message or the signature`, () => {
    assert.ok(verifySignature(key, 'ssh-ed25519', sigBlob('ssh-ed25519', sig), msg));
    const badSig = Buffer.from(sig);
    badSig[10]! ^= 0x08;
    assert.not.ok(verifySignature(key, 'ssh-ed25519', sigBlob('ssh-ed25519', badSig), msg));
    const badMsg = Buffer.concat([msg, Buffer.of(0)]);
    assert.not.ok(verifySignature(key, 'ssh-ed25519', sigBlob('ssh-ed25519', sig), badMsg));
  });
}

Rfc('a non-canonical S (S + L) is refused: strict RFC 8032 verification', () => {
  const v = vectorFile.vectors[0]!;
  const L = 2n ** 252n + 27742317777372353535851937790883648493n;
  const sig = Buffer.from(v.signature, 'hex');
  const s = BigInt('0x' + Buffer.from(sig.subarray(32)).reverse().toString('hex')) + L;
  const sBytes = Buffer.from(s.toString(16).padStart(64, '0'), 'hex').reverse();
  const forged = Buffer.concat([sig.subarray(0, 32), sBytes]);
  const key = parsePublicKey(new SshWriter().string('ssh-ed25519').string(Buffer.from(v.publicKey, 'hex')).bytes());
  assert.not.ok(verifySignature(key, 'ssh-ed25519', sigBlob('ssh-ed25519', forged), Buffer.alloc(0)));
  assert.not.ok(verifySignature(key, 'ssh-ed25519', sigBlob('ssh-ed25519', sig.subarray(0, 63)), Buffer.alloc(0)));
});

Rfc.run();

// ---------------------------------------------------------------------------------------------
const Verify = suite('public-key: verifySignature on hostile input');

const ed = loadHostKey(path.join(FIXTURES, 'ed25519'));
const p256 = loadHostKey(path.join(FIXTURES, 'ecdsa256'));
const rsa = loadHostKey(path.join(FIXTURES, 'rsa2048-pkcs8'), { allowSshRsaSha1: true });
const pubOf = (k: { publicBlob: Uint8Array }): PublicKey => parsePublicKey(k.publicBlob);

Verify('a signature named differently from the requested algorithm is refused', () => {
  const sig256 = rsa.sign('rsa-sha2-256', DATA);
  assert.ok(verifySignature(pubOf(rsa), 'rsa-sha2-256', sig256, DATA));
  assert.not.ok(verifySignature(pubOf(rsa), 'rsa-sha2-512', sig256, DATA));
  // Same bytes relabelled: the name inside must match the name requested, and the hash must match both.
  const inner = new SshReader(sig256);
  inner.ascii();
  const relabelled = sigBlob('rsa-sha2-512', inner.bytes());
  assert.not.ok(verifySignature(pubOf(rsa), 'rsa-sha2-512', relabelled, DATA));
});

Verify('an algorithm that does not suit the key type is refused', () => {
  const edSig = ed.sign('ssh-ed25519', DATA);
  assert.not.ok(verifySignature(pubOf(rsa), 'ssh-ed25519', edSig, DATA));
  assert.not.ok(verifySignature(pubOf(ed), 'rsa-sha2-256', rsa.sign('rsa-sha2-256', DATA), DATA));
  const p384 = loadHostKey(path.join(FIXTURES, 'ecdsa384'));
  assert.not.ok(verifySignature(pubOf(p256), 'ecdsa-sha2-nistp384', p384.sign('ecdsa-sha2-nistp384', DATA), DATA));
});

Verify('ssh-rsa (SHA-1) is refused unless allowed', () => {
  const sig = rsa.sign('ssh-rsa', DATA);
  assert.not.ok(verifySignature(pubOf(rsa), 'ssh-rsa', sig, DATA));
  assert.not.ok(verifySignature(pubOf(rsa), 'ssh-rsa', sig, DATA, { allowSshRsaSha1: false }));
  assert.ok(verifySignature(pubOf(rsa), 'ssh-rsa', sig, DATA, { allowSshRsaSha1: true }));
});

Verify('truncated or padded signature blobs return false and never throw', () => {
  for (const [key, alg] of [[ed, 'ssh-ed25519'], [p256, 'ecdsa-sha2-nistp256'], [rsa, 'rsa-sha2-512']] as const) {
    const blob = key.sign(alg, DATA);
    for (let i = 0; i < blob.length; i++) assert.not.ok(verifySignature(pubOf(key), alg, blob.subarray(0, i), DATA));
    assert.not.ok(verifySignature(pubOf(key), alg, Buffer.concat([blob, Buffer.of(0)]), DATA));
  }
});

Verify('random signature blobs return false and never throw', () => {
  const keys = [[ed, 'ssh-ed25519'], [p256, 'ecdsa-sha2-nistp256'], [rsa, 'rsa-sha2-256']] as const;
  fc.assert(
    fc.property(fc.constantFrom(...keys), fc.uint8Array({ maxLength: 600 }), ([key, alg], junk) => {
      assert.not.ok(verifySignature(pubOf(key), alg, junk, DATA));
      assert.not.ok(verifySignature(pubOf(key), alg, sigBlob(alg, junk), DATA));
    }),
    { numRuns: 300 },
  );
});

/** Splits an ECDSA signature blob into r and s. */
function ecdsaRS(blob: Uint8Array): [bigint, bigint] {
  const r = new SshReader(blob);
  r.ascii();
  const inner = new SshReader(r.bytes());
  const big = (b: Uint8Array) => BigInt('0x' + (hex(b) || '0'));
  return [big(inner.mpintBytes(66)), big(inner.mpintBytes(66))];
}
const ecdsaBlob = (alg: string, r: bigint, s: bigint) =>
  sigBlob(alg, new SshWriter().mpintBig(r).mpintBig(s).bytes());

Verify('ECDSA: high-S is accepted like OpenSSH does; r or s of 0 or ≥ n, or oversized, is refused', () => {
  for (const name of ['ecdsa256', 'ecdsa384', 'ecdsa521']) {
    const key = loadHostKey(path.join(FIXTURES, name));
    const alg = key.type;
    const n = ECDSA_CURVES[alg as keyof typeof ECDSA_CURVES].ecdsa.Point.Fn.ORDER;
    const [r, s] = ecdsaRS(key.sign(alg, DATA));
    const highS = ecdsaBlob(alg, r, n - s);
    assert.ok(verifySignature(pubOf(key), alg, highS, DATA), `${name} high-S`);
    assert.not.ok(verifySignature(pubOf(key), alg, ecdsaBlob(alg, 0n, s), DATA));
    assert.not.ok(verifySignature(pubOf(key), alg, ecdsaBlob(alg, r, 0n), DATA));
    assert.not.ok(verifySignature(pubOf(key), alg, ecdsaBlob(alg, r + n, s), DATA));
    assert.not.ok(verifySignature(pubOf(key), alg, ecdsaBlob(alg, r, s + n), DATA));
    assert.not.ok(verifySignature(pubOf(key), alg, ecdsaBlob(alg, r, n), DATA));
    assert.not.ok(verifySignature(pubOf(key), alg, ecdsaBlob(alg, r << 600n, s), DATA));
  }
});

Verify('ECDSA: the data is hashed once — node:crypto agrees on which signatures are valid', () => {
  // Valid for node over DATA means noble hashed DATA exactly once with the curve's hash.
  const pk = pubOf(p256);
  assert.ok(pk.type === 'ecdsa-sha2-nistp256');
  const pub = createPublicKey({
    key: {
      kty: 'EC',
      crv: 'P-256',
      x: Buffer.from(pk.point.subarray(1, 33)).toString('base64url'),
      y: Buffer.from(pk.point.subarray(33)).toString('base64url'),
    },
    format: 'jwk',
  });
  const [r, s] = ecdsaRS(p256.sign(p256.type, DATA));
  const p1363 = Buffer.from(r.toString(16).padStart(64, '0') + s.toString(16).padStart(64, '0'), 'hex');
  assert.ok(nodeVerify('sha256', DATA, { key: pub, dsaEncoding: 'ieee-p1363' }, p1363));
});

Verify('RSA: a signature with its leading zero byte stripped verifies, a longer one does not', () => {
  // Some clients strip leading zeros and OpenSSH pads them back; find a signature that starts with 0.
  let data: Buffer | undefined;
  let sig: Uint8Array | undefined;
  for (let i = 0; i < 8192 && sig === undefined; i++) {
    const d = Buffer.from(`message ${i}`);
    const inner = new SshReader(rsa.sign('rsa-sha2-256', d));
    inner.ascii();
    const s = inner.bytes();
    if (s[0] === 0) [data, sig] = [d, s];
  }
  assert.ok(sig !== undefined && data !== undefined, 'no signature with a leading zero in 8192 tries');
  assert.ok(verifySignature(pubOf(rsa), 'rsa-sha2-256', sigBlob('rsa-sha2-256', sig), data));
  assert.ok(verifySignature(pubOf(rsa), 'rsa-sha2-256', sigBlob('rsa-sha2-256', sig.subarray(1)), data));
  const longer = Buffer.concat([Buffer.of(0), sig]);
  assert.not.ok(verifySignature(pubOf(rsa), 'rsa-sha2-256', sigBlob('rsa-sha2-256', longer), data));
  assert.not.ok(verifySignature(pubOf(rsa), 'rsa-sha2-256', sigBlob('rsa-sha2-256', new Uint8Array(0)), data));
});

Verify.run();
