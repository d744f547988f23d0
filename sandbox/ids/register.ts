// register (ids.md §5, §9 item 9). One request registers a device (push token) for several services and users:
//   1. push signature (bag key `id-register`, over the body bytes as sent)      → top-level status on failure
//   2. injected 7000 (rate limited), then validation data: strict = minted by this sandbox's relay and unexpired,
//      lenient = any non-empty blob                                             → top-level 6004 when bad/expired
//   3. each user N must be signed by headers `x-auth-*-N` with its auth certificate → else that user's status is
//      the signature failure (5009 unsigned, 5085, 5087, 5032, 6005 expired auth certificate, …)
//   4. each uri must be one of the user's handles (handles.ts)                   → else the uri's status is 5052
//      (EmailNotVetted: Apple's answer for an alias the account no longer has); a user with no granted uri gets 5052
//   5. the user gets an ID certificate over its auth certificate's key, and the registration is stored with
//      client-data and kt-loggable-data value-exact. Users of an earlier registration of that token and service
//      that the request no longer lists are deregistered.
// Every service is answered in request order and every user with `user-id`, `status`, `uris:[{uri,status}]` (and
// `cert` when it succeeded). A request whose services all list no users deregisters the token from them (all of
// its services when `services` is empty). A phone and an Apple ID registered together link the phone to the account.
import { equalBytes } from '../../lib/codec/bytes';
import { isDict, type PlistDict, type PlistValue } from '../../lib/codec/plist';
import type { Accounts } from '../accounts';
import type { Clock, Log } from '../context';
import type { ServiceRequest, ServiceResponse } from '../http-service';
import type { SandboxPki } from '../pki';
import type { RegistrationRelay } from '../relay';
import { handlesOfUser, phoneOfUserId } from './handles';
import { arrayField, dataField, dictField, idsReply, idsStatusReply, own, readIdsBody, stringField } from './ids-request';
import { comparableUri, type Registrations } from './registrations';
import {
  countSignedUsers,
  IdsStatus,
  signedUserId,
  verifyAuthSignature,
  verifyPushSignature,
  type PushSigned,
  type SignatureDeps,
  type UserSigned,
} from './signed-request';

const DAY = 86_400_000;
const MAX_SERVICES = 16;
const MAX_USERS = 16;
const MAX_URIS = 64;
const MAX_SUB_SERVICES = 64;
/** Suggested wait after an injected 7000, seconds. */
const RATE_LIMIT_RETRY_SECONDS = 60;

export type RegisterFaultStatus = 6001 | 6009 | 7000;

export interface RegisterFault {
  status: RegisterFaultStatus;
  /** 6001/6009: only this user's registrations (default: every user). Ignored for 7000, which fails the request. */
  userId?: string;
  /** How many registers (7000) or user registrations (6001/6009) it fails; default until cleared. */
  times?: number;
}

/** Switches the admin page and tests flip to make register fail the way Apple's counter-measures do. */
export class RegisterFaults {
  private faults: Array<{ fault: RegisterFault; left: number }> = [];

  inject(fault: RegisterFault): void {
    this.faults.push({ fault: { ...fault }, left: fault.times ?? Number.POSITIVE_INFINITY });
  }

  clear(): void {
    this.faults = [];
  }

  active(): RegisterFault[] {
    return this.faults.map((f) => ({ ...f.fault }));
  }

  /** Consumes one use of the first fault that applies: 7000 to a request (no userId), 6001/6009 to a user. */
  take(userId?: string): RegisterFaultStatus | undefined {
    const hit = this.faults.find(({ fault }) =>
      userId === undefined ? fault.status === 7000 : fault.status !== 7000 && (fault.userId === undefined || fault.userId === userId),
    );
    if (!hit) return undefined;
    hit.left -= 1;
    if (hit.left <= 0) this.faults = this.faults.filter((f) => f !== hit);
    return hit.fault.status;
  }
}

