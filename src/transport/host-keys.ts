/**
 * Host keys: loading them from files, generating the default one, and signing the exchange hash
 * (RFC 4253 §8). Formats: OpenSSH's own "openssh-key-v1" (unencrypted) and PEM/PKCS#8 as written
 * by `ssh-keygen -m PEM` or openssl. Types: ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa.
 *
 * Secret material lives only in closures (seeds, scalars) and KeyObjects (RSA), never in an
 * enumerable property, so neither JSON.stringify nor util.inspect of a HostKey can print it.
 */
import {
  createPrivateKey,
  createPublicKey,
  randomBytes,
  sign as nodeSign,
  verify as nodeVerify,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { SshWriter } from '../wire/writer.js';
import type { HostKey } from './host-key-types.js';
import {
  ECDSA_CURVES,
  ENCRYPTED_KEY_HINT,
  bitLength,
  bytesEqual,
  decodeOpensshPrivateKey,
  encodeEcdsaBlob,
  encodeEd25519Blob,
  encodeOpensshEd25519,
  encodeRsaBlob,
  fingerprint,
  isOpensshPrivateKey,
  type EcdsaKeyType,
} from './openssh-key.js';

export type { HostKey } from './host-key-types.js';

export interface HostKeyOptions {
  /** Also offer `ssh-rsa` (RSA with SHA-1, RFC 4253) for RSA keys. Off: SHA-1 is broken for signatures. */
  readonly allowSshRsaSha1?: boolean;
}

/** A host key file that cannot be used. The message names the file and, where there is one, the fix. */
export class HostKeyError extends Error {
  readonly code = 'ERR_HOST_KEY';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HostKeyError';
  }
}

/** File name of the generated key in the state directory, as `ssh-keygen -A` names it. */
export const DEFAULT_HOST_KEY_FILE = 'ssh_host_ed25519_key';

/** OpenSSH's own limits for RSA host keys (sshkey.h): below 2048 bits is too weak to offer today. */
const RSA_MIN_HOST_BITS = 2048;
const RSA_MAX_BITS = 16384;
const MAX_KEY_FILE_BYTES = 64 * 1024;

/** RFC 8332 §3 (rsa-sha2-*) and RFC 4253 §6.6 (ssh-rsa). */
const RSA_HASH: Record<string, string> = { 'rsa-sha2-512': 'sha512', 'rsa-sha2-256': 'sha256', 'ssh-rsa': 'sha1' };

interface Decoded {
  readonly key: HostKey;
  /** The comment stored in the file; PEM files have none. */
  readonly comment: string;
}

/** Parses a host key from the contents of a key file. */
export function parseHostKey(text: string | Uint8Array, opts: HostKeyOptions = {}): HostKey {
  try {
    return decode(typeof text === 'string' ? text : Buffer.from(text).toString('latin1'), opts).key;
  } catch (err) {
    // Whatever the parser or OpenSSL threw (a damaged RSA key can fail inside bignum code),
    // the caller sees one error class.
    if (err instanceof HostKeyError) throw err;
    const msg = (err as Error).message.replace('<file>', 'FILE');
    throw new HostKeyError(`unusable host key: ${msg}`, { cause: err });
  }
}

/** Reads and parses one host key file. Every failure is a HostKeyError naming the file. */
export function loadHostKey(file: string, opts: HostKeyOptions = {}): HostKey {
  return loadDecoded(file, opts).key;
}

/** The line `ssh-keygen -lf` prints for a key: `<bits> SHA256:<b64> <comment> (<TYPE>)`. */
export function fingerprintLine(key: HostKey, comment: string): string {
  const label = key.type === 'ssh-ed25519' ? 'ED25519' : key.type === 'ssh-rsa' ? 'RSA' : 'ECDSA';
  return `${key.bits} ${key.fingerprint} ${comment} (${label})`;
}

/**
 * The server's host keys. With `paths`, loads each. Without, uses `<stateDir>/ssh_host_ed25519_key`,
 * generating it on first start and reusing it afterwards, so clients do not see the key change on
 * every restart. Logs one `ssh-keygen -lf` line per key so operators can compare fingerprints.
 */
