import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { SshReader } from '../wire/reader.js';
import { SshWriter } from '../wire/writer.js';
import { MalformedError } from '../wire/errors.js';
import { escapePeer, type Logger } from '../log.js';
import { DISCONNECT, EXT_INFO_CLIENT, EXT_INFO_SERVER, KEX_STRICT_CLIENT, KEX_STRICT_SERVER, MSG } from './constants.js';
import { DisconnectError, MacError, PeerDisconnectError } from './errors.js';
import { IdentReader } from './ident.js';
import { decodeKexInit, encodeKexInit, negotiate, type KexInit, type Negotiated } from './negotiate.js';
import type { OpeningKey, SealingKey } from './cipher/types.js';
import { CIPHERS, MACS, createOpeningKey, createSealingKey, noneOpeningKey, noneSealingKey } from './cipher/index.js';
import type { KexMethod } from './kex/types.js';
import { KEX_METHODS } from './kex/index.js';
import { exchangeHash } from './kex/exchange-hash.js';
import { deriveKey } from './kex/derive-keys.js';
import type { HostKey } from './host-key-types.js';
import { unpooled } from './unpooled.js';

/** Offset of the payload inside a packet buffer from `allocPacket`: uint32 length, byte padding length. */
export const PAYLOAD_OFFSET = 5;

export interface TransportConfig {
  hostKeys: readonly HostKey[];
  /** Server preference order; only names this implementation supports. */
  kex: readonly string[];
  hostKeyAlgorithms: readonly string[];
  ciphers: readonly string[];
  macs: readonly string[];
  /** Signature algorithms announced in EXT_INFO server-sig-algs (RFC 8308 §3.1). */
  serverSigAlgs: readonly string[];
  /** The softwareversion part of our identification string. */
  softwareVersion: string;
  /** Largest packet_length accepted (OpenSSH PACKET_MAX_SIZE is 256 KiB). */
  maxPacketLength: number;
  /** A key exchange that has not finished after this long ends the connection. */
  kexTimeoutMs: number;
  /** Re-key after this many bytes in either direction (RFC 4253 §9: 1 GB). */
  rekeyBytes: number;
  /** Re-key after this long (RFC 4253 §9: 1 hour). */
  rekeyIntervalMs: number;
  /** Output queued during a key exchange above this pushes back (`writable` turns false). */
  maxKexQueueBytes: number;
  log: Logger;
  /**
   * Key-exchange implementations by name; KEX_METHODS unless a test fixes the ephemeral key
   * (scripts/record-openssh-session.ts). Never set by the gateway.
   */
  kexMethods?: Readonly<Record<string, () => KexMethod>>;
}

export type PacketHandler = (payload: Buffer, seq: number) => void;

type KexPhase = 'idle' | 'await-kexinit' | 'await-init' | 'await-newkeys';

/**
 * Packets that may be sent while our KEXINIT is outstanding (RFC 4253 §7.1; strict KEX
 * forbids the generic 2–4 during the initial exchange, and we send none of them then).
 */
function isKexMessage(type: number): boolean {
  return type === MSG.DISCONNECT || (type >= 20 && type <= 49);
}

/**
 * Random padding (RFC 4253 §6) for every connection of the process, drawn from one buffer of
 * CSPRNG output refilled 4 KiB at a time. Each byte goes into one packet only, so the padding a
 * peer sees (it travels in clear before the first NEWKEYS) tells nothing about another
 * connection's. A buffer per connection cost each idle session 4 KiB.
 */
const PAD_POOL_BYTES = 4096;
let padPool = Buffer.alloc(0);
let padOff = 0;

function fillPadding(buf: Buffer, at: number, n: number): void {
  if (padOff + n > padPool.length) {
    padPool = randomBytes(PAD_POOL_BYTES);
    padOff = 0;
  }
  padPool.copy(buf, at, padOff, padOff + n);
  padOff += n;
}

/** Room for the first bytes of a packet split across chunks: any OpeningKey's lengthBytes. */
const HEAD_BYTES = 32;

/** A hard bound far above `maxKexQueueBytes`: reaching it means a layer ignored backpressure. */
const KEX_QUEUE_HARD_FACTOR = 8;
/**
 * Output held by the socket at which `writable` turns false until it drains. Not the socket's
 * own high-water mark (16 KiB), which every 32 KiB CHANNEL_DATA crosses: that held each channel
 * to one packet per tick, and one writev per packet, for the whole of a download.
 */
const OUTPUT_HIGH_WATER = 256 * 1024;
/**
 * Output held by the socket above which we stop reading. Channels stop at OUTPUT_HIGH_WATER;
 * this bounds what automatic replies (PONG, UNIMPLEMENTED, request failures) can pile up for a
 * peer that sends but never reads.
 */
