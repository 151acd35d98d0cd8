import { suite } from 'uvu';
import { hostKeyAlgorithmsFor } from '../../src/transport/algorithms.js';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createPublicKey, verify as nodeVerify, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import {
  DEFAULT_HOST_KEY_FILE,
  HostKeyError,
  fingerprintLine,
  loadHostKey,
  loadOrCreateHostKeys,
  parseHostKey,
  type HostKey,
} from '../../src/transport/host-keys.js';
import { ECDSA_CURVES, decodeOpensshPrivateKey, isEcdsaKeyType } from '../../src/transport/openssh-key.js';
import { parsePublicKey, verifySignature } from '../../src/auth/public-key.js';
import { SshReader } from '../../src/wire/reader.js';

// Compiled to dist/spec/transport/, so the repository root is three levels up.
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const FIXTURES = path.join(ROOT, 'fixtures/host-keys');
const SSH_KEYGEN = '/usr/bin/ssh-keygen';
if (!fs.existsSync(SSH_KEYGEN)) throw new Error(`${SSH_KEYGEN} is missing: apt-get install -y openssh-client`);

/** Loadable host keys: [file, type, bits]. */
const GOOD: ReadonlyArray<[string, string, number]> = [
  ['ed25519', 'ssh-ed25519', 256],
  ['ecdsa256', 'ecdsa-sha2-nistp256', 256],
  ['ecdsa384', 'ecdsa-sha2-nistp384', 384],
  ['ecdsa521', 'ecdsa-sha2-nistp521', 521],
  ['rsa3072', 'ssh-rsa', 3072],
  ['rsa3072-pem', 'ssh-rsa', 3072],
  ['ecdsa256-pem', 'ecdsa-sha2-nistp256', 256],
  ['ecdsa384-pkcs8', 'ecdsa-sha2-nistp384', 384],
  ['rsa2048-pkcs8', 'ssh-rsa', 2048],
];

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 's3gw-host-keys-'));
process.on('exit', () => fs.rmSync(tmpRoot, { recursive: true, force: true }));

/** A 0600 copy: git does not keep file modes, and ssh-keygen refuses private keys others can read. */
function privateCopy(name: string): string {
  const dst = path.join(tmpRoot, `copy-${name}`);
  fs.copyFileSync(path.join(FIXTURES, name), dst);
  fs.chmodSync(dst, 0o600);
  return dst;
}

function sshKeygen(...args: string[]): string {
  return execFileSync(SSH_KEYGEN, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

function fixtureText(name: string): string {
  return fs.readFileSync(path.join(FIXTURES, name), 'latin1');
}

function throwsWith(fn: () => unknown, pattern: RegExp): Error {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof Error);
    assert.match((err as Error).message, pattern);
    return err as Error;
  }
  assert.unreachable(`expected an error matching ${pattern}`);
  throw new Error('unreachable');
}

/** Rewrites the binary inside an OPENSSH PRIVATE KEY armor (for damaged-file tests). */
function editOpenssh(text: string, edit: (raw: Buffer, privStart: number) => Buffer): string {
  const b64 = text.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
  const raw = Buffer.from(b64, 'base64');
  const r = new SshReader(raw, 15);
  r.bytes(); // cipher
  r.bytes(); // kdf
  r.bytes(); // kdf options
  r.u32();
  r.bytes(); // public blob
  const privStart = r.pos + 4;
  const out = edit(raw, privStart).toString('base64');
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${out.replace(/.{70}/g, '$&\n')}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

/** Checks an SSH signature blob with node:crypto alone, so a misuse of noble (double hashing, wrong curve) shows. */
function nodeCheck(key: HostKey, sigBlob: Uint8Array, data: Uint8Array): boolean {
  const r = new SshReader(sigBlob);
  const alg = r.ascii();
  const sig = r.bytes();
  r.assertEnd();
  const pk = parsePublicKey(key.publicBlob);
  const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');
  let pub: KeyObject;
  if (pk.type === 'ssh-ed25519') {
    pub = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64u(pk.key) }, format: 'jwk' });
    return nodeVerify(null, data, pub, sig);
  }
  if (pk.type === 'ssh-rsa') {
    pub = createPublicKey({ key: { kty: 'RSA', n: b64u(pk.n), e: b64u(pk.e) }, format: 'jwk' });
    const hash = { 'rsa-sha2-512': 'sha512', 'rsa-sha2-256': 'sha256', 'ssh-rsa': 'sha1' }[alg]!;
    return nodeVerify(hash, data, pub, sig);
  }
  assert.ok(isEcdsaKeyType(pk.type));
  const c = ECDSA_CURVES[pk.type];
  const len = c.ecdsa.lengths.secretKey!;
  const half = len * 2;
  pub = createPublicKey({
    key: { kty: 'EC', crv: c.jwkCurve, x: b64u(pk.point.subarray(1, 1 + len)), y: b64u(pk.point.subarray(1 + len)) },
    format: 'jwk',
  });
  const rs = new SshReader(sig);
  const rr = rs.mpintBytes(len);
  const ss = rs.mpintBytes(len);
  rs.assertEnd();
  const p1363 = new Uint8Array(half);
  p1363.set(rr, len - rr.length);
  p1363.set(ss, half - ss.length);
  return nodeVerify(c.nodeHash, data, { key: pub, dsaEncoding: 'ieee-p1363' }, p1363);
}

