// Chats, messages and the outbox: the three groups that share transactions (a message updates its chat's last
// message and unread count; an outgoing message and its outbox item are stored together; completing an outbox
// item advances its message's status).
import type { XhtmlPart } from '../imessage/xhtml';
import type { TapbackReaction } from '../imessage/tapback';
import { randomUuidString } from '../imessage/uuid';
import type { BackendTx, StoreBackend } from './backend';
import { StoreError } from './errors';
import { toStorable } from './storable';
import type {
  ChatInit,
  ChatRecord,
  ChatsApi,
  EditRecord,
  MessageCursor,
  MessageRecord,
  MessageStatus,
  MessagesApi,
  NewMessage,
  NewOutboxItem,
  OutboxApi,
  OutboxItem,
  TapbackRecord,
} from './types';
import * as v from './validate';

const STATUSES: readonly MessageStatus[] = ['sending', 'sent', 'delivered', 'read', 'failed'];
// failed ranks above sending (a failure report beats the send it ends) and below sent (a late ack beats a timeout).
const STATUS_RANK: Record<MessageStatus, number> = { sending: 0, failed: 1, sent: 2, delivered: 3, read: 4 };
const STATUS_TIME = { sent: 'sentAt', delivered: 'deliveredAt', read: 'readAt' } as const;
const REACTIONS: readonly TapbackReaction[] = ['love', 'like', 'dislike', 'laugh', 'emphasize', 'question', 'emoji', 'sticker'];
const PREVIEW_LENGTH = 200;
const MAX_PAGE = 10_000;
const MARK_READ_PAGE = 100;

// --- input checks -------------------------------------------------------------------------------------------------

function checkPart(x: unknown, what: string): XhtmlPart {
  const r = v.record(x, what);
  if (r.kind === 'text') return { kind: 'text', part: v.count(r.part, `${what}.part`), text: v.text(r.text, `${what}.text`) };
  if (r.kind === 'raw') {
    const part = v.optional(r.part, (p) => v.count(p, `${what}.part`));
    return { kind: 'raw', ...(part !== undefined && { part }), xml: v.text(r.xml, `${what}.xml`) };
  }
  throw new StoreError('bad-input', `${what}.kind must be text or raw`);
}

function checkNewMessage(x: unknown): NewMessage {
  const r = v.record(x, 'message');
  const m: NewMessage = {
    uuid: v.uuid(r.uuid, 'message.uuid'),
    chatId: v.id(r.chatId, 'message.chatId'),
    sender: v.handle(r.sender, 'message.sender'),
    fromMe: v.bool(r.fromMe, 'message.fromMe'),
    time: v.time(r.time, 'message.time'),
  };
  const text = v.optional(r.text, (t) => v.text(t, 'message.text'));
  const parts = v.optional(r.parts, (p) => v.array(p, 'message.parts').map((part, i) => checkPart(part, `message.parts[${i}]`)));
  const replyTo = v.optional(r.replyTo, (t) => v.id(t, 'message.replyTo'));
  const status = v.optional(r.status, (s) => v.oneOf(s, 'message.status', STATUSES));
  return {
    ...m,
    ...(text !== undefined && { text }),
    ...(parts !== undefined && { parts }),
    ...(replyTo !== undefined && { replyTo }),
    ...(status !== undefined && { status }),
  };
}

function checkChatInit(x: unknown): ChatInit & { participants: string[] } {
  const r = v.record(x, 'chat');
  const participants = [...new Set(v.handles(r.participants, 'chat.participants'))].sort();
  const name = v.optional(r.name, (n) => v.text(n, 'chat.name'));
  const isGroup = v.optional(r.isGroup, (g) => v.bool(g, 'chat.isGroup'));
  return {
    id: v.id(r.id, 'chat.id'),
    participants,
    ...(name !== undefined && { name }),
    ...(isGroup !== undefined && { isGroup }),
  };
}

function checkCursor(x: unknown, what: string): MessageCursor {
  const r = v.record(x, what);
  return { time: v.time(r.time, `${what}.time`), uuid: v.uuid(r.uuid, `${what}.uuid`) };
}

function checkLimit(x: unknown, fallback: number): number {
  if (x === undefined) return fallback;
  const n = v.count(x, 'limit');
  if (n === 0 || n > MAX_PAGE) throw new StoreError('bad-input', `limit must be between 1 and ${MAX_PAGE}`);
  return n;
}

