/** The one HTTP client against real upstreams on port 0: answers, deadlines, limits, failures. */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type TestUpstream } from '../test/helpers/upstream.ts';
import { isKeygateError } from './errors.ts';
import { createHttpClient, type HttpClient, type UpstreamRequest } from './http-client.ts';

let upstream: TestUpstream;
let client: HttpClient;

beforeAll(async () => {
  upstream = await startUpstream((req, res) => {
    if (req.url.startsWith('/hang')) return; // never answers
    if (req.url.startsWith('/big')) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(Buffer.alloc(64 * 1024));
      return;
    }
    if (req.url.startsWith('/chunks')) {
      res.writeHead(201, { 'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'] });
      res.write('first,');
      setTimeout(() => res.end('second'), 20);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'x-seen': req.headers['x-test'] ?? '' });
    res.end(JSON.stringify({ method: req.method, url: req.url, body: req.body.toString() }));
  });
  client = createHttpClient({ maxResponseBytes: 16 * 1024 });
});

afterAll(async () => {
  await client?.close();
  await upstream?.close();
});

const request = (over: Partial<UpstreamRequest>): UpstreamRequest => ({
  method: 'GET',
  url: `${upstream.url}/`,
  headers: {},
  body: undefined,
  timeoutMs: 2000,
  ...over,
});

async function failure(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (err) {
    if (isKeygateError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected the exchange to fail');
}

describe('http client', () => {
  it('sends method, path, query, headers and body, and returns the whole answer', async () => {
    const res = await client.send(
      request({
        method: 'POST',
        url: `${upstream.url}/orders/1?x=1&y=%2F`,
        headers: { 'x-test': 'yes', 'content-type': 'text/plain' },
        body: Buffer.from('hello'),
      }),
    );
    expect(res.status).toBe(200);
    expect(res.headers['x-seen']).toBe('yes');
    expect(JSON.parse(res.body.toString())).toEqual({
      method: 'POST',
      url: '/orders/1?x=1&y=%2F',
      body: 'hello',
    });
  });

  it('collects an answer that arrives in pieces, repeated headers as arrays', async () => {
    const res = await client.send(request({ url: `${upstream.url}/chunks` }));
    expect(res.status).toBe(201);
    expect(res.body.toString()).toBe('first,second');
    expect(res.headers['set-cookie']).toEqual(['a=1', 'b=2']);
  });

  it('sends "/" for a URL without a path', async () => {
    const res = await client.send(request({ url: upstream.url }));
    expect(JSON.parse(res.body.toString()).url).toBe('/');
  });

  it('504 when no answer comes within the deadline', async () => {
    const started = Date.now();
    const err = await failure(client.send(request({ url: `${upstream.url}/hang`, timeoutMs: 150 })));
    expect(err.code).toBe('KG_UPSTREAM_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('the deadline also covers the wait for a free connection', async () => {
    const single = createHttpClient({ connections: 1 });
    try {
      const hanging = single.send(request({ url: `${upstream.url}/hang`, timeoutMs: 1500 }));
      // Queued behind the hanging exchange on the only connection; fails at its own deadline.
      const queued = await failure(single.send(request({ timeoutMs: 150 })));
      expect(queued.code).toBe('KG_UPSTREAM_TIMEOUT');
      expect((await failure(hanging)).code).toBe('KG_UPSTREAM_TIMEOUT');
      // The connection is usable again afterwards.
      expect((await single.send(request({}))).status).toBe(200);
    } finally {
      await single.close();
    }
  });

  it('502 KG_UPSTREAM_TOO_LARGE for an answer over maxResponseBytes', async () => {
    const err = await failure(client.send(request({ url: `${upstream.url}/big` })));
    expect(err.code).toBe('KG_UPSTREAM_TOO_LARGE');
  });

  it('502 KG_UPSTREAM_UNREACHABLE for a refused connection and for a URL that is not one', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as net.AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const refused = await failure(client.send(request({ url: `http://127.0.0.1:${port}/x` })));
    expect(refused.code).toBe('KG_UPSTREAM_UNREACHABLE');
    expect(refused.message).toContain(`127.0.0.1:${port}`);
    const notAUrl = await failure(client.send(request({ url: 'not a url' })));
    expect(notAUrl.code).toBe('KG_UPSTREAM_UNREACHABLE');
  });

  it('502 KG_UPSTREAM_UNREACHABLE that says so for an answer that is not HTTP/1.1 or an unsolicited 100 Continue', async () => {
    const answers = [
      'HELLO\r\n\r\n',
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
    ];
    for (const answer of answers) {
      const server = net.createServer((socket) => {
        socket.on('error', () => {});
        socket.once('data', () => socket.write(answer));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as net.AddressInfo;
      try {
        const bad = await failure(
          client.send(
            request({ method: 'POST', url: `http://127.0.0.1:${port}/x`, body: Buffer.from('{}') }),
          ),
        );
        expect(bad.code).toBe('KG_UPSTREAM_UNREACHABLE');
        expect(bad.message).toContain(
          `127.0.0.1:${port} answered with something that is not a valid HTTP/1.1 response`,
        );
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    }
  });
});
