import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs from dist/spec/helpers). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * Golden bytes written one wire field per line (pkg/sftp style): hex digits, any whitespace, and
 * `#` comments to the end of the line. Anything else is an error: Buffer.from(…, 'hex') stops
 * silently at the first bad digit, which would turn a typo into a shorter, still-passing vector.
 */
export function hex(...lines: string[]): Buffer {
  const digits = lines
    .join('\n')
    .split('\n')
    .map((l) => l.replace(/#.*$/, ''))
    .join('')
    .replace(/\s+/g, '');
  if (!/^([0-9a-fA-F]{2})*$/.test(digits)) throw new Error(`golden hex is malformed: ${JSON.stringify(digits.slice(0, 80))}`);
  return Buffer.from(digits, 'hex');
}

/** Reads fixtures/packets/<name>.hex in the format of `hex`. */
export function packet(name: string): Buffer {
  return hex(readFileSync(path.join(ROOT, 'fixtures/packets', `${name}.hex`), 'utf8'));
}

/** Copies `b` into a buffer with its own ArrayBuffer, so `.buffer` identity checks are meaningful
 *  (small Buffers otherwise share Node's allocation pool). */
export function ownBuffer(b: Uint8Array): Buffer {
  const out = Buffer.from(new ArrayBuffer(b.length));
  out.set(b);
  return out;
}
