import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { escapePeer, type Logger } from '../log.js';
import type { AuthContext, AuthResult, Authenticator } from './authenticator.js';
import { IamCheckCache, IamPrincipal, type IamIdentity } from './iam-principal.js';

export { IamPrincipal, IamCheckCache, type IamIdentity } from './iam-principal.js';

/**
 * The IAM authenticator (issue 3, Login). The SSH user name is the access key ID and the
 * password (or keyboard-interactive answer) is the secret access key. The pair is accepted only
 * after a request signed with it has been authenticated by the service:
 *
 *   sts  STS GetCallerIdentity. Always allowed to any valid key, and tells us the ARN.
 *   s3   S3 ListBuckets. A service-level call, so the answer never depends on a bucket: 200
 *        or AccessDenied proves the signature was checked and accepted; InvalidAccessKeyId or
 *        SignatureDoesNotMatch rejects. (HeadBucket cannot tell these apart: HEAD errors have
 *        no body. A GET on a random bucket is worse: AWS may answer NoSuchBucket before it
 *        looks at the signature, which would accept any key.)
 *
 * Anything else — network errors, timeouts, 5xx, clock skew, unknown error codes — throws an
 * IamServiceError, never a false accept; userauth turns it into a disconnect.
 */

export type IamMode = 'auto' | 'sts' | 's3';

export interface IamAuthenticatorOptions {
  /** Custom S3 endpoint (MinIO, Ceph …). Unset means AWS. */
  endpoint?: string;
  /**
   * STS endpoint; setting it makes `auto` use STS even with a custom S3 endpoint. When `sts` is
   * forced without it, the S3 endpoint is asked (MinIO, Ceph and moto serve STS on the same port).
   */
  stsEndpoint?: string;
  region: string;
  forcePathStyle: boolean;
  mode: IamMode;
  log: Logger;
  /** Deadline for one check, network included (default 10 s). */
  timeoutMs?: number;
  /** How long a successful check is remembered (default 60 s; 0 disables the cache). */
  cacheTtlMs?: number;
}

