// The Contact Picker API (Chromium on Android): the user picks contacts in the system's own UI and the page gets
// only those. Not in TypeScript's DOM types yet, so the little that is used is declared here.
import { contactHandle, type ContactInput } from '../../../lib/client/contacts';
import { thumbnail } from './photo';

interface PickedContact {
  name?: string[];
  tel?: string[];
  email?: string[];
  icon?: Blob[];
}

interface ContactsManager {
  select(properties: string[], options: { multiple: boolean }): Promise<PickedContact[]>;
  getProperties?(): Promise<string[]>;
}

function manager(): ContactsManager | undefined {
  if (typeof navigator === 'undefined' || !('contacts' in navigator) || typeof window === 'undefined' || !('ContactsManager' in window)) return undefined;
  return (navigator as unknown as { contacts: ContactsManager }).contacts;
}

export function contactPickerSupported(): boolean {
  return manager() !== undefined;
}

/** Opens the system picker; the picked people with a usable phone number or e-mail address, ready to store. */
export async function pickContacts(): Promise<ContactInput[]> {
  const contacts = manager();
  if (!contacts) return [];
  const available = (await contacts.getProperties?.()) ?? ['name', 'tel', 'email'];
  const wanted = ['name', 'tel', 'email', 'icon'].filter((p) => available.includes(p));
  const picked = await contacts.select(wanted, { multiple: true });
  const out: ContactInput[] = [];
  for (const p of picked) {
    const handles = [...new Set([...(p.tel ?? []), ...(p.email ?? [])].map(contactHandle).filter((h): h is string => h !== undefined))];
    if (handles.length === 0) continue;
    const name = p.name?.find((n) => n.trim() !== '')?.trim() ?? handles[0]!.replace(/^(?:tel|mailto):/, '');
    const icon = p.icon?.[0];
    const photo = icon ? await thumbnail(icon).catch(() => undefined) : undefined;
    out.push({ name, handles, ...(photo ? { photo } : {}) });
  }
  return out;
}
