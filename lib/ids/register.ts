// register (ids.md §5): one signed request publishes this device (push token, versions, validation data) and, per
// user, the handles it serves and the keys peers encrypt to; each user gets back an ID certificate over its auth
// key. The push family signs once; every user signs with its auth key under headers suffixed -0, -1, …
import { encodeXmlPlist, isDict, type PlistDict } from '../codec/plist';
import { equalBytes } from '../codec/bytes';
import { CryptoError, DecodeError, EncodeError } from '../errors';
import { KT_VERSION, NGM_VERSION } from '../crypto/identity-ngm';
import { readCertificate, type IdsCertificate } from './auth-cert';
import { nowOf, protocolVersionOf, type IdsContext } from './context';
import { osVersion, privateDeviceData, registrationUserAgent, type DeviceInfo } from './device';
import { IdsError, IdsStatus, statusError } from './errors';
import { optionalArray, optionalDict, own, requestPlist, statusOf } from './plist-http';
import { authHeaders, pushHeaders, type PushCredentials, type UserCredentials } from './signing';

export const MADRID_SERVICE = 'com.apple.madrid';

/** Sub-services registered with madrid ([BG]'s core set: SMS relay, gelato, business chat, Game Center). */
export const DEFAULT_SUB_SERVICES: readonly string[] = [
  'com.apple.private.alloy.sms',
  'com.apple.private.alloy.gelato',
  'com.apple.private.alloy.biz',
  'com.apple.private.alloy.gamecenter.imessage',
];

/**
 * Capability flags published in client-data. Peers pick message features from them, so only what Cerulean reads
 * or can safely ignore is claimed: typing, peer errors, tapbacks, send effects (shown as plain messages), inline
 * attachments (simpler to receive than MMCS), original timestamps. Callers may publish a different set.
 */
export const DEFAULT_CAPABILITY_FLAGS: Readonly<PlistDict> = {
  'optionally-receive-typing-indicators': true,
  'show-peer-errors': true,
  'prefers-sdr': false,
  'supports-ack-v1': true,
  'supports-impact-v1': true,
  'supports-inline-attachments': true,
  'supports-original-timestamp-v1': true,
};

/** `public-message-identity-version`, `ec-version` ([BG]/[RP] values). */
const IDENTITY_VERSION = 2;
const EC_VERSION = 1;

/** The keys a user publishes (lib/crypto: LegacyIdentity.publicKey.blob and the NgmIdentity fields). */
export interface PublishedKeys {
  /** `public-message-identity-key` (ids.md §6.1). */
  legacyIdentity: Uint8Array;
  /** `public-message-ngm-device-prekey-data-key` (§6.3). */
  ngmDevicePrekey: Uint8Array;
  /** user-level `kt-loggable-data` (§6.4). */
  ktLoggableData: Uint8Array;
}

export interface RegisterUser {
  /** The user's auth key under its auth certificate. */
  auth: UserCredentials;
  /** Handles to register (from getHandles). */
  uris: string[];
  /** Default "SIM" for phone users (`P:…`), none for Apple IDs. */
  tag?: string;
  /** Omitted: no client-data (register-only, no messaging keys). */
  keys?: PublishedKeys;
}

export interface RegisterParams {
  push: PushCredentials;
  /** An empty list deregisters the device. */
  users: RegisterUser[];
  validationData: Uint8Array;
  subServices?: readonly string[];
  capabilityFlags?: Readonly<PlistDict>;
  /** The Messenger capability's flags: 1 ([PY], [BG]) or 17 ([RP]). */
  messengerFlags?: number;
}

export interface RegisteredUser {
  userId: string;
  status: 'ok';
  /** The ID certificate: signs lookups; its key is the auth key. */
  idCert: IdsCertificate;
  /** Handles IDS accepted. */
  granted: string[];
  /** Handles it refused, with the per-URI status. */
  rejected: Array<{ uri: string; status: number }>;
  /** `next-hbi`: seconds until the server wants a re-registration, when it says. */
  nextHbi?: number;
}

