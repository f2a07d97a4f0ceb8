import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createMasker } from '../secrets/mask.ts';
import type { ProviderSecrets } from '../secrets/secret-store.ts';
import { standInSecrets } from './stand-in-secrets.ts';

function secretsOf(values: Record<string, string>, sensitive: string[]): ProviderSecrets {
  return { values, sensitive: new Set(sensitive), mask: createMasker(sensitive.map((n) => values[n]!)) };
}

describe('stand-in secrets', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  });
  const real = secretsOf(
    {
      AppKey: 'public-key',
      Password: 'Tr0ub4dor&3!x#Zq',
      HexKey: '00112233445566778899aabbccddeeff',
      Pin: '493027',
      PrivateKey: String(rsa),
    },
    ['Password', 'HexKey', 'Pin', 'PrivateKey'],
  );

  it('keep the length, and hex or digits, but no character of the value, not even its punctuation', () => {
    const { values } = standInSecrets(real);
    expect(values.AppKey).toBe('public-key'); // not sensitive: the real value
    expect(values.Password).toHaveLength(16);
    expect(values.Password).toMatch(/^[0-9A-Za-z]+$/);
    expect(values.HexKey).toMatch(/^[0-9a-f]{32}$/);
    expect(values.HexKey).not.toBe(real.values.HexKey);
    expect(values.Pin).toMatch(/^[0-9]{6}$/);
    // Made from the name: the same stand-in whatever the value.
    const other = standInSecrets(secretsOf({ Password: 'something-else-16' }, ['Password']));
    expect(other.values.Password!.slice(0, 16)).toBe(values.Password);
  });

  it('replace a private key by a throwaway key of the same type and size, made once', () => {
    const first = standInSecrets(real).values.PrivateKey!;
    expect(first).not.toBe(real.values.PrivateKey);
    const key = createPrivateKey(first);
    expect(key.asymmetricKeyType).toBe('rsa');
    expect(key.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(standInSecrets(real).values.PrivateKey).toBe(first);
  });
});
