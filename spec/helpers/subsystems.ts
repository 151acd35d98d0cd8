import { createHash } from 'node:crypto';
import type { Channel } from '../../src/channels/channel.js';

/**
 * Test-only subsystems that move bytes through a channel so that interop tests and
 * benchmarks can check integrity with real clients. They are never registered by the
 * gateway itself.
 */

/** Echoes every byte back; exits 0 at EOF. Exercises both windows at once. */
export function echo(ch: Channel): void {
  ch.pipe(ch, { end: false });
  ch.on('end', () => ch.exit(0));
}

/** Reads everything, then writes "<sha256 hex> <bytes>\n" and exits 0. */
export function sink(ch: Channel): void {
  const h = createHash('sha256');
  let n = 0;
  ch.on('data', (d: Buffer) => {
    h.update(d);
    n += d.length;
  });
  ch.on('end', () => {
    ch.write(`${h.digest('hex')} ${n}\n`);
    ch.exit(0);
  });
}

/** Reads and drops everything, exits 0 at EOF (benchmarks: upload). */
export function discard(ch: Channel): void {
  ch.on('data', () => {});
  ch.on('end', () => ch.exit(0));
}

/** Deterministic bytes from a seed: a SHA-256 counter stream, so tests can hash the expected output. */
export function patternBlock(seed: number, index: number): Buffer {
  const out = Buffer.allocUnsafe(64 * 1024);
  for (let i = 0; i < 2048; i++) {
    createHash('sha256').update(`${seed}:${index}:${i}`).digest().copy(out, i * 32);
  }
  return out;
}

/** Sends `size` bytes (zeros when seed is 0, else a pattern), honouring backpressure, then exits 0. */
export function source(size: number, seed = 0): (ch: Channel) => void {
  return (ch) => {
    const zero = Buffer.alloc(256 * 1024);
    let sent = 0;
    let block = 0;
    const pump = () => {
      while (sent < size) {
        let buf = seed === 0 ? zero : patternBlock(seed, block++);
        const n = Math.min(buf.length, size - sent);
        if (n < buf.length) buf = buf.subarray(0, n);
        sent += n;
        if (!ch.write(buf)) {
          ch.once('drain', pump);
          return;
        }
      }
      ch.exit(0);
    };
    ch.resume();
    pump();
  };
}
