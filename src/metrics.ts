/** Prometheus metrics (prom-client), one registry per process, served on the admin listener. */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

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
      buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.025, 0.1],
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
    configVersion: new Gauge({
      name: 'keygate_provider_config_version',
      help: 'Active provider config version loaded on this node',
      labelNames: ['tenant', 'provider'] as const,
      registers: [registry],
    }),
  };
}
