import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import { ed25519 } from '@noble/curves/ed25519.js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { SshReader } from '../../src/wire/reader.js';
import { SshWriter, encodeString } from '../../src/wire/writer.js';
import { DISCONNECT, MSG } from '../../src/transport/constants.js';
import type { Authenticator } from '../../src/auth/authenticator.js';
import { createSshServer } from '../../src/server.js';
import { TEST_PASSWORD, TEST_USER, passwordAuth, startTestServer, type TestServer } from '../helpers/test-server.js';
import { PeerDisconnected, RawClient, destroyAllClients, expectDisconnect, withTimeout } from '../helpers/raw-client.js';

/**
 * Hostile input to user authentication (RFC 4252, RFC 4256) on a live server: messages out
 * of order, server-only messages from the client (libssh CVE-2018-10933), attempt limits,
 * oversized credentials, and publickey requests whose signature does not belong to the key
 * they name (cf. Go CVE-2024-45337).
 */

/** The one user key the server accepts, and a second key it has never heard of. */
const goodKey = ed25519.utils.randomSecretKey();
const otherKey = ed25519.utils.randomSecretKey();

function ed25519Blob(secretKey: Uint8Array): Buffer {
  return Buffer.from(new SshWriter(64).string('ssh-ed25519').string(ed25519.getPublicKey(secretKey)).bytes());
}
const GOOD_BLOB = ed25519Blob(goodKey);

/** passwordAuth plus publickey for GOOD_BLOB only. */
const keyAuth: Authenticator<string> = {
  ...passwordAuth,
  async publicKeyAcceptable(ctx, key) {
    return ctx.username === TEST_USER && Buffer.from(key.blob).equals(GOOD_BLOB);
  },
  async checkPublicKey(ctx, key) {
    if (ctx.username === TEST_USER && Buffer.from(key.blob).equals(GOOD_BLOB)) return { ok: true, principal: ctx.username };
    return { ok: false, reason: 'unknown key' };
  },
};

let server: TestServer;

async function authenticating(): Promise<RawClient> {
  const c = await RawClient.connect(server.port);
  await c.handshake();
  await c.serviceRequest();
  return c;
}

/**
 * A publickey USERAUTH_REQUEST (RFC 4252 §7) naming `blob`, signed with `signer` over
 * `sessionId` (by default the real one).
 */
function publickeyRequest(
  c: RawClient,
  user: string,
  blob: Uint8Array,
  signer: Uint8Array | null,
  sessionId: Uint8Array = c.sessionId!,
  alg = 'ssh-ed25519',
): Buffer {
  const fields = new SshWriter(128).bool(signer !== null).string(alg).string(blob).bytes();
  const head = c.userauthRequest(user, 'publickey', fields);
  if (signer === null) return head;
  const sig = ed25519.sign(Buffer.concat([encodeString(sessionId), head]), signer);
  const sigBlob = new SshWriter(80).string('ssh-ed25519').string(sig).bytes();
  return Buffer.concat([head, encodeString(sigBlob)]);
}

async function assertLoginWorks(): Promise<void> {
  const c = await RawClient.login(server.port, TEST_USER, TEST_PASSWORD);
  c.sendGlobalRequest('keepalive@openssh.com', true);
  await c.expect(MSG.REQUEST_FAILURE);
  c.close();
}

const Auth = suite('auth/hostile');
Auth.before(async () => {
  server = await startTestServer({ authenticator: keyAuth });
});
Auth.after.each(() => destroyAllClients());
Auth.after(() => server.close());

// ----------------------------------------------------------------------------- state machine

Auth('a client-sent USERAUTH_SUCCESS is a protocol error, not a login', async () => {
  const c = await authenticating();
  c.send(Buffer.of(MSG.USERAUTH_SUCCESS));
  const res = await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR);
  assert.not.ok(res.skipped.some((p) => p[0] === MSG.USERAUTH_SUCCESS));
});

Auth('a client-sent USERAUTH_SUCCESS before the service request is a protocol error', async () => {
  const c = await RawClient.connect(server.port);
  await c.handshake();
  c.send(Buffer.of(MSG.USERAUTH_SUCCESS));
  await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR);
});

for (const type of [MSG.USERAUTH_FAILURE, MSG.USERAUTH_BANNER, MSG.USERAUTH_PK_OK]) {
  Auth(`a client-sent server message ${type} is a protocol error`, async () => {
    const c = await authenticating();
    c.send(Buffer.of(type, 0, 0, 0, 0, 0));
    await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR);
  });
}

