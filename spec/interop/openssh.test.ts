/**
 * Interop with the real OpenSSH client (Debian openssh-client 9.2p1): every algorithm we offer,
 * forced one at a time, moving data both ways with a SHA-256 check; rekeys started by either
 * side; strict KEX; every authentication method; and the refusals (shell, exec, forwarding).
 *
 * Each check is made from both ends where it can be: what ssh printed or exited with, and what
 * the server's own Transport negotiated, counted or logged in.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  countLines,
  createSshClientEnv,
  expectedSource,
  generateUserKey,
  killStrayChildren,
  parseSinkLine,
  publicKeyAuth,
  runSsh,
  sha256,
  sleep,
  startObservedServer,
  waitFor,
  writeChunk,
  type Digest,
  type ObservedConnection,
  type ObservedServer,
  type RunResult,
  type SshClientEnv,
  type UserKey,
} from '../helpers/openssh.js';
import { FIXTURES, fixtureHostKeys } from '../helpers/test-server.js';
import { loadHostKey } from '../../src/transport/host-keys.js';

const KEX = [
  'curve25519-sha256',
  'curve25519-sha256@libssh.org',
  'ecdh-sha2-nistp256',
  'ecdh-sha2-nistp384',
  'ecdh-sha2-nistp521',
  'diffie-hellman-group16-sha512',
  'diffie-hellman-group18-sha512',
  'diffie-hellman-group14-sha256',
];
const CIPHERS = [
  'aes128-gcm@openssh.com',
  'aes256-gcm@openssh.com',
  'chacha20-poly1305@openssh.com',
  'aes128-ctr',
  'aes192-ctr',
  'aes256-ctr',
];
const MACS = ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256', 'hmac-sha2-512'];
const HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
];
const AEAD = new Set(['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com']);

/** Small enough that the whole matrix stays fast, odd-sized so no block boundary is assumed. */
const UPLOAD_BYTES = 300 * 1024 + 7;
const BIG_BYTES = 50 * 1024 * 1024;

interface Ctx {
  env: SshClientEnv;
  /** Defaults: what a deployment runs. */
  main: ObservedServer;
  sha1Mac: ObservedServer;
  sshRsa: ObservedServer;
  /** allowSshRsaSha1 on the server and on the host keys it was given. */
  sshRsaKeys: ObservedServer;
  /** Server-initiated rekeys by volume and by time. */
  rekeyBytes: ObservedServer;
  rekeyInterval: ObservedServer;
  /** Lets `tester` in with exactly `allowedKeys`. */
  keys: ObservedServer;
  /** The same with ssh-rsa (SHA-1) user-key signatures allowed. */
  keysSha1: ObservedServer;
  allowedKeys: Buffer[];
  ed25519: UserKey;
  ecdsa: UserKey;
  rsa: UserKey;
  stranger: UserKey;
  upload: Buffer;
  uploadDigest: Digest;
  big: Buffer;
  bigDigest: Digest;
}

const test = suite<Ctx>('OpenSSH client interop', {} as Ctx);

