import type { Config } from '../config.js';
import type { HostKey } from '../transport/host-key-types.js';
import type { Logger } from '../log.js';
import { createGateway, type GatewayOps, type GatewayServer } from '../gateway.js';
import { fanOut, type AuditSink } from '../audit/records.js';
import { openAuditLog } from '../audit/json-lines.js';
import { createCloudWatchSink } from '../audit/cloudwatch.js';
import { GatewayMetrics, render } from './metrics.js';
import { createHealthServer, type HealthSource } from './http.js';

/**
 * The parts of an instance that `s3gw` puts together, in one process (--workers 1, here) or
 * split between a primary and its workers (cluster.ts).
 */

/** The audit sinks the settings ask for, as one; `dropped` sums what they dropped. */
export function openAuditSinks(config: Config, log: Logger): { audit: AuditSink; dropped: () => number } {
  const sinks: AuditSink[] = [];
  try {
    const local = openAuditLog(config.auditLog);
    if (local) sinks.push(local);
  } catch (err) {
    process.stderr.write(`s3gw: --audit-log ${config.auditLog}: ${(err as Error).message}\n`);
    process.exit(2);
  }
  if (config.cloudwatchLogGroup !== undefined) {
    sinks.push(
      createCloudWatchSink({
        logGroup: config.cloudwatchLogGroup,
        logStream: config.instanceId,
        region: config.cloudwatchRegion,
        endpoint: config.cloudwatchEndpoint,
        log: log.child({ component: 'audit' }),
      }),
    );
  }
  return { audit: fanOut(sinks), dropped: () => sinks.reduce((n, s) => n + ((s as { dropped?: number }).dropped ?? 0), 0) };
}

/** The /health and /metrics listener, when --health-listen is set. */
export function startHealth(config: Config, log: Logger, source: HealthSource): void {
  const hl = config.healthListen;
  if (!hl) return;
  const health = createHealthServer(source);
  health.on('error', (err) => {
    process.stderr.write(`s3gw: --health-listen ${hl.host}:${hl.port}: ${err.message}\n`);
    process.exit(1);
  });
  health.listen(hl.port, hl.host, () => {
    const a = health.address();
    log.info('health and metrics on http://' + (typeof a === 'object' && a ? `${a.address}:${a.port}` : String(a)));
  });
  health.unref();
}

/** Starts the SSH listener; `onListening` runs once it accepts. */
export function listen(server: GatewayServer, config: Config, log: Logger, version: string, onListening: () => void): void {
  server.on('error', (err) => {
    process.stderr.write(`s3gw: --listen ${config.listenHost}:${config.listenPort}: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(config.listenPort, config.listenHost, () => {
    const addr = server.address();
    const where = typeof addr === 'object' && addr ? `${addr.address}:${addr.port}` : String(addr);
    onListening();
    log.info(`s3gw ${version} listening on ${where}`, {
      s3: config.s3Endpoint ?? 'AWS',
      region: config.s3Region,
      sse: config.sse.kmsKeyId ? `${config.sse.mode}:${config.sse.kmsKeyId}` : config.sse.mode,
    });
  });
}

/** A second signal sooner than this after the first is the same stop, delivered twice. */
const SAME_STOP_MS = 1_000;

/**
 * SIGTERM and SIGINT run `drain` once; a second signal exits at once (status 1). Ctrl-C in a
 * terminal signals the whole process group, so a process started by the re-spawning CLI
 * (node-flags.ts) gets SIGINT from the terminal and again from its parent, which forwards it:
 * a repeat within SAME_STOP_MS is that one stop and is ignored, not a request to skip the drain.
 */
export function onStopSignals(log: Logger, drain: (signal: string) => Promise<void>): void {
  let stoppedAt: number | undefined;
  const stop = (signal: string) => {
    if (stoppedAt !== undefined) {
      if (performance.now() - stoppedAt < SAME_STOP_MS) return;
      log.warn(`${signal} again: exiting without waiting`);
      process.exit(1);
    }
    stoppedAt = performance.now();
    void drain(signal)
      .catch((err: Error) => log.error('shutdown failed', { err: err.message }))
      .finally(() => {
        log.info('stopped');
        process.exit(0);
      });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** --workers 1: everything in this process. */
export function runSingle(config: Config, log: Logger, hostKeys: readonly HostKey[], version: string): void {
  const { audit, dropped } = openAuditSinks(config, log);
  const metrics = new GatewayMetrics(dropped);
  const ops: GatewayOps = { audit, metrics };
  const server = createGateway(config, hostKeys, log, ops);
  let state: 'starting' | 'ok' | 'draining' = 'starting';
  startHealth(config, log, { health: () => state, metrics: () => render(metrics.registry.snapshot()) });
  listen(server, config, log, version, () => {
    if (state === 'starting') state = 'ok';
  });
  onStopSignals(log, async (signal) => {
    state = 'draining';
    log.info('shutting down: draining', { signal, drainTimeoutMs: config.drainTimeoutMs });
    await server.drain(config.drainTimeoutMs);
    await audit.close();
    metrics.stop();
  });
}
