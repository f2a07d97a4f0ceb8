/**
 * Script dry-run for tenant developers (CLI `script test` and the admin API share it): signs a
 * sample request with a draft or active version exactly as the proxy would, and shows the result
 * with secrets masked. With `send`, it also sends it and runs the response script. When a script
 * fails, the error is the one the proxy would raise, plus what the script logged (`logs`).
 */

import { z } from 'zod';
import { isKeygateError, KeygateError } from '../errors.ts';
import type { HttpClient } from '../http-client.ts';
import type { Metrics } from '../metrics.ts';
import { scriptLogsOf } from '../sandbox/index.ts';
import { type Actor, authorize } from '../services/actor.ts';
import type { ServiceContext } from '../services/context.ts';
import { egressHosts } from '../services/provider-config.ts';
import { getProviderVersion, validationError } from '../services/providers.ts';
import { resolveTenantId } from '../services/tenants.ts';
import type { LoadedProvider } from './provider-registry.ts';
import { maskerFor, prepareSignedRequest, scriptHost } from './proxy.ts';
import type { TokenCache } from './token-cache/index.ts';

export const sampleRequestSchema = z
  .object({
    method: z
      .string()
      .regex(/^[A-Za-z]+$/)
      .default('POST'),
    path: z.string().startsWith('/').default('/'),
    query: z.record(z.string(), z.string()).default({}),
    headers: z.record(z.string(), z.string()).default({}),
    /** A JSON value (sent as application/json unless headers say otherwise) or a string. */
    body: z.unknown().optional(),
  })
  .strict();

export type SampleRequest = z.input<typeof sampleRequestSchema>;

export interface DryRunResult {
  provider: string;
  version: number;
  request: { method: string; url: string; headers: Record<string, string>; body: string | null };
  logs: string[];
  timing: { scriptUs: number | null; path: 'sync' | 'async' | null };
  response?: { status: number; headers: Record<string, string | string[]>; body: string };
}

export interface DryRunDeps {
  ctx: ServiceContext;
  http: HttpClient;
  tokens: TokenCache;
  metrics: Metrics;
}

export async function dryRunScript(
  deps: DryRunDeps,
  actor: Actor,
  input: { tenant: string; provider: string; version?: number | 'active'; sample: unknown; send?: boolean },
): Promise<DryRunResult> {
  const tenantId = await resolveTenantId(deps.ctx.db, input.tenant);
  authorize(actor, 'script.test', tenantId);
  const parsed = sampleRequestSchema.safeParse(input.sample ?? {});
  if (!parsed.success) throw validationError(parsed.error);
  const sample = parsed.data;
  const version = await getProviderVersion(deps.ctx, actor, {
    tenant: tenantId,
    provider: input.provider,
    version: input.version,
  });
  const { config } = version;
  const cacheKey = `${tenantId}:${config.name}:v${version.version}`;
  const provider: LoadedProvider = {
    tenantId,
    name: config.name,
    version: version.version,
    revision: -1,
    config,
    egress: egressHosts(config),
    request: config.request
      ? await deps.ctx.sandbox.compile('request', config.request, `${cacheKey}:request`)
      : undefined,
    response: config.response
      ? await deps.ctx.sandbox.compile('response', config.response, `${cacheKey}:response`)
      : undefined,
    scriptFetchesToken: false,
  };
  const secrets = await deps.ctx.secrets.loadProviderSecrets(tenantId, config.name);
  const query = new URLSearchParams(sample.query).toString();
  const headers: Record<string, string> = Object.fromEntries(
    Object.entries(sample.headers).map(([k, v]) => [k.toLowerCase(), v]),
  );
  let body = Buffer.alloc(0);
  if (sample.body !== undefined) {
    if (typeof sample.body === 'string') body = Buffer.from(sample.body);
    else {
      body = Buffer.from(JSON.stringify(sample.body));
      headers['content-type'] ??= 'application/json';
    }
  }
  const mask = maskerFor(secrets);
  const prepared = await prepareSignedRequest(
    deps,
    provider,
    secrets,
    {
      requestId: 'dry-run',
      method: sample.method,
      upstreamPathAndQuery: `${sample.path}${query ? `?${query}` : ''}`,
      headers,
      body,
    },
    { applyTokenEffects: input.send === true },
  ).catch((err: unknown) => {
    throw withScriptLogs(err, [], mask);
  });
  const maskedHeaders = Object.fromEntries(
    Object.entries(prepared.wire.headers).map(([k, v]) => [k, mask(v)]),
  );
  const result: DryRunResult = {
    provider: config.name,
    version: version.version,
    request: {
      method: prepared.wire.method,
      url: mask(prepared.wire.url),
      headers: maskedHeaders,
      body: prepared.wire.body ? mask(prepared.wire.body.toString('utf8')) : null,
    },
    logs: (prepared.script?.effects.logs ?? []).map(mask),
    timing: { scriptUs: prepared.script?.durationUs ?? null, path: prepared.script?.path ?? null },
  };
  if (input.send) {
    const upstream = await deps.http.send(prepared.wire);
    let text = upstream.body.toString('utf8');
    if (provider.response) {
      let json: unknown = null;
      try {
        json = JSON.parse(text);
      } catch {
        json = null;
      }
      const flat: Record<string, string> = {};
      for (const [k, v] of Object.entries(upstream.headers)) flat[k] = Array.isArray(v) ? v.join(', ') : v;
      const r = await provider.response
        .runResponse(
          { status: upstream.status, headers: flat, rawBody: text, json },
          { ...scriptHost(deps.http, provider, secrets), token: null },
        )
        .catch((err: unknown) => {
          throw withScriptLogs(err, result.logs, mask);
        });
      result.logs.push(...r.effects.logs.map(mask));
      if (r.changed) text = JSON.stringify(r.body);
    }
    const respHeaders: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(upstream.headers))
      respHeaders[k] = Array.isArray(v) ? v.map(mask) : mask(v);
    result.response = { status: upstream.status, headers: respHeaders, body: mask(text) };
  }
  return result;
}

/**
 * The error with the failed script's log() output (after `logsBefore`, the request script's when
 * the response script failed) as the problem+json member `logs`. Only the dry-run adds it: the
 * proxy's errors go to calling services, which must not see what a script logged.
 */
function withScriptLogs(err: unknown, logsBefore: string[], mask: (text: string) => string): unknown {
  const logs = [...logsBefore, ...scriptLogsOf(err).map(mask)];
  if (!isKeygateError(err) || logs.length === 0) return err;
  return new KeygateError(err.code, err.message, { ...err.extra, logs });
}
