#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { ConfigError, helpText, loadConfig } from './config.js';
import { loadOrCreateHostKeys, HostKeyError } from './transport/host-keys.js';
import { createLogger } from './log.js';
import { respawnWithFlags } from './node-flags.js';
import { runSingle } from './ops/instance.js';
import { cluster, runPrimary, runWorker } from './ops/cluster.js';

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
  const worker = cluster.isWorker ? Number(process.env.S3GW_WORKER_INDEX ?? cluster.worker?.id ?? 0) : undefined;
  const log = worker === undefined ? createLogger(config.logLevel) : createLogger(config.logLevel, undefined, { worker, pid: process.pid });
  let hostKeys;
  try {
    // Under --workers N the primary loads (or generates) the keys first, so workers read the
    // same files and never race to generate one.
    hostKeys = loadOrCreateHostKeys(config.hostKeys, config.stateDir, worker === undefined ? (m) => log.info(m) : () => {}, {
      allowSshRsaSha1: config.allowSshRsaSha1,
    });
  } catch (err) {
    if (err instanceof HostKeyError) {
      process.stderr.write(`s3gw: --host-key: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (cluster.isWorker) runWorker(config, log, hostKeys, version());
  else if (config.workers > 1) runPrimary(config, log, hostKeys, version());
  else runSingle(config, log, hostKeys, version());
}

main();
