// Opening a courier connection for one enrollment, under the bridge's rules: the destination must be in the host
// map (the operator's explicit word, e.g. the sandbox) or in the allowlist, and an allowlisted name is connected
// only at the public addresses it resolves to (bridge/dial.ts). Then TLS, verified against the configured anchors
// for the courier's bag host name, offering only the legacy ALPN the courier client speaks.
import type { Socket } from 'node:net';
import * as tls from 'node:tls';
import type { CourierStream } from '../../lib/apns/courier-client';
import { COURIER_HOSTNAME, COURIER_PORT, pickCourierHost } from '../../lib/apns/courier-connect';
import { COURIER_ALPN } from '../../lib/apns/courier-connection';
import { NetError, type NetErrorCode } from '../../lib/net/errors';
import type { Allowlist } from '../allowlist';
import type { Connector, Resolver } from '../config';
import type { Destination } from '../destination';
import { dial, type DialFailure } from '../dial';
import type { HostMap } from '../host-map';
import { tlsCourierStream } from './courier-stream';
import type { DialGate } from './dial-gate';

const SANDBOX_COURIER_HOSTNAME = 'courier.sandbox.push.apple.com';

export interface CourierDialOptions {
  readonly hostMap: HostMap;
  readonly allowlist: Allowlist;
  readonly resolver: Resolver;
  readonly connector: Connector;
  /** PEM anchors; undefined = Node's default roots. */
  readonly ca: string | undefined;
  /** Numbered hosts to pick from when the enrollment names none. */
  readonly hostCount: number;
  readonly timeoutMs: number;
  readonly gate: DialGate;
  /** Aborted when the watcher shuts down. */
  readonly signal: AbortSignal;
}

const FAILURES: Record<DialFailure, NetErrorCode> = {
  'address-not-public': 'bridge-refused',
  'dns-failed': 'host-not-found',
  'connect-failed': 'connect-failed',
  'connect-timeout': 'connect-timeout',
};

/** The name the courier's certificate carries: the bag host name, not the numbered host (apns.md §1.3). */
export function courierServerName(host: string): string {
  if (host === SANDBOX_COURIER_HOSTNAME || host.endsWith(`-${SANDBOX_COURIER_HOSTNAME}`) || host.endsWith(`.${SANDBOX_COURIER_HOSTNAME}`)) {
    return SANDBOX_COURIER_HOSTNAME;
  }
  if (host === COURIER_HOSTNAME || host.endsWith(`-${COURIER_HOSTNAME}`) || host.endsWith(`.${COURIER_HOSTNAME}`)) return COURIER_HOSTNAME;
  return host;
}

/** Whether the watcher may connect to `destination` at all (the allowlist or the host map names it). */
export function courierDestinationAllowed(destination: Destination, o: Pick<CourierDialOptions, 'hostMap' | 'allowlist'>): boolean {
  return o.hostMap.lookup(destination.host, destination.port) !== undefined || o.allowlist.allows(destination.host, destination.port);
}

/** A connect function for CourierClient: each call dials afresh (a numbered host picked anew when none is fixed). */
export function courierDialer(fixed: Destination | null, o: CourierDialOptions): () => Promise<CourierStream> {
  return () =>
    o.gate.run(async () => {
      const destination = fixed ?? { host: pickCourierHost(COURIER_HOSTNAME, o.hostCount), port: COURIER_PORT };
      const mapped = o.hostMap.lookup(destination.host, destination.port);
      if (mapped === undefined && !o.allowlist.allows(destination.host, destination.port)) {
        throw new NetError('bridge-refused', 'the courier destination is not in the allowlist');
      }
      const started = Date.now();
      const result = await dial(mapped ?? destination, mapped !== undefined, {
        resolver: o.resolver,
        connector: o.connector,
        timeoutMs: o.timeoutMs,
        signal: o.signal,
      });
      if (!result.ok) throw new NetError(FAILURES[result.reason], `could not reach the courier (${result.reason})`);
      return handshake(result.socket, courierServerName(destination.host), o, Math.max(1, o.timeoutMs - (Date.now() - started)));
    });
}

function handshake(socket: Socket, servername: string, o: CourierDialOptions, timeoutMs: number): Promise<CourierStream> {
  return new Promise((resolve, reject) => {
    const secure = tls.connect({
      socket,
      servername,
      ...(o.ca !== undefined ? { ca: o.ca } : {}),
      ALPNProtocols: [...COURIER_ALPN],
      minVersion: 'TLSv1.2',
    });
    const timer = setTimeout(() => fail(new NetError('tls-timeout', `no TLS handshake with the courier within ${timeoutMs} ms`)), timeoutMs);
    const fail = (e: NetError) => {
      clearTimeout(timer);
      secure.off('secureConnect', onSecure);
      secure.destroy();
      reject(e);
    };
    const onError = (e: Error & { code?: string }) => {
      const untrusted = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(e.code ?? '');
      const wrongName = e.code === 'ERR_TLS_CERT_ALTNAME_INVALID';
      fail(
        new NetError(
          wrongName ? 'tls-bad-hostname' : untrusted ? 'tls-untrusted-certificate' : 'tls-handshake-failed',
          `TLS with the courier failed: ${e.message}`,
          { cause: e },
        ),
      );
    };
    const onSecure = () => {
      clearTimeout(timer);
      secure.off('error', onError);
      // From here the stream owns the socket and its errors.
      resolve(tlsCourierStream(secure));
    };
    secure.once('error', onError);
    secure.once('secureConnect', onSecure);
  });
}
