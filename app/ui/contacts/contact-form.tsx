'use client';
// Adding or editing one contact by hand: a name, addresses (phone numbers and e-mail addresses) and a picture.
import { useEffect, useId, useState, type FormEvent } from 'react';
import { contactHandle, type Contact, type ContactInput } from '../../../lib/client/contacts';
import { Button } from '../common/button';
import { Dialog } from '../common/dialog';
import { TextField } from '../common/text-field';
import { describeFailure } from '../chats/failure';
import { displayHandle } from '../chats/handles';
import { thumbnail } from './photo';

export interface ContactFormProps {
  open: boolean;
  /** The contact being edited; a new one when undefined. */
  contact: Contact | undefined;
  /** Its current picture, as shown in the list. */
  photoUrl: string | undefined;
  onClose(): void;
  onSave(input: ContactInput): Promise<void>;
}

export function ContactForm({ open, contact, photoUrl, onClose, onSave }: ContactFormProps) {
  const formId = useId();
  const [name, setName] = useState('');
  const [handles, setHandles] = useState('');
  const [photo, setPhoto] = useState<{ type: string; bytes: Uint8Array } | null | undefined>(undefined);
  const [preview, setPreview] = useState<string>();
  const [error, setError] = useState<string>();
  const [handleError, setHandleError] = useState<string>();
  const [saving, setSaving] = useState(false);

  useEffect(() => {
    if (!open) return;
    setName(contact?.name ?? '');
    setHandles((contact?.handles ?? []).map(displayHandle).join(', '));
    setPhoto(undefined);
    setError(undefined);
    setHandleError(undefined);
    setSaving(false);
  }, [open, contact]);

  // A newly chosen picture is previewed from its own object URL, released when it is replaced.
  useEffect(() => {
    if (!photo) {
      setPreview(undefined);
      return;
    }
    const url = URL.createObjectURL(new Blob([new Uint8Array(photo.bytes)], { type: photo.type }));
    setPreview(url);
    return () => URL.revokeObjectURL(url);
  }, [photo]);

  const shown = photo === null ? undefined : (preview ?? photoUrl);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const typed = handles.split(/[,;\n]+/).map((h) => h.trim()).filter((h) => h !== '');
    const bad = typed.filter((h) => contactHandle(h) === undefined);
    if (bad.length > 0) {
      setHandleError(`Not a phone number or e-mail address: ${bad.join(', ')}`);
      return;
    }
    if (typed.length === 0) {
      setHandleError('Add at least one phone number or e-mail address.');
      return;
    }
    setHandleError(undefined);
    const keep = photo === undefined ? contact?.photo : (photo ?? undefined);
    setSaving(true);
    try {
      await onSave({ ...(contact ? { id: contact.id } : {}), name: name.trim(), handles: typed.map((h) => contactHandle(h)!), ...(keep ? { photo: keep } : {}) });
      onClose();
    } catch (err) {
      setError(describeFailure(err));
      setSaving(false);
    }
  };

  return (
    <Dialog
      open={open}
      title={contact ? 'Edit contact' : 'New contact'}
      onClose={onClose}
      actions={
        <>
          <Button variant="secondary" onClick={onClose}>
            Cancel
          </Button>
          <Button type="submit" form={formId} disabled={saving || name.trim() === ''}>
            {saving ? 'Saving…' : 'Save'}
          </Button>
        </>
      }
    >
      <form id={formId} onSubmit={(e) => void submit(e)} className="flex flex-col gap-3">
        <TextField label="Name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} autoFocus />
        <TextField
          label="Phone numbers and e-mail addresses"
          hint="Separate several with commas."
          value={handles}
          onChange={(e) => setHandles(e.target.value)}
          error={handleError}
          autoComplete="off"
        />
        <div className="flex items-center gap-3">
          {shown ? <img src={shown} alt="" className="h-12 w-12 rounded-full object-cover" /> : null}
          <label className="cursor-pointer rounded-lg px-3 py-1.5 text-sm font-medium text-accent-ink hover:bg-neutral-100 focus-within:outline-2 focus-within:outline-accent dark:text-sky-400 dark:hover:bg-neutral-800">
            {shown ? 'Change picture' : 'Add picture'}
            <input
              type="file"
              accept="image/*"
              className="sr-only"
              onChange={(e) => {
                const file = e.target.files?.[0];
                e.target.value = '';
                if (!file) return;
                thumbnail(file).then(setPhoto, () => setError('That picture could not be read.'));
              }}
            />
          </label>
          {shown ? (
            <Button variant="ghost" onClick={() => setPhoto(null)}>
              Remove picture
            </Button>
          ) : null}
        </div>
        {error ? (
          <p role="alert" className="text-sm text-red-600 dark:text-red-400">
            {error}
          </p>
        ) : null}
      </form>
    </Dialog>
  );
}
