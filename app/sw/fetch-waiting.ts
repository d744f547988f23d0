// The service worker's own short session with the courier after a wake-up: the device's client, over the same
// IndexedDB store and settings the page uses, connects with the device's push credentials, takes what the courier
// held, decrypts and stores it (the client acks each notification once it is stored, and sends the delivery
// receipts), and closes again once the courier has gone quiet.
import { CeruleanClient } from '../../lib/client/client';
import type { ClientEvents } from '../../lib/client/events';
import type { ClientStore } from '../../lib/store/types';
import type { PushConfig } from './push-config';

export type ReceivedMessage = ClientEvents['message'];

export interface FetchResult {
  /** Messages from other people stored during the session, in arrival order. */
  received: ReceivedMessage[];
  /** The client reached the courier: what it held is now acked (or stored to finish next time). */
  connected: boolean;
}

export interface FetchOptions {
  /** Quiet time (connected, nothing arriving, nothing left to process) that ends the session. */
  idleMs?: number;
  /** The session ends after this long whatever happens: a wake-up must not keep a worker alive for minutes. */
  capMs?: number;
  /** Aborted when the page takes the session over: stop at once. */
  signal?: AbortSignal;
}

const IDLE_MS = 1_500;
const CAP_MS = 20_000;
const POLL_MS = 200;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function fetchWaitingMessages(store: ClientStore, config: PushConfig, options: FetchOptions = {}): Promise<FetchResult> {
  const idleMs = options.idleMs ?? IDLE_MS;
  const until = Date.now() + (options.capMs ?? CAP_MS);
  const client = await CeruleanClient.open({
    bridgeUrl: config.bridgeUrl,
    ...(config.bridgeToken ? { bridgeToken: config.bridgeToken } : {}),
    WebSocketImpl: WebSocket,
    trustedRoots: config.trustedRoots,
    mode: config.mode,
    store,
    deviceInfo: { deviceName: config.deviceName },
    readReceipts: config.readReceipts,
  });
  const received: ReceivedMessage[] = [];
  let connected = false;
  let lastActivity = Date.now();
  const active = () => void (lastActivity = Date.now());
  const offs = [
    client.on('message', (e) => {
      active();
      if (!e.message.fromMe) received.push(e);
    }),
    client.on('connection', (e) => {
      active();
      if (e.state === 'connected') connected = true;
    }),
    ...(['update', 'status', 'chat', 'typing', 'security'] as const).map((type) => client.on(type, active)),
  ];
  try {
    if (!client.registered) return { received, connected };
    await client.start();
    while (Date.now() < until && !options.signal?.aborted) {
      await sleep(POLL_MS);
      if (client.connectionState !== 'connected' || Date.now() - lastActivity < idleMs) continue;
      if (!client.processingInbound) break;
    }
  } finally {
    for (const off of offs) off();
    // Closing ends the courier connection; only after that may the watcher come back (see push-wake.ts).
    await client.close();
  }
  return { received, connected };
}
