import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bindingAad, openText, sealText } from './envelope.ts';

describe('envelope', () => {
  const key = randomBytes(32);

  it('round-trips text as base64(iv | ciphertext | tag) with a fresh IV each time', () => {
    const aad = bindingAad('test', 'a');
    const first = sealText(key, 'héllo', aad);
    expect(Buffer.from(first, 'base64')).toHaveLength(12 + Buffer.byteLength('héllo') + 16);
    expect(sealText(key, 'héllo', aad)).not.toBe(first);
    expect(openText(key, first, aad)).toBe('héllo');
  });

  it('refuses another AAD, another key or altered bytes', () => {
    const sealed = sealText(key, 'value', bindingAad('test', 'a'));
    expect(() => openText(key, sealed, bindingAad('test', 'b'))).toThrow('does not authenticate');
    expect(() => openText(randomBytes(32), sealed, bindingAad('test', 'a'))).toThrow('does not authenticate');
    const bytes = Buffer.from(sealed, 'base64');
    bytes[14]! ^= 1;
    expect(() => openText(key, bytes.toString('base64'), bindingAad('test', 'a'))).toThrow(
      'does not authenticate',
    );
  });

  it('encodes bindings so that no two tuples collide', () => {
    const encodings = [
      bindingAad('d', 'ab', 'c'),
      bindingAad('d', 'a', 'bc'),
      bindingAad('d', 'a\0b', 'c'),
      bindingAad('d', 'a', 'b\0c'),
      bindingAad('d', 'abc'),
      bindingAad('d', 'abc', ''),
    ].map((b) => b.toString('hex'));
    expect(new Set(encodings).size).toBe(encodings.length);
  });
});
