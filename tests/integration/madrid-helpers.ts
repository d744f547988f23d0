// Fixtures for the madrid suites: the courier harness of courier-helpers.ts (real TLS, raw frames) with the madrid
// backends installed on a real Store and Registrations in a temp dir, IDS users holding ID certificates from a
// SandboxPki, and "phones" that send upstream plists, receive and ack notifications, and do real c:96 lookups.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseNotification } from '../../lib/codec/apns-commands';
import { equalBytes, fromUtf8, toBase64 } from '../../lib/codec/bytes';
import { gunzip, gzip } from '../../lib/codec/gzip';
import { encodeBinaryPlist, encodeXmlPlist, isDict, parsePlist, type PlistDict } from '../../lib/codec/plist';
import { idsNonce, signIdsRequest } from '../../lib/crypto/request-signing';
import type { Log } from '../../sandbox/context';
import type { CourierOptions } from '../../sandbox/courier/options';
import { Registrations, type DeviceRegistration } from '../../sandbox/ids/registrations';
import { installMadrid, type MadridInstance, type MadridOptions } from '../../sandbox/madrid';
import { SandboxPki } from '../../sandbox/pki';
import { Store } from '../../sandbox/store';
import { harness, type Device, type Harness } from './courier-helpers';

export const MADRID = 'com.apple.madrid';
export const SMS = 'com.apple.private.alloy.sms';
export const IDS = 'com.apple.private.ids';
export const QUERY_URL = 'https://query.ess.apple.com/WebObjects/QueryService.woa/wa/query';

const sha1 = (s: string) => new Uint8Array(createHash('sha1').update(s).digest());
const TOPICS = new Map([MADRID, SMS, IDS].map((t) => [toBase64(sha1(t)), t]));
export const topicHash = sha1;

export async function tempDir(prefix: string): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface LogLine {
  level: 'info' | 'warn' | 'error';
  event: string;
  fields: Record<string, unknown>;
}

/** A Log that keeps every line, so tests can check what was (and was not) logged. */
export function recordingLog(): Log & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (event: string, fields: Record<string, unknown> = {}) => void lines.push({ level, event, fields });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

/** A user with an RSA key (SHA-1 signing) and an ID certificate over it. */
export interface IdsUser {
  userId: string;
  keys: CryptoKeyPair;
  cert: Uint8Array;
}

/** A notification a phone received (and acked), decoded by topic: JSON on com.apple.private.ids, else a plist. */
export interface Received {
  topic: string;
  payload: Uint8Array;
  dict: PlistDict;
  json?: unknown;
}

export interface LookupOptions {
  topic?: string;
  uris?: string[];
  headers?: Record<string, string>;
  /** Sign for this token instead of the phone's. */
  signToken?: Uint8Array;
  /** Replace `b` after signing. */
  body?: Uint8Array;
  /** Drop these headers. */
  omit?: string[];
}

export interface LookupResult {
  reply: PlistDict;
  /** The gunzipped `b`, if the reply had one. */
  body?: PlistDict;
}

let nextMessageId = 1;

export class Phone {
  readonly inbox: Received[] = [];

  constructor(
    private readonly world: MadridWorld,
    public device: Device,
  ) {}

  get token(): Uint8Array {
    return this.device.token;
  }

  /** Enables the madrid, SMS-relay and IDS-control topics. */
  subscribe(): void {
    this.device.client.send('filter', { token: this.token, enabled: [sha1(MADRID), sha1(SMS), sha1(IDS)] });
  }

  upstream(topic: string, payload: Uint8Array): void {
    this.device.client.send('upstreamNotification', { messageId: nextMessageId++, topicHash: sha1(topic), senderToken: this.token, payload });
  }

  send(envelope: PlistDict, topic = MADRID): void {
    this.upstream(topic, encodeBinaryPlist(envelope));
  }