const ALERTS: Record<6001 | 6009, PlistDict> = {
  6001: {
    title: 'iMessage Registration Failed',
    body: 'This device cannot be registered for iMessage with this account.',
    button: 'OK',
  },
  6009: {
    title: 'iMessage Temporarily Unavailable',
    body: 'iMessage has been temporarily disabled for this account. Try again later.',
    button: 'OK',
  },
};

export interface IdCertLifetimes {
  /** A phone number's first registration on a device (default 30 minutes, beeper/imessage issue #5). */
  phoneFirstMs?: number;
  /** Its later re-registrations (default 30 days). */
  phoneMs?: number;
  /** Apple ID users (default 30 days). */
  appleIdMs?: number;
}

export interface RegisterOptions {
  /** 'strict' (default): only relay-minted, unexpired validation data; 'lenient': any non-empty blob. */
  validation?: 'strict' | 'lenient';
  idCertLifetimes?: IdCertLifetimes;
  faults?: RegisterFaults;
}

export interface RegisterDeps extends SignatureDeps {
  pki: SandboxPki;
  clock: Clock;
  log: Log;
  accounts: Accounts;
  relay: Pick<RegistrationRelay, 'verifyValidationData'>;
  registrations: Registrations;
}

interface DeviceFields {
  deviceName?: string;
  hardwareVersion?: string;
  osVersion?: string;
  softwareVersion?: string;
  privateDeviceData?: PlistDict;
}

export class IdsRegister {
  private readonly lifetimes: Required<IdCertLifetimes>;
  private readonly faults: RegisterFaults;

  constructor(
    private readonly deps: RegisterDeps,
    private readonly options: RegisterOptions = {},
  ) {
    this.lifetimes = {
      phoneFirstMs: options.idCertLifetimes?.phoneFirstMs ?? 30 * 60_000,
      phoneMs: options.idCertLifetimes?.phoneMs ?? 30 * DAY,
      appleIdMs: options.idCertLifetimes?.appleIdMs ?? 30 * DAY,
    };
    this.faults = options.faults ?? new RegisterFaults();
  }

  async register(req: ServiceRequest): Promise<ServiceResponse> {
    const body = await readIdsBody(req);
    const push = await verifyPushSignature(req.headers, 'id-register', req.rawBody, this.deps);
    if (typeof push === 'number') return idsStatusReply(push);
    if (this.faults.take() === 7000) {
      return idsReply({ status: IdsStatus.rateLimited, message: 'Rate limited', 'retry-interval': RATE_LIMIT_RETRY_SECONDS });
    }
    const validation = this.checkValidationData(dataField(body, 'validation-data'));
    if (validation !== IdsStatus.ok) return idsStatusReply(validation);
    const services = arrayField(body, 'services');
    if (!services || services.length > MAX_SERVICES || !services.every(isDict)) {
      return idsStatusReply(IdsStatus.missingRequiredKey, 'services must be an array of dictionaries');
    }
    const entries = services as PlistDict[];
    if (entries.every((s) => (arrayField(s, 'users') ?? []).length === 0)) return this.deregisterAll(push.pushToken, entries);

    const signed = await this.signedUsers(req, push);
    const device = deviceFields(body);
    const registered = new Set<string>();
    const answers: PlistDict[] = [];
    for (const s of entries) answers.push(await this.registerService(s, push.pushToken, signed, device, registered));
    await this.linkPhones(registered);
    return idsReply({ status: IdsStatus.ok, services: answers });
  }

  /** `deregister` (bag key `id-deregister`): not used by known clients; removes the listed services, or all. */
  async deregister(req: ServiceRequest): Promise<ServiceResponse> {
    const body = await readIdsBody(req, { allowEmpty: true });
    const push = await verifyPushSignature(req.headers, 'id-deregister', req.rawBody, this.deps);
    if (typeof push === 'number') return idsStatusReply(push);
    const listed = (arrayField(body, 'services') ?? []).flatMap((s) => (isDict(s) ? [stringField(s, 'service', 256)] : [s])).filter(isString);
    const services = listed.length > 0 ? listed : this.servicesOf(push.pushToken);
    for (const service of services) await this.deps.registrations.removeToken(service, push.pushToken);
    this.deps.log.info('ids.deregistered', { services });
    return idsStatusReply(IdsStatus.ok);
  }

