'use client';
import { useEffect, useState } from 'react';
import { useSession } from '../../session/session';
import { describeError } from '../errors';

function useOnline(): boolean {
  const [online, setOnline] = useState(() => (typeof navigator === 'undefined' ? true : navigator.onLine));
  useEffect(() => {
    const update = () => setOnline(navigator.onLine);
    window.addEventListener('online', update);
    window.addEventListener('offline', update);
    return () => {
      window.removeEventListener('online', update);
      window.removeEventListener('offline', update);
    };
  }, []);
  return online;
}

type Shown = 'connected' | 'connecting' | 'disconnected' | 'closed' | 'offline';

const TEXT: Record<Shown, string> = {
  connected: 'Connected',
  connecting: 'Connecting…',
  disconnected: 'Reconnecting…',
  closed: 'Not connected',
  offline: 'Offline',
};

const DOT: Record<Shown, string> = {
  connected: 'bg-green-500',
  connecting: 'bg-amber-400 animate-pulse motion-reduce:animate-none',
  disconnected: 'bg-red-500',
  closed: 'bg-neutral-400',
  offline: 'bg-neutral-400',
};

/**
 * The push connection in a word, plus the reason when it is down. A live region that changes only with the state
 * (the time of the next attempt is in the tooltip), so screen readers are not flooded.
 */
export function ConnectionStatus() {
  const { connection, connectionError, retryAt, settings } = useSession();
  const online = useOnline();
  const state: Shown = !online && connection !== 'connected' ? 'offline' : connection;
  const reason =
    connectionError !== undefined && (state === 'disconnected' || state === 'connecting')
      ? describeError(connectionError, { mode: settings.mode })
      : undefined;
  const next = retryAt !== undefined && retryAt > Date.now() ? ` Next attempt at ${new Date(retryAt).toLocaleTimeString()}.` : '';
  return (
    <p
      role="status"
      data-testid="connection-status"
      data-state={state}
      title={reason ? `${reason.detail}${next}` : undefined}
      className="flex min-w-0 items-center gap-2 text-xs text-neutral-600 dark:text-neutral-400"
    >
      <span aria-hidden="true" className={`h-2 w-2 shrink-0 rounded-full ${DOT[state]}`} />
      <span className="truncate">
        {TEXT[state]}
        {reason ? ` · ${reason.title}` : ''}
      </span>
    </p>
  );
}
