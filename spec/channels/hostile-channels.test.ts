import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { SshReader } from '../../src/wire/reader.js';
import { SshWriter } from '../../src/wire/writer.js';
import { DISCONNECT, MSG, OPEN_FAILURE } from '../../src/transport/constants.js';
import { TEST_PASSWORD, TEST_USER, startTestServer, type TestServer } from '../helpers/test-server.js';
import { RawClient, destroyAllClients, expectDisconnect, msgName, type OpenedChannel } from '../helpers/raw-client.js';

/**
 * Hostile input to the connection protocol (RFC 4254) after a successful password login:
 * window and packet-size violations, window overflow, unknown and closed channel ids,
 * channel-open floods (cf. Go CVE-2026-39827) and requests the gateway never grants.
 */

const WINDOW = 64 * 1024;
const MAX_PACKET = 32 * 1024;
const MAX_CHANNELS = 10;

let server: TestServer;

const login = () => RawClient.login(server.port, TEST_USER, TEST_PASSWORD);

async function assertLoginWorks(): Promise<void> {
  const c = await login();
  const ch = await c.openSession();
  assert.ok(await c.subsystem(ch, 'test-echo'));
  c.sendChannelData(ch.remoteId, Buffer.from('still here'));
  const p = await c.expect(MSG.CHANNEL_DATA);
  const r = new SshReader(p, 1);
  assert.is(r.u32(), ch.localId);
  assert.is(Buffer.from(r.bytes()).toString(), 'still here');
  c.close();
}

function channelMsg(type: number, remoteId: number): Buffer {
  return Buffer.from(new SshWriter(16).u8(type).u32(remoteId).bytes());
}

function windowAdjust(remoteId: number, n: number): Buffer {
  return Buffer.from(new SshWriter(16).u8(MSG.CHANNEL_WINDOW_ADJUST).u32(remoteId).u32(n).bytes());
}

/** Reads the reply to a channel request: CHANNEL_SUCCESS or CHANNEL_FAILURE for `ch`. */
async function channelReply(c: RawClient, ch: OpenedChannel): Promise<number> {
  const p = await c.recv('channel request reply');
  assert.ok(p[0] === MSG.CHANNEL_SUCCESS || p[0] === MSG.CHANNEL_FAILURE, `got ${msgName(p[0])}`);
  assert.is(p.readUInt32BE(1), ch.localId);
  return p[0]!;
}

/** Reads CHANNEL_OPEN_FAILURE for our channel `id`; returns the reason code. */
async function openFailure(c: RawClient, id: number): Promise<number> {
  const p = await c.expect(MSG.CHANNEL_OPEN_FAILURE);
  const r = new SshReader(p, 1);
  assert.is(r.u32(), id);
  return r.u32();
}

const Channels = suite('channels/hostile');
Channels.before(async () => {
  server = await startTestServer({ windowSize: WINDOW, maxChannelPacket: MAX_PACKET, maxChannels: MAX_CHANNELS });
});
Channels.after.each(() => destroyAllClients());
Channels.after(() => server.close());

// ----------------------------------------------------------------------------- windows and sizes

Channels('the server announces the configured window and maximum packet', async () => {
  const c = await login();
  const ch = await c.openSession();
  assert.is(ch.window, WINDOW);
  assert.is(ch.maxPacket, MAX_PACKET);
  c.close();
});

Channels('data far beyond the window, sent without waiting, is a protocol error', async () => {
  const c = await login();
  // No subsystem: nothing reads the channel, so the server stops adjusting the window once
  // its buffer is full, and everything after that overruns it.
  const ch = await c.openSession();
  const chunk = Buffer.alloc(MAX_PACKET, 0x55);
  for (let i = 0; i < 24; i++) c.sendChannelData(ch.remoteId, chunk);
  const res = await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR, /window/);
  // Whatever the server granted before giving up, it was less than what we sent.
  const granted = res.skipped
    .filter((p) => p[0] === MSG.CHANNEL_WINDOW_ADJUST)
    .reduce((n, p) => n + p.readUInt32BE(5), WINDOW);
  assert.ok(granted < 24 * MAX_PACKET, `granted ${granted}`);
});

