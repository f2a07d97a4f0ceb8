/**
 * The inbound gateway when its shared dependencies fail, faulted through TCP proxies (never by
 * stopping the shared servers): Redis cut (each key's onRedisDown decides), MariaDB cut during a
 * stream of signed requests, and a graceful restart in the middle of one. The audit trail must
 * hold exactly one row per request through all of it.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, MYSQL_ADMIN_URL, REDIS_TEST_URL, type TestDatabase } from './helpers/db.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import {
  createTestKey,
  createTestRoute,
  createTestTenant,
  type KeygateChild,
  type PartnerKeyCredentials,
  type SentResponse,
  send,
  startInboundChild,
  waitFor,
} from './helpers/inbound.ts';
import { captureLogLines } from './helpers/log-lines.ts';
import { hostAndPort, startTcpProxy, type TcpProxy, viaProxy } from './helpers/tcp-proxy.ts';
import { json, startUpstream, type TestUpstream } from './helpers/upstream.ts';

let upstream: TestUpstream;

beforeAll(async () => {
  upstream = await startUpstream((req, res) => json(res, 200, { url: req.url }));
});
afterAll(async () => {
  await upstream?.close();
});

/** The host and port a dependency URL points at, for a proxy in front of it. */
async function auditedIds(db: TestDatabase, keyId: string): Promise<string[]> {
  const rows = await db.db.selectFrom('audit_log').select('request_id').where('key_id', '=', keyId).execute();
  return rows.map((r) => r.request_id);
}

const SOCKET_REFUSAL_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);

/** Whether `err` (or its cause) is the socket-level failure of a listener that is closed or closing. */
function isSocketRefusal(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== undefined && SOCKET_REFUSAL_CODES.has(code)) return true;
  }
  return false;
}

/** Sends `count` signed requests, `concurrency` at a time; `onProgress` sees each answer as it comes. */
async function stream(
  url: string,
  key: PartnerKeyCredentials,
  count: number,
  concurrency: number,
  onProgress: (answered: number) => void = () => {},
): Promise<SentResponse[]> {
  const answers: SentResponse[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        answers.push(await send(url, `/api/s/${i}`, { key, method: 'POST', body: `{"i":${i}}` }));
        onProgress(answers.length);
      }
    }),
  );
  return answers;
}

