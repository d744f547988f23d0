// Where the watcher may send Web Push requests. A subscription endpoint is a URL the client chose, so without rules
// the watcher would POST to anything it can reach (its own network, cloud metadata services…). Endpoints must be
// https to globally routable addresses, checked when a device enrolls and again when each connection is opened
// (a lookup hook on the request), so a later DNS answer cannot point a push somewhere private. Two explicit
// options relax this for the sandbox and tests: plain http to loopback, and https to private addresses.
import type { LookupFunction } from 'node:net';
import { isIP } from 'node:net';
import { classifyAddress } from '../address-policy';
import type { ResolvedAddress, Resolver } from '../config';
import { ApiError } from './errors';

export interface EndpointPolicy {
  readonly allowHttpLoopback: boolean;
  readonly allowPrivate: boolean;
  readonly resolver: Resolver;
}

const MAX_ENDPOINT_LENGTH = 2048;
// Never a destination, whatever the options say.
const NEVER = new Set(['invalid', 'unspecified', 'multicast', 'broadcast']);

export function addressAllowed(address: string, protocol: string, policy: EndpointPolicy): boolean {
  const cls = classifyAddress(address);
  if (protocol === 'http:') return policy.allowHttpLoopback && cls === 'loopback';
  return cls === 'public' || (policy.allowPrivate && !NEVER.has(cls));
}

function refuse(code: string, message: string): ApiError {
  return new ApiError(403, code, message);
}

/** The endpoint as a URL once it passes; ApiError otherwise. */
export async function checkEndpoint(endpoint: string, policy: EndpointPolicy): Promise<URL> {
  if (endpoint.length > MAX_ENDPOINT_LENGTH) throw new ApiError(400, 'bad-subscription', `the endpoint is longer than ${MAX_ENDPOINT_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new ApiError(400, 'bad-subscription', 'the endpoint is not a URL');
  }
  if (url.username !== '' || url.password !== '' || url.hash !== '') {
    throw new ApiError(400, 'bad-subscription', 'the endpoint may not carry credentials or a fragment');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && policy.allowHttpLoopback)) {
    throw refuse('endpoint-not-allowed', 'the endpoint must be an https: URL');
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  let addresses: ResolvedAddress[];
  if (isIP(host) !== 0) {
    addresses = [{ address: host, family: isIP(host) === 6 ? 6 : 4 }];
  } else {
    try {
      addresses = await policy.resolver(host);
    } catch {
      throw new ApiError(400, 'endpoint-unresolvable', 'the endpoint host does not resolve');
    }
  }
  if (addresses.length === 0) throw new ApiError(400, 'endpoint-unresolvable', 'the endpoint host does not resolve');
  if (!addresses.every((a) => addressAllowed(a.address, url.protocol, policy))) {
    throw refuse('endpoint-not-allowed', url.protocol === 'http:' ? 'a plain http endpoint must be on loopback' : 'the endpoint resolves to a non-public address');
  }
  return url;
}

/** A `lookup` for http(s).request that resolves with the watcher's resolver and keeps only allowed addresses. */
export function policyLookup(protocol: string, policy: EndpointPolicy): LookupFunction {
  return (hostname, options, callback) => {
    policy.resolver(hostname).then(
      (found) => {
        const family = options.family === 4 || options.family === 6 ? options.family : undefined;
        const usable = found.filter((a) => (family === undefined || a.family === family) && addressAllowed(a.address, protocol, policy));
        if (usable.length === 0) {
          const err = Object.assign(new Error(`${hostname} has no address a push may go to`), { code: 'EADDRNOTALLOWED' });
          callback(err, '', 4);
        } else if (options.all) {
          (callback as unknown as (e: null, list: ResolvedAddress[]) => void)(null, usable);
        } else {
          callback(null, usable[0]!.address, usable[0]!.family);
        }
      },
      (e: unknown) => callback(e as NodeJS.ErrnoException, '', 4),
    );
  };
}
