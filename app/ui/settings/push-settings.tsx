'use client';
// Settings → Push: notifications while Cerulean is closed, through the push watcher. On/off, the watcher's address
// (changeable while off), whether the watcher answers and what it is doing, and what it can and cannot see.
import { useCallback, useEffect, useState } from 'react';
import { CeruleanError } from '../../../lib/errors';
import type { WatcherState } from '../../../lib/push/watcher-client';
import { disablePush, enablePush, pushSupport, readPushState, type PushState, type PushSupport } from '../../session/push';
import { useSession } from '../../session/session';
import { TextField } from '../common/text-field';
import { Toggle } from '../common/toggle';
import { describeError, errorCode, type DescribedError } from '../errors';
import { SettingsSection } from './settings-section';

/** How often the status is asked again while this screen is open. */
const STATUS_REFRESH_MS = 15_000;

const STATE_TEXT: Record<WatcherState, string> = {
  connecting: 'Connecting to the push service for this device.',
  watching: 'Watching for new messages.',
  woken: 'Woke this device; waiting for it to fetch its messages.',
  paused: 'Standing by while Cerulean is open here.',
  stopped: 'Stopped: the push service no longer accepts this device’s push certificate. Turn push off and on again.',
};

/** Push failures in words; anything else is described like every other error. */
const PUSH_ERRORS: Record<string, DescribedError> = {
  'bad-watcher-url': { title: 'Check the watcher address', detail: 'It starts with http:// or https://, e.g. https://push.example.', retry: false },
  'watcher-unreachable': { title: 'Can’t reach the push watcher', detail: 'Check the watcher address, and that the watcher is running.', retry: true },
  'watcher-timeout': { title: 'The push watcher did not answer', detail: 'Try again in a moment.', retry: true },
  'watcher-not-told': {
    title: 'Push is off, but the watcher could not be told',
    detail: 'It forgets this device the next time it tries to wake it, since this browser no longer accepts its pushes.',
    retry: false,
  },
  'unknown-enrollment': { title: 'The watcher no longer knows this device', detail: 'Turn push off and on again.', retry: false },
  'notifications-blocked': {
    title: 'Notifications are blocked',
    detail: 'Allow notifications for this site in the browser’s site settings, then try again.',
    retry: false,
  },
  'push-unsupported': { title: 'No push in this browser', detail: 'This browser cannot receive Web Push notifications.', retry: false },
  'no-service-worker': { title: 'The app’s service worker is not running', detail: 'Reload the page and try again.', retry: true },
  'endpoint-not-allowed': {
    title: 'The watcher refused this browser’s push service',
    detail: 'The watcher only sends to push services on the public internet.',
    retry: false,
  },
  'push-key-not-extractable': {
    title: 'This device cannot enroll',
    detail: 'It was set up before push existed. Sign out and set it up again to use push.',
    retry: false,
  },
};

function PushError({ error }: { error: unknown }) {
  const code = errorCode(error);
  const d = error === undefined ? undefined : ((code !== undefined ? PUSH_ERRORS[code] : undefined) ?? describeError(error));
  return (
    // Always in the page, so the failure is announced the moment it appears.
    <div aria-live="assertive" aria-atomic="true" className="contents">
      {d ? (
        <div
          role="alert"
          data-testid="push-error"
          className="flex flex-col gap-1 rounded-xl border border-red-200 bg-red-50 p-4 text-sm text-red-900 dark:border-red-900/60 dark:bg-red-950/40 dark:text-red-100"
        >
          <p className="font-semibold">{d.title}</p>
          <p>{d.detail}</p>
        </div>
      ) : null}
    </div>
  );
}

