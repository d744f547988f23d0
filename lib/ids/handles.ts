// The two push+auth signed reads of ids.md §4: idsGetHandles (the handles a user may register) and
// getDependentRegistrations (the devices registered on the account, for the "own devices" screen and new-device
// alerts). Both are GETs with an empty body, so the signatures cover an empty body.
import { isDict, type PlistDict, type PlistValue } from '../codec/plist';
import { DecodeError } from '../errors';
import { nowOf, protocolVersionOf, type IdsContext } from './context';
import { setupTimeOf, userAgent } from './device';
import { IdsStatus, statusError } from './errors';
import { optionalArray, optionalDict, optionalString, own, requestPlist, statusOf } from './plist-http';
import { pushAndAuthHeaders, type PushCredentials, type UserCredentials } from './signing';
import type { IdsUrlKey } from './bag';

export interface SignedReadParams {
  push: PushCredentials;
  /** The user's auth key under its auth certificate. */
  user: UserCredentials;
}

/** A device registered on the account. */
export interface OwnDevice {
  service: string;
  pushToken: Uint8Array;
  deviceName?: string;
  hardwareVersion?: string;
  /** Handles the device registered. */
  identities: string[];
  subServices: string[];
  /** When the device says it was set up (private-device-data `d`), unix ms. */
  firstSeen?: number;
  selfHandle?: string;
  /** Client data as registered (capabilities, published keys). */
  clientData?: PlistDict;
}

export interface DependentRegistrations {
  devices: OwnDevice[];
  /** `expiry-epoch-milli-sec`: how long the list may be cached. */
  expiresAt?: number;
}

const EMPTY = new Uint8Array(0);

async function signedGet(ctx: IdsContext, bagKey: IdsUrlKey, p: SignedReadParams, what: string): Promise<PlistDict> {
  const signed = await pushAndAuthHeaders(p.push, p.user, bagKey, EMPTY, { now: () => nowOf(ctx) });
  return requestPlist(
    ctx.http,
    {
      url: ctx.bag.url(bagKey),
      method: 'GET',
      headers: { 'user-agent': userAgent(ctx.device), 'x-protocol-version': protocolVersionOf(ctx), ...signed },
    },
    what,
  );
}

/** The handles (`mailto:`/`tel:` URIs) the user may register. 6005 → IdsError 'auth-expired'. */
export async function getHandles(ctx: IdsContext, p: SignedReadParams): Promise<string[]> {
  return parseHandlesResponse(await signedGet(ctx, 'id-get-handles', p, 'idsGetHandles'), p.user.userId);
}

export function parseHandlesResponse(dict: PlistDict, userId: string): string[] {
  const what = 'idsGetHandles';
  const status = statusOf(dict, what);
  if (status !== IdsStatus.ok) throw statusError(status, what, { userId });
  return (optionalArray(dict, 'handles', what) ?? []).map((h) => {
    const uri = isDict(h) ? own(h, 'uri') : undefined;
    if (typeof uri !== 'string' || uri.length === 0) throw new DecodeError('ids-bad-response', `${what}: a handle has no uri`);
    return uri;
  });
}

/** The account's registered devices (this one included). */
export async function getDependentRegistrations(ctx: IdsContext, p: SignedReadParams): Promise<DependentRegistrations> {
  const what = 'getDependentRegistrations';
  return parseDependentRegistrations(await signedGet(ctx, 'id-get-dependent-registrations', p, what), p.user.userId);
}

export function parseDependentRegistrations(dict: PlistDict, userId: string): DependentRegistrations {
  const what = 'getDependentRegistrations';
  const status = statusOf(dict, what);
  if (status !== IdsStatus.ok) throw statusError(status, what, { userId });
  const expiry = own(dict, 'expiry-epoch-milli-sec');
  const devices: OwnDevice[] = [];
  for (const entry of optionalArray(dict, 'registrations', what) ?? []) {
    // An entry without a usable push token names no device we could show or tell apart.
    const token = isDict(entry) ? own(entry, 'push-token') : undefined;
    if (!isDict(entry) || !(token instanceof Uint8Array) || token.length !== 32) continue;
    const device: OwnDevice = {
      service: optionalString(entry, 'service', what) ?? '',
      pushToken: token.slice(),
      identities: uriList(optionalArray(entry, 'identities', what)),
      subServices: (optionalArray(entry, 'sub-services', what) ?? []).filter((s): s is string => typeof s === 'string'),
    };
    const name = optionalString(entry, 'device-name', what);
    const hardware = optionalString(entry, 'hardware-version', what);
    const selfHandle = optionalString(entry, 'self-handle', what);
    const firstSeen = setupTimeOf(optionalDict(entry, 'private-device-data', what));
    const clientData = optionalDict(entry, 'client-data', what);
    if (name !== undefined) device.deviceName = name;
    if (hardware !== undefined) device.hardwareVersion = hardware;
    if (selfHandle !== undefined) device.selfHandle = selfHandle;
    if (firstSeen !== undefined) device.firstSeen = firstSeen;
    if (clientData !== undefined) device.clientData = clientData;
    devices.push(device);
  }
  return typeof expiry === 'number' && Number.isSafeInteger(expiry) ? { devices, expiresAt: expiry } : { devices };
}

function uriList(list: PlistValue[] | undefined): string[] {
  const out: string[] = [];
  for (const item of list ?? []) {
    const uri = isDict(item) ? own(item, 'uri') : undefined;
    if (typeof uri === 'string') out.push(uri);
  }
  return out;
}
