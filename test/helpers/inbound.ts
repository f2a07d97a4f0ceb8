import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Agent } from 'undici';
import { CLI_ACTOR } from '../../src/cli/context.ts';
import { signRequest } from '../../src/client/index.ts';
import {
  canonicalString,
  sha256Hex,
  signCanonicalString,
  splitRequestTarget,
} from '../../src/inbound/signature/canonical.ts';
import type { ServiceContext } from '../../src/services/context.ts';
import { type CreatePartnerKeyInput, createPartnerKey } from '../../src/services/partner-keys.ts';
import { addRoute } from '../../src/services/routes.ts';
import { createTenant } from '../../src/services/tenants.ts';
import type { Db } from '../../src/storage/db.ts';
import type { AuditLogRow } from '../../src/storage/schema.ts';
import { MAIN, spawnServe } from './serve.ts';

export interface PartnerKeyCredentials {
  keyId: string;
  secret: string;
  tenantId: string;
}

let counter = 0;

export async function createTestTenant(ctx: ServiceContext, prefix = 'in'): Promise<string> {
  const tenant = await createTenant(ctx, CLI_ACTOR, {
    name: `${prefix}${process.pid}x${++counter}x${Date.now() % 100_000}`,
  });
  return tenant.id;
}

export async function createTestKey(
  ctx: ServiceContext,
  tenantId: string,
  policy: Omit<CreatePartnerKeyInput, 'tenant' | 'name'> = {},
): Promise<PartnerKeyCredentials> {
  const created = await createPartnerKey(ctx, CLI_ACTOR, {
    tenant: tenantId,
    name: `key ${++counter}`,
    ...policy,
  });
  return { keyId: created.keyId, secret: created.secret, tenantId };
}

export async function createTestRoute(
  ctx: ServiceContext,
  tenantId: string,
  prefix: string,
  upstream: string,
  opts: { timeoutMs?: number; keyIds?: string[] | null; scopes?: string[] | null } = {},
): Promise<void> {
  await addRoute(ctx, CLI_ACTOR, { tenant: tenantId, prefix, upstream, ...opts });
}

export interface SendOptions {
  method?: string;
  /** A record, or a flat [name, value, name, value, ...] list that may repeat a name. */
  headers?: Record<string, string> | string[];
  body?: string | Buffer;
  /** Sign with this key (headers from `headers` are sent too; signature headers are added). */
  key?: { keyId: string; secret: string };
  /** Overrides of the signature fields, to produce a particular failure. */
  sign?: { timestamp?: number; nonce?: string; secret?: string };
  timeoutMs?: number;
}

export interface SentResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json<T = Record<string, unknown>>(): T;
}

const agent = new Agent({ connections: 256, keepAliveTimeout: 5_000 });

/** Sends `pathAndQuery` byte-exact (no URL normalisation), signed when `key` is given. */
export async function send(
  baseUrl: string,
  pathAndQuery: string,
  opts: SendOptions = {},
): Promise<SentResponse> {
  const method = opts.method ?? 'GET';
  const headers: string[] = Array.isArray(opts.headers)
    ? [...opts.headers]
    : Object.entries(opts.headers ?? {}).flat();
  if (opts.key) {
    const signed = signExactly(opts.key, method, pathAndQuery, opts.body ?? '', opts.sign);
    for (const [name, value] of Object.entries(signed)) headers.push(name, value);
  }
  const res = await agent.request({
    origin: baseUrl,
    path: pathAndQuery,
    method: method as 'GET',
    headers,
    body: opts.body,
    headersTimeout: opts.timeoutMs ?? 10_000,
    bodyTimeout: opts.timeoutMs ?? 10_000,
  });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    headers: res.headers as Record<string, string | string[] | undefined>,
    text,
    json: <T>() => JSON.parse(text) as T,
  };
}

/**
 * Writes one HTTP/1.1 request byte for byte over a fresh socket (no client in between to normalise
 * the target or drop headers) and parses the answer.
 */
