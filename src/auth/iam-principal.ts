import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';

/** What a successful IAM check learned about the caller (STS fills all three; S3 none). */
export interface IamIdentity {
  readonly arn?: string;
  readonly account?: string;
  readonly userId?: string;
}

/**
 * The logged-in user's keys. The session's S3 client signs with them, so the secret has to be
 * kept, but it must never reach a log line, an error or a debug dump. It therefore lives in a
 * private field behind a prototype getter: JSON.stringify, util.inspect (even with
 * showHidden), Object.keys and spreading see only the public identity.
 */
export class IamPrincipal implements IamIdentity {
  readonly accessKeyId: string;
  /** Long-term keys only: a password carries no session token. */
  readonly sessionToken: undefined = undefined;
  readonly arn?: string;
  readonly account?: string;
  readonly userId?: string;
  readonly #secretAccessKey: string;

  constructor(accessKeyId: string, secretAccessKey: string, identity: IamIdentity = {}) {
    this.accessKeyId = accessKeyId;
    this.#secretAccessKey = secretAccessKey;
    if (identity.arn !== undefined) this.arn = identity.arn;
    if (identity.account !== undefined) this.account = identity.account;
    if (identity.userId !== undefined) this.userId = identity.userId;
    Object.freeze(this);
  }

  get secretAccessKey(): string {
    return this.#secretAccessKey;
  }

  /**
   * A plain credentials object for an AWS SDK client (`credentials: p.credentials()`). The SDK
   * may copy or annotate the object it is given, which a getter would not survive.
   */
  credentials(): { accessKeyId: string; secretAccessKey: string } {
    return { accessKeyId: this.accessKeyId, secretAccessKey: this.#secretAccessKey };
  }

  toJSON(): Record<string, string> {
    const out: Record<string, string> = { accessKeyId: this.accessKeyId };
    if (this.arn !== undefined) out.arn = this.arn;
    if (this.account !== undefined) out.account = this.account;
    if (this.userId !== undefined) out.userId = this.userId;
    return out;
  }

  [inspect.custom](_depth: number, options: object): string {
    return `IamPrincipal ${inspect(this.toJSON(), options)}`;
  }
}

interface CacheEntry {
  digest: Buffer;
  expires: number;
  identity: IamIdentity;
}

/**
 * Remembers recent successful checks so a client that reconnects does not cost one STS or S3
 * call per connection. Only successes are stored: a failure is always checked again, so a
 * wrong secret can never be "remembered" into an accept, nor a rejection made cheap to probe.
 *
 * The entry is found by access key ID (not secret) and holds an HMAC of (ID, secret) under a
 * key made per process, so the secret itself is not kept here and a memory dump gives no
 * offline-checkable hash. The comparison is constant-time. A key deleted or deactivated in IAM
 * stays usable here for at most the TTL; that is the price of the cache.
 */
export class IamCheckCache {
  readonly #key = randomBytes(32);
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #entries = new Map<string, CacheEntry>();

  constructor(ttlMs: number, maxEntries = 10_000) {
    this.#ttlMs = ttlMs;
    this.#maxEntries = maxEntries;
  }

  #digest(accessKeyId: string, secret: string): Buffer {
    // Length-prefixed, so (ID, secret) pairs cannot collide by moving bytes across the border.
    const id = Buffer.from(accessKeyId, 'utf8');
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32BE(id.length);
    return createHmac('sha256', this.#key).update(len).update(id).update(secret, 'utf8').digest();
  }

  get(accessKeyId: string, secret: string, now = performance.now()): IamIdentity | undefined {
    if (this.#ttlMs <= 0) return undefined;
    const e = this.#entries.get(accessKeyId);
    if (!e) return undefined;
    if (e.expires <= now) {
      this.#entries.delete(accessKeyId);
      return undefined;
    }
    return timingSafeEqual(e.digest, this.#digest(accessKeyId, secret)) ? e.identity : undefined;
  }

  set(accessKeyId: string, secret: string, identity: IamIdentity, now = performance.now()): void {
    if (this.#ttlMs <= 0) return;
    this.#entries.delete(accessKeyId);
    // Bounded: drop the oldest insertion (Map keeps insertion order).
    while (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
    this.#entries.set(accessKeyId, { digest: this.#digest(accessKeyId, secret), expires: now + this.#ttlMs, identity });
  }

  get size(): number {
    return this.#entries.size;
  }
}
