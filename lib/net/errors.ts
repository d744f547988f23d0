// Typed failures of the network path. Each code names one thing a person can act on (the bridge refused the
// host, the certificate is not trusted, the server closed early…), so a UI can switch on `code` and explain it.
import { CeruleanError } from '../errors';

export type NetErrorCode =
  // The bridge and the WebSocket tunnel.
  | 'bridge-unreachable' // the WebSocket to the bridge could not be opened
  | 'bridge-timeout' // the WebSocket did not open in time
  | 'bridge-bad-destination' // 4400: the bridge could not parse host:port
  | 'bridge-unauthorized' // 4401: missing or wrong access token
  | 'bridge-refused' // 4403: the bridge does not allow this host:port (or it resolves to a private address)
  | 'host-not-found' // 4404: the bridge found no address for the host
  | 'idle-timeout' // 4408: nothing passed either way for the bridge's idle timeout
  | 'bridge-limit' // 4429: too many tunnels (total or from this address)
  | 'connect-failed' // 4502: the bridge could not reach the host, or the connection to it failed
  | 'connect-timeout' // 4504: the bridge timed out connecting to the host
  | 'bridge-going-away' // 1001: the bridge is shutting down
  | 'bridge-error' // any other abnormal close by the bridge
  | 'connection-lost' // the tunnel dropped without a close handshake
  | 'connection-closed' // the peer closed, or the stream was used after close
  | 'receive-overflow' // the peer sent more than the unread-data buffer holds
  // TLS.
  | 'tls-timeout'
  | 'tls-handshake-failed'
  | 'tls-alert' // the server sent a fatal alert
  | 'tls-protocol-error' // the server broke the TLS protocol (bad message order, unoffered choice, bad record)
  | 'tls-untrusted-certificate' // no valid path from the server's certificate to a pinned anchor
  | 'tls-bad-hostname' // the certificate is not for the name we connected to
  | 'tls-certificate-expired' // a certificate on the path is expired or not yet valid
  | 'tls-bad-certificate' // a certificate is malformed or not usable for a TLS server
  | 'bad-trust-anchor' // a configured root is not a parseable certificate
  // HTTP.
  | 'http-timeout'
  | 'http-bad-response'
  | 'http-headers-too-large'
  | 'http-body-too-large';

export class NetError extends CeruleanError {
  declare readonly code: NetErrorCode;
  /** The WebSocket close code when the error came from the tunnel closing. */
  readonly closeCode?: number;

  constructor(code: NetErrorCode, message: string, options?: { cause?: unknown; closeCode?: number }) {
    super(code, message, options);
    if (options?.closeCode !== undefined) this.closeCode = options.closeCode;
  }
}

/** The bridge's close codes (bridge/README.md, "Close codes"). */
const BRIDGE_CLOSE_CODES: Record<number, [NetErrorCode, string]> = {
  1001: ['bridge-going-away', 'the bridge is shutting down'],
  4400: ['bridge-bad-destination', 'the bridge could not read the destination'],
  4401: ['bridge-unauthorized', 'the bridge rejected the access token'],
  4403: ['bridge-refused', 'the bridge does not allow this destination'],
  4404: ['host-not-found', 'the bridge found no address for the destination'],
  4408: ['idle-timeout', 'the bridge closed the idle tunnel'],
  4429: ['bridge-limit', 'the bridge has too many open tunnels'],
  4502: ['connect-failed', 'the bridge could not connect to the destination'],
  4504: ['connect-timeout', 'the bridge timed out connecting to the destination'],
};

/**
 * The error for a WebSocket close, or undefined for a clean end of stream (1000 normal, 1005 no status).
 * `opened` tells a failed upgrade (1006 before open: the bridge is unreachable) from a dropped tunnel.
 */
export function closeCodeError(code: number, reason: string, opened: boolean): NetError | undefined {
  if (code === 1000 || code === 1005) return undefined;
  const known = BRIDGE_CLOSE_CODES[code];
  const detail = reason ? `: ${reason}` : '';
  if (known) return new NetError(known[0], known[1] + detail, { closeCode: code });
  if (code === 1006) {
    return opened
      ? new NetError('connection-lost', 'the tunnel to the bridge dropped', { closeCode: code })
      : new NetError('bridge-unreachable', 'could not open a WebSocket to the bridge', { closeCode: code });
  }
  return new NetError('bridge-error', `the bridge closed the tunnel with code ${code}${detail}`, { closeCode: code });
}

/** Anything thrown below the net API becomes a NetError; NetErrors pass through unchanged. */
export function asNetError(e: unknown, code: NetErrorCode, message: string): NetError {
  return e instanceof NetError ? e : new NetError(code, message, { cause: e });
}
