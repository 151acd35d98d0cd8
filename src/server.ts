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
      onFailure: opts.onLoginFailure,
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
  return serve(socket, plan(opts));
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

function serve<P>(socket: net.Socket, p: ServerPlan<P>): Transport {
  const log = p.log.child({ remote: `${socket.remoteAddress}:${socket.remotePort}` });
  const transport = new Transport(socket, transportConfig(p.transport, log));
  const remote = { remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0 };
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
    new Connection(transport, {
      maxChannels: c.maxChannels,
      windowSize: c.windowSize,
      maxPacket: c.maxPacket,
      handlers: p.opts.sessions(principal, info),
      log,
    });
  });
  transport.on('close', (err: Error | null) => {
    log.info('connection closed', err ? { reason: escapePeer(err.message) } : undefined);
  });
  return transport;
}

/** A listening server for `serveConnection`. */
export function createSshServer<P>(opts: SshServerOptions<P>): net.Server {
  const p = plan(opts);
  return net.createServer({ noDelay: true }, (socket) => {
    serve(socket, p);
  });
}
