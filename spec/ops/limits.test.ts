import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdmissionState, REFUSAL, normalizeAddress, refusalCategory, type AdmissionLimits } from '../../src/ops/limits.js';

const test = suite('ops/limits');

const base: AdmissionLimits = {
  maxConnections: 1000,
  maxPerAddress: 1000,
  maxStartups: { start: 1000, rate: 30, full: 1000 },
  lockoutFailures: 3,
  lockoutWindowMs: 10_000,
  lockoutDurationMs: 60_000,
};

function state(over: Partial<AdmissionLimits> = {}, opts: { now?: () => number; percent?: () => number } = {}) {
  return new AdmissionState({ ...base, ...over }, opts);
}

const id = (r: { id: number } | { refused: string }): number => {
  if ('refused' in r) throw new Error(`refused: ${r.refused}`);
  return r.id;
};

test('the total cap refuses past maxConnections and frees a place on close', () => {
  const s = state({ maxConnections: 2 });
  const a = id(s.open('192.0.2.1'));
  id(s.open('192.0.2.2'));
  assert.equal(s.open('192.0.2.3'), { refused: REFUSAL.TOTAL });
  s.closed(a);
  id(s.open('192.0.2.3'));
  assert.is(s.connections, 2);
});

test('the per-address cap counts each address alone, IPv4-mapped IPv6 as IPv4', () => {
  const s = state({ maxPerAddress: 2 });
  const a = id(s.open('192.0.2.1'));
  id(s.open('::ffff:192.0.2.1'));
  assert.equal(s.open('192.0.2.1'), { refused: REFUSAL.PER_ADDRESS });
  id(s.open('192.0.2.9'));
  s.closed(a);
  id(s.open('192.0.2.1'));
  assert.is(normalizeAddress('::FFFF:10.0.0.1'.toLowerCase()), '10.0.0.1');
  assert.is(normalizeAddress('2001:DB8::1'), '2001:db8::1');
});

test('closing twice or an unknown id changes nothing', () => {
  const s = state({ maxConnections: 1 });
  const a = id(s.open('192.0.2.1'));
  s.closed(a);
  s.closed(a);
  s.closed(12345);
  assert.is(s.connections, 0);
  assert.is(s.unauthenticated, 0);
  id(s.open('192.0.2.1'));
});

test('MaxStartups: below start all pass; from start sshd odds rising linearly; at full all refused', () => {
  let roll = 0;
  const s = state({ maxStartups: { start: 2, rate: 30, full: 6 } }, { percent: () => roll });
  // Two unauthenticated: both taken whatever the dice say.
  roll = 0;
  id(s.open('192.0.2.1'));
  id(s.open('192.0.2.2'));
  // n = 2 = start: p = 30 %. A roll of 29 drops, 30 passes.
  roll = 29;
  assert.equal(s.open('192.0.2.3'), { refused: REFUSAL.STARTUPS });
  roll = 30;
  id(s.open('192.0.2.3'));
  // n = 3: p = 30 + 70 × 1/4 = 47.5 %.
  roll = 47;
  assert.equal(s.open('192.0.2.4'), { refused: REFUSAL.STARTUPS });
  roll = 48;
  const d = id(s.open('192.0.2.4'));
  // n = 4, 5: p = 65 %, 82.5 %.
  roll = 99;
  id(s.open('192.0.2.5'));
  id(s.open('192.0.2.6'));
  // n = 6 = full: refused even with the best roll.
  assert.equal(s.open('192.0.2.7'), { refused: REFUSAL.STARTUPS });
  // A login frees its place in the count, not in the total.
  s.authenticated(d);
  s.authenticated(d);
  assert.is(s.unauthenticated, 5);
  id(s.open('192.0.2.7'));
});

test('MaxStartups odds with real randomness: about rate % refused at start', () => {
  const s = state({ maxStartups: { start: 1, rate: 30, full: 1000 } });
  const held = id(s.open('192.0.2.1'));
  void held;
  let refused = 0;
  for (let i = 0; i < 2000; i++) {
    const r = s.open(`198.51.100.${i % 250}`);
    if ('refused' in r) refused++;
    else s.closed(r.id);
  }
  // 30 % of 2000 = 600; the bounds are 8 standard deviations wide, so this never flakes.
  assert.ok(refused > 440 && refused < 760, `refused ${refused} of 2000`);
});

test('lockout: N failures within the window lock the address out, then it expires', () => {
  let now = 1_000_000;
  const s = state({}, { now: () => now });
  s.authFailed('192.0.2.1');
  s.authFailed('192.0.2.1');
  id(s.open('192.0.2.1'));
  s.authFailed('192.0.2.1');
  assert.ok(s.lockedOut('192.0.2.1'));
  assert.equal(s.open('192.0.2.1'), { refused: REFUSAL.LOCKED });
  assert.equal(s.open('::ffff:192.0.2.1'), { refused: REFUSAL.LOCKED });
  id(s.open('192.0.2.2'));
  now += 59_999;
  assert.equal(s.open('192.0.2.1'), { refused: REFUSAL.LOCKED });
  now += 1;
  id(s.open('192.0.2.1'));
});

test('lockout: failures spread wider than the window do not add up', () => {
  let now = 0;
  const s = state({}, { now: () => now });
  for (let i = 0; i < 10; i++) {
    s.authFailed('192.0.2.1');
    s.authFailed('192.0.2.1');
    now += 10_001;
  }
  assert.not.ok(s.lockedOut('192.0.2.1'));
});

test('lockout off with 0 failures', () => {
  const s = state({ lockoutFailures: 0 });
  for (let i = 0; i < 100; i++) s.authFailed('192.0.2.1');
  assert.not.ok(s.lockedOut('192.0.2.1'));
  assert.is(s.trackedAddresses, 0);
});

test('the failure table is bounded: a flood from many addresses evicts the oldest', () => {
  let now = 0;
  const s = state({ maxTracked: 100 }, { now: () => now });
  for (let i = 0; i < 10_000; i++) {
    s.authFailed(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    now++;
  }
  assert.ok(s.trackedAddresses <= 100, `tracked ${s.trackedAddresses}`);
  // Expired entries go too, without a flood.
  now += 1_000_000;
  s.authFailed('192.0.2.200');
  assert.is(s.trackedAddresses, 1);
});

test('refusal reasons become a few metric labels, never an address', () => {
  assert.is(refusalCategory(REFUSAL.PER_ADDRESS), REFUSAL.PER_ADDRESS);
  assert.is(refusalCategory(REFUSAL.LOCKED), REFUSAL.LOCKED);
  assert.is(refusalCategory('PROXY header from 203.0.113.9, which is not a --trusted-proxy'), 'proxy protocol');
  assert.is(refusalCategory('no PROXY protocol header'), 'proxy protocol');
  assert.is(refusalCategory('closed before the PROXY header'), 'proxy protocol');
  assert.is(refusalCategory('something else 203.0.113.9'), 'other');
});

test.run();
