// The pattern every live-data hook shares: read something from the client now, and again whenever one of the
// client's events (or a local change) says it may have changed. Overlapping reads are ordered so a slow, older read
// never overwrites a newer one.
import { useCallback, useEffect, useRef, useState } from 'react';
import type { CeruleanClient } from '../../../lib/client/client';
import type { ClientEvents } from '../../../lib/client/events';
import { onChanged, type LocalTopic } from './local-changes';

export interface Reloaded<T> {
  /** Undefined until the first read finished. */
  data: T | undefined;
  error: unknown;
  reload(): void;
}

export function useReload<T>(
  client: CeruleanClient | undefined,
  read: (client: CeruleanClient) => Promise<T>,
  options: { events?: readonly (keyof ClientEvents)[]; topics?: readonly LocalTopic[]; deps?: readonly unknown[] } = {},
): Reloaded<T> {
  const [state, setState] = useState<{ data: T | undefined; error: unknown }>({ data: undefined, error: undefined });
  const readRef = useRef(read);
  readRef.current = read;
  const generation = useRef(0);
  const events = (options.events ?? []).join(',');
  const topics = (options.topics ?? []).join(',');
  const deps = options.deps ?? [];

  const reload = useCallback(() => {
    if (!client) return;
    const mine = ++generation.current;
    readRef.current(client).then(
      (data) => {
        if (mine === generation.current) setState({ data, error: undefined });
      },
      (error: unknown) => {
        if (mine === generation.current) setState((s) => ({ data: s.data, error }));
      },
    );
    // The caller's deps say when the read itself changes (e.g. another chat id).
  }, [client, ...deps]);

  useEffect(() => {
    setState({ data: undefined, error: undefined });
    reload();
    if (!client) return;
    const offs = [
      ...(events ? events.split(',') : []).map((type) => client.on(type as keyof ClientEvents, reload)),
      ...(topics ? topics.split(',') : []).map((topic) => onChanged(topic as LocalTopic, reload)),
    ];
    return () => {
      generation.current++;
      for (const off of offs) off();
    };
  }, [client, reload, events, topics]);

  return { data: state.data, error: state.error, reload };
}
