// The whole stack in one process for the end-to-end tests: the sandbox (every Apple service) in a temp dir, the real
// bridge with the sandbox's host map (restartable on its port, to kill it mid-conversation), a recording WebSocket
// proxy in front of it that keeps every byte the bridge is given or gives back, and CeruleanClients with file stores
// that reach everything only through that proxy.
import { mkdir } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { expect, vi } from 'vitest';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { startBridge, type RunningBridge } from '../../bridge/server';
import { nodeKeyVault } from '../../cli/key-vault';
import { CeruleanClient } from '../../lib/client/client';
import type { ClientTuning } from '../../lib/client/config';
import type { ClientEvents } from '../../lib/client/events';
import type { ClientStore, MessageRecord } from '../../lib/store/types';
import { openFileStore } from '../../lib/store-node/file-store';
import type { SandboxConfig } from '../../sandbox/config';
import type { Sandbox } from '../../sandbox/sandbox';
import { protocolServices, type ProtocolServices } from '../../sandbox/services';
import { startTestSandbox, tempDir } from './sandbox-helpers';

export const WAIT = { timeout: 20_000, interval: 25 };

/** Short timers, so reconnects and retries happen within a test's time. */
export const FAST_TUNING: ClientTuning = {
  courierBackoff: { initialMs: 100, maxMs: 400, jitter: 0, stableAfterMs: 1000 },
  connectTimeoutMs: 5_000,
  httpTimeoutMs: 15_000,
  lookupTimeoutMs: 10_000,
  outboxRetryMs: 250,
  outboxMaxRetryMs: 1_000,
  inboxRetryMs: 200,
  ackSettleMs: 300,
  ackMaxMs: 4_000,
};

/** Every WebSocket connection through the proxy, with the bytes of each direction. */
export interface RecordedTunnel {
  path: string;
  toBridge: Buffer[];
  fromBridge: Buffer[];
}

export interface RecordingProxy {
  url: string;
  tunnels: RecordedTunnel[];
  /** Total bytes seen both ways. */
  bytes(): number;
  /** The paths of tunnels whose byte stream (either direction, chunks joined) contains `needle`. */
  find(needle: Uint8Array | string): string[];
  close(): Promise<void>;
}

/** Relays `ws://proxy/<path>` to `ws://127.0.0.1:<bridgePort>/<path>` byte for byte, keeping a copy. */
export async function startRecordingProxy(bridgePort: () => number): Promise<RecordingProxy> {
  const tunnels: RecordedTunnel[] = [];
  const sockets = new Set<WebSocket>();
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false, handleProtocols: (offered) => [...offered][0] ?? false });
  wss.on('connection', (client: WebSocket, req: IncomingMessage) => {
    const tunnel: RecordedTunnel = { path: req.url ?? '', toBridge: [], fromBridge: [] };
    tunnels.push(tunnel);
    const offered = req.headers['sec-websocket-protocol']?.split(',').map((p) => p.trim());
    const upstream = new WebSocket(`ws://127.0.0.1:${bridgePort()}${tunnel.path}`, offered, { perMessageDeflate: false });
    sockets.add(client).add(upstream);
    const pending: Buffer[] = [];
    const bytes = (data: RawData): Buffer => (Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer));
    client.on('message', (data) => {
      const b = bytes(data);
      tunnel.toBridge.push(b);
      if (upstream.readyState === WebSocket.OPEN) upstream.send(b);
      else pending.push(b);
    });
    upstream.on('open', () => {
      for (const b of pending.splice(0)) upstream.send(b);
    });
    upstream.on('message', (data) => {
      const b = bytes(data);
      tunnel.fromBridge.push(b);
      if (client.readyState === WebSocket.OPEN) client.send(b);
    });
    const closeBoth = (code: number, reason: Buffer | string) => {
      const c = code >= 1000 && code < 5000 && code !== 1005 && code !== 1006 && code !== 1015 ? code : 1011;
      for (const ws of [client, upstream]) if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(c, reason.toString());
    };
    client.on('close', (code, reason) => closeBoth(code, reason));
    upstream.on('close', (code, reason) => closeBoth(code, reason));
    upstream.on('error', () => closeBoth(1011, 'bridge unreachable'));
    client.on('error', () => upstream.terminate());
    for (const ws of [client, upstream]) ws.on('close', () => sockets.delete(ws));
  });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const port = (wss.address() as AddressInfo).port;
  return {
    url: `ws://127.0.0.1:${port}`,
    tunnels,
    bytes: () => tunnels.reduce((n, t) => n + [...t.toBridge, ...t.fromBridge].reduce((m, b) => m + b.length, 0), 0),
    find(needle) {
      const n = typeof needle === 'string' ? Buffer.from(needle, 'utf8') : Buffer.from(needle);
      return tunnels.filter((t) => Buffer.concat(t.toBridge).includes(n) || Buffer.concat(t.fromBridge).includes(n)).map((t) => t.path);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of sockets) ws.terminate();
        wss.close(() => resolve());
      }),
  };
}

