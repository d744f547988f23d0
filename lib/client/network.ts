// Every way the client reaches Apple (or the sandbox), all through the bridge with TLS terminated here: pooled
// HTTPS for IDS and the relay, one-off HTTPS for albert, the courier dialer, and the IDS bag.
import { ALBERT_HOST, type ActivationOptions } from '../apns/albert';
import { courierConnector } from '../apns/courier-connect';
import type { CourierStream } from '../apns/courier-client';
import { IdsBagCache } from '../ids/bag';
import { createTunnelHttp, type TunnelHttp } from '../ids/transport';
import { httpsRequest } from '../net/http';
import type { ResolvedConfig } from './config';

export interface Network {
  /** IDS endpoints and the registration relay (kept-alive connections per host). */
  http: TunnelHttp;
  /** albert, as activateDevice takes it. */
  albert: ActivationOptions['http'];
  /** Opens one courier connection (a fresh numbered host each call). */
  courier: () => Promise<CourierStream>;
  bag: IdsBagCache;
  close(): void;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;
const DEFAULT_HTTP_TIMEOUT_MS = 30_000;

export function createNetwork(config: ResolvedConfig): Network {
  const connectTimeoutMs = config.tuning.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const timeoutMs = config.tuning.httpTimeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS;
  const bridge = {
    bridgeUrl: config.bridgeUrl,
    WebSocketImpl: config.WebSocketImpl,
    trustedRoots: config.trustedRoots,
    ...(config.bridgeToken !== undefined ? { bridgeToken: config.bridgeToken } : {}),
  };
  const http = createTunnelHttp({ ...bridge, connectTimeoutMs, timeoutMs });
  return {
    http,
    albert: (req) => httpsRequest({ ...bridge, host: ALBERT_HOST, connectTimeoutMs, timeoutMs, ...req }),
    courier: courierConnector({ ...bridge, timeoutMs: connectTimeoutMs }),
    bag: new IdsBagCache(http),
    close: () => http.close(),
  };
}
