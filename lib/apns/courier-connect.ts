// The `connect` function a CourierClient dials with: WebSocket to the bridge → TCP to a numbered courier host →
// TLS verified for the bag's host name (apns.md §1.2–1.3). Each call picks a host afresh, so a reconnect after a
// failure usually lands on another one.
import { CeruleanError } from '../errors';
import { bridgeProtocols, openWebSocketStream, tunnelUrl, type WebSocketConstructor } from '../net/byte-stream';
import type { CertificateInput } from '../net/cert-verify';
import { DEFAULT_CONNECT_TIMEOUT_MS } from '../net/http';
import { connectTls } from '../net/tls';
import { COURIER_ALPN, type CourierStream } from './courier-connection';
import { COURIER_HOST_COUNT, COURIER_HOSTNAME, COURIER_PORT } from './hosts';

/** `APNSCourierHostname` and `APNSCourierHostcount` of Apple's bag (§1.1). */
export { COURIER_HOST_COUNT, COURIER_HOSTNAME, COURIER_PORT };

export interface CourierConnectOptions {
  /** The bridge, e.g. wss://bridge.example. */
  bridgeUrl: string;
  WebSocketImpl: WebSocketConstructor;
  bridgeToken?: string;
  /** Anchors for the courier's certificate: Apple Server Authentication CA, or the sandbox's root. */
  trustedRoots: readonly CertificateInput[];
  /** The bag's APNSCourierHostname (default courier.push.apple.com). */
  hostname?: string;
  /** The bag's APNSCourierHostcount (default 50); hosts are `<n>-<hostname>`, n in 1…count. */
  hostCount?: number;
  /** A fixed host to dial instead of a numbered one. */
  courierHost?: string;
  /** 5223 (default), or apsd's alternate 443. */
  port?: number;
  /** Name the certificate must carry; the bag host name, not the numbered one (default `hostname`). */
  serverName?: string;
  /** For the WebSocket and for the TLS handshake, each (default 15 s). */
  timeoutMs?: number;
  /** Uniform in [0, 1), to pick the host (default Math.random). */
  random?: () => number;
}

/** `<n>-<hostname>` with n uniform in 1…count. */
export function pickCourierHost(hostname: string, count: number, random: () => number = Math.random): string {
  const n = 1 + Math.min(count - 1, Math.floor(random() * count));
  return `${n}-${hostname}`;
}

export function courierConnector(options: CourierConnectOptions): () => Promise<CourierStream> {
  const hostname = options.hostname ?? COURIER_HOSTNAME;
  const count = options.hostCount ?? COURIER_HOST_COUNT;
  if (!Number.isSafeInteger(count) || count < 1) throw new CeruleanError('bad-option', 'hostCount must be a positive integer');
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  // Checked now, so a bad token fails at configuration rather than on every reconnect.
  const protocols = options.bridgeToken !== undefined ? bridgeProtocols(options.bridgeToken) : undefined;
  return async () => {
    const host = options.courierHost ?? pickCourierHost(hostname, count, options.random);
    const stream = await openWebSocketStream({
      url: tunnelUrl(options.bridgeUrl, host, options.port ?? COURIER_PORT),
      WebSocketImpl: options.WebSocketImpl,
      ...(protocols ? { protocols } : {}),
      timeoutMs,
    });
    return connectTls(stream, {
      serverName: options.serverName ?? hostname,
      alpn: COURIER_ALPN,
      trustedRoots: options.trustedRoots,
      timeoutMs,
    });
  };
}
