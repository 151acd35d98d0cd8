/**
 * Interop with paramiko 3.5.1 (spec/interop/paramiko_client.py): every algorithm paramiko shares
 * with our defaults, forced one at a time, moving data both ways with a SHA-256 check; rekeys
 * it starts itself, on demand and by volume; and strict KEX agreed by both sides.
 *
 * paramiko 3.5.1 implements neither curve25519-sha256 (only the @libssh.org name),
 * diffie-hellman-group18-sha512 nor chacha20-poly1305@openssh.com, so those are left to the
 * OpenSSH suite. It does implement AES-GCM, which is covered here.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  expectedSource,
  fixtureHostKeyBlob,
  killStrayChildren,
  makeTempDir,
  parseSinkLine,
  removeDir,
  runProcess,
  sha256,
  startObservedServer,
  type Digest,
  type ObservedConnection,
  type ObservedServer,
} from '../helpers/openssh.js';
import { ROOT, TEST_PASSWORD, TEST_USER } from '../helpers/test-server.js';

const SCRIPT = path.join(ROOT, 'spec', 'interop', 'paramiko_client.py');

const KEX = [
  'curve25519-sha256@libssh.org',
  'ecdh-sha2-nistp256',
  'ecdh-sha2-nistp384',
  'ecdh-sha2-nistp521',
  'diffie-hellman-group16-sha512',
  'diffie-hellman-group14-sha256',
];
const CIPHERS = ['aes128-ctr', 'aes192-ctr', 'aes256-ctr', 'aes128-gcm@openssh.com', 'aes256-gcm@openssh.com'];
const MACS = ['hmac-sha2-256', 'hmac-sha2-512', 'hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com'];
/** Host-key algorithm → the fixture key that must have signed. */
const HOST_KEYS: Record<string, string> = {
  'ssh-ed25519': 'ed25519',
  'ecdsa-sha2-nistp256': 'ecdsa256',
  'ecdsa-sha2-nistp384': 'ecdsa384',
  'ecdsa-sha2-nistp521': 'ecdsa521',
  'rsa-sha2-512': 'rsa3072',
  'rsa-sha2-256': 'rsa3072',
};

const UPLOAD_BYTES = 300 * 1024 + 7;
const ECHO_BYTES = 8 * 1024 * 1024 + 3;

interface ClientInfo {
  version: string;
  remoteVersion: string;
  hostKeyType: string;
  hostKey: string;
  cipherOut: string;
  cipherIn: string;
  macOut: string | null;
  macIn: string | null;
  strictKex: boolean;
}

type OpResult =
  | { op: 'sink'; output: string; exit: number }
  | { op: 'source'; sha256: string; bytes: number; exit: number }
  | { op: 'echo'; sha256: string; bytes: number; exit: number; renegotiated: boolean };

type ScriptOutput = { ok: true; client: ClientInfo; results: OpResult[] } | { ok: false; error: string; trace: string };

interface Spec {
  kex?: string;
  cipher?: string;
  mac?: string;
  hostKey?: string;
  rekeyBytes?: number;
  password?: string;
  ops: ({ op: 'sink'; path: string } | { op: 'source' } | { op: 'echo'; path: string; renegotiate?: boolean })[];
}

interface Ctx {
  server: ObservedServer;
  dir: string;
  uploadPath: string;
  uploadDigest: Digest;
  echoPath: string;
  echoDigest: Digest;
}

const test = suite<Ctx>('paramiko client interop', {} as Ctx);

test.before(async (ctx) => {
  ctx.server = await startObservedServer();
  ctx.dir = makeTempDir('paramiko');
  const upload = randomBytes(UPLOAD_BYTES);
  ctx.uploadPath = path.join(ctx.dir, 'upload.bin');
  fs.writeFileSync(ctx.uploadPath, upload);
  ctx.uploadDigest = { sha256: sha256(upload), bytes: upload.length };
  const echo = randomBytes(ECHO_BYTES);
  ctx.echoPath = path.join(ctx.dir, 'echo.bin');
  fs.writeFileSync(ctx.echoPath, echo);
  ctx.echoDigest = { sha256: sha256(echo), bytes: echo.length };
});

test.after(async (ctx) => {
  killStrayChildren();
  await ctx.server?.close();
  if (ctx.dir) removeDir(ctx.dir);
});

/** Runs the script once (one connection); returns its JSON and the server's view of the connection. */
async function paramiko(ctx: Ctx, spec: Spec): Promise<{ out: ScriptOutput; conn: ObservedConnection | undefined }> {
  const first = ctx.server.connections.length;
  const input = { port: ctx.server.port, user: TEST_USER, password: TEST_PASSWORD, ...spec };
  const r = await runProcess('python3', [SCRIPT, JSON.stringify(input)], { timeoutMs: 90_000 });
  assert.not.ok(r.timedOut, `paramiko_client.py hung\n${r.stderr}`);
  const lines = r.stdout.toString('utf8').trim().split('\n');
  let out: ScriptOutput;
  try {
    out = JSON.parse(lines[lines.length - 1]!) as ScriptOutput;
  } catch {
    throw new Error(`paramiko_client.py printed no JSON (exit ${r.code}); is paramiko installed? ` +
      `run: bash scripts/setup-test-deps.sh\n${r.stdout.toString()}\n${r.stderr}`);
  }
  assert.is(r.code, out.ok ? 0 : 1, 'the exit status matches the JSON verdict');
  return { out, conn: ctx.server.connections[first] };
}

/** uvu's `unreachable` is typed void; this one tells the compiler the test stops here. */
function fail(message: string): never {
  assert.unreachable(message);
  throw new Error(message);
}