export async function sendRaw(
  baseUrl: string,
  pathAndQuery: string,
  opts: {
    method?: string;
    headers?: Array<[string, string]>;
    key?: { keyId: string; secret: string };
    body?: string;
  } = {},
): Promise<SentResponse> {
  const { hostname, port } = new URL(baseUrl);
  const method = opts.method ?? 'GET';
  const body = opts.body ?? '';
  const headers: Array<[string, string]> = [['Host', `${hostname}:${port}`], ...(opts.headers ?? [])];
  if (opts.key) headers.push(...Object.entries(signExactly(opts.key, method, pathAndQuery, body)));
  if (body) headers.push(['Content-Length', String(Buffer.byteLength(body))]);
  headers.push(['Connection', 'close']);
  const head = `${method} ${pathAndQuery} HTTP/1.1\r\n${headers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`;
  const raw = await new Promise<Buffer>((resolve, reject) => {
    // Written, not ended: a half-closed socket counts as an aborted request.
    const socket = net.connect(Number(port), hostname, () => socket.write(head + body));
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer')));
  });
  const text = raw.toString('utf8');
  const split = text.indexOf('\r\n\r\n');
  const [statusLine, ...headerLines] = text.slice(0, split).split('\r\n');
  const parsed: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    parsed[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  const bodyText = text.slice(split + 4);
  return {
    status: Number(statusLine?.split(' ')[1]),
    headers: parsed,
    text: bodyText,
    json: <T>() => JSON.parse(bodyText) as T,
  };
}

/**
 * The four signature headers for exactly this request target (the SDK would first normalise it as
 * a WHATWG URL). A target whose query cannot be canonicalised gets a well-formed wrong signature.
 */
export function signExactly(
  key: { keyId: string; secret: string },
  method: string,
  pathAndQuery: string,
  body: string | Buffer,
  sign: SendOptions['sign'] = {},
): Record<string, string> {
  const timestamp = String(sign.timestamp ?? Math.floor(Date.now() / 1000));
  const nonce = sign.nonce ?? randomBytes(18).toString('base64url');
  const { path: targetPath, rawQuery } = splitRequestTarget(pathAndQuery);
  let signature = '0'.repeat(64);
  try {
    const canonical = canonicalString({
      method,
      path: targetPath,
      rawQuery,
      keyId: key.keyId,
      timestamp,
      nonce,
      bodySha256Hex: sha256Hex(body),
    });
    signature = signCanonicalString(sign.secret ?? key.secret, canonical);
  } catch {
    // KG_QUERY_MALFORMED and the like: the gateway refuses before it compares signatures.
  }
  return { 'X-Api-Key': key.keyId, 'X-Timestamp': timestamp, 'X-Nonce': nonce, 'X-Signature': signature };
}

/** Signs with the SDK's own URL handling (WHATWG URL), as a partner using `keygate/client` would. */
export function sdkSignedHeaders(
  key: { keyId: string; secret: string },
  method: string,
  url: string,
  body?: string,
) {
  return signRequest({ keyId: key.keyId, secret: key.secret, method, url, body });
}

export interface KeygateChild {
  url: string;
  port: number;
  pid: number;
  /** Every line the child wrote to stdout and stderr so far. */
  output: string[];
  /** Sends the signal and resolves with the exit code once the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

/**
 * Starts `keygate serve --roles inbound` on port 0 and waits for its "listening" log line; `main`
 * runs another checkout's CLI (the benchmark's A/B).
 */
export async function startInboundChild(env: Record<string, string>, main = MAIN): Promise<KeygateChild> {
  // BENCH_PROFILE_DIR (the benchmark's switch): a CPU profile of this child too, written on exit.
  const profile = process.env.BENCH_PROFILE_DIR
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`]
    : [];
  const { child, port, output, exited } = await spawnServe({ role: 'inbound', env, main, nodeArgs: profile });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    output,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Polls until `check` returns true (or throws after `timeoutMs`). */
export async function waitFor(
  check: () => Promise<boolean>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The audit row of a call, once the writer has stored it (rows are written off the request path). */
export async function waitForAuditRow(db: Db, requestId: unknown): Promise<AuditLogRow> {
  let row: AuditLogRow | undefined;
  await waitFor(
    async () => {
      row = await db
        .selectFrom('audit_log')
        .selectAll()
        .where('request_id', '=', String(requestId))
        .executeTakeFirst();
      return row !== undefined;
    },
    10_000,
    `audit row ${requestId}`,
  );
  return row!;
}
