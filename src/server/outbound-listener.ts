/** The outbound listener (default :8080): `/v1/proxy/<provider>/<path>` for internal services. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KeygateError } from '../errors.ts';
import { answerLength } from '../http-client.ts';
import { type OutboundDeps, parseProxyTarget, proxyRequest } from '../outbound/proxy.ts';
import { handleHealth, readBodyWithLimit, requestIdOf, sendProblem } from './http.ts';

export interface OutboundListenerDeps extends OutboundDeps {
  maxBodyBytes: number;
  checkReady: () => Promise<Record<string, boolean>>;
}

export function createOutboundHandler(deps: OutboundListenerDeps) {
  return async function handleOutbound(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (await handleHealth(req, res, deps.checkReady)) return;
    const requestId = requestIdOf(req);
    const started = performance.now();
    const target = parseProxyTarget(req.url ?? '/');
    const providerLabel = target?.provider ?? '-';
    let status: number;
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
      const code = err instanceof KeygateError ? err.code : 'KG_INTERNAL';
      const log = status >= 500 ? deps.logger.warn.bind(deps.logger) : deps.logger.info.bind(deps.logger);
      log(
        {
          requestId,
          provider: providerLabel,
          code,
          detail: err instanceof KeygateError ? err.message : undefined,
          err: err instanceof KeygateError ? undefined : err,
        },
        'outbound request failed',
      );
    }
    const seconds = (performance.now() - started) / 1000;
    deps.metrics.recordRequest('outbound', providerLabel, status, seconds);
    deps.logger.debug(
      { requestId, provider: providerLabel, method: req.method, status, ms: seconds * 1000 },
      'outbound request',
    );
  };
}
