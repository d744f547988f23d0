// The user's address book: names and pictures for handles, kept only in the client store (never sent anywhere).
// The list itself (names, handles) is one kv record, so showing or searching it is a single read; pictures live in
// a record each and are read only for the contacts being returned. Handles are stored as IDS URIs in the form the
// store and lookups use, so a contact matches the sender of a message by plain comparison.
import { CeruleanError } from '../errors';
import { parseVCards, sniffImageType, type VCard } from '../contacts/vcard';
import { randomUuidString } from '../imessage/uuid';
import type { ClientStore, StorableValue } from '../store/types';
import { normalizeHandle } from './chats';

export interface Contact {
  id: string;
  name: string;
  handles: string[];
  photo?: { type: string; bytes: Uint8Array };
}

export type ContactInput = Omit<Contact, 'id'> & { id?: string };

/** 'photo-too-large', 'too-many-contacts' or 'bad-input'. */
export class ContactError extends CeruleanError {}

export const MAX_CONTACTS = 5000;
export const MAX_PHOTO_BYTES = 256 * 1024;
export const MAX_HANDLES_PER_CONTACT = 50;
export const MAX_NAME_LENGTH = 200;

const BOOK_KEY = 'contacts/book';
const PHOTO_PREFIX = 'contacts/photo/';
const MAX_ID_LENGTH = 200;

/** What the book record holds per contact; the picture's bytes are in their own record. */
interface Entry {
  id: string;
  name: string;
  handles: string[];
  photoType?: string;
}

/**
 * A handle as an IDS URI: anything with an `@` is an e-mail address (lower-cased, `mailto:`), anything else a phone
 * number reduced to its digits and a leading `+` (`tel:`). Undefined when it is neither.
 */
export function contactHandle(raw: string): string | undefined {
  if (typeof raw !== 'string') return undefined;
  const rest = raw.trim().replace(/^(?:tel|mailto):/i, '').trim();
  if (rest.includes('@')) {
    const email = rest.toLowerCase();
    return email.length <= 320 && /^[^\s@]+@[^\s@]+$/.test(email) ? normalizeHandle(`mailto:${email}`) : undefined;
  }
  // Dialling suffixes (extension, pause, wait) are not part of the number IDS knows.
  const number = rest.split(/[;,]|ext|[xpw]/i)[0]!;
  if (/[^\d\s+().\-/]/.test(number)) return undefined;
  const digits = number.replace(/\D/g, '');
  if (digits.length < 3 || digits.length > 20) return undefined;
  return normalizeHandle(`tel:${number.trim().startsWith('+') ? '+' : ''}${digits}`);
}

/** Each store gets one queue of book changes, however many ContactBooks are made over it. */
const queues = new WeakMap<ClientStore, Promise<unknown>>();

function exclusive<T>(store: ClientStore, body: () => Promise<T>): Promise<T> {
  const run = (queues.get(store) ?? Promise.resolve()).then(body, body);
  queues.set(store, run.catch(() => undefined));
  return run;
}

function bad(message: string): ContactError {
  return new ContactError('bad-input', message);
}

function cleanName(name: unknown): string {
  if (typeof name !== 'string') throw bad('name must be a string');
  const n = name.replace(/\s+/g, ' ').trim();
  return n.length > MAX_NAME_LENGTH ? n.slice(0, MAX_NAME_LENGTH) : n;
}

function cleanHandles(handles: unknown): string[] {
  if (!Array.isArray(handles)) throw bad('handles must be an array');
  const out: string[] = [];
  for (const h of handles) {
    const n = contactHandle(h as string);
    if (n === undefined) throw bad('a handle is neither a phone number nor an e-mail address');
    if (!out.includes(n)) out.push(n);
  }
  if (out.length > MAX_HANDLES_PER_CONTACT) throw bad(`a contact has at most ${MAX_HANDLES_PER_CONTACT} handles`);
  return out;
}