test.before(async (ctx) => {
  ctx.env = createSshClientEnv();
  ctx.allowedKeys = [];
  const sha1HostKeys = [
    ...fixtureHostKeys(['ed25519', 'ecdsa256', 'ecdsa384', 'ecdsa521']),
    loadHostKey(path.join(FIXTURES, 'host-keys', 'rsa3072'), { allowSshRsaSha1: true }),
  ];
  const keyAuth = publicKeyAuth(() => ctx.allowedKeys);
  [ctx.main, ctx.sha1Mac, ctx.sshRsa, ctx.sshRsaKeys, ctx.rekeyBytes, ctx.rekeyInterval, ctx.keys, ctx.keysSha1] =
    await Promise.all([
      startObservedServer(),
      startObservedServer({ allowSha1Mac: true }),
      startObservedServer({ allowSshRsaSha1: true }),
      startObservedServer({ allowSshRsaSha1: true, hostKeys: sha1HostKeys }),
      startObservedServer({ rekeyBytes: 1024 * 1024 }),
      startObservedServer({ rekeyIntervalMs: 200 }),
      startObservedServer({ authenticator: keyAuth }),
      startObservedServer({ authenticator: keyAuth, allowSshRsaSha1: true }),
    ]);
  [ctx.ed25519, ctx.ecdsa, ctx.rsa, ctx.stranger] = await Promise.all([
    generateUserKey(ctx.env.dir, 'id_ed25519', 'ed25519'),
    generateUserKey(ctx.env.dir, 'id_ecdsa', 'ecdsa', 256),
    generateUserKey(ctx.env.dir, 'id_rsa', 'rsa', 2048),
    generateUserKey(ctx.env.dir, 'id_stranger', 'ed25519'),
  ]);
  ctx.allowedKeys.push(ctx.ed25519.blob, ctx.ecdsa.blob, ctx.rsa.blob);
  ctx.upload = randomBytes(UPLOAD_BYTES);
  ctx.uploadDigest = { sha256: sha256(ctx.upload), bytes: ctx.upload.length };
  ctx.big = randomBytes(BIG_BYTES);
  ctx.bigDigest = { sha256: sha256(ctx.big), bytes: ctx.big.length };
});

test.after(async (ctx) => {
  killStrayChildren();
  await Promise.all(
    [ctx.main, ctx.sha1Mac, ctx.sshRsa, ctx.sshRsaKeys, ctx.rekeyBytes, ctx.rekeyInterval, ctx.keys, ctx.keysSha1].map(
      (s) => s?.close(),
    ),
  );
  ctx.env?.cleanup();
});

// ------------------------------------------------------------------ helpers

function assertExit0(r: RunResult, what: string): void {
  assert.not.ok(r.timedOut, `${what}: ssh did not finish before its deadline\n${r.stderr}`);
  assert.is(r.code, 0, `${what}: ssh exited ${r.code}\n${r.stderr}`);
}

function assertFailed(r: RunResult, what: string): void {
  assert.not.ok(r.timedOut, `${what}: ssh hung instead of failing\n${r.stderr}`);
  assert.is(r.code, 255, `${what}: ssh exited ${r.code}, expected 255\n${r.stderr}`);
}

function sinkDigest(r: RunResult): Digest | null {
  return parseSinkLine(r.stdout.toString('latin1'));
}

/**
 * Uploads the random payload into test-sink and downloads test-source, each on its own
 * connection with the same ssh options; returns the two connections as the server saw them.
 */
async function bothWays(ctx: Ctx, server: ObservedServer, args: string[]): Promise<ObservedConnection[]> {
  const first = server.connections.length;
  const up = await runSsh(ctx.env, { port: server.port, args, subsystem: 'test-sink', stdin: ctx.upload });
  assertExit0(up, `upload with ${args.join(' ')}`);
  assert.equal(sinkDigest(up), ctx.uploadDigest, 'test-sink saw other bytes than were uploaded');
  const down = await runSsh(ctx.env, { port: server.port, args, subsystem: 'test-source' });
  assertExit0(down, `download with ${args.join(' ')}`);
  assert.equal(down.stdoutDigest, expectedSource(), 'ssh received other bytes than test-source sent');
  const conns = server.connections.slice(first);
  assert.is(conns.length, 2, 'one connection per ssh run');
  for (const c of conns) assert.is(c.kexes.length >= 1, true, 'the server completed a key exchange');
  return conns;
}

/** Pushes the 50 MiB payload through test-echo; checks it came back whole. */
async function bigEcho(
  ctx: Ctx,
  server: ObservedServer,
  args: string[],
): Promise<{ run: RunResult; conn: ObservedConnection }> {
  const first = server.connections.length;
  const run = await runSsh(ctx.env, {
    port: server.port,
    args,
    subsystem: 'test-echo',
    stdin: ctx.big,
    verbose: 1,
    timeoutMs: 90_000,
  });
  assertExit0(run, `50 MiB echo with ${args.join(' ')}`);
  assert.equal(run.stdoutDigest, ctx.bigDigest, 'the echoed 50 MiB differ from what was sent');
  const conns = server.connections.slice(first);
  assert.is(conns.length, 1);
  return { run, conn: conns[0]! };
}

