// The client's security log (new devices, key changes), newest first, re-read when the client reports a security
// event or this page marks entries seen.
import type { CeruleanClient } from '../../../lib/client/client';
import { useSession } from '../../session/session';
import { useReload, type Reloaded } from './use-reload';

export type SecurityLogEntry = Awaited<ReturnType<CeruleanClient['securityLog']>>[number];

/** Empty (data undefined) until the session has a client, so the global banner can be mounted at any time. */
export function useSecurityLog(): Reloaded<SecurityLogEntry[]> {
  const { phase, client } = useSession();
  return useReload(phase === 'ready' ? client : undefined, (c) => c.securityLog(), { events: ['security'], topics: ['security'] });
}
