/**
 * OpenSSH's own clients against the SFTP server over pipes, no SSH in between:
 * `sftp -D "node dist/scripts/sftp-stdio.js"` (batch mode), and `scp -S <stand-in for ssh>` in
 * its default SFTP mode. The server runs on the in-memory backend in the child process.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../helpers/golden.js';

const OpenSSH = suite('sftp/openssh: OpenSSH sftp -D and scp against the server over pipes');

const SERVER = path.join(ROOT, 'dist/scripts/sftp-stdio.js');
const SERVER_CMD = `${process.execPath} ${SERVER}`;
let dir = '';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command with a deadline; a hang is a failure, never a stuck suite. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: dir });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} could not be started (${err.message}); install it: apt-get install openssh-client`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function sha256File(p: string): string {
  return createHash('sha256').update(fs.readFileSync(p)).digest('hex');
}

/** Writes a batch file and runs `sftp -b` on it with extra options. */
async function batch(name: string, lines: string[], opts: string[] = []): Promise<Run> {
  const file = path.join(dir, `${name}.batch`);
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return run('sftp', [...opts, '-b', file, '-D', SERVER_CMD]);
}

function assertOk(r: Run, what: string): void {
  assert.is(r.code, 0, `${what}: exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
}

OpenSSH.before(() => {
  if (!fs.existsSync(SERVER)) throw new Error(`${SERVER} is missing; build first: npx tsc -p .`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 's3gw-sftp-'));
});

OpenSSH.after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

OpenSSH('sftp is installed', async () => {
  const r = await run('sftp', ['-h']).catch((err: Error) => {
    throw err;
  });
  // `sftp -h` prints its usage and exits 1; what matters is that it ran.
  assert.match(r.stderr, /usage: sftp/);
});

OpenSSH('a batch session: mkdir, put, ls, ls -l, get, rename, df, rm, rmdir', async () => {
  const local = path.join(dir, 'local.bin');
  fs.writeFileSync(local, randomBytes(123_457));
  const back = path.join(dir, 'back.bin');
  const empty = path.join(dir, 'empty.txt');
  fs.writeFileSync(empty, '');
  const r = await batch('session', [
    'pwd',
    'mkdir bucket',
    'mkdir bucket/dir',
    'cd bucket',
    `put ${local} dir/file.bin`,
    `put ${empty} dir/empty`,
    'ls dir',
    'ls -l dir',
    `get dir/file.bin ${back}`,
    'rename dir/file.bin dir/renamed.bin',
    'ls -l dir/renamed.bin',
    'df',
    'df -h /bucket',
    '-rmdir dir',
    'rm dir/renamed.bin',
    'rm dir/empty',
    'rmdir dir',
    'cd /',
    'ls -l',
    '-get /missing',
    'rmdir bucket',
    'ls',
  ]);
  assertOk(r, 'batch');
  assert.is(sha256File(back), sha256File(local), 'get returns what put stored');
  assert.match(r.stdout, /Remote working directory: \/\n/);
  assert.match(r.stdout, /sftp> ls dir\ndir\/empty\s+dir\/file\.bin\s*\n/);
  // `ls -l dir` prints our longnames as they are (so the base names)...
  assert.match(r.stdout, /sftp> ls -l dir\n-rw-r--r--    1 s3       s3              0 \w{3} [ \d]\d (\d\d:\d\d| \d{4}) empty\n/);
  assert.match(r.stdout, /\n-rw-r--r--    1 s3       s3         123457 \w{3} [ \d]\d (\d\d:\d\d| \d{4}) file\.bin\n/);
  // ...while `ls -l file` formats the STAT attributes itself.
  assert.match(r.stdout, /sftp> ls -l dir\/renamed\.bin\n-rw-r--r-- .* 123457 .* dir\/renamed\.bin\n/);
  assert.match(r.stdout, /sftp> df\n\s+Size\s+Used\s+Avail\s+\(root\)\s+%Capacity\n\s+4294967296\s+2147483648\s+2147483648\s+2147483648\s+50%\n/);
  assert.match(r.stdout, /sftp> ls -l\ndrwxr-xr-x    2 s3       s3              0 .* bucket\n/);
  // The refused commands ('-' prefix lets the batch go on) said why.
  assert.match(r.stderr, /rmdir "\/bucket\/dir": Failure/);
  assert.match(r.stderr, /missing/);
});

OpenSSH('ls of a large directory lists every name (several READDIR replies)', async () => {
  const lines = ['mkdir d'];
  const empty = path.join(dir, 'empty');
  fs.writeFileSync(empty, '');
  for (let i = 0; i < 230; i++) lines.push(`put ${empty} d/f${String(i).padStart(3, '0')}`);
  lines.push('ls -1 d');
  const r = await batch('many', lines);
  assertOk(r, 'batch');
  const listed = r.stdout.split('sftp> ls -1 d\n')[1]!.trim().split('\n');
  assert.is(listed.length, 230);
  assert.is(listed[0], 'd/f000');
  assert.is(listed[229], 'd/f229');
});

OpenSSH('put/get round trips are sha256-equal for buffer sizes 5..64000 and 1, 2 and 10 requests in flight', async () => {
  const local = path.join(dir, 'random.bin');
  fs.writeFileSync(local, randomBytes(200 * 1024 + 17));
  const want = sha256File(local);
  const combos: [number, number][] = [];
  for (const b of [5, 1000, 32000, 64000]) for (const rq of [1, 2, 10]) combos.push([b, rq]);
  // Three at a time: each is its own sftp and server process.
  const failures: string[] = [];
  for (let i = 0; i < combos.length; i += 3) {
    await Promise.all(
      combos.slice(i, i + 3).map(async ([b, rq]) => {
        const out = path.join(dir, `back-${b}-${rq}.bin`);
        const r = await batch(`rt-${b}-${rq}`, [`put ${local} /r.bin`, 'ls -l /r.bin', `get /r.bin ${out}`], ['-B', String(b), '-R', String(rq)]);
        if (r.code !== 0) failures.push(`-B ${b} -R ${rq}: exit ${r.code}: ${r.stderr}`);
        else if (sha256File(out) !== want) failures.push(`-B ${b} -R ${rq}: content differs`);
        else if (!r.stdout.includes(' 204817 ')) failures.push(`-B ${b} -R ${rq}: ls -l size missing`);
      }),
    );
  }
  assert.equal(failures, []);
});

OpenSSH('empty and one-byte files round trip', async () => {
  const zero = path.join(dir, 'zero');
  const one = path.join(dir, 'one');
  fs.writeFileSync(zero, '');
  fs.writeFileSync(one, 'x');
  const r = await batch('small', [`put ${zero} /z`, `put ${one} /o`, `get /z ${zero}.back`, `get /o ${one}.back`]);
  assertOk(r, 'batch');
  assert.is(fs.readFileSync(`${zero}.back`).length, 0);
  assert.is(fs.readFileSync(`${one}.back`, 'utf8'), 'x');
});

OpenSSH('put -p and -f: times are kept, fsync answers', async () => {
  const local = path.join(dir, 'timed.bin');
  fs.writeFileSync(local, 'timed');
  fs.utimesSync(local, 1_500_000_000, 1_500_000_000);
  const r = await batch('preserve', [`put -p -f ${local} /t`, `get -p /t ${local}.back`]);
  assertOk(r, 'batch');
  assert.is(Math.floor(fs.statSync(`${local}.back`).mtimeMs / 1000), 1_500_000_000);
});

OpenSSH('reput and put -a continue a partial upload; reget and get -a a partial download', async () => {
  const local = path.join(dir, 'resume.bin');
  fs.writeFileSync(local, randomBytes(300_001));
  const part = path.join(dir, 'part.bin');
  fs.writeFileSync(part, fs.readFileSync(local).subarray(0, 100_000));
  const down = path.join(dir, 'resume-down.bin');
  fs.writeFileSync(down, fs.readFileSync(local).subarray(0, 12_345));
  const down2 = path.join(dir, 'resume-down2.bin');
  fs.writeFileSync(down2, fs.readFileSync(local).subarray(0, 1));
  const r = await batch('resume', [
    `put ${part} /r`,
    `reput ${local} /r`,
    `put ${part} /a`,
    `put -a ${local} /a`,
    // The same size again: sftp itself refuses ("destination file bigger or same size").
    `-reput ${local} /r`,
    `get /r ${local}.r`,
    `get /a ${local}.a`,
    `put ${local} /whole`,
    `reget /whole ${down}`,
    `get -a /whole ${down2}`,
  ]);
  assertOk(r, 'batch');
  const want = sha256File(local);
  assert.is(sha256File(`${local}.r`), want, 'reput');
  assert.is(sha256File(`${local}.a`), want, 'put -a');
  assert.is(sha256File(down), want, 'reget');
  assert.is(sha256File(down2), want, 'get -a');
});

OpenSSH('legacy rename refuses an existing target', async () => {
  const part = path.join(dir, 'small.bin');
  fs.writeFileSync(part, randomBytes(1000));
  const r = await batch('refusals', [`put ${part} /r`, `put ${part} /other`, '-rename -l /r /other', 'ls /']);
  assertOk(r, 'batch');
  assert.match(r.stderr, /remote rename "\/r" to "\/other": Failure/);
  assert.match(r.stdout, /\/other\s+\/r/);
});

OpenSSH('scp in its default SFTP mode uploads and downloads (with a stand-in for ssh)', async () => {
  const fakeSsh = path.join(dir, 'fake-ssh');
  const local = path.join(dir, 'scp.bin');
  fs.writeFileSync(local, randomBytes(300_001));
  const preload = path.join(dir, 'preload.bin');
  fs.writeFileSync(preload, randomBytes(70_000));
  // scp runs "<ssh> [options] -s -- host sftp"; the stand-in ignores them and runs our server.
  fs.writeFileSync(
    fakeSsh,
    `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(SERVER)} --preload ${JSON.stringify(preload)}=/pre/file.bin\n`,
    { mode: 0o755 },
  );
  const env = { ...process.env, S3GW_LOG_LEVEL: 'debug' };
  const up = await run('scp', ['-S', fakeSsh, '-p', local, 'host:/up.bin'], env);
  assertOk(up, 'scp upload');
  const events = up.stderr
    .split('\n')
    .filter((l) => l.includes('"msg":"event"'))
    .map((l) => JSON.parse(l) as { type: string; ok: boolean; bytes?: number; path: string });
  assert.ok(
    events.some((e) => e.type === 'upload' && e.ok && e.bytes === 300_001 && e.path === '/up.bin'),
    `no successful upload event in:\n${up.stderr}`,
  );
  // scp ≥ 9.1 truncates with FSETSTAT(size = bytes written) after the data: accepted as a no-op.
  assert.ok(events.filter((e) => e.type === 'setstat').every((e) => e.ok));
  const down = path.join(dir, 'scp-down.bin');
  const dl = await run('scp', ['-S', fakeSsh, 'host:/pre/file.bin', down]);
  assertOk(dl, 'scp download');
  assert.is(sha256File(down), sha256File(preload));
});

OpenSSH.run();
