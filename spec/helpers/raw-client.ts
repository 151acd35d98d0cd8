import net from 'node:net';
import { createPublicKey, diffieHellman, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { x25519 } from '@noble/curves/ed25519.js';
import * as assert from 'uvu/assert';
import { SshReader } from '../../src/wire/reader.js';
import { SshWriter } from '../../src/wire/writer.js';
import { EXT_INFO_CLIENT, KEX_STRICT_CLIENT, KEX_STRICT_SERVER, MSG } from '../../src/transport/constants.js';
import { decodeKexInit, encodeKexInit, negotiate, type KexInit, type Negotiated } from '../../src/transport/negotiate.js';
import {
  CIPHERS,
  MACS,
  createOpeningKey,
  createSealingKey,
  noneOpeningKey,
  noneSealingKey,
  type OpeningKey,
  type SealingKey,
} from '../../src/transport/cipher/index.js';
import { exchangeHash } from '../../src/transport/kex/exchange-hash.js';
import { deriveKey, type KeyLetter } from '../../src/transport/kex/derive-keys.js';
import { parsePublicKey, verifySignature } from '../../src/auth/public-key.js';

/**
 * A deliberately small SSH client for hostile-input tests (undici style: raw bytes on a
 * socket). It speaks just enough of RFC 4253/4252/4254 to reach every state of the server —
 * curve25519-sha256 only, no compression — and every step is a separate call, so a test can
 * put something wrong between any two of them. It shares the codec, the cipher objects, the
 * exchange hash and the KDF with the server, but not the transport: framing, sequence numbers
 * and the strict-KEX counter reset are written again here, so a bug in the server's framer is
 * not mirrored. The host key signature is verified over H, which proves both sides hashed the
 * same transcript.
 *
 * Every wait is bounded (`timeoutMs`, default 5 s) and rejects with a message that says what
 * it was waiting for, so a server that goes quiet fails a test instead of hanging the run.
 */

export const RAW_CLIENT_IDENT = 'SSH-2.0-s3gw_rawclient_1.0';

/** Names the client offers unless a test says otherwise. */
export const CLIENT_DEFAULTS = {
  kex: ['curve25519-sha256'],
  hostKey: ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'rsa-sha2-512', 'rsa-sha2-256'],
  ciphers: ['aes128-gcm@openssh.com'],
  macs: ['hmac-sha2-256-etm@openssh.com'],
} as const;

/** The largest packet this client accepts from the server: the server caps at 256 KiB too. */
const CLIENT_MAX_PACKET = 1024 * 1024;

export interface KexInitOptions {
  /** Real kex methods; the strict and ext-info markers are appended according to the flags. */
  kex?: readonly string[];
  hostKey?: readonly string[];
  /** Both directions unless the C2S/S2C variants are given. */
  ciphers?: readonly string[];
  macs?: readonly string[];
  cipherC2S?: readonly string[];
  cipherS2C?: readonly string[];
  macC2S?: readonly string[];
  macS2C?: readonly string[];
  compression?: readonly string[];
  languages?: readonly string[];
  /** Send kex-strict-c-v00@openssh.com (default true). */
  strict?: boolean;
  /** Send ext-info-c (default true). */
  extInfo?: boolean;
  firstKexFollows?: boolean;
}

export interface HandshakeOptions extends KexInitOptions {
  ident?: string;
  /**
   * Under strict KEX, restart our outgoing sequence number at 0 after our NEWKEYS
   * (default true). false reproduces a client that ignores strict KEX's counter reset.
   */
  resetSendSeq?: boolean;
}

export interface SendOptions {
  /** padding_length to use instead of the smallest legal one; the caller keeps the alignment. */
  paddingLength?: number;
  /** Runs on the finished (sealed) packet before it is written: flip bits here. */
  tamper?: (packet: Buffer) => void;
}

export interface CloseResult {
  /** The reason code of the DISCONNECT the server sent, if it sent one. */
  disconnectReason?: number;
  message?: string;
  /** Payloads that arrived before the DISCONNECT (their first byte is the message number). */
  skipped: Buffer[];
}