/** The check could not be made: the caller must not accept and should not count a failure. */
export class IamServiceError extends Error {
  readonly code = 'ERR_IAM_UNAVAILABLE';
  constructor(message: string) {
    super(message);
    this.name = 'IamServiceError';
  }
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_CACHE_TTL_MS = 60_000;

/** `auto` uses STS on AWS (no custom S3 endpoint) or wherever an STS endpoint is given. */
export function resolveIamMode(opts: Pick<IamAuthenticatorOptions, 'mode' | 'endpoint' | 'stsEndpoint'>): 'sts' | 's3' {
  if (opts.mode === 'sts' || opts.mode === 's3') return opts.mode;
  return !opts.endpoint || opts.stsEndpoint ? 'sts' : 's3';
}

/*
 * Shape checks, done before any network call so junk costs nothing and never reaches the
 * service. They accept AWS keys (IDs of 16–128 [A-Z0-9], 40-character secrets) and MinIO's
 * (IDs of 3+ characters, secrets of 8+, where '=' and ',' are reserved), and refuse control
 * characters, whitespace and non-ASCII, plus the characters that would break the SigV4
 * Authorization header ('/' separates the credential scope; ',' and '=' its fields; '"' and
 * '\' are never legitimate there).
 */
const ACCESS_KEY_RE = /^[!-~]{3,128}$/;
const ACCESS_KEY_FORBIDDEN = /[",/=\\]/;
const SECRET_RE = /^[!-~]{8,128}$/;

export type ShapeProblem = 'malformed access key' | 'malformed secret';

export function checkKeyShape(accessKeyId: string, secret: string): ShapeProblem | null {
  if (!ACCESS_KEY_RE.test(accessKeyId) || ACCESS_KEY_FORBIDDEN.test(accessKeyId)) return 'malformed access key';
  if (!SECRET_RE.test(secret)) return 'malformed secret';
  return null;
}

/** How a service answer reads for the keys that signed it. */
export type Verdict =
  | { kind: 'reject'; code: string }
  | { kind: 'proof'; code: string }
  | { kind: 'unavailable'; detail: string };

/** The service authenticated the request and refused the credentials themselves. */
const REJECT_CODES = new Set([
  'InvalidAccessKeyId', // S3: no such key (or deactivated)
  'InvalidClientTokenId', // STS/IAM query APIs: no such key
  'SignatureDoesNotMatch', // wrong secret
  'UnrecognizedClientException', // JSON-protocol services: no such key
  'AuthFailure', // EC2-style APIs: either of the above
  'AllAccessDisabled', // S3: account suspended
  'AccountProblem',
  'NotSignedUp',
]);

/** Only given after the signature was verified: the keys are valid, just not allowed this call. */
const PROOF_CODES = new Set(['AccessDenied']);

interface SdkErrorLike {
  name?: unknown;
  code?: unknown;
  Code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

/** Classifies an error thrown by an AWS SDK v3 call. Exported for unit tests. */
export function classifySdkError(err: unknown): Verdict {
  const e = (typeof err === 'object' && err !== null ? err : {}) as SdkErrorLike;
  const status = e.$metadata?.httpStatusCode;
  if (typeof status !== 'number') {
    // No HTTP answer at all: connection refused, DNS, TLS, abort/timeout.
    const what = [e.name, e.code].filter((x) => typeof x === 'string' && x !== 'Error').join(' ');
    const msg = typeof e.message === 'string' ? e.message : String(err);
    return { kind: 'unavailable', detail: escapePeer(`${what || 'network error'}: ${msg}`, 200) };
  }
  let code = typeof e.name === 'string' ? e.name : '';
  if ((!code || code === 'Error' || code.startsWith('Unknown')) && typeof e.Code === 'string') code = e.Code;
  if (REJECT_CODES.has(code)) return { kind: 'reject', code };
  if (PROOF_CODES.has(code)) return { kind: 'proof', code };
  return { kind: 'unavailable', detail: escapePeer(`HTTP ${status} ${code || 'without an error code'}`, 200) };
}

type Outcome = { ok: true; identity: IamIdentity } | { ok: false; reason: string };

function origin(endpoint: string | undefined, fallback: string): string {
  if (!endpoint) return fallback;
  try {
    return new URL(endpoint).origin; // never userinfo, path or query
  } catch {
    return 'an invalid endpoint URL';
  }
}

/**
 * Creates the authenticator. Clients are made per check (each signs with other keys) but share
 * keep-alive agents, so reconnects reuse connections to STS/S3.
 */
export function createIamAuthenticator(opts: IamAuthenticatorOptions): Authenticator<IamPrincipal> {
  const mode = resolveIamMode(opts);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const cache = new IamCheckCache(opts.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS);
  const log = opts.log;
  const stsEndpoint = opts.stsEndpoint ?? opts.endpoint;
  const target =
    mode === 'sts'
      ? `STS GetCallerIdentity at ${origin(stsEndpoint, `sts.${opts.region}.amazonaws.com`)}`
      : `S3 ListBuckets at ${origin(opts.endpoint, `s3.${opts.region}.amazonaws.com`)}`;
  const requestHandler = {
    httpAgent: new HttpAgent({ keepAlive: true, maxSockets: 64 }),
    httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 64 }),
    connectionTimeout: timeoutMs,
  };
  log.info('iam authenticator', { mode, check: target });

  async function callService(accessKeyId: string, secretAccessKey: string, signal: AbortSignal): Promise<Outcome> {
    const credentials = { accessKeyId, secretAccessKey };
    // maxAttempts 2: one retry for throttling and 5xx within the same deadline. Credential
    // errors are 4xx and are never retried by the SDK.
    if (mode === 'sts') {
      const client = new STSClient({ region: opts.region, endpoint: stsEndpoint, credentials, maxAttempts: 2, requestHandler });
      const r = await client.send(new GetCallerIdentityCommand({}), { abortSignal: signal });
      const identity: { arn?: string; account?: string; userId?: string } = {};
      if (r.Arn) identity.arn = r.Arn;
      if (r.Account) identity.account = r.Account;
      if (r.UserId) identity.userId = r.UserId;
      return { ok: true, identity };
    }
    const client = new S3Client({
      region: opts.region,
      endpoint: opts.endpoint,
      forcePathStyle: opts.forcePathStyle,
      credentials,
      maxAttempts: 2,
      requestHandler,
    });
    await client.send(new ListBucketsCommand({}), { abortSignal: signal });
    return { ok: true, identity: {} };
  }

  async function verify(accessKeyId: string, secret: string): Promise<Outcome> {
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    // Our own deadline as well as the SDK's abort: a check must end even if the SDK hangs.
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        ac.abort();
        reject(new IamServiceError(`${target}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([callService(accessKeyId, secret, ac.signal), deadline]);
    } catch (err) {
      if (err instanceof IamServiceError) throw err;
      const v = classifySdkError(err);
      if (v.kind === 'reject') return { ok: false, reason: v.code };
      if (v.kind === 'proof') return { ok: true, identity: {} };
      // The message names the service and the outcome; the SDK error (which may carry request
      // details) is not passed on.
      throw new IamServiceError(`${target} failed: ${v.detail}`);
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    methods: ['password', 'keyboard-interactive'],
    async checkPassword(ctx: AuthContext, password: string): Promise<AuthResult<IamPrincipal>> {
      const accessKeyId = ctx.username;
      const shape = checkKeyShape(accessKeyId, password);
      if (shape) return { ok: false, reason: shape };
      // A known key with a wrong secret and an unknown key take the same path: one cache
      // lookup that misses, then one service call. Neither is answered locally.
      const cached = cache.get(accessKeyId, password);
      if (cached) {
        if (log.debugEnabled) log.debug('iam check cached', { accessKeyId: escapePeer(accessKeyId) });
        return { ok: true, principal: new IamPrincipal(accessKeyId, password, cached) };
      }
      const started = performance.now();
      const out = await verify(accessKeyId, password);
      if (log.debugEnabled) {
        log.debug('iam check', {
          accessKeyId: escapePeer(accessKeyId),
          via: mode,
          outcome: out.ok ? 'accepted' : out.reason,
          ms: Math.round(performance.now() - started),
        });
      }
      if (!out.ok) return out;
      cache.set(accessKeyId, password, out.identity);
      return { ok: true, principal: new IamPrincipal(accessKeyId, password, out.identity) };
    },
  };
}
