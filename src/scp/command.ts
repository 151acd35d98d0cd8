import { normalisePath } from '../sftp/paths.js';

/**
 * The command line of an SCP `exec` request, parsed without a shell.
 *
 * OpenSSH's scp client (legacy mode, `scp -O`) runs `scp [-v] [-r] [-p] [-d] -t [--] <target>` for
 * an upload and `scp [-v] [-r] [-p] -f [--] <source…>` for a download (scp.c toremote/tolocal).
 * It does not quote the path: sshd hands the whole string to the user's shell, which splits words,
 * removes quotes and expands globs. We have no shell and never will (CVE-2020-15778 was scp's
 * command line reaching one), so this module does the parts of a POSIX shell that paths need and
 * refuses the rest:
 * - words split on unquoted blanks; '…' is literal; "…" is literal except that \ escapes
 *   $ ` " \ and newline; an unquoted \ escapes the next character;
 * - a word starting with an unquoted `~` or `~/` is the home directory, "/";
 * - unquoted $ ` ; & | < > ( ), a `#` starting a word, and `$`/backquote inside "…" would make a shell run something or
 *   substitute text. We cannot do what the user meant, so the command is refused rather than
 *   guessed at.
 *
 * Globs. For a source (`-f`), unquoted `*`, `?` and `[` are patterns that `serveScp` expands
 * against listings, as the remote shell would have. So the paths of a source command are glob
 * patterns: a quoted or escaped `*`, `?`, `[`, `]` or `\` arrives as `\*` etc. For a sink (`-t`)
 * paths are literal (a shell glob on an upload target is not something scp clients send).
 *
 * Every path is normalised against "/" with the SFTP path rules, so `..` can never leave the
 * gateway's namespace (/bucket/key…).
 */
export interface ScpCommand {
  /** sink: we receive files (`-t`, an upload); source: we send them (`-f`, a download). */
  mode: 'sink' | 'source';
  /** `-r`: D/E records (sink) or whole prefixes (source). */
  recursive: boolean;
  /** `-p`: T records with modification times. */
  preserve: boolean;
  /** `-d`, or a sink target ending in "/": the target must be a directory (or a new prefix). */
  targetIsDir: boolean;
  /** `-v`: accepted; it changes nothing on the wire. */
  verbose: boolean;
  /** Normalised absolute paths; exactly one for a sink; glob patterns for a source (see above). */
  paths: string[];
}

/** Longest command accepted, in UTF-16 units (paths are at most MAX_PATH each). */
export const MAX_COMMAND = 16 * 1024;
/** Longest path, as SFTP (PROTOCOL.md §5.1). */
export const MAX_PATH = 4096;
/** Most source paths in one command. */
export const MAX_PATHS = 256;

const BLANK = new Set([' ', '\t', '\n']);
/** Characters a shell would act on when unquoted. */
const SHELL_META = new Set(['$', '`', ';', '&', '|', '<', '>', '(', ')']);
const GLOB_META = new Set(['*', '?', '[', ']', '\\']);

/** One word, with literal glob characters escaped (`\*`) and active ones left bare. */
interface Word {
  pattern: string;
  literal: string;
}

