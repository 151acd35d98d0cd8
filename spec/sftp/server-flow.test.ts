import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { F, openSession, S, settle, type Reply, type Session } from './client.js';

const Flow = suite('sftp/server: ordering, parallelism, backpressure and the end of a session');

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

async function end(s: Session): Promise<void> {
  s.client.stream.end();
  await s.served;
}

const okStatus = (r: Reply) => r.type === 'status' && r.code === S.OK;

// ----------------------------------------------------------------------- ordering

Flow('pipelined WRITEs on one handle run in order even when the backend is slow at random', async () => {
  const s = await openSession({
    memory: { before: (op) => (op === 'write' ? new Promise((r) => setTimeout(r, Math.random() * 3)) : undefined) },
  });
  const data = randomBytes(64 * 1000);
  // client.upload sends every WRITE before awaiting any; MemoryBackend rejects out-of-order writes.
  const r = await s.client.upload('/ordered', data, 1000);
  assert.ok(okStatus(r));
  assert.ok(s.backend.file('/ordered')!.equals(data));
  await end(s);
});

Flow('different handles run in parallel: a slow READ does not hold up another file', async () => {
  const g = gate();
  const s = await openSession({ memory: { before: (op, path) => (op === 'read' && path === '/slow' ? g.promise : undefined) } });
  s.backend.putFile('/slow', 'slow');
  s.backend.putFile('/fast', 'fast');
  const hs = await s.client.handle(s.client.open('/slow', F.READ));
  const hf = await s.client.handle(s.client.open('/fast', F.READ));
  const slow = s.client.read(hs, 0, 10);
  const fast = await s.client.read(hf, 0, 10);
  assert.ok(fast.type === 'data' && fast.data.toString() === 'fast');
  g.open();
  const sr = await slow;
  assert.ok(sr.type === 'data' && sr.data.toString() === 'slow');
  // The reply to the later request went out first.
  const [idSlow, idFast] = [sr.id, fast.id];
  assert.ok(s.client.order.indexOf(idFast) < s.client.order.indexOf(idSlow));
  await end(s);
});

Flow('path requests on different paths run in parallel, on the same path in order', async () => {
  const g = gate();
  const s = await openSession({ memory: { before: (op, path) => (op === 'remove' && path === '/a' ? g.promise : undefined) } });
  s.backend.putFile('/a', 'a');
  s.backend.putFile('/b', 'b');
  const removeA = s.client.remove('/a');
  const statA = s.client.stat('/a'); // sent after REMOVE: must see its effect
  const statB = await s.client.stat('/b'); // unrelated: not held up
  assert.is(statB.type, 'attrs');
  g.open();
  assert.ok(okStatus(await removeA));
  const sa = await statA;
  assert.ok(sa.type === 'status' && sa.code === S.NO_SUCH_FILE);
  await end(s);
});

Flow('requests per handle are answered in order; requests across handles interleave', async () => {
  const s = await openSession({
    memory: { before: (op) => (op === 'read' ? new Promise((r) => setTimeout(r, Math.random() * 2)) : undefined) },
  });
  const a = randomBytes(20_000);
  const b = randomBytes(20_000);
  s.backend.putFile('/a', a);
  s.backend.putFile('/b', b);
  const [ha, hb] = await Promise.all([s.client.handle(s.client.open('/a', F.READ)), s.client.handle(s.client.open('/b', F.READ))]);
  const ra: Promise<Reply>[] = [];
  const rb: Promise<Reply>[] = [];
  for (let i = 0; i < 20; i++) {
    ra.push(s.client.read(ha, i * 1000, 1000));
    rb.push(s.client.read(hb, i * 1000, 1000));
  }
  const [repA, repB] = await Promise.all([Promise.all(ra), Promise.all(rb)]);
  const idsA = repA.map((r) => r.id);
  const idsB = repB.map((r) => r.id);
  const pos = (id: number) => s.client.order.indexOf(id);
  for (let i = 1; i < 20; i++) {
    assert.ok(pos(idsA[i]!) > pos(idsA[i - 1]!), 'handle a in order');
    assert.ok(pos(idsB[i]!) > pos(idsB[i - 1]!), 'handle b in order');
  }
  assert.ok(Buffer.concat(repA.map((r) => (r.type === 'data' ? r.data : Buffer.alloc(0)))).equals(a));
  assert.ok(Buffer.concat(repB.map((r) => (r.type === 'data' ? r.data : Buffer.alloc(0)))).equals(b));
  await end(s);
});

