// The registration relay (ids.md §8) with its provider built in. Clients call
//   POST https://<relay>/api/v1/bridge/get-validation-data   Authorization: Bearer <registration code>
//   POST https://<relay>/api/v1/bridge/get-version-info
// and get the provider's JSON; an unknown code is a 404 as when no provider is connected. Instead of running Apple's
// NAC code, the built-in provider mints validation data the sandbox can check itself:
//   "CSVD" ‖ 01 ‖ u64be valid-until ms ‖ u8 len ‖ code ‖ 16 random bytes ‖ HMAC (32 bytes, sandbox secret)
// and register (the IDS endpoints) accepts it only while it is unexpired and its code still exists.
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { concat, equalBytes, readU64be, toBase64, u64be, utf8 } from '../lib/codec/bytes';
import { CeruleanError } from '../lib/errors';
import type { Clock, Log } from './context';
import { HOSTS } from './hosts';
import { HttpError, jsonResponse, readJsonBody, type HttpRouter, type ServiceRequest, type ServiceResponse } from './http-service';
import type { MacKeys } from './pki';
import type { Store } from './store';

export const RELAY_PATHS = {
  validationData: '/api/v1/bridge/get-validation-data',
  versionInfo: '/api/v1/bridge/get-version-info',
} as const;

/** The device a registration code stands for; its values feed the client's register body (ids.md §8). */
export type RelayVersions = {
  hardware_version: string;
  software_name: string;
  software_version: string;
  software_build_id: string;
  serial_number: string;
  unique_device_id: string;
};

export type RelayRegistration = {
  code: string;
  name: string;
  versions: RelayVersions;
  createdAt: number;
};

export type ValidationDataCheck =
  | { status: 'ok'; code: string; validUntil: number }
  | { status: 'expired'; code: string; validUntil: number }
  | { status: 'bad' };

export class RelayError extends CeruleanError {}

const TABLE = 'relay-codes';
const MAGIC = utf8('CSVD');
const VERSION = 0x01;
const MAC_PURPOSE = 'validation-data-v1';
const MAC_LENGTH = 32;
const DEFAULT_VALIDITY_MS = 15 * 60_000;
const CODE_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

export interface RelayOptions {
  /** Lifetime of minted validation data (default 15 minutes, like a Mac provider's). */
  validityMs?: number;
}

export class RegistrationRelay {
  private readonly validityMs: number;

  constructor(
    private readonly store: Store,
    private readonly keys: MacKeys,
    private readonly clock: Clock,
    private readonly log: Log,
    options: RelayOptions = {},
  ) {
    this.validityMs = options.validityMs ?? DEFAULT_VALIDITY_MS;
  }

  /**
   * Registers a code (random, dash-grouped base36 unless given) with a Mac-like device identity. An explicit code
   * that already exists is returned unchanged, so a config file can be applied on every start.
   */
  async createCode(input: { code?: string; name?: string; versions?: Partial<RelayVersions> } = {}): Promise<RelayRegistration> {
    const code = input.code === undefined ? randomCode() : normalizeCode(input.code);
    if (this.store.has(TABLE, code)) {
      if (input.code !== undefined) return this.store.get<RelayRegistration>(TABLE, code) as RelayRegistration;
      throw new RelayError('exists', 'registration code collision');
    }
    const registration: RelayRegistration = {
      code,
      name: (input.name ?? 'Cerulean Sandbox Mac').slice(0, 100),
      versions: {
        hardware_version: 'Macmini9,1',
        software_name: 'macOS',
        software_version: '13.5',
        software_build_id: '22G74',
        serial_number: randomSerialNumber(),
        unique_device_id: randomUUID().toUpperCase(),
        ...pickStrings(input.versions),
      },
      createdAt: this.clock.now(),
    };
    await this.store.put(TABLE, code, registration);
    this.log.info('relay.code-created', { name: registration.name });
    return registration;
  }

  async deleteCode(code: string): Promise<boolean> {
    const c = code.trim().toUpperCase();
    if (!this.store.has(TABLE, c)) return false;
    await this.store.delete(TABLE, c);
    return true;
  }

  getCode(code: string): RelayRegistration | undefined {
    return this.store.get<RelayRegistration>(TABLE, code.trim().toUpperCase()) as RelayRegistration | undefined;
  }

  listCodes(): RelayRegistration[] {
    return this.store.entries<RelayRegistration>(TABLE).map(([, r]) => r as RelayRegistration);
  }

