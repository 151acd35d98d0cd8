/**
 * Parent side of a Node server child (our-server.ts or ssh2-server.ts): fork, wait for
 * 'ready', hand out the per-connection 'closed' reports in order, and stop it cleanly (so a
 * `--cpu-prof` child writes its profile).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { track, killTree } from './children.js';
import type { ChildMessage, ServerChildArgs } from './ipc.js';

export interface ClosedReport {
  received: number;
  sent: number;
  heapMiB: number;
  externalMiB: number;
  newSpaceMiB: number;
  handles: number;
}

export class NodeServerChild {
  readonly child: ChildProcess;
  port = 0;
  detail = '';
  readonly #closed: ClosedReport[] = [];
  readonly #waiters: ((r: ClosedReport) => void)[] = [];
  #failure: Error | null = null;

  constructor(script: string, args: ServerChildArgs, execArgv: string[] = []) {
    this.child = track(
      fork(script, [JSON.stringify(args)], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
    );
    this.child.on('message', (m: ChildMessage) => {
      if (m.type === 'closed') {
        const { type: _type, ...r } = m;
        const w = this.#waiters.shift();
        if (w) w(r);
        else this.#closed.push(r);
      } else if (m.type === 'error') this.#failure = new Error(`server child: ${m.message}`);
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  ready(timeoutMs = 15_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server child not ready after ${timeoutMs} ms`)), timeoutMs);
      const onExit = (code: number | null) => {
        clearTimeout(timer);
        reject(new Error(`server child exited with ${code} before it was ready`));
      };
      this.child.once('exit', onExit);
      this.child.on('message', (m: ChildMessage) => {
        if (m.type !== 'ready') return;
        clearTimeout(timer);
        this.child.off('exit', onExit);
        this.port = m.port;
        this.detail = m.detail;
        resolve();
      });
    });
  }

  /** The report of the next connection to end. */
  nextClosed(timeoutMs = 15_000): Promise<ClosedReport> {
    if (this.#failure) return Promise.reject(this.#failure);
    const r = this.#closed.shift();
    if (r) return Promise.resolve(r);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(done);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new Error(`server did not report the connection closed within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (rep: ClosedReport) => {
        clearTimeout(timer);
        resolve(rep);
      };
      this.#waiters.push(done);
    });
  }

  /** Asks the child to exit (a profile is written on the way), and kills it if it does not. */
  async stop(timeoutMs = 15_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.send({ type: 'exit' });
    const timer = setTimeout(() => killTree(this.child), timeoutMs);
    await exited;
    clearTimeout(timer);
  }
}