export interface FailedUser {
  userId: string;
  status: 'failed';
  /** 'auth-expired' (6005: authenticate again), 'registration-refused' (with `alert` for 6001/6009), … */
  error: IdsError;
}

export type RegisterUserResult = RegisteredUser | FailedUser;

/** A user's client-data: its published keys, versions and capability flags. */
export function clientData(keys: PublishedKeys, flags: Readonly<PlistDict> = DEFAULT_CAPABILITY_FLAGS): PlistDict {
  return {
    ...flags,
    'public-message-identity-key': keys.legacyIdentity,
    'public-message-identity-version': IDENTITY_VERSION,
    'ec-version': EC_VERSION,
    'public-message-identity-ngm-version': NGM_VERSION,
    'public-message-ngm-device-prekey-data-key': keys.ngmDevicePrekey,
    'kt-version': KT_VERSION,
  };
}

export function buildRegisterBody(device: DeviceInfo, p: Omit<RegisterParams, 'push'>): PlistDict {
  if (p.validationData.length === 0) throw new EncodeError('no-validation-data', 'register needs validation data');
  const users = p.users.map((u): PlistDict => {
    if (u.uris.length === 0) throw new EncodeError('no-handles', `user ${u.auth.userId} has no handles to register`);
    const user: PlistDict = { 'user-id': u.auth.userId, uris: u.uris.map((uri) => ({ uri })) };
    const tag = u.tag ?? (u.auth.userId.startsWith('P:') ? 'SIM' : undefined);
    if (tag !== undefined) user['tag'] = tag;
    if (u.keys) {
      user['client-data'] = clientData(u.keys, p.capabilityFlags);
      user['kt-loggable-data'] = u.keys.ktLoggableData;
    }
    return user;
  });
  return {
    'device-name': device.deviceName,
    'hardware-version': device.hardwareVersion,
    language: device.language ?? 'en-US',
    'os-version': osVersion(device),
    'software-version': device.softwareBuildId,
    'private-device-data': privateDeviceData(device),
    services: [
      {
        service: MADRID_SERVICE,
        capabilities: [{ name: 'Messenger', flags: p.messengerFlags ?? 1, version: 1 }],
        'sub-services': [...(p.subServices ?? DEFAULT_SUB_SERVICES)],
        users,
      },
    ],
    'validation-data': p.validationData,
  };
}

/**
 * Registers the device. Throws for request-level failures (6004 → 'validation-data-expired', other statuses,
 * malformed answers); per-user outcomes come back as results, so one user's failure keeps the others' certificates.
 */
export async function register(ctx: IdsContext, p: RegisterParams): Promise<RegisterUserResult[]> {
  const body = encodeXmlPlist(buildRegisterBody(ctx.device, p));
  const signing = { now: () => nowOf(ctx) };
  const families = await Promise.all([
    pushHeaders(p.push, 'id-register', body, signing),
    ...p.users.map((u, i) => authHeaders(u.auth, p.push.token, 'id-register', body, i, signing)),
  ]);
  const dict = await requestPlist(
    ctx.http,
    {
      url: ctx.bag.url('id-register'),
      method: 'POST',
      headers: {
        'user-agent': registrationUserAgent(ctx.device),
        'x-protocol-version': protocolVersionOf(ctx),
        'content-type': 'application/x-apple-plist',
        ...Object.assign({}, ...families),
      },
      body,
    },
    'register',
  );
  return parseRegisterResponse(dict, p.users.map((u) => u.auth));
}

