// Encrypted backups of what a person would miss on a new device: chats, messages (with their reactions, edits,
// unsends and status), contacts and the security log. Identity keys are non-extractable and stay behind; restoring
// means registering the new browser as a new device and importing this file there.
//
// File: header ‖ AES-256-GCM(gzip(binary plist body)), the header being the GCM additional data, so none of it can
// be changed without the passphrase:
//   'CRLNBAK1' (8) | version u8 = 1 | PBKDF2 iterations u32be | salt (16) | iv (12)
// The key is PBKDF2-SHA256(passphrase NFC, salt, iterations). The iteration count is read from the file, so it is
// bounded before anything is derived: a file cannot make an import spin for minutes.
// Import checks the whole body before writing anything, adds only what the store does not have (messages by UUID,
// chats by id, contacts by id and handle, log entries by id), and leaves everything already there as it is.
import { gunzip, gzip } from '../codec/gzip';
import { concat, exact, readU32be, u32be, utf8 } from '../codec/bytes';
import type { PlistDict, PlistValue } from '../codec/plist';
import { decodeBinaryPlist, encodeBinaryPlist } from '../codec/plist-binary';
import { randomBytes, subtle } from '../crypto/subtle';
import { CeruleanError, DecodeError, EncodeError } from '../errors';
import type { TapbackReaction } from '../imessage/tapback';
import type { XhtmlPart } from '../imessage/xhtml';
import type { ChatRecord, ClientStore, EditRecord, MessageRecord, MessageStatus, TapbackRecord } from '../store/types';
import * as v from '../store/validate';
import { checkContact, ContactBook, type Contact } from './contacts';
import { checkSecurityLogEntry, SecurityLog, type SecurityLogEntry } from './security-log';

/** 'bad-passphrase' (the file does not decrypt with it) or 'bad-backup' (not a backup, or not one this code reads). */
export class BackupError extends CeruleanError {}

export interface BackupOptions {
  /** PBKDF2 iterations, between MIN_ITERATIONS and MAX_ITERATIONS. */
  iterations?: number;
}

export interface ImportCounts {
  chats: number;
  messages: number;
  contacts: number;
}

export const BACKUP_MAGIC = 'CRLNBAK1';
export const BACKUP_VERSION = 1;
/** OWASP's current figure for PBKDF2-SHA256. */
export const DEFAULT_ITERATIONS = 600_000;
export const MIN_ITERATIONS = 310_000;
/** A few seconds on a phone. */
export const MAX_ITERATIONS = 5_000_000;
/** Both the file and its inflated body. */
export const MAX_BACKUP_BYTES = 256 * 1024 * 1024;

const SALT_LENGTH = 16;
const IV_LENGTH = 12;
const TAG_LENGTH = 16;
const HEADER_LENGTH = BACKUP_MAGIC.length + 1 + 4 + SALT_LENGTH + IV_LENGTH;
const BODY_FORMAT = 'cerulean-backup';
const PAGE = 10_000;
const PLIST_LIMITS = { maxBytes: MAX_BACKUP_BYTES, maxDepth: 16, maxObjects: 8 * 1024 * 1024 };
const STATUSES: readonly MessageStatus[] = ['sending', 'sent', 'delivered', 'read', 'failed'];
const REACTIONS: readonly TapbackReaction[] = ['love', 'like', 'dislike', 'laugh', 'emphasize', 'question', 'emoji', 'sticker'];
const RANK: Record<MessageStatus, number> = { sending: 0, failed: 1, sent: 2, delivered: 3, read: 4 };
const STAGE_TIME = { sent: 'sentAt', delivered: 'deliveredAt', read: 'readAt' } as const;
type Stage = keyof typeof STAGE_TIME;
const STAGES: readonly Stage[] = ['sent', 'delivered', 'read'];

interface Body {
  chats: ChatRecord[];
  messages: MessageRecord[];
  contacts: Contact[];
  securityLog: SecurityLogEntry[];
}

// ---- export ------------------------------------------------------------------------------------------------------

