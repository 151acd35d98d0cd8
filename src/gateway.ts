import type net from 'node:net';
import { createSshServer, type SshServer } from './server.js';
import type { Config } from './config.js';
import type { HostKey } from './transport/host-key-types.js';
import { createIamAuthenticator, type IamPrincipal } from './auth/iam.js';
import { createS3Backend } from './s3/backend.js';
import { serveSftp } from './sftp/server.js';
import { parseScpCommand } from './scp/command.js';
import { serveScp } from './scp/server.js';
import { escapePeer, type Logger } from './log.js';
import type { SftpEvent } from './sftp/events.js';
import type { AuditRecord, AuditSink } from './audit/records.js';
import { randomBytes } from 'node:crypto';
import { admissionFromConfig, refusalCategory, type Admission } from './ops/limits.js';
import type { GatewayMetrics } from './ops/metrics.js';
import { TrustedProxies, readProxyHeader } from './ops/proxy-protocol.js';

/**
 * What the gateway reports to and asks of the rest of an instance. Every field is optional:
 * absent, the gateway runs without it. Under --workers N these are forwarding implementations
 * whose state lives in the primary process (src/ops/cluster.ts).
 */
export interface GatewayOps {
  /** Audit records (src/audit/). */
  audit?: AuditSink;
  /**
   * Connection limits and lockouts (src/ops/limits.ts). Absent: built from the config, so the
   * limits are on by default; under --workers N the primary holds the state.
   */
  admission?: Admission;
  /** Counters and gauges for /metrics (src/ops/metrics.ts). */
  metrics?: GatewayMetrics;
}

/** The gateway's listening server; its drain also waits for the S3 sessions to wind up. */
export type GatewayServer = SshServer;

/**
 * Composes the gateway: the SSH server, IAM login, and per login an S3 backend signed with
 * that user's own keys behind the `sftp` subsystem and `scp -t` / `scp -f` exec requests.
 * Nothing is shared between users but the process.
 */
