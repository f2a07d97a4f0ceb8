/**
 * The sandbox for tenant signing scripts (DESIGN.md "Signing scripts"): isolated-vm isolates, the
 * bootstrap that defines the built-ins, the compile cache and the limits.
 *
 * createSandbox is built once at start-up and handed to whoever runs scripts. Every compiled
 * script gets its own isolate; see script-runtime.ts for how a run crosses into it, and
 * run-batch.ts for how the runs of one event-loop turn are grouped.
 */
import { KeygateError } from '../errors.ts';
import { RunBatcher } from './run-batch.ts';
import { type RuntimeLimits, TenantScript } from './script-runtime.ts';
import type { CompiledScript, Sandbox, SandboxOptions, ScriptKind } from './types.ts';

export { jsonBodyFromText } from './json-body.ts';
export { MASK, maskSensitive } from './mask.ts';
export type {
  BodyValue,
  CompiledScript,
  RequestScriptInput,
  RequestScriptResult,
  ResponseScriptInput,
  ResponseScriptResult,
  Sandbox,
  SandboxOptions,
  ScriptEffects,
  ScriptHost,
  ScriptKind,
} from './types.ts';

/** What a failed run logged before it failed (masked), for dry-run output; [] if unknown. */
export function scriptLogsOf(err: unknown): string[] {
  const logs = (err as { scriptLogs?: unknown } | null)?.scriptLogs;
  return Array.isArray(logs) ? logs : [];
}

function abortOnCatastrophicError(message: string): void {
  // isolated-vm: "v8 has lost all control over the isolate"; the process cannot be trusted.
  process.stderr.write(`keygate sandbox: catastrophic isolate failure: ${message}\n`);
  process.abort();
}

function integerOption(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`createSandbox: ${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

function resolveLimits(options: SandboxOptions): RuntimeLimits {
  const {
    cpuMs = 50,
    memoryMb = 32,
    maxHttpCalls = 4,
    httpWaitMs = 30_000,
    onCatastrophicError = abortOnCatastrophicError,
  } = options;
  return {
    cpuMs: integerOption('cpuMs', cpuMs, 1, 60_000),
    // isolated-vm's floor is 8 MiB.
    memoryMb: integerOption('memoryMb', memoryMb, 8, 4096),
    maxHttpCalls: integerOption('maxHttpCalls', maxHttpCalls, 0, 100),
    httpWaitMs: integerOption('httpWaitMs', httpWaitMs, 1, 600_000),
    onCatastrophicError,
  };
}

interface CacheEntry {
  kind: ScriptKind;
  source: string;
  script: TenantScript;
  ready: Promise<TenantScript>;
}

export function createSandbox(options: SandboxOptions = {}): Sandbox {
  const limits = resolveLimits(options);
  const batcher = new RunBatcher();
  const cache = new Map<string, CacheEntry>();
  let disposed = false;

  function assertOpen(): void {
    if (disposed) throw new KeygateError('KG_INTERNAL', 'the script sandbox has been disposed');
  }

  function drop(key: string, entry: CacheEntry): void {
    if (cache.get(key) === entry) cache.delete(key);
    entry.script.retire();
  }

  return {
    async compile(kind: ScriptKind, source: string, cacheKey: string): Promise<CompiledScript> {
      assertOpen();
      const cached = cache.get(cacheKey);
      if (cached !== undefined && cached.kind === kind && cached.source === source) return cached.ready;
      if (cached !== undefined) drop(cacheKey, cached);
      const script = new TenantScript(kind, source, limits, batcher);
      const entry: CacheEntry = { kind, source, script, ready: script.start().then(() => script) };
      cache.set(cacheKey, entry);
      try {
        return await entry.ready;
      } catch (err) {
        drop(cacheKey, entry);
        throw err;
      }
    },

    async validate(kind: ScriptKind, source: string): Promise<void> {
      assertOpen();
      const script = new TenantScript(kind, source, limits, batcher);
      try {
        await script.start();
      } finally {
        script.close();
      }
    },

    evict(cacheKeyPrefix: string): void {
      for (const [key, entry] of cache) {
        if (key.startsWith(cacheKeyPrefix)) drop(key, entry);
      }
    },

    cachedScripts(): number {
      return cache.size;
    },

    dispose(): void {
      disposed = true;
      for (const entry of cache.values()) entry.script.close();
      cache.clear();
    },
  };
}