function checkNewOutboxItem(x: unknown, at: number): OutboxItem {
  const r = v.record(x, 'outbox item');
  const messageUuid = v.optional(r.messageUuid, (u) => v.uuid(u, 'outbox item.messageUuid'));
  const chatId = v.optional(r.chatId, (c) => v.id(c, 'outbox item.chatId'));
  return {
    id: v.optional(r.id, (i) => v.id(i, 'outbox item.id')) ?? randomUuidString(),
    kind: v.id(r.kind, 'outbox item.kind'),
    ...(messageUuid !== undefined && { messageUuid }),
    ...(chatId !== undefined && { chatId }),
    payload: toStorable(r.payload, 'outbox item.payload'),
    attempts: 0,
    nextAttemptAt: v.optional(r.nextAttemptAt, (t) => v.time(t, 'outbox item.nextAttemptAt')) ?? at,
    createdAt: at,
  };
}

// --- record helpers -------------------------------------------------------------------------------------------------

function previewOf(m: NewMessage): string {
  const text = m.text ?? (m.parts ?? []).map((p) => (p.kind === 'text' ? p.text : '')).join('');
  return text.slice(0, PREVIEW_LENGTH);
}

function newChat(init: ChatInit & { participants: string[] }, at: number): ChatRecord {
  return {
    id: init.id,
    participants: init.participants,
    ...(init.name !== undefined && { name: init.name }),
    isGroup: init.isGroup ?? false,
    unreadCount: 0,
    createdAt: at,
    updatedAt: at,
  };
}

function isAfter(a: MessageCursor, b: MessageCursor): boolean {
  return a.time > b.time || (a.time === b.time && a.uuid > b.uuid);
}

/** The chat after a message joined it: last message and updatedAt only move forward; unread counts incoming. */
function withMessage(chat: ChatRecord, m: MessageRecord): ChatRecord {
  const next: ChatRecord = { ...chat, updatedAt: Math.max(chat.updatedAt, m.time) };
  if (!chat.lastMessage || isAfter(m, chat.lastMessage)) {
    next.lastMessage = { uuid: m.uuid, sender: m.sender, time: m.time, preview: previewOf(m) };
  }
  if (!m.fromMe) next.unreadCount = chat.unreadCount + 1;
  return next;
}

function newRecord(m: NewMessage, status: MessageStatus): MessageRecord {
  return { ...m, status, tapbacks: [], edits: [], unsent: false, unsentParts: [] };
}

/** The message with `status` if that moves it forward, else unchanged (null). */
function advanced(m: MessageRecord, status: MessageStatus, at: number, allowRetry: boolean): MessageRecord | null {
  const retry = allowRetry && m.status === 'failed' && status === 'sending';
  if (!retry && STATUS_RANK[status] <= STATUS_RANK[m.status]) return null;
  const next: MessageRecord = { ...m, status };
  if (status !== 'sending' && status !== 'failed') next[STATUS_TIME[status]] = at;
  return next;
}

async function getChat(tx: BackendTx, id: string): Promise<ChatRecord> {
  const chat = await tx.get('chats', id);
  if (!chat) throw new StoreError('not-found', 'no such chat');
  return chat;
}

async function getMessage(tx: BackendTx, uuid: string): Promise<MessageRecord> {
  const m = await tx.get('messages', uuid);
  if (!m) throw new StoreError('not-found', 'no such message');
  return m;
}

/** The chat a new message goes to: stored, or created from `init`. */
async function chatFor(tx: BackendTx, m: NewMessage, init: (ChatInit & { participants: string[] }) | undefined): Promise<ChatRecord> {
  if (init && init.id !== m.chatId) throw new StoreError('bad-input', 'chat.id differs from message.chatId');
  const chat = await tx.get('chats', m.chatId);
  if (chat) return chat;
  if (!init) throw new StoreError('not-found', 'no such chat (and no chat to create)');
  return newChat(init, m.time);
}

function chatRange(chatId: string, after?: MessageCursor, before?: MessageCursor) {
  return {
    lower: after ? [chatId, after.time, after.uuid] : [chatId],
    lowerOpen: after !== undefined,
    upper: before ? [chatId, before.time, before.uuid] : [chatId, Infinity],
    upperOpen: before !== undefined,
  };
}

