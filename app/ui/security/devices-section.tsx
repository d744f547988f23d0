'use client';
// The devices on the user's own account, as this device's lookups see them: a device nobody here added means
// someone else can read the account's messages.
import { useState } from 'react';
import { useClient } from '../../session/session';
import { Button } from '../common/button';
import { Spinner } from '../common/spinner';
import { deviceLabel, when } from './describe-event';

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
import { describeFailure } from '../chats/failure';
import { displayHandle } from '../chats/handles';
import { useReload } from '../hooks/use-reload';

export function DevicesSection({ headingId }: { headingId: string }) {
  const client = useClient();
  const { data: list, error, reload } = useReload(client, (c) => c.devices(), { events: ['security', 'registration'] });
  const [refreshing, setRefreshing] = useState(false);
  const [refreshError, setRefreshError] = useState<string>();

  const refresh = () => {
    setRefreshing(true);
    setRefreshError(undefined);
    client.devices({ refresh: true }).then(
      () => {
        reload();
        setRefreshing(false);
      },
      (e: unknown) => {
        setRefreshError(describeFailure(e));
        setRefreshing(false);
      },
    );
  };

  return (
    <section aria-labelledby={headingId} className="flex flex-col gap-2">
      <div className="flex items-center justify-between gap-2">
        <h3 id={headingId} className="text-lg font-semibold">
          Your devices
        </h3>
        <Button variant="secondary" onClick={refresh} disabled={refreshing}>
          {refreshing ? 'Checking…' : 'Check now'}
        </Button>
      </div>
      <p className="text-sm text-neutral-600 dark:text-neutral-400">
        Every device listed here receives your messages. This device checks the list itself, so a device added without
        your knowledge shows up here even if the server does not announce it.
      </p>
      <div aria-live="polite" className="text-sm">
        {refreshing ? <Spinner label="Looking up your devices" className="h-4 w-4" /> : null}
        {refreshError ? <p className="text-red-600 dark:text-red-400">{refreshError}</p> : null}
      </div>
      {list === undefined ? (
        error !== undefined ? (
          <p className="text-sm text-red-600 dark:text-red-400">{describeFailure(error)}</p>
        ) : (
          <Spinner label="Loading devices" />
        )
      ) : list.length === 0 ? (
        <p className="text-sm text-neutral-600 dark:text-neutral-400">No devices seen yet. Check now to look them up.</p>
      ) : (
        <ul aria-label="Devices" className="flex flex-col divide-y divide-neutral-200 rounded-lg border border-neutral-200 dark:divide-neutral-800 dark:border-neutral-800">
          {list.map((d) => (
            <li key={d.id} data-testid="device-row" data-current={d.current ? 'true' : 'false'} className="flex flex-col gap-0.5 px-3 py-2 text-sm">
              <span className="flex flex-wrap items-center gap-2">
                <span className="font-medium">{capitalize(deviceLabel(d.deviceName, d.pushToken))}</span>
                {d.current ? <span className="rounded-full bg-accent px-2 py-0.5 text-xs font-medium text-white">This device</span> : null}
                {!d.present ? (
                  <span className="rounded-full bg-neutral-200 px-2 py-0.5 text-xs text-neutral-700 dark:bg-neutral-800 dark:text-neutral-300">No longer registered</span>
                ) : null}
              </span>
              <span className="text-xs text-neutral-600 dark:text-neutral-400">
                First seen {when(d.firstSeen)} · last seen {when(d.lastSeen)} · {displayHandle(d.handle)}
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
