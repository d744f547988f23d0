// How a CeruleanClient is set up: which bridge, which trust anchors (Apple's roots, or the sandbox's CA), which
// registration relay, which store, and how this device names itself. Everything else has a default; `tuning`
// exists so tests and the headless client can shorten timers.
import type { BackoffOptions } from '../apns/courier-client';
import type { EngineLog } from '../imessage/ports';
import { BEEPER_RELAY_URL, SANDBOX_RELAY_URL } from '../ids/relay-urls';
import type { WebSocketConstructor } from '../net/byte-stream';
import type { CertificateInput } from '../net/cert-verify';
import type { ClientStore } from '../store/types';
import { CeruleanError } from '../errors';

export type ClientMode = 'sandbox' | 'apple';

/** The sandbox carrier's registration gateway (sandbox/sms-gateway.ts, ids.md §2.4 example). */
export const SANDBOX_SMS_GATEWAY = '22223333';

export interface ClientDeviceInfo {
  /** Shown in the account's device lists. */
  deviceName: string;
  /** Upper-case hyphenated; made up at the first registration when absent. */
  uuid?: string;
  /** Unix ms; the first registration's time when absent. */
  setupAt?: number;
  language?: string;
}

export interface ClientTuning {
  /** Courier reconnect back-off. */
  courierBackoff?: BackoffOptions;
  courierKeepAliveMs?: number;
  /** Opening a tunnel and its TLS handshake (each). */
  connectTimeoutMs?: number;
  /** One HTTPS request to IDS or the relay. */
  httpTimeoutMs?: number;
  /** Waiting for a lookup's answer. */
  lookupTimeoutMs?: number;
  /** First and largest delay between attempts of one outgoing item, and how many attempts it gets. */
  outboxRetryMs?: number;
  outboxMaxRetryMs?: number;
  outboxMaxAttempts?: number;
  /** How long a received notification that could not be processed waits before the next try (doubling). */
  inboxRetryMs?: number;
  /** The engine's c:255 waits (imessage.md §1.7). */
  ackSettleMs?: number;
  ackMaxMs?: number;
}

export interface CeruleanClientConfig {
  /** ws(s):// URL of the byte bridge. */
  bridgeUrl: string;
  bridgeToken?: string;
  /** The browser's WebSocket, or `ws`'s class in Node. */
  WebSocketImpl: WebSocketConstructor;
  /** Apple's roots in 'apple' mode; the sandbox CA (host-map.json's caFile) in 'sandbox' mode. */
  trustedRoots: readonly CertificateInput[];
  mode: ClientMode;
  /**
   * The registration relay and the code its provider shows (the URL defaults by mode). Needed to register; later
   * renewals use the one saved at registration when this is absent.
   */
  relay?: { url?: string; code: string };
  store: ClientStore;
  deviceInfo: ClientDeviceInfo;
  /**
   * The carrier's REG-REQ short code. Without it, a phone registration that names the SIM's MCC-MNC finds the
   * gateway in Apple's carrier list (ids/carrier-gateway.ts); one that does not gets the sandbox's in 'sandbox' mode.
   */
  smsGateway?: string;
  /** Send read receipts (default true). */
  readReceipts?: boolean;
  /** Metadata-only log lines (never content). */
  log?: EngineLog;
  tuning?: ClientTuning;
}

export interface ResolvedConfig extends CeruleanClientConfig {
  /** The relay URL for this mode when the config names none. */
  defaultRelayUrl: string;
  /** The gateway when neither the config nor carrier discovery gives one: the sandbox's in 'sandbox' mode. */
  defaultSmsGateway?: string;
  readReceipts: boolean;
  tuning: ClientTuning;
}

export function resolveConfig(config: CeruleanClientConfig): ResolvedConfig {
  if (config.mode !== 'sandbox' && config.mode !== 'apple') throw new CeruleanError('bad-config', "mode must be 'sandbox' or 'apple'");
  if (typeof config.bridgeUrl !== 'string' || config.bridgeUrl.length === 0) throw new CeruleanError('bad-config', 'bridgeUrl is required');
  if (!Array.isArray(config.trustedRoots) || config.trustedRoots.length === 0) {
    throw new CeruleanError('bad-config', 'trustedRoots must name at least one certificate');
  }
  if (typeof config.deviceInfo?.deviceName !== 'string' || config.deviceInfo.deviceName.length === 0) {
    throw new CeruleanError('bad-config', 'deviceInfo.deviceName is required');
  }
  return {
    ...config,
    defaultRelayUrl: config.mode === 'sandbox' ? SANDBOX_RELAY_URL : BEEPER_RELAY_URL,
    ...(config.mode === 'sandbox' ? { defaultSmsGateway: SANDBOX_SMS_GATEWAY } : {}),
    readReceipts: config.readReceipts ?? true,
    tuning: config.tuning ?? {},
  };
}
