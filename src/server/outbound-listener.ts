/** The outbound listener (default :8080): `/v1/proxy/<provider>/<path>` for internal services. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KeygateError } from '../errors.ts';
import { answerLength } from '../http-client.ts';
import { summarizeError } from '../logger.ts';
import { type OutboundDeps, parseProxyTarget, proxyRequest } from '../outbound/proxy.ts';
import { handleHealth, readBodyWithLimit, requestIdOf, sendProblem } from './http.ts';
import type { Readiness } from './readiness.ts';

export interface OutboundListenerDeps extends OutboundDeps {
  maxBodyBytes: number;
  readiness: Readiness;
  /** An info line for every request; without it only 5xx answers are logged. */
  accessLog: boolean;
}

export function createOutboundHandler(deps: OutboundListenerDeps) {
  return async function handleOutbound(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (await handleHealth(req, res, deps.readiness)) return;
    const requestId = requestIdOf(req);
    const started = performance.now();
    const target = parseProxyTarget(req.url ?? '/');
    let status: number;
    let failure: { code: string; detail?: string; err?: unknown } | undefined;
    try {
      if (!target) throw new KeygateError('KG_NOT_FOUND', 'expected /v1/proxy/<provider>/<path>');
      const body = await readBodyWithLimit(req, deps.maxBodyBytes);
      const answer = await proxyRequest(deps, target.provider, {
        requestId,
        method: req.method ?? 'GET',
        upstreamPathAndQuery: target.upstreamPathAndQuery,
        headers: req.headers,
        body,
      });
      const length = answerLength(req.method, answer.status, answer.body.length);
      if (length === undefined) delete answer.headers['content-length'];
      else answer.headers['content-length'] = length;
      res.writeHead(answer.status, answer.headers);
      res.end(answer.body);
      status = answer.status;
    } catch (err) {
      status = sendProblem(res, err, requestId);
      failure =
        err instanceof KeygateError
          ? { code: err.code, detail: err.message }
          : { code: 'KG_INTERNAL', err: summarizeError(err, { stack: true }) };
    }
    const seconds = (performance.now() - started) / 1000;
    // Callers may put anything in the URL: only names of loaded providers become metric series.
    const providerLabel = target && deps.providers.isKnownName(target.provider) ? target.provider : '-';
    deps.metrics.recordRequest('outbound', providerLabel, status, seconds);
    // The access log: one line per request (keygate's own failures at warn when they are 5xx).
    const level = status >= 500 ? 'warn' : 'info';
    if ((level === 'warn' || deps.accessLog) && deps.logger.isLevelEnabled(level)) {
      deps.logger[level](
        {
          requestId,
          method: req.method,
          provider: target?.provider.slice(0, 100),
          status,
          ms: Math.round(seconds * 1e4) / 10,
          ...failure,
        },
        failure ? 'outbound request failed' : 'outbound request',
      );
    }
  };
}
