/**
 * Reading PEM keys for the script built-ins, with errors that say what is wrong with a key without
 * ever quoting it (node:crypto's own messages are OpenSSL codes that help nobody).
 */
import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';

export type PemProblem = string;

const PRIVATE_LABELS = ['PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY'];
const PUBLIC_LABELS = ['PUBLIC KEY', 'RSA PUBLIC KEY', 'CERTIFICATE'];

/** Why `pem` could not be read; only the armor labels (never key bytes) appear in the answer. */
export function describePemProblem(pem: string, want: 'private' | 'public'): PemProblem {
  const begin = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(pem);
  if (begin === null) return 'not a PEM key (no "-----BEGIN ...-----" line)';
  const label = begin[1] ?? '';
  if (label === 'ENCRYPTED PRIVATE KEY' || /Proc-Type:\s*4,ENCRYPTED/.test(pem)) {
    return 'passphrase-protected private keys are not supported';
  }
  const allowed = want === 'private' ? PRIVATE_LABELS : [...PUBLIC_LABELS, ...PRIVATE_LABELS];
  if (!allowed.includes(label)) {
    const expected = want === 'private' ? 'a private key' : 'a public key or certificate';
    return `expected ${expected}, got a PEM "${label}" block`;
  }
  const endMarker = `-----END ${label}-----`;
  const end = pem.indexOf(endMarker, begin.index);
  if (end === -1) return `the PEM is truncated (no "${endMarker}" line)`;
  const body = pem
    .slice(begin.index + begin[0].length, end)
    .replace(/^[A-Za-z-]+:.*$/gm, '')
    .replace(/\s+/g, '');
  if (body === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(body) || body.length % 4 !== 0) {
    return 'the PEM body is not valid base64 (damaged or truncated)';
  }
  return `the "${label}" data inside the PEM could not be parsed (damaged or truncated)`;
}

export class PemError extends Error {}

export function readPrivateKey(pem: string): KeyObject {
  try {
    return createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new PemError(describePemProblem(pem, 'private'));
  }
}

/** A public key from SPKI or PKCS#1 PEM, an X.509 certificate, or the public half of a private key. */
export function readPublicKey(pem: string): KeyObject {
  try {
    if (pem.includes('-----BEGIN CERTIFICATE-----')) return new X509Certificate(pem).publicKey;
    return createPublicKey({ key: pem, format: 'pem' });
  } catch {
    throw new PemError(describePemProblem(pem, 'public'));
  }
}