// ------------------------------------------------------------------ transport

test('strict KEX: ssh -vvv says it will use strict KEX ordering, and the server agreed', async (ctx) => {
  const first = ctx.main.connections.length;
  const r = await runSsh(ctx.env, {
    port: ctx.main.port,
    subsystem: 'test-sink',
    stdin: ctx.upload,
    verbose: 3,
  });
  assertExit0(r, 'strict kex');
  assert.ok(r.stderr.includes('will use strict KEX ordering'), 'ssh did not report strict KEX');
  assert.equal(sinkDigest(r), ctx.uploadDigest);
  assert.is(ctx.main.connections[first]?.strictKex, true, 'the server did not run strict KEX');
});

for (const kex of KEX) {
  test(`kex ${kex}: data intact both ways`, async (ctx) => {
    const conns = await bothWays(ctx, ctx.main, ['-o', `KexAlgorithms=${kex}`]);
    for (const c of conns) assert.is(c.kexes[0]!.kex, kex);
  });
}

for (const cipher of CIPHERS) {
  test(`cipher ${cipher}: data intact both ways`, async (ctx) => {
    const conns = await bothWays(ctx, ctx.main, ['-o', `Ciphers=${cipher}`]);
    for (const c of conns) {
      const n = c.kexes[0]!;
      assert.is(n.cipherC2S, cipher);
      assert.is(n.cipherS2C, cipher);
      // An AEAD cipher carries its own tag: no MAC may be chosen with it.
      if (AEAD.has(cipher)) assert.equal([n.macC2S, n.macS2C], [null, null]);
      else assert.ok(n.macC2S !== null && n.macS2C !== null, 'a CTR cipher needs a MAC');
    }
  });
}

for (const mac of MACS) {
  test(`mac ${mac} with aes128-ctr: data intact both ways`, async (ctx) => {
    const conns = await bothWays(ctx, ctx.main, ['-o', 'Ciphers=aes128-ctr', '-o', `MACs=${mac}`]);
    for (const c of conns) assert.equal([c.kexes[0]!.macC2S, c.kexes[0]!.macS2C], [mac, mac]);
  });
}

test('mac hmac-sha1 is refused by default', async (ctx) => {
  const first = ctx.main.connections.length;
  const r = await runSsh(ctx.env, {
    port: ctx.main.port,
    args: ['-o', 'Ciphers=aes128-ctr', '-o', 'MACs=hmac-sha1'],
    subsystem: 'test-sink',
  });
  assertFailed(r, 'hmac-sha1 against the default server');
  assert.ok(r.stderr.includes('no matching MAC found'), r.stderr);
  assert.is(ctx.main.connections[first]!.kexes.length, 0, 'no key exchange may complete');
});

for (const mac of ['hmac-sha1', 'hmac-sha1-etm@openssh.com']) {
  test(`mac ${mac} works when the server allows SHA-1 MACs`, async (ctx) => {
    const conns = await bothWays(ctx, ctx.sha1Mac, ['-o', 'Ciphers=aes128-ctr', '-o', `MACs=${mac}`]);
    for (const c of conns) assert.equal([c.kexes[0]!.macC2S, c.kexes[0]!.macS2C], [mac, mac]);
  });
}

for (const alg of HOST_KEY_ALGORITHMS) {
  // known_hosts pins the fixture keys and StrictHostKeyChecking=yes: ssh checked the key and
  // its signature over the exchange hash.
  test(`host key ${alg}: verified against known_hosts, data intact both ways`, async (ctx) => {
    const conns = await bothWays(ctx, ctx.main, ['-o', `HostKeyAlgorithms=${alg}`]);
    for (const c of conns) assert.is(c.kexes[0]!.hostKey, alg);
  });
}

