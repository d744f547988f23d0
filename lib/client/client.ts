// CeruleanClient: one device's iMessage session, composed from the layers below it — the courier connection
// (lib/apns), IDS registration and lookups (lib/ids), the messaging engine (lib/imessage) and the store. The UI
// talks to this class only: register, send, query the store, listen to events.
//
// Data flow. Outgoing: an API call stores the change (message, tapback, …) and an outbox item in one go; the outbox
// loop sends it through the engine and records the server's answer. Incoming: the courier hands notifications to
// the inbox, which stores them, lets the courier ack, and then runs them through the receiver into the store.
// Background: a timer renews the registration before the ID certificates expire; IDS control notices and peers'
// cache-invalidate messages trigger lookups of the account's own handles, whose new devices become security events
// (kept in the security log before they are announced).
//
// The envelope `i` is the courier frame's message id too (imessage.md §1.2): the engine hands it to the transport,
// which passes it to CourierClient.send.
import { CourierClient } from '../apns/courier-client';
import { toHex } from '../codec/bytes';
import { userAgent, lookupUserAgent } from '../ids/device';
import { Command } from '../imessage/commands';
import { handleKey, IDS_CONTROL_TOPIC, MADRID_TOPIC, silentEngineLog, type EngineLog, type LocalDevice } from '../imessage/ports';
import { MessageReceiver } from '../imessage/receiver';
import { MessageSender } from '../imessage/sender';
import type { TapbackReaction } from '../imessage/tapback';
import { formatThreadOrigin } from '../imessage/message';
import { randomUuidString } from '../imessage/uuid';
import { CeruleanError } from '../errors';
import type {
  AccountRecord,
  ChatRecord,
  ClientStore,
  DeviceRecord,
  MessageCursor,
  MessageRecord,
  OutboxItem,
  SecurityEvent,
} from '../store/types';
import { fingerprintsOf } from '../store/security-events';
import { chatFor, conversationGid, isSameHandle, normalizeHandle, participantSet } from './chats';
import { resolveConfig, type CeruleanClientConfig, type ResolvedConfig } from './config';
import { contactHandle, ContactBook } from './contacts';
import { ClientDirectory } from './directory';
import { storeCounters, storeSeen, pruneSeen } from './engine-stores';
import { createClientEmitter, describe, type ClientEmitter, type ClientEvents, type ConnectionState } from './events';
import { applyInbound } from './inbound';
import { Inbox } from './inbox';
import type { DeviceKeys } from './keys';
import { LookupReplies } from './lookup-replies';
import { createNetwork, type Network } from './network';
import { Outbox, type OutboxOutcome } from './outbox';
import { nextPropertiesVersion, partText, sendOutgoing, type OutgoingPayload } from './outgoing';
import {
  loadRegistrationState,
  needsSignIn,
  Registrar,
  type RegisterRequest,
  type RegisterResult,
  type RegistrationState,
} from './registration';
import { SecurityLog, type SecurityLogEntry } from './security-log';
import { presentDevices, verificationCode, type VerificationCode } from './verification';

/** An own device as the lookups of the account's handles show it. */
export interface OwnDevice extends DeviceRecord {
  /** This device. */
  current: boolean;
}

export interface RegistrationInfo {
  handles: string[];
  /** When the ID certificates run out (unix ms). */
  expiresAt?: number;
  /** When this device registers again on its own. */
  renewAt?: number;
}

export interface SendOptions {
  /** Reply to part `part` of message `uuid` (the whole part). */
  replyTo?: { uuid: string; part?: number };
}

/** A failed renewal is tried again after this long (doubling up to an hour) unless a person must act. */
const RENEW_RETRY_MS = 60_000;
const RENEW_RETRY_MAX_MS = 60 * 60_000;
const MAX_TIMER_MS = 0x7fffffff;

interface Engine {
  device: LocalDevice;
  sender: MessageSender;
  receiver: MessageReceiver;
}

