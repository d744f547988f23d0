// Getting this device onto iMessage, step by step (apns.md §7, ids.md §2–§5, §8), with every step's result kept in
// the store so the flow can stop for a person (2FA code, SMS) and carry on later, even after a restart:
//   albert activation (push key + certificate) → courier token (the client connects) → Apple ID sign-in or phone
//   authentication → auth certificate → validation data from the relay → register with legacy + NGM keys → ID
//   certificates, handles, and the time to renew.
import { activateDevice } from '../apns/albert';
import { getHandles } from '../ids/handles';
import { signInAppleId, type AppleIdCredentials } from '../ids/apple-id';
import { authenticateDS, generateAuthKey, makeAuthCsr, type IdsCertificate } from '../ids/auth-cert';
import { discoverSmsGateway } from '../ids/carrier-gateway';
import type { IdsContext } from '../ids/context';
import { DEFAULT_DEVICE_VERSIONS, type DeviceInfo } from '../ids/device';
import { IdsError } from '../ids/errors';
import { authenticatePhone, newRegRequestId, parseRegResp, regReqText } from '../ids/phone';
import { register, reregisterDueAt, type FailedUser, type RegisteredUser } from '../ids/register';
import type { PushCredentials, UserCredentials } from '../ids/signing';
import { deviceFromRelay, getValidationData } from '../ids/validation-data';
import { handleKey } from '../imessage/ports';
import { randomUuidString } from '../imessage/uuid';
import type { AccountRecord, ClientStore, IdsCredential } from '../store/types';
import { CeruleanError } from '../errors';
import type { ResolvedConfig } from './config';
import { fromStoredKeys, generateDeviceKeys, publishedKeys, toStoredKeys, type DeviceKeys } from './keys';
import type { Network } from './network';
import { loadRegistrationState, REGISTRATION_STATE_KEY, type RegistrationState } from './registration-state';

export { loadRegistrationState, type RegistrationState } from './registration-state';

export type RegisterRequest =
  | { appleId: AppleIdCredentials }
  /**
   * Without `regResp`: get the REG-REQ to send and where to. `mccMnc` is the SIM's MCC+MNC (e.g. "310260"); the
   * gateway is then looked up in Apple's carrier list unless the config names one. With `regResp`: the gateway's
   * answer to that REG-REQ.
   */
  | { phone: { regResp?: string; mccMnc?: string } };

export type RegisterResult =
  | { status: 'registered'; handles: string[]; expiresAt: number; failedUsers: Array<{ userId: string; error: string }> }
  /** Ask for the code the trusted devices show, then call register again with it. */
  | { status: 'second-factor-required' }
  | { status: 'bad-credentials' }
  /** Send `text` by SMS to `gateway` from the phone, then call register again with the answer. */
  | { status: 'sms-required'; text: string; gateway?: string };

/** kv: the pending REG-REQ's id (to check the answer) and where it was sent. */
const PHONE_REQUEST_KEY = 'client/phone-request';

// A type, not an interface: kv values must be plain records.
type PhoneRequest = {
  requestId: number;
  gateway?: string;
  mccMnc?: string;
};

/** An auth certificate this close to its end is not worth resuming with: sign in again. */
const SIGN_IN_MARGIN_MS = 10 * 60_000;

export class RegistrationError extends CeruleanError {}

export interface Registered {
  account: AccountRecord;
  state: RegistrationState;
  keys: DeviceKeys;
  failedUsers: FailedUser[];
}

export class Registrar {
  constructor(
    private readonly d: { store: ClientStore; network: Network; config: ResolvedConfig; now: () => number },
  ) {}

  /** The stored account, or a new one with a push certificate from albert. */
  async ensureAccount(): Promise<AccountRecord> {
    const [existing] = await this.d.store.accounts.list();
    if (existing?.push) return existing;
    // Extractable so the device can enroll with a push watcher (issue #6), which connects to the courier with this
    // key while the app is closed. It is the push key only; identity keys are never extractable.
    const activated = await activateDevice({ http: this.d.network.albert, extractable: true });
    const now = this.d.now();
    const account: AccountRecord = {
      id: existing?.id ?? randomUuidString(),
      userIds: existing?.userIds ?? [],
      handles: existing?.handles ?? [],
      authCertificates: existing?.authCertificates ?? [],
      idCertificates: existing?.idCertificates ?? [],
      push: { keyPair: { privateKey: activated.privateKey, publicKey: activated.publicKey }, certificate: activated.certificate },
      device: existing?.device ?? this.initialDevice(now),
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
    };
    await this.d.store.accounts.put(account);
    return account;
  }