Channels('data larger than the maximum packet is a protocol error', async () => {
  const c = await login();
  const ch = await c.openSession();
  c.sendChannelData(ch.remoteId, Buffer.alloc(MAX_PACKET + 1));
  await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR, /maximum packet/);
});

Channels('extended data larger than the maximum packet is a protocol error', async () => {
  const c = await login();
  const ch = await c.openSession();
  const w = new SshWriter(MAX_PACKET + 32).u8(MSG.CHANNEL_EXTENDED_DATA).u32(ch.remoteId).u32(1);
  c.send(w.string(Buffer.alloc(MAX_PACKET + 1)).bytes());
  await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR, /maximum packet/);
});

Channels('CHANNEL_DATA whose length field disagrees with the packet is a protocol error', async () => {
  const c = await login();
  const ch = await c.openSession();
  const p = Buffer.from(new SshWriter(32).u8(MSG.CHANNEL_DATA).u32(ch.remoteId).string('hello').bytes());
  p.writeUInt32BE(1000, 5);
  c.send(p);
  await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR);
});

Channels('WINDOW_ADJUST pushing the window past 2^32 - 1 is a protocol error', async () => {
  const c = await login();
  const ch = await c.openSession(0xffff_0000);
  c.send(windowAdjust(ch.remoteId, 0x1_0000));
  await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR, /2\^32/);
});

Channels('WINDOW_ADJUST up to exactly 2^32 - 1 is accepted', async () => {
  const c = await login();
  const ch = await c.openSession(0xffff_0000);
  c.send(windowAdjust(ch.remoteId, 0xffff));
  c.sendGlobalRequest('keepalive@openssh.com', true);
  await c.expect(MSG.REQUEST_FAILURE);
  c.close();
});

Channels('repeated WINDOW_ADJUSTs that add up past 2^32 - 1 are a protocol error', async () => {
  const c = await login();
  const ch = await c.openSession(1024);
  for (let i = 0; i < 3; i++) c.send(windowAdjust(ch.remoteId, 0x7fff_ffff));
  await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR, /2\^32/);
});

// ----------------------------------------------------------------------------- channel ids

/** A channel message with its recipient channel, for the caller to complete. */
const build = (type: number, id: number) => new SshWriter(64).u8(type).u32(id);

const UNKNOWN_ID_MESSAGES: [string, (id: number) => Uint8Array][] = [
  ['CHANNEL_DATA', (id) => build(MSG.CHANNEL_DATA, id).string('x').bytes()],
  ['CHANNEL_EXTENDED_DATA', (id) => build(MSG.CHANNEL_EXTENDED_DATA, id).u32(1).string('x').bytes()],
  ['CHANNEL_WINDOW_ADJUST', (id) => windowAdjust(id, 1024)],
  ['CHANNEL_EOF', (id) => channelMsg(MSG.CHANNEL_EOF, id)],
  ['CHANNEL_CLOSE', (id) => channelMsg(MSG.CHANNEL_CLOSE, id)],
  ['CHANNEL_REQUEST', (id) => build(MSG.CHANNEL_REQUEST, id).string('shell').bool(true).bytes()],
  ['CHANNEL_SUCCESS', (id) => channelMsg(MSG.CHANNEL_SUCCESS, id)],
  ['CHANNEL_FAILURE', (id) => channelMsg(MSG.CHANNEL_FAILURE, id)],
];

for (const [name, build] of UNKNOWN_ID_MESSAGES) {
  Channels(`${name} for an unknown channel id is a protocol error`, async () => {
    const c = await login();
    await c.openSession();
    c.send(build(77));
    await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR, /no channel 77/);
  });
}

