'use client';
import { useState } from 'react';
import { useSession } from '../../session/session';
import { ErrorNotice } from '../common/error-notice';
import { Toggle } from '../common/toggle';
import { SettingsSection } from './settings-section';

export function MessageSettings() {
  const { settings, updateSettings } = useSession();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);

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

  return (
    <SettingsSection title="Messages">
      <Toggle
        label="Send read receipts"
        description="People you chat with see when you have read their messages."
        checked={settings.readReceipts}
        onChange={(e) => void apply({ readReceipts: e.target.checked })}
        disabled={busy}
        data-testid="settings-read-receipts"
      />
      <ErrorNotice error={error} context={{ mode: settings.mode }} />
    </SettingsSection>
  );
}
