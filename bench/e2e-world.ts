// The stack for bench/e2e.ts: the sandbox (every Apple service) in a temp dir, the real bridge on loopback, and
// CeruleanClients on memory stores that dial the bridge directly. Unlike tests/integration/e2e-helpers.ts there is
// no recording proxy in the path (it would add two WebSocket hops to every byte) and no file store (its disk writes
// would be timed too). Every client's WebSocket is tapped: the time of each frame it sends and receives, so a
// message's latency can be split into sender, transit and receiver.
import path from 'node:path';
import { WebSocket } from 'ws';
import { startBridge, type RunningBridge } from '../bridge/server';
import { CeruleanClient } from '../lib/client/client';
import type { EngineLog } from '../lib/imessage/ports';
import type { WebSocketConstructor } from '../lib/net/byte-stream';
import { MemoryStorage } from '../lib/store/memory-store';
import type { SandboxConfig } from '../sandbox/config';
import type { Sandbox } from '../sandbox/sandbox';
import { protocolServices } from '../sandbox/services';
import { FAST_TUNING, type E2eWorld, type TestDevice } from '../tests/integration/e2e-helpers';
import { startTestSandbox, tempDir } from '../tests/integration/sandbox-helpers';

/** Frame times (performance.now()) on one client's courier tunnel. */
export interface CourierFrames {
  sent: number[];
  received: number[];
}

export interface BenchWorld {
  sandbox: Sandbox;
  bridgeUrl: string;
  /** What registerPhone/registerAppleId of the e2e helpers read (they use only `sandbox`). */
  helperWorld: E2eWorld;
  /** A new client on a fresh memory store. */
  device(name: string): Promise<TestDevice>;
  /** The courier-tunnel frames of a device's client, appended as they happen. */
  frames(name: string): CourierFrames;
  /** When any client last sent or received a WebSocket frame. */
  lastFrameAt(): number;
  /** Engine warnings (metadata only), by event name. */
  warnings: Map<string, number>;
  timings: { sandboxStartMs: number; bridgeStartMs: number };
  close(): Promise<string[]>;
}

/** Each step of the teardown gets this long; a stuck one is reported and skipped. */
const CLOSE_STEP_MS = 15_000;

export async function startBenchWorld(config: SandboxConfig): Promise<BenchWorld> {
  const tmp = await tempDir('cerulean-bench-e2e-');
  let sandbox: Sandbox | undefined;
  let bridge: RunningBridge | undefined;
  const devices = new Set<TestDevice>();
  const frames = new Map<string, CourierFrames>();
  const warnings = new Map<string, number>();
  let lastFrame = performance.now();

  const close = async (): Promise<string[]> => {
    const problems: string[] = [];
    const step = async (what: string, f: () => Promise<unknown>) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${CLOSE_STEP_MS} ms`)), CLOSE_STEP_MS);
      });
      try {
        await Promise.race([f(), timeout]);
      } catch (e) {
        problems.push(`${what}: ${(e as Error).message}`);
      } finally {
        clearTimeout(timer);
      }
    };
    // Clients first (in parallel: each close waits on its own courier), then what they talk to.
    await step('clients', () => Promise.all([...devices].map((d) => d.close())));
    if (bridge) await step('bridge', () => bridge!.close());
    if (sandbox) await step('sandbox', () => sandbox!.close());
    await step('temp dir', () => tmp.remove());
    return problems;
  };

  try {
    let t = performance.now();
    const services = protocolServices();
    sandbox = await startTestSandbox(path.join(tmp.dir, 'sandbox'), { services: services.services, config, admin: false });
    const sandboxStartMs = performance.now() - t;
    t = performance.now();
    // 32 simulated users share 127.0.0.1 here, so the per-IP tunnel cap (32) is lifted; no byte-rate limit, as in
    // the e2e tests.
    bridge = await startBridge({
      host: '127.0.0.1',
      port: 0,
      bytesPerSecond: 0,
      maxTunnelsPerIp: 4096,
      hostMap: sandbox.hostMap.hosts,
      logSink: () => {},
      logLevel: 'error',
    });
    const bridgeStartMs = performance.now() - t;
    const bridgeUrl = `ws://127.0.0.1:${bridge.port}`;
    const relayCode = (await sandbox.relay.createCode({ name: 'Bench Mac' })).code;
    const liveSandbox = sandbox;

    const framesOf = (name: string): CourierFrames => {
      let f = frames.get(name);
      if (!f) frames.set(name, (f = { sent: [], received: [] }));
      return f;
    };

    // A `ws` WebSocket whose frames are timed. Listeners added here run before the client's own.
    const tapped = (name: string): WebSocketConstructor =>
      function TappedWebSocket(url: string, protocols?: string | string[]) {
        const ws = new WebSocket(url, protocols);
        const courier = url.includes('courier');
        const f = framesOf(name);
        const send = ws.send.bind(ws) as (data: Uint8Array) => void;
        (ws as unknown as { send: (data: Uint8Array) => void }).send = (data: Uint8Array) => {
          lastFrame = performance.now();
          if (courier) f.sent.push(lastFrame);
          send(data);
        };
        ws.on('message', () => {
          lastFrame = performance.now();
          if (courier) f.received.push(lastFrame);
        });
        return ws;
      } as unknown as WebSocketConstructor;

    const log: EngineLog = {
      info() {},
      warn(event) {
        warnings.set(event, (warnings.get(event) ?? 0) + 1);
      },
    };

    return {
      sandbox: liveSandbox,
      bridgeUrl,
      helperWorld: { sandbox: liveSandbox } as E2eWorld,
      async device(name) {
        const store = await new MemoryStorage().open();
        const client = await CeruleanClient.open({
          bridgeUrl,
          WebSocketImpl: tapped(name),
          trustedRoots: [liveSandbox.caPem],
          mode: 'sandbox',
          relay: { code: relayCode },
          store,
          deviceInfo: { deviceName: `${name}'s Cerulean` },
          tuning: FAST_TUNING,
          log,
        });
        const events = { message: [], update: [], status: [], typing: [], chat: [], security: [], connection: [], registration: [], error: [] } as TestDevice['events'];
        // Only what the bench reads is kept: errors. Message events are handled by the bench's own listeners.
        client.on('error', (e) => events.error.push(e));
        const device: TestDevice = {
          name,
          client,
          store,
          events,
          async close() {
            devices.delete(device);
            await client.close();
            await store.close();
          },
        };
        devices.add(device);
        return device;
      },
      frames: framesOf,
      lastFrameAt: () => lastFrame,
      warnings,
      timings: { sandboxStartMs, bridgeStartMs },
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
