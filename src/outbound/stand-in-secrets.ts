/**
 * Stand-ins for a provider's sensitive secrets, for dry-runs by roles that may not read them (a
 * tenant developer). Secrets are write-only, and a script a developer writes could hand a value
 * back in any disguise masking cannot know (reversed, spread out); so such a dry-run never gets
 * the values at all. A stand-in keeps what makes a script run: the same length (a 16-character
 * AES key stays 16 characters), hex stays hex and digits stay digits, and for a PEM private key a
 * throwaway key of the same type and size. It is made from the secret's name, never from its value.
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
  const mask = createMasker([...sensitive].map((name) => values[name]!));
  return { values, sensitive, mask, ...(secrets.unreadable ? { unreadable: secrets.unreadable } : {}) };
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
const ALPHABETS = [
  { pattern: /^[0-9]+$/, chars: '0123456789' },
  { pattern: /^[0-9a-f]+$/, chars: '0123456789abcdef' },
  { pattern: /^[0-9A-F]+$/, chars: '0123456789ABCDEF' },
];
const ALPHANUMERIC = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/**
 * The same length, and the value's alphabet only when it is digits or hex (a hex key must stay
 * hex to be decoded); anything else becomes letters and digits, so no character of the value
 * shows, not even where its punctuation sits. Made from the name alone.
 */
function standInValue(name: string, value: string): string {
  if (PEM_PRIVATE_KEY.test(value)) {
    const pem = throwawayKey(value);
    if (pem !== undefined) return pem;
  }
  const chars = ALPHABETS.find(({ pattern }) => pattern.test(value))?.chars ?? ALPHANUMERIC;
  let out = '';
  let block = hash('sha256', `stand-in:${name}`, 'buffer');
  for (let i = 0; i < value.length; i++) {
    if (i > 0 && i % block.length === 0) block = hash('sha256', block, 'buffer');
    out += chars[block[i % block.length]! % chars.length];
  }
  return out;
}

/** Throwaway keys by type and size: made once per process, as making one takes up to a second. */
const throwawayKeys = new Map<string, string>();

/** A new key of the same type and size as the PEM, in PKCS#8; undefined for keys Node cannot make. */
function throwawayKey(pem: string): string | undefined {
  try {
    const key = createPrivateKey(pem);
    const details = key.asymmetricKeyDetails ?? {};
    const kind = `${key.asymmetricKeyType}:${details.modulusLength ?? details.namedCurve}`;
    const known = throwawayKeys.get(kind);
    if (known !== undefined) return known;
    const pair =
      key.asymmetricKeyType === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: Math.min(details.modulusLength ?? 2048, 4096) })
        : key.asymmetricKeyType === 'ec' && details.namedCurve
          ? generateKeyPairSync('ec', { namedCurve: details.namedCurve })
          : undefined;
    const made = pair?.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    if (made !== undefined) throwawayKeys.set(kind, made);
    return made;
  } catch {
    return undefined;
  }
}
