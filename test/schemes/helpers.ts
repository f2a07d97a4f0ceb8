/**
 * Shared steps of the scheme tests: load an example from scripts-examples/ exactly as
 * `keygate provider apply -f` does, point it at a test upstream, call it through the real proxy,
 * and replay a documented example through the dry-run (`keygate script test`).
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { readProviderFile } from '../../src/cli/commands/providers.ts';
import { CLI_ACTOR } from '../../src/cli/context.ts';
import { type DryRunResult, dryRunScript, type SampleRequest } from '../../src/outbound/dry-run.ts';
import type { TestGateway } from '../helpers/gateway.ts';

export const EXAMPLES_DIR = path.resolve(import.meta.dirname, '../../scripts-examples');

/** The example's provider.json with its script files read in, as `provider apply -f` sends it. */
export function exampleConfig(
  scheme: string,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return { ...readProviderFile(path.join(EXAMPLES_DIR, scheme, 'provider.json')), ...overrides };
}

export function exampleVectors<T>(scheme: string): T {
  return JSON.parse(readFileSync(path.join(EXAMPLES_DIR, scheme, 'vectors.json'), 'utf8')) as T;
}

export interface ProxyReply {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON, or undefined. */
  json: unknown;
}

/** One call through the outbound proxy, as an internal service makes it. */
export async function callProxy(
  gw: TestGateway,
  serviceToken: string,
  provider: string,
  pathAndQuery: string,
  init: { method?: string; headers?: Record<string, string>; body?: string | Uint8Array } = {},
): Promise<ProxyReply> {
  const res = await fetch(`${gw.outboundUrl}/v1/proxy/${provider}${pathAndQuery}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${serviceToken}`, ...init.headers },
    // fetch labels a string body text/plain; bytes go without a content type unless one is given.
    body:
      typeof init.body === 'string' && !hasHeader(init.headers, 'content-type')
        ? Buffer.from(init.body)
        : init.body,
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

function hasHeader(headers: Record<string, string> | undefined, name: string): boolean {
  return Object.keys(headers ?? {}).some((k) => k.toLowerCase() === name);
}

/** `keygate script test`: what the active version would send for `sample`, secrets masked. */
export function dryRun(
  gw: TestGateway,
  tenant: string,
  provider: string,
  sample: SampleRequest,
): Promise<DryRunResult> {
  return dryRunScript(gw.services, CLI_ACTOR, { tenant, provider, sample });
}

/** Case-insensitive header lookup in a dry-run's wire headers. */
export function headerOf(headers: Record<string, string>, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === wanted) return v;
  return undefined;
}

export interface RsaPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  pkcs1Pem: string;
  pkcs8Pem: string;
  spkiPem: string;
  /** SPKI DER as bare base64, the way Alipay's console hands out public keys. */
  spkiBase64: string;
  /** PKCS#1 / PKCS#8 DER as bare base64, the way Alipay's key tool writes private keys. */
  pkcs1Base64: string;
  pkcs8Base64: string;
}

export function rsaPair(): RsaPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privateKey,
    publicKey,
    pkcs1Pem: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
    pkcs8Pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    spkiPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    spkiBase64: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
    pkcs1Base64: privateKey.export({ type: 'pkcs1', format: 'der' }).toString('base64'),
    pkcs8Base64: privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64'),
  };
}

/** The base64 lines inside a PEM (what must never show up in an error body). */
export function pemBodyLines(pem: string): string[] {
  return pem.split('\n').filter((line) => line !== '' && !line.startsWith('-----'));
}

/** A problem+json answer from keygate: its code and detail. */
export function problemOf(reply: ProxyReply): { code: string; detail: string } {
  const body = reply.json as { code?: unknown; detail?: unknown } | undefined;
  return { code: String(body?.code), detail: String(body?.detail) };
}
