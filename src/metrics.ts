/**
 * Prometheus metrics (prom-client), one registry per process, served on the admin listener and on
 * the status listener (KEYGATE_STATUS_PORT).
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { AuditWriterStats } from './inbound/audit/index.ts';

export type Metrics = ReturnType<typeof createMetrics>;

export function createMetrics() {
  const registry = new Registry();
  // Unprefixed (process_cpu_seconds_total, nodejs_heap_size_used_bytes, ...): what Node dashboards expect.
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'keygate_http_requests_total',
    help: 'Requests answered, per listener, provider (or route) and status',
    labelNames: ['listener', 'provider', 'status'] as const,
    registers: [registry],
  });
  const requestDuration = new Histogram({
    name: 'keygate_http_request_duration_seconds',
    help: 'Time from request to answer, per listener, provider (or route) and status',
    labelNames: ['listener', 'provider', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const configVersion = new Gauge({
    name: 'keygate_provider_config_version',
    help: 'Active provider config version loaded on this node',
    labelNames: ['tenant', 'provider'] as const,
    registers: [registry],
  });
  return {
    registry,
    requests,
    requestDuration,
    /** One answered request: counts it and records its duration (both metrics above). */
    recordRequest(listener: string, provider: string, status: number, seconds: number): void {
      const labels = { listener, provider, status: String(status) };
      requests.inc(labels);
      requestDuration.observe(labels, seconds);
    },
    scriptDuration: new Histogram({
      name: 'keygate_script_duration_seconds',
      help: 'Signing-script run time per provider and kind (request / response)',
      labelNames: ['provider', 'kind'] as const,
      // Up to 5 s: a run's time includes its http_post_json calls (token fetches).
      buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.025, 0.1, 0.5, 1, 5],
      registers: [registry],
    }),
    scriptErrors: new Counter({
      name: 'keygate_script_errors_total',
      help: 'Signing-script failures per provider and error code',
      labelNames: ['provider', 'code'] as const,
      registers: [registry],
    }),
    tokenFetches: new Counter({
      name: 'keygate_token_fetches_total',
      help: 'Upstream access-token fetches per provider and outcome',
      labelNames: ['provider', 'outcome'] as const,
      registers: [registry],
    }),
    inboundOutcomes: new Counter({
      name: 'keygate_inbound_calls_total',
      help: 'Inbound calls per audit outcome (ok, bad_signature, replayed, rate_limited, upstream_error, ...)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    /** Exports an audit writer's counts, read at scrape time. */
    watchAudit(stats: () => AuditWriterStats): void {
      new Gauge({
        name: 'keygate_audit_queued_rows',
        help: 'Audit rows accepted but not yet in MySQL or the spool',
        registers: [registry],
        collect() {
          this.set(stats().queued);
        },
      });
      new Gauge({
        name: 'keygate_audit_spool_bytes',
        help: 'Bytes of audit rows in the spool still to replay (its files, less what the replay has inserted); at KEYGATE_AUDIT_SPOOL_MAX_BYTES inbound calls are refused',
        registers: [registry],
        collect() {
          this.set(stats().spoolBytes);
        },
      });
      new Counter({
        name: 'keygate_audit_rows_total',
        help: 'Audit rows by what became of them: written to MySQL, spooled, replayed from the spool, rejected by MySQL, dropped, shed (rows of refused calls not kept while the spool was twice its limit)',
        labelNames: ['result'] as const,
        registers: [registry],
        collect() {
          const now = stats();
          this.reset();
          for (const result of ['written', 'spooled', 'replayed', 'rejected', 'dropped', 'shed'] as const) {
            this.inc({ result }, now[result]);
          }
        },
      });
    },
    /** Exports the secret store's count of unreadable secrets per tenant and provider, read at scrape time. */
    watchUnreadableSecrets(
      counts: () => ReadonlyArray<{ tenantId: string; provider: string; count: number }>,
    ): void {
      new Gauge({
        name: 'keygate_unreadable_secrets',
        help: 'Provider secrets that are set but cannot be decrypted, per tenant and provider, as of their latest load on this node',
        labelNames: ['tenant', 'provider'] as const,
        registers: [registry],
        collect() {
          this.reset();
          for (const c of counts()) this.set({ tenant: c.tenantId, provider: c.provider }, c.count);
        },
      });
    },
    /** Exports the inbound key cache's counts of partner-key secrets that do not decrypt, per tenant. */
    watchUnreadablePartnerSecrets(
      counts: () => ReadonlyArray<{ tenantId: string; secrets: number; keysWithoutReadableSecret: number }>,
    ): void {
      new Gauge({
        name: 'keygate_unreadable_partner_key_secrets',
        help: "Live partner-key secrets that cannot be decrypted, per tenant, as of their key's latest load on this node; requests signed with them get 401 KG_SIGNATURE_MISMATCH",
        labelNames: ['tenant'] as const,
        registers: [registry],
        collect() {
          this.reset();
          for (const c of counts()) this.set({ tenant: c.tenantId }, c.secrets);
        },
      });
      new Gauge({
        name: 'keygate_partner_keys_without_readable_secret',
        help: 'Partner keys none of whose live secrets can be decrypted, per tenant, as of their latest load on this node: every request with them gets 401 KG_SIGNATURE_MISMATCH',
        labelNames: ['tenant'] as const,
        registers: [registry],
        collect() {
          this.reset();
          for (const c of counts()) this.set({ tenant: c.tenantId }, c.keysWithoutReadableSecret);
        },
      });
    },
    /** The Prometheus text, with the provider versions loaded now (a provider no longer loaded drops out). */
    async render(
      loaded: ReadonlyArray<{ tenantId: string; name: string; version: number }>,
    ): Promise<string> {
      configVersion.reset();
      for (const p of loaded) configVersion.set({ tenant: p.tenantId, provider: p.name }, p.version);
      return registry.metrics();
    },
    contentType: registry.contentType,
    configVersion,
  };
}
