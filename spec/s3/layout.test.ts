import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Layout, LayoutError, type LayoutNode } from '../../src/s3/layout.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

const L = suite('s3/layout');

/** Places raw parts until `bytes` are covered; returns, per node id, its part numbers in order. */
function fill(layout: Layout, bytes: number) {
  const parts = new Map<number, number[]>();
  const nodes = new Map<number, LayoutNode>([[0, layout.root]]);
  const closed: number[] = [];
  for (let at = 0; at < bytes; at += layout.limits.partSize) {
    const p = layout.next();
    for (const n of p.closed) closed.push(n.id);
    for (const n of p.opened) nodes.set(n.id, n);
    const list = parts.get(p.node.id) ?? [];
    list.push(p.partNumber);
    parts.set(p.node.id, list);
  }
  return { parts, nodes, closed };
}

L('heights: 5 MiB parts and 10,000 parts give 5 GiB segments of 1,024 parts, two levels', () => {
  const l = new Layout({ partSize: 5 * MiB, maxParts: 10_000, capacity: 5 * TiB });
  assert.equal(l.caps, [5 * MiB, 5 * GiB]);
  assert.is(l.root.height, 2);
  assert.is(l.reach, 5 * TiB);
});

L('the default limits: 8,984 raw parts (43.9 GiB) before the first segment', () => {
  const l = new Layout({ partSize: 5 * MiB, maxParts: 10_000, capacity: 5 * TiB });
  for (let i = 1; i <= 8984; i++) {
    const p = l.next();
    assert.is(p.node, l.root);
    assert.is(p.partNumber, i);
  }
  const p = l.next();
  assert.is(p.opened.length, 1);
  assert.is(p.opened[0]!.height, 1);
  assert.is(p.opened[0]!.slot, 8985);
  assert.is(p.opened[0]!.capacity, 5 * GiB);
  assert.is(p.node, p.opened[0]);
  assert.is(p.partNumber, 1);
});

L('every raw part in a full segment, and the segment closes when the next part needs room', () => {
  const l = new Layout({ partSize: 5 * MiB, maxParts: 10_000, capacity: 5 * TiB });
  for (let i = 0; i < 8984; i++) l.next();
  const first = l.next();
  const seg = first.node;
  for (let i = 2; i <= 1024; i++) {
    const p = l.next();
    assert.is(p.node, seg);
    assert.is(p.partNumber, i);
    assert.is(p.closed.length, 0);
  }
  const p = l.next();
  assert.equal(p.closed, [seg]);
  assert.is(p.opened[0]!.slot, 8986);
});

L('a lowered part limit nests segments: 4 parts of 5 MiB reach 300 MiB with a 400 MiB cap', () => {
  const l = new Layout({ partSize: 5 * MiB, maxParts: 4, capacity: 400 * MiB });
  assert.equal(l.caps.slice(0, 4), [5 * MiB, 20 * MiB, 80 * MiB, 320 * MiB]);
  const { parts, nodes } = fill(l, 300 * MiB);
  // Three raw parts in the root, then one segment for the rest.
  assert.equal(parts.get(0), [1, 2, 3]);
  let raw = 0;
  for (const [id, list] of parts) {
    raw += list.length;
    assert.ok(list.length <= 4, `node ${id} has ${list.length} parts`);
    list.forEach((n, i) => assert.is(n, i + 1));
  }
  assert.is(raw, 60);
  for (const n of nodes.values()) assert.ok(n.slots <= 4);
  // The root's fourth slot is the segment holding the other 285 MiB.
  const top = [...nodes.values()].filter((n) => n.parent === l.root);
  assert.is(top.length, 1);
  assert.is(top[0]!.slot, 4);
});

L('segments inside a segment are equal, and a full root refuses the next part', () => {
  const l = new Layout({ partSize: 5 * MiB, maxParts: 4, capacity: 80 * MiB });
  const { nodes } = fill(l, 80 * MiB);
  for (const n of nodes.values()) {
    if (n.parent && n.parent !== l.root) assert.is(n.capacity, l.caps[n.height]);
  }
  assert.throws(() => l.next(), (e: unknown) => e instanceof LayoutError && /larger than 83886080 bytes/.test(e.message));
});

L('a capacity above what the parts can reach is cut to the reach', () => {
  const l = new Layout({ partSize: 5 * MiB, maxParts: 2, capacity: 5 * TiB });
  assert.is(l.reach, 2 * 5 * GiB);
});

L('no segments when the part limit is 1: one part, then LayoutError', () => {
  const l = new Layout({ partSize: 5 * MiB, maxParts: 1, capacity: 5 * TiB });
  assert.is(l.next().partNumber, 1);
  assert.throws(() => l.next(), (e: unknown) => e instanceof LayoutError);
});

L('a reserved head (a resumed file) takes the first root slots', () => {
  const l = new Layout({ partSize: 5 * MiB, maxParts: 10_000, capacity: 5 * TiB });
  l.reserveRoot(2, 6 * GiB);
  const p = l.next();
  assert.is(p.node, l.root);
  assert.is(p.partNumber, 3);
  const full = new Layout({ partSize: 5 * MiB, maxParts: 4, capacity: 5 * TiB });
  assert.throws(() => full.reserveRoot(4, 20 * GiB), (e: unknown) => e instanceof LayoutError);
});

L('open segments are listed innermost first for the final close', () => {
  const l = new Layout({ partSize: 5 * MiB, maxParts: 4, capacity: 400 * MiB });
  fill(l, 100 * MiB);
  const open = l.openSegments();
  assert.ok(open.length >= 2);
  for (let i = 1; i < open.length; i++) assert.is(open[i - 1]!.parent, open[i]);
  assert.is(open[open.length - 1]!.parent, l.root);
});

L.run();
