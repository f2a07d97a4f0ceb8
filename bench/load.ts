/** Shared load-generation helpers for the benchmarks (autocannon, child processes). */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';

export interface LoadResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
}

export async function runLoad(opts: {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  connections?: number;
  durationSec?: number;
  warmupSec?: number;
}): Promise<LoadResult> {
  const base = {
    url: opts.url,
    method: opts.method ?? 'POST',
    headers: opts.headers,
    body: opts.body,
    connections: opts.connections ?? 32,
  };
  if (opts.warmupSec) await autocannon({ ...base, duration: opts.warmupSec });
  const r = await autocannon({ ...base, duration: opts.durationSec ?? 10 });
  return {
    rps: Math.round(r.requests.average),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  };
}

/** Starts `node <script> args` and waits for the first JSON line on stdout (it carries the port). */
export async function startChild(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ child: ChildProcess; info: Record<string, unknown> }> {
  // BENCH_PROFILE_DIR: write a CPU profile of every child, to see where the time goes.
  const profile = process.env.BENCH_PROFILE_DIR
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`]
    : [];
  const child = spawn(
    process.execPath,
    ['--no-node-snapshot', '--disable-warning=ExperimentalWarning', ...profile, script, ...args],
    {
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: child.stdout! });
  const info = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start`)), 30_000);
    lines.on('line', (line) => {
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        clearTimeout(timer);
        resolve(parsed);
      } catch {
        // not the port line
      }
    });
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
  return { child, info };
}

export function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

export function fmt(r: LoadResult): string {
  return `${String(r.rps).padStart(7)} req/s  p50 ${r.p50Ms.toFixed(2).padStart(6)} ms  p99 ${r.p99Ms.toFixed(2).padStart(6)} ms${r.errors || r.non2xx ? `  (errors ${r.errors}, non-2xx ${r.non2xx})` : ''}`;
}
