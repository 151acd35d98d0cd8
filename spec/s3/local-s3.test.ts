/**
 * The S3 server the integration tests use (scripts/local-s3.sh, or S3GW_S3_EXTERNAL=1) really has
 * the buckets, users and rights of fixtures/s3/README.md and stores SSE-S3 objects encrypted.
 * Driven with MinIO's own client, mc, so a failure here points at the setup, not at the gateway.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { requireS3, type S3Credentials, type S3TestEnv } from '../helpers/s3-env.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const MC = path.join(ROOT, '.tools', 'bin', 'mc');

/** One prefix per run, removed afterwards, so runs never see each other's objects. */
const PREFIX = `spec-local-s3/${process.pid}-${randomBytes(4).toString('hex')}`;

interface McResult {
  code: number;
  /** mc --json prints one JSON object per line. */
  lines: Array<Record<string, unknown>>;
  stderr: string;
}

interface Setup {
  s3: S3TestEnv;
  dir: string;
  env: NodeJS.ProcessEnv;
}

let ready: Promise<Setup> | undefined;

/** Runs once, inside the first test, so a missing server fails a test with a readable message. */
function setup(): Promise<Setup> {
  ready ??= (async () => {
    const s3 = await requireS3();
    if (!fs.existsSync(MC)) throw new Error(`${MC} is missing: run \`bash scripts/local-s3.sh install\``);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 's3gw-local-s3-'));
    const url = new URL(s3.endpoint);
    const alias = (c: S3Credentials): string => `${url.protocol}//${c.accessKeyId}:${c.secretAccessKey}@${url.host}`;
    // MC_HOST_<alias> gives mc each user's keys without an `mc alias set` per user; mc splits that URL
    // with a regex, so the '/' and '+' of AWS-shaped secrets need no escaping.
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      MC_CONFIG_DIR: path.join(dir, 'mc'),
      MC_HOST_admin: alias(s3.admin),
      MC_HOST_least: alias(s3.least),
      MC_HOST_onebucket: alias(s3.oneBucket),
      MC_HOST_norights: alias(s3.noRights),
    };
    return { s3, dir, env };
  })();
  return ready;
}

async function mc(...args: string[]): Promise<McResult> {
  const { env } = await setup();
  return new Promise((resolve, reject) => {
    execFile(MC, ['--json', '--no-color', '--quiet', ...args], { env, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      const lines = stdout
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code: err ? (err.code as number) : 0, lines, stderr });
    });
  });
}

/** Succeeds or throws with mc's own words. */
async function mcOk(...args: string[]): Promise<McResult> {
  const r = await mc(...args);
  if (r.code !== 0) throw new Error(`mc ${args.join(' ')} failed (${r.code}): ${JSON.stringify(r.lines)} ${r.stderr}`);
  return r;
}

/**
 * The S3 error code of a failed mc command. mc --json nests it under error.cause.error.Code, except
 * that it turns AccessDenied on cp, cat and stat into its own "Insufficient permissions to access this
 * path" without the code (mc cmd/client-s3.go does so for AccessDenied and nothing else).
 */
function s3ErrorCode(r: McResult): string | undefined {
  for (const line of r.lines) {
    if (line.status !== 'error') continue;
    const cause = (line.error as { cause?: { message?: string; error?: { Code?: string } } } | undefined)?.cause;
    if (cause?.error?.Code) return cause.error.Code;
    if (cause?.message?.startsWith('Insufficient permissions to access this path')) return 'AccessDenied';
    return undefined;
  }
  return undefined;
}

async function assertDenied(what: string, ...args: string[]): Promise<void> {
  const r = await mc(...args);
  assert.is.not(r.code, 0, `${what} should have failed`);
  // AccessDenied, not InvalidAccessKeyId or SignatureDoesNotMatch: the keys are valid, the right is missing.
  assert.is(s3ErrorCode(r), 'AccessDenied', `${what}: ${JSON.stringify(r.lines)}`);
}