export function createGateway(config: Config, hostKeys: readonly HostKey[], log: Logger, ops: GatewayOps = {}): GatewayServer {
  const audit = ops.audit;
  const metrics = ops.metrics;
  // Connections' S3 sessions still winding up (uploads kept or aborted) after the connection went.
  const windingUp = new Set<Promise<unknown>>();
  const instance = config.instanceId;
  const admission = ops.admission ?? admissionFromConfig(config);
  const trusted = config.proxyProtocol ? new TrustedProxies(config.trustedProxies) : undefined;
  const authenticator = createIamAuthenticator({
    endpoint: config.s3Endpoint,
    stsEndpoint: config.stsEndpoint,
    region: config.s3Region,
    forcePathStyle: config.s3PathStyle,
    mode: config.authMode,
    log,
  });
  const server = createSshServer<IamPrincipal>({
    hostKeys,
    authenticator,
    log,
    kex: config.kex,
    ciphers: config.ciphers,
    macs: config.macs,
    allowSshRsaSha1: config.allowSshRsaSha1,
    allowSha1Mac: config.allowSha1Mac,
    admission,
    ...(trusted ? { resolveClient: (socket: net.Socket) => readProxyHeader(socket, trusted) } : {}),
    idleTimeoutMs: config.idleTimeoutMs,
    loginGraceMs: config.loginGraceMs,
    maxChannels: config.maxChannels,
    onConnection: metrics ? (open) => (open ? metrics.connections.inc() : metrics.connections.dec()) : undefined,
    onRefused: (client, reason) => {
      metrics?.refused.inc({ reason: refusalCategory(reason) });
      audit?.write({ time: new Date().toISOString(), event: 'connection_refused', instance, clientAddress: client.address, reason });
    },
    onLoginFailure:
      audit || metrics
        ? (f) => {
            metrics?.logins.inc({ outcome: 'failure' });
            audit?.write({
              time: new Date().toISOString(),
              event: 'login_failed',
              instance,
              clientAddress: f.remoteAddress,
              clientPort: f.remotePort,
              clientVersion: f.clientVersion,
              user: f.username,
              method: f.method,
              reason: f.reason,
            });
          }
        : undefined,
    sessions: (principal, info) => {
      // Session ids: this connection's random id and a channel counter, unique per instance
      // (and across a fleet in practice), shared by the log records and the audit records.
      const connId = randomBytes(6).toString('hex');
      let channels = 0;
      let connectionClosed = false;
      /** Transfers running on this connection's sessions: open SFTP file handles, SCP commands. */
      let transfers = 0;
      const onTransfers = (d: number): void => {
        transfers += d;
      };
      metrics?.logins.inc({ outcome: 'success' });
      const slog = log.child({ user: escapePeer(principal.accessKeyId), remote: `${info.remoteAddress}:${info.remotePort}`, conn: connId });
      /** Audit of one SFTP or SCP session: its start now, its events, and `end` for its end. */
      const auditSession = (protocol: 'sftp' | 'scp') => {
        const session = `${connId}-${channels++}`;
        const started = performance.now();
        let bytesIn = 0;
        let bytesOut = 0;
        const common = { instance, session, accessKeyId: principal.accessKeyId, clientAddress: info.remoteAddress };
        metrics?.sessions.inc({ protocol });
        metrics?.sessionsTotal.inc({ protocol });
        audit?.write({
          time: new Date().toISOString(),
          event: 'session_start',
          ...common,
          clientPort: info.remotePort,
          protocol,
          clientVersion: escapePeer(info.clientVersion),
          ...(principal.arn !== undefined ? { arn: principal.arn } : {}),
        });
        return {
          session,
          onEvent: (e: SftpEvent): void => {
            if (e.type === 'upload') bytesIn += e.bytes;
            else if (e.type === 'download') bytesOut += e.bytes;
            if (metrics) countEvent(metrics, e);
            audit?.write(eventRecord(e, common));
          },
          end: (err: Error | null): void => {
            metrics?.sessions.dec({ protocol });
            audit?.write({
              time: new Date().toISOString(),
              event: 'session_end',
              ...common,
              protocol,
              ms: Math.round(performance.now() - started),
              bytesIn,
              bytesOut,
              reason: err ? escapePeer(err.message) : connectionClosed ? 'disconnected' : 'closed',
            });
          },
        };
      };
      const backend = createS3Backend({
        credentials: principal.credentials(),
        endpoint: config.s3Endpoint,
        region: config.s3Region,
        forcePathStyle: config.s3PathStyle,
        sse: config.sse,
        partSize: config.partSize,
        maxParts: config.maxParts,
        maxObjectSize: config.maxObjectSize,
        checksums: config.s3Checksums,
        uploadChecksum: config.uploadChecksum,
        partialUploads: config.partialUploads,
        staleUploadMs: config.staleUploadAgeMs,
        // WinSCP renames its name.filepart in the same session right after CLOSE (filepart.ts).
        parkFileparts: /^SSH-2\.0-WinSCP/i.test(info.clientVersion),
        log: slog,
        ...(metrics ? { onRequest: metrics.onS3Request } : {}),
      });
      // SFTP and SCP sessions still finishing. The store is closed only after them: a session
      // that ends with the connection decides what becomes of its open uploads (kept for resume,
      // or aborted), and the backend's close, which aborts whatever is still open, must not race it.
      const running = new Set<Promise<unknown>>();
      const track = (p: Promise<unknown>): void => {
        running.add(p);
        const forget = (): void => void running.delete(p);
        p.then(forget, forget);
      };
      return {
        close() {
          connectionClosed = true;
          const done = Promise.allSettled([...running])
            .then(() => backend.close())
            .catch((err: Error) => slog.warn('closing the S3 session failed', { err: err.message }));
          windingUp.add(done);
          void done.finally(() => windingUp.delete(done));
        },
        busy: () => transfers > 0,
        subsystem(name) {
          if (name !== 'sftp') return undefined;
          return (channel) => {
            const a = auditSession('sftp');
            const served = serveSftp(channel, backend, {
              log: slog.child({ session: a.session }),
              onEvent: a.onEvent,
              maxHandles: config.maxHandles,
              onTransfers,
            });
            track(served);
            served.then(
              () => {
                a.end(null);
                channel.exit(0);
              },
              (err: Error) => {
                a.end(err);
                slog.warn('sftp session failed', { err: err.message });
                channel.exit(1);
              },
            );
          };
        },
        exec(command) {
          // Every exec is accepted, so the client always hears why and gets exit status 1: a
          // refused request (CHANNEL_FAILURE) leaves scp without a message, and some clients
          // waiting. Only scp runs; there is no shell to hand anything else to.
          const cmd = parseScpCommand(command);
          if ('error' in cmd) {
            return (channel) => {
              slog.info('exec refused', { command: escapePeer(command), reason: cmd.error });
              channel.writeStderr(`s3gw: ${oneLine(cmd.error)}\n`);
              channel.exit(1);
            };
          }
          return (channel) => {
            const a = auditSession('scp');
            const served = serveScp(channel, backend, cmd, { log: slog.child({ session: a.session }), onEvent: a.onEvent });
            track(served);
            // An SCP command is one transfer from start to end.
            onTransfers(1);
            void served.finally(() => onTransfers(-1)).catch(() => {});
            served.then(
              (status) => {
                a.end(status === 0 ? null : new Error(`exit status ${status}`));
                if (status !== 0) slog.info('scp ended with an error', { mode: cmd.mode, status });
                channel.exit(status);
              },
              (err: Error) => {
                a.end(err);
                slog.warn('scp session failed', { err: err.message });
                channel.exit(1);
              },
            );
          };
        },
      };
    },
  });
  const drainConnections = server.drain;
  return Object.assign(server, {
    async drain(deadlineMs: number): Promise<void> {
      metrics?.draining.set({}, 1);
      await drainConnections(deadlineMs);
      // Uploads cut off at the deadline are kept for resume or aborted in S3 now: wait for that,
      // boundedly, so the process does not exit with multipart uploads left behind.
      await Promise.race([Promise.allSettled([...windingUp]), new Promise((r) => setTimeout(r, 30_000).unref())]);
    },
  });
}