function StatusLine({ state }: { state: PushState | undefined }) {
  let dot = 'bg-neutral-400';
  let text = 'Checking the watcher…';
  if (state && !state.enrolled) {
    dot = 'bg-amber-500';
    text = 'This device is not enrolled with a watcher. Turn push off and on again.';
  } else if (state?.status) {
    dot = state.status.state === 'stopped' ? 'bg-amber-500' : 'bg-green-500';
    text = `Watcher reachable. ${STATE_TEXT[state.status.state]}`;
  } else if (state?.error !== undefined) {
    dot = 'bg-red-500';
    const code = errorCode(state.error);
    text = code === 'unknown-enrollment' ? 'The watcher no longer knows this device. Turn push off and on again.' : 'Watcher unreachable.';
  }
  return (
    <p aria-live="polite" className="flex items-center gap-2 text-sm" data-testid="push-status" data-state={!state ? 'checking' : !state.enrolled ? 'not-enrolled' : (state.status?.state ?? 'unreachable')}>
      <span aria-hidden="true" className={`inline-block h-2 w-2 shrink-0 rounded-full ${dot}`} />
      {text}
    </p>
  );
}

export function PushSettings() {
  const { settings, updateSettings, getStore, phase } = useSession();
  const [support, setSupport] = useState<PushSupport | undefined>(undefined);
  const [state, setState] = useState<PushState | undefined>(undefined);
  const [watcherUrl, setWatcherUrl] = useState(settings.watcherUrl);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const on = settings.notifications;

  const refresh = useCallback(async () => {
    if (phase !== 'ready') return;
    setState(await readPushState(getStore()));
  }, [getStore, phase]);

  useEffect(() => setSupport(pushSupport()), []);
  useEffect(() => {
    if (!on) {
      setState(undefined);
      return;
    }
    void refresh();
    const timer = setInterval(() => void refresh(), STATUS_REFRESH_MS);
    return () => clearInterval(timer);
  }, [on, refresh]);

  const toggle = async (wanted: boolean) => {
    setBusy(true);
    setError(undefined);
    try {
      if (wanted) {
        const url = watcherUrl.trim().replace(/\/+$/, '');
        if (!/^https?:\/\/[^/]/i.test(url)) throw new CeruleanError('bad-watcher-url', 'the watcher address is not an http(s) URL');
        const next = { ...settings, watcherUrl: url };
        const status = await enablePush(getStore(), next);
        await updateSettings({ watcherUrl: url, notifications: true });
        setState({ enrolled: true, status });
      } else {
        try {
          await disablePush(getStore());
        } finally {
          await updateSettings({ notifications: false });
        }
      }
    } catch (e) {
      setError(e);
    } finally {
      setSupport(pushSupport());
      setBusy(false);
    }
  };

  return (
    <SettingsSection title="Notifications while Cerulean is closed">
      <Toggle
        label="Push notifications"
        description="Get new messages, with sender and text, even when no Cerulean tab is open."
        checked={on}
        onChange={(e) => void toggle(e.target.checked)}
        disabled={busy || support === 'unsupported'}
        data-testid="settings-push"
      />
      <TextField
        label="Push watcher address"
        value={watcherUrl}
        onChange={(e) => setWatcherUrl(e.target.value)}
        inputMode="url"
        autoComplete="off"
        spellCheck={false}
        disabled={on || busy}
        hint={on ? 'Turn push off to use another watcher.' : undefined}
        data-testid="settings-watcher-url"
      />
      {on ? <StatusLine state={state} /> : null}
      {support === 'unsupported' ? (
        <p className="text-sm text-neutral-600 dark:text-neutral-400">This browser cannot receive push notifications.</p>
      ) : support === 'blocked' ? (
        <p className="text-sm text-neutral-600 dark:text-neutral-400">
          Notifications are blocked for this site. Allow them in the browser’s site settings, then turn push on.
        </p>
      ) : null}
      <p className="text-sm text-neutral-600 dark:text-neutral-400" data-testid="push-explainer">
        While Cerulean is closed, the push watcher stands in for this device at the push service. For that it holds
        the device’s push key, push certificate and push token, and it learns that a notification arrived for you, and
        when. It never holds your message keys: every message is encrypted to keys that never leave this browser, so
        the watcher cannot read the text, see who sent it, or send anything as you. It only wakes this browser, which
        fetches the messages and decrypts them here. Turning push off deletes everything the watcher held for this
        device.
      </p>
      <PushError error={error} />
    </SettingsSection>
  );
}
