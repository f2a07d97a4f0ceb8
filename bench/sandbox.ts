/**
 * The seed request script (DESIGN.md, seeds/001) on the sandbox's common path: token prefetched,
 * so the run is synchronous: one crossing into the isolate and back, with one call out to the
 * host for AES (SHA-256 runs inside the isolate). Each sample is one awaited runRequest, which
 * includes the end of the event-loop turn that the sandbox batches runs in (run-batch.ts); the run
 * alone is shown beside it.
 * Beside it, the same run with the CPU caches flushed before it, and request and response runs with
 * a large JSON body, against parsing and writing that body once on the host.
 * Run directly: `node --no-node-snapshot bench/sandbox.ts [iterations]`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ivm from 'isolated-vm';
import { parseRequestBody } from '../src/outbound/body.ts';
import type { CompiledScript, RequestScriptInput, ScriptHost } from '../src/sandbox/index.ts';
import { createSandbox } from '../src/sandbox/index.ts';

export interface SandboxBenchResult {
  /** One awaited runRequest: the run, and the event-loop turn it waits for (see run-batch.ts). */
  p50Us: number;
  p99Us: number;
  opsPerSec: number;
  /** The run alone, from when its batch starts it (the result's durationUs). */
  runOnlyP50Us: number;
  /** The floor, in the same process: a bare isolated-vm applySync with one host callback. */
  floorP50Us: number;
  /**
   * The same floor without isolated-vm's per-run time limit (which arms a timer that its timer
   * thread later wakes up for): what the limit itself costs. keygate always sets the limit.
   */
  floorNoLimitP50Us: number;
  /** keygate's own cost of one run: an empty request script through the same runtime. */
  emptyP50Us: number;
  coldCaches: ColdCacheFigures;
  largeBody: LargeBodyFigures;
}

/**
 * The seed run after other work has pushed the isolate's heap and code out of the CPU caches, as
 * in a loaded server, where each run comes between HTTP parsing, undici and the other isolate.
 */
export interface ColdCacheFigures {
  /** Memory touched (one write per 64-byte line) before each cold run. */
  touchedMb: number;
  warmP50Us: number;
  coldP50Us: number;
}

export interface LargeBodyFigures {
  bytes: number;
  /** The baseline: JSON.parse and JSON.stringify of the body on the host, once each. */
  hostParseStringifyP50Us: number;
  /** The caller's body parsed for a script (as the proxy does) and a request script setting one field. */
  requestP50Us: number;
  /** A response script setting one field of the upstream's body, which is then handed back. */
  responseP50Us: number;
}

const SEED_REQUEST = readFileSync(
  new URL('../src/sandbox/fixtures/seed-request.txt', import.meta.url),
  'utf8',
);

const host: ScriptHost = {
  secrets: {
    AppKey: 'app-123',
    AppSecret: 'app-secret',
    AesKey: '0123456789abcdef',
    AesIV: 'fedcba9876543210',
  },
  sensitiveValues: ['app-secret', '0123456789abcdef', 'fedcba9876543210'],
  prefixUrl: 'https://api.acme.example',
  tokenUrl: 'https://api.acme.example/oauth/token',
  token: 'Bearer cached-token',
  httpPostJson: () => Promise.reject(new Error('the benchmark runs with a cached token')),
};

const input: RequestScriptInput = {
  method: 'POST',
  uri: '/orders/1',
  headers: { 'content-type': 'application/json' },
  query: [],
  body: { kind: 'json', value: { data: '{"orderId":42,"amount":"12.50"}', timestamp: 1700000000 } },
};

function percentile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? 0;
}

/**
 * The isolated-vm floor the issue quotes (a synchronous apply with one host callback), measured
 * beside the real run: one applySync into a function that calls one host Callback with a string
 * and returns a string, with the same 50 ms time limit keygate sets and without it. The two are
 * measured in alternating blocks, so a change in the machine's speed hits both alike.
 */
