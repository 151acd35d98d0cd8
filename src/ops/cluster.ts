import cluster, { type Worker } from 'node:cluster';
import type { Config } from '../config.js';
import type { HostKey } from '../transport/host-key-types.js';
import type { Logger } from '../log.js';
import { createGateway } from '../gateway.js';
import type { AuditRecord, AuditSink } from '../audit/records.js';
import { AdmissionState, admissionFromConfig, type Admission, type Admitted, type Refused } from './limits.js';
import { GatewayMetrics, merge, render, type Snapshot } from './metrics.js';
import { IpcEndpoint, type Json } from './ipc.js';
import { listen, onStopSignals, openAuditSinks, startHealth } from './instance.js';

/**
 * --workers N (N > 1): one primary process and N workers sharing the listen socket through
 * node:cluster (on Linux the primary accepts and hands connections to the workers in turn).
 *
 * The primary does no SSH work. It holds what must be one per instance: the admission state
 * (connection counts, MaxStartups, lockouts), the audit sinks (one stream per instance), and the
 * /health and /metrics endpoint, which merges the workers' metrics at each scrape. Workers reach
 * it over IPC (ipc.ts): one round trip when a connection is accepted, notifications otherwise.
 *
 * A worker that dies is replaced; one that dies within seconds of starting is replaced after a
 * growing delay, so a crash loop does not spin. The connections a dead worker held are released
 * from the admission counts. SIGTERM drains every worker (each finishes its transfers up to
 * --drain-timeout), then the primary flushes the audit sinks and exits.
 */

/** A worker that lived less than this and died is in a crash loop: its restart waits. */
const FAST_DEATH_MS = 5_000;
const MAX_RESTART_DELAY_MS = 30_000;
/** Audit records a worker may have in the IPC channel at once before it drops (and counts). */
const MAX_AUDIT_IN_FLIGHT = 10_000;

interface Slot {
  worker: Worker | undefined;
  ipc: IpcEndpoint | undefined;
  startedAt: number;
  fastDeaths: number;
  listening: boolean;
  /** Admission ids of this worker's open connections, released if it dies. */
  admitted: Set<number>;
}

export function runPrimary(config: Config, log: Logger, hostKeys: readonly HostKey[], version: string): void {
  void hostKeys; // loaded (or generated) before forking, so workers all read the same files
  const { audit, dropped } = openAuditSinks(config, log);
  const metrics = new GatewayMetrics(dropped);
  const workersGauge = metrics.registry.gauge('s3gw_workers', 'Worker processes running', false);
  const restarts = metrics.registry.counter('s3gw_worker_restarts_total', 'Workers replaced after an unexpected exit');
  const admission = admissionFromConfig(config);
  const slots: Slot[] = [];
  let stopping = false;
  /** Some worker has listened: from then on a dead worker is a crash to recover from. */
  let started = false;

  // A worker that dies before the instance ever listened failed to start (the port is taken,
  // a setting it alone checks): the same failure would repeat forever, so the instance exits
  // with status 1, as --workers 1 does.
  const startupFailed = (index: number, code: number | null, signal: string | null) => {
    stopping = true;
    log.error('a worker exited before the instance listened; stopping', { worker: index, code, signal });
    const left = slots.filter((s) => s.worker).map((s) => new Promise<void>((r) => s.worker!.once('exit', () => r())));
    for (const s of slots) s.worker?.process.kill('SIGTERM');
    const force = setTimeout(() => {
      for (const s of slots) s.worker?.process.kill('SIGKILL');
    }, 5_000);
    void Promise.all(left).then(async () => {
      clearTimeout(force);
      await audit.close();
      process.exit(1);
    });
  };

  const fork = (slot: Slot, index: number) => {
    const worker = cluster.fork({ S3GW_WORKER_INDEX: String(index) });
    const ipc = new IpcEndpoint({ send: (m) => worker.isConnected() && worker.send(m), timeoutMs: 3_000 });
    serveWorker(ipc, admission, audit, slot, () => {
      started = true;
    });
    slot.worker = worker;
    slot.ipc = ipc;
    slot.startedAt = Date.now();
    slot.listening = false;
    worker.on('message', (m: unknown) => ipc.receive(m));
    worker.on('exit', (code, signal) => {
      ipc.close('the worker exited');
      for (const id of slot.admitted) admission.closed(id);
      slot.admitted.clear();
      slot.worker = undefined;
      slot.ipc = undefined;
      slot.listening = false;
      workersGauge.set({}, slots.filter((s) => s.worker).length);
      if (stopping) return;
      if (!started) return startupFailed(index, code, signal);
      const lived = Date.now() - slot.startedAt;
      slot.fastDeaths = lived < FAST_DEATH_MS ? slot.fastDeaths + 1 : 0;
      const delay = slot.fastDeaths === 0 ? 0 : Math.min(MAX_RESTART_DELAY_MS, 500 * 2 ** (slot.fastDeaths - 1));
      log.warn('worker exited; replacing it', { worker: index, pid: worker.process.pid, code, signal, livedMs: lived, delayMs: delay });
      restarts.inc();
      setTimeout(() => {
        if (!stopping) fork(slot, index);
      }, delay).unref();
    });
    workersGauge.set({}, slots.filter((s) => s.worker).length);
  };

  for (let i = 0; i < config.workers; i++) {
    const slot: Slot = { worker: undefined, ipc: undefined, startedAt: 0, fastDeaths: 0, listening: false, admitted: new Set() };
    slots.push(slot);
    fork(slot, i + 1);
  }
  log.info(`s3gw ${version} primary started`, { workers: config.workers, pid: process.pid });

  startHealth(config, log, {
    health: () => (stopping ? 'draining' : slots.some((s) => s.listening) ? 'ok' : 'starting'),
    metrics: async () => {
      const parts = await Promise.all(
        slots.map(async (s, i) => {
          if (!s.ipc) return null;
          try {
            return { worker: String(i + 1), snapshot: (await s.ipc.request('metrics')) as unknown as Snapshot };
          } catch {
            return null; // a worker starting or stopping: its figures are missing from this scrape
          }
        }),
      );
      const sources = parts.filter((p): p is { worker: string; snapshot: Snapshot } => p !== null);
      sources.push({ worker: 'primary', snapshot: metrics.registry.snapshot() });
      return render(merge(sources));
    },
  });

  onStopSignals(log, async (signal) => {
    stopping = true;
    metrics.draining.set({}, 1);
    log.info('shutting down: draining the workers', { signal, drainTimeoutMs: config.drainTimeoutMs });
    const exits = slots.filter((s) => s.worker).map((s) => new Promise<void>((r) => s.worker!.once('exit', () => r())));
    // A worker still starting may not listen for messages yet (one sent now would be lost);
    // it holds no connections, and SIGTERM reaches it either way (its handler drains).
    for (const s of slots) {
      if (s.listening) s.ipc?.notify('drain');
      else s.worker?.process.kill('SIGTERM');
    }
    // The workers exit on their own after draining; a margin past their deadline, then force.
    const force = setTimeout(() => {
      for (const s of slots) s.worker?.process.kill('SIGKILL');
    }, config.drainTimeoutMs + 45_000);
    await Promise.all(exits);
    clearTimeout(force);
    await audit.close();
    metrics.stop();
  });
}

