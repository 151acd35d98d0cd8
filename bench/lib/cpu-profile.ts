/**
 * Summarises a V8 .cpuprofile (what `node --cpu-prof` writes): self time per function,
 * largest first. Self time is the samples whose top frame is that function; native work
 * done on the main thread (OpenSSL inside node:crypto, syscalls) is charged to the JS
 * function that called into it, or to "(program)" when V8 cannot tell.
 */
import { readFileSync } from 'node:fs';

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface SelfTime {
  name: string;
  where: string;
  ms: number;
  /** Share of the samples in which the thread was busy (not "(idle)"). */
  busyShare: number;
  /** The caller that accounts for most of this function's self time. */
  topCaller: string;
}

export interface Profile {
  rows: SelfTime[];
  /** Busy time charged to the innermost frame under `ownPrefix` on the stack (self + what it calls). */
  byOwnCode: { name: string; where: string; ms: number; busyShare: number }[];
  busyMs: number;
  idleMs: number;
}

/**
 * `window`, in microseconds of CLOCK_MONOTONIC (process.hrtime's clock, which V8's profiler
 * timestamps use too), keeps only the samples taken inside it.
 */
export function selfTimes(
  file: string,
  stripPrefix = '',
  ownPrefix = '/dist/src/',
  window?: { fromUs: number; toUs: number },
): Profile {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const msById = new Map<number, number>();
  const samples = prof.samples ?? [];
  const deltas = prof.timeDeltas ?? [];
  // timeDeltas[i] is the time since the previous sample; charge each interval to the sample
  // that ends it, as Chrome DevTools does.
  let t = prof.startTime;
  for (let i = 0; i < samples.length; i++) {
    const d = deltas[i] ?? 0;
    t += d;
    if (window && (t < window.fromUs || t > window.toUs)) continue;
    const id = samples[i]!;
    msById.set(id, (msById.get(id) ?? 0) + Math.max(0, d) / 1000);
  }
  const label = (n: CpuProfileNode) => {
    const cf = n.callFrame;
    const url = cf.url.replace(/^file:\/\//, '').replace(stripPrefix, '');
    return { name: cf.functionName || '(anonymous)', where: url ? `${url}:${cf.lineNumber + 1}` : '', url: cf.url };
  };
  const agg = new Map<string, SelfTime & { callers: Map<string, number> }>();
  const own = new Map<string, { name: string; where: string; ms: number; busyShare: number }>();
  let idleMs = 0;
  let totalMs = 0;
  for (const [id, ms] of msById) {
    const n = byId.get(id);
    if (!n) continue;
    totalMs += ms;
    if (n.callFrame.functionName === '(idle)') {
      idleMs += ms;
      continue;
    }
    const { name, where } = label(n);
    const key = `${name}@${where}`;
    const row = agg.get(key) ?? { name, where, ms: 0, busyShare: 0, topCaller: '', callers: new Map<string, number>() };
    row.ms += ms;
    const p = parent.get(id);
    const pn = p === undefined ? undefined : byId.get(p);
    const caller = pn ? `${label(pn).name} ${label(pn).where}`.trim() : '';
    row.callers.set(caller, (row.callers.get(caller) ?? 0) + ms);
    agg.set(key, row);
    // The innermost frame of our own code on this stack.
    let cur: CpuProfileNode | undefined = n;
    while (cur && !cur.callFrame.url.includes(ownPrefix)) {
      const up = parent.get(cur.id);
      cur = up === undefined ? undefined : byId.get(up);
    }
    const o = cur ? label(cur) : { name: '(no s3gw frame: event loop, streams, GC, startup)', where: '' };
    const okey = `${o.name}@${o.where}`;
    const orow = own.get(okey) ?? { name: o.name, where: o.where, ms: 0, busyShare: 0 };
    orow.ms += ms;
    own.set(okey, orow);
  }
  const busyMs = totalMs - idleMs;
  const rows = [...agg.values()].sort((a, b) => b.ms - a.ms);
  for (const r of rows) {
    r.busyShare = busyMs > 0 ? r.ms / busyMs : 0;
    r.topCaller = [...r.callers.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '';
  }
  const byOwnCode = [...own.values()].sort((a, b) => b.ms - a.ms);
  for (const r of byOwnCode) r.busyShare = busyMs > 0 ? r.ms / busyMs : 0;
  return { rows: rows.map(({ callers: _c, ...r }) => r), byOwnCode, busyMs, idleMs };
}
