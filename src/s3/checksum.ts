/**
 * The whole-file checksum of an upload (issue 5, integrity): CRC32 (IEEE 802.3, the zlib/PNG/
 * gzip CRC), computed while the bytes stream through the gateway and stored with the object as
 * S3's additional checksum of type FULL_OBJECT, so the store verifies it and anyone can read it
 * back (HeadObject with ChecksumMode ENABLED, GetObjectAttributes).
 *
 * Why CRC32 and not CRC32C or SHA-256: node:zlib's crc32 is native (a JS CRC32C would cost CPU at
 * the 200 MB/s we stream), S3 accepts a full-object CRC32 for multipart uploads, CRC32 can be
 * combined (a resumed upload copies the existing head server-side and only sees the new bytes:
 * crc(head ‖ tail) follows from crc(head), crc(tail) and len(tail)), and "crc32" is one of the
 * names of the SFTP check-file extension (draft-ietf-secsh-filexfer-extensions-00 §3).
 *
 * What the local MinIO (2026-02 build) accepts is written down in docs/PROTOCOL.md §8; the
 * request shapes below are the ones that passed there.
 */
import zlib from 'node:zlib';
import { HeadObjectCommand, type HeadObjectCommandOutput } from '@aws-sdk/client-s3';
import { BackendError, type StoredChecksum } from '../backend.js';
import type { ClientPool } from './clients.js';
import { isAccessDenied, isNotFound, s3Code, s3Status, toBackendError } from './errors.js';
import type { Lookups } from './lookup.js';
import { parsePath } from './paths.js';

// ------------------------------------------------------------------------ CRC32 combination

/** The reflected CRC-32 polynomial (x^32 + x^26 + … + 1) as zlib uses it. */
const POLY = 0xedb88320;

/** A 32×32 matrix over GF(2): column i is the image of bit i. */
type Gf2Matrix = Uint32Array;

/** mat · vec over GF(2): the XOR of the columns whose bit is set in vec. */
function gf2Times(mat: Gf2Matrix, vec: number): number {
  let sum = 0;
  for (let i = 0; vec !== 0; i++, vec >>>= 1) {
    if (vec & 1) sum ^= mat[i]!;
  }
  return sum >>> 0;
}

/** mat · mat. */
function gf2Square(mat: Gf2Matrix): Gf2Matrix {
  const out = new Uint32Array(32);
  for (let i = 0; i < 32; i++) out[i] = gf2Times(mat, mat[i]!);
  return out;
}

/**
 * ZEROS[k] is the operator that advances a CRC register over 2^k zero bytes. 53 of them cover
 * every length up to 2^53 (the reader's cap on 64-bit values); made once, 6.8 KiB.
 */
const ZEROS: readonly Gf2Matrix[] = (() => {
  // One zero bit: shift right, and fold the polynomial in when the low bit falls out.
  let op: Gf2Matrix = new Uint32Array(32);
  op[0] = POLY;
  for (let i = 1; i < 32; i++) op[i] = (1 << (i - 1)) >>> 0;
  for (let i = 0; i < 3; i++) op = gf2Square(op); // 2, 4, 8 bits: one byte
  const all: Gf2Matrix[] = [op];
  for (let k = 1; k < 53; k++) all.push(gf2Square(all[k - 1]!));
  return all;
})();

/**
 * The CRC32 of A ‖ B from crc1 = CRC32(A), crc2 = CRC32(B) and len2 = |B| (zlib's crc32_combine,
 * GF(2) matrix method). CRC32 is affine in its input: feeding B after A equals feeding |B| zero
 * bytes after A, XORed with CRC32(B). The zero bytes are applied as powers of two from ZEROS, so
 * the cost is at most 53 matrix-vector products whatever len2 is.
 */
export function crc32Combine(crc1: number, crc2: number, len2: number): number {
  if (!Number.isSafeInteger(len2) || len2 < 0) throw new RangeError(`crc32Combine: bad length ${len2}`);
  let crc = crc1 >>> 0;
  for (let k = 0; len2 > 0; k++) {
    if (len2 % 2 === 1) crc = gf2Times(ZEROS[k]!, crc);
    len2 = Math.floor(len2 / 2);
  }
  return (crc ^ crc2) >>> 0;
}

