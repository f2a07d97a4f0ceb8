/**
 * A small TCP proxy a test controls, to cut a dependency (MariaDB, Redis, KMS, an upstream)
 * without touching the shared server: `cut()` drops every connection and refuses new ones,
 * `restore()` lets them through again.
 */
import net from 'node:net';

export interface TcpProxy {
  port: number;
  url(protocol: string, pathAndQuery?: string): string;
  /** Drops every open connection and refuses new ones until restore(). */
  cut(): void;
  restore(): void;
  /** Accepts connections but never forwards a byte: a hanging dependency. */
  hang(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: 'open' | 'cut' | 'hang' = 'open';
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    if (mode === 'cut') {
      client.destroy();
      return;
    }
    if (mode === 'hang') return;
    const upstream = net.connect(target.port, target.host);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const dropAll = () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  return {
    port,
    url: (protocol, rest = '') => `${protocol}://127.0.0.1:${port}${rest}`,
    cut() {
      mode = 'cut';
      dropAll();
    },
    restore() {
      mode = 'open';
    },
    hang() {
      mode = 'hang';
      dropAll();
    },
    close() {
      dropAll();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

export function hostAndPort(url: string, defaultPort: number): { host: string; port: number } {
  const { hostname, port } = new URL(url);
  return { host: hostname, port: Number(port || defaultPort) };
}

/** A connection URL (mysql://, redis://) that reaches its server through `proxy` instead of directly. */
export function viaProxy(url: string, proxy: TcpProxy): string {
  const via = new URL(url);
  via.hostname = '127.0.0.1';
  via.port = String(proxy.port);
  return via.toString();
}
