// One timer per operation: the work settles, or the deadline's error is thrown and `onExpire` tears down
// whatever the work was waiting on (so nothing is left hanging after the caller has moved on).
import type { NetError } from './errors';

export function withDeadline<T>(work: Promise<T>, ms: number, onExpire: () => NetError): Promise<T> {
  if (!Number.isFinite(ms)) return work;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onExpire()), Math.max(0, ms));
    work.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}
