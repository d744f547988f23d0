'use client';
// The address book: names and pictures for the people in chats. Contacts come from a vCard file, the system's
// Contact Picker (where the browser has one) or are typed in; they are stored on this device only.
import { useId, useState, type ChangeEvent } from 'react';
import type { Contact, ContactInput } from '../../../lib/client/contacts';
import { useClient } from '../../session/session';
import { Button } from '../common/button';
import { Dialog } from '../common/dialog';
import { Spinner } from '../common/spinner';
import { Avatar } from '../chats/avatar';
import { describeFailure } from '../chats/failure';
import { displayHandle } from '../chats/handles';
import { notifyChanged } from '../hooks/local-changes';
import { useContacts } from '../hooks/use-contacts';
import { ContactForm } from './contact-form';
import { contactPickerSupported, pickContacts } from './contact-picker';

export function ContactsPane() {
  const client = useClient();
  const directory = useContacts();
  const ids = useId();
  const [query, setQuery] = useState('');
  const [editing, setEditing] = useState<{ contact: Contact | undefined } | undefined>();
  const [deleting, setDeleting] = useState<Contact>();
  const [busy, setBusy] = useState(false);
  const [status, setStatus] = useState<string>();
  const [error, setError] = useState<string>();
  // Feature detection reads navigator, which only exists in the browser; this pane renders only there.
  const [canPick] = useState(contactPickerSupported);

  const run = async (action: () => Promise<string>) => {
    setBusy(true);
    setError(undefined);
    setStatus(undefined);
    try {
      setStatus(await action());
      notifyChanged('contacts');
    } catch (e) {
      setError(describeFailure(e));
    } finally {
      setBusy(false);
    }
  };

  const importFile = (e: ChangeEvent<HTMLInputElement>) => {
    const file = e.target.files?.[0];
    e.target.value = '';
    if (!file) return;
    void run(async () => {
      const r = await client.contacts.importVCards(await file.text());
      return `Imported ${file.name}: ${r.added} added, ${r.updated} updated${r.skipped > 0 ? `, ${r.skipped} skipped (no phone number or e-mail address)` : ''}.`;
    });
  };

  const pick = () =>
    void run(async () => {
      const picked = await pickContacts();
      const book = await client.contacts.list();
      let added = 0;
      let updated = 0;
      for (const p of picked) {
        const existing = book.find((c) => c.handles.some((h) => p.handles.includes(h)));
        if (existing) {
          const photo = p.photo ?? existing.photo;
          await client.contacts.put({ id: existing.id, name: p.name, handles: [...new Set([...existing.handles, ...p.handles])], ...(photo ? { photo } : {}) });
          updated++;
        } else {
          await client.contacts.put(p);
          added++;
        }
      }
      return picked.length === 0 ? 'No contacts were picked.' : `${added} added, ${updated} updated.`;
    });

  const save = async (input: ContactInput) => {
    await client.contacts.put(input);
    notifyChanged('contacts');
    setStatus(`Saved ${input.name}.`);
  };

  const remove = (c: Contact) => {
    setDeleting(undefined);
    void run(async () => {
      await client.contacts.delete(c.id);
      return `Deleted ${c.name}.`;
    });
  };

  const q = query.trim().toLowerCase();
  const shown = (directory.contacts ?? []).filter(
    (c) => q === '' || c.name.toLowerCase().includes(q) || c.handles.some((h) => displayHandle(h).toLowerCase().includes(q)),
  );

  return (
    <section aria-labelledby={`${ids}-title`} className="flex h-full min-h-0 flex-col overflow-y-auto">
      <header className="flex flex-wrap items-center gap-2 border-b border-neutral-200 px-4 py-3 dark:border-neutral-800">
        <h2 id={`${ids}-title`} className="mr-auto text-xl font-semibold">
          Contacts
        </h2>
        <Button variant="secondary" onClick={() => setEditing({ contact: undefined })}>
          Add contact
        </Button>
        <label className="inline-flex cursor-pointer items-center rounded-lg bg-neutral-200 px-4 py-2 text-sm font-medium text-neutral-900 hover:bg-neutral-300 focus-within:outline-2 focus-within:outline-offset-2 focus-within:outline-accent dark:bg-neutral-800 dark:text-neutral-100 dark:hover:bg-neutral-700">
          Import vCard file
          <input type="file" data-testid="contacts-import-vcard" accept=".vcf,.vcard,text/vcard,text/x-vcard" className="sr-only" onChange={importFile} disabled={busy} />
        </label>
        {canPick ? (
          <Button data-testid="contacts-pick" onClick={pick} disabled={busy}>
            Pick from device
          </Button>
        ) : null}
      </header>
      <div className="flex flex-col gap-3 p-4">
        <p className="text-sm text-neutral-600 dark:text-neutral-400">
          Contacts are stored only on this device. They never leave it: nothing is uploaded, and they are used only to
          show names and pictures in your chats.
        </p>
        <div aria-live="polite" className="text-sm">
          {busy ? <Spinner label="Working" className="h-4 w-4" /> : null}
          {status ? <p className="text-green-700 dark:text-green-400">{status}</p> : null}
        </div>
        {error ? (
          <p role="alert" className="text-sm text-red-600 dark:text-red-400">
            {error}
          </p>
        ) : null}
        {(directory.contacts?.length ?? 0) > 5 ? (
          <div className="flex flex-col gap-1">
            <label htmlFor={`${ids}-search`} className="sr-only">
              Search contacts
            </label>
            <input
              id={`${ids}-search`}
              type="search"
              value={query}
              onChange={(e) => setQuery(e.target.value)}
              placeholder="Search"
              className="rounded-lg border border-neutral-300 bg-white px-3 py-2 text-sm focus:border-accent focus:outline-2 focus:outline-accent/40 dark:border-neutral-700 dark:bg-neutral-900"
            />
          </div>
        ) : null}
        {directory.contacts === undefined ? (
          <Spinner label="Loading contacts" />
        ) : directory.contacts.length === 0 ? (
          <p className="py-6 text-center text-sm text-neutral-600 dark:text-neutral-400">No contacts yet.</p>
        ) : (
          <ul aria-label="Contacts" className="flex flex-col divide-y divide-neutral-200 rounded-lg border border-neutral-200 dark:divide-neutral-800 dark:border-neutral-800">
            {shown.map((c) => (
              <li key={c.id} data-testid="contact-row" className="flex items-center gap-3 px-3 py-2">
                <Avatar name={c.name} photo={directory.photoOf(c)} />
                <span className="min-w-0 flex-1">
                  <span className="block truncate font-medium">{c.name}</span>
                  <span className="block truncate text-xs text-neutral-600 dark:text-neutral-400">{c.handles.map(displayHandle).join(', ')}</span>
                </span>
                <Button variant="ghost" className="!px-2 !py-1" aria-label={`Edit ${c.name}`} onClick={() => setEditing({ contact: c })}>
                  Edit
                </Button>
                <Button variant="ghost" className="!px-2 !py-1 text-red-600 dark:text-red-400" aria-label={`Delete ${c.name}`} onClick={() => setDeleting(c)}>
                  Delete
                </Button>
              </li>
            ))}
          </ul>
        )}
      </div>
      <ContactForm
        open={editing !== undefined}
        contact={editing?.contact}
        photoUrl={editing?.contact ? directory.photoOf(editing.contact) : undefined}
        onClose={() => setEditing(undefined)}
        onSave={save}
      />
      <Dialog
        open={deleting !== undefined}
        title={`Delete ${deleting?.name ?? 'contact'}?`}
        onClose={() => setDeleting(undefined)}
        actions={
          <>
            <Button variant="secondary" onClick={() => setDeleting(undefined)}>
              Cancel
            </Button>
            <Button variant="danger" onClick={() => deleting && remove(deleting)}>
              Delete
            </Button>
          </>
        }
      >
        Your chats stay; they show the phone number or e-mail address instead of the name.
      </Dialog>
    </section>
  );
}