function succeeded(out: ScriptOutput): { client: ClientInfo; results: OpResult[] } {
  if (!out.ok) fail(`paramiko failed: ${out.error}\n${out.trace}`);
  return out;
}

/** Upload into test-sink and download from test-source on one connection with the forced algorithms. */
async function bothWays(ctx: Ctx, force: Omit<Spec, 'ops'>) {
  const { out, conn } = await paramiko(ctx, {
    ...force,
    ops: [{ op: 'sink', path: ctx.uploadPath }, { op: 'source' }],
  });
  const { client, results } = succeeded(out);
  const [sink, source] = results;
  if (sink?.op !== 'sink') fail('no sink result');
  assert.is(sink.exit, 0);
  assert.equal(parseSinkLine(sink.output), ctx.uploadDigest, 'test-sink saw other bytes than were uploaded');
  if (source?.op !== 'source') fail('no source result');
  assert.is(source.exit, 0);
  assert.equal({ sha256: source.sha256, bytes: source.bytes }, expectedSource(), 'paramiko received other bytes');
  if (!conn) fail('the server saw no connection');
  assert.ok(conn.kexes.length >= 1, 'the server completed a key exchange');
  return { client, conn };
}

test('strict KEX: paramiko and the server both agreed on it', async (ctx) => {
  const { client, conn } = await bothWays(ctx, {});
  assert.is(client.strictKex, true, 'paramiko did not agree on strict KEX');
  assert.is(conn.strictKex, true, 'the server did not run strict KEX');
  assert.is(client.remoteVersion, 'SSH-2.0-s3gw_0.1');
});

test('password: a wrong password is refused', async (ctx) => {
  const logins = ctx.server.logins.length;
  const { out } = await paramiko(ctx, { password: 'Tr0ub4dor&3', ops: [{ op: 'sink', path: ctx.uploadPath }] });
  assert.is(out.ok, false, 'a wrong password logged in');
  if (!out.ok) assert.match(out.error, /AuthenticationException/);
  assert.is(ctx.server.logins.length, logins);
});

for (const kex of KEX) {
  test(`kex ${kex}: data intact both ways`, async (ctx) => {
    const { conn } = await bothWays(ctx, { kex });
    assert.is(conn.kexes[0]!.kex, kex);
  });
}

for (const cipher of CIPHERS) {
  test(`cipher ${cipher}: data intact both ways`, async (ctx) => {
    const { client, conn } = await bothWays(ctx, { cipher });
    assert.equal([client.cipherOut, client.cipherIn], [cipher, cipher]);
    assert.equal([conn.kexes[0]!.cipherC2S, conn.kexes[0]!.cipherS2C], [cipher, cipher]);
    if (cipher.includes('gcm')) assert.equal([conn.kexes[0]!.macC2S, conn.kexes[0]!.macS2C], [null, null]);
  });
}

for (const mac of MACS) {
  test(`mac ${mac} with aes128-ctr: data intact both ways`, async (ctx) => {
    const { client, conn } = await bothWays(ctx, { cipher: 'aes128-ctr', mac });
    assert.equal([client.macOut, client.macIn], [mac, mac]);
    assert.equal([conn.kexes[0]!.macC2S, conn.kexes[0]!.macS2C], [mac, mac]);
  });
}

for (const [alg, fixture] of Object.entries(HOST_KEYS)) {
  test(`host key ${alg}: the fixture key signed, data intact both ways`, async (ctx) => {
    const { client, conn } = await bothWays(ctx, { hostKey: alg });
    assert.is(client.hostKeyType, alg);
    assert.is(conn.kexes[0]!.hostKey, alg);
    assert.is(client.hostKey, fixtureHostKeyBlob(fixture).toString('hex'), `not the ${fixture} fixture key`);
  });
}

test('client rekey: renegotiate_keys() in the middle of an 8 MiB echo leaves it intact', async (ctx) => {
  const { out, conn } = await paramiko(ctx, { ops: [{ op: 'echo', path: ctx.echoPath, renegotiate: true }] });
  const { results } = succeeded(out);
  const echo = results[0];
  if (echo?.op !== 'echo') fail('no echo result');
  if (!conn) fail('the server saw no connection');
  assert.is(echo.renegotiated, true, 'renegotiate_keys() did not return');
  assert.is(echo.exit, 0);
  assert.equal({ sha256: echo.sha256, bytes: echo.bytes }, ctx.echoDigest, 'the echo differs from what was sent');
  assert.ok(conn.rekeys >= 1, 'the server saw no re-exchange');
});

test('client rekey by volume: REKEY_BYTES of 1 MiB on an 8 MiB echo leaves it intact', async (ctx) => {
  const { out, conn } = await paramiko(ctx, {
    rekeyBytes: 1024 * 1024,
    cipher: 'aes256-gcm@openssh.com',
    ops: [{ op: 'echo', path: ctx.echoPath }],
  });
  const { results } = succeeded(out);
  const echo = results[0];
  if (echo?.op !== 'echo') fail('no echo result');
  if (!conn) fail('the server saw no connection');
  assert.is(echo.exit, 0);
  assert.equal({ sha256: echo.sha256, bytes: echo.bytes }, ctx.echoDigest, 'the echo differs from what was sent');
  // 16 MiB cross the wire with a 1 MiB limit: paramiko asks for new keys many times.
  assert.ok(conn.rekeys >= 4, `the server saw only ${conn.rekeys} re-exchanges`);
  for (const k of conn.kexes) assert.is(k.cipherC2S, 'aes256-gcm@openssh.com');
});

test.run();
