/**
 * One S3Client per region for one user, and the region of each bucket.
 *
 * Region discovery is reactive: a bucket is first tried in the configured region, and only a
 * wrong-region answer costs anything. S3 says which region is right in three ways, tried in
 * order: the x-amz-bucket-region header (AWS sends it on 301 PermanentRedirect, on HEAD errors
 * and on AuthorizationHeaderMalformed; MinIO on its region errors), the <Region> element of an
 * AuthorizationHeaderMalformed body, and, when neither is there, GetBucketLocation. The answer is
 * cached for the life of the backend, so each bucket pays at most one extra round trip. Buckets
 * that ListBuckets reports with a BucketRegion are cached from the listing.
 *
 * We do not use the SDK's followRegionRedirects: it does not cache, and it cannot replay a
 * streamed body. Here every attempt builds its command afresh, so a part body is re-streamed.
 */
import http from 'node:http';
import https from 'node:https';
import {
  GetBucketLocationCommand,
  HeadBucketCommand,
  S3Client,
  type $Command,
  type S3ClientConfig,
  type S3ClientResolvedConfig,
  type ServiceInputTypes,
  type ServiceOutputTypes,
} from '@aws-sdk/client-s3';
import { BackendError } from '../backend.js';
import type { Logger } from '../log.js';
import { escapePeer } from '../log.js';
import { s3Code, s3ErrorHeader, s3Status } from './errors.js';

export type ChecksumMode = 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';

export interface ClientOptions {
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
  /**
   * The SDK's flexible checksums. Since v3.729.0 the SDK defaults to WHEN_SUPPORTED: a CRC32 on
   * every PutObject/UploadPart, aws-chunked trailers on streamed bodies and checksum validation on
   * GetObject. S3-compatible stores differ in what they accept (R2 answered 501 to the header,
   * COS/OSS/OBS refuse aws-chunked), and ranged GETs cannot be validated anyway, so we default to
   * WHEN_REQUIRED: checksums only where an API demands one. Issue 5 adds our own end-to-end hash.
   */
  checksums: ChecksumMode;
  log: Logger;
  clientFactory?: (config: S3ClientConfig) => S3Client;
  /** Each S3 request's latency (retries included) and, when it failed, its error code (metrics). */
  onRequest?: RequestObserver | undefined;
}

export type RequestObserver = (operation: string, seconds: number, error?: string) => void;

/**
 * SDK middleware at the initialize step, which wraps serialisation, signing, retries and the
 * response: the time a caller waits. Error codes become a metric label, so anything that is not
 * a short plain name is counted as "Other".
 */
function timing(observe: RequestObserver) {
  return (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) =>
    async (args: unknown): Promise<unknown> => {
      const op = (context.commandName ?? 'Unknown').replace(/Command$/, '');
      const t0 = performance.now();
      try {
        const out = await next(args);
        observe(op, (performance.now() - t0) / 1000);
        return out;
      } catch (err) {
        const name = (err as Error)?.name;
        observe(op, (performance.now() - t0) / 1000, typeof name === 'string' && /^[A-Za-z0-9]{1,64}$/.test(name) ? name : 'Other');
        throw err;
      }
    };
}

/** Buckets whose region we remember; far more than one user touches in a session. */
const MAX_CACHED_BUCKETS = 1000;

/** Any S3 command, typed by its input and output. */
type S3Command<I extends ServiceInputTypes, O extends ServiceOutputTypes> = $Command<
  I,
  O,
  S3ClientResolvedConfig,
  ServiceInputTypes,
  ServiceOutputTypes
>;

/**
 * Everything here is made on first use: a session that never reaches S3 (most idle ones) holds
 * no client, no socket pool and no cache.
 */
export class ClientPool {
  private clients: Map<string, S3Client> | undefined;
  private bucketRegions: Map<string, string> | undefined;
  private inflightDiscovery: Map<string, Promise<string>> | undefined;
  private agents: { http: http.Agent; https: https.Agent } | undefined;
  private closed = false;

  private readonly opts: ClientOptions;

  constructor(opts: ClientOptions) {
    this.opts = opts;
  }

  /**
   * One socket pool per user, shared by that user's region clients (never by another user's).
   * keepAlive matters: a part or a ranged GET per request would otherwise pay a TCP (and TLS)
   * handshake each time.
   */
  private socketPools(): { http: http.Agent; https: https.Agent } {
    return (this.agents ??= {
      http: new http.Agent({ keepAlive: true, maxSockets: 64, scheduling: 'lifo' }),
      https: new https.Agent({ keepAlive: true, maxSockets: 64, scheduling: 'lifo' }),
    });
  }

  get defaultRegion(): string {
    return this.opts.region;
  }

  /** The client for a region, made on first use (an idle session holds none). */
  client(region: string = this.opts.region): S3Client {
    const clients = (this.clients ??= new Map());
    let c = clients.get(region);
    if (!c) {
      const o = this.opts;
      const agents = this.socketPools();
      const config: S3ClientConfig = {
        region,
        credentials: { ...o.credentials },
        forcePathStyle: o.forcePathStyle,
        requestChecksumCalculation: o.checksums,
        responseChecksumValidation: o.checksums,
        // No SDK buffering of stream bodies: it reads a fast source (a GET body) without
        // backpressure. Our bodies come in chunks of at least 16 KiB (upload.ts MIN_CHUNK), which
        // is what S3's aws-chunked minimum of 8 KiB needs.
        requestStreamBufferSize: false,
        requestHandler: {
          httpAgent: agents.http,
          httpsAgent: agents.https,
          connectionTimeout: 10_000,
          // Idle socket timeout. A paused download stream idles longer than this; the read handle
          // reopens at its position when that happens.
          requestTimeout: 120_000,
        },
        logger: sdkLogger(o.log),
        ...(o.endpoint ? { endpoint: o.endpoint } : {}),
      };
      c = o.clientFactory ? o.clientFactory(config) : new S3Client(config);
      if (o.onRequest) c.middlewareStack.add(timing(o.onRequest) as never, { step: 'initialize', name: 's3gwTiming' });
      clients.set(region, c);
      if (o.log.debugEnabled) o.log.debug('s3 client created', { region });
    }
    return c;
  }

