import net from 'node:net';
import { Transport, type TransportConfig } from './transport/transport.js';
import { Userauth, type UserauthConfig } from './auth/userauth.js';
import type { Authenticator, AuthMethod } from './auth/authenticator.js';
import type { LoginFailure } from './auth/userauth.js';
import { Connection, type SessionHandlers } from './channels/connection.js';
import type { HostKey } from './transport/host-key-types.js';
import {
  DEFAULT_CIPHERS,
  DEFAULT_KEX,
  DEFAULT_MACS,
  SHA1_MACS,
  hostKeyAlgorithmsFor,
  userKeyAlgorithms,
} from './transport/algorithms.js';
import { escapePeer, silentLogger, type Logger } from './log.js';
import { DISCONNECT } from './transport/constants.js';
import type { Admission } from './ops/limits.js';

/** Who is on the other end of a connection: the TCP peer, or what a PROXY header said. */
export interface ClientAddress {
  address: string;
  port: number;
}

/** Everything about the SSH side of the gateway, with the defaults of `sshDefaults`. */
export interface SshServerOptions<P> {
  hostKeys: readonly HostKey[];
  authenticator: Authenticator<P>;
  /** Each counted failed login attempt (audit log, lockout). */
  onLoginFailure?: (failure: LoginFailure) => void;
  /** Called once per authenticated connection: what its sessions may run. */
  sessions: (principal: P, info: SessionInfo) => SessionHandlers;
  log?: Logger;
  kex?: readonly string[];
  ciphers?: readonly string[];
  macs?: readonly string[];
  /** ssh-rsa (SHA-1) host and user key signatures, for old JSch and SSH.NET. Off by default. */
  allowSshRsaSha1?: boolean;
  /** hmac-sha1 MACs. Off by default. */
  allowSha1Mac?: boolean;
  softwareVersion?: string;
  maxPacketLength?: number;
  kexTimeoutMs?: number;
  rekeyBytes?: number;
  rekeyIntervalMs?: number;
  maxKexQueueBytes?: number;
  maxAuthAttempts?: number;
  loginGraceMs?: number;
  maxPasswordBytes?: number;
  failDelayMs?: number;
  maxChannels?: number;
  windowSize?: number;
  maxChannelPacket?: number;
  /** Connection limits and lockouts, asked at accept (src/ops/limits.ts). Absent: none. */
  admission?: Admission;
  /** A connection refused at accept, with the reason it was given. */
  onRefused?: (client: ClientAddress, reason: string) => void;
  /**
   * The client's address, read before anything is sent (PROXY protocol); null closes the
   * connection. Default: the socket's peer.
   */
  resolveClient?: (socket: net.Socket) => Promise<ClientAddress | null>;
  /** A logged-in connection with no session traffic this long is closed; 0 or absent: never. */
  idleTimeoutMs?: number;
  /** A connection was admitted (true) or is gone (false): the metrics' open-connection gauge. */
  onConnection?: (open: boolean) => void;
  /** Test hook: key-exchange implementations (see TransportConfig.kexMethods). */
  kexMethods?: TransportConfig['kexMethods'];
}

export interface SessionInfo {
  username: string;
  method: AuthMethod;
  remoteAddress: string;
  remotePort: number;
  clientVersion: string;
}

export const sshDefaults = {
  softwareVersion: 's3gw_0.1',
  maxPacketLength: 256 * 1024,
  kexTimeoutMs: 30_000,
  rekeyBytes: 1024 ** 3,
  rekeyIntervalMs: 3600_000,
  maxKexQueueBytes: 1024 * 1024,
  maxAuthAttempts: 6,
  loginGraceMs: 60_000,
  maxPasswordBytes: 1024,
  failDelayMs: 5,
  maxChannels: 10,
  windowSize: 2 * 1024 * 1024,
  maxChannelPacket: 32 * 1024,
} as const;

/** What a connection's layers are configured with, but the logger: the same for every connection. */
interface ServerPlan<P> {
  opts: SshServerOptions<P>;
  log: Logger;
  transport: Omit<TransportConfig, 'log'>;
  userauth: Omit<UserauthConfig<P>, 'log'>;
  channels: { maxChannels: number; windowSize: number; maxPacket: number };
}

