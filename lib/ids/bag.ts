// The IDS bag (ids.md §1): a signed XML plist {bag: <inner XML plist as data>, certs, signature} whose inner
// dictionary maps bag keys to endpoint URLs and tuning numbers. Nobody verifies the signature (TLS to
// init.ess.apple.com already authenticates it), and two of the three reference clients never fetch the bag at
// all, so every URL has the real default as a fallback.
import type { PlistDict, PlistValue } from '../codec/plist';
import { DecodeError } from '../errors';
import { decodeDict, own, requestPlist } from './plist-http';
import type { IdsHttp } from './transport';

export const IDS_BAG_URL = 'https://init.ess.apple.com/WebObjects/VCInit.woa/wa/getBag?ix=3';

const PROFILE = 'https://profile.ess.apple.com/WebObjects/VCProfileService.woa/wa/';
const IDENTITY = 'https://identity.ess.apple.com/WebObjects/TDIdentityService.woa/wa/';

/** Apple's URLs for the bag keys this client uses. */
export const DEFAULT_IDS_URLS = {
  'vc-profile-authenticate': `${PROFILE}authenticateUser`,
  'id-authenticate-ds-id': `${PROFILE}authenticateDS`,
  'id-authenticate-phone-number': `${IDENTITY}authenticatePhoneNumber`,
  'id-get-handles': `${PROFILE}idsGetHandles`,
  'id-register': `${IDENTITY}register`,
  'id-deregister': `${IDENTITY}deregister`,
  'id-get-dependent-registrations': `${IDENTITY}getDependentRegistrations`,
  'id-query': 'https://query.ess.apple.com/WebObjects/QueryService.woa/wa/query',
} as const;

export type IdsUrlKey = keyof typeof DEFAULT_IDS_URLS;

/** Older bags name two endpoints differently. */
const ALIASES: Partial<Record<IdsUrlKey, string>> = {
  'id-authenticate-ds-id': 'id-provision-ds-id',
  'id-authenticate-phone-number': 'id-provision-phone-number',
};

/** `max-uri-multi-query` when the bag has none (2017 capture). */
const DEFAULT_MAX_URIS_PER_QUERY = 35;
const DEFAULT_MAX_AGE_MS = 60 * 60_000;

export class IdsBag {
  constructor(private readonly values: PlistDict = {}) {}

  /** A bag of only the defaults, for clients that do not fetch one. */
  static defaults(): IdsBag {
    return new IdsBag();
  }

  /** The endpoint for a bag key: the bag's https URL if it has one, else Apple's. */
  url(key: IdsUrlKey): string {
    for (const name of [key, ALIASES[key]]) {
      const v = name === undefined ? undefined : own(this.values, name);
      if (typeof v === 'string' && /^https:\/\/[^\s/]+\/\S*$/.test(v)) return v;
    }
    return DEFAULT_IDS_URLS[key];
  }

  /** Any inner value, as the bag has it. */
  value(key: string): PlistValue | undefined {
    return own(this.values, key);
  }

  /** `max-uri-multi-query`: the most handles one lookup may carry. */
  get maxUrisPerQuery(): number {
    const v = own(this.values, 'max-uri-multi-query');
    return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : DEFAULT_MAX_URIS_PER_QUERY;
  }
}

/** Unwraps the outer signed plist and parses the inner bag. */
export function parseIdsBag(outer: Uint8Array): IdsBag {
  return unwrapBag(decodeDict(outer, 'IDS bag'));
}

function unwrapBag(outer: PlistDict): IdsBag {
  const inner = own(outer, 'bag');
  if (!(inner instanceof Uint8Array)) throw new DecodeError('ids-bad-bag', 'the IDS bag has no `bag` data');
  try {
    return new IdsBag(decodeDict(inner, 'IDS bag'));
  } catch (e) {
    throw new DecodeError('ids-bad-bag', 'the inner IDS bag is not a property-list dictionary', { cause: e });
  }
}

export interface BagFetchOptions {
  userAgent?: string;
  url?: string;
}

/** GETs and parses the bag. */
export async function fetchIdsBag(http: IdsHttp, options: BagFetchOptions = {}): Promise<IdsBag> {
  const { bag } = await fetchWithAge(http, options);
  return bag;
}

async function fetchWithAge(http: IdsHttp, options: BagFetchOptions): Promise<{ bag: IdsBag; maxAgeMs: number | undefined }> {
  let maxAgeMs: number | undefined;
  const recording: IdsHttp = async (req) => {
    const res = await http(req);
    maxAgeMs = cacheMaxAge(res.headers['cache-control']);
    return res;
  };
  const headers: Record<string, string> = options.userAgent ? { 'user-agent': options.userAgent } : {};
  const outer = await requestPlist(recording, { url: options.url ?? IDS_BAG_URL, method: 'GET', headers }, 'IDS bag');
  return { bag: unwrapBag(outer), maxAgeMs };
}

/** `max-age` of a Cache-Control header, in ms. */
function cacheMaxAge(values: string[] | undefined): number | undefined {
  for (const v of values ?? []) {
    const m = /(?:^|,)\s*max-age\s*=\s*"?(\d{1,9})"?\s*(?:,|$)/i.exec(v);
    if (m) return Number(m[1]) * 1000;
  }
  return undefined;
}

export interface BagCacheOptions extends BagFetchOptions {
  now?: () => number;
  /** How long a bag is kept when the server does not say (Cache-Control max-age). */
  defaultMaxAgeMs?: number;
}

/** One bag shared by every caller, fetched once and again after it expires; concurrent callers share a fetch. */
export class IdsBagCache {
  private cached: { bag: IdsBag; expiresAt: number } | undefined;
  private inflight: Promise<IdsBag> | undefined;
  private readonly now: () => number;

  constructor(
    private readonly http: IdsHttp,
    private readonly options: BagCacheOptions = {},
  ) {
    this.now = options.now ?? Date.now;
  }

  get(): Promise<IdsBag> {
    if (this.cached && this.now() < this.cached.expiresAt) return Promise.resolve(this.cached.bag);
    this.inflight ??= fetchWithAge(this.http, this.options)
      .then(({ bag, maxAgeMs }) => {
        this.cached = { bag, expiresAt: this.now() + (maxAgeMs ?? this.options.defaultMaxAgeMs ?? DEFAULT_MAX_AGE_MS) };
        return bag;
      })
      .finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  /** Forgets the bag; the next get() fetches. */
  invalidate(): void {
    this.cached = undefined;
  }
}