Channels('CHANNEL_DATA for channel id 2^32 - 1 is a protocol error', async () => {
  const c = await login();
  c.sendChannelData(0xffff_ffff, Buffer.from('x'));
  await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR, /no channel/);
});

Channels('CHANNEL_OPEN_CONFIRMATION and OPEN_FAILURE from the client are protocol errors', async () => {
  for (const type of [MSG.CHANNEL_OPEN_CONFIRMATION, MSG.CHANNEL_OPEN_FAILURE]) {
    const c = await login();
    c.send(new SshWriter(32).u8(type).u32(0).u32(0).u32(0).u32(0).bytes());
    await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR);
  }
});

Channels('a channel id reused after CLOSE is gone: data for it is a protocol error', async () => {
  const c = await login();
  const ch = await c.openSession();
  c.send(channelMsg(MSG.CHANNEL_CLOSE, ch.remoteId));
  const p = await c.expect(MSG.CHANNEL_CLOSE);
  assert.is(p.readUInt32BE(1), ch.localId);
  c.sendChannelData(ch.remoteId, Buffer.from('after close'));
  await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR, /no channel/);
});

Channels('a second CLOSE for a closed channel is a protocol error', async () => {
  const c = await login();
  const ch = await c.openSession();
  c.send(channelMsg(MSG.CHANNEL_CLOSE, ch.remoteId));
  await c.expect(MSG.CHANNEL_CLOSE);
  c.send(channelMsg(MSG.CHANNEL_CLOSE, ch.remoteId));
  await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR, /no channel/);
});

Channels('data after EOF is a protocol error', async () => {
  const c = await login();
  const ch = await c.openSession();
  c.send(channelMsg(MSG.CHANNEL_EOF, ch.remoteId));
  c.sendChannelData(ch.remoteId, Buffer.from('after eof'));
  await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR, /after EOF/);
});

Channels('a closed channel frees its slot for a new one, and only that one', async () => {
  const c = await login();
  const chans: OpenedChannel[] = [];
  for (let i = 0; i < MAX_CHANNELS; i++) chans.push(await c.openSession());
  const full = c.sendChannelOpen('session');
  assert.is(await openFailure(c, full), OPEN_FAILURE.RESOURCE_SHORTAGE);
  c.send(channelMsg(MSG.CHANNEL_CLOSE, chans[3]!.remoteId));
  await c.expect(MSG.CHANNEL_CLOSE);
  await c.openSession();
  const again = c.sendChannelOpen('session');
  assert.is(await openFailure(c, again), OPEN_FAILURE.RESOURCE_SHORTAGE);
  c.close();
});

Channels('CLOSE while a subsystem is still writing is answered and the connection goes on', async () => {
  const c = await login();
  // A small window: test-source blocks on it almost at once, with a write parked.
  const ch = await c.openSession(1024, 1024);
  assert.ok(await c.subsystem(ch, 'test-source'));
  c.send(channelMsg(MSG.CHANNEL_CLOSE, ch.remoteId));
  for (;;) {
    const p = await c.recv('CHANNEL_CLOSE');
    if (p[0] === MSG.CHANNEL_CLOSE) break;
    assert.ok(p[0] === MSG.CHANNEL_DATA || p[0] === MSG.CHANNEL_EOF || p[0] === MSG.CHANNEL_REQUEST, `got ${msgName(p[0])}`);
  }
  c.sendGlobalRequest('keepalive@openssh.com', true);
  await c.expect(MSG.REQUEST_FAILURE);
  const next = await c.openSession();
  assert.ok(await c.subsystem(next, 'test-echo'));
  c.close();
});

Channels('the connection dropping while a subsystem is writing leaves the server serving', async () => {
  const c = await login();
  const ch = await c.openSession(1024, 1024);
  assert.ok(await c.subsystem(ch, 'test-source'));
  await c.expect(MSG.CHANNEL_DATA);
  c.close();
  await assertLoginWorks();
});

// ----------------------------------------------------------------------------- channel opens