// ----------------------------------------------------------------------- flow control

Flow('at most maxInFlight requests run at once; the rest wait unread', async () => {
  const g = gate();
  const s = await openSession({ maxInFlight: 4, memory: { before: (op) => (op === 'stat' ? g.promise : undefined) } });
  for (let i = 0; i < 20; i++) s.backend.putFile(`/f${i}`, 'x');
  const replies = Array.from({ length: 20 }, (_, i) => s.client.stat(`/f${i}`));
  await settle();
  assert.is(s.backend.active, 4, 'exactly maxInFlight started');
  g.open();
  const all = await Promise.all(replies);
  assert.ok(all.every((r) => r.type === 'attrs'));
  assert.is(s.backend.maxActive, 4);
  await end(s);
});

Flow('a stalled upload stops the server reading: the client feels the backpressure', async () => {
  const g = gate();
  const s = await openSession({ memory: { before: (op) => (op === 'write' ? g.promise : undefined) } });
  const h = await s.client.handle(s.client.open('/stalled', F.WRITE | F.CREAT | F.TRUNC));
  const chunk = 32 * 1024;
  const data = randomBytes(300 * chunk);
  const receivedBefore = s.serverEnd.received;
  const writes: Promise<Reply>[] = [];
  for (let off = 0; off < data.length; off += chunk) writes.push(s.client.write(h, off, data.subarray(off, off + chunk)));
  await settle(50);
  const taken = s.serverEnd.received - receivedBefore;
  // The server holds at most its in-flight budget (4 MiB) plus a chunk or two of stream buffers.
  assert.ok(taken < 5 * 1024 * 1024, `server took ${taken} bytes while stalled`);
  assert.ok(s.client.stream.writableLength > 0, 'the client is holding data it could not send');
  assert.is(s.backend.calls.filter((c) => c.startsWith('write')).length, 1, 'only the first write reached the backend');
  g.open();
  assert.ok((await Promise.all(writes)).every(okStatus));
  assert.ok(okStatus(await s.client.close(h)));
  assert.ok(s.backend.file('/stalled')!.equals(data));
  await end(s);
});

Flow('a client that stops reading replies stops the server dispatching more work', async () => {
  const s = await openSession();
  const data = randomBytes(8 * 1024 * 1024);
  s.backend.putFile('/big', data);
  const h = await s.client.handle(s.client.open('/big', F.READ));
  s.client.stream.pause();
  const n = 512;
  const reads = Array.from({ length: n }, (_, i) => s.client.read(h, i * 16384, 16384));
  await settle(50);
  const started = s.backend.calls.filter((c) => c.startsWith('read')).length;
  assert.ok(started < n, `all ${n} reads ran although nobody read the replies`);
  s.client.stream.resume();
  const replies = await Promise.all(reads);
  assert.ok(Buffer.concat(replies.map((r) => (r.type === 'data' ? r.data : Buffer.alloc(0)))).equals(data));
  await end(s);
});

// ----------------------------------------------------------------------- the end

Flow('with partial uploads discarded, the client ending its side aborts uploads never closed', async () => {
  const s = await openSession({ memory: { partialUploads: 'discard' } });
  const h = await s.client.handle(s.client.open('/partial', F.WRITE | F.CREAT | F.TRUNC));
  assert.ok(okStatus(await s.client.write(h, 0, Buffer.alloc(1000))));
  await end(s);
  assert.not.ok(s.backend.exists('/partial'));
  assert.is(s.backend.pending.size, 0);
  assert.is(s.backend.aborted, 1);
  const up = s.events.find((e) => e.type === 'upload');
  assert.ok(up && up.type === 'upload' && !up.ok && up.bytes === 1000, JSON.stringify(up));
  assert.is(up.error, 'the session ended before the file was closed; discarded, nothing was stored');
});

