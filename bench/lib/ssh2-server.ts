/**
 * Child process: npm ssh2 1.17's server, the Node reference, from bench/.deps (installed by
 * bench/setup.sh, not a project dependency). Same host key, login and subsystems as
 * our-server.ts, with `setNoDelay(true)` on every connection.
 *
 * ssh2 has no switch for its optional native binding: crypto.js tries
 * `require('./crypto/build/Release/sshcrypto.node')` and falls back to node:crypto (plus a
 * WASM Poly1305) when that throws. With `binding: false` this child makes exactly that
 * require throw, so both variants run the very same installed package.
 */
import { readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { argsFromArgv, closedReport, exitWithParent, send } from './ipc.js';

exitWithParent();
const args = argsFromArgv();

/** bench/.deps, from dist/bench/lib. */
export const DEPS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bench/.deps');

if (args.binding === false) {
  const M = Module as unknown as { _load: (request: string, parent: unknown, isMain: boolean) => unknown };
  const load = M._load;
  M._load = function (request: string, parent: unknown, isMain: boolean) {
    if (request.endsWith('sshcrypto.node')) {
      throw Object.assign(new Error(`Cannot find module '${request}' (hidden by the benchmark)`), {
        code: 'MODULE_NOT_FOUND',
      });
    }
    return load.call(this, request, parent, isMain);
  };
}

const require = createRequire(path.join(DEPS_DIR, 'package.json'));
// ssh2 ships no types and is not a project dependency: a narrow local view of what is used.
/* eslint-disable @typescript-eslint/no-explicit-any */
const ssh2 = require('ssh2') as any;
const { bindingAvailable } = require('ssh2/lib/protocol/crypto.js') as { bindingAvailable: boolean };
const version = (require('ssh2/package.json') as { version: string }).version;
if (bindingAvailable !== (args.binding !== false)) {
  throw new Error(`ssh2 binding available=${bindingAvailable}, wanted ${args.binding !== false} (run bench/setup.sh)`);
}

const allowed = ssh2.utils.parseKey(args.authorizedKey);
if (allowed instanceof Error) throw allowed;

let received = 0;
let sent = 0;
const ZERO = Buffer.alloc(256 * 1024);

function discard(ch: any): void {
  ch.on('data', (d: Buffer) => {
    received += d.length;
  });
  ch.on('end', () => {
    ch.exit(0);
    ch.end();
  });
}

function sourceZeros(ch: any, size: number): void {
  let left = size;
  const pump = () => {
    while (left > 0) {
      const n = Math.min(ZERO.length, left);
      left -= n;
      sent += n;
      const chunk = n === ZERO.length ? ZERO : ZERO.subarray(0, n);
      if (left === 0) {
        // The last write's callback runs once everything before it went to the transport.
        ch.write(chunk, () => {
          ch.exit(0);
          ch.end();
        });
        return;
      }
      if (!ch.write(chunk)) {
        ch.once('drain', pump);
        return;
      }
    }
  };
  ch.resume();
  if (size === 0) {
    ch.exit(0);
    ch.end();
  } else pump();
}

const server = new ssh2.Server({ hostKeys: [readFileSync(args.hostKeyFile)] }, (client: any) => {
  client.setNoDelay(true);
  client.on('authentication', (ctx: any) => {
    if (
      ctx.method !== 'publickey' ||
      ctx.key.algo !== allowed.type ||
      !Buffer.from(ctx.key.data).equals(allowed.getPublicSSH()) ||
      (ctx.signature && allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true)
    ) {
      ctx.reject(['publickey']);
      return;
    }
    ctx.accept();
  });
  client.on('ready', () => {
    client.on('session', (accept: () => any) => {
      const session = accept();
      session.on('subsystem', (acceptSub: () => any, reject: () => void, info: { name: string }) => {
        if (info.name === 'test-discard') discard(acceptSub());
        else if (info.name === 'test-source') sourceZeros(acceptSub(), args.sourceBytes);
        else reject();
      });
    });
  });
  client.on('error', () => {});
  client.on('close', () => {
    send(closedReport(received, sent));
    received = 0;
    sent = 0;
  });
});

// A listener of our own so that Nagle is off from the first byte (ssh2's setNoDelay above
// would also do, once the client object exists).
const listener = net.createServer({ noDelay: true }, (socket) => server.injectSocket(socket));
listener.on('error', (err) => {
  send({ type: 'error', message: err.message });
  process.exit(1);
});
listener.listen(0, '127.0.0.1', () => {
  const { port } = listener.address() as net.AddressInfo;
  send({
    type: 'ready',
    port,
    detail: `ssh2 ${version} ${bindingAvailable ? 'with' : 'without'} its native binding, node ${process.version}`,
  });
});