/** Resolves the options once per server, so connections share the algorithm lists and limits. */
function plan<P>(opts: SshServerOptions<P>): ServerPlan<P> {
  const d = sshDefaults;
  const allowSshRsa = opts.allowSshRsaSha1 ?? false;
  const sigAlgs = userKeyAlgorithms(allowSshRsa);
  return {
    opts,
    log: opts.log ?? silentLogger,
    transport: {
      hostKeys: opts.hostKeys,
      kex: opts.kex ?? DEFAULT_KEX,
      hostKeyAlgorithms: hostKeyAlgorithmsFor(opts.hostKeys, allowSshRsa),
      ciphers: opts.ciphers ?? DEFAULT_CIPHERS,
      macs: opts.macs ?? (opts.allowSha1Mac ? [...DEFAULT_MACS, ...SHA1_MACS] : DEFAULT_MACS),
      serverSigAlgs: sigAlgs,
      softwareVersion: opts.softwareVersion ?? d.softwareVersion,
      maxPacketLength: opts.maxPacketLength ?? d.maxPacketLength,
      kexTimeoutMs: opts.kexTimeoutMs ?? d.kexTimeoutMs,
      rekeyBytes: opts.rekeyBytes ?? d.rekeyBytes,
      rekeyIntervalMs: opts.rekeyIntervalMs ?? d.rekeyIntervalMs,
      maxKexQueueBytes: opts.maxKexQueueBytes ?? d.maxKexQueueBytes,
      kexMethods: opts.kexMethods,
    },
    userauth: {
      authenticator: opts.authenticator,
      maxAttempts: opts.maxAuthAttempts ?? d.maxAuthAttempts,
      loginGraceMs: opts.loginGraceMs ?? d.loginGraceMs,
      maxPasswordBytes: opts.maxPasswordBytes ?? d.maxPasswordBytes,
      failDelayMs: opts.failDelayMs ?? d.failDelayMs,
      publicKeyAlgorithms: sigAlgs,
      onFailure:
        opts.admission || opts.onLoginFailure
          ? (f) => {
              if (f.credential) opts.admission?.authFailed(f.remoteAddress);
              opts.onLoginFailure?.(f);
            }
          : undefined,
    },
    channels: {
      maxChannels: opts.maxChannels ?? d.maxChannels,
      windowSize: opts.windowSize ?? d.windowSize,
      maxPacket: opts.maxChannelPacket ?? d.maxChannelPacket,
    },
  };
}

/**
 * Serves one accepted socket: transport, then user authentication, then the connection
 * protocol once a user is in. Returns the transport (its 'close' event ends the story).
 */
export function serveConnection<P>(socket: net.Socket, opts: SshServerOptions<P>): Transport {
  return serve(socket, plan(opts), peerOf(socket));
}

