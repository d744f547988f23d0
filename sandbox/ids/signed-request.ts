// The header signatures of IDS requests (ids.md §3, §9 item 7). Each header family carries a certificate, a 17-byte
// nonce and `01 01 ‖ RSA-SHA1` over `nonce ‖ bagKey ‖ query("") ‖ body-as-sent ‖ push token`:
//   push  x-push-token / x-push-cert / x-push-nonce / x-push-sig      (device's APNs key; cert from the albert CA)
//   auth  x-auth-user-id[-N] / x-auth-cert[-N] / x-auth-nonce[-N] / x-auth-sig[-N]   (auth cert from the IDS CA)
//   id    x-id-cert / x-id-nonce / x-id-sig with x-push-token        (ID cert; lookups over the courier)
// A check yields the verified facts or an IDS status: 5009 header missing, 5006 bad push token, 5085 bad
// certificate, 6005 expired IDS certificate, 5086 malformed nonce, 5087 nonce time off by more than 5 minutes,
// 5032 bad signature.
import { fromBase64 } from '../../lib/codec/bytes';
import { parseNonce, verifyIdsSignature } from '../../lib/crypto/request-signing';
import type { Clock } from '../context';
import type { IdsCertKind, PushCertificateInfo, SandboxPki } from '../pki';

/** The IDS status codes the sandbox answers with (ids.md §5 table). */
export const IdsStatus = {
  ok: 0,
  unauthenticated: 5000,
  internalError: 5001,
  badRequest: 5003,
  badPushToken: 5006,
  missingRequiredKey: 5008,
  missingRequiredHeader: 5009,
  invalidNameOrPassword: 5012,
  badSignature: 5032,
  emailNotVetted: 5052,
  badCert: 5085,
  badNonce: 5086,
  badNonceTimestamp: 5087,
  actionDoNotRetry: 6001,
  retryWithNewAbsintheContext: 6004,
  refreshCredentials: 6005,
  permanentFailure: 6009,
  rateLimited: 7000,
} as const;

/** Header values as node:http gives them, or a plain string dict (the `h` of a courier query); names any case. */
export type HeaderBag = Readonly<Record<string, string | readonly string[] | undefined>>;

export const NONCE_WINDOW_MS = 5 * 60_000;

export interface SignatureDeps {
  pki: SandboxPki;
  clock: Clock;
  /**
   * Whether the courier issued `token` to the push certificate with this SubjectPublicKeyInfo. Without it any
   * 32-byte token is accepted alongside a valid push certificate and signature.
   */
  isTokenBoundToCert?(token: Uint8Array, spki: Uint8Array): boolean | Promise<boolean>;
}

export interface PushSigned {
  pushToken: Uint8Array;
  pushCert: PushCertificateInfo;
}

export interface UserSigned {
  userId: string;
  /** SHA-1 verification key of the certificate (the user's auth key). */
  publicKey: CryptoKey;
  /** DER SubjectPublicKeyInfo of that key: an ID certificate is issued over exactly this. */
  spki: Uint8Array;
  serial: string;
  notAfter: number;
}

export interface IdSigned extends UserSigned {
  /** The `x-push-token` the signature covers (the querying device). */
  pushToken: Uint8Array;
}

/** The push family: certificate from the sandbox's albert CA, token of 32 bytes (bound to it if the hook says so). */
export async function verifyPushSignature(headers: HeaderBag, bagKey: string, body: Uint8Array, deps: SignatureDeps): Promise<PushSigned | number> {
  const h = headerReader(headers);
  const token = h('x-push-token');
  const certText = h('x-push-cert');
  const nonceText = h('x-push-nonce');
  const sigText = h('x-push-sig');
  if (token === undefined || certText === undefined || nonceText === undefined || sigText === undefined) return IdsStatus.missingRequiredHeader;
  const pushToken = decodePushToken(token);
  if (!pushToken) return IdsStatus.badPushToken;
  const certDer = decode(certText);
  const pushCert = certDer ? await deps.pki.verifyPushCertificate(certDer) : null;
  if (!pushCert) return IdsStatus.badCert;
  if (deps.isTokenBoundToCert && !(await deps.isTokenBoundToCert(pushToken, pushCert.spki))) return IdsStatus.badPushToken;
  const status = await checkSignature(pushCert.publicKey, nonceText, sigText, bagKey, body, pushToken, deps.clock);
  return status === IdsStatus.ok ? { pushToken, pushCert } : status;
}

/**
 * The auth family for one user: `suffix` is '' on single-user endpoints and `-N` for user N of a register. The
 * certificate must be an auth certificate for the user named in `x-auth-user-id`.
 */
