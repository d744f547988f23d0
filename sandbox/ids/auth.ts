// Getting an IDS auth certificate (ids.md §2.1, §2.3, §2.4, §9 items 4–6):
//   authenticateUser          {username, password[+2FA code]} → 5012 | 5000 (code on the admin page) | {0, auth-token, profile-id}
//   authenticateDS            {authentication-data:{auth-token}, csr, realm-user-id}       → {status, cert}
//   authenticatePhoneNumber   {authentication-data:{push-token, sigs:[REG-RESP s]}, csr, realm-user-id:"P:+…"} → {status, cert}
// Auth tokens are opaque random strings kept (as SHA-256 digests) in the table `ids-auth-tokens` until they expire;
// a token is good for any number of authenticateDS calls of its own user. CSR subjects are not checked (clients put
// different things in the CN); the CSR's self-signature is.
import { createHash, randomBytes } from 'node:crypto';
import { toBase64 } from '../../lib/codec/bytes';
import { CryptoError } from '../../lib/errors';
import type { Accounts } from '../accounts';
import type { Clock, Log } from '../context';
import type { ServiceRequest, ServiceResponse } from '../http-service';
import type { SandboxPki } from '../pki';
import { verifyGatewaySignature } from '../sms-gateway';
import type { Store } from '../store';
import { phoneOfUserId } from './handles';
import { arrayField, dataField, dictField, idsReply, idsStatusReply, readIdsBody, stringField } from './ids-request';
import { IdsStatus } from './signed-request';

export const AUTH_TOKENS_TABLE = 'ids-auth-tokens';

const DAY = 86_400_000;

export interface AuthOptions {
  /** How long an auth-token from authenticateUser is accepted (default 1 day). */
  authTokenTtlMs?: number;
  /** Lifetime of auth certificates (default 30 days). */
  authCertTtlMs?: number;
}

export interface AuthDeps {
  pki: SandboxPki;
  store: Store;
  clock: Clock;
  log: Log;
  accounts: Accounts;
}

type AuthTokenRecord = { profileId: string; issuedAt: number; expiresAt: number };

export class IdsAuth {
  private readonly tokenTtl: number;
  private readonly certTtl: number;

  constructor(
    private readonly deps: AuthDeps,
    options: AuthOptions = {},
  ) {
    this.tokenTtl = options.authTokenTtlMs ?? DAY;
    this.certTtl = options.authCertTtlMs ?? 30 * DAY;
  }

  /** The legacy Apple ID sign-in; a 2FA account answers 5000 to the bare password and issues a code. */
  async authenticateUser(req: ServiceRequest): Promise<ServiceResponse> {
    const body = await readIdsBody(req);
    const username = stringField(body, 'username', 256);
    const password = stringField(body, 'password', 256);
    if (username === undefined || password === undefined) return idsStatusReply(IdsStatus.missingRequiredKey, 'username and password are required');
    const result = await this.deps.accounts.signIn(username, password);
    if (result.status === 'bad-credentials') return idsStatusReply(IdsStatus.invalidNameOrPassword);
    if (result.status === 'second-factor-required') {
      this.deps.log.info('ids.auth.second-factor-required', { profileId: result.account.profileId });
      return idsStatusReply(IdsStatus.unauthenticated);
    }
    const token = await this.mintToken(result.account.profileId);
    this.deps.log.info('ids.auth.signed-in', { profileId: result.account.profileId });
    return idsReply({ status: IdsStatus.ok, 'auth-token': token, 'profile-id': result.account.profileId });
  }

  /** An auth certificate for an Apple ID: the auth-token must be live and belong to `realm-user-id`. */
  async authenticateDS(req: ServiceRequest): Promise<ServiceResponse> {
    const body = await readIdsBody(req);
    const token = stringField(dictField(body, 'authentication-data') ?? {}, 'auth-token', 512);
    const csr = dataField(body, 'csr');
    const userId = stringField(body, 'realm-user-id', 256);
    if (token === undefined || csr === undefined || userId === undefined) return idsStatusReply(IdsStatus.missingRequiredKey);
    const record = this.deps.store.get<AuthTokenRecord>(AUTH_TOKENS_TABLE, tokenKey(token));
    if (!record || record.profileId !== userId || record.expiresAt <= this.deps.clock.now()) {
      this.deps.log.info('ids.auth.bad-token', { known: record !== undefined });
      return idsStatusReply(IdsStatus.refreshCredentials);
    }
    return this.issueAuthCert(csr, userId);
  }

  /** An auth certificate for a phone number: `sigs[0]` must be the sandbox gateway's REG-RESP signature for it. */
  async authenticatePhoneNumber(req: ServiceRequest): Promise<ServiceResponse> {
    const body = await readIdsBody(req);
    const authData = dictField(body, 'authentication-data') ?? {};
    const pushToken = dataField(authData, 'push-token');
    const sig = arrayField(authData, 'sigs')?.[0];
    const csr = dataField(body, 'csr');
    const userId = stringField(body, 'realm-user-id', 64);
    if (pushToken === undefined || !(sig instanceof Uint8Array) || csr === undefined || userId === undefined) {
      return idsStatusReply(IdsStatus.missingRequiredKey);
    }
    if (pushToken.length !== 32) return idsStatusReply(IdsStatus.badPushToken);
    const number = phoneOfUserId(userId);
    if (number === undefined) return idsStatusReply(IdsStatus.badRequest, 'realm-user-id must be P:+<E.164>');
    if (!verifyGatewaySignature(this.deps.pki, number, pushToken, sig)) {
      this.deps.log.info('ids.auth.bad-gateway-signature', { userId });
      return idsStatusReply(IdsStatus.badSignature);
    }
    return this.issueAuthCert(csr, userId);
  }

  private async issueAuthCert(csr: Uint8Array, userId: string): Promise<ServiceResponse> {
    let publicKey: CryptoKey;
    try {
      publicKey = (await this.deps.pki.parseCsr(csr)).publicKey;
    } catch (e) {
      this.deps.log.info('ids.auth.bad-csr', { code: e instanceof CryptoError ? e.code : 'unknown' });
      return idsStatusReply(IdsStatus.badCert, 'certificate request is invalid');
    }
    const cert = await this.deps.pki.issueIdsCertificate({ publicKey, userId, kind: 'auth', notAfter: this.deps.clock.now() + this.certTtl });
    this.deps.log.info('ids.auth.cert-issued', { userId, serial: cert.serial, notAfter: cert.notAfter });
    return idsReply({ status: IdsStatus.ok, cert: cert.der });
  }

  private async mintToken(profileId: string): Promise<string> {
    const now = this.deps.clock.now();
    // Sign-ins are rare; dropping expired tokens here keeps the table small without a timer.
    for (const [key, rec] of this.deps.store.entries<AuthTokenRecord>(AUTH_TOKENS_TABLE)) {
      if (rec.expiresAt <= now) await this.deps.store.delete(AUTH_TOKENS_TABLE, key);
    }
    const token = toBase64(new Uint8Array(randomBytes(48)));
    await this.deps.store.put(AUTH_TOKENS_TABLE, tokenKey(token), { profileId, issuedAt: now, expiresAt: now + this.tokenTtl });
    return token;
  }
}

// Only digests are stored: a copy of the store does not hand out live tokens.
function tokenKey(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
