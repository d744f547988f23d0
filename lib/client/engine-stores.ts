// The engine's two bits of persistent state (lib/imessage/ports.ts) kept in the ClientStore: pair-ec counters in
// the counters table, and the (message UUID, sending device) pairs already processed in kv, so a notification the
// courier delivers again after a crash is recognised.
import { toHex } from '../codec/bytes';
import type { CounterStore, SeenStore } from '../imessage/ports';
import type { ClientStore } from '../store/types';

const SEEN_PREFIX = 'seen/';
/** Apple's servers keep undelivered messages for 30 days; a redelivery cannot come later than that. */
export const SEEN_RETENTION_MS = 31 * 86_400_000;

function seenKey(uuid: string, token: Uint8Array): string {
  return `${SEEN_PREFIX}${uuid.toUpperCase()}/${toHex(token)}`;
}

export function storeSeen(store: ClientStore, now: () => number): SeenStore {
  return {
    async seen(uuid, token) {
      return (await store.kv.get(seenKey(uuid, token))) !== undefined;
    },
    async remember(uuid, token) {
      await store.kv.set(seenKey(uuid, token), now());
    },
  };
}

/** Forgets processed notifications older than the retention; returns how many. */
export async function pruneSeen(store: ClientStore, now: number): Promise<number> {
  let pruned = 0;
  for (const key of await store.kv.keys()) {
    if (!key.startsWith(SEEN_PREFIX)) continue;
    const at = await store.kv.get(key);
    if (typeof at !== 'number' || now - at > SEEN_RETENTION_MS) {
      await store.kv.delete(key);
      pruned++;
    }
  }
  return pruned;
}

export function storeCounters(store: ClientStore): CounterStore {
  return {
    next: (ownDevice, peerDevice, peerPrekey) => store.counters.next(`pair-ec/${toHex(ownDevice)}/${toHex(peerDevice)}/${toHex(peerPrekey)}`),
  };
}