export function loadOrCreateHostKeys(
  paths: readonly string[],
  stateDir: string,
  log: (msg: string) => void,
  opts: HostKeyOptions = {},
): HostKey[] {
  const loaded: Decoded[] = [];
  if (paths.length > 0) {
    for (const file of paths) {
      warnIfExposed(file, log);
      loaded.push(loadDecoded(file, opts));
    }
  } else {
    const file = path.join(stateDir, DEFAULT_HOST_KEY_FILE);
    let created = false;
    try {
      created = !fs.existsSync(file) && createEd25519KeyFile(file);
    } catch (err) {
      throw new HostKeyError(`cannot create host key ${file}: ${(err as Error).message}`, { cause: err });
    }
    if (created) log(`generated a new ed25519 host key in ${file}`);
    warnIfExposed(file, log);
    loaded.push(loadDecoded(file, opts));
    log(
      `warning: no --host-key given, using ${file}; instances behind a load balancer must share host keys ` +
        '(pass the same --host-key files to each), or clients will see the host key change between connections',
    );
  }
  // Two keys offering the same algorithm: only one could ever be used, which is surely a mistake.
  const offered = new Map<string, string>();
  for (const { key } of loaded) {
    for (const alg of key.algorithms) {
      const other = offered.get(alg);
      if (other !== undefined) {
        throw new HostKeyError(`host keys ${other} and ${key.fingerprint} both offer ${alg}; give one key per type`);
      }
      offered.set(alg, key.fingerprint);
    }
  }
  for (const d of loaded) log(fingerprintLine(d.key, d.comment));
  return loaded.map((d) => d.key);
}

