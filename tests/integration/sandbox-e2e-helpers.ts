// A client written from the wire up against the composed sandbox, the way one written for Apple's servers would
// reach it: Node's own tls/https to the address the host map gives for an Apple `host:port`, SNI = the Apple name,
// the sandbox root CA as the only trust anchor; courier frames from lib/codec (legacy or packed); IDS request
// signatures from lib/crypto; CSRs from @peculiar/x509. It works on a Sandbox object or on a host-map.json alone (a
// sandbox running as a child process).
import 'reflect-metadata';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import type { Readable } from 'node:stream';
import tls from 'node:tls';
import { buildConnect, parseAck, parseConnectResponse, parseNotification, type ConnectResponse } from '../../lib/codec/apns-commands';
import { LEGACY_ALPN } from '../../lib/codec/apns-packed';
import { equalBytes, fromBase64, fromHex, fromUtf8, toBase64, toHex, utf8 } from '../../lib/codec/bytes';
import { gunzip, gzip } from '../../lib/codec/gzip';
import { encodeBinaryPlist, encodeXmlPlist, isDict, parsePlist, type PlistDict, type PlistValue } from '../../lib/codec/plist';
import { courierNonce, idsNonce, signCourierNonce, signIdsRequest } from '../../lib/crypto/request-signing';
import type { Clock } from '../../sandbox/context';
import { HOST_MAP_FILE, type HostMap } from '../../sandbox/hosts';
import { TestClient } from './courier-helpers';
import { idsCsr, registerBody, rsaKeys } from './ids-helpers';
import { makeCsr } from './sandbox-helpers';

export const MADRID = 'com.apple.madrid';
export const IDS_CONTROL = 'com.apple.private.ids';
const SMS_RELAY = 'com.apple.private.alloy.sms';
export const COURIER_SNI = 'courier.push.apple.com';
const QUERY_URL = 'https://query.ess.apple.com/WebObjects/QueryService.woa/wa/query';
const PROFILE = 'https://profile.ess.apple.com/WebObjects/VCProfileService.woa/wa/';
const IDENTITY = 'https://identity.ess.apple.com/WebObjects/TDIdentityService.woa/wa/';
export const URLS = {
  albert: 'https://albert.apple.com/deviceservices/deviceActivation?device=MacOS',
  authenticateUser: `${PROFILE}authenticateUser`,
  authenticateDS: `${PROFILE}authenticateDS`,
  getHandles: `${PROFILE}idsGetHandles`,
  authenticatePhoneNumber: `${IDENTITY}authenticatePhoneNumber`,
  register: `${IDENTITY}register`,
  relay: 'https://registration-relay.sandbox.cerulean.invalid/api/v1/bridge/get-validation-data',
  provider: 'https://api.push.apple.com/3/device/',
} as const;
const UA = 'com.apple.invitation-registration [macOS,13.5,22G74,Macmini9,1]';

export const topicHash = (topic: string) => new Uint8Array(createHash('sha1').update(topic).digest());
const TOPIC_NAMES = new Map([MADRID, IDS_CONTROL, SMS_RELAY].map((t) => [toHex(topicHash(t)), t]));

// ---- where things are -------------------------------------------------------------------------------------------

/** What a client is configured with: the host map (as the bridge resolves it), the CA to trust, the admin page. */
export interface SandboxTarget {
  resolve(hostPort: string): { host: string; port: number } | undefined;
  caPem: string;
  adminUrl: string | undefined;
}

/** A target read from a sandbox's host-map.json. */
export function targetFromHostMap(map: HostMap): SandboxTarget {
  return {
    caPem: map.caPem,
    adminUrl: map.admin,
    resolve(hostPort) {
      const target = map.hosts[hostPort.toLowerCase()];
      if (!target) return undefined;
      const colon = target.lastIndexOf(':');
      return { host: target.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(target.slice(colon + 1)) };
    },
  };
}

function where(t: SandboxTarget, hostPort: string): { host: string; port: number } {
  const to = t.resolve(hostPort);
  if (!to) throw new Error(`the host map has no ${hostPort}`);
  return to;
}

