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
  /**
   * The connections open now go silent for good (what either side sends is lost, nothing is
   * closed), while new connections flow as usual: the server's host died or a firewall dropped
   * their state, and a fresh connection works. restore() does not bring them back.
   */
  freeze(): void;
  /** Client connections open now (stalled, frozen or hung ones included); one the client closed is not. */
  openConnections(): number;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  flowing: boolean;
  /** Held: read into the buffers below instead of forwarded. */
  buffering: boolean;
  /** Frozen (see freeze()): never flows again. */
  frozen: boolean;
  /** What each side sent while held, delivered by flow(); dropped when frozen. */
  toUpstream: Buffer[];
  toClient: Buffer[];
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: 'open' | 'cut' | 'hang' | 'stall' = 'open';
  const sockets = new Set<net.Socket>();
  const clients = new Set<net.Socket>();
  const pairs = new Set<Pair>();
  const flow = (pair: Pair) => {
    if (pair.flowing || pair.frozen) return;
    pair.flowing = true;
    pair.buffering = false;
    pair.client.removeAllListeners('data');
    pair.upstream.removeAllListeners('data');
    for (const chunk of pair.toUpstream.splice(0)) pair.upstream.write(chunk);
    for (const chunk of pair.toClient.splice(0)) pair.client.write(chunk);
    pair.client.pipe(pair.upstream);
    pair.upstream.pipe(pair.client);
  };
  // Held sockets are still read (into the pair's buffers), not paused: a client that closes a
  // held connection is seen, and openConnections() counts it no more.
  const hold = (pair: Pair, frozen = false) => {
    pair.frozen ||= frozen;
    if (pair.flowing) {
      pair.flowing = false;
      pair.client.unpipe(pair.upstream);
      pair.upstream.unpipe(pair.client);
    }
    if (pair.buffering) return;
    pair.buffering = true;
    pair.client.on('data', (chunk: Buffer) => {
      if (!pair.frozen) pair.toUpstream.push(chunk);
    });
    pair.upstream.on('data', (chunk: Buffer) => {
      if (!pair.frozen) pair.toClient.push(chunk);
    });
    // unpipe() may have paused them; a 'data' listener alone does not resume a paused stream.
    pair.client.resume();
    pair.upstream.resume();
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
    const pair: Pair = {
      client,
      upstream,
      flowing: false,
      buffering: false,
      frozen: false,
      toUpstream: [],
      toClient: [],
    };
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
    if (mode === 'stall') hold(pair);
    else flow(pair);
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
    freeze() {
      for (const pair of pairs) {
        hold(pair, true);
        pair.toUpstream = [];
        pair.toClient = [];
      }
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
