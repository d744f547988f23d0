// Lookup answers come back as c:97 notifications matched on `U` (ids.md §7). The courier client hands notifications
// over one at a time and waits for each, so a c:97 must be recognised and answered as it arrives — if it queued
// behind the notification whose processing is waiting for it, neither would ever finish.
import { toHex } from '../codec/bytes';
import { replyCorrelationId, type LookupTransport } from '../ids/query';
import { CeruleanError } from '../errors';

interface Waiter {
  deliver(payload: Uint8Array): void;
  fail(error: Error): void;
}

export class LookupReplies {
  private readonly waiting = new Map<string, Waiter>();

  /** The LookupTransport for lib/ids lookup(), sending with `send`. */
  transport(send: (topic: string, payload: Uint8Array) => Promise<void>): LookupTransport {
    return {
      send,
      awaitReply: (U, signal) =>
        new Promise<Uint8Array>((resolve, reject) => {
          const key = toHex(U);
          const aborted = () => new CeruleanError('lookup-aborted', 'the lookup was abandoned');
          if (signal.aborted) return reject(aborted());
          const waiter: Waiter = {
            deliver: (payload) => {
              this.forget(key, waiter);
              resolve(payload);
            },
            fail: (error) => {
              this.forget(key, waiter);
              reject(error);
            },
          };
          this.waiting.set(key, waiter);
          signal.addEventListener('abort', () => waiter.fail(aborted()));
        }),
    };
  }

  /** True when `payload` was a c:97 reply (handled, whether or not anyone still waited for it). */
  offer(payload: Uint8Array): boolean {
    const U = replyCorrelationId(payload);
    if (!U) return false;
    this.waiting.get(toHex(U))?.deliver(payload);
    return true;
  }

  /** Fails every lookup still waiting (the connection is going away for good). */
  close(): void {
    for (const waiter of [...this.waiting.values()]) waiter.fail(new CeruleanError('client-closed', 'the client closed'));
  }

  private forget(key: string, waiter: Waiter): void {
    if (this.waiting.get(key) === waiter) this.waiting.delete(key);
  }
}
