// The contact book over a memory store: handle normalisation, put/get/list/delete, photo and size limits, vCard
// import merging by handle, lookups by handle in any spelling, persistence across a reopen, and concurrent writers.
import { describe, expect, it } from 'vitest';
import { CeruleanError, DecodeError } from '../../../lib/errors';
import { ContactBook, ContactError, contactHandle, MAX_CONTACTS, MAX_PHOTO_BYTES } from '../../../lib/client/contacts';
import { MemoryStorage } from '../../../lib/store/memory-store';
import { memoryStore, PNG, PNG_BASE64 } from './fixtures';

const vcard = (...lines: string[]) => ['BEGIN:VCARD', 'VERSION:3.0', ...lines, 'END:VCARD'].join('\r\n') + '\r\n';

async function rejects(p: Promise<unknown>, code: string): Promise<void> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(CeruleanError);
  expect((e as CeruleanError).code).toBe(code);
}

describe('contactHandle', () => {
  it('turns phone numbers and e-mail addresses into IDS URIs', () => {
    expect(contactHandle('+1 (555) 010-0123')).toBe('tel:+15550100123');
    expect(contactHandle('tel:+1-555-010-0123')).toBe('tel:+15550100123');
    expect(contactHandle('TEL:555.010.0123')).toBe('tel:5550100123');
    expect(contactHandle('+44 20 7946 0958 ext. 12')).toBe('tel:+442079460958');
    expect(contactHandle('555-0123;ext=9')).toBe('tel:5550123');
    expect(contactHandle(' John.Doe@Example.COM ')).toBe('mailto:john.doe@example.com');
    expect(contactHandle('MAILTO:Jane@Example.org')).toBe('mailto:jane@example.org');
  });

  it('refuses what is neither', () => {
    for (const bad of ['', '   ', 'hello', '12', '1-800-FLOWERS', 'a@', '@b', 'a b@c', '1'.repeat(21), 'tel:', 'mailto:']) {
      expect(contactHandle(bad), bad).toBeUndefined();
    }
  });
});

describe('ContactBook basics', () => {
  it('puts, lists by name, gets, replaces and deletes', async () => {
    const book = new ContactBook(await memoryStore());
    const zed = await book.put({ name: '  Zed   Zulu ', handles: ['+1 555 000 0001'] });
    const amy = await book.put({ name: 'amy', handles: ['Amy@Example.com', 'tel:+15550000002'], photo: { type: 'image/whatever', bytes: PNG } });
    expect(zed).toMatchObject({ name: 'Zed Zulu', handles: ['tel:+15550000001'] });
    // The stored type is what the bytes are.
    expect(amy.photo).toEqual({ type: 'image/png', bytes: PNG });
    expect((await book.list()).map((c) => c.name)).toEqual(['amy', 'Zed Zulu']);
    expect(await book.get(amy.id)).toEqual(amy);
    expect(await book.get('nope')).toBeUndefined();

    const renamed = await book.put({ id: amy.id, name: 'Amy Adams', handles: ['amy@example.com'] });
    expect(await book.get(amy.id)).toEqual(renamed);
    expect(renamed.photo).toBeUndefined();
    expect((await book.list()).map((c) => c.name)).toEqual(['Amy Adams', 'Zed Zulu']);

    await book.delete(zed.id);
    await book.delete(zed.id);
    expect((await book.list()).map((c) => c.id)).toEqual([amy.id]);
  });

  it('checks what it is given', async () => {
    const book = new ContactBook(await memoryStore());
    await rejects(book.put({ name: 'X', handles: ['not a handle'] }), 'bad-input');
    await rejects(book.put({ name: ' ', handles: ['a@b.c'] }), 'bad-input');
    await rejects(book.put({ name: 'X', handles: [], photo: { type: 'image/png', bytes: new TextEncoder().encode('<svg/>') } }), 'bad-input');
    const big = new Uint8Array(MAX_PHOTO_BYTES + 1);
    big.set(PNG);
    const err = await book.put({ name: 'X', handles: [], photo: { type: 'image/png', bytes: big } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ContactError);
    expect((err as ContactError).code).toBe('photo-too-large');
    const exact = new Uint8Array(MAX_PHOTO_BYTES);
    exact.set(PNG);
    expect((await book.put({ name: 'Y', handles: [], photo: { type: 'image/png', bytes: exact } })).photo?.bytes.length).toBe(MAX_PHOTO_BYTES);
    expect(await book.list()).toHaveLength(1);
  });

  it('finds a contact by any spelling of its handle', async () => {
    const book = new ContactBook(await memoryStore());
    const c = await book.put({ name: 'Bob', handles: ['+1 (555) 010-0123', 'Bob@Example.com'] });
    for (const h of ['tel:+15550100123', '+1 555 010 0123', 'mailto:bob@example.com', 'MAILTO:BOB@EXAMPLE.COM']) {
      expect((await book.forHandle(h))?.id, h).toBe(c.id);
    }
    expect(await book.forHandle('tel:+15550100124')).toBeUndefined();
    expect(await book.forHandle('garbage')).toBeUndefined();
  });

  it('keeps contacts and photos across a reopen of the store', async () => {
    const storage = new MemoryStorage();
    const store = await storage.open();
    const c = await new ContactBook(store).put({ name: 'Kept', handles: ['k@example.com'], photo: { type: 'image/png', bytes: PNG } });
    await store.close();
    expect(await new ContactBook(await storage.open()).list()).toEqual([c]);
  });

  it('does not lose writes made at the same time, even through two books over one store', async () => {
    const store = await memoryStore();
    const a = new ContactBook(store);
    const b = new ContactBook(store);
    await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => a.put({ name: `A${i}`, handles: [`a${i}@example.com`] })),
      ...Array.from({ length: 10 }, (_, i) => b.importVCards(vcard(`FN:B${i}`, `EMAIL:b${i}@example.com`))),
    ]);
    expect(await a.list()).toHaveLength(20);
  });
});

