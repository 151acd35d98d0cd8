import { Duplex } from 'node:stream';
import { SshWriter } from '../wire/writer.js';
import { DISCONNECT, MSG } from '../transport/constants.js';
import { DisconnectError } from '../transport/errors.js';
import { PAYLOAD_OFFSET, type Transport } from '../transport/transport.js';

/** Largest uint32: RFC 4254 §5.2 caps a window at 2^32 − 1. */
const MAX_WINDOW = 0xffff_ffff;
/** CHANNEL_DATA header: byte type, uint32 recipient, uint32 data length. */
const DATA_HEADER = 9;

export interface ChannelLimits {
  /** Our receive window: how much the peer may send before we adjust. */
  windowSize: number;
  /** Our maximum packet (data bytes per CHANNEL_DATA the peer may send). */
  maxPacket: number;
}

/**
 * One session channel (RFC 4254 §5) as a Duplex stream: what the client sends is read from
 * it, what is written goes to the client.
 *
 * Backpressure, both ways:
 * - Inbound, the window reopens (WINDOW_ADJUST) only while the readable side is below its
 *   high-water mark, i.e. as fast as the consumer takes data. A slow consumer stops the
 *   adjustments and the client stops sending: what we hold is bounded by the window plus
 *   the high-water mark.
 * - Outbound, a write completes only when the peer's window had room and the transport could
 *   take the packet; otherwise it waits for WINDOW_ADJUST or the transport's 'drain'.
 *
 * Coalescing. What is written in one tick fills CHANNEL_DATA packets up to
 * min(peer's maximum packet, window), each allocated for that largest payload and filled in
 * place; a packet is sent when full, and a partial one at the end of the tick, when the
 * transport writes the tick's packets (flushAtTickEnd): never later. An SFTP DATA reply, a
 * 13-byte header and 32 KiB of data written separately, so takes about one packet instead of
 * two. Anything else this channel sends (EXTENDED_DATA, exit-status, EOF, CLOSE) sends the
 * partial packet first, so it stays behind the data.
 */
