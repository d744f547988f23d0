// An in-memory iMessage world for the engine tests: devices with real keys, an IDS directory that mints session
// tokens per lookup, and a server that fans out send envelopes the way the sandbox router does (imessage.md §1.6,
// §1.7, §10): per-entry session-token check (5032 when stale or the device is gone), the §1.6 rewrite, one c:255 per
// entry unless nr. Every device processes its notifications one at a time, in order, like a courier connection.
// No node: imports — this runs in Chromium too.
import { equalBytes, toHex } from '../../../lib/codec/bytes';
import { setPlistKey, type PlistDict, type PlistValue } from '../../../lib/codec/plist';
import { encodeBinaryPlist } from '../../../lib/codec/plist-binary';
import { generateLegacyIdentity, type LegacyIdentity } from '../../../lib/crypto/identity-legacy';
import { generateNgmIdentity, KT_VERSION, NGM_VERSION, type NgmIdentity } from '../../../lib/crypto/identity-ngm';
import { randomBytes } from '../../../lib/crypto/subtle';
import { decodeEnvelopeDict, encodeServerAck, parseEnvelope, type SendEnvelope } from '../../../lib/imessage/envelope';
import { parsePeerIdentities } from '../../../lib/imessage/peer-identity';
import {
  handleKey,
  type CounterStore,
  type EngineLog,
  type IdentityDirectory,
  type LocalDevice,
  type PeerIdentity,
  type SeenStore,
} from '../../../lib/imessage/ports';
import { MessageReceiver, type InboundEvent } from '../../../lib/imessage/receiver';
import { MessageSender } from '../../../lib/imessage/sender';

export const UA = '[macOS,14.2,23C64,MacBookPro18,3]';
export const STATUS_NOT_REGISTERED = 1006;
const DROPPED = new Set(['dtl', 'fcn', 'sT']);
const PER_ENTRY = new Set(['tP', 't', 'P', 'E', 'D', 'e', 'cdv', 'cdr']);

export interface DeviceKeys {
  legacy: LegacyIdentity;
  ngm?: NgmIdentity;
}

export async function generateKeys(withNgm: boolean): Promise<DeviceKeys> {
  const [legacy, ngm] = await Promise.all([generateLegacyIdentity(), withNgm ? generateNgmIdentity() : undefined]);
  return { legacy, ngm };
}

/** Log lines kept for assertions. */
export class MemoryLog implements EngineLog {
  readonly lines: { level: string; event: string; fields?: Record<string, unknown> }[] = [];
  info(event: string, fields?: Record<string, unknown>): void {
    this.lines.push({ level: 'info', event, fields });
  }
  warn(event: string, fields?: Record<string, unknown>): void {
    this.lines.push({ level: 'warn', event, fields });
  }
}

export class MemorySeen implements SeenStore {
  private readonly keys = new Set<string>();
  async seen(uuid: string, token: Uint8Array): Promise<boolean> {
    return this.keys.has(`${uuid}|${toHex(token)}`);
  }
  async remember(uuid: string, token: Uint8Array): Promise<void> {
    this.keys.add(`${uuid}|${toHex(token)}`);
  }
}

export class MemoryCounters implements CounterStore {
  readonly values = new Map<string, number>();
  async next(ownDevice: Uint8Array, peerDevice: Uint8Array, peerPrekey: Uint8Array): Promise<number> {
    const key = toHex(ownDevice) + toHex(peerDevice) + toHex(peerPrekey);
    const n = (this.values.get(key) ?? 0) + 1;
    this.values.set(key, n);
    return n;
  }
}

/** A lookup cache over the network's registrations, counting what it was asked. */
export class FakeDirectory implements IdentityDirectory {
  readonly lookups: { selfUri: string; handles: string[]; force: boolean }[] = [];
  readonly invalidated: string[] = [];
  private readonly cache = new Map<string, PeerIdentity[]>();

  constructor(
    private readonly network: FakeNetwork,
    private readonly log: EngineLog,
  ) {}

  async lookup(selfUri: string, handles: string[], opts?: { force?: boolean }): Promise<Map<string, PeerIdentity[]>> {
    const force = opts?.force ?? false;
    this.lookups.push({ selfUri, handles: [...handles], force });
    const out = new Map<string, PeerIdentity[]>();
    for (const handle of handles) {
      const key = `${handleKey(selfUri)}|${handleKey(handle)}`;
      let identities = force ? undefined : this.cache.get(key);
      if (!identities) {
        identities = await parsePeerIdentities(handle, this.network.lookupIdentities(selfUri, handle), this.log);
        this.cache.set(key, identities);
      }
      out.set(handle, identities);
    }
    return out;
  }

