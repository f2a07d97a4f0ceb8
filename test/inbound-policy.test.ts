/**
 * A partner key's rate-limit policy changed while the gateway runs: a keygate process
 * (`serve --roles inbound`) on MariaDB and Redis enforces the new policy as soon as the change is
 * announced, on the quota the key already spent; the CLI changes policies too, and every change
 * leaves an admin_audit row.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/cli/context.ts';
import { DEFAULT_KEY_CACHE_TTL_MS } from '../src/inbound/key-cache.ts';
import { createMemoryRateLimiter, type RateLimitPolicy } from '../src/inbound/ratelimit/index.ts';
import { updatePartnerKeyPolicy } from '../src/services/partner-keys.ts';
import { runKeygateInProcess } from './helpers/cli.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import {
  createTestKey,
  createTestRoute,
  createTestTenant,
  type KeygateChild,
  type PartnerKeyCredentials,
  send,
  startInboundChild,
  waitFor,
} from './helpers/inbound.ts';
import { json, startUpstream, type TestUpstream } from './helpers/upstream.ts';

let admin: TestGateway;
let upstream: TestUpstream;
let tenantId: string;
let node: KeygateChild;
let spoolDir: string;

beforeAll(async () => {
  // No listener: this process changes keys as an operator would; the gateway is another process.
  admin = await startTestGateway({ dialect: 'mysql', redis: true, roles: [] });
  upstream = await startUpstream((req, res) => json(res, 200, { url: req.url }));
  tenantId = await createTestTenant(admin.services.ctx, 'policy');
  await createTestRoute(admin.services.ctx, tenantId, '/api', upstream.url);
  spoolDir = mkdtempSync(path.join(os.tmpdir(), 'keygate-spool-'));
  node = await startInboundChild({
    DATABASE_URL: admin.env.DATABASE_URL!,
    REDIS_URL: admin.env.REDIS_URL!,
    // Shared with this process: the local master key that sealed the partner secrets.
    KEYGATE_DATA_DIR: admin.env.KEYGATE_DATA_DIR!,
    KEYGATE_AUDIT_SPOOL_DIR: spoolDir,
    KEYGATE_MIGRATE_ON_START: 'false',
  });
}, 120_000);

afterAll(async () => {
  const code = await node?.stop();
  await admin?.close();
  await upstream?.close();
  if (spoolDir) rmSync(spoolDir, { recursive: true, force: true });
  expect(code).toBe(0);
});

/** One request an hour: nothing refills while a test runs, so the burst is the whole story. */
const hourly = (algorithm: RateLimitPolicy['algorithm'], burst: number): RateLimitPolicy => ({
  algorithm,
  rate: 1,
  periodSeconds: 3600,
  burst,
  onRedisDown: 'fail-closed',
});

/** What the reference model admits of `count` requests under `after`, once `spent` passed under `before`. */
async function admittedAfterChange(
  before: RateLimitPolicy,
  after: RateLimitPolicy,
  spent: number,
  count: number,
): Promise<number> {
  const limiter = createMemoryRateLimiter({ clockUs: () => 1_000_000_000 });
  for (let i = 0; i < spent; i++) expect((await limiter.decide('model', before)).allowed).toBe(true);
  let admitted = 0;
  for (let i = 0; i < count; i++) if ((await limiter.decide('model', after)).allowed) admitted++;
  return admitted;
}

/**
 * Waits until the node answers with the burst `q`. It asks with a wrong signature: that answer
 * carries the rate-limit headers but spends nothing, so the quota under test stays as it was.
 */
async function waitForBurst(key: PartnerKeyCredentials, q: number): Promise<void> {
  await waitFor(
    async () => {
      const probe = await send(node.url, '/api/probe', { key, sign: { secret: 'wrong' } });
      return String(probe.headers['ratelimit-policy']).startsWith(`"default";q=${q};`);
    },
    DEFAULT_KEY_CACHE_TTL_MS,
    `the node to apply burst ${q}`,
  );
}

async function statuses(key: PartnerKeyCredentials, count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push((await send(node.url, '/api/items', { key })).status);
  return out;
}