export async function exportBackup(store: ClientStore, passphrase: string, options: BackupOptions = {}): Promise<Uint8Array> {
  checkPassphrase(passphrase);
  const iterations = options.iterations ?? DEFAULT_ITERATIONS;
  if (!Number.isSafeInteger(iterations) || iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
    throw new CeruleanError('bad-input', `iterations must be between ${MIN_ITERATIONS} and ${MAX_ITERATIONS}`);
  }
  const chats = await store.chats.list({ limit: PAGE });
  const messages: MessageRecord[] = [];
  for (const chat of chats) messages.push(...(await allMessages(store, chat.id)));
  const body: PlistDict = {
    format: BODY_FORMAT,
    version: BACKUP_VERSION,
    chats: chats.map(toPlist),
    messages: messages.map(toPlist),
    contacts: (await new ContactBook(store).list()).map(toPlist),
    securityLog: (await new SecurityLog(store).list()).map(toPlist),
  };
  const plain = await gzip(encodeBinaryPlist(body));
  const salt = randomBytes(SALT_LENGTH);
  const iv = randomBytes(IV_LENGTH);
  const header = concat(utf8(BACKUP_MAGIC), new Uint8Array([BACKUP_VERSION]), u32be(iterations), salt, iv);
  const key = await deriveKey(passphrase, salt, iterations);
  const sealed = await subtle().encrypt({ name: 'AES-GCM', iv, additionalData: exact(header), tagLength: 128 }, key, exact(plain));
  return concat(header, new Uint8Array(sealed));
}

/** A chat's messages, oldest first, paged backwards from the newest. */
async function allMessages(store: ClientStore, chatId: string): Promise<MessageRecord[]> {
  const pages: MessageRecord[][] = [];
  let before: MessageRecord | undefined;
  for (;;) {
    const page = await store.messages.list(chatId, { limit: PAGE, ...(before && { before }) });
    pages.unshift(page);
    if (page.length < PAGE) break;
    before = page[0];
  }
  return pages.flat();
}

/** Store records as plist values: the same shape, with absent fields left out (a plist has no null). */
function toPlist(value: unknown): PlistValue {
  if (typeof value === 'string' || typeof value === 'boolean' || value instanceof Uint8Array) return value;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (Array.isArray(value)) return value.map(toPlist);
  if (typeof value === 'object' && value !== null) {
    const out: PlistDict = {};
    for (const [k, x] of Object.entries(value)) if (x !== undefined) out[k] = toPlist(x);
    return out;
  }
  throw new EncodeError('backup-unencodable', `a stored value of type ${typeof value} cannot go into a backup`);
}

// ---- import ------------------------------------------------------------------------------------------------------

export async function importBackup(store: ClientStore, bytes: Uint8Array, passphrase: string): Promise<ImportCounts> {
  checkPassphrase(passphrase);
  const body = parseBody(await openBackup(bytes, passphrase));
  const counts: ImportCounts = { chats: 0, messages: 0, contacts: 0 };
  const byChat = new Map<string, MessageRecord[]>(body.chats.map((c) => [c.id, []]));
  for (const m of body.messages) byChat.get(m.chatId)!.push(m);
  for (const chat of body.chats) {
    if (!(await store.chats.get(chat.id))) {
      await store.chats.upsert({ id: chat.id, participants: chat.participants, isGroup: chat.isGroup, ...(chat.name !== undefined && { name: chat.name }) }, chat.createdAt);
      counts.chats++;
    }
    counts.messages += await restoreMessages(store, chat.id, byChat.get(chat.id)!);
  }
  counts.contacts = await new ContactBook(store).restore(body.contacts);
  await new SecurityLog(store).restore(body.securityLog);
  return counts;
}

async function openBackup(bytes: Uint8Array, passphrase: string): Promise<Uint8Array> {
  if (!(bytes instanceof Uint8Array)) throw new BackupError('bad-backup', 'a backup must be bytes');
  if (bytes.length > MAX_BACKUP_BYTES) throw new BackupError('bad-backup', `a backup is at most ${MAX_BACKUP_BYTES} bytes`);
  if (bytes.length < HEADER_LENGTH + TAG_LENGTH) throw new BackupError('bad-backup', 'too short for a backup');
  for (let i = 0; i < BACKUP_MAGIC.length; i++) {
    if (bytes[i] !== BACKUP_MAGIC.charCodeAt(i)) throw new BackupError('bad-backup', 'not a Cerulean backup');
  }
  let off = BACKUP_MAGIC.length;
  const version = bytes[off++]!;
  if (version !== BACKUP_VERSION) throw new BackupError('bad-backup', `backup version ${version} is not supported`);
  const iterations = readU32be(bytes, off);
  off += 4;
  if (iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
    throw new BackupError('bad-backup', `the backup asks for ${iterations} key iterations (allowed: ${MIN_ITERATIONS}–${MAX_ITERATIONS})`);
  }
  const salt = bytes.subarray(off, off + SALT_LENGTH);
  off += SALT_LENGTH;
  const iv = bytes.subarray(off, off + IV_LENGTH);
  const key = await deriveKey(passphrase, salt, iterations);
  let plain: ArrayBuffer;
  try {
    plain = await subtle().decrypt(
      { name: 'AES-GCM', iv: exact(iv), additionalData: exact(bytes.subarray(0, HEADER_LENGTH)), tagLength: 128 },
      key,
      exact(bytes.subarray(HEADER_LENGTH)),
    );
  } catch (e) {
    throw new BackupError('bad-passphrase', 'the backup does not decrypt with this passphrase (or it was altered)', { cause: e });
  }
  try {
    return await gunzip(new Uint8Array(plain), MAX_BACKUP_BYTES);
  } catch (e) {
    if (e instanceof DecodeError) throw new BackupError('bad-backup', 'the backup body is not valid gzip', { cause: e });
    throw e;
  }
}

