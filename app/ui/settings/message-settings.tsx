'use client';
import { useState } from 'react';
import { useSession } from '../../session/session';
import { ErrorNotice } from '../common/error-notice';
import { Toggle } from '../common/toggle';
import { SettingsSection } from './settings-section';

type PushNote = 'unsupported' | 'blocked' | undefined;

export function MessageSettings() {
  const { settings, updateSettings } = useSession();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const [pushNote, setPushNote] = useState<PushNote>(undefined);

  const apply = async (patch: Parameters<typeof updateSettings>[0]) => {
    setBusy(true);
    setError(undefined);
    try {
      await updateSettings(patch);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const setPush = async (on: boolean) => {
    setPushNote(undefined);
    if (!on) return apply({ notifications: false });
    if (typeof Notification === 'undefined') {
      setPushNote('unsupported');
      return;
    }
    const permission = Notification.permission === 'granted' ? 'granted' : await Notification.requestPermission();
    if (permission !== 'granted') {
      setPushNote('blocked');
      return;
    }
    return apply({ notifications: true });
  };

  return (
    <SettingsSection title="Messages and notifications">
      <Toggle
        label="Send read receipts"
        description="People you chat with see when you have read their messages."
        checked={settings.readReceipts}
        onChange={(e) => void apply({ readReceipts: e.target.checked })}
        disabled={busy}
        data-testid="settings-read-receipts"
      />
      <Toggle
        label="Notifications"
        description="Show a notification for new messages and for new devices on your account."
        checked={settings.notifications}
        onChange={(e) => void setPush(e.target.checked)}
        disabled={busy}
        data-testid="settings-push"
      />
      <div aria-live="polite" className="text-xs text-neutral-500 dark:text-neutral-400">
        {pushNote === 'unsupported' ? (
          <p>This browser cannot show notifications.</p>
        ) : pushNote === 'blocked' ? (
          <p>Notifications are blocked for this site. Allow them in the browser’s site settings, then try again.</p>
        ) : settings.notifications ? (
          <p>
            Notifications appear while Cerulean is open. Notifications while it is closed need a push watcher, which
            is not configured yet.
          </p>
        ) : null}
      </div>
      <ErrorNotice error={error} context={{ mode: settings.mode }} />
    </SettingsSection>
  );
}
