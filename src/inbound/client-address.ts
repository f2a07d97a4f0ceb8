/**
 * The partner's address behind trusted proxies (`KEYGATE_TRUSTED_PROXIES`), as nginx's real_ip
 * module with real_ip_recursive and Kong's trusted_ips do: when the peer is a trusted proxy (a load
 * balancer in front of keygate), the client is the right-most X-Forwarded-For entry that is not
 * itself trusted. Entries left of it were written by whoever called that proxy, so they are not
 * believed. With no trusted proxies the peer is the client, whatever X-Forwarded-For says.
 */
import { BlockList, isIP } from 'node:net';

export type ClientAddressResolver = (
  peer: string | undefined,
  forwardedFor: string | string[] | undefined,
) => string | null;

/** Parses `10.0.0.0/8, 192.0.2.7, 2001:db8::/32`; throws naming the first entry that is neither. */
export function parseTrustedProxies(text: string): string[] {
  const entries = text
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  for (const entry of entries) {
    const [address, prefix, extra] = entry.split('/');
    const family = isIP(address ?? '');
    const bits = family === 4 ? 32 : 128;
    const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits);
    if (family === 0 || !prefixOk || extra !== undefined) {
      throw new Error(`${JSON.stringify(entry)} is not an IP address or CIDR block`);
    }
  }
  return entries;
}

export function createClientAddressResolver(trusted: readonly string[]): ClientAddressResolver {
  if (trusted.length === 0) return (peer) => (peer ? unmapped(peer) : null);
  const list = new BlockList();
  for (const entry of trusted) {
    const [address, prefix] = entry.split('/') as [string, string | undefined];
    const type = isIP(address) === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  const isTrusted = (address: string) => list.check(address, isIP(address) === 4 ? 'ipv4' : 'ipv6');

  return (peer, forwardedFor) => {
    if (!peer) return null;
    let client = unmapped(peer);
    if (!isTrusted(client) || forwardedFor === undefined) return client;
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = bareAddress(hops[i]!.trim());
      // Garbage in the chain ends the walk at the last address a trusted proxy vouched for.
      if (hop === undefined) break;
      client = hop;
      if (!isTrusted(hop)) break;
    }
    return client;
  };
}

/** `::ffff:192.0.2.1` -> `192.0.2.1` (an IPv4 peer on a dual-stack socket). */
export function unmapped(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** An X-Forwarded-For entry as an address: `192.0.2.1`, `192.0.2.1:443`, `[2001:db8::1]:443`. */
function bareAddress(entry: string): string | undefined {
  let address = entry;
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(entry);
  if (bracketed) address = bracketed[1]!;
  else if (/^[\d.]+:\d+$/.test(entry)) address = entry.slice(0, entry.indexOf(':'));
  return isIP(address) ? unmapped(address) : undefined;
}
