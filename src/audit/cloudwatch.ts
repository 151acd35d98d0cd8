import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  PutLogEventsCommand,
  type InputLogEvent,
} from '@aws-sdk/client-cloudwatch-logs';
import { silentLogger, type Logger } from '../log.js';
import type { AuditRecord, AuditSink } from './records.js';

/**
 * Audit records to CloudWatch Logs: one stream per instance in one group, both created if
 * missing, sent in batches with the gateway's own credentials (the SDK's default chain).
 *
 * Delivery never holds a transfer: `write` only appends to a bounded queue. One PutLogEvents is
 * in flight at a time; a failed one is retried with exponential backoff and jitter, its events
 * kept at the head of the queue. When the queue is full, new records are dropped and counted
 * (`dropped`), and a warning is logged at most once a minute.
 *
 * PutLogEvents' limits (CloudWatch Logs API reference): at most 10,000 events and 1,048,576
 * bytes per batch, counting each event's UTF-8 message plus 26 bytes; one event at most
 * 256 KiB (the same 26 bytes included); events in chronological order within 24 hours.
 */
export const PUT_LIMITS = {
  maxEvents: 10_000,
  maxBatchBytes: 1_048_576,
  eventOverhead: 26,
  maxEventBytes: 256 * 1024,
  maxSpanMs: 24 * 3600_000,
} as const;

/** What the sink needs of a client: `send` of the three commands (tests pass a fake). */
export interface LogsClient {
  send(command: CreateLogGroupCommand | CreateLogStreamCommand | PutLogEventsCommand): Promise<unknown>;
  destroy?(): void;
}

export interface CloudWatchSinkOptions {
  logGroup: string;
  logStream: string;
  client: LogsClient;
  log?: Logger;
  /** How often a partial batch is sent. */
  flushIntervalMs?: number;
  /** Queue bounds; past either, records are dropped. */
  maxQueueEvents?: number;
  maxQueueBytes?: number;
  /** First retry delay; doubles per failure up to maxBackoffMs (each with jitter). */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  /** How long `close` keeps sending what is queued. */
  closeDeadlineMs?: number;
  /** Test hook: the clock and the jitter source. */
  now?: () => number;
  random?: () => number;
}

interface Queued {
  timestamp: number;
  message: string;
  /** UTF-8 bytes plus the per-event overhead. */
  cost: number;
}

export class CloudWatchSink implements AuditSink {
  readonly #o: Required<Omit<CloudWatchSinkOptions, 'log'>> & { log: Logger };
  #queue: Queued[] = [];
  #queuedBytes = 0;
  #inFlight: Promise<void> | null = null;
  #ready = false;
  #failures = 0;
  #retryAt = 0;
  #timer: NodeJS.Timeout | null;
  #closed = false;
  #sent = 0;
  #dropped = 0;
  #truncated = 0;
  #lastWarn = -Infinity;
  #droppedSinceWarn = 0;