function benchFloors(iterations: number): { limited: number; unlimited: number } {
  const isolate = new ivm.Isolate({ memoryLimit: 32 });
  try {
    const context = isolate.createContextSync();
    const fn = context.evalClosureSync(
      'return function (input) { return $0(input) + "!"; };',
      [new ivm.Callback((text: string) => text.length)],
      { result: { reference: true } },
    ) as ivm.Reference<(input: string) => string>;
    const variants = [{ timeout: 50 }, {}].map((options) => ({
      run: () => fn.applySync(undefined, ['{"x":1}'], options),
      samples: [] as number[],
    }));
    for (const { run } of variants) for (let i = 0; i < 3000; i++) run();
    const block = 1000;
    for (let done = 0; done < iterations; done += block) {
      for (const { run, samples } of variants) {
        for (let i = 0; i < block; i++) {
          const t0 = performance.now();
          run();
          samples.push((performance.now() - t0) * 1000);
        }
      }
    }
    const [limited, unlimited] = variants.map(({ samples }) =>
      percentile(
        samples.sort((a, b) => a - b),
        0.5,
      ),
    );
    return { limited: limited ?? 0, unlimited: unlimited ?? 0 };
  } finally {
    isolate.dispose();
  }
}

async function measureRuns(
  script: CompiledScript,
  iterations: number,
): Promise<{ p50Us: number; p99Us: number; opsPerSec: number; runOnlyP50Us: number }> {
  // Warm up: V8 optimizes the bootstrap and the script after a few thousand runs.
  for (let i = 0; i < 3000; i++) await script.runRequest(input, host);
  const first = await script.runRequest(input, host);
  if (first.path !== 'sync') throw new Error(`expected the sync path, got ${first.path}`);
  const samples = new Array<number>(iterations);
  const runOnly = new Array<number>(iterations);
  const started = performance.now();
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    const result = await script.runRequest(input, host);
    samples[i] = (performance.now() - t0) * 1000;
    runOnly[i] = result.durationUs;
  }
  const elapsedSec = (performance.now() - started) / 1000;
  samples.sort((a, b) => a - b);
  runOnly.sort((a, b) => a - b);
  return {
    p50Us: percentile(samples, 0.5),
    p99Us: percentile(samples, 0.99),
    opsPerSec: iterations / elapsedSec,
    runOnlyP50Us: percentile(runOnly, 0.5),
  };
}

/**
 * Warm and cold runs of `script` in alternating blocks (so a change in the machine's speed hits
 * both alike); before each cold run, one write to every cache line of `touchedMb` MB. Only the
 * runs are timed.
 */
async function benchColdCaches(script: CompiledScript, iterations: number): Promise<ColdCacheFigures> {
  const touchedMb = 16;
  const scratch = new Uint8Array(touchedMb * 1024 * 1024);
  const evict = () => {
    for (let i = 0; i < scratch.length; i += 64) scratch[i]! += 1;
  };
  const warm: number[] = [];
  const cold: number[] = [];
  const block = 250;
  for (let done = 0; done < iterations; done += block) {
    for (const [samples, before] of [
      [warm, null],
      [cold, evict],
    ] as const) {
      for (let i = 0; i < block; i++) {
        before?.();
        const t0 = performance.now();
        await script.runRequest(input, host);
        samples.push((performance.now() - t0) * 1000);
      }
    }
  }
  const p50 = (samples: number[]) =>
    percentile(
      samples.sort((a, b) => a - b),
      0.5,
    );
  return { touchedMb, warmP50Us: p50(warm), coldP50Us: p50(cold) };
}

/** An order list of about 75 KB, with quotes, line breaks and non-ASCII text to escape. */
const LARGE_BODY = JSON.stringify({
  orders: Array.from({ length: 1000 }, (_, i) => ({
    id: i,
    name: `order "${i}"`,
    note: 'first line\nsecond line',
    city: 'Zürich',
  })),
});

/** p50 in µs of `iterations` awaited calls (a synchronous `run` costs one extra microtask each). */
async function p50Of(iterations: number, run: () => unknown): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    await run();
    samples.push((performance.now() - t0) * 1000);
  }
  return percentile(
    samples.sort((a, b) => a - b),
    0.5,
  );
}