test('host key ssh-rsa (SHA-1) is refused by default', async (ctx) => {
  const first = ctx.main.connections.length;
  const r = await runSsh(ctx.env, {
    port: ctx.main.port,
    args: ['-o', 'HostKeyAlgorithms=ssh-rsa', '-o', 'PubkeyAcceptedAlgorithms=+ssh-rsa'],
    subsystem: 'test-sink',
  });
  assertFailed(r, 'ssh-rsa against the default server');
  assert.ok(r.stderr.includes('no matching host key type'), r.stderr);
  assert.is(ctx.main.connections[first]!.kexes.length, 0, 'no key exchange may complete');
});

test('host key ssh-rsa works when the server allows SHA-1 RSA signatures', async (ctx) => {
  // SshServerOptions.allowSshRsaSha1 promises "ssh-rsa (SHA-1) host and user key signatures";
  // the host keys here are the ordinary fixtures, loaded without any option.
  const args = ['-o', 'HostKeyAlgorithms=ssh-rsa', '-o', 'PubkeyAcceptedAlgorithms=+ssh-rsa'];
  const conns = await bothWays(ctx, ctx.sshRsa, args);
  for (const c of conns) assert.is(c.kexes[0]!.hostKey, 'ssh-rsa');
});

test('host key ssh-rsa works when the host keys are also loaded with allowSshRsaSha1', async (ctx) => {
  const args = ['-o', 'HostKeyAlgorithms=ssh-rsa', '-o', 'PubkeyAcceptedAlgorithms=+ssh-rsa'];
  const conns = await bothWays(ctx, ctx.sshRsaKeys, args);
  for (const c of conns) assert.is(c.kexes[0]!.hostKey, 'ssh-rsa');
});

// ------------------------------------------------------------------ rekeying

for (const [name, args] of [
  ['aes128-gcm@openssh.com', ['-o', 'Ciphers=aes128-gcm@openssh.com']],
  ['chacha20-poly1305@openssh.com', ['-o', 'Ciphers=chacha20-poly1305@openssh.com']],
  ['aes128-ctr + hmac-sha2-256-etm', ['-o', 'Ciphers=aes128-ctr', '-o', 'MACs=hmac-sha2-256-etm@openssh.com']],
] as const) {
  test(`client rekeys (RekeyLimit=1M) with ${name}: 50 MiB echoed intact`, async (ctx) => {
    const { run, conn } = await bigEcho(ctx, ctx.main, ['-o', 'RekeyLimit=1M', ...args]);
    // 100 MiB cross the wire with a 1 MiB limit: dozens of rekeys. The first NEWKEYS is the
    // initial exchange, so more than one line means ssh re-keyed.
    assert.ok(countLines(run.stderr, 'SSH2_MSG_NEWKEYS received') > 10, 'ssh did not re-key');
    assert.ok(conn.rekeys > 10, `the server completed only ${conn.rekeys} re-exchanges`);
    for (const k of conn.kexes) assert.is(k.cipherC2S, args[1].slice('Ciphers='.length));
  });
}

test('server rekeys by volume (rekeyBytes 1 MiB): 50 MiB echoed intact', async (ctx) => {
  // ssh runs with its default RekeyLimit (gigabytes for AES-GCM), so every rekey here is the
  // server's own.
  const { run, conn } = await bigEcho(ctx, ctx.rekeyBytes, []);
  assert.ok(conn.rekeys > 10, `the server re-keyed only ${conn.rekeys} times`);
  assert.ok(countLines(run.stderr, 'SSH2_MSG_NEWKEYS received') > 10, 'ssh saw no re-exchange');
});