describe('Redis cut: the key decides', () => {
  let redisProxy: TcpProxy;
  let gw: TestGateway;
  let tenantId: string;

  beforeAll(async () => {
    redisProxy = await startTcpProxy(hostAndPort(REDIS_TEST_URL, 6379));
    gw = await startTestGateway({
      dialect: 'mysql',
      redis: true,
      roles: ['inbound'],
      env: { REDIS_URL: redisProxy.url('redis') },
    });
    tenantId = await createTestTenant(gw.services.ctx, 'redis');
    await createTestRoute(gw.services.ctx, tenantId, '/api', upstream.url);
  });
  afterAll(async () => {
    redisProxy.restore();
    await gw?.close();
    await redisProxy?.close();
  });

  it('fail-open admits, fail-closed refuses with 503, local limits in process; all recover', async () => {
    const policy = { rate: 1, periodSeconds: 3600, burst: 3 };
    const open = await createTestKey(gw.services.ctx, tenantId, { ...policy, onRedisDown: 'fail-open' });
    const closed = await createTestKey(gw.services.ctx, tenantId, { ...policy, onRedisDown: 'fail-closed' });
    const local = await createTestKey(gw.services.ctx, tenantId, { ...policy, onRedisDown: 'local' });
    // One request each through Redis: every key has 2 of 3 left there.
    for (const key of [open, closed, local]) {
      const res = await send(gw.inboundUrl, '/api/x', { key });
      expect(res.status, res.text).toBe(200);
      expect(res.headers.ratelimit).toMatch(/^"default";r=2;/);
    }

    redisProxy.cut();

    const openAnswers = [];
    for (let i = 0; i < 5; i++) openAnswers.push(await send(gw.inboundUrl, '/api/x', { key: open }));
    expect(openAnswers.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(openAnswers[4]!.headers.ratelimit).toMatch(/^"default";r=3;/);

    const refused = await send(gw.inboundUrl, '/api/x', { key: closed });
    expect(refused.status).toBe(503);
    expect(refused.headers['keygate-error']).toBe('KG_RATE_LIMITER_UNAVAILABLE');

    const localStatuses = [];
    for (let i = 0; i < 4; i++)
      localStatuses.push((await send(gw.inboundUrl, '/api/x', { key: local })).status);
    expect(localStatuses).toEqual([200, 200, 200, 429]);

    // Replay protection goes on in process while Redis is away...
    const nonce = `outage-nonce-${Date.now()}`;
    expect((await send(gw.inboundUrl, '/api/x', { key: open, sign: { nonce } })).status).toBe(200);
    expect(
      (await send(gw.inboundUrl, '/api/x', { key: open, sign: { nonce } })).headers['keygate-error'],
    ).toBe('KG_NONCE_REPLAYED');

    redisProxy.restore();
    await waitFor(
      async () => (await send(gw.inboundUrl, '/api/x', { key: closed })).status === 200,
      15_000,
      'Redis back',
    );
    // ...and a nonce first seen during the outage stays used once Redis answers again.
    expect(
      (await send(gw.inboundUrl, '/api/x', { key: open, sign: { nonce } })).headers['keygate-error'],
    ).toBe('KG_NONCE_REPLAYED');
    // Back on Redis, `local` continues from the shared state (2 left), not from the in-process bucket.
    const after = [];
    for (let i = 0; i < 3; i++) after.push((await send(gw.inboundUrl, '/api/x', { key: local })).status);
    expect(after).toEqual([200, 200, 429]);

    await waitFor(async () => {
      const row = await gw.database.db
        .selectFrom('audit_log')
        .select('outcome')
        .where('request_id', '=', String(refused.headers['x-request-id']))
        .executeTakeFirst();
      return row?.outcome === 'error';
    });
  });
});

describe('MariaDB cut during 1,000 signed requests', () => {
  let dbProxy: TcpProxy;
  let database: TestDatabase;
  let gw: TestGateway;
  let spoolDir: string;

  beforeAll(async () => {
    database = await createTestDatabase('mysql');
    dbProxy = await startTcpProxy(hostAndPort(MYSQL_ADMIN_URL, 3306));
    spoolDir = mkdtempSync(path.join(os.tmpdir(), 'keygate-spool-'));
    gw = await startTestGateway({
      database,
      redis: true,
      roles: ['inbound'],
      env: { DATABASE_URL: viaProxy(database.databaseUrl!, dbProxy), KEYGATE_AUDIT_SPOOL_DIR: spoolDir },
    });
  });
  afterAll(async () => {
    dbProxy.restore();
    await gw?.close();
    await dbProxy?.close();
    await database?.drop();
    rmSync(spoolDir, { recursive: true, force: true });
  });

  it('answers every request from cached keys and routes, and writes exactly one audit row per request', async () => {
    const tenantId = await createTestTenant(gw.services.ctx, 'dbcut');
    const key = await createTestKey(gw.services.ctx, tenantId, { rate: 100_000, burst: 100_000 });
    await createTestRoute(gw.services.ctx, tenantId, '/api', upstream.url);
    const warm = await send(gw.inboundUrl, '/api/warm', { key });
    expect(warm.status).toBe(200);

    let spooledDuringOutage: string[] = [];
    const answers = await stream(gw.inboundUrl, key, 1000, 20, (answered) => {
      if (answered === 200) dbProxy.cut();
      if (answered === 750) {
        spooledDuringOutage = readdirSync(spoolDir);
        dbProxy.restore();
      }
    });
    expect(answers.map((a) => a.status).filter((s) => s !== 200)).toEqual([]);
    expect(spooledDuringOutage.some((f) => f.startsWith('audit-spool'))).toBe(true);

    const sent = new Set([warm, ...answers].map((a) => String(a.headers['x-request-id'])));
    expect(sent.size).toBe(1001);
    let stored: string[] = [];
    await waitFor(
      async () => {
        stored = await auditedIds(database, key.keyId);
        return stored.length >= 1001;
      },
      30_000,
      'the spool to be replayed',
    );
    await new Promise((r) => setTimeout(r, 500));
    stored = await auditedIds(database, key.keyId);
    expect(stored.length).toBe(1001);
    expect(new Set(stored)).toEqual(sent);
  });
});

describe('audit spool at its size limit while MariaDB is cut', () => {
  let dbProxy: TcpProxy;
  let database: TestDatabase;
  let gw: TestGateway;
  const log = captureLogLines();

  beforeAll(async () => {
    database = await createTestDatabase('mysql');
    dbProxy = await startTcpProxy(hostAndPort(MYSQL_ADMIN_URL, 3306));
    gw = await startTestGateway({
      database,
      roles: ['inbound'],
      logTo: log.sink,
      env: {
        DATABASE_URL: viaProxy(database.databaseUrl!, dbProxy),
        KEYGATE_AUDIT_SPOOL_MAX_BYTES: '8192',
      },
    });
  });
  afterAll(async () => {
    dbProxy.restore();
    await gw?.close();
    await dbProxy?.close();
    await database?.drop();
  });

  async function shedRows(): Promise<number> {
    const text = await gw.services.metrics.registry.metrics();
    return Number(/^keygate_audit_rows_total\{result="shed"\} (\d+)$/m.exec(text)?.[1] ?? 0);
  }

  async function spoolBytes(): Promise<number> {
    const text = await gw.services.metrics.registry.metrics();
    return Number(/^keygate_audit_spool_bytes (\d+)$/m.exec(text)?.[1]);
  }

  it('refuses calls with 503 KG_AUDIT_UNAVAILABLE without forwarding them, and forwards again once the spool is replayed', async () => {
    const tenantId = await createTestTenant(gw.services.ctx, 'spoolfull');
    const key = await createTestKey(gw.services.ctx, tenantId, { rate: 100_000, burst: 100_000 });
    await createTestRoute(gw.services.ctx, tenantId, '/api', upstream.url);
    const answers: SentResponse[] = [await send(gw.inboundUrl, '/api/warm', { key })];
    expect(answers[0]!.status).toBe(200);

    // Every row now goes to the spool: calls pass until it holds 8 KiB.
    dbProxy.cut();
    let fill = 0;
    await waitFor(
      async () => {
        const res = await send(gw.inboundUrl, `/api/fill/${fill++}`, {
          key,
          method: 'POST',
          body: '{"a":1}',
        });
        answers.push(res);
        if (res.status === 503) return true;
        expect(res.status, res.text).toBe(200);
        return false;
      },
      20_000,
      'the spool to reach its limit',
    );
    expect(await spoolBytes()).toBeGreaterThanOrEqual(8192);

    const refused = await send(gw.inboundUrl, '/api/refused', { key, method: 'POST', body: '{"a":2}' });
    answers.push(refused);
    expect(refused.status).toBe(503);
    expect(refused.headers['keygate-error']).toBe('KG_AUDIT_UNAVAILABLE');
    expect(refused.headers['content-type']).toBe('application/problem+json');
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.json()).toMatchObject({
      code: 'KG_AUDIT_UNAVAILABLE',
      status: 503,
      requestId: refused.headers['x-request-id'],
    });
    expect(upstream.received.some((r) => r.url === '/api/refused')).toBe(false);
    expect(
      log.lines.some((l) => l.level === 50 && String(l.msg).startsWith('audit spool at its size limit')),
    ).toBe(true);

    // Partners retry: the rows of the refused calls fill the spool up to twice its limit, and past
    // that they are counted as shed instead of kept, so the disk stops filling.
    const overflow: SentResponse[] = [];
    await waitFor(
      async () => {
        const res = await send(gw.inboundUrl, `/api/retry/${overflow.length}`, { key });
        overflow.push(res);
        expect(res.status).toBe(503);
        return (await shedRows()) > 0;
      },
      20_000,
      'rows of refused calls to be shed',
    );
    const bytesWhenShedding = await spoolBytes();
    expect(bytesWhenShedding).toBeGreaterThanOrEqual(2 * 8192);
    for (let i = 0; i < 5; i++) overflow.push(await send(gw.inboundUrl, `/api/retry/more-${i}`, { key }));
    expect(await spoolBytes()).toBe(bytesWhenShedding);
    const shed = await shedRows();
    expect(shed).toBeGreaterThanOrEqual(6);
    expect(upstream.received.some((r) => r.url.startsWith('/api/retry/'))).toBe(false);

    // The database is back: the replay drains the spool and calls are forwarded again.
    dbProxy.restore();
    let after = 0;
    await waitFor(
      async () => {
        const res = await send(gw.inboundUrl, `/api/after/${after++}`, { key });
        answers.push(res);
        return res.status === 200;
      },
      20_000,
      'calls to be forwarded again',
    );
    expect(upstream.received.some((r) => r.url === `/api/after/${after - 1}`)).toBe(true);
    await waitFor(async () => (await spoolBytes()) === 0, 20_000, 'the spool to be empty');

    // Refused calls were audited too: one row per answer, the 503s included, except the shed ones
    // (the retries above, and any call refused after the restore before the replay caught up).
    const all = [...answers, ...overflow];
    const sent = new Set(all.map((a) => String(a.headers['x-request-id'])));
    expect(sent.size).toBe(all.length);
    const totalShed = await shedRows();
    expect(totalShed).toBeGreaterThanOrEqual(shed);
    await waitFor(
      async () => (await auditedIds(database, key.keyId)).length >= sent.size - totalShed,
      20_000,
      'every kept row in audit_log',
    );
    const stored = await auditedIds(database, key.keyId);
    expect(stored.length).toBe(sent.size - totalShed);
    expect(stored.every((id) => sent.has(id))).toBe(true);
    // Every forwarded call has its row.
    for (const a of all.filter((a) => a.status === 200)) {
      expect(stored).toContain(String(a.headers['x-request-id']));
    }
    const row = await database.db
      .selectFrom('audit_log')
      .select(['response_status', 'outcome'])
      .where('request_id', '=', String(refused.headers['x-request-id']))
      .executeTakeFirst();
    expect(row).toEqual({ response_status: 503, outcome: 'error' });
  }, 60_000);
});

