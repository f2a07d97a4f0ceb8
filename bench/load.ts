/** Shared load-generation helpers for the benchmarks (autocannon, child processes). */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
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

export function fmt(r: LoadResult & Partial<CpuFigures>): string {
  const cpu = cpuText(r);
  return `${String(r.rps).padStart(7)} req/s  p50 ${r.p50Ms.toFixed(2).padStart(6)} ms  p99 ${r.p99Ms.toFixed(2).padStart(6)} ms${cpu}${r.errors || r.non2xx ? `  (errors ${r.errors}, non-2xx ${r.non2xx})` : ''}`;
}

/**
 * CPU time (user + system, all threads) a process has used so far, in microseconds, from
 * /proc/<pid>/stat; null where there is no /proc. Dividing a phase's CPU time by its requests
 * shows what each request costs the process, which is what a CPU-bound gateway's RPS follows.
 */
export function cpuMicros(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at field 3; utime and stime are
    // fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / 100;
  } catch {
    return null;
  }
}

/** CPU time the whole machine has spent busy (all cores, every process), in microseconds. */
export function machineBusyMicros(): number | null {
  try {
    const fields = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]!
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    // user nice system idle iowait irq softirq steal: everything but idle and iowait is busy.
    const busy = fields[0]! + fields[1]! + fields[2]! + fields[5]! + fields[6]! + fields[7]!;
    return (busy * 1_000_000) / 100;
  } catch {
    return null;
  }
}

/**
 * Runs `load` and reports the CPU time each request cost the process `pid`, and the whole machine
 * (load generator, upstream, Redis and MariaDB included). `parts` names further processes whose
 * share is shown too; the load generator (autocannon, in this process) always is.
 */
export async function measureCpu<T extends { rps: number }>(
  pid: number | undefined,
  durationSec: number,
  load: () => Promise<T>,
  parts: Record<string, number | undefined> = {},
): Promise<T & CpuFigures> {
  let before: number | null = null;
  let machineBefore: number | null = null;
  let loadgenBefore: number | null = null;
  const partsBefore: Record<string, number | null> = {};
  // Start counting after the warm-up: runLoad warms up first, then measures for durationSec.
  const warmupDone = setTimeout(() => {
    before = cpuMicros(pid);
    machineBefore = machineBusyMicros();
    loadgenBefore = totalCpu(process.cpuUsage());
    for (const [name, p] of Object.entries(parts)) partsBefore[name] = cpuMicros(p);
  }, WARMUP_SEC * 1000);
  const result = await load();
  clearTimeout(warmupDone);
  const after = cpuMicros(pid);
  const machineAfter = machineBusyMicros();
  const requests = result.rps * durationSec;
  const perRequest = (a: number | null, b: number | null) =>
    a === null || b === null || requests === 0 ? null : (b - a) / requests;
  const breakdown: Record<string, number> = {};
  const loadgen = perRequest(loadgenBefore, totalCpu(process.cpuUsage()));
  if (loadgen !== null) breakdown['load generator'] = loadgen;
  for (const [name, p] of Object.entries(parts)) {
    const share = perRequest(partsBefore[name] ?? null, cpuMicros(p));
    if (share !== null) breakdown[name] = share;
  }
  return {
    ...result,
    cpuUsPerRequest: perRequest(before, after),
    machineUsPerRequest: perRequest(machineBefore, machineAfter),
    breakdown,
  };
}

export interface CpuFigures {
  cpuUsPerRequest: number | null;
  machineUsPerRequest: number | null;
  /** CPU time per request of the other processes measured alongside, by name. */
  breakdown?: Record<string, number>;
}

const totalCpu = (u: NodeJS.CpuUsage): number => u.user + u.system;

/** The first process whose command name is `comm` (e.g. redis-server), from /proc; else undefined. */
export function pidByName(comm: string): number | undefined {
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === comm) return Number(entry);
      } catch {
        // gone meanwhile
      }
    }
  } catch {
    // no /proc
  }
  return undefined;
}