export class CeruleanClient {
  /** The address book, in this device's store only. */
  readonly contacts: ContactBook;
  private readonly config: ResolvedConfig;
  private readonly store: ClientStore;
  private readonly log: EngineLog;
  private readonly events: ClientEmitter = createClientEmitter();
  private readonly network: Network;
  private readonly registrar: Registrar;
  private readonly replies = new LookupReplies();
  private readonly directory: ClientDirectory;
  private readonly inbox: Inbox;
  private readonly outbox: Outbox;
  private readonly securityEvents: SecurityLog;
  private account: AccountRecord | undefined;
  private state: RegistrationState | undefined;
  private courier: CourierClient | undefined;
  private engine: Engine | undefined;
  private connection: ConnectionState = 'disconnected';
  private renewTimer: ReturnType<typeof setTimeout> | undefined;
  private renewing: Promise<void> | undefined;
  private renewFailures = 0;
  private ownRefresh: { running: Promise<void>; again: boolean } | undefined;
  private closed = false;
  private signedOut = false;

  private constructor(config: ResolvedConfig) {
    this.config = config;
    this.store = config.store;
    this.contacts = new ContactBook(this.store);
    this.securityEvents = new SecurityLog(this.store);
    this.log = config.log ?? silentEngineLog;
    this.network = createNetwork(config);
    this.registrar = new Registrar({ store: this.store, network: this.network, config, now: Date.now });
    this.directory = new ClientDirectory({
      store: this.store,
      transport: this.replies.transport((topic, payload) => this.requireCourier().send(topic, payload)),
      signer: (selfUri) => this.signer(selfUri),
      primaryHandle: () => this.state?.primaryHandle,
      onSecurityEvents: (events) => void this.logSecurityEvents(events),
      now: Date.now,
      log: this.log,
      ...(config.tuning.lookupTimeoutMs !== undefined ? { timeoutMs: config.tuning.lookupTimeoutMs } : {}),
    });
    this.inbox = new Inbox({
      store: this.store,
      replies: this.replies,
      receiver: () => this.engine?.receiver,
      // Only called with a receiver, i.e. once the engine exists.
      apply: (event) =>
        applyInbound(
          {
            store: this.store,
            emitter: this.events,
            device: this.requireEngine().device,
            log: this.log,
            now: Date.now,
            ownDevicesChanged: () => this.refreshOwnDevices(),
            reregister: () => void this.renew(),
          },
          event,
        ),
      log: this.log,
      now: Date.now,
      onError: (code, message) => this.events.emit('error', { code, message }),
      ...(config.tuning.inboxRetryMs !== undefined ? { retryMs: config.tuning.inboxRetryMs } : {}),
    });
    this.outbox = new Outbox({
      store: this.store,
      now: Date.now,
      log: this.log,
      perform: (item) => this.perform(item),
      ready: () => this.engine !== undefined && this.connection === 'connected',
      finished: (item, outcome) => this.outboxFinished(item, outcome),
      ...(config.tuning.outboxRetryMs !== undefined ? { retryMs: config.tuning.outboxRetryMs } : {}),
      ...(config.tuning.outboxMaxRetryMs !== undefined ? { maxRetryMs: config.tuning.outboxMaxRetryMs } : {}),
      ...(config.tuning.outboxMaxAttempts !== undefined ? { maxAttempts: config.tuning.outboxMaxAttempts } : {}),
    });
  }

  /** A client over the store's account (if any). Nothing connects until start() or register(). */
  static async open(config: CeruleanClientConfig): Promise<CeruleanClient> {
    const client = new CeruleanClient(resolveConfig(config));
    await client.load();
    return client;
  }

  on<K extends keyof ClientEvents>(type: K, listener: (event: ClientEvents[K]) => void): () => void {
    return this.events.on(type, listener);
  }

  /** True once this device has registered handles (now or in an earlier run). */
  get registered(): boolean {
    return this.engine !== undefined;
  }

  /** The registered handles; the first is the one this device sends from. */
  get handles(): string[] {
    const s = this.state;
    if (!s) return [];
    return [s.primaryHandle, ...Object.keys(s.handleOwners).filter((h) => handleKey(h) !== handleKey(s.primaryHandle))];
  }

  get connectionState(): ConnectionState {
    return this.connection;
  }

  /** Connects and starts processing (a registered device); renews the registration if it is due. */
  async start(): Promise<void> {
    this.checkOpen();
    if (!this.engine || !this.account) throw new CeruleanError('not-registered', 'register this device first');
    this.startCourier(this.account);
    await this.inbox.start();
    this.outbox.start();
    this.scheduleRenewal();
    void pruneSeen(this.store, Date.now()).catch((e: unknown) => this.log.warn('client.prune-failed', { error: describe(e) }));
  }

