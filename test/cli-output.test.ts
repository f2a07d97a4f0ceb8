/**
 * What the CLI prints, as a script reads it, on both dialects: every time in ISO 8601 UTC (never
 * the database's `2026-11-24 04:07:12.000`), in --json and in the human lines alike; every list
 * command's --json one object with the items in `items`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../src/cli/main.ts';
import { runKeygateInProcess } from './helpers/cli.ts';
import { createTestDatabase, DIALECTS, type TestDatabase } from './helpers/db.ts';

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
/** A time in the storage format, anywhere in a text. */
const DB_TIME = /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/;

/** Every value of a field named like a time (`createdAt`, `olderThan`, ...), however deep. */
function timeFields(value: unknown, path = '$'): Array<[string, unknown]> {
  if (Array.isArray(value)) return value.flatMap((v, i) => timeFields(v, `${path}[${i}]`));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) =>
    /At$|^olderThan$/.test(k) && (typeof v === 'string' || v === null)
      ? [[`${path}.${k}`, v] as [string, unknown]]
      : timeFields(v, `${path}.${k}`),
  );
}

describe.each(DIALECTS)('CLI output on %s', (dialect) => {
  let t: TestDatabase;
  let env: Record<string, string>;
  const cli = async (...argv: string[]) => {
    const res = await runKeygateInProcess(argv, env);
    expect(res.code, `${argv.join(' ')}: ${res.stderr}`).toBe(0);
    return res.stdout;
  };
  const json = async (...argv: string[]) => JSON.parse(await cli(...argv, '--json'));

  /** What the commands that create or revoke printed; made once, read by both tests. */
  const created: Array<[string, unknown]> = [];

  beforeAll(async () => {
    t = await createTestDatabase(dialect);
    env = { KEYGATE_DATA_DIR: t.dataDir, ...(t.databaseUrl ? { DATABASE_URL: t.databaseUrl } : {}) };
    created.push(['tenant create', await json('tenant', 'create', 'times')]);
    const member = await json(
      'token',
      'create',
      '--tenant',
      'times',
      '--role',
      'tenant_admin',
      '--name',
      'm',
      '--expires-in',
      '1h',
    );
    created.push(['token create', member]);
    await cli('token', 'revoke', '--tenant', 'times', member.id);
    const svc = await json('service-token', 'create', '--tenant', 'times', '--name', 's');
    await cli('service-token', 'revoke', '--tenant', 'times', svc.id);
    const key = await json('partner-key', 'create', '--tenant', 'times', '--name', 'k');
    created.push(['partner-key create', key]);
    created.push(['partner-key revoke', await json('partner-key', 'revoke', '--tenant', 'times', key.keyId)]);
    created.push([
      'route add',
      await json('route', 'add', '--tenant', 'times', '--prefix', '/t', '--upstream', 'http://127.0.0.1:9'),
    ]);
  });
  afterAll(async () => {
    await t?.drop();
  });

  it('shows every time in ISO 8601 UTC, in --json and in human lines', async () => {
    const outputs: Array<[string, unknown]> = [...created];
    const record = async (name: string, value: Promise<unknown>) => outputs.push([name, await value]);
    await record('token list', json('token', 'list', '--tenant', 'times'));
    await record('service-token list', json('service-token', 'list', '--tenant', 'times'));
    await record('partner-key list', json('partner-key', 'list', '--tenant', 'times'));
    await record('route list', json('route', 'list', '--tenant', 'times'));
    await record('audit purge', json('audit', 'purge', '--older-than', '30d'));

    const times = outputs.flatMap(([name, out]) => timeFields(out, name));
    const expected = [
      'tenant create.createdAt',
      'token create.expiresAt',
      'token list.items[0].createdAt',
      'token list.items[0].expiresAt',
      'token list.items[0].revokedAt',
      'service-token list.items[0].createdAt',
      'service-token list.items[0].revokedAt',
      'partner-key create.createdAt',
      'partner-key revoke.revokedAt',
      'partner-key list.items[0].createdAt',
      'route list.items[0].updatedAt',
      'route add.createdAt',
      'route add.updatedAt',
      'audit purge.olderThan',
    ];
    expect(times.map(([path]) => path)).toEqual(expect.arrayContaining(expected));
    for (const [path, value] of times) {
      if (value !== null) expect({ path, value }).toEqual({ path, value: expect.stringMatching(ISO) });
    }

    // The human forms that show a time.
    const human = [
      await cli('token', 'list', '--tenant', 'times'),
      await cli('audit', 'purge', '--older-than', '30d'),
    ].join('');
    expect(human).not.toMatch(DB_TIME);
    expect(human).toMatch(/T\d\d:\d\d:\d\d\.\d{3}Z/);
  });

  it('prints every list as {"items": [...]} under --json', async () => {
    const lists = COMMANDS.filter((c) => c.name.endsWith(' list')).map((c) => c.name);
    expect(lists).toEqual(
      expect.arrayContaining(['token list', 'service-token list', 'partner-key list', 'route list']),
    );
    for (const name of lists) {
      const out = await json(...name.split(' '), '--tenant', 'times');
      expect({ name, items: Array.isArray(out.items) && out.items.length > 0 }).toEqual({
        name,
        items: true,
      });
    }
    // The names these two lists used before, kept beside `items` for scripts that read them.
    const keys = await json('partner-key', 'list', '--tenant', 'times');
    expect(keys.keys).toEqual(keys.items);
    const routes = await json('route', 'list', '--tenant', 'times');
    expect(routes.routes).toEqual(routes.items);
  });
});
