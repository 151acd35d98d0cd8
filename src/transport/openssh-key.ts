/**
 * Key encodings shared by host keys and user-key checks: the public key blobs (RFC 4253 §6.6,
 * RFC 5656 §3.1, RFC 8709 §4), the SHA256 fingerprint, and the OpenSSH private key file
 * "openssh-key-v1" (OpenSSH PROTOCOL.key). Pure codec: no signing here, and nothing is checked
 * that needs curve arithmetic — host-keys.ts does that with the decoded fields.
 */
import { createHash } from 'node:crypto';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { SshReader } from '../wire/reader.js';
import { SshWriter } from '../wire/writer.js';
import { MalformedError } from '../wire/errors.js';

/** The three NIST curves of RFC 5656 §10.1, keyed by SSH key type. The hash follows §6.2.1. */
export const ECDSA_CURVES = {
  'ecdsa-sha2-nistp256': { curveName: 'nistp256', ecdsa: p256, bits: 256, jwkCurve: 'P-256', nodeHash: 'sha256' },
  'ecdsa-sha2-nistp384': { curveName: 'nistp384', ecdsa: p384, bits: 384, jwkCurve: 'P-384', nodeHash: 'sha384' },
  'ecdsa-sha2-nistp521': { curveName: 'nistp521', ecdsa: p521, bits: 521, jwkCurve: 'P-521', nodeHash: 'sha512' },
} as const;

export type EcdsaKeyType = keyof typeof ECDSA_CURVES;

export function isEcdsaKeyType(type: string): type is EcdsaKeyType {
  return Object.hasOwn(ECDSA_CURVES, type);
}

/** `SHA256:` + unpadded base64 of SHA-256 over the public key blob, as OpenSSH prints it. */
export function fingerprint(blob: Uint8Array): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** Bit length of an unsigned big-endian magnitude (BN_num_bits), without converting to a bigint. */
export function bitLength(magnitude: Uint8Array): number {
  let i = 0;
  while (i < magnitude.length && magnitude[i] === 0) i++;
  if (i === magnitude.length) return 0;
  return (magnitude.length - i - 1) * 8 + (32 - Math.clz32(magnitude[i]!));
}

export function encodeEd25519Blob(pk: Uint8Array): Uint8Array {
  return new SshWriter(51).string('ssh-ed25519').string(pk).bytes();
}

export function encodeEcdsaBlob(type: EcdsaKeyType, q: Uint8Array): Uint8Array {
  return new SshWriter(q.length + 48).string(type).string(ECDSA_CURVES[type].curveName).string(q).bytes();
}

/** RFC 4253 §6.6: note e comes before n in the blob. */
export function encodeRsaBlob(e: Uint8Array, n: Uint8Array): Uint8Array {
  return new SshWriter(n.length + e.length + 32).string('ssh-rsa').mpint(e).mpint(n).bytes();
}

// ---------------------------------------------------------------------------------------
// openssh-key-v1 (OpenSSH PROTOCOL.key)
//
//   byte[15]  "openssh-key-v1\0"
//   string    ciphername        "none" unless encrypted
//   string    kdfname           "none" unless encrypted
//   string    kdfoptions        empty for "none"
//   uint32    number of keys    always 1 from ssh-keygen; OpenSSH refuses anything else
//   string    public key blob
//   string    private section:  uint32 checkint, uint32 checkint, string keytype,
//                               key fields, string comment, padding 1, 2, 3, …
// ---------------------------------------------------------------------------------------

const MAGIC = 'openssh-key-v1\0';
const BEGIN = '-----BEGIN OPENSSH PRIVATE KEY-----';
const END = '-----END OPENSSH PRIVATE KEY-----';
/** Cipher block size for "none" (OpenSSH cipher.c): the private section is padded to it. */
const BLOCK = 8;
/** A whole RSA 16384 file is ~13 KB; anything far beyond is not a key file. */
const MAX_FILE_BYTES = 64 * 1024;

/** Shown whenever a key is passphrase-protected: we have no bcrypt_pbkdf, and a server cannot prompt. */
export const ENCRYPTED_KEY_HINT =
  "the key is encrypted with a passphrase, which a server cannot ask for; remove it with `ssh-keygen -p -N '' -f <file>`";

