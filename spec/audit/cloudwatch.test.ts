/**
 * The CloudWatch Logs sink against a scripted client: batching within PutLogEvents' limits, the
 * bounded queue and its drop count, retries with backoff, stream creation, close. The real
 * service is exercised against moto in spec/audit/cloudwatch-moto.test.ts.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CloudWatchSink, PUT_LIMITS, takeBatch, type LogsClient } from '../../src/audit/cloudwatch.js';
import type { AuditRecord } from '../../src/audit/records.js';

const test = suite('audit/cloudwatch');

interface Call {
  name: string;
  input: Record<string, unknown>;
}

/** A client that records calls and answers with `answer` (throw to fail a call). */
function fakeClient(answer: (c: Call, n: number) => unknown = () => ({})): LogsClient & { calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    async send(cmd) {
      const c = { name: cmd.constructor.name, input: cmd.input as unknown as Record<string, unknown> };
      calls.push(c);
      return answer(c, calls.length);
    },
  };
}

function err(name: string): Error {
  const e = new Error(name);
  e.name = name;
  return e;
}

let seq = 0;
function record(extra: Partial<AuditRecord> = {}, time = new Date().toISOString()): AuditRecord {
  return {
    time,
    event: 'mkdir',
    instance: 'i-1',
    session: `s-${seq++}`,
    accessKeyId: 'AKIATEST',
    clientAddress: '192.0.2.1',
    path: '/b/d',
    ok: true,
    ...extra,
  } as AuditRecord;
}

const puts = (c: { calls: Call[] }) => c.calls.filter((x) => x.name === 'PutLogEventsCommand');
const eventsOf = (c: Call) => c.input.logEvents as { timestamp: number; message: string }[];

function sink(client: LogsClient, extra: Partial<ConstructorParameters<typeof CloudWatchSink>[0]> = {}): CloudWatchSink {
  return new CloudWatchSink({ logGroup: '/s3gw/audit', logStream: 'i-1', client, flushIntervalMs: 60_000, random: () => 0.5, ...extra });
}

test('creates the group and the stream once, then sends the records as they were written', async () => {
  const client = fakeClient();
  const s = sink(client);
  const recs = [record(), record({ event: 'rmdir' } as Partial<AuditRecord>), record()];
  for (const r of recs) s.write(r);
  await s.close();
  assert.equal(client.calls.map((c) => c.name), ['CreateLogGroupCommand', 'CreateLogStreamCommand', 'PutLogEventsCommand']);
  assert.equal(client.calls[1]!.input, { logGroupName: '/s3gw/audit', logStreamName: 'i-1' });
  const ev = eventsOf(puts(client)[0]!);
  assert.equal(ev.map((e) => JSON.parse(e.message)), recs);
  assert.equal(ev.map((e) => e.timestamp), recs.map((r) => Date.parse(r.time)));
  assert.is(s.sent, 3);
  assert.is(s.dropped, 0);
});

test('an existing group or stream, or a role that may not create groups, is fine', async () => {
  const client = fakeClient((c) => {
    if (c.name === 'CreateLogGroupCommand') throw err('AccessDeniedException');
    if (c.name === 'CreateLogStreamCommand') throw err('ResourceAlreadyExistsException');
    return {};
  });
  const s = sink(client);
  s.write(record());
  await s.close();
  assert.is(s.sent, 1);
});

test('batches hold at most 10,000 events and 1,048,576 bytes with 26 per event', () => {
  const q = Array.from({ length: 25_000 }, (_, i) => ({ timestamp: i, message: 'x', cost: 27 }));
  assert.is(takeBatch(q).length, PUT_LIMITS.maxEvents);
  assert.is(q.length, 15_000);
  // 100 KiB events: ten fit in 1 MiB (1,024,260 bytes), the eleventh would not.
  const big = 100 * 1024;
  const q2 = Array.from({ length: 30 }, (_, i) => ({ timestamp: i, message: 'y'.repeat(big), cost: big + 26 }));
  const b = takeBatch(q2);
  assert.is(b.length, 10);
  assert.ok(b.reduce((n, e) => n + e.cost, 0) <= PUT_LIMITS.maxBatchBytes);
});