  invalidate(handle: string): void {
    this.invalidated.push(handle);
    for (const key of [...this.cache.keys()]) if (key.endsWith(`|${handleKey(handle)}`)) this.cache.delete(key);
  }

  forcedLookups(): number {
    return this.lookups.filter((l) => l.force).length;
  }
}

export interface Received {
  topic: string;
  bytes: Uint8Array;
}

export class FakeDevice {
  readonly events: InboundEvent[] = [];
  /** Every notification this device was handed, in order. */
  readonly inbox: Received[] = [];
  readonly log = new MemoryLog();
  readonly seen = new MemorySeen();
  readonly counters = new MemoryCounters();
  readonly directory: FakeDirectory;
  readonly local: LocalDevice;
  readonly sender: MessageSender;
  readonly receiver: MessageReceiver;
  registered = true;
  /** Tail of this device's processing queue. */
  chain: Promise<void> = Promise.resolve();

  constructor(
    readonly network: FakeNetwork,
    readonly name: string,
    readonly token: Uint8Array,
    readonly handles: string[],
    readonly keys: DeviceKeys,
  ) {
    this.directory = new FakeDirectory(network, this.log);
    this.local = { pushToken: token, handles, legacy: keys.legacy, ngm: keys.ngm, userAgent: UA };
    this.sender = new MessageSender({
      device: this.local,
      transport: { send: (topic, payload, messageId) => network.route(this, topic, payload, messageId) },
      directory: this.directory,
      counters: this.counters,
      log: this.log,
      maxEnvelopeBytes: network.maxEnvelopeBytes,
    });
    this.receiver = new MessageReceiver({ device: this.local, directory: this.directory, seen: this.seen, sender: this.sender, log: this.log });
  }

  /** Replaces this device's NGM keys (a re-registration with a new prekey and device key). */
  rotateNgm(ngm: NgmIdentity): void {
    this.keys.ngm = ngm;
    this.local.ngm = ngm;
  }

  get uri(): string {
    return this.handles[0]!;
  }

  eventsOf<K extends InboundEvent['kind']>(kind: K): Extract<InboundEvent, { kind: K }>[] {
    return this.events.filter((e): e is Extract<InboundEvent, { kind: K }> => e.kind === kind);
  }

  /** Notifications of command `c` this device received, decoded. */
  received(c: number): PlistDict[] {
    return this.inbox
      .filter((r) => r.topic === 'com.apple.madrid')
      .map((r) => decodeEnvelopeDict(r.bytes))
      .filter((d) => d['c'] === c);
  }
}

interface Session {
  sender: string;
  target: string;
  token: string;
}

export interface SentEnvelope {
  from: FakeDevice;
  topic: string;
  size: number;
  envelope: SendEnvelope;
}

export class FakeNetwork {
  readonly devices: FakeDevice[] = [];
  readonly sent: SentEnvelope[] = [];
  /** Anything a device threw while processing a notification: a test failure. */
  readonly errors: unknown[] = [];
  /** Rewrites a destination's `P` on its way (tamper tests). */
  tamper?: (payload: Uint8Array, to: FakeDevice) => Uint8Array;
  private readonly sessions = new Map<string, Session>();
  private readonly inflight = new Set<Promise<void>>();
  private clockNs = 1_712_000_000_000_000_000n;

  constructor(readonly maxEnvelopeBytes = 15360) {}

  async addDevice(name: string, handles: string[], keys: DeviceKeys | { ngm: boolean }): Promise<FakeDevice> {
    const deviceKeys = 'legacy' in keys ? keys : await generateKeys(keys.ngm);
    const device = new FakeDevice(this, name, randomBytes(32), handles, deviceKeys);
    this.devices.push(device);
    return device;
  }

  /** Deregisters a device: lookups stop listing it and sends to it fail with 5032. */
  removeDevice(device: FakeDevice): void {
    device.registered = false;
  }

  /** Makes every session token issued for `device` stale (as after a server-side key change). */
  expireSessions(device: FakeDevice): void {
    for (const [key, s] of this.sessions) if (s.token === toHex(device.token)) this.sessions.delete(key);
  }

  private devicesFor(handle: string): FakeDevice[] {
    return this.devices.filter((d) => d.registered && d.handles.some((h) => handleKey(h) === handleKey(handle)));
  }

