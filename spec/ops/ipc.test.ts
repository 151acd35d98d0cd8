import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { IpcEndpoint, IpcError } from '../../src/ops/ipc.js';

const test = suite('ops/ipc');

/** Two endpoints wired back to back, delivering asynchronously like a real channel. */
function pair(o: { timeoutMs?: number; maxPending?: number; drop?: boolean } = {}) {
  let a!: IpcEndpoint;
  let b!: IpcEndpoint;
  const deliver = (to: () => IpcEndpoint) => (m: unknown) => {
    if (o.drop) return true;
    setImmediate(() => to().receive(JSON.parse(JSON.stringify(m))));
    return true;
  };
  a = new IpcEndpoint({ send: deliver(() => b), timeoutMs: o.timeoutMs ?? 1000, maxPending: o.maxPending ?? 100 });
  b = new IpcEndpoint({ send: deliver(() => a), timeoutMs: o.timeoutMs ?? 1000, maxPending: o.maxPending ?? 100 });
  return { a, b };
}

test('requests are answered by id, in any order; notifications carry no answer', async () => {
  const { a, b } = pair();
  const notes: unknown[] = [];
  b.on('double', (p) => Number(p) * 2)
    .on('slow', async (p) => {
      await new Promise((r) => setTimeout(r, 30));
      return `slow ${String(p)}`;
    })
    .on('note', (p) => void notes.push(p));
  const [x, y, z] = await Promise.all([a.request('slow', 1), a.request('double', 21), a.request('double', 2)]);
  assert.equal([x, y, z], ['slow 1', 42, 4]);
  assert.ok(a.notify('note', { k: 'v' }));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(notes, [{ k: 'v' }]);
  assert.is(a.pending, 0);
});

test('a handler error and an unknown method reject the request with the message', async () => {
  const { a, b } = pair();
  b.on('boom', () => {
    throw new Error('it broke');
  });
  await a.request('boom').then(
    () => assert.unreachable(),
    (e: Error) => assert.equal([e instanceof IpcError, e.message], [true, 'it broke']),
  );
  await a.request('nope').then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /unknown method nope/),
  );
});

test('no answer: the request fails at its deadline and a late answer is ignored', async () => {
  const { a, b } = pair({ timeoutMs: 50 });
  b.on('late', async () => {
    await new Promise((r) => setTimeout(r, 120));
    return 1;
  });
  await a.request('late').then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /late: no answer within 50 ms/),
  );
  await new Promise((r) => setTimeout(r, 150));
  assert.is(a.pending, 0);
});

test('an answer after the deadline goes to onLate, once, so a slot the peer took is given back', async () => {
  const { a, b } = pair({ timeoutMs: 40, maxPending: 2 });
  let next = 1;
  b.on('take', async () => {
    const id = next++;
    await new Promise((r) => setTimeout(r, 200));
    return { id };
  });
  const late: unknown[] = [];
  const take = () =>
    a.request('take', null, { onLate: (r) => void late.push(r) }).then(
      () => 'answered in time',
      (e: Error) => e.message,
    );
  const first = await Promise.all([take(), take()]);
  // A third past its deadline too: at most maxPending late handlers are kept, the oldest goes.
  const third = await take();
  assert.equal([...first, third], Array(3).fill('take: no answer within 40 ms'));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(late, [{ id: 2 }, { id: 3 }]);
  // A duplicate answer is not delivered twice.
  a.receive({ s3gw: 'res', id: 3, result: { id: 3 } });
  assert.is(late.length, 2);
  assert.is(a.pending, 0);
});

test('pending requests are bounded; close fails them all; messages not ours are left alone', async () => {
  const { a } = pair({ drop: true, maxPending: 3, timeoutMs: 10_000 });
  const waiting = [a.request('x'), a.request('x'), a.request('x')].map((p) => p.then(() => 'ok', (e: Error) => e.message));
  await a.request('x').then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /too many requests waiting \(3\)/),
  );
  a.close('the peer is gone');
  assert.equal(await Promise.all(waiting), ['the peer is gone', 'the peer is gone', 'the peer is gone']);
  assert.not.ok(a.receive({ cmd: 'NODE_CLUSTER' }));
  assert.not.ok(a.receive('text'));
  assert.not.ok(a.receive(null));
});

test('a closed channel fails a request at once', async () => {
  const a = new IpcEndpoint({ send: () => false });
  await a.request('x').then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /channel is closed/),
  );
});

test.run();
