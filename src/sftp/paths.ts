import { MalformedError } from '../wire/errors.js';

/**
 * Client paths to backend paths. Every path a client sends goes through `normalisePath` before
 * it reaches the backend, so the backend only ever sees absolute, normalised paths
 * ("/bucket/dir/file") and the path a request names is the one that gets used.
 *
 * - The home directory is "/": the empty path and relative paths resolve against it
 *   (draft-02 §6.9: "an empty path name is valid, and it refers to the user's default directory").
 * - "." and empty components ("//", a trailing "/") are dropped.
 * - ".." removes the previous component and stops at "/": "/../../etc" is "/etc", exactly as a
 *   chroot would treat it, so no sequence of ".." can name anything outside the namespace.
 * - A NUL byte is malformed: no store can hold it, and C clients would have cut the name there,
 *   so two parties could disagree about what the path names.
 */
export const HOME = '/';

export function normalisePath(p: string, home: string = HOME): string {
  if (p.includes('\0')) throw new MalformedError('path contains a NUL byte');
  const full = p.startsWith('/') ? p : home + '/' + p;
  const out: string[] = [];
  for (const part of full.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      out.pop();
      continue;
    }
    out.push(part);
  }
  return '/' + out.join('/');
}

/** The last component of a normalised path ("" for "/"). */
export function baseName(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}
