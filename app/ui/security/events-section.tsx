'use client';
// What this device noticed about keys and devices: new devices on the account or a contact's, and changed keys.
import { useSession } from '../../session/session';
import { Button } from '../common/button';
import { notifyChanged } from '../hooks/local-changes';
import { useContacts } from '../hooks/use-contacts';
import { useSecurityLog } from '../hooks/use-security-log';
import { describeEvent, when } from './describe-event';

export function EventsSection({ headingId }: { headingId: string }) {
  const { client } = useSession();
  const { data: log } = useSecurityLog();
  const { nameFor } = useContacts();
  const unseen = (log ?? []).filter((e) => !e.seen);

  const markSeen = () => {
    client?.markSecuritySeen(unseen.map((e) => e.id)).then(
      () => notifyChanged('security'),
      () => undefined,
    );
  };

  return (
    <section aria-labelledby={headingId} className="flex flex-col gap-2">
      <div className="flex items-center justify-between gap-2">
        <h3 id={headingId} className="text-lg font-semibold">
          Security events
        </h3>
        {unseen.length > 0 ? (
          <Button variant="ghost" onClick={markSeen}>
            Mark all as seen
          </Button>
        ) : null}
      </div>
      {log === undefined ? null : log.length === 0 ? (
        <p className="text-sm text-neutral-600 dark:text-neutral-400">Nothing so far.</p>
      ) : (
        <ul aria-label="Security events" className="flex flex-col divide-y divide-neutral-200 rounded-lg border border-neutral-200 dark:divide-neutral-800 dark:border-neutral-800">
          {log.map((e) => (
            <li key={e.id} data-testid="security-event" className="flex items-start gap-2 px-3 py-2 text-sm">
              <span className="min-w-0 flex-1">
                <span className="block">{describeEvent(e, nameFor)}</span>
                <time dateTime={new Date(e.at).toISOString()} className="block text-xs text-neutral-600 dark:text-neutral-400">
                  {when(e.at)}
                </time>
              </span>
              {!e.seen ? <span className="rounded-full bg-amber-200 px-2 py-0.5 text-xs font-medium text-amber-900 dark:bg-amber-800 dark:text-amber-100">New</span> : null}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