Channels('1,000 CHANNEL_OPENs get maxChannels confirmations and RESOURCE_SHORTAGE for the rest', async () => {
  const c = await login();
  const N = 1000;
  for (let i = 0; i < N; i++) c.sendChannelOpen('session');
  let confirmed = 0;
  const reasons = new Map<number, number>();
  const seen = new Set<number>();
  for (let i = 0; i < N; i++) {
    const p = await c.recv(`open reply ${i}`);
    const r = new SshReader(p, 1);
    const id = r.u32();
    assert.not.ok(seen.has(id), `one reply per channel (${id})`);
    seen.add(id);
    if (p[0] === MSG.CHANNEL_OPEN_CONFIRMATION) confirmed++;
    else if (p[0] === MSG.CHANNEL_OPEN_FAILURE) {
      const reason = r.u32();
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
    } else assert.unreachable(`unexpected ${msgName(p[0])}`);
  }
  assert.is(confirmed, MAX_CHANNELS);
  assert.equal([...reasons], [[OPEN_FAILURE.RESOURCE_SHORTAGE, N - MAX_CHANNELS]]);
  // Still connected and answering.
  c.sendGlobalRequest('keepalive@openssh.com', true);
  await c.expect(MSG.REQUEST_FAILURE);
  assert.not.ok(c.closed);
  c.close();
});

Channels('a direct-tcpip open is ADMINISTRATIVELY_PROHIBITED', async () => {
  const c = await login();
  const extra = new SshWriter(64).string('127.0.0.1').u32(22).string('127.0.0.1').u32(40000).bytes();
  const id = c.sendChannelOpen('direct-tcpip', 65536, 32768, extra);
  assert.is(await openFailure(c, id), OPEN_FAILURE.ADMINISTRATIVELY_PROHIBITED);
  c.close();
});

Channels('an x11 open is ADMINISTRATIVELY_PROHIBITED', async () => {
  const c = await login();
  const id = c.sendChannelOpen('x11', 65536, 32768, new SshWriter(32).string('127.0.0.1').u32(6010).bytes());
  assert.is(await openFailure(c, id), OPEN_FAILURE.ADMINISTRATIVELY_PROHIBITED);
  c.close();
});

Channels('an open of an unknown channel type is UNKNOWN_CHANNEL_TYPE', async () => {
  const c = await login();
  const id = c.sendChannelOpen('no-such-type@example.com');
  assert.is(await openFailure(c, id), OPEN_FAILURE.UNKNOWN_CHANNEL_TYPE);
  c.close();
});

Channels('a session open with a maximum packet of 0 is refused', async () => {
  const c = await login();
  const id = c.sendChannelOpen('session', 65536, 0);
  assert.ok((await openFailure(c, id)) > 0);
  c.sendGlobalRequest('keepalive@openssh.com', true);
  await c.expect(MSG.REQUEST_FAILURE);
  c.close();
});

// ----------------------------------------------------------------------------- requests

const REFUSED_REQUESTS: [string, Uint8Array][] = [
  ['pty-req', new SshWriter(64).string('xterm').u32(80).u32(24).u32(0).u32(0).string('').bytes()],
  ['shell', new Uint8Array(0)],
  ['env', new SshWriter(32).string('LANG').string('C').bytes()],
  ['exec', new SshWriter(32).string('rm -rf /').bytes()],
  ['x11-req', new SshWriter(64).bool(false).string('MIT-MAGIC-COOKIE-1').string('00').u32(0).bytes()],
  ['auth-agent-req@openssh.com', new Uint8Array(0)],
  ['subsystem', new SshWriter(32).string('no-such-subsystem').bytes()],
];

for (const [type, data] of REFUSED_REQUESTS) {
  Channels(`a ${type} channel request with want_reply gets CHANNEL_FAILURE`, async () => {
    const c = await login();
    const ch = await c.openSession();
    c.sendChannelRequest(ch.remoteId, type, true, data);
    assert.is(await channelReply(c, ch), MSG.CHANNEL_FAILURE);
    c.close();
  });
}