  /** Validation data for a registered code, valid for `validityMs` from now. */
  mintValidationData(code: string): { data: Uint8Array; validUntil: number } {
    const reg = this.getCode(code);
    if (!reg) throw new RelayError('unknown-code', 'no such registration code');
    const validUntil = this.clock.now() + this.validityMs;
    const codeBytes = utf8(reg.code);
    const body = concat(MAGIC, new Uint8Array([VERSION]), u64be(BigInt(validUntil)), new Uint8Array([codeBytes.length]), codeBytes, new Uint8Array(randomBytes(16)));
    return { data: concat(body, this.keys.mac(MAC_PURPOSE, body)), validUntil };
  }

  /** For register: `ok` only if this sandbox minted the blob, it has not expired, and its code still exists. */
  verifyValidationData(blob: Uint8Array): ValidationDataCheck {
    const check = verifyValidationData(this.keys, blob, this.clock);
    if (check.status !== 'bad' && !this.store.has(TABLE, check.code)) return { status: 'bad' };
    return check;
  }

  addRoutes(router: HttpRouter): void {
    for (const path of Object.values(RELAY_PATHS)) {
      router.add({
        host: HOSTS.relay,
        path,
        methods: ['POST'],
        maxBodyBytes: 4096,
        handler: (req) => this.serve(req, path === RELAY_PATHS.validationData),
        onError: (status, reason) => jsonResponse({ error: reason }, status),
      });
    }
  }

  private serve(req: ServiceRequest, validationData: boolean): ServiceResponse {
    readJsonBody(req);
    const auth = req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (!match) throw new HttpError(401, 'missing bearer registration code', { 'www-authenticate': 'Bearer' });
    const reg = this.getCode(match[1]!);
    if (!reg) throw new HttpError(404, 'no provider is connected for that registration code');
    if (!validationData) return jsonResponse({ versions: reg.versions, name: reg.name });
    const { data, validUntil } = this.mintValidationData(reg.code);
    this.log.info('relay.validation-data', { validUntil });
    return jsonResponse({ data: toBase64(data), valid_until: new Date(validUntil).toISOString(), versions: reg.versions, name: reg.name });
  }
}

/** The stateless part of the check: MAC and expiry (RegistrationRelay.verifyValidationData also wants the code alive). */
export function verifyValidationData(keys: MacKeys, blob: Uint8Array, clock: Clock): ValidationDataCheck {
  const fixed = MAGIC.length + 1 + 8 + 1;
  if (!(blob instanceof Uint8Array) || blob.length < fixed + 16 + MAC_LENGTH || blob.length > 512) return { status: 'bad' };
  if (!equalBytes(blob.subarray(0, MAGIC.length), MAGIC) || blob[MAGIC.length] !== VERSION) return { status: 'bad' };
  const codeLength = blob[fixed - 1]!;
  if (blob.length !== fixed + codeLength + 16 + MAC_LENGTH) return { status: 'bad' };
  const body = blob.subarray(0, blob.length - MAC_LENGTH);
  if (!keys.verifyMac(MAC_PURPOSE, blob.subarray(body.length), body)) return { status: 'bad' };
  const validUntil = Number(readU64be(blob, MAGIC.length + 1));
  const code = new TextDecoder().decode(blob.subarray(fixed, fixed + codeLength));
  return clock.now() > validUntil ? { status: 'expired', code, validUntil } : { status: 'ok', code, validUntil };
}

// 16 base36 characters in groups of four, like the real relay's codes.
function randomCode(): string {
  const chars = Array.from({ length: 16 }, () => CODE_ALPHABET[randomInt(CODE_ALPHABET.length)]!);
  return [0, 4, 8, 12].map((i) => chars.slice(i, i + 4).join('')).join('-');
}

function normalizeCode(code: string): string {
  const c = typeof code === 'string' ? code.trim().toUpperCase() : '';
  if (!/^[A-Z0-9][A-Z0-9-]{3,63}$/.test(c)) throw new RelayError('bad-code', 'a registration code is 4–64 characters of A–Z, 0–9 and -');
  return c;
}

function randomSerialNumber(): string {
  return Array.from({ length: 12 }, () => CODE_ALPHABET[randomInt(CODE_ALPHABET.length)]!).join('');
}

const VERSION_KEYS: ReadonlyArray<keyof RelayVersions> = [
  'hardware_version',
  'software_name',
  'software_version',
  'software_build_id',
  'serial_number',
  'unique_device_id',
];

function pickStrings(v: Partial<RelayVersions> | undefined): Partial<RelayVersions> {
  const out: Partial<RelayVersions> = {};
  for (const k of VERSION_KEYS) {
    const val = v?.[k];
    if (typeof val === 'string' && val.length > 0 && val.length <= 100) out[k] = val;
  }
  return out;
}
