import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KeyedQueue } from '../../src/sftp/queue.js';

const Queue = suite('sftp/queue: KeyedQueue');

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

const tick = () => new Promise((r) => setImmediate(r));

Queue('tasks on one key run one at a time in arrival order', async () => {
  const q = new KeyedQueue();
  const log: string[] = [];
  const g = gate();
  const a = q.run(['h1'], async () => {
    log.push('a start');
    await g.promise;
    log.push('a end');
  });
  const b = q.run(['h1'], async () => {
    log.push('b');
  });
  await tick();
  assert.equal(log, ['a start']);
  g.open();
  await Promise.all([a, b]);
  assert.equal(log, ['a start', 'a end', 'b']);
  assert.is(q.pendingKeys, 0);
});

Queue('tasks on different keys run in parallel', async () => {
  const q = new KeyedQueue();
  const g = gate();
  let bRan = false;
  const a = q.run(['h1'], () => g.promise);
  const b = q.run(['h2'], async () => {
    bRan = true;
  });
  await b;
  assert.ok(bRan, 'b did not wait for a');
  g.open();
  await a;
});

Queue('a task with two keys waits for both, and later tasks on either wait for it', async () => {
  const q = new KeyedQueue();
  const log: string[] = [];
  const g1 = gate();
  const g2 = gate();
  q.run(['p/a'], async () => {
    await g1.promise;
    log.push('a');
  });
  q.run(['p/b'], async () => {
    await g2.promise;
    log.push('b');
  });
  const r = q.run(['p/a', 'p/b'], async () => log.push('rename'));
  const after = q.run(['p/b'], async () => log.push('after'));
  g2.open();
  await tick();
  assert.equal(log, ['b']);
  g1.open();
  await Promise.all([r, after]);
  assert.equal(log, ['b', 'a', 'rename', 'after']);
});

Queue('a failed task does not stop the next one, and its error reaches its caller', async () => {
  const q = new KeyedQueue();
  const a = q.run(['k'], async () => {
    throw new Error('boom');
  });
  const b = q.run(['k'], async () => 'ok');
  try {
    await a;
    assert.unreachable();
  } catch (err) {
    assert.is((err as Error).message, 'boom');
  }
  assert.is(await b, 'ok');
  await tick();
  assert.is(q.pendingKeys, 0);
});

Queue('a task with no keys starts at once', async () => {
  const q = new KeyedQueue();
  let ran = false;
  const p = q.run([], async () => {
    ran = true;
  });
  assert.ok(ran, 'ran synchronously up to its first await');
  await p;
});

Queue.run();
