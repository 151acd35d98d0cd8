import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { dateString, longname, modeString } from '../../src/sftp/longname.js';

const Long = suite('sftp/longname: ls -l lines for READDIR');

// 2024-06-15 12:00:00 UTC
const NOW = Date.UTC(2024, 5, 15, 12, 0, 0) / 1000;

Long('a recent file: OpenSSH ls_file layout with time of day', () => {
  const mtime = Date.UTC(2024, 5, 5, 9, 7, 0) / 1000;
  assert.is(
    longname('report.csv', { mode: 0o100644, size: 1234, mtime, atime: mtime }, NOW),
    '-rw-r--r--    1 s3       s3           1234 Jun  5 09:07 report.csv',
  );
});

Long('an old file shows the year instead of the time', () => {
  const mtime = Date.UTC(2019, 0, 25, 23, 59, 0) / 1000;
  assert.is(
    longname('old', { mode: 0o100600, size: 5, mtime, atime: mtime }, NOW),
    '-rw-------    1 s3       s3              5 Jan 25  2019 old',
  );
});

Long('a directory has type d and two links', () => {
  const mtime = NOW - 60;
  assert.is(
    longname('dir', { mode: 0o040755, size: 0, mtime, atime: mtime }, NOW),
    'drwxr-xr-x    2 s3       s3              0 Jun 15 11:59 dir',
  );
});

Long('a future date and one older than half a year use the year form', () => {
  assert.is(dateString(NOW + 3600, NOW), 'Jun 15  2024');
  assert.is(dateString(NOW - 200 * 86400, NOW), 'Nov 28  2023');
  assert.is(dateString(NOW - 100 * 86400, NOW), 'Mar  7 12:00');
});

Long('sizes wider than the column push the line rather than being cut', () => {
  const l = longname('big', { mode: 0o100644, size: 5 * 2 ** 40, mtime: NOW, atime: NOW }, NOW);
  assert.ok(l.includes(' 5497558138880 '));
});

Long('control characters in a name are shown as ?', () => {
  const l = longname('a\x1b[2Jb\nc', { mode: 0o100644, size: 0, mtime: NOW, atime: NOW }, NOW);
  assert.ok(l.endsWith(' a?[2Jb?c'));
});

Long('modeString covers setuid, setgid and sticky bits like strmode', () => {
  assert.is(modeString(0o104755), '-rwsr-xr-x ');
  assert.is(modeString(0o102644), '-rw-r-Sr-- ');
  assert.is(modeString(0o041777), 'drwxrwxrwt ');
  assert.is(modeString(0o041776), 'drwxrwxrwT ');
  assert.is(modeString(0o000000), '?--------- ');
});

Long.run();
