/**
 * Starts the listeners an operator asked for (`--roles`), each on its own port, and stops them
 * gracefully: stop accepting, let in-flight requests finish (bounded), then close the services
 * (which flushes the inbound audit queue).
 */
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { getRequestListener } from '@hono/node-server';
import { createAdminApp } from '../admin/app.ts';
import type { ListenerRole } from '../config.ts';
import {
  ERROR_HEADER,
  KeygateError,
  PROBLEM_CONTENT_TYPE,
  type ProblemDetails,
  toProblem,
} from '../errors.ts';
import { newId } from '../ids.ts';
import { summarizeError } from '../logger.ts';
import type { Services } from './create-services.ts';
import { handleHealth, requestIdOf, sendProblem } from './http.ts';
import { createInboundHandler } from './inbound-listener.ts';
import { createOutboundHandler } from './outbound-listener.ts';
import { StartupError } from './startup-error.ts';
import { createStatusHandler } from './status-listener.ts';

export interface RunningServer {
  ports: Partial<Record<ListenerRole | 'status', number>>;
  /** Graceful stop; resolves when every listener and service is closed. */
  close(): Promise<void>;
  /**
   * Cuts a graceful stop short (a second SIGTERM / Ctrl-C): no more drain delay or grace period,
   * open connections are closed now. Services still close, so the audit queue still reaches MySQL
   * or the spool.
   */
  hurry(): void;
}

const VARIABLES: Record<ListenerRole | 'status', { port: string; host: string }> = {
  outbound: { port: 'KEYGATE_OUTBOUND_PORT', host: 'KEYGATE_HOST' },
  admin: { port: 'KEYGATE_ADMIN_PORT', host: 'KEYGATE_ADMIN_HOST' },
  inbound: { port: 'KEYGATE_INBOUND_PORT', host: 'KEYGATE_HOST' },
  status: { port: 'KEYGATE_STATUS_PORT', host: 'KEYGATE_STATUS_HOST' },
};

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export async function startServer(
  services: Services,
  roles: readonly ListenerRole[],
  opts: { ports?: Partial<Record<ListenerRole, number>> } = {},
): Promise<RunningServer> {
  const { config } = services;
  const servers: Array<{ name: ListenerRole | 'status'; server: Server; host: string }> = [];
  const closers: Array<() => Promise<void>> = [];
  const listen = async (name: ListenerRole | 'status', handler: Handler, host: string, port: number) => {
    const server = createListener(services, name, handler);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new StartupError(
            `${name} listener cannot listen on ${host}:${port}: ${err.code ?? err.message} (set ${VARIABLES[name].port} or ${VARIABLES[name].host})`,
          ),
        ),
      );
      server.listen(port, host, () => resolve());
    });
    servers.push({ name, server, host });
  };
  try {
    for (const role of roles) {
      const built = await buildHandler(services, role);
      if (built.close) closers.push(built.close);
      const host = role === 'admin' ? config.adminHost : config.host;
      await listen(role, built.handler, host, opts.ports?.[role] ?? config.ports[role]);
    }
    if (config.status)
      await listen('status', createStatusHandler(services), config.status.host, config.status.port);
  } catch (err) {
    // A later listener failed (its port is taken): close the ones already listening, so the
    // process does not go on serving half of what was asked and can exit with the error.
    for (const { server } of servers) {
      server.close();
      server.closeAllConnections();
    }
    for (const close of closers) await close().catch(() => {});
    throw err;
  }
  const ports: RunningServer['ports'] = {};
  const hosts: Record<string, string> = {};
  for (const { name, server, host } of servers) {
    ports[name] = (server.address() as AddressInfo).port;
    hosts[name] = host;
  }
  services.logger.info({ ports, hosts }, 'keygate listening');

  let closing: Promise<void> | undefined;
  let hurry: () => void = () => {};
  const hurried = new Promise<void>((resolve) => {
    hurry = resolve;
  });
  /** Waits `ms`, or less if the stop is hurried. */
  const waitAtMost = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      timer.unref();
      void hurried.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  return {
    ports,
    hurry,
    close() {
      closing ??= (async () => {
        // /readyz says 503 first, so load balancers stop sending before the listeners close.
        services.readiness.drain();
        if (config.shutdownDelayMs > 0) {
          services.logger.info(
            { delayMs: config.shutdownDelayMs },
            'draining: readyz answers 503 before listeners close',
          );
          await waitAtMost(config.shutdownDelayMs);
        }
        const grace = config.shutdownGraceMs;
        await Promise.all(
          servers.map(
            ({ server }) =>
              new Promise<void>((resolve) => {
                // Keep-alive connections busy now go idle later: close them as they do, not at the grace deadline.
                const sweep = setInterval(() => server.closeIdleConnections(), 50);
                const done = () => {
                  clearInterval(sweep);
                  resolve();
                };
                server.close(done);
                server.closeIdleConnections();
                void waitAtMost(grace).then(() => {
                  server.closeAllConnections();
                  done();
                });
              }),
          ),
        );
        for (const close of closers) await close();
        await services.close();
      })();
      return closing;
    },
  };
}

