/**
 * Requests and notifications between the cluster primary and its workers over node's IPC channel
 * (process.send / worker.send, JSON messages). Each request has an id and a deadline, and the
 * number waiting for an answer is bounded, so a stuck peer costs a bounded amount of memory and
 * its callers fail fast instead of hanging.
 */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json | undefined };

interface Request {
  s3gw: 'req';
  id: number;
  method: string;
  params: Json;
}
interface Response {
  s3gw: 'res';
  id: number;
  result?: Json;
  error?: string;
}
interface Note {
  s3gw: 'note';
  method: string;
  params: Json;
}
type Message = Request | Response | Note;

export class IpcError extends Error {
  readonly code = 'ERR_S3GW_IPC';
  constructor(message: string) {
    super(message);
    this.name = 'IpcError';
  }
}

export interface IpcOptions {
  /** Sends one message; false when the channel is closed. */
  send: (m: Message) => boolean;
  timeoutMs?: number;
  maxPending?: number;
}

type Handler = (params: Json) => Json | undefined | void | Promise<Json | undefined | void>;

export interface RequestOptions {
  /**
   * Called with an answer that arrives after the deadline, when the caller has already been told
   * the request failed. A request that made the peer take something (an admission slot) uses it
   * to give that back; without it the peer would count it until the worker dies.
   */
  onLate?: (result: Json) => void;
}

export class IpcEndpoint {
  readonly #send: (m: Message) => boolean;
  readonly #timeoutMs: number;
  readonly #maxPending: number;
  readonly #pending = new Map<number, { resolve: (v: Json) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  readonly #handlers = new Map<string, Handler>();
  /** onLate of requests past their deadline, oldest first, at most maxPending of them. */
  readonly #late = new Map<number, (result: Json) => void>();
  #nextId = 1;

  constructor(o: IpcOptions) {
    this.#send = o.send;
    this.#timeoutMs = o.timeoutMs ?? 5_000;
    this.#maxPending = o.maxPending ?? 10_000;
  }

  get pending(): number {
    return this.#pending.size;
  }

  /** Answers requests and notifications named `method`. */
  on(method: string, handler: Handler): this {
    this.#handlers.set(method, handler);
    return this;
  }

  request(method: string, params: Json = null, o: RequestOptions = {}): Promise<Json> {
    if (this.#pending.size >= this.#maxPending) return Promise.reject(new IpcError(`too many requests waiting (${this.#maxPending})`));
    const id = this.#nextId++;
    return new Promise<Json>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        if (o.onLate) {
          // Bounded like the pending requests: a peer that never answers costs a fixed amount.
          if (this.#late.size >= this.#maxPending) this.#late.delete(this.#late.keys().next().value!);
          this.#late.set(id, o.onLate);
        }
        reject(new IpcError(`${method}: no answer within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      timer.unref();
      this.#pending.set(id, { resolve, reject, timer });
      if (!this.#safeSend({ s3gw: 'req', id, method, params })) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(new IpcError(`${method}: the channel is closed`));
      }
    });
  }

  notify(method: string, params: Json = null): boolean {
    return this.#safeSend({ s3gw: 'note', method, params });
  }

  /** Feeds one received message; false if it was not ours (other listeners may want it). */
  receive(raw: unknown): boolean {
    if (typeof raw !== 'object' || raw === null || !('s3gw' in raw)) return false;
    const m = raw as Message;
    if (m.s3gw === 'res') {
      const p = this.#pending.get(m.id);
      if (!p) {
        // Answered after its deadline (or never asked): the caller has moved on.
        const late = this.#late.get(m.id);
        if (late) {
          this.#late.delete(m.id);
          if (m.error === undefined) {
            try {
              late(m.result ?? null);
            } catch {
              // nobody left to tell
            }
          }
        }
        return true;
      }
      this.#pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.error !== undefined) p.reject(new IpcError(m.error));
      else p.resolve(m.result ?? null);
      return true;
    }
    const handler = this.#handlers.get(m.method);
    if (m.s3gw === 'note') {
      if (handler) {
        try {
          void Promise.resolve(handler(m.params)).catch(() => {});
        } catch {
          // a notification has nobody to tell
        }
      }
      return true;
    }
    if (m.s3gw === 'req') {
      const reply = (r: Omit<Response, 's3gw' | 'id'>) => this.#safeSend({ s3gw: 'res', id: m.id, ...r });
      if (!handler) {
        reply({ error: `unknown method ${m.method}` });
        return true;
      }
      Promise.resolve()
        .then(() => handler(m.params))
        .then(
          (result) => reply({ result: result ?? null }),
          (err: Error) => reply({ error: err?.message ?? String(err) }),
        );
      return true;
    }
    return false;
  }

  /** Fails every request still waiting (the peer is gone). */
  close(reason: string): void {
    this.#late.clear();
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new IpcError(reason));
      this.#pending.delete(id);
    }
  }

  #safeSend(m: Message): boolean {
    try {
      return this.#send(m);
    } catch {
      return false;
    }
  }
}
