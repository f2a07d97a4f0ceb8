/**
 * Stand-ins for a provider's sensitive secrets, for dry-runs by roles that may not read them (a
 * tenant developer). Secrets are write-only, and a script a developer writes could hand a value
 * back in any disguise masking cannot know (reversed, spread out); so such a dry-run never gets
 * the values at all. A stand-in keeps what makes a script run: the same length and character
 * classes (a hex key stays hex, base64 stays base64, a 16-character AES key stays 16 characters),
 * and for a PEM private key a throwaway key of the same type and size. It is made from the
 * secret's name, never from its value.
 */
import { createPrivateKey, generateKeyPairSync, hash } from 'node:crypto';
import { createMasker } from '../secrets/mask.ts';
import type { ProviderSecrets } from '../secrets/secret-store.ts';
import type { TokenCache } from './token-cache/index.ts';

export function standInSecrets(secrets: ProviderSecrets): ProviderSecrets {
  const values: Record<string, string> = Object.create(null);
  for (const [name, value] of Object.entries(secrets.values)) {
    values[name] = secrets.sensitive.has(name) ? standInValue(name, value) : value;
  }
  Object.freeze(values);
  const sensitive = new Set(secrets.sensitive);
  return { values, sensitive, mask: createMasker([...sensitive].map((name) => values[name]!)) };
}

/** A token cache that holds one stand-in token and changes nothing. */
export function standInTokens(): TokenCache {
  const cached = { token: 'stand-in-access-token', expiresAtMs: null };
  return {
    get: async () => cached,
    set: async () => {},
    delete: async () => {},
    getOrFetch: async () => cached,
    close: async () => {},
  };
}

const PEM_PRIVATE_KEY = /-----BEGIN (?:RSA |EC )?PRIVATE KEY-----/;
const CLASSES = ['0123456789', 'abcdef', 'ghijklmnopqrstuvwxyz', 'ABCDEF', 'GHIJKLMNOPQRSTUVWXYZ'];

function standInValue(name: string, value: string): string {
  if (PEM_PRIVATE_KEY.test(value)) {
    const pem = throwawayKey(value);
    if (pem !== undefined) return pem;
  }
  // Each character becomes one of its own class, picked from the name's hash and its position.
  const seed = hash('sha256', `stand-in:${name}`, 'buffer');
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    const cls = CLASSES.find((chars) => chars.includes(c));
    out += cls ? cls[(seed[i % seed.length]! + i) % cls.length] : c;
  }
  return out;
}

/** A new key of the same type and size as the PEM, in PKCS#8; undefined for keys Node cannot make. */
function throwawayKey(pem: string): string | undefined {
  try {
    const key = createPrivateKey(pem);
    const details = key.asymmetricKeyDetails ?? {};
    const pair =
      key.asymmetricKeyType === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: Math.min(details.modulusLength ?? 2048, 4096) })
        : key.asymmetricKeyType === 'ec' && details.namedCurve
          ? generateKeyPairSync('ec', { namedCurve: details.namedCurve })
          : undefined;
    return pair?.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  } catch {
    return undefined;
  }
}
