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
  /** Lets new connections through again, and resumes stalled ones. */
  restore(): void;
  /** Accepts connections but never forwards a byte: a hanging dependency. */
  hang(): void;
  /**
   * Stops forwarding in both directions without closing anything: open connections (and new ones)
   * stay up but get no answer until restore(), which delivers what was held. A server that stalls.
   */
  stall(): void;
  /** Client connections open now (stalled or hung ones included). */
  openConnections(): number;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  flowing: boolean;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: 'open' | 'cut' | 'hang' | 'stall' = 'open';
  const sockets = new Set<net.Socket>();
  const clients = new Set<net.Socket>();
  const pairs = new Set<Pair>();
  const flow = (pair: Pair) => {
    if (pair.flowing) return;
    pair.flowing = true;
    pair.client.pipe(pair.upstream);
    pair.upstream.pipe(pair.client);
  };
  const hold = (pair: Pair) => {
    if (!pair.flowing) return;
    pair.flowing = false;
    pair.client.unpipe(pair.upstream);
    pair.upstream.unpipe(pair.client);
    pair.client.pause();
    pair.upstream.pause();
  };
  const server = net.createServer((client) => {
    sockets.add(client);
    clients.add(client);
    client.on('close', () => {
      sockets.delete(client);
      clients.delete(client);
    });
    client.on('error', () => {});
    if (mode === 'cut') {
      client.destroy();
      return;
    }
    if (mode === 'hang') return;
    const upstream = net.connect(target.port, target.host);
    sockets.add(upstream);
    const pair: Pair = { client, upstream, flowing: false };
    pairs.add(pair);
    upstream.on('close', () => {
      sockets.delete(upstream);
      pairs.delete(pair);
      // A flowing pair ends through the pipes; a stalled one has none to tell the other side.
      if (!pair.flowing) client.destroy();
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.on('close', () => {
      if (!pair.flowing) upstream.destroy();
    });
    if (mode !== 'stall') flow(pair);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const dropAll = () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
    pairs.clear();
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
      for (const pair of pairs) flow(pair);
    },
    hang() {
      mode = 'hang';
      dropAll();
    },
    stall() {
      mode = 'stall';
      for (const pair of pairs) hold(pair);
    },
    openConnections: () => clients.size,
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
