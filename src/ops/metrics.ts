import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/**
 * A small metrics registry and the Prometheus text exposition format (0.0.4): counters, gauges
 * and histograms with labels. No dependency: what we need is a few dozen lines, and the format
 * is plain text.
 *
 * Under --workers N each worker keeps its own registry; the primary asks each for a `snapshot()`
 * (plain JSON) when /metrics is scraped and renders them merged (`render`): counters and
 * histograms add up, gauges add up too (open sessions, connections), except per-process gauges
 * (memory, event-loop lag), which keep one series per worker under a `worker` label.
 */
export type MetricType = 'counter' | 'gauge' | 'histogram';

/** Label sets one metric keeps apart; more share an "other" series. */
export const MAX_SERIES = 1000;

export interface Series {
  labels: Record<string, string>;
  /** counter, gauge */
  value?: number;
  /** histogram: cumulative counts per upper bound, then sum and count */
  buckets?: number[];
  sum?: number;
  count?: number;
}

export interface MetricSnapshot {
  name: string;
  help: string;
  type: MetricType;
  /** Gauges that describe one process: kept apart per worker when merged. */
  perProcess?: boolean;
  bounds?: number[];
  series: Series[];
}

export type Snapshot = MetricSnapshot[];

type Labels = Record<string, string>;

/** A metric's series by their label values, in a stable key. */
abstract class Metric {
  readonly series = new Map<string, Series>();
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly perProcess: boolean;
  constructor(name: string, help: string, type: MetricType, perProcess = false) {
    this.name = name;
    this.help = help;
    this.type = type;
    this.perProcess = perProcess;
  }

  protected at(labels: Labels): Series {
    let key = labelKey(labels);
    let s = this.series.get(key);
    if (!s) {
      // Labels come from bounded sets (operations, error codes, reasons), but a store answering
      // with endless new error codes must not grow memory or the scrape: past MAX_SERIES, new
      // label sets share one series whose values are all "other".
      if (this.series.size >= MAX_SERIES) {
        labels = Object.fromEntries(Object.keys(labels).map((k) => [k, 'other']));
        key = labelKey(labels);
        s = this.series.get(key);
      }
      if (!s) {
        s = this.fresh(labels);
        this.series.set(key, s);
      }
    }
    return s;
  }

  protected abstract fresh(labels: Labels): Series;

  snapshot(): MetricSnapshot {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      ...(this.perProcess ? { perProcess: true } : {}),
      series: [...this.series.values()].map((s) => structuredClone(s)),
    };
  }
}

export class Counter extends Metric {
  constructor(name: string, help: string) {
    super(name, help, 'counter');
  }
  protected fresh(labels: Labels): Series {
    return { labels: { ...labels }, value: 0 };
  }
  inc(labels: Labels = {}, by = 1): void {
    this.at(labels).value! += by;
  }
  /** For a count kept by another object (read at scrape time); it must never go down. */
  setTotal(labels: Labels, total: number): void {
    const s = this.at(labels);
    s.value = Math.max(s.value!, total);
  }
}

export class Gauge extends Metric {
  constructor(name: string, help: string, perProcess = false) {
    super(name, help, 'gauge', perProcess);
  }
  protected fresh(labels: Labels): Series {
    return { labels: { ...labels }, value: 0 };
  }
  set(labels: Labels, v: number): void {
    this.at(labels).value = v;
  }
  inc(labels: Labels = {}, by = 1): void {
    this.at(labels).value! += by;
  }
  dec(labels: Labels = {}, by = 1): void {
    this.at(labels).value! -= by;
  }
}

export class Histogram extends Metric {
  readonly bounds: number[];
  constructor(name: string, help: string, bounds: number[]) {
    super(name, help, 'histogram');
    this.bounds = bounds;
  }
  protected fresh(labels: Labels): Series {
    return { labels: { ...labels }, buckets: this.bounds.map(() => 0), sum: 0, count: 0 };
  }
  observe(labels: Labels, v: number): void {
    const s = this.at(labels);
    const b = s.buckets!;
    for (let i = 0; i < this.bounds.length; i++) if (v <= this.bounds[i]!) b[i]!++;
    s.sum! += v;
    s.count!++;
  }
  override snapshot(): MetricSnapshot {
    return { ...super.snapshot(), bounds: this.bounds };
  }
}