function peerOf(socket: net.Socket): ClientAddress {
  return { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
}

/*
 * The per-connection configs below are written out field by field. `{ ...shared, log }` gave
 * every copy a hidden class of its own in V8, about 400 bytes more per connection.
 */

function transportConfig(t: ServerPlan<unknown>['transport'], log: Logger): TransportConfig {
  return {
    hostKeys: t.hostKeys,
    kex: t.kex,
    hostKeyAlgorithms: t.hostKeyAlgorithms,
    ciphers: t.ciphers,
    macs: t.macs,
    serverSigAlgs: t.serverSigAlgs,
    softwareVersion: t.softwareVersion,
    maxPacketLength: t.maxPacketLength,
    kexTimeoutMs: t.kexTimeoutMs,
    rekeyBytes: t.rekeyBytes,
    rekeyIntervalMs: t.rekeyIntervalMs,
    maxKexQueueBytes: t.maxKexQueueBytes,
    log,
    kexMethods: t.kexMethods,
  };
}

function userauthConfig<P>(u: ServerPlan<P>['userauth'], log: Logger): UserauthConfig<P> {
  return {
    authenticator: u.authenticator,
    maxAttempts: u.maxAttempts,
    loginGraceMs: u.loginGraceMs,
    maxPasswordBytes: u.maxPasswordBytes,
    failDelayMs: u.failDelayMs,
    publicKeyAlgorithms: u.publicKeyAlgorithms,
    log,
    onFailure: u.onFailure,
  };
}

/** A connection the server holds: its transport, and its handlers once a user is in. */
interface Live {
  transport: Transport;
  handlers: SessionHandlers | undefined;
}

function serve<P>(
  socket: net.Socket,
  p: ServerPlan<P>,
  client: ClientAddress,
  admitted?: number,
  idle?: Set<{ connection: Connection; transport: Transport }>,
  live?: Set<Live>,
): Transport {
  const log = p.log.child({ remote: `${client.address}:${client.port}` });
  const transport = new Transport(socket, transportConfig(p.transport, log));
  // A socket whose PROXY header was read is paused with the client's first bytes put back.
  if (socket.isPaused()) socket.resume();
  const entry: Live = { transport, handlers: undefined };
  live?.add(entry);
  p.opts.onConnection?.(true);
  const remote = { remoteAddress: client.address, remotePort: client.port };
  // Userauth is dropped once it succeeds (it unhooks itself); only the Connection stays.
  new Userauth<P>(transport, userauthConfig(p.userauth, log), remote, (principal, username, method) => {
    const info: SessionInfo = {
      username,
      method,
      remoteAddress: remote.remoteAddress,
      remotePort: remote.remotePort,
      clientVersion: transport.clientIdent,
    };
    const c = p.channels;
    if (admitted !== undefined) p.opts.admission?.authenticated(admitted);
    const handlers = p.opts.sessions(principal, info);
    entry.handlers = handlers;
    const connection = new Connection(transport, {
      maxChannels: c.maxChannels,
      windowSize: c.windowSize,
      maxPacket: c.maxPacket,
      handlers,
      log,
    });
    if (idle) {
      const entry = { connection, transport };
      idle.add(entry);
      transport.on('close', () => idle.delete(entry));
    }
  });
  transport.on('close', (err: Error | null) => {
    live?.delete(entry);
    p.opts.onConnection?.(false);
    if (admitted !== undefined) p.opts.admission?.closed(admitted);
    log.info('connection closed', err ? { reason: escapePeer(err.message) } : undefined);
  });
  return transport;
}

/**
 * Takes one accepted socket through the checks that cost no SSH work: the client's address
 * (PROXY header), then admission. A refused connection is told why in one line before the SSH
 * version exchange (RFC 4253 §4.2 lets a server send other lines first) and closed.
 */
async function accept<P>(
  socket: net.Socket,
  p: ServerPlan<P>,
  idle: Set<{ connection: Connection; transport: Transport }> | undefined,
  live: Set<Live> & { draining: boolean },
): Promise<void> {
  // Until the Transport takes the socket over, an error (a reset) must not be unhandled.
  const early = (): void => {};
  socket.on('error', early);
  const opts = p.opts;
  let client: ClientAddress | null;
  try {
    client = opts.resolveClient ? await opts.resolveClient(socket) : peerOf(socket);
  } catch (err) {
    const peer = peerOf(socket);
    const reason = (err as Error).message;
    if ((err as { code?: string }).code === 'ERR_PROXY_SILENT') {
      if (p.log.debugEnabled) p.log.debug('connection closed before SSH', { remote: `${peer.address}:${peer.port}`, reason });
    } else {
      p.log.info('connection refused', { remote: `${peer.address}:${peer.port}`, reason });
      opts.onRefused?.(peer, reason);
    }
    client = null;
  }
  if (client === null) {
    socket.destroy();
    return;
  }
  let admitted: number | undefined;
  if (opts.admission) {
    let answer;
    try {
      answer = await opts.admission.open(client.address);
    } catch (err) {
      p.log.error('admission failed', { err: (err as Error).message });
      socket.destroy();
      return;
    }
    if ('refused' in answer) {
      p.log.info('connection refused', { remote: `${client.address}:${client.port}`, reason: answer.refused });
      opts.onRefused?.(client, answer.refused);
      socket.end(`s3gw: ${answer.refused}\r\n`);
      setTimeout(() => socket.destroy(), 2000).unref();
      return;
    }
    admitted = answer.id;
    if (socket.destroyed) {
      opts.admission.closed(admitted);
      return;
    }
  }
  if (live.draining) {
    // Accepted just before the listener closed: say so rather than start SSH.
    if (admitted !== undefined) opts.admission?.closed(admitted);
    socket.end('s3gw: server is shutting down\r\n');
    return;
  }
  // The Transport handles the socket's errors from here on.
  socket.off('error', early);
  serve(socket, p, client, admitted, idle, live);
}

/**
 * Closes logged-in connections whose sessions have been quiet for `timeoutMs`. One timer for
 * the whole server, checking a timestamp each connection keeps, rather than a timer reset per
 * packet; a connection is closed between timeoutMs and timeoutMs plus a quarter of it (at most
 * 30 s) after its last use.
 */
function startIdleSweep(live: Set<{ connection: Connection; transport: Transport }>, timeoutMs: number, log: Logger): NodeJS.Timeout {
  const every = Math.max(100, Math.min(30_000, Math.floor(timeoutMs / 4)));
  const timer = setInterval(() => {
    const now = performance.now();
    for (const { connection, transport } of live) {
      if (now - connection.lastActivity >= timeoutMs && !transport.closed) {
        log.info('idle timeout', { idleMs: Math.round(now - connection.lastActivity) });
        transport.disconnect(DISCONNECT.BY_APPLICATION, `idle for ${Math.round(timeoutMs / 1000)} s`);
      }
    }
  }, every);
  timer.unref();
  return timer;
}

/** A listening server for `serveConnection`. */
/** A listening server that can also drain. */
export interface SshServer extends net.Server {
  /**
   * Stops accepting, closes every connection with no transfer running (SessionHandlers.busy),
   * then each other one as its transfers end, and at `deadlineMs` whatever is left. Resolves
   * when every connection is closed.
   */
  drain(deadlineMs: number): Promise<void>;
}

/** A listening server for `serveConnection`. */
export function createSshServer<P>(opts: SshServerOptions<P>): SshServer {
  const p = plan(opts);
  const idleMs = opts.idleTimeoutMs ?? 0;
  const idle = idleMs > 0 ? new Set<{ connection: Connection; transport: Transport }>() : undefined;
  const live = Object.assign(new Set<Live>(), { draining: false });
  const server = net.createServer({ noDelay: true }, (socket) => {
    if (live.draining) {
      // A reset while we say goodbye must not become an unhandled 'error'.
      socket.on('error', () => {});
      socket.end('s3gw: server is shutting down\r\n');
      return;
    }
    if (!opts.admission && !opts.resolveClient) serve(socket, p, peerOf(socket), undefined, idle, live);
    else void accept(socket, p, idle, live);
  });
  if (idle) {
    const timer = startIdleSweep(idle, idleMs, p.log);
    server.on('close', () => clearInterval(timer));
  }
  return Object.assign(server, { drain: (deadlineMs: number) => drain(server, live, deadlineMs, p.log) });
}

async function drain(server: net.Server, live: Set<Live> & { draining: boolean }, deadlineMs: number, log: Logger): Promise<void> {
  live.draining = true;
  server.close();
  const deadline = performance.now() + deadlineMs;
  const bye = (l: Live, why: string): void => {
    if (!l.transport.closed) l.transport.disconnect(DISCONNECT.BY_APPLICATION, why);
  };
  log.info('draining', { connections: live.size, deadlineMs });
  while (live.size > 0) {
    const late = performance.now() >= deadline;
    for (const l of live) {
      if (late) bye(l, 'server is shutting down; the transfer was cut off');
      else if (!l.handlers?.busy?.()) bye(l, 'server is shutting down');
    }
    if (late) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  // Disconnects flush and close within a moment; wait for the close events, boundedly.
  for (let i = 0; i < 50 && live.size > 0; i++) await new Promise((r) => setTimeout(r, 100));
  for (const l of live) l.transport.socket.destroy();
  log.info('drained', { left: live.size });
}
