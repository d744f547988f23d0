// Security log entries and devices in words, for the Security screen, the banner and system notifications.
import { toHex } from '../../../lib/codec/bytes';
import { formatDay, formatTime } from '../common/time';
import type { SecurityLogEntry } from '../hooks/use-security-log';

/** The device's own name, else the start of its push token so two unnamed devices can still be told apart. */
export function deviceLabel(name: string | undefined, pushToken: Uint8Array): string {
  return name && name.trim() !== '' ? name : `an unnamed device (${toHex(pushToken).slice(0, 8)})`;
}

export function when(at: number): string {
  return `${formatDay(at)}, ${formatTime(at)}`;
}

export function describeEvent(e: SecurityLogEntry, nameFor: (handle: string) => string): string {
  if (e.kind === 'new-device') {
    const device = deviceLabel(e.deviceName, e.pushToken);
    return e.own ? `A new device was added to your account: ${device}.` : `${nameFor(e.handle)} has a new device: ${device}.`;
  }
  const verified = e.wasVerified ? ' You had verified it; compare codes again.' : '';
  return e.own ? `The keys of one of your devices changed.${verified}` : `${nameFor(e.handle)}’s security code changed.${verified}`;
}
