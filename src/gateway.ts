import type net from 'node:net';
import { createSshServer } from './server.js';
import type { Config } from './config.js';
import type { HostKey } from './transport/host-key-types.js';
import { createIamAuthenticator, type IamPrincipal } from './auth/iam.js';
import { createS3Backend } from './s3/backend.js';
import { serveSftp } from './sftp/server.js';
import { parseScpCommand } from './scp/command.js';
import { serveScp } from './scp/server.js';
import { escapePeer, type Logger } from './log.js';

/**
 * Composes the gateway: the SSH server, IAM login, and per login an S3 backend signed with
 * that user's own keys behind the `sftp` subsystem and `scp -t` / `scp -f` exec requests.
 * Nothing is shared between users but the process.
 */
export function createGateway(config: Config, hostKeys: readonly HostKey[], log: Logger): net.Server {
  const authenticator = createIamAuthenticator({
    endpoint: config.s3Endpoint,
    stsEndpoint: config.stsEndpoint,
    region: config.s3Region,
    forcePathStyle: config.s3PathStyle,
    mode: config.authMode,
    log,
  });
  return createSshServer<IamPrincipal>({
    hostKeys,
    authenticator,
    log,
    kex: config.kex,
    ciphers: config.ciphers,
    macs: config.macs,
    allowSshRsaSha1: config.allowSshRsaSha1,
    allowSha1Mac: config.allowSha1Mac,
    sessions: (principal, info) => {
      const slog = log.child({ user: escapePeer(principal.accessKeyId), remote: `${info.remoteAddress}:${info.remotePort}` });
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
        // WinSCP renames its name.filepart in the same session right after CLOSE (filepart.ts).
        parkFileparts: /^SSH-2\.0-WinSCP/i.test(info.clientVersion),
        log: slog,
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
          void Promise.allSettled([...running])
            .then(() => backend.close())
            .catch((err: Error) => slog.warn('closing the S3 session failed', { err: err.message }));
        },
        subsystem(name) {
          if (name !== 'sftp') return undefined;
          return (channel) => {
            const served = serveSftp(channel, backend, { log: slog });
            track(served);
            served.then(
              () => channel.exit(0),
              (err: Error) => {
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
            const served = serveScp(channel, backend, cmd, { log: slog });
            track(served);
            served.then(
              (status) => {
                if (status !== 0) slog.info('scp ended with an error', { mode: cmd.mode, status });
                channel.exit(status);
              },
              (err: Error) => {
                slog.warn('scp session failed', { err: err.message });
                channel.exit(1);
              },
            );
          };
        },
      };
    },
  });
}

/** A message for the client's stderr: one line, no control characters from the peer's command. */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 200);
}