  /**
   * One step of registration. An Apple ID may answer 'second-factor-required' (call again with `code`); a phone
   * answers 'sms-required' with the REG-REQ to send (call again with the REG-RESP). 'registered' means this device
   * is on iMessage: connected, its own devices looked up, and the account's other devices told (c:130).
   */
  async register(req: RegisterRequest): Promise<RegisterResult> {
    this.checkOpen();
    let account = await this.registrar.ensureAccount();
    this.account = account;
    this.startCourier(account);
    const token = await this.requireCourier().whenConnected();
    // The courier's token was saved into a new account record while connecting.
    account = this.account ?? account;
    if (!this.engine && this.registrar.hasSignIn(account, req)) {
      // Signed in on an earlier attempt that failed later (relay, network): carry on from there.
    } else if ('appleId' in req) {
      const signIn = await this.registrar.signInAppleId(account, req.appleId);
      if (signIn !== 'ok') return { status: signIn };
    } else if (req.phone.regResp === undefined) {
      return { status: 'sms-required', ...(await this.registrar.phoneRequest(token, req.phone.mccMnc)) };
    } else {
      await this.registrar.authenticatePhone(account, token, req.phone.regResp);
    }
    const done = await this.registrar.register(account, token);
    await this.adopt(done.account, done.state, done.keys);
    await this.afterRegistration();
    await this.inbox.start();
    this.outbox.start();
    const failedUsers = done.failedUsers.map((f) => ({ userId: f.userId, error: f.error.code }));
    return { status: 'registered', handles: this.handles, expiresAt: done.account.registrationExpiresAt!, failedUsers };
  }

  /** Registers again now (fresh validation data, same keys): what the renewal timer does. */
  renew(): Promise<void> {
    this.renewing ??= this.doRenew().finally(() => (this.renewing = undefined));
    return this.renewing;
  }

  /**
   * Whether received notifications are still being processed: a short session (the service worker after a wake-up)
   * waits for this to turn false before it closes.
   */
  get processingInbound(): boolean {
    return this.inbox.pending > 0;
  }

  /** Stops everything (a send in progress goes again next time); the store stays open for its owner. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.renewTimer !== undefined) clearTimeout(this.renewTimer);
    await this.outbox.stop();
    // Closing the courier first fails whatever waits on it (sends, lookups), so the inbox loop ends promptly; what
    // it was processing stays stored for the next start.
    await this.courier?.close();
    this.replies.close();
    await this.inbox.stop();
    await this.renewing?.catch(() => undefined);
    await this.ownRefresh?.running;
    this.network.close();
    this.setConnection('closed');
  }

  /**
   * Signs this device out: everything stops, then the store is wiped (keys, history, contacts). The client is
   * unusable afterwards; every later call fails with 'closed'.
   */
  async signOut(): Promise<void> {
    if (this.signedOut) throw new CeruleanError('closed', 'this device was signed out');
    this.signedOut = true;
    await this.close();
    this.engine = undefined;
    this.account = undefined;
    this.state = undefined;
    await this.store.destroy();
  }

  /** The registered handles, when the registration runs out and when it will be renewed. */
  registrationInfo(): RegistrationInfo {
    this.checkOpen();
    return {
      handles: this.handles,
      ...(this.account?.registrationExpiresAt !== undefined ? { expiresAt: this.account.registrationExpiresAt } : {}),
      ...(this.state ? { renewAt: this.state.renewAt } : {}),
    };
  }

  // ---- conversations ------------------------------------------------------------------------------------------

  /** The 1:1 chat with `handle` (created if new). */
  async chatWith(handle: string): Promise<ChatRecord> {
    const init = chatFor([this.primary(), handle]);
    return (await this.store.chats.get(init.id)) ?? this.store.chats.upsert(init);
  }

  /** A new group with these members (and this account); a name is sent to everyone as a rename. */
  async createGroup(participants: string[], name?: string): Promise<ChatRecord> {
    const members = participantSet([this.primary(), ...participants]);
    if (members.length < 3) throw new CeruleanError('bad-input', 'a group needs at least two other participants');
    const chat = await this.store.chats.upsert({ id: randomUuidString(), participants: members, isGroup: true, ...(name ? { name } : {}) });
    if (name) await this.outbox.enqueue({ kind: 'rename', chatId: chat.id, payload: { kind: 'rename', uuid: randomUuidString(), chatId: chat.id, name } });
    return chat;
  }