describe('graceful restart in the middle of a stream', () => {
  let dbProxy: TcpProxy;
  let database: TestDatabase;
  let admin: TestGateway;
  let spoolDir: string;
  const children: KeygateChild[] = [];

  beforeAll(async () => {
    database = await createTestDatabase('mysql');
    dbProxy = await startTcpProxy(hostAndPort(MYSQL_ADMIN_URL, 3306));
    spoolDir = mkdtempSync(path.join(os.tmpdir(), 'keygate-spool-'));
    admin = await startTestGateway({ database, redis: true, roles: [] });
  });
  afterAll(async () => {
    dbProxy.restore();
    await Promise.all(children.map((c) => c.stop()));
    await admin?.close();
    await dbProxy?.close();
    await database?.drop();
    rmSync(spoolDir, { recursive: true, force: true });
  });

  it('SIGTERM flushes to the spool, the next process replays it: rows == requests answered', async () => {
    const tenantId = await createTestTenant(admin.services.ctx, 'restart');
    const key = await createTestKey(admin.services.ctx, tenantId, { rate: 100_000, burst: 100_000 });
    await createTestRoute(admin.services.ctx, tenantId, '/api', upstream.url);
    const env = {
      DATABASE_URL: viaProxy(database.databaseUrl!, dbProxy),
      REDIS_URL: admin.env.REDIS_URL!,
      KEYGATE_DATA_DIR: admin.env.KEYGATE_DATA_DIR!,
      KEYGATE_AUDIT_SPOOL_DIR: spoolDir,
      KEYGATE_MIGRATE_ON_START: 'false',
      KEYGATE_LOG_LEVEL: 'info', // the helper reads the port from the "listening" line
    };

    const first = await startInboundChild(env);
    children.push(first);
    const answered: string[] = [];
    let refused = 0;
    const warm = await send(first.url, '/api/warm', { key });
    expect(warm.status).toBe(200);
    answered.push(String(warm.headers['x-request-id']));
    // Rows for these requests can only reach the spool: the database is cut before they arrive.
    dbProxy.cut();
    let stopping: Promise<number | null> | undefined;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (refused < 20) {
          let res: SentResponse;
          try {
            res = await send(first.url, '/api/r', { key, method: 'POST', body: '{"x":1}' });
          } catch (err) {
            // Only a closed listener counts as a refusal (never received, never audited); any
            // other failure is the test's to report.
            if (!isSocketRefusal(err)) throw err;
            refused++;
            continue;
          }
          expect(res.status, res.text).toBe(200);
          answered.push(String(res.headers['x-request-id']));
          if (answered.length === 300) stopping = first.stop('SIGTERM');
        }
      }),
    );
    expect(await stopping).toBe(0);
    expect(readdirSync(spoolDir).some((f) => f.startsWith('audit-spool'))).toBe(true);

    dbProxy.restore();
    const second = await startInboundChild(env);
    children.push(second);
    for (let i = 0; i < 50; i++) {
      const res = await send(second.url, '/api/after', { key });
      expect(res.status).toBe(200);
      answered.push(String(res.headers['x-request-id']));
    }
    const total = answered.length;
    expect(total).toBeGreaterThan(350);
    await waitFor(
      async () => (await auditedIds(database, key.keyId)).length >= total,
      30_000,
      'replay by the new process',
    );
    expect(await second.stop('SIGTERM')).toBe(0);
    const stored = await auditedIds(database, key.keyId);
    expect(stored.length).toBe(total);
    expect(new Set(stored)).toEqual(new Set(answered));
  }, 90_000);
});

