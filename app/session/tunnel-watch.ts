// The client says little about where it is while registering, but every connection it makes is a bridge tunnel
// to a named host (`<bridge>/tunnel/<host>:<port>`). This WebSocket wrapper reports which host each tunnel goes to,
// when bytes go out on it and how it closed, so the UI can show progress (albert → courier → IDS → relay) and say
// which server a failure was about. It sees only hosts and close codes: the tunnels carry TLS.
import { ALBERT_HOST, COURIER_HOSTNAME } from '../../lib/apns/hosts';
import type { WebSocketConstructor } from '../../lib/net/byte-stream';
import { closeCodeError, type NetError } from '../../lib/net/errors';

export type TunnelEvent =
  | { kind: 'open'; host: string }
  | { kind: 'send'; host: string }
  | { kind: 'close'; host: string; error?: NetError };

type Listener = (event: TunnelEvent) => void;

const listeners = new Set<Listener>();

/** Listens to every tunnel of every client on this page. */
export function watchTunnels(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function emit(event: TunnelEvent): void {
  for (const l of listeners) {
    try {
      l(event);
    } catch {
      // A progress display must never break a connection.
    }
  }
}

/** The destination host of a tunnel URL ('' when it is not one). */
export function tunnelHost(url: string | URL): string {
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch {
    return '';
  }
  const m = /\/tunnel\/(\[[^\]]+\]|[^/:]+):\d+$/.exec(path);
  return m?.[1] ? decodeURIComponent(m[1]).toLowerCase() : '';
}

export type HostRole = 'albert' | 'courier' | 'relay' | 'ids';

/** What a tunnel's host is for; the relay is whatever host the relay URL names. */
export function hostRole(host: string, relayHost: string | undefined): HostRole {
  if (host === ALBERT_HOST) return 'albert';
  if (host === COURIER_HOSTNAME || host.endsWith(`-${COURIER_HOSTNAME}`)) return 'courier';
  if (relayHost !== undefined && host === relayHost.toLowerCase()) return 'relay';
  return 'ids';
}

/** The browser's WebSocket, reporting its tunnels to watchTunnels() listeners. */
export function createWatchedWebSocket(): WebSocketConstructor {
  return class WatchedWebSocket extends WebSocket {
    private readonly host: string;
    private wasOpen = false;

    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols);
      this.host = tunnelHost(url);
      emit({ kind: 'open', host: this.host });
      this.addEventListener('open', () => (this.wasOpen = true));
      this.addEventListener('close', (e) => {
        const error = closeCodeError(e.code, e.reason, this.wasOpen);
        emit({ kind: 'close', host: this.host, ...(error ? { error } : {}) });
      });
    }

    override send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
      emit({ kind: 'send', host: this.host });
      super.send(data as Parameters<WebSocket['send']>[0]);
    }
  };
}
