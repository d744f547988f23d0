// Failures in words a person can act on. lib/ throws CeruleanErrors whose `code` names the cause (a bridge close
// code, a TLS check, an IDS status, a relay answer…); this maps each code to a short title, one sentence on what to
// do, and whether trying the same thing again can help (the UI shows a Retry button only then).
import { CeruleanError } from '../../lib/errors';
import { IdsError } from '../../lib/ids/errors';

export interface DescribedError {
  title: string;
  detail: string;
  retry: boolean;
}

export interface ErrorContext {
  /** Which service the app talks to: the wording of "the service is down" differs. */
  mode?: 'sandbox' | 'apple';
  /** Where the failing connection went, when the caller knows (the onboarding watches its tunnels). */
  where?: 'bridge' | 'relay' | 'service';
  /** The Apple ID step the failure answered: a wrong code reads differently from a wrong password. */
  stage?: 'password' | 'code';
}

type Entry = DescribedError | ((ctx: ErrorContext, e: unknown) => DescribedError);

const service = (ctx: ErrorContext) => (ctx.mode === 'apple' ? "Apple's servers" : 'the sandbox');

const unreachableTarget = (ctx: ErrorContext): DescribedError =>
  ctx.where === 'relay'
    ? {
        title: "Can't reach the registration relay",
        detail: 'The bridge could not connect to the relay. Check the relay address, or try again later.',
        retry: true,
      }
    : ctx.mode === 'apple'
      ? {
          title: "Can't reach Apple's servers",
          detail: 'The bridge could not connect to Apple. Check the bridge machine’s internet connection and try again.',
          retry: true,
        }
      : {
          title: 'The sandbox is not responding',
          detail: 'The bridge could not connect to the local sandbox. Start it (npm start) and try again.',
          retry: true,
        };

const certificateMismatch = (ctx: ErrorContext): DescribedError => ({
  title: 'Certificate mismatch',
  detail:
    ctx.mode === 'apple'
      ? "The server's certificate does not chain to the Apple root certificates in your settings. Check the roots you pasted; someone may be intercepting the connection."
      : "The server's certificate is not from the sandbox CA this app loaded. If the sandbox was reset, reload the page to load its new CA; otherwise someone may be intercepting the connection.",
  retry: true,
});

const droppedConnection: DescribedError = {
  title: 'The connection dropped',
  detail: 'The connection through the bridge closed unexpectedly. Try again.',
  retry: true,
};

