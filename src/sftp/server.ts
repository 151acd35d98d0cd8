import type { Duplex } from 'node:stream';
import type { Backend } from '../backend.js';
import { escapePeer, type Logger } from '../log.js';
import { LengthPrefixedFramer } from '../wire/framer.js';
import { MalformedError } from '../wire/errors.js';
import { decodeInit, decodeRequest, encodeStatus, encodeVersion, requestId, type Request } from './codec.js';
import {
  DEFAULT_MAX_PACKET,
  EXTENSIONS,
  FX,
  FXP,
  READ_WRITE_HEADROOM,
  SFTP_VERSION,
} from './constants.js';
import { toFxStatus } from './errors.js';
import type { SftpEvent } from './events.js';
import { HandleTable } from './handles.js';
import { Operations, READDIR_MAX_BYTES, type Reply } from './operations.js';
import { KeyedQueue } from './queue.js';

export type { SftpEvent } from './events.js';

export interface SftpServerOptions {
  log: Logger;
  /** Open file and directory handles per session (default 64). */
  maxHandles?: number;
  /** +1 / -1 as file handles (transfers) open and close; the drain waits for them. Must not throw. */
  onTransfers?: (delta: number) => void;
  /**
   * Largest SFTP message accepted, length prefix excluded (default 256 KiB, OpenSSH's
   * SFTP_MAX_MSG_LENGTH). Reads and writes are limited to 1 KiB less. At least 34000, the
   * minimum clients may assume (OpenSSH PROTOCOL §4.8).
   */
  maxPacket?: number;
  /** Requests accepted but not yet answered (default 128); above it we stop reading. */
  maxInFlight?: number;
  /**
   * Bytes those requests may hold or ask for (WRITE data, READ lengths; default 4 MiB); above it
   * we stop reading too, so a session's memory is bounded whatever its request sizes.
   */
  maxInFlightBytes?: number;
  /** Audit events: one per file operation, when its outcome is known. Must not throw. */
  onEvent?: (e: SftpEvent) => void;
}

/** A stream whose flow-control window reopens as work finishes, not as it is read (an SSH channel). */
interface CreditStream {
  creditOnRelease(): void;
  release(n: number): void;
}

export const DEFAULT_MAX_HANDLES = 64;
export const DEFAULT_MAX_IN_FLIGHT = 128;
export const DEFAULT_MAX_IN_FLIGHT_BYTES = 1024 * 1024;
/** OpenSSH PROTOCOL §4.8: servers SHOULD accept packets of at least 34000 bytes. */
export const MIN_MAX_PACKET = 34000;

/**
 * Serves SFTP version 3 on `stream` (a session channel, or stdin/stdout for `sftp -D`) until the
 * client ends it. Resolves once every handle is closed: an upload never CLOSEd is kept for resume
 * or aborted, as the backend decides (WriteHandle.commitPartial). Never rejects; problems are logged.
 */
export function serveSftp(stream: Duplex, backend: Backend, opts: SftpServerOptions): Promise<void> {
  return new SftpSession(stream, backend, opts).done;
}

/** A request that was still queued when the stream went away: it is dropped, not answered. */
const GONE = Symbol('session gone');

/**
 * One SFTP session: framing, INIT, dispatch in arrival order, flow control, and the end.
 *
 * Flow control. A request is "in flight" from dispatch until its reply has been taken by the
 * stream (the write callback). At most `maxInFlight` requests and `maxInFlightBytes` bytes
 * (WRITE data held, READ lengths asked) are in flight; beyond that, and while the stream wants
 * 'drain', framed requests wait unparsed in a backlog and the stream is paused, so the SSH
 * channel stops adjusting its window and the client stops sending. The backlog only ever holds
 * what arrived in chunks already read, so it is bounded by the stream's chunk size.
 *
 * Ordering. Requests are dispatched in arrival order; each names keys (its handle, or its
 * paths) and the KeyedQueue runs requests sharing a key one after another, others in
 * parallel. Replies go out as requests finish, so they may be out of order (draft-02 §6.1).
 */
class SftpSession {
  readonly done: Promise<void>;
  readonly #stream: Duplex;
  readonly #log: Logger;
  readonly #ops: Operations;
  readonly #queue = new KeyedQueue();
  readonly #framer: LengthPrefixedFramer;
  readonly #maxIO: number;
  readonly #maxInFlight: number;
  readonly #maxInFlightBytes: number;
  #resolve!: () => void;

  #initialised = false;
  /** Requests dispatched whose work has not settled (ordering, and the end of the session). */
  #running = 0;
  /** Requests dispatched whose reply the stream has not yet taken (flow control). */
  #inFlight = 0;
  #inFlightBytes = 0;
  #backlog: Buffer[] = [];
  #backlogHead = 0;
  #paused = false;
  #needDrain = false;
  /** The client ended its side: answer what was sent, then finish. */
  #readEnded = false;
  /** The stream is closed or broken (or we closed it): nothing more is read or written. */
  #gone = false;
  #finishing = false;
  #malformed = 0;
  /** Hands a finished request's bytes back to the channel's window (a no-op on other streams). */
  #release: (n: number) => void = () => {};