function checkPassphrase(passphrase: unknown): void {
  if (typeof passphrase !== 'string' || passphrase.length === 0) throw new CeruleanError('bad-input', 'a passphrase is required');
}

async function deriveKey(passphrase: string, salt: Uint8Array, iterations: number): Promise<CryptoKey> {
  const base = await subtle().importKey('raw', exact(utf8(passphrase.normalize('NFC'))), 'PBKDF2', false, ['deriveKey']);
  return subtle().deriveKey(
    { name: 'PBKDF2', hash: 'SHA-256', salt: exact(salt), iterations },
    base,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt'],
  );
}

/** The decrypted body, checked through and through; any fault is 'bad-backup'. */
function parseBody(plain: Uint8Array): Body {
  try {
    const r = v.record(decodeBinaryPlist(plain, PLIST_LIMITS), 'backup');
    if (r.format !== BODY_FORMAT || r.version !== BACKUP_VERSION) throw new BackupError('bad-backup', 'not a Cerulean backup body of a known version');
    const chats = v.array(r.chats, 'chats').map(checkChat);
    const ids = new Set<string>();
    for (const c of chats) {
      if (ids.has(c.id)) throw new BackupError('bad-backup', 'a chat appears twice');
      ids.add(c.id);
    }
    const uuids = new Set<string>();
    const messages = v.array(r.messages, 'messages').map((x) => {
      const m = checkMessage(x);
      if (!ids.has(m.chatId)) throw new BackupError('bad-backup', 'a message belongs to no chat in the backup');
      if (uuids.has(m.uuid)) throw new BackupError('bad-backup', 'a message appears twice');
      uuids.add(m.uuid);
      return m;
    });
    return {
      chats,
      messages,
      contacts: v.array(r.contacts, 'contacts').map(checkContact),
      securityLog: v.array(r.securityLog, 'securityLog').map(checkSecurityLogEntry),
    };
  } catch (e) {
    // Every check above throws a typed error (plist DecodeError, the store's and the contact book's bad-input).
    if (e instanceof BackupError || !(e instanceof CeruleanError)) throw e;
    throw new BackupError('bad-backup', `the backup's contents are malformed: ${e.message}`, { cause: e });
  }
}

function checkChat(x: unknown): ChatRecord {
  const r = v.record(x, 'chat');
  const name = v.optional(r.name, (n) => v.text(n, 'chat.name'));
  const participants = v.handles(r.participants, 'chat.participants');
  if (participants.length === 0) throw new BackupError('bad-backup', 'a chat has no participants');
  return {
    id: v.id(r.id, 'chat.id'),
    participants,
    ...(name !== undefined && { name }),
    isGroup: v.bool(r.isGroup, 'chat.isGroup'),
    unreadCount: v.count(r.unreadCount, 'chat.unreadCount'),
    createdAt: v.time(r.createdAt, 'chat.createdAt'),
    updatedAt: v.time(r.updatedAt, 'chat.updatedAt'),
  };
}

function checkPart(x: unknown, what: string): XhtmlPart {
  const r = v.record(x, what);
  if (r.kind === 'text') return { kind: 'text', part: v.count(r.part, `${what}.part`), text: v.text(r.text, `${what}.text`) };
  if (r.kind === 'raw') {
    const part = v.optional(r.part, (p) => v.count(p, `${what}.part`));
    return { kind: 'raw', ...(part !== undefined && { part }), xml: v.text(r.xml, `${what}.xml`) };
  }
  throw new BackupError('bad-backup', `${what}.kind must be text or raw`);
}

function checkTapback(x: unknown, what: string): TapbackRecord {
  const r = v.record(x, what);
  const part = v.optional(r.part, (p) => v.count(p, `${what}.part`));
  const emoji = v.optional(r.emoji, (e) => v.text(e, `${what}.emoji`));
  return {
    sender: v.handle(r.sender, `${what}.sender`),
    reaction: v.oneOf(r.reaction, `${what}.reaction`, REACTIONS),
    ...(part !== undefined && { part }),
    ...(emoji !== undefined && { emoji }),
    time: v.time(r.time, `${what}.time`),
  };
}

function checkEdit(x: unknown, what: string): EditRecord {
  const r = v.record(x, what);
  return { part: v.count(r.part, `${what}.part`), text: v.text(r.text, `${what}.text`), time: v.time(r.time, `${what}.time`) };
}

