/**
 * Child process: s3gw's SSH server for the benchmark (fork()ed by ssh-throughput.ts, so that
 * its CPU time is its own). One ed25519 host key, publickey login for one key, and the test
 * subsystems of spec/helpers/subsystems.ts.
 */
import type { AddressInfo } from 'node:net';
import { createSshServer } from '../../src/server.js';
import { loadHostKey } from '../../src/transport/host-keys.js';
import type { Authenticator } from '../../src/auth/authenticator.js';
import { silentLogger } from '../../src/log.js';
import { discard, source } from '../../spec/helpers/subsystems.js';
import { argsFromArgv, closedReport, exitWithParent, send } from './ipc.js';

exitWithParent();
const args = argsFromArgv();
const allowed = Buffer.from(args.authorizedKey.trim().split(/\s+/)[1] ?? '', 'base64');
if (allowed.length === 0) throw new Error('authorizedKey is not an authorized_keys line');

const sameKey = (blob: Uint8Array) => Buffer.compare(Buffer.from(blob.buffer, blob.byteOffset, blob.length), allowed) === 0;
const authenticator: Authenticator<string> = {
  methods: ['publickey'],
  async publicKeyAcceptable(_ctx, key) {
    return sameKey(key.blob);
  },
  async checkPublicKey(ctx, key) {
    return sameKey(key.blob) ? { ok: true, principal: ctx.username } : { ok: false, reason: 'unknown key' };
  },
};

// Connections are sequential in the benchmark, so one pair of counters serves.
let received = 0;
let sent = 0;
const server = createSshServer<string>({
  hostKeys: [loadHostKey(args.hostKeyFile)],
  authenticator,
  log: silentLogger,
  sessions: () => ({
    subsystem(name) {
      if (name === 'test-discard') {
        return (ch) => {
          ch.on('data', (d: Buffer) => {
            received += d.length;
          });
          discard(ch);
        };
      }
      if (name === 'test-source') {
        return (ch) => {
          sent += args.sourceBytes;
          source(args.sourceBytes, 0)(ch);
        };
      }
      return undefined;
    },
  }),
});
server.on('connection', (socket) => {
  socket.on('close', () => {
    send(closedReport(received, sent));
    received = 0;
    sent = 0;
  });
});
server.on('error', (err) => {
  send({ type: 'error', message: err.message });
  process.exit(1);
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  send({ type: 'ready', port, detail: `s3gw, node ${process.version}` });
});
