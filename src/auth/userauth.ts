import { createHmac, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { SshReader } from '../wire/reader.js';
import { SshWriter, encodeString } from '../wire/writer.js';
import { MalformedError } from '../wire/errors.js';
import { DISCONNECT, MSG } from '../transport/constants.js';
import { DisconnectError } from '../transport/errors.js';
import type { Transport } from '../transport/transport.js';
import { escapePeer, type Logger } from '../log.js';
import type { AuthContext, AuthMethod, AuthResult, Authenticator } from './authenticator.js';
import { parsePublicKey, verifySignature } from './public-key.js';

export interface UserauthConfig<P> {
  authenticator: Authenticator<P>;
  /** Failed attempts before DISCONNECT (OpenSSH MaxAuthTries 6). */
  maxAttempts: number;
  /** Time from connect to successful login (OpenSSH LoginGraceTime). */
  loginGraceMs: number;
  /** Passwords longer than this fail without any work (cf. OpenSSH CVE-2016-6515). */
  maxPasswordBytes: number;
  /** Base of the failure delay; see `failureDelay`. */
  failDelayMs: number;
  /** Signature algorithms accepted for user keys (the server-sig-algs list). */
  publicKeyAlgorithms: readonly string[];
  log: Logger;
  /** Each counted failure, for the audit log and the lockout (the free `none` probe is not one). */
  onFailure?: ((failure: LoginFailure) => void) | undefined;
}

/** A failed login attempt as the audit log and the limits see it: never the secret. */
export interface LoginFailure extends RemoteInfo {
  /** The user name as sent, escaped (an access key ID, or whatever the client typed). */
  username: string;
  method: string;
  reason: string;
  clientVersion: string;
  /** The check itself failed (S3 or STS unreachable): not held against the client's address. */
  serviceError?: boolean;
  /**
   * A credential was tried and was wrong (a password, an answer, a signature): what the lockout
   * counts. A method the server does not offer, or a public key merely proposed, is an attempt
   * (it counts toward the connection's 6) but not a guess: clients with several keys in an agent
   * propose each one on every login.
   */
  credential: boolean;
}

export interface RemoteInfo {
  remoteAddress: string;
  remotePort: number;
}

const MAX_USERNAME_BYTES = 256;
const MAX_NAME_BYTES = 64;
const MAX_KEY_BLOB = 16 * 1024;
const MAX_SIGNATURE = 16 * 1024;

/** A secret per process for the per-user delay, so it cannot be predicted from outside. */
const delaySecret = randomBytes(32);

/** RFC 4252 §5.1: USERAUTH_REQUEST after success is ignored. Shared, so it holds no Userauth. */
function ignoreRequest(): void {}

/**
 * How long a failed attempt for `username` must take at least, OpenSSH style (auth2.c
 * ensure_minimum_time_since): a base plus a per-user amount derived from a secret, doubled
 * until it exceeds the time the check really took. A failure then costs the same whether or
 * not the user exists, and small differences in check time are hidden.
 */
export function failureDelay(username: string, baseMs: number, elapsedMs: number): number {
  const h = createHmac('sha256', delaySecret).update(username).digest();
  let delay = baseMs + (h.readUInt32BE(0) % 4200) / 1000;
  while (delay < elapsedMs) delay *= 2;
  return delay - elapsedMs;
}

/**
 * The server side of RFC 4252 (and RFC 4256 for keyboard-interactive). It owns messages
 * 5 (service request) and 50–79 until authentication succeeds, and refuses every
 * connection-layer message before that. Checks run one at a time: input is paused while the
 * authenticator works, so a client cannot pile up concurrent attempts.
 */
export class Userauth<P> {
  readonly #t: Transport;
  readonly #c: UserauthConfig<P>;
  readonly #remote: RemoteInfo;
  readonly #onSuccess: (principal: P, username: string, method: AuthMethod) => void;
  #serviceAccepted = false;
  #username: string | null = null;
  #failures = 0;
  #noneSeen = false;
  #awaitingInfo = false;
  #done = false;
  #grace: NodeJS.Timeout;
  readonly #onClose = () => clearTimeout(this.#grace);

  constructor(
    transport: Transport,
    config: UserauthConfig<P>,
    remote: RemoteInfo,
    onSuccess: (principal: P, username: string, method: AuthMethod) => void,
  ) {
    this.#t = transport;
    this.#c = config;
    this.#remote = remote;
    this.#onSuccess = onSuccess;
    this.#grace = setTimeout(() => {
      transport.disconnect(DISCONNECT.BY_APPLICATION, 'login grace time exceeded');
    }, config.loginGraceMs);
    this.#grace.unref();
    transport.on('close', this.#onClose);

    transport.setHandler(MSG.SERVICE_REQUEST, (p) => this.#onServiceRequest(p));
    transport.setHandler(MSG.USERAUTH_REQUEST, (p) => this.#onRequest(p));
    transport.setHandler(MSG.USERAUTH_INFO_RESPONSE, (p) => this.#onInfoResponse(p));
    const refuse = (p: Buffer) => {
      throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, `message ${p[0]} not allowed before authentication`);
    };
    // A client never sends these server messages; accepting 52 is libssh CVE-2018-10933.
    for (const type of [MSG.USERAUTH_FAILURE, MSG.USERAUTH_SUCCESS, MSG.USERAUTH_BANNER, MSG.USERAUTH_PK_OK]) {
      transport.setHandler(type, refuse);
    }
    for (let type = 62; type <= 79; type++) transport.setHandler(type, refuse);
    for (let type = 80; type <= 127; type++) transport.setHandler(type, refuse);
  }

  #methods(): string {
    return this.#c.authenticator.methods.join(',');
  }

  #onServiceRequest(payload: Buffer): void {
    const r = new SshReader(payload, 1);
    const name = r.ascii(MAX_NAME_BYTES, 'service name');
    r.assertEnd('SERVICE_REQUEST');
    if (this.#serviceAccepted || name !== 'ssh-userauth') {
      throw new DisconnectError(DISCONNECT.SERVICE_NOT_AVAILABLE, `service not available: ${escapePeer(name)}`);
    }
    this.#serviceAccepted = true;
    this.#t.send(new SshWriter(32).u8(MSG.SERVICE_ACCEPT).string(name).bytes());
  }

  #ctx(username: string): AuthContext {
    return {
      username,
      remoteAddress: this.#remote.remoteAddress,
      remotePort: this.#remote.remotePort,
      clientVersion: this.#t.clientIdent,
    };
  }

  #onRequest(payload: Buffer): void {
    // RFC 4252 §5.1: requests after success are ignored.
    if (this.#done) return;
    if (!this.#serviceAccepted) {
      throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, 'USERAUTH_REQUEST before the ssh-userauth service was accepted');
    }
    this.#awaitingInfo = false;
    const r = new SshReader(payload, 1);
    const username = r.utf8(MAX_USERNAME_BYTES, 'user name');
    const service = r.ascii(MAX_NAME_BYTES, 'service name');
    const method = r.ascii(MAX_NAME_BYTES, 'method name');
    if (service !== 'ssh-connection') {
      throw new DisconnectError(DISCONNECT.SERVICE_NOT_AVAILABLE, `service not available: ${escapePeer(service)}`);
    }
    // OpenSSH refuses a change of user name within one connection; so do we.
    if (this.#username !== null && this.#username !== username) {
      throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, 'change of user name not allowed');
    }
    this.#username = username;
    const offered = this.#c.authenticator.methods as readonly string[];

    switch (method) {
      case 'none': {
        r.assertEnd('none request');
        // PuTTY and WinSCP start with `none` to learn the methods. The first is free.
        const counted = this.#noneSeen;
        this.#noneSeen = true;
        this.#fail(username, 'none', 'method none', counted, performance.now(), false);
        return;
      }
      case 'password': {
        if (!offered.includes('password')) return this.#fail(username, method, 'method not offered', true, performance.now(), false);
        const change = r.bool();
        const pw = r.bytes(Infinity, 'password');
        if (change) r.bytes(Infinity, 'new password');
        r.assertEnd('password request');
        if (change) return this.#fail(username, method, 'password change requested', true, performance.now());
        return this.#checkPassword(username, method, pw);
      }
      case 'keyboard-interactive': {
        if (!offered.includes('keyboard-interactive')) {
          return this.#fail(username, method, 'method not offered', true, performance.now(), false);
        }
        r.utf8(MAX_NAME_BYTES, 'language tag');
        r.utf8(1024, 'submethods');
        r.assertEnd('keyboard-interactive request');
        // RFC 4256 §3.2: one prompt, echo off.
        const w = new SshWriter(64);
        w.u8(MSG.USERAUTH_INFO_REQUEST).string('').string('').string('').u32(1).string('Password: ').bool(false);
        this.#awaitingInfo = true;
        this.#t.send(w.bytes());
        return;
      }
      case 'publickey':
        return this.#onPublicKey(username, r, payload);
      default:
        return this.#fail(username, method, 'method not supported', true, performance.now(), false);
    }
  }

  #onInfoResponse(payload: Buffer): void {
    if (!this.#awaitingInfo || this.#done) {
      throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, 'unexpected USERAUTH_INFO_RESPONSE');
    }
    this.#awaitingInfo = false;
    const r = new SshReader(payload, 1);
    const n = r.u32();
    if (n !== 1) {
      // Read nothing more: a count other than the one prompt we sent is simply a failure.
      return this.#fail(this.#username!, 'keyboard-interactive', `${n} responses to 1 prompt`, true, performance.now(), true, true);
    }
    const pw = r.bytes(Infinity, 'response');
    r.assertEnd('USERAUTH_INFO_RESPONSE');
    this.#checkPassword(this.#username!, 'keyboard-interactive', pw);
  }

  #checkPassword(username: string, method: AuthMethod, pw: Uint8Array): void {
    const start = performance.now();
    const a = this.#c.authenticator;
    if (pw.length > this.#c.maxPasswordBytes) return this.#fail(username, method, 'password too long', true, start, true, true);
    if (!a.checkPassword) return this.#fail(username, method, 'method not supported', true, start);
    let password: string;
    try {
      password = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(pw);
    } catch {
      return this.#fail(username, method, 'password is not UTF-8', true, start, true, true);
    }
    this.#run(username, method, start, () => a.checkPassword!(this.#ctx(username), password));
  }

  #onPublicKey(username: string, r: SshReader, payload: Buffer): void {
    const start = performance.now();
    const a = this.#c.authenticator;
    const hasSig = r.bool();
    const alg = r.ascii(MAX_NAME_BYTES, 'public key algorithm');
    const blob = r.bytes(MAX_KEY_BLOB, 'public key blob');
    const signedEnd = r.pos;
    const sig = hasSig ? r.bytes(MAX_SIGNATURE, 'signature') : null;
    r.assertEnd('publickey request');
    // The whole request is parsed before the user or key is looked at (cf. CVE-2018-15473).
    if (!a.methods.includes('publickey')) return this.#fail(username, 'publickey', 'method not offered', true, start, false);
    if (!this.#c.publicKeyAlgorithms.includes(alg)) {
      return this.#fail(username, 'publickey', `algorithm ${escapePeer(alg)} not accepted`, true, start);
    }
    let key;
    try {
      key = parsePublicKey(blob);
    } catch (err) {
      if (!(err instanceof MalformedError)) throw err;
      return this.#fail(username, 'publickey', `unusable key: ${err.message}`, true, start);
    }
    const ctx = this.#ctx(username);
    if (sig === null) {
      // A query (RFC 4252 §7): PK_OK, or FAILURE counted as an attempt.
      this.#t.pauseInput();
      Promise.resolve(a.publicKeyAcceptable ? a.publicKeyAcceptable(ctx, key) : false).then(
        (ok) => {
          if (this.#t.closed) return;
          if (ok) {
            this.#t.send(new SshWriter(64 + blob.length).u8(MSG.USERAUTH_PK_OK).string(alg).string(blob).bytes());
            this.#t.resumeInput();
          } else {
            // A refused key counts as an attempt, as in OpenSSH, so a client cannot probe
            // keys without limit.
            this.#fail(username, 'publickey', 'key not accepted', true, start);
          }
        },
        (err) => this.#internal(err, username, 'publickey'),
      );
      return;
    }
    // RFC 4252 §7: the signature covers the session identifier and the request up to here.
    const signed = Buffer.concat([encodeString(this.#t.sessionId!), payload.subarray(0, signedEnd)]);
    if (!verifySignature(key, alg, sig, signed, { allowSshRsaSha1: this.#c.publicKeyAlgorithms.includes('ssh-rsa') })) {
      return this.#fail(username, 'publickey', 'bad signature', true, start, true, true);
    }
    if (!a.checkPublicKey) return this.#fail(username, 'publickey', 'method not supported', true, start);
    this.#run(username, 'publickey', start, () => a.checkPublicKey!(ctx, key));
  }

  /** Runs one credential check with input paused, then answers. */
  #run(username: string, method: AuthMethod, start: number, check: () => Promise<AuthResult<P>>): void {
    this.#t.pauseInput();
    let p: Promise<AuthResult<P>>;
    try {
      p = check();
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (res) => {
        if (this.#t.closed) return;
        if (res.ok) return this.#succeed(res.principal, username, method);
        this.#fail(username, method, res.reason, true, start, true, true);
      },
      (err) => this.#internal(err, username, method),
    );
  }

  #internal(err: unknown, username: string, method: string): void {
    this.#c.log.error('authenticator failed', { err: err instanceof Error ? err.message : String(err) });
    // Audited as a failed login, but not the client's fault: no lockout count (server.ts).
    this.#c.onFailure?.({
      remoteAddress: this.#remote.remoteAddress,
      remotePort: this.#remote.remotePort,
      username: escapePeer(username),
      method: escapePeer(method),
      reason: 'authentication service unavailable',
      clientVersion: escapePeer(this.#t.clientIdent),
      serviceError: true,
      credential: false,
    });
    this.#t.disconnect(DISCONNECT.BY_APPLICATION, 'authentication service unavailable');
  }

  /**
   * Hands the connection to the next layer. Afterwards the transport holds nothing of this
   * object (no handler, no listener), so the configuration, the authenticator's context and
   * this state are freed for the rest of the session.
   */
  #succeed(principal: P, username: string, method: AuthMethod): void {
    this.#done = true;
    const t = this.#t;
    clearTimeout(this.#grace);
    t.off('close', this.#onClose);
    this.#c.log.info('login', { user: escapePeer(username), method });
    t.setHandler(MSG.USERAUTH_REQUEST, ignoreRequest);
    for (let type = 51; type <= 79; type++) t.setHandler(type, undefined);
    t.setHandler(MSG.SERVICE_REQUEST, undefined);
    for (let type = 80; type <= 127; type++) t.setHandler(type, undefined);
    t.send(Buffer.of(MSG.USERAUTH_SUCCESS));
    this.#onSuccess(principal, username, method);
    t.resumeInput();
  }

  /**
   * Answers a failed attempt. Counted failures are delayed (see failureDelay) and end the
   * connection at maxAttempts. `reason` goes to the log, escaped; never to the client.
   */
  #fail(username: string, method: string, reason: string, counted: boolean, start: number, delay = true, credential = false): void {
    if (counted) this.#failures++;
    this.#c.log.info('login failed', { user: escapePeer(username), method: escapePeer(method), reason });
    if (counted && this.#c.onFailure) {
      this.#c.onFailure({
        credential,
        remoteAddress: this.#remote.remoteAddress,
        remotePort: this.#remote.remotePort,
        username: escapePeer(username),
        method: escapePeer(method),
        reason,
        clientVersion: escapePeer(this.#t.clientIdent),
      });
    }
    const finish = () => {
      if (this.#t.closed) return;
      if (this.#failures >= this.#c.maxAttempts) {
        this.#t.disconnect(DISCONNECT.NO_MORE_AUTH_METHODS_AVAILABLE, 'too many authentication failures');
        return;
      }
      this.#sendFailure();
      this.#t.resumeInput();
    };
    if (!delay) return finish();
    this.#t.pauseInput();
    const wait = failureDelay(username, this.#c.failDelayMs, performance.now() - start);
    sleep(wait).then(finish);
  }

  #sendFailure(): void {
    this.#t.send(new SshWriter(64).u8(MSG.USERAUTH_FAILURE).string(this.#methods()).bool(false).bytes());
  }
}
