/**
 * The gateway end to end with `scp` in its default SFTP mode (OpenSSH 9.2: scp speaks SFTP unless
 * given -O) and with curl's sftp:// (libssh2): up, down and, for scp, a small tree with -r.
 * Legacy `scp -O` (exec scp -t / -f) has its own suite: spec/scp/gateway.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { runSsh } from '../helpers/openssh.js';
import {
  BUCKET,
  MiB,
  assertOk,
  assertStored,
  creds,
  curl,
  curlUrl,
  e2ePrefix,
  payload,
  scp,
  scpRemote,
  sftpBatch,
  sha256File,
  show,
  sshClientEnv,
  tempDir,
  type ClientRun,
  gatewaySuite,
} from '../helpers/gateway.js';

const PREFIX = e2ePrefix('scp');

const test = gatewaySuite('gateway: scp (SFTP mode) and curl sftp://', PREFIX);

/** scp in SFTP mode exits 1, saying nothing, when ssh exits non-zero: say what that usually means. */
function assertScpOk(r: ClientRun): void {
  assert.not.ok(r.timedOut, show(r));
  const hint = r.code === 1 && r.stderr === '' ? '\n(scp exits 1 silently when ssh does: see the exit-status test below)' : '';
  assert.is(r.code, 0, show(r) + hint);
}

test('scp uploads and downloads a file (single part and multipart)', async ({ gw }) => {
  const local = tempDir('scp-file');
  const runs = [];
  for (const size of [12_345, 5 * MiB + 1]) {
    const f = await payload(size);
    const key = `${PREFIX}/file-${size}.bin`;
    const up = await scp(gw, 'least', [f.path, await scpRemote('least', `/${BUCKET}/${key}`)]);
    assert.not.ok(up.timedOut, show(up));
    await assertStored(BUCKET, key, size);
    const back = path.join(local, `back-${size}.bin`);
    const down = await scp(gw, 'least', [await scpRemote('least', `/${BUCKET}/${key}`), back]);
    assert.not.ok(down.timedOut, show(down));
    assert.is(await sha256File(back), f.sha256, `${size} bytes`);
    runs.push(up, down);
  }
  // Last, so the bytes are checked whatever the exit status: scp in SFTP mode exits non-zero
  // when ssh reports no exit-status (see the exit-status test below).
  for (const r of runs) assertScpOk(r);
});

test('scp -r copies a small tree up and down', async ({ gw }) => {
  const src = path.join(tempDir('scp-tree'), 'tree');
  const files: Record<string, Buffer> = {
    'a.txt': Buffer.from('alpha\n'),
    'empty': Buffer.alloc(0),
    'sub/b.bin': Buffer.from((await fs.promises.readFile((await payload(70_000)).path)).subarray(0, 70_000)),
    'sub/deeper/c.txt': Buffer.from('gamma\n'),
  };
  for (const [name, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(src, name)), { recursive: true });
    fs.writeFileSync(path.join(src, name), data);
  }
  const up = await scp(gw, 'least', ['-r', src, await scpRemote('least', `/${BUCKET}/${PREFIX}/`)]);
  assert.not.ok(up.timedOut, show(up));
  for (const [name, data] of Object.entries(files)) await assertStored(BUCKET, `${PREFIX}/tree/${name}`, data.length);

  const dest = tempDir('scp-tree-back');
  const down = await scp(gw, 'least', ['-r', await scpRemote('least', `/${BUCKET}/${PREFIX}/tree`), dest]);
  assert.not.ok(down.timedOut, show(down));
  for (const [name, data] of Object.entries(files)) {
    const back = path.join(dest, 'tree', name);
    assert.ok(fs.existsSync(back), `${name} came back\n${show(down)}`);
    assert.ok(fs.readFileSync(back).equals(data), `${name}: same bytes`);
  }
  assertScpOk(up);
  assertScpOk(down);
});

test('an sftp session the client ends with EOF gets exit-status 0 before CLOSE (ssh exits 0, so scp can)', async ({ gw }) => {
  // scp in SFTP mode waits for ssh and fails the copy unless ssh exits 0; ssh exits with the
  // exit-status the server sent, or 255 ("Exit status -1") when none came before CHANNEL_CLOSE.
  const c = await creds('least');
  const r = await runSsh(sshClientEnv(), {
    port: gw.port,
    subsystem: 'sftp',
    user: c.accessKeyId,
    password: c.secretAccessKey,
    verbose: 2,
    stdin: Buffer.alloc(0), // EOF at once: the client ends the session, as sftp and scp do
  });
  assert.not.ok(r.timedOut, r.stderr);
  assert.not.match(r.stderr, /Exit status -1/, 'the server sent no exit-status before closing the channel');
  assert.is(r.code, 0, `ssh -s sftp exit code (${r.stderr.split('\n').filter((l) => /exit|close|eof/i.test(l)).join(' | ')})`);
});

test('scp of a missing file fails and says so', async ({ gw }) => {
  const dest = tempDir('scp-missing');
  const r = await scp(gw, 'least', [await scpRemote('least', `/${BUCKET}/${PREFIX}/no-such-file`), dest]);
  assert.not.ok(r.timedOut, show(r));
  assert.is.not(r.code, 0, show(r));
  assert.match(r.stderr, /No such file|not found/, show(r));
});

test('curl sftp:// uploads and downloads, with the secret percent-encoded in the URL', async ({ gw }) => {
  const dir = tempDir('curl');
  for (const size of [0, 9_999, 5 * MiB + 1]) {
    const f = await payload(size);
    const key = `${PREFIX}/curl/${size}.bin`;
    const url = await curlUrl(gw, 'least', `/${BUCKET}/${key}`);
    const up = await curl(['--upload-file', f.path, url]);
    assertOk(up);
    await assertStored(BUCKET, key, size);
    const back = path.join(dir, `${size}.bin`);
    const down = await curl(['--output', back, url]);
    assertOk(down);
    assert.is(await sha256File(back), f.sha256, `${size} bytes`);
  }
  // curl --ftp-create-dirs makes missing directories with MKDIR on the way.
  const f = await payload(1);
  const deep = `${PREFIX}/curl/made/by/curl/one.bin`;
  const up = await curl(['--ftp-create-dirs', '--upload-file', f.path, await curlUrl(gw, 'least', `/${BUCKET}/${deep}`)]);
  assertOk(up);
  await assertStored(BUCKET, deep, 1);
  // A listing: a URL ending in / lists the directory, one name a line.
  const ls = await curl(['--list-only', await curlUrl(gw, 'least', `/${BUCKET}/${PREFIX}/curl/`)]);
  assertOk(ls);
  assert.equal(
    ls.out.split('\n').filter(Boolean).sort(),
    ['0.bin', '5242881.bin', '9999.bin', 'made'],
    show(ls),
  );
});

test('curl with a wrong secret is refused; the gateway keeps serving', async ({ gw }) => {
  const url = (await curlUrl(gw, 'least', `/${BUCKET}/${PREFIX}/curl/x`)).replace(/:[^:@/]*@/, ':wrong-secret%2B%2F@');
  const r = await curl(['--output', '/dev/null', url]);
  assert.not.ok(r.timedOut, show(r));
  // curl 67: "Login denied".
  assert.is(r.code, 67, show(r));
  const ok = await sftpBatch(gw, 'least', ['ls /']);
  assertOk(ok);
});

test.run();