export type OpensshPrivateKey =
  | { readonly type: 'ssh-ed25519'; readonly publicBlob: Uint8Array; readonly comment: string; readonly pk: Uint8Array; readonly seed: Uint8Array }
  | { readonly type: EcdsaKeyType; readonly publicBlob: Uint8Array; readonly comment: string; readonly q: Uint8Array; readonly d: Uint8Array }
  | {
      readonly type: 'ssh-rsa';
      readonly publicBlob: Uint8Array;
      readonly comment: string;
      readonly n: Uint8Array;
      readonly e: Uint8Array;
      readonly d: Uint8Array;
      readonly iqmp: Uint8Array;
      readonly p: Uint8Array;
      readonly q: Uint8Array;
    };

export function isOpensshPrivateKey(text: string): boolean {
  return text.includes(BEGIN);
}

/**
 * Decodes an unencrypted openssh-key-v1 file. The returned fields are copies; the decoded file
 * buffer, which holds the secret, is zeroed before returning. Throws MalformedError for a damaged
 * file and Error(ENCRYPTED_KEY_HINT) for an encrypted one.
 */
export function decodeOpensshPrivateKey(text: string): OpensshPrivateKey {
  const raw = dearmor(text);
  try {
    return decodeBinary(raw);
  } finally {
    raw.fill(0);
  }
}

function dearmor(text: string): Buffer {
  if (text.length > MAX_FILE_BYTES) throw new MalformedError(`key file is larger than ${MAX_FILE_BYTES} bytes`);
  const begin = text.indexOf(BEGIN);
  const end = text.indexOf(END, begin);
  if (begin < 0 || end < 0) throw new MalformedError('missing OPENSSH PRIVATE KEY armor');
  const b64 = text.slice(begin + BEGIN.length, end).replace(/\s+/g, '');
  // Buffer.from(…, 'base64') silently skips junk; a key file with junk in it is damaged.
  if (b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) {
    throw new MalformedError('OPENSSH PRIVATE KEY body is not valid base64');
  }
  return Buffer.from(b64, 'base64');
}

function decodeBinary(raw: Uint8Array): OpensshPrivateKey {
  const magic = Buffer.from(raw.subarray(0, MAGIC.length)).toString('latin1');
  if (magic !== MAGIC) throw new MalformedError('not an openssh-key-v1 file');
  const r = new SshReader(raw, MAGIC.length);
  const cipher = r.ascii(64, 'ciphername');
  const kdf = r.ascii(64, 'kdfname');
  r.bytes(1024, 'kdfoptions');
  if (cipher !== 'none' || kdf !== 'none') throw new Error(ENCRYPTED_KEY_HINT);
  const count = r.u32();
  if (count !== 1) throw new MalformedError(`key file holds ${count} keys; exactly 1 is supported`);
  const publicBlob = r.bytes(16384, 'public key');
  const priv = r.bytes(MAX_FILE_BYTES, 'private section');
  r.assertEnd('key file');

  if (priv.length % BLOCK !== 0) throw new MalformedError('private section is not padded to the block size');
  const p = new SshReader(priv);
  // Two equal random words: after decryption they tell a wrong passphrase apart; unencrypted,
  // a mismatch means the file was damaged or edited.
  if (p.u32() !== p.u32()) throw new MalformedError('checkint mismatch: the private key is damaged');
  const type = p.ascii(64, 'key type');
  const key = decodeFields(p, type);
  const comment = p.utf8(4096, 'comment');
  // Padding is 1, 2, 3, … (PROTOCOL.key); OpenSSH checks it, so do we.
  for (let i = 1; p.remaining > 0; i++) {
    if (p.u8() !== (i & 0xff)) throw new MalformedError('bad padding after the private key');
  }
  if (!bytesEqual(key.blob, publicBlob)) {
    throw new MalformedError('the public key in the file does not match the private key');
  }
  return { ...key.fields, publicBlob: copy(publicBlob), comment };
}

