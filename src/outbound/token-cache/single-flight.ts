/**
 * One run of `work` per key at a time in this process: concurrent callers share its promise, so
 * they all get the same result or the same error, and the key is free again once it settles.
 */
export function singleFlight<T>(
  inflight: Map<string, Promise<T>>,
  key: string,
  work: () => Promise<T>,
): Promise<T> {
  const running = inflight.get(key);
  if (running) return running;
  const flight = (async () => {
    try {
      return await work();
    } finally {
      inflight.delete(key);
    }
  })();
  inflight.set(key, flight);
  return flight;
}
