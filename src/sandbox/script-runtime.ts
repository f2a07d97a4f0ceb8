/**
 * One tenant script in its own isolate: starting it (bootstrap, compile, install), running it on
 * the sync or async path, mapping failures to keygate errors, and replacing the isolate when a run
 * killed it.
 *
 * Isolation: every compiled script (tenant + provider + version + kind) has its own isolate, so no
 * two tenants ever share one. The isolate's context is reused across runs; see bootstrap.js for
 * what is reset between them.
 *
 * Batching: runs asked for during one turn of the event loop run together at its end, those of
 * one isolate one after the other, so that the isolate is still in the CPU caches for all but the
 * first (run-batch.ts).
 *
 * Paths: a run first goes through `applySync`: one crossing into the isolate with the input as
 * one JSON string and one back with the result as one JSON string; the crypto built-ins are
 * synchronous Callbacks. If the script calls http_post_json, the sync run stops, its results are
 * thrown away, and the run is repeated with `apply` on isolated-vm's thread pool, where
 * http_post_json blocks only the isolate's thread (Reference.applySyncPromise) while Node does the
 * I/O. While such an async run holds the isolate, later runs of the same script take the async
 * path too: a sync call would block Node's thread waiting for an isolate that waits for Node.
 *
 * Limits: isolated-vm stops a run after `cpuMs` of wall-clock time in the isolate (time in host
 * calls excluded). A sync run stopped that way is tried again on the async path, where the stop
 * only counts if the isolate really used the CPU time (a busy machine can starve a run of it); a
 * script that really hit a limit runs on the async path for a while afterwards. Time spent in
 * host built-ins is counted separately against the same limit.
 */
import { readFileSync } from 'node:fs';
import ivm from 'isolated-vm';
import { isKeygateError, KeygateError } from '../errors.ts';
import {
  type BuiltinContext,
  BuiltinError,
  callHostBuiltin,
  type HostValue,
  hostBuiltinManifest,
  KeyObjectCache,
} from './host-builtins.ts';
import { jsonBodyFromText } from './json-body.ts';
import { maskSensitive } from './mask.ts';
import type { RunBatcher } from './run-batch.ts';
import {
  findExtraCode,
  notOneFunctionError,
  scriptFilename,
  syntaxErrorFromCompile,
  WRAP_LINE_OFFSET,
  wrapSource,
} from './source-check.ts';
import type {
  BodyValue,
  CompiledScript,
  RequestScriptInput,
  RequestScriptResult,
  ResponseScriptInput,
  ResponseScriptResult,
  ScriptEffects,
  ScriptHost,
  ScriptKind,
} from './types.ts';

// bootstrap.js is one parenthesized function expression; the formatter ends it with a semicolon.
const BOOTSTRAP_SOURCE = readFileSync(new URL('./bootstrap.js', import.meta.url), 'utf8')
  .trim()
  .replace(/;$/, '');

export interface RuntimeLimits {
  cpuMs: number;
  memoryMb: number;
  maxHttpCalls: number;
  httpWaitMs: number;
  onCatastrophicError: (message: string) => void;
}

const BOOTSTRAP_CONFIG = { maxLogLines: 100, maxLogLineChars: 4096, maxErrorChars: 2000 };
const SYNC_PAUSE_AFTER_LIMIT_MS = 60_000;
// A run is tried at most this many times on the async path (starved of CPU, stale isolate).
const MAX_ASYNC_ATTEMPTS = 3;
// Generous: the bootstrap freezes a few thousand intrinsics once per isolate.
const BOOTSTRAP_TIMEOUT_MS = 2000;

type RunMode = 'sync' | 'async';
type RunFunction = (
  mode: RunMode,
  id: number,
  kind: ScriptKind,
  inputJson: string,
  argsJson: string,
  rawBody: string | null,
  jsonText: string | null,
) => string;

type InstallFunction = (candidate: unknown) => string;

/** An isolate with the bootstrap and the tenant's function installed. */
interface LiveIsolate {
  isolate: ivm.Isolate;
  run: ivm.Reference<RunFunction>;
}

