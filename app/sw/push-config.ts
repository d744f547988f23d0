// What the service worker needs to fetch messages on its own when the push watcher wakes it: how to reach the
// courier (bridge, token, service, trust roots, device name) and the enrollment to report back to. The page writes
// it into the client store's kv when push is turned on and refreshes it on every start (a service worker cannot
// read localStorage, where the page keeps its settings); turning push off deletes it. The store holds the keys
// already, so nothing here is more secret than what sits next to it.
import type { ClientMode } from '../../lib/client/config';
import type { ClientStore } from '../../lib/store/types';

export const PUSH_CONFIG_KEY = 'app/push';

/** An enrollment at the watcher: its id, the bearer secret and the URL that holds it (a shard's, maybe). */
export interface PushEnrollment {
  id: string;
  secret: string;
  url: string;
}

export interface PushConfig {
  bridgeUrl: string;
  bridgeToken?: string;
  mode: ClientMode;
  /** PEM trust anchors for the client's TLS: the sandbox CA or Apple's roots, as the page uses them. */
  trustedRoots: string[];
  deviceName: string;
  readReceipts: boolean;
  /** The watcher address from the settings (enrollment.url may name another shard of it). */
  watcherUrl: string;
  enrollment: PushEnrollment;
}

const text = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** The stored config, or undefined when push is off or the entry is damaged. */
export async function readPushConfig(store: ClientStore): Promise<PushConfig | undefined> {
  const v = await store.kv.get(PUSH_CONFIG_KEY);
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) return undefined;
  const r = v as Record<string, unknown>;
  const e = r.enrollment as Record<string, unknown> | null | undefined;
  const roots = r.trustedRoots;
  if (
    !text(r.bridgeUrl) ||
    (r.mode !== 'sandbox' && r.mode !== 'apple') ||
    !Array.isArray(roots) ||
    roots.length === 0 ||
    !roots.every(text) ||
    !text(r.deviceName) ||
    typeof r.readReceipts !== 'boolean' ||
    !text(r.watcherUrl) ||
    typeof e !== 'object' ||
    e === null ||
    !text(e.id) ||
    !text(e.secret) ||
    !text(e.url)
  ) {
    return undefined;
  }
  return {
    bridgeUrl: r.bridgeUrl,
    ...(text(r.bridgeToken) ? { bridgeToken: r.bridgeToken } : {}),
    mode: r.mode,
    trustedRoots: [...roots],
    deviceName: r.deviceName,
    readReceipts: r.readReceipts,
    watcherUrl: r.watcherUrl,
    enrollment: { id: e.id, secret: e.secret, url: e.url },
  };
}

export async function writePushConfig(store: ClientStore, config: PushConfig): Promise<void> {
  await store.kv.set(PUSH_CONFIG_KEY, {
    bridgeUrl: config.bridgeUrl,
    ...(config.bridgeToken ? { bridgeToken: config.bridgeToken } : {}),
    mode: config.mode,
    trustedRoots: [...config.trustedRoots],
    deviceName: config.deviceName,
    readReceipts: config.readReceipts,
    watcherUrl: config.watcherUrl,
    enrollment: { ...config.enrollment },
  });
}

export async function clearPushConfig(store: ClientStore): Promise<void> {
  await store.kv.delete(PUSH_CONFIG_KEY);
}
