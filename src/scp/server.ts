import type { Duplex } from 'node:stream';
import type { Backend } from '../backend.js';
import { escapePeer, type Logger } from '../log.js';
import type { SftpEvent } from '../sftp/events.js';
import type { ScpCommand } from './command.js';
import { describe, ScpContext, ScpStop } from './context.js';
import { ScpGoneError, ScpInput } from './input.js';
import { errorRecord, ScpProtocolError } from './protocol.js';
import { runSink } from './sink.js';
import { runSource } from './source.js';

export type { SftpEvent } from '../sftp/events.js';

/**
 * What serveScp needs of a session channel: a Duplex (the client's bytes in, ours out) with a
 * stderr. src/channels/channel.ts Channel is one; tests use an in-memory pair. Typed
 * structurally so scp does not import the channel layer (CONVENTIONS: Boundaries).
 */
export type ScpChannel = Duplex & { writeStderr(data: string | Buffer): void };

export interface ScpServerOptions {
  log: Logger;
  /** Audit: one 'upload' or 'download' event per file, as SFTP emits them. Must not throw. */
  onEvent?: (e: SftpEvent) => void;
}

/**
 * Runs one legacy SCP transfer (`scp -t` or `scp -f`, already parsed by parseScpCommand) on
 * `channel` and resolves to its exit status: 0, or 1 if anything failed. Never rejects. It does
 * not end the channel: the caller sends exit-status and closes (Channel.exit).
 *
 * A protocol error (a bad record, an over-long line) is answered with a \x02 line, which the
 * client prints before it exits; an upload in progress is aborted whenever the session ends
 * without committing it, the client disappearing mid-file included.
 */
export async function serveScp(
  channel: ScpChannel,
  backend: Backend,
  cmd: ScpCommand,
  opts: ScpServerOptions,
): Promise<number> {
  const input = new ScpInput(channel);
  const ctx = new ScpContext(channel, input, backend, cmd, opts.log, opts.onEvent);
  try {
    if (cmd.mode === 'sink') await runSink(ctx);
    else await runSource(ctx);
    return ctx.errors > 0 ? 1 : 0;
  } catch (err) {
    if (err instanceof ScpProtocolError) {
      opts.log.info('scp: protocol error', { error: escapePeer(err.message) });
      await ctx.write(errorRecord(true, `protocol error: ${err.message}`)).catch(() => {});
    } else if (err instanceof ScpGoneError || err instanceof ScpStop) {
      opts.log.debug('scp: session ended', { reason: escapePeer(err.message) });
    } else {
      const text = describe(err, opts.log);
      await ctx.write(errorRecord(true, text)).catch(() => {});
    }
    return 1;
  }
}