  private checkValidationData(blob: Uint8Array | undefined): number {
    if (!blob || blob.length === 0) return IdsStatus.retryWithNewAbsintheContext;
    if (this.options.validation === 'lenient') return IdsStatus.ok;
    const check = this.deps.relay.verifyValidationData(blob);
    if (check.status !== 'ok') this.deps.log.info('ids.register.validation-data-rejected', { reason: check.status });
    return check.status === 'ok' ? IdsStatus.ok : IdsStatus.retryWithNewAbsintheContext;
  }

  // Header families -0, -1, … : a verified user by id, or the failure status for the id the family names.
  private async signedUsers(req: ServiceRequest, push: PushSigned): Promise<Map<string, UserSigned | number>> {
    const out = new Map<string, UserSigned | number>();
    const count = countSignedUsers(req.headers, MAX_USERS);
    for (let n = 0; n < count; n++) {
      const suffix = `-${n}`;
      const userId = signedUserId(req.headers, suffix);
      if (userId === undefined || out.has(userId)) continue;
      out.set(userId, await verifyAuthSignature(req.headers, 'id-register', req.rawBody, push.pushToken, this.deps, suffix));
    }
    return out;
  }

  private async registerService(
    entry: PlistDict,
    pushToken: Uint8Array,
    signed: Map<string, UserSigned | number>,
    device: DeviceFields,
    registered: Set<string>,
  ): Promise<PlistDict> {
    const service = stringField(entry, 'service', 256);
    const users = (arrayField(entry, 'users') ?? []).slice(0, MAX_USERS);
    if (service === undefined || service.length === 0) return { service: own(entry, 'service') ?? '', status: IdsStatus.missingRequiredKey, users: [] };
    const subServices = (arrayField(entry, 'sub-services') ?? []).filter(isString).slice(0, MAX_SUB_SERVICES);
    const answers: PlistDict[] = [];
    const listed = new Set<string>();
    for (const user of users) {
      const userId = isDict(user) ? stringField(user, 'user-id', 256) : undefined;
      if (!isDict(user) || userId === undefined) {
        answers.push({ status: IdsStatus.missingRequiredKey, uris: [] });
        continue;
      }
      listed.add(userId);
      const answer = await this.registerUser(service, subServices, user, userId, pushToken, signed.get(userId), device);
      if (answer.status === IdsStatus.ok) registered.add(userId);
      answers.push(answer);
    }
    for (const stale of this.deps.registrations.forToken(service, pushToken)) {
      if (!listed.has(stale.userId)) await this.deps.registrations.remove(service, pushToken, stale.userId);
    }
    return { service, status: IdsStatus.ok, users: answers };
  }