/** The primary's side of one worker's IPC: admission, audit records, readiness. */
function serveWorker(ipc: IpcEndpoint, admission: AdmissionState, audit: AuditSink, slot: Slot, onListening: () => void): void {
  ipc
    .on('admission.open', (p) => {
      const r = admission.open(String(p));
      if ('id' in r) slot.admitted.add(r.id);
      return r as unknown as Json;
    })
    .on('admission.authenticated', (p) => void admission.authenticated(Number(p)))
    .on('admission.authFailed', (p) => void admission.authFailed(String(p)))
    .on('admission.closed', (p) => {
      slot.admitted.delete(Number(p));
      admission.closed(Number(p));
    })
    .on('audit', (p) => void audit.write(p as unknown as AuditRecord))
    .on('listening', () => {
      slot.listening = true;
      onListening();
    });
}

/** A worker: the gateway, with admission and audit forwarded to the primary. */
export function runWorker(config: Config, log: Logger, hostKeys: readonly HostKey[], version: string): void {
  const ipc = new IpcEndpoint({ send: (m) => process.connected && process.send!(m), timeoutMs: 3_000 });
  process.on('message', (m: unknown) => ipc.receive(m));
  // The primary gone (killed): nobody hands us connections or holds the limits any more.
  process.on('disconnect', () => {
    log.error('the primary process is gone; exiting');
    process.exit(1);
  });
  const audit = new ForwardedAudit();
  const metrics = new GatewayMetrics(() => audit.dropped);
  const admission: Admission = {
    // A late answer means the connection was already dropped here: give its slot back.
    open: (address) =>
      ipc.request('admission.open', address, {
        onLate: (r) => {
          if (r !== null && typeof r === 'object' && !Array.isArray(r) && typeof r.id === 'number') ipc.notify('admission.closed', r.id);
        },
      }) as unknown as Promise<Admitted | Refused>,
    authenticated: (id) => void ipc.notify('admission.authenticated', id),
    authFailed: (address) => void ipc.notify('admission.authFailed', address),
    closed: (id) => void ipc.notify('admission.closed', id),
  };
  const server = createGateway(config, hostKeys, log, { audit, metrics, admission });
  ipc.on('metrics', () => metrics.registry.snapshot() as unknown as Json);
  let draining = false;
  ipc.on('drain', () => {
    if (draining) return;
    draining = true;
    log.info('draining', { drainTimeoutMs: config.drainTimeoutMs });
    void server.drain(config.drainTimeoutMs).finally(() => {
      metrics.stop();
      // Give the last notifications (audit, admission) a moment to leave before exiting.
      setTimeout(() => process.exit(0), 100);
    });
  });
  // The primary turns SIGTERM into a 'drain' message; a signal sent to a worker directly (a
  // process manager signalling the whole group) must not kill it mid-transfer either.
  process.on('SIGTERM', () => void ipc.receive({ s3gw: 'note', method: 'drain', params: null }));
  process.on('SIGINT', () => void ipc.receive({ s3gw: 'note', method: 'drain', params: null }));
  listen(server, config, log, version, () => ipc.notify('listening'));
}

/** Audit records sent to the primary's sinks; bounded, counting what it drops. */
class ForwardedAudit implements AuditSink {
  #inFlight = 0;
  dropped = 0;
  write(record: AuditRecord): void {
    if (this.#inFlight >= MAX_AUDIT_IN_FLIGHT || !process.connected) {
      this.dropped++;
      return;
    }
    this.#inFlight++;
    const sent = process.send!({ s3gw: 'note', method: 'audit', params: record }, undefined, {}, () => this.#inFlight--);
    if (!sent && !process.connected) this.dropped++;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

export { cluster };