type Fields =
  | { type: 'ssh-ed25519'; pk: Uint8Array; seed: Uint8Array }
  | { type: EcdsaKeyType; q: Uint8Array; d: Uint8Array }
  | { type: 'ssh-rsa'; n: Uint8Array; e: Uint8Array; d: Uint8Array; iqmp: Uint8Array; p: Uint8Array; q: Uint8Array };

/** Reads the type-specific fields (PROTOCOL.key, sshkey.c sshkey_private_deserialize). */
function decodeFields(p: SshReader, type: string): { fields: Fields; blob: Uint8Array } {
  if (type === 'ssh-ed25519') {
    const pk = p.bytes(32, 'ed25519 public key');
    const sk = p.bytes(64, 'ed25519 private key');
    if (pk.length !== 32 || sk.length !== 64) throw new MalformedError('ed25519 key has the wrong length');
    // sk is seed ‖ pk (the ref10 layout); its second half must be the same public key.
    if (!bytesEqual(sk.subarray(32), pk)) throw new MalformedError('ed25519 private key does not hold its public key');
    return { fields: { type, pk: copy(pk), seed: copy(sk.subarray(0, 32)) }, blob: encodeEd25519Blob(pk) };
  }
  if (isEcdsaKeyType(type)) {
    const c = ECDSA_CURVES[type];
    if (p.ascii(32, 'curve name') !== c.curveName) throw new MalformedError(`curve name does not match ${type}`);
    const q = p.bytes(c.ecdsa.lengths.publicKeyUncompressed!, 'ECDSA public point');
    const d = p.mpintBytes(c.ecdsa.lengths.secretKey!, 'ECDSA private scalar');
    if (d.length > c.ecdsa.lengths.secretKey!) throw new MalformedError('ECDSA private scalar is too long');
    return { fields: { type, q: copy(q), d: copy(d) }, blob: encodeEcdsaBlob(type, q) };
  }
  if (type === 'ssh-rsa') {
    // Note n before e here, the reverse of the public blob.
    const n = p.mpintBytes(2048, 'RSA modulus');
    const e = p.mpintBytes(2048, 'RSA exponent');
    const d = p.mpintBytes(2048, 'RSA private exponent');
    const iqmp = p.mpintBytes(2048, 'RSA iqmp');
    const pp = p.mpintBytes(2048, 'RSA prime p');
    const q = p.mpintBytes(2048, 'RSA prime q');
    return {
      fields: { type, n: copy(n), e: copy(e), d: copy(d), iqmp: copy(iqmp), p: copy(pp), q: copy(q) },
      blob: encodeRsaBlob(e, n),
    };
  }
  throw new MalformedError(`unsupported key type ${JSON.stringify(type)}`);
}

/**
 * Encodes an unencrypted openssh-key-v1 ed25519 file, as `ssh-keygen -t ed25519 -N ''` writes
 * it (base64 wrapped at 70 columns). `checkint` should be random: it is what OpenSSH uses to
 * detect a wrong passphrase, and a constant would be a fingerprint of this program.
 */
export function encodeOpensshEd25519(seed: Uint8Array, pk: Uint8Array, comment: string, checkint: number): string {
  const blob = encodeEd25519Blob(pk);
  const priv = new SshWriter(256);
  priv.u32(checkint).u32(checkint).string('ssh-ed25519').string(pk);
  priv.u32(64).raw(seed).raw(pk);
  priv.string(comment);
  for (let i = 1; priv.pos % BLOCK !== 0; i++) priv.u8(i);
  const file = new SshWriter(512);
  file.raw(Buffer.from(MAGIC, 'latin1')).string('none').string('none').string('').u32(1).string(blob).string(priv.bytes());
  const b64 = file.bytes().toString('base64');
  // The secret passed through both writers' buffers; clear them rather than leave it to the GC.
  priv.buf.fill(0);
  file.buf.fill(0);
  const lines = [BEGIN];
  for (let i = 0; i < b64.length; i += 70) lines.push(b64.slice(i, i + 70));
  lines.push(END, '');
  return lines.join('\n');
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

function copy(b: Uint8Array): Uint8Array {
  return Uint8Array.prototype.slice.call(b);
}