  async renameGroup(chatId: string, name: string): Promise<ChatRecord> {
    const chat = await this.requireMember(chatId);
    if (!chat.isGroup) throw new CeruleanError('bad-input', 'only a group can be renamed');
    const renamed = await this.store.chats.upsert({ ...chat, name });
    const payload: OutgoingPayload = { kind: 'rename', uuid: randomUuidString(), chatId, name, ...(chat.name !== undefined ? { oldName: chat.name } : {}) };
    await this.outbox.enqueue({ kind: 'rename', chatId, payload });
    return renamed;
  }

  /** Adds members to a group; everyone old and new is told (c:190), and the newcomers get its messages from then on. */
  async addMembers(chatId: string, handles: string[]): Promise<ChatRecord> {
    const chat = await this.requireGroup(chatId);
    const added = memberHandles(handles);
    const next = participantSet([...chat.participants, ...added]);
    return next.length === chat.participants.length ? chat : this.changeMembers(chat, next);
  }

  /**
   * Removes members from a group: they are told, and get none of its messages from then on. A group keeps at least
   * two other members (as when it was created); this account cannot remove itself.
   */
  async removeMembers(chatId: string, handles: string[]): Promise<ChatRecord> {
    const chat = await this.requireGroup(chatId);
    const removed = memberHandles(handles);
    if (removed.some((h) => this.isOwn(h))) throw new CeruleanError('bad-input', 'this account cannot remove itself from a group');
    const next = chat.participants.filter((p) => !removed.some((h) => isSameHandle(h, p)));
    if (next.length === chat.participants.length) return chat;
    if (next.length < 3) throw new CeruleanError('bad-input', 'a group needs at least two other participants');
    return this.changeMembers(chat, next);
  }

  async sendText(chatId: string, text: string, options: SendOptions = {}): Promise<MessageRecord> {
    const chat = await this.requireMember(chatId);
    const uuid = randomUuidString();
    const replyTo = options.replyTo ? await this.threadOrigin(options.replyTo.uuid, options.replyTo.part ?? 0) : undefined;
    const payload: OutgoingPayload = { kind: 'text', uuid, chatId, text, ...(replyTo ? { replyTo } : {}) };
    const { message } = await this.store.messages.saveOutgoing(
      { uuid, chatId, sender: this.senderFor(chat), fromMe: true, time: Date.now(), text, ...(replyTo ? { replyTo } : {}) },
      { outbox: { kind: 'text', payload, nextAttemptAt: this.outbox.slot() } },
    );
    this.outbox.kick();
    this.events.emit('message', { message, chat: (await this.store.chats.get(chatId)) ?? chat });
    return message;
  }

  async sendTapback(messageUuid: string, reaction: TapbackReaction, options: { part?: number; remove?: boolean; emoji?: string } = {}): Promise<MessageRecord> {
    const m = await this.requireMessage(messageUuid);
    const chat = await this.requireMember(m.chatId);
    const part = options.part ?? 0;
    const remove = options.remove ?? false;
    const updated = await this.store.messages.addTapback(m.uuid, {
      sender: this.senderFor(chat),
      reaction,
      part,
      time: Date.now(),
      remove,
      ...(options.emoji !== undefined ? { emoji: options.emoji } : {}),
    });
    const payload: OutgoingPayload = {
      kind: 'tapback',
      uuid: randomUuidString(),
      chatId: chat.id,
      target: m.uuid,
      part,
      reaction,
      remove,
      quotedText: partText(m, part),
      ...(options.emoji !== undefined ? { emoji: options.emoji } : {}),
    };
    await this.outbox.enqueue({ kind: 'tapback', chatId: chat.id, payload });
    this.events.emit('update', { message: updated });
    return updated;
  }

  /** Replaces the text of part `part` of an own message. */
  async edit(messageUuid: string, text: string, part = 0): Promise<MessageRecord> {
    const m = await this.requireOwnMessage(messageUuid);
    await this.requireMember(m.chatId);
    const updated = await this.store.messages.applyEdit(m.uuid, { part, text, time: Date.now() });
    await this.outbox.enqueue({ kind: 'edit', chatId: m.chatId, payload: { kind: 'edit', uuid: randomUuidString(), chatId: m.chatId, target: m.uuid, part, text } });
    this.events.emit('update', { message: updated });
    return updated;
  }

