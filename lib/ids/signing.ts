// The signature headers of IDS requests (ids.md §3). Three families, each with its own certificate and fresh nonce,
// all signing `nonce ‖ bagKey ‖ "" ‖ body-as-sent ‖ push token`:
//   push  x-push-token, x-push-cert, x-push-nonce, x-push-sig          (APNs push key)
//   auth  x-auth-user-id, x-auth-cert, x-auth-nonce, x-auth-sig [-N]   (a user's auth key; -N only on register)
//   id    x-id-cert, x-id-nonce, x-id-sig (+ x-push-token)             (the same key, under its ID certificate)
import { toBase64 } from '../codec/bytes';
import { EncodeError } from '../errors';
import { idsNonce, signIdsRequest } from '../crypto/request-signing';

/** The device's APNs identity: the key it connected to the courier with, its certificate and token. */
export interface PushCredentials {
  /** 32 bytes. */
  token: Uint8Array;
  certDer: Uint8Array;
  /** RSASSA-PKCS1-v1_5 SHA-1. */
  privateKey: CryptoKey;
}

/** A user's auth key under one of its certificates (the auth certificate, or the ID certificate for lookups). */
export interface UserCredentials {
  /** profile-id or `P:+<E.164>`. */
  userId: string;
  certDer: Uint8Array;
  /** RSASSA-PKCS1-v1_5 SHA-1 (generateAuthKey). */
  privateKey: CryptoKey;
}

export interface SigningOptions {
  /** Unix ms for the nonce; default Date.now. */
  now?: () => number;
  /** Replaces nonce generation (fixed test vectors); called once per header family. */
  nonce?: () => Uint8Array;
}

interface Signed {
  nonce: string;
  sig: string;
}

async function sign(privateKey: CryptoKey, bagKey: string, body: Uint8Array, pushToken: Uint8Array, o: SigningOptions): Promise<Signed> {
  if (pushToken.length !== 32) throw new EncodeError('bad-push-token', 'the push token must be 32 bytes');
  const nonce = o.nonce ? o.nonce() : idsNonce((o.now ?? Date.now)());
  const s = await signIdsRequest(privateKey, { nonce, bagKey, query: '', body, pushToken });
  return { nonce: toBase64(s.nonce), sig: s.headerValue };
}

export async function pushHeaders(push: PushCredentials, bagKey: string, body: Uint8Array, o: SigningOptions = {}): Promise<Record<string, string>> {
  const s = await sign(push.privateKey, bagKey, body, push.token, o);
  return {
    'x-push-token': toBase64(push.token),
    'x-push-cert': toBase64(push.certDer),
    'x-push-nonce': s.nonce,
    'x-push-sig': s.sig,
  };
}

/** `index` gives the `-N` suffix of register; single-user endpoints leave it out. */
export async function authHeaders(
  user: UserCredentials,
  pushToken: Uint8Array,
  bagKey: string,
  body: Uint8Array,
  index?: number,
  o: SigningOptions = {},
): Promise<Record<string, string>> {
  const suffix = index === undefined ? '' : `-${index}`;
  const s = await sign(user.privateKey, bagKey, body, pushToken, o);
  return {
    [`x-auth-user-id${suffix}`]: user.userId,
    [`x-auth-cert${suffix}`]: toBase64(user.certDer),
    [`x-auth-nonce${suffix}`]: s.nonce,
    [`x-auth-sig${suffix}`]: s.sig,
  };
}

/** Lookup headers: the ID certificate's family plus the querying device's token. */
export async function idHeaders(
  id: Pick<UserCredentials, 'certDer' | 'privateKey'>,
  pushToken: Uint8Array,
  bagKey: string,
  body: Uint8Array,
  o: SigningOptions = {},
): Promise<Record<string, string>> {
  const s = await sign(id.privateKey, bagKey, body, pushToken, o);
  return {
    'x-push-token': toBase64(pushToken),
    'x-id-cert': toBase64(id.certDer),
    'x-id-nonce': s.nonce,
    'x-id-sig': s.sig,
  };
}

/** Push + auth headers for the single-user signed endpoints (idsGetHandles, getDependentRegistrations). */
export async function pushAndAuthHeaders(
  push: PushCredentials,
  user: UserCredentials,
  bagKey: string,
  body: Uint8Array,
  o: SigningOptions = {},
): Promise<Record<string, string>> {
  const [p, a] = await Promise.all([pushHeaders(push, bagKey, body, o), authHeaders(user, push.token, bagKey, body, undefined, o)]);
  return { ...p, ...a };
}
