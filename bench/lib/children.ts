/**
 * Every process the benchmark starts is registered here and ended when the benchmark ends,
 * on success, on an error and on SIGINT/SIGTERM, together with its descendants (sshd's
 * per-connection children, the shell a CPU wrapper runs, …).
 */
import type { ChildProcess } from 'node:child_process';
import { descendants } from './proc.js';

const live = new Set<ChildProcess>();

export function track<C extends ChildProcess>(child: C): C {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** Kills one child and everything below it (by pid, never by name). */
export function killTree(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) {
    live.delete(child);
    return;
  }
  // Descendants first: once the parent is gone they would be re-parented out of reach.
  for (const d of descendants(pid).reverse()) {
    try {
      process.kill(d, signal);
    } catch {
      // already gone
    }
  }
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
  live.delete(child);
}

export function killAll(): void {
  for (const c of [...live]) killTree(c);
}

let installed = false;
/** Ends every child on the way out, whatever the way. */
export function killAllOnExit(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, ending child processes\n`);
      killAll();
      process.exit(130);
    });
  }
}
