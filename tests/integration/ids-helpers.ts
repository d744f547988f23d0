// Shared by the IDS endpoint tests: the IDS routes on an HttpRouter served by listenHttps with a SandboxPki, store,
// accounts and relay in a temp dir; a client on Node's own https that speaks to Apple host names with SNI; and test
// devices and users that sign requests the way clients do (lib/crypto/request-signing, WebCrypto keys).
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import https from 'node:https';
import { toBase64 } from '../../lib/codec/bytes';
import { gzip } from '../../lib/codec/gzip';
import { encodeXmlPlist, isDict, parsePlist, type PlistDict, type PlistValue } from '../../lib/codec/plist';
import { idsNonce, signIdsRequest } from '../../lib/crypto/request-signing';
import { Accounts } from '../../sandbox/accounts';
import { FakeClock, silentLog } from '../../sandbox/context';
import { HttpRouter, listenHttps, type Listener } from '../../sandbox/http-service';
import { addIdsRoutes, IDENTITY_SERVICE, PROFILE_SERVICE, type IdsOptions } from '../../sandbox/ids/ids-service';
import { RegisterFaults } from '../../sandbox/ids/register';
import { Registrations } from '../../sandbox/ids/registrations';
import { SandboxPki } from '../../sandbox/pki';
import { RegistrationRelay } from '../../sandbox/relay';
import { SmsGateway } from '../../sandbox/sms-gateway';
import { Store } from '../../sandbox/store';
import { makeCsr, tempDir } from './sandbox-helpers';

x509.cryptoProvider.set(globalThis.crypto);

export const URLS = {
  authenticateUser: `https://profile.ess.apple.com${PROFILE_SERVICE}authenticateUser`,
  authenticateDS: `https://profile.ess.apple.com${PROFILE_SERVICE}authenticateDS`,
  getHandles: `https://profile.ess.apple.com${PROFILE_SERVICE}idsGetHandles`,
  authenticatePhoneNumber: `https://identity.ess.apple.com${IDENTITY_SERVICE}authenticatePhoneNumber`,
  register: `https://identity.ess.apple.com${IDENTITY_SERVICE}register`,
  deregister: `https://identity.ess.apple.com${IDENTITY_SERVICE}deregister`,
  dependents: `https://identity.ess.apple.com${IDENTITY_SERVICE}getDependentRegistrations`,
} as const;

export const PLIST_HEADERS = { 'content-type': 'application/x-apple-plist', 'x-protocol-version': '1640' };

export interface IdsResponse {
  status: number;
  contentType: string | undefined;
  text: string;
  /** The body as a plist dict (every IDS answer, errors included, is one). */
  plist: PlistDict;
}

export interface IdsHarness {
  dir: string;
  clock: FakeClock;
  store: Store;
  pki: SandboxPki;
  accounts: Accounts;
  gateway: SmsGateway;
  relay: RegistrationRelay;
  registrations: Registrations;
  faults: RegisterFaults;
  port: number;
  request(url: string, init?: { method?: string; headers?: Record<string, string>; body?: Uint8Array }): Promise<IdsResponse>;
  /** Closes the listener and store (keeping the directory) so a test can reopen the state. */
  stop(): Promise<void>;
  close(): Promise<void>;
}