// ------------------------------------------------------------------------ encodings

/** The 4 big-endian bytes S3 and the check-file reply carry. */
export function crc32Bytes(crc: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(crc >>> 0, 0);
  return b;
}

/** S3's x-amz-checksum-crc32 value: base64 of the 4 big-endian bytes. */
export function crc32Base64(crc: number): string {
  return crc32Bytes(crc).toString('base64');
}

/** The metadata fallback's value (x-amz-meta-crc32): 8 lowercase hex digits. */
export function crc32Hex(crc: number): string {
  return (crc >>> 0).toString(16).padStart(8, '0');
}

/** User metadata key of the fallback (sent as x-amz-meta-crc32). */
export const CRC32_METADATA_KEY = 'crc32';

// ------------------------------------------------------------------------ the upload's checksum

/** PutObject: the value itself, which the store checks against the body it received. */
export interface PutChecksumParams {
  ChecksumCRC32: string;
}

/** CreateMultipartUpload: announce a full-object CRC32 (S3's default for CRC32 is COMPOSITE). */
export interface CreateChecksumParams {
  ChecksumAlgorithm: 'CRC32';
  ChecksumType: 'FULL_OBJECT';
}

/**
 * UploadPart: let the SDK compute the part's CRC32 (natively, zlib.crc32) and send it as an
 * aws-chunked trailer. A store that has the upload's algorithm refuses a part without one
 * (MinIO: 400 InvalidArgument "checksum missing"), and a streamed part's CRC is not known
 * before its body is sent, so it cannot be a header.
 */
export interface PartChecksumParams {
  ChecksumAlgorithm: 'CRC32';
}

/** CompleteMultipartUpload: our whole-file CRC, which the store checks against its combination of the parts'. */
export interface CompleteChecksumParams {
  ChecksumCRC32: string;
  ChecksumType: 'FULL_OBJECT';
}

/**
 * The CRC32 of everything an upload stores, fed as the bytes stream (`update`) and, for a resume
 * that copies the existing object's head server-side, given that head's CRC (`prepend`).
 */
export class UploadChecksum {
  #crc = 0;
  #length = 0;

  /** Bytes covered so far. */
  get length(): number {
    return this.#length;
  }

  /** The CRC32 of those bytes, unsigned. */
  get value(): number {
    return this.#crc;
  }

  update(data: Uint8Array): void {
    this.#crc = zlib.crc32(data, this.#crc) >>> 0;
    this.#length += data.length;
  }

  /**
   * Puts `headLength` bytes whose CRC32 is `headCrc` before everything fed so far (and so
   * before what is fed later): the existing object a resumed upload continues.
   */
  prepend(headCrc: number, headLength: number): void {
    this.#crc = crc32Combine(headCrc, this.#crc, this.#length);
    this.#length += headLength;
  }