  /** Withdraws an own message (or one part of it). */
  async unsend(messageUuid: string, part?: number): Promise<MessageRecord> {
    const m = await this.requireOwnMessage(messageUuid);
    await this.requireMember(m.chatId);
    const updated = await this.store.messages.unsend(m.uuid, part === undefined ? {} : { part });
    const payload: OutgoingPayload = { kind: 'unsend', uuid: randomUuidString(), chatId: m.chatId, target: m.uuid, part: part ?? 0 };
    await this.outbox.enqueue({ kind: 'unsend', chatId: m.chatId, payload });
    this.events.emit('update', { message: updated });
    return updated;
  }

  /**
   * Marks the chat read here and (with read receipts on, in a chat this account is still in) tells the other
   * participants and own devices.
   */
  async markRead(chatId: string): Promise<string[]> {
    const chat = await this.requireChat(chatId);
    const read = await this.store.chats.markRead(chatId);
    const newest = read[read.length - 1];
    if (newest && this.config.readReceipts && this.isMember(chat)) {
      await this.outbox.enqueue({ kind: 'read', chatId, payload: { kind: 'read', uuid: newest, chatId } });
    }
    return read;
  }

  /** Typing indicators are not queued: sent now if connected, dropped otherwise. */
  async setTyping(chatId: string, typing: boolean): Promise<void> {
    const chat = await this.requireChat(chatId);
    const engine = this.requireEngine();
    if (this.connection !== 'connected' || !this.isMember(chat)) return;
    await engine.sender.sendTyping({
      senderUri: this.senderFor(chat),
      participants: chat.participants,
      groupId: conversationGid(chat),
      ...(chat.name !== undefined ? { groupName: chat.name } : {}),
      typing,
    });
  }

  chats(options?: { limit?: number }): Promise<ChatRecord[]> {
    return this.store.chats.list(options);
  }

  chat(chatId: string): Promise<ChatRecord | undefined> {
    return this.store.chats.get(chatId);
  }

  messages(chatId: string, options?: { limit?: number; before?: MessageCursor; after?: MessageCursor }): Promise<MessageRecord[]> {
    return this.store.messages.list(chatId, options);
  }

  message(uuid: string): Promise<MessageRecord | undefined> {
    return this.store.messages.get(uuid);
  }

  /** Which handles are on iMessage (have at least one device we could message). */
  async reachable(handles: string[]): Promise<Map<string, boolean>> {
    this.requireEngine();
    const found = await this.directory.lookup(this.primary(), handles);
    return new Map(handles.map((h) => [h, (found.get(h) ?? []).length > 0]));
  }

  /** The account's devices as lookups have shown them (this one included); `refresh` looks them up first. */
  async devices(options: { refresh?: boolean } = {}): Promise<OwnDevice[]> {
    if (options.refresh) await this.lookupOwnHandles();
    const own = this.account?.push?.token;
    const byToken = new Map<string, OwnDevice>();
    for (const handle of this.handles) {
      for (const d of await this.store.devices.list(handle)) {
        const key = toHex(d.pushToken);
        if (!byToken.has(key)) byToken.set(key, { ...d, current: own !== undefined && key === toHex(own) });
      }
    }
    return [...byToken.values()].sort((a, b) => a.firstSeen - b.firstSeen);
  }

  /**
   * The code both people compare to verify each other's devices (see verification.ts): the same on both sides
   * while neither account's device keys change. Undefined until both sides have devices known here.
   */
  async verificationCode(handle: string): Promise<VerificationCode | undefined> {
    this.checkOpen();
    const engine = this.engine;
    const token = this.account?.push?.token;
    if (!engine || !token) return undefined;
    const self = {
      pushToken: token,
      fingerprints: fingerprintsOf({
        pushToken: token,
        identityKey: engine.device.legacy.publicKey.blob,
        ...(engine.device.ngm ? { ngmDeviceKey: engine.device.ngm.ktLoggableData, ngmPrekey: engine.device.ngm.publicDevicePrekey } : {}),
      }),
    };
    const own = await presentDevices(this.store, this.handles, self);
    const theirs = await presentDevices(this.store, [contactHandle(handle) ?? normalizeHandle(handle)]);
    return verificationCode(own, theirs);
  }

  /** Every security event raised so far (the newest SECURITY_LOG_LIMIT), newest first. */
  async securityLog(): Promise<SecurityLogEntry[]> {
    this.checkOpen();
    return this.securityEvents.list();
  }

  async markSecuritySeen(ids: string[]): Promise<void> {
    this.checkOpen();
    return this.securityEvents.markSeen(ids);
  }