const OUTPUT_PAUSE_BYTES = 1024 * 1024;
/** The 2^31 packet rekey bound OpenSSH uses, well inside RFC 4344 §3.1's 2^32. */
const REKEY_PACKETS = 0x8000_0000;

/**
 * Bulk packet buffers that sealing left free (AES-GCM's `sealTo` encrypts out of the packet,
 * and a packet queued during a key exchange is copied), kept for `allocPacketUpTo` to fill
 * again: one 32 KiB allocation less per CHANNEL_DATA. Shared by the whole process, so an idle
 * session holds none, and bounded: a few buffers of bulk size.
 */
const FREE_PACKETS: Buffer[] = [];
const FREE_PACKETS_MAX = 4;
const FREE_PACKET_MIN_BYTES = 8 * 1024;
const FREE_PACKET_MAX_BYTES = 64 * 1024 + 256;
/**
 * A packet this much smaller than its buffer is copied into one of its own size before an
 * in-place cipher hands it to the socket, so a short packet does not keep a bulk buffer alive.
 */
const SMALL_PACKET_BYTES = 4096;

function freePacket(buf: Buffer): void {
  const n = buf.length;
  if (n < FREE_PACKET_MIN_BYTES || n > FREE_PACKET_MAX_BYTES) return;
  const free = FREE_PACKETS;
  if (free.length < FREE_PACKETS_MAX) {
    free.push(buf);
    return;
  }
  // Full: keep the larger buffers. A packet cut short by a small window is allocated small,
  // and a list of those would fit no full-size packet again.
  let min = 0;
  for (let i = 1; i < free.length; i++) if (free[i]!.length < free[min]!.length) min = i;
  if (free[min]!.length < n) free[min] = buf;
}

/** A free packet buffer of at least `n` bytes, taken off the list, or undefined. */
function takeFreePacket(n: number): Buffer | undefined {
  const free = FREE_PACKETS;
  for (let i = free.length - 1; i >= 0; i--) {
    const b = free[i]!;
    if (b.length >= n) {
      free[i] = free[free.length - 1]!;
      free.pop();
      return b;
    }
  }
  return undefined;
}

/**
 * The SSH transport layer (RFC 4253) for one server-side connection: identification,
 * binary packet protocol, key exchange and re-exchange, strict KEX (OpenSSH PROTOCOL §1.10),
 * and dispatch of every other message to handlers registered by the layers above.
 *
 * Events: 'ready' after the first key exchange, 'drain' when output may resume after
 * `writable` was false, 'close' (error | null) once the connection is gone.
 */
export class Transport extends EventEmitter {
  readonly config: TransportConfig;
  readonly socket: Socket;
  readonly serverIdent: string;
  clientIdent = '';
  /** The exchange hash of the first key exchange (RFC 4253 §7.2). */
  sessionId: Buffer | null = null;
  negotiated: Negotiated | null = null;

  readonly #log: Logger;
  /**
   * The dispatch table by message number: a byte per number, the index of its handler in
   * #handlerList (0: none). A layer registers one handler for many numbers, so the list stays
   * short; a table of 256 pointers cost each connection 2 KiB.
   */
  readonly #route = new Uint8Array(256);
  readonly #handlerList: (PacketHandler | undefined)[] = [undefined];
  #ident: IdentReader | null = new IdentReader();