  constructor(stream: Duplex, backend: Backend, opts: SftpServerOptions) {
    this.done = new Promise((resolve) => (this.#resolve = resolve));
    const maxPacket = opts.maxPacket ?? DEFAULT_MAX_PACKET;
    if (!Number.isInteger(maxPacket) || maxPacket < MIN_MAX_PACKET) {
      throw new RangeError(`maxPacket must be an integer of at least ${MIN_MAX_PACKET}`);
    }
    const maxHandles = opts.maxHandles ?? DEFAULT_MAX_HANDLES;
    if (!Number.isInteger(maxHandles) || maxHandles < 1) throw new RangeError('maxHandles must be a positive integer');
    this.#stream = stream;
    this.#log = opts.log;
    this.#maxIO = maxPacket - READ_WRITE_HEADROOM;
    this.#maxInFlight = opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.#maxInFlightBytes = opts.maxInFlightBytes ?? DEFAULT_MAX_IN_FLIGHT_BYTES;
    const onEvent = opts.onEvent;
    this.#ops = new Operations({
      backend,
      handles: new HandleTable(maxHandles, opts.onTransfers),
      log: opts.log,
      maxIO: this.#maxIO,
      maxPacket,
      emit: (e) => {
        if (onEvent === undefined) return;
        try {
          onEvent(e);
        } catch (err) {
          this.#log.error('sftp: event listener threw', { error: err instanceof Error ? err.message : String(err) });
        }
      },
    });
    // The length cap is checked by the framer before anything is allocated.
    this.#framer = new LengthPrefixedFramer(maxPacket, (body) => this.#onMessage(body));

    // An SSH channel reopens its window as requests finish, not as they are read: the client's
    // data waiting here for S3 (WRITEs queued behind an upload at its budget) stays within one
    // window (src/channels/channel.ts creditOnRelease).
    const credit = stream as Partial<CreditStream>;
    if (typeof credit.creditOnRelease === 'function' && typeof credit.release === 'function') {
      credit.creditOnRelease.call(stream);
      this.#release = (n) => credit.release!.call(stream, n);
    }
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    stream.on('end', () => {
      this.#readEnded = true;
      this.#maybeFinish();
    });
    stream.on('drain', () => {
      this.#needDrain = false;
      this.#pump();
    });
    stream.on('error', (err) => {
      this.#log.debug('sftp: stream error', { error: err.message });
      this.#goneNow();
    });
    stream.on('close', () => this.#goneNow());
  }

  // ------------------------------------------------------------------------ input

  #onData(chunk: Buffer): void {
    if (this.#gone) return;
    try {
      this.#framer.push(chunk);
    } catch (err) {
      // Only the length cap throws here: there is no id to answer, so the stream ends.
      this.#fatal(err instanceof Error ? err.message : String(err));
    }
  }

  #onMessage(body: Buffer): void {
    if (this.#gone) return;
    if (!this.#initialised) return this.#init(body);
    if (this.#backlogHead < this.#backlog.length || !this.#canDispatch()) {
      this.#backlog.push(body);
      this.#pause();
      return;
    }
    this.#dispatch(body);
  }

  #canDispatch(): boolean {
    return !this.#needDrain && this.#inFlight < this.#maxInFlight && this.#inFlightBytes < this.#maxInFlightBytes;
  }

  #pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#stream.pause();
  }

