// Fixtures for the lib/ids client suites: the real sandbox (courier + IDS + relay) in a temp dir, the real bridge
// with the sandbox's host map, lib/ids's tunnel transport through it (ws WebSocket, trusting only the sandbox CA),
// and a device whose push credentials come the way a phone gets them: a push certificate from the sandbox's albert
// CA and a token from a raw courier connect (IDS requires the token to be bound to that certificate).
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { WebSocket } from 'ws';
import { startBridge, type RunningBridge } from '../../bridge/server';
import { FakeClock } from '../../sandbox/context';
import { protocolServices, type ProtocolServices } from '../../sandbox/services';
import type { Sandbox, SandboxOptions } from '../../sandbox/sandbox';
import type { SandboxConfig } from '../../sandbox/config';
import { IdsBag } from '../../lib/ids/bag';
import type { IdsContext } from '../../lib/ids/context';
import type { DeviceInfo } from '../../lib/ids/device';
import type { PushCredentials } from '../../lib/ids/signing';
import { createTunnelHttp, type TunnelHttp } from '../../lib/ids/transport';
import { TestClient, type CourierServer } from './courier-helpers';
import { startTestSandbox, tempDir } from './sandbox-helpers';

x509.cryptoProvider.set(globalThis.crypto);

export interface IdsWorld {
  /** The sandbox's clock; the client's nonces follow it too. */
  clock: FakeClock;
  sandbox: Sandbox;
  services: ProtocolServices;
  bridge: RunningBridge;
  http: TunnelHttp;
  device: DeviceInfo;
  ctx: IdsContext;
  /** A fresh device identity: push key, albert certificate, and a token bound to it by the courier. */
  pushCredentials(): Promise<PushDevice>;
  close(): Promise<void>;
}

export interface PushDevice extends PushCredentials {
  /** The courier connection that minted the token (kept open: a phone stays connected). */
  courier: TestClient;
}

export const TEST_DEVICE: DeviceInfo = {
  deviceName: 'cerulean-test',
  hardwareVersion: 'Macmini9,1',
  softwareName: 'macOS',
  softwareVersion: '13.5',
  softwareBuildId: '22G74',
  uuid: 'F0E1D2C3-0000-4000-8000-0000000000AA',
  setupAt: Date.UTC(2024, 0, 2, 3, 4, 5),
};

const RSA_SHA1: RsaHashedKeyGenParams = {
  name: 'RSASSA-PKCS1-v1_5',
  hash: 'SHA-1',
  modulusLength: 1024,
  publicExponent: new Uint8Array([1, 0, 1]),
};

export async function startIdsWorld(config: SandboxConfig, options: Partial<SandboxOptions> = {}): Promise<IdsWorld> {
  const tmp = await tempDir('cerulean-ids-client-');
  const clock = new FakeClock(Date.now());
  const services = protocolServices();
  const sandbox = await startTestSandbox(tmp.dir, { services: services.services, config, clock, admin: false, ...options });
  const bridge = await startBridge({ host: '127.0.0.1', port: 0, bytesPerSecond: 0, hostMap: sandbox.hostMap.hosts, logSink: () => {}, logLevel: 'error' });
  const http = createTunnelHttp({ bridgeUrl: bridge.url, WebSocketImpl: WebSocket, trustedRoots: [sandbox.caPem], connectTimeoutMs: 10_000, timeoutMs: 20_000 });
  const courierServer = { port: sandbox.ports.tls['courier']!, caPem: sandbox.caPem } as CourierServer;
  const couriers: TestClient[] = [];
  return {
    clock,
    sandbox,
    services,
    bridge,
    http,
    device: TEST_DEVICE,
    ctx: { http, bag: IdsBag.defaults(), device: TEST_DEVICE, now: () => clock.now() },
    async pushCredentials() {
      const keys = (await crypto.subtle.generateKey(RSA_SHA1, false, ['sign', 'verify'])) as CryptoKeyPair;
      const csr = await x509.Pkcs10CertificateRequestGenerator.create({
        name: 'C=US, ST=CA, L=Cupertino, O=Apple Inc., OU=iPhone, CN=Client Push Certificate',
        keys,
        signingAlgorithm: RSA_SHA1,
      });
      const cert = await sandbox.pki.issuePushCertificate(new Uint8Array(csr.rawData));
      const courier = await TestClient.open(courierServer);
      couriers.push(courier);
      const response = await courier.connect({ identity: { der: cert.der, privateKey: keys.privateKey } }, sandbox.clock);
      if (response.status !== 0 || !response.token) throw new Error(`courier connect failed with status ${response.status}`);
      return { token: response.token, certDer: cert.der, privateKey: keys.privateKey, courier };
    },
    async close() {
      for (const c of couriers) c.close();
      http.close();
      await bridge.close();
      await sandbox.close();
      await tmp.remove();
    },
  };
}
