/**
 * The audit log end to end: the in-process gateway against the real MinIO, driven by OpenSSH's
 * sftp and legacy scp, with a sink that keeps the records. Every record kind the gateway writes
 * appears with its fields and the values the clients caused (bytes = the file's size, an
 * operation S3 cannot do recorded as failed with its reason), and no record holds a secret.
 * Then the same records through the CloudWatch Logs sink to moto, read back with GetLogEvents.
 */
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CloudWatchLogsClient, GetLogEventsCommand, DescribeLogStreamsCommand } from '@aws-sdk/client-cloudwatch-logs';
import type { AuditRecord } from '../../src/audit/records.js';
import { KeptAudit, firstLine } from '../helpers/ops.js';
import { createCloudWatchSink } from '../../src/audit/cloudwatch.js';
import { JsonLinesSink, openAuditLog } from '../../src/audit/json-lines.js';
import { killStrayChildren } from '../helpers/openssh.js';
import { scpLegacy } from '../helpers/scp.js';
import { startMoto, stopMoto, type MotoEnv } from '../helpers/moto.js';
import {
  BUCKET,
  assertOk,
  creds,
  e2ePrefix,
  payload,
  removePrefix,
  scpRemote,
  sftpBatch,
  sha256File,
  show,
  startGateway,
  tempDir,
  type Gateway,
} from '../helpers/gateway.js';

const PREFIX = e2ePrefix('audit');

const test = suite<{ gw: Gateway; kept: KeptAudit }>('gateway: audit log', { gw: undefined as unknown as Gateway, kept: new KeptAudit() });

test.before(async (ctx) => {
  ctx.kept = new KeptAudit();
  ctx.gw = await startGateway(['--instance-id', 'audit-test-1'], { audit: ctx.kept });
});

/** One moto for the suite's STS and CloudWatch tests, stopped after them (fewer restarts). */
let moto: Promise<MotoEnv> | undefined;
const motoEnv = (): Promise<MotoEnv> => (moto ??= startMoto());

test.after(async (ctx) => {
  killStrayChildren();
  if (moto) await stopMoto();
  await ctx.gw?.close();
  await removePrefix(BUCKET, PREFIX + '/');
});

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** Waits a moment for records written as the session's end is processed after the client exits. */
async function recordsOf(kept: KeptAudit, session: string, until: (rs: AuditRecord[]) => boolean): Promise<AuditRecord[]> {
  for (let i = 0; i < 100; i++) {
    const rs = kept.records.filter((r) => 'session' in r && r.session === session);
    if (until(rs)) return rs;
    await new Promise((r) => setTimeout(r, 50));
  }
  return kept.records.filter((r) => 'session' in r && r.session === session);
}

test('an sftp session: start, every file operation with its outcome, end with bytes in and out', async ({ gw, kept }) => {
  const least = await creds('least');
  const p = await payload(100_003);
  const back = path.join(tempDir('audit'), 'back.bin');
  const d = `/${BUCKET}/${PREFIX}/sftp`;
  const before = kept.records.length;
  const r = await sftpBatch(gw, 'least', [
    `mkdir ${d}`,
    `put ${p.path} ${d}/a.bin`,
    `get ${d}/a.bin ${back}`,
    `rename ${d}/a.bin ${d}/b.bin`,
    `chmod 600 ${d}/b.bin`,
    `-rmdir /${BUCKET}`,
    `rm ${d}/b.bin`,
    `rmdir ${d}`,
  ]);
  assertOk(r);
  assert.is(await sha256File(back), p.sha256);
  const start = kept.records.slice(before).find((x) => x.event === 'session_start');
  assert.ok(start, 'a session_start record');
  assert.ok(start.event === 'session_start');
  const rs = await recordsOf(kept, start.session, (x) => x.some((y) => y.event === 'session_end'));
  const kinds = rs.map((x) => x.event);
  assert.equal(kinds, ['session_start', 'mkdir', 'upload', 'download', 'rename', 'setstat', 'rmdir', 'remove', 'rmdir', 'session_end'], kinds.join());

  for (const x of rs) {
    assert.match(x.time, ISO);
    assert.is(x.instance, 'audit-test-1');
    assert.is((x as { accessKeyId: string }).accessKeyId, least.accessKeyId);
    assert.is((x as { clientAddress: string }).clientAddress, '127.0.0.1');
  }
  assert.match(start.session, /^[0-9a-f]{12}-\d+$/);
  assert.is(start.protocol, 'sftp');
  assert.match(start.clientVersion, /^SSH-2\.0-OpenSSH_/);
  assert.ok(start.clientPort > 0 && start.clientPort < 65536);
  assert.not.ok('arn' in start, 'no ARN: MinIO logins are checked with a signed S3 request, not STS');

  const [, mkdir, up, down, ren, setstat, bucket, rm, rmdir, end] = rs as never as Record<string, unknown>[];
  assert.equal({ path: mkdir!.path, ok: mkdir!.ok }, { path: `${d}`, ok: true });
  assert.equal({ path: up!.path, bytes: up!.bytes, ok: up!.ok }, { path: `${d}/a.bin`, bytes: p.size, ok: true });
  assert.ok(typeof up!.ms === 'number' && up!.ms >= 0);
  assert.equal({ path: down!.path, bytes: down!.bytes, ok: down!.ok }, { path: `${d}/a.bin`, bytes: p.size, ok: true });
  assert.equal({ from: ren!.from, to: ren!.to, ok: ren!.ok }, { from: `${d}/a.bin`, to: `${d}/b.bin`, ok: true });
  // Permissions are accepted and not stored (PROTOCOL §6.3).
  assert.equal({ path: setstat!.path, ok: setstat!.ok }, { path: `${d}/b.bin`, ok: true });
  // What S3 cannot do is recorded as failed, with the reason the client was given.
  assert.equal({ path: bucket!.path, ok: bucket!.ok }, { path: `/${BUCKET}`, ok: false });
  assert.match(String(bucket!.error), /bucket/i);
  assert.equal({ path: rm!.path, ok: rm!.ok }, { path: `${d}/b.bin`, ok: true });
  assert.equal({ path: rmdir!.path, ok: rmdir!.ok }, { path: `${d}`, ok: true });
  assert.equal({ protocol: end!.protocol, bytesIn: end!.bytesIn, bytesOut: end!.bytesOut }, { protocol: 'sftp', bytesIn: p.size, bytesOut: p.size });
  assert.match(String(end!.reason), /^(closed|disconnected)$/);
  assert.ok(typeof end!.ms === 'number' && end!.ms >= 0);
});

