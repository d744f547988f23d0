'use client';
// The alert for a device added to the user's own account, raised by this device's own lookups (not pushed by the
// server), so an account taken over through the directory still shows up here. A banner until dismissed, and a
// system notification once per event when the user allowed notifications.
import { useEffect } from 'react';
import { useSession } from '../../session/session';
import { notifyChanged } from '../hooks/local-changes';
import { useSecurityLog, type SecurityLogEntry } from '../hooks/use-security-log';
import { routeHref } from '../shell/router';
import { deviceLabel, when } from './describe-event';

type NewDeviceEntry = Extract<SecurityLogEntry, { kind: 'new-device' }>;

/** Events already shown as a system notification, so a reload does not show them again. */
const NOTIFIED_KEY = 'cerulean.security.notified';
const NOTIFIED_MAX = 200;
const ADVICE = "If this wasn't you, change your Apple ID password now and remove the device from your account.";

function readNotified(): string[] {
  try {
    const v: unknown = JSON.parse(localStorage.getItem(NOTIFIED_KEY) ?? '[]');
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

async function showNotification(e: NewDeviceEntry): Promise<void> {
  const title = 'New device on your account';
  const options: NotificationOptions = {
    body: `${deviceLabel(e.deviceName, e.pushToken)} was added (${when(e.at)}). ${ADVICE}`,
    tag: `security-${e.id}`,
    icon: '/icons/icon-192.png',
    data: { url: `/${routeHref({ name: 'security' })}` },
  };
  const registration = 'serviceWorker' in navigator ? await navigator.serviceWorker.getRegistration() : undefined;
  if (registration) await registration.showNotification(title, options);
  else new Notification(title, options);
}

function unseenOwnDevices(log: SecurityLogEntry[] | undefined): NewDeviceEntry[] {
  return (log ?? []).filter((e): e is NewDeviceEntry => e.kind === 'new-device' && e.own && !e.seen);
}

export function SecurityAlerts() {
  const { phase, client } = useSession();
  const { data: log } = useSecurityLog();
  const pending = unseenOwnDevices(log);

  useEffect(() => {
    const pending = unseenOwnDevices(log);
    if (pending.length === 0 || typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
    const notified = readNotified();
    const fresh = pending.filter((e) => !notified.includes(e.id));
    if (fresh.length === 0) return;
    try {
      localStorage.setItem(NOTIFIED_KEY, JSON.stringify([...fresh.map((e) => e.id), ...notified].slice(0, NOTIFIED_MAX)));
    } catch {
      // Without storage a reload may notify again; better than not at all.
    }
    for (const e of fresh) void showNotification(e).catch(() => undefined);
  }, [log]);

  if (phase !== 'ready' || !client || pending.length === 0) return null;

  const dismiss = () => {
    client.markSecuritySeen(pending.map((e) => e.id)).then(
      () => notifyChanged('security'),
      () => undefined,
    );
  };

  return (
    <div role="alert" data-testid="security-alert" className="flex flex-col gap-2 border-b border-amber-300 bg-amber-50 px-4 py-3 text-sm text-amber-950 sm:flex-row sm:items-start dark:border-amber-700 dark:bg-amber-950/60 dark:text-amber-100">
      <div className="flex-1">
        {pending.length === 1 ? (
          <p>
            <strong>A new device was added to your account:</strong> {deviceLabel(pending[0]!.deviceName, pending[0]!.pushToken)}, {when(pending[0]!.at)}.
          </p>
        ) : (
          <>
            <p>
              <strong>{pending.length} new devices were added to your account:</strong>
            </p>
            <ul className="ml-5 list-disc">
              {pending.map((e) => (
                <li key={e.id}>
                  {deviceLabel(e.deviceName, e.pushToken)}, {when(e.at)}
                </li>
              ))}
            </ul>
          </>
        )}
        <p>{ADVICE}</p>
      </div>
      <div className="flex shrink-0 gap-2">
        <a
          href={routeHref({ name: 'security' })}
          className="rounded-lg px-3 py-1.5 font-medium underline hover:bg-amber-100 focus-visible:outline-2 focus-visible:outline-accent dark:hover:bg-amber-900"
        >
          Review devices
        </a>
        <button
          type="button"
          onClick={dismiss}
          className="rounded-lg bg-amber-200 px-3 py-1.5 font-medium hover:bg-amber-300 focus-visible:outline-2 focus-visible:outline-accent dark:bg-amber-800 dark:hover:bg-amber-700"
        >
          Dismiss
        </button>
      </div>
    </div>
  );
}