/** A message for the client's stderr: one line, no control characters from the peer's command. */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 200);
}

/** An SFTP/SCP event as an audit record. Paths come from the peer: escaped. */
function eventRecord(
  e: SftpEvent,
  common: { instance: string; session: string; accessKeyId: string; clientAddress: string },
): AuditRecord {
  const time = new Date().toISOString();
  const error = e.error === undefined ? {} : { error: escapePeer(e.error, 512) };
  switch (e.type) {
    case 'upload':
    case 'download':
      return { time, event: e.type, ...common, path: escapePeer(e.path, 1024), bytes: e.bytes, ms: Math.round(e.ms), ok: e.ok, ...error };
    case 'rename':
      return { time, event: 'rename', ...common, from: escapePeer(e.from, 1024), to: escapePeer(e.to, 1024), overwrite: e.overwrite, ok: e.ok, ...error };
    default:
      return { time, event: e.type, ...common, path: escapePeer(e.path, 1024), ok: e.ok, ...error };
  }
}

function countEvent(m: GatewayMetrics, e: SftpEvent): void {
  const outcome = e.ok ? 'ok' : 'error';
  if (e.type === 'upload' || e.type === 'download') {
    m.transfers.inc({ kind: e.type, outcome });
    m.bytes.inc({ direction: e.type === 'upload' ? 'in' : 'out' }, e.bytes);
  } else {
    m.operations.inc({ operation: e.type, outcome });
  }
}
