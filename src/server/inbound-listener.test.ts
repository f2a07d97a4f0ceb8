/**
 * The inbound listener's start-up checks (a spool directory it cannot use stops `serve`) and its
 * audit writer's own MySQL pool.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestGateway } from '../../test/helpers/gateway.ts';
import {
  createTestKey,
  createTestRoute,
  createTestTenant,
  send,
  waitFor,
} from '../../test/helpers/inbound.ts';
import { json, startUpstream } from '../../test/helpers/upstream.ts';
import { mysqlPoolOf } from '../storage/db.ts';
import { StartupError } from './startup-error.ts';

describe('inbound listener start-up', () => {
  const made: string[] = [];
  afterEach(() => {
    for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const scratch = () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'keygate-inbound-start-'));
    made.push(dir);
    return dir;
  };

  it('stops with a start-up error naming KEYGATE_AUDIT_SPOOL_DIR when the spool directory is unusable', async () => {
    const file = path.join(scratch(), 'a-file');
    writeFileSync(file, '');
    const spoolDir = path.join(file, 'spool');
    const started = startTestGateway({ roles: ['inbound'], env: { KEYGATE_AUDIT_SPOOL_DIR: spoolDir } });
    await expect(started).rejects.toThrow(StartupError);
    await expect(started).rejects.toThrow(
      `KEYGATE_AUDIT_SPOOL_DIR (${spoolDir}): cannot use it as the audit spool directory: ENOTDIR`,
    );
  });

  it('refuses to start a second inbound process on a spool directory the first one holds', async () => {
    const spoolDir = path.join(scratch(), 'spool');
    const first = await startTestGateway({ roles: ['inbound'], env: { KEYGATE_AUDIT_SPOOL_DIR: spoolDir } });
    try {
      const second = startTestGateway({ roles: ['inbound'], env: { KEYGATE_AUDIT_SPOOL_DIR: spoolDir } });
      await expect(second).rejects.toThrow(StartupError);
      await expect(second).rejects.toThrow(
        `KEYGATE_AUDIT_SPOOL_DIR (${spoolDir}): in use by keygate on host ${os.hostname()}, pid ${process.pid}`,
      );
    } finally {
      await first.close();
    }
    // A graceful stop gives the directory up at once.
    const next = await startTestGateway({ roles: ['inbound'], env: { KEYGATE_AUDIT_SPOOL_DIR: spoolDir } });
    await next.close();
  });
});

describe('inbound listener on MySQL', () => {
  it('writes audit rows through a pool of its own, so hung inserts cannot starve key and route lookups', async () => {
    const gw = await startTestGateway({ dialect: 'mysql', roles: ['inbound'] });
    const upstream = await startUpstream((_req, res) => json(res, 200, { ok: true }));
    try {
      const tenantId = await createTestTenant(gw.services.ctx, 'pool');
      const key = await createTestKey(gw.services.ctx, tenantId, { rate: 1000, burst: 1000 });
      await createTestRoute(gw.services.ctx, tenantId, '/svc', upstream.url);
      // The key and the route are cached after this call; then the shared pool should see nothing.
      expect((await send(gw.inboundUrl, '/svc/warm', { key })).status).toBe(200);
      let sharedAcquisitions = 0;
      mysqlPoolOf(gw.services.db)!.on('acquire', () => {
        sharedAcquisitions += 1;
      });
      for (let i = 0; i < 20; i++) expect((await send(gw.inboundUrl, `/svc/${i}`, { key })).status).toBe(200);
      await waitFor(
        async () =>
          (
            await gw.database.db
              .selectFrom('audit_log')
              .select('request_id')
              .where('key_id', '=', key.keyId)
              .execute()
          ).length === 21,
        10_000,
        'the audit rows',
      );
      expect(sharedAcquisitions).toBe(0);
    } finally {
      await gw.close();
      await upstream.close();
    }
  });
});