  // Inbound framing state.
  #open: OpeningKey = noneOpeningKey();
  #seqIn = 0;
  /** Made the first time a packet's first bytes arrive split across chunks; many sessions never need it. */
  #head: Buffer | null = null;
  #headFill = 0;
  #pkt: Buffer | null = null;
  #pktFill = 0;
  #inRest: Buffer | null = null;
  #paused = false;
  #outputBlocked = false;
  #corked = false;
  /** Run at the end of the tick, before the uncork (flushAtTickEnd). */
  readonly #tickFlush: (() => void)[] = [];
  readonly #uncork = () => {
    const flush = this.#tickFlush;
    if (flush.length > 0) {
      // Partial packets of this tick join its writev; whatever they send is still corked.
      try {
        for (let i = 0; i < flush.length; i++) flush[i]!();
      } catch (err) {
        this.#fail(err);
      }
      flush.length = 0;
    }
    this.#corked = false;
    this.socket.uncork();
  };

  // Outbound state.
  #seal: SealingKey = noneSealingKey();
  #seqOut = 0;
  #queue: Buffer[] = [];
  #queueBytes = 0;
  #needDrain = false;

  // Key exchange state.
  #phase: KexPhase = 'idle';
  #kexSent = false;
  #ourKexinit: Buffer | null = null;
  #theirKexinit: Buffer | null = null;
  #method: KexMethod | null = null;
  #ignoreNextKexPacket = false;
  #pendingOpen: OpeningKey | null = null;
  #strict = false;
  #clientExtInfo = false;
  #firstKexDone = false;
  #kexTimer: NodeJS.Timeout | null = null;
  #rekeyTimer: NodeJS.Timeout | null = null;
  #bytesIn = 0;
  #bytesOut = 0;
  #pktsIn = 0;
  #pktsOut = 0;

  #closing = false;
  #closed = false;

  constructor(socket: Socket, config: TransportConfig) {
    super();
    this.socket = socket;
    this.config = config;
    this.#log = config.log;
    this.serverIdent = `SSH-2.0-${config.softwareVersion}`;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => this.#maybeDrain());
    socket.on('error', (err) => {
      this.#log.debug('socket error', { err: err.message });
    });
    socket.on('close', () => this.#finish(null));
    socket.write(this.serverIdent + '\r\n');
    this.#sendKexInit();
  }

  /** Registers the handler for one message number (upper layers claim 5–6 and 50–255). */
  setHandler(type: number, handler: PacketHandler | undefined): void {
    const route = this.#route;
    const list = this.#handlerList;
    const old = route[type]!;
    let slot = 0;
    if (handler !== undefined) {
      slot = list.indexOf(handler);
      if (slot < 0) {
        slot = list.indexOf(undefined, 1);
        if (slot < 0) slot = list.length;
        if (slot > 255) throw new RangeError('more than 255 distinct packet handlers');
        list[slot] = handler;
      }
    }
    route[type] = slot;
    // A handler that no message number leads to any more is let go, with all it holds (the
    // authentication layer's, once a user is in).
    if (old !== 0 && old !== slot && !route.includes(old)) list[old] = undefined;
  }

  /** Whether upper layers may send more now; when false, wait for 'drain'. */
  get writable(): boolean {
    return !this.#closing && !this.#needDrain && this.#queueBytes <= this.config.maxKexQueueBytes;
  }

  get closed(): boolean {
    return this.#closing || this.#closed;
  }

  /** Whether strict key exchange was negotiated (the client sent kex-strict-c-v00@openssh.com). */
  get strictKex(): boolean {
    return this.#strict;
  }

  /**
   * Stops dispatching inbound packets until `resumeInput` (an asynchronous check is running).
   * The socket is paused too, so what a client sends meanwhile waits in the kernel and TCP
   * pushes back: at most the current chunk is held here.
   */
  pauseInput(): void {
    this.#paused = true;
    this.socket.pause();
  }

  resumeInput(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (!this.#outputBlocked) this.socket.resume();
    const rest = this.#inRest;
    this.#inRest = null;
    if (rest) this.#guard(() => this.#process(rest));
  }

  /**
   * A buffer sized for a packet with `payloadLength` bytes of payload under the current
   * keys. The caller writes the payload at PAYLOAD_OFFSET and passes the buffer to
   * `sendPacket`: one allocation per packet, encrypted in place (ssh2's allocPacket).
   */
  allocPacket(payloadLength: number): Buffer {
    const pad = this.#padLength(payloadLength);
    const packetLength = 1 + payloadLength + pad;
    const buf = Buffer.allocUnsafe(4 + packetLength + this.#seal.macLength);
    buf.writeUInt32BE(packetLength, 0);
    buf[4] = pad;
    return buf;
  }

  /**
   * A buffer for a packet of at most `maxPayload` bytes of payload, for a caller that learns
   * the real length only as it fills the payload at PAYLOAD_OFFSET (a channel coalescing
   * writes); `sendPacket` then writes the header and padding for the length it is given. It
   * may be a buffer an earlier packet was sealed out of, so its contents are arbitrary.
   */
  allocPacketUpTo(maxPayload: number): Buffer {
    const s = this.#seal;
    // The most padding any payload length can need: 4 + 1 + (blockSize - 1).
    const need = PAYLOAD_OFFSET + maxPayload + s.blockSize + 3 + s.macLength;
    return takeFreePacket(need) ?? Buffer.allocUnsafe(need);
  }

  /**
   * Sends a packet from `allocPacket` or `allocPacketUpTo` whose payload is `payloadLength`
   * bytes. The buffer belongs to the transport from here on: the caller must not touch it.
   */
  sendPacket(packet: Buffer, payloadLength: number): void {
    if (this.#closing) return;
    const type = packet[PAYLOAD_OFFSET]!;
    if (this.#kexSent && !isKexMessage(type)) {
      this.#enqueue(packet.subarray(PAYLOAD_OFFSET, PAYLOAD_OFFSET + payloadLength));
      freePacket(packet);
      return;
    }
    if (this.#rekeyDue()) {
      this.#sendKexInit();
      this.#enqueue(packet.subarray(PAYLOAD_OFFSET, PAYLOAD_OFFSET + payloadLength));
      freePacket(packet);
      return;
    }
    this.#write(packet, payloadLength);
  }

  /**
   * Runs `flush` at the end of this tick, before the tick's packets leave in one write: a layer
   * that coalesces writes into packets sends its partial packet there, so nothing it holds
   * waits past the tick. `flush` should be long-lived (not a closure made per call).
   */
  flushAtTickEnd(flush: () => void): void {
    this.#tickFlush.push(flush);
    this.#corkTick();
  }

  /** Sends one payload (copied into a fresh packet). */
  send(payload: Uint8Array): void {
    const pkt = this.allocPacket(payload.length);
    pkt.set(payload, PAYLOAD_OFFSET);
    this.sendPacket(pkt, payload.length);
  }

  /** Starts a key re-exchange now (the client may also start one at any time). */
  rekey(): void {
    if (this.#firstKexDone && !this.#kexSent && this.#phase === 'idle' && !this.#closing) this.#sendKexInit();
  }

  /**
   * Sends DISCONNECT (RFC 4253 §11.1) and closes. `message` reaches the peer and the log:
   * it must not hold secrets.
   */
  disconnect(reason: number, message: string): void {
    if (this.#closing) return;
    this.#log.info('disconnect', { reason, message });
    const w = new SshWriter(64 + message.length);
    w.u8(MSG.DISCONNECT).u32(reason).string(message).string('');
    const payload = w.bytes();
    try {
      const pkt = this.allocPacket(payload.length);
      pkt.set(payload, PAYLOAD_OFFSET);
      this.#write(pkt, payload.length);
    } catch {
      // Keys may be unusable at this point; closing is what matters.
    }
    this.#closing = true;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 2000).unref();
    this.#finish(new DisconnectError(reason, message));
  }

  /** Closes without a DISCONNECT message (the socket is gone or unusable). */
  destroy(err?: Error): void {
    this.#closing = true;
    this.socket.destroy();
    this.#finish(err ?? null);
  }

  // ---------------------------------------------------------------- output

  #enqueue(payload: Uint8Array): void {
    this.#queue.push(Buffer.from(payload));
    this.#queueBytes += payload.length;
    if (this.#queueBytes > this.config.maxKexQueueBytes * KEX_QUEUE_HARD_FACTOR) {
      // A well-behaved upper layer stops at `writable === false`; this bounds one that did not.
      this.disconnect(DISCONNECT.BY_APPLICATION, 'output queue overflow during key exchange');
    }
  }

  /**
   * Finishes (length, padding length, padding), seals and writes a packet whose payload is in
   * place. The buffer may be larger than the packet (allocPacketUpTo); one too small was
   * allocated under keys that have since changed and is copied into a new one.
   */
  #write(packet: Buffer, payloadLength: number): void {
    const s = this.#seal;
    const pad = this.#padLength(payloadLength);
    const end = PAYLOAD_OFFSET + payloadLength + pad;
    const total = end + s.macLength;
    if (packet.length < total || (packet.length > total && total <= SMALL_PACKET_BYTES && s.sealTo === undefined)) {
      const again = Buffer.allocUnsafe(total);
      packet.copy(again, PAYLOAD_OFFSET, PAYLOAD_OFFSET, PAYLOAD_OFFSET + payloadLength);
      freePacket(packet);
      packet = again;
    }
    packet.writeUInt32BE(end - 4, 0);
    packet[4] = pad;
    fillPadding(packet, PAYLOAD_OFFSET + payloadLength, pad);
    const seq = this.#seqOut;
    this.#seqOut = (seq + 1) >>> 0;
    if (this.#seqOut === 0 && this.#strict && !this.#firstKexDone) {
      this.destroy(new DisconnectError(DISCONNECT.PROTOCOL_ERROR, 'outgoing sequence number wrapped during initial key exchange'));
      return;
    }
    this.#bytesOut += total;
    this.#pktsOut++;
    this.#corkTick();
    const socket = this.socket;
    if (s.sealTo !== undefined) {
      // Length, ciphertext and tag as three writes of the same writev; the plaintext buffer
      // is free again at once.
      s.sealTo(seq, packet, end, socket);
      freePacket(packet);
    } else {
      const wire = packet.length === total ? packet : packet.subarray(0, total);
      s.seal(seq, wire);
      socket.write(wire);
    }
    // The socket's 'drain' (#maybeDrain) comes only once it wanted one: its own mark was crossed too.
    if (socket.writableNeedDrain && socket.writableLength >= OUTPUT_HIGH_WATER) {
      this.#needDrain = true;
      if (!this.#outputBlocked && socket.writableLength > OUTPUT_PAUSE_BYTES) {
        this.#outputBlocked = true;
        socket.pause();
      }
    }
  }

  /**
   * Packets written in one tick leave in one writev at its end: one system call for a burst of
   * CHANNEL_DATA instead of one per 32 KiB packet.
   */
  #corkTick(): void {
    if (this.#corked) return;
    this.#corked = true;
    this.socket.cork();
    process.nextTick(this.#uncork);
  }

  /** RFC 4253 §6: at least 4 bytes of padding, aligning the packet to the current cipher's block. */
  #padLength(payloadLength: number): number {
    const s = this.#seal;
    const bs = s.blockSize;
    const covered = (s.lengthAligned ? 5 : 1) + payloadLength;
    const pad = bs - (covered % bs);
    return pad < 4 ? pad + bs : pad;
  }

  #maybeDrain(): void {
    if (this.socket.writableNeedDrain) return;
    this.#needDrain = false;
    if (this.#outputBlocked) {
      this.#outputBlocked = false;
      if (!this.#paused) this.socket.resume();
    }
    if (this.writable) this.emit('drain');
  }

  #flushQueue(): void {
    const q = this.#queue;
    this.#queue = [];
    this.#queueBytes = 0;
    for (const payload of q) {
      const pkt = this.allocPacket(payload.length);
      payload.copy(pkt, PAYLOAD_OFFSET);
      this.#write(pkt, payload.length);
    }
  }

  /** Whether a server-initiated re-exchange should start now (none is running). */
  #rekeyDue(): boolean {
    if (!this.#firstKexDone || this.#kexSent || this.#phase !== 'idle') return false;
    const limit = this.config.rekeyBytes;
    return (
      this.#bytesOut >= limit || this.#bytesIn >= limit || this.#pktsOut >= REKEY_PACKETS || this.#pktsIn >= REKEY_PACKETS
    );
  }

  // ---------------------------------------------------------------- input

  #onData(chunk: Buffer): void {
    this.#guard(() => {
      if (this.#closing) return;
      if (this.#ident) {
        const r = this.#ident.push(chunk);
        if (!r) return;
        this.#ident = null;
        this.clientIdent = r.ident;
        this.#log.debug('client identification', { ident: escapePeer(r.ident) });
        if (r.rest.length === 0) return;
        chunk = r.rest;
      }
      if (this.#paused) {
        this.#inRest = this.#inRest ? Buffer.concat([this.#inRest, chunk]) : chunk;
        return;
      }
      this.#process(chunk);
    });
  }

  /** Runs `fn`, turning any error into the right disconnect. */
  #guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#fail(err);
    }
  }

  #fail(err: unknown): void {
    if (err instanceof DisconnectError) {
      this.disconnect(err.reason, err.message);
    } else if (err instanceof MacError) {
      this.disconnect(DISCONNECT.MAC_ERROR, err.message);
    } else if (err instanceof MalformedError) {
      this.disconnect(DISCONNECT.PROTOCOL_ERROR, `malformed packet: ${err.message}`);
    } else if (err instanceof PeerDisconnectError) {
      this.destroy(err);
    } else {
      this.#log.error('internal error', { err: err instanceof Error ? err.stack : String(err) });
      this.disconnect(DISCONNECT.BY_APPLICATION, 'internal error');
    }
  }

  /**
   * Frames and handles every whole packet in `chunk`. When a chunk holds whole packets they
   * are decrypted in place in the chunk itself; only a packet split across chunks is copied,
   * into a buffer of exactly its size allocated after its length was checked.
   */
  #process(chunk: Buffer): void {
    let off = 0;
    const n = chunk.length;
    while (off < n && !this.#closing) {
      if (this.#paused) {
        this.#inRest = chunk.subarray(off);
        return;
      }
      if (this.#pkt !== null) {
        const pkt = this.#pkt;
        const take = Math.min(pkt.length - this.#pktFill, n - off);
        chunk.copy(pkt, this.#pktFill, off, off + take);
        this.#pktFill += take;
        off += take;
        if (this.#pktFill < pkt.length) return;
        this.#pkt = null;
        this.#handlePacket(pkt);
        continue;
      }
      const lb = this.#open.lengthBytes;
      if (this.#headFill > 0 || n - off < lb) {
        const head = (this.#head ??= Buffer.alloc(HEAD_BYTES));
        const take = Math.min(lb - this.#headFill, n - off);
        chunk.copy(head, this.#headFill, off, off + take);
        this.#headFill += take;
        off += take;
        if (this.#headFill < lb) return;
        const total = this.#packetTotal(head);
        this.#headFill = 0;
        this.#pkt = Buffer.allocUnsafe(total);
        head.copy(this.#pkt, 0, 0, lb);
        this.#pktFill = lb;
        continue;
      }
      const view = chunk.subarray(off);
      const total = this.#packetTotal(view);
      if (n - off >= total) {
        this.#handlePacket(chunk.subarray(off, off + total));
        off += total;
      } else {
        this.#pkt = Buffer.allocUnsafe(total);
        chunk.copy(this.#pkt, 0, off, n);
        this.#pktFill = n - off;
        off = n;
      }
    }
  }

  /** Reads and checks packet_length; returns the bytes the whole packet occupies on the wire. */
  #packetTotal(head: Buffer): number {
    const o = this.#open;
    const len = o.packetLength(this.#seqIn, head);
    // Checked before anything is allocated: a hostile length costs nothing.
    if (len > this.config.maxPacketLength) {
      throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, `packet length ${len} exceeds ${this.config.maxPacketLength}`);
    }
    if (len < 5 + 1) throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, `packet length ${len} too small`);
    const aligned = o.lengthAligned ? len + 4 : len;
    if (aligned % o.blockSize !== 0) {
      throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, `packet length ${len} not a multiple of the block size`);
    }
    return 4 + len + o.macLength;
  }

  #handlePacket(pkt: Buffer): void {
    const seq = this.#seqIn;
    // padding_length ‖ payload ‖ padding, verified and decrypted (in place, or a new buffer).
    const body = this.#open.open(seq, pkt);
    const len = body.length;
    const pad = body[0]!;
    // RFC 4253 §6: at least four bytes of padding, and a payload of at least the message number.
    if (pad < 4 || pad > len - 2) throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, `bad padding length ${pad}`);
    const payload = body.subarray(1, len - pad);
    this.#seqIn = (seq + 1) >>> 0;
    if (this.#seqIn === 0 && this.#strict && !this.#firstKexDone) {
      throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, 'incoming sequence number wrapped during initial key exchange');
    }
    this.#bytesIn += pkt.length;
    this.#pktsIn++;
    this.#dispatch(payload, seq);
    if (!this.#closing && this.#rekeyDue()) this.#sendKexInit();
  }

  #dispatch(payload: Buffer, seq: number): void {
    const type = payload[0]!;
    if (this.#log.debugEnabled) this.#log.debug('recv', { type, seq, len: payload.length });

    // Between the client's KEXINIT and its NEWKEYS only key-exchange messages may come
    // (RFC 4253 §7.1). During the initial exchange under strict KEX that excludes IGNORE,
    // DEBUG and UNIMPLEMENTED as well (OpenSSH PROTOCOL §1.10): a Terrapin attacker's
    // injected IGNORE ends the connection here.
    const inKex = this.#theirKexinit !== null || !this.#firstKexDone;
    if (inKex) {
      switch (type) {
        case MSG.KEXINIT:
          return this.#onKexInit(payload, seq);
        case MSG.KEX_ECDH_INIT:
          return this.#onKexDhInit(payload);
        case MSG.NEWKEYS:
          return this.#onNewKeys(payload);
        case MSG.DISCONNECT:
          return this.#onDisconnect(payload);
        case MSG.IGNORE:
        case MSG.DEBUG:
        case MSG.UNIMPLEMENTED:
          if (this.#strict && !this.#firstKexDone) {
            throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, `message ${type} not allowed during strict key exchange`);
          }
          return;
        default:
          throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, `message ${type} not allowed during key exchange`);
      }
    }

    // RFC 8308 §2.4: the client's EXT_INFO is accepted only as the very next packet after its
    // first NEWKEYS; we use nothing from it. Anywhere else it is a protocol violation (cf.
    // AsyncSSH CVE-2023-46445).
    const extInfoAllowed = this.#clientExtInfo;
    this.#clientExtInfo = false;
    switch (type) {
      case MSG.DISCONNECT:
        return this.#onDisconnect(payload);
      case MSG.IGNORE:
      case MSG.DEBUG:
        return;
      case MSG.UNIMPLEMENTED:
        this.#log.debug('peer sent UNIMPLEMENTED');
        return;
      case MSG.KEXINIT:
        return this.#onKexInit(payload, seq);
      case MSG.EXT_INFO:
        if (extInfoAllowed) return;
        throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, 'unexpected EXT_INFO');
      case MSG.PING: {
        // OpenSSH PROTOCOL §1.9: answer with the same data.
        const data = new SshReader(payload, 1).bytes(this.config.maxPacketLength);
        this.send(new SshWriter(data.length + 8).u8(MSG.PONG).string(data).bytes());
        return;
      }
      case MSG.PONG:
        return;
    }
    if (type === MSG.NEWKEYS || (type >= 30 && type <= 49)) {
      throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, `key exchange message ${type} outside a key exchange`);
    }
    const h = this.#handlerList[this.#route[type]!];
    if (h) return h(payload, seq);
    // RFC 4253 §11.4: an unrecognised message gets UNIMPLEMENTED with its sequence number.
    this.send(new SshWriter(16).u8(MSG.UNIMPLEMENTED).u32(seq).bytes());
  }

  #onDisconnect(payload: Buffer): void {
    const r = new SshReader(payload, 1);
    const reason = r.u32();
    const desc = escapePeer(r.bytes(4096));
    throw new PeerDisconnectError(reason, desc);
  }

  // ---------------------------------------------------------------- key exchange

  #serverKexInit(first: boolean): KexInit {
    const c = this.config;
    const algs = (list: readonly string[]) => [...list];
    return {
      cookie: randomBytes(16),
      // The markers go only in the first KEXINIT (RFC 8308 §2.1, OpenSSH PROTOCOL §1.10).
      kex: first ? [...c.kex, EXT_INFO_SERVER, KEX_STRICT_SERVER] : algs(c.kex),
      hostKey: algs(c.hostKeyAlgorithms),
      cipherC2S: algs(c.ciphers),
      cipherS2C: algs(c.ciphers),
      macC2S: algs(c.macs),
      macS2C: algs(c.macs),
      compC2S: ['none'],
      compS2C: ['none'],
      langC2S: [],
      langS2C: [],
      firstKexFollows: false,
    };
  }

  #sendKexInit(): void {
    const msg = this.#serverKexInit(!this.#firstKexDone);
    this.#ourKexinit = encodeKexInit(msg);
    this.#kexSent = true;
    if (this.#phase === 'idle') this.#phase = 'await-kexinit';
    this.#startKexTimer();
    const pkt = this.allocPacket(this.#ourKexinit.length);
    this.#ourKexinit.copy(pkt, PAYLOAD_OFFSET);
    this.#write(pkt, this.#ourKexinit.length);
  }

  #startKexTimer(): void {
    if (this.#kexTimer) return;
    this.#kexTimer = setTimeout(() => {
      this.disconnect(DISCONNECT.KEY_EXCHANGE_FAILED, 'key exchange timed out');
    }, this.config.kexTimeoutMs);
    this.#kexTimer.unref();
  }

  #onKexInit(payload: Buffer, seq: number): void {
    if (this.#theirKexinit !== null) {
      throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, 'KEXINIT received twice in one key exchange');
    }
    const m = decodeKexInit(payload);
    if (!this.#firstKexDone) {
      this.#strict = m.kex.includes(KEX_STRICT_CLIENT);
      if (this.#strict && seq !== 0) {
        throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, 'strict KEX violation: KEXINIT was not the first packet');
      }
      this.#clientExtInfo = false;
      this.#wantsExtInfo = m.kex.includes(EXT_INFO_CLIENT);
    }
    this.#theirKexinit = Buffer.from(payload);
    if (!this.#kexSent) this.#sendKexInit();
    this.#startKexTimer();

    const server = this.#serverKexInit(false);
    const isAead = (c: string) => CIPHERS[c]?.aead === true;
    const neg = negotiate(m, server, isAead);
    const factory = (this.config.kexMethods ?? KEX_METHODS)[neg.kex];
    if (!factory) throw new DisconnectError(DISCONNECT.KEY_EXCHANGE_FAILED, `unsupported kex ${neg.kex}`);
    this.#method = factory();
    this.negotiated = neg;
    // RFC 4253 §7: a wrong guess means the client's first key-exchange packet is ignored.
    this.#ignoreNextKexPacket = m.firstKexFollows && (m.kex[0] !== neg.kex || m.hostKey[0] !== neg.hostKey);
    this.#phase = 'await-init';
    if (this.#log.debugEnabled) this.#log.debug('negotiated', { ...neg, strict: this.#strict });
  }

  #wantsExtInfo = false;

  #onKexDhInit(payload: Buffer): void {
    if (this.#phase !== 'await-init') {
      throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, 'unexpected key exchange message');
    }
    if (this.#ignoreNextKexPacket) {
      this.#ignoreNextKexPacket = false;
      return;
    }
    const neg = this.negotiated!;
    const method = this.#method!;
    const ex = method.exchange(payload.subarray(1));
    const hostKey = this.config.hostKeys.find((k) => k.algorithms.includes(neg.hostKey));
    if (!hostKey) throw new DisconnectError(DISCONNECT.KEY_EXCHANGE_FAILED, 'no host key for ' + neg.hostKey);
    // The session ID lives as long as the connection: not in the shared Buffer pool (unpooled.ts).
    const H = unpooled(
      exchangeHash(method.hash, {
        clientIdent: this.clientIdent,
        serverIdent: this.serverIdent,
        clientKexinit: this.#theirKexinit!,
        serverKexinit: this.#ourKexinit!,
        hostKeyBlob: hostKey.publicBlob,
        clientField: ex.clientField,
        serverField: ex.serverField,
        sharedSecret: ex.sharedSecret,
      }),
    );
    const firstKex = this.sessionId === null;
    if (firstKex) this.sessionId = H;
    const sig = hostKey.sign(neg.hostKey, H);

    // RFC 5656 §4 / RFC 8731 §3: string K_S, Q_S (or mpint f), string signature of H.
    const reply = new SshWriter(hostKey.publicBlob.length + ex.serverField.length + sig.length + 32);
    reply.u8(MSG.KEX_ECDH_REPLY).string(hostKey.publicBlob).raw(ex.serverField).string(sig);
    this.send(reply.bytes());

    const sid = this.sessionId!;
    const K = ex.sharedSecret;
    const derive = (letter: 'A' | 'B' | 'C' | 'D' | 'E' | 'F', len: number) =>
      deriveKey(method.hash, K, H, letter, sid, len);
    const cC = CIPHERS[neg.cipherC2S]!;
    const cS = CIPHERS[neg.cipherS2C]!;
    const mC = neg.macC2S ? MACS[neg.macC2S]! : null;
    const mS = neg.macS2C ? MACS[neg.macS2C]! : null;
    this.#pendingOpen = createOpeningKey({
      cipher: neg.cipherC2S,
      mac: neg.macC2S,
      iv: derive('A', cC.ivLength),
      key: derive('C', cC.keyLength),
      macKey: mC ? derive('E', mC.keyLength) : new Uint8Array(0),
    });
    const seal = createSealingKey({
      cipher: neg.cipherS2C,
      mac: neg.macS2C,
      iv: derive('B', cS.ivLength),
      key: derive('D', cS.keyLength),
      macKey: mS ? derive('F', mS.keyLength) : new Uint8Array(0),
    });

    this.send(Buffer.of(MSG.NEWKEYS));
    this.#seal = seal;
    // Strict KEX: the sequence number restarts after every NEWKEYS sent (OpenSSH PROTOCOL §1.10).
    if (this.#strict) this.#seqOut = 0;
    this.#kexSent = false;
    this.#phase = 'await-newkeys';
    this.#bytesOut = 0;
    this.#pktsOut = 0;
    this.#flushQueue();
  }

  #sendExtInfo(): void {
    // RFC 8308 §2.4 and §3.1: the next packet after our first NEWKEYS. server-sig-algs lets
    // OpenSSH ≥ 8.8 clients choose rsa-sha2-* for RSA user keys.
    const w = new SshWriter(256);
    w.u8(MSG.EXT_INFO).u32(1).string('server-sig-algs').string(this.config.serverSigAlgs.join(','));
    this.send(w.bytes());
  }

  #onNewKeys(payload: Buffer): void {
    if (this.#phase !== 'await-newkeys' || payload.length !== 1) {
      throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, 'unexpected NEWKEYS');
    }
    this.#open = this.#pendingOpen!;
    this.#pendingOpen = null;
    // Strict KEX: the receive sequence number restarts after every NEWKEYS received.
    if (this.#strict) this.#seqIn = 0;
    this.#phase = 'idle';
    this.#theirKexinit = null;
    // Needed again only by the next exchange, which encodes a KEXINIT of its own.
    this.#ourKexinit = null;
    this.#method = null;
    this.#bytesIn = 0;
    this.#pktsIn = 0;
    if (this.#kexTimer) {
      clearTimeout(this.#kexTimer);
      this.#kexTimer = null;
    }
    this.#scheduleRekey();
    const first = !this.#firstKexDone;
    this.#firstKexDone = true;
    if (first) {
      // EXT_INFO goes out now, as OpenSSH's server does: still the first packet after our
      // NEWKEYS (nothing is sent before authentication), and the client's NEWKEYS gets an
      // immediate reply. Sent earlier, the client's next packet waited for a delayed ACK
      // (40 ms per login on Linux, with Nagle on in OpenSSH's client).
      if (this.#wantsExtInfo) this.#sendExtInfo();
      // We announced ext-info-s, so the client may send one EXT_INFO now (RFC 8308 §2.3).
      this.#clientExtInfo = true;
      this.emit('ready');
    } else {
      this.emit('rekeyed');
    }
    if (this.writable) this.emit('drain');
  }

  #scheduleRekey(): void {
    if (this.#rekeyTimer) clearTimeout(this.#rekeyTimer);
    this.#rekeyTimer = setTimeout(() => this.rekey(), this.config.rekeyIntervalMs);
    this.#rekeyTimer.unref();
  }

  #finish(err: Error | null): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing = true;
    if (this.#kexTimer) clearTimeout(this.#kexTimer);
    if (this.#rekeyTimer) clearTimeout(this.#rekeyTimer);
    this.#queue = [];
    this.#queueBytes = 0;
    this.emit('close', err);
  }
}