export function parseScpCommand(command: string): ScpCommand | { error: string } {
  if (command.length > MAX_COMMAND) return { error: `command longer than ${MAX_COMMAND} characters` };
  if (command.includes('\0')) return { error: 'command contains a NUL byte' };
  const words = splitWords(command);
  if ('error' in words) return words;
  if (words.length === 0) return { error: 'empty command; this server runs only scp (no shell)' };
  if (words[0]!.literal !== 'scp') {
    return { error: `${words[0]!.literal}: not supported; this server runs only scp -t / scp -f (no shell)` };
  }
  const flags = { t: false, f: false, r: false, p: false, d: false, v: false };
  let i = 1;
  for (; i < words.length; i++) {
    const w = words[i]!.literal;
    if (w === '--') {
      i++;
      break;
    }
    if (!w.startsWith('-') || w === '-') break;
    for (const c of w.slice(1)) {
      if (!Object.hasOwn(flags, c)) return { error: `scp: unsupported option -${c}` };
      flags[c as keyof typeof flags] = true;
    }
  }
  if (flags.t && flags.f) return { error: 'scp: -t and -f together' };
  if (!flags.t && !flags.f) return { error: 'scp: -t or -f is required (this server only transfers files)' };
  const rest = words.slice(i);
  if (rest.length === 0) return { error: 'scp: no path given' };
  const mode = flags.t ? 'sink' : 'source';
  // OpenSSH's sink refuses more than one target ("ambiguous target").
  if (mode === 'sink' && rest.length > 1) return { error: 'scp: ambiguous target' };
  if (rest.length > MAX_PATHS) return { error: `scp: more than ${MAX_PATHS} paths` };
  const paths: string[] = [];
  for (const w of rest) {
    const p = mode === 'sink' ? w.literal : w.pattern;
    if (Buffer.byteLength(p) > MAX_PATH) return { error: `scp: path longer than ${MAX_PATH} bytes` };
    paths.push(normalisePath(p));
  }
  // A sink target written as a directory ("/bucket/dir/", "/bucket/dir/.") must be one, as -d
  // says: on S3 that is how an upload into a prefix with nothing in it yet is asked for.
  const target = rest[0]!.literal;
  const dirSyntax = mode === 'sink' && (target.endsWith('/') || target.endsWith('/.') || target === '.');
  return {
    mode,
    recursive: flags.r,
    preserve: flags.p,
    targetIsDir: flags.d || dirSyntax,
    verbose: flags.v,
    paths,
  };
}

/** POSIX shell word splitting and quote removal, nothing else (see the module comment). */
function splitWords(s: string): Word[] | { error: string } {
  const words: Word[] = [];
  let pattern = '';
  let literal = '';
  let inWord = false;
  let atWordStart = true;
  const lit = (c: string) => {
    pattern += GLOB_META.has(c) ? '\\' + c : c;
    literal += c;
  };
  const end = () => {
    if (inWord) words.push({ pattern, literal });
    pattern = '';
    literal = '';
    inWord = false;
    atWordStart = true;
  };
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (BLANK.has(c)) {
      end();
      continue;
    }
    const first = atWordStart;
    atWordStart = false;
    inWord = true;
    if (c === "'") {
      const close = s.indexOf("'", i + 1);
      if (close < 0) return { error: 'unterminated single quote' };
      for (const q of s.slice(i + 1, close)) lit(q);
      i = close;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < s.length && s[j] !== '"'; j++) {
        const q = s[j]!;
        if (q === '$' || q === '`') return { error: `unsupported shell syntax: ${q}` };
        if (q === '\\' && j + 1 < s.length && '$`"\\\n'.includes(s[j + 1]!)) {
          j++;
          if (s[j] !== '\n') lit(s[j]!);
        } else lit(q);
      }
      if (j >= s.length) return { error: 'unterminated double quote' };
      i = j;
    } else if (c === '\\') {
      if (i + 1 >= s.length) return { error: 'trailing backslash' };
      i++;
      if (s[i] !== '\n') lit(s[i]!); // backslash-newline is a line continuation
    } else if (SHELL_META.has(c) || (c === '#' && first)) {
      return { error: `unsupported shell syntax: ${c}` };
    } else if (c === '~' && first && (i + 1 >= s.length || s[i + 1] === '/' || BLANK.has(s[i + 1]!))) {
      // Tilde expansion: the home directory is the namespace root.
      pattern += '/';
      literal += '/';
    } else if (c === '~' && first) {
      return { error: 'unsupported ~user path' };
    } else {
      // An unquoted glob character stays active in the pattern.
      pattern += c;
      literal += c;
    }
  }
  end();
  return words;
}
