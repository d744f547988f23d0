// Node-only fixtures for the lib/net integration tests: a test PKI, TLS/HTTPS servers on loopback and a tiny
// WebSocket→TCP forwarder that speaks the bridge's tunnel path (/tunnel/<host>:<port>) and close codes.
import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { issue, privateKeyPem, type Issued, type KeyKind } from '../unit/net/pki';

export interface ServerPki {
  root: Issued;
  intermediate: Issued;
  leaf: Issued;
  /** PEM for node:tls `cert`: leaf then intermediate. */
  chainPem: string;
  keyPem: string;
}

/** Root → intermediate → leaf for `names` (DNS names). */
export async function makeServerPki(names: string[], kind: KeyKind = 'ec-p256', rootName = 'Test Root CA'): Promise<ServerPki> {
  const root = await issue({ subject: `CN=${rootName}`, ca: true, kind });
  const intermediate = await issue({ subject: `CN=${rootName} Server Authentication CA`, issuer: root, ca: true, pathLength: 0, kind });
  const leaf = await issue({ subject: `CN=${names[0]}`, issuer: intermediate, dns: names, kind });
  return { root, intermediate, leaf, chainPem: leaf.pem + '\n' + intermediate.pem, keyPem: await privateKeyPem(leaf) };
}

export interface Forwarder {
  url: string;
  /** Tunnels opened so far. */
  readonly opened: number;
  close(): Promise<void>;
}

/** A WebSocket→TCP forwarder; `refuseWith` closes every tunnel with that code instead of connecting. */
export async function startForwarder(options: { refuseWith?: number } = {}): Promise<Forwarder> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  let opened = 0;
  wss.on('connection', (ws, req) => {
    opened++;
    const target = /^\/tunnel\/(.+):(\d+)$/.exec(new URL(req.url ?? '/', 'http://x').pathname);
    if (options.refuseWith || !target) {
      ws.close(options.refuseWith ?? 4400, 'refused by test forwarder');
      return;
    }
    const socket = net.connect(Number(target[2]), target[1]!);
    socket.on('data', (d) => ws.send(d));
    socket.on('end', () => ws.close(1000));
    socket.on('error', () => ws.close(4502, 'connect failed'));
    ws.on('message', (d: Buffer) => socket.write(d));
    ws.on('close', () => socket.destroy());
  });
  const { port } = wss.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}`,
    get opened() {
      return opened;
    },
    close: () =>
      new Promise((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}

export function portOf(server: net.Server): number {
  return (server.address() as AddressInfo).port;
}