async function newestInChat(tx: BackendTx, chatId: string): Promise<MessageRecord | undefined> {
  const [m] = await tx.query('messages', 'by-chat-time', { range: chatRange(chatId), reverse: true, limit: 1 });
  return m;
}

// --- the groups -----------------------------------------------------------------------------------------------------

export function chatsApi(db: StoreBackend): ChatsApi {
  return {
    async upsert(chat, at = Date.now()) {
      const init = checkChatInit(chat);
      const when = v.time(at, 'at');
      return db.transact(['chats'], 'readwrite', async (tx) => {
        const existing = await tx.get('chats', init.id);
        const next: ChatRecord = existing
          ? { ...existing, participants: init.participants, ...(init.name !== undefined && { name: init.name }) }
          : newChat(init, when);
        await tx.put('chats', (next));
        return next;
      });
    },

    async get(id) {
      const key = v.id(id, 'chat id');
      return db.transact(['chats'], 'readonly', (tx) => tx.get('chats', key));
    },

    async list(options = {}) {
      const limit = checkLimit(v.record(options, 'options').limit, MAX_PAGE);
      return db.transact(['chats'], 'readonly', (tx) => tx.query('chats', 'by-updated', { reverse: true, limit }));
    },

    async markRead(id, at = Date.now()) {
      const key = v.id(id, 'chat id');
      const when = v.time(at, 'at');
      return db.transact(['chats', 'messages'], 'readwrite', async (tx) => {
        const chat = await getChat(tx, key);
        const marked: MessageRecord[] = [];
        // Unread messages are the newest incoming ones, but a late arrival can be older than some read ones:
        // walk back until as many as the counter says have been found.
        let before: MessageCursor | undefined;
        while (marked.length < chat.unreadCount) {
          const page = await tx.query('messages', 'by-chat-time', {
            range: chatRange(key, undefined, before),
            reverse: true,
            limit: MARK_READ_PAGE,
          });
          for (const m of page) {
            if (m.fromMe || m.status === 'read') continue;
            const next = advanced(m, 'read', when, false);
            if (next) await tx.put('messages', (next));
            marked.push(m);
            if (marked.length === chat.unreadCount) break;
          }
          if (page.length < MARK_READ_PAGE) break;
          before = page[page.length - 1];
        }
        if (chat.unreadCount !== 0) await tx.put('chats', ({ ...chat, unreadCount: 0 }));
        return marked.reverse().map((m) => m.uuid);
      });
    },

    async totalUnread() {
      return db.transact(['chats'], 'readonly', async (tx) =>
        (await tx.all('chats')).reduce((n, c) => n + c.unreadCount, 0),
      );
    },

    async delete(id) {
      const key = v.id(id, 'chat id');
      return db.transact(['chats', 'messages'], 'readwrite', async (tx) => {
        await getChat(tx, key);
        for (const m of await tx.query('messages', 'by-chat-time', { range: chatRange(key) })) {
          await tx.delete('messages', m.uuid);
        }
        await tx.delete('chats', key);
      });
    },
  };
}