export interface OpenedChannel {
  /** Our channel number (what the server puts in its messages to us). */
  localId: number;
  /** The server's channel number (what we put in ours). */
  remoteId: number;
  /** Bytes the server lets us send before its first WINDOW_ADJUST. */
  window: number;
  maxPacket: number;
}

/** The server ended the connection while a helper expected something else. */
export class PeerDisconnected extends Error {
  readonly reason: number;
  readonly description: string;
  constructor(reason: number, description: string) {
    super(`server disconnected with reason ${reason}: ${description}`);
    this.name = 'PeerDisconnected';
    this.reason = reason;
    this.description = description;
  }
}

/** Rejects with "timed out: <what>" unless `p` settles within `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/**
 * Waits for the connection to end and checks that it ended with DISCONNECT `reason` (and a
 * message matching `message`, when given) and a closed socket.
 */
export async function expectDisconnect(c: RawClient, reason: number, message?: RegExp): Promise<CloseResult> {
  const res = await c.waitClose();
  assert.is(res.disconnectReason, reason, `disconnect reason (message: ${res.message ?? 'none'})`);
  if (message) assert.match(res.message ?? '', message);
  assert.ok(c.closed, 'socket closed');
  return res;
}

/** Every client still open, so a suite can tear them all down whatever a test did. */
const live = new Set<RawClient>();

export function destroyAllClients(): void {
  for (const c of live) c.close();
}

/** Message number → name, for error messages. */
const MSG_NAME: Record<number, string> = Object.fromEntries(Object.entries(MSG).map(([k, v]) => [v, k]));

export function msgName(type: number | undefined): string {
  return type === undefined ? 'nothing' : `${MSG_NAME[type] ?? 'message'} (${type})`;
}

interface PendingKeys {
  seal: SealingKey;
  open: OpeningKey;
}

export class RawClient {
  /**
   * For load generators (bench/lib/load-client.ts) only: X25519 through node:crypto (OpenSSL)
   * instead of noble, and no check of the host key's signature, so that a generator sharing the
   * machine's cores with the server spends as little as it can of them. Tests leave it off.
   */
  static loadGenerator = false;
  #nodeSecret: KeyObject | null = null;
  readonly socket: net.Socket;
  readonly timeoutMs: number;
  /** The server's identification line without CR LF, once it has arrived. */
  serverIdent = '';
  clientIdent = RAW_CLIENT_IDENT;
  /** Set once the server sent DISCONNECT (seen by any read). */
  disconnect: { reason: number; message: string } | null = null;
  /** EXT_INFO extensions the server sent (RFC 8308 §2.3), by name. */
  readonly extInfo = new Map<string, Buffer>();
  /** Algorithms of the last key exchange. */
  negotiated: Negotiated | null = null;
  sessionId: Buffer | null = null;
  /** The strict-KEX rule is in force (we sent the marker and the server announced its own). */
  strict = false;
  /** See HandshakeOptions.resetSendSeq. */
  resetSendSeq = true;

  #buf: Buffer = Buffer.alloc(0);
  #identDone = false;
  #ended = false;
  #closed = false;
  #wake: (() => void) | null = null;
  #closeWaiters: (() => void)[] = [];
  #backlog: Buffer[] = [];

  #seal: SealingKey = noneSealingKey();
  #open: OpeningKey = noneOpeningKey();
  #seqOut = 0;
  #seqIn = 0;
  /** packet_length of the packet being received, once read (packetLength may decrypt in place). */
  #pendingLength = -1;
  #pendingKeys: PendingKeys | null = null;
  #tamperNext: ((packet: Buffer) => void) | null = null;

  // Key exchange state.
  #firstKex = true;
  #ourKexinit: Buffer | null = null;
  #ourKexinitMsg: KexInit | null = null;
  #theirKexinit: Buffer | null = null;
  #secret: Uint8Array | null = null;
  #qc: Uint8Array | null = null;
  #nextChannel = 0;