  constructor(opts: CloudWatchSinkOptions) {
    this.#o = {
      flushIntervalMs: 1000,
      maxQueueEvents: 50_000,
      maxQueueBytes: 16 * 1024 * 1024,
      baseBackoffMs: 250,
      maxBackoffMs: 30_000,
      closeDeadlineMs: 10_000,
      now: Date.now,
      random: Math.random,
      ...opts,
      log: opts.log ?? silentLogger,
    };
    this.#timer = setInterval(() => this.#tick(), this.#o.flushIntervalMs);
    this.#timer.unref();
  }

  /** Events accepted by CloudWatch Logs. */
  get sent(): number {
    return this.#sent;
  }
  /** Records dropped: queue full, rejected by CloudWatch, or left at close. */
  get dropped(): number {
    return this.#dropped;
  }
  /** Records cut down to a stub because they exceeded the event size limit. */
  get truncated(): number {
    return this.#truncated;
  }
  get queued(): number {
    return this.#queue.length;
  }

  write(record: AuditRecord): void {
    if (this.#closed) return this.#drop(1, 'closed');
    let message = JSON.stringify(record);
    let cost = Buffer.byteLength(message) + PUT_LIMITS.eventOverhead;
    if (cost > PUT_LIMITS.maxEventBytes) {
      // Only a pathological record gets here (paths are capped far lower); keep its kind.
      this.#truncated++;
      message = JSON.stringify({ time: record.time, instance: record.instance, event: record.event, truncated: true, bytes: cost });
      cost = Buffer.byteLength(message) + PUT_LIMITS.eventOverhead;
    }
    if (this.#queue.length >= this.#o.maxQueueEvents || this.#queuedBytes + cost > this.#o.maxQueueBytes) {
      return this.#drop(1, 'queue full');
    }
    const t = Date.parse(record.time);
    this.#queue.push({ timestamp: Number.isFinite(t) ? t : this.#o.now(), message, cost });
    this.#queuedBytes += cost;
    if (this.#queue.length >= PUT_LIMITS.maxEvents || this.#queuedBytes >= PUT_LIMITS.maxBatchBytes) this.#tick();
  }

  /** Sends what is queued, for at most closeDeadlineMs; what is left then counts as dropped. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    const deadline = this.#o.now() + this.#o.closeDeadlineMs;
    while (this.#queue.length > 0 && this.#o.now() < deadline) {
      if (this.#inFlight) await this.#inFlight;
      else if (this.#o.now() < this.#retryAt) await sleep(Math.min(this.#retryAt, deadline) - this.#o.now());
      else await this.#flush();
    }
    if (this.#inFlight) await this.#inFlight;
    if (this.#queue.length > 0) {
      this.#drop(this.#queue.length, 'not sent before close');
      this.#queue = [];
      this.#queuedBytes = 0;
    }
    this.#warnDropped(true);
    this.#o.client.destroy?.();
  }

  #tick(): void {
    if (this.#inFlight || this.#queue.length === 0 || this.#o.now() < this.#retryAt) return;
    void this.#flush();
  }

  #flush(): Promise<void> {
    const p = this.#send().finally(() => {
      this.#inFlight = null;
    });
    this.#inFlight = p;
    return p;
  }

  async #send(): Promise<void> {
    const batch = takeBatch(this.#queue);
    for (const e of batch) this.#queuedBytes -= e.cost;
    try {
      if (!this.#ready) await this.#ensureStream();
      const events: InputLogEvent[] = batch.map((e) => ({ timestamp: e.timestamp, message: e.message }));
      const out = (await this.#o.client.send(
        new PutLogEventsCommand({ logGroupName: this.#o.logGroup, logStreamName: this.#o.logStream, logEvents: events }),
      )) as { rejectedLogEventsInfo?: { tooNewLogEventStartIndex?: number; tooOldLogEventEndIndex?: number; expiredLogEventEndIndex?: number } };
      const rejected = countRejected(out?.rejectedLogEventsInfo, batch.length);
      this.#sent += batch.length - rejected;
      if (rejected > 0) this.#drop(rejected, 'rejected by CloudWatch Logs (too old or too new)');
      this.#failures = 0;
      this.#retryAt = 0;
    } catch (err) {
      const name = (err as Error).name;
      if (name === 'ResourceNotFoundException') this.#ready = false; // group or stream deleted: create again
      // Put the batch back at the head, in order, if it still fits; otherwise it is lost.
      if (this.#queuedBytes + batch.reduce((n, e) => n + e.cost, 0) <= this.#o.maxQueueBytes) {
        this.#queue = batch.concat(this.#queue);
        for (const e of batch) this.#queuedBytes += e.cost;
      } else {
        this.#drop(batch.length, 'queue full while retrying');
      }
      this.#failures++;
      const backoff = Math.min(this.#o.maxBackoffMs, this.#o.baseBackoffMs * 2 ** Math.min(this.#failures - 1, 20));
      this.#retryAt = this.#o.now() + backoff * (0.5 + this.#o.random() / 2);
      if (this.#failures === 1 || this.#failures % 10 === 0) {
        this.#o.log.warn('sending audit records to CloudWatch Logs failed; retrying', {
          err: name,
          failures: this.#failures,
          queued: this.#queue.length,
        });
      }
    }
    this.#warnDropped(false);
  }

  async #ensureStream(): Promise<void> {
    const { client, logGroup, logStream } = this.#o;
    try {
      await client.send(new CreateLogGroupCommand({ logGroupName: logGroup }));
    } catch (err) {
      // Already there, or the role may not create groups (a deployment template made it): the
      // stream creation below tells whether the group is usable.
      const name = (err as Error).name;
      if (name !== 'ResourceAlreadyExistsException' && name !== 'AccessDeniedException') throw err;
    }
    try {
      await client.send(new CreateLogStreamCommand({ logGroupName: logGroup, logStreamName: logStream }));
    } catch (err) {
      if ((err as Error).name !== 'ResourceAlreadyExistsException') throw err;
    }
    this.#ready = true;
  }

  #drop(n: number, reason: string): void {
    this.#dropped += n;
    this.#droppedSinceWarn += n;
    this.#lastReason = reason;
    this.#warnDropped(false);
  }

  #lastReason = '';

  #warnDropped(force: boolean): void {
    if (this.#droppedSinceWarn === 0) return;
    const now = this.#o.now();
    if (!force && now - this.#lastWarn < 60_000) return;
    this.#o.log.warn('audit records dropped', { count: this.#droppedSinceWarn, total: this.#dropped, reason: this.#lastReason });
    this.#lastWarn = now;
    this.#droppedSinceWarn = 0;
  }
}

/**
 * Takes the longest head of the queue that fits one PutLogEvents call, sorted by time (records
 * are queued in the order they were made, but a clock step could reorder them). Mutates `queue`.
 */
export function takeBatch(queue: Queued[]): Queued[] {
  let bytes = 0;
  let n = 0;
  let first = Infinity;
  let last = -Infinity;
  for (; n < queue.length && n < PUT_LIMITS.maxEvents; n++) {
    const e = queue[n]!;
    const lo = Math.min(first, e.timestamp);
    const hi = Math.max(last, e.timestamp);
    if (bytes + e.cost > PUT_LIMITS.maxBatchBytes || (n > 0 && hi - lo > PUT_LIMITS.maxSpanMs)) break;
    bytes += e.cost;
    first = lo;
    last = hi;
  }
  const batch = queue.splice(0, n);
  return batch.sort((a, b) => a.timestamp - b.timestamp);
}

function countRejected(info: { tooNewLogEventStartIndex?: number; tooOldLogEventEndIndex?: number; expiredLogEventEndIndex?: number } | undefined, n: number): number {
  if (!info) return 0;
  let bad = 0;
  const oldEnd = Math.max(info.tooOldLogEventEndIndex ?? -1, info.expiredLogEventEndIndex ?? -1);
  if (oldEnd >= 0) bad += Math.min(n, oldEnd + 1);
  if (info.tooNewLogEventStartIndex !== undefined && info.tooNewLogEventStartIndex >= 0) {
    bad += Math.max(0, n - Math.max(info.tooNewLogEventStartIndex, oldEnd + 1));
  }
  return Math.min(n, bad);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}

/** The sink for `--cloudwatch-log-group`, with an SDK client on the gateway's own credentials. */
export function createCloudWatchSink(opts: {
  logGroup: string;
  logStream: string;
  region: string;
  endpoint?: string | undefined;
  log?: Logger;
}): CloudWatchSink {
  const client = new CloudWatchLogsClient({
    region: opts.region,
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    // The sink retries itself, with its own backoff; one SDK retry covers a dropped socket.
    maxAttempts: 2,
  });
  return new CloudWatchSink({ logGroup: opts.logGroup, logStream: opts.logStream, client, ...(opts.log ? { log: opts.log } : {}) });
}
