import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { hasGlob, matchGlob, unescapeGlob } from '../../src/scp/glob.js';

const Glob = suite('scp/glob: shell pattern matching for source paths');

Glob('* ? and [...] as a POSIX shell matches one component', () => {
  assert.ok(matchGlob('*.txt', 'a.txt'));
  assert.ok(!matchGlob('*.txt', 'a.txt.bak'));
  assert.ok(matchGlob('a?c', 'abc'));
  assert.ok(!matchGlob('a?c', 'ac'));
  assert.ok(matchGlob('[a-c]x', 'bx'));
  assert.ok(!matchGlob('[a-c]x', 'dx'));
  assert.ok(matchGlob('[!a-c]x', 'dx'));
  assert.ok(matchGlob('[^a]x', 'bx'));
  assert.ok(matchGlob('[]]', ']'));
  assert.ok(matchGlob('*', 'ünï'));
  assert.ok(matchGlob('?', 'ü'));
  assert.ok(matchGlob('a[', 'a['), 'an unterminated [ is literal');
});

Glob('a leading dot must be matched explicitly', () => {
  assert.ok(!matchGlob('*', '.hidden'));
  assert.ok(!matchGlob('?hidden', '.hidden'));
  assert.ok(matchGlob('.*', '.hidden'));
});

Glob('backslash escapes make metacharacters literal', () => {
  assert.ok(matchGlob('\\*', '*'));
  assert.ok(!matchGlob('\\*', 'x'));
  assert.ok(matchGlob('a\\\\b', 'a\\b'));
  assert.ok(!hasGlob('a\\*b\\?\\['));
  assert.ok(hasGlob('a\\\\*'));
  assert.is(unescapeGlob('a\\*b\\\\c'), 'a*b\\c');
});

Glob.run();
