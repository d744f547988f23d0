// The device Cerulean presents to IDS. Its versions must be those of the machine that produced the validation data
// (ids.md §8: hardware, OS name/version/build feed `hardware-version`, `os-version`, `software-version`,
// `private-device-data.pn/pv/pb` and the User-Agent), so they come from the relay's `versions` when there is one.
import type { PlistDict } from '../codec/plist';
import { EncodeError } from '../errors';

export interface DeviceInfo {
  /** `device-name`, shown in other devices' lists. */
  deviceName: string;
  /** e.g. "Macmini9,1". */
  hardwareVersion: string;
  /** e.g. "macOS" or "iPhone OS". */
  softwareName: string;
  /** e.g. "13.5". */
  softwareVersion: string;
  /** e.g. "22G74". */
  softwareBuildId: string;
  /** Device UUID, upper-case with hyphens (private-device-data `u`). */
  uuid: string;
  /**
   * When this device was set up (ms). Published as private-device-data `d`, which Cerulean keeps constant so the
   * account's other devices can show when it first appeared.
   */
  setupAt: number;
  /** Default "en-US". */
  language?: string;
}

/** [BG]'s default when there is no provider information. */
export const DEFAULT_DEVICE_VERSIONS = {
  hardwareVersion: 'Macmini9,1',
  softwareName: 'macOS',
  softwareVersion: '13.5',
  softwareBuildId: '22G74',
} as const;

/** 2001-01-01T00:00:00Z, Apple's reference date, in unix ms. */
export const APPLE_EPOCH_MS = 978_307_200_000;

const UUID = /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/;

/** `[macOS,13.5,22G74,Macmini9,1]`: the User-Agent of bag, authentication and handle requests. */
export function userAgent(d: DeviceInfo): string {
  return `[${d.softwareName},${d.softwareVersion},${d.softwareBuildId},${d.hardwareVersion}]`;
}

/** The User-Agent of register. */
export function registrationUserAgent(d: DeviceInfo): string {
  return `com.apple.invitation-registration ${userAgent(d)}`;
}

/** The User-Agent inside a lookup's `h` ([RP]). */
export function lookupUserAgent(d: DeviceInfo): string {
  return `com.apple.madrid-lookup ${userAgent(d)}`;
}

/** `os-version`: "macOS,13.5,22G74". */
export function osVersion(d: DeviceInfo): string {
  return `${d.softwareName},${d.softwareVersion},${d.softwareBuildId}`;
}

/** `dt`: 1 Mac, 2 iPhone, 4 iPad. */
function deviceType(d: DeviceInfo): number {
  if (d.hardwareVersion.startsWith('iPad')) return 4;
  if (d.hardwareVersion.startsWith('iPhone')) return 2;
  return 1;
}

/** register's `private-device-data` (ids.md §5 table); Cerulean relays neither SMS nor calls. */
export function privateDeviceData(d: DeviceInfo): PlistDict {
  if (!UUID.test(d.uuid)) throw new EncodeError('bad-device', 'the device UUID must be upper-case hex with hyphens');
  if (!Number.isFinite(d.setupAt)) throw new EncodeError('bad-device', 'setupAt must be a time in ms');
  const type = deviceType(d);
  return {
    ap: type === 2 ? '1' : '0',
    d: ((d.setupAt - APPLE_EPOCH_MS) / 1000).toFixed(6),
    dt: type,
    gt: '0',
    h: '1',
    m: '0',
    p: '0',
    pb: d.softwareBuildId,
    pn: d.softwareName,
    pv: d.softwareVersion,
    s: '0',
    t: '0',
    u: d.uuid,
    v: '1',
  };
}

/** The time private-device-data `d` names (unix ms), if it is a number of seconds since 2001. */
export function setupTimeOf(pdd: PlistDict | undefined): number | undefined {
  const d = pdd?.['d'];
  const seconds = typeof d === 'string' && /^\d{1,12}(\.\d{1,9})?$/.test(d) ? Number(d) : typeof d === 'number' ? d : NaN;
  return Number.isFinite(seconds) && seconds >= 0 ? Math.round(APPLE_EPOCH_MS + seconds * 1000) : undefined;
}
