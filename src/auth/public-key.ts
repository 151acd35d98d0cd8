/**
 * User public keys: parsing the blob a client sends in USERAUTH_REQUEST "publickey" (RFC 4252 §7)
 * and verifying its signature. Blob formats: RFC 4253 §6.6 (ssh-rsa), RFC 5656 §3.1 (ECDSA),
 * RFC 8709 §4 (ed25519). Signature algorithms: RFC 8332 (rsa-sha2-256/512), RFC 5656 §3.1.2,
 * RFC 8709 §6.
 *
 * Every bound is checked before any arithmetic: the blob comes from an unauthenticated peer, and
 * a huge RSA modulus makes each verification arbitrarily slow (cf. Go CVE-2026-39829).
 */
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { SshReader } from '../wire/reader.js';
import { MalformedError } from '../wire/errors.js';
import { ECDSA_CURVES, bitLength, fingerprint, isEcdsaKeyType, type EcdsaKeyType } from '../transport/openssh-key.js';

export { fingerprint } from '../transport/openssh-key.js';

/**
 * OpenSSH refuses RSA keys under 1024 bits (SSH_RSA_MINIMUM_MODULUS_SIZE). Our upper bound of
 * 8192 is below OpenSSH's 16384: no client generates larger keys by default, and verification
 * cost grows with the square of the size.
 */
export const RSA_MIN_BITS = 1024;
export const RSA_MAX_BITS = 8192;

interface KeyCommon {
  /** A private copy of the blob: the caller's packet buffer may be reused. */
  readonly blob: Uint8Array;
  /** `SHA256:…` as OpenSSH prints it. */
  readonly fingerprint: string;
  readonly bits: number;
}

export type PublicKey =
  | (KeyCommon & { readonly type: 'ssh-ed25519'; readonly key: Uint8Array })
  | (KeyCommon & { readonly type: EcdsaKeyType; readonly point: Uint8Array })
  | (KeyCommon & { readonly type: 'ssh-rsa'; readonly n: Uint8Array; readonly e: Uint8Array });

/** Parses a public key blob. Throws MalformedError for anything unsupported, out of bounds or malformed. */
export function parsePublicKey(blob: Uint8Array): PublicKey {
  const own = Uint8Array.prototype.slice.call(blob);
  const r = new SshReader(own);
  const type = r.ascii(64, 'key type');
  const common = { blob: own, fingerprint: fingerprint(own) };
  if (type === 'ssh-ed25519') {
    const key = r.bytes(32, 'ed25519 key');
    if (key.length !== 32) throw new MalformedError(`ed25519 key is ${key.length} bytes, not 32`);
    r.assertEnd('public key blob');
    return { ...common, type, bits: 256, key };
  }
  if (isEcdsaKeyType(type)) {
    const c = ECDSA_CURVES[type];
    // The curve is named twice (RFC 5656 §3.1); both must agree or the blob is lying about one.
    const curveName = r.ascii(32, 'curve name');
    if (curveName !== c.curveName) throw new MalformedError(`curve ${printable(curveName)} does not match ${type}`);
    const point = r.bytes(c.ecdsa.lengths.publicKeyUncompressed!, 'ECDSA point');
    r.assertEnd('public key blob');
    // RFC 5656 §3.1 allows compressed points but OpenSSH neither sends nor accepts them.
    if (point.length !== c.ecdsa.lengths.publicKeyUncompressed || point[0] !== 0x04) {
      throw new MalformedError('ECDSA point is not an uncompressed point (0x04 ‖ x ‖ y)');
    }
    // An off-curve point enables invalid-curve attacks on anything using it; reject it outright.
    if (!c.ecdsa.utils.isValidPublicKey(point, false)) throw new MalformedError('ECDSA point is not on the curve');
    return { ...common, type, bits: c.bits, point };
  }
  if (type === 'ssh-rsa') {
    const e = r.mpintBytes(4, 'RSA exponent');
    // The length is checked against the cap before the modulus is even looked at.
    const n = r.mpintBytes(RSA_MAX_BITS / 8, 'RSA modulus');
    r.assertEnd('public key blob');
    const bits = bitLength(n);
    if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) {
      throw new MalformedError(`RSA modulus of ${bits} bits is outside ${RSA_MIN_BITS}..${RSA_MAX_BITS}`);
    }
    if ((n[n.length - 1]! & 1) === 0) throw new MalformedError('RSA modulus is even');
    // e must be odd and at least 3; capping it at 32 bits bounds the cost of each verification.
    if (e.length > 4 || e.length === 0) throw new MalformedError('RSA exponent is out of range');
    const ev = e.reduce((v, b) => v * 256 + b, 0);
    if (ev < 3 || (ev & 1) === 0) throw new MalformedError('RSA exponent must be odd and at least 3');
    return { ...common, type, bits, n, e };
  }
  throw new MalformedError(`unsupported public key type ${printable(type)}`);
}