export async function startIdsHarness(options: IdsOptions = {}, existing?: { dir: string; clock: FakeClock }): Promise<IdsHarness> {
  const tmp = existing ? { dir: existing.dir, remove: async () => {} } : await tempDir('cerulean-ids-');
  const clock = existing?.clock ?? new FakeClock(Date.now());
  const store = await Store.open(`${tmp.dir}/store`, { snapshotIntervalMs: 0 });
  const pki = await SandboxPki.load(tmp.dir, clock);
  const accounts = new Accounts(store, clock, silentLog);
  const gateway = new SmsGateway(accounts, pki, silentLog);
  const relay = new RegistrationRelay(store, pki, clock, silentLog);
  const registrations = Registrations.open(store, clock);
  const faults = options.faults ?? new RegisterFaults();
  const router = new HttpRouter(silentLog);
  addIdsRoutes(router, { pki, store, clock, log: silentLog, accounts, relay, registrations, options: { ...options, faults } });
  const listener: Listener = await listenHttps(router, pki, { host: '127.0.0.1', port: 0, log: silentLog });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await listener.close();
    await store.close();
  };
  return {
    dir: tmp.dir,
    clock,
    store,
    pki,
    accounts,
    gateway,
    relay,
    registrations,
    faults,
    port: listener.port,
    request: (url, init = {}) => httpsRequest(listener.port, pki.rootCaPem, url, init),
    stop,
    close: async () => {
      await stop();
      await tmp.remove();
    },
  };
}

/** Node's https to 127.0.0.1 with the Apple host as SNI and Host, trusting only the sandbox root. */
export function httpsRequest(
  port: number,
  caPem: string,
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: Uint8Array } = {},
): Promise<IdsResponse> {
  const u = new URL(url);
  const body = init.body ? Buffer.from(init.body) : undefined;
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        servername: u.hostname,
        ca: caPem,
        agent: false,
        method: init.method ?? (body ? 'POST' : 'GET'),
        path: u.pathname + u.search,
        headers: { host: u.hostname, ...(body ? { 'content-length': String(body.length) } : {}), ...init.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const b = new Uint8Array(Buffer.concat(chunks));
          let plist: PlistValue = {};
          try {
            plist = parsePlist(b);
          } catch {
            // Left as {}: the test's status assertions then fail with the text in view.
          }
          resolve({
            status: res.statusCode ?? 0,
            contentType: res.headers['content-type'],
            text: Buffer.from(b).toString('utf8'),
            plist: isDict(plist) ? plist : {},
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** RSA SHA-1 signing keys (IDS request signatures are RSA PKCS#1 v1.5 SHA-1). */
export async function rsaKeys(bits = 1024): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(
    { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-1', modulusLength: bits, publicExponent: new Uint8Array([1, 0, 1]) },
    true,
    ['sign', 'verify'],
  )) as CryptoKeyPair;
}

/** A PKCS#10 request over `keys` the way IDS clients make one (CN = hex SHA-1 of the user id; not checked). */
export async function idsCsr(keys: CryptoKeyPair, hash: 'SHA-1' | 'SHA-256' = 'SHA-256'): Promise<Uint8Array> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=0123456789abcdef0123456789abcdef01234567',
    keys,
    signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash },
  });
  return new Uint8Array(csr.rawData);
}

/** A device: an albert push certificate over its own key, and a push token. */
export interface TestDevice {
  token: Uint8Array;
  keys: CryptoKeyPair;
  certDer: Uint8Array;
}

export async function makeDevice(h: IdsHarness): Promise<TestDevice> {
  const { keys, der } = await makeCsr({ bits: 1024 });
  const cert = await h.pki.issuePushCertificate(der);
  return { token: crypto.getRandomValues(new Uint8Array(32)), keys, certDer: cert.der };
}

/** A user with an auth key and (once authenticated) an auth certificate. */
export interface TestUser {
  userId: string;
  keys: CryptoKeyPair;
  authCert: Uint8Array;
}

/** An auth certificate straight from the PKI, for tests about what comes after authentication. */
export async function makeUser(h: IdsHarness, userId: string, keys?: CryptoKeyPair, ttlMs = 30 * 86_400_000): Promise<TestUser> {
  const k = keys ?? (await rsaKeys());
  const cert = await h.pki.issueIdsCertificate({ publicKey: k.publicKey, userId, kind: 'auth', notAfter: h.clock.now() + ttlMs });
  return { userId, keys: k, authCert: cert.der };
}

