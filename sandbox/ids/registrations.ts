// IDS registrations (ids.md §9 item 3): one record per (service, push token, user id), written by register and read by
// lookups, getDependentRegistrations and the control pushes. Records live in the store table `ids-registrations`
// (plist values as base64 binary plists, so int vs real survives) and, decoded, in memory for the read paths.
import { encodeBinaryPlist, isDict, parsePlist, type PlistDict } from '../../lib/codec/plist';
import { equalBytes, toBase64 } from '../../lib/codec/bytes';
import { silentLog, type Clock, type Log } from '../context';
import { bytesFromJson, bytesToJson, type Store, type Table } from '../store';

export interface DeviceRegistration {
  service: string;
  /** 32 bytes. */
  pushToken: Uint8Array;
  /** profile-id or 'P:+1555…'. */
  userId: string;
  /** Handles this user registered on this device. */
  uris: string[];
  /** Kept value-exact (PlistReal for reals); stored as a binary plist. */
  clientData?: PlistDict;
  ktLoggableData?: Uint8Array;
  subServices: string[];
  deviceName?: string;
  hardwareVersion?: string;
  osVersion?: string;
  softwareVersion?: string;
  privateDeviceData?: PlistDict;
  idCertSerial: string;
  /** ms */
  idCertNotAfter: number;
  /** ms, first registration of this (token, userId). */
  registeredAt: number;
  updatedAt: number;
}

export type RegistrationEvent = { kind: 'registered' | 'updated' | 'deregistered'; registration: DeviceRegistration };

type RegistrationJson = {
  service: string;
  pushToken: string;
  userId: string;
  uris: string[];
  clientData?: string;
  ktLoggableData?: string;
  subServices: string[];
  deviceName?: string;
  hardwareVersion?: string;
  osVersion?: string;
  softwareVersion?: string;
  privateDeviceData?: string;
  idCertSerial: string;
  idCertNotAfter: number;
  registeredAt: number;
  updatedAt: number;
};

export const REGISTRATIONS_TABLE = 'ids-registrations';

export class Registrations {
  private readonly byKey = new Map<string, DeviceRegistration>();
  private readonly listeners = new Set<(e: RegistrationEvent) => void>();

  private constructor(
    private readonly table: Table<RegistrationJson>,
    private readonly clock: Clock,
    private readonly log: Log,
  ) {}

  /** Loads every stored registration; a record that no longer decodes is dropped from memory and logged. */
  static open(store: Store, clock: Clock, log: Log = silentLog): Registrations {
    const r = new Registrations(store.table<RegistrationJson>(REGISTRATIONS_TABLE), clock, log);
    for (const [key, json] of r.table.entries()) {
      const reg = fromJson(json);
      if (reg) r.byKey.set(key, reg);
      else log.warn('ids.registration-unreadable', { key });
    }
    return r;
  }

  /**
   * Stores a registration. `registeredAt` is kept from an earlier record of the same key. Listeners hear
   * 'registered' for a new key, and 'updated' only when something peers can see changed (uris, client data, KT
   * data, sub-services, device fields) — a periodic re-registration that merely renews the ID cert is silent.
   */
  async upsert(reg: DeviceRegistration): Promise<'registered' | 'updated'> {
    const key = registrationKey(reg.service, reg.pushToken, reg.userId);
    const previous = this.byKey.get(key);
    const next: DeviceRegistration = { ...reg, registeredAt: previous?.registeredAt ?? reg.registeredAt };
    const json = toJson(next);
    const changed = !previous || visibleFields(toJson(previous)) !== visibleFields(json);
    this.byKey.set(key, next);
    await this.table.put(key, json);
    if (changed) this.emit({ kind: previous ? 'updated' : 'registered', registration: next });
    return previous ? 'updated' : 'registered';
  }

  /** Deregisters a device from a service: every user registered on that token. */
  async removeToken(service: string, pushToken: Uint8Array): Promise<DeviceRegistration[]> {
    const removed = this.forToken(service, pushToken);
    for (const reg of removed) await this.delete(reg);
    return removed;
  }

  /** Removes one user's registration on a device, if there is one. */
  async remove(service: string, pushToken: Uint8Array, userId: string): Promise<DeviceRegistration | undefined> {
    const reg = this.byKey.get(registrationKey(service, pushToken, userId));
    if (reg) await this.delete(reg);
    return reg;
  }

  /** One registration per user on that device. */
  forToken(service: string, pushToken: Uint8Array): DeviceRegistration[] {
    return this.list().filter((r) => r.service === service && equalBytes(r.pushToken, pushToken));
  }

