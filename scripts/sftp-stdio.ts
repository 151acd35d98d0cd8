/**
 * The SFTP server on stdin/stdout over the in-memory backend, so OpenSSH's client can drive it
 * with no SSH in between:
 *
 *   npx tsc -p . && sftp -D "node dist/scripts/sftp-stdio.js" [-b batchfile]
 *
 * Each run starts with an empty tree, plus any `--preload LOCAL=REMOTE` files (so that a
 * download can be tested in a fresh process, e.g. `scp -S` with a stand-in for ssh). Logs go to
 * stderr as JSON lines; S3GW_LOG_LEVEL=debug shows every request and every audit event.
 */
import { readFileSync } from 'node:fs';
import { Duplex } from 'node:stream';
import { createLogger, type Level } from '../src/log.js';
import { serveSftp } from '../src/sftp/server.js';
import { MemoryBackend } from '../spec/helpers/memory-backend.js';

const level = (process.env.S3GW_LOG_LEVEL ?? 'warn') as Level;
const log = createLogger(level).child({ component: 'sftp-stdio' });
const backend = new MemoryBackend();
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const m = args[i] === '--preload' ? /^([^=]+)=(\/.+)$/.exec(args[++i] ?? '') : null;
  if (m === null) {
    process.stderr.write('usage: sftp-stdio.js [--preload LOCAL=/REMOTE]...\n');
    process.exit(2);
  }
  backend.putFile(m[2]!, readFileSync(m[1]!));
}
const stream = Duplex.from({ readable: process.stdin, writable: process.stdout });

await serveSftp(stream, backend, {
  log,
  onEvent: (e) => log.debug('event', { ...e }),
});
