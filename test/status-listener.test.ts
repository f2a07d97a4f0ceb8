/**
 * The status listener (KEYGATE_STATUS_PORT) of a process that runs only the inbound listener: its
 * own metrics, readiness that follows the database, and the drain before a graceful stop.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, MYSQL_ADMIN_URL, type TestDatabase } from './helpers/db.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { createTestKey, createTestRoute, createTestTenant, send } from './helpers/inbound.ts';
import { hostAndPort, startTcpProxy, type TcpProxy, viaProxy } from './helpers/tcp-proxy.ts';
import { json, startUpstream, type TestUpstream } from './helpers/upstream.ts';

describe('status listener of an inbound-only process', () => {
  let database: TestDatabase;
  let dbProxy: TcpProxy;
  let upstream: TestUpstream;
  let gw: TestGateway;
  let statusUrl: string;

  beforeAll(async () => {
    database = await createTestDatabase('mysql');
    dbProxy = await startTcpProxy(hostAndPort(MYSQL_ADMIN_URL, 3306));
    upstream = await startUpstream((_req, res) => json(res, 200, { ok: true }));
    gw = await startTestGateway({
      database,
      roles: ['inbound'],
      env: {
        DATABASE_URL: viaProxy(database.databaseUrl!, dbProxy),
        KEYGATE_STATUS_PORT: '0',
        KEYGATE_SHUTDOWN_DELAY_MS: '400',
      },
    });
    statusUrl = `http://127.0.0.1:${gw.server.ports.status}`;
  });
  afterAll(async () => {
    dbProxy?.restore();
    await gw?.close();
    await dbProxy?.close();
    await upstream?.close();
    await database?.drop();
  });

  it("exports this process's inbound metrics, which no admin listener here could", async () => {
    expect(gw.adminUrl).toBe('');
    const tenantId = await createTestTenant(gw.services.ctx, 'status');
    const key = await createTestKey(gw.services.ctx, tenantId);
    await createTestRoute(gw.services.ctx, tenantId, '/svc', upstream.url);
    expect((await send(gw.inboundUrl, '/svc/a', { key })).status).toBe(200);

    const metrics = await fetch(`${statusUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await metrics.text();
    expect(text).toMatch(
      /keygate_http_requests_total\{listener="inbound",provider="\/svc",status="200"\} 1\n/,
    );
    expect(text).toMatch(/^process_cpu_seconds_total /m);
    expect(text).toMatch(/keygate_inbound_calls_total\{outcome="ok"\} 1\n/);
    expect(text).toMatch(/^keygate_audit_queued_rows \d+$/m);
    expect(text).toMatch(/keygate_audit_rows_total\{result="spooled"\} 0\n/);
    expect(text).toMatch(/^keygate_audit_spool_bytes 0$/m);

    let written = '';
    for (let i = 0; i < 50 && written !== '1'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const again = await (await fetch(`${statusUrl}/metrics`)).text();
      written = /keygate_audit_rows_total\{result="written"\} (\d+)/.exec(again)?.[1] ?? '';
    }
    expect(written).toBe('1');

    // The partner-facing listener does not serve them.
    expect((await send(gw.inboundUrl, '/metrics')).status).toBe(401);
    const other = await fetch(`${statusUrl}/admin/v1/tenants`);
    expect(other.status).toBe(404);
    expect(other.headers.get('keygate-error')).toBe('KG_NOT_FOUND');
  });

  it('is ready while the database answers, and says which dependency is down when it does not', async () => {
    const up = await fetch(`${statusUrl}/readyz`);
    expect(up.status).toBe(200);
    expect(await up.json()).toEqual({ status: 'ready', checks: { database: true } });

    dbProxy.cut();
    try {
      // Results are cached for a second: wait for a fresh probe.
      let down: Response | undefined;
      for (let i = 0; i < 50 && down?.status !== 503; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        down = await fetch(`${statusUrl}/readyz`);
      }
      expect(down!.status).toBe(503);
      expect(await down!.json()).toEqual({ status: 'not ready', checks: { database: false } });
      expect((await fetch(`${statusUrl}/healthz`)).status).toBe(200);
    } finally {
      dbProxy.restore();
    }
  });

  it('answers /readyz with 503 during KEYGATE_SHUTDOWN_DELAY_MS, before the listeners close', async () => {
    const closing = gw.close();
    const draining = await fetch(`${statusUrl}/readyz`);
    expect(draining.status).toBe(503);
    expect(((await draining.json()) as { status: string }).status).toBe('shutting down');
    // Requests are still served while load balancers catch up.
    expect((await fetch(`${gw.inboundUrl}/healthz`)).status).toBe(200);
    await closing;
    await expect(fetch(`${statusUrl}/healthz`)).rejects.toThrow();
  });
});