  // ---- lifecycle internals ------------------------------------------------------------------------------------

  private async load(): Promise<void> {
    const [account] = await this.store.accounts.list();
    this.account = account;
    const state = await loadRegistrationState(this.store);
    if (!account?.push?.token || !state || account.handles.length === 0) return;
    const stored = await this.store.keys.get(account.id);
    if (!stored) return;
    this.adoptEngine(account, state, await this.registrar.keys(account.id));
  }

  private async adopt(account: AccountRecord, state: RegistrationState, keys: DeviceKeys): Promise<void> {
    const tokenChanged = this.engine !== undefined && toHex(this.engine.device.pushToken) !== toHex(account.push!.token!);
    this.adoptEngine(account, state, keys);
    if (tokenChanged) await this.directory.clear();
    this.renewFailures = 0;
    this.scheduleRenewal();
    this.events.emit('registration', { status: 'registered', handles: this.handles, expiresAt: account.registrationExpiresAt! });
    this.inbox.kick();
    this.outbox.kick();
  }

  private adoptEngine(account: AccountRecord, state: RegistrationState, keys: DeviceKeys): void {
    this.account = account;
    this.state = state;
    const handles = this.handles;
    const token = account.push!.token!;
    if (this.engine) {
      // The engine keeps its LocalDevice; renewals change it in place.
      this.engine.device.handles.splice(0, Infinity, ...handles);
      this.engine.device.pushToken = token;
      return;
    }
    const device: LocalDevice = { pushToken: token, handles, legacy: keys.legacy, ngm: keys.ngm, userAgent: userAgent(account.device!) };
    const sender = new MessageSender({
      device,
      transport: { send: (topic, payload, messageId) => this.requireCourier().send(topic, payload, { messageId }) },
      directory: this.directory,
      counters: storeCounters(this.store),
      log: this.log,
      ...(this.config.tuning.ackSettleMs !== undefined ? { ackSettleMs: this.config.tuning.ackSettleMs } : {}),
      ...(this.config.tuning.ackMaxMs !== undefined ? { ackMaxMs: this.config.tuning.ackMaxMs } : {}),
    });
    const receiver = new MessageReceiver({ device, directory: this.directory, seen: storeSeen(this.store, Date.now), sender, log: this.log });
    this.engine = { device, sender, receiver };
  }

  /** The baseline of own devices, then c:130 to the own handle so the other devices look us up again (§9). */
  private async afterRegistration(): Promise<void> {
    await this.lookupOwnHandles();
    const engine = this.requireEngine();
    const primary = this.primary();
    await engine.sender.send({ command: Command.PeerCacheInvalidate, senderUri: primary, participants: [primary], noResponse: true, deliveryReceipts: 'none' });
  }

  private startCourier(account: AccountRecord): void {
    if (this.courier) return;
    const push = account.push;
    if (!push) throw new CeruleanError('not-activated', 'the device has no push certificate');
    const t = this.config.tuning;
    const courier = new CourierClient({
      connect: this.network.courier,
      credentials: { privateKey: push.keyPair.privateKey, certificate: push.certificate },
      ...(push.token ? { token: push.token } : {}),
      onToken: (token) => this.saveToken(token),
      topics: [MADRID_TOPIC, IDS_CONTROL_TOPIC],
      onNotification: (n) => this.inbox.accept(n),
      ...(t.courierBackoff ? { backoff: t.courierBackoff } : {}),
      ...(t.courierKeepAliveMs !== undefined ? { keepAliveMs: t.courierKeepAliveMs } : {}),
      ...(t.connectTimeoutMs !== undefined ? { connectTimeoutMs: t.connectTimeoutMs } : {}),
    });
    courier.on('connected', () => {
      this.setConnection('connected');
      this.inbox.retryNow();
      this.outbox.kick();
    });
    courier.on('disconnected', (e) => {
      if (this.closed) return;
      this.setConnection('disconnected', e.error?.code, e.retryInMs);
    });
    courier.on('tokenChanged', () => {
      // IDS knows this device by its old token: register again with the new one.
      if (this.engine) void this.renew();
    });
    courier.on('error', (e) => this.events.emit('error', { code: e.code, message: e.message }));
    this.courier = courier;
    this.setConnection('connecting');
    courier.start();
  }