export class Registry {
  readonly #metrics: Metric[] = [];
  readonly #collectors: Array<() => void> = [];

  counter(name: string, help: string): Counter {
    return this.#add(new Counter(name, help));
  }
  gauge(name: string, help: string, perProcess = false): Gauge {
    return this.#add(new Gauge(name, help, perProcess));
  }
  histogram(name: string, help: string, bounds: number[]): Histogram {
    return this.#add(new Histogram(name, help, bounds));
  }
  /** A function run before each snapshot, to set gauges read from elsewhere (memory, lag). */
  collect(fn: () => void): void {
    this.#collectors.push(fn);
  }

  snapshot(): Snapshot {
    for (const c of this.#collectors) c();
    return this.#metrics.map((m) => m.snapshot());
  }

  #add<M extends Metric>(m: M): M {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(m.name)) throw new Error(`bad metric name ${m.name}`);
    this.#metrics.push(m);
    return m;
  }
}

function labelKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join('\u0000');
}

/**
 * Merges snapshots from several processes: `sources[i].worker` names each (ignored for one).
 * Series with the same name and labels add up; per-process gauges get a `worker` label instead.
 */
export function merge(sources: Array<{ worker: string; snapshot: Snapshot }>): Snapshot {
  const out = new Map<string, MetricSnapshot>();
  const single = sources.length === 1;
  for (const { worker, snapshot } of sources) {
    for (const m of snapshot) {
      let acc = out.get(m.name);
      if (!acc) {
        acc = { ...m, series: [] };
        out.set(m.name, acc);
      }
      for (const s of m.series) {
        const labels = m.perProcess && !single ? { ...s.labels, worker } : s.labels;
        const key = labelKey(labels);
        const have = acc.series.find((x) => labelKey(x.labels) === key);
        if (!have) {
          acc.series.push({ ...structuredClone(s), labels });
        } else if (m.type === 'histogram') {
          have.buckets = have.buckets!.map((n, i) => n + (s.buckets![i] ?? 0));
          have.sum! += s.sum!;
          have.count! += s.count!;
        } else {
          have.value! += s.value!;
        }
      }
    }
  }
  return [...out.values()];
}

/** The Prometheus text format, version 0.0.4. */
export function render(snapshot: Snapshot): string {
  const lines: string[] = [];
  for (const m of snapshot) {
    lines.push(`# HELP ${m.name} ${escapeHelp(m.help)}`);
    lines.push(`# TYPE ${m.name} ${m.type}`);
    for (const s of m.series) {
      if (m.type === 'histogram') {
        const bounds = m.bounds ?? [];
        bounds.forEach((b, i) => lines.push(`${m.name}_bucket${labelText({ ...s.labels, le: fmt(b) })} ${s.buckets![i]}`));
        lines.push(`${m.name}_bucket${labelText({ ...s.labels, le: '+Inf' })} ${s.count}`);
        lines.push(`${m.name}_sum${labelText(s.labels)} ${fmt(s.sum!)}`);
        lines.push(`${m.name}_count${labelText(s.labels)} ${s.count}`);
      } else {
        lines.push(`${m.name}${labelText(s.labels)} ${fmt(s.value!)}`);
      }
    }
  }
  return lines.join('\n') + '\n';
}

function labelText(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  return '{' + keys.map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(',') + '}';
}