  private constructor(socket: net.Socket, timeoutMs: number) {
    this.socket = socket;
    this.timeoutMs = timeoutMs;
    live.add(this);
    socket.on('data', (chunk: Buffer) => {
      this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
      this.#poke();
    });
    socket.on('end', () => {
      this.#ended = true;
      this.#poke();
    });
    // ECONNRESET and EPIPE are expected when a server hangs up on a hostile client.
    socket.on('error', () => {});
    socket.on('close', () => {
      this.#ended = true;
      this.#closed = true;
      live.delete(this);
      this.#poke();
      for (const w of this.#closeWaiters.splice(0)) w();
    });
  }

  /** Opens a TCP connection; nothing is sent yet. */
  static async connect(port: number, opts: { host?: string; timeoutMs?: number } = {}): Promise<RawClient> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    const socket = net.connect({ port, host: opts.host ?? '127.0.0.1', noDelay: true });
    const c = new RawClient(socket, timeoutMs);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      }),
      timeoutMs,
      `connect to port ${port}`,
    );
    return c;
  }

  /** Connects, completes the key exchange and logs in with a password; throws unless it worked. */
  static async login(port: number, user: string, password: string, opts: HandshakeOptions = {}): Promise<RawClient> {
    const c = await RawClient.connect(port);
    try {
      await c.handshake(opts);
      await c.serviceRequest();
      const res = await c.authPassword(user, password);
      if (!res.success) throw new Error(`login as ${user} failed (methods ${res.methods})`);
      return c;
    } catch (err) {
      c.close();
      throw err;
    }
  }

  get seqOut(): number {
    return this.#seqOut;
  }

  get seqIn(): number {
    return this.#seqIn;
  }

  /** Whether the socket has been closed (by either side). */
  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    live.delete(this);
    this.socket.destroy();
  }

  #poke(): void {
    const w = this.#wake;
    this.#wake = null;
    if (w) w();
  }

  // ------------------------------------------------------------------ output

  /** Writes bytes as they are, bypassing framing. Ignored once the socket is gone. */
  sendRawBytes(buf: Uint8Array | string): void {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    this.socket.write(buf);
  }

  sendIdent(ident = this.clientIdent): void {
    this.clientIdent = ident;
    this.sendRawBytes(ident + '\r\n');
  }

  /**
   * Writes `uint32 packet_length ‖ byte padding_length ‖ body` with no checks at all: the
   * frame lies about its lengths exactly as the test says. Only meaningful before NEWKEYS.
   */
  sendPlainFrame(packetLength: number, paddingLength: number, body: Uint8Array = new Uint8Array(0)): void {
    const head = Buffer.alloc(5);
    head.writeUInt32BE(packetLength >>> 0, 0);
    head[4] = paddingLength;
    this.sendRawBytes(Buffer.concat([head, body]));
  }

  /** Applies `fn` to the next sealed packet before it is written (once). */
  tamperNext(fn: (packet: Buffer) => void): void {
    this.#tamperNext = fn;
  }

  /** Frames `payload` under the current keys (RFC 4253 §6) and sends it. */
  send(payload: Uint8Array, opts: SendOptions = {}): void {
    this.sendRawBytes(this.buildPacket(payload, opts));
  }

  /** Frames and seals `payload` as `send` would, consuming a sequence number, without writing it. */
  buildPacket(payload: Uint8Array, opts: SendOptions = {}): Buffer {
    const s = this.#seal;
    const bs = s.blockSize;
    let pad = opts.paddingLength;
    if (pad === undefined) {
      const covered = (s.lengthAligned ? 5 : 1) + payload.length;
      pad = bs - (covered % bs);
      if (pad < 4) pad += bs;
    }
    const packetLength = 1 + payload.length + pad;
    const pkt = Buffer.alloc(4 + packetLength + s.macLength);
    pkt.writeUInt32BE(packetLength, 0);
    pkt[4] = pad;
    pkt.set(payload, 5);
    randomBytes(pad).copy(pkt, 5 + payload.length);
    s.seal(this.#seqOut, pkt);
    this.#seqOut = (this.#seqOut + 1) >>> 0;
    const tamper = opts.tamper ?? this.#tamperNext;
    this.#tamperNext = null;
    if (tamper) tamper(pkt);
    return pkt;
  }

  // ------------------------------------------------------------------ input

  /**
   * The next payload from the server, message number first. EXT_INFO is recorded in
   * `extInfo` and skipped. A DISCONNECT is returned like any other message (and recorded).
   */
  async recv(what = 'a packet'): Promise<Buffer> {
    for (;;) {
      const p = await this.recvAny(what);
      if (p[0] === MSG.EXT_INFO) {
        this.#onExtInfo(p);
        continue;
      }
      return p;
    }
  }

  /** Like `recv` but returns EXT_INFO too. */
  async recvAny(what = 'a packet'): Promise<Buffer> {
    const queued = this.#backlog.shift();
    if (queued) return queued;
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const p = this.#tryDecode();
      if (p) return p;
      if (this.#ended) throw new Error(`connection closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${this.timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
    }
  }

  /** Receives one message and checks its number; a DISCONNECT becomes PeerDisconnected. */
  async expect(type: number): Promise<Buffer> {
    const p = await this.recv(msgName(type));
    if (p[0] === type) return p;
    if (p[0] === MSG.DISCONNECT) {
      const d = this.disconnect!;
      throw new PeerDisconnected(d.reason, d.message);
    }
    throw new Error(`expected ${msgName(type)}, got ${msgName(p[0])}`);
  }

  /**
   * Reads until the server's DISCONNECT or the end of the stream, then waits for the socket
   * to close. Everything else that arrives on the way is returned in `skipped`.
   */
  async waitClose(): Promise<CloseResult> {
    const skipped: Buffer[] = [];
    for (;;) {
      if (this.disconnect) break;
      let p: Buffer;
      try {
        p = await this.recvAny('DISCONNECT or close');
      } catch (err) {
        if (this.#ended) break;
        throw err;
      }
      if (p[0] !== MSG.DISCONNECT) skipped.push(p);
    }
    await this.waitSocketClosed();
    const d = this.disconnect as { reason: number; message: string } | null;
    return d ? { disconnectReason: d.reason, message: d.message, skipped } : { skipped };
  }

  /** Resolves once the socket has closed; the server is expected to close after DISCONNECT. */
  async waitSocketClosed(): Promise<void> {
    if (this.#closed) return;
    await withTimeout(new Promise<void>((resolve) => this.#closeWaiters.push(resolve)), this.timeoutMs, 'socket close');
  }

  #tryDecode(): Buffer | null {
    if (!this.#identDone) {
      // RFC 4253 §4.2: the server may send other lines first; the one starting SSH- counts.
      for (;;) {
        const nl = this.#buf.indexOf(0x0a);
        if (nl < 0) {
          if (this.#buf.length > 8192) throw new Error('server identification line too long');
          return null;
        }
        const line = this.#buf.subarray(0, nl).toString('latin1').replace(/\r$/, '');
        this.#buf = this.#buf.subarray(nl + 1);
        if (line.startsWith('SSH-')) {
          this.serverIdent = line;
          this.#identDone = true;
          break;
        }
      }
    }
    const o = this.#open;
    if (this.#pendingLength < 0) {
      if (this.#buf.length < o.lengthBytes) return null;
      // CTR without EtM decrypts the head in place here; the bytes stay decrypted in #buf
      // (concatenation copies them as they are) and `open` continues after them.
      const len = o.packetLength(this.#seqIn, this.#buf);
      if (len > CLIENT_MAX_PACKET || len < 5) throw new Error(`server sent packet_length ${len}`);
      this.#pendingLength = len;
    }
    const total = 4 + this.#pendingLength + o.macLength;
    if (this.#buf.length < total) return null;
    const pkt = Buffer.from(this.#buf.subarray(0, total));
    this.#buf = this.#buf.subarray(total);
    this.#pendingLength = -1;
    // padding_length ‖ payload ‖ padding: decrypted in place, or (AES-GCM) a buffer of its own.
    const body = o.open(this.#seqIn, pkt);
    this.#seqIn = (this.#seqIn + 1) >>> 0;
    const len = body.length;
    const pad = body[0]!;
    if (pad < 4 || pad > len - 2) throw new Error(`server sent padding_length ${pad} in a packet of ${len}`);
    const payload = body.subarray(1, len - pad);
    const type = payload[0];
    if (type === MSG.NEWKEYS && this.#pendingKeys) {
      // RFC 4253 §7.3: the server's packets after its NEWKEYS use the new keys.
      this.#open = this.#pendingKeys.open;
      this.#pendingKeys = null;
      if (this.strict) this.#seqIn = 0;
    } else if (type === MSG.DISCONNECT && this.disconnect === null) {
      const r = new SshReader(payload, 1);
      const reason = r.u32();
      const message = Buffer.from(r.bytes()).toString('utf8');
      this.disconnect = { reason, message };
    }
    return payload;
  }

  #onExtInfo(p: Buffer): void {
    const r = new SshReader(p, 1);
    const n = r.u32();
    for (let i = 0; i < n; i++) this.extInfo.set(r.ascii(), Buffer.from(r.bytes()));
  }

  // ------------------------------------------------------------------ key exchange

  /** Our KEXINIT payload for `opts` (RFC 4253 §7.1). */
  buildKexInit(opts: KexInitOptions = {}): KexInit {
    const d = CLIENT_DEFAULTS;
    const kex = [...(opts.kex ?? d.kex)];
    if (this.#firstKex) {
      if (opts.extInfo ?? true) kex.push(EXT_INFO_CLIENT);
      if (opts.strict ?? true) kex.push(KEX_STRICT_CLIENT);
    }
    const ciphers = opts.ciphers ?? d.ciphers;
    const macs = opts.macs ?? d.macs;
    return {
      cookie: randomBytes(16),
      kex,
      hostKey: [...(opts.hostKey ?? d.hostKey)],
      cipherC2S: [...(opts.cipherC2S ?? ciphers)],
      cipherS2C: [...(opts.cipherS2C ?? ciphers)],
      macC2S: [...(opts.macC2S ?? macs)],
      macS2C: [...(opts.macS2C ?? macs)],
      compC2S: [...(opts.compression ?? ['none'])],
      compS2C: [...(opts.compression ?? ['none'])],
      langC2S: [...(opts.languages ?? [])],
      langS2C: [...(opts.languages ?? [])],
      firstKexFollows: opts.firstKexFollows ?? false,
    };
  }

  /** Sends KEXINIT built from `opts`, or `msg` as given (lists are joined with commas, unchecked). */
  sendKexInit(opts: KexInitOptions = {}, msg: KexInit = this.buildKexInit(opts)): Buffer {
    const payload = encodeKexInit(msg);
    this.#ourKexinit = payload;
    this.#ourKexinitMsg = msg;
    this.send(payload);
    return payload;
  }

  /** Waits for the server's KEXINIT; anything else that comes first is kept for `recv`. */
  async recvKexInit(): Promise<KexInit> {
    const held: Buffer[] = [];
    let p: Buffer;
    for (;;) {
      p = await this.recv('KEXINIT');
      if (p[0] === MSG.KEXINIT) break;
      if (p[0] === MSG.DISCONNECT) {
        this.#backlog.unshift(...held);
        throw new PeerDisconnected(this.disconnect!.reason, this.disconnect!.message);
      }
      held.push(p);
    }
    this.#backlog.push(...held);
    this.#theirKexinit = Buffer.from(p);
    const m = decodeKexInit(p);
    if (this.#firstKex) {
      const weSent = this.#ourKexinitMsg?.kex.includes(KEX_STRICT_CLIENT) ?? false;
      this.strict = weSent && m.kex.includes(KEX_STRICT_SERVER);
    }
    return m;
  }

  /** Sends KEX_ECDH_INIT with a fresh X25519 key, or with `q` as Q_C exactly (RFC 8731 §3). */
  sendEcdhInit(q?: Uint8Array): void {
    if (q === undefined && RawClient.loadGenerator) {
      const { privateKey, publicKey } = generateKeyPairSync('x25519');
      this.#nodeSecret = privateKey;
      this.#secret = new Uint8Array(0);
      q = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
    } else if (q === undefined) {
      this.#secret = x25519.utils.randomSecretKey();
      q = x25519.getPublicKey(this.#secret);
    } else {
      this.#secret = null;
    }
    this.#qc = q;
    this.send(new SshWriter(64 + q.length).u8(MSG.KEX_ECDH_INIT).string(q).bytes());
  }

  /**
   * Reads KEX_ECDH_REPLY, computes K and H, checks the host key signature over H and derives
   * the six keys (RFC 4253 §7.2; we seal with A/C/E and open with B/D/F). The keys take
   * effect at `sendNewKeys` (ours) and at the server's NEWKEYS (theirs).
   */
  async recvEcdhReply(): Promise<void> {
    const p = await this.expect(MSG.KEX_ECDH_REPLY);
    if (!this.#ourKexinit || !this.#theirKexinit || !this.#ourKexinitMsg) throw new Error('KEXINITs not exchanged');
    if (!this.#secret || !this.#qc) throw new Error('sendEcdhInit was not called with a generated key');
    const r = new SshReader(p, 1);
    const hostKeyBlob = Buffer.from(r.bytes(Infinity, 'K_S'));
    const qs = Buffer.from(r.bytes(Infinity, 'Q_S'));
    const sig = Buffer.from(r.bytes(Infinity, 'signature'));
    r.assertEnd('KEX_ECDH_REPLY');
    if (hostKeyBlob.length === 0) throw new Error('KEX_ECDH_REPLY has no host key');
    if (sig.length === 0) throw new Error('KEX_ECDH_REPLY has no signature');

    const neg = negotiate(this.#ourKexinitMsg, decodeKexInit(this.#theirKexinit), (c) => CIPHERS[c]?.aead === true);
    if (neg.kex !== 'curve25519-sha256' && neg.kex !== 'curve25519-sha256@libssh.org') {
      throw new Error(`the raw client only does curve25519, negotiated ${neg.kex}`);
    }
    this.negotiated = neg;
    const shared = this.#nodeSecret
      ? diffieHellman({
          privateKey: this.#nodeSecret,
          publicKey: createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: qs.toString('base64url') }, format: 'jwk' }),
        })
      : x25519.getSharedSecret(this.#secret, qs);
    this.#secret = null;
    this.#nodeSecret = null;
    const K = Buffer.from(new SshWriter(40).mpint(shared).bytes());
    const H = Buffer.from(
      exchangeHash('sha256', {
        clientIdent: this.clientIdent,
        serverIdent: this.serverIdent,
        clientKexinit: this.#ourKexinit,
        serverKexinit: this.#theirKexinit,
        hostKeyBlob,
        clientField: new SshWriter(40).string(this.#qc).bytes(),
        serverField: new SshWriter(40).string(qs).bytes(),
        sharedSecret: K,
      }),
    );
    // Not needed for the tests, but cheap, and it proves both ends computed the same H.
    if (!RawClient.loadGenerator && !verifySignature(parsePublicKey(hostKeyBlob), neg.hostKey, sig, H)) {
      throw new Error(`host key signature (${neg.hostKey}) does not verify over H`);
    }
    if (this.sessionId === null) this.sessionId = H;
    const sid = this.sessionId;
    const derive = (letter: KeyLetter, n: number) => deriveKey('sha256', K, H, letter, sid, n);
    const cC = CIPHERS[neg.cipherC2S]!;
    const cS = CIPHERS[neg.cipherS2C]!;
    const mC = neg.macC2S ? MACS[neg.macC2S]! : null;
    const mS = neg.macS2C ? MACS[neg.macS2C]! : null;
    this.#pendingKeys = {
      seal: createSealingKey({
        cipher: neg.cipherC2S,
        mac: neg.macC2S,
        iv: derive('A', cC.ivLength),
        key: derive('C', cC.keyLength),
        macKey: mC ? derive('E', mC.keyLength) : new Uint8Array(0),
      }),
      open: createOpeningKey({
        cipher: neg.cipherS2C,
        mac: neg.macS2C,
        iv: derive('B', cS.ivLength),
        key: derive('D', cS.keyLength),
        macKey: mS ? derive('F', mS.keyLength) : new Uint8Array(0),
      }),
    };
  }

  /** Sends NEWKEYS and switches our outgoing keys (resetting the counter under strict KEX). */
  sendNewKeys(): void {
    const keys = this.#pendingKeys;
    if (!keys) throw new Error('no keys derived yet');
    this.send(Buffer.of(MSG.NEWKEYS));
    this.#seal = keys.seal;
    if (this.strict && this.resetSendSeq) this.#seqOut = 0;
  }

  /** Waits for the server's NEWKEYS; the decoder switches the incoming keys when it sees it. */
  async recvNewKeys(): Promise<void> {
    await this.expect(MSG.NEWKEYS);
    this.#firstKex = false;
    this.#ourKexinit = null;
    this.#ourKexinitMsg = null;
    this.#theirKexinit = null;
  }

  /** The whole exchange: identification, KEXINIT, ECDH, NEWKEYS both ways. */
  async handshake(opts: HandshakeOptions = {}): Promise<void> {
    this.resetSendSeq = opts.resetSendSeq ?? true;
    this.sendIdent(opts.ident);
    this.sendKexInit(opts);
    await this.recvKexInit();
    this.sendEcdhInit();
    await this.recvEcdhReply();
    this.sendNewKeys();
    await this.recvNewKeys();
  }

  /** A key re-exchange started by us (RFC 4253 §9); no other traffic may be in flight. */
  async rekey(opts: KexInitOptions = {}): Promise<void> {
    this.sendKexInit(opts);
    await this.recvKexInit();
    this.sendEcdhInit();
    await this.recvEcdhReply();
    this.sendNewKeys();
    await this.recvNewKeys();
  }

  /**
   * Our side of a re-exchange the server started: `payload` is the server's KEXINIT, already
   * received. The server queues everything else until NEWKEYS, so KEX_ECDH_REPLY is next.
   */
  async answerServerKexInit(payload: Buffer, opts: KexInitOptions = {}): Promise<void> {
    this.#theirKexinit = Buffer.from(payload);
    this.sendKexInit(opts);
    this.sendEcdhInit();
    await this.recvEcdhReply();
    this.sendNewKeys();
    await this.recvNewKeys();
  }

  // ------------------------------------------------------------------ user authentication

  /** SERVICE_REQUEST (RFC 4253 §10); resolves on SERVICE_ACCEPT. */
  async serviceRequest(name = 'ssh-userauth'): Promise<void> {
    this.send(new SshWriter(64).u8(MSG.SERVICE_REQUEST).string(name).bytes());
    await this.expect(MSG.SERVICE_ACCEPT);
  }

  /** Builds USERAUTH_REQUEST (RFC 4252 §5): user, service, method, then `rest` as is. */
  userauthRequest(
    user: string,
    method: string,
    rest: Uint8Array = new Uint8Array(0),
    service = 'ssh-connection',
  ): Buffer {
    const w = new SshWriter(128 + rest.length);
    w.u8(MSG.USERAUTH_REQUEST).string(user).string(service).string(method).raw(rest);
    return Buffer.from(w.bytes());
  }

  /** RFC 4252 §8 password request. */
  sendPassword(user: string, password: string | Uint8Array): void {
    const pw = typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
    this.send(this.userauthRequest(user, 'password', new SshWriter(pw.length + 8).bool(false).string(pw).bytes()));
  }

  /** Reads the answer to an authentication request: SUCCESS, or FAILURE with its method list. */
  async authResult(): Promise<{ success: boolean; methods?: string; partial?: boolean; type: number }> {
    const p = await this.recv('USERAUTH_SUCCESS or USERAUTH_FAILURE');
    if (p[0] === MSG.USERAUTH_SUCCESS) return { success: true, type: p[0] };
    if (p[0] === MSG.USERAUTH_FAILURE) {
      const r = new SshReader(p, 1);
      const methods = r.ascii();
      const partial = r.bool();
      return { success: false, methods, partial, type: p[0] };
    }
    if (p[0] === MSG.DISCONNECT) throw new PeerDisconnected(this.disconnect!.reason, this.disconnect!.message);
    return { success: false, type: p[0]! };
  }

  async authPassword(user: string, password: string | Uint8Array) {
    this.sendPassword(user, password);
    return this.authResult();
  }

  // ------------------------------------------------------------------ connection protocol

  /** CHANNEL_OPEN (RFC 4254 §5.1) with our next channel number; returns that number. */
  sendChannelOpen(
    type = 'session',
    window = 2 * 1024 * 1024,
    maxPacket = 32 * 1024,
    extra: Uint8Array = new Uint8Array(0),
  ): number {
    const id = this.#nextChannel++;
    const w = new SshWriter(64 + extra.length);
    w.u8(MSG.CHANNEL_OPEN).string(type).u32(id).u32(window).u32(maxPacket).raw(extra);
    this.send(w.bytes());
    return id;
  }

  /** Opens a session channel and waits for its confirmation. */
  async openSession(window?: number, maxPacket?: number): Promise<OpenedChannel> {
    const localId = this.sendChannelOpen('session', window, maxPacket);
    const p = await this.expect(MSG.CHANNEL_OPEN_CONFIRMATION);
    const r = new SshReader(p, 1);
    const recipient = r.u32();
    if (recipient !== localId) throw new Error(`confirmation for channel ${recipient}, expected ${localId}`);
    return { localId, remoteId: r.u32(), window: r.u32(), maxPacket: r.u32() };
  }

  /** CHANNEL_REQUEST (RFC 4254 §5.4) with `data` as the type-specific part. */
  sendChannelRequest(remoteId: number, type: string, wantReply: boolean, data: Uint8Array = new Uint8Array(0)): void {
    const w = new SshWriter(64 + data.length);
    w.u8(MSG.CHANNEL_REQUEST).u32(remoteId).string(type).bool(wantReply).raw(data);
    this.send(w.bytes());
  }

  /** Starts a subsystem (RFC 4254 §6.5); resolves true on CHANNEL_SUCCESS, false on FAILURE. */
  async subsystem(ch: OpenedChannel, name: string): Promise<boolean> {
    this.sendChannelRequest(ch.remoteId, 'subsystem', true, new SshWriter(64).string(name).bytes());
    const p = await this.recv('CHANNEL_SUCCESS or CHANNEL_FAILURE');
    if (p[0] === MSG.CHANNEL_SUCCESS) return true;
    if (p[0] === MSG.CHANNEL_FAILURE) return false;
    if (p[0] === MSG.DISCONNECT) throw new PeerDisconnected(this.disconnect!.reason, this.disconnect!.message);
    throw new Error(`expected CHANNEL_SUCCESS or CHANNEL_FAILURE, got ${msgName(p[0])}`);
  }

  sendChannelData(remoteId: number, data: Uint8Array): void {
    const w = new SshWriter(16 + data.length);
    w.u8(MSG.CHANNEL_DATA).u32(remoteId).string(data);
    this.send(w.bytes());
  }

  sendGlobalRequest(name: string, wantReply: boolean, data: Uint8Array = new Uint8Array(0)): void {
    this.send(new SshWriter(64 + data.length).u8(MSG.GLOBAL_REQUEST).string(name).bool(wantReply).raw(data).bytes());
  }
}
