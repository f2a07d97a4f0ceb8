/**
 * The optional status listener (`KEYGATE_STATUS_PORT`, like Kong's status_listen): `/metrics`,
 * `/healthz` and `/readyz` of this process. A process that runs only the inbound or the outbound
 * listener has no admin listener, and so no other place to export its own metrics.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KeygateError } from '../errors.ts';
import type { Services } from './create-services.ts';
import { handleHealth, requestIdOf, sendProblem } from './http.ts';

export function createStatusHandler(services: Services) {
  return async function handleStatus(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (await handleHealth(req, res, services.readiness)) return;
    const path = req.url?.split('?')[0];
    if (path === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) {
      const body = await services.metrics.render(services.providers.loaded());
      res.writeHead(200, {
        'content-type': services.metrics.contentType,
        'content-length': Buffer.byteLength(body),
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    sendProblem(
      res,
      new KeygateError('KG_NOT_FOUND', 'the status listener serves /metrics, /healthz and /readyz'),
      requestIdOf(req),
    );
  };
}
