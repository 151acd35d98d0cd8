/**
 * Limits and abuse protection end to end: the in-process gateway against the real MinIO, with
 * OpenSSH, paramiko and raw TCP sockets as clients. A refused connection must get its one-line
 * reason before any SSH byte, and the audit log must say so.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { REFUSAL } from '../../src/ops/limits.js';
import { KeptAudit, closedBy, firstLine } from '../helpers/ops.js';
import { RawClient } from '../helpers/raw-client.js';
import { killStrayChildren, runProcess } from '../helpers/openssh.js';
import {
  BUCKET,
  askpassEnv,
  assertOk,
  creds,
  e2ePrefix,
  logLines,
  paramiko,
  payload,
  removePrefix,
  sftpBatch,
  show,
  sshClientEnv,
  sshOptions,
  startGateway,
  type Gateway,
} from '../helpers/gateway.js';
import { putAsAdmin } from '../s3/fixture.js';

const PREFIX = e2ePrefix('limits');
const test = suite('gateway: limits and abuse protection');

async function withGateway(args: string[], body: (gw: Gateway, kept: KeptAudit) => Promise<void>): Promise<void> {
  const kept = new KeptAudit();
  const gw = await startGateway(args, { audit: kept });
  try {
    await body(gw, kept);
  } finally {
    killStrayChildren();
    await gw.close();
  }
}

test.after(async () => {
  await removePrefix(BUCKET, PREFIX + '/');
});

test('per-address cap: the connection past it is told why before SSH starts, and closed', async () => {
  await withGateway(['--max-connections-per-address', '2'], async (gw, kept) => {
    const a = await firstLine(gw.port);
    const b = await firstLine(gw.port);
    assert.match(a.line, /^SSH-2\.0-s3gw/);
    assert.match(b.line, /^SSH-2\.0-s3gw/);
    const c = await firstLine(gw.port);
    assert.is(c.line, `s3gw: ${REFUSAL.PER_ADDRESS}`);
    await closedBy(c.socket);
    const refused = kept.records.filter((r) => r.event === 'connection_refused');
    assert.equal(refused.map((r) => (r as { reason: string }).reason), [REFUSAL.PER_ADDRESS]);
    assert.is((refused[0] as { clientAddress: string }).clientAddress, '127.0.0.1');
    // A place frees up when one closes.
    a.socket.destroy();
    await closedBy(a.socket);
    let line = '';
    for (let i = 0; i < 50 && !line.startsWith('SSH-'); i++) {
      const d = await firstLine(gw.port);
      line = d.line;
      d.socket.destroy();
      if (!line.startsWith('SSH-')) await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(line, /^SSH-2\.0-s3gw/);
    b.socket.destroy();
  });
});

test('total cap and MaxStartups: unauthenticated connections past full are refused; a login frees its place', async () => {
  await withGateway(['--max-startups', '2', '--max-connections', '3'], async (gw) => {
    const a = await firstLine(gw.port);
    const b = await firstLine(gw.port);
    const c = await firstLine(gw.port);
    assert.is(c.line, `s3gw: ${REFUSAL.STARTUPS}`);
    await closedBy(c.socket);
    // Logged-in sessions do not count as startups: with two idle sockets pending, sftp still
    // gets in once one of them goes, and then the total cap (3) is what holds.
    a.socket.destroy();
    await closedBy(a.socket);
    await new Promise((r) => setTimeout(r, 100));
    assertOk(await sftpBatch(gw, 'least', ['ls /']));
    b.socket.destroy();
  });
  await withGateway(['--max-connections', '1'], async (gw) => {
    const a = await firstLine(gw.port);
    const r = await sftpBatch(gw, 'least', ['ls /']);
    assert.is(r.code, 255, show(r));
    assert.ok(logLines(gw, /connection refused.*too many connections/).length > 0);
    a.socket.destroy();
  });
});

test('lockout: failed logins lock the address out (even with the right secret), then it expires', async () => {
  await withGateway(['--lockout-failures', '3', '--lockout-window', '1m', '--lockout-duration', '2s'], async (gw, kept) => {
    for (let i = 0; i < 3; i++) {
      const r = await sftpBatch(gw, 'least', ['ls /'], { secret: `wrong-secret-${i}` });
      assert.is(r.code, 255, show(r));
    }
    // Locked: the right secret is not even asked for.
    const d = await firstLine(gw.port);
    assert.is(d.line, `s3gw: ${REFUSAL.LOCKED}`);
    await closedBy(d.socket);
    const locked = await sftpBatch(gw, 'least', ['ls /']);
    assert.is(locked.code, 255, show(locked));
    assert.ok(kept.records.some((r) => r.event === 'connection_refused' && r.reason === REFUSAL.LOCKED));
    assert.is(kept.records.filter((r) => r.event === 'login_failed').length, 3);
    // The lockout ends on its own.
    let ok = false;
    for (let i = 0; i < 40 && !ok; i++) {
      await new Promise((r) => setTimeout(r, 250));
      const probe = await firstLine(gw.port);
      ok = probe.line.startsWith('SSH-');
      probe.socket.destroy();
    }
    assert.ok(ok, 'the lockout expired');
    assertOk(await sftpBatch(gw, 'least', ['ls /']));
  });
});

test('lockout counts wrong credentials, not methods the server does not offer', async () => {
  await withGateway(['--lockout-failures', '2', '--lockout-window', '1m', '--lockout-duration', '1m'], async (gw, kept) => {
    const least = await creds('least');
    // Three attempts with a method we do not offer (as clients probing methods or agent keys make):
    // each is a failed attempt, audited, but none is a guess.
    const probe = await RawClient.connect(gw.port);
    await probe.handshake();
    await probe.serviceRequest();
    for (let i = 0; i < 3; i++) {
      probe.send(probe.userauthRequest(least.accessKeyId, 'hostbased'));
      assert.not.ok((await probe.authResult()).success);
    }
    probe.socket.destroy();
    assert.is(kept.records.filter((r) => r.event === 'login_failed').length, 3);
    const d = await firstLine(gw.port);
    assert.match(d.line, /^SSH-2\.0-/, 'not locked out');
    d.socket.destroy();
    // Two wrong passwords are two guesses: locked.
    for (let i = 0; i < 2; i++) {
      const r = await sftpBatch(gw, 'least', ['ls /'], { secret: `wrong-${i}` });
      assert.is(r.code, 255, show(r));
    }
    const e = await firstLine(gw.port);
    assert.is(e.line, `s3gw: ${REFUSAL.LOCKED}`);
    e.socket.destroy();
  });
});

test('idle timeout: a logged-in connection with no session traffic is closed; one that is transferring is not', async () => {
  await withGateway(['--idle-timeout', '1s'], async (gw) => {
    const c = await creds('least');
    const env = sshClientEnv();
    // ssh -N logs in and opens no session: idle from the start.
    const idle = await runProcess('ssh', [...sshOptions(env), '-N', '-p', String(gw.port), `${c.accessKeyId}@127.0.0.1`], {
      env: askpassEnv(env, c.secretAccessKey),
      timeoutMs: 30_000,
    });
    assert.not.ok(idle.timedOut, 'ssh -N was disconnected');
    assert.is(idle.code, 255);
    assert.ok(logLines(gw, /"msg":"idle timeout"/).length > 0, 'the gateway logged the idle timeout');
    // An upload at 400 kbit/s lasts about 3 s, three idle timeouts, and completes.
    const f = await payload(150_001);
    const r = await sftpBatch(gw, 'least', [`put ${f.path} /${BUCKET}/${PREFIX}/slow.bin`], { args: ['-l', '400'] });
    assertOk(r);
  });
});

test('handle cap: the handle past --max-handles is refused with a message, the others work', async () => {
  await putAsAdmin(BUCKET, `${PREFIX}/h.bin`, Buffer.from('handles'));
  await withGateway(['--max-handles', '3'], async (gw) => {
    const out = await paramiko<{ results: Array<{ ok: boolean; value: { opened: number; error: string | null } }> }>(gw, 'least', 'ops', {
      ops: [{ op: 'openMany', path: `/${BUCKET}/${PREFIX}/h.bin`, count: 5 }],
    });
    const v = out.results[0]!.value;
    assert.is(v.opened, 3);
    assert.match(String(v.error), /handle/i);
  });
});

test('channel cap: sessions past --max-channels on one connection are refused', async () => {
  await withGateway(['--max-channels', '3'], async (gw) => {
    // paramiko's SFTP session is channel 1; two more fit, the third is refused.
    const out = await paramiko<{ results: Array<{ ok: boolean; value: { opened: number; error: string | null } }> }>(gw, 'least', 'ops', {
      ops: [{ op: 'moreChannels', count: 4 }],
    });
    const v = out.results[0]!.value;
    assert.is(v.opened, 2);
    assert.match(String(v.error), /ChannelException/);
  });
});

test.run();
