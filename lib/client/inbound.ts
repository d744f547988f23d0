// What each received event does to the store (and which UI event it raises afterwards): messages and sent copies
// join their chat, receipts move own messages forward, tapbacks/edits/unsends change the message they name,
// group changes update the chat, control notices trigger own-device lookups or a new registration.
// A group this account was removed from keeps its history but takes no new messages: its member list no longer
// has an own handle, which is also how the UI tells that the account is out.
// Peers are not trusted to name anything they are not part of: a group message from a non-member, an edit of
// someone else's message, a tapback in a chat the sender is not in, a receipt for a message not sent to the
// receipt's sender — all are dropped. Data the store refuses (bad-input) or that names nothing (not-found) is
// dropped with a log line; any other store failure propagates so the notification is processed again later.
import type { EditPayload, UnsendPayload } from '../imessage/edit';
import { editParts } from '../imessage/edit';
import type { GroupChange } from '../imessage/group';
import { messageParts, type TextMessage } from '../imessage/message';
import { isOwnHandle, type EngineLog, type LocalDevice } from '../imessage/ports';
import type { InboundEvent, InboundMeta } from '../imessage/receiver';
import type { Tapback } from '../imessage/tapback';
import type { TypingPayload } from '../imessage/typing';
import type { XhtmlPart } from '../imessage/xhtml';
import { StoreError } from '../store/errors';
import type { ChatRecord, ClientStore, MessageRecord, MessageStatus, NewMessage } from '../store/types';
import { chatFor, isSameHandle, normalizeHandle, participantSet } from './chats';
import type { ClientEmitter } from './events';
import { notePropertiesVersion } from './outgoing';

export interface InboundDeps {
  store: ClientStore;
  emitter: ClientEmitter;
  device: LocalDevice;
  log: EngineLog;
  now(): number;
  /** The account's devices changed (c:34, or c:130 from an own handle): look own handles up again. */
  ownDevicesChanged(): void;
  /** IDS asked for a new registration (c:32) or the handle set changed (c:66). */
  reregister(): void;
}

/** How many earlier own messages one read receipt may mark read. */
const READ_BACKFILL = 200;

export async function applyInbound(d: InboundDeps, event: InboundEvent): Promise<void> {
  try {
    await apply(d, event);
  } catch (e) {
    if (e instanceof StoreError && (e.code === 'bad-input' || e.code === 'not-found')) {
      d.log.warn('client.inbound-dropped', { kind: event.kind, code: e.code });
      return;
    }
    throw e;
  }
}

async function apply(d: InboundDeps, e: InboundEvent): Promise<void> {
  switch (e.kind) {
    case 'message':
      return message(d, e.meta, e.message);
    case 'tapback':
      return tapback(d, e.meta, e.tapback);
    case 'edit':
      return edit(d, e.meta, e.edit);
    case 'unsend':
      return unsend(d, e.meta, e.unsend);
    case 'typing':
      return typing(d, e.meta, e.typing, e.payload);
    case 'delivery-receipt':
      return receipt(d, e.meta, 'delivered');
    case 'read-receipt':
      return e.meta.fromSelf ? readElsewhere(d, e.meta) : receipt(d, e.meta, 'read');
    case 'group-change':
      return groupChange(d, e.meta, e.change);
    case 'peer-cache-invalidate':
      if (e.meta.fromSelf) d.ownDevicesChanged();
      return;
    case 'devices-changed':
      d.ownDevicesChanged();
      return;
    case 'handles-changed':
    case 'reregister':
      d.reregister();
      return;
    case 'delivery-failure':
      d.log.warn('client.peer-could-not-process', { U: e.failedUuid, reason: e.reason });
      return;
    case 'undecryptable':
    case 'unsupported-encryption':
    case 'malformed':
    case 'other':
      d.log.info('client.inbound-ignored', { kind: e.kind, c: 'meta' in e ? e.meta?.command : undefined });
      return;
  }
}

function timeOf(meta: InboundMeta, d: InboundDeps): number {
  const ms = meta.timestampNs / 1_000_000n;
  return ms > 0n && ms <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(ms) : d.now();
}