/** RFC 8332 §3 and RFC 4253 §6.6: the hash behind each RSA signature algorithm. */
const RSA_SIG_HASH: Record<string, string> = { 'rsa-sha2-512': 'sha512', 'rsa-sha2-256': 'sha256', 'ssh-rsa': 'sha1' };

/**
 * Verifies `signatureBlob` (`string algorithm ‖ string signature`) over `data` with `key`.
 * The blob's algorithm must be exactly `algorithm` (the one the client named in its request)
 * and must suit the key type; `ssh-rsa` (SHA-1) only when allowed. Returns false for anything
 * wrong, malformed encodings included: a bad signature is an ordinary authentication failure.
 */
export function verifySignature(
  key: PublicKey,
  algorithm: string,
  signatureBlob: Uint8Array,
  data: Uint8Array,
  opts: { allowSshRsaSha1?: boolean } = {},
): boolean {
  if (!algorithmFits(key.type, algorithm, opts.allowSshRsaSha1 === true)) return false;
  try {
    const r = new SshReader(signatureBlob);
    if (r.ascii(64, 'signature algorithm') !== algorithm) return false;
    const sig = r.bytes(RSA_MAX_BITS / 8, 'signature');
    r.assertEnd('signature blob');
    switch (key.type) {
      case 'ssh-ed25519':
        return verifyEd25519(key.key, sig, data);
      case 'ssh-rsa':
        return verifyRsa(key, RSA_SIG_HASH[algorithm]!, sig, data);
      default:
        return verifyEcdsa(key.type, key.point, sig, data);
    }
  } catch {
    return false;
  }
}

function algorithmFits(type: PublicKey['type'], algorithm: string, allowSha1: boolean): boolean {
  if (type === 'ssh-rsa') {
    return algorithm === 'rsa-sha2-512' || algorithm === 'rsa-sha2-256' || (allowSha1 && algorithm === 'ssh-rsa');
  }
  return algorithm === type;
}

/**
 * RFC 8709 §6 / RFC 8032 §5.1.7. zip215: false is the strict RFC 8032 check (canonical R, A and
 * S < L). It refuses only signatures no honest signer produces, and it makes signatures
 * non-malleable.
 */
function verifyEd25519(pk: Uint8Array, sig: Uint8Array, data: Uint8Array): boolean {
  if (sig.length !== 64) return false;
  return ed25519.verify(sig, data, pk, { zip215: false });
}

/**
 * RFC 5656 §3.1.2: `mpint r ‖ mpint s`, over the curve's hash of the data (§6.2.1). noble hashes
 * with that very hash when prehash is true, so `data` is passed as is. lowS: false accepts both
 * s and n − s, as OpenSSH does: OpenSSL signers do not normalise s, so requiring low-S would
 * lock out honest clients, and malleability does not matter here — the session identifier in
 * the signed data makes every signature single-use.
 */
function verifyEcdsa(type: EcdsaKeyType, point: Uint8Array, sig: Uint8Array, data: Uint8Array): boolean {
  const c = ECDSA_CURVES[type];
  const len = c.ecdsa.lengths.secretKey!;
  const r = new SshReader(sig);
  const rb = r.mpintBytes(len, 'ECDSA r');
  const sb = r.mpintBytes(len, 'ECDSA s');
  r.assertEnd('ECDSA signature');
  if (rb.length > len || sb.length > len) return false;
  // noble range-checks r and s (1 ≤ r, s < n) when it parses the compact form.
  const compact = new Uint8Array(2 * len);
  compact.set(rb, len - rb.length);
  compact.set(sb, 2 * len - sb.length);
  return c.ecdsa.verify(compact, data, point, { prehash: true, lowS: false, format: 'compact' });
}

/**
 * RSA PKCS#1 v1.5 (RFC 8332 §3) through node:crypto: noble has no RSA. The signature may be
 * shorter than the modulus — some clients strip leading zero bytes and OpenSSH accepts that
 * (ssh-rsa.c) — so it is left-padded; longer is refused.
 */
function verifyRsa(key: PublicKey & { type: 'ssh-rsa' }, hash: string, sig: Uint8Array, data: Uint8Array): boolean {
  const modLen = (key.bits + 7) >> 3;
  if (sig.length > modLen || sig.length === 0) return false;
  let s = sig;
  if (s.length < modLen) {
    s = new Uint8Array(modLen);
    s.set(sig, modLen - sig.length);
  }
  const pub = createPublicKey({
    key: { kty: 'RSA', n: Buffer.from(key.n).toString('base64url'), e: Buffer.from(key.e).toString('base64url') },
    format: 'jwk',
  });
  return nodeVerify(hash, data, pub, s);
}

/** Peer strings go into error messages that reach logs: keep them printable and short. */
function printable(s: string): string {
  const escaped = s.slice(0, 64).replace(/[^\x20-\x7e]|["\\]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return `"${escaped}"${s.length > 64 ? '...' : ''}`;
}
