/**
 * What the S3 backend suites share: the real S3 of spec/helpers/s3-env.ts, an admin client to set
 * up and inspect objects behind the backend's back, backends for each test user, one key prefix per
 * run (removed afterwards), and streaming sha256 helpers so large files never sit in test memory.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  AbortMultipartUploadCommand,
} from '@aws-sdk/client-s3';
import type { Backend, DirEntry, WriteHandle } from '../../src/backend.js';
import { silentLogger } from '../../src/log.js';
import { createS3Backend, type S3Backend, type S3BackendOptions } from '../../src/s3/backend.js';
import { requireS3, type S3Credentials, type S3TestEnv } from '../helpers/s3-env.js';

export const BUCKET = 'example-bucket';
export const OTHER_BUCKET = 'other-bucket';
export const MiB = 1024 * 1024;

let envPromise: Promise<S3TestEnv> | undefined;

export function s3env(): Promise<S3TestEnv> {
  envPromise ??= requireS3();
  return envPromise;
}

let adminClient: S3Client | undefined;

/** An SDK client with the admin's keys, for setup and inspection only. */
export async function admin(): Promise<S3Client> {
  const env = await s3env();
  adminClient ??= new S3Client({
    region: env.region,
    endpoint: env.endpoint,
    forcePathStyle: true,
    credentials: env.admin,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return adminClient;
}

const opened: S3Backend[] = [];

/** A backend for `user` (default: the least-privileged user, as a gateway user would be). */
export async function backend(
  user: keyof Pick<S3TestEnv, 'admin' | 'least' | 'oneBucket' | 'noRights'> | S3Credentials = 'least',
  extra: Partial<S3BackendOptions> = {},
): Promise<S3Backend> {
  const env = await s3env();
  const credentials = typeof user === 'string' ? env[user] : user;
  const b = createS3Backend({
    credentials,
    endpoint: env.endpoint,
    region: env.region,
    forcePathStyle: true,
    sse: { mode: 'AES256' },
    log: silentLogger,
    ...extra,
  });
  opened.push(b);
  return b;
}

/**
 * A clientFactory that counts the commands each client sends, by name ("GetObjectCommand") and by
 * region and name ("eu-west-3:GetObjectCommand"), and the regions clients were made for. The clients are real; only counting is added.
 */
export function countingFactory(): {
  factory: NonNullable<S3BackendOptions['clientFactory']>;
  counts: Map<string, number>;
  regions: string[];
} {
  const counts = new Map<string, number>();
  const regions: string[] = [];
  const factory: NonNullable<S3BackendOptions['clientFactory']> = (config) => {
    const c = new S3Client(config);
    const region = String(config.region);
    regions.push(region);
    c.middlewareStack.add(
      (next, context) => (args) => {
        for (const name of [String(context.commandName), `${region}:${String(context.commandName)}`]) {
          counts.set(name, (counts.get(name) ?? 0) + 1);
        }
        return next(args);
      },
      { step: 'initialize', name: 's3gwCountCommands' },
    );
    return c;
  };
  return { factory, counts, regions };
}

/** A unique directory for one suite in this run: "spec-s3/<suite>-<pid>-<random>". */
export function runPrefix(suiteName: string): string {
  return `spec-s3/${suiteName}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** Deletes every object under `prefix` in `bucket` (admin), and aborts uploads left there. */
export async function removePrefix(bucket: string, prefix: string): Promise<void> {
  const c = await admin();
  let token: string | undefined;
  do {
    const out = await c.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }),
    );
    // DeleteObjects takes an XML body, which cannot carry control characters: those one by one.
    // eslint-disable-next-line no-control-regex
    const odd = (k: string) => /[\u0000-\u001f]/.test(k);
    const keys = (out.Contents ?? []).map((o) => ({ Key: o.Key! }));
    const plain = keys.filter((k) => !odd(k.Key));
    if (plain.length) await c.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: plain, Quiet: true } }));
    for (const k of keys.filter((k) => odd(k.Key))) {
      await c.send(new DeleteObjectCommand({ Bucket: bucket, Key: k.Key }));
    }
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
  for (const u of await pendingUploads(bucket, prefix)) {
    await c.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.key, UploadId: u.uploadId }));
  }
}

/** The keys under a prefix (admin), in S3's order. */
export async function keysUnder(bucket: string, prefix: string): Promise<string[]> {
  const c = await admin();
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const out = await c.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }),
    );
    for (const o of out.Contents ?? []) keys.push(o.Key!);
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/** Multipart uploads in progress under a prefix. */
export async function pendingUploads(bucket: string, prefix: string): Promise<Array<{ key: string; uploadId: string }>> {
  const c = await admin();
  const out = await c.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  return (out.Uploads ?? []).map((u) => ({ key: u.Key!, uploadId: u.UploadId! }));
}

export async function headAsAdmin(bucket: string, key: string) {
  return (await admin()).send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
}

/** Closes every backend made by `backend()`. */
export async function closeBackends(): Promise<void> {
  await Promise.all(opened.splice(0).map((b) => b.close()));
}

/** Deterministic pseudo-random bytes (xorshift), generated chunk by chunk. */
export function* pattern(size: number, seed = 1, chunk = 256 * 1024): Generator<Buffer> {
  let x = seed >>> 0 || 1;
  let left = size;
  while (left > 0) {
    const n = Math.min(chunk, left);
    const b = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      b.writeUInt32LE(x >>> 0, i);
    }
    for (; i < n; i++) b[i] = i & 0xff;
    left -= n;
    yield b;
  }
}

/** Writes `size` pattern bytes in `writeSize` pieces (as an SFTP client would); returns the sha256. */
export async function writePattern(h: WriteHandle, size: number, seed = 1, writeSize = 32 * 1024): Promise<string> {
  const hash = createHash('sha256');
  for (const chunk of pattern(size, seed)) {
    hash.update(chunk);
    for (let at = 0; at < chunk.length; at += writeSize) {
      await h.write(h.size, chunk.subarray(at, Math.min(chunk.length, at + writeSize)));
    }
  }
  return hash.digest('hex');
}

export function sha256Of(size: number, seed = 1): string {
  const hash = createHash('sha256');
  for (const chunk of pattern(size, seed)) hash.update(chunk);
  return hash.digest('hex');
}

/** Reads a whole file through the backend in `readSize` requests; returns sha256 and byte count. */
export async function readAll(b: Backend, path: string, readSize = 32 * 1024): Promise<{ sha256: string; size: number }> {
  const h = await b.openRead(path);
  const hash = createHash('sha256');
  let off = 0;
  try {
    for (;;) {
      const data = await h.read(off, readSize);
      if (data.length === 0) break;
      hash.update(data);
      off += data.length;
    }
  } finally {
    await h.close();
  }
  return { sha256: hash.digest('hex'), size: off };
}

/** Collects a whole listing (use only for small directories). */
export async function listAll(b: Backend, path: string): Promise<DirEntry[]> {
  const out: DirEntry[] = [];
  for await (const page of b.list(path)) out.push(...page);
  return out;
}

export function names(entries: DirEntry[]): string[] {
  return entries.map((e) => e.name).sort();
}

/** Puts a small object as admin, optionally with metadata. */
export async function putAsAdmin(bucket: string, key: string, body: string | Buffer = '', metadata?: Record<string, string>) {
  return (await admin()).send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: body,
      ContentLength: Buffer.byteLength(body),
      ...(metadata ? { Metadata: metadata } : {}),
    }),
  );
}

/** Expects a promise to reject with a BackendError of `code`; returns its message. */
export async function rejectsWith(p: Promise<unknown>, code: string): Promise<string> {
  try {
    await p;
  } catch (err) {
    const e = err as { name?: string; code?: string; message?: string };
    if (e.name !== 'BackendError' || e.code !== code) {
      throw new Error(`expected BackendError ${code}, got ${e.name} ${e.code}: ${e.message}`);
    }
    return e.message ?? '';
  }
  throw new Error(`expected BackendError ${code}, but it succeeded`);
}