export class Channel extends Duplex {
  readonly localId: number;
  readonly remoteId: number;
  readonly #t: Transport;
  readonly #limits: ChannelLimits;
  #localWindow: number;
  #remoteWindow: number;
  readonly #remoteMaxPacket: number;
  #parked: { chunk: Buffer; off: number; cb: (err?: Error | null) => void } | null = null;
  #creditOnRelease = false;
  /** Bytes received and not yet released (creditOnRelease only). */
  #held = 0;
  /** The CHANNEL_DATA being filled (payload from PAYLOAD_OFFSET + DATA_HEADER), or null. */
  #out: Buffer | null = null;
  /** Data bytes in #out; the most it takes (its share of the window is taken as it fills). */
  #outFill = 0;
  #outCap = 0;
  #flushScheduled = false;
  readonly #flushTick = (): void => {
    this.#flushScheduled = false;
    this.#flushOut();
  };
  #stderrQueue: Buffer[] = [];
  #eofReceived = false;
  #eofSent = false;
  #closeSent = false;
  #closeReceived = false;
  #exitCode: number | null = null;
  /** Set once a subsystem or exec was started: one per channel (RFC 4254 §6.5). */
  started = false;
  readonly #onGone: (ch: Channel) => void;

  constructor(
    transport: Transport,
    localId: number,
    remoteId: number,
    remoteWindow: number,
    remoteMaxPacket: number,
    limits: ChannelLimits,
    onGone: (ch: Channel) => void,
  ) {
    // autoDestroy off: a handler that ends its output must still be able to send exit-status
    // before CLOSE (exit()); the channel is destroyed when the CLOSEs are exchanged.
    super({
      allowHalfOpen: true,
      autoDestroy: false,
      readableHighWaterMark: 256 * 1024,
      writableHighWaterMark: 64 * 1024,
    });
    this.#t = transport;
    this.localId = localId;
    this.remoteId = remoteId;
    this.#remoteWindow = remoteWindow;
    // Never send more per packet than our own transport is willing to carry either.
    this.#remoteMaxPacket = Math.max(1, Math.min(remoteMaxPacket, transport.config.maxPacketLength - 1024));
    this.#limits = limits;
    this.#localWindow = limits.windowSize;
    this.#onGone = onGone;
  }

  // ------------------------------------------------------------ from the connection

  /** CHANNEL_DATA for us. `data` is a view valid as long as the packet buffer lives. */
  onData(data: Buffer): void {
    this.#consumeWindow(data.length);
    if (this.#eofReceived) throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, 'channel data after EOF');
    if (this.destroyed) return;
    if (this.#creditOnRelease) this.#held += data.length;
    if (this.push(data)) this.#maybeAdjust();
  }

  /**
   * From now on the window reopens only for bytes the reader hands back with `release`, not
   * for bytes it has read: a reader that queues what it read (the SFTP server's requests
   * waiting for S3) then holds at most one window of the peer's data, and the peer is held
   * back as long as the work behind it is.
   */
  creditOnRelease(): void {
    this.#creditOnRelease = true;
  }

  /** `n` bytes read earlier are done with (see creditOnRelease). */
  release(n: number): void {
    if (!this.#creditOnRelease) return;
    this.#held -= n;
    if (this.#held < 0) throw new RangeError('released more channel bytes than were received');
    this.#maybeAdjust(true);
  }

  /** CHANNEL_EXTENDED_DATA: counted against the window, then dropped (no session reads it). */
  onExtendedData(length: number): void {
    this.#consumeWindow(length);
    this.#maybeAdjust();
  }

  #consumeWindow(n: number): void {
    if (n > this.#localWindow) {
      throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, `channel ${this.localId}: data exceeds the window`);
    }
    if (n > this.#limits.maxPacket) {
      throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, `channel ${this.localId}: data exceeds the maximum packet size`);
    }
    this.#localWindow -= n;
  }

  onWindowAdjust(n: number): void {
    if (this.#remoteWindow + n > MAX_WINDOW) {
      throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, `channel ${this.localId}: window adjusted past 2^32 - 1`);
    }
    this.#remoteWindow += n;
    this.#flushStderr();
    this.resumeWrite();
  }

  onEof(): void {
    if (this.#eofReceived) return;
    this.#eofReceived = true;
    this.push(null);
  }

  onClose(): void {
    this.#closeReceived = true;
    if (!this.#eofReceived) {
      this.#eofReceived = true;
      this.push(null);
    }
    this.#sendClose();
    if (!this.destroyed) this.destroy();
  }

  /** The connection ended under us. */
  onConnectionGone(): void {
    this.#out = null;
    this.#closeReceived = true;
    this.#closeSent = true;
    if (!this.destroyed) this.destroy(new Error('connection closed'));
  }

  // ------------------------------------------------------------ readable side

  override _read(): void {
    // Node asked for more: grant without looking at readableLength, which still counts the
    // chunk being read right now. Checking it here could refuse the only adjustment that
    // would ever come, and with the window closed no push would call _read again.
    this.#maybeAdjust(true);
  }

  #maybeAdjust(requested = false): void {
    if (this.#closeSent || this.#eofReceived) return;
    // With creditOnRelease, bytes still held by the reader count as not yet granted back.
    const grant = this.#limits.windowSize - this.#localWindow - this.#held;
    // Batch adjustments: one per half window, as OpenSSH does.
    if (grant < this.#limits.windowSize / 2) return;
    if (!requested && this.readableLength >= this.readableHighWaterMark) return;
    this.#localWindow += grant;
    const pkt = this.#t.allocPacket(9);
    pkt[PAYLOAD_OFFSET] = MSG.CHANNEL_WINDOW_ADJUST;
    pkt.writeUInt32BE(this.remoteId, PAYLOAD_OFFSET + 1);
    pkt.writeUInt32BE(grant, PAYLOAD_OFFSET + 5);
    this.#t.sendPacket(pkt, 9);
  }

  // ------------------------------------------------------------ writable side

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#send(chunk, 0, cb);
  }

  /** Continues a write that waited for window or for the transport. */
  resumeWrite(): void {
    const p = this.#parked;
    if (p === null) return;
    this.#parked = null;
    this.#send(p.chunk, p.off, p.cb);
  }

  get waitingForTransport(): boolean {
    return this.#parked !== null && this.#remoteWindow > 0;
  }

  #send(chunk: Buffer, off: number, cb: (err?: Error | null) => void): void {
    const t = this.#t;
    while (off < chunk.length) {
      if (this.#closeSent || this.#closeReceived || t.closed) return cb(new Error('channel closed'));
      if (this.#out === null && !this.#startOut()) {
        this.#parked = { chunk, off, cb };
        return;
      }
      const n = Math.min(chunk.length - off, this.#outCap - this.#outFill);
      chunk.copy(this.#out!, PAYLOAD_OFFSET + DATA_HEADER + this.#outFill, off, off + n);
      this.#outFill += n;
      this.#remoteWindow -= n;
      off += n;
      if (this.#outFill === this.#outCap) this.#flushOut();
    }
    if (!t.writable) {
      // Hold the callback until the socket drains, so the writer feels the pushback.
      this.#parked = { chunk, off, cb };
      return;
    }
    cb();
  }

  /**
   * Starts a CHANNEL_DATA packet for the writes of this tick, as large as the window and the
   * peer's maximum packet allow; false when either is closed or the transport wants 'drain'.
   */
  #startOut(): boolean {
    const t = this.#t;
    const cap = Math.min(this.#remoteWindow, this.#remoteMaxPacket);
    if (cap === 0 || !t.writable) return false;
    this.#out = t.allocPacketUpTo(DATA_HEADER + cap);
    this.#outCap = cap;
    this.#outFill = 0;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      t.flushAtTickEnd(this.#flushTick);
    }
    return true;
  }

  /** Sends the packet being filled, if any. */
  #flushOut(): void {
    const pkt = this.#out;
    if (pkt === null) return;
    this.#out = null;
    const n = this.#outFill;
    if (n === 0) return;
    pkt[PAYLOAD_OFFSET] = MSG.CHANNEL_DATA;
    pkt.writeUInt32BE(this.remoteId, PAYLOAD_OFFSET + 1);
    pkt.writeUInt32BE(n, PAYLOAD_OFFSET + 5);
    this.#t.sendPacket(pkt, DATA_HEADER + n);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#sendEof();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const p = this.#parked;
    this.#parked = null;
    if (p) p.cb(err ?? new Error('channel closed'));
    this.#sendClose();
    cb(err);
  }

  // ------------------------------------------------------------ session helpers

  /** Writes to the client's stderr (CHANNEL_EXTENDED_DATA type 1), within the window. */
  writeStderr(data: string | Buffer): void {
    this.#stderrQueue.push(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    this.#flushStderr();
  }

  #flushStderr(): void {
    // Behind the data written before it, and out of the window that data took.
    if (this.#stderrQueue.length > 0) this.#flushOut();
    while (this.#stderrQueue.length > 0 && !this.#closeSent && !this.#t.closed) {
      const head = this.#stderrQueue[0]!;
      const n = Math.min(head.length, this.#remoteWindow, this.#remoteMaxPacket);
      if (n === 0) return;
      const w = new SshWriter(n + 16);
      w.u8(MSG.CHANNEL_EXTENDED_DATA).u32(this.remoteId).u32(1).string(head.subarray(0, n));
      this.#t.send(w.bytes());
      this.#remoteWindow -= n;
      if (n === head.length) this.#stderrQueue.shift();
      else this.#stderrQueue[0] = head.subarray(n);
    }
  }

  /**
   * Ends the session: flushes what was written, then sends exit-status (RFC 4254 §6.10),
   * EOF and CLOSE.
   */
  exit(code: number): void {
    if (this.#exitCode !== null) return;
    this.#exitCode = code;
    const finish = () => {
      if (this.#closeSent || this.#t.closed) return;
      this.#flushStderr();
      this.#flushOut();
      const w = new SshWriter(48);
      w.u8(MSG.CHANNEL_REQUEST).u32(this.remoteId).string('exit-status').bool(false).u32(code >>> 0);
      this.#t.send(w.bytes());
      this.#sendEof();
      this.#sendClose();
    };
    if (this.writableFinished) finish();
    else {
      this.once('finish', finish);
      this.end();
    }
  }

  #sendEof(): void {
    if (this.#eofSent || this.#closeSent || this.#t.closed) return;
    this.#flushOut();
    this.#eofSent = true;
    this.#t.send(new SshWriter(16).u8(MSG.CHANNEL_EOF).u32(this.remoteId).bytes());
  }

  #sendClose(): void {
    if (!this.#closeSent) {
      if (!this.#t.closed) this.#flushOut();
      this.#closeSent = true;
      if (!this.#t.closed) this.#t.send(new SshWriter(16).u8(MSG.CHANNEL_CLOSE).u32(this.remoteId).bytes());
    }
    // The channel number is free once both sides sent CLOSE (RFC 4254 §5.3).
    if (this.#closeReceived) this.#onGone(this);
  }
}