  /** The `identities` array a lookup of `handle` by `selfUri` returns (ids.md §7.2), with fresh session tokens. */
  lookupIdentities(selfUri: string, handle: string): PlistDict[] {
    return this.devicesFor(handle).map((d) => {
      const sessionToken = randomBytes(24);
      this.sessions.set(toHex(sessionToken), { sender: handleKey(selfUri), target: handleKey(handle), token: toHex(d.token) });
      const clientData: PlistDict = {
        'public-message-identity-key': d.keys.legacy.publicKey.blob,
        'public-message-identity-version': 2,
        'supports-ack-v1': true,
      };
      const identity: PlistDict = {
        'push-token': d.token,
        'session-token': sessionToken,
        'session-token-expires-seconds': 604800,
        'session-token-refresh-seconds': 86400,
        'client-data': clientData,
      };
      if (d.keys.ngm) {
        clientData['ec-version'] = 1;
        clientData['public-message-identity-ngm-version'] = NGM_VERSION;
        clientData['public-message-ngm-device-prekey-data-key'] = d.keys.ngm.publicDevicePrekey;
        clientData['kt-version'] = KT_VERSION;
        identity['kt-loggable-data'] = d.keys.ngm.ktLoggableData;
      }
      return identity;
    });
  }

  /** The courier + madrid router: called by a device's transport. */
  async route(from: FakeDevice, topic: string, bytes: Uint8Array, frameId?: number): Promise<void> {
    if (bytes.length > this.maxEnvelopeBytes) throw new Error(`courier rejects a ${bytes.length}-byte payload`);
    const dict = decodeEnvelopeDict(bytes);
    const envelope = parseEnvelope(dict);
    // imessage.md §1.2: the envelope's `i` is the courier frame's message id.
    if (frameId !== envelope.messageId) throw new Error(`frame id ${frameId} differs from the envelope's i ${envelope.messageId}`);
    this.sent.push({ from, topic, size: bytes.length, envelope });
    const noResponse = envelope.noResponse === true;
    if (!this.devicesFor(envelope.senderUri).includes(from)) {
      if (!noResponse) this.deliver(from, topic, encodeServerAck({ uuid: envelope.uuid, status: STATUS_NOT_REGISTERED, extra: {} }));
      return;
    }
    for (const entry of dict['dtl'] as PlistDict[]) {
      const token = entry['t'] as Uint8Array;
      const status = this.routeEntry(from, topic, dict, entry);
      if (!noResponse) this.deliver(from, topic, encodeServerAck({ uuid: envelope.uuid, token, status, extra: {} }));
    }
  }

  private routeEntry(from: FakeDevice, topic: string, envelope: PlistDict, entry: PlistDict): number {
    const token = entry['t'] as Uint8Array;
    const targetUri = entry['tP'] as string;
    const sessionToken = entry['sT'];
    const session = sessionToken instanceof Uint8Array ? this.sessions.get(toHex(sessionToken)) : undefined;
    const to = this.devicesFor(targetUri).find((d) => equalBytes(d.token, token));
    if (
      !session || !to ||
      session.sender !== handleKey(envelope['sP'] as string) ||
      session.target !== handleKey(targetUri) ||
      session.token !== toHex(token)
    ) {
      return 5032;
    }
    const out: PlistDict = {};
    for (const [k, v] of Object.entries(envelope)) if (!DROPPED.has(k) && !PER_ENTRY.has(k)) setPlistKey(out, k, v);
    const set = (k: string, v: PlistValue | undefined) => v !== undefined && setPlistKey(out, k, v);
    let payload = entry['P'] as Uint8Array | undefined;
    if (payload && this.tamper) payload = this.tamper(payload, to);
    set('tP', targetUri);
    set('t', from.token);
    set('P', payload);
    set('E', entry['E'] ?? envelope['E']);
    set('D', entry['D']);
    set('e', (this.clockNs += 1_000_000n));
    this.deliver(to, topic, encodeBinaryPlist(out));
    return 0;
  }

  /** Queues a notification on `to`'s connection; the device handles it, stores the events, commits. */
  deliver(to: FakeDevice, topic: string, bytes: Uint8Array): void {
    const done = to.chain.then(async () => {
      to.inbox.push({ topic, bytes });
      try {
        const received = await to.receiver.handleNotification(topic, bytes);
        to.events.push(...received.events);
        await received.commit();
      } catch (e) {
        this.errors.push(e);
      }
    });
    to.chain = done;
    this.inflight.add(done);
    void done.finally(() => this.inflight.delete(done));
  }

  /** Resolves once no notification is queued or being handled anywhere. */
  async idle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all([...this.inflight]);
  }

  /** Envelopes of command `c` sent by `from`. */
  sentBy(from: FakeDevice, c: number): SendEnvelope[] {
    return this.sent.filter((s) => s.from === from && s.envelope.command === c).map((s) => s.envelope);
  }
}
