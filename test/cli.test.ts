/** The `keygate` command as a user runs it: a real child process on a temporary data dir. */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKeygateProcess } from './helpers/cli.ts';

const keygate = runKeygateProcess;
const MAIN = path.resolve(import.meta.dirname, '../src/cli/main.ts');
const hasScriptCommand = spawnSync('script', ['--version']).status === 0;

describe('keygate CLI', { timeout: 180_000 }, () => {
  let dir: string;
  let env: Record<string, string>;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'keygate-cli-'));
    env = { KEYGATE_DATA_DIR: path.join(dir, 'data') };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints help for the program and for each command', async () => {
    const top = await keygate(['--help'], env);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain('provider apply');
    const sub = await keygate(['secret', 'set', '--help'], env);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain('Usage: keygate secret set --tenant T PROVIDER NAME');
  });

  it('names the problem for unknown commands and missing options', async () => {
    const unknown = await keygate(['tenant', 'explode'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "tenant explode"');
    const missing = await keygate(['service-token', 'create', '--name', 'x'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--tenant is required');
  });

  it('sets up a tenant end to end with --json, never echoing a secret', async () => {
    const tenant = await keygate(['tenant', 'create', 'acme', '--json'], env);
    expect(tenant.code, tenant.stderr).toBe(0);
    expect(JSON.parse(tenant.stdout)).toMatchObject({ name: 'acme' });

    const svc = await keygate(
      ['service-token', 'create', '--tenant', 'acme', '--name', 'billing', '--json'],
      env,
    );
    expect(svc.code, svc.stderr).toBe(0);
    expect(JSON.parse(svc.stdout).token).toMatch(/^kgs_/);

    const admin = await keygate(
      ['token', 'create', '--role', 'gateway_admin', '--name', 'root', '--json'],
      env,
    );
    expect(JSON.parse(admin.stdout)).toMatchObject({
      role: 'gateway_admin',
      token: expect.stringMatching(/^kga_/),
    });

    const apply = await keygate(
      [
        'provider',
        'apply',
        '--tenant',
        'acme',
        '-f',
        path.resolve(import.meta.dirname, '../scripts-examples/seed/provider.json'),
        '--json',
      ],
      env,
    );
    expect(apply.code, apply.stderr).toBe(0);
    expect(JSON.parse(apply.stdout)).toEqual({ provider: 'seed-pay', version: 1, active: true });

    for (const [name, value] of [
      ['AppKey', 'cli-app-key'],
      ['AesKey', 'Sup3rSecretKey!!'],
      ['AesIV', 'fedcba9876543210'],
    ]) {
      const set = await keygate(
        ['secret', 'set', '--tenant', 'acme', 'seed-pay', name!, '--json'],
        env,
        `${value}\n`,
      );
      expect(set.code, set.stderr).toBe(0);
      expect(set.stdout + set.stderr).not.toContain(value!);
    }

    // The seed script needs a token it cannot fetch here: a script that signs without one.
    const provider = path.join(dir, 'p.json');
    writeFileSync(
      provider,
      JSON.stringify({
        name: 'seed-pay',
        mode: 'script',
        prefixUrl: 'http://127.0.0.1:9',
        request:
          'function (h, p, b, AppKey, AesKey) { log("key is", AesKey); h.set("x-sig", sha256(AesKey)); b.set("k", AesKey); }',
      }),
    );
    const draft = await keygate(
      ['provider', 'apply', '--tenant', 'acme', '-f', provider, '--draft', '--json'],
      env,
    );
    expect(JSON.parse(draft.stdout)).toEqual({ provider: 'seed-pay', version: 2, active: false });

    const sample = path.join(dir, 'sample.json');
    writeFileSync(sample, JSON.stringify({ method: 'POST', path: '/orders', body: { data: 'x' } }));
    const dry = await keygate(
      ['script', 'test', '--tenant', 'acme', 'seed-pay', '-f', sample, '--version', '2', '--json'],
      env,
    );
    expect(dry.code, dry.stderr).toBe(0);
    const result = JSON.parse(dry.stdout);
    expect(result.request.url).toBe('http://127.0.0.1:9/orders');
    expect(result.request.body).toContain('"k":"****"');
    expect(result.logs.join(' ')).toContain('key is ****');
    expect(dry.stdout).not.toContain('Sup3rSecretKey!!');

    // A script that fails: the error names the line, and what it logged first follows, masked.
    writeFileSync(
      provider,
      JSON.stringify({
        name: 'seed-pay',
        mode: 'script',
        prefixUrl: 'http://127.0.0.1:9',
        request:
          'function (h, p, b, AppKey, AesKey) {\n  log("key is", AesKey);\n  h.set(nope.x, AesKey);\n}',
      }),
    );
    await keygate(['provider', 'apply', '--tenant', 'acme', '-f', provider, '--draft', '--json'], env);
    const failed = await keygate(
      ['script', 'test', '--tenant', 'acme', 'seed-pay', '-f', sample, '--version', '3'],
      env,
    );
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/line 3, column \d+\) \(KG_SCRIPT_ERROR\)\nlog:\n {2}key is \*{4}\n$/);
    expect(failed.stdout + failed.stderr).not.toContain('Sup3rSecretKey!!');

    const rollback = await keygate(['provider', 'rollback', '--tenant', 'acme', 'seed-pay', '--json'], env);
    expect(rollback.code).toBe(1); // version 1 is active and there is nothing older
    expect(rollback.stderr).toContain('KG_CONFLICT');
  });

  it.skipIf(!hasScriptCommand)('secret set at a terminal reads the value without echoing it', async () => {
    const own = { KEYGATE_DATA_DIR: path.join(dir, 'tty') };
    expect((await keygate(['tenant', 'create', 'tty'], own)).code).toBe(0);
    const provider = path.join(dir, 'tty.json');
    writeFileSync(
      provider,
      JSON.stringify({
        name: 'typed',
        mode: 'script',
        prefixUrl: 'http://127.0.0.1:9',
        request: 'function (h) { h.set("x-len", String(secret("AppSecret").length)); }',
      }),
    );
    expect((await keygate(['provider', 'apply', '--tenant', 'tty', '-f', provider], own)).code).toBe(0);

    // util-linux `script` runs the command on a real pseudo-terminal fed from our pipe.
    const value = 'TypedAtATerminal42';
    const command = [process.execPath, '--no-node-snapshot', '--disable-warning=ExperimentalWarning', MAIN]
      .concat(['secret', 'set', '--tenant', 'tty', 'typed', 'AppSecret'])
      .map((word) => `'${word}'`)
      .join(' ');
    const child = spawn('script', ['-qfec', command, '/dev/null'], {
      env: { PATH: process.env.PATH, KEYGATE_LOG_LEVEL: 'warn', ...own },
    });
    let screen = '';
    child.stdout.on('data', (d) => {
      screen += d;
      if (screen.includes('typing is not shown') && !child.stdin.writableEnded) child.stdin.end(`${value}\r`);
    });
    const noPrompt = setTimeout(() => child.kill(), 20_000);
    const code = await new Promise((resolve) => child.on('close', resolve));
    clearTimeout(noPrompt);
    expect(code, screen).toBe(0);
    expect(screen).toContain('secret typed/AppSecret set (version 1)');
    expect(screen).not.toContain(value);

    // Stored as typed: the Enter is not part of it.
    const sample = path.join(dir, 'tty-sample.json');
    writeFileSync(sample, JSON.stringify({ method: 'GET', path: '/' }));
    const dry = await keygate(['script', 'test', '--tenant', 'tty', 'typed', '-f', sample, '--json'], own);
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout).request.headers['x-len']).toBe(String(value.length));
  });

  it('leaves migrations to `keygate migrate` when KEYGATE_MIGRATE_ON_START=false', async () => {
    const own = { KEYGATE_DATA_DIR: path.join(dir, 'unmigrated'), KEYGATE_MIGRATE_ON_START: 'false' };
    const before = await keygate(['tenant', 'create', 'early'], own);
    expect(before.code).toBe(1);
    expect(before.stderr).toContain('cannot use the database');
    const migrated = await keygate(['migrate', '--json'], own);
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(JSON.parse(migrated.stdout).applied.length).toBeGreaterThan(0);
    expect((await keygate(['tenant', 'create', 'early'], own)).code).toBe(0);
  });

  it('serve exits non-zero, with every listener closed, when one of its ports is taken', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as AddressInfo).port;
      const res = await keygate(['serve', '--roles', 'outbound,admin'], {
        ...env,
        KEYGATE_HOST: '127.0.0.1',
        KEYGATE_OUTBOUND_PORT: '0',
        KEYGATE_ADMIN_PORT: String(port),
      });
      expect(res.code).toBe(1);
      expect(res.stderr).toContain(`admin listener cannot listen on 127.0.0.1:${port}: EADDRINUSE`);
    } finally {
      taken.close();
    }
  });

  it('stops at start-up with a message naming a wrong DATABASE_URL or KMS setting', async () => {
    const badUrl = await keygate(['tenant', 'create', 'x'], { ...env, DATABASE_URL: 'postgres://nope' });
    expect(badUrl.code).toBe(1);
    expect(badUrl.stderr).toContain('DATABASE_URL');

    const refused = await keygate(['tenant', 'create', 'x'], {
      ...env,
      DATABASE_URL: 'mysql://root:pw@127.0.0.1:1/none',
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('DATABASE_URL');
    expect(refused.stderr).not.toContain(':pw@');

    const noKey = await keygate(['tenant', 'create', 'x'], {
      ...env,
      KMS_PROVIDER: 'aws-kms',
      AWS_REGION: 'eu-west-1',
    });
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toContain('KMS_KEY_ID');

    const unreachable = await keygate(['tenant', 'create', 'x'], {
      ...env,
      KMS_PROVIDER: 'aws-kms',
      AWS_REGION: 'eu-west-1',
      KMS_KEY_ID: 'alias/keygate',
      AWS_ENDPOINT_URL_KMS: 'http://127.0.0.1:1',
      AWS_ACCESS_KEY_ID: 'x',
      AWS_SECRET_ACCESS_KEY: 'y',
    });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain('AWS_ENDPOINT_URL_KMS');
  });

  it('one Ctrl-C to the process group is one signal: the drain delay still runs', async () => {
    // bin/keygate.js passes the signal on to the CLI process, which gets it from the terminal too.
    const child = spawn(
      process.execPath,
      [path.resolve(import.meta.dirname, '../bin/keygate.js'), 'serve', '--roles', 'outbound'],
      {
        env: {
          ...process.env,
          ...env,
          KEYGATE_HOST: '127.0.0.1',
          KEYGATE_OUTBOUND_PORT: '0',
          KEYGATE_SHUTDOWN_DELAY_MS: '1500',
          KEYGATE_LOG_LEVEL: 'info',
        },
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += String(chunk);
    });
    child.stderr.on('data', (chunk) => {
      output += String(chunk);
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      for (let i = 0; i < 200 && !output.includes('keygate listening'); i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(output).toContain('keygate listening');
      const sent = performance.now();
      process.kill(-child.pid!, 'SIGINT');
      expect(await exited).toBe(0);
      expect(performance.now() - sent).toBeGreaterThanOrEqual(1_400);
      expect(output).toContain('shutting down');
      expect(output).not.toContain('signal again');
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    }
  }, 30_000);

  it('serve stops, naming REDIS_URL, when Redis accepts connections and never answers', async () => {
    const silent = createServer();
    const sockets = new Set<Socket>();
    silent.on('connection', (socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as AddressInfo).port;
      const res = await keygate(['serve', '--roles', 'outbound'], {
        ...env,
        KEYGATE_HOST: '127.0.0.1',
        KEYGATE_OUTBOUND_PORT: '0',
        REDIS_URL: `redis://:pw@127.0.0.1:${port}`,
      });
      expect(res.code).toBe(1);
      expect(res.stderr).toContain(`REDIS_URL (redis://:***@127.0.0.1:${port}`);
      expect(res.stderr).toContain('no answer to PING within 5 s');
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  }, 30_000);

  it('migrate names DATABASE_URL when the database cannot be reached', async () => {
    const res = await keygate(['migrate'], { ...env, DATABASE_URL: 'mysql://root:pw@127.0.0.1:1/none' });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('DATABASE_URL (mysql://root:***@127.0.0.1:1/none): cannot use the database');
    expect(res.stderr).not.toContain('unexpected error');
  });
});