  private async saveToken(token: Uint8Array): Promise<void> {
    const account = this.account;
    if (!account?.push) return;
    this.account = { ...account, push: { ...account.push, token }, updatedAt: Date.now() };
    await this.store.accounts.put(this.account);
  }

  private setConnection(state: ConnectionState, error?: string, retryInMs?: number): void {
    this.connection = state;
    this.events.emit('connection', { state, ...(error !== undefined ? { error } : {}), ...(retryInMs !== undefined ? { retryInMs } : {}) });
  }

  private scheduleRenewal(): void {
    if (this.renewTimer !== undefined) clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
    if (!this.state || this.closed) return;
    const delay = this.state.renewAt - Date.now();
    if (delay <= 0) {
      void this.renew();
      return;
    }
    // Long delays are walked in steps setTimeout can take.
    this.renewTimer = setTimeout(() => this.scheduleRenewal(), Math.min(delay, MAX_TIMER_MS));
  }

  private async doRenew(): Promise<void> {
    if (this.closed || !this.account) return;
    try {
      const token = await this.requireCourier().whenConnected();
      const [account] = await this.store.accounts.list();
      const done = await this.registrar.register(account ?? this.account, token);
      await this.adopt(done.account, done.state, done.keys);
    } catch (e) {
      if (this.closed) return;
      const code = e instanceof CeruleanError ? e.code : 'internal-error';
      if (needsSignIn(e)) {
        this.events.emit('registration', { status: 'needs-sign-in', error: code });
        return;
      }
      this.renewFailures++;
      const delay = Math.min(RENEW_RETRY_MAX_MS, RENEW_RETRY_MS * 2 ** Math.min(this.renewFailures - 1, 10));
      this.events.emit('registration', { status: 'failed', error: code });
      if (this.renewTimer !== undefined) clearTimeout(this.renewTimer);
      this.renewTimer = setTimeout(() => void this.renew(), delay);
    }
  }

  /** Own devices changed: look the own handles up again (coalesced), which raises new-device events. */
  private refreshOwnDevices(): void {
    if (this.closed || !this.engine) return;
    if (this.ownRefresh) {
      this.ownRefresh.again = true;
      return;
    }
    const refresh = { running: Promise.resolve(), again: false };
    refresh.running = (async () => {
      do {
        refresh.again = false;
        try {
          await this.lookupOwnHandles();
        } catch (e) {
          this.log.warn('client.own-lookup-failed', { error: describe(e) });
        }
      } while (refresh.again && !this.closed);
      this.ownRefresh = undefined;
    })();
    this.ownRefresh = refresh;
  }

  private async lookupOwnHandles(): Promise<void> {
    await this.directory.lookup(this.primary(), this.handles, { force: true });
  }

  /** Logged first, so a listener that reads the log finds the event; a failed write is reported, not fatal. */
  private async logSecurityEvents(events: SecurityEvent[]): Promise<void> {
    try {
      await this.securityEvents.record(events);
    } catch (e) {
      if (this.closed) return;
      this.events.emit('error', { code: 'security-log-failed', message: describe(e) });
    }
    for (const e of events) this.events.emit('security', e);
  }

  // ---- outbox ---------------------------------------------------------------------------------------------------

  private async perform(item: OutboxItem): Promise<OutboxOutcome> {
    const p = item.payload as unknown as OutgoingPayload;
    const chat = typeof p?.chatId === 'string' ? await this.store.chats.get(p.chatId) : undefined;
    if (!chat) return { kind: 'fail', error: 'chat-deleted' };
    return sendOutgoing(p, {
      sender: this.requireEngine().sender,
      chat,
      senderUri: this.senderFor(chat),
      ownHandles: this.handles,
    });
  }

  private async outboxFinished(item: OutboxItem, outcome: 'sent' | 'failed'): Promise<void> {
    if (item.messageUuid === undefined) return;
    const m = await this.store.messages.get(item.messageUuid);
    if (m && (outcome === 'failed' || m.status === 'sent')) this.events.emit('status', { uuid: m.uuid, status: m.status, message: m });
  }

  // ---- helpers ------------------------------------------------------------------------------------------------

  private async signer(selfUri: string) {
    const account = this.account;
    const owner = this.state && Object.entries(this.state.handleOwners).find(([h]) => handleKey(h) === handleKey(selfUri))?.[1];
    const cert = owner !== undefined ? account?.idCertificates.find((c) => c.userId === owner) : undefined;
    const token = account?.push?.token;
    if (!account?.authKey || !cert || !token || !account.device) {
      throw new CeruleanError('not-own-handle', 'lookups can only be made from a registered handle of this device');
    }
    const bag = await this.network.bag.get();
    return {
      idCert: cert.certificate,
      authPrivateKey: account.authKey.privateKey,
      pushToken: token,
      queryUrl: bag.url('id-query'),
      userAgent: lookupUserAgent(account.device),
    };
  }

