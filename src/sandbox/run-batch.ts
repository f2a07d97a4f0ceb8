/**
 * Script runs asked for during one turn of Node's event loop run together at the end of that turn
 * (setImmediate, after the turn's I/O callbacks), the runs of one isolate one after the other.
 *
 * A run costs two to three times as much when the CPU caches no longer hold its isolate (the cold
 * line of bench/sandbox.ts). Run one at a time in a loaded proxy, every run would come between
 * HTTP parsing, undici and the other isolate, which evict it; grouped, only the first run of an
 * isolate in a turn finds it cold. Each run is still one synchronous call into its isolate on this
 * thread; a caller waits at most until the end of the current turn.
 */

interface PendingRun {
  owner: object;
  run: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

export class RunBatcher {
  #pending: PendingRun[] = [];

  /**
   * Runs `run` at the end of this event-loop turn, after the runs of the same `owner` (an isolate)
   * asked for before it, and answers with what it returns (a promise is followed) or throws.
   */
  schedule<T>(owner: object, run: () => T | Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ owner, run, resolve: resolve as (value: unknown) => void, reject });
      if (this.#pending.length === 1) setImmediate(this.#flush);
    });
  }

  readonly #flush = (): void => {
    const batch = this.#pending;
    // Runs asked for by the code these runs resume belong to the next turn.
    this.#pending = [];
    // Owner by owner, in the order each first asked; a turn holds a few runs, so a scan per owner
    // costs less than building groups.
    for (let first = 0; first < batch.length; first++) {
      const owner = batch[first]!.owner;
      if (owner === DONE) continue;
      for (let i = first; i < batch.length; i++) {
        const item = batch[i]!;
        if (item.owner !== owner) continue;
        item.owner = DONE;
        try {
          item.resolve(item.run());
        } catch (err) {
          item.reject(err);
        }
      }
    }
  };
}

/** Marks a run of the batch being flushed as started. */
const DONE = {};
