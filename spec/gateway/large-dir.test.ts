/**
 * A directory of 100,000 objects lists completely through the gateway with OpenSSH's `sftp ls`
 * (issue 3 §4: READDIR streams ListObjectsV2 pages). The objects are the S3 suite's fixture
 * (example-bucket/s3gw-spec-fixtures/100k/f000000 .. f099999, made once and kept, with a marker
 * written when complete), so whichever suite runs first makes them and later runs reuse them.
 *
 * sftp prints one name a line with `ls -1`, sorted; the lines are counted and checked as they
 * stream, never held.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { killStrayChildren } from '../helpers/openssh.js';
import {
  BUCKET,
  MANY,
  MANY_PREFIX,
  ensureManyObjects,
  logTail,
  manyName,
  sftpBatchLines,
  startGateway,
  type Gateway,
} from '../helpers/gateway.js';

const test = suite<{ gw: Gateway }>('gateway: a directory of 100,000 objects', { gw: undefined as unknown as Gateway });

test.before(async (ctx) => {
  await ensureManyObjects();
  ctx.gw = await startGateway();
});

test.after(async (ctx) => {
  killStrayChildren();
  await ctx.gw?.close();
});

test('sftp ls -1 prints every one of the 100,000 names, in order', async ({ gw }) => {
  let names = 0;
  let other: string[] = [];
  let outOfOrder = '';
  const r = await sftpBatchLines(gw, 'least', [`cd /${BUCKET}/${MANY_PREFIX}`, 'ls -1'], (line) => {
    if (line.startsWith('sftp> ')) return;
    const name = line.trim();
    if (/^f\d{6}$/.test(name)) {
      if (!outOfOrder && name !== manyName(names)) outOfOrder = `line ${names}: ${name}, expected ${manyName(names)}`;
      names++;
    } else if (other.length < 10) other = [...other, line];
  });
  assert.not.ok(r.timedOut, `sftp hung after ${names} names\n${r.stderr}\n${logTail(gw)}`);
  assert.is(r.code, 0, `sftp exit\n${r.stderr}`);
  assert.equal(other, [], 'nothing but names');
  assert.is(outOfOrder, '', 'each name once, in order');
  assert.is(names, MANY, `${names} names listed`);
});

test('sftp ls -l of the same directory has a long line per object', async ({ gw }) => {
  let files = 0;
  const r = await sftpBatchLines(gw, 'least', [`ls -l /${BUCKET}/${MANY_PREFIX}`], (line) => {
    if (/^-rw-r--r--\s.*\s0\s.*\sf\d{6}$/.test(line)) files++;
  });
  assert.not.ok(r.timedOut, r.stderr);
  assert.is(r.code, 0, r.stderr);
  assert.is(files, MANY);
});

test.run();
