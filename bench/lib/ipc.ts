import v8 from 'node:v8';

/**
 * What the benchmark's server children say to the parent over the fork() IPC channel, and
 * the arguments they are started with. Every child serves, on 127.0.0.1, the two subsystems
 * the benchmark uses: `test-discard` (reads and drops, counting) and `test-source` (sends
 * `sourceBytes` zeros, then exit status 0).
 */
export interface ServerChildArgs {
  /** OpenSSH private key file (ed25519) used as the only host key. */
  hostKeyFile: string;
  /** The one client key allowed in, as an authorized_keys line. */
  authorizedKey: string;
  /** What `test-source` sends. */
  sourceBytes: number;
  /** ssh2 only: false hides its native binding from require(). */
  binding?: boolean;
}

export type ChildMessage =
  | { type: 'ready'; port: number; detail: string }
  /** One connection ended: bytes `test-discard` received and `test-source` sent on it. */
  | {
      type: 'closed';
      received: number;
      sent: number;
      heapMiB: number;
      externalMiB: number;
      newSpaceMiB: number;
      handles: number;
    }
  | { type: 'error'; message: string };

export type ParentMessage = { type: 'exit' };

export function argsFromArgv(): ServerChildArgs {
  const raw = process.argv[2];
  if (!raw) throw new Error('missing JSON argument');
  return JSON.parse(raw) as ServerChildArgs;
}

export function send(msg: ChildMessage): void {
  process.send?.(msg);
}

/**
 * The child exits when told, on SIGTERM or SIGINT, and when its parent goes away: through
 * process.exit so that `node --cpu-prof` still writes its profile.
 */
export function exitWithParent(): void {
  process.on('message', (m: ParentMessage) => {
    if (m?.type === 'exit') process.exit(0);
  });
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
}

/** What the process holds after a connection ended: a leak shows as growth across runs. */
export function closedReport(received: number, sent: number): ChildMessage {
  return {
    type: 'closed',
    received,
    sent,
    heapMiB: process.memoryUsage().heapUsed / 1024 ** 2,
    // Memory outside the JS heap that V8 is told about (Buffers, native crypto objects): when
    // it only grows, V8 runs ever more full collections to "relieve" it.
    externalMiB: process.memoryUsage().external / 1024 ** 2,
    // The young generation's current size. When it has grown to more than the old generation's
    // headroom, V8 keeps starting full (incremental) collections "in case" it all gets promoted.
    newSpaceMiB: (v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0) / 1024 ** 2,
    // Handles and requests that keep the loop alive (sockets, timers, …).
    handles: process.getActiveResourcesInfo().length,
  };
}