Auth('CHANNEL_OPEN before authentication is a protocol error', async () => {
  const c = await authenticating();
  c.sendChannelOpen('session');
  await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR, /before authentication/);
});

Auth('GLOBAL_REQUEST before authentication is a protocol error', async () => {
  const c = await authenticating();
  c.sendGlobalRequest('keepalive@openssh.com', true);
  await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR, /before authentication/);
});

Auth('CHANNEL_DATA before authentication is a protocol error', async () => {
  const c = await authenticating();
  c.sendChannelData(0, Buffer.from('hello'));
  await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR, /before authentication/);
});

Auth('USERAUTH_REQUEST before SERVICE_REQUEST is a protocol error', async () => {
  const c = await RawClient.connect(server.port);
  await c.handshake();
  c.sendPassword(TEST_USER, TEST_PASSWORD);
  await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR, /service/);
});

Auth('a SERVICE_REQUEST for anything but ssh-userauth is SERVICE_NOT_AVAILABLE', async () => {
  const c = await RawClient.connect(server.port);
  await c.handshake();
  c.send(new SshWriter(32).u8(MSG.SERVICE_REQUEST).string('ssh-connection').bytes());
  await expectDisconnect(c, DISCONNECT.SERVICE_NOT_AVAILABLE);
});

Auth('a second SERVICE_REQUEST is SERVICE_NOT_AVAILABLE', async () => {
  const c = await authenticating();
  c.send(new SshWriter(32).u8(MSG.SERVICE_REQUEST).string('ssh-userauth').bytes());
  await expectDisconnect(c, DISCONNECT.SERVICE_NOT_AVAILABLE);
});

Auth('a USERAUTH_REQUEST for a service other than ssh-connection is SERVICE_NOT_AVAILABLE', async () => {
  const c = await authenticating();
  c.send(c.userauthRequest(TEST_USER, 'none', new Uint8Array(0), 'ssh-agent'));
  await expectDisconnect(c, DISCONNECT.SERVICE_NOT_AVAILABLE);
});

Auth('a change of user name between attempts is a protocol error', async () => {
  const c = await authenticating();
  const res = await c.authPassword(TEST_USER, 'wrong');
  assert.is(res.success, false);
  c.sendPassword('root', TEST_PASSWORD);
  await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR, /user name/);
});

Auth('a user name over 256 bytes is a protocol error', async () => {
  const c = await authenticating();
  c.sendPassword('u'.repeat(300), TEST_PASSWORD);
  await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR);
});

Auth('a truncated USERAUTH_REQUEST is a protocol error', async () => {
  const c = await authenticating();
  c.send(new SshWriter(32).u8(MSG.USERAUTH_REQUEST).string(TEST_USER).bytes());
  await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR, /malformed/);
});

// ----------------------------------------------------------------------------- attempts

Auth('6 wrong passwords end the connection with NO_MORE_AUTH_METHODS_AVAILABLE and no 6th FAILURE', async () => {
  const c = await authenticating();
  // All seven at once: the server must stop after the sixth, whatever is queued behind it.
  for (let i = 0; i < 7; i++) c.sendPassword(TEST_USER, `wrong ${i}`);
  const res = await expectDisconnect(c, DISCONNECT.NO_MORE_AUTH_METHODS_AVAILABLE);
  assert.equal(
    res.skipped.map((p) => p[0]),
    Array(5).fill(MSG.USERAUTH_FAILURE),
  );
});

Auth('the right password after 5 wrong ones still logs in', async () => {
  const c = await authenticating();
  for (let i = 0; i < 5; i++) assert.is((await c.authPassword(TEST_USER, `wrong ${i}`)).success, false);
  assert.ok((await c.authPassword(TEST_USER, TEST_PASSWORD)).success);
  c.close();
});

Auth('repeated none requests count as failed attempts after the first', async () => {
  const c = await authenticating();
  for (let i = 0; i < 8; i++) c.send(c.userauthRequest(TEST_USER, 'none'));
  const res = await expectDisconnect(c, DISCONNECT.NO_MORE_AUTH_METHODS_AVAILABLE);
  assert.is(res.skipped.filter((p) => p[0] === MSG.USERAUTH_FAILURE).length, 6);
});

