/**
 * A client that dies mid-upload leaves nothing behind (issue 3 §6): no object, and no multipart
 * upload pending in S3 (which would keep its parts, and their cost, forever).
 *
 * OpenSSH sftp uploads 3 parts + 17 bytes at a limited rate (`sftp -l`, Kbit/s), so the upload
 * is reliably in the middle when it is killed: the test waits until the gateway has started the
 * multipart upload (ListMultipartUploads as admin shows it), kills the client, then polls with a
 * deadline until the gateway has noticed and aborted it. Two ways to die: the ssh process is
 * killed (the TCP connection drops with no SSH goodbye), or only sftp is (ssh then ends the
 * channel with EOF, an orderly end of a session whose upload was never closed).
 */
import fs from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { killStrayChildren } from '../helpers/openssh.js';
import {
  BUCKET,
  MiB,
  e2ePrefix,
  eventually,
  headOrNull,
  logTail,
  payload,
  pendingUploads,
  removePrefix,
  sftpBatch,
  sftpBatchStarted,
  show,
  startGateway,
  assertOk,
  type Gateway,
} from '../helpers/gateway.js';

const PREFIX = e2ePrefix('abort');
const SIZE = 3 * 5 * MiB + 17;
/** Kbit/s: about 2 MB/s, so the first 5 MiB part fills in under 3 s and the whole file takes 8. */
const RATE = '16000';

const test = suite<{ gw: Gateway }>('gateway: a client killed mid-upload', { gw: undefined as unknown as Gateway });

test.before(async (ctx) => {
  ctx.gw = await startGateway();
});

test.after(async (ctx) => {
  killStrayChildren();
  await ctx.gw?.close();
  await removePrefix(BUCKET, PREFIX + '/');
});

/** The pids of a process's children (Linux: /proc/PID/task/PID/children). */
function childPids(pid: number): number[] {
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

async function killMidUpload(gw: Gateway, name: string, killSsh: boolean): Promise<void> {
  const f = await payload(SIZE);
  const key = `${PREFIX}/${name}.bin`;
  const connectionsBefore = gw.openConnections;
  const run = await sftpBatchStarted(gw, 'least', [`put ${f.path} /${BUCKET}/${key}`], { args: ['-l', RATE] });
  try {
    // The multipart upload exists once the first part is full and the next byte arrived.
    await eventually(
      `a multipart upload of ${key} to start`,
      async () => (await pendingUploads(BUCKET, key)).some((u) => u.key === key),
      30_000,
    );
  } catch (err) {
    const r = await Promise.race([run.done, new Promise<null>((res) => setTimeout(() => res(null), 100))]);
    throw new Error(`${(err as Error).message}\n${r ? show(r) : 'sftp still running'}\n${logTail(gw)}`);
  }
  const sftpPid = run.pid();
  assert.ok(sftpPid, 'sftp is running');
  const ssh = childPids(sftpPid);
  assert.ok(ssh.length >= 1, 'sftp runs ssh as its child');
  if (killSsh) for (const pid of ssh) process.kill(pid, 'SIGKILL');
  process.kill(sftpPid, 'SIGKILL');
  const r = await run.done;
  assert.is(r.signal, 'SIGKILL', 'sftp was killed, it did not finish');

  await eventually(
    'the gateway to abort the upload and drop the connection',
    async () =>
      gw.openConnections <= connectionsBefore &&
      !(await pendingUploads(BUCKET, key)).some((u) => u.key === key) &&
      (await headOrNull(BUCKET, key)) === null,
    30_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n--- gateway log\n${logTail(gw, 40)}`);
  });
  assert.is(await headOrNull(BUCKET, key), null, 'no object');
  assert.equal(
    (await pendingUploads(BUCKET, key)).filter((u) => u.key === key),
    [],
    'no pending multipart upload',
  );
}

test('killing ssh (the connection drops) leaves no object and no pending multipart upload', async ({ gw }) => {
  await killMidUpload(gw, 'connection-dropped', true);
});

test('killing sftp (ssh ends the channel) leaves no object and no pending multipart upload', async ({ gw }) => {
  await killMidUpload(gw, 'channel-ended', false);
});

test('the gateway serves new logins and uploads after the killed clients', async ({ gw }) => {
  const f = await payload(1);
  const r = await sftpBatch(gw, 'least', [`put ${f.path} /${BUCKET}/${PREFIX}/after.bin`]);
  assertOk(r);
  assert.ok(await headOrNull(BUCKET, `${PREFIX}/after.bin`));
});

test.run();
