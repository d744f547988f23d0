// The destinations a tunnel may name: host patterns with one port each. A pattern is a lower-case DNS name whose
// leftmost label may hold one `*`, standing for one or more letters, digits, `-` or `_` inside that label (never
// a dot): `*-courier.push.apple.com` matches `17-courier.push.apple.com`, not `a.b-courier.push.apple.com`.
// An IP literal pattern matches only that address.
import { BridgeConfigError } from './errors';
import { normalizeHost, parseHostPort, parsePort } from './destination';

export interface AllowRule {
  readonly pattern: string;
  readonly port: number;
}

const COURIER_PATTERNS = [
  '*-courier.push.apple.com',
  'courier.push.apple.com',
  '*.courier.push.apple.com',
  '*-courier.sandbox.push.apple.com',
  'courier.sandbox.push.apple.com',
  '*.courier.sandbox.push.apple.com',
];
const HTTPS_HOSTS = [
  'identity.ess.apple.com',
  'profile.ess.apple.com',
  'init.ess.apple.com',
  'query.ess.apple.com',
  'static.ess.apple.com',
  'albert.apple.com',
  'init-p01st.push.apple.com',
  'init.push.apple.com',
  'init.sandbox.push.apple.com',
];
// Carrier gateway discovery for phone registration (ids.md §2.4): the iTunes carrier list and the carrier bundles
// (.ipcc) it links to. Bundles since 2018 are on updates.cdn-apple.com; older ones are listed as http:// URLs on
// appldnld.apple.com, which the client fetches over TLS on 443 like everything else it reaches through here.
const CARRIER_HOSTS = ['itunes.apple.com', 'updates.cdn-apple.com', 'appldnld.apple.com'];
// Fetched over plain HTTP by the clients (the APNs bag and the validation certificate).
const PLAIN_HTTP_HOSTS = ['init-p01st.push.apple.com', 'static.ess.apple.com'];

/** Apple's courier, IDS, albert, bag and carrier-bundle hosts, as `pattern:port` entries. */
export const APPLE_DEFAULT_ALLOW: readonly string[] = [
  ...COURIER_PATTERNS.flatMap((p) => [`${p}:5223`, `${p}:443`]),
  ...HTTPS_HOSTS.map((h) => `${h}:443`),
  ...CARRIER_HOSTS.map((h) => `${h}:443`),
  ...PLAIN_HTTP_HOSTS.map((h) => `${h}:80`),
];

const LABEL_WITH_STAR = /^[a-z0-9_-]*\*[a-z0-9_-]*$/;

/** Compiles a host pattern; throws BridgeConfigError when it is not a DNS name, IP literal or starred name. */
export function compileHostPattern(pattern: string): (host: string) => boolean {
  const lower = pattern.toLowerCase();
  const star = lower.indexOf('*');
  if (star === -1) {
    const host = normalizeHost(lower);
    if (host === null) throw new BridgeConfigError('bad-pattern', `not a host name or IP address: ${pattern}`);
    return (h) => h === host;
  }
  const dot = lower.indexOf('.');
  const first = dot === -1 ? lower : lower.slice(0, dot);
  const rest = dot === -1 ? '' : lower.slice(dot + 1);
  if (!LABEL_WITH_STAR.test(first) || rest === '' || normalizeHost(rest) !== rest) {
    throw new BridgeConfigError('bad-pattern', `a '*' may appear once, in the leftmost label of a DNS name: ${pattern}`);
  }
  const [before = '', after = ''] = first.split('*');
  const suffix = `${after}.${rest}`;
  return (h) => {
    if (!h.startsWith(before) || !h.endsWith(suffix)) return false;
    const middle = h.slice(before.length, h.length - suffix.length);
    return middle.length > 0 && /^[a-z0-9_-]+$/.test(middle);
  };
}

/** Parses `pattern:port`; IPv6 literals go in brackets (`[2001:db8::1]:443`). */
export function parseAllowRule(entry: string): AllowRule {
  const text = entry.trim();
  const colon = text.lastIndexOf(':');
  const port = colon === -1 ? null : parsePort(text.slice(colon + 1));
  const pattern = text.slice(0, colon);
  if (port !== null && pattern.includes('*')) {
    compileHostPattern(pattern);
    return { pattern: pattern.toLowerCase(), port };
  }
  const exact = parseHostPort(text);
  if (exact === null) throw new BridgeConfigError('bad-allow-entry', `expected pattern:port, got ${JSON.stringify(entry)}`);
  return { pattern: exact.host, port: exact.port };
}

export class Allowlist {
  private readonly byPort = new Map<number, Array<(host: string) => boolean>>();

  constructor(rules: readonly AllowRule[]) {
    for (const rule of rules) {
      const list = this.byPort.get(rule.port) ?? [];
      list.push(compileHostPattern(rule.pattern));
      this.byPort.set(rule.port, list);
    }
  }

  /** `host` must already be normalized (see destination.ts). */
  allows(host: string, port: number): boolean {
    return this.byPort.get(port)?.some((match) => match(host)) ?? false;
  }
}