Auth('none gets FAILURE listing publickey,password,keyboard-interactive', async () => {
  const c = await authenticating();
  c.send(c.userauthRequest(TEST_USER, 'none'));
  const res = await c.authResult();
  assert.is(res.success, false);
  assert.is(res.methods, 'publickey,password,keyboard-interactive');
  assert.is(res.partial, false);
  c.close();
});

Auth('an unknown method gets FAILURE', async () => {
  const c = await authenticating();
  c.send(c.userauthRequest(TEST_USER, 'gssapi-with-mic', new SshWriter(16).u32(0).bytes()));
  const res = await c.authResult();
  assert.is(res.type, MSG.USERAUTH_FAILURE);
  c.close();
});

Auth('a 2000-byte password gets FAILURE and the connection goes on', async () => {
  const c = await authenticating();
  const res = await c.authPassword(TEST_USER, TEST_PASSWORD + 'x'.repeat(2000 - TEST_PASSWORD.length));
  assert.is(res.type, MSG.USERAUTH_FAILURE);
  assert.ok((await c.authPassword(TEST_USER, TEST_PASSWORD)).success);
  c.close();
});

Auth('a 200 KB password gets FAILURE, not a crash', async () => {
  const c = await authenticating();
  const res = await c.authPassword(TEST_USER, Buffer.alloc(200 * 1024, 0x41));
  assert.is(res.type, MSG.USERAUTH_FAILURE);
  c.close();
});

Auth('a password that is not UTF-8 gets FAILURE', async () => {
  const c = await authenticating();
  const res = await c.authPassword(TEST_USER, Buffer.of(0xff, 0xfe, 0x80));
  assert.is(res.type, MSG.USERAUTH_FAILURE);
  c.close();
});

Auth('a password change request gets FAILURE', async () => {
  const c = await authenticating();
  const rest = new SshWriter(128).bool(true).string(TEST_PASSWORD).string('new password').bytes();
  c.send(c.userauthRequest(TEST_USER, 'password', rest));
  const res = await c.authResult();
  assert.is(res.type, MSG.USERAUTH_FAILURE);
  c.close();
});

Auth('a password request with trailing bytes is a protocol error', async () => {
  const c = await authenticating();
  const rest = new SshWriter(64).bool(false).string(TEST_PASSWORD).u8(0).bytes();
  c.send(c.userauthRequest(TEST_USER, 'password', rest));
  await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR);
});

Auth('a CHANNEL_OPEN pipelined behind a wrong password is a protocol error', async () => {
  const c = await authenticating();
  c.sendPassword(TEST_USER, 'wrong');
  c.sendChannelOpen('session');
  const res = await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR, /before authentication/);
  assert.equal(res.skipped.map((p) => p[0]), [MSG.USERAUTH_FAILURE]);
});

Auth('a CHANNEL_OPEN pipelined behind the right password is served after SUCCESS', async () => {
  const c = await authenticating();
  c.sendPassword(TEST_USER, TEST_PASSWORD);
  c.sendChannelOpen('session');
  assert.ok((await c.authResult()).success);
  await c.expect(MSG.CHANNEL_OPEN_CONFIRMATION);
  c.close();
});

Auth('input sent while a password check is pending waits in the kernel, then is processed in order', async () => {
  let started!: () => void;
  const called = new Promise<void>((resolve) => (started = resolve));
  let release: (() => void) | undefined;
  // An authenticator that answers only when the test says so.
  const slowAuth: Authenticator<string> = {
    ...keyAuth,
    checkPassword(ctx, password) {
      started();
      return new Promise((done) => {
        const ok = password === TEST_PASSWORD;
        release = () => done(ok ? { ok: true, principal: ctx.username } : { ok: false, reason: 'wrong password' });
      });
    },
  };
  const own = createSshServer({ ...server.options, authenticator: slowAuth });
  const accepted = new Promise<net.Socket>((resolve) => own.once('connection', resolve));
  await new Promise<void>((resolve) => own.listen(0, '127.0.0.1', resolve));
  try {
    const c = await RawClient.connect((own.address() as AddressInfo).port);
    const ss = await withTimeout(accepted, 5000, 'server-side socket');
    await c.handshake();
    await c.serviceRequest();
    c.sendPassword(TEST_USER, TEST_PASSWORD);
    await withTimeout(called, 5000, 'the password check to start');
    // 64 MiB of IGNORE behind the pending check, then a global request to prove the order.
    const filler = new SshWriter(65_600).u8(MSG.IGNORE).string(Buffer.alloc(65_536)).bytes();
    for (let i = 0; i < 1024; i++) c.send(filler);
    c.sendGlobalRequest('keepalive@openssh.com', true);
    const total = 1024 * filler.length;
    // Until the server stops reading, closes, or has read it all. A server that pushes back
    // can only pass; no duration is asserted.
    let last = -1;
    for (let still = 0; still < 10 && !ss.destroyed && ss.bytesRead < total; ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      if (ss.bytesRead === last) still++;
      else [still, last] = [0, ss.bytesRead];
    }
    assert.ok(ss.bytesRead < total, `the server read ${(ss.bytesRead / 2 ** 20).toFixed(1)} MiB during one password check`);
    release!();
    assert.ok((await c.authResult()).success);
    await c.expect(MSG.REQUEST_FAILURE);
    c.close();
  } finally {
    own.close();
  }
});

