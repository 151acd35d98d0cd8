import { SshReader } from '../wire/reader.js';
import { SshWriter } from '../wire/writer.js';
import { DISCONNECT, MSG, OPEN_FAILURE } from '../transport/constants.js';
import { DisconnectError } from '../transport/errors.js';
import type { Transport } from '../transport/transport.js';
import { escapePeer, type Logger } from '../log.js';
import { Channel, type ChannelLimits } from './channel.js';

/**
 * What a session may run. Each returns a starter for the channel, or undefined to refuse
 * the request (the client then gets CHANNEL_FAILURE). There is no shell, no pty and no
 * forwarding of any kind: those requests are always refused.
 */
export interface SessionHandlers {
  subsystem?(name: string): ((channel: Channel) => void) | undefined;
  exec?(command: string): ((channel: Channel) => void) | undefined;
  /** Called once when the connection is gone, after every channel was told. */
  close?(): void;
  /** Whether a transfer is running on one of the connection's sessions (a drain waits for it). */
  busy?(): boolean;
}

export interface ConnectionConfig extends ChannelLimits {
  /** Session channels open at once on one connection (OpenSSH MaxSessions 10). */
  maxChannels: number;
  handlers: SessionHandlers;
  log: Logger;
}

const MAX_REQUEST_NAME = 256;
const MAX_COMMAND_BYTES = 64 * 1024;
/** The messages of RFC 4254 this layer takes from the transport. */
const CONNECTION_MESSAGES = [
  MSG.GLOBAL_REQUEST,
  MSG.REQUEST_SUCCESS,
  MSG.REQUEST_FAILURE,
  MSG.CHANNEL_OPEN,
  MSG.CHANNEL_OPEN_CONFIRMATION,
  MSG.CHANNEL_OPEN_FAILURE,
  MSG.CHANNEL_WINDOW_ADJUST,
  MSG.CHANNEL_DATA,
  MSG.CHANNEL_EXTENDED_DATA,
  MSG.CHANNEL_EOF,
  MSG.CHANNEL_CLOSE,
  MSG.CHANNEL_REQUEST,
  MSG.CHANNEL_SUCCESS,
  MSG.CHANNEL_FAILURE,
] as const;

/**
 * The connection protocol (RFC 4254) after authentication: the channel table, channel
 * requests and global requests.
 */
export class Connection {
  readonly #t: Transport;
  readonly #c: ConnectionConfig;
  readonly #channels = new Map<number, Channel>();
  #nextId = 0;
  /**
   * performance.now() of the last message that shows the client using a session: anything but
   * global requests (keepalives) and their replies. The idle timeout reads it (src/server.ts).
   */
  lastActivity = performance.now();
  /** Shared by this connection's channels rather than made per channel. */
  readonly #onGone = (gone: Channel) => {
    if (this.#channels.get(gone.localId) === gone) this.#channels.delete(gone.localId);
  };
  readonly #onChannelError: (this: Channel, err: Error) => void;

