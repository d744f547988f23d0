// The address book for showing people: a contact per handle (names and photos in chats), with photos as object
// URLs that are revoked when the list changes or the component goes away.
import { useCallback, useEffect, useMemo, useState } from 'react';
import type { CeruleanClient } from '../../../lib/client/client';
import type { Contact } from '../../../lib/client/contacts';
import { useClient } from '../../session/session';
import { displayHandle, handleId } from '../chats/handles';
import { useReload } from './use-reload';

/** The last list read per client: a screen opened later shows names at once instead of handles first. */
const lastRead = new WeakMap<CeruleanClient, Contact[]>();

/** Trailing digits that identify a phone number whether or not it was saved with its country code. */
const PHONE_SUFFIX = 9;

export interface ContactDirectory {
  /** Sorted by name; undefined while loading. */
  contacts: Contact[] | undefined;
  forHandle(handle: string): Contact | undefined;
  /** The contact's name, else the handle without its scheme. */
  nameFor(handle: string): string;
  /** An object URL of the contact's photo. */
  photoFor(handle: string): string | undefined;
  photoOf(contact: Contact): string | undefined;
  reload(): void;
}

function phoneSuffix(id: string): string | undefined {
  if (!id.startsWith('tel:')) return undefined;
  const digits = id.replace(/[^0-9]/g, '');
  return digits.length >= PHONE_SUFFIX ? digits.slice(-PHONE_SUFFIX) : undefined;
}

export function useContacts(): ContactDirectory {
  const client = useClient();
  const { data, reload } = useReload(client, (c) => c.contacts.list(), { topics: ['contacts'] });
  const contacts = data ?? lastRead.get(client);
  useEffect(() => {
    if (data) lastRead.set(client, data);
  }, [client, data]);
  const [photos, setPhotos] = useState<Map<string, string>>(() => new Map());

  useEffect(() => {
    const urls = new Map<string, string>();
    for (const c of contacts ?? []) {
      if (c.photo) urls.set(c.id, URL.createObjectURL(new Blob([new Uint8Array(c.photo.bytes)], { type: c.photo.type })));
    }
    setPhotos(urls);
    return () => {
      for (const url of urls.values()) URL.revokeObjectURL(url);
    };
  }, [contacts]);

  const index = useMemo(() => {
    const exact = new Map<string, Contact>();
    const bySuffix = new Map<string, Contact>();
    for (const c of contacts ?? []) {
      for (const h of c.handles) {
        const id = handleId(h.includes(':') || h.includes('@') ? h : `tel:${h}`);
        if (!exact.has(id)) exact.set(id, c);
        const suffix = phoneSuffix(id);
        if (suffix && !bySuffix.has(suffix)) bySuffix.set(suffix, c);
      }
    }
    return { exact, bySuffix };
  }, [contacts]);

  const forHandle = useCallback(
    (handle: string) => {
      const id = handleId(handle);
      const suffix = phoneSuffix(id);
      return index.exact.get(id) ?? (suffix ? index.bySuffix.get(suffix) : undefined);
    },
    [index],
  );
  const photoOf = useCallback((c: Contact) => photos.get(c.id), [photos]);
  const nameFor = useCallback((handle: string) => forHandle(handle)?.name || displayHandle(handle), [forHandle]);
  const photoFor = useCallback(
    (handle: string) => {
      const c = forHandle(handle);
      return c ? photos.get(c.id) : undefined;
    },
    [forHandle, photos],
  );

  return { contacts, forHandle, nameFor, photoFor, photoOf, reload };
}