test('a batch spans at most 24 hours and goes in time order', () => {
  const h = 3600_000;
  const q = [
    { timestamp: 5 * h, message: 'a', cost: 27 },
    { timestamp: 1 * h, message: 'b', cost: 27 },
    { timestamp: 24 * h, message: 'c', cost: 27 },
    { timestamp: 26 * h, message: 'd', cost: 27 },
  ];
  const b = takeBatch(q);
  assert.equal(b.map((e) => e.message), ['b', 'a', 'c']);
  assert.equal(q.map((e) => e.message), ['d']);
});

test('a record over 256 KiB becomes a stub that keeps its kind', async () => {
  const client = fakeClient();
  const s = sink(client);
  s.write(record({ path: 'p'.repeat(300 * 1024) } as Partial<AuditRecord>));
  await s.close();
  const msg = JSON.parse(eventsOf(puts(client)[0]!)[0]!.message);
  assert.equal({ event: msg.event, truncated: msg.truncated }, { event: 'mkdir', truncated: true });
  assert.is(s.truncated, 1);
});

test('a full queue drops new records and counts them; write never throws', async () => {
  const client = fakeClient();
  const s = sink(client, { maxQueueEvents: 5 });
  for (let i = 0; i < 8; i++) s.write(record());
  assert.is(s.queued, 5);
  assert.is(s.dropped, 3);
  await s.close();
  assert.is(s.sent, 5);
});

test('failures are retried with backoff, the batch kept in order at the head', async () => {
  let now = 1_000_000;
  let fails = 3;
  const client = fakeClient((c) => {
    if (c.name === 'PutLogEventsCommand' && fails-- > 0) throw err('ThrottlingException');
    return {};
  });
  const warnings: string[] = [];
  const log = { debugEnabled: false, debug() {}, info() {}, warn: (m: string) => warnings.push(m), error() {}, child() { return log; } };
  const s = sink(client, { now: () => now, baseBackoffMs: 100, log });
  s.write(record());
  s.write(record());
  // The flush interval is 60 s here, so close() drives the attempts: each failure pushes the next
  // one back (100, 200, 400 ms × 0.75) and close() waits that out with real timers, while our
  // clock is advanced alongside.
  const closing = s.close();
  const timer = setInterval(() => (now += 50), 5);
  await closing;
  clearInterval(timer);
  const p = puts(client);
  assert.is(p.length, 4, 'three failures, then success');
  for (const c of p) assert.is(eventsOf(c).length, 2);
  assert.is(s.sent, 2);
  assert.is(s.dropped, 0);
  assert.ok(warnings.includes('sending audit records to CloudWatch Logs failed; retrying'));
});

test('a deleted stream is created again', async () => {
  let n = 0;
  const client = fakeClient((c) => {
    if (c.name === 'PutLogEventsCommand' && n++ === 0) throw err('ResourceNotFoundException');
    return {};
  });
  let now = 0;
  const s = sink(client, { now: () => now, baseBackoffMs: 1 });
  s.write(record());
  const timer = setInterval(() => (now += 10), 2);
  await s.close();
  clearInterval(timer);
  assert.equal(
    client.calls.map((c) => c.name),
    ['CreateLogGroupCommand', 'CreateLogStreamCommand', 'PutLogEventsCommand', 'CreateLogGroupCommand', 'CreateLogStreamCommand', 'PutLogEventsCommand'],
  );
  assert.is(s.sent, 1);
});

test('events CloudWatch rejects as too old or too new count as dropped', async () => {
  const client = fakeClient((c) => (c.name === 'PutLogEventsCommand' ? { rejectedLogEventsInfo: { tooOldLogEventEndIndex: 1, tooNewLogEventStartIndex: 4 } } : {}));
  const s = sink(client);
  for (let i = 0; i < 5; i++) s.write(record());
  await s.close();
  assert.is(s.sent, 2);
  assert.is(s.dropped, 3);
});

test('close gives up at its deadline and counts what is left as dropped', async () => {
  const client = fakeClient((c) => {
    if (c.name === 'PutLogEventsCommand') throw err('ServiceUnavailableException');
    return {};
  });
  const s = sink(client, { closeDeadlineMs: 50, baseBackoffMs: 10 });
  s.write(record());
  s.write(record());
  await s.close();
  assert.is(s.sent, 0);
  assert.is(s.dropped, 2);
  s.write(record());
  assert.is(s.dropped, 3, 'writes after close are dropped');
});

test.run();
