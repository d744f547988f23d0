// Short human times for lists and bubbles, in the user's locale.

const DAY_MS = 24 * 60 * 60 * 1000;

function startOfDay(ms: number): number {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

/** Clock time, e.g. "14:05" or "2:05 PM" depending on locale. */
export function formatTime(ms: number): string {
  return new Date(ms).toLocaleTimeString(undefined, { hour: 'numeric', minute: '2-digit' });
}

/** "Today", "Yesterday", a weekday within the last week, else a date ("12 Mar" / "12 Mar 2023"). */
export function formatDay(ms: number, now: number = Date.now()): string {
  const days = Math.round((startOfDay(now) - startOfDay(ms)) / DAY_MS);
  if (days === 0) return 'Today';
  if (days === 1) return 'Yesterday';
  if (days > 1 && days < 7) return new Date(ms).toLocaleDateString(undefined, { weekday: 'long' });
  const sameYear = new Date(ms).getFullYear() === new Date(now).getFullYear();
  return new Date(ms).toLocaleDateString(undefined, {
    day: 'numeric',
    month: 'short',
    ...(sameYear ? {} : { year: 'numeric' }),
  });
}

/** For list rows: the time if today, else the day. */
export function formatListTime(ms: number, now: number = Date.now()): string {
  return startOfDay(ms) === startOfDay(now) ? formatTime(ms) : formatDay(ms, now);
}
