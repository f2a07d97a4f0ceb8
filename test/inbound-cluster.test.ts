/**
 * Two keygate processes (`serve --roles inbound`) sharing MariaDB and Redis behave as one gateway:
 * a key's quota is shared exactly, and neither process logs a partner secret, even at debug level.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/cli/context.ts';
import { createMemoryRateLimiter, type RateLimitPolicy } from '../src/inbound/ratelimit/index.ts';
import { revokePartnerKey, rotatePartnerKey } from '../src/services/partner-keys.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import {
  createTestKey,
  createTestRoute,
  createTestTenant,
  type KeygateChild,
  send,
  startInboundChild,
  waitFor,
} from './helpers/inbound.ts';
import { json, startUpstream, type TestUpstream } from './helpers/upstream.ts';

let admin: TestGateway;
let upstream: TestUpstream;
let tenantId: string;
const nodes: KeygateChild[] = [];
const spoolDirs: string[] = [];
const secrets: string[] = [];

beforeAll(async () => {
  // No listener: this process only sets up tenants, keys and routes, as an operator would.
  admin = await startTestGateway({ dialect: 'mysql', redis: true, roles: [] });
  upstream = await startUpstream((req, res) => json(res, 200, { url: req.url }));
  tenantId = await createTestTenant(admin.services.ctx, 'cluster');
  await createTestRoute(admin.services.ctx, tenantId, '/api', upstream.url);
  await Promise.all(
    [0, 1].map(async () => {
      const spoolDir = mkdtempSync(path.join(os.tmpdir(), 'keygate-spool-'));
      spoolDirs.push(spoolDir);
      const node = await startInboundChild({
        DATABASE_URL: admin.env.DATABASE_URL!,
        REDIS_URL: admin.env.REDIS_URL!,
        // Shared with this process: the local master key that sealed the partner secrets.
        KEYGATE_DATA_DIR: admin.env.KEYGATE_DATA_DIR!,
        KEYGATE_AUDIT_SPOOL_DIR: spoolDir,
        KEYGATE_MIGRATE_ON_START: 'false',
        KEYGATE_LOG_LEVEL: 'debug',
        // This file checks exactness, not outages: a loaded CI machine must not make a slow Redis
        // answer look like an outage (the keys here are fail-closed).
        KEYGATE_REDIS_TIMEOUT_MS: '5000',
      });
      nodes.push(node);
    }),
  );
}, 120_000);

afterAll(async () => {
  const codes = await Promise.all(nodes.map((n) => n.stop()));
  await admin?.close();
  await upstream?.close();
  for (const dir of spoolDirs) rmSync(dir, { recursive: true, force: true });
  expect(codes).toEqual(nodes.map(() => 0));
});

/** What the algorithm admits for `count` requests arriving at one instant, from the reference model. */
async function admittedAtOnce(policy: RateLimitPolicy, count: number): Promise<number> {
  const limiter = createMemoryRateLimiter({ clockUs: () => 1_000_000_000 });
  let admitted = 0;
  for (let i = 0; i < count; i++) if ((await limiter.decide('model', policy)).allowed) admitted++;
  return admitted;
}

describe('two keygate processes on one Redis', () => {
  for (const algorithm of ['token-bucket', 'gcra'] as const) {
    it(`${algorithm}: 200 concurrent requests over both admit exactly what the algorithm allows`, async () => {
      // One request an hour: nothing refills while the test runs, so the burst is the whole story.
      const policy: RateLimitPolicy = {
        algorithm,
        rate: 1,
        periodSeconds: 3600,
        burst: 50,
        onRedisDown: 'fail-closed',
      };
      const key = await createTestKey(admin.services.ctx, tenantId, policy);
      secrets.push(key.secret);
      const expected = await admittedAtOnce(policy, 200);
      expect(expected).toBe(50);

      const answers = await Promise.all(
        Array.from({ length: 200 }, (_, i) => send(nodes[i % 2]!.url, `/api/items?i=${i}`, { key })),
      );
      const statuses = answers.map((a) => a.status);
      expect(statuses.filter((s) => s === 200).length).toBe(expected);
      expect(statuses.filter((s) => s === 429).length).toBe(200 - expected);

      await waitFor(
        async () => {
          const rows = await admin.database.db
            .selectFrom('audit_log')
            .select(['outcome'])
            .where('key_id', '=', key.keyId)
            .execute();
          return rows.length === 200 && rows.filter((r) => r.outcome === 'ok').length === expected;
        },
        30_000,
        'audit rows from both processes',
      );
    });
  }

  it('admin changes reach both processes, and no partner secret appears in their logs', async () => {
    // The calls made here, by node, to check below that each left its log line.
    const calls = nodes.map(() => [] as string[]);
    const sendTo = async (i: number, pathAndQuery: string, opts: Parameters<typeof send>[2]) => {
      const res = await send(nodes[i]!.url, pathAndQuery, opts);
      calls[i]!.push(String(res.headers['x-request-id']));
      return res;
    };
    const key = await createTestKey(admin.services.ctx, tenantId);
    secrets.push(key.secret);
    for (const i of nodes.keys()) expect((await sendTo(i, '/api/a', { key })).status).toBe(200);
    const rotated = await rotatePartnerKey(admin.services.ctx, CLI_ACTOR, {
      tenant: tenantId,
      keyId: key.keyId,
    });
    secrets.push(rotated.secret);
    for (const i of nodes.keys()) {
      await waitFor(
        async () =>
          (await sendTo(i, '/api/b', { key: { keyId: key.keyId, secret: rotated.secret } })).status === 200,
        8000,
        'rotation on every node',
      );
      expect((await sendTo(i, '/api/c', { key, sign: { secret: 'wrong' } })).status).toBe(401);
      expect((await sendTo(i, '/nowhere', { key })).status).toBe(404);
    }
    await revokePartnerKey(admin.services.ctx, CLI_ACTOR, { tenant: tenantId, keyId: key.keyId });
    for (const i of nodes.keys()) {
      await waitFor(
        async () => (await sendTo(i, '/api/d', { key })).headers['keygate-error'] === 'KG_KEY_REVOKED',
        8000,
        'revocation on every node',
      );
    }

    // Debug logging was on: every call of this test left a line on its node, so the check below
    // looked at real traffic (the lines come through a pipe: wait for the last ones).
    const unlogged = () =>
      nodes.flatMap((node, i) => {
        const logged = node.output.filter((l) => l.includes('"msg":"inbound call"')).join('\n');
        return calls[i]!.filter((id) => !logged.includes(`"requestId":"${id}"`));
      });
    await waitFor(async () => unlogged().length === 0, 10_000, 'a log line for every call');
    expect(calls.every((ids) => ids.length >= 5)).toBe(true);

    const logs = nodes.flatMap((n) => n.output);
    for (const secret of secrets) {
      for (const line of logs) expect(line).not.toContain(secret);
    }
  });
});