  constructor(transport: Transport, config: ConnectionConfig) {
    this.#t = transport;
    this.#c = config;
    const log = config.log;
    // An EventEmitter calls a listener with the emitter as `this`: the channel.
    this.#onChannelError = function (err) {
      log.debug('channel error', { channel: this.localId, err: err.message });
    };
    // One handler for every message of this layer: a closure per message number cost each
    // session a dozen closures for the life of the connection.
    const dispatch = (p: Buffer) => this.#onMessage(p);
    for (const type of CONNECTION_MESSAGES) transport.setHandler(type, dispatch);
    transport.on('drain', () => {
      for (const ch of this.#channels.values()) if (transport.writable) ch.resumeWrite();
    });
    transport.on('close', () => {
      for (const ch of this.#channels.values()) ch.onConnectionGone();
      this.#channels.clear();
      config.handlers.close?.();
    });
  }

  #onMessage(p: Buffer): void {
    const type = p[0];
    if (type !== MSG.GLOBAL_REQUEST && type !== MSG.REQUEST_SUCCESS && type !== MSG.REQUEST_FAILURE) {
      this.lastActivity = performance.now();
    }
    switch (type) {
      case MSG.CHANNEL_DATA: {
        // RFC 4254 §5.2: uint32 recipient channel, string data. Parsed by hand: this is the
        // hot path, and the data stays a view of the packet.
        if (p.length < 9) throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, 'truncated CHANNEL_DATA');
        const ch = this.#channel(p.readUInt32BE(1));
        const len = p.readUInt32BE(5);
        if (len !== p.length - 9) throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, 'CHANNEL_DATA length mismatch');
        return ch.onData(p.subarray(9));
      }
      case MSG.CHANNEL_WINDOW_ADJUST: {
        const r = new SshReader(p, 1);
        const ch = this.#channel(r.u32());
        const n = r.u32();
        r.assertEnd('CHANNEL_WINDOW_ADJUST');
        return ch.onWindowAdjust(n);
      }
      case MSG.GLOBAL_REQUEST:
        return this.#onGlobalRequest(p);
      case MSG.REQUEST_SUCCESS:
      case MSG.REQUEST_FAILURE:
        // We never send global requests, so replies are unsolicited: dropped, never queued
        // (cf. Go CVE-2026-39830).
        return;
      case MSG.CHANNEL_OPEN:
        return this.#onOpen(p);
      case MSG.CHANNEL_EXTENDED_DATA: {
        const r = new SshReader(p, 1);
        const ch = this.#channel(r.u32());
        r.u32(); // data type code
        const data = r.bytes(Infinity, 'extended data');
        r.assertEnd('CHANNEL_EXTENDED_DATA');
        return ch.onExtendedData(data.length);
      }
      case MSG.CHANNEL_EOF: {
        const r = new SshReader(p, 1);
        const ch = this.#channel(r.u32());
        r.assertEnd('CHANNEL_EOF');
        return ch.onEof();
      }
      case MSG.CHANNEL_CLOSE: {
        const r = new SshReader(p, 1);
        const ch = this.#channel(r.u32());
        r.assertEnd('CHANNEL_CLOSE');
        return ch.onClose();
      }
      case MSG.CHANNEL_REQUEST:
        return this.#onChannelRequest(p);
      case MSG.CHANNEL_SUCCESS:
      case MSG.CHANNEL_FAILURE:
        // We send no channel requests that want a reply, so these are unsolicited: dropped.
        this.#channel(new SshReader(p, 1).u32());
        return;
      case MSG.CHANNEL_OPEN_CONFIRMATION:
        throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, 'unexpected CHANNEL_OPEN_CONFIRMATION');
      case MSG.CHANNEL_OPEN_FAILURE:
        throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, 'unexpected CHANNEL_OPEN_FAILURE');
    }
  }

  get channelCount(): number {
    return this.#channels.size;
  }

  #channel(id: number): Channel {
    const ch = this.#channels.get(id);
    if (!ch) throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, `no channel ${id}`);
    return ch;
  }

  #onGlobalRequest(p: Buffer): void {
    // RFC 4254 §4: string request name, boolean want reply, request-specific data.
    const r = new SshReader(p, 1);
    const name = r.ascii(MAX_REQUEST_NAME, 'request name');
    const wantReply = r.bool();
    // tcpip-forward and every other global request are refused. keepalive@openssh.com gets
    // the failure reply too, which OpenSSH counts as alive (clientloop.c).
    if (this.#c.log.debugEnabled) this.#c.log.debug('global request refused', { name: escapePeer(name) });
    if (wantReply) this.#t.send(Buffer.of(MSG.REQUEST_FAILURE));
  }

  #onOpen(p: Buffer): void {
    // RFC 4254 §5.1: string channel type, uint32 sender channel, uint32 initial window
    // size, uint32 maximum packet size, channel-specific data.
    const r = new SshReader(p, 1);
    const type = r.ascii(MAX_REQUEST_NAME, 'channel type');
    const sender = r.u32();
    const window = r.u32();
    const maxPacket = r.u32();
    const refuse = (reason: number, text: string) => {
      const w = new SshWriter(64 + text.length);
      w.u8(MSG.CHANNEL_OPEN_FAILURE).u32(sender).u32(reason).string(text).string('');
      this.#t.send(w.bytes());
    };
    if (type !== 'session') {
      // direct-tcpip, x11, forwarded-tcpip, auth-agent@openssh.com: no forwarding here.
      const known = ['direct-tcpip', 'forwarded-tcpip', 'x11', 'auth-agent@openssh.com', 'direct-streamlocal@openssh.com'];
      if (known.includes(type)) return refuse(OPEN_FAILURE.ADMINISTRATIVELY_PROHIBITED, 'forwarding is disabled');
      return refuse(OPEN_FAILURE.UNKNOWN_CHANNEL_TYPE, 'unknown channel type');
    }
    r.assertEnd('session CHANNEL_OPEN');
    if (this.#channels.size >= this.#c.maxChannels) {
      return refuse(OPEN_FAILURE.RESOURCE_SHORTAGE, 'too many channels');
    }
    if (maxPacket === 0) return refuse(OPEN_FAILURE.CONNECT_FAILED, 'maximum packet size of 0');
    let id = this.#nextId;
    while (this.#channels.has(id)) id = (id + 1) >>> 0;
    this.#nextId = (id + 1) >>> 0;
    const ch = new Channel(this.#t, id, sender, window, maxPacket, this.#c, this.#onGone);
    ch.on('error', this.#onChannelError);
    this.#channels.set(id, ch);
    const w = new SshWriter(32);
    w.u8(MSG.CHANNEL_OPEN_CONFIRMATION).u32(sender).u32(id).u32(this.#c.windowSize).u32(this.#c.maxPacket);
    this.#t.send(w.bytes());
  }

  #onChannelRequest(p: Buffer): void {
    // RFC 4254 §5.4: uint32 recipient channel, string request type, boolean want reply,
    // type-specific data.
    const r = new SshReader(p, 1);
    const ch = this.#channel(r.u32());
    const type = r.ascii(MAX_REQUEST_NAME, 'request type');
    const wantReply = r.bool();
    let start: ((c: Channel) => void) | undefined;
    if (!ch.started && type === 'subsystem') {
      const name = r.utf8(MAX_REQUEST_NAME, 'subsystem name');
      r.assertEnd('subsystem request');
      start = this.#c.handlers.subsystem?.(name);
      this.#c.log.info(start ? 'subsystem' : 'subsystem refused', { name: escapePeer(name) });
    } else if (!ch.started && type === 'exec') {
      const command = r.utf8(MAX_COMMAND_BYTES, 'command');
      r.assertEnd('exec request');
      start = this.#c.handlers.exec?.(command);
      this.#c.log.info(start ? 'exec' : 'exec refused', { command: escapePeer(command) });
    } else if (this.#c.log.debugEnabled) {
      // pty-req, shell, env, x11-req, auth-agent-req, window-change, signal, keepalive: refused.
      this.#c.log.debug('channel request refused', { type: escapePeer(type) });
    }
    if (wantReply) {
      const reply = start ? MSG.CHANNEL_SUCCESS : MSG.CHANNEL_FAILURE;
      this.#t.send(new SshWriter(16).u8(reply).u32(ch.remoteId).bytes());
    }
    if (start) {
      ch.started = true;
      start(ch);
    }
  }
}
