import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSshServer, type SshServerOptions } from '../../src/server.js';
import { loadHostKey } from '../../src/transport/host-keys.js';
import type { HostKey } from '../../src/transport/host-key-types.js';
import type { Authenticator } from '../../src/auth/authenticator.js';
import { createLogger, silentLogger } from '../../src/log.js';
import * as subsystems from './subsystems.js';

/** The repository root (this file runs from dist/spec/helpers). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** A TCP port on 127.0.0.1 that was free a moment ago (for servers started as other processes). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
export const FIXTURES = path.join(ROOT, 'fixtures');

export const TEST_USER = 'tester';
export const TEST_PASSWORD = 'correct horse battery staple';

export function fixtureHostKeys(names = ['ed25519', 'ecdsa256', 'ecdsa384', 'ecdsa521', 'rsa3072']): HostKey[] {
  return names.map((n) => loadHostKey(path.join(FIXTURES, 'host-keys', n)));
}

/** A password authenticator with one user, for tests of the SSH core. */
export const passwordAuth: Authenticator<string> = {
  methods: ['publickey', 'password', 'keyboard-interactive'],
  async checkPassword(ctx, password) {
    if (ctx.username === TEST_USER && password === TEST_PASSWORD) return { ok: true, principal: ctx.username };
    return { ok: false, reason: 'wrong user or password' };
  },
  async publicKeyAcceptable() {
    return false;
  },
};

export interface TestServer {
  port: number;
  close(): Promise<void>;
  options: SshServerOptions<string>;
}

export const SOURCE_BYTES = 3 * 1024 * 1024 + 17;
export const SOURCE_SEED = 7;

/** Starts an SSH server on 127.0.0.1 with the test subsystems. */
export async function startTestServer(extra: Partial<SshServerOptions<string>> = {}): Promise<TestServer> {
  const options: SshServerOptions<string> = {
    hostKeys: fixtureHostKeys(),
    authenticator: passwordAuth,
    log: process.env.S3GW_TEST_LOG ? createLogger('debug') : silentLogger,
    sessions: () => ({
      subsystem(name) {
        if (name === 'test-echo') return subsystems.echo;
        if (name === 'test-sink') return subsystems.sink;
        if (name === 'test-discard') return subsystems.discard;
        if (name === 'test-source') return subsystems.source(SOURCE_BYTES, SOURCE_SEED);
        return undefined;
      },
    }),
    ...extra,
  };
  const server = createSshServer(options);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    options,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Connections still open end with the process; close() waits only for the listener.
        resolve();
      }),
  };
}