Channels('a second subsystem on a started channel gets CHANNEL_FAILURE', async () => {
  const c = await login();
  const ch = await c.openSession();
  assert.ok(await c.subsystem(ch, 'test-discard'));
  assert.not.ok(await c.subsystem(ch, 'test-echo'));
  c.close();
});

Channels('a tcpip-forward global request gets REQUEST_FAILURE', async () => {
  const c = await login();
  c.sendGlobalRequest('tcpip-forward', true, new SshWriter(32).string('0.0.0.0').u32(8080).bytes());
  await c.expect(MSG.REQUEST_FAILURE);
  c.close();
});

Channels('a keepalive@openssh.com global request gets a reply', async () => {
  const c = await login();
  c.sendGlobalRequest('keepalive@openssh.com', true);
  const p = await c.recv('global request reply');
  assert.ok(p[0] === MSG.REQUEST_SUCCESS || p[0] === MSG.REQUEST_FAILURE, `got ${msgName(p[0])}`);
  c.close();
});

Channels('a global request without want_reply gets no reply', async () => {
  const c = await login();
  c.sendGlobalRequest('no-more-sessions@openssh.com', false);
  c.sendGlobalRequest('keepalive@openssh.com', true);
  await c.expect(MSG.REQUEST_FAILURE);
  c.close();
});

Channels('unsolicited REQUEST_SUCCESS and REQUEST_FAILURE are dropped', async () => {
  const c = await login();
  for (let i = 0; i < 100; i++) c.send(Buffer.of(i % 2 ? MSG.REQUEST_SUCCESS : MSG.REQUEST_FAILURE));
  c.sendGlobalRequest('keepalive@openssh.com', true);
  await c.expect(MSG.REQUEST_FAILURE);
  c.close();
});

Channels('a malformed GLOBAL_REQUEST is a protocol error', async () => {
  const c = await login();
  c.send(new SshWriter(16).u8(MSG.GLOBAL_REQUEST).u32(100).bytes());
  await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR, /malformed/);
});

Channels('the server still serves a normal login', assertLoginWorks);

Channels.run();

// ----------------------------------------------------------------------------- small window

const SmallWindow = suite('channels/hostile: window smaller than the maximum packet');
let small: TestServer;
SmallWindow.before(async () => {
  small = await startTestServer({ windowSize: 16 * 1024, maxChannelPacket: 32 * 1024 });
});
SmallWindow.after.each(() => destroyAllClients());
SmallWindow.after(() => small.close());

SmallWindow('one packet larger than the whole initial window is a protocol error', async () => {
  const c = await RawClient.login(small.port, TEST_USER, TEST_PASSWORD);
  const ch = await c.openSession();
  assert.is(ch.window, 16 * 1024);
  c.sendChannelData(ch.remoteId, Buffer.alloc(16 * 1024 + 1));
  await expectDisconnect(c, DISCONNECT.PROTOCOL_ERROR, /window/);
});

SmallWindow('data exactly filling the window is accepted', async () => {
  const c = await RawClient.login(small.port, TEST_USER, TEST_PASSWORD);
  const ch = await c.openSession();
  assert.ok(await c.subsystem(ch, 'test-sink'));
  c.sendChannelData(ch.remoteId, Buffer.alloc(16 * 1024, 1));
  c.send(channelMsg(MSG.CHANNEL_EOF, ch.remoteId));
  // The sink answers "<sha256> <bytes>" once it has everything.
  for (;;) {
    const p = await c.recv('sink output');
    if (p[0] !== MSG.CHANNEL_DATA) continue;
    assert.match(Buffer.from(new SshReader(p, 5).bytes()).toString(), / 16384\n$/);
    break;
  }
  c.close();
});

SmallWindow('the server still serves a normal login', async () => {
  const c = await RawClient.login(small.port, TEST_USER, TEST_PASSWORD);
  c.close();
});

SmallWindow.run();
