/**
 * Starts the listeners an operator asked for (`--roles`), each on its own port, and stops them
 * gracefully: stop accepting, let in-flight requests finish (bounded), then close the services
 * (which flushes the inbound audit queue).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { createAdminApp } from '../admin/app.ts';
import type { ListenerRole } from '../config.ts';
import type { Services } from './create-services.ts';
import { handleHealth } from './http.ts';
import { createInboundHandler } from './inbound-listener.ts';
import { createOutboundHandler } from './outbound-listener.ts';

export interface RunningServer {
  ports: Partial<Record<ListenerRole, number>>;
  /** Graceful stop; resolves when every listener and service is closed. */
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export async function startServer(
  services: Services,
  roles: readonly ListenerRole[],
  opts: { host?: string; ports?: Partial<Record<ListenerRole, number>> } = {},
): Promise<RunningServer> {
  const host = opts.host ?? services.config.host;
  const servers: Array<{ role: ListenerRole; server: Server }> = [];
  const closers: Array<() => Promise<void>> = [];
  for (const role of roles) {
    const built = await buildHandler(services, role);
    if (built.close) closers.push(built.close);
    const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 120_000 }, (req, res) => {
      built.handler(req, res).catch((err: unknown) => {
        services.logger.error({ err, role }, 'unhandled listener error');
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    const port = opts.ports?.[role] ?? services.config.ports[role];
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new Error(`${role} listener cannot listen on ${host}:${port}: ${err.code ?? err.message}`)),
      );
      server.listen(port, host, () => resolve());
    });
    servers.push({ role, server });
  }
  const ports: Partial<Record<ListenerRole, number>> = {};
  for (const { role, server } of servers) ports[role] = (server.address() as AddressInfo).port;
  services.logger.info({ ports, host }, 'keygate listening');

  let closing: Promise<void> | undefined;
  return {
    ports,
    close() {
      closing ??= (async () => {
        const grace = services.config.shutdownGraceMs;
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
                setTimeout(() => {
                  server.closeAllConnections();
                  done();
                }, grace).unref();
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
          checkReady: services.checkReady,
        }),
      };
    case 'admin': {
      const listener = getRequestListener(createAdminApp(services).fetch);
      return {
        handler: async (req, res) => {
          if (await handleHealth(req, res, services.checkReady)) return;
          await listener(req, res);
        },
      };
    }
    case 'inbound':
      return createInboundHandler(services);
  }
}