/** Reads a register answer for the users that were sent (their auth certificates check the ID certificates' keys). */
export function parseRegisterResponse(dict: PlistDict, users: ReadonlyArray<Pick<UserCredentials, 'userId' | 'certDer'>>): RegisterUserResult[] {
  const what = 'register';
  const status = statusOf(dict, what);
  if (status !== IdsStatus.ok) throw statusError(status, what);
  if (users.length === 0) return [];
  const service = (optionalArray(dict, 'services', what) ?? [])[0];
  if (!isDict(service) || own(service, 'service') !== MADRID_SERVICE) {
    throw new DecodeError('ids-bad-response', `${what}: the answer does not start with ${MADRID_SERVICE}`);
  }
  const serviceStatus = statusOf(service, what);
  if (serviceStatus !== IdsStatus.ok) throw statusError(serviceStatus, `${what} (${MADRID_SERVICE})`);
  const answers = new Map<string, PlistDict>();
  for (const a of optionalArray(service, 'users', what) ?? []) {
    const id = isDict(a) ? own(a, 'user-id') : undefined;
    if (isDict(a) && typeof id === 'string' && !answers.has(id)) answers.set(id, a);
  }
  return users.map((u) => {
    const answer = answers.get(u.userId);
    if (!answer) throw new DecodeError('ids-bad-response', `${what}: no answer for a user that was sent`);
    return parseUserAnswer(answer, u);
  });
}

function parseUserAnswer(answer: PlistDict, user: Pick<UserCredentials, 'userId' | 'certDer'>): RegisterUserResult {
  const what = 'register';
  const userId = user.userId;
  const status = statusOf(answer, what);
  const alert = optionalDict(answer, 'alert', what);
  const extra = alert ? { userId, alert } : { userId };
  const uris = (optionalArray(answer, 'uris', what) ?? []).map((u) => {
    const uri = isDict(u) ? own(u, 'uri') : undefined;
    if (!isDict(u) || typeof uri !== 'string') throw new DecodeError('ids-bad-response', `${what}: a uri entry is malformed`);
    return { uri, status: statusOf(u, what) };
  });
  if (status !== IdsStatus.ok) {
    const error =
      status === IdsStatus.actionDoNotRetry || status === IdsStatus.permanentFailure
        ? new IdsError('registration-refused', `${what}: IDS refused ${userId} (${status})`, { status, ...extra })
        : statusError(status, `${what} of ${userId}`, extra);
    return { userId, status: 'failed', error };
  }
  const granted = uris.filter((u) => u.status === IdsStatus.ok).map((u) => u.uri);
  const rejected = uris.filter((u) => u.status !== IdsStatus.ok);
  if (granted.length === 0) {
    const first = rejected[0]?.status;
    const error = new IdsError('registration-refused', `${what}: no handle of ${userId} was accepted`, {
      ...(first !== undefined ? { status: first } : {}),
      ...extra,
    });
    return { userId, status: 'failed', error };
  }
  const der = own(answer, 'cert');
  if (!(der instanceof Uint8Array) || der.length === 0) throw new DecodeError('ids-bad-response', `${what}: ${userId} has no ID certificate`);
  const idCert = readCertificate(der, what);
  // The ID certificate must certify the auth key, or every lookup signed with it would fail.
  if (!equalBytes(idCert.spki, readCertificate(user.certDer, 'auth certificate').spki)) {
    throw new CryptoError('ids-certificate-key-mismatch', `${what}: the ID certificate of ${userId} is not over its auth key`);
  }
  const result: RegisteredUser = { userId, status: 'ok', idCert: { userId, der: der.slice(), notAfter: idCert.notAfter }, granted, rejected };
  const hbi = own(answer, 'next-hbi');
  if (typeof hbi === 'number' && Number.isSafeInteger(hbi) && hbi > 0) result.nextHbi = hbi;
  return result;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** [BG] re-registers at least this often whatever the certificate says (raised from 7 days in Jan 2024). */
export const MAX_REGISTRATION_AGE_MS = 45 * DAY;

/**
 * When to register again ([BG]'s rule, ids.md §5 "Lifetimes"), called with the time of the registration that
 * produced the certificate: before NotAfter by 3 min / 30 min / 4 h / 24 h for lifetimes under 8 h / 1 d / 7 d /
 * longer, and no later than 45 days after registering.
 */
export function reregisterDueAt(notAfter: number, now: number): number {
  const lifetime = notAfter - now;
  const margin = lifetime < 8 * HOUR ? 3 * MINUTE : lifetime < DAY ? 30 * MINUTE : lifetime < 7 * DAY ? 4 * HOUR : DAY;
  return Math.max(now, Math.min(notAfter - margin, now + MAX_REGISTRATION_AGE_MS));
}
