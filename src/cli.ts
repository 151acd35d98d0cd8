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
  const server = createGateway(config, hostKeys, log, { audit });
  server.on('error', (err) => {
    process.stderr.write(`s3gw: --listen ${config.listenHost}:${config.listenPort}: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(config.listenPort, config.listenHost, () => {
    const addr = server.address();
    const where = typeof addr === 'object' && addr ? `${addr.address}:${addr.port}` : String(addr);
    log.info(`s3gw ${version()} listening on ${where}`, {
      s3: config.s3Endpoint ?? 'AWS',
      region: config.s3Region,
      sse: config.sse.kmsKeyId ? `${config.sse.mode}:${config.sse.kmsKeyId}` : config.sse.mode,
    });
  });
  const stop = () => {
    log.info('shutting down');
    server.close();
    void audit.close().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 15_000).unref();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main();