function createListener(services: Services, role: ListenerRole | 'status', handler: Handler): Server {
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 120_000 }, (req, res) => {
    handler(req, res).catch((err: unknown) => {
      services.logger.error({ err: summarizeError(err, { stack: true }), role }, 'unhandled listener error');
      if (res.headersSent) res.destroy();
      else sendProblem(res, err, requestIdOf(req));
    });
  });
  // Bytes that are not HTTP never reach a handler: answer them with problem+json too (Node's
  // default is a bare status line), then close the connection as Node would.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // As Node's own handler: a response already under way on the socket cannot be followed by another.
    const current = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage;
    if (!socket.writable || err.code === 'ECONNRESET' || current?.headersSent) {
      socket.destroy();
      return;
    }
    const answer = clientErrorAnswer(err);
    socket.end(answer.raw, () => socket.destroy());
    // Counted and logged like any answer, so malformed traffic shows on dashboards; the status
    // label and the fixed message keep that bounded whatever the bytes were.
    // Counted only: it has no duration worth a histogram sample.
    services.metrics.requests.inc({ listener: role, provider: '-', status: String(answer.problem.status) });
    if (services.config.accessLog && services.logger.isLevelEnabled('info')) {
      services.logger.info(
        {
          requestId: answer.problem.requestId,
          listener: role,
          status: answer.problem.status,
          code: answer.problem.code,
          parserError: err.code,
        },
        'request refused by the HTTP parser',
      );
    }
  });
  return server;
}

/** The raw HTTP answer for a request the parser refused: 431, 408, or 400. */
export function clientErrorAnswer(err: NodeJS.ErrnoException): { raw: string; problem: ProblemDetails } {
  const problem = toProblem(
    err.code === 'HPE_HEADER_OVERFLOW'
      ? new KeygateError('KG_HEADERS_TOO_LARGE')
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new KeygateError('KG_REQUEST_TIMEOUT')
        : new KeygateError('KG_BAD_REQUEST', 'the request is not valid HTTP/1.1'),
    newId('req'),
  );
  const body = JSON.stringify(problem);
  const raw = [
    `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status]}`,
    `content-type: ${PROBLEM_CONTENT_TYPE}`,
    `content-length: ${Buffer.byteLength(body)}`,
    `${ERROR_HEADER}: ${problem.code}`,
    `x-request-id: ${problem.requestId}`,
    'connection: close',
    '',
    body,
  ].join('\r\n');
  return { raw, problem };
}

async function buildHandler(
  services: Services,
  role: ListenerRole,
): Promise<{ handler: Handler; close?: () => Promise<void> }> {
  switch (role) {
    case 'outbound':
      return {
        handler: createOutboundHandler({
          ...services,
          maxBodyBytes: 10 * 1024 * 1024,
          readiness: services.readiness,
          accessLog: services.config.accessLog,
        }),
      };
    case 'admin': {
      const listener = getRequestListener(createAdminApp(services).fetch);
      return {
        handler: async (req, res) => {
          if (await handleHealth(req, res, services.readiness)) return;
          await listener(req, res);
        },
      };
    }
    case 'inbound':
      return createInboundHandler(services);
  }
}