test('server rekeys by time (rekeyIntervalMs 200): a slow 1.6 s transfer is echoed intact', async (ctx) => {
  const chunks = Array.from({ length: 16 }, () => randomBytes(32 * 1024));
  const sent = Buffer.concat(chunks);
  const first = ctx.rekeyInterval.connections.length;
  const r = await runSsh(ctx.env, {
    port: ctx.rekeyInterval.port,
    subsystem: 'test-echo',
    verbose: 1,
    stdin: async (stdin) => {
      for (const c of chunks) {
        await writeChunk(stdin, c);
        await sleep(100);
      }
      stdin.end();
    },
  });
  assertExit0(r, 'slow echo');
  assert.equal(r.stdoutDigest, { sha256: sha256(sent), bytes: sent.length });
  const conn = ctx.rekeyInterval.connections[first]!;
  assert.ok(conn.rekeys >= 3, `the server re-keyed only ${conn.rekeys} times in 1.6 s`);
  assert.ok(countLines(r.stderr, 'SSH2_MSG_NEWKEYS received') >= 4, 'ssh saw too few key exchanges');
});

// ------------------------------------------------------------------ flow control

test('a client that reads its echo late: 8 MiB through test-echo, stdout unread for 1 s, intact', async (ctx) => {
  // While ssh's stdout is not read, ssh stops granting window, the echo's writes wait and the
  // channel's inbound buffer fills until our window is spent; once stdout is read again, the
  // server must reopen its window or both sides wait for each other for ever.
  const data = ctx.big.subarray(0, 8 * 1024 * 1024);
  const r = await runSsh(ctx.env, {
    port: ctx.main.port,
    subsystem: 'test-echo',
    stdin: data,
    stdoutDelayMs: 1000,
    timeoutMs: 20_000,
  });
  assertExit0(r, `late reader (${r.stdoutDigest.bytes} of ${data.length} bytes came back)`);
  assert.equal(r.stdoutDigest, { sha256: sha256(data), bytes: data.length });
});

// ------------------------------------------------------------------ authentication

test('password: the right password logs in', async (ctx) => {
  const logins = ctx.main.logins.length;
  const r = await runSsh(ctx.env, { port: ctx.main.port, subsystem: 'test-sink', stdin: ctx.upload });
  assertExit0(r, 'password login');
  assert.equal(sinkDigest(r), ctx.uploadDigest);
  assert.is(ctx.main.logins.length, logins + 1);
  assert.is(ctx.main.logins[logins]!.method, 'password');
  assert.is(ctx.main.logins[logins]!.username, 'tester');
});

test('password: a wrong password is denied', async (ctx) => {
  const logins = ctx.main.logins.length;
  const r = await runSsh(ctx.env, {
    port: ctx.main.port,
    subsystem: 'test-sink',
    password: 'correct horse battery stapler',
  });
  assertFailed(r, 'wrong password');
  assert.ok(r.stderr.includes('Permission denied'), r.stderr);
  assert.is(ctx.main.logins.length, logins, 'nobody may have logged in');
});

test('keyboard-interactive: the password answers the prompt', async (ctx) => {
  const logins = ctx.main.logins.length;
  const r = await runSsh(ctx.env, {
    port: ctx.main.port,
    auth: 'keyboard-interactive',
    subsystem: 'test-sink',
    stdin: ctx.upload,
  });
  assertExit0(r, 'keyboard-interactive login');
  assert.equal(sinkDigest(r), ctx.uploadDigest);
  assert.is(ctx.main.logins[logins]?.method, 'keyboard-interactive');
});

test('keyboard-interactive: a wrong answer is denied', async (ctx) => {
  const logins = ctx.main.logins.length;
  const r = await runSsh(ctx.env, {
    port: ctx.main.port,
    auth: 'keyboard-interactive',
    subsystem: 'test-sink',
    password: 'not it',
  });
  assertFailed(r, 'wrong keyboard-interactive answer');
  assert.ok(r.stderr.includes('Permission denied'), r.stderr);
  assert.is(ctx.main.logins.length, logins);
});

