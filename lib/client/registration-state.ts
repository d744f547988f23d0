// What a registered device remembers besides its account record, and how to read it back. Apart from registration.ts
// so the PWA can ask "is this browser registered?" at start-up without loading the protocol engine.
import type { ClientStore } from '../store/types';

/** kv `client/registration`. */
export interface RegistrationState {
  /** The handle this device sends from and persists lookups for. */
  primaryHandle: string;
  /** Every registered handle → the IDS user whose ID certificate signs lookups from it. */
  handleOwners: Record<string, string>;
  /** When to register again (reregisterDueAt). */
  renewAt: number;
  relay: { url: string; code: string };
}

export const REGISTRATION_STATE_KEY = 'client/registration';

export async function loadRegistrationState(store: ClientStore): Promise<RegistrationState | undefined> {
  const v = await store.kv.get(REGISTRATION_STATE_KEY);
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) return undefined;
  const s = v as Partial<RegistrationState>;
  const valid =
    typeof s.primaryHandle === 'string' &&
    typeof s.renewAt === 'number' &&
    typeof s.handleOwners === 'object' && s.handleOwners !== null &&
    typeof s.relay?.url === 'string' && typeof s.relay.code === 'string';
  return valid ? (s as RegistrationState) : undefined;
}