Flow('the client ending its side keeps a new upload never closed, for resume, and says so', async () => {
  const s = await openSession();
  const data = randomBytes(1000);
  const h = await s.client.handle(s.client.open('/partial', F.WRITE | F.CREAT | F.TRUNC));
  assert.ok(okStatus(await s.client.write(h, 0, data)));
  await end(s);
  assert.ok(s.backend.file('/partial')?.equals(data), 'what arrived is stored');
  assert.is(s.backend.pending.size, 0);
  assert.is(s.backend.kept, 1);
  assert.is(s.backend.committed, 0, 'not a commit: the client never closed the file');
  const up = s.events.find((e) => e.type === 'upload');
  assert.ok(up && up.type === 'upload' && !up.ok && up.bytes === 1000, JSON.stringify(up));
  assert.is(up.error, 'the session ended before the file was closed; 1000 bytes kept for resume');
});

Flow('a connection that drops mid-upload never runs the queued CLOSE: with discard nothing is left', async () => {
  const g = gate();
  const s = await openSession({
    memory: { partialUploads: 'discard', before: (op) => (op === 'write' ? g.promise : undefined) },
  });
  const h = await s.client.handle(s.client.open('/dropped', F.WRITE | F.CREAT | F.TRUNC));
  for (let i = 0; i < 5; i++) void s.client.write(h, i * 10, Buffer.alloc(10));
  void s.client.close(h);
  await settle();
  s.client.stream.destroy();
  g.open();
  await s.served;
  assert.not.ok(s.backend.exists('/dropped'));
  assert.is(s.backend.committed, 0);
  assert.is(s.backend.pending.size, 0);
  assert.is(s.backend.aborted, 1);
});

Flow('a connection that drops mid-upload keeps only the WRITEs that ran, not the queued ones', async () => {
  const g = gate();
  const s = await openSession({ memory: { before: (op) => (op === 'write' ? g.promise : undefined) } });
  const h = await s.client.handle(s.client.open('/dropped', F.WRITE | F.CREAT | F.TRUNC));
  for (let i = 0; i < 5; i++) void s.client.write(h, i * 10, Buffer.alloc(10, i + 1));
  void s.client.close(h);
  await settle();
  s.client.stream.destroy();
  g.open();
  await s.served;
  // The first WRITE was running when the connection dropped; the rest and the CLOSE were dropped.
  assert.equal(s.backend.file('/dropped'), Buffer.alloc(10, 1));
  assert.is(s.backend.committed, 0);
  assert.is(s.backend.kept, 1);
  assert.is(s.backend.pending.size, 0);
  const up = s.events.find((e) => e.type === 'upload');
  assert.is(up?.error, 'the connection closed before the file was closed; 10 bytes kept for resume');
});

Flow('read and directory handles left open are closed at the end', async () => {
  const s = await openSession();
  s.backend.putFile('/f', 'abc');
  const h = await s.client.handle(s.client.open('/f', F.READ));
  await s.client.read(h, 0, 3);
  await s.client.handle(s.client.opendir('/'));
  await end(s);
  const dl = s.events.find((e) => e.type === 'download');
  assert.ok(dl && dl.type === 'download' && !dl.ok && dl.bytes === 3);
});

Flow('requests sent just before the client ends its side are all answered, then the server ends', async () => {
  const s = await openSession();
  s.backend.putFile('/f', 'abc');
  const replies = [s.client.mkdir('/d'), s.client.stat('/f'), s.client.realpath('x/..'), s.client.remove('/f')];
  s.client.stream.end();
  const all = await Promise.all(replies);
  assert.equal(all.map((r) => r.type), ['status', 'attrs', 'name', 'status']);
  await s.served;
  await s.client.closedP;
  assert.ok(s.client.closed, 'the server ended its side');
});

Flow('serveSftp resolves when the stream is destroyed before INIT', async () => {
  const { startSession } = await import('./client.js');
  const s = startSession();
  s.client.stream.destroy();
  await s.served;
});

Flow.run();
