/**
 * A/B runs of two keygate processes side by side (`npm run bench -- outbound-ab` / `inbound-ab`):
 * A as built, B with environment variables on top (BENCH_AB_ENV) and/or another checkout's CLI
 * (BENCH_AB_MAIN). Short load windows alternate A B B A ..., so the machine's drift, which moves
 * whole runs by a third here, hits both alike, and each pair is compared on its own.
 */

export interface AbOptions {
  env: Record<string, string>;
  /** Another checkout's src/cli/main.ts for B. */
  main?: string;
  pairs?: number;
  windowSec?: number;
  connections?: number;
}

/** What one window measured: the figures every benchmark reports. */
export interface AbWindow {
  rps: number;
  cpuUsPerRequest?: number | null;
  errors?: number;
  non2xx?: number;
}

export interface AbResult<W extends AbWindow> {
  /** What B runs with, as given. */
  variant: string;
  pairs: Array<{ a: W; b: W }>;
}

/** `NAME=value NAME2=value2` (BENCH_AB_ENV) as an object; throws on anything else. */
export function parseAbEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const item of text.trim().split(/\s+/).filter(Boolean)) {
    const match = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(item);
    if (!match) throw new Error(`BENCH_AB_ENV: expected NAME=value, got "${item}"`);
    env[match[1]!] = match[2]!;
  }
  return env;
}

function variantOf(opts: AbOptions): string {
  return [...Object.entries(opts.env).map(([k, v]) => `${k}=${v}`), ...(opts.main ? [opts.main] : [])].join(
    ' ',
  );
}

/** `opts.pairs` (default 8) pairs of `measure` windows on `a` and `b`, in the order A B, B A, A B, ... */
export async function runAb<T, W extends AbWindow>(
  opts: AbOptions,
  a: T,
  b: T,
  measure: (target: T) => Promise<W>,
): Promise<AbResult<W>> {
  const pairs: Array<{ a: W; b: W }> = [];
  for (let i = 0; i < (opts.pairs ?? 8); i++) {
    if (i % 2 === 0) {
      const first = await measure(a);
      pairs.push({ a: first, b: await measure(b) });
    } else {
      const first = await measure(b);
      pairs.push({ a: await measure(a), b: first });
    }
  }
  return { variant: variantOf(opts), pairs };
}

export function printAb(title: string, r: AbResult<AbWindow>): void {
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const cpu = (w: AbWindow) => (w.cpuUsPerRequest == null ? '?' : Math.round(w.cpuUsPerRequest));
  const failed = (w: AbWindow) =>
    w.errors || w.non2xx ? ` (errors ${w.errors ?? 0}, non-2xx ${w.non2xx ?? 0})` : '';
  const side = (name: string, w: AbWindow) =>
    `${name} ${String(w.rps).padStart(5)} req/s ${String(cpu(w)).padStart(4)} us CPU/req${failed(w)}`;
  console.log(`${title} A/B (A: keygate as built; B: ${r.variant}), windows alternating A B B A:`);
  r.pairs.forEach(({ a, b }, i) => {
    console.log(`  pair ${String(i + 1).padStart(2)}  ${side('A', a)}   ${side('B', b)}`);
  });
  const rps = r.pairs.map(({ a, b }) => b.rps / a.rps);
  const cpuRatios = r.pairs
    .filter(({ a, b }) => a.cpuUsPerRequest != null && b.cpuUsPerRequest != null)
    .map(({ a, b }) => b.cpuUsPerRequest! / a.cpuUsPerRequest!);
  console.log(
    `  B / A req/s: median ${median(rps).toFixed(3)}, B faster in ${rps.filter((x) => x > 1).length} of ${rps.length} pairs`,
  );
  if (cpuRatios.length > 0) {
    console.log(
      `  B / A CPU per request: median ${median(cpuRatios).toFixed(3)}, B cheaper in ${cpuRatios.filter((x) => x < 1).length} of ${cpuRatios.length} pairs`,
    );
  }
}