for (const [name, pick, keyType, sigAlg] of [
  ['ed25519', (c: Ctx) => c.ed25519, 'ED25519', 'ssh-ed25519'],
  ['ecdsa-sha2-nistp256', (c: Ctx) => c.ecdsa, 'ECDSA', 'ecdsa-sha2-nistp256'],
  // server-sig-algs (RFC 8308) is what lets ssh sign with rsa-sha2-512 instead of ssh-rsa.
  ['RSA', (c: Ctx) => c.rsa, 'RSA', 'rsa-sha2-512'],
] as const) {
  test(`publickey ${name}: the allowed key logs in, signing with ${sigAlg}`, async (ctx) => {
    const logins = ctx.keys.logins.length;
    const r = await runSsh(ctx.env, {
      port: ctx.keys.port,
      args: ['-i', pick(ctx).path],
      auth: 'publickey',
      subsystem: 'test-sink',
      stdin: ctx.upload,
      verbose: 3,
    });
    assertExit0(r, `publickey ${name}`);
    assert.equal(sinkDigest(r), ctx.uploadDigest);
    assert.ok(r.stderr.includes(`Server accepts key: ${pick(ctx).path} ${keyType}`), 'the key query was not accepted');
    assert.ok(r.stderr.includes(`signing using ${sigAlg} `), `ssh did not sign with ${sigAlg}`);
    assert.is(ctx.keys.logins.length, logins + 1);
    assert.is(ctx.keys.logins[logins]!.method, 'publickey');
  });
}

test('publickey RSA: an ssh-rsa (SHA-1) signature is refused by default', async (ctx) => {
  const logins = ctx.keys.logins.length;
  const r = await runSsh(ctx.env, {
    port: ctx.keys.port,
    args: ['-i', ctx.rsa.path, '-o', 'PubkeyAcceptedAlgorithms=ssh-rsa'],
    auth: 'publickey',
    subsystem: 'test-sink',
  });
  assertFailed(r, 'ssh-rsa user key signature');
  assert.ok(r.stderr.includes('Permission denied (publickey)'), r.stderr);
  assert.is(ctx.keys.logins.length, logins);
});

test('publickey RSA: an ssh-rsa (SHA-1) signature is accepted when the server allows it', async (ctx) => {
  const logins = ctx.keysSha1.logins.length;
  const r = await runSsh(ctx.env, {
    port: ctx.keysSha1.port,
    args: ['-i', ctx.rsa.path, '-o', 'PubkeyAcceptedAlgorithms=ssh-rsa'],
    auth: 'publickey',
    subsystem: 'test-sink',
    stdin: ctx.upload,
    verbose: 3,
  });
  assertExit0(r, 'ssh-rsa user key signature, allowed');
  assert.ok(r.stderr.includes('signing using ssh-rsa '), 'ssh did not sign with ssh-rsa');
  assert.equal(sinkDigest(r), ctx.uploadDigest);
  assert.is(ctx.keysSha1.logins[logins]?.method, 'publickey');
});

test('publickey: a key the authenticator does not know is refused', async (ctx) => {
  const logins = ctx.keys.logins.length;
  const r = await runSsh(ctx.env, {
    port: ctx.keys.port,
    args: ['-i', ctx.stranger.path],
    auth: 'publickey',
    subsystem: 'test-sink',
  });
  assertFailed(r, 'unknown key');
  assert.ok(r.stderr.includes('Permission denied (publickey)'), r.stderr);
  assert.is(ctx.keys.logins.length, logins);
});

// ------------------------------------------------------------------ what a session may not do

test('no shell: ssh without a command fails cleanly', async (ctx) => {
  const r = await runSsh(ctx.env, { port: ctx.main.port, args: ['-T'] });
  assertFailed(r, 'shell');
  assert.ok(r.stderr.includes('shell request failed'), r.stderr);
});

