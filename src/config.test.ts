import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

describe('loadConfig', () => {
  it('has embedded defaults: SQLite, in-process state, local master key, the three ports', () => {
    const config = loadConfig({ KEYGATE_DATA_DIR: '/tmp/kg-defaults' });
    expect(config.databaseUrl).toBeUndefined();
    expect(config.redisUrl).toBeUndefined();
    expect(config.kms).toEqual({ provider: 'local', masterKeyFile: '/tmp/kg-defaults/master.key' });
    expect(config.ports).toEqual({ outbound: 8080, admin: 8081, inbound: 8082 });
    expect(config.script).toEqual({ cpuMs: 50, memoryMb: 32 });
    expect(config.timerSlackUs).toBe(1000);
    // Audit rows are kept until the operator sets a retention period.
    expect(config.inbound.auditRetentionDays).toBe(0);
    expect(loadConfig({ KEYGATE_AUDIT_RETENTION_DAYS: '90' }).inbound.auditRetentionDays).toBe(90);
    // The audit spool stops inbound calls at 1 GiB unless told otherwise; 0 lifts the limit.
    expect(config.inbound.auditSpoolMaxBytes).toBe(1024 * 1024 * 1024);
    expect(loadConfig({ KEYGATE_AUDIT_SPOOL_MAX_BYTES: '0' }).inbound.auditSpoolMaxBytes).toBe(0);
    expect(loadConfig({}).inbound.trustedProxies).toEqual([]);
    expect(loadConfig({ KEYGATE_TRUSTED_PROXIES: '10.0.0.0/8,192.0.2.7' }).inbound.trustedProxies).toEqual([
      '10.0.0.0/8',
      '192.0.2.7',
    ]);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads KEYGATE_CONFIG and lets the environment win', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kg-config-'));
    const file = path.join(dir, 'keygate.json');
    writeFileSync(
      file,
      JSON.stringify({ KEYGATE_OUTBOUND_PORT: 9000, KEYGATE_ADMIN_PORT: 9001, REDIS_URL: 'redis://r:6379' }),
    );
    const config = loadConfig({ KEYGATE_CONFIG: file, KEYGATE_ADMIN_PORT: '9100' });
    expect(config.ports.outbound).toBe(9000);
    expect(config.ports.admin).toBe(9100);
    expect(config.redisUrl).toBe('redis://r:6379');
  });

  it.each([
    [{ DATABASE_URL: 'postgres://x/y' }, 'DATABASE_URL'],
    [{ REDIS_URL: 'http://nope' }, 'REDIS_URL'],
    [{ KEYGATE_OUTBOUND_PORT: '70000' }, 'KEYGATE_OUTBOUND_PORT'],
    [{ KMS_PROVIDER: 'vault' }, 'KMS_PROVIDER'],
    [{ KMS_PROVIDER: 'aws-kms', AWS_REGION: 'eu-west-1' }, 'KMS_KEY_ID'],
    [{ KMS_PROVIDER: 'aws-kms', KMS_KEY_ID: 'alias/k' }, 'AWS_REGION'],
    [{ KEYGATE_CONFIG: '/nonexistent/keygate.json' }, 'KEYGATE_CONFIG'],
    [{ KEYGATE_TIMER_SLACK_US: '-1' }, 'KEYGATE_TIMER_SLACK_US'],
    [{ KEYGATE_TIMER_SLACK_US: '1.5' }, 'KEYGATE_TIMER_SLACK_US'],
    [{ KEYGATE_AUDIT_RETENTION_DAYS: '-1' }, 'KEYGATE_AUDIT_RETENTION_DAYS'],
    [{ KEYGATE_AUDIT_RETENTION_DAYS: '30d' }, 'KEYGATE_AUDIT_RETENTION_DAYS'],
    [{ KEYGATE_TRUSTED_PROXIES: '10.0.0.0/8, lb.internal' }, 'KEYGATE_TRUSTED_PROXIES'],
    [{ KEYGATE_TRUSTED_PROXIES: '10.0.0.0/33' }, '"10.0.0.0/33" is not an IP address or CIDR block'],
    // Blank and hexadecimal numbers are mistakes, not 0 and 19100.
    [{ KEYGATE_ADMIN_PORT: ' ' }, 'KEYGATE_ADMIN_PORT: must be a whole number in decimal digits'],
    [{ KEYGATE_OUTBOUND_PORT: '0x4A9C' }, 'KEYGATE_OUTBOUND_PORT'],
    [{ KEYGATE_AUDIT_RETENTION_DAYS: ' ' }, 'KEYGATE_AUDIT_RETENTION_DAYS'],
    [{ KEYGATE_AUDIT_SPOOL_MAX_BYTES: '1GiB' }, 'KEYGATE_AUDIT_SPOOL_MAX_BYTES'],
    [{ KEYGATE_AUDIT_SPOOL_MAX_BYTES: '0x400' }, 'KEYGATE_AUDIT_SPOOL_MAX_BYTES'],
    [{ KEYGATE_SHUTDOWN_GRACE_MS: '1e4' }, 'KEYGATE_SHUTDOWN_GRACE_MS'],
    [{ KEYGATE_STATUS_PORT: 'metrics' }, 'KEYGATE_STATUS_PORT'],
  ])('stops with a message naming the bad setting: %o', (env, name) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(name);
  });

  it('stops on a setting in the KEYGATE_CONFIG file that does not exist (a misspelt name)', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kg-config-'));
    const file = path.join(dir, 'keygate.json');
    writeFileSync(file, JSON.stringify({ KEYGATE_INBOUND_MAX_BODY_BYTE: 10, KEYGATE_ADMIN_PORT: 9001 }));
    expect(() => loadConfig({ KEYGATE_CONFIG: file })).toThrow(
      'KEYGATE_CONFIG: unknown setting KEYGATE_INBOUND_MAX_BODY_BYTE',
    );
  });

  it('keeps the admin listener on loopback unless an address is given; the status listener is opt-in', () => {
    const defaults = loadConfig({});
    expect(defaults.host).toBe('0.0.0.0');
    expect(defaults.adminHost).toBe('127.0.0.1');
    expect(defaults.status).toBeUndefined();
    expect(defaults.shutdownDelayMs).toBe(0);
    // KEYGATE_HOST moves the proxy and inbound listeners only.
    expect(loadConfig({ KEYGATE_HOST: '0.0.0.0' }).adminHost).toBe('127.0.0.1');
    expect(loadConfig({ KEYGATE_HOST: '10.0.0.5', KEYGATE_ADMIN_HOST: '0.0.0.0' }).adminHost).toBe('0.0.0.0');
    expect(loadConfig({ KEYGATE_HOST: '0.0.0.0', KEYGATE_STATUS_PORT: '9100' }).status?.host).toBe(
      '127.0.0.1',
    );
    expect(loadConfig({ KEYGATE_STATUS_PORT: '9100' }).status).toEqual({ host: '127.0.0.1', port: 9100 });
    expect(
      loadConfig({
        KEYGATE_STATUS_PORT: '9100',
        KEYGATE_ADMIN_HOST: '10.0.0.6',
        KEYGATE_STATUS_HOST: '0.0.0.0',
      }).status,
    ).toEqual({ host: '0.0.0.0', port: 9100 });
  });
});
