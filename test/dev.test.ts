/** `npm start` runs `keygate dev`: it must come up on a bare data dir and its printed curl must work. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const MAIN = path.resolve(import.meta.dirname, '../src/cli/main.ts');
const ZERO_PORTS = {
  KEYGATE_OUTBOUND_PORT: '0',
  KEYGATE_ADMIN_PORT: '0',
  KEYGATE_INBOUND_PORT: '0',
  KEYGATE_DEMO_PORT: '0',
};

describe('keygate dev', { timeout: 120_000 }, () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'keygate-dev-'));
  let child: ChildProcess | undefined;
  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('starts on embedded defaults and prints a curl that makes a signed round trip', async () => {
    child = spawn(
      process.execPath,
      ['--no-node-snapshot', '--disable-warning=ExperimentalWarning', MAIN, 'dev'],
      {
        env: {
          PATH: process.env.PATH,
          KEYGATE_DATA_DIR: dataDir,
          KEYGATE_LOG_LEVEL: 'warn',
          ...ZERO_PORTS,
        },
      },
    );
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const deadline = Date.now() + 90_000;
    while (!out.includes('Press Ctrl+C') && Date.now() < deadline && child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(out).toContain('Press Ctrl+C');
    const url = /curl -s (\S+)/.exec(out)?.[1];
    const token = /Bearer (kgs_[\w-]+)/.exec(out)?.[1];
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/proxy\/demo-pay\/api\/echo$/);
    const res = await fetch(url!, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ data: 'hello from keygate', timestamp: Math.floor(Date.now() / 1000) }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { code: number; data: string };
    expect(body.code).toBe(0);
    expect(JSON.parse(body.data)).toEqual({ echo: 'hello from keygate', method: 'POST', path: '/api/echo' });
    for (const role of ['admin', 'inbound']) {
      const port = new RegExp(`${role} API\\s+http://127\\.0\\.0\\.1:(\\d+)`).exec(out)?.[1];
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    }
  });

  it('with --json prints one object with the URLs, the tokens and the curl', async () => {
    const jsonDir = mkdtempSync(path.join(os.tmpdir(), 'keygate-dev-json-'));
    const dev = spawn(
      process.execPath,
      ['--no-node-snapshot', '--disable-warning=ExperimentalWarning', MAIN, 'dev', '--json'],
      {
        env: { PATH: process.env.PATH, KEYGATE_DATA_DIR: jsonDir, KEYGATE_LOG_LEVEL: 'warn', ...ZERO_PORTS },
      },
    );
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        dev.stdout!.on('data', (d) => {
          out += d;
          if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
        });
        dev.once('exit', (code) => reject(new Error(`keygate dev exited with ${code}`)));
      });
      const info = JSON.parse(line) as Record<string, string>;
      expect(info).toMatchObject({
        outbound: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
        admin: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
        serviceToken: expect.stringMatching(/^kgs_/),
        adminToken: expect.stringMatching(/^kga_/),
        curl: expect.stringContaining('/v1/proxy/demo-pay/api/echo'),
      });
      const me = await fetch(`${info.admin}/admin/v1/me`, {
        headers: { authorization: `Bearer ${info.adminToken}` },
      });
      expect(me.status).toBe(200);
    } finally {
      const exited = new Promise((r) => dev.once('exit', r));
      dev.kill('SIGTERM');
      await exited;
      rmSync(jsonDir, { recursive: true, force: true });
    }
  });
});
