// Typed failures of the APNs client side: albert activation and the courier connection. Each code names one thing
// the app can act on (re-activate, retry later, shrink a message…); see apns.md §3.2, §3.5 and §7 for the statuses.
import { CeruleanError } from '../errors';

export type ApnsErrorCode =
  // albert (§7).
  | 'activation-failed' // albert answered with an error page; `reason` holds its <b>…</b> text
  | 'activation-bad-response' // albert's answer has no usable DeviceCertificate
  // Connecting to the courier (§4).
  | 'certificate-rejected' // 0x08 status 2: the push certificate is dead; activate again
  | 'connect-refused' // 0x08 with another non-zero status
  | 'stale-nonce' // 0x08 with item 7: our clock is off; retried with the server's time
  | 'connect-timeout' // no transport or no 0x08 in time
  | 'no-token' // status 0 but neither an issued nor a saved token
  | 'unsupported-framing' // the server chose an ALPN protocol this client does not speak
  // A live connection.
  | 'protocol-error' // a malformed or out-of-place frame
  | 'keep-alive-timeout' // no 0x0D answered a 0x0C in time
  | 'redirected' // 0x17: the courier asked us to go elsewhere
  | 'connection-closed' // the transport ended
  // Upstream sends (§3.5) and the client itself.
  | 'message-too-large' // the courier acked with status 3
  | 'send-rejected' // any other non-zero ack status (0x80 after its retries)
  | 'send-timeout' // no ack in time
  | 'send-queue-full'
  | 'handler-failed' // onNotification threw: the notification stays unacked and comes back later
  | 'token-persist-failed' // onToken threw
  | 'listener-failed' // an event listener threw
  | 'client-closed';

export class ApnsError extends CeruleanError {
  declare readonly code: ApnsErrorCode;
  /** The 0x08 or 0x0B status, or the HTTP status of an albert failure. */
  readonly status?: number;
  /** Server-given text: albert's <b> reason, or the courier's redirect reason. */
  readonly reason?: string;

  constructor(code: ApnsErrorCode, message: string, options?: { cause?: unknown; status?: number; reason?: string }) {
    super(code, message, options);
    if (options?.status !== undefined) this.status = options.status;
    if (options?.reason !== undefined) this.reason = options.reason;
  }
}

/** 0x08 status 2: retrying with the same certificate cannot succeed, so the client stops and the app re-activates. */
export class CertificateRejectedError extends ApnsError {
  constructor(status: number) {
    super('certificate-rejected', 'the courier rejected the push certificate; activate the device again', { status });
  }
}