Auth('USERAUTH_REQUEST after success is ignored', async () => {
  const c = await authenticating();
  assert.ok((await c.authPassword(TEST_USER, TEST_PASSWORD)).success);
  c.sendPassword('root', 'x');
  c.sendGlobalRequest('keepalive@openssh.com', true);
  // The next thing the server says answers the global request: nothing for the USERAUTH_REQUEST.
  await c.expect(MSG.REQUEST_FAILURE);
  c.close();
});

// ----------------------------------------------------------------------------- keyboard-interactive

function infoResponse(...answers: string[]): Buffer {
  const w = new SshWriter(64).u8(MSG.USERAUTH_INFO_RESPONSE).u32(answers.length);
  for (const a of answers) w.string(a);
  return Buffer.from(w.bytes());
}

async function startKbdInt(c: RawClient): Promise<void> {
  c.send(c.userauthRequest(TEST_USER, 'keyboard-interactive', new SshWriter(16).string('').string('').bytes()));
  const p = await c.expect(MSG.USERAUTH_INFO_REQUEST);
  const r = new SshReader(p, 1);
  r.utf8(); // name
  r.utf8(); // instruction
  r.utf8(); // language
  assert.is(r.u32(), 1, 'one prompt');
}

Auth('keyboard-interactive with the right answer logs in', async () => {
  const c = await authenticating();
  await startKbdInt(c);
  c.send(infoResponse(TEST_PASSWORD));
  assert.ok((await c.authResult()).success);
  c.close();
});

Auth('INFO_RESPONSE without a keyboard-interactive request is a protocol error', async () => {
  const c = await authenticating();
  c.send(infoResponse(TEST_PASSWORD));
  await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR, /INFO_RESPONSE/);
});

Auth('a second INFO_RESPONSE to one INFO_REQUEST is a protocol error', async () => {
  const c = await authenticating();
  await startKbdInt(c);
  c.send(infoResponse('wrong'));
  assert.is((await c.authResult()).type, MSG.USERAUTH_FAILURE);
  c.send(infoResponse(TEST_PASSWORD));
  await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR, /INFO_RESPONSE/);
});

Auth('INFO_RESPONSE with the wrong number of answers gets FAILURE', async () => {
  const c = await authenticating();
  await startKbdInt(c);
  c.send(infoResponse(TEST_PASSWORD, TEST_PASSWORD));
  assert.is((await c.authResult()).type, MSG.USERAUTH_FAILURE);
  c.close();
});

Auth('INFO_RESPONSE claiming a huge answer count gets FAILURE without reading on', async () => {
  const c = await authenticating();
  await startKbdInt(c);
  c.send(new SshWriter(16).u8(MSG.USERAUTH_INFO_RESPONSE).u32(0xffffffff).bytes());
  assert.is((await c.authResult()).type, MSG.USERAUTH_FAILURE);
  c.close();
});

// ----------------------------------------------------------------------------- publickey

Auth('publickey with a garbage blob gets FAILURE', async () => {
  const c = await authenticating();
  c.send(publickeyRequest(c, TEST_USER, Buffer.from('this is not a key blob at all'), null));
  assert.is((await c.authResult()).type, MSG.USERAUTH_FAILURE);
  const garbageSigned = publickeyRequest(c, TEST_USER, Buffer.alloc(64, 0xee), goodKey);
  c.send(garbageSigned);
  assert.is((await c.authResult()).type, MSG.USERAUTH_FAILURE);
  c.close();
});

