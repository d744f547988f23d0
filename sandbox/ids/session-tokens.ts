// Session tokens (ids.md §9 item 10, imessage.md §10 item 3): a lookup hands one out per (querying handle, looked-up
// handle, device) and the message router later accepts a dtl entry only with a token minted for exactly that triple.
// They are stateless: `HMAC(sandbox secret, sender ‖ receiver ‖ token ‖ expiry) ‖ u64be expiry-ms`, so nothing is
// stored per lookup and a restart keeps every issued token valid. Revocation (a device that deregistered) is the
// router's job: it also checks that the receiving token is still registered.
import { concat, readU64be, u64be, utf8 } from '../../lib/codec/bytes';
import type { MacKeys } from '../pki';
import { comparableUri } from './registrations';

const MAC_PURPOSE = 'ids-session-token';
const MAC_LENGTH = 32;
const EXPIRY_LENGTH = 8;
export const SESSION_TOKEN_LENGTH = MAC_LENGTH + EXPIRY_LENGTH;

export interface SessionTokenBinding {
  /** The querying handle (`x-id-self-uri` of the lookup; `sP` of the send). */
  senderUri: string;
  /** The looked-up handle (`tP` of the send). */
  receiverUri: string;
  /** The receiving device's push token (`t` of the dtl entry). */
  receiverToken: Uint8Array;
}

export type SessionTokenCheck = 'ok' | 'bad' | 'expired';

function macParts(b: SessionTokenBinding, expiry: Uint8Array): Uint8Array[] {
  // mailto: handles compare case-insensitively everywhere else, so a token minted for one spelling serves all.
  return [utf8(comparableUri(b.senderUri)), utf8(comparableUri(b.receiverUri)), b.receiverToken, expiry];
}

/** A token valid until `expiresAt` (ms since the epoch). */
export function mintSessionToken(keys: MacKeys, b: SessionTokenBinding & { expiresAt: number }): Uint8Array {
  if (!Number.isSafeInteger(b.expiresAt) || b.expiresAt < 0) throw new RangeError('expiresAt must be a non-negative integer of ms');
  const expiry = u64be(BigInt(b.expiresAt));
  return concat(keys.mac(MAC_PURPOSE, ...macParts(b, expiry)), expiry);
}

/** 'bad' for anything not minted here for this binding; 'expired' once `now` (ms) reaches the expiry. */
export function checkSessionToken(keys: MacKeys, token: Uint8Array, b: SessionTokenBinding, now: number): SessionTokenCheck {
  if (!(token instanceof Uint8Array) || token.length !== SESSION_TOKEN_LENGTH) return 'bad';
  const expiry = token.subarray(MAC_LENGTH);
  if (!keys.verifyMac(MAC_PURPOSE, token.subarray(0, MAC_LENGTH), ...macParts(b, expiry))) return 'bad';
  return Number(readU64be(expiry)) <= now ? 'expired' : 'ok';
}