const ENTRIES: Record<string, Entry> = {
  // The bridge and its tunnels (lib/net/errors.ts close codes).
  'bridge-unreachable': {
    title: "Can't reach the bridge",
    detail: 'Check the bridge address (ws://host:port) and that the bridge is running, then try again.',
    retry: true,
  },
  'bridge-timeout': {
    title: 'The bridge did not answer',
    detail: 'Opening a connection to the bridge timed out. Check the address and your network, then try again.',
    retry: true,
  },
  'bridge-unauthorized': {
    title: 'The bridge rejected the access token',
    detail: 'This bridge needs an access token. Enter the token its operator gave you.',
    retry: false,
  },
  'bridge-refused': (ctx) => ({
    title: 'The bridge refused the connection',
    detail: `This bridge does not allow connections to ${ctx.where === 'relay' ? 'the registration relay' : service(ctx)}. Use a bridge that allows them, or ask its operator.`,
    retry: true,
  }),
  'bridge-bad-destination': (ctx) => ({
    title: 'The bridge could not read the destination',
    detail: `The bridge did not understand where to connect. Check that the bridge is a Cerulean bridge and that it is set up for ${service(ctx)}.`,
    retry: true,
  }),
  'host-not-found': (ctx) =>
    ctx.where === 'relay'
      ? { title: "Can't find the registration relay", detail: 'The bridge found no address for the relay. Check the relay address.', retry: true }
      : ctx.mode === 'apple'
        ? { title: "Can't find Apple's servers", detail: "The bridge found no address for Apple's servers. Check the bridge machine's DNS.", retry: true }
        : {
            title: 'The bridge does not know the sandbox',
            detail: "The bridge has no address for the sandbox's servers. Start the bridge with the sandbox's host map (npm start does this).",
            retry: true,
          },
  'bridge-limit': { title: 'The bridge is busy', detail: 'The bridge has too many open connections. Wait a moment and try again.', retry: true },
  'connect-failed': unreachableTarget,
  'connect-timeout': unreachableTarget,
  'bridge-going-away': { title: 'The bridge is restarting', detail: 'The bridge is shutting down. Try again in a moment.', retry: true },
  'bridge-error': droppedConnection,
  'connection-lost': droppedConnection,
  'connection-closed': droppedConnection,
  'idle-timeout': droppedConnection,
  'receive-overflow': droppedConnection,
  'bad-bridge-url': {
    title: 'That bridge address is not valid',
    detail: 'Enter a WebSocket address such as ws://localhost:8787 or wss://bridge.example.com.',
    retry: false,
  },
  'bad-bridge-token': {
    title: 'That access token is not valid',
    detail: 'A bridge token is 16 to 512 letters, digits or . _ ~ - characters.',
    retry: false,
  },

  // TLS (lib/net/tls, cert-verify).
  'tls-untrusted-certificate': certificateMismatch,
  'tls-bad-hostname': certificateMismatch,
  'tls-bad-certificate': certificateMismatch,
  'tls-certificate-expired': {
    title: 'A certificate has expired',
    detail: "A server certificate is expired or not yet valid. Check this device's date and time.",
    retry: true,
  },
  'tls-timeout': { title: 'The secure connection timed out', detail: 'The server did not finish the handshake in time. Try again.', retry: true },
  'tls-handshake-failed': { title: 'The secure connection failed', detail: 'The TLS handshake with the server failed. Try again.', retry: true },
  'tls-alert': { title: 'The server ended the secure connection', detail: 'The server refused the TLS handshake. Try again.', retry: true },
  'tls-protocol-error': { title: 'The secure connection failed', detail: 'The server broke the TLS protocol. Try again.', retry: true },
  'bad-trust-anchor': (ctx) => ({
    title: "The root certificates can't be read",
    detail:
      ctx.mode === 'apple'
        ? "Paste Apple's root certificates as PEM text (-----BEGIN CERTIFICATE----- …)."
        : "The sandbox CA the app loaded is not a certificate. Check that the sandbox's CA is served at the configured address.",
    retry: false,
  }),
  'http-timeout': (ctx) => ({ title: 'No answer in time', detail: `${cap(service(ctx))} did not answer in time. Try again.`, retry: true }),
  'http-bad-response': (ctx) => ({ title: 'A garbled answer', detail: `${cap(service(ctx))} sent an answer that could not be read. Try again.`, retry: true }),

  // The app's own trust setup.
  'sandbox-ca-unavailable': {
    title: "Can't load the sandbox certificate",
    detail: "The app could not fetch the sandbox's CA certificate from this site. Is the sandbox running (npm start)?",
    retry: true,
  },
  'apple-roots-missing': {
    title: "Apple's root certificates are needed",
    detail: "Paste Apple's root certificates (PEM) so the app can check it is talking to Apple.",
    retry: false,
  },

  // Push activation and the courier (lib/apns).
  'activation-failed': { title: 'Push activation failed', detail: 'The activation server refused this device. Try again later.', retry: true },
  'activation-bad-response': { title: 'Push activation failed', detail: 'The activation server sent an unusable answer. Try again.', retry: true },
  'certificate-rejected': {
    title: 'The push certificate was rejected',
    detail: "This browser's push certificate is no longer accepted. Sign out and set Cerulean up again.",
    retry: false,
  },
  'connect-refused': { title: 'The push service refused the connection', detail: 'Try again in a moment.', retry: true },
  'keep-alive-timeout': droppedConnection,

  // Sign-in and registration (lib/ids, lib/client/registration.ts).
  'bad-credentials': (ctx) =>
    ctx.stage === 'code'
      ? {
          title: 'Wrong or expired code',
          detail: 'That code did not work. Codes work once and expire; check the code on your trusted device or ask for a new one.',
          retry: false,
        }
      : { title: 'Wrong Apple ID or password', detail: 'Check your Apple ID and password and try again.', retry: false },
  'bad-code': { title: 'The code must be 6 digits', detail: 'Enter the 6-digit code shown on your trusted device.', retry: false },
  'auth-expired': {
    title: 'Your sign-in has expired',
    detail: 'Sign in again (for a phone number: send a new text).',
    retry: false,
  },
  'validation-data-expired': {
    title: 'The validation data was rejected',
    detail: 'The service did not accept the validation data from the relay. Try again for fresh data.',
    retry: true,
  },
  'relay-unknown-code': {
    title: 'Unknown registration code',
    detail: 'The registration relay does not know this code. Check the code your relay provider shows; it may have expired.',
    retry: false,
  },
  'relay-failed': {
    title: 'The registration relay failed',
    detail: "The relay's provider could not produce validation data. Check that the provider is online and try again.",
    retry: true,
  },
  'relay-bad-response': {
    title: 'The registration relay sent a bad answer',
    detail: 'Check the relay address; try again later.',
    retry: true,
  },
  'relay-code-missing': {
    title: 'Enter the registration code',
    detail: 'Registering needs the code your registration relay provider shows.',
    retry: false,
  },
  'bad-relay-code': {
    title: 'That registration code is not valid',
    detail: 'A registration code is printable characters without spaces.',
    retry: false,
  },
  'bad-url': { title: 'That address is not valid', detail: 'Relay addresses start with https://.', retry: false },
  'registration-refused': (_ctx, e) => ({
    title: 'Registration was refused',
    detail: alertBody(e) ?? 'The service refused to register this device. Try again later.',
    retry: true,
  }),
  'no-handles': { title: 'No address to register', detail: 'This account has no email address or phone number for iMessage.', retry: false },
  'ids-status': (_ctx, e) => ({
    title: 'The service answered with an error',
    detail: `${e instanceof IdsError && e.status !== undefined ? `Status ${e.status}. ` : ''}Try again in a moment.`,
    retry: true,
  }),
  'http-status': (_ctx, e) => ({
    title: 'The service answered with an error',
    detail: `${e instanceof IdsError && e.httpStatus !== undefined ? `HTTP ${e.httpStatus}. ` : ''}Try again in a moment.`,
    retry: true,
  }),
  'ids-bad-response': { title: 'A garbled answer', detail: 'The service sent an answer that could not be read. Try again.', retry: true },
  'bad-reg-resp': {
    title: "That reply doesn't match",
    detail: 'Paste the whole reply text, starting with REG-RESP?, from the text your phone received for this request.',
    retry: false,
  },
  'no-phone-request': {
    title: 'Start the phone sign-in again',
    detail: 'The text this reply answers was not found. Ask for a new text and send it.',
    retry: false,
  },
  // Carrier gateway discovery (the phone step with an MCC-MNC).
  'bad-mcc-mnc': {
    title: 'Check the carrier code',
    detail: 'The carrier code is the SIM’s mobile country code and network code together: 5 or 6 digits, e.g. 310260.',
    retry: false,
  },
  'unknown-carrier': {
    title: 'Carrier not found',
    detail: "Apple's carrier list has no entry for this carrier code. Check the code (your phone's settings show it).",
    retry: false,
  },
  'no-gateway': {
    title: 'This carrier cannot register by text',
    detail: "The carrier's settings name no registration number, so a phone number on it cannot be registered this way. Sign in with an Apple ID instead.",
    retry: false,
  },
  'bad-carrier-bundle': {
    title: "Couldn't read the carrier's settings",
    detail: "The carrier's settings file did not download correctly. Try again.",
    retry: true,
  },
  'bad-carrier-list': {
    title: "Couldn't read Apple's carrier list",
    detail: 'The list of carriers did not download correctly. Try again.',
    retry: true,
  },
  'not-signed-in': { title: 'Not signed in', detail: 'Sign in with an Apple ID or a phone number first.', retry: false },
  'not-registered': { title: 'Not set up yet', detail: 'Register this device first.', retry: false },
  'lookup-timeout': { title: 'No answer in time', detail: 'The lookup did not get an answer. Try again.', retry: true },

  // The browser and the store.
  'no-webcrypto': {
    title: 'This page needs a secure connection',
    detail: 'Open Cerulean over https:// (or on localhost): browsers only allow its cryptography there.',
    retry: false,
  },
  'no-indexeddb': {
    title: 'Storage is not available',
    detail: 'This browser does not allow the app to store data (private mode can do this). Use a normal window.',
    retry: false,
  },
  quota: { title: 'Storage is full', detail: 'This browser refused to store more data. Free up space, then try again.', retry: true },
  'too-new': {
    title: 'Stored data is from a newer version',
    detail: 'A newer version of Cerulean used this browser. Reload to get the newest version.',
    retry: false,
  },
  'migration-failed': { title: 'Could not update stored data', detail: 'Reload the page to try again.', retry: true },
  closed: { title: 'Storage was closed', detail: 'Another tab may have taken over the database. Reload the page.', retry: false },
  io: { title: 'Storage error', detail: 'Reading or writing this browser’s storage failed. Try again.', retry: true },
  'other-tab': {
    title: 'Cerulean is open in another tab',
    detail: 'Only one tab can be connected at a time. Use it there, or take over in this tab.',
    retry: false,
  },
  'bad-passphrase': {
    title: 'Wrong passphrase',
    detail: 'The backup does not open with this passphrase (or the file was changed).',
    retry: false,
  },
  'bad-backup': { title: 'Not a Cerulean backup', detail: 'This file is not a backup this version of Cerulean can read.', retry: false },
  'passphrase-missing': { title: 'Enter a passphrase', detail: 'Backups are encrypted with a passphrase you choose.', retry: false },
};

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Register's `alert` dictionary is meant to be shown as is. */
function alertBody(e: unknown): string | undefined {
  if (!(e instanceof IdsError) || !e.alert) return undefined;
  const body = e.alert.body;
  return typeof body === 'string' && body.length > 0 ? body : undefined;
}

/** The error's code: a CeruleanError's, or a bare code string (the client's `connection` events carry those). */
export function errorCode(e: unknown): string | undefined {
  if (e instanceof CeruleanError) return e.code;
  if (typeof e === 'string') return e;
  return undefined;
}

export function describeError(e: unknown, ctx: ErrorContext = {}): DescribedError {
  const code = errorCode(e);
  const entry = code !== undefined ? ENTRIES[code] : undefined;
  if (entry) return typeof entry === 'function' ? entry(ctx, e) : entry;
  if (typeof DOMException !== 'undefined' && e instanceof DOMException) {
    if (e.name === 'QuotaExceededError') return ENTRIES.quota as DescribedError;
    if (e.name === 'NotAllowedError') {
      return { title: 'Not allowed', detail: 'The browser did not allow this. Check the site permissions.', retry: false };
    }
  }
  const message = e instanceof Error ? e.message : typeof e === 'string' ? e : '';
  return {
    title: 'Something went wrong',
    detail: message ? `${cap(message.replace(/\.$/, ''))}.` : 'An unexpected error happened. Try again.',
    retry: true,
  };
}
