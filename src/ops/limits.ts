import { randomInt } from 'node:crypto';
import net from 'node:net';

/**
 * Admission: which connections an instance takes, decided at accept before any SSH work.
 *
 * - `maxConnections` in total and `maxPerAddress` from one client address;
 * - sshd's MaxStartups for connections not yet logged in: below `start` all are taken; from
 *   `start` a new one is refused with probability `rate` %, rising linearly to 100 % at `full`
 *   (sshd.c drop_connection);
 * - a lockout: `lockoutFailures` failed logins from one address within `lockoutWindowMs` refuse
 *   that address for `lockoutDurationMs` (cf. OpenSSH 9.8's PerSourcePenalties).
 *
 * `AdmissionState` is the state, in one process: the only process under --workers 1, the
 * primary under --workers N (src/ops/cluster.ts), so the counts and lockouts cover the whole
 * instance. The gateway talks to it through `Admission`, whose arguments and results are plain
 * JSON values and which may answer with a Promise (a worker forwarding over IPC).
 *
 * Memory is bounded whatever the peers do: per-address entries exist only for addresses with
 * open connections (at most maxConnections) or with recent failures, and the failure table is
 * capped at `maxTracked` entries, the least recently failed evicted first.
 */
export interface AdmissionLimits {
  maxConnections: number;
  maxPerAddress: number;
  maxStartups: { start: number; rate: number; full: number };
  lockoutFailures: number;
  lockoutWindowMs: number;
  lockoutDurationMs: number;
  /** Addresses with failures remembered at once (default 100,000: a few MB). */
  maxTracked?: number;
}

export type Admitted = { id: number };
export type Refused = { refused: string };

export interface Admission {
  /** A connection from `address` was accepted by the kernel: take it (an id) or refuse it. */
  open(address: string): Admitted | Refused | Promise<Admitted | Refused>;
  /** Connection `id` logged in: it no longer counts against MaxStartups. */
  authenticated(id: number): void;
  /** A failed login attempt from `address` (counted toward its lockout). */
  authFailed(address: string): void;
  /** Connection `id` is gone. */
  closed(id: number): void;
}

interface Open {
  address: string;
  authenticated: boolean;
}

interface Failures {
  count: number;
  windowStart: number;
  lockedUntil: number;
}

export const REFUSAL = {
  TOTAL: 'too many connections',
  PER_ADDRESS: 'too many connections from this address',
  STARTUPS: 'too many unauthenticated connections',
  LOCKED: 'locked out after repeated login failures; try again later',
} as const;

/**
 * A refusal's reason as a metric label: one of REFUSAL's texts, or `proxy protocol` for the
 * PROXY header's (whose messages name addresses, which must not become label values).
 */
export function refusalCategory(reason: string): string {
  for (const r of Object.values(REFUSAL)) if (reason === r) return r;
  return /PROXY/.test(reason) ? 'proxy protocol' : 'other';
}

export class AdmissionState implements Admission {
  readonly #l: Required<AdmissionLimits>;
  readonly #now: () => number;
  /** A whole number in [0, 100), as sshd's arc4random_uniform(100). */
  readonly #percent: () => number;
  readonly #open = new Map<number, Open>();
  readonly #perAddress = new Map<string, number>();
  /** Insertion order = least recently failed first (entries are re-inserted on each failure). */
  readonly #failures = new Map<string, Failures>();
  #unauthenticated = 0;
  #nextId = 1;

  constructor(limits: AdmissionLimits, opts: { now?: () => number; percent?: () => number } = {}) {
    this.#l = { maxTracked: 100_000, ...limits };
    this.#now = opts.now ?? Date.now;
    this.#percent = opts.percent ?? (() => randomInt(100));
  }

  get connections(): number {
    return this.#open.size;
  }
  get unauthenticated(): number {
    return this.#unauthenticated;
  }
  get trackedAddresses(): number {
    return this.#failures.size;
  }

