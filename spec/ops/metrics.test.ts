import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { GatewayMetrics, MAX_SERIES, Registry, escapeLabel, merge, render } from '../../src/ops/metrics.js';
import { parsePrometheus, sampleValue } from '../helpers/prometheus.js';

const test = suite('ops/metrics');

test('counters, gauges and labels render in the text format with HELP and TYPE', () => {
  const r = new Registry();
  const c = r.counter('s3gw_things_total', 'Things done');
  const g = r.gauge('s3gw_open', 'Open things');
  c.inc({ kind: 'a' });
  c.inc({ kind: 'a' }, 2);
  c.inc({ kind: 'b' });
  g.inc();
  g.inc();
  g.dec();
  const text = render(r.snapshot());
  assert.is(
    text,
    [
      '# HELP s3gw_things_total Things done',
      '# TYPE s3gw_things_total counter',
      's3gw_things_total{kind="a"} 3',
      's3gw_things_total{kind="b"} 1',
      '# HELP s3gw_open Open things',
      '# TYPE s3gw_open gauge',
      's3gw_open 1',
      '',
    ].join('\n'),
  );
});

test('label values escape backslash, quote and newline; the parser reads them back', () => {
  assert.is(escapeLabel('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  const r = new Registry();
  r.counter('x_total', 'help with \\ and\nnewline').inc({ path: 'a\\b"c\nd' });
  const text = render(r.snapshot());
  assert.match(text, /# HELP x_total help with \\\\ and\\nnewline/);
  const parsed = parsePrometheus(text);
  assert.equal(parsed.samples, [{ name: 'x_total', labels: { path: 'a\\b"c\nd' }, value: 1 }]);
  assert.is(parsed.types.x_total, 'counter');
});

test('histograms: cumulative buckets, +Inf, sum and count', () => {
  const r = new Registry();
  const h = r.histogram('lat_seconds', 'Latency', [0.1, 1]);
  h.observe({ op: 'Get' }, 0.05);
  h.observe({ op: 'Get' }, 0.5);
  h.observe({ op: 'Get' }, 5);
  const p = parsePrometheus(render(r.snapshot()));
  const v = (name: string, le?: string) => p.samples.find((s) => s.name === name && s.labels.le === le)?.value;
  assert.is(v('lat_seconds_bucket', '0.1'), 1);
  assert.is(v('lat_seconds_bucket', '1'), 2);
  assert.is(v('lat_seconds_bucket', '+Inf'), 3);
  assert.is(v('lat_seconds_sum'), 5.55);
  assert.is(v('lat_seconds_count'), 3);
});

test('merging workers: counters and histograms add up, per-process gauges get a worker label', () => {
  const make = (n: number) => {
    const r = new Registry();
    r.counter('c_total', 'c').inc({ k: 'x' }, n);
    r.gauge('open', 'open').inc({}, n);
    r.gauge('rss_bytes', 'rss', true).set({}, 1000 * n);
    r.histogram('h', 'h', [1]).observe({}, n);
    return r.snapshot();
  };
  const merged = merge([
    { worker: '1', snapshot: make(1) },
    { worker: '2', snapshot: make(2) },
  ]);
  const p = parsePrometheus(render(merged));
  const get = (name: string, labels: Record<string, string> = {}) =>
    p.samples.find((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels))?.value;
  assert.is(get('c_total', { k: 'x' }), 3);
  assert.is(get('open'), 3);
  assert.is(get('rss_bytes', { worker: '1' }), 1000);
  assert.is(get('rss_bytes', { worker: '2' }), 2000);
  assert.is(get('h_bucket', { le: '1' }), 1);
  assert.is(get('h_count'), 2);
  // One worker alone: no worker label.
  assert.ok(parsePrometheus(render(merge([{ worker: '1', snapshot: make(1) }]))).samples.some((s) => s.name === 'rss_bytes' && !('worker' in s.labels)));
});

test('a metric keeps at most MAX_SERIES label sets; the rest share an "other" series', () => {
  const r = new Registry();
  const c = r.counter('codes_total', 'codes');
  for (let i = 0; i < MAX_SERIES + 500; i++) c.inc({ code: `E${i}` });
  const p = parsePrometheus(render(r.snapshot()));
  assert.is(p.samples.length, MAX_SERIES + 1);
  assert.is(sampleValue(p.samples, 'codes_total', { code: 'other' }), 500);
  assert.is(sampleValue(p.samples, 'codes_total', { code: 'E7' }), 1);
});

test('the gateway metrics: process figures collected at each snapshot', () => {
  const m = new GatewayMetrics(() => 7);
  try {
    const p = parsePrometheus(render(m.registry.snapshot()));
    const names = new Set(p.samples.map((s) => s.name));
    for (const n of ['process_resident_memory_bytes', 'nodejs_heap_used_bytes', 's3gw_event_loop_lag_seconds', 's3gw_draining', 's3gw_connections']) {
      assert.ok(names.has(n), n);
    }
    assert.is(p.samples.find((s) => s.name === 's3gw_audit_dropped_total')?.value, 7);
    assert.is(p.types.s3gw_audit_dropped_total, 'counter', 'a _total is a counter');
    assert.ok(p.samples.find((s) => s.name === 'process_resident_memory_bytes')!.value > 10_000_000);
    m.onS3Request('PutObject', 0.02);
    m.onS3Request('PutObject', 0.3, 'AccessDenied');
    const q = parsePrometheus(render(m.registry.snapshot()));
    assert.is(q.samples.find((s) => s.name === 's3gw_s3_request_duration_seconds_count' && s.labels.operation === 'PutObject')?.value, 2);
    assert.is(q.samples.find((s) => s.name === 's3gw_s3_errors_total')?.labels.code, 'AccessDenied');
  } finally {
    m.stop();
  }
});

test.run();