test('no exec: ssh with a command is refused', async (ctx) => {
  const r = await runSsh(ctx.env, { port: ctx.main.port, args: ['-T'], command: 'echo pwned' });
  assertFailed(r, 'exec');
  assert.ok(r.stderr.includes('exec request failed'), r.stderr);
  assert.not.ok(r.stdout.toString().includes('pwned'));
});

test('no remote forwarding: -R with ExitOnForwardFailure makes ssh exit with an error', async (ctx) => {
  const r = await runSsh(ctx.env, {
    port: ctx.main.port,
    args: ['-R', '0:127.0.0.1:9', '-o', 'ExitOnForwardFailure=yes', '-N'],
  });
  assertFailed(r, 'remote forward');
  assert.ok(r.stderr.includes('remote port forwarding failed'), r.stderr);
});

test('no local forwarding: a -L connection is refused, the session and the server carry on', async (ctx) => {
  const sock = path.join(ctx.env.dir, 'forward.sock');
  const first = ctx.main.connections.length;
  let forwardedBytes = -1;
  const r = await runSsh(ctx.env, {
    port: ctx.main.port,
    args: ['-L', `${sock}:127.0.0.1:9`],
    subsystem: 'test-sink',
    verbose: 1,
    stdin: async (stdin) => {
      await waitFor('the -L listener', () => fs.existsSync(sock));
      // ssh accepts, asks the server for a direct-tcpip channel, is refused and hangs up on us.
      forwardedBytes = await new Promise<number>((resolve, reject) => {
        let n = 0;
        const c = net.connect(sock);
        c.on('data', (d: Buffer) => (n += d.length));
        c.on('error', reject);
        c.on('close', () => resolve(n));
        c.setTimeout(10_000, () => reject(new Error('the forwarded connection was neither served nor closed')));
      });
      await writeChunk(stdin, ctx.upload);
      stdin.end();
    },
  });
  assertExit0(r, 'session alongside a refused -L');
  assert.is(forwardedBytes, 0, 'nothing may come through a refused forward');
  assert.ok(/open failed: administratively prohibited/.test(r.stderr), r.stderr);
  assert.equal(sinkDigest(r), ctx.uploadDigest, 'the session must carry on after the refused channel');
  assert.is(ctx.main.connections.length, first + 1, 'all of it on one connection');
  fs.rmSync(sock, { force: true });
  // And the server still takes new connections.
  const again = await runSsh(ctx.env, { port: ctx.main.port, subsystem: 'test-sink', stdin: ctx.upload });
  assertExit0(again, 'a new connection after the refused forward');
  assert.equal(sinkDigest(again), ctx.uploadDigest);
});

test('keepalives: ServerAliveInterval=1 CountMax=2 on an idle 4 s session are answered', async (ctx) => {
  const head = ctx.upload.subarray(0, 1024);
  const r = await runSsh(ctx.env, {
    port: ctx.main.port,
    args: ['-o', 'ServerAliveInterval=1', '-o', 'ServerAliveCountMax=2'],
    subsystem: 'test-sink',
    verbose: 3,
    stdin: async (stdin) => {
      await writeChunk(stdin, head);
      // Silence longer than ServerAliveInterval × ServerAliveCountMax: unanswered keepalives
      // would make ssh drop the connection ("Timeout, server not responding").
      await sleep(4000);
      await writeChunk(stdin, ctx.upload.subarray(1024));
      stdin.end();
    },
  });
  assertExit0(r, 'idle session with keepalives');
  assert.not.ok(r.stderr.includes('not responding'), r.stderr);
  assert.equal(sinkDigest(r), ctx.uploadDigest);
  // keepalive@openssh.com is GLOBAL_REQUEST (80); we answer REQUEST_FAILURE (82), which counts.
  assert.ok(countLines(r.stderr, 'send packet: type 80') >= 2, 'ssh sent no keepalives');
  assert.ok(countLines(r.stderr, 'receive packet: type 82') >= 2, 'keepalives went unanswered');
});

test.run();
