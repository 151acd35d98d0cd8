import type { PublicKey } from './public-key.js';

/** What an authenticator knows of the connection asking. */
export interface AuthContext {
  /** The user name as sent (already checked to be UTF-8 of bounded length). */
  readonly username: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly clientVersion: string;
}

/**
 * The outcome of one check. `reason` is for the log only: the client always sees the
 * ordinary RFC 4252 failure, whatever went wrong, so it learns nothing about which part of
 * its credentials was wrong or whether the user exists.
 */
export type AuthResult<P = unknown> = { ok: true; principal: P } | { ok: false; reason: string };

export type AuthMethod = 'publickey' | 'password' | 'keyboard-interactive';

/**
 * The pluggable credential check (later: the IAM authenticator). Only the methods listed
 * in `methods` are offered; each listed method must have its function.
 */
export interface Authenticator<P = unknown> {
  readonly methods: readonly AuthMethod[];
  /** password and keyboard-interactive. The password never reaches a log. */
  checkPassword?(ctx: AuthContext, password: string): Promise<AuthResult<P>>;
  /** A publickey query without signature (RFC 4252 §7): would this key be accepted? */
  publicKeyAcceptable?(ctx: AuthContext, key: PublicKey): Promise<boolean>;
  /** Called only after the signature was verified with this very key (cf. Go CVE-2024-45337). */
  checkPublicKey?(ctx: AuthContext, key: PublicKey): Promise<AuthResult<P>>;
}