  /**
   * Whether the account already holds an unexpired auth certificate for this sign-in: the person signed in (the 2FA
   * code or the SMS reply is spent) but registering failed afterwards, e.g. at the relay. Registering again then
   * starts from the certificate instead of asking for a new code.
   */
  hasSignIn(account: AccountRecord, req: RegisterRequest): boolean {
    const now = this.d.now();
    const fresh = (user: (userId: string) => boolean) => account.authCertificates.some((c) => user(c.userId) && c.notAfter > now + SIGN_IN_MARGIN_MS);
    if ('appleId' in req) {
      const same = account.appleId !== undefined && account.appleId.toLowerCase() === req.appleId.username.trim().toLowerCase();
      return same && fresh((id) => id === account.profileId);
    }
    // Phone users are `P:<number>` (ids.md §2.4).
    return fresh((id) => id.startsWith('P:'));
  }

  /** Apple ID sign-in; on success the user's auth certificate is stored. */
  async signInAppleId(account: AccountRecord, creds: AppleIdCredentials): Promise<'ok' | 'second-factor-required' | 'bad-credentials'> {
    const ctx = await this.context(account);
    const answer = await signInAppleId(ctx, creds);
    if (answer.status !== 'ok') return answer.status;
    const authKey = await this.authKey(account);
    const csr = await makeAuthCsr(authKey, answer.profileId);
    const cert = await authenticateDS(ctx, { authToken: answer.authToken, profileId: answer.profileId, csr });
    await this.saveAuth(account, cert, { appleId: creds.username, profileId: answer.profileId });
    return 'ok';
  }

  /** The REG-REQ the phone must send and its gateway (kept with the request id, which checks the answer). */
  async phoneRequest(token: Uint8Array, mccMnc?: string): Promise<{ text: string; gateway?: string }> {
    const gateway = await this.smsGateway(mccMnc);
    const request: PhoneRequest = {
      requestId: newRegRequestId(),
      ...(gateway !== undefined ? { gateway } : {}),
      ...(mccMnc !== undefined ? { mccMnc } : {}),
    };
    await this.d.store.kv.set(PHONE_REQUEST_KEY, request);
    return { text: regReqText(token, request.requestId), ...(gateway !== undefined ? { gateway } : {}) };
  }

  /** Phone authentication with the gateway's REG-RESP to the last REG-REQ. */
  async authenticatePhone(account: AccountRecord, token: Uint8Array, regRespText: string): Promise<void> {
    const requestId = pendingRequestId(await this.d.store.kv.get(PHONE_REQUEST_KEY));
    if (requestId === undefined) throw new RegistrationError('no-phone-request', 'ask for a REG-REQ before giving a REG-RESP');
    const regResp = parseRegResp(regRespText, requestId);
    const authKey = await this.authKey(account);
    const csr = await makeAuthCsr(authKey, regResp.userId);
    const cert = await authenticatePhone(await this.context(account), { pushToken: token, regResp, csr });
    await this.saveAuth(account, cert, { phoneNumber: regResp.number });
    await this.d.store.kv.delete(PHONE_REQUEST_KEY);
  }

  /**
   * Registers (or renews) every signed-in user of the account with fresh validation data and this device's keys
   * (made on the first call). Throws when no user could be registered.
   */
  async register(account: AccountRecord, token: Uint8Array): Promise<Registered> {
    const push = account.push;
    const authKey = account.authKey;
    if (!push || !authKey || account.authCertificates.length === 0) {
      throw new RegistrationError('not-signed-in', 'sign in with an Apple ID or a phone number first');
    }
    const previous = await loadRegistrationState(this.d.store);
    const relay = this.relay(previous);
    const validation = await getValidationData(this.d.network.http, { relayUrl: relay.url, code: relay.code });
    const device = deviceFromRelay(validation.versions, account.device ?? this.initialDevice(this.d.now()));
    const ctx: IdsContext = { http: this.d.network.http, bag: await this.d.network.bag.get(), device, now: this.d.now };
    const keys = await this.keys(account.id);
    const pushCreds: PushCredentials = { token, certDer: push.certificate, privateKey: push.keyPair.privateKey };
    const users = await Promise.all(
      account.authCertificates.map(async (cert) => {
        const auth: UserCredentials = { userId: cert.userId, certDer: cert.certificate, privateKey: authKey.privateKey };
        const uris = cert.userId.startsWith('P:') ? [`tel:${cert.userId.slice(2)}`] : await getHandles(ctx, { push: pushCreds, user: auth });
        return { auth, uris, keys: publishedKeys(keys) };
      }),
    );
    const now = this.d.now();
    const results = await register(ctx, { push: pushCreds, validationData: validation.data, users: users.filter((u) => u.uris.length > 0) });
    const ok = results.filter((r): r is RegisteredUser => r.status === 'ok');
    const failed = results.filter((r): r is FailedUser => r.status === 'failed');
    if (ok.length === 0) throw failed[0]?.error ?? new RegistrationError('no-handles', 'no user has a handle to register');

    const handleOwners: Record<string, string> = {};
    for (const user of ok) for (const uri of user.granted) if (!hasHandle(Object.keys(handleOwners), uri)) handleOwners[uri] = user.userId;
    const handles = Object.keys(handleOwners);
    const expiresAt = Math.min(...ok.map((u) => u.idCert.notAfter));
    const primaryHandle = previous && hasHandle(handles, previous.primaryHandle) ? previous.primaryHandle : handles[0]!;
    const state: RegistrationState = { primaryHandle, handleOwners, renewAt: reregisterDueAt(expiresAt, now), relay };
    const idCertificates: IdsCredential[] = ok.map((u) => ({ userId: u.userId, certificate: u.idCert.der, notAfter: u.idCert.notAfter }));
    const updated: AccountRecord = { ...account, handles, idCertificates, registrationExpiresAt: expiresAt, device, updatedAt: now };
    await this.d.store.accounts.put(updated);
    await this.d.store.kv.set(REGISTRATION_STATE_KEY, { ...state, handleOwners: { ...handleOwners }, relay: { ...relay } });
    return { account: updated, state, keys, failedUsers: failed };
  }

