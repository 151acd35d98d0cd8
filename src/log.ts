/**
 * A small structured logger: one JSON object per line. Peer-controlled strings pass through
 * `escapePeer` before they reach a record, so a client cannot forge log lines or smuggle
 * terminal escapes. Debug records are built only behind `debugEnabled`.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  readonly debugEnabled: boolean;
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(
  level: Level = 'info',
  write: (line: string) => void = (l) => process.stderr.write(l + '\n'),
  base: Record<string, unknown> = {},
): Logger {
  const min = ORDER[level];
  const emit = (lvl: Level, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    write(JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...base, ...fields }));
  };
  return {
    debugEnabled: min <= ORDER.debug,
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (f) => createLogger(level, write, { ...base, ...f }),
  };
}

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: Logger = {
  debugEnabled: false,
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};

/**
 * Makes a peer-supplied string safe for a log record: control characters and non-ASCII
 * become \xNN / \u{...} escapes, and the length is capped.
 */
export function escapePeer(s: string | Uint8Array, max = 256): string {
  const str = typeof s === 'string' ? s : Buffer.from(s).toString('latin1');
  let out = '';
  for (const ch of str) {
    if (out.length >= max) return out + '…';
    const c = ch.codePointAt(0)!;
    if (c >= 0x20 && c < 0x7f && ch !== '\\') out += ch;
    else if (ch === '\\') out += '\\\\';
    else if (c < 0x100) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += `\\u{${c.toString(16)}}`;
  }
  return out;
}
