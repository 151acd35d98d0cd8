import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';

/**
 * V8 settings the gateway runs with. A streaming server allocates a Buffer per packet, and with
 * V8's default start for the old generation a process can fall into collecting it over and over:
 * the same 1 GiB upload cost 2.3 or 4.7 CPU-s, with 0 or 100 mark-compacts (node --trace-gc,
 * bench/README.md "GC"). A 64 MB initial old generation removed the second mode in every run.
 * A 4 MB semi-space caps the young generation at a few MB: logins allocate ~1.5 MB each (noble's
 * X25519 and Ed25519), and with V8's default 16 MB the young generation grew by several MB that
 * RSS kept, more than the sessions themselves hold (bench/gateway-memory.js). V8 takes heap
 * settings only at start-up (and these not from NODE_OPTIONS), so when they are missing the CLI
 * runs node again with them.
 */
export const NODE_FLAGS: readonly string[] = ['--initial-old-space-size=64', '--max-semi-space-size=4'];

/** True when node was started without NODE_FLAGS and a child with them now serves instead. */
export function respawnWithFlags(): boolean {
  const missing = NODE_FLAGS.filter((f) => !process.execArgv.some((a) => a.split('=')[0] === f.split('=')[0]));
  if (missing.length === 0 || process.env.S3GW_NO_RESPAWN === '1') return false;
  const child = spawn(process.execPath, [...process.execArgv, ...missing, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, S3GW_NO_RESPAWN: '1' },
  });
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'];
  for (const sig of signals) process.on(sig, () => child.kill(sig));
  child.on('error', (err) => {
    process.stderr.write(`s3gw: could not start node with ${missing.join(' ')}: ${err.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    process.exit(code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0));
  });
  return true;
}
