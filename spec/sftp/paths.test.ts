import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { baseName, normalisePath } from '../../src/sftp/paths.js';
import { MalformedError } from '../../src/wire/errors.js';

const Paths = suite('sftp/paths: normalising client paths');

const cases: [string, string][] = [
  // the home directory
  ['', '/'],
  ['.', '/'],
  ['./', '/'],
  ['/', '/'],
  ['//', '/'],
  ['/.', '/'],
  // relative paths resolve against "/"
  ['bucket', '/bucket'],
  ['bucket/key', '/bucket/key'],
  ['./bucket/./key', '/bucket/key'],
  // duplicate and trailing separators
  ['/bucket//dir///file', '/bucket/dir/file'],
  ['/bucket/dir/', '/bucket/dir'],
  ['bucket/dir//', '/bucket/dir'],
  // ".." removes one component
  ['/a/b/../c', '/a/c'],
  ['/a/b/c/../../d', '/a/d'],
  ['a/b/..', '/a'],
  ['/a/..', '/'],
  // ".." never climbs above "/"
  ['..', '/'],
  ['../..', '/'],
  ['/..', '/'],
  ['/../../../etc/passwd', '/etc/passwd'],
  ['bucket/../../other/key', '/other/key'],
  ['/bucket/a/../../../../b', '/b'],
  ['../bucket/./../..//x/', '/x'],
  // names that only look special stay as they are
  ['/bucket/...', '/bucket/...'],
  ['/bucket/..a', '/bucket/..a'],
  ['/bucket/a..', '/bucket/a..'],
  ['/bucket/.hidden', '/bucket/.hidden'],
  ['/bucket/a\\..\\b', '/bucket/a\\..\\b'],
  ['/bucket/ spaced /x ', '/bucket/ spaced /x '],
  ['/bücket/ключ/🔑', '/bücket/ключ/🔑'],
  ['/bucket/%2e%2e/x', '/bucket/%2e%2e/x'],
];

for (const [input, want] of cases) {
  Paths(`${JSON.stringify(input)} is ${JSON.stringify(want)}`, () => {
    assert.is(normalisePath(input), want);
  });
}

Paths('a NUL byte anywhere is malformed', () => {
  for (const p of ['\0', '/a\0', '/a/\0/b', 'a\0/../b']) {
    assert.throws(() => normalisePath(p), (e: unknown) => e instanceof MalformedError && /NUL/.test((e as Error).message));
  }
});

Paths('a different home directory is honoured for relative paths only', () => {
  assert.is(normalisePath('x', '/bucket'), '/bucket/x');
  assert.is(normalisePath('../../x', '/bucket'), '/x');
  assert.is(normalisePath('/y', '/bucket'), '/y');
});

Paths('property: the result is absolute, normalised, and idempotent', () => {
  const part = fc.constantFrom('', '.', '..', 'a', 'b', '...', 'é', ' ');
  fc.assert(
    fc.property(fc.array(part, { maxLength: 12 }), fc.boolean(), (parts, absolute) => {
      const p = (absolute ? '/' : '') + parts.join('/');
      const n = normalisePath(p);
      assert.ok(n.startsWith('/'));
      assert.ok(n === '/' || !n.endsWith('/'));
      for (const c of n.slice(1).split('/')) if (n !== '/') assert.ok(c !== '' && c !== '.' && c !== '..', `${p} -> ${n}`);
      assert.is(normalisePath(n), n);
    }),
    { numRuns: 2000 },
  );
});

Paths('property: "/" followed by any ".."-prefixed path cannot leave the namespace', () => {
  fc.assert(
    fc.property(fc.array(fc.constantFrom('..', '.', 'x'), { maxLength: 10 }), (parts) => {
      const n = normalisePath('/bucket/' + parts.join('/'));
      // Whatever the dots did, the result is still a path under "/" with no dot components.
      assert.not.match(n, /(^|\/)\.\.?(\/|$)/);
    }),
  );
});

Paths('baseName is the last component', () => {
  assert.is(baseName('/a/b/c'), 'c');
  assert.is(baseName('/a'), 'a');
  assert.is(baseName('/'), '');
});

Paths.run();