// ---------------------------------------------------------------------------------------------
const Load = suite('host-keys: loading fixture keys');

for (const [name, type, bits] of GOOD) {
  Load(`${name} loads as ${type} with the bits and SHA256 fingerprint ssh-keygen -lf prints`, () => {
    const file = privateCopy(name);
    const key = loadHostKey(file);
    assert.is(key.type, type);
    assert.is(key.bits, bits);
    const [kgBits, kgFp] = sshKeygen('-lf', file).split(' ');
    assert.is(String(key.bits), kgBits);
    assert.is(key.fingerprint, kgFp);
  });

  Load(`${name}: public blob equals the base64 of ssh-keygen -y`, () => {
    const file = privateCopy(name);
    const [kgType, kgB64] = sshKeygen('-y', '-f', file).split(' ');
    const key = loadHostKey(file);
    assert.is(kgType, type);
    assert.is(Buffer.from(key.publicBlob).toString('base64'), kgB64);
  });
}

Load('parseHostKey of the contents equals loadHostKey of the file', () => {
  for (const [name] of GOOD) {
    const a = loadHostKey(path.join(FIXTURES, name));
    const b = parseHostKey(fs.readFileSync(path.join(FIXTURES, name)));
    assert.is(b.fingerprint, a.fingerprint);
    assert.equal(Buffer.from(b.publicBlob), Buffer.from(a.publicBlob));
  }
});

