/** The provider config document (DESIGN.md "Outbound proxy"), validated with zod. */
import { z } from 'zod';

const httpUrl = z.string().refine((v) => {
  try {
    const u = new URL(v);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}, 'must be an absolute http(s) URL');

const hostName = z
  .string()
  .regex(/^[a-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-f:]+\](:\d{1,5})?$/i, 'must be a host name');

export const PROVIDER_NAME = /^[a-z0-9][a-z0-9._-]{0,99}$/;

export const tokenSettingsSchema = z
  .object({
    /** How the client credentials travel (RFC 6749 2.3.1). */
    clientAuth: z.enum(['basic', 'body']).default('basic'),
    scope: z.string().optional(),
    accessTokenField: z.string().min(1).default('access_token'),
    expiresInField: z.string().min(1).default('expires_in'),
    /** Sign like `simple` after adding the bearer token. */
    sign: z.boolean().default(true),
  })
  .strict();

export const providerConfigSchema = z
  .object({
    name: z.string().regex(PROVIDER_NAME, 'must be 1-100 of a-z 0-9 . _ - and start alphanumeric'),
    mode: z.enum(['simple', 'token', 'script']),
    prefixUrl: httpUrl,
    tokenUrl: httpUrl.optional(),
    timeoutMs: z.number().int().min(1).max(300_000).default(5000),
    allowedHosts: z.array(hostName).default([]),
    request: z.string().min(1).optional(),
    response: z.string().min(1).optional(),
    token: tokenSettingsSchema.optional(),
    description: z.string().max(1000).optional(),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    if (cfg.mode === 'script' && !cfg.request) {
      ctx.addIssue({ code: 'custom', path: ['request'], message: 'mode script needs a request script' });
    }
    if (cfg.mode === 'token' && !cfg.tokenUrl) {
      ctx.addIssue({ code: 'custom', path: ['tokenUrl'], message: 'mode token needs tokenUrl' });
    }
    if (cfg.mode !== 'script' && cfg.request) {
      ctx.addIssue({ code: 'custom', path: ['request'], message: 'a request script needs mode script' });
    }
  });

export type ProviderConfigInput = z.input<typeof providerConfigSchema>;
export type ProviderConfig = z.output<typeof providerConfigSchema>;

/** Hosts a provider may reach: prefixUrl's, tokenUrl's and allowedHosts. */
export function egressHosts(cfg: ProviderConfig): Set<string> {
  const hosts = new Set(cfg.allowedHosts.map((h) => h.toLowerCase()));
  hosts.add(new URL(cfg.prefixUrl).host.toLowerCase());
  if (cfg.tokenUrl) hosts.add(new URL(cfg.tokenUrl).host.toLowerCase());
  return hosts;
}
