import fs from 'node:fs';
import type { Writable } from 'node:stream';
import type { AuditRecord, AuditSink } from './records.js';

/**
 * Audit records as JSON lines on a stream: stdout (`--audit-log -`) or a file opened for append
 * (`--audit-log FILE`). Each record is one write of one line, so lines from several processes
 * appending to the same file or pipe do not interleave (a write under PIPE_BUF to a pipe, or any
 * write with O_APPEND, is atomic).
 *
 * A stream that cannot keep up buffers in memory up to `maxBufferedBytes`; past that, records are
 * dropped and counted, so a stalled stdout never holds a transfer.
 */
export class JsonLinesSink implements AuditSink {
  readonly #out: Writable;
  readonly #owned: boolean;
  readonly #maxBuffered: number;
  #dropped = 0;
  #written = 0;
  #failed: Error | null = null;

  constructor(out: Writable, opts: { owned?: boolean; maxBufferedBytes?: number } = {}) {
    this.#out = out;
    this.#owned = opts.owned ?? false;
    this.#maxBuffered = opts.maxBufferedBytes ?? 8 * 1024 * 1024;
    out.on('error', (err: Error) => {
      this.#failed ??= err;
    });
  }

  /** Records written / dropped (full buffer or a failed stream). */
  get written(): number {
    return this.#written;
  }
  get dropped(): number {
    return this.#dropped;
  }

  write(record: AuditRecord): void {
    if (this.#failed !== null || this.#out.writableLength > this.#maxBuffered || this.#out.destroyed) {
      this.#dropped++;
      return;
    }
    this.#out.write(JSON.stringify(record) + '\n');
    this.#written++;
  }

  close(): Promise<void> {
    if (!this.#owned) {
      // stdout is not ours to end; wait only for what we queued on it.
      if (this.#out.writableLength === 0 || this.#failed) return Promise.resolve();
      return new Promise((resolve) => this.#out.write('', () => resolve()));
    }
    return new Promise((resolve) => {
      if (this.#out.writableEnded || this.#out.destroyed) return resolve();
      this.#out.end(() => resolve());
    });
  }
}

/** The sink for `--audit-log`: '-' is stdout, 'none' nothing, anything else a file to append to. */
export function openAuditLog(target: string): JsonLinesSink | null {
  if (target === 'none') return null;
  if (target === '-') return new JsonLinesSink(process.stdout);
  // Opened synchronously so a bad path fails at startup, not at the first record.
  const fd = fs.openSync(target, 'a', 0o640);
  return new JsonLinesSink(fs.createWriteStream('', { fd, flags: 'a' }), { owned: true });
}
