import { BackendError, S_IFDIR, S_IFMT, type Backend } from '../backend.js';

/**
 * Glob expansion for source paths, which a remote shell would have done (`scp host:'/b/*.txt' .`).
 * Patterns come from parseScpCommand: `*`, `?` and `[...]` (with `!` or `^` to negate, and
 * ranges) are active; `\x` is a literal x. As in a POSIX shell, a leading `.` must be matched
 * explicitly, `/` is never matched by a wildcard, and a pattern that matches nothing is an
 * error for that path (the shell would have passed it on and scp would not have found it).
 */

/** Most paths one pattern may expand to: a bound on memory for `/*` over a huge bucket. */
export const MAX_GLOB_MATCHES = 10_000;

export function hasGlob(pattern: string): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') i++;
    else if (c === '*' || c === '?' || c === '[') return true;
  }
  return false;
}

/** The literal a pattern without active metacharacters names. */
export function unescapeGlob(pattern: string): string {
  return pattern.replace(/\\(.)/gsu, '$1');
}

/** Whether one path component `name` matches the one-component `pattern`. */
export function matchGlob(pattern: string, name: string): boolean {
  const p = [...pattern];
  const s = [...name];
  if (s[0] === '.' && p[0] !== '.' && !(p[0] === '\\' && p[1] === '.')) return false;
  return matchAt(p, 0, s, 0);
}

function matchAt(p: string[], pi: number, s: string[], si: number): boolean {
  while (pi < p.length) {
    const c = p[pi]!;
    if (c === '*') {
      while (p[pi] === '*') pi++;
      if (pi === p.length) return true;
      for (let k = si; k <= s.length; k++) if (matchAt(p, pi, s, k)) return true;
      return false;
    }
    if (si >= s.length) return false;
    if (c === '?') {
      pi++;
      si++;
      continue;
    }
    if (c === '[') {
      const cls = matchClass(p, pi, s[si]!);
      if (cls !== null) {
        if (!cls.matched) return false;
        pi = cls.next;
        si++;
        continue;
      }
      // An unterminated '[' is an ordinary character, as in a shell.
    }
    let lit = c;
    if (c === '\\' && pi + 1 < p.length) lit = p[++pi]!;
    if (lit !== s[si]) return false;
    pi++;
    si++;
  }
  return si === s.length;
}

/** A bracket expression at p[start] ('['): whether ch is in it, and where it ends; null if unterminated. */
function matchClass(p: string[], start: number, ch: string): { matched: boolean; next: number } | null {
  let i = start + 1;
  const negate = p[i] === '!' || p[i] === '^';
  if (negate) i++;
  let matched = false;
  let first = true;
  while (i < p.length && (p[i] !== ']' || first)) {
    first = false;
    let lo = p[i]!;
    if (lo === '\\' && i + 1 < p.length) lo = p[++i]!;
    i++;
    let hi = lo;
    if (p[i] === '-' && i + 1 < p.length && p[i + 1] !== ']') {
      hi = p[i + 1]!;
      if (hi === '\\' && i + 2 < p.length) {
        hi = p[i + 2]!;
        i++;
      }
      i += 2;
    }
    if (ch >= lo && ch <= hi) matched = true;
  }
  if (i >= p.length) return null;
  return { matched: matched !== negate, next: i + 1 };
}

function join(dir: string, name: string): string {
  return dir === '/' ? '/' + name : dir + '/' + name;
}

/**
 * The existing paths a normalised absolute pattern names, in listing order per component.
 * Directories that cannot be listed (missing, not a directory, denied) match nothing.
 */
export async function expandGlob(backend: Backend, pattern: string, max = MAX_GLOB_MATCHES): Promise<string[]> {
  const comps = pattern === '/' ? [] : pattern.slice(1).split('/');
  let bases = ['/'];
  let literalAfterGlob = false;
  let globbed = false;
  for (let ci = 0; ci < comps.length; ci++) {
    const comp = comps[ci]!;
    if (!hasGlob(comp)) {
      const lit = unescapeGlob(comp);
      bases = bases.map((b) => join(b, lit));
      if (globbed) literalAfterGlob = true;
      continue;
    }
    globbed = true;
    const last = ci === comps.length - 1;
    const next: string[] = [];
    for (const b of bases) {
      try {
        for await (const page of backend.list(b)) {
          for (const e of page) {
            if (!matchGlob(comp, e.name)) continue;
            if (!last && (e.attrs.mode & S_IFMT) !== S_IFDIR) continue;
            if (next.length >= max) throw new BackendError('EINVAL', `pattern matches more than ${max} paths`);
            next.push(join(b, e.name));
          }
        }
      } catch (err) {
        if (err instanceof BackendError && err.code === 'EINVAL') throw err;
        // Like a shell: a directory it cannot read contributes no matches.
      }
    }
    bases = next;
  }
  if (!literalAfterGlob) return bases;
  const found: string[] = [];
  for (const b of bases) {
    try {
      await backend.stat(b);
      found.push(b);
    } catch {
      // not there: not a match
    }
  }
  return found;
}