  /** For the single PutObject of a file of at most one part (the whole body is known by then). */
  putParams(): PutChecksumParams {
    return { ChecksumCRC32: crc32Base64(this.#crc) };
  }

  /** For CreateMultipartUpload. */
  static createParams(): CreateChecksumParams {
    return { ChecksumAlgorithm: 'CRC32', ChecksumType: 'FULL_OBJECT' };
  }

  /** For each UploadPart of an upload created with createParams(). */
  static partParams(): PartChecksumParams {
    return { ChecksumAlgorithm: 'CRC32' };
  }

  /** For CompleteMultipartUpload, once every byte has been fed. */
  completeParams(): CompleteChecksumParams {
    return { ChecksumCRC32: crc32Base64(this.#crc), ChecksumType: 'FULL_OBJECT' };
  }

  /** The fallback for stores without additional checksums: user metadata, on PutObject only. */
  metadata(): Record<string, string> {
    return { [CRC32_METADATA_KEY]: crc32Hex(this.#crc) };
  }
}

// ------------------------------------------------------------------------ reading it back

const STRICT_BASE64_4 = /^[A-Za-z0-9+/]{6}==$/;
const HEX8 = /^[0-9a-f]{8}$/;

/**
 * The whole-object CRC32 stored with an object, from its HeadObject output (made with
 * ChecksumMode ENABLED): S3's additional checksum when it is a full-object CRC32, otherwise our
 * metadata fallback, otherwise undefined. A composite checksum ("…-N", ChecksumType COMPOSITE:
 * a CRC of the parts' CRCs) is not the file's CRC32 and is never answered as one; neither is
 * anything malformed.
 */
export function storedChecksum(
  head: Pick<HeadObjectCommandOutput, 'ChecksumCRC32' | 'ChecksumType' | 'Metadata'>,
): StoredChecksum | undefined {
  const v = head.ChecksumCRC32;
  // Stores from before ChecksumType (2025) send none: a value without "-N" is then full-object.
  if (v !== undefined && head.ChecksumType !== 'COMPOSITE' && STRICT_BASE64_4.test(v)) {
    return { algorithm: 'crc32', value: Buffer.from(v, 'base64') };
  }
  const meta = head.Metadata?.[CRC32_METADATA_KEY];
  if (meta !== undefined && HEX8.test(meta)) return { algorithm: 'crc32', value: Buffer.from(meta, 'hex') };
  return undefined;
}

export interface ChecksumLookupContext {
  pool: ClientPool;
  find: Lookups;
  secrets: readonly string[];
}

/**
 * Backend.checksum for S3: one HEAD with ChecksumMode ENABLED. When that finds nothing (or is
 * denied, which is how S3 answers a HEAD without s3:ListBucket) the ordinary lookup says why:
 * a directory, or no such file.
 */
export async function lookupChecksum(ctx: ChecksumLookupContext, path: string): Promise<StoredChecksum | undefined> {
  const p = parsePath(path);
  if (p.kind !== 'object') throw new BackendError('EISDIR', `${path}: is a directory`);
  let head: HeadObjectCommandOutput;
  try {
    head = await ctx.pool.send(p.bucket, () =>
      new HeadObjectCommand({ Bucket: p.bucket, Key: p.key, ChecksumMode: 'ENABLED' }),
    );
  } catch (err) {
    if (!isNotFound(err) && !isAccessDenied(err)) throw toBackendError(err, `checksum ${path}`, ctx.secrets);
    const found = await ctx.find.lookup(p.bucket, p.key, path);
    if (found.kind === 'dir') throw new BackendError('EISDIR', `${path}: is a directory`);
    if (found.kind === 'file') return storedChecksum(found.head); // appeared in between; no checksum mode
    throw new BackendError('ENOENT', `${path}: no such file or directory`);
  }
  return storedChecksum(head);
}

// ------------------------------------------------------------------------ stores that refuse

/**
 * Answers that mean "this store does not take additional checksums (or aws-chunked trailers)",
 * so the request may be sent again without them. Only for the first request that carries them
 * (PutObject, CreateMultipartUpload, the first UploadPart), never for CompleteMultipartUpload.
 *
 * A mismatch is never a refusal: XAmzContentChecksumMismatch, BadDigest, InvalidDigest and
 * InvalidPart mean the bytes the store received are not the bytes we hashed, and retrying without
 * the checksum would store them anyway. Those fail the upload.
 */
export function isChecksumRefused(err: unknown): boolean {
  const code = s3Code(err);
  if (MISMATCH.has(code)) return false;
  const status = s3Status(err);
  // R2 answered 501 to the header; AWS answers NotImplemented ("A header you provided implies
  // functionality that is not implemented") to a Transfer-Encoding it does not take.
  if (code === 'NotImplemented' || status === 501) return true;
  if (status !== 400) return false;
  if (!REFUSAL_CODES.has(code)) return false;
  const message = err instanceof Error ? err.message : '';
  return /checksum|trailer|aws-chunked|content-encoding|transfer-encoding/i.test(message);
}

const MISMATCH = new Set(['XAmzContentChecksumMismatch', 'BadDigest', 'InvalidDigest', 'InvalidPart']);
const REFUSAL_CODES = new Set([
  'InvalidArgument',
  'InvalidRequest',
  'UnsupportedChecksumAlgorithm',
  'InvalidChecksum',
  'UnexpectedContent',
  'InvalidEncodingType',
  'Unknown',
]);
