// Validation data from a registration relay (ids.md §8, beeper/registration-relay): a Mac or iPhone "provider"
// connected to the relay runs Apple's NAC code and hands out the blob register needs, plus the versions of the
// machine that made it (register must present those same versions). The client asks with its registration code:
//   POST {relay}/api/v1/bridge/get-validation-data   Authorization: Bearer <code>   → JSON {data, valid_until, versions}
// 404 = no provider for that code, 500 = the provider failed. The request goes through the same tunnel as IDS.
import { fromBase64, fromUtf8, utf8 } from '../codec/bytes';
import { DecodeError, EncodeError } from '../errors';
import { DEFAULT_DEVICE_VERSIONS, type DeviceInfo } from './device';
import { IdsError } from './errors';
import { splitHttpsUrl, type IdsHttp } from './transport';

export { BEEPER_RELAY_URL, SANDBOX_RELAY_URL } from './relay-urls';

export interface RelayVersions {
  hardwareVersion: string;
  softwareName: string;
  softwareVersion: string;
  softwareBuildId: string;
  serialNumber?: string;
  uniqueDeviceId?: string;
}

export interface ValidationData {
  data: Uint8Array;
  /** `valid_until`, unix ms, when the relay says. */
  validUntil?: number;
  versions?: RelayVersions;
  /** The provider's name, e.g. "Alice's Mac". */
  name?: string;
}

export interface RelayParams {
  /** e.g. BEEPER_RELAY_URL; a path prefix is kept. */
  relayUrl: string;
  /** The registration code the provider showed. */
  code: string;
  /** Beeper's relay also takes an account token (`X-Beeper-Access-Token`). */
  accessToken?: string;
}

const PATHS = {
  validationData: '/api/v1/bridge/get-validation-data',
  versionInfo: '/api/v1/bridge/get-version-info',
} as const;

export async function getValidationData(http: IdsHttp, p: RelayParams): Promise<ValidationData> {
  const json = await relayRequest(http, p, PATHS.validationData);
  const data = json['data'];
  if (typeof data !== 'string') throw new DecodeError('relay-bad-response', 'the relay answer has no validation data');
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(data);
  } catch (e) {
    throw new DecodeError('relay-bad-response', 'the validation data is not base64', { cause: e });
  }
  if (bytes.length === 0) throw new DecodeError('relay-bad-response', 'the validation data is empty');
  const out: ValidationData = { data: bytes, ...describe(json) };
  const until = json['valid_until'];
  if (until !== undefined) {
    const ms = typeof until === 'string' ? Date.parse(until) : NaN;
    if (!Number.isFinite(ms)) throw new DecodeError('relay-bad-response', 'valid_until is not a date');
    out.validUntil = ms;
  }
  return out;
}

/** The provider's versions and name without minting validation data. */
export async function getVersionInfo(http: IdsHttp, p: RelayParams): Promise<Omit<ValidationData, 'data' | 'validUntil'>> {
  return describe(await relayRequest(http, p, PATHS.versionInfo));
}

/** The device to register as: the provider's versions, this installation's own name, UUID and setup time. */
export function deviceFromRelay(versions: RelayVersions | undefined, own: Pick<DeviceInfo, 'deviceName' | 'uuid' | 'setupAt'>): DeviceInfo {
  const v = versions ?? DEFAULT_DEVICE_VERSIONS;
  return {
    ...own,
    hardwareVersion: v.hardwareVersion,
    softwareName: v.softwareName,
    softwareVersion: v.softwareVersion,
    softwareBuildId: v.softwareBuildId,
  };
}

async function relayRequest(http: IdsHttp, p: RelayParams, endpoint: string): Promise<Record<string, unknown>> {
  if (!/^[\x21-\x7e]{1,256}$/.test(p.code)) throw new EncodeError('bad-relay-code', 'the registration code has invalid characters');
  const base = splitHttpsUrl(p.relayUrl);
  const prefix = base.path.replace(/\/+$/, '').replace(/\?.*$/, '');
  const headers: Record<string, string> = {
    authorization: `Bearer ${p.code}`,
    'content-type': 'application/json',
    accept: 'application/json',
  };
  if (p.accessToken !== undefined) headers['x-beeper-access-token'] = p.accessToken;
  const res = await http({ host: base.host, method: 'POST', path: prefix + endpoint, headers, body: utf8('{}') });
  if (res.status === 404 || res.status === 401) {
    throw new IdsError('relay-unknown-code', 'the relay has no provider for this registration code', { httpStatus: res.status });
  }
  if (res.status >= 500) throw new IdsError('relay-failed', `the relay's provider failed (HTTP ${res.status})`, { httpStatus: res.status });
  if (res.status !== 200) throw new IdsError('http-status', `the relay answered HTTP ${res.status}`, { httpStatus: res.status });
  let json: unknown;
  try {
    json = JSON.parse(fromUtf8(res.body));
  } catch (e) {
    throw new DecodeError('relay-bad-response', 'the relay answer is not JSON', { cause: e });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new DecodeError('relay-bad-response', 'the relay answer is not an object');
  const obj = json as Record<string, unknown>;
  const error = obj['error'];
  if (typeof error === 'string' && error.length > 0) throw new IdsError('relay-failed', `the relay's provider failed: ${error.slice(0, 200)}`);
  return obj;
}

function describe(json: Record<string, unknown>): Omit<ValidationData, 'data' | 'validUntil'> {
  const out: Omit<ValidationData, 'data' | 'validUntil'> = {};
  const versions = parseVersions(json['versions']);
  if (versions) out.versions = versions;
  if (typeof json['name'] === 'string' && json['name'].length > 0) out.name = json['name'].slice(0, 200);
  return out;
}

function parseVersions(v: unknown): RelayVersions | undefined {
  if (v === undefined) return undefined;
  const bad = () => new DecodeError('relay-bad-response', 'the relay versions are malformed');
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad();
  const o = v as Record<string, unknown>;
  // Versions end up in the User-Agent "[name,version,build,hardware]" and in `os-version` "name,version,build":
  // printable, no brackets, and no comma except in the hardware version, which comes last.
  const field = (key: string, commaAllowed = false): string | undefined => {
    const s = o[key];
    if (s === undefined) return undefined;
    if (typeof s !== 'string' || !/^[\x20-\x7e]{1,100}$/.test(s) || /[[\]]/.test(s) || (!commaAllowed && s.includes(','))) throw bad();
    return s;
  };
  const required = (key: string, commaAllowed = false): string => {
    const s = field(key, commaAllowed);
    if (s === undefined) throw bad();
    return s;
  };
  const out: RelayVersions = {
    hardwareVersion: required('hardware_version', true),
    softwareName: required('software_name'),
    softwareVersion: required('software_version'),
    softwareBuildId: required('software_build_id'),
  };
  const serial = field('serial_number');
  const udid = field('unique_device_id');
  if (serial !== undefined) out.serialNumber = serial;
  if (udid !== undefined) out.uniqueDeviceId = udid;
  return out;
}
