// Apple's host names as the sandbox serves them, the server identities (certificate SAN sets) that cover them, and
// the host map: the `host:port → address:port` table the bridge and the tests use instead of DNS.
import path from 'node:path';
import { writeFileAtomic } from './store';

export const HOSTS = {
  albert: 'albert.apple.com',
  idsInit: 'init.ess.apple.com',
  identity: 'identity.ess.apple.com',
  profile: 'profile.ess.apple.com',
  query: 'query.ess.apple.com',
  static: 'static.ess.apple.com',
  /** The APNs bag over plain HTTP (apns.md §1.1). */
  apnsBagHttp: 'init-p01st.push.apple.com',
  apnsBag: 'init.push.apple.com',
  apnsBagSandbox: 'init.sandbox.push.apple.com',
  /** The carrier list (ids.md §2.4). */
  itunes: 'itunes.apple.com',
  /** Carrier bundles since 2018 (https), and before (listed as http://). */
  carrierBundles: 'updates.cdn-apple.com',
  carrierBundlesLegacy: 'appldnld.apple.com',
  gsa: 'gsa.apple.com',
  setup: 'setup.icloud.com',
  /** `.invalid` can never resolve on the real Internet, so a misconfigured client fails instead of leaking. */
  relay: 'registration-relay.sandbox.cerulean.invalid',
} as const;

export const COURIER_HOSTNAME = 'courier.push.apple.com';
export const COURIER_SANDBOX_HOSTNAME = 'courier.sandbox.push.apple.com';
/**
 * What the sandbox's APNs bag announces as `APNSCourierHostcount`. 50 as Apple's bag: beeper/imessage and pypush
 * `main` hard-code hosts 1…50 instead of reading the bag, and the host map must have every name they may dial.
 */
export const DEFAULT_COURIER_HOST_COUNT = 50;
/** 5223, and 443 as apsd's alternate port (apns.md §1.2). */
export const COURIER_PORTS = [5223, 443] as const;

/** Hosts the sandbox's HTTPS listener answers for on port 443. */
export const HTTPS_HOSTS: readonly string[] = [
  HOSTS.albert,
  HOSTS.idsInit,
  HOSTS.identity,
  HOSTS.profile,
  HOSTS.query,
  HOSTS.static,
  HOSTS.apnsBagHttp,
  HOSTS.apnsBag,
  HOSTS.apnsBagSandbox,
  HOSTS.itunes,
  HOSTS.carrierBundles,
  HOSTS.carrierBundlesLegacy,
  HOSTS.gsa,
  HOSTS.setup,
  HOSTS.relay,
];

/** Hosts clients reach over plain HTTP on port 80: the APNs bag, the IDS validation certificate, old carrier bundles. */
export const HTTP_HOSTS: readonly string[] = [HOSTS.apnsBagHttp, HOSTS.static, HOSTS.carrierBundlesLegacy];

/** A server certificate: its file name in the data dir and the DNS names it carries. */
export interface ServerIdentity {
  name: string;
  sans: readonly string[];
}

// Grouped the way Apple's own certificates are: one per service family. SNI picks an exact SAN before a wildcard.
export const SERVER_IDENTITIES: readonly ServerIdentity[] = [
  {
    name: 'courier',
    sans: [
      COURIER_HOSTNAME,
      '*.push.apple.com',
      COURIER_SANDBOX_HOSTNAME,
      '*.sandbox.push.apple.com',
      'windows.courier.push.apple.com',
    ],
  },
  { name: 'push-init', sans: [HOSTS.apnsBag, HOSTS.apnsBagHttp, HOSTS.apnsBagSandbox] },
  {
    name: 'ess',
    sans: ['*.ess.apple.com', HOSTS.idsInit, HOSTS.identity, HOSTS.profile, HOSTS.query, HOSTS.static],
  },
  { name: 'albert', sans: [HOSTS.albert] },
  { name: 'apple-misc', sans: [HOSTS.itunes, HOSTS.gsa, HOSTS.setup] },
  { name: 'apple-cdn', sans: [HOSTS.carrierBundles, HOSTS.carrierBundlesLegacy] },
  { name: 'relay', sans: [HOSTS.relay] },
];

/**
 * `host:port` keys of every courier name a client may dial: numbered, bare, Windows and sandbox. Clients disagree
 * on the range (0…count, 1…count, 1…count−1, or a hard-coded 1…50), so the map covers 0…max(count, 50).
 */
export function courierHostKeys(count: number = DEFAULT_COURIER_HOST_COUNT): string[] {
  const names = [COURIER_HOSTNAME, COURIER_SANDBOX_HOSTNAME, 'windows.courier.push.apple.com'];
  for (let n = 0; n <= Math.max(count, DEFAULT_COURIER_HOST_COUNT); n++) names.push(`${n}-${COURIER_HOSTNAME}`, `${n}-${COURIER_SANDBOX_HOSTNAME}`);
  return names.flatMap((h) => COURIER_PORTS.map((p) => `${h}:${p}`));
}

/** Whether `hostname` is covered by a certificate name (exact, or a `*.` wildcard for exactly one label). */
export function sanMatches(san: string, hostname: string): boolean {
  const host = hostname.toLowerCase();
  const name = san.toLowerCase();
  if (!name.startsWith('*.')) return name === host;
  const dot = host.indexOf('.');
  return dot > 0 && host.slice(dot + 1) === name.slice(2);
}

/** The file `host-map.json` in the data dir; `hosts` maps `apple-host:port` to the local `address:port`. */
export interface HostMap {
  hosts: Record<string, string>;
  /** Path of the root CA PEM a client must trust. */
  caFile: string;
  caPem: string;
  /** Loopback URL of the admin page, when it runs. */
  admin?: string;
}

export const HOST_MAP_FILE = 'host-map.json';

export async function writeHostMap(dataDir: string, map: HostMap): Promise<string> {
  const file = path.join(dataDir, HOST_MAP_FILE);
  await writeFileAtomic(file, JSON.stringify(map, null, 2) + '\n');
  return file;
}
