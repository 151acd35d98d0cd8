import type { Backend } from '../backend.js';
import { encodeCheckFileReply, type CheckFileFields } from './codec.js';
import { FX } from './constants.js';
import { SftpStatusError } from './errors.js';

/**
 * check-file-handle / check-file-name (draft-ietf-secsh-filexfer-extensions-00 §3), answered
 * only from the checksum stored with the object (Backend.checksum): the whole-file CRC32 an
 * upload computed while streaming. We never read an object back to hash it — that would be a
 * full download inside the store's bill and the gateway's CPU for one request — so anything
 * else (another algorithm, a range, per-block hashes, a file stored without a checksum) is
 * OP_UNSUPPORTED with a message that says which.
 */

/** The algorithm we can answer, as the draft names it. */
export const CHECK_FILE_ALGORITHM = 'crc32';

/** The draft's smallest block-size other than 0 (a smaller one is invalid, not just unsupported). */
export const MIN_BLOCK_SIZE = 256;

export interface CheckTarget {
  /** The normalised path. */
  path: string;
  /** The size when already known (an open read handle); otherwise it is asked for when needed. */
  size?: number;
}

const unsupported = (message: string) => new SftpStatusError(FX.OP_UNSUPPORTED, message);

export async function checkFile(backend: Backend, id: number, target: CheckTarget, req: CheckFileFields): Promise<Buffer> {
  const path = target.path;
  if (!req.algorithms.some((a) => a.trim().toLowerCase() === CHECK_FILE_ALGORITHM)) {
    // The list is the client's text: toFxStatus makes it safe for a terminal and bounds it.
    throw unsupported(`check-file: no stored hash for ${req.algorithms.join(',')}; this server answers crc32 only`);
  }
  if (req.blockSize !== 0 && req.blockSize < MIN_BLOCK_SIZE) {
    throw new SftpStatusError(FX.FAILURE, `check-file: block-size ${req.blockSize} is below the minimum of ${MIN_BLOCK_SIZE}`);
  }
  if (req.startOffset !== 0) {
    throw unsupported('check-file: only the whole file has a stored hash (start-offset must be 0)');
  }
  if (!backend.checksum) throw unsupported('check-file: this storage keeps no file checksums');
  // Whole file by length 0 needs no size; a length (or a block-size) must be checked against it.
  let size = target.size;
  if (size === undefined && (req.length !== 0 || req.blockSize !== 0)) size = (await backend.stat(path)).size;
  if (req.length !== 0 && req.length !== size) {
    throw unsupported(`check-file: only the whole file has a stored hash (length must be 0 or ${size})`);
  }
  if (req.blockSize !== 0 && req.blockSize < size!) {
    throw unsupported('check-file: only one hash over the whole file is stored (block-size must be 0 or at least the length)');
  }
  const stored = await backend.checksum(path);
  if (stored === undefined || stored.algorithm !== CHECK_FILE_ALGORITHM) {
    throw unsupported(`check-file: ${path} has no stored checksum (stored before checksums, or by another tool)`);
  }
  return encodeCheckFileReply(id, CHECK_FILE_ALGORITHM, stored.value);
}
