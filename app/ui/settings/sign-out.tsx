'use client';
import { useState } from 'react';
import { disablePush } from '../../session/push';
import { useSession } from '../../session/session';
import { clearDrafts } from '../chats/drafts';
import { Button } from '../common/button';
import { Dialog } from '../common/dialog';
import { ErrorNotice } from '../common/error-notice';
import { navigate } from '../shell/router';
import { SettingsSection } from './settings-section';

export function SignOut() {
  const session = useSession();
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);

  const confirm = async () => {
    setBusy(true);
    setError(undefined);
    try {
      if (session.settings.notifications) {
        // The watcher holds this device's push credentials: it deletes them now. Unreachable, it deletes them when
        // its next wake-up bounces off the dropped subscription, so signing out goes on regardless.
        await disablePush(session.getStore()).catch(() => undefined);
        await session.updateSettings({ notifications: false });
      }
      await session.signOut();
      // Drafts are message text too: they go with the history.
      clearDrafts();
      navigate({ name: 'chats' });
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };

  return (
    <SettingsSection title="Sign out">
      <p className="text-sm text-neutral-600 dark:text-neutral-400">
        Signing out deletes this device’s keys and every message and contact stored in this browser. Export a backup
        first to keep your history.
      </p>
      <div>
        <Button variant="danger" onClick={() => setOpen(true)} data-testid="settings-signout">
          Sign out…
        </Button>
      </div>
      <Dialog
        open={open}
        title="Sign out and delete everything here?"
        onClose={() => !busy && setOpen(false)}
        actions={
          <>
            <Button variant="secondary" onClick={() => setOpen(false)} disabled={busy} autoFocus>
              Cancel
            </Button>
            <Button variant="danger" onClick={() => void confirm()} disabled={busy} data-testid="settings-signout-confirm">
              {busy ? 'Signing out…' : 'Sign out and delete'}
            </Button>
          </>
        }
      >
        <p>
          This browser’s keys, messages, contacts and settings for {session.client?.handles[0]?.replace(/^(tel|mailto):/, '') ?? 'this account'} are
          deleted. Your other devices and your account are not affected. This cannot be undone.
        </p>
        <ErrorNotice error={error} context={{ mode: session.settings.mode }} />
      </Dialog>
    </SettingsSection>
  );
}