function cleanPhoto(photo: unknown): { type: string; bytes: Uint8Array } | undefined {
  if (photo === undefined) return undefined;
  const bytes = (photo as { bytes?: unknown } | null)?.bytes;
  if (!(bytes instanceof Uint8Array)) throw bad('photo.bytes must be a Uint8Array');
  if (bytes.length > MAX_PHOTO_BYTES) throw new ContactError('photo-too-large', `a contact photo is at most ${MAX_PHOTO_BYTES} bytes`);
  // The stored type is what the bytes are, whatever the caller said: it becomes a blob URL's type in the UI.
  const type = sniffImageType(bytes);
  if (!type) throw bad('photo must be a JPEG, PNG, GIF or WebP image');
  return { type, bytes: Uint8Array.from(bytes) };
}

function cleanId(id: unknown): string {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH || /[\n\r\0]/.test(id)) {
    throw bad('id must be a non-empty string without line breaks');
  }
  return id;
}

/** A complete contact from outside (put, a backup); throws ContactError on anything wrong. */
export function checkContact(x: unknown): Contact {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw bad('a contact must be an object');
  const c = x as Record<string, unknown>;
  const photo = cleanPhoto(c.photo);
  return { id: cleanId(c.id), name: cleanName(c.name), handles: cleanHandles(c.handles), ...(photo && { photo }) };
}

function isEntry(x: unknown): x is Entry {
  if (typeof x !== 'object' || x === null) return false;
  const e = x as Partial<Entry>;
  return (
    typeof e.id === 'string' &&
    typeof e.name === 'string' &&
    Array.isArray(e.handles) &&
    e.handles.every((h) => typeof h === 'string') &&
    (e.photoType === undefined || typeof e.photoType === 'string')
  );
}

