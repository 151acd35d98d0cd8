import { S_IFDIR, S_IFMT, S_IFREG, type FileAttrs } from '../backend.js';

/**
 * The `longname` of a READDIR entry (draft-02 §7: "should be the output of `ls -l`"), in the exact
 * layout of OpenSSH's ls_file() (sftp-common.c), which `sftp ls -l` prints as given:
 *
 *   -rw-r--r--    1 s3       s3           1234 Jan  5 14:03 name
 *
 * strmode() leaves a space after the mode; the link count is %3u; owner and group are padded to
 * 8; the size is %8llu; the date is "%b %e %H:%M" for the last six months, else "%b %e  %Y".
 * S3 has no owners, so both columns say OWNER. Dates are UTC: the server's time zone means
 * nothing to the client. Clients should not parse this (the draft says so), but some do, which
 * is why it keeps the classic layout.
 */
export const OWNER = 's3';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const HALF_YEAR = (365 * 24 * 60 * 60) / 2;

export function longname(name: string, attrs: FileAttrs, now: number = Date.now() / 1000): string {
  const mode = modeString(attrs.mode);
  const links = (attrs.mode & S_IFMT) === S_IFDIR ? 2 : 1;
  const owner = OWNER.padEnd(8);
  const size = String(attrs.size).padStart(8);
  const date = dateString(attrs.mtime, now);
  return `${mode} ${String(links).padStart(3)} ${owner} ${owner} ${size} ${date} ${displayName(name)}`;
}

/** strmode(3): type character, three rwx triplets with s/S/t/T, then a space. */
export function modeString(mode: number): string {
  const type = mode & S_IFMT;
  let s = type === S_IFDIR ? 'd' : type === S_IFREG ? '-' : type === 0o120000 ? 'l' : '?';
  const triplet = (r: number, w: number, x: number, special: number, set: string, unset: string) => {
    s += mode & r ? 'r' : '-';
    s += mode & w ? 'w' : '-';
    if (mode & special) s += mode & x ? set : unset;
    else s += mode & x ? 'x' : '-';
  };
  triplet(0o400, 0o200, 0o100, 0o4000, 's', 'S');
  triplet(0o040, 0o020, 0o010, 0o2000, 's', 'S');
  triplet(0o004, 0o002, 0o001, 0o1000, 't', 'T');
  return s + ' ';
}

/** "Jan  5 14:03" within the last half year, "Jan  5  2019" otherwise or in the future (UTC). */
export function dateString(mtime: number, now: number): string {
  const d = new Date(mtime * 1000);
  if (Number.isNaN(d.getTime())) return 'Jan  1  1970';
  const head = `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2)}`;
  if (now - HALF_YEAR < mtime && now >= mtime) {
    return `${head} ${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
  }
  return `${head}  ${d.getUTCFullYear()}`;
}

/**
 * The name as shown: control characters become `?` (a listing is for display; the real name
 * travels in `filename`), so a crafted object name cannot move a terminal's cursor.
 */
function displayName(name: string): string {
  // eslint-disable-next-line no-control-regex
  return name.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}
