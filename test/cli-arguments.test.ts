/**
 * What the CLI does with arguments a user gets wrong: a word too many, an empty --roles, a token
 * lifetime out of bounds, exit 2 for a command line it cannot take and 1 for a value the service
 * refuses, and errors as JSON under --json. In-process, on embedded SQLite.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKeygateInProcess } from './helpers/cli.ts';

let dataDir: string;
const cli = (...argv: string[]) => runKeygateInProcess(argv, { KEYGATE_DATA_DIR: dataDir });

beforeAll(() => {
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'keygate-cli-args-'));
});
afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

describe('CLI arguments', () => {
  it('refuses a word too many instead of dropping it', async () => {
    const res = await cli('tenant', 'create', 'multi', 'word');
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('unexpected argument "word": it takes NAME');
    expect((await cli('tenant', 'create', 'multi')).code).toBe(0);
  });

  it('refuses a secret value given on the command line, saying it is read from stdin', async () => {
    const res = await cli('secret', 'set', '--tenant', 'multi', 'acme', 'AppKey', 'typed-value');
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('unexpected argument "typed-value": it takes PROVIDER NAME');
    expect(res.stderr).toContain('read from stdin');
    expect(res.stderr).not.toContain('set (version');
  });

  it('refuses an empty --roles rather than starting every listener', async () => {
    const res = await cli('serve', '--roles', '');
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('--roles is empty');
  });

  it('holds token lifetimes to the admin API bounds (60 s to 10 years)', async () => {
    for (const lifetime of ['0', '5s', '99999999d']) {
      const res = await cli(
        'token',
        'create',
        '--role',
        'gateway_admin',
        '--name',
        'n',
        '--expires-in',
        lifetime,
      );
      expect(res.code, lifetime).toBe(1);
      expect(res.stderr).toContain("a token's lifetime must be 60 s to 10 years");
      expect(res.stderr).not.toContain('unexpected error');
    }
    const ok = await cli(
      'token',
      'create',
      '--role',
      'gateway_admin',
      '--name',
      'n',
      '--expires-in',
      '60s',
      '--json',
    );
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).expiresAt).not.toBeNull();
  });

  it('reports every kind of error as one JSON object under --json', async () => {
    const usage = await cli('token', 'create', '--name', 'n', '--json');
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stderr)).toEqual({ error: { code: 'KG_USAGE', message: '--role is required' } });

    const unknownFlag = await cli('tenant', 'create', 'x', '--nope', '--json');
    expect(unknownFlag.code).toBe(2);
    expect(JSON.parse(unknownFlag.stderr).error.code).toBe('KG_USAGE');

    const config = await runKeygateInProcess(['tenant', 'create', 'y', '--json'], {
      KEYGATE_DATA_DIR: dataDir,
      KEYGATE_SCRIPT_CPU_MS: 'abc',
    });
    expect(config.code).toBe(1);
    expect(JSON.parse(config.stderr).error).toMatchObject({ code: 'KG_CONFIG' });
    expect(JSON.parse(config.stderr).error.message).toContain('KEYGATE_SCRIPT_CPU_MS');
  });

  it('exits 2 for a command line not of the form it takes, 1 for a value the service refuses', async () => {
    expect((await cli('tenant', 'create', 'exits')).code).toBe(0);
    const script = path.join(dataDir, 'ok.js');
    writeFileSync(script, 'function (reqHeaders) {}\n');
    const usage: string[][] = [
      ['token', 'create', '--role', 'root', '--name', 'n'],
      ['token', 'create', '--role', 'tenant_admin', '--name', 'n'],
      ['token', 'create', '--role', 'gateway_admin', '--tenant', 'exits', '--name', 'n'],
      ['token', 'create', '--role', 'gateway_admin', '--name', 'n', '--expires-in', 'soon'],
      ['provider', 'activate', '--tenant', 'exits', 'p', 'two'],
      ['provider', 'activate', '--tenant', 'exits', 'p', '2', '--expected-revision', ''],
      ['provider', 'rollback', '--tenant', 'exits', 'p', '--to', '0'],
      ['script', 'validate', '--tenant', 'exits', '-f', script, '--kind', 'signing'],
      ['partner-key', 'create', '--tenant', 'exits', '--name', 'n', '--rate', 'fast'],
      ['partner-key', 'create', '--tenant', 'exits', '--name', 'n', '--on-redis-down', 'panic'],
      ['partner-key', 'create', '--tenant', 'exits', '--name', 'n', '--burst', '2.5'],
      ['partner-key', 'retire-secret', '--tenant', 'exits', 'pk_x', '--version', '0'],
      ['route', 'add', '--tenant', 'exits', '--prefix', '/a', '--upstream', 'http://a', '--timeout-ms', '1s'],
      ['audit', 'purge', '--older-than', 'a while'],
    ];
    for (const argv of usage) {
      const res = await cli(...argv, '--json');
      expect({ argv, code: res.code }).toEqual({ argv, code: 2 });
      expect(JSON.parse(res.stderr).error.code).toBe('KG_USAGE');
    }
    const refused: Array<[string[], string]> = [
      [['tenant', 'create', 'Not A Name'], 'KG_VALIDATION_FAILED'],
      [['token', 'create', '--role', 'gateway_admin', '--name', 'a/b'], 'KG_VALIDATION_FAILED'],
      [
        ['token', 'create', '--role', 'gateway_admin', '--name', 'n', '--expires-in', '5s'],
        'KG_VALIDATION_FAILED',
      ],
      [
        ['partner-key', 'create', '--tenant', 'exits', '--name', 'n', '--rate', '0/s'],
        'KG_VALIDATION_FAILED',
      ],
      [['partner-key', 'create', '--tenant', 'exits', '--name', 'n', '--burst', '0'], 'KG_VALIDATION_FAILED'],
      [['audit', 'purge', '--older-than', '0s'], 'KG_VALIDATION_FAILED'],
      [['service-token', 'create', '--tenant', 'no-such-tenant', '--name', 'n'], 'KG_NOT_FOUND'],
    ];
    for (const [argv, code] of refused) {
      const res = await cli(...argv, '--json');
      expect({ argv, code: res.code }).toEqual({ argv, code: 1 });
      expect(JSON.parse(res.stderr).error.code).toBe(code);
    }
  });

  it('describes each option as the command uses it', async () => {
    const retire = await cli('partner-key', 'retire-secret', '--help');
    expect(retire.stdout).toMatch(/--version <value>\s+the secret version to retire/);
    const activate = await cli('provider', 'activate', '--help');
    expect(activate.stdout).toMatch(/--expected-revision <value>\s+the revision you last saw/);
  });

  it('prints its version', async () => {
    const res = await cli('--version');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^keygate \d+\.\d+\.\d+\n$/);
  });
});
