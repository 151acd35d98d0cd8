/**
 * Runs tasks in arrival order per key, and tasks with no key in common in parallel.
 *
 * draft-02 §6.1: requests "relating to the same file" must behave as if processed one at a time
 * in the order received; unrelated ones may run in parallel and be answered in any order. The
 * server gives each request its keys (its handle, or its path(s)); a task starts once every
 * earlier task sharing a key has settled. Each task waits only on tasks dispatched before it, so
 * there is no cycle and no deadlock, whatever the keys.
 */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<void>>();

  /** Number of keys with work pending (for tests: everything settles back to 0). */
  get pendingKeys(): number {
    return this.#tails.size;
  }

  run<T>(keys: readonly string[], task: () => Promise<T>): Promise<T> {
    let start: Promise<unknown> | undefined;
    if (keys.length === 1) start = this.#tails.get(keys[0]!);
    else {
      const prev: Promise<void>[] = [];
      for (const k of keys) {
        const t = this.#tails.get(k);
        if (t !== undefined) prev.push(t);
      }
      if (prev.length > 0) start = Promise.all(prev);
    }
    const result = start === undefined ? task() : start.then(task);
    const settled: Promise<void> = result.then(
      () => this.#release(keys, settled),
      () => this.#release(keys, settled),
    );
    for (const k of keys) this.#tails.set(k, settled);
    return result;
  }

  #release(keys: readonly string[], settled: Promise<void>): void {
    for (const k of keys) if (this.#tails.get(k) === settled) this.#tails.delete(k);
  }
}
