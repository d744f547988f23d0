// Which handles a user may register (ids.md §4, §9 item 8) and the two push+auth signed reads:
//   idsGetHandles               GET  → {status, handles:[{uri}]}   (6005 once the auth certificate is dead)
//   getDependentRegistrations   GET ([RP]) or POST {retry-count} ([BG]) → {status, expiry-epoch-milli-sec, registrations}
// A phone user owns exactly its `tel:`; an Apple ID owns its account's handles, which include the `tel:` of every
// phone linked to it (register links a phone registered together with the Apple ID on one device).
import { equalBytes } from '../../lib/codec/bytes';
import type { PlistDict } from '../../lib/codec/plist';
import { normalizeNumber, type Accounts } from '../accounts';
import type { Clock, Log } from '../context';
import type { ServiceRequest, ServiceResponse } from '../http-service';
import { readIdsBody, idsReply, idsStatusReply } from './ids-request';
import type { DeviceRegistration, Registrations } from './registrations';
import { IdsStatus, verifyAuthSignature, verifyPushSignature, type SignatureDeps, type UserSigned } from './signed-request';

/** How long a client may cache getDependentRegistrations (`expiry-epoch-milli-sec`). */
const DEPENDENTS_TTL_MS = 60 * 60_000;

export interface HandlesDeps extends SignatureDeps {
  accounts: Accounts;
  registrations: Registrations;
  log: Log;
  clock: Clock;
}

/** The E.164 number of a `P:+…` user id, or undefined for anything else. */
export function phoneOfUserId(userId: string): string | undefined {
  if (!userId.startsWith('P:')) return undefined;
  const rest = userId.slice(2);
  try {
    return normalizeNumber(rest) === rest ? rest : undefined;
  } catch {
    return undefined;
  }
}

/** The handles `userId` may register, or undefined when no such user exists (any more). */
export function handlesOfUser(accounts: Accounts, userId: string): string[] | undefined {
  const number = phoneOfUserId(userId);
  if (number !== undefined) return [`tel:${number}`];
  return accounts.findByProfileId(userId)?.handles;
}

export async function getHandles(req: ServiceRequest, deps: HandlesDeps): Promise<ServiceResponse> {
  const signed = await verifySignedUser(req, 'id-get-handles', deps);
  if (typeof signed === 'number') return idsStatusReply(signed);
  const handles = handlesOfUser(deps.accounts, signed.userId);
  if (!handles) return idsStatusReply(IdsStatus.refreshCredentials);
  return idsReply({ status: IdsStatus.ok, handles: handles.map((uri) => ({ uri })) });
}

/** The user's devices with a current registration, on every service. */
export async function getDependentRegistrations(req: ServiceRequest, deps: HandlesDeps): Promise<ServiceResponse> {
  if (req.method === 'POST') await readIdsBody(req, { allowEmpty: true });
  const signed = await verifySignedUser(req, 'id-get-dependent-registrations', deps);
  if (typeof signed === 'number') return idsStatusReply(signed);
  const all = deps.registrations.list();
  const mine = all.filter((r) => r.userId === signed.userId && deps.registrations.isCurrent(r));
  return idsReply({
    status: IdsStatus.ok,
    'expiry-epoch-milli-sec': deps.clock.now() + DEPENDENTS_TTL_MS,
    registrations: mine.map((r) => dependentEntry(r, all)),
  });
}

function dependentEntry(r: DeviceRegistration, all: DeviceRegistration[]): PlistDict {
  const entry: PlistDict = {
    service: r.service,
    'sub-services': [...r.subServices],
    'push-token': r.pushToken,
    identities: r.uris.map((uri) => ({ uri })),
    'is-hsa-trusted-device': true,
  };
  if (r.deviceName !== undefined) entry['device-name'] = r.deviceName;
  if (r.hardwareVersion !== undefined) entry['hardware-version'] = r.hardwareVersion;
  if (r.privateDeviceData) entry['private-device-data'] = r.privateDeviceData;
  if (r.clientData) entry['client-data'] = r.clientData;
  if (r.uris[0] !== undefined) entry['self-handle'] = r.uris[0];
  // Other users registered on the same device and service: the phone number an Apple ID device also carries.
  const linked = all
    .filter((o) => o.service === r.service && o.userId !== r.userId && equalBytes(o.pushToken, r.pushToken))
    .flatMap((o) => o.uris);
  if (linked.length > 0) entry['linked-user-uri'] = linked;
  return entry;
}

async function verifySignedUser(req: ServiceRequest, bagKey: string, deps: HandlesDeps): Promise<UserSigned | number> {
  const push = await verifyPushSignature(req.headers, bagKey, req.rawBody, deps);
  if (typeof push === 'number') return push;
  return verifyAuthSignature(req.headers, bagKey, req.rawBody, push.pushToken, deps);
}