export function messagesApi(db: StoreBackend): MessagesApi {
  /** Read-modify-write of one stored message. */
  function update(uuid: string, change: (m: MessageRecord) => MessageRecord | null): Promise<MessageRecord> {
    return db.transact(['messages'], 'readwrite', async (tx) => {
      const m = await getMessage(tx, uuid);
      const next = change(m);
      if (!next) return m;
      await tx.put('messages', (next));
      return next;
    });
  }

  return {
    async has(uuid) {
      const key = v.uuid(uuid, 'uuid');
      return db.transact(['messages'], 'readonly', async (tx) => (await tx.get('messages', key)) !== undefined);
    },

    async get(uuid) {
      const key = v.uuid(uuid, 'uuid');
      return db.transact(['messages'], 'readonly', (tx) => tx.get('messages', key));
    },

    async list(chatId, options = {}) {
      const key = v.id(chatId, 'chat id');
      const o = v.record(options, 'options');
      const limit = checkLimit(o.limit, 50);
      const before = v.optional(o.before, (c) => checkCursor(c, 'before'));
      const after = v.optional(o.after, (c) => checkCursor(c, 'after'));
      return db.transact(['messages'], 'readonly', async (tx) => {
        const rows = await tx.query('messages', 'by-chat-time', {
          range: chatRange(key, after, before),
          reverse: after === undefined,
          limit,
        });
        return after === undefined ? rows.reverse() : rows;
      });
    },

    async saveIncoming(message, chat) {
      const m = checkNewMessage(message);
      const init = v.optional(chat, checkChatInit);
      const status = m.status ?? (m.fromMe ? 'sent' : 'delivered');
      return db.transact(['chats', 'messages'], 'readwrite', async (tx) => {
        const existing = await tx.get('messages', m.uuid);
        if (existing) {
          const next = advanced(existing, status, m.time, false);
          if (next) await tx.put('messages', (next));
          return { saved: false, message: next ?? existing };
        }
        const target = await chatFor(tx, m, init);
        const record = newRecord(m, status);
        await tx.put('messages', (record));
        await tx.put('chats', (withMessage(target, record)));
        return { saved: true, message: record };
      });
    },

    async saveOutgoing(message, options = {}) {
      const m = checkNewMessage(message);
      if (!m.fromMe) throw new StoreError('bad-input', 'an outgoing message must have fromMe: true');
      const o = v.record(options, 'options');
      const init = v.optional(o.chat, checkChatInit);
      const at = v.optional(o.at, (t) => v.time(t, 'at')) ?? Date.now();
      const item = v.optional(o.outbox, (x) => checkNewOutboxItem(x, at));
      return db.transact(['chats', 'messages', 'outbox'], 'readwrite', async (tx) => {
        if (await tx.get('messages', m.uuid)) throw new StoreError('duplicate', 'a message with this UUID is stored');
        const target = await chatFor(tx, m, init);
        const record = newRecord(m, m.status ?? 'sending');
        await tx.put('messages', (record));
        await tx.put('chats', (withMessage(target, record)));
        if (!item) return { message: record };
        if (await tx.get('outbox', item.id)) throw new StoreError('duplicate', 'an outbox item with this id exists');
        const outboxItem: OutboxItem = { messageUuid: m.uuid, chatId: m.chatId, ...item };
        await tx.put('outbox', (outboxItem));
        return { message: record, outboxItem };
      });
    },

    async updateStatus(uuid, status, at = Date.now()) {
      const key = v.uuid(uuid, 'uuid');
      const s = v.oneOf(status, 'status', STATUSES);
      const when = v.time(at, 'at');
      return update(key, (m) => advanced(m, s, when, true));
    },

    async addTapback(uuid, tapback) {
      const key = v.uuid(uuid, 'uuid');
      const r = v.record(tapback, 'tapback');
      const part = v.optional(r.part, (p) => v.count(p, 'tapback.part'));
      const emoji = v.optional(r.emoji, (e) => v.text(e, 'tapback.emoji'));
      const t: TapbackRecord = {
        sender: v.handle(r.sender, 'tapback.sender'),
        reaction: v.oneOf(r.reaction, 'tapback.reaction', REACTIONS),
        ...(part !== undefined && { part }),
        ...(emoji !== undefined && { emoji }),
        time: v.time(r.time, 'tapback.time'),
      };
      const remove = v.optional(r.remove, (x) => v.bool(x, 'tapback.remove')) ?? false;
      return update(key, (m) => {
        const same = (x: TapbackRecord) => x.sender === t.sender && x.part === t.part;
        const current = m.tapbacks.find(same);
        // Reactions can arrive out of order (several own devices, offline queues): the newest one wins.
        if (current && current.time > t.time) return null;
        const others = m.tapbacks.filter((x) => !same(x));
        return { ...m, tapbacks: remove ? others : [...others, t] };
      });
    },

    async applyEdit(uuid, edit) {
      const key = v.uuid(uuid, 'uuid');
      const r = v.record(edit, 'edit');
      const e: EditRecord = { part: v.count(r.part, 'edit.part'), text: v.text(r.text, 'edit.text'), time: v.time(r.time, 'edit.time') };
      return update(key, (m) => {
        // The same edit arrives once per own device; keep one copy, in time order.
        if (m.edits.some((x) => x.part === e.part && x.time === e.time && x.text === e.text)) return null;
        const edits = [...m.edits, e].sort((a, b) => a.time - b.time);
        return { ...m, edits };
      });
    },

    async unsend(uuid, options = {}) {
      const key = v.uuid(uuid, 'uuid');
      const part = v.optional(v.record(options, 'options').part, (p) => v.count(p, 'part'));
      return update(key, (m) => {
        if (part === undefined) return m.unsent ? null : { ...m, unsent: true };
        if (m.unsentParts.includes(part)) return null;
        return { ...m, unsentParts: [...m.unsentParts, part].sort((a, b) => a - b) };
      });
    },

    async delete(uuid) {
      const key = v.uuid(uuid, 'uuid');
      return db.transact(['chats', 'messages'], 'readwrite', async (tx) => {
        const m = await getMessage(tx, key);
        await tx.delete('messages', key);
        const chat = await tx.get('chats', m.chatId);
        if (!chat) return;
        const next: ChatRecord = { ...chat };
        if (!m.fromMe && m.status !== 'read' && chat.unreadCount > 0) next.unreadCount = chat.unreadCount - 1;
        if (chat.lastMessage?.uuid === key) {
          const newest = await newestInChat(tx, m.chatId);
          if (newest) next.lastMessage = { uuid: newest.uuid, sender: newest.sender, time: newest.time, preview: previewOf(newest) };
          else delete next.lastMessage;
        }
        await tx.put('chats', (next));
      });
    },
  };
}