  private primary(): string {
    const primary = this.state?.primaryHandle;
    if (!primary) throw new CeruleanError('not-registered', 'register this device first');
    return primary;
  }

  /** The own handle a chat is with (a chat addressed to another own handle answers from it), else the primary. */
  private senderFor(chat: ChatRecord): string {
    const own = this.handles.find((h) => chat.participants.some((p) => isSameHandle(p, h)));
    return normalizeHandle(own ?? this.primary());
  }

  private async threadOrigin(uuid: string, part: number): Promise<string> {
    const m = await this.requireMessage(uuid);
    return formatThreadOrigin({ part, start: 0, length: partText(m, part).length, uuid: m.uuid });
  }

  private requireCourier(): CourierClient {
    if (!this.courier) throw new CeruleanError('not-connected', 'the courier connection has not been started');
    return this.courier;
  }

  private requireEngine(): Engine {
    if (!this.engine) throw new CeruleanError('not-registered', 'register this device first');
    return this.engine;
  }

  private async requireChat(chatId: string): Promise<ChatRecord> {
    const chat = await this.store.chats.get(chatId);
    if (!chat) throw new CeruleanError('not-found', 'no such chat');
    return chat;
  }

  /** The chat, if this account is (still) in it. */
  private async requireMember(chatId: string): Promise<ChatRecord> {
    const chat = await this.requireChat(chatId);
    if (!this.isMember(chat)) throw new CeruleanError('not-a-member', 'this account is no longer in this group');
    return chat;
  }

  private async requireGroup(chatId: string): Promise<ChatRecord> {
    this.checkOpen();
    const chat = await this.requireMember(chatId);
    if (!chat.isGroup) throw new CeruleanError('bad-input', 'only a group has members to change');
    return chat;
  }

  /** A group this account was removed from no longer lists any own handle; 1:1 chats always include it. */
  private isMember(chat: ChatRecord): boolean {
    return !chat.isGroup || chat.participants.some((p) => this.isOwn(p));
  }

  private isOwn(handle: string): boolean {
    return this.handles.some((h) => isSameHandle(h, handle));
  }

  /** Stores the new member list and queues the c:190 that tells the old and new members. */
  private async changeMembers(chat: ChatRecord, next: string[]): Promise<ChatRecord> {
    const updated = await this.store.chats.upsert({ id: chat.id, participants: next, isGroup: true, ...(chat.name !== undefined ? { name: chat.name } : {}) });
    const payload: OutgoingPayload = {
      kind: 'members',
      uuid: randomUuidString(),
      chatId: chat.id,
      participants: chat.participants,
      newParticipants: updated.participants,
      propertiesVersion: await nextPropertiesVersion(this.store, chat.id),
    };
    await this.outbox.enqueue({ kind: 'members', chatId: chat.id, payload });
    return updated;
  }

  private async requireMessage(uuid: string): Promise<MessageRecord> {
    const m = await this.store.messages.get(uuid);
    if (!m) throw new CeruleanError('not-found', 'no such message');
    return m;
  }

  private async requireOwnMessage(uuid: string): Promise<MessageRecord> {
    const m = await this.requireMessage(uuid);
    if (!m.fromMe) throw new CeruleanError('not-own-message', 'only own messages can be edited or unsent');
    return m;
  }

  private checkOpen(): void {
    if (this.signedOut) throw new CeruleanError('closed', 'this device was signed out');
    if (this.closed) throw new CeruleanError('client-closed', 'the client is closed');
  }
}

/** Handles as IDS URIs (phone numbers and e-mail addresses in any usual spelling); 'bad-input' for anything else. */
function memberHandles(handles: unknown): string[] {
  if (!Array.isArray(handles) || handles.length === 0) throw new CeruleanError('bad-input', 'name at least one handle');
  return handles.map((h) => {
    const uri = typeof h === 'string' ? contactHandle(h) : undefined;
    if (uri === undefined) throw new CeruleanError('bad-input', 'a handle is neither a phone number nor an e-mail address');
    return uri;
  });
}