// ---- HTTPS ------------------------------------------------------------------------------------------------------

export interface AppleResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Uint8Array;
  text: string;
  /** The body as a plist dict, or {} if it is not one. */
  plist: PlistDict;
}

/** An HTTPS request to an Apple URL, sent where the host map says, with SNI and Host set to the Apple name. */
export function appleHttps(
  t: SandboxTarget,
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: Uint8Array | string } = {},
): Promise<AppleResponse> {
  const u = new URL(url);
  const to = where(t, `${u.hostname}:${u.port || 443}`);
  const body = init.body === undefined ? undefined : typeof init.body === 'string' ? utf8(init.body) : init.body;
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: to.host,
        port: to.port,
        servername: u.hostname,
        ca: t.caPem,
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
            // Not a plist (HTML, JSON): callers read `text`.
          }
          const text = Buffer.from(b).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b, text, plist: isDict(plist) ? plist : {} });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A JSON call to the admin API (what a person does on the admin page). */
export async function adminApi<T>(t: SandboxTarget, apiPath: string, body?: unknown): Promise<T> {
  if (!t.adminUrl) throw new Error('the sandbox runs without its admin page');
  const res = await fetch(new URL(apiPath, t.adminUrl), {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as T;
  if (!res.ok) throw new Error(`admin ${apiPath}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

// ---- the courier --------------------------------------------------------------------------------------------------

/** TLS to an Apple `host:port` with the given SNI, trusting `ca` only (or the system roots when `ca` is null). */
export function dialApple(
  t: SandboxTarget,
  hostPort: string,
  opts: { servername: string; ca?: string | null; alpn?: string[] },
): Promise<tls.TLSSocket> {
  const to = where(t, hostPort);
  const socket = tls.connect({
    host: to.host,
    port: to.port,
    servername: opts.servername,
    ...(opts.ca === null ? {} : { ca: opts.ca ?? t.caPem }),
    ALPNProtocols: opts.alpn,
  });
  return new Promise((resolve, reject) => {
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', (e) => {
      socket.destroy();
      reject(e);
    });
  });
}

/** One courier connection speaking raw frames: the courier suites' TestClient, dialled the way clients dial. */
export type CourierLink = TestClient;
export const CourierLink = {
  /** Dials a numbered courier host as clients do (`<n>-courier.push.apple.com:5223`, SNI the bag hostname). */
  async open(t: SandboxTarget, opts: { alpn?: string[]; hostPort?: string } = {}): Promise<CourierLink> {
    const hostPort = opts.hostPort ?? '7-courier.push.apple.com:5223';
    return TestClient.over(await dialApple(t, hostPort, { servername: COURIER_SNI, alpn: opts.alpn ?? [LEGACY_ALPN] }));
  },
};

// ---- a device -----------------------------------------------------------------------------------------------------

/** A notification a device received: decoded as JSON on the IDS control topic, else as a plist when it is one. */
export interface Received {
  topic: string;
  payload: Uint8Array;
  dict: PlistDict;
  json?: unknown;
}

let nextUpstreamId = 1;

/** A device: an albert push certificate over its own RSA-1024 key, its push token, its courier connection. */
export class AppleDevice {
  token: Uint8Array | undefined;
  link: CourierLink | undefined;
  readonly inbox: Received[] = [];

  private constructor(
    readonly name: string,
    /** Where the device connects; a test points it at a restarted sandbox (new ports, same CA). */
    public target: SandboxTarget,
    readonly clock: Clock,
    readonly pushKeys: CryptoKeyPair,
    readonly pushCert: Uint8Array,
  ) {}

  /** albert activation (apns.md §7): a PEM CSR in an activation-info plist → the push certificate. */
  static async activate(t: SandboxTarget, clock: Clock, name: string): Promise<AppleDevice> {
    const { keys, pem } = await makeCsr({ bits: 1024, name: `CN=${randomUUID()}` });
    const inner = encodeXmlPlist({
      ActivationRandomness: randomUUID().toUpperCase(),
      ActivationState: 'Unactivated',
      BuildVersion: '22G74',
      DeviceCertRequest: utf8(pem),
      DeviceClass: 'MacOS',
      ProductType: 'Macmini9,1',
      ProductVersion: '13.5',
      SerialNumber: name.toUpperCase().padEnd(12, 'X').slice(0, 12),
      UniqueDeviceID: randomUUID().toUpperCase(),
    });
    const outer = encodeXmlPlist({
      ActivationInfoComplete: true,
      ActivationInfoXML: inner,
      FairPlayCertChain: crypto.getRandomValues(new Uint8Array(256)),
      FairPlaySignature: crypto.getRandomValues(new Uint8Array(128)),
    });
    const res = await appleHttps(t, URLS.albert, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ 'activation-info': fromUtf8(outer) }).toString(),
    });
    // As [PY]/[RP] read it: a regex whose `.` stops at newlines.
    const protocol = /<Protocol>(.*)<\/Protocol>/.exec(res.text)?.[1];
    if (res.status !== 200 || !protocol) throw new Error(`albert answered ${res.status}: ${res.text.slice(0, 200)}`);
    const activation = (parsePlist(utf8(protocol)) as PlistDict)['device-activation'] as PlistDict;
    const pemText = fromUtf8((activation['activation-record'] as PlistDict)['DeviceCertificate'] as Uint8Array);
    const der = fromBase64(pemText.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''));
    return new AppleDevice(name, t, clock, keys, der);
  }

  /** TLS + signed Connect (the saved token offered if there is one); adopts a token the server issues. */
  async connect(opts: { alpn?: string[]; nonceMs?: number } = {}): Promise<ConnectResponse> {
    this.link = await CourierLink.open(this.target, { alpn: opts.alpn });
    const nonce = courierNonce(opts.nonceMs ?? this.clock.now());
    this.link.sendFrame(
      buildConnect({
        token: this.token,
        state: 1,
        presenceFlags: 0x41,
        certificates: [this.pushCert],
        nonce,
        signature: await signCourierNonce(this.pushKeys.privateKey, nonce),
        protocolVersion: 11,
      }),
    );
    const response = parseConnectResponse(await this.link.next(0x08));
    if (response.status === 0 && response.token) this.token = response.token;
    return response;
  }

  /** The full topic state (apns.md §5: each 0x09 replaces the last). */
  subscribe(topics: string[] = [MADRID, IDS_CONTROL]): void {
    this.requireLink().send('filter', { token: this.requireToken(), enabled: topics.map(topicHash) });
  }

  /** An upstream 0x0A; its message id. */
  upstream(topic: string, payload: Uint8Array): number {
    const messageId = nextUpstreamId++;
    this.requireLink().send('upstreamNotification', { messageId, topicHash: topicHash(topic), senderToken: this.requireToken(), payload });
    return messageId;
  }

  send(envelope: PlistDict, topic = MADRID): number {
    return this.upstream(topic, encodeBinaryPlist(envelope));
  }

  /** The courier's 0x0B status for upstream message `messageId`. */
  async courierAck(messageId: number): Promise<number> {
    const link = this.requireLink();
    for (;;) {
      const ack = parseAck(await link.next(0x0b));
      if (ack.messageId === messageId) return ack.status;
    }
  }

  /**
   * The first received notification matching `pred`; everything read meanwhile is kept in `inbox`. Notifications
   * are acked as they arrive unless `ack` is false (a device that dies before it acks).
   */
  async next(pred: (r: Received) => boolean = () => true, opts: { timeoutMs?: number; ack?: boolean } = {}): Promise<Received> {
    const deadline = Date.now() + (opts.timeoutMs ?? 3000);
    for (;;) {
      const i = this.inbox.findIndex(pred);
      if (i >= 0) return this.inbox.splice(i, 1)[0]!;
      const link = this.requireLink();
      const n = parseNotification(await link.next(0x0a, Math.max(1, deadline - Date.now())));
      if (opts.ack !== false) link.send('ack', { token: this.requireToken(), messageId: n.messageId, status: 0 });
      const topic = TOPIC_NAMES.get(toHex(n.topicHash)) ?? toHex(n.topicHash);
      const received: Received = { topic, payload: n.payload, dict: {} };
      if (topic === IDS_CONTROL) {
        received.json = JSON.parse(fromUtf8(n.payload));
      } else {
        try {
          const v = parsePlist(n.payload);
          if (isDict(v)) received.dict = v;
        } catch {
          // A provider push with a JSON (or any) payload.
        }
      }
      this.inbox.push(received);
    }
  }

  /** True if nothing matching `pred` arrives within `ms`. */
  async none(pred: (r: Received) => boolean = () => true, ms = 300): Promise<boolean> {
    try {
      this.inbox.unshift(await this.next(pred, { timeoutMs: ms }));
      return false;
    } catch {
      return true;
    }
  }

  /** The c:255 server acks of send `U`, once `count` have arrived. */
  async serverAcks(U: Uint8Array, count: number): Promise<PlistDict[]> {
    const out: PlistDict[] = [];
    while (out.length < count) out.push((await this.next((r) => r.dict['c'] === 255 && sameBytes(r.dict['U'], U))).dict);
    return out;
  }

  /** An IDS request signature over (bag key, body, this device's token) with a fresh nonce (ids.md §3). */
  private sign(key: CryptoKey, bagKey: string, body: Uint8Array) {
    return signIdsRequest(key, { nonce: idsNonce(this.clock.now()), bagKey, query: '', body, pushToken: this.requireToken() });
  }

  /** The push header family of an IDS request. */
  async pushHeaders(bagKey: string, body: Uint8Array): Promise<Record<string, string>> {
    const sig = await this.sign(this.pushKeys.privateKey, bagKey, body);
    return {
      'x-push-token': toBase64(this.requireToken()),
      'x-push-cert': toBase64(this.pushCert),
      'x-push-nonce': toBase64(sig.nonce),
      'x-push-sig': sig.headerValue,
    };
  }

  /** An auth header family (`suffix` '-N' for user N of a register). */
  async authHeaders(user: IdsUser, bagKey: string, body: Uint8Array, suffix = ''): Promise<Record<string, string>> {
    const sig = await this.sign(user.keys.privateKey, bagKey, body);
    return {
      [`x-auth-user-id${suffix}`]: user.userId,
      [`x-auth-cert${suffix}`]: toBase64(requireBytes(user.authCert, 'auth certificate')),
      [`x-auth-nonce${suffix}`]: toBase64(sig.nonce),
      [`x-auth-sig${suffix}`]: sig.headerValue,
    };
  }

  /** A c:96 lookup over the courier (ids.md §7), signed with `user`'s ID certificate; the gunzipped reply body. */
  async lookup(user: IdsUser, selfUri: string, uris: string[], topic = MADRID): Promise<{ reply: PlistDict; body?: PlistDict }> {
    const b = await gzip(encodeXmlPlist({ uris }));
    const sig = await this.sign(user.keys.privateKey, 'id-query', b);
    const U = crypto.getRandomValues(new Uint8Array(16));
    this.send(
      {
        c: 96,
        U,
        u: QUERY_URL,
        v: 2,
        cT: 'application/x-apple-plist',
        h: {
          'x-id-self-uri': selfUri,
          'x-protocol-version': '1640',
          'x-push-token': toBase64(this.requireToken()),
          'x-id-cert': toBase64(requireBytes(user.idCert, 'ID certificate')),
          'x-id-nonce': toBase64(sig.nonce),
          'x-id-sig': sig.headerValue,
        },
        b,
      },
      topic,
    );
    const r = await this.next((x) => x.topic === topic && x.dict['c'] === 97 && sameBytes(x.dict['U'], U));
    const rb = r.dict['b'];
    if (!(rb instanceof Uint8Array)) return { reply: r.dict };
    const body = parsePlist(await gunzip(rb));
    return { reply: r.dict, body: isDict(body) ? body : undefined };
  }

  /** The identities of each looked-up URI (throws unless the lookup's status is 0). */
  async identities(user: IdsUser, selfUri: string, uris: string[]): Promise<Map<string, PlistDict[]>> {
    const { body } = await this.lookup(user, selfUri, uris);
    if (!body || body['status'] !== 0) throw new Error(`lookup failed with ${JSON.stringify(body?.['status'])}`);
    const results = body['results'] as PlistDict;
    return new Map(uris.map((u) => [u, (results[u] as PlistDict)['identities'] as PlistDict[]]));
  }

  disconnect(): Promise<void> {
    const link = this.link;
    this.link = undefined;
    this.inbox.length = 0;
    return link ? link.close() : Promise.resolve();
  }

  requireLink(): CourierLink {
    if (!this.link) throw new Error(`${this.name} is not connected`);
    return this.link;
  }

  requireToken(): Uint8Array {
    if (!this.token) throw new Error(`${this.name} has no push token yet`);
    return this.token;
  }
}

export function sameBytes(a: unknown, b: Uint8Array): boolean {
  return a instanceof Uint8Array && equalBytes(a, b);
}

function requireBytes(v: Uint8Array | undefined, what: string): Uint8Array {
  if (!v) throw new Error(`no ${what} yet`);
  return v;
}

// ---- IDS ------------------------------------------------------------------------------------------------------------

/** An IDS user on one device: its RSA key (auth and ID certificates certify it), and the certificates once issued. */
export interface IdsUser {
  userId: string;
  keys: CryptoKeyPair;
  authCert?: Uint8Array;
  idCert?: Uint8Array;
}

const PLIST_HEADERS = { 'content-type': 'application/x-apple-plist', 'x-protocol-version': '1640', 'user-agent': UA };

/**
 * Apple ID sign-in, legacy path (ids.md §2.1): the password alone gets 5000 when 2FA is on, and the code a trusted
 * device would show is read from the admin API; then authenticateDS (§2.3) turns the auth token into an auth
 * certificate over a fresh RSA-2048 key. The statuses seen on the way are returned for the test to check.
 */
export async function signInAppleId(t: SandboxTarget, appleId: string, password: string): Promise<{ user: IdsUser; statuses: number[] }> {
  const statuses: number[] = [];
  const authenticate = async (pw: string) => {
    const res = await appleHttps(t, URLS.authenticateUser, { headers: PLIST_HEADERS, body: encodeXmlPlist({ username: appleId, password: pw }) });
    statuses.push(res.plist['status'] as number);
    return res.plist;
  };
  let answer = await authenticate(password);
  if (answer['status'] === 5000) {
    const code = await adminApi<{ code: string }>(t, `api/two-factor?appleId=${encodeURIComponent(appleId)}`);
    answer = await authenticate(password + code.code);
  }
  const profileId = answer['profile-id'];
  const authToken = answer['auth-token'];
  if (answer['status'] !== 0 || typeof profileId !== 'string' || typeof authToken !== 'string') {
    throw new Error(`sign-in failed: ${JSON.stringify(statuses)}`);
  }
  const keys = await rsaKeys(2048);
  const ds = await appleHttps(t, URLS.authenticateDS, {
    headers: PLIST_HEADERS,
    body: encodeXmlPlist({ 'authentication-data': { 'auth-token': authToken }, csr: await idsCsr(keys, 'SHA-1'), 'realm-user-id': profileId }),
  });
  statuses.push(ds.plist['status'] as number);
  if (ds.plist['status'] !== 0) throw new Error(`authenticateDS failed: ${ds.plist['status']}`);
  return { user: { userId: profileId, keys, authCert: ds.plist['cert'] as Uint8Array }, statuses };
}

/** Parses `REG-RESP?v=3;r=…;n=…;s=…` the way [PY]/[BG] do. */
function parseRegResp(text: string): { r: string; n: string; s: Uint8Array } {
  if (!text.startsWith('REG-RESP?')) throw new Error(`not a REG-RESP: ${text}`);
  const fields = new Map(text.slice(9).split(';').map((f) => [f.slice(0, f.indexOf('=')), f.slice(f.indexOf('=') + 1)] as const));
  if (fields.get('v') !== '3') throw new Error('REG-RESP version is not 3');
  return { r: fields.get('r') ?? '', n: fields.get('n') ?? '', s: fromHex((fields.get('s') ?? '').toLowerCase()) };
}

/**
 * Phone-number auth (ids.md §2.4): the handset texts REG-REQ to the gateway (the admin API plays the SIM), reads
 * REG-RESP from its SMS inbox, and authenticatePhoneNumber turns the signature into an auth certificate.
 */
export async function signInPhone(t: SandboxTarget, device: AppleDevice, number: string): Promise<{ user: IdsUser; regResp: string }> {
  const r = String(crypto.getRandomValues(new Uint32Array(1))[0]);
  await adminApi(t, 'api/sms', { from: number, text: `REG-REQ?v=3;t=${toHex(device.requireToken()).toUpperCase()};r=${r};` });
  const inbox = await adminApi<Array<{ direction: string; text: string }>>(t, `api/sms?number=${encodeURIComponent(number)}`);
  const regResp = inbox.filter((m) => m.direction === 'received').at(-1)?.text ?? '';
  const resp = parseRegResp(regResp);
  if (resp.r !== r || resp.n !== number) throw new Error(`REG-RESP for another request: ${regResp}`);
  const keys = await rsaKeys(2048);
  const userId = `P:${resp.n}`;
  const res = await appleHttps(t, URLS.authenticatePhoneNumber, {
    headers: PLIST_HEADERS,
    body: encodeXmlPlist({
      'authentication-data': { 'push-token': device.requireToken(), sigs: [resp.s] },
      csr: await idsCsr(keys, 'SHA-1'),
      'realm-user-id': userId,
    }),
  });
  if (res.plist['status'] !== 0) throw new Error(`authenticatePhoneNumber failed: ${res.plist['status']}`);
  return { user: { userId, keys, authCert: res.plist['cert'] as Uint8Array }, regResp };
}

export interface RelayVersions {
  hardware_version: string;
  software_name: string;
  software_version: string;
  software_build_id: string;
  serial_number: string;
}

/** Validation data from the registration relay (ids.md §8) for a registration code. */
export async function fetchValidationData(
  t: SandboxTarget,
  code: string,
): Promise<{ data: Uint8Array; validUntil: string; versions: RelayVersions }> {
  const res = await appleHttps(t, URLS.relay, { headers: { authorization: `Bearer ${code}` }, body: '' });
  if (res.status !== 200) throw new Error(`relay answered ${res.status}: ${res.text}`);
  const json = JSON.parse(res.text) as { data: string; valid_until: string; versions: RelayVersions };
  return { data: fromBase64(json.data), validUntil: json.valid_until, versions: json.versions };
}

/** client-data as [BG]/[RP] publish it; the key blobs are opaque to the sandbox, so any bytes do. */
export function clientData(): PlistDict {
  return {
    'public-message-identity-key': crypto.getRandomValues(new Uint8Array(249)),
    'public-message-identity-version': 2,
    'ec-version': 1,
    'public-message-identity-ngm-version': 13,
    'public-message-ngm-device-prekey-data-key': crypto.getRandomValues(new Uint8Array(109)),
    'kt-version': 5,
    'supports-certified-delivery-v1': true,
    'show-peer-errors': true,
  };
}

export interface RegisterUser {
  user: IdsUser;
  uris: string[];
  clientData?: PlistDict;
  ktLoggableData?: Uint8Array;
  tag?: string;
}

/**
 * register (ids.md §5): the body with the relay's device versions, the push signature once and an auth signature
 * per user; `gzip` sends it compressed as [RP] does. `tamper` changes the body after signing. Each successful user
 * keeps its ID certificate.
 */
export async function registerDevice(
  t: SandboxTarget,
  device: AppleDevice,
  users: RegisterUser[],
  validation: { data: Uint8Array; versions: RelayVersions },
  opts: { gzip?: boolean; tamper?: (raw: Uint8Array) => Uint8Array } = {},
): Promise<AppleResponse> {
  const v = validation.versions;
  const body = registerBody(
    users.map((u) => ({
      'user-id': u.user.userId,
      uris: u.uris.map((uri) => ({ uri })),
      ...(u.tag ? { tag: u.tag } : {}),
      ...(u.clientData ? { 'client-data': u.clientData } : {}),
      ...(u.ktLoggableData ? { 'kt-loggable-data': u.ktLoggableData } : {}),
    })),
    validation.data,
    {
      'device-name': `${device.name}-${v.serial_number}`,
      'hardware-version': v.hardware_version,
      'os-version': `${v.software_name},${v.software_version},${v.software_build_id}`,
      'software-version': v.software_build_id,
    },
  );
  const xml = encodeXmlPlist(body);
  const raw = opts.gzip ? await gzip(xml) : xml;
  const headers: Record<string, string> = {
    ...PLIST_HEADERS,
    ...(opts.gzip ? { 'content-encoding': 'gzip' } : {}),
    ...(await device.pushHeaders('id-register', raw)),
  };
  for (const [n, u] of users.entries()) Object.assign(headers, await device.authHeaders(u.user, 'id-register', raw, `-${n}`));
  const res = await appleHttps(t, URLS.register, { headers, body: opts.tamper ? opts.tamper(raw) : raw });
  const answered = ((res.plist['services'] as PlistDict[] | undefined)?.[0]?.['users'] as PlistDict[] | undefined) ?? [];
  for (const u of users) {
    const a = answered.find((x) => x['user-id'] === u.user.userId);
    if (a?.['status'] === 0 && a['cert'] instanceof Uint8Array) u.user.idCert = a['cert'];
  }
  return res;
}

/** idsGetHandles (ids.md §4), push + auth signed GET. */
export async function getHandles(t: SandboxTarget, device: AppleDevice, user: IdsUser): Promise<AppleResponse> {
  const empty = new Uint8Array(0);
  const headers = {
    'x-protocol-version': '1640',
    ...(await device.pushHeaders('id-get-handles', empty)),
    ...(await device.authHeaders(user, 'id-get-handles', empty)),
  };
  return appleHttps(t, URLS.getHandles, { method: 'GET', headers });
}

/** Apple's provider push path (apns.md §5), as the sandbox serves it on api.push.apple.com over HTTP/1.1. */
export function providerPush(t: SandboxTarget, token: Uint8Array, topic: string, payload: Uint8Array | string): Promise<AppleResponse> {
  return appleHttps(t, URLS.provider + toHex(token), { headers: { 'apns-topic': topic }, body: payload });
}

// ---- the CLI as a child process -------------------------------------------------------------------------------------

export interface CliSandbox {
  proc: ChildProcessByStdio<null, Readable, Readable>;
  hostMap: HostMap;
  stdout(): string;
  stderr(): string;
  /** Resolves with how the process ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const REPO = path.resolve(import.meta.dirname, '../..');

/**
 * `sandbox/main.ts --data-dir DIR --port-base 0 …` in a child process, once it says it is running; the host map is
 * read from the host-map.json it wrote. Node runs tsx as a loader in the same process (the tsx CLI would put the
 * sandbox in a grandchild, out of reach of a SIGKILL sent to the child).
 */
export async function startSandboxCli(dataDir: string, args: string[] = [], timeoutMs = 20_000): Promise<CliSandbox> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'sandbox/main.ts', '--data-dir', dataDir, '--port-base', '0', ...args], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('close', (code, signal) => resolve({ code, signal })),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`sandbox did not start in ${timeoutMs} ms: ${err}`));
    }, timeoutMs);
    proc.stdout.on('data', () => {
      if (out.includes('(Ctrl-C to stop)')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`sandbox exited (${code ?? signal}) before it was running: ${err}`));
    });
  });
  const file = path.join(dataDir, HOST_MAP_FILE);
  if (!out.includes(`host map: ${file}`)) throw new Error(`the CLI did not print the host map path: ${out}`);
  const hostMap = JSON.parse(await readFile(file, 'utf8')) as HostMap;
  return { proc, hostMap, stdout: () => out, stderr: () => err, exited };
}
