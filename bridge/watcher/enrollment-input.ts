// Checking an enrollment request before anything is stored or dialed. The watcher accepts push credentials only:
// an RSA push key whose public half is the certificate's (so nobody can enroll a certificate without its key), the
// certificate itself, and a 32-byte token; a Web Push subscription within the endpoint policy; and optionally a
// courier host, which must pass the bridge's allowlist, host map and address rules.
import { createECDH, createPrivateKey, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { isPublicAddress } from '../address-policy';
import type { Resolver } from '../config';
import { type Destination, parseHostPort } from '../destination';
import { COURIER_PORT } from '../../lib/apns/courier-connect';
import { courierDestinationAllowed, type CourierDialOptions } from './courier-dial';
import { enrollmentIdFor } from './enrollment-id';
import { checkEndpoint, type EndpointPolicy } from './endpoint-policy';
import { ApiError } from './errors';
import type { PushTarget } from './wake-push';

export interface EnrollmentRequest {
  readonly id: string;
  readonly certificate: Uint8Array;
  /** The push private key, PKCS#8 DER. */
  readonly pkcs8: Uint8Array;
  readonly token: Uint8Array;
  readonly subscription: PushTarget;
  /** null: a numbered Apple courier host. */
  readonly courier: Destination | null;
  /** Start paused for this long (the page that enrolls is open and holds the courier connection). */
  readonly pauseMs: number | undefined;
}

export interface EnrollmentChecks {
  readonly now: number;
  readonly courier: Pick<CourierDialOptions, 'hostMap' | 'allowlist'> & { readonly resolver: Resolver };
  readonly endpoint: EndpointPolicy;
  readonly maxPauseMs: number;
}

// Generous ceilings on the encoded fields: RSA push keys are 1024-bit (PKCS#8 ≈ 640 bytes), certificates ≈ 1 KB.
const MAX_KEY_BYTES = 4096;
const MAX_CERT_BYTES = 8192;

function bad(code: string, message: string): ApiError {
  return new ApiError(400, code, message);
}

function record(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('bad-request', `${what} must be an object`);
  return v as Record<string, unknown>;
}

function text(v: unknown, what: string): string {
  if (typeof v !== 'string' || v === '') throw bad('bad-request', `${what} must be a non-empty string`);
  return v;
}

/** Standard or URL-safe base64 (padding optional), at most `max` decoded bytes. */
function base64(v: unknown, what: string, code: string, max: number): Uint8Array {
  if (typeof v !== 'string') throw bad('bad-request', `${what} must be a base64 string`);
  const s = v;
  if (s === '' || s.length > Math.ceil(max / 3) * 4 || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(s) || s.replace(/=+$/, '').length % 4 === 1) {
    throw bad(code, `${what} is not base64 of at most ${max} bytes`);
  }
  return new Uint8Array(Buffer.from(s, 'base64'));
}

function certificate(der: Uint8Array, now: number): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch {
    throw bad('bad-certificate', 'push.certificate is not a DER X.509 certificate');
  }
  if (cert.publicKey.asymmetricKeyType !== 'rsa') throw bad('bad-certificate', 'a push certificate certifies an RSA key');
  if (Date.parse(cert.validTo) <= now) throw bad('certificate-expired', 'the push certificate has expired; activate the device again');
  return cert;
}

function pushKey(pkcs8: Uint8Array, cert: X509Certificate): void {
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' });
  } catch {
    throw bad('bad-key', 'push.key is not a PKCS#8 private key');
  }
  if (key.asymmetricKeyType !== 'rsa') throw bad('bad-key', 'the push key is an RSA key');
  if (!cert.checkPrivateKey(key)) throw bad('key-mismatch', 'push.key is not the key of push.certificate');
}

function subscriptionKeys(v: unknown): { p256dh: string; auth: string } {
  const keys = record(v, 'subscription.keys');
  const p256dh = base64(keys.p256dh, 'subscription.keys.p256dh', 'bad-subscription', 65);
  const auth = base64(keys.auth, 'subscription.keys.auth', 'bad-subscription', 16);
  if (p256dh.length !== 65 || p256dh[0] !== 0x04) throw bad('bad-subscription', 'subscription.keys.p256dh is not an uncompressed P-256 point');
  try {
    // Throws for a point that is not on the curve: encryption to it would fail at the first wake-up.
    const probe = createECDH('prime256v1');
    probe.generateKeys();
    probe.computeSecret(p256dh);
  } catch {
    throw bad('bad-subscription', 'subscription.keys.p256dh is not a P-256 point');
  }
  if (auth.length !== 16) throw bad('bad-subscription', 'subscription.keys.auth is 16 bytes');
  return { p256dh: Buffer.from(p256dh).toString('base64url'), auth: Buffer.from(auth).toString('base64url') };
}

async function courierDestination(v: unknown, checks: EnrollmentChecks): Promise<Destination | null> {
  if (v === undefined || v === null) return null;
  const raw = text(v, 'courierHost');
  const destination = parseHostPort(/:[0-9]+$/.test(raw) && !raw.endsWith(']') ? raw : `${raw}:${COURIER_PORT}`);
  if (destination === null) throw bad('bad-request', 'courierHost must be host or host:port');
  const refused = (code: string, message: string) => new ApiError(403, code, message);
  if (!courierDestinationAllowed(destination, checks.courier)) throw refused('destination-not-allowed', 'the courier host is not in the allowlist');
  if (checks.courier.hostMap.lookup(destination.host, destination.port) !== undefined) return destination;
  if (isIP(destination.host) !== 0) {
    if (!isPublicAddress(destination.host)) throw refused('destination-not-public', 'the courier host is not a public address');
    return destination;
  }
  // A name that resolves only to private addresses could never be dialed; one that does not resolve now may later.
  const found = await checks.courier.resolver(destination.host).catch(() => []);
  if (found.length > 0 && !found.some((a) => isPublicAddress(a.address))) {
    throw refused('destination-not-public', 'the courier host resolves to non-public addresses');
  }
  return destination;
}

export async function parseEnrollment(body: unknown, checks: EnrollmentChecks): Promise<EnrollmentRequest> {
  const b = record(body, 'the body');
  const push = record(b.push, 'push');
  const sub = record(b.subscription, 'subscription');
  const der = base64(push.certificate, 'push.certificate', 'bad-certificate', MAX_CERT_BYTES);
  const pkcs8 = base64(push.key, 'push.key', 'bad-key', MAX_KEY_BYTES);
  const token = base64(push.token, 'push.token', 'bad-token', 64);
  if (token.length !== 32) throw bad('bad-token', 'push.token is 32 bytes');
  const cert = certificate(der, checks.now);
  pushKey(pkcs8, cert);
  const keys = subscriptionKeys(sub.keys);
  const endpoint = text(sub.endpoint, 'subscription.endpoint');
  await checkEndpoint(endpoint, checks.endpoint);
  const courier = await courierDestination(b.courierHost, checks);
  let pauseMs: number | undefined;
  if (b.pauseSeconds !== undefined) {
    const s = b.pauseSeconds;
    if (typeof s !== 'number' || !Number.isSafeInteger(s) || s < 1 || s * 1000 > checks.maxPauseMs) {
      throw bad('bad-request', `pauseSeconds must be an integer in 1…${Math.floor(checks.maxPauseMs / 1000)}`);
    }
    pauseMs = s * 1000;
  }
  return {
    id: enrollmentIdFor(der),
    certificate: der,
    pkcs8,
    token,
    subscription: { endpoint, ...keys },
    courier,
    pauseMs,
  };
}
