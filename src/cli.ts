#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { ConfigError, helpText, loadConfig } from './config.js';
import { loadOrCreateHostKeys, HostKeyError } from './transport/host-keys.js';
import { createLogger } from './log.js';
import { createGateway } from './gateway.js';
import { respawnWithFlags } from './node-flags.js';
import { fanOut, type AuditSink } from './audit/records.js';
import { openAuditLog } from './audit/json-lines.js';
import { createCloudWatchSink } from './audit/cloudwatch.js';
import { GatewayMetrics, render } from './ops/metrics.js';
import { createHealthServer } from './ops/http.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function main(): void {
  let parsed;
  try {
    parsed = loadConfig(process.argv.slice(2));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`s3gw: ${err.message}\nRun s3gw --help for the settings.\n`);
      process.exit(2);
    }
    throw err;
  }
  if (parsed.help) {
    process.stdout.write(helpText());
    return;
  }
  if (parsed.version) {
    process.stdout.write(`s3gw ${version()}\n`);
    return;
  }
  if (respawnWithFlags()) return;
  const config = parsed.config;
  if (process.getuid?.() === 0 && !config.allowRoot) {
    // Nothing here needs privilege (listen on 2222, let the load balancer or a redirect map
    // port 22), and a process parsing hostile input should hold as little as it can.
    process.stderr.write('s3gw: refusing to run as root: run it as an unprivileged user, or pass --allow-root\n');
    process.exit(2);
  }
  const log = createLogger(config.logLevel);
  let hostKeys;
  try {
    hostKeys = loadOrCreateHostKeys(config.hostKeys, config.stateDir, (m) => log.info(m), {
      allowSshRsaSha1: config.allowSshRsaSha1,
    });
  } catch (err) {
    if (err instanceof HostKeyError) {
      process.stderr.write(`s3gw: --host-key: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
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
  const audit = fanOut(sinks);
  const dropped = (): number => sinks.reduce((n, s) => n + ((s as { dropped?: number }).dropped ?? 0), 0);
  const metrics = new GatewayMetrics(dropped);
  const server = createGateway(config, hostKeys, log, { audit, metrics });
  let state: 'starting' | 'ok' | 'draining' = 'starting';
  if (config.healthListen) {
    const hl = config.healthListen;
    const health = createHealthServer({ health: () => state, metrics: () => render(metrics.registry.snapshot()) });
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
  server.on('error', (err) => {
    process.stderr.write(`s3gw: --listen ${config.listenHost}:${config.listenPort}: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(config.listenPort, config.listenHost, () => {
    const addr = server.address();
    const where = typeof addr === 'object' && addr ? `${addr.address}:${addr.port}` : String(addr);
    state = 'ok';
    log.info(`s3gw ${version()} listening on ${where}`, {
      s3: config.s3Endpoint ?? 'AWS',
      region: config.s3Region,
      sse: config.sse.kmsKeyId ? `${config.sse.mode}:${config.sse.kmsKeyId}` : config.sse.mode,
    });
  });
  // SIGTERM drains (docs/operations.md "Signals"); a second signal ends the process at once.
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log.warn(`${signal} again: exiting without waiting`);
      process.exit(1);
    }
    stopping = true;
    state = 'draining';
    log.info('shutting down: draining', { signal, drainTimeoutMs: config.drainTimeoutMs });
    void server
      .drain(config.drainTimeoutMs)
      .catch((err: Error) => log.error('drain failed', { err: err.message }))
      .then(() => audit.close())
      .finally(() => {
        metrics.stop();
        log.info('stopped');
        process.exit(0);
      });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main();