Load('algorithms: ed25519 and ECDSA sign as their own name; RSA as rsa-sha2-512, rsa-sha2-256, then ssh-rsa', () => {
  assert.equal(loadHostKey(path.join(FIXTURES, 'ed25519')).algorithms, ['ssh-ed25519']);
  assert.equal(loadHostKey(path.join(FIXTURES, 'ecdsa521')).algorithms, ['ecdsa-sha2-nistp521']);
  assert.equal(loadHostKey(path.join(FIXTURES, 'rsa3072')).algorithms, ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
});

Load('the server offers ssh-rsa only with allowSshRsaSha1, and last', () => {
  const keys = [loadHostKey(path.join(FIXTURES, 'ed25519')), loadHostKey(path.join(FIXTURES, 'rsa3072'))];
  assert.equal(hostKeyAlgorithmsFor(keys, false), ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256']);
  assert.equal(hostKeyAlgorithmsFor(keys, true), ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
  assert.equal(hostKeyAlgorithmsFor([keys[0]!], true), ['ssh-ed25519']);
});

Load.run();

// ---------------------------------------------------------------------------------------------
const Sign = suite('host-keys: signing');
const DATA = Buffer.from('exchange hash H: any bytes at all \x00\xff');

for (const [name] of GOOD) {
  Sign(`${name}: every algorithm round-trips through verifySignature and verifies with node:crypto`, () => {
    const key = loadHostKey(path.join(FIXTURES, name), { allowSshRsaSha1: true });
    const pub = parsePublicKey(key.publicBlob);
    for (const alg of key.algorithms) {
      const blob = key.sign(alg, DATA);
      const r = new SshReader(blob);
      assert.is(r.ascii(), alg, 'the blob names the algorithm');
      assert.ok(verifySignature(pub, alg, blob, DATA, { allowSshRsaSha1: true }), `${alg} verifies`);
      assert.ok(nodeCheck(key, blob, DATA), `${alg} verifies with node:crypto`);
      assert.not.ok(verifySignature(pub, alg, blob, Buffer.from('other data'), { allowSshRsaSha1: true }));
      assert.not.ok(nodeCheck(key, blob, Buffer.from('other data')));
    }
  });
}

Sign('ECDSA signatures are deterministic (RFC 6979) and low-S', () => {
  for (const name of ['ecdsa256', 'ecdsa384', 'ecdsa521']) {
    const key = loadHostKey(path.join(FIXTURES, name));
    const a = key.sign(key.type, DATA);
    assert.equal(Buffer.from(key.sign(key.type, DATA)), Buffer.from(a));
    const r = new SshReader(a);
    r.ascii();
    const inner = new SshReader(r.bytes());
    inner.mpintBytes(66);
    const s = BigInt('0x' + Buffer.from(inner.mpintBytes(66)).toString('hex'));
    const n = ECDSA_CURVES[key.type as keyof typeof ECDSA_CURVES].ecdsa.Point.Fn.ORDER;
    assert.ok(s <= n / 2n);
  }
});

Sign('RSA signatures are as long as the modulus (RFC 8332 §3)', () => {
  const key = loadHostKey(path.join(FIXTURES, 'rsa3072'));
  for (const alg of key.algorithms) {
    const r = new SshReader(key.sign(alg, DATA));
    r.ascii();
    assert.is(r.bytes().length, 3072 / 8);
  }
});

Sign('sign refuses an algorithm the key does not offer', () => {
  const rsa = loadHostKey(path.join(FIXTURES, 'rsa3072'));
  throwsWith(() => rsa.sign('ssh-ed25519', DATA), /does not sign/);
  throwsWith(() => rsa.sign('ecdsa-sha2-nistp256', DATA), /does not sign/);
  const ed = loadHostKey(path.join(FIXTURES, 'ed25519'));
  throwsWith(() => ed.sign('ecdsa-sha2-nistp256', DATA), /does not sign/);
});

Sign('JSON.stringify and util.inspect of a host key do not reveal the private key', () => {
  const secrets: Array<[string, Uint8Array]> = [];
  for (const name of ['ed25519', 'ecdsa521', 'rsa3072']) {
    const k = decodeOpensshPrivateKey(fixtureText(name));
    secrets.push([name, k.type === 'ssh-ed25519' ? k.seed : k.d]);
  }
  for (const [name, secret] of secrets) {
    const key = loadHostKey(path.join(FIXTURES, name));
    assert.equal(Object.keys(key).sort(), ['algorithms', 'bits', 'fingerprint', 'publicBlob', 'sign', 'type']);
    const shown = [JSON.stringify(key), inspect(key, { depth: Infinity, showHidden: true, maxArrayLength: Infinity })];
    const forms = [
      Buffer.from(secret).toString('hex'),
      Buffer.from(secret).toString('base64'),
      Buffer.from(secret).toString('base64url'),
      Array.from(secret.subarray(0, 8)).join(','),
      Array.from(secret.subarray(0, 8)).join(', '),
    ];
    for (const text of shown) for (const f of forms) assert.not.ok(text.includes(f), `${name} leaks its secret`);
  }
});

Sign.run();

// ---------------------------------------------------------------------------------------------
const Bad = suite('host-keys: refusing unusable key files');

Bad('an encrypted openssh key is refused with the ssh-keygen -p hint', () => {
  const file = path.join(FIXTURES, 'ed25519-encrypted');
  const err = throwsWith(() => loadHostKey(file), /passphrase/);
  assert.ok(err instanceof HostKeyError);
  assert.ok(err.message.includes(`ssh-keygen -p -N '' -f ${file}`), err.message);
});

Bad('an encrypted PEM key is refused with the same hint', () => {
  const err = throwsWith(() => loadHostKey(path.join(FIXTURES, 'rsa2048-pem-encrypted')), /passphrase/);
  assert.ok(err.message.includes("ssh-keygen -p -N ''"));
});

Bad('an RSA key below 2048 bits is refused', () => {
  throwsWith(() => loadHostKey(path.join(FIXTURES, 'rsa1024')), /1024 bits; at least 2048/);
});

Bad('a checkint mismatch is refused as damage', () => {
  const text = editOpenssh(fixtureText('ed25519'), (raw, p) => {
    raw[p + 7]! ^= 1;
    return raw;
  });
  throwsWith(() => parseHostKey(text), /checkint mismatch/);
});

Bad('wrong padding after the private key is refused', () => {
  // ed25519's private section ends in padding 01 02 … 06 (ecdsa256's needs none).
  const text = editOpenssh(fixtureText('ed25519'), (raw) => {
    assert.is(raw[raw.length - 1], 6);
    raw[raw.length - 1] = 7;
    return raw;
  });
  throwsWith(() => parseHostKey(text), /padding/);
});

Bad('a file whose public key is not the private key’s is refused', () => {
  // Swap the public blob in the header for another ed25519 key of the same length.
  const other = Buffer.from(fixtureText('ed25519-encrypted.pub').split(' ')[1]!, 'base64');
  const text = editOpenssh(fixtureText('ed25519'), (raw) => {
    const at = raw.indexOf(Buffer.from('ssh-ed25519')) - 4;
    Buffer.from(other).copy(raw, at);
    return raw;
  });
  throwsWith(() => parseHostKey(text), /does not match the private key/);
});

Bad('an ed25519 secret that does not derive the stored public key is refused', () => {
  const text = editOpenssh(fixtureText('ed25519'), (raw, p) => {
    const r = new SshReader(raw, p + 8);
    r.bytes(); // type
    r.bytes(); // pk
    const skAt = r.pos + 4;
    raw[skAt]! ^= 1; // first byte of the seed
    return raw;
  });
  throwsWith(() => parseHostKey(text), /does not match its public key/);
});

Bad('an ECDSA scalar that does not match the point is refused', () => {
  const text = editOpenssh(fixtureText('ecdsa384'), (raw, p) => {
    const r = new SshReader(raw, p + 8);
    r.bytes(); // type
    r.bytes(); // curve
    r.bytes(); // Q
    const d = r.bytes();
    d[d.length - 1]! ^= 1;
    return raw;
  });
  throwsWith(() => parseHostKey(text), /does not match its public key/);
});

Bad('an RSA key with a damaged private exponent fails its self-test', () => {
  const text = editOpenssh(fixtureText('rsa3072'), (raw, p) => {
    const r = new SshReader(raw, p + 8);
    r.bytes(); // type
    r.bytes(); // n
    r.bytes(); // e
    const d = r.bytes();
    d[d.length - 1]! ^= 2;
    return raw;
  });
  throwsWith(() => parseHostKey(text), /RSA private key does not match/);
});

Bad('an RSA key whose primes do not multiply to n is refused', () => {
  const text = editOpenssh(fixtureText('rsa3072'), (raw, p) => {
    const r = new SshReader(raw, p + 8);
    for (let i = 0; i < 5; i++) r.bytes(); // type n e d iqmp
    const pp = r.bytes();
    pp[pp.length - 1]! ^= 2;
    return raw;
  });
  throwsWith(() => parseHostKey(text), /primes do not multiply/);
});

Bad('a truncated, non-base64 or foreign file is refused', () => {
  const text = fixtureText('ed25519');
  const lines = text.trim().split('\n');
  const truncated = [...lines.slice(0, 3), lines.at(-1)!].join('\n');
  throwsWith(() => parseHostKey(truncated), /truncated|base64/);
  throwsWith(() => parseHostKey(text.replace(/b3Blbn/, 'b3B*bn')), /base64/);
  throwsWith(() => parseHostKey(fixtureText('ed25519.pub')), /public key; pass the private key/);
  throwsWith(() => parseHostKey('hello'), /not a private key file/);
  throwsWith(() => parseHostKey('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'), /PEM/);
});

Bad('a missing file names the path', () => {
  const file = path.join(tmpRoot, 'no-such-key');
  const err = throwsWith(() => loadHostKey(file), /cannot read host key/);
  assert.ok(err.message.includes(file));
});

Bad.run();

// ---------------------------------------------------------------------------------------------
const Create = suite('host-keys: loadOrCreateHostKeys');

Create('with no paths it creates one ed25519 key (0600, directory 0700) that ssh-keygen reads', () => {
  const stateDir = path.join(tmpRoot, 'state-a', 'nested');
  const logs: string[] = [];
  const [key, ...rest] = loadOrCreateHostKeys([], stateDir, (m) => logs.push(m));
  assert.is(rest.length, 0);
  assert.is(key!.type, 'ssh-ed25519');
  const file = path.join(stateDir, DEFAULT_HOST_KEY_FILE);
  assert.is(fs.statSync(file).mode & 0o777, 0o600);
  assert.is(fs.statSync(stateDir).mode & 0o777, 0o700);
  assert.equal(fs.readdirSync(stateDir), [DEFAULT_HOST_KEY_FILE], 'no temp file is left behind');
  // The logged line is exactly ssh-keygen's, and the blob is what ssh-keygen -y derives.
  const line = sshKeygen('-lf', file);
  assert.ok(logs.includes(line), `${JSON.stringify(logs)} lacks ${line}`);
  assert.is(sshKeygen('-y', '-f', file).split(' ')[1], Buffer.from(key!.publicBlob).toString('base64'));
  assert.ok(logs.some((m) => m.startsWith('generated a new ed25519 host key')));
  assert.ok(logs.some((m) => /load balancer/.test(m) && m.includes('--host-key')));
  const pub = parsePublicKey(key!.publicBlob);
  assert.ok(verifySignature(pub, 'ssh-ed25519', key!.sign('ssh-ed25519', DATA), DATA));
});

Create('a second start reuses the key instead of making a new one', () => {
  const stateDir = path.join(tmpRoot, 'state-b');
  const first = loadOrCreateHostKeys([], stateDir, () => {})[0]!;
  const logs: string[] = [];
  const second = loadOrCreateHostKeys([], stateDir, (m) => logs.push(m))[0]!;
  assert.is(second.fingerprint, first.fingerprint);
  assert.not.ok(logs.some((m) => m.startsWith('generated')));
  assert.ok(logs.some((m) => /load balancer/.test(m)), 'the warning is repeated on every start');
});

Create('with paths it loads each and logs the ssh-keygen -lf line for each', () => {
  const names = ['ed25519', 'ecdsa256', 'rsa3072'];
  const files = names.map(privateCopy);
  const logs: string[] = [];
  const keys = loadOrCreateHostKeys(files, path.join(tmpRoot, 'unused'), (m) => logs.push(m));
  assert.equal(keys.map((k) => k.type), ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ssh-rsa']);
  for (const f of files) assert.ok(logs.includes(sshKeygen('-lf', f)));
  assert.not.ok(logs.some((m) => /load balancer/.test(m)));
  assert.not.ok(fs.existsSync(path.join(tmpRoot, 'unused')), 'no state directory is made when keys are given');
});

Create('a PEM key is logged with its path as the comment, since PEM has none', () => {
  const file = privateCopy('ecdsa256-pem');
  const logs: string[] = [];
  const [key] = loadOrCreateHostKeys([file], tmpRoot, (m) => logs.push(m));
  assert.ok(logs.includes(fingerprintLine(key!, file)));
  assert.ok(logs.includes(`256 ${key!.fingerprint} ${file} (ECDSA)`));
});

Create('two keys offering the same algorithm are refused', () => {
  throwsWith(
    () => loadOrCreateHostKeys([path.join(FIXTURES, 'rsa3072'), path.join(FIXTURES, 'rsa2048-pkcs8')], tmpRoot, () => {}),
    /both offer rsa-sha2-512/,
  );
});

Create('a key file others can read draws a warning', () => {
  const file = privateCopy('ecdsa384');
  fs.chmodSync(file, 0o644);
  const logs: string[] = [];
  loadOrCreateHostKeys([file], tmpRoot, (m) => logs.push(m));
  assert.ok(logs.some((m) => m.startsWith('warning:') && m.includes('644')));
});

Create.run();