async function benchLargeBody(
  sandbox: ReturnType<typeof createSandbox>,
  iterations: number,
): Promise<LargeBodyFigures> {
  const bytes = Buffer.from(LARGE_BODY);
  const request = await sandbox.compile(
    'request',
    'function (reqHeaders, reqParams, reqBody) { reqBody.set("sign", "x"); }',
    'bench:large:request',
  );
  const response = await sandbox.compile(
    'response',
    'function (respBody) { respBody.seen = true; }',
    'bench:large:response',
  );
  const runRequest = () =>
    request.runRequest(
      {
        ...input,
        body: parseRequestBody(bytes, 'application/json', { jsonAsText: true }),
      },
      host,
    );
  const responseInput = {
    status: 200,
    headers: { 'content-type': 'application/json' },
    rawBody: LARGE_BODY,
    rawIsJson: true,
  };
  const runResponse = () => response.runResponse(responseInput, host);
  const hostParseStringify = () => JSON.stringify(JSON.parse(LARGE_BODY));
  const warmup = Math.max(20, iterations / 5);
  for (let i = 0; i < warmup; i++) {
    hostParseStringify();
    await runRequest();
    await runResponse();
  }
  return {
    bytes: bytes.length,
    hostParseStringifyP50Us: await p50Of(iterations, hostParseStringify),
    requestP50Us: await p50Of(iterations, runRequest),
    responseP50Us: await p50Of(iterations, runResponse),
  };
}

export async function benchSandbox(opts: { iterations?: number } = {}): Promise<SandboxBenchResult> {
  const { iterations = 20_000 } = opts;
  const floors = benchFloors(iterations);
  const sandbox = createSandbox();
  try {
    const empty = await measureRuns(
      await sandbox.compile('request', 'function (reqHeaders, reqParams, reqBody) {}', 'bench:empty'),
      iterations,
    );
    const seedScript = await sandbox.compile('request', SEED_REQUEST, 'bench:acme:v1:request');
    const seed = await measureRuns(seedScript, iterations);
    const coldCaches = await benchColdCaches(seedScript, Math.max(1000, Math.round(iterations / 4)));
    const largeBody = await benchLargeBody(sandbox, Math.max(50, Math.round(iterations / 20)));
    return {
      ...seed,
      floorP50Us: floors.limited,
      floorNoLimitP50Us: floors.unlimited,
      emptyP50Us: empty.p50Us,
      coldCaches,
      largeBody,
    };
  } finally {
    sandbox.dispose();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const iterations = process.argv[2] === undefined ? undefined : Number(process.argv[2]);
  const r = await benchSandbox({ iterations });
  console.log('sandbox: seed request script, sync path, token cached');
  printSandbox(r);
}

export function printSandbox(r: SandboxBenchResult): void {
  console.log(`  isolated-vm floor (applySync + 1 host callback)  p50 ${r.floorP50Us.toFixed(1)} us`);
  console.log(`  the same floor without the 50 ms time limit      p50 ${r.floorNoLimitP50Us.toFixed(1)} us`);
  console.log(`  empty script through keygate's runtime           p50 ${r.emptyP50Us.toFixed(1)} us`);
  console.log(
    `  seed request script                              p50 ${r.p50Us.toFixed(1)} us  p99 ${r.p99Us.toFixed(1)} us  ${Math.round(r.opsPerSec)} runs/s`,
  );
  console.log(`  seed request script, the run alone (durationUs)  p50 ${r.runOnlyP50Us.toFixed(1)} us`);
  console.log(
    `  script / floor                                   ${(r.p50Us / r.floorP50Us).toFixed(1)}x  (target: seed script p50 <= 30 us)`,
  );
  const cold = r.coldCaches;
  console.log(
    `  seed script, caches flushed (${cold.touchedMb} MB touched)      p50 ${cold.coldP50Us.toFixed(1)} us  ` +
      `(${(cold.coldP50Us / cold.warmP50Us).toFixed(1)}x the ${cold.warmP50Us.toFixed(1)} us of warm runs alternating with it)`,
  );
  const big = r.largeBody;
  const ratio = (us: number) => `${(us / big.hostParseStringifyP50Us).toFixed(1)}x`;
  console.log(
    `  ${Math.round(big.bytes / 1024)} KB JSON body: host JSON.parse + JSON.stringify p50 ${big.hostParseStringifyP50Us.toFixed(0)} us; ` +
      `request run p50 ${big.requestP50Us.toFixed(0)} us (${ratio(big.requestP50Us)}); ` +
      `response run p50 ${big.responseP50Us.toFixed(0)} us (${ratio(big.responseP50Us)})`,
  );
}