/** The conversation's members: `p` with the sender in it, and this account in it (as the addressed handle). */
function members(d: InboundDeps, meta: InboundMeta, p: readonly string[]): string[] {
  const list = [...p, meta.senderUri];
  if (!list.some((h) => isOwnHandle(d.device, h))) list.push(meta.targetUri);
  return participantSet(list);
}

/** A group chat that exists and does not have the sender as a member is closed to it. */
async function admits(d: InboundDeps, chatId: string, sender: string): Promise<ChatRecord | undefined | false> {
  const chat = await d.store.chats.get(chatId);
  if (chat && !chat.participants.some((h) => isSameHandle(h, sender))) {
    d.log.warn('client.not-a-member', { chat: chatId.slice(0, 16) });
    return false;
  }
  return chat;
}

function partsOf(m: TextMessage, d: InboundDeps): XhtmlPart[] | undefined {
  if (m.xhtml === undefined) return undefined;
  try {
    return messageParts(m);
  } catch {
    d.log.warn('client.bad-xhtml', {});
    return undefined;
  }
}

/** This account is in the chat (always, for a 1:1 chat). */
function isMember(d: InboundDeps, chat: ChatRecord): boolean {
  return !chat.isGroup || chat.participants.some((h) => isOwnHandle(d.device, h));
}

async function message(d: InboundDeps, meta: InboundMeta, m: TextMessage): Promise<void> {
  const init = chatFor(members(d, meta, m.participants), m.groupId, m.groupName);
  const existing = await admits(d, init.id, meta.senderUri);
  if (existing === false) return;
  if (existing && !isMember(d, existing)) {
    d.log.info('client.not-in-group', { chat: init.id.slice(0, 16) });
    return;
  }
  const parts = partsOf(m, d);
  const record: NewMessage = {
    uuid: meta.uuid,
    chatId: init.id,
    sender: normalizeHandle(meta.senderUri),
    fromMe: meta.fromSelf,
    time: timeOf(meta, d),
    ...(m.text !== undefined ? { text: m.text } : {}),
    ...(parts ? { parts } : {}),
    ...(m.threadOrigin !== undefined ? { replyTo: m.threadOrigin } : {}),
  };
  const saved = await d.store.messages.saveIncoming(record, init);
  if (!saved.saved) return;
  const chat = await d.store.chats.get(init.id);
  if (chat) d.emitter.emit('message', { message: saved.message, chat });
  if (!meta.fromSelf) d.emitter.emit('typing', { chatId: init.id, handle: record.sender, typing: false });
}

/** The message `uuid` if the sender is in its chat. */
async function target(d: InboundDeps, uuid: string, sender: string): Promise<MessageRecord | undefined> {
  const m = await d.store.messages.get(uuid);
  if (!m) return undefined;
  return (await admits(d, m.chatId, sender)) === false ? undefined : m;
}

async function tapback(d: InboundDeps, meta: InboundMeta, t: Tapback): Promise<void> {
  if (!(await target(d, t.target.uuid, meta.senderUri))) return;
  const updated = await d.store.messages.addTapback(t.target.uuid, {
    sender: normalizeHandle(meta.senderUri),
    reaction: t.reaction,
    ...(t.target.kind === 'part' ? { part: t.target.part } : {}),
    ...(t.emoji !== undefined ? { emoji: t.emoji } : {}),
    time: timeOf(meta, d),
    remove: t.remove,
  });
  d.emitter.emit('update', { message: updated });
}

/** Only the author changes a message: the same handle, or another device of this account for own messages. */
function isAuthor(meta: InboundMeta, m: MessageRecord): boolean {
  return m.fromMe ? meta.fromSelf : isSameHandle(meta.senderUri, m.sender);
}

async function edit(d: InboundDeps, meta: InboundMeta, e: EditPayload): Promise<void> {
  const m = await d.store.messages.get(e.targetUuid);
  if (!m || !isAuthor(meta, m)) return;
  let text = e.newText;
  if (text === undefined) {
    try {
      text = editParts(e).map((p) => (p.kind === 'text' ? p.text : '')).join('');
    } catch {
      return;
    }
  }
  d.emitter.emit('update', { message: await d.store.messages.applyEdit(m.uuid, { part: e.part, text, time: timeOf(meta, d) }) });
}

