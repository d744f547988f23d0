'use client';
import { useId, useState } from 'react';
import { exportBackup, importBackup, type ImportCounts } from '../../../lib/client/backup';
import { CeruleanError } from '../../../lib/errors';
import { useSession } from '../../session/session';
import { Button } from '../common/button';
import { ErrorNotice } from '../common/error-notice';
import { Spinner } from '../common/spinner';
import { TextField } from '../common/text-field';
import { downloadBytes } from './download';
import { SettingsSection } from './settings-section';

const BACKUP_EXTENSION = '.cerulean-backup';

function backupFilename(now = new Date()): string {
  const day = `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, '0')}-${String(now.getDate()).padStart(2, '0')}`;
  return `cerulean-${day}${BACKUP_EXTENSION}`;
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

export function BackupSettings() {
  const session = useSession();
  const fileInputId = useId();
  const [passphrase, setPassphrase] = useState('');
  const [file, setFile] = useState<File | undefined>(undefined);
  const [busy, setBusy] = useState<'export' | 'import' | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [done, setDone] = useState<string | undefined>(undefined);

  const start = (kind: 'export' | 'import'): boolean => {
    setError(undefined);
    setDone(undefined);
    if (!passphrase) {
      setError(new CeruleanError('passphrase-missing', 'no passphrase'));
      return false;
    }
    setBusy(kind);
    return true;
  };

  const doExport = async () => {
    if (!start('export')) return;
    try {
      const bytes = await exportBackup(session.getStore(), passphrase);
      downloadBytes(bytes, backupFilename());
      setDone('Backup saved. Keep the passphrase: without it the backup cannot be opened.');
    } catch (e) {
      setError(e);
    } finally {
      setBusy(undefined);
    }
  };

  const doImport = async (chosen: File | undefined) => {
    if (!chosen || !start('import')) return;
    try {
      const counts: ImportCounts = await importBackup(session.getStore(), new Uint8Array(await chosen.arrayBuffer()), passphrase);
      setFile(undefined);
      setDone(
        `Imported ${plural(counts.chats, 'chat', 'chats')}, ${plural(counts.messages, 'message', 'messages')} and ${plural(counts.contacts, 'contact', 'contacts')}.`,
      );
      // Every screen re-reads the store through the reopened client.
      await session.reloadClient();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(undefined);
    }
  };

  return (
    <SettingsSection title="Backup">
      <p className="text-sm text-neutral-600 dark:text-neutral-400">
        An encrypted copy of your chats, messages and contacts. Keys are not included: a restored browser registers as
        a new device, which your other devices will see.
      </p>
      <TextField
        label="Backup passphrase"
        hint="Used to encrypt a new backup, or to open the one you import."
        value={passphrase}
        onChange={(e) => setPassphrase(e.target.value)}
        type="password"
        autoComplete="new-password"
        disabled={busy !== undefined}
        data-testid="settings-passphrase"
      />
      <div className="flex flex-wrap items-center gap-3">
        <Button onClick={() => void doExport()} disabled={busy !== undefined} data-testid="settings-export">
          {busy === 'export' ? <Spinner label="" className="h-4 w-4 text-white" /> : null}
          {busy === 'export' ? 'Encrypting…' : 'Export backup'}
        </Button>
      </div>
      <div className="flex flex-col gap-2">
        <label htmlFor={fileInputId} className="text-sm font-medium">
          Import a backup
        </label>
        <input
          id={fileInputId}
          type="file"
          accept={`${BACKUP_EXTENSION},application/octet-stream`}
          disabled={busy !== undefined}
          onChange={(e) => {
            const chosen = e.target.files?.[0];
            // Cleared so choosing the same file again still fires a change.
            e.target.value = '';
            setFile(chosen);
            void doImport(chosen);
          }}
          className="text-sm file:mr-3 file:rounded-lg file:border-0 file:bg-neutral-200 file:px-3 file:py-2 file:text-sm file:font-medium hover:file:bg-neutral-300 dark:file:bg-neutral-800 dark:file:text-neutral-100"
          data-testid="settings-import"
        />
        {file && busy === undefined ? (
          <div>
            <Button variant="secondary" onClick={() => void doImport(file)}>
              Import {file.name}
            </Button>
          </div>
        ) : null}
        {busy === 'import' ? <Spinner label="Importing the backup" /> : null}
      </div>
      <p aria-live="polite" className="text-sm text-green-700 dark:text-green-400" data-testid="settings-backup-result">
        {done ?? ''}
      </p>
      <ErrorNotice error={error} context={{ mode: session.settings.mode }} />
    </SettingsSection>
  );
}