describe('importVCards', () => {
  it('adds cards, merges by handle, skips cards without handles', async () => {
    const book = new ContactBook(await memoryStore());
    const existing = await book.put({ name: 'Old Name', handles: ['tel:+15550100123'] });
    const file = [
      vcard('FN:John Appleseed', 'TEL;type=CELL:+1 (555) 010-0123', 'EMAIL:John@Example.com', `PHOTO;ENCODING=b;TYPE=PNG:${PNG_BASE64}`),
      vcard('N:Doe;Jane;;;', 'EMAIL:jane@example.org', 'TEL:not a number'),
      vcard('FN:Nobody', 'NOTE:no handles'),
      vcard('EMAIL:anon@example.net'),
      // Shares Jane's address: updates the contact the file just created.
      vcard('FN:Jane D.', 'EMAIL:JANE@example.org', 'TEL:+1 555 010 9999'),
    ].join('');
    expect(await book.importVCards(file)).toEqual({ added: 2, updated: 2, skipped: 1 });

    const john = await book.get(existing.id);
    expect(john).toEqual({
      id: existing.id,
      name: 'John Appleseed',
      handles: ['tel:+15550100123', 'mailto:john@example.com'],
      photo: { type: 'image/png', bytes: PNG },
    });
    const jane = await book.forHandle('tel:+15550109999');
    expect(jane).toMatchObject({ name: 'Jane D.', handles: ['mailto:jane@example.org', 'tel:+15550109999'] });
    // A card without a name is filed under its address.
    expect(await book.forHandle('anon@example.net')).toMatchObject({ name: 'anon@example.net' });
    expect(await book.list()).toHaveLength(3);

    // Importing the same file again adds nothing; a card without a picture keeps the one stored.
    expect(await book.importVCards(file)).toEqual({ added: 0, updated: 4, skipped: 1 });
    expect(await book.list()).toHaveLength(3);
    expect(await book.importVCards(vcard('TEL:+15550100123'))).toEqual({ added: 0, updated: 1, skipped: 0 });
    expect((await book.get(existing.id))?.photo?.bytes).toEqual(PNG);
    expect((await book.get(existing.id))?.name).toBe('John Appleseed');
  });

  it('passes on DecodeErrors and changes nothing', async () => {
    const book = new ContactBook(await memoryStore());
    await expect(book.importVCards('definitely not a vcard')).rejects.toBeInstanceOf(DecodeError);
    await expect(book.importVCards(vcard('FN:x', 'EMAIL:x@y.z').slice(0, -12))).rejects.toBeInstanceOf(DecodeError);
    expect(await book.list()).toEqual([]);
  });

  it(`stops at ${MAX_CONTACTS} contacts without changing anything`, async () => {
    const book = new ContactBook(await memoryStore());
    const cards = (from: number, n: number) => Array.from({ length: n }, (_, i) => vcard(`FN:C${from + i}`, `EMAIL:c${from + i}@example.com`)).join('');
    expect(await book.importVCards(cards(0, MAX_CONTACTS - 1))).toEqual({ added: MAX_CONTACTS - 1, updated: 0, skipped: 0 });
    await rejects(book.importVCards(cards(MAX_CONTACTS, 2)), 'too-many-contacts');
    expect(await book.list()).toHaveLength(MAX_CONTACTS - 1);
    await book.put({ name: 'Last', handles: ['last@example.com'] });
    await rejects(book.put({ name: 'One too many', handles: [] }), 'too-many-contacts');
    // Updating by handle is still fine when the book is full.
    expect(await book.importVCards(cards(0, 1))).toEqual({ added: 0, updated: 1, skipped: 0 });
  });

  it('drops a photo over the limit but keeps the card', async () => {
    const book = new ContactBook(await memoryStore());
    const big = 'A'.repeat(Math.ceil(((MAX_PHOTO_BYTES + 10) * 4) / 3));
    expect(await book.importVCards(vcard('FN:Big', 'EMAIL:big@example.com', `PHOTO;ENCODING=b:${big}`))).toEqual({ added: 1, updated: 0, skipped: 0 });
    expect((await book.forHandle('big@example.com'))?.photo).toBeUndefined();
  });
});