Auth('publickey with an ed25519 blob of the wrong length gets FAILURE', async () => {
  const c = await authenticating();
  const blob = new SshWriter(64).string('ssh-ed25519').string(Buffer.alloc(31, 1)).bytes();
  c.send(publickeyRequest(c, TEST_USER, blob, goodKey));
  assert.is((await c.authResult()).type, MSG.USERAUTH_FAILURE);
  c.close();
});

Auth('a publickey query for the accepted key gets PK_OK, for another key FAILURE', async () => {
  const c = await authenticating();
  c.send(publickeyRequest(c, TEST_USER, GOOD_BLOB, null));
  const ok = await c.expect(MSG.USERAUTH_PK_OK);
  const r = new SshReader(ok, 1);
  assert.is(r.ascii(), 'ssh-ed25519');
  assert.equal(Buffer.from(r.bytes()), GOOD_BLOB);
  c.send(publickeyRequest(c, TEST_USER, ed25519Blob(otherKey), null));
  assert.is((await c.authResult()).type, MSG.USERAUTH_FAILURE);
  c.close();
});

Auth('a publickey request signed by a different key than the blob names gets FAILURE', async () => {
  const c = await authenticating();
  // The blob is the accepted key; the signature is by a key the server has never seen.
  c.send(publickeyRequest(c, TEST_USER, GOOD_BLOB, otherKey));
  const res = await c.authResult();
  assert.is(res.type, MSG.USERAUTH_FAILURE);
  // And the same request signed by the right key logs in: the failure was the signature.
  c.send(publickeyRequest(c, TEST_USER, GOOD_BLOB, goodKey));
  assert.ok((await c.authResult()).success);
  c.close();
});

Auth('a publickey signature over another session identifier gets FAILURE', async () => {
  const c = await authenticating();
  const replayed = Buffer.from(c.sessionId!);
  replayed[0]! ^= 1;
  c.send(publickeyRequest(c, TEST_USER, GOOD_BLOB, goodKey, replayed));
  assert.is((await c.authResult()).type, MSG.USERAUTH_FAILURE);
  c.close();
});

Auth('a publickey request whose algorithm does not fit the key gets FAILURE', async () => {
  const c = await authenticating();
  c.send(publickeyRequest(c, TEST_USER, GOOD_BLOB, goodKey, c.sessionId!, 'rsa-sha2-256'));
  assert.is((await c.authResult()).type, MSG.USERAUTH_FAILURE);
  c.close();
});

Auth('a publickey request with a truncated signature gets FAILURE', async () => {
  const c = await authenticating();
  const fields = new SshWriter(128).bool(true).string('ssh-ed25519').string(GOOD_BLOB).bytes();
  const head = c.userauthRequest(TEST_USER, 'publickey', fields);
  const sigBlob = new SshWriter(64).string('ssh-ed25519').string(Buffer.alloc(10, 1)).bytes();
  c.send(Buffer.concat([head, new SshWriter(64).string(sigBlob).bytes()]));
  assert.is((await c.authResult()).type, MSG.USERAUTH_FAILURE);
  c.close();
});

Auth('the server still serves a normal login', assertLoginWorks);

Auth.run();

// ----------------------------------------------------------------------------- login grace

const Grace = suite('auth/hostile: login grace time');
let graceServer: TestServer;
Grace.before(async () => {
  graceServer = await startTestServer({ loginGraceMs: 300 });
});
Grace.after.each(() => destroyAllClients());
Grace.after(() => graceServer.close());

Grace('a client that does not log in within the grace time is disconnected', async () => {
  const c = await RawClient.connect(graceServer.port);
  try {
    await c.handshake();
    await c.serviceRequest();
  } catch (err) {
    // Only if the grace time ran out during the handshake itself; the check below still holds.
    if (!(err instanceof PeerDisconnected)) throw err;
  }
  await expectDisconnect(c, DISCONNECT.BY_APPLICATION, /grace/);
});

Grace('a client that keeps failing is disconnected at the grace time too', async () => {
  const c = await RawClient.connect(graceServer.port);
  try {
    await c.handshake();
    await c.serviceRequest();
    // Two slow failures, well under the attempt limit.
    await c.authPassword(TEST_USER, 'wrong');
    await c.authPassword(TEST_USER, 'wrong');
  } catch (err) {
    if (!(err instanceof PeerDisconnected)) throw err;
  }
  await expectDisconnect(c, DISCONNECT.BY_APPLICATION, /grace/);
});

Grace.run();