export function verifyAuthSignature(
  headers: HeaderBag,
  bagKey: string,
  body: Uint8Array,
  pushToken: Uint8Array,
  deps: Pick<SignatureDeps, 'pki' | 'clock'>,
  suffix = '',
): Promise<UserSigned | number> {
  return verifyUserFamily(headers, 'auth', suffix, bagKey, body, pushToken, deps.pki, deps.clock);
}

/** The id family of a lookup (bag key `id-query`, body = the gzipped `b`): an ID certificate and `x-push-token`. */
export async function verifyIdSignature(headers: HeaderBag, bagKey: string, body: Uint8Array, pki: SandboxPki, clock: Clock): Promise<IdSigned | number> {
  const token = headerReader(headers)('x-push-token');
  if (token === undefined) return IdsStatus.missingRequiredHeader;
  const pushToken = decodePushToken(token);
  if (!pushToken) return IdsStatus.badPushToken;
  const r = await verifyUserFamily(headers, 'id', '', bagKey, body, pushToken, pki, clock);
  return typeof r === 'number' ? r : { ...r, pushToken };
}

/** How many users a register signs for: `x-auth-user-id-0`, `-1`, … up to the first gap, at most `max`. */
export function countSignedUsers(headers: HeaderBag, max: number): number {
  const h = headerReader(headers);
  let n = 0;
  while (n < max && h(`x-auth-user-id-${n}`) !== undefined) n++;
  return n;
}

/** The user a register's header family N names (so a failure can be reported against that user). */
export function signedUserId(headers: HeaderBag, suffix: string): string | undefined {
  return headerReader(headers)(`x-auth-user-id${suffix}`);
}

async function verifyUserFamily(
  headers: HeaderBag,
  family: IdsCertKind,
  suffix: string,
  bagKey: string,
  body: Uint8Array,
  pushToken: Uint8Array,
  pki: SandboxPki,
  clock: Clock,
): Promise<UserSigned | number> {
  const h = headerReader(headers);
  const userHeader = family === 'auth' ? h(`x-auth-user-id${suffix}`) : undefined;
  const certText = h(`x-${family}-cert${suffix}`);
  const nonceText = h(`x-${family}-nonce${suffix}`);
  const sigText = h(`x-${family}-sig${suffix}`);
  if ((family === 'auth' && userHeader === undefined) || certText === undefined || nonceText === undefined || sigText === undefined) {
    return IdsStatus.missingRequiredHeader;
  }
  const der = decode(certText);
  if (!der) return IdsStatus.badCert;
  const cert = await pki.verifyIdsCertificate(der);
  if (!cert.ok) return cert.reason === 'expired' ? IdsStatus.refreshCredentials : IdsStatus.badCert;
  if (cert.kind !== family || (userHeader !== undefined && userHeader !== cert.userId)) return IdsStatus.badCert;
  const status = await checkSignature(cert.publicKey, nonceText, sigText, bagKey, body, pushToken, clock);
  if (status !== IdsStatus.ok) return status;
  return { userId: cert.userId, publicKey: cert.publicKey, spki: cert.spki, serial: cert.serial, notAfter: cert.notAfter };
}

async function checkSignature(
  publicKey: CryptoKey,
  nonceText: string,
  sigText: string,
  bagKey: string,
  body: Uint8Array,
  pushToken: Uint8Array,
  clock: Clock,
): Promise<number> {
  const nonce = decode(nonceText);
  let timeMs: number;
  try {
    const parsed = parseNonce(nonce ?? new Uint8Array(0));
    if (parsed.kind !== 'ids') return IdsStatus.badNonce;
    timeMs = parsed.timeMs;
  } catch {
    return IdsStatus.badNonce;
  }
  if (Math.abs(timeMs - clock.now()) > NONCE_WINDOW_MS) return IdsStatus.badNonceTimestamp;
  const signature = decode(sigText);
  if (!signature) return IdsStatus.badSignature;
  try {
    const ok = await verifyIdsSignature(publicKey, { nonce: nonce!, bagKey, query: '', body, pushToken }, signature);
    return ok ? IdsStatus.ok : IdsStatus.badSignature;
  } catch {
    return IdsStatus.badCert;
  }
}

function headerReader(headers: HeaderBag): (name: string) => string | undefined {
  const lower = new Map<string, string>();
  for (const [k, v] of Object.entries(headers)) {
    const value = typeof v === 'string' ? v : v?.[0];
    if (value !== undefined && !lower.has(k.toLowerCase())) lower.set(k.toLowerCase(), value.trim());
  }
  return (name) => lower.get(name);
}

function decodePushToken(text: string): Uint8Array | null {
  const token = decode(text);
  return token && token.length === 32 ? token : null;
}

// Header values are bounded by the HTTP parser; anything that is not base64 is simply absent.
function decode(text: string): Uint8Array | null {
  if (text.length === 0) return null;
  try {
    return fromBase64(text);
  } catch {
    return null;
  }
}
