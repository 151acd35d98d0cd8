/**
 * SCP's control records (OpenSSH scp.c sink()/source(); protocol-notes §3). Each is one text line
 * ending in '\n':
 *
 *   C<mode: 4 octal digits> <size: decimal> <name>   a file of <size> bytes follows, then \0
 *   D<mode: 4 octal digits> 0 <name>                  enter a directory (only with -r)
 *   E                                                 leave it
 *   T<mtime> <usec> <atime> <usec>                    times for the next C or D (with -p)
 *   \x01<message> / \x02<message>                     the peer's warning / fatal error
 *
 * Validated as strictly as OpenSSH's sink does, and a little more: a name is never empty, ".",
 * ".." or holds a "/" (CVE-2018-20685 was a client accepting "." and letting a server chmod the
 * target directory); sizes are digits only and at most S3's 5 TiB object limit; microseconds
 * are 0..999999; no control characters anywhere, so nothing a client sends can become a
 * terminal escape in a message or a log.
 */

/** Longest control line accepted, '\n' excluded. OpenSSH's sink buffer is 2048 bytes. */
export const MAX_LINE = 4096;
/** S3's largest object. */
export const MAX_SIZE = 5 * 2 ** 40;
/** Seconds; 12 digits reach the year 33658, far beyond any real time. */
const MAX_TIME_DIGITS = 12;

export type ScpRecord =
  | { type: 'C' | 'D'; mode: number; size: number; name: string }
  | { type: 'E' }
  | { type: 'T'; mtime: number; atime: number }
  | { type: 'warning' | 'fatal'; message: string };

/** A record that breaks the protocol: answered with \x02 and the end of the session. */
export class ScpProtocolError extends Error {
  readonly code = 'ERR_SCP_PROTOCOL';
  constructor(message: string) {
    super(message);
    this.name = 'ScpProtocolError';
  }
}

const OCTAL4 = /^[0-7]{4}$/;
const DIGITS = /^[0-9]+$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Parses one control line (without its '\n'). */
export function parseRecord(line: string): ScpRecord {
  const kind = line[0];
  if (kind === '\x01' || kind === '\x02') {
    return { type: kind === '\x01' ? 'warning' : 'fatal', message: line.slice(1) };
  }
  if (CONTROL.test(line)) throw new ScpProtocolError('control character in a record');
  switch (kind) {
    case 'E':
      if (line !== 'E') throw new ScpProtocolError('unexpected text after E');
      return { type: 'E' };
    case 'T':
      return parseTimes(line);
    case 'C':
    case 'D':
      return parseEntry(kind, line);
    case undefined:
      throw new ScpProtocolError('unexpected <newline>');
    default:
      throw new ScpProtocolError('expected control record');
  }
}

function parseEntry(type: 'C' | 'D', line: string): ScpRecord {
  const modeText = line.slice(1, 5);
  if (!OCTAL4.test(modeText)) throw new ScpProtocolError('bad mode');
  if (line[5] !== ' ') throw new ScpProtocolError('mode not delimited');
  const sp = line.indexOf(' ', 6);
  if (sp < 0) throw new ScpProtocolError('size not delimited');
  const sizeText = line.slice(6, sp);
  if (!DIGITS.test(sizeText)) throw new ScpProtocolError('size not present');
  // Length first, so the number is exact before it is compared (2^53 is 16 digits).
  const size = sizeText.length > 16 ? Infinity : Number(sizeText);
  if (size > MAX_SIZE) throw new ScpProtocolError('size out of range');
  const name = line.slice(sp + 1);
  if (name === '' || name === '.' || name === '..' || name.includes('/')) {
    throw new ScpProtocolError(`unexpected filename: ${name}`);
  }
  return { type, mode: parseInt(modeText, 8), size, name };
}

function parseTimes(line: string): ScpRecord {
  const f = line.slice(1).split(' ');
  if (f.length !== 4) throw new ScpProtocolError('times not delimited');
  const [mtime, mus, atime, aus] = f.map((x, i) => {
    if (!DIGITS.test(x) || x.length > (i % 2 === 0 ? MAX_TIME_DIGITS : 6)) {
      throw new ScpProtocolError(i % 2 === 0 ? 'time out of range' : 'microseconds out of range');
    }
    return Number(x);
  }) as [number, number, number, number];
  void mus;
  void aus;
  return { type: 'T', mtime, atime };
}

/** A record line for the peer: '\n'-terminated. Names are checked by the caller. */
export function fileRecord(type: 'C' | 'D', mode: number, size: number, name: string): string {
  return `${type}${(mode & 0o7777).toString(8).padStart(4, '0')} ${size} ${name}\n`;
}

export function timesRecord(mtime: number, atime: number): string {
  return `T${mtime} 0 ${atime} 0\n`;
}

/**
 * A \x01 (warning: the peer goes on) or \x02 (fatal) line. OpenSSH's client prints the text as
 * it comes, so control characters become "?" (CVE-2019-6109) and the length is capped.
 */
export function errorRecord(fatal: boolean, message: string): Buffer {
  // eslint-disable-next-line no-control-regex
  let text = `scp: ${message}`.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  if (text.length > 1024) text = text.slice(0, 1023) + '…';
  return Buffer.from(`${fatal ? '\x02' : '\x01'}${text}\n`, 'utf8');
}