function checkMessage(x: unknown): MessageRecord {
  const r = v.record(x, 'message');
  const opt = <T>(key: string, check: (x: unknown, what: string) => T) => v.optional(r[key], (y) => check(y, `message.${key}`));
  const text = opt('text', v.text);
  const parts = opt('parts', (p, w) => v.array(p, w).map((y, i) => checkPart(y, `${w}[${i}]`)));
  const replyTo = opt('replyTo', v.id);
  const sentAt = opt('sentAt', v.time);
  const deliveredAt = opt('deliveredAt', v.time);
  const readAt = opt('readAt', v.time);
  const error = opt('error', v.text);
  return {
    uuid: v.uuid(r.uuid, 'message.uuid'),
    chatId: v.id(r.chatId, 'message.chatId'),
    sender: v.handle(r.sender, 'message.sender'),
    fromMe: v.bool(r.fromMe, 'message.fromMe'),
    time: v.time(r.time, 'message.time'),
    ...(text !== undefined && { text }),
    ...(parts !== undefined && { parts }),
    ...(replyTo !== undefined && { replyTo }),
    status: v.oneOf(r.status, 'message.status', STATUSES),
    tapbacks: v.array(r.tapbacks, 'message.tapbacks').map((t, i) => checkTapback(t, `message.tapbacks[${i}]`)),
    edits: v.array(r.edits, 'message.edits').map((e, i) => checkEdit(e, `message.edits[${i}]`)),
    unsent: v.bool(r.unsent, 'message.unsent'),
    unsentParts: v.array(r.unsentParts, 'message.unsentParts').map((p, i) => v.count(p, `message.unsentParts[${i}]`)),
    ...(sentAt !== undefined && { sentAt }),
    ...(deliveredAt !== undefined && { deliveredAt }),
    ...(readAt !== undefined && { readAt }),
    ...(error !== undefined && { error }),
  };
}

/**
 * Adds the chat's messages the store does not have. The store counts every incoming message it stores as unread,
 * so read ones go in first and, if the chat had nothing unread, the count is reset before the unread ones follow;
 * in a chat that already has unread messages the count stays high until the chat is opened.
 */
async function restoreMessages(store: ClientStore, chatId: string, messages: readonly MessageRecord[]): Promise<number> {
  const missing: MessageRecord[] = [];
  for (const m of messages) if (!(await store.messages.has(m.uuid))) missing.push(m);
  const unread = (m: MessageRecord) => !m.fromMe && m.status !== 'read';
  const hadUnread = ((await store.chats.get(chatId))?.unreadCount ?? 0) > 0;
  const quiet = missing.filter((m) => !unread(m));
  for (const m of quiet) await restoreMessage(store, m);
  if (!hadUnread && quiet.some((m) => !m.fromMe)) await store.chats.markRead(chatId);
  for (const m of missing.filter(unread)) await restoreMessage(store, m);
  return missing.length;
}

/**
 * One message through the store's own operations. Status times can only be set by moving the status forward, so
 * the message goes in at the highest stage it has no time for and then moves through the stages it has times for.
 * A message that was still being sent has no outbox item here: it is restored as failed.
 */
async function restoreMessage(store: ClientStore, m: MessageRecord): Promise<void> {
  const final: MessageStatus = m.status === 'sending' ? 'failed' : m.status;
  const base: MessageStatus = !m.fromMe ? 'delivered' : final === 'failed' ? 'failed' : 'sending';
  const stages = STAGES.filter((s) => RANK[s] > RANK[base] && RANK[s] <= RANK[final]);
  const untimed = stages.filter((s) => m[STAGE_TIME[s]] === undefined);
  const start: MessageStatus = untimed[untimed.length - 1] ?? base;
  await store.messages.saveIncoming({
    uuid: m.uuid,
    chatId: m.chatId,
    sender: m.sender,
    fromMe: m.fromMe,
    time: m.time,
    ...(m.text !== undefined && { text: m.text }),
    ...(m.parts !== undefined && { parts: m.parts }),
    ...(m.replyTo !== undefined && { replyTo: m.replyTo }),
    status: start,
  });
  for (const s of stages) {
    const at = m[STAGE_TIME[s]];
    if (RANK[s] > RANK[start] && at !== undefined) await store.messages.updateStatus(m.uuid, s, at);
  }
  for (const t of m.tapbacks) await store.messages.addTapback(m.uuid, t);
  for (const e of m.edits) await store.messages.applyEdit(m.uuid, e);
  for (const part of m.unsentParts) await store.messages.unsend(m.uuid, { part });
  if (m.unsent) await store.messages.unsend(m.uuid);
}
