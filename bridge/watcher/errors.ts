// The watcher's error types. WatcherConfigError stops the process at start-up; ApiError is a refusal the HTTP API
// turns into a status and a JSON body `{ error: code, message }`, so the PWA can switch on `code`.
import { CeruleanError } from '../../lib/errors';

export class WatcherConfigError extends CeruleanError {}

export class ApiError extends CeruleanError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
    /** Extra JSON fields of the answer (the right shard, say). */
    readonly extra: Readonly<Record<string, string | number>> = {},
  ) {
    super(code, message);
  }
}