async function localFile(name: string, bytes: number | Buffer): Promise<string> {
  const { dir } = await setup();
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof bytes === 'number' ? randomBytes(bytes) : bytes);
  return file;
}

function metadataOf(stat: McResult): Record<string, string> {
  return (stat.lines[0]?.metadata ?? {}) as Record<string, string>;
}

const test = suite('local S3 (scripts/local-s3.sh)');

test.after(async () => {
  if (!ready) return;
  const { dir } = await ready.catch(() => ({ dir: '' }));
  if (!dir) return;
  await mc('rm', '--recursive', '--force', `admin/example-bucket/${PREFIX}/`);
  await mc('rm', '--recursive', '--force', `admin/other-bucket/${PREFIX}/`);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the least-privileged user puts, gets and lists in example-bucket', async () => {
  const body = Buffer.from(`least ${PREFIX}\n`);
  const file = await localFile('least.txt', body);
  const key = `example-bucket/${PREFIX}/least.txt`;
  await mcOk('cp', file, `least/${key}`);
  const back = path.join((await setup()).dir, 'least-back.txt');
  await mcOk('cp', `least/${key}`, back);
  assert.equal(fs.readFileSync(back), body);
  const ls = await mcOk('ls', `least/example-bucket/${PREFIX}/`);
  assert.equal(
    ls.lines.map((l) => l.key),
    ['least.txt'],
  );
  const buckets = (await mcOk('ls', 'least')).lines.map((l) => l.key);
  assert.ok(buckets.includes('example-bucket/') && buckets.includes('other-bucket/'), JSON.stringify(buckets));
});

test('the one-bucket user writes example-bucket and is denied on other-bucket', async () => {
  const file = await localFile('one.txt', 100);
  await mcOk('cp', file, `onebucket/example-bucket/${PREFIX}/one.txt`);
  assert.is((await mcOk('stat', `onebucket/example-bucket/${PREFIX}/one.txt`)).lines[0]?.size, 100);
  await assertDenied('PutObject in other-bucket', 'cp', file, `onebucket/other-bucket/${PREFIX}/one.txt`);
  await assertDenied('ListObjects in other-bucket', 'ls', `onebucket/other-bucket/`);
  await mcOk('cp', file, `admin/other-bucket/${PREFIX}/by-admin.txt`);
  await assertDenied('GetObject in other-bucket', 'cat', `onebucket/other-bucket/${PREFIX}/by-admin.txt`);
});

test('the no-rights user has valid keys but is denied ListBuckets and GetObject', async () => {
  const file = await localFile('admin.txt', 10);
  await mcOk('cp', file, `admin/example-bucket/${PREFIX}/admin.txt`);
  await assertDenied('ListBuckets', 'ls', 'norights');
  await assertDenied('GetObject', 'cat', `norights/example-bucket/${PREFIX}/admin.txt`);
});

test('an object put with SSE-S3 reports AES256 in mc stat', async () => {
  const file = await localFile('sse.bin', 1000);
  const key = `least/example-bucket/${PREFIX}/sse.bin`;
  await mcOk('cp', '--enc-s3', `least/example-bucket/${PREFIX}`, file, key);
  const meta = metadataOf(await mcOk('stat', key));
  assert.is(meta['X-Amz-Server-Side-Encryption'], 'AES256', JSON.stringify(meta));
});

test('a multipart upload with SSE-S3 completes encrypted', async () => {
  // mc uploads in 16 MiB parts, so 16 MiB + 1 byte is two parts.
  const file = await localFile('sse-multipart.bin', 16 * 1024 * 1024 + 1);
  const key = `least/example-bucket/${PREFIX}/sse-multipart.bin`;
  await mcOk('cp', '--enc-s3', `least/example-bucket/${PREFIX}`, file, key);
  const stat = await mcOk('stat', key);
  assert.match(String(stat.lines[0]?.etag), /-2$/, 'a multipart ETag ends in -<parts>');
  assert.is(metadataOf(stat)['X-Amz-Server-Side-Encryption'], 'AES256');
});

test.run();
