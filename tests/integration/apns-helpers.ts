// Fixtures for the lib/apns suites: the real sandbox (courier, IDS) in a temp dir behind the real bridge, with the
// client reaching everything the way the browser does — a `ws` WebSocket to the bridge, TLS inside it that trusts
// only the sandbox's root — and a CourierClient harness that records what it sees.
import { WebSocket } from 'ws';
import { startBridge, type RunningBridge } from '../../bridge/server';
import { activateDevice, ALBERT_HOST, type ActivatedDevice, type ActivationOptions } from '../../lib/apns/albert';
import { CourierClient, type CourierClientOptions, type CourierEvents, type CourierNotification } from '../../lib/apns/courier-client';
import { courierConnector } from '../../lib/apns/courier-connect';
import { httpsRequest } from '../../lib/net/http';
import { DEFAULT_COURIER_HOST_COUNT } from '../../sandbox/hosts';
import type { Sandbox, SandboxOptions } from '../../sandbox/sandbox';
import { protocolServices, type ProtocolServices } from '../../sandbox/services';
import { startTestSandbox, tempDir } from './sandbox-helpers';

export interface ApnsWorld {
  sandbox: Sandbox;
  services: ProtocolServices;
  readonly bridge: RunningBridge;
  /** albert through the bridge, as activateDevice wants it. */
  albert: ActivationOptions['http'];
  /** A courier dialer through the bridge (a numbered host, ALPN apns-security-v3, the sandbox root pinned). */
  connect: CourierClientOptions['connect'];
  activate(options?: Omit<ActivationOptions, 'http'>): Promise<ActivatedDevice>;
  /** Shuts the bridge down (every tunnel closes with 1001). */
  killBridge(): Promise<void>;
  /** Starts a bridge again on the same port. */
  startBridge(): Promise<void>;
  close(): Promise<void>;
}

export async function startApnsWorld(options: Partial<SandboxOptions> = {}): Promise<ApnsWorld> {
  const tmp = await tempDir('cerulean-apns-');
  const services = protocolServices();
  const sandbox = await startTestSandbox(tmp.dir, { services: services.services, admin: false, ...options });
  const bridgeOptions = { host: '127.0.0.1', bytesPerSecond: 0, hostMap: sandbox.hostMap.hosts, logSink: () => {}, logLevel: 'error' as const };
  let bridge: RunningBridge | undefined = await startBridge({ ...bridgeOptions, port: 0 });
  const port = bridge.port;
  const bridgeUrl = bridge.url;
  const albert: ActivationOptions['http'] = (req) =>
    httpsRequest({ bridgeUrl, WebSocketImpl: WebSocket, host: ALBERT_HOST, trustedRoots: [sandbox.caPem], timeoutMs: 20_000, ...req });
  return {
    sandbox,
    services,
    get bridge() {
      if (!bridge) throw new Error('the bridge is down');
      return bridge;
    },
    albert,
    connect: courierConnector({
      bridgeUrl,
      WebSocketImpl: WebSocket,
      trustedRoots: [sandbox.caPem],
      hostCount: DEFAULT_COURIER_HOST_COUNT,
      timeoutMs: 5_000,
    }),
    activate: (o = {}) => activateDevice({ ...o, http: albert }),
    async killBridge() {
      await bridge?.close();
      bridge = undefined;
    },
    async startBridge() {
      bridge = await startBridge({ ...bridgeOptions, port });
    },
    async close() {
      await bridge?.close();
      await sandbox.close();
      await tmp.remove();
    },
  };
}

export interface ClientHarness {
  client: CourierClient;
  handled: CourierNotification[];
  tokens: Uint8Array[];
  events: { [K in keyof CourierEvents]: CourierEvents[K][] };
}

/** A started client for `device` with quick back-off; records notifications, persisted tokens and events. */
export function startClient(
  world: ApnsWorld,
  device: ActivatedDevice,
  overrides: Partial<CourierClientOptions> = {},
): ClientHarness {
  const handled: CourierNotification[] = [];
  const tokens: Uint8Array[] = [];
  const client = new CourierClient({
    connect: world.connect,
    credentials: { privateKey: device.privateKey, certificate: device.certificate },
    topics: ['com.apple.madrid', 'com.apple.private.ids'],
    onToken: (t) => void tokens.push(t),
    onNotification: (n) => void handled.push(n),
    backoff: { initialMs: 200, maxMs: 1000 },
    ...overrides,
  });
  const events = { connected: [], disconnected: [], tokenChanged: [], noStorage: [], error: [] } as ClientHarness['events'];
  for (const type of Object.keys(events) as (keyof CourierEvents)[]) {
    client.on(type, (e) => (events[type] as unknown[]).push(e));
  }
  client.start();
  return { client, handled, tokens, events };
}
