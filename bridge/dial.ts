// From a checked destination to a connected TCP socket: resolve the name once, keep only the addresses policy
// allows, then connect to those addresses themselves (never to the name again, so a second DNS answer cannot
// point the socket somewhere else). One deadline covers DNS and every connect attempt.
import { isIP, type Socket } from 'node:net';
import { isPublicAddress } from './address-policy';
import type { Connector, ResolvedAddress, Resolver } from './config';
import type { Destination } from './destination';

export type DialFailure = 'address-not-public' | 'dns-failed' | 'connect-failed' | 'connect-timeout';

export type DialResult =
  | { readonly ok: true; readonly socket: Socket; readonly address: string }
  | { readonly ok: false; readonly reason: DialFailure; readonly detail?: string };

export interface DialOptions {
  readonly resolver: Resolver;
  readonly connector: Connector;
  readonly timeoutMs: number;
  /** Aborted when the client goes away first; the result is then discarded by the caller. */
  readonly signal: AbortSignal;
}

/**
 * Connects to `target`. When `trusted` (a host-map target) the address policy is skipped; otherwise only public
 * addresses are tried. Never rejects.
 */
export async function dial(target: Destination, trusted: boolean, options: DialOptions): Promise<DialResult> {
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), options.timeoutMs);
  const stop = AbortSignal.any([deadline.signal, options.signal]);
  const timedOut = (): DialResult => ({ ok: false, reason: 'connect-timeout' });
  try {
    const family = isIP(target.host);
    let addresses: ResolvedAddress[];
    if (family === 4 || family === 6) {
      addresses = [{ address: target.host, family }];
    } else {
      const found = await untilAborted(options.resolver(target.host), stop);
      if (found === ABORTED) return timedOut();
      if (found instanceof Error) return { ok: false, reason: 'dns-failed', detail: found.message };
      if (!Array.isArray(found)) return { ok: false, reason: 'dns-failed', detail: 'resolver returned no list' };
      addresses = found;
    }
    const usable = trusted ? addresses : addresses.filter((a) => isPublicAddress(a.address));
    if (usable.length === 0) {
      return addresses.length === 0 ? { ok: false, reason: 'dns-failed' } : { ok: false, reason: 'address-not-public' };
    }
    let lastError = '';
    for (const a of usable) {
      let socket: Socket;
      try {
        socket = options.connector({ address: a.address, port: target.port, family: a.family });
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
        continue;
      }
      const outcome = await connected(socket, stop);
      if (outcome === true) return { ok: true, socket, address: a.address };
      socket.destroy();
      if (outcome === ABORTED) return timedOut();
      lastError = outcome.message;
    }
    return { ok: false, reason: 'connect-failed', detail: lastError };
  } finally {
    clearTimeout(timer);
  }
}

const ABORTED = Symbol('aborted');

function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T | Error | typeof ABORTED> {
  if (signal.aborted) return Promise.resolve(ABORTED);
  return new Promise((resolve) => {
    const onAbort = () => resolve(ABORTED);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => resolve(value),
      (err: unknown) => resolve(err instanceof Error ? err : new Error(String(err))),
    ).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function connected(socket: Socket, signal: AbortSignal): Promise<true | Error | typeof ABORTED> {
  if (signal.aborted) return Promise.resolve(ABORTED);
  return new Promise((resolve) => {
    const done = (outcome: true | Error | typeof ABORTED) => {
      socket.off('connect', onConnect);
      socket.off('error', onError);
      signal.removeEventListener('abort', onAbort);
      resolve(outcome);
    };
    const onConnect = () => done(true);
    const onError = (err: Error) => done(err);
    const onAbort = () => done(ABORTED);
    socket.once('connect', onConnect);
    socket.once('error', onError);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