  /** Dispatches what waits in the backlog as far as the limits allow; resumes reading when empty. */
  #pump(): void {
    while (this.#backlogHead < this.#backlog.length && this.#canDispatch() && !this.#gone) {
      const body = this.#backlog[this.#backlogHead]!;
      this.#backlog[this.#backlogHead++] = undefined as unknown as Buffer;
      this.#dispatch(body);
    }
    if (this.#backlogHead >= this.#backlog.length) {
      if (this.#backlog.length > 0) {
        this.#backlog = [];
        this.#backlogHead = 0;
      }
      if (this.#paused && this.#canDispatch() && !this.#gone) {
        this.#paused = false;
        this.#stream.resume();
      }
    }
    this.#maybeFinish();
  }

  /** INIT (draft-02 §4): the first message, once. Anything else first ends the session. */
  #init(body: Buffer): void {
    if (body[0] !== FXP.INIT) return this.#fatal(`packet type ${body[0] ?? 'none'} before INIT`);
    let version: number;
    try {
      version = decodeInit(body).version;
    } catch (err) {
      return this.#fatal(`malformed INIT: ${(err as Error).message}`);
    }
    if (version < SFTP_VERSION) return this.#fatal(`the client speaks SFTP version ${version}; this server speaks 3`);
    this.#initialised = true;
    this.#log.debug('sftp: session started', { clientVersion: version });
    this.#release(4 + body.length);
    this.#send(encodeVersion(SFTP_VERSION, EXTENSIONS), null);
  }

  #dispatch(body: Buffer): void {
    if (body[0] === FXP.INIT) return this.#fatal('a second INIT');
    const id = requestId(body);
    if (id === null) return this.#fatal(`a request of ${body.length} bytes, too short to carry an id`);
    let weight = body.length;
    let work: Promise<Reply>;
    try {
      const req = decodeRequest(body);
      if (req.op === 'read') weight = Math.min(req.length, this.#maxIO) + 13;
      else if (req.op === 'readdir') weight = READDIR_MAX_BYTES;
      if (this.#log.debugEnabled) this.#log.debug('sftp: request', describeRequest(req));
      const p = this.#ops.prepare(req);
      // A request whose turn comes after the connection was lost is dropped, not run: in
      // particular a queued CLOSE does not commit an upload the client can no longer confirm.
      work = this.#queue.run(p.keys, () => (this.#gone || this.#stream.destroyed ? Promise.reject(GONE) : p.run()));
    } catch (err) {
      if (err instanceof MalformedError) {
        // Once at warn per session, then at debug: a client cannot flood the log this way.
        const fields = { id, type: body[0], error: err.message };
        if (this.#malformed++ === 0) this.#log.warn('sftp: malformed request; more are logged at debug', fields);
        else this.#log.debug('sftp: malformed request', fields);
      }
      work = Promise.reject(err);
    }
    this.#running++;
    this.#inFlight++;
    this.#inFlightBytes += weight;
    work.then(
      (reply) => this.#settled(reply, weight, 4 + body.length),
      (err) => this.#settled(err === GONE ? null : this.#statusFor(id, err), weight, 4 + body.length),
    );
  }

  #statusFor(id: number, err: unknown): Buffer {
    const { status, message } = toFxStatus(err, this.#log);
    if (status !== FX.BAD_MESSAGE && this.#log.debugEnabled) {
      this.#log.debug('sftp: request failed', { id, status, message: escapePeer(message) });
    }
    return encodeStatus(id, status, message);
  }

  #settled(reply: Reply | null, weight: number, bytes: number): void {
    this.#running--;
    if (!this.#gone) this.#release(bytes);
    const release = () => {
      this.#inFlight--;
      this.#inFlightBytes -= weight;
      this.#pump();
    };
    if (reply === null) release();
    else this.#send(reply, release);
    this.#maybeFinish();
  }

  // ------------------------------------------------------------------------ output

  /** Writes a reply; `taken` runs once the stream has consumed it (or cannot anymore). */
  #send(reply: Reply, taken: (() => void) | null): void {
    const s = this.#stream;
    if (this.#gone || !s.writable) {
      taken?.();
      return;
    }
    const cb = taken === null ? undefined : () => taken();
    let more: boolean;
    if (Buffer.isBuffer(reply)) more = s.write(reply, cb);
    else {
      // Header and payload pieces as separate writes: the channel packs them into its packets.
      const { header, payload } = reply;
      const last = payload.length - 1;
      more = s.write(header, last < 0 ? cb : undefined);
      for (let i = 0; i <= last; i++) more = s.write(payload[i]!, i === last ? cb : undefined);
    }
    if (!more) this.#needDrain = true;
  }

  // ------------------------------------------------------------------------ the end

  /** A protocol violation with no request to answer: the stream is closed. */
  #fatal(reason: string): void {
    if (this.#gone) return;
    this.#log.warn('sftp: closing the session', { reason: escapePeer(reason) });
    this.#goneNow();
    this.#stream.destroy();
  }

  #goneNow(): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#backlog = [];
    this.#backlogHead = 0;
    this.#maybeFinish();
  }

  #maybeFinish(): void {
    if (this.#finishing || this.#running > 0) return;
    const drained = this.#readEnded && this.#backlogHead >= this.#backlog.length;
    if (!this.#gone && !drained) return;
    this.#finishing = true;
    // Files.closeAll adds what became of each upload (kept for resume, or nothing stored).
    const reason = this.#gone
      ? 'the connection closed before the file was closed'
      : 'the session ended before the file was closed';
    void this.#ops.closeAll(reason).then(() => this.#end());
  }

  #end(): void {
    const s = this.#stream;
    if (this.#gone || s.destroyed || s.writableEnded) return this.#resolve();
    const finish = () => this.#resolve();
    s.once('finish', finish);
    s.once('close', finish);
    s.end();
  }
}

/** A request for the debug log: peer strings escaped, no file data. */
function describeRequest(req: Request): Record<string, unknown> {
  const out: Record<string, unknown> = { op: req.op, id: req.id };
  for (const [k, v] of Object.entries(req)) {
    if (k === 'op' || k === 'id' || k === 'data' || k === 'attrs') continue;
    if (typeof v === 'string') out[k] = escapePeer(v);
    else if (typeof v === 'number') out[k] = v;
    else if (v instanceof Uint8Array) out[k] = Buffer.from(v).toString('hex');
  }
  if (req.op === 'write') out.length = req.data.length;
  return out;
}
