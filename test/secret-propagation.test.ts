/** A secret set through one node is used by another node sharing MySQL and Redis at once. */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/cli/context.ts';
import { setSecret } from '../src/services/secrets.ts';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { setUpProvider, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { json, startUpstream, type TestUpstream } from './helpers/upstream.ts';

describe('secret changes across nodes', () => {
  let database: TestDatabase;
  let nodeA: TestGateway;
  let nodeB: TestGateway;
  let upstream: TestUpstream;

  beforeAll(async () => {
    database = await createTestDatabase('mysql');
    nodeA = await startTestGateway({ database, redis: true });
    nodeB = await startTestGateway({ database, redis: true });
    upstream = await startUpstream((req, res) => json(res, 200, JSON.parse(req.body.toString() || '{}')));
  });
  afterAll(async () => {
    await nodeA?.close();
    await nodeB?.close();
    await upstream?.close();
    await database?.drop();
  });

  it('a rotated AppSecret signs the very next request on the other node', async () => {
    const { tenantId, serviceToken } = await setUpProvider(
      nodeA,
      { name: 'rotating', mode: 'simple', prefixUrl: upstream.url },
      { AppKey: 'k', AppSecret: 'first-secret' },
    );
    const call = async () => {
      const res = await fetch(`${nodeB.outboundUrl}/v1/proxy/rotating/pay`, {
        method: 'POST',
        headers: { authorization: `Bearer ${serviceToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ amount: 1, timestamp: 1700000000 }),
      });
      return (await res.json()) as { sign: string };
    };
    const signWith = (secret: string) =>
      createHash('sha256')
        .update(`amount=1&appKey=k&timestamp=1700000000${secret}`)
        .digest('hex')
        .toUpperCase();

    // This first call loads the secrets on node B: its cached copy is fresh until 5 s after it.
    const loadedAt = Date.now();
    expect((await call()).sign).toBe(signWith('first-secret'));
    await setSecret(nodeA.services.ctx, CLI_ACTOR, {
      tenant: tenantId,
      provider: 'rotating',
      name: 'AppSecret',
      value: 'second-secret',
    });
    // Redis pub/sub is asynchronous: allow it a few seconds, but stop before the 5 s cache lifetime
    // could have brought the new secret without it.
    const deadline = Math.min(Date.now() + 3000, loadedAt + 4500);
    let sign = (await call()).sign;
    while (sign !== signWith('second-secret') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      sign = (await call()).sign;
    }
    expect(sign).toBe(signWith('second-secret'));
  });
});
