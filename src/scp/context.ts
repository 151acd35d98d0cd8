import type { Duplex } from 'node:stream';
import { BackendError, type Backend } from '../backend.js';
import { escapePeer, type Logger } from '../log.js';
import type { SftpEvent } from '../sftp/events.js';
import type { ScpCommand } from './command.js';
import { ScpGoneError, type ScpInput } from './input.js';
import { errorRecord } from './protocol.js';

/** The peer sent \x02 or we sent it: the session ends now, with exit status 1. */
export class ScpStop extends Error {
  readonly code = 'ERR_SCP_STOP';
  constructor(message: string) {
    super(message);
    this.name = 'ScpStop';
  }
}

/** Deepest D nesting (sink) or directory recursion (source); S3 keys (1024 bytes) go no deeper. */
export const MAX_DEPTH = 512;

const ERRNO_TEXT: Partial<Record<string, string>> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  EEXIST: 'File exists',
};

/** What one SCP session shares between its sink or source and the server. */
export class ScpContext {
  readonly stream: Duplex;
  readonly input: ScpInput;
  readonly backend: Backend;
  readonly cmd: ScpCommand;
  readonly log: Logger;
  readonly #onEvent: ((e: SftpEvent) => void) | undefined;
  /** Warnings sent or received: the exit status is 1 if any. */
  errors = 0;

  constructor(
    stream: Duplex,
    input: ScpInput,
    backend: Backend,
    cmd: ScpCommand,
    log: Logger,
    onEvent: ((e: SftpEvent) => void) | undefined,
  ) {
    this.stream = stream;
    this.input = input;
    this.backend = backend;
    this.cmd = cmd;
    this.log = log;
    this.#onEvent = onEvent;
  }

  /** Writes to the client, waiting while the channel has no room (backpressure). */
  async write(data: string | Buffer): Promise<void> {
    const s = this.stream;
    if (s.destroyed || s.writableEnded) throw new ScpGoneError();
    if (s.write(data)) return;
    await new Promise<void>((resolve, reject) => {
      const done = (err?: unknown) => {
        s.off('drain', ok);
        s.off('close', gone);
        s.off('error', gone);
        if (err === undefined) resolve();
        else reject(new ScpGoneError());
      };
      const ok = () => done();
      const gone = () => done(true);
      s.on('drain', ok);
      s.on('close', gone);
      s.on('error', gone);
    });
  }

  /** A \x01 line: the client prints it and goes on; the exit status becomes 1. */
  async warn(path: string, err: unknown): Promise<void> {
    this.errors++;
    await this.write(errorRecord(false, `${path}: ${describe(err, this.log)}`));
  }

  event(e: SftpEvent): void {
    try {
      this.#onEvent?.(e);
    } catch (err) {
      this.log.error('scp: audit hook threw', { error: err instanceof Error ? err.message : String(err) });
    }
  }

  /**
   * Reads the peer's answer to what we sent: \0 is true; \x01 (a warning, the text follows) is
   * false, and the caller skips what it was sending; \x02 ends the session. The end of input
   * is an error unless `endIsOk`.
   */
  async response(endIsOk = false): Promise<boolean> {
    const b = await this.input.readByte();
    if (b === 0) return true;
    if (b === -1) {
      if (endIsOk) return true;
      throw new ScpGoneError();
    }
    const text = b === 1 || b === 2 ? ((await this.input.readLine()) ?? '') : '';
    this.errors++;
    if (b === 1) {
      this.log.debug('scp: client warning', { message: escapePeer(text) });
      return false;
    }
    throw new ScpStop(b === 2 ? `client: ${escapePeer(text)}` : `unexpected reply byte ${b}`);
  }
}

/** A message for the client, like OpenSSH's strerror() text where there is one. */
export function describe(err: unknown, log?: Logger): string {
  if (err instanceof BackendError) return ERRNO_TEXT[err.code] ?? err.message;
  if (err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('ERR_SCP')) {
    return err.message;
  }
  log?.error('scp: internal error', { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  return 'internal error';
}

export function joinPath(dir: string, name: string): string {
  return dir === '/' ? '/' + name : dir + '/' + name;
}