export function outboxApi(db: StoreBackend): OutboxApi {
  async function getItem(tx: BackendTx, id: string): Promise<OutboxItem> {
    const item = await tx.get('outbox', id);
    if (!item) throw new StoreError('not-found', 'no such outbox item');
    return item;
  }

  /** Removes an item and moves its message's status (if it has one) in the same transaction. */
  function finish(id: string, status: MessageStatus, at: number, error?: string): Promise<void> {
    return db.transact(['outbox', 'messages'], 'readwrite', async (tx) => {
      const item = await getItem(tx, id);
      await tx.delete('outbox', id);
      if (item.messageUuid === undefined) return;
      const m = await tx.get('messages', item.messageUuid);
      const next = m && advanced(m, status, at, false);
      if (next) await tx.put('messages', (error === undefined ? next : { ...next, error }));
    });
  }

  return {
    async enqueue(item, at = Date.now()) {
      const entry = checkNewOutboxItem(item, v.time(at, 'at'));
      return db.transact(['outbox'], 'readwrite', async (tx) => {
        if (await tx.get('outbox', entry.id)) throw new StoreError('duplicate', 'an outbox item with this id exists');
        await tx.put('outbox', (entry));
        return entry;
      });
    },

    async get(id) {
      const key = v.id(id, 'outbox id');
      return db.transact(['outbox'], 'readonly', (tx) => tx.get('outbox', key));
    },

    async list() {
      return db.transact(['outbox'], 'readonly', (tx) => tx.query('outbox', 'by-due'));
    },

    async takeDue(now, options = {}) {
      const when = v.time(now, 'now');
      const o = v.record(options, 'options');
      const limit = checkLimit(o.limit, 50);
      const lease = v.optional(o.leaseMs, (l) => v.count(l, 'leaseMs')) ?? 30_000;
      return db.transact(['outbox'], 'readwrite', async (tx) => {
        const due = await tx.query('outbox', 'by-due', { range: { upper: when }, limit });
        const taken = due.map((item) => ({ ...item, attempts: item.attempts + 1, nextAttemptAt: when + lease }));
        for (const item of taken) await tx.put('outbox', (item));
        return taken;
      });
    },

    async nextDueAt() {
      return db.transact(['outbox'], 'readonly', async (tx) => {
        const [first] = await tx.query('outbox', 'by-due', { limit: 1 });
        return first?.nextAttemptAt;
      });
    },

    async retry(id, nextAttemptAt, error) {
      const key = v.id(id, 'outbox id');
      const when = v.time(nextAttemptAt, 'nextAttemptAt');
      const lastError = v.optional(error, (e) => v.text(e, 'error'));
      return db.transact(['outbox'], 'readwrite', async (tx) => {
        const item = await getItem(tx, key);
        const next: OutboxItem = { ...item, nextAttemptAt: when, ...(lastError !== undefined && { lastError }) };
        await tx.put('outbox', (next));
        return next;
      });
    },

    async complete(id, at = Date.now()) {
      return finish(v.id(id, 'outbox id'), 'sent', v.time(at, 'at'));
    },

    async fail(id, error) {
      return finish(v.id(id, 'outbox id'), 'failed', Date.now(), v.optional(error, (e) => v.text(e, 'error')));
    },
  };
}