function byName(a: Entry, b: Entry): number {
  return a.name.localeCompare(b.name, undefined, { sensitivity: 'base' }) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** The name a card is filed under: its own, else its first handle's address. */
function cardName(card: VCard, handles: readonly string[]): string {
  const name = cleanName(card.name ?? '');
  return name.length > 0 ? name : handles[0]!.replace(/^(?:tel|mailto):/, '');
}

export class ContactBook {
  constructor(private readonly store: ClientStore) {}

  /** Every contact, sorted by name. */
  async list(): Promise<Contact[]> {
    const book = await this.book();
    return Promise.all([...book].sort(byName).map((e) => this.withPhoto(e)));
  }

  async get(id: string): Promise<Contact | undefined> {
    const e = (await this.book()).find((x) => x.id === id);
    return e && this.withPhoto(e);
  }

  /** Adds a contact (no id) or replaces the one with this id (created if absent). */
  async put(c: ContactInput): Promise<Contact> {
    const contact = checkContact({ ...c, id: c.id ?? randomUuidString() });
    if (contact.name.length === 0) throw bad('name must not be empty');
    return exclusive(this.store, async () => {
      const book = await this.book();
      const at = book.findIndex((e) => e.id === contact.id);
      if (at < 0 && book.length >= MAX_CONTACTS) throw new ContactError('too-many-contacts', `at most ${MAX_CONTACTS} contacts`);
      const entry = toEntry(contact);
      if (at < 0) book.push(entry);
      else book[at] = entry;
      await this.savePhoto(contact);
      await this.saveBook(book);
      return contact;
    });
  }

  async delete(id: string): Promise<void> {
    return exclusive(this.store, async () => {
      const book = await this.book();
      const rest = book.filter((e) => e.id !== id);
      if (rest.length === book.length) return;
      await this.saveBook(rest);
      await this.store.kv.delete(PHOTO_PREFIX + id);
    });
  }

  /**
   * Adds the cards of a .vcf file. A card sharing a handle with a contact updates that contact (its handles are
   * added, its name and picture replace the old ones when it has them); a card without any usable phone number or
   * e-mail address is skipped. Garbage is a DecodeError; going over MAX_CONTACTS changes nothing.
   */
  async importVCards(text: string): Promise<{ added: number; updated: number; skipped: number }> {
    const cards = parseVCards(text, { maxPhotoBytes: MAX_PHOTO_BYTES });
    return exclusive(this.store, async () => {
      const book = await this.book();
      const byHandle = new Map<string, Entry>();
      for (const e of book) for (const h of e.handles) if (!byHandle.has(h)) byHandle.set(h, e);
      const photos = new Map<string, { type: string; bytes: Uint8Array }>();
      let added = 0;
      let updated = 0;
      let skipped = 0;
      for (const card of cards) {
        const handles = [...new Set([...card.tels, ...card.emails].map(contactHandle).filter((h): h is string => h !== undefined))];
        if (handles.length === 0) {
          skipped++;
          continue;
        }
        const existing = handles.map((h) => byHandle.get(h)).find((e) => e !== undefined);
        const entry: Entry = existing ?? { id: randomUuidString(), name: cardName(card, handles), handles: [] };
        if (existing) {
          if (card.name !== undefined && cleanName(card.name).length > 0) entry.name = cleanName(card.name);
          updated++;
        } else {
          book.push(entry);
          added++;
        }
        for (const h of handles) {
          if (entry.handles.length >= MAX_HANDLES_PER_CONTACT) break;
          if (!entry.handles.includes(h)) entry.handles.push(h);
          if (!byHandle.has(h)) byHandle.set(h, entry);
        }
        if (card.photo) {
          entry.photoType = card.photo.type;
          photos.set(entry.id, card.photo);
        }
      }
      if (book.length > MAX_CONTACTS) throw new ContactError('too-many-contacts', `at most ${MAX_CONTACTS} contacts`);
      // Pictures first: a book record never names a picture that is not stored yet.
      for (const [id, photo] of photos) await this.store.kv.set(PHOTO_PREFIX + id, photo.bytes);
      await this.saveBook(book);
      return { added, updated, skipped };
    });
  }

  /** The contact with this handle (in any of the forms contactHandle accepts). */
  async forHandle(handle: string): Promise<Contact | undefined> {
    const h = contactHandle(handle) ?? normalizeHandle(handle);
    const e = (await this.book()).find((x) => x.handles.includes(h));
    return e && this.withPhoto(e);
  }

  /**
   * Restores contacts (from a backup): one whose id or any of whose handles is already in the book is left out, so
   * the book's own data always wins. Returns how many were added.
   */
  async restore(contacts: readonly Contact[]): Promise<number> {
    const checked = contacts.map(checkContact);
    return exclusive(this.store, async () => {
      const book = await this.book();
      const ids = new Set(book.map((e) => e.id));
      const handles = new Set(book.flatMap((e) => e.handles));
      const fresh: Contact[] = [];
      for (const c of checked) {
        if (ids.has(c.id) || c.handles.some((h) => handles.has(h))) continue;
        ids.add(c.id);
        for (const h of c.handles) handles.add(h);
        fresh.push(c);
      }
      if (book.length + fresh.length > MAX_CONTACTS) throw new ContactError('too-many-contacts', `at most ${MAX_CONTACTS} contacts`);
      for (const c of fresh) await this.savePhoto(c);
      await this.saveBook([...book, ...fresh.map(toEntry)]);
      return fresh.length;
    });
  }

  /** The book record; entries that do not have the expected shape are left out rather than failing every read. */
  private async book(): Promise<Entry[]> {
    const v = await this.store.kv.get(BOOK_KEY);
    return Array.isArray(v) ? v.filter(isEntry).map((e) => ({ ...e, handles: [...e.handles] })) : [];
  }

  private saveBook(book: readonly Entry[]): Promise<void> {
    return this.store.kv.set(BOOK_KEY, book.map((e) => ({ ...e }) as unknown as StorableValue));
  }

  private async savePhoto(c: Contact): Promise<void> {
    if (c.photo) await this.store.kv.set(PHOTO_PREFIX + c.id, c.photo.bytes);
    else await this.store.kv.delete(PHOTO_PREFIX + c.id);
  }

  private async withPhoto(e: Entry): Promise<Contact> {
    const contact: Contact = { id: e.id, name: e.name, handles: [...e.handles] };
    if (e.photoType === undefined) return contact;
    const bytes = await this.store.kv.get(PHOTO_PREFIX + e.id);
    return bytes instanceof Uint8Array ? { ...contact, photo: { type: e.photoType, bytes } } : contact;
  }
}

function toEntry(c: Contact): Entry {
  return { id: c.id, name: c.name, handles: [...c.handles], ...(c.photo && { photoType: c.photo.type }) };
}
