// A bridge that sends the client to a server holding another CA's certificate for the same name — the
// man-in-the-middle a hostile bridge operator would try — gets a certificate error, never a response.
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startBridge, type RunningBridge } from '../../bridge/server';
import { fromUtf8 } from '../../lib/codec/bytes';
import { NetError } from '../../lib/net/errors';
import { httpsRequest } from '../../lib/net/http';
import { makeServerPki, type ServerPki } from './net-helpers';

const HOST = 'identity.ess.apple.com';
const servers: https.Server[] = [];
let genuine: ServerPki;
let impostor: ServerPki;

async function serve(pki: ServerPki, body: string): Promise<number> {
  const server = https.createServer({ key: pki.keyPem, cert: pki.chainPem }, (_req, res) => res.end(body));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function bridgeTo(port: number): Promise<RunningBridge> {
  return startBridge({ port: 0, hostMap: { [`${HOST}:443`]: `127.0.0.1:${port}` }, logSink: () => {} });
}

beforeAll(async () => {
  genuine = await makeServerPki([HOST], 'ec-p256', 'Pinned Root');
  impostor = await makeServerPki([HOST], 'ec-p256', 'Pinned Root'); // same names, different keys
});

afterAll(() => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

describe('a bridge that redirects to another server', () => {
  const request = (bridge: RunningBridge) =>
    httpsRequest({ bridgeUrl: bridge.url, WebSocketImpl: WebSocket, host: HOST, port: 443, trustedRoots: [genuine.root.pem], method: 'GET', path: '/' });

  it('reaches the genuine server through the host map', async () => {
    const bridge = await bridgeTo(await serve(genuine, 'genuine'));
    try {
      expect(fromUtf8((await request(bridge)).body)).toBe('genuine');
    } finally {
      await bridge.close();
    }
  });

  it('fails closed when the host map points at an impostor with a look-alike chain', async () => {
    const bridge = await bridgeTo(await serve(impostor, 'secrets for the operator'));
    try {
      const err = await request(bridge).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(NetError);
      expect((err as NetError).code).toBe('tls-untrusted-certificate');
    } finally {
      await bridge.close();
    }
  });
});