  regionOf(bucket: string): string {
    return this.bucketRegions?.get(bucket) ?? this.opts.region;
  }

  /** Remembers a bucket's region (from ListBuckets or a discovery). */
  learnRegion(bucket: string, region: string): void {
    const regions = (this.bucketRegions ??= new Map());
    if (regions.size >= MAX_CACHED_BUCKETS && !regions.has(bucket)) {
      const oldest = regions.keys().next().value;
      if (oldest !== undefined) regions.delete(oldest);
    }
    regions.set(bucket, region);
  }

  /** Regions cached so far, for tests and debugging. */
  cachedRegion(bucket: string): string | undefined {
    return this.bucketRegions?.get(bucket);
  }

  /**
   * Sends a command about `bucket` to the client of the bucket's region. On a wrong-region answer
   * the region is discovered, cached and the command rebuilt and sent once more. An aborted
   * `abortSignal` cancels the request (the SDK rejects with an AbortError).
   */
  async send<I extends ServiceInputTypes, O extends ServiceOutputTypes>(
    bucket: string | undefined,
    make: () => S3Command<I, O>,
    abortSignal?: AbortSignal,
  ): Promise<O> {
    if (this.closed) throw new BackendError('EIO', 'the S3 session is closed');
    const region = bucket === undefined ? this.opts.region : this.regionOf(bucket);
    const options = abortSignal ? { abortSignal } : undefined;
    try {
      return await this.client(region).send(make(), options);
    } catch (err) {
      if (bucket === undefined || !isWrongRegion(err, region) || abortSignal?.aborted) throw err;
      const right = await this.discover(bucket, err);
      if (right === region) throw err;
      return await this.client(right).send(make(), options);
    }
  }

  private discover(bucket: string, err: unknown): Promise<string> {
    const hinted = s3ErrorHeader(err, 'x-amz-bucket-region') ?? regionFromBody(err);
    if (hinted) {
      this.learnRegion(bucket, hinted);
      this.opts.log.info('bucket region discovered', { bucket: escapePeer(bucket), region: escapePeer(hinted) });
      return Promise.resolve(hinted);
    }
    const inflight = (this.inflightDiscovery ??= new Map());
    let p = inflight.get(bucket);
    if (!p) {
      p = this.askRegion(bucket).finally(() => inflight.delete(bucket));
      inflight.set(bucket, p);
    }
    return p;
  }

  /** Asks the store: HeadBucket's x-amz-bucket-region, else GetBucketLocation. */
  private async askRegion(bucket: string): Promise<string> {
    const c = this.client(this.opts.region);
    let region: string | undefined;
    try {
      const out = await c.send(new HeadBucketCommand({ Bucket: bucket }));
      region = out.BucketRegion;
    } catch (e) {
      region = s3ErrorHeader(e, 'x-amz-bucket-region');
    }
    if (!region) {
      try {
        const out = await c.send(new GetBucketLocationCommand({ Bucket: bucket }));
        // "" (or absent) is us-east-1 and "EU" the legacy name of eu-west-1.
        const loc = out.LocationConstraint as string | undefined;
        region = !loc ? 'us-east-1' : loc === 'EU' ? 'eu-west-1' : loc;
      } catch {
        region = this.opts.region;
      }
    }
    this.learnRegion(bucket, region);
    this.opts.log.info('bucket region discovered', { bucket: escapePeer(bucket), region: escapePeer(region) });
    return region;
  }

  /** Closes every socket of this user. Later calls fail. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.clients?.values() ?? []) c.destroy();
    this.clients = undefined;
    this.agents?.http.destroy();
    this.agents?.https.destroy();
    this.agents = undefined;
  }
}

/** A wrong-region answer: a redirect, or S3's "the region is wrong" signature error. */
function isWrongRegion(err: unknown, usedRegion: string): boolean {
  const status = s3Status(err);
  const code = s3Code(err);
  if (status === 301 || status === 307 || code === 'PermanentRedirect' || code === 'TemporaryRedirect') return true;
  if (code === 'AuthorizationHeaderMalformed' || code === 'IllegalLocationConstraintException') return true;
  // HEAD errors have no body; a 400 that names another region is the same answer.
  const hinted = s3ErrorHeader(err, 'x-amz-bucket-region');
  return status === 400 && hinted !== undefined && hinted !== usedRegion;
}

function regionFromBody(err: unknown): string | undefined {
  const r = (err as { Region?: unknown } | null)?.Region;
  return typeof r === 'string' && r !== '' ? r : undefined;
}

/**
 * The SDK logs through this. Only warnings and errors that are plain strings pass (at debug
 * level, escaped); structured SDK records can hold request inputs, which we never log.
 */
function sdkLogger(log: Logger): NonNullable<S3ClientConfig['logger']> {
  const pass = (...args: unknown[]) => {
    if (!log.debugEnabled) return;
    const text = args.filter((a) => typeof a === 'string').join(' ');
    if (text) log.debug('aws-sdk', { text: escapePeer(text, 300) });
  };
  return { trace() {}, debug() {}, info() {}, warn: pass, error: pass };
}
