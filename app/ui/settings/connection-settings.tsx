'use client';
import { useState, type FormEvent } from 'react';
import { bridgeProtocols, tunnelUrl } from '../../../lib/net/byte-stream';
import { useSession } from '../../session/session';
import { Button } from '../common/button';
import { ErrorNotice } from '../common/error-notice';
import { TextField } from '../common/text-field';
import { SettingsSection } from './settings-section';

export function ConnectionSettings() {
  const { settings, updateSettings } = useSession();
  const [bridgeUrl, setBridgeUrl] = useState(settings.bridgeUrl);
  const [bridgeToken, setBridgeToken] = useState(settings.bridgeToken ?? '');
  const [state, setState] = useState<'idle' | 'saving' | 'saved'>('idle');
  const [error, setError] = useState<unknown>(undefined);

  const save = async (e?: FormEvent) => {
    e?.preventDefault();
    setError(undefined);
    const url = bridgeUrl.trim();
    const token = bridgeToken.trim();
    setState('saving');
    try {
      tunnelUrl(url, 'example.com', 443);
      if (token) bridgeProtocols(token);
      // A new bridge or token reopens the connection through it.
      await updateSettings({ bridgeUrl: url, bridgeToken: token || undefined });
      setState('saved');
    } catch (err) {
      setError(err);
      setState('idle');
    }
  };

  const changed = bridgeUrl.trim() !== settings.bridgeUrl || bridgeToken.trim() !== (settings.bridgeToken ?? '');
  return (
    <SettingsSection title="Connection">
      <form className="flex flex-col gap-4" onSubmit={(e) => void save(e)}>
        <TextField
          label="Bridge address"
          value={bridgeUrl}
          onChange={(e) => {
            setBridgeUrl(e.target.value);
            setState('idle');
          }}
          inputMode="url"
          autoComplete="off"
          spellCheck={false}
          required
          data-testid="settings-bridge-url"
        />
        <TextField
          label="Bridge access token (optional)"
          value={bridgeToken}
          onChange={(e) => {
            setBridgeToken(e.target.value);
            setState('idle');
          }}
          type="password"
          autoComplete="off"
          spellCheck={false}
          data-testid="settings-bridge-token"
        />
        <ErrorNotice error={error} context={{ mode: settings.mode, where: 'bridge' }} />
        <div className="flex items-center gap-3">
          <Button type="submit" disabled={state === 'saving' || !changed} data-testid="settings-save">
            {state === 'saving' ? 'Saving…' : 'Save'}
          </Button>
          <span aria-live="polite" className="text-sm text-neutral-600 dark:text-neutral-400">
            {state === 'saved' ? 'Saved. Reconnecting through the new bridge.' : ''}
          </span>
        </div>
      </form>
      <div className="flex flex-col gap-1 border-t border-neutral-200 pt-4 text-sm dark:border-neutral-800">
        <p>
          <span className="text-neutral-600 dark:text-neutral-400">Service: </span>
          <span className="font-medium" data-testid="settings-service">
            {settings.mode === 'sandbox' ? 'Local sandbox' : 'Apple iMessage'}
          </span>
        </p>
        <p>
          <span className="text-neutral-600 dark:text-neutral-400">This device: </span>
          <span className="font-medium">{settings.deviceName}</span>
        </p>
        <p className="text-xs text-neutral-600 dark:text-neutral-400">
          Changing the service requires signing out (below): this device’s keys and history are deleted and you set
          Cerulean up again for the other service.
        </p>
      </div>
    </SettingsSection>
  );
}