/** Label values: backslash, double quote and newline escaped (exposition format spec). */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function fmt(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

// ------------------------------------------------------------------ the gateway's metrics

/** S3 request latency buckets, seconds: 5 ms to 2 min (a 5 GiB part copy takes tens of seconds). */
const LATENCY_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

const LAG_RESOLUTION_MS = 10;

/** What the gateway records; one per process. */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly connections = this.registry.gauge('s3gw_connections', 'SSH connections open (admitted, logged in or not)');
  readonly refused = this.registry.counter('s3gw_connections_refused_total', 'Connections refused at accept, by reason');
  readonly logins = this.registry.counter('s3gw_logins_total', 'Login attempts by outcome (success, failure)');
  readonly sessions = this.registry.gauge('s3gw_sessions', 'SFTP and SCP sessions open, by protocol');
  readonly sessionsTotal = this.registry.counter('s3gw_sessions_total', 'SFTP and SCP sessions started, by protocol');
  readonly bytes = this.registry.counter('s3gw_transfer_bytes_total', 'File data moved by finished transfers, by direction (in = uploaded)');
  readonly transfers = this.registry.counter('s3gw_transfers_total', 'Transfers by kind (upload, download) and outcome (ok, error)');
  readonly operations = this.registry.counter('s3gw_file_operations_total', 'mkdir, rmdir, remove, rename and setstat by outcome');
  readonly s3Latency = this.registry.histogram('s3gw_s3_request_duration_seconds', 'S3 request latency by operation, retries included', LATENCY_BOUNDS);
  readonly s3Errors = this.registry.counter('s3gw_s3_errors_total', 'Failed S3 requests by operation and error code');
  readonly draining = this.registry.gauge('s3gw_draining', '1 while the instance drains (SIGTERM)');
  readonly lag = this.registry.gauge('s3gw_event_loop_lag_seconds', 'Event-loop delay over the last scrape interval, by quantile (0.5, 0.99, max)', true);
  readonly memory = this.registry.gauge('process_resident_memory_bytes', 'Resident set size', true);
  readonly heap = this.registry.gauge('nodejs_heap_used_bytes', 'V8 heap in use', true);
  readonly external = this.registry.gauge('nodejs_external_memory_bytes', 'Memory outside the V8 heap (buffers)', true);
  readonly up = this.registry.gauge('s3gw_process_start_time_seconds', 'When the process started (Unix seconds)', true);
  /** Extra counters read at scrape time (the audit sinks' drops). */
  readonly auditDropped = this.registry.counter('s3gw_audit_dropped_total', 'Audit records dropped (queue full, rejected, not sent before exit)');
  readonly #loop: IntervalHistogram;

  constructor(readAuditDropped: () => number = () => 0) {
    this.#loop = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
    this.#loop.enable();
    const started = Math.round(Date.now() / 1000 - process.uptime());
    this.registry.collect(() => {
      const h = this.#loop;
      // The histogram holds the time between the sampling timer's runs, which is the 10 ms
      // resolution plus the delay; the delay is what we report, ns → s. It is reset per scrape,
      // so the figures describe the time since the previous one.
      const lag = (ns: number) => (h.count === 0 ? 0 : Math.max(0, ns / 1e6 - LAG_RESOLUTION_MS) / 1000);
      this.lag.set({ quantile: '0.5' }, lag(h.percentile(50)));
      this.lag.set({ quantile: '0.99' }, lag(h.percentile(99)));
      this.lag.set({ quantile: 'max' }, lag(h.max));
      h.reset();
      const m = process.memoryUsage();
      this.memory.set({}, m.rss);
      this.heap.set({}, m.heapUsed);
      this.external.set({}, m.external);
      this.up.set({}, started);
      this.auditDropped.setTotal({}, readAuditDropped());
    });
    this.draining.set({}, 0);
    this.connections.set({}, 0);
  }

  /** For the S3 clients' middleware (src/s3/clients.ts). */
  readonly onS3Request = (operation: string, seconds: number, error?: string): void => {
    this.s3Latency.observe({ operation }, seconds);
    if (error !== undefined) this.s3Errors.inc({ operation, code: error });
  };

  stop(): void {
    this.#loop.disable();
  }
}