/** One client with its store, and every event it raised. */
export interface TestDevice {
  name: string;
  client: CeruleanClient;
  store: ClientStore;
  events: { [K in keyof ClientEvents]: ClientEvents[K][] };
  /** Stops the client and closes its store (the data stays on disk). */
  close(): Promise<void>;
}

export interface E2eWorld {
  sandbox: Sandbox;
  services: ProtocolServices;
  proxy: RecordingProxy;
  relayCode: string;
  /** A client on the file store `<tmp>/<name>` (created, or reopened with what an earlier client left). */
  device(name: string): Promise<TestDevice>;
  killBridge(): Promise<void>;
  restartBridge(): Promise<void>;
  close(): Promise<void>;
}

export async function startE2eWorld(config: SandboxConfig): Promise<E2eWorld> {
  const tmp = await tempDir('cerulean-e2e-');
  const services = protocolServices();
  const sandbox = await startTestSandbox(path.join(tmp.dir, 'sandbox'), { services: services.services, config, admin: false });
  const bridgeOptions = { host: '127.0.0.1', bytesPerSecond: 0, hostMap: sandbox.hostMap.hosts, logSink: () => {}, logLevel: 'error' as const };
  let bridge: RunningBridge | undefined = await startBridge({ ...bridgeOptions, port: 0 });
  const bridgePort = bridge.port;
  const proxy = await startRecordingProxy(() => bridgePort);
  const relayCode = (await sandbox.relay.createCode({ name: 'Test Mac' })).code;
  const open = new Set<TestDevice>();

  return {
    sandbox,
    services,
    proxy,
    relayCode,
    async device(name) {
      const dir = path.join(tmp.dir, 'clients', name);
      await mkdir(dir, { recursive: true });
      const store = await openFileStore({ dir, vault: nodeKeyVault('e2e passphrase', { iterations: 1000 }) });
      const client = await CeruleanClient.open({
        bridgeUrl: proxy.url,
        WebSocketImpl: WebSocket,
        trustedRoots: [sandbox.caPem],
        mode: 'sandbox',
        relay: { code: relayCode },
        store,
        deviceInfo: { deviceName: `${name}'s Cerulean` },
        tuning: FAST_TUNING,
      });
      const events = { message: [], update: [], status: [], typing: [], chat: [], security: [], connection: [], registration: [], error: [] } as TestDevice['events'];
      for (const type of Object.keys(events) as (keyof ClientEvents)[]) client.on(type, (e) => (events[type] as unknown[]).push(e));
      const device: TestDevice = {
        name,
        client,
        store,
        events,
        async close() {
          open.delete(device);
          await client.close();
          await store.close();
        },
      };
      open.add(device);
      return device;
    },
    async killBridge() {
      await bridge?.close();
      bridge = undefined;
    },
    async restartBridge() {
      bridge = await startBridge({ ...bridgeOptions, port: bridgePort });
    },
    async close() {
      for (const d of [...open]) await d.close().catch(() => undefined);
      await proxy.close();
      await bridge?.close();
      await sandbox.close();
      await tmp.remove();
    },
  };
}

/** Registers an Apple ID device: password first, then the 2FA code the sandbox "pushed" to trusted devices. */
export async function registerAppleId(world: E2eWorld, d: TestDevice, username: string, password: string): Promise<void> {
  const first = await d.client.register({ appleId: { username, password } });
  if (first.status !== 'second-factor-required') throw new Error(`expected a 2FA challenge, got ${first.status}`);
  const code = world.sandbox.accounts.latestTwoFactorCode(username)?.code;
  if (!code) throw new Error('the sandbox issued no 2FA code');
  const done = await d.client.register({ appleId: { username, password, code } });
  if (done.status !== 'registered') throw new Error(`Apple ID registration ended with ${done.status}`);
}

/** Registers a phone number: the REG-REQ goes to the sandbox carrier's gateway, its REG-RESP back to the client. */
export async function registerPhone(world: E2eWorld, d: TestDevice, number: string): Promise<void> {
  const first = await d.client.register({ phone: {} });
  if (first.status !== 'sms-required') throw new Error(`expected an SMS step, got ${first.status}`);
  const sms = await world.sandbox.gateway.receive(number, first.text, first.gateway);
  if (!sms.reply) throw new Error(`the gateway did not answer: ${sms.error}`);
  const done = await d.client.register({ phone: { regResp: sms.reply } });
  if (done.status !== 'registered') throw new Error(`phone registration ended with ${done.status}`);
}

/** The stored message, once it satisfies `check`. */
export async function waitForMessage(d: TestDevice, uuid: string, check: (m: MessageRecord) => boolean = () => true): Promise<MessageRecord> {
  return vi.waitFor(async () => {
    const m = await d.store.messages.get(uuid);
    if (!m || !check(m)) throw new Error(`${d.name}: message ${uuid} not there yet (${m ? `status ${m.status}` : 'missing'})`);
    return m;
  }, WAIT);
}

/** How many `message` events `d` raised for `uuid`, once there is at least one (the event follows the store write). */
export async function messageEvents(d: TestDevice, uuid: string): Promise<number> {
  const count = () => d.events.message.filter((e) => e.message.uuid === uuid).length;
  await vi.waitFor(() => expect(count()).toBeGreaterThan(0), WAIT);
  return count();
}