async function unsend(d: InboundDeps, meta: InboundMeta, u: UnsendPayload): Promise<void> {
  const m = await d.store.messages.get(u.targetUuid);
  if (!m || !isAuthor(meta, m)) return;
  // A message of one part is withdrawn as a whole.
  const whole = (m.parts?.length ?? 1) <= 1;
  d.emitter.emit('update', { message: await d.store.messages.unsend(m.uuid, whole ? {} : { part: u.part }) });
}

async function typing(d: InboundDeps, meta: InboundMeta, isTyping: boolean, payload: TypingPayload | undefined): Promise<void> {
  if (meta.fromSelf) return;
  const chat = chatFor(members(d, meta, payload?.participants ?? []), payload?.groupId);
  d.emitter.emit('typing', { chatId: chat.id, handle: normalizeHandle(meta.senderUri), typing: isTyping });
}

async function advance(d: InboundDeps, m: MessageRecord, status: MessageStatus, at: number): Promise<void> {
  const updated = await d.store.messages.updateStatus(m.uuid, status, at);
  if (updated.status !== m.status) d.emitter.emit('status', { uuid: updated.uuid, status: updated.status, message: updated });
}

/** A peer's c:101 / c:102 for an own message; a read receipt also covers the own messages before it. */
async function receipt(d: InboundDeps, meta: InboundMeta, status: 'delivered' | 'read'): Promise<void> {
  const m = await target(d, meta.uuid, meta.senderUri);
  if (!m?.fromMe) return;
  const at = timeOf(meta, d);
  await advance(d, m, status, at);
  if (status !== 'read') return;
  for (const earlier of await d.store.messages.list(m.chatId, { before: m, limit: READ_BACKFILL })) {
    if (earlier.fromMe && (earlier.status === 'sent' || earlier.status === 'delivered')) await advance(d, earlier, 'read', at);
  }
}

/** Another own device read the chat up to `U`: mirror it here. */
async function readElsewhere(d: InboundDeps, meta: InboundMeta): Promise<void> {
  const m = await d.store.messages.get(meta.uuid);
  if (!m) return;
  const chat = await d.store.chats.get(m.chatId);
  if (!chat || chat.unreadCount === 0) return;
  await d.store.chats.markRead(m.chatId, timeOf(meta, d));
  const after = await d.store.chats.get(m.chatId);
  if (after) d.emitter.emit('chat', { chat: after });
}

async function groupChange(d: InboundDeps, meta: InboundMeta, change: GroupChange): Promise<void> {
  const init = chatFor(members(d, meta, change.participants), change.groupId);
  if (!init.isGroup) return;
  const existing = await admits(d, init.id, meta.senderUri);
  if (existing === false) return;
  let chat: ChatRecord;
  switch (change.kind) {
    case 'rename':
      chat = await d.store.chats.upsert({ ...init, participants: existing?.participants ?? init.participants, name: change.newName }, timeOf(meta, d));
      break;
    case 'members': {
      const newMembers = participantSet(change.newParticipants);
      // A list that leaves no group, or a group this account is not and was not in, is nothing to keep.
      if (newMembers.length < 2 || (!existing && !newMembers.some((h) => isOwnHandle(d.device, h)))) {
        d.log.warn('client.members-change-ignored', { members: newMembers.length });
        return;
      }
      const name = existing?.name ?? change.groupName;
      chat = await d.store.chats.upsert(
        { id: init.id, participants: newMembers, isGroup: true, ...(name !== undefined ? { name } : {}) },
        timeOf(meta, d),
      );
      if (change.propertiesVersion !== undefined) await notePropertiesVersion(d.store, init.id, change.propertiesVersion);
      break;
    }
    default:
      d.log.info('client.group-avatar-ignored', {});
      return;
  }
  d.emitter.emit('chat', { chat });
}