test('scp -O sessions: protocol scp, the upload and the download with their sizes', async ({ gw, kept }) => {
  const p = await payload(70_001);
  const key = `${PREFIX}/scp/file.bin`;
  const back = path.join(tempDir('audit-scp'), 'back.bin');
  const before = kept.records.length;
  assertOk(await scpLegacy(gw, 'least', [p.path, await scpRemote('least', `/${BUCKET}/${key}`)]));
  assertOk(await scpLegacy(gw, 'least', [await scpRemote('least', `/${BUCKET}/${key}`), back]));
  assert.is(await sha256File(back), p.sha256);
  const starts = kept.records.slice(before).filter((x) => x.event === 'session_start');
  assert.is(starts.length, 2, show as never);
  const up = await recordsOf(kept, (starts[0] as { session: string }).session, (x) => x.some((y) => y.event === 'session_end'));
  const down = await recordsOf(kept, (starts[1] as { session: string }).session, (x) => x.some((y) => y.event === 'session_end'));
  assert.equal(up.map((x) => x.event), ['session_start', 'upload', 'session_end']);
  assert.equal(down.map((x) => x.event), ['session_start', 'download', 'session_end']);
  assert.is((up[0] as { protocol: string }).protocol, 'scp');
  assert.equal({ path: (up[1] as { path: string }).path, bytes: (up[1] as { bytes: number }).bytes }, { path: `/${BUCKET}/${key}`, bytes: p.size });
  assert.is((down[1] as { bytes: number }).bytes, p.size);
  assert.equal({ in: (up[2] as { bytesIn: number }).bytesIn, out: (down[2] as { bytesOut: number }).bytesOut }, { in: p.size, out: p.size });
});

test('a failed login: address, port, user name, method and reason; never the secret', async ({ gw, kept }) => {
  const least = await creds('least');
  const wrong = 'wR0ng+audit/secret=zz';
  const before = kept.records.length;
  const r = await sftpBatch(gw, 'least', ['ls /'], { secret: wrong });
  assert.is(r.code, 255, show(r));
  const fails = kept.records.slice(before).filter((x) => x.event === 'login_failed');
  assert.ok(fails.length >= 1, 'a login_failed record');
  const f = fails[0]!;
  assert.ok(f.event === 'login_failed');
  assert.equal({ address: f.clientAddress, user: f.user, instance: f.instance }, { address: '127.0.0.1', user: least.accessKeyId, instance: 'audit-test-1' });
  assert.match(f.method, /^(password|keyboard-interactive)$/);
  assert.match(f.reason, /SignatureDoesNotMatch/);
  assert.match(f.clientVersion, /^SSH-2\.0-OpenSSH_/);
  assert.ok(f.clientPort > 0);
  const all = JSON.stringify(kept.records);
  assert.not.ok(all.includes(wrong), 'the wrong secret is in no record');
  assert.not.ok(all.includes(least.secretAccessKey), 'the real secret is in no record');
});

