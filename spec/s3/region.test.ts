/**
 * Buckets in another region, and virtual-hosted addressing, against a MinIO of their own.
 *
 * The shared local MinIO has no region configured, and MinIO then accepts a signature for any
 * region, so nothing there ever answers "wrong region". This suite starts a second MinIO (the
 * binary scripts/local-s3.sh builds) with MINIO_REGION=eu-west-3, which answers requests signed for
 * another region the way S3 does (400 with x-amz-bucket-region, or AuthorizationHeaderMalformed
 * naming the region), and with MINIO_DOMAIN=localhost so "bucket.localhost" is virtual-hosted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { S_IFDIR, S_IFMT } from '../../src/backend.js';
import { silentLogger } from '../../src/log.js';
import { createS3Backend, type S3BackendOptions } from '../../src/s3/backend.js';
import { freePort } from '../helpers/test-server.js';
import { countingFactory, listAll, names, readAll, sha256Of, writePattern } from './fixture.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const MINIO = path.join(ROOT, '.tools', 'bin', 'minio');
const REGION = 'eu-west-3';
const BUCKET = 'region-bucket';
const creds = { accessKeyId: 'regionadmin', secretAccessKey: randomBytes(12).toString('hex') };

let proc: ChildProcess | undefined;
let dataDir = '';
let port = 0;

async function healthy(): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/minio/health/live`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

const test = suite('s3 backend: regions and addressing');

test.before(async () => {
  if (!fs.existsSync(MINIO)) {
    throw new Error(`${MINIO} is missing: run \`bash scripts/local-s3.sh install\``);
  }
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 's3gw-region-minio-'));
  port = await freePort();
  const consolePort = await freePort();
  let log = '';
  proc = spawn(
    MINIO,
    ['server', dataDir, '--quiet', '--address', `127.0.0.1:${port}`, '--console-address', `127.0.0.1:${consolePort}`],
    {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: dataDir,
        MINIO_ROOT_USER: creds.accessKeyId,
        MINIO_ROOT_PASSWORD: creds.secretAccessKey,
        MINIO_REGION: REGION,
        MINIO_DOMAIN: 'localhost',
        MINIO_BROWSER: 'off',
        MINIO_UPDATE: 'off',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  proc.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  for (let i = 0; i < 300 && !(await healthy()); i++) {
    if (proc.exitCode !== null) throw new Error(`region MinIO exited: ${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!(await healthy())) throw new Error(`region MinIO did not start on ${port}: ${log}`);
  const c = new S3Client({
    region: REGION,
    endpoint: `http://127.0.0.1:${port}`,
    forcePathStyle: true,
    credentials: creds,
  });
  await c.send(new CreateBucketCommand({ Bucket: BUCKET }));
  c.destroy();
});

test.after(async () => {
  if (proc && proc.exitCode === null) {
    const exited = new Promise((r) => proc!.once('exit', r));
    proc.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (proc.exitCode === null) proc.kill('SIGKILL');
  }
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

function make(extra: Partial<S3BackendOptions> = {}) {
  return createS3Backend({
    credentials: creds,
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1', // the wrong one, on purpose
    forcePathStyle: true,
    sse: { mode: 'none' },
    log: silentLogger,
    ...extra,
  });
}

test('a bucket in another region is discovered once (HEAD error header) and cached', async () => {
  const { factory, counts, regions } = countingFactory();
  const b = make({ clientFactory: factory });
  assert.is((await b.stat(`/${BUCKET}`)).mode & S_IFMT, S_IFDIR);
  assert.is(b.bucketRegion(BUCKET), REGION);
  assert.equal(regions, ['us-east-1', REGION]);
  const wrongBefore = counts.get('us-east-1:HeadObjectCommand') ?? 0;
  const h = await b.openWrite(`/${BUCKET}/dir/file`, { exclusive: true });
  const sum = await writePattern(h, 5 * 1024 * 1024 + 3, 2);
  await h.commit();
  assert.is((await readAll(b, `/${BUCKET}/dir/file`)).sha256, sum);
  assert.equal(names(await listAll(b, `/${BUCKET}`)), ['dir']);
  await b.rename(`/${BUCKET}/dir/file`, `/${BUCKET}/dir/moved`, false);
  await b.remove(`/${BUCKET}/dir/moved`);
  // Everything after the discovery went to the right region's client, and no third client appeared.
  assert.is(counts.get('us-east-1:HeadObjectCommand') ?? 0, wrongBefore);
  assert.equal(regions, ['us-east-1', REGION]);
  await b.close();
});

test('discovery from a listing (AuthorizationHeaderMalformed names the region)', async () => {
  const { factory, counts } = countingFactory();
  const b = make({ clientFactory: factory });
  assert.equal(await listAll(b, `/${BUCKET}`), []);
  assert.is(b.bucketRegion(BUCKET), REGION);
  assert.is(counts.get('us-east-1:ListObjectsV2Command'), 1);
  assert.is(counts.get(`${REGION}:ListObjectsV2Command`), 1);
  await b.close();
});

test('discovery from a HEAD of an object', async () => {
  const b = make();
  const h = await b.openWrite(`/${BUCKET}/x`, { exclusive: false });
  await h.write(0, Buffer.from('x'));
  await h.commit();
  await b.close();
  const fresh = make();
  assert.is((await fresh.stat(`/${BUCKET}/x`)).size, 1);
  assert.is(fresh.bucketRegion(BUCKET), REGION);
  await fresh.remove(`/${BUCKET}/x`);
  await fresh.close();
});

test('virtual-hosted addressing (forcePathStyle false) works', async () => {
  // bucket.localhost must reach 127.0.0.1: glibc does not resolve *.localhost, so the test's agent does.
  const agent = new http.Agent({
    keepAlive: true,
    lookup: ((_host: string, opts: { all?: boolean }, cb: (...a: unknown[]) => void) => {
      if (opts?.all) cb(null, [{ address: '127.0.0.1', family: 4 }]);
      else cb(null, '127.0.0.1', 4);
    }) as unknown as net.LookupFunction,
  } as http.AgentOptions);
  const hosts = new Set<string>();
  const b = createS3Backend({
    credentials: creds,
    endpoint: `http://localhost:${port}`,
    region: REGION,
    forcePathStyle: false,
    sse: { mode: 'none' },
    log: silentLogger,
    clientFactory: (config) => {
      const c = new S3Client({ ...config, requestHandler: { httpAgent: agent } });
      c.middlewareStack.add(
        (next) => (args) => {
          hosts.add(String((args.request as { hostname?: string }).hostname));
          return next(args);
        },
        { step: 'finalizeRequest', name: 's3gwRecordHost' },
      );
      return c;
    },
  });
  const h = await b.openWrite(`/${BUCKET}/vhost`, { exclusive: false });
  const sum = await writePattern(h, 100_000, 8);
  await h.commit();
  assert.is((await readAll(b, `/${BUCKET}/vhost`)).sha256, sum);
  assert.is(sum, sha256Of(100_000, 8));
  assert.ok(names(await listAll(b, `/${BUCKET}`)).includes('vhost'));
  await b.remove(`/${BUCKET}/vhost`);
  assert.ok(hosts.has(`${BUCKET}.localhost`), `virtual-hosted requests: ${[...hosts].join(', ')}`);
  await b.close();
  agent.destroy();
});

test.run();