describe('a policy change on a running gateway', () => {
  for (const algorithm of ['token-bucket', 'gcra'] as const) {
    it(`${algorithm}: a lowered burst is enforced at once, on the quota already spent`, async () => {
      const before = hourly(algorithm, 10);
      const after = hourly(algorithm, 4);
      const key = await createTestKey(admin.services.ctx, tenantId, before);
      // The node loads the key with the first request, so its cached copy is younger than this.
      const loadedBy = Date.now();
      expect(await statuses(key, 3)).toEqual([200, 200, 200]);

      const view = await updatePartnerKeyPolicy(admin.services.ctx, CLI_ACTOR, {
        tenant: tenantId,
        keyId: key.keyId,
        burst: 4,
      });
      expect(view.policy).toEqual(after);
      await waitForBurst(key, 4);
      // The cached copy had not expired: the announcement brought the change, not the cache TTL.
      expect(Date.now() - loadedBy).toBeLessThan(DEFAULT_KEY_CACHE_TTL_MS);

      // The old policy would still admit 7. The token bucket keeps what was saved up to the new
      // burst (7 -> 4); GCRA counts what was spent against it (3 of 4).
      const expected = await admittedAfterChange(before, after, 3, 8);
      expect(expected).toBe(algorithm === 'token-bucket' ? 4 : 1);
      expect(await statuses(key, 8)).toEqual([
        ...Array<number>(expected).fill(200),
        ...Array<number>(8 - expected).fill(429),
      ]);
    });
  }

  it('a switched algorithm keeps its own state: a fresh quota, and the old one still spent on switching back', async () => {
    const key = await createTestKey(admin.services.ctx, tenantId, hourly('token-bucket', 3));
    expect(await statuses(key, 4)).toEqual([200, 200, 200, 429]);

    const change = { tenant: tenantId, keyId: key.keyId };
    await updatePartnerKeyPolicy(admin.services.ctx, CLI_ACTOR, { ...change, algorithm: 'gcra', burst: 2 });
    await waitForBurst(key, 2);
    expect(await statuses(key, 3)).toEqual([200, 200, 429]);

    await updatePartnerKeyPolicy(admin.services.ctx, CLI_ACTOR, {
      ...change,
      algorithm: 'token-bucket',
      burst: 3,
    });
    await waitForBurst(key, 3);
    expect(await statuses(key, 1)).toEqual([429]);

    const rows = await admin.database.db
      .selectFrom('admin_audit')
      .selectAll()
      .where('target_id', '=', key.keyId)
      .where('action', '=', 'partner-key.set-policy')
      .orderBy('id')
      .execute();
    expect(rows.map((r) => JSON.parse(r.after_state!).policy.algorithm)).toEqual(['gcra', 'token-bucket']);
    expect(JSON.parse(rows[0]!.before_state!).policy).toEqual(hourly('token-bucket', 3));
  });
});

describe('keygate partner-key set-policy', () => {
  const cli = (...argv: string[]) => runKeygateInProcess(argv, admin.env);

  it('changes the named parts of the policy, keeps the rest, and the node applies it', async () => {
    const key = await createTestKey(admin.services.ctx, tenantId, {
      algorithm: 'gcra',
      rate: 5,
      burst: 10,
      onRedisDown: 'fail-closed',
    });
    expect((await send(node.url, '/api/items', { key })).headers['ratelimit-policy']).toBe(
      '"default";q=10;w=2',
    );
    const changed = await cli(
      'partner-key',
      'set-policy',
      '--tenant',
      tenantId,
      key.keyId,
      '--rate',
      '600/m',
      '--burst',
      '7',
      '--json',
    );
    expect(changed.code, changed.stderr).toBe(0);
    expect(JSON.parse(changed.stdout)).toMatchObject({
      keyId: key.keyId,
      policy: { algorithm: 'gcra', rate: 600, periodSeconds: 60, burst: 7, onRedisDown: 'fail-closed' },
    });
    await waitForBurst(key, 7);

    const human = await cli(
      'partner-key',
      'set-policy',
      '--tenant',
      tenantId,
      key.keyId,
      '--on-redis-down',
      'local',
    );
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toBe(`partner key ${key.keyId}: gcra 600/60s burst 7, local when Redis is down\n`);
  });

  it('explains bad input with a non-zero exit', async () => {
    const key = await createTestKey(admin.services.ctx, tenantId);
    const nothing = await cli('partner-key', 'set-policy', '--tenant', tenantId, key.keyId);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain('give at least one of');
    // Not of the option's form: a usage error (2). Of the form but refused: the service's (1).
    const bad: Array<[string[], number, string]> = [
      [['--burst', '0'], 1, 'KG_VALIDATION_FAILED'],
      [['--algorithm', 'leaky'], 2, '--algorithm must be one of token-bucket, gcra'],
      [['--rate', 'fast'], 2, '--rate "fast" must look like 10/s'],
      [['--rate', '0/s'], 1, 'KG_VALIDATION_FAILED'],
      [['--rate', '1/d', '--burst', '100000'], 1, 'KG_VALIDATION_FAILED'],
    ];
    for (const [options, exit, message] of bad) {
      const r = await cli('partner-key', 'set-policy', '--tenant', tenantId, key.keyId, ...options);
      expect({ options, code: r.code }).toEqual({ options, code: exit });
      expect(r.stderr).toContain(message);
    }
    const unknown = await cli(
      'partner-key',
      'set-policy',
      '--tenant',
      tenantId,
      'pk_01m83h0j753y134z6g9mnermhd',
      '--burst',
      '5',
    );
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('KG_NOT_FOUND');
    const help = await cli('partner-key', 'set-policy', '--help');
    expect(help.stdout).toContain('--on-redis-down');
  });
});