/** Host-side state of one run, found by id from the host callbacks. */
interface Invocation {
  host: ScriptHost;
  /** Time spent in host built-ins; counts against cpuMs like time in the isolate does. */
  hostMs: number;
  /** Set when the host ends the run whatever the script does (egress denied, CPU budget). */
  fatal: KeygateError | null;
  /** Errors from http_post_json, rethrown as they are if the script does not catch them. */
  hostErrors: Map<number, KeygateError> | null;
  /**
   * http_post_json answers by call (`url, body, headers` + how many times this run made that same
   * call), shared by every attempt of one run: a starved run that is tried again gets the answers
   * of its earlier attempt instead of sending them again (a second token request, say).
   */
  posted: Map<string, Promise<string>> | null;
  /** How often this attempt made each call so far. */
  postCounts: Map<string, number> | null;
}

/** Per-run state; the maps only exist once a run calls http_post_json. */
function newInvocation(host: ScriptHost, posted: Map<string, Promise<string>> | null): Invocation {
  return { host, hostMs: 0, fatal: null, hostErrors: null, posted, postCounts: null };
}

interface HostFailure {
  message: string;
  code?: string;
  hostErrorId?: number;
  abort?: boolean;
}

// What the bootstrap's run() answers (see bootstrap.js).
interface RunFailure {
  ok: false;
  message: string;
  code: string;
  hostErrorId: number | null;
  line: number | null;
  column: number | null;
}
interface RunCommon {
  logs: string[];
  tokenOps: ScriptEffects['tokenOps'];
}
type RequestOutcome = RunCommon &
  (
    | RunFailure
    | {
        ok: true;
        method: string;
        uri: string;
        headers: Record<string, string>;
        query: Array<[string, string]>;
        body: BodyValue;
      }
  );
// A changed response body is not in the outcome: it follows it on its own line.
type ResponseOutcome = RunCommon & (RunFailure | { ok: true; changed: boolean; parsed?: boolean });

const NEEDS_ASYNC = JSON.stringify({ needsAsync: true });
const STALE_ISOLATE = JSON.stringify({ staleIsolate: true });
const BAD_JSON_BODY = JSON.stringify({ badJsonBody: true });
/** Stands for a JSON body that crosses as its own text (see runRequest). */
const JSON_BODY_AS_TEXT = { kind: 'json', value: null };

/** An async run hit the time limit without using the CPU time: try again. */
class StarvedRun extends Error {
  readonly error: KeygateError;

  constructor(error: KeygateError) {
    super(error.message);
    this.error = error;
  }
}

interface Invoked {
  text: string;
  path: RunMode;
  inv: Invocation;
  /** When the run itself began (performance.now()), after waiting for its turn's batch. */
  startedMs: number;
}

