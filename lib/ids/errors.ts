// What can go wrong talking to IDS, as one error class a UI can switch on. `code` names the action a person or the
// client can take (sign in again, fetch fresh validation data, check the relay code…); `status` carries the IDS
// status number when the server gave one (ids.md §5 table), so nothing Apple said is lost.
import { CeruleanError } from '../errors';
import type { PlistDict } from '../codec/plist';

export type IdsErrorCode =
  /** 6004: the validation data was rejected or has expired; fetch fresh data and register again. */
  | 'validation-data-expired'
  /** 6005: the auth (or ID) certificate or auth token is dead; sign in / authenticate that user again. */
  | 'auth-expired'
  /** The relay has no provider for that registration code (HTTP 404). */
  | 'relay-unknown-code'
  /** The relay's provider failed to produce validation data (HTTP 500, or an `error` in its answer). */
  | 'relay-failed'
  /** The lookup reply did not arrive in time. */
  | 'lookup-timeout'
  /** 5206: the lookup answer was too large for the tunnel; ask for fewer handles at once. */
  | 'response-too-large'
  /** Register refused a user (6001/6009 come with an `alert` to show). */
  | 'registration-refused'
  /** Apple's carrier list has no entry (or no downloadable carrier bundle) for the SIM's MCC-MNC. */
  | 'unknown-carrier'
  /** The carrier's bundles name no SMS registration gateway (PhoneNumberRegistrationGatewayAddress). */
  | 'no-gateway'
  /** The server answered with an HTTP status other than 200 and no IDS status. */
  | 'http-status'
  /** Any other non-zero IDS status (see `status`). */
  | 'ids-status';

export class IdsError extends CeruleanError {
  declare readonly code: IdsErrorCode;
  /** The IDS status (e.g. 5032, 6009), when the server gave one. */
  readonly status?: number;
  /** The HTTP status, when it was not 200. */
  readonly httpStatus?: number;
  /** The user the failure belongs to, for per-user answers (register, authentication). */
  readonly userId?: string;
  /** Register's `alert` dictionary ({title, body, button, action?}), meant to be shown as is. */
  readonly alert?: PlistDict;

  constructor(
    code: IdsErrorCode,
    message: string,
    details: { status?: number; httpStatus?: number; userId?: string; alert?: PlistDict; cause?: unknown } = {},
  ) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause });
    if (details.status !== undefined) this.status = details.status;
    if (details.httpStatus !== undefined) this.httpStatus = details.httpStatus;
    if (details.userId !== undefined) this.userId = details.userId;
    if (details.alert !== undefined) this.alert = details.alert;
  }
}

/** IDS status numbers the client acts on (ids.md §5). */
export const IdsStatus = {
  ok: 0,
  unauthenticated: 5000,
  invalidNameOrPassword: 5012,
  responseTooLarge: 5206,
  actionDoNotRetry: 6001,
  retryWithNewAbsintheContext: 6004,
  refreshCredentials: 6005,
  permanentFailure: 6009,
} as const;

/** The error for a non-zero status that has no more specific meaning where it arrived. */
export function statusError(status: number, what: string, extra: { userId?: string; alert?: PlistDict } = {}): IdsError {
  if (status === IdsStatus.retryWithNewAbsintheContext) {
    return new IdsError('validation-data-expired', `${what}: validation data rejected (6004)`, { status, ...extra });
  }
  if (status === IdsStatus.refreshCredentials) {
    return new IdsError('auth-expired', `${what}: credentials must be refreshed (6005)`, { status, ...extra });
  }
  return new IdsError('ids-status', `${what} failed with IDS status ${status}`, { status, ...extra });
}
