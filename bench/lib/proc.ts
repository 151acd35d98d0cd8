/**
 * CPU accounting from /proc (Linux only): per-process times, and the times of children that
 * were waited for, which is how CPU of processes that already exited is still counted.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

/** USER_HZ: the unit of the times in /proc/<pid>/stat (100 on every mainstream Linux). */
export const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  /** Seconds of this process's own user and system time (all its threads). */
  user: number;
  sys: number;
  /** Seconds of the children it has waited for (each with its own waited-for children). */
  childUser: number;
  childSys: number;
}

/** Parses one /proc/<pid>/stat line (proc(5)). The command may contain spaces and parentheses. */
export function parseStat(line: string): ProcStat {
  const open = line.indexOf('(');
  const close = line.lastIndexOf(')');
  if (open < 0 || close < open) throw new Error(`not a /proc/<pid>/stat line: ${JSON.stringify(line.slice(0, 80))}`);
  const rest = line.slice(close + 2).trim().split(/\s+/);
  // rest[0] is field 3 (state); field n is rest[n - 3].
  const f = (n: number) => Number(rest[n - 3]);
  return {
    pid: Number(line.slice(0, open).trim()),
    comm: line.slice(open + 1, close),
    state: rest[0]!,
    ppid: f(4),
    user: f(14) / CLOCK_TICKS,
    sys: f(15) / CLOCK_TICKS,
    childUser: f(16) / CLOCK_TICKS,
    childSys: f(17) / CLOCK_TICKS,
  };
}

/** The stat of a live process, or undefined once it is gone. */
export function readStat(pid: number): ProcStat | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

export interface Cpu {
  user: number;
  sys: number;
}

export const cpuTotal = (c: Cpu): number => c.user + c.sys;

/** Own CPU of a live process; throws if it is gone (a server that died mid-run must not read as 0). */
export function ownCpu(pid: number): Cpu {
  const s = readStat(pid);
  if (!s) throw new Error(`process ${pid} is gone`);
  return { user: s.user, sys: s.sys };
}

/** Own CPU plus that of every child it has reaped: a whole process tree once its children exited. */
export function treeCpu(pid: number): Cpu {
  const s = readStat(pid);
  if (!s) throw new Error(`process ${pid} is gone`);
  return { user: s.user + s.childUser, sys: s.sys + s.childSys };
}

export const cpuDelta = (after: Cpu, before: Cpu): Cpu => ({ user: after.user - before.user, sys: after.sys - before.sys });

/** All live processes. */
export function allStats(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) out.push(s);
  }
  return out;
}

/** Pids of every live descendant of `pid` (children first seen by parent pid, recursively). */
export function descendants(pid: number): number[] {
  const byParent = new Map<number, number[]>();
  for (const s of allStats()) {
    const list = byParent.get(s.ppid);
    if (list) list.push(s.pid);
    else byParent.set(s.ppid, [s.pid]);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of byParent.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** Seconds of busy CPU time, all cores together, since boot (/proc/stat: all but idle and iowait). */
export function systemBusy(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already in user)
  const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + (f[7] ?? 0);
  return busy / CLOCK_TICKS;
}

/**
 * Waits (up to `maxWaitMs`) until the machine is nearly idle: other processes on a shared
 * machine distort both wall and CPU figures. Returns the load (in cores) of the last window.
 */
export async function waitQuiet(maxWaitMs: number, thresholdCores = 0.15, windowMs = 400): Promise<number> {
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    const b0 = systemBusy();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, windowMs));
    const load = (systemBusy() - b0) / ((performance.now() - t0) / 1000);
    if (load < thresholdCores || Date.now() >= deadline) return load;
  }
}

/** Resident set size in MiB (VmRSS), or undefined once the process is gone. */
export function rssMiB(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}