test('an IAM check that cannot be made is audited as a failed login, and not held against the address', async () => {
  const kept = new KeptAudit();
  // Nothing listens on port 1: the S3 check of the keys fails with a network error.
  const gw = await startGateway(['--s3-endpoint', 'http://127.0.0.1:1', '--lockout-failures', '1'], { audit: kept });
  try {
    const r = await sftpBatch(gw, 'least', ['ls /']);
    assert.is(r.code, 255, show(r));
    const f = kept.records.find((x) => x.event === 'login_failed');
    assert.ok(f && f.event === 'login_failed', 'a login_failed record');
    assert.is(f.reason, 'authentication service unavailable');
    // --lockout-failures 1 would lock the address out after one counted failure; this was none.
    const next = await firstLine(gw.port);
    assert.match(next.line, /^SSH-2\.0-/);
    next.socket.destroy();
  } finally {
    await gw.close();
  }
});

test('--audit-log FILE: one JSON object per line, appended', async () => {
  const file = path.join(tempDir('audit-file'), 'audit.jsonl');
  fs.writeFileSync(file, '{"earlier":true}\n');
  const sink = openAuditLog(file)!;
  assert.instance(sink, JsonLinesSink);
  const r1 = { time: new Date().toISOString(), event: 'connection_refused', instance: 'i', clientAddress: '192.0.2.9', reason: 'too many connections' } as const;
  sink.write(r1);
  sink.write({ ...r1, reason: 'locked out: "quoted"\nnewline' });
  await sink.close();
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  assert.is(lines.length, 4, 'three lines and the final newline');
  assert.equal(JSON.parse(lines[0]!), { earlier: true });
  assert.equal(JSON.parse(lines[1]!), r1);
  assert.is(JSON.parse(lines[2]!).reason, 'locked out: "quoted"\nnewline');
  assert.is(openAuditLog('none'), null);
  assert.throws(() => openAuditLog(path.join(tempDir('audit-file'), 'no', 'such', 'dir', 'a.jsonl')));
});

test('keys checked with STS: the session start carries the caller\'s IAM ARN', async () => {
  const moto = await motoEnv();
  const kept = new KeptAudit();
  const gw = await startGateway(['--auth-mode', 'sts', '--sts-endpoint', moto.endpoint], { audit: kept });
  try {
    // moto's user has no keys in MinIO, so its listing fails; the login and the session do not.
    const r = await sftpBatch(gw, { accessKeyId: moto.user.accessKeyId, secretAccessKey: moto.user.secretAccessKey }, ['-ls /']);
    assert.is(r.code, 0, show(r));
    const start = kept.records.find((x) => x.event === 'session_start');
    assert.ok(start && start.event === 'session_start', 'a session_start record');
    assert.is(start.arn, moto.user.arn);
    assert.is(start.accessKeyId, moto.user.accessKeyId);
    assert.not.ok(JSON.stringify(kept.records).includes(moto.user.secretAccessKey));
  } finally {
    await gw.close();
  }
});

test('CloudWatch Logs (moto): the group and the instance stream are made, and a session reads back', async () => {
  const env = { ...process.env };
  try {
    const moto = await motoEnv();
    // The sink uses the gateway's own credentials from the SDK's default chain: the environment.
    process.env.AWS_ACCESS_KEY_ID = moto.user.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = moto.user.secretAccessKey;
    const group = `/s3gw/audit-test-${process.pid}`;
    const stream = `audit-cw-${Date.now()}`;
    const sink = createCloudWatchSink({ logGroup: group, logStream: stream, region: moto.region, endpoint: moto.endpoint });
    const gw = await startGateway(['--instance-id', stream], { audit: sink });
    try {
      const p = await payload(10_007);
      const d = `/${BUCKET}/${PREFIX}/cw`;
      assertOk(await sftpBatch(gw, 'least', [`put ${p.path} ${d}.bin`, `rm ${d}.bin`]));
      // The session's end is recorded as the channel closes, just after the client exits.
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      await gw.close();
      await sink.close();
    }
    assert.is(sink.dropped, 0);
    assert.ok(sink.sent >= 4, `sent ${sink.sent}`);
    const client = new CloudWatchLogsClient({ region: moto.region, endpoint: moto.endpoint });
    const streams = await client.send(new DescribeLogStreamsCommand({ logGroupName: group }));
    assert.equal(streams.logStreams?.map((s) => s.logStreamName), [stream]);
    const got = await client.send(new GetLogEventsCommand({ logGroupName: group, logStreamName: stream, startFromHead: true }));
    const recs = (got.events ?? []).map((e) => JSON.parse(e.message!) as AuditRecord);
    assert.equal(recs.map((x) => x.event), ['session_start', 'upload', 'remove', 'session_end']);
    assert.is((recs[1] as { bytes: number }).bytes, 10_007);
    for (const [i, e] of (got.events ?? []).entries()) assert.is(e.timestamp, Date.parse(recs[i]!.time));
    client.destroy();
  } finally {
    process.env = env;
  }
});

test.run();
