import { describe, expect, it } from 'vitest';
import { createClientAddressResolver, parseTrustedProxies } from './client-address.ts';

describe('parseTrustedProxies', () => {
  it('takes addresses and CIDR blocks of both families, comma-separated', () => {
    expect(parseTrustedProxies(' 10.0.0.0/8, 192.0.2.7 ,2001:db8::/32,, ')).toEqual([
      '10.0.0.0/8',
      '192.0.2.7',
      '2001:db8::/32',
    ]);
    expect(parseTrustedProxies('')).toEqual([]);
  });

  it.each(['10.0.0.0/33', 'lb.internal', '10.0.0.1/8/1', '2001:db8::/129', '10.0.0.0/x'])(
    'refuses %s, naming it',
    (entry) => {
      expect(() => parseTrustedProxies(`192.0.2.1, ${entry}`)).toThrow(JSON.stringify(entry));
    },
  );
});

describe('the client address', () => {
  const behindLb = createClientAddressResolver(['10.0.0.0/8', '2001:db8::/32']);

  it('is the peer when no proxy is trusted, whatever X-Forwarded-For claims', () => {
    const direct = createClientAddressResolver([]);
    expect(direct('::ffff:198.51.100.7', '203.0.113.9')).toBe('198.51.100.7');
    expect(direct(undefined, '203.0.113.9')).toBeNull();
  });

  it('is the peer when the peer is not a trusted proxy', () => {
    expect(behindLb('198.51.100.7', '203.0.113.9')).toBe('198.51.100.7');
  });

  it('behind trusted proxies, is the right-most X-Forwarded-For entry that is not trusted', () => {
    expect(behindLb('10.0.0.2', '203.0.113.9')).toBe('203.0.113.9');
    // A partner's own claim left of the real address is not believed.
    expect(behindLb('10.0.0.2', '1.1.1.1, 203.0.113.9, 10.1.2.3')).toBe('203.0.113.9');
    expect(behindLb('::ffff:10.0.0.2', ['1.1.1.1', '203.0.113.9:4711'])).toBe('203.0.113.9');
    expect(behindLb('2001:db8::5', '[2001:db9::1]:443')).toBe('2001:db9::1');
  });

  it('stops at garbage, and without X-Forwarded-For keeps the proxy', () => {
    expect(behindLb('10.0.0.2', '203.0.113.9, not-an-ip, 10.0.0.9')).toBe('10.0.0.9');
    expect(behindLb('10.0.0.2', undefined)).toBe('10.0.0.2');
    expect(behindLb('10.0.0.2', '10.0.0.3, 10.0.0.4')).toBe('10.0.0.3');
  });
});