  /** The keys made at the first registration, or new ones. */
  async keys(accountId: string): Promise<DeviceKeys> {
    const stored = await this.d.store.keys.get(accountId);
    if (stored?.legacy && stored.ngm) return fromStoredKeys(stored);
    const keys = await generateDeviceKeys();
    await this.d.store.keys.put(toStoredKeys(accountId, keys, this.d.now()));
    return keys;
  }

  /** The configured gateway, else the carrier's from Apple's list when the SIM's MCC-MNC is known, else the mode's. */
  private async smsGateway(mccMnc: string | undefined): Promise<string | undefined> {
    if (this.d.config.smsGateway !== undefined) return this.d.config.smsGateway;
    if (mccMnc !== undefined) return (await discoverSmsGateway(this.d.network.http, mccMnc)).gateway;
    return this.d.config.defaultSmsGateway;
  }

  private relay(previous: RegistrationState | undefined): { url: string; code: string } {
    const configured = this.d.config.relay;
    if (configured) return { url: configured.url ?? this.d.config.defaultRelayUrl, code: configured.code };
    if (previous) return previous.relay;
    throw new RegistrationError('no-relay', 'registering needs a registration relay and its code');
  }

  private initialDevice(now: number): DeviceInfo {
    const info = this.d.config.deviceInfo;
    return {
      ...DEFAULT_DEVICE_VERSIONS,
      deviceName: info.deviceName,
      uuid: info.uuid ?? randomUuidString(),
      setupAt: info.setupAt ?? now,
      ...(info.language !== undefined ? { language: info.language } : {}),
    };
  }

  private async context(account: AccountRecord): Promise<IdsContext> {
    return { http: this.d.network.http, bag: await this.d.network.bag.get(), device: account.device ?? this.initialDevice(this.d.now()), now: this.d.now };
  }

  /** One auth key per account: the Apple ID and the phone number are certified over the same key. */
  private async authKey(account: AccountRecord): Promise<CryptoKeyPair> {
    if (account.authKey) return account.authKey;
    account.authKey = await generateAuthKey();
    await this.d.store.accounts.put({ ...account, updatedAt: this.d.now() });
    return account.authKey;
  }

  private async saveAuth(account: AccountRecord, cert: IdsCertificate, who: Partial<Pick<AccountRecord, 'appleId' | 'profileId' | 'phoneNumber'>>): Promise<void> {
    const credential: IdsCredential = { userId: cert.userId, certificate: cert.der, notAfter: cert.notAfter };
    account.authCertificates = [...account.authCertificates.filter((c) => c.userId !== cert.userId), credential];
    if (!account.userIds.includes(cert.userId)) account.userIds = [...account.userIds, cert.userId];
    Object.assign(account, who);
    account.updatedAt = this.d.now();
    await this.d.store.accounts.put(account);
  }
}

/** The request id of a stored phone request; earlier versions stored the bare number. */
function pendingRequestId(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v !== 'object' || v === null) return undefined;
  const id = (v as Partial<PhoneRequest>).requestId;
  return typeof id === 'number' ? id : undefined;
}

function hasHandle(list: readonly string[], uri: string): boolean {
  return list.some((h) => handleKey(h) === handleKey(uri));
}

/** True for failures only the user can fix: dead credentials (6005) or a refusal. */
export function needsSignIn(e: unknown): boolean {
  return e instanceof IdsError && (e.code === 'auth-expired' || e.code === 'registration-refused');
}