export const WARMUP_SEC = 2;
/** Rounds of the HTTP benchmarks (BENCH_ROUNDS overrides it in run.ts). */
export const DEFAULT_ROUNDS = 5;

/** "  <proxy> us CPU/req (machine <all> us; load generator <n>, upstream <n>)" when known. */
export function cpuText(r: Partial<CpuFigures>): string {
  if (r.cpuUsPerRequest == null) return '';
  const parts = Object.entries(r.breakdown ?? {}).map(([name, us]) => `${name} ${Math.round(us)}`);
  const machine =
    r.machineUsPerRequest == null
      ? ''
      : ` (machine ${Math.round(r.machineUsPerRequest)}${parts.length ? `: ${parts.join(', ')}` : ''})`;
  return `  ${Math.round(r.cpuUsPerRequest)} us CPU/req${machine}`;
}

/** The element whose key is the median (the lower middle one for an even count). */
export function medianBy<T>(items: readonly T[], key: (item: T) => number): T {
  const sorted = [...items].sort((a, b) => key(a) - key(b));
  const middle = sorted[Math.floor((sorted.length - 1) / 2)];
  if (middle === undefined) throw new Error('medianBy: no items');
  return middle;
}

/**
 * Concurrency levels the HTTP benchmarks load each target at (BENCH_CONNECTIONS="32,128"
 * overrides them in run.ts). A closed loop of 32 connections leaves a proxy whose calls make
 * several hops in turn (keygate inbound: Redis, then the upstream) short of its capacity while a
 * one-hop passthrough is already at its own; 128 saturates both on the development machine.
 */
export const DEFAULT_CONNECTION_LEVELS = [32, 128];

/** One target's rounds at one concurrency level. */
export interface LevelRps {
  connections: number;
  passthroughRps: readonly number[];
  keygateRps: readonly number[];
}

/** Each target's capacity: its best median req/s over the levels, and at which level. */
export interface Capacity {
  passthrough: { rps: number; connections: number };
  keygate: { rps: number; connections: number };
  /** keygate's capacity / the passthrough's. */
  ratio: number;
}

/**
 * Compares capacities rather than one level's rates: each target at the concurrency level where
 * its median over the rounds is highest, as a gateway is sized by the rate it sustains when
 * loaded enough, not by how one closed-loop client count suits it.
 */
export function capacityOf(levels: readonly LevelRps[]): Capacity {
  const best = (rps: (level: LevelRps) => readonly number[]) => {
    let top = { rps: 0, connections: 0 };
    for (const level of levels) {
      const median = medianBy(rps(level), (x) => x);
      if (median > top.rps) top = { rps: median, connections: level.connections };
    }
    return top;
  };
  const passthrough = best((l) => l.passthroughRps);
  const keygate = best((l) => l.keygateRps);
  return { passthrough, keygate, ratio: passthrough.rps === 0 ? 0 : keygate.rps / passthrough.rps };
}

export function printCapacity(c: Capacity, target: number): void {
  console.log(
    `  capacity (each at its best level): passthrough ${Math.round(c.passthrough.rps)} req/s at ${c.passthrough.connections} connections, ` +
      `keygate ${Math.round(c.keygate.rps)} req/s at ${c.keygate.connections}: ${c.ratio.toFixed(2)}x  (target >= ${target}x)`,
  );
}

/**
 * Each level's rounds made into what is printed for it: the round with the median ratio, every
 * round's ratio, and each target's rates (for capacityOf).
 */
export function summarizeLevels<
  R extends { ratio: number; passthrough: { rps: number }; keygate: { rps: number } },
>(connectionLevels: readonly number[], byLevel: readonly R[][]): Array<R & LevelRps & { ratios: number[] }> {
  return byLevel.map((results, i) => ({
    ...medianBy(results, (r) => r.ratio),
    connections: connectionLevels[i]!,
    ratios: results.map((r) => r.ratio),
    passthroughRps: results.map((r) => r.passthrough.rps),
    keygateRps: results.map((r) => r.keygate.rps),
  }));
}