export async function pushHeaders(h: IdsHarness, device: TestDevice, bagKey: string, body: Uint8Array, nonceTime = h.clock.now()): Promise<Record<string, string>> {
  const sig = await signIdsRequest(device.keys.privateKey, { nonce: idsNonce(nonceTime), bagKey, query: '', body, pushToken: device.token });
  return {
    'x-push-token': toBase64(device.token),
    'x-push-cert': toBase64(device.certDer),
    'x-push-nonce': toBase64(sig.nonce),
    'x-push-sig': sig.headerValue,
  };
}

export async function authHeaders(
  h: IdsHarness,
  user: TestUser,
  device: TestDevice,
  bagKey: string,
  body: Uint8Array,
  suffix = '',
  nonceTime = h.clock.now(),
): Promise<Record<string, string>> {
  const sig = await signIdsRequest(user.keys.privateKey, { nonce: idsNonce(nonceTime), bagKey, query: '', body, pushToken: device.token });
  return {
    [`x-auth-user-id${suffix}`]: user.userId,
    [`x-auth-cert${suffix}`]: toBase64(user.authCert),
    [`x-auth-nonce${suffix}`]: toBase64(sig.nonce),
    [`x-auth-sig${suffix}`]: sig.headerValue,
  };
}

/** A register body as [BG] shapes it; `users` go into one com.apple.madrid service. */
export function registerBody(users: PlistDict[], validationData: Uint8Array, extra: PlistDict = {}): PlistDict {
  return {
    'device-name': 'cerulean-test',
    'hardware-version': 'Macmini9,1',
    language: 'en-US',
    'os-version': 'macOS,13.5,22G74',
    'software-version': '22G74',
    'private-device-data': { ap: '0', d: '700000000.000000', dt: 1, gt: '0', h: '1', m: '0', p: '0', pb: '22G74', pn: 'macOS', pv: '13.5', s: '0', t: '0', u: 'F0E1D2C3-0000-4000-8000-000000000001', v: '1' },
    services: [
      {
        service: 'com.apple.madrid',
        capabilities: [{ name: 'Messenger', flags: 1, version: 1 }],
        'sub-services': ['com.apple.private.alloy.sms', 'com.apple.private.alloy.gelato'],
        users,
      },
    ],
    'validation-data': validationData,
    ...extra,
  };
}

/** Signs and sends a register: push signature once, auth signature per user with `-N`. */
export async function sendRegister(
  h: IdsHarness,
  device: TestDevice,
  users: TestUser[],
  body: PlistDict,
  options: { gzip?: boolean; headers?: Record<string, string> } = {},
): Promise<IdsResponse> {
  const xml = encodeXmlPlist(body);
  const raw = options.gzip ? await gzip(xml) : xml;
  const headers: Record<string, string> = {
    ...PLIST_HEADERS,
    'user-agent': 'com.apple.invitation-registration [macOS,13.5,22G74,Macmini9,1]',
    ...(options.gzip ? { 'content-encoding': 'gzip' } : {}),
    ...(await pushHeaders(h, device, 'id-register', raw)),
  };
  for (const [n, user] of users.entries()) Object.assign(headers, await authHeaders(h, user, device, 'id-register', raw, `-${n}`));
  return h.request(URLS.register, { body: raw, headers: { ...headers, ...options.headers } });
}

/** A signed GET of idsGetHandles (or getDependentRegistrations). */
export async function signedGet(h: IdsHarness, url: string, bagKey: string, device: TestDevice, user: TestUser, tweak: (headers: Record<string, string>) => void = () => {}): Promise<IdsResponse> {
  const empty = new Uint8Array(0);
  const headers = { 'x-protocol-version': '1640', ...(await pushHeaders(h, device, bagKey, empty)), ...(await authHeaders(h, user, device, bagKey, empty)) };
  tweak(headers);
  return h.request(url, { method: 'GET', headers });
}

export function dict(v: PlistValue | undefined): PlistDict {
  if (!isDict(v)) throw new Error(`expected a dict, got ${JSON.stringify(v)}`);
  return v;
}

export function list(v: PlistValue | undefined): PlistValue[] {
  if (!Array.isArray(v)) throw new Error('expected an array');
  return v;
}