describe('a second SIGTERM during a graceful stop', () => {
  let database: TestDatabase;
  let admin: TestGateway;
  let spoolDir: string;
  let held: TestUpstream;
  const waiting: Array<() => void> = [];
  const children: KeygateChild[] = [];

  beforeAll(async () => {
    database = await createTestDatabase('mysql');
    spoolDir = mkdtempSync(path.join(os.tmpdir(), 'keygate-spool-'));
    admin = await startTestGateway({ database, roles: [] });
    // An internal service that answers only when the test says so.
    held = await startUpstream((req, res) => {
      waiting.push(() => json(res, 200, { url: req.url }));
    });
  });
  afterAll(async () => {
    for (const answer of waiting.splice(0)) answer();
    await Promise.all(children.map((c) => c.stop('SIGKILL')));
    await held?.close();
    await admin?.close();
    await database?.drop();
    rmSync(spoolDir, { recursive: true, force: true });
  });

  it('closes connections at once, yet keeps every audit row (before, it killed the process)', async () => {
    const tenantId = await createTestTenant(admin.services.ctx, 'twice');
    const key = await createTestKey(admin.services.ctx, tenantId);
    await createTestRoute(admin.services.ctx, tenantId, '/slow', held.url, { timeoutMs: 60_000 });
    const child = await startInboundChild({
      DATABASE_URL: database.databaseUrl!,
      KEYGATE_DATA_DIR: admin.env.KEYGATE_DATA_DIR!,
      KEYGATE_AUDIT_SPOOL_DIR: spoolDir,
      KEYGATE_MIGRATE_ON_START: 'false',
      KEYGATE_SHUTDOWN_GRACE_MS: '60000',
    });
    children.push(child);

    const calls = Array.from({ length: 5 }, (_, i) =>
      send(child.url, `/slow/${i}`, { key, timeoutMs: 60_000 }).then(
        (res) => res.status,
        () => 'cut' as const,
      ),
    );
    await waitFor(async () => waiting.length === 5, 10_000, 'five calls at the service');

    process.kill(child.pid, 'SIGTERM');
    await waitFor(async () => child.output.some((l) => l.includes('shutting down')), 10_000, 'the stop');
    // A copy of the first signal within a second is taken for the same one (see runUntilSignal).
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    // The grace period (60 s) would wait for the five calls; a second signal cuts it short.
    process.kill(child.pid, 'SIGTERM');
    await waitFor(async () => child.output.some((l) => l.includes('signal again')), 10_000, 'the hurry');
    expect(await Promise.all(calls)).toEqual(['cut', 'cut', 'cut', 'cut', 'cut']);

    // The calls still finish inside keygate, and their rows reach the spool before it exits.
    for (const answer of waiting.splice(0)) answer();
    expect(await child.exited).toBe(0);
    const spooled = readdirSync(spoolDir)
      .filter((f) => f.startsWith('audit-spool'))
      .flatMap((f) => readFileSync(path.join(spoolDir, f), 'utf8').split('\n').filter(Boolean))
      .map((line) => JSON.parse(line) as { key_id: string; path: string });
    const stored = await database.db
      .selectFrom('audit_log')
      .select('path')
      .where('key_id', '=', key.keyId)
      .execute();
    const paths = [...spooled.filter((r) => r.key_id === key.keyId), ...stored].map((r) => r.path).sort();
    expect(paths).toEqual(['/slow/0', '/slow/1', '/slow/2', '/slow/3', '/slow/4']);
  }, 60_000);
});