function loadDecoded(file: string, opts: HostKeyOptions): Decoded {
  let text: string;
  try {
    text = readCapped(file);
  } catch (err) {
    throw new HostKeyError(`cannot read host key ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const d = decode(text, opts);
    // ssh-keygen prints "no comment" for a PEM file; the path tells an operator more.
    return { key: d.key, comment: d.comment || file };
  } catch (err) {
    const msg = (err as Error).message.replace('<file>', shellQuote(file));
    throw new HostKeyError(`host key ${file}: ${msg}`, { cause: err });
  }
}

/** Reads at most MAX_KEY_FILE_BYTES: a wrong path such as /dev/zero must not hang startup. */
function readCapped(file: string): string {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(MAX_KEY_FILE_BYTES + 1);
    let n = 0;
    for (let got; n < buf.length && (got = fs.readSync(fd, buf, n, buf.length - n, null)) > 0; ) n += got;
    if (n > MAX_KEY_FILE_BYTES) throw new Error(`larger than ${MAX_KEY_FILE_BYTES} bytes, not a key file`);
    const text = buf.toString('latin1', 0, n);
    buf.fill(0);
    return text;
  } finally {
    fs.closeSync(fd);
  }
}

function decode(text: string, opts: HostKeyOptions): Decoded {
  if (isOpensshPrivateKey(text)) return decodeOpenssh(text, opts);
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(text) || /Proc-Type:\s*4,ENCRYPTED/.test(text)) {
    throw new HostKeyError(ENCRYPTED_KEY_HINT);
  }
  if (/-----BEGIN (RSA |EC )?PRIVATE KEY-----/.test(text)) return { key: decodePem(text, opts), comment: '' };
  if (/^\s*(ssh-|ecdsa-)\S+ AAAA/.test(text)) {
    throw new HostKeyError('this is a public key; pass the private key file (the one without .pub)');
  }
  throw new HostKeyError('not a private key file (expected OPENSSH PRIVATE KEY or PEM armor)');
}

function decodeOpenssh(text: string, opts: HostKeyOptions): Decoded {
  const k = decodeOpensshPrivateKey(text);
  switch (k.type) {
    case 'ssh-ed25519':
      return { key: ed25519Key(k.seed, k.pk), comment: k.comment };
    case 'ssh-rsa': {
      const [n, d, p, q, iqmp] = [k.n, k.d, k.p, k.q, k.iqmp].map(toBig) as [bigint, bigint, bigint, bigint, bigint];
      if (p * q !== n) throw new HostKeyError('RSA primes do not multiply to the modulus: the private key is damaged');
      // node:crypto takes RSA private keys as JWK; it wants the CRT exponents OpenSSH does not store.
      const jwk: JsonWebKey = {
        kty: 'RSA',
        n: b64u(k.n),
        e: b64u(k.e),
        d: b64u(k.d),
        p: b64u(k.p),
        q: b64u(k.q),
        dp: b64uBig(d % (p - 1n)),
        dq: b64uBig(d % (q - 1n)),
        qi: b64uBig(iqmp),
      };
      const priv = createPrivateKey({ key: jwk, format: 'jwk' });
      return { key: rsaKey(priv, k.n, k.e, opts), comment: k.comment };
    }
    default:
      return { key: ecdsaKey(k.type, k.q, k.d), comment: k.comment };
  }
}

function decodePem(text: string, opts: HostKeyOptions): HostKey {
  let priv: KeyObject;
  try {
    priv = createPrivateKey({ key: text, format: 'pem' });
  } catch (err) {
    throw new HostKeyError(`not a readable PEM private key: ${(err as Error).message}`, { cause: err });
  }
  const kind = priv.asymmetricKeyType;
  if (kind !== 'rsa' && kind !== 'ec' && kind !== 'ed25519') {
    throw new HostKeyError(`unsupported key type ${String(kind)}; use ed25519, ECDSA or RSA`);
  }
  const jwk = priv.export({ format: 'jwk' });
  switch (kind) {
    case 'rsa':
      return rsaKey(priv, unb64u(jwk.n), unb64u(jwk.e), opts);
    case 'ec': {
      const type = (Object.keys(ECDSA_CURVES) as EcdsaKeyType[]).find((t) => ECDSA_CURVES[t].jwkCurve === jwk.crv);
      if (type === undefined) throw new HostKeyError(`unsupported EC curve ${String(jwk.crv)}; use P-256, P-384 or P-521`);
      const q = Buffer.concat([Buffer.of(4), unb64u(jwk.x), unb64u(jwk.y)]);
      return ecdsaKey(type, q, unb64u(jwk.d));
    }
    case 'ed25519':
      return ed25519Key(unb64u(jwk.d), unb64u(jwk.x));
  }
}

function ed25519Key(seed: Uint8Array, pk: Uint8Array): HostKey {
  if (seed.length !== 32 || !bytesEqual(ed25519.getPublicKey(seed), pk)) {
    throw new HostKeyError('ed25519 private key does not match its public key');
  }
  const secret = Uint8Array.from(seed); // our own copy, not a view into a shared or pooled buffer
  // RFC 8709 §6: the signature is the 64-byte R ‖ S of RFC 8032, over the data itself.
  return makeKey('ssh-ed25519', ['ssh-ed25519'], encodeEd25519Blob(pk), 256, (_alg, data) => ed25519.sign(data, secret));
}

function ecdsaKey(type: EcdsaKeyType, q: Uint8Array, d: Uint8Array): HostKey {
  const c = ECDSA_CURVES[type];
  const len = c.ecdsa.lengths.secretKey!;
  // The file stores d as an mpint, so leading zero bytes are gone; noble wants exactly `len` bytes.
  const secret = new Uint8Array(len);
  if (d.length > len) throw new HostKeyError('ECDSA private scalar is too long');
  secret.set(d, len - d.length);
  if (!c.ecdsa.utils.isValidSecretKey(secret) || !bytesEqual(c.ecdsa.getPublicKey(secret, false), q)) {
    throw new HostKeyError(`${type} private key does not match its public key`);
  }
  return makeKey(type, [type], encodeEcdsaBlob(type, q), c.bits, (_alg, data) => {
    // prehash: true makes noble hash `data` with the curve's own hash (SHA-256/384/512 for
    // nistp256/384/521, RFC 5656 §6.2.1) — so we pass the data, never a digest, or it would be
    // hashed twice. extraEntropy: false keeps the RFC 6979 deterministic nonce. Low-S is what
    // noble produces; verifiers accept either half.
    const rs = c.ecdsa.sign(data, secret, { prehash: true, lowS: true, extraEntropy: false, format: 'compact' });
    // RFC 5656 §3.1.2: the signature is `mpint r ‖ mpint s` inside the outer string.
    return new SshWriter(2 * len + 16).mpint(rs.subarray(0, len)).mpint(rs.subarray(len)).bytes();
  });
}

/**
 * RSA signs through node:crypto (OpenSSL): noble has no RSA, and OpenSSL's private-key operation
 * is blinded and constant-time, which a hand-written bigint modexp would not be.
 */
function rsaKey(priv: KeyObject, n: Uint8Array, e: Uint8Array, opts: HostKeyOptions): HostKey {
  const bits = bitLength(n);
  if (bits < RSA_MIN_HOST_BITS) {
    throw new HostKeyError(
      `RSA host key has ${bits} bits; at least ${RSA_MIN_HOST_BITS} are required (or use ssh-keygen -t ed25519)`,
    );
  }
  if (bits > RSA_MAX_BITS) throw new HostKeyError(`RSA host key has ${bits} bits; clients refuse more than ${RSA_MAX_BITS}`);
  // A PEM file is not checked for consistency by OpenSSL, and a damaged d, p, q or iqmp in either
  // format would only show as signatures that clients reject. One signature now catches all of them.
  const pub = createPublicKey({ key: { kty: 'RSA', n: b64u(n), e: b64u(e) }, format: 'jwk' });
  const probe = Buffer.from('s3gw host key self-test');
  if (!nodeVerify('sha256', probe, pub, nodeSign('sha256', probe, priv))) {
    throw new HostKeyError('RSA private key does not match its public key');
  }
  // Every RSA key can sign ssh-rsa; whether that is offered is decided once, by the server's
  // allowSshRsaSha1 (hostKeyAlgorithmsFor), so the option cannot be half set.
  void opts;
  const algorithms = ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  // PKCS#1 v1.5 is node's default padding for RSA keys, as RFC 8332 §3 requires.
  return makeKey('ssh-rsa', algorithms, encodeRsaBlob(e, n), bits, (alg, data) => nodeSign(RSA_HASH[alg]!, data, priv));
}

function makeKey(
  type: string,
  algorithms: readonly string[],
  publicBlob: Uint8Array,
  bits: number,
  signRaw: (algorithm: string, data: Uint8Array) => Uint8Array,
): HostKey {
  const algs = Object.freeze([...algorithms]);
  return Object.freeze({
    type,
    algorithms: algs,
    // A plain copy: the encoder's buffer may be a slice of Node's shared allocation pool.
    publicBlob: new Uint8Array(publicBlob),
    fingerprint: fingerprint(publicBlob),
    bits,
    sign(algorithm: string, data: Uint8Array): Uint8Array {
      // Negotiation only picks offered algorithms, so anything else is a bug in the caller.
      if (!algs.includes(algorithm)) throw new Error(`host key ${type} does not sign as ${algorithm}`);
      const sig = signRaw(algorithm, data);
      return new SshWriter(sig.length + algorithm.length + 8).string(algorithm).string(sig).bytes();
    },
  });
}

/**
 * Writes a new ed25519 key to `file` without ever exposing a partial file: temp file (0600) in
 * the same directory, fsync, then link() into place. link() fails if `file` appeared meanwhile,
 * so two instances starting together on a shared directory both end up using the one key that
 * won instead of one silently replacing the other's. Returns false if another writer won.
 */
function createEd25519KeyFile(file: string): boolean {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const seed = randomBytes(32);
  const text = encodeOpensshEd25519(seed, ed25519.getPublicKey(seed), `s3gw@${os.hostname()}`, randomBytes(4).readUInt32BE(0));
  seed.fill(0);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    fs.fchmodSync(fd, 0o600); // the umask can only remove bits, but say it outright
    fs.writeFileSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    try {
      fs.linkSync(tmp, file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return false;
      // Some filesystems (FAT, some FUSE and network mounts) have no hard links: rename instead.
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
      fs.renameSync(tmp, file);
    }
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  try {
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd); // make the new name durable; not possible everywhere, hence best effort
    } finally {
      fs.closeSync(dfd);
    }
  } catch {
    /* best effort */
  }
  return true;
}

/** sshd refuses keys others can read; we warn, since mounted secrets are often 0644 by default. */
function warnIfExposed(file: string, log: (msg: string) => void): void {
  if (process.platform === 'win32') return;
  try {
    const mode = fs.statSync(file).mode & 0o777;
    if (mode & 0o077) log(`warning: host key ${file} has mode ${mode.toString(8)}; others may read it, chmod 600 it`);
  } catch {
    /* a missing file is reported by the load that follows */
  }
}

function shellQuote(s: string): string {
  return /^[\w./@:+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function toBig(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt('0x' + Buffer.from(b).toString('hex'));
}

function b64u(b: Uint8Array): string {
  return Buffer.from(b).toString('base64url');
}

function b64uBig(v: bigint): string {
  let hex = v.toString(16);
  if (hex.length & 1) hex = '0' + hex;
  return Buffer.from(hex, 'hex').toString('base64url');
}

function unb64u(s: string | undefined): Uint8Array {
  if (s === undefined) throw new HostKeyError('key is missing a component');
  return Buffer.from(s, 'base64url');
}
