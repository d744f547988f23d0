// Which resolved addresses the bridge may connect to. Only globally routable unicast addresses pass: anything that
// could reach the bridge's own machine, its network or a special-purpose range is refused, including IPv4
// addresses smuggled inside IPv6 forms (IPv4-mapped, NAT64, 6to4). The host map bypasses this on purpose.
import { isIPv4, isIPv6 } from 'node:net';

export type AddressClass =
  | 'public'
  | 'invalid'
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'cgnat'
  | 'link-local'
  | 'multicast'
  | 'broadcast'
  | 'documentation'
  | 'benchmarking'
  | 'reserved'
  | 'unique-local'
  | 'site-local'
  | 'translation';

/** IPv4 dotted quad → 32-bit value, or null when it is not exactly four decimal octets. */
export function parseIPv4(address: string): number | null {
  if (!isIPv4(address)) return null;
  let value = 0;
  for (const part of address.split('.')) value = value * 256 + Number(part);
  return value;
}

/** IPv6 text → eight 16-bit groups, or null. Zone ids ("%eth0") are not accepted. */
export function parseIPv6(address: string): number[] | null {
  if (!isIPv6(address) || address.includes('%')) return null;
  const groupsOf = (side: string): number[] => {
    if (side === '') return [];
    const out: number[] = [];
    for (const part of side.split(':')) {
      if (part.includes('.')) {
        const v4 = parseIPv4(part) ?? 0;
        out.push(v4 >>> 16, v4 & 0xffff);
      } else {
        out.push(parseInt(part, 16));
      }
    }
    return out;
  };
  const gap = address.indexOf('::');
  if (gap === -1) return groupsOf(address);
  const head = groupsOf(address.slice(0, gap));
  const tail = groupsOf(address.slice(gap + 2));
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

function inV4(value: number, base: string, bits: number): boolean {
  const b = parseIPv4(base) ?? 0;
  const shift = 32 - bits;
  return Math.floor(value / 2 ** shift) === Math.floor(b / 2 ** shift);
}

// Ordered: the first matching range names the class.
const V4_RANGES: ReadonlyArray<readonly [string, number, AddressClass]> = [
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'cgnat'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, 'reserved'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['255.255.255.255', 32, 'broadcast'],
  ['240.0.0.0', 4, 'reserved'],
];

export function classifyIPv4(value: number): AddressClass {
  for (const [base, bits, cls] of V4_RANGES) if (inV4(value, base, bits)) return cls;
  return 'public';
}

function embeddedV4(high: number, low: number): number {
  return high * 65536 + low;
}

export function classifyIPv6(g: readonly number[]): AddressClass {
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = g;
  const firstSixZero = g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0;
  if (firstSixZero && g5 === 0xffff) return classifyIPv4(embeddedV4(g6, g7)); // ::ffff:a.b.c.d
  if (firstSixZero && g5 === 0) {
    if (g6 === 0 && g7 === 0) return 'unspecified';
    if (g6 === 0 && g7 === 1) return 'loopback';
    return 'reserved'; // deprecated IPv4-compatible form
  }
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) {
    return classifyIPv4(embeddedV4(g6, g7)); // NAT64 well-known prefix
  }
  if (g0 === 0x2002) return classifyIPv4(embeddedV4(g1, g2)); // 6to4
  if ((g0 & 0xff00) === 0xff00) return 'multicast';
  if ((g0 & 0xffc0) === 0xfe80) return 'link-local';
  if ((g0 & 0xffc0) === 0xfec0) return 'site-local';
  if ((g0 & 0xfe00) === 0xfc00) return 'unique-local';
  // Everything below is inside 2000::/3, the only global unicast space; outside it nothing is routable.
  if ((g0 & 0xe000) !== 0x2000) return 'reserved';
  if (g0 === 0x2001 && g1 === 0x0db8) return 'documentation';
  if (g0 === 0x2001 && g1 < 0x0200) return 'translation'; // 2001::/23: Teredo, benchmarking, ORCHID, …
  if (g0 === 0x3fff && g1 < 0x1000) return 'documentation'; // 3fff::/20
  return 'public';
}

/** Classifies an IP literal; 'invalid' for anything that is not one. */
export function classifyAddress(address: string): AddressClass {
  const v4 = parseIPv4(address);
  if (v4 !== null) return classifyIPv4(v4);
  const v6 = parseIPv6(address);
  if (v6 !== null) return classifyIPv6(v6);
  return 'invalid';
}

export function isPublicAddress(address: string): boolean {
  return classifyAddress(address) === 'public';
}

/**
 * The key per-client limits count under: the address itself for IPv4 (IPv4-mapped IPv6 unwrapped), the /64 for
 * IPv6, since one subscriber usually holds a whole /64.
 */
export function clientKey(address: string): string {
  const v6 = parseIPv6(address);
  if (v6 === null) return address;
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = v6;
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0xffff) {
    return `${g6 >>> 8}.${g6 & 0xff}.${g7 >>> 8}.${g7 & 0xff}`;
  }
  return `${[g0, g1, g2, g3].map((x) => x.toString(16)).join(':')}::/64`;
}
