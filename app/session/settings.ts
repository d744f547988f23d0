// The app's own settings, kept in localStorage (`cerulean.settings`). Nothing secret lives here except the optional
// bridge token; keys and history are in the client store (IndexedDB).
import type { ClientMode } from '../../lib/client/config';

export interface AppSettings {
  /** ws(s):// address of the byte bridge. */
  bridgeUrl: string;
  bridgeToken?: string;
  mode: ClientMode;
  /** Where the sandbox CA is served (the app's own origin by default). */
  sandboxCaUrl: string;
  /** Apple's root certificates (PEM) for 'apple' mode: trust material the user configures. */
  appleRootsPem?: string;
  /** The registration relay; the mode's default when absent. */
  relayUrl?: string;
  deviceName: string;
  readReceipts: boolean;
  /** Push notifications are on: this device is enrolled with the push watcher (app/session/push.ts). */
  notifications: boolean;
  /** http(s):// address of the push watcher that wakes the app while it is closed. */
  watcherUrl: string;
}

export const SETTINGS_KEY = 'cerulean.settings';
export const DEFAULT_SANDBOX_CA_URL = '/sandbox-ca.pem';

/** The local bridge on the machine serving the app, as `npm start` runs it. */
export function defaultBridgeUrl(): string {
  const host = typeof location !== 'undefined' && location.hostname ? location.hostname : 'localhost';
  return `ws://${host.includes(':') ? `[${host}]` : host}:8787`;
}

/** The local push watcher on the machine serving the app, as `npm start` runs it. */
export function defaultWatcherUrl(): string {
  const host = typeof location !== 'undefined' && location.hostname ? location.hostname : 'localhost';
  return `http://${host.includes(':') ? `[${host}]` : host}:8790`;
}

/** "Cerulean on Firefox (Linux)": how this browser shows up in the account's device lists. */
export function defaultDeviceName(): string {
  if (typeof navigator === 'undefined') return 'Cerulean';
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua)
    ? 'Edge'
    : /Firefox\//.test(ua)
      ? 'Firefox'
      : /Chrom(e|ium)\//.test(ua)
        ? 'Chrome'
        : /Safari\//.test(ua)
          ? 'Safari'
          : undefined;
  const os = /Android/.test(ua)
    ? 'Android'
    : /iPhone|iPad/.test(ua)
      ? 'iOS'
      : /Mac OS X/.test(ua)
        ? 'macOS'
        : /Windows/.test(ua)
          ? 'Windows'
          : /Linux/.test(ua)
            ? 'Linux'
            : undefined;
  return ['Cerulean', browser && `on ${browser}`, os && `(${os})`].filter(Boolean).join(' ');
}

export function defaultSettings(): AppSettings {
  return {
    bridgeUrl: defaultBridgeUrl(),
    mode: 'sandbox',
    sandboxCaUrl: DEFAULT_SANDBOX_CA_URL,
    deviceName: defaultDeviceName(),
    readReceipts: true,
    notifications: false,
    watcherUrl: defaultWatcherUrl(),
  };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

/** The stored settings over the defaults; a damaged entry falls back field by field, never throws. */
export function loadSettings(): AppSettings {
  const d = defaultSettings();
  let raw: unknown;
  try {
    raw = JSON.parse(localStorage.getItem(SETTINGS_KEY) ?? 'null');
  } catch {
    raw = null;
  }
  if (typeof raw !== 'object' || raw === null) return d;
  const r = raw as Record<string, unknown>;
  const bridgeToken = str(r.bridgeToken);
  const appleRootsPem = str(r.appleRootsPem);
  const relayUrl = str(r.relayUrl);
  return {
    bridgeUrl: str(r.bridgeUrl) ?? d.bridgeUrl,
    mode: r.mode === 'apple' ? 'apple' : 'sandbox',
    sandboxCaUrl: str(r.sandboxCaUrl) ?? d.sandboxCaUrl,
    deviceName: str(r.deviceName) ?? d.deviceName,
    readReceipts: typeof r.readReceipts === 'boolean' ? r.readReceipts : d.readReceipts,
    notifications: typeof r.notifications === 'boolean' ? r.notifications : d.notifications,
    watcherUrl: str(r.watcherUrl) ?? d.watcherUrl,
    ...(bridgeToken ? { bridgeToken } : {}),
    ...(appleRootsPem ? { appleRootsPem } : {}),
    ...(relayUrl ? { relayUrl } : {}),
  };
}

export function saveSettings(settings: AppSettings): void {
  try {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
  } catch {
    // Storage full or blocked: the settings still apply for this visit.
  }
}

/** Applies a patch; `undefined` in the patch removes an optional field. */
export function mergeSettings(base: AppSettings, patch: Partial<AppSettings>): AppSettings {
  const next: AppSettings = { ...base, ...patch };
  for (const k of ['bridgeToken', 'appleRootsPem', 'relayUrl'] as const) {
    if (k in patch && !patch[k]) delete next[k];
  }
  return next;
}