  /** Every device registered for a handle; `mailto:` handles compare case-insensitively. */
  devicesForUri(service: string, uri: string): DeviceRegistration[] {
    const want = comparableUri(uri);
    return this.list().filter((r) => r.service === service && r.uris.some((u) => comparableUri(u) === want));
  }

  /** The push tokens of all of a user's devices on a service. */
  accountTokens(userId: string, service: string): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const r of this.list()) {
      if (r.userId === userId && r.service === service && !out.some((t) => equalBytes(t, r.pushToken))) out.push(r.pushToken);
    }
    return out;
  }

  /** Every registration, oldest key first. */
  list(): DeviceRegistration[] {
    return [...this.byKey.values()];
  }

  /** Listeners run after the change is durable; one that throws is logged and does not affect the others. */
  onChange(listener: (e: RegistrationEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Whether the registration's ID certificate is still current: a device that stopped re-registering has lapsed. */
  isCurrent(reg: DeviceRegistration): boolean {
    return reg.idCertNotAfter > this.clock.now();
  }

  private async delete(reg: DeviceRegistration): Promise<void> {
    const key = registrationKey(reg.service, reg.pushToken, reg.userId);
    this.byKey.delete(key);
    await this.table.delete(key);
    this.emit({ kind: 'deregistered', registration: reg });
  }

  private emit(e: RegistrationEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(e);
      } catch (err) {
        this.log.error('ids.registration-listener-failed', { kind: e.kind, message: (err as Error)?.message ?? String(err) });
      }
    }
  }
}

export function registrationKey(service: string, pushToken: Uint8Array, userId: string): string {
  return `${service}|${toBase64(pushToken)}|${userId}`;
}

/** Handles as lookups match them: the address part of a `mailto:` is case-insensitive, a `tel:` is exact. */
export function comparableUri(uri: string): string {
  return uri.slice(0, 7).toLowerCase() === 'mailto:' ? uri.toLowerCase() : uri;
}

function visibleFields(j: RegistrationJson): string {
  const { idCertSerial: _s, idCertNotAfter: _n, registeredAt: _r, updatedAt: _u, ...rest } = j;
  return JSON.stringify(rest);
}

function toJson(r: DeviceRegistration): RegistrationJson {
  const json: RegistrationJson = {
    service: r.service,
    pushToken: bytesToJson(r.pushToken),
    userId: r.userId,
    uris: [...r.uris],
    subServices: [...r.subServices],
    idCertSerial: r.idCertSerial,
    idCertNotAfter: r.idCertNotAfter,
    registeredAt: r.registeredAt,
    updatedAt: r.updatedAt,
  };
  if (r.clientData) json.clientData = bytesToJson(encodeBinaryPlist(r.clientData));
  if (r.ktLoggableData) json.ktLoggableData = bytesToJson(r.ktLoggableData);
  if (r.privateDeviceData) json.privateDeviceData = bytesToJson(encodeBinaryPlist(r.privateDeviceData));
  if (r.deviceName !== undefined) json.deviceName = r.deviceName;
  if (r.hardwareVersion !== undefined) json.hardwareVersion = r.hardwareVersion;
  if (r.osVersion !== undefined) json.osVersion = r.osVersion;
  if (r.softwareVersion !== undefined) json.softwareVersion = r.softwareVersion;
  return json;
}

function fromJson(j: Readonly<RegistrationJson>): DeviceRegistration | null {
  try {
    const reg: DeviceRegistration = {
      service: j.service,
      pushToken: bytesFromJson(j.pushToken),
      userId: j.userId,
      uris: [...j.uris],
      subServices: [...j.subServices],
      idCertSerial: j.idCertSerial,
      idCertNotAfter: j.idCertNotAfter,
      registeredAt: j.registeredAt,
      updatedAt: j.updatedAt,
    };
    if (j.clientData !== undefined) reg.clientData = dictFromJson(j.clientData);
    if (j.ktLoggableData !== undefined) reg.ktLoggableData = bytesFromJson(j.ktLoggableData);
    if (j.privateDeviceData !== undefined) reg.privateDeviceData = dictFromJson(j.privateDeviceData);
    if (j.deviceName !== undefined) reg.deviceName = j.deviceName;
    if (j.hardwareVersion !== undefined) reg.hardwareVersion = j.hardwareVersion;
    if (j.osVersion !== undefined) reg.osVersion = j.osVersion;
    if (j.softwareVersion !== undefined) reg.softwareVersion = j.softwareVersion;
    return reg;
  } catch {
    return null;
  }
}

function dictFromJson(text: string): PlistDict {
  const v = parsePlist(bytesFromJson(text));
  if (!isDict(v)) throw new Error('stored plist is not a dict');
  return v;
}