  open(address: string): Admitted | Refused {
    const addr = normalizeAddress(address);
    const f = this.#failures.get(addr);
    if (f && f.lockedUntil > this.#now()) return { refused: REFUSAL.LOCKED };
    if (this.#open.size >= this.#l.maxConnections) return { refused: REFUSAL.TOTAL };
    if ((this.#perAddress.get(addr) ?? 0) >= this.#l.maxPerAddress) return { refused: REFUSAL.PER_ADDRESS };
    if (this.#dropStartup()) return { refused: REFUSAL.STARTUPS };
    const id = this.#nextId++;
    this.#open.set(id, { address: addr, authenticated: false });
    this.#perAddress.set(addr, (this.#perAddress.get(addr) ?? 0) + 1);
    this.#unauthenticated++;
    return { id };
  }

  authenticated(id: number): void {
    const c = this.#open.get(id);
    if (!c || c.authenticated) return;
    c.authenticated = true;
    this.#unauthenticated--;
  }

  authFailed(address: string): void {
    const l = this.#l;
    if (l.lockoutFailures === 0) return;
    const addr = normalizeAddress(address);
    const now = this.#now();
    let f = this.#failures.get(addr);
    if (f) this.#failures.delete(addr);
    if (!f || now - f.windowStart > l.lockoutWindowMs) f = { count: 0, windowStart: now, lockedUntil: f?.lockedUntil ?? 0 };
    f.count++;
    if (f.count >= l.lockoutFailures) {
      f.lockedUntil = now + l.lockoutDurationMs;
      f.count = 0;
      f.windowStart = now;
    }
    this.#failures.set(addr, f);
    this.#evict(now);
  }

  closed(id: number): void {
    const c = this.#open.get(id);
    if (!c) return;
    this.#open.delete(id);
    if (!c.authenticated) this.#unauthenticated--;
    const n = (this.#perAddress.get(c.address) ?? 1) - 1;
    if (n <= 0) this.#perAddress.delete(c.address);
    else this.#perAddress.set(c.address, n);
  }

  /** Whether `address` is locked out now (for tests and metrics). */
  lockedOut(address: string): boolean {
    const f = this.#failures.get(normalizeAddress(address));
    return f !== undefined && f.lockedUntil > this.#now();
  }

  #dropStartup(): boolean {
    const { start, rate, full } = this.#l.maxStartups;
    const n = this.#unauthenticated;
    if (n < start) return false;
    if (n >= full) return true;
    const p = rate + ((100 - rate) * (n - start)) / (full - start);
    return this.#percent() < p;
  }

  /** Forgets expired entries from the old end, and the oldest past maxTracked. */
  #evict(now: number): void {
    const l = this.#l;
    for (const [addr, f] of this.#failures) {
      const expired = f.lockedUntil <= now && now - f.windowStart > l.lockoutWindowMs;
      if (!expired && this.#failures.size <= l.maxTracked) break;
      this.#failures.delete(addr);
    }
  }
}

/** IPv4-mapped IPv6 (`::ffff:192.0.2.1`, how a dual-stack socket reports IPv4) as plain IPv4. */
export function normalizeAddress(address: string): string {
  if (address.startsWith('::ffff:')) {
    const v4 = address.slice(7);
    if (net.isIPv4(v4)) return v4;
  }
  return address.toLowerCase();
}

/** Admission from the instance's settings. */
export function admissionFromConfig(c: {
  maxConnections: number;
  maxConnectionsPerAddress: number;
  maxStartups: { start: number; rate: number; full: number };
  lockoutFailures: number;
  lockoutWindowMs: number;
  lockoutDurationMs: number;
}): AdmissionState {
  return new AdmissionState({
    maxConnections: c.maxConnections,
    maxPerAddress: c.maxConnectionsPerAddress,
    maxStartups: c.maxStartups,
    lockoutFailures: c.lockoutFailures,
    lockoutWindowMs: c.lockoutWindowMs,
    lockoutDurationMs: c.lockoutDurationMs,
  });
}
