/**
 * `/readyz`: whether this node's dependencies answer, cheap enough for a probe every second on
 * every listener (the inbound one faces the internet).
 *
 * - Probes run at most once per `cacheMs`; callers in between share the last result or the run in
 *   flight, so probe traffic never reaches the database more than once a second per node.
 * - A probe that has not answered within `timeoutMs` counts as down, and is not started again
 *   while it still hangs: a hung database holds at most one pool connection for readiness.
 * - `drain()` (a graceful stop) makes every later check not ready, so load balancers stop sending
 *   new requests before the listeners close.
 */
export type Probe = () => Promise<unknown>;

export interface ReadinessReport {
  ready: boolean;
  draining: boolean;
  checks: Record<string, boolean>;
}

export interface Readiness {
  check(): Promise<ReadinessReport>;
  drain(): void;
}

export function createReadiness(
  probes: Record<string, Probe>,
  { timeoutMs = 1_000, cacheMs = 1_000, now = () => performance.now() } = {},
): Readiness {
  let draining = false;
  let last: { at: number; checks: Record<string, boolean> } | undefined;
  let running: Promise<Record<string, boolean>> | undefined;
  const hanging = new Set<string>();

  function probeOnce(name: string, probe: Probe): Promise<boolean> {
    if (hanging.has(name)) return Promise.resolve(false);
    hanging.add(name);
    const settled = Promise.resolve()
      .then(probe)
      .then(
        () => true,
        () => false,
      )
      .finally(() => hanging.delete(name));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref();
    });
    return Promise.race([settled, timedOut]).finally(() => clearTimeout(timer));
  }

  async function runProbes(): Promise<Record<string, boolean>> {
    const names = Object.keys(probes);
    const results = await Promise.all(names.map((name) => probeOnce(name, probes[name]!)));
    return Object.fromEntries(names.map((name, i) => [name, results[i]!]));
  }

  return {
    async check() {
      let checks: Record<string, boolean>;
      if (last && now() - last.at < cacheMs) {
        checks = last.checks;
      } else {
        running ??= runProbes().finally(() => {
          running = undefined;
        });
        checks = await running;
        last = { at: now(), checks };
      }
      const ready = !draining && Object.values(checks).every(Boolean);
      return { ready, draining, checks };
    },
    drain() {
      draining = true;
    },
  };
}