  private async registerUser(
    service: string,
    subServices: string[],
    user: PlistDict,
    userId: string,
    pushToken: Uint8Array,
    auth: UserSigned | number | undefined,
    device: DeviceFields,
  ): Promise<PlistDict> {
    const uris = (arrayField(user, 'uris') ?? []).slice(0, MAX_URIS).map((u) => (isDict(u) ? stringField(u, 'uri', 512) : undefined));
    const fail = (status: number, extra: PlistDict = {}): PlistDict => ({
      'user-id': userId,
      status,
      uris: uris.filter(isString).map((uri) => ({ uri, status })),
      ...extra,
    });
    if (auth === undefined) return fail(IdsStatus.missingRequiredHeader);
    if (typeof auth === 'number') return fail(auth);
    const fault = this.faults.take(userId);
    if (fault === 6001 || fault === 6009) return fail(fault, { alert: ALERTS[fault] });
    const owned = handlesOfUser(this.deps.accounts, userId);
    if (!owned) return fail(IdsStatus.refreshCredentials);
    if (uris.length === 0 || uris.some((u) => u === undefined)) return fail(IdsStatus.missingRequiredKey);
    const clientData = own(user, 'client-data');
    const kt = own(user, 'kt-loggable-data');
    if ((clientData !== undefined && !isDict(clientData)) || (kt !== undefined && !(kt instanceof Uint8Array))) {
      return fail(IdsStatus.badRequest);
    }

    const ownedSet = new Set(owned.map(comparableUri));
    const uriAnswers = (uris as string[]).map((uri) => ({ uri, status: ownedSet.has(comparableUri(uri)) ? IdsStatus.ok : IdsStatus.emailNotVetted }));
    const granted = uriAnswers.filter((u) => u.status === IdsStatus.ok).map((u) => u.uri);
    if (granted.length === 0) return { 'user-id': userId, status: IdsStatus.emailNotVetted, uris: uriAnswers };

    const now = this.deps.clock.now();
    const firstTime = !this.deps.registrations.forToken(service, pushToken).some((r) => r.userId === userId);
    const cert = await this.deps.pki.issueIdsCertificate({ publicKey: auth.spki, userId, kind: 'id', notAfter: now + this.lifetime(userId, firstTime) });
    await this.deps.registrations.upsert({
      service,
      pushToken,
      userId,
      uris: granted,
      clientData: clientData as PlistDict | undefined,
      ktLoggableData: kt as Uint8Array | undefined,
      subServices,
      ...device,
      idCertSerial: cert.serial,
      idCertNotAfter: cert.notAfter,
      registeredAt: now,
      updatedAt: now,
    });
    this.deps.log.info('ids.registered', { service, userId, uris: granted.length, firstTime, notAfter: cert.notAfter });
    return { 'user-id': userId, status: IdsStatus.ok, cert: cert.der, uris: uriAnswers };
  }

  private lifetime(userId: string, firstTime: boolean): number {
    if (phoneOfUserId(userId) === undefined) return this.lifetimes.appleIdMs;
    return firstTime ? this.lifetimes.phoneFirstMs : this.lifetimes.phoneMs;
  }

  private async deregisterAll(pushToken: Uint8Array, entries: PlistDict[]): Promise<ServiceResponse> {
    const listed = entries.map((s) => stringField(s, 'service', 256)).filter(isString);
    const services = entries.length > 0 ? listed : this.servicesOf(pushToken);
    for (const service of services) await this.deps.registrations.removeToken(service, pushToken);
    this.deps.log.info('ids.deregistered', { services });
    return idsReply({ status: IdsStatus.ok, services: listed.map((service) => ({ service, status: IdsStatus.ok, users: [] })) });
  }

  private servicesOf(pushToken: Uint8Array): string[] {
    const mine = this.deps.registrations.list().filter((r) => equalBytes(r.pushToken, pushToken));
    return [...new Set(mine.map((r) => r.service))];
  }

  // A phone and an Apple ID that registered together on one device: Apple adds the number to the account.
  private async linkPhones(registered: Set<string>): Promise<void> {
    const numbers = [...registered].map(phoneOfUserId).filter(isString);
    if (numbers.length === 0) return;
    for (const userId of registered) {
      const account = phoneOfUserId(userId) === undefined ? this.deps.accounts.findByProfileId(userId) : undefined;
      if (!account) continue;
      for (const number of numbers) {
        if (account.phones.includes(number)) continue;
        await this.deps.accounts.linkPhone(account.appleId, number);
        this.deps.log.info('ids.phone-linked', { profileId: userId, number });
      }
    }
  }
}

function deviceFields(body: PlistDict): DeviceFields {
  const out: DeviceFields = {};
  const set = (key: keyof Omit<DeviceFields, 'privateDeviceData'>, field: string) => {
    const v = stringField(body, field, 256);
    if (v !== undefined) out[key] = v;
  };
  set('deviceName', 'device-name');
  set('hardwareVersion', 'hardware-version');
  set('osVersion', 'os-version');
  set('softwareVersion', 'software-version');
  const pdd = dictField(body, 'private-device-data');
  if (pdd) out.privateDeviceData = pdd;
  return out;
}

function isString(v: PlistValue | undefined): v is string {
  return typeof v === 'string';
}