  /** Removes and returns the first received notification matching `pred` (acking everything that arrives). */
  async next(pred: (r: Received) => boolean = () => true, timeoutMs = 3000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex(pred);
      if (i >= 0) return this.inbox.splice(i, 1)[0]!;
      const n = parseNotification(await this.device.client.next(0x0a, Math.max(1, deadline - Date.now())));
      this.device.client.send('ack', { token: this.token, messageId: n.messageId, status: 0 });
      const topic = TOPICS.get(toBase64(n.topicHash)) ?? 'unknown';
      if (topic === IDS) {
        this.inbox.push({ topic, payload: n.payload, dict: {}, json: JSON.parse(fromUtf8(n.payload)) });
      } else {
        const v = parsePlist(n.payload);
        this.inbox.push({ topic, payload: n.payload, dict: isDict(v) ? v : {} });
      }
    }
  }

  /** True if nothing matching `pred` arrives within `ms`. */
  async none(pred: (r: Received) => boolean = () => true, ms = 250): Promise<boolean> {
    try {
      const r = await this.next(pred, ms);
      this.inbox.unshift(r);
      return false;
    } catch {
      return true;
    }
  }

  /** The c:255 acks for `uuid`, waiting until `count` arrived. */
  async acks(uuid: Uint8Array, count: number): Promise<PlistDict[]> {
    const out: PlistDict[] = [];
    while (out.length < count) out.push((await this.next((r) => r.dict['c'] === 255 && sameBytes(r.dict['U'], uuid))).dict);
    return out;
  }

  /** A signed c:96 lookup as the clients send it; the reply matched on U. */
  async lookup(user: IdsUser, selfUri: string, o: LookupOptions = {}): Promise<LookupResult> {
    const topic = o.topic ?? MADRID;
    const b = await gzip(encodeXmlPlist({ uris: o.uris ?? [] }));
    const sig = await signIdsRequest(user.keys.privateKey, {
      nonce: idsNonce(this.world.h.clock.now()),
      bagKey: 'id-query',
      query: '',
      body: b,
      pushToken: o.signToken ?? this.token,
    });
    const headers: Record<string, string> = {
      'x-id-self-uri': selfUri,
      'x-protocol-version': '1640',
      'x-push-token': toBase64(o.signToken ?? this.token),
      'x-id-cert': toBase64(user.cert),
      'x-id-nonce': toBase64(sig.nonce),
      'x-id-sig': sig.headerValue,
      ...o.headers,
    };
    for (const k of o.omit ?? []) delete headers[k];
    const U = crypto.getRandomValues(new Uint8Array(16));
    this.upstream(topic, encodeBinaryPlist({ c: 96, U, u: QUERY_URL, v: 2, cT: 'application/x-apple-plist', h: headers, b: o.body ?? b }));
    const r = await this.next((x) => x.topic === topic && x.dict['c'] === 97 && sameBytes(x.dict['U'], U));
    const rb = r.dict['b'];
    if (!(rb instanceof Uint8Array)) return { reply: r.dict };
    const body = parsePlist(await gunzip(rb));
    return { reply: r.dict, body: isDict(body) ? body : undefined };
  }

  /** Looks `uris` up and returns the identities of each (throws unless status 0). */
  async identities(user: IdsUser, selfUri: string, uris: string[]): Promise<Map<string, PlistDict[]>> {
    const { body } = await this.lookup(user, selfUri, { uris });
    if (!body || body['status'] !== 0) throw new Error(`lookup failed: ${JSON.stringify(body?.['status'])}`);
    const results = body['results'] as PlistDict;
    return new Map(uris.map((u) => [u, (results[u] as PlistDict)['identities'] as PlistDict[]]));
  }

  disconnect(): Promise<void> {
    this.device.client.close();
    return this.device.client.closed;
  }

  /** Connects again with the same certificate and token, then subscribes. */
  async reconnect(): Promise<void> {
    this.device = await this.world.h.device({ identity: this.device.identity, token: this.token });
    this.inbox.length = 0;
    this.subscribe();
  }
}

export function sameBytes(a: unknown, b: Uint8Array): boolean {
  return a instanceof Uint8Array && equalBytes(a, b);
}

const RSA_SHA1: RsaHashedKeyGenParams = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-1' };

export class MadridWorld {
  private constructor(
    readonly h: Harness,
    readonly pki: SandboxPki,
    readonly store: Store,
    readonly registrations: Registrations,
    readonly madrid: MadridInstance,
    readonly log: Log & { lines: LogLine[] },
    private readonly storeDir: { remove(): Promise<void> },
  ) {}

  static async create(pkiDir: string, options: MadridOptions = {}, courierOptions: CourierOptions = {}): Promise<MadridWorld> {
    const log = recordingLog();
    const h = await harness(courierOptions, log);
    // One PKI directory per suite (keys are made once); each world's instance follows that world's fake clock.
    const pki = await SandboxPki.load(pkiDir, h.clock, { serverIdentities: [] });
    const storeDir = await tempDir('cerulean-madrid-store-');
    const store = await Store.open(storeDir.dir);
    const registrations = Registrations.open(store, h.clock);
    const madrid = installMadrid(h.courier, { pki, store, clock: h.clock, log, registrations, options });
    return new MadridWorld(h, pki, store, registrations, madrid, log, storeDir);
  }

  async user(userId: string, certLifetimeMs = 30 * 86_400_000): Promise<IdsUser> {
    const keys = (await crypto.subtle.generateKey(RSA_SHA1, true, ['sign', 'verify'])) as CryptoKeyPair;
    const issued = await this.pki.issueIdsCertificate({ publicKey: keys.publicKey, userId, kind: 'id', notAfter: this.h.clock.now() + certLifetimeMs });
    return { userId, keys, cert: issued.der };
  }

  /** A connected phone with the madrid topics enabled. */
  async phone(): Promise<Phone> {
    const p = new Phone(this, await this.h.device());
    p.subscribe();
    return p;
  }

  /** Registers `user` with `uris` on `phone` directly in the store (no HTTP register). */
  register(phone: Phone, user: IdsUser, uris: string[], extra: Partial<DeviceRegistration> = {}): Promise<'registered' | 'updated'> {
    const now = this.h.clock.now();
    return this.registrations.upsert({
      service: MADRID,
      pushToken: phone.token,
      userId: user.userId,
      uris,
      subServices: [SMS],
      idCertSerial: 'serial',
      idCertNotAfter: now + 30 * 86_400_000,
      registeredAt: now,
      updatedAt: now,
      ...extra,
    });
  }

  async close(): Promise<void> {
    this.madrid.close();
    await this.h.close();
    await this.store.close();
    await this.storeDir.remove();
  }
}
