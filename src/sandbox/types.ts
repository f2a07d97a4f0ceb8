/** The sandbox's public contract; index.ts re-exports all of it. */

export interface SandboxOptions {
  /** CPU time per invocation, in ms (default 50). Time the script spends in built-ins counts too. */
  cpuMs?: number;
  /** Heap limit per tenant isolate, in MiB (default 32, minimum 8). */
  memoryMb?: number;
  /** http_post_json calls allowed per invocation (default 4). */
  maxHttpCalls?: number;
  /** How long a run waits for one http_post_json answer before failing it (default 30000 ms). */
  httpWaitMs?: number;
  /**
   * isolated-vm lost control of an isolate (it failed to terminate a script). The library says the
   * process can no longer be trusted; the default writes the message to stderr and aborts.
   */
  onCatastrophicError?: (message: string) => void;
}

export interface Sandbox {
  /**
   * Compile a request or response script once (per provider version). Throws KG_SCRIPT_SYNTAX
   * with line/column. Compiled scripts are cached by key, e.g.
   * `${tenantId}:${provider}:v${version}:request`; compiling the same key and source again returns
   * the cached script (a different source under the same key replaces it).
   */
  compile(kind: ScriptKind, source: string, cacheKey: string): Promise<CompiledScript>;
  /** Validate only (admin "validate" and apply): throws KG_SCRIPT_SYNTAX, also for a source that
   * is not exactly one function expression. */
  validate(kind: ScriptKind, source: string): Promise<void>;
  /** Drops every cached script whose key starts with the prefix; runs in flight finish first. */
  evict(cacheKeyPrefix: string): void;
  /** How many compiled scripts (each with its isolate) the cache holds. */
  cachedScripts(): number;
  dispose(): void;
}

export type ScriptKind = 'request' | 'response';

export interface ScriptHost {
  /** All secrets of the provider. AppKey, AesKey, AesIV are also passed as arguments. */
  secrets: Record<string, string>;
  /** Secrets that are set but do not decrypt: `secret(name)` of one fails with KG_SECRET_UNREADABLE. */
  unreadableSecrets?: ReadonlySet<string>;
  /** Masked (as-is, base64 and hex) in log() lines and error messages. */
  sensitiveValues: string[];
  prefixUrl: string;
  tokenUrl: string;
  /** Prefetched from the token cache; token_load() returns it synchronously. */
  token: string | null;
  /**
   * Only called on the async path. The caller checks egress and does the I/O, and resolves to the
   * response body text. A KeygateError it throws reaches the script as an error it may catch; if
   * the script does not, the run fails with that error. KG_EGRESS_DENIED always fails the run.
   */
  httpPostJson(url: string, body: unknown, headers: Record<string, string>): Promise<string>;
}

export type BodyValue =
  /**
   * `text`, when present, is the JSON text of `value` (see json-body.ts), which is then parsed only
   * when read and must not be changed. A script run hands its body back this way, to go upstream
   * as it is; a caller's JSON body goes into a request script this way, to be parsed only inside
   * the isolate.
   */
  | { kind: 'json'; value: unknown; text?: string }
  | { kind: 'form'; fields: Array<[string, string]> }
  | { kind: 'raw'; text: string }
  | { kind: 'none' };

export interface RequestScriptInput {
  method: string;
  /** Path relative to prefixUrl, without the query, e.g. "/orders/1" (the seed's getURI()). */
  uri: string;
  headers: Record<string, string>;
  query: Array<[string, string]>;
  body: BodyValue;
}

export interface ScriptEffects {
  /** log() lines, secrets masked. */
  logs: string[];
  tokenOps: Array<{ op: 'save'; token: string; expireTime: unknown } | { op: 'delete' }>;
}

export interface RequestScriptResult {
  method: string;
  /** As the script left it: still relative unless it called setURI (the seed sets it absolute). */
  uri: string;
  headers: Record<string, string>;
  query: Array<[string, string]>;
  body: BodyValue;
  effects: ScriptEffects;
  durationUs: number;
  /** 'async' when the script called http_post_json (or another async run held the isolate). */
  path: 'sync' | 'async';
}

export interface ResponseScriptInput {
  status: number;
  headers: Record<string, string>;
  rawBody: string;
  /**
   * The parsed body, or null when it is not JSON. Leave it out (undefined) and set `rawIsJson` to
   * have the sandbox parse rawBody itself (null if it does not parse): the text then crosses into
   * the isolate once and is parsed once.
   */
  json?: unknown | null;
  rawIsJson?: boolean;
}

export interface ResponseScriptResult {
  /** The possibly modified respBody (`json` itself when the script changed nothing). */
  body: unknown;
  /** Whether respBody differs from `json` once written as JSON; if not, send rawBody as it came. */
  changed: boolean;
  /** The changed respBody written as JSON (what to send instead of rawBody), else null. */
  bodyText: string | null;
  effects: ScriptEffects;
  durationUs: number;
  path: 'sync' | 'async';
}

export interface CompiledScript {
  readonly kind: ScriptKind;
  runRequest(input: RequestScriptInput, host: ScriptHost): Promise<RequestScriptResult>;
  runResponse(input: ResponseScriptInput, host: ScriptHost): Promise<ResponseScriptResult>;
}