export class TenantScript implements CompiledScript {
  readonly kind: ScriptKind;
  readonly #source: string;
  readonly #limits: RuntimeLimits;
  readonly #builtins: BuiltinContext = {
    secrets: {},
    keys: new KeyObjectCache(),
    blockStreams: new WeakMap(),
  };
  readonly #batcher: RunBatcher;
  readonly #invocations = new Map<number, Invocation>();
  readonly #hostCall: ivm.Callback;
  readonly #httpRef: ivm.Reference;
  #nextInvocationId = 1;
  #live: LiveIsolate | null = null;
  #starting: Promise<LiveIsolate> | null = null;
  #asyncInFlight = 0;
  /** Dispose the isolate as soon as no run needs it (evicted, or the script left stuck globals). */
  #retireWhenIdle = false;
  #recycleWhenIdle = false;
  #closed = false;
  /**
   * After a run really hits the time or memory limit, the script's runs go through the async path
   * for a while: a runaway sync run holds Node's thread until it is stopped (50 ms for a loop, a
   * few hundred ms for a memory bomb while V8 collects garbage), an async one only a pool thread.
   */
  #syncAllowedAfter = 0;

  constructor(kind: ScriptKind, source: string, limits: RuntimeLimits, batcher: RunBatcher) {
    this.kind = kind;
    this.#source = source;
    this.#limits = limits;
    this.#batcher = batcher;
    this.#hostCall = new ivm.Callback(
      (index: number, id: number, binaryArgs: number, a: unknown, b: unknown, c: unknown, d: unknown) =>
        this.#callBuiltin(index, id, binaryArgs, [a, b, c, d]),
    );
    this.#httpRef = new ivm.Reference((id: number, url: string, bodyJson: string, headerJson: string) =>
      this.#postJson(id, url, bodyJson, headerJson),
    );
  }

  /** Creates the isolate and compiles the script; throws KG_SCRIPT_SYNTAX. */
  async start(): Promise<void> {
    await this.#ensureLive();
    // Evicted while it was starting: nothing will run it.
    this.#disposeIfIdle();
  }

  /**
   * Disposes the isolate once no run needs it (used by evict). A run that still comes later gets
   * an isolate made for it and disposed after it.
   */
  retire(): void {
    this.#retireWhenIdle = true;
    this.#disposeIfIdle();
  }

  /** Like retire, and later runs fail (used when the sandbox is disposed). */
  close(): void {
    this.#closed = true;
    this.retire();
  }

  async runRequest(input: RequestScriptInput, host: ScriptHost): Promise<RequestScriptResult> {
    this.#expectKind('request');
    // A JSON body that is still its text (a caller's, untouched) crosses as that text and is
    // parsed inside the isolate only.
    const bodyText = input.body.kind === 'json' ? input.body.text : undefined;
    const inputJson = JSON.stringify({
      method: input.method,
      uri: input.uri,
      headers: input.headers,
      query: input.query,
      body: bodyText === undefined ? input.body : JSON_BODY_AS_TEXT,
      token: host.token,
    });
    const { text, path, inv, startedMs } = await this.#invoke(host, inputJson, bodyText ?? null, null);
    if (text === BAD_JSON_BODY) {
      // The text is not JSON: reading the value fails with the caller's KG_BAD_REQUEST.
      void (input.body as { value: unknown }).value;
      throw new KeygateError('KG_INTERNAL', 'the script sandbox could not parse a JSON body');
    }
    const { outcome, bodyText: bodyOut } = this.#readOutcome<RequestOutcome>(text);
    if (!outcome.ok) throw this.#failure(outcome, inv);
    return {
      method: outcome.method,
      uri: outcome.uri,
      headers: outcome.headers,
      query: outcome.query,
      body: bodyOut === null ? outcome.body : jsonBodyFromText(bodyOut),
      effects: effectsOf(outcome, host),
      durationUs: elapsedUs(startedMs),
      path,
    };
  }

  async runResponse(input: ResponseScriptInput, host: ScriptHost): Promise<ResponseScriptResult> {
    this.#expectKind('response');
    // Either the caller parsed the body (json), or the isolate parses rawBody (rawIsJson).
    const parseRaw = input.json === undefined && input.rawIsJson === true;
    const json = input.json === undefined ? null : input.json;
    const jsonText = json === null ? null : JSON.stringify(json);
    const inputJson = JSON.stringify({
      status: input.status,
      headers: input.headers,
      token: host.token,
      parseRaw,
    });
    const { text, path, inv, startedMs } = await this.#invoke(host, inputJson, input.rawBody, jsonText);
    const { outcome, bodyText } = this.#readOutcome<ResponseOutcome>(text);
    if (!outcome.ok) throw this.#failure(outcome, inv);
    // The proxy sends bodyText (or rawBody) as it is; only a caller that reads `body` pays for
    // parsing.
    let body: unknown = json;
    let bodyParsed = bodyText === null && !(parseRaw && outcome.parsed === true);
    return {
      get body() {
        if (!bodyParsed) {
          body = JSON.parse(bodyText ?? input.rawBody);
          bodyParsed = true;
        }
        return body;
      },
      bodyText,
      changed: outcome.changed,
      effects: effectsOf(outcome, host),
      durationUs: elapsedUs(startedMs),
      path,
    };
  }

  #expectKind(kind: ScriptKind): void {
    if (this.kind !== kind)
      throw new KeygateError('KG_INTERNAL', `a ${this.kind} script cannot run as a ${kind} script`);
    if (this.#closed) throw new KeygateError('KG_INTERNAL', 'the script sandbox has been disposed');
  }

  /**
   * A run's answer: the outcome, and the JSON body text that follows it on its own line when there
   * is one (a request's body, or a response body the script changed; see bootstrap.js run()).
   */
  #readOutcome<T extends RunCommon>(text: string): { outcome: T; bodyText: string | null } {
    const newline = text.indexOf('\n');
    if (newline === -1) return { outcome: parseOutcome<T>(text), bodyText: null };
    return { outcome: parseOutcome<T>(text.slice(0, newline)), bodyText: text.slice(newline + 1) };
  }

  // ---------------------------------------------------------------------------------------------
  // Running

  /**
   * Runs the script once, at the end of this event-loop turn together with the turn's other runs
   * (see run-batch.ts). `startedMs` is when this run itself began.
   */
  #invoke(
    host: ScriptHost,
    inputJson: string,
    rawBody: string | null,
    jsonText: string | null,
  ): Promise<Invoked> {
    return this.#batcher.schedule(this, () => {
      const startedMs = performance.now();
      const invoked = this.#invokeNow(host, inputJson, rawBody, jsonText);
      if (!(invoked instanceof Promise)) {
        invoked.startedMs = startedMs;
        return invoked;
      }
      return invoked.then((done) => {
        done.startedMs = startedMs;
        return done;
      });
    });
  }

  /** Runs the script once: on the sync path when it can, without awaiting anything there. */
  #invokeNow(
    host: ScriptHost,
    inputJson: string,
    rawBody: string | null,
    jsonText: string | null,
  ): Invoked | Promise<Invoked> {
    const live = this.#live;
    const syncAllowed = this.#asyncInFlight === 0 && performance.now() >= this.#syncAllowedAfter;
    if (live === null || live.isolate.isDisposed || !syncAllowed) {
      return this.#invokeAsync(host, inputJson, rawBody, jsonText);
    }
    const id = this.#nextInvocationId++;
    const inv = newInvocation(host, null);
    this.#invocations.set(id, inv);
    let text: string;
    try {
      text = this.#runSync(live, id, inputJson, rawBody, jsonText, inv);
    } catch (err) {
      // isolated-vm's limit is wall-clock time while the isolate runs, and a busy machine can
      // use that up on Node's thread without the script's help. The async run measures the
      // isolate's own CPU time and decides (see #runAsync).
      if (isKeygateError(err) && err.code === 'KG_SCRIPT_TIMEOUT' && inv.fatal === null) {
        return this.#invokeAsync(host, inputJson, rawBody, jsonText);
      }
      throw err;
    } finally {
      this.#invocations.delete(id);
      this.#disposeIfIdle();
    }
    if (text === STALE_ISOLATE) this.#recycle();
    else if (text !== NEEDS_ASYNC) return { text, path: 'sync', inv, startedMs: 0 };
    // The script called http_post_json (or the isolate had to be replaced). The sync attempt
    // only recorded effects inside the isolate, so it is dropped and the run starts again on the
    // async path.
    return this.#invokeAsync(host, inputJson, rawBody, jsonText);
  }

  async #invokeAsync(
    host: ScriptHost,
    inputJson: string,
    rawBody: string | null,
    jsonText: string | null,
    attempt = 1,
    posted = new Map<string, Promise<string>>(),
  ): Promise<Invoked> {
    const live = await this.#ensureLive();
    const id = this.#nextInvocationId++;
    const inv = newInvocation(host, posted);
    this.#invocations.set(id, inv);
    let text: string;
    try {
      text = await this.#runAsync(live, id, inputJson, rawBody, jsonText, inv);
    } catch (err) {
      if (err instanceof StarvedRun && attempt < MAX_ASYNC_ATTEMPTS) {
        return this.#invokeAsync(host, inputJson, rawBody, jsonText, attempt + 1, posted);
      }
      throw err instanceof StarvedRun ? err.error : err;
    } finally {
      this.#invocations.delete(id);
      this.#disposeIfIdle();
    }
    if (text !== STALE_ISOLATE) return { text, path: 'async', inv, startedMs: 0 };
    // Other runs still held the old isolate when this one found it had to be replaced.
    if (attempt >= MAX_ASYNC_ATTEMPTS) {
      throw new KeygateError(
        'KG_SCRIPT_ERROR',
        `${this.kind} script keeps leaving globals that cannot be deleted`,
      );
    }
    this.#recycle();
    return this.#invokeAsync(host, inputJson, rawBody, jsonText, attempt + 1, posted);
  }

  #runSync(
    live: LiveIsolate,
    id: number,
    inputJson: string,
    rawBody: string | null,
    jsonText: string | null,
    inv: Invocation,
  ): string {
    let text: string;
    try {
      const args = argsJsonOf(inv.host);
      text = live.run.applySync(undefined, ['sync', id, this.kind, inputJson, args, rawBody, jsonText], {
        timeout: this.#limits.cpuMs,
      });
    } catch (err) {
      throw inv.fatal ?? this.#runError(live, err, inv);
    }
    if (inv.fatal !== null) throw inv.fatal;
    return text;
  }

  /**
   * A timeout only counts when the isolate itself used at least half the limit in CPU time;
   * otherwise the run was starved of CPU (a busy machine), and StarvedRun asks for another try.
   */
  async #runAsync(
    live: LiveIsolate,
    id: number,
    inputJson: string,
    rawBody: string | null,
    jsonText: string | null,
    inv: Invocation,
  ): Promise<string> {
    this.#asyncInFlight++;
    const cpuBefore = live.isolate.cpuTime;
    let text: string;
    try {
      const args = argsJsonOf(inv.host);
      text = await live.run.apply(undefined, ['async', id, this.kind, inputJson, args, rawBody, jsonText], {
        timeout: this.#limits.cpuMs,
      });
    } catch (err) {
      if (inv.fatal !== null) throw inv.fatal;
      const error = this.#runError(live, err, inv);
      if (error.code === 'KG_SCRIPT_TIMEOUT' && !live.isolate.isDisposed) {
        const usedMs = Number(live.isolate.cpuTime - cpuBefore) / 1e6;
        if (usedMs < this.#limits.cpuMs / 2) throw new StarvedRun(error);
      }
      if (error.code === 'KG_SCRIPT_TIMEOUT' || error.code === 'KG_SCRIPT_MEMORY') {
        this.#syncAllowedAfter = performance.now() + SYNC_PAUSE_AFTER_LIMIT_MS;
      }
      throw error;
    } finally {
      this.#asyncInFlight--;
    }
    if (inv.fatal !== null) throw inv.fatal;
    return text;
  }

  /**
   * A run that did not come back with an answer: the time or memory limit, a lost isolate, or a
   * promise the script rejected and left unhandled (isolated-vm fails the call for that).
   */
  #runError(live: LiveIsolate, err: unknown, inv: Invocation): KeygateError {
    const message = err instanceof Error ? err.message : String(err);
    const disposed = live.isolate.isDisposed;
    if (disposed) this.#forget(live);
    if (/memory limit/i.test(message)) {
      this.#syncAllowedAfter = performance.now() + SYNC_PAUSE_AFTER_LIMIT_MS;
      return new KeygateError(
        'KG_SCRIPT_MEMORY',
        `${this.kind} script exceeded its memory limit of ${this.#limits.memoryMb} MiB`,
      );
    }
    if (/timed out/i.test(message)) {
      return new KeygateError(
        'KG_SCRIPT_TIMEOUT',
        `${this.kind} script exceeded its CPU time limit of ${this.#limits.cpuMs} ms`,
      );
    }
    if (disposed)
      return new KeygateError('KG_INTERNAL', `${this.kind} script isolate was disposed during the run`);
    // Whatever else fails the call came from the script. Its message may hold secrets, so it is
    // masked, and the raw error is not kept as a cause that a logger could print.
    const frame = /\b(?:request|response)\.js:(\d+):(\d+)/.exec(
      err instanceof Error ? (err.stack ?? '') : '',
    );
    const where = frame === null ? '' : ` (line ${frame[1]}, column ${frame[2]})`;
    const detail = `${this.kind} script failed: a promise it left behind was rejected: ${message.slice(0, 2000)}${where}`;
    return new KeygateError(
      'KG_SCRIPT_ERROR',
      maskSensitive(detail, inv.host.sensitiveValues),
      frame === null ? {} : { line: Number(frame[1]), column: Number(frame[2]) },
    );
  }

  #failure(outcome: RunFailure & RunCommon, inv: Invocation): KeygateError {
    if (inv.fatal !== null) return inv.fatal;
    const original = outcome.hostErrorId === null ? undefined : inv.hostErrors?.get(outcome.hostErrorId);
    if (original !== undefined) return original;
    const where = outcome.line === null ? '' : ` (line ${outcome.line}, column ${outcome.column})`;
    const detail = maskSensitive(
      `${this.kind} script failed: ${outcome.message}${where}`,
      inv.host.sensitiveValues,
    );
    const code =
      outcome.code === 'KG_SECRET_MISSING' || outcome.code === 'KG_SECRET_UNREADABLE'
        ? outcome.code
        : 'KG_SCRIPT_ERROR';
    const extra = outcome.line === null ? {} : { line: outcome.line, column: outcome.column };
    const error = new KeygateError(code, detail, extra);
    // For dry runs: what the script logged before it failed (masked), without putting it in the
    // problem+json body that goes to a calling service.
    Object.defineProperty(error, 'scriptLogs', {
      value: maskLogs(outcome.logs, inv.host),
      enumerable: false,
    });
    return error;
  }

  // ---------------------------------------------------------------------------------------------
  // Host side of the built-ins

  #callBuiltin(index: number, id: number, binaryArgs: number, args: unknown[]): HostValue | HostFailure {
    const inv = this.#invocations.get(id);
    if (inv === undefined) return { message: 'built-ins only work while the script runs' };
    if (inv.fatal !== null) return { message: inv.fatal.message, abort: true };
    const started = performance.now();
    let result: HostValue | HostFailure;
    try {
      this.#builtins.secrets = inv.host.secrets;
      this.#builtins.unreadableSecrets = inv.host.unreadableSecrets;
      result = callHostBuiltin(index, binaryArgs, args, this.#builtins);
    } catch (err) {
      result =
        err instanceof BuiltinError
          ? { message: err.message, code: err.code }
          : { message: 'built-in failed' };
    }
    inv.hostMs += performance.now() - started;
    if (inv.hostMs > this.#limits.cpuMs) {
      inv.fatal = new KeygateError(
        'KG_SCRIPT_TIMEOUT',
        `${this.kind} script exceeded its CPU time limit of ${this.#limits.cpuMs} ms (in built-in calls)`,
      );
      return { message: inv.fatal.message, abort: true };
    }
    return result;
  }

  async #postJson(id: number, url: string, bodyJson: string, headerJson: string): Promise<string> {
    const inv = this.#invocations.get(id);
    if (inv === undefined)
      return JSON.stringify({ message: 'http_post_json: only works while the script runs' });
    if (inv.fatal !== null) return JSON.stringify({ message: inv.fatal.message, abort: true });
    try {
      const call = `${url}\u0000${bodyJson}\u0000${headerJson}`;
      inv.postCounts ??= new Map();
      inv.posted ??= new Map();
      const nth = (inv.postCounts.get(call) ?? 0) + 1;
      inv.postCounts.set(call, nth);
      let request = inv.posted.get(`${call}\u0000${nth}`);
      if (request === undefined) {
        request = inv.host.httpPostJson(url, JSON.parse(bodyJson), JSON.parse(headerJson));
        inv.posted.set(`${call}\u0000${nth}`, request);
      }
      const text = await withDeadline(request, this.#limits.httpWaitMs);
      if (typeof text !== 'string')
        throw new KeygateError('KG_INTERNAL', 'http_post_json: the host returned no text');
      return JSON.stringify({ ok: true, text });
    } catch (err) {
      const failure = isKeygateError(err)
        ? err
        : new KeygateError(
            'KG_UPSTREAM_UNREACHABLE',
            'http_post_json: the request failed',
            {},
            { cause: err },
          );
      const message = maskSensitive(`http_post_json: ${failure.message}`, inv.host.sensitiveValues);
      if (failure.code === 'KG_EGRESS_DENIED') {
        inv.fatal = failure;
        return JSON.stringify({ message, code: failure.code, abort: true });
      }
      inv.hostErrors ??= new Map();
      const hostErrorId = inv.hostErrors.size + 1;
      inv.hostErrors.set(hostErrorId, failure);
      return JSON.stringify({ message, code: failure.code, hostErrorId });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Isolate life cycle

  async #ensureLive(): Promise<LiveIsolate> {
    if (this.#live !== null && !this.#live.isolate.isDisposed) return this.#live;
    if (this.#closed) throw new KeygateError('KG_INTERNAL', 'the script sandbox has been disposed');
    this.#live = null;
    this.#starting ??= this.#createLive()
      .then((live) => {
        this.#live = live;
        return live;
      })
      .finally(() => {
        this.#starting = null;
      });
    return this.#starting;
  }

  async #createLive(): Promise<LiveIsolate> {
    const isolate = new ivm.Isolate({
      memoryLimit: this.#limits.memoryMb,
      onCatastrophicError: this.#limits.onCatastrophicError,
    });
    try {
      const context = await isolate.createContext();
      const entry = await context.evalClosure(
        `return (${BOOTSTRAP_SOURCE})($0, $1, $2);`,
        [this.#hostCall, this.#httpRef, this.#bootstrapConfig()],
        { filename: 'keygate-bootstrap.js', timeout: BOOTSTRAP_TIMEOUT_MS, result: { reference: true } },
      );
      const install: ivm.Reference<InstallFunction> = await entry.get('install', { reference: true });
      const run: ivm.Reference<RunFunction> = await entry.get('run', { reference: true });
      await this.#installScript(isolate, context, install);
      entry.release();
      install.release();
      return { isolate, run };
    } catch (err) {
      if (!isolate.isDisposed) isolate.dispose();
      throw err;
    }
  }

  #bootstrapConfig(): string {
    return JSON.stringify({
      ...BOOTSTRAP_CONFIG,
      maxHttpCalls: this.#limits.maxHttpCalls,
      hostBuiltins: hostBuiltinManifest(),
    });
  }

  /** Compiles the tenant's source, evaluates it to its function and checks nothing else is there. */
  async #installScript(
    isolate: ivm.Isolate,
    context: ivm.Context,
    install: ivm.Reference<InstallFunction>,
  ): Promise<void> {
    const source = this.#source;
    let script: ivm.Script;
    try {
      script = await isolate.compileScript(wrapSource(source), {
        filename: scriptFilename(this.kind),
        lineOffset: WRAP_LINE_OFFSET,
      });
    } catch (err) {
      throw syntaxErrorFromCompile(this.kind, source, err);
    }
    let verdict: { ok: boolean; text?: string };
    try {
      const fn = await script.run(context, { timeout: this.#limits.cpuMs, reference: true, release: true });
      verdict = JSON.parse(
        await install.apply(undefined, [fn.derefInto({ release: true })], { timeout: this.#limits.cpuMs }),
      );
    } catch {
      // Evaluating a lone function expression cannot fail; anything that does is extra code.
      throw notOneFunctionError(this.kind, source);
    }
    if (!verdict.ok || verdict.text === undefined) throw notOneFunctionError(this.kind, source);
    const extra = findExtraCode(source, verdict.text);
    if (extra !== null) throw notOneFunctionError(this.kind, source, extra);
  }

  #forget(live: LiveIsolate): void {
    if (this.#live === live) this.#live = null;
  }

  #recycle(): void {
    this.#recycleWhenIdle = true;
    this.#disposeIfIdle();
  }

  #disposeIfIdle(): void {
    if (
      !(this.#retireWhenIdle || this.#recycleWhenIdle) ||
      this.#asyncInFlight > 0 ||
      this.#invocations.size > 0
    )
      return;
    const live = this.#live;
    this.#live = null;
    this.#recycleWhenIdle = false;
    if (live !== null && !live.isolate.isDisposed) live.isolate.dispose();
  }
}

// -----------------------------------------------------------------------------------------------

/**
 * The seed's argument list after the script objects, as JSON: AppKey, AesKey, AesIV, PrefixUrl,
 * TokenUrl. Written again only when one of them changes (the secret store hands out one frozen
 * object per load, so this is a few identity checks per run); the bootstrap likewise parses it
 * again only when the text changes.
 */
const argsJsonCache = new WeakMap<object, { values: Array<string | null>; json: string }>();

function argsJsonOf(host: ScriptHost): string {
  const secret = (name: string) => (Object.hasOwn(host.secrets, name) ? (host.secrets[name] ?? null) : null);
  const values = [secret('AppKey'), secret('AesKey'), secret('AesIV'), host.prefixUrl, host.tokenUrl];
  const cached = argsJsonCache.get(host.secrets);
  if (cached?.values.every((value, i) => value === values[i])) return cached.json;
  const json = JSON.stringify(values);
  argsJsonCache.set(host.secrets, { values, json });
  return json;
}

function parseOutcome<T>(text: string): T {
  const outcome: unknown = JSON.parse(text);
  if (
    typeof outcome !== 'object' ||
    outcome === null ||
    typeof (outcome as { ok?: unknown }).ok !== 'boolean'
  ) {
    throw new KeygateError('KG_INTERNAL', 'the script sandbox returned a malformed result');
  }
  return outcome as T;
}

function maskLogs(logs: string[], host: ScriptHost): string[] {
  return logs.map((line) => maskSensitive(line, host.sensitiveValues));
}

function effectsOf(outcome: RunCommon, host: ScriptHost): ScriptEffects {
  return { logs: maskLogs(outcome.logs, host), tokenOps: outcome.tokenOps };
}

function elapsedUs(startedMs: number): number {
  return Math.round((performance.now() - startedMs) * 1000);
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new KeygateError('KG_UPSTREAM_TIMEOUT', `no answer within ${ms} ms`)),
      ms,
    );
    timer.unref();
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
