// Records the first bytes of real OpenSSH client sessions against our server, with the
// server's ephemeral X25519 key fixed, into fixtures/vectors/openssh-session.json. The unit
// test spec/transport/recorded-session.test.ts replays them offline: it recomputes K, H and
// the six keys, checks H against the server signature the client accepted, and decrypts the
// client's first encrypted packet. Run: npm run build && node dist/scripts/record-openssh-session.js
import net from 'node:net';
import { spawn } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { serveConnection } from '../src/server.js';
import { KEX_METHODS } from '../src/transport/kex/index.js';
import { curve25519Kex } from '../src/transport/kex/curve25519.js';
import { fixtureHostKeys, passwordAuth, FIXTURES, TEST_PASSWORD } from '../spec/helpers/test-server.js';

const SERVER_SECRET = Buffer.from('a8abababababababababababababababababababababababababababababab6a', 'hex');
const configs = [
  { cipher: 'aes128-ctr', mac: 'hmac-sha2-256' },
  { cipher: 'aes256-gcm@openssh.com', mac: 'hmac-sha2-256' },
  { cipher: 'chacha20-poly1305@openssh.com', mac: 'hmac-sha2-256' },
];

async function record(cipher: string, mac: string) {
  const c2s: Buffer[] = [];
  const s2c: Buffer[] = [];
  const hostKeys = fixtureHostKeys(['ed25519']);
  const server = net.createServer((sock) => {
    sock.on('data', (d) => c2s.push(Buffer.from(d)));
    const write = sock.write.bind(sock);
    sock.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      s2c.push(Buffer.from(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk));
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof sock.write;
    serveConnection(sock, {
      hostKeys,
      authenticator: passwordAuth,
      sessions: () => ({}),
      kexMethods: { ...KEX_METHODS, 'curve25519-sha256': () => curve25519Kex('curve25519-sha256', () => Uint8Array.from(SERVER_SECRET)) },
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const dir = mkdtempSync(path.join(os.tmpdir(), 's3gw-rec-'));
  const askpass = path.join(dir, 'askpass.sh');
  writeFileSync(askpass, `#!/bin/sh\necho '${TEST_PASSWORD}'\n`, { mode: 0o700 });
  await new Promise<void>((resolve) => {
    const p = spawn('ssh', ['-p', String(port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
      '-o', 'KexAlgorithms=curve25519-sha256', '-o', `Ciphers=${cipher}`, '-o', `MACs=${mac}`, '-o', 'HostKeyAlgorithms=ssh-ed25519',
      '-o', 'PreferredAuthentications=password', '-o', 'LogLevel=ERROR', 'tester@127.0.0.1', '-s', 'none'],
      { env: { ...process.env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' }, stdio: ['ignore', 'ignore', 'inherit'] });
    p.on('exit', () => resolve());
  });
  server.close();
  rmSync(dir, { recursive: true });
  const client = Buffer.concat(c2s);
  const srv = Buffer.concat(s2c);
  return {
    cipher,
    mac,
    kex: 'curve25519-sha256',
    hostKey: path.relative(FIXTURES, path.join(FIXTURES, 'host-keys', 'ed25519')),
    serverEphemeralSecret: SERVER_SECRET.toString('hex'),
    // Enough of each direction to hold the handshake and the first encrypted packets.
    clientToServer: client.subarray(0, 4096).toString('hex'),
    serverToClient: srv.subarray(0, 4096).toString('hex'),
  };
}

const sessions = [];
for (const c of configs) sessions.push(await record(c.cipher, c.mac));
const out = {
  source: 'Recorded by scripts/record-openssh-session.ts: OpenSSH_9.2p1 Debian-2+deb12u6 client against s3gw with a fixed server X25519 secret',
  sessions,
};
writeFileSync(path.join(FIXTURES, 'vectors', 'openssh-session.json'), JSON.stringify(out, null, 2) + '\n');
console.log(`recorded ${sessions.length} sessions`);
