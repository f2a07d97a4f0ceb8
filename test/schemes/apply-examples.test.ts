/**
 * Every example in scripts-examples/ applies in one command with the real `keygate` CLI (a child
 * process on a temporary data dir), and its README names every secret its scripts read. One
 * example then goes the whole way a user would: secrets from stdin, then `keygate script test`
 * reproducing the provider's documented request.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKeygateProcess } from '../helpers/cli.ts';
import { EXAMPLES_DIR, exampleVectors } from './helpers.ts';

const keygate = runKeygateProcess;

const examples = readdirSync(EXAMPLES_DIR, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(path.join(EXAMPLES_DIR, d.name, 'provider.json')))
  .map((d) => d.name)
  .sort();

function read(example: string, file: string): string {
  return readFileSync(path.join(EXAMPLES_DIR, example, file), 'utf8');
}

describe('scripts-examples', () => {
  it('holds every scheme of the library', () => {
    expect(examples).toEqual(
      expect.arrayContaining([
        'alipay-rsa2',
        'amap-md5',
        'aws-sigv4',
        'baidu-sn',
        'bearer-api-key',
        'oauth2-client-credentials',
        'seed',
        'tencent-tc3',
        'wechatpay-v3',
      ]),
    );
  });

  it.each(examples)(
    '%s: the README names every secret the scripts read and shows the apply command',
    (example) => {
      const readme = read(example, 'README.md');
      const config = JSON.parse(read(example, 'provider.json')) as {
        request?: string;
        response?: string;
        mode: string;
      };
      const used = new Set<string>();
      for (const file of [config.request, config.response]) {
        if (!file) continue;
        const source = read(example, file);
        for (const m of source.matchAll(/secret\('([A-Za-z0-9_]+)'\)/g)) used.add(m[1]!);
        // The seed's argument secrets.
        const header = /function\s*\([^)]*\)\s*\{/.exec(source);
        const body = header ? source.slice(header.index + header[0].length) : source;
        for (const name of ['AppKey', 'AesKey', 'AesIV'])
          if (new RegExp(`\\b${name}\\b`).test(body)) used.add(name);
      }
      if (config.mode === 'token') used.add('AppKey').add('AppSecret');
      for (const name of used)
        expect(readme, `${example}/README.md should name ${name}`).toMatch(new RegExp(`\`${name}\``));
      expect(readme).toContain(`-f scripts-examples/${example}/provider.json`);
    },
  );
});

describe('keygate provider apply -f scripts-examples/<scheme>/provider.json', { timeout: 300_000 }, () => {
  let dir: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'keygate-examples-'));
    env = { KEYGATE_DATA_DIR: path.join(dir, 'data') };
    const tenant = await keygate(['tenant', 'create', 'acme', '--json'], env);
    expect(tenant.code, tenant.stderr).toBe(0);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(examples)('%s applies and activates in one command', async (example) => {
    const file = path.join(EXAMPLES_DIR, example, 'provider.json');
    const apply = await keygate(['provider', 'apply', '--tenant', 'acme', '-f', file, '--json'], env);
    expect(apply.code, apply.stderr).toBe(0);
    const name = (JSON.parse(readFileSync(file, 'utf8')) as { name: string }).name;
    expect(JSON.parse(apply.stdout)).toEqual({ provider: name, version: 1, active: true });
  });

  it("baidu-sn end to end: secrets from stdin, then `script test` sends Baidu's documented URL", async () => {
    const vectors = exampleVectors<{
      ak: string;
      sk: string;
      path: string;
      query: Array<[string, string]>;
      url: string;
    }>('baidu-sn');
    const ak = await keygate(
      ['secret', 'set', '--tenant', 'acme', 'baidu-sn', 'AppKey', '--not-sensitive'],
      env,
      `${vectors.ak}\n`,
    );
    expect(ak.code, ak.stderr).toBe(0);
    const sk = await keygate(
      ['secret', 'set', '--tenant', 'acme', 'baidu-sn', 'AppSecret'],
      env,
      `${vectors.sk}\n`,
    );
    expect(sk.code, sk.stderr).toBe(0);
    expect(sk.stdout + sk.stderr).not.toContain(vectors.sk);

    const sample = path.join(dir, 'baidu-sample.json');
    writeFileSync(
      sample,
      JSON.stringify({ method: 'GET', path: vectors.path, query: Object.fromEntries(vectors.query) }),
    );
    const dry = await keygate(
      ['script', 'test', '--tenant', 'acme', 'baidu-sn', '-f', sample, '--json'],
      env,
    );
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout).request.url).toBe(vectors.url);
  });
});
