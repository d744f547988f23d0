// Sending a request to an IDS endpoint and reading its property-list answer. IDS reports outcomes as a `status`
// inside an HTTP 200 plist; a non-200 answer still usually carries one (the sandbox does, Apple mostly does), and
// that status is what the error reports.
import { isDict, parsePlist, type PlistDict, type PlistValue } from '../codec/plist';
import { DecodeError } from '../errors';
import { IdsError, statusError } from './errors';
import { splitHttpsUrl, type IdsHttp } from './transport';

export interface PlistRequest {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: Uint8Array;
}

/** IDS answers are small; these bound what a hostile server can make the parser build. */
const RESPONSE_LIMITS = { maxObjects: 100_000, maxDepth: 32, maxBytes: 8 * 1024 * 1024 };

/** Sends the request and returns the answer's plist dictionary (its `status` is left to the caller). */
export async function requestPlist(http: IdsHttp, req: PlistRequest, what: string): Promise<PlistDict> {
  const { host, path } = splitHttpsUrl(req.url);
  const res = await http({ host, method: req.method, path, headers: req.headers, ...(req.body ? { body: req.body } : {}) });
  let dict: PlistDict | undefined;
  try {
    dict = decodeDict(res.body, what);
  } catch (e) {
    if (res.status === 200) throw e;
  }
  if (res.status !== 200) {
    const status = dict?.['status'];
    if (typeof status === 'number' && Number.isSafeInteger(status) && status !== 0) {
      throw withHttpStatus(statusError(status, what), res.status);
    }
    throw new IdsError('http-status', `${what}: HTTP ${res.status} ${res.reason}`.trim(), { httpStatus: res.status });
  }
  return dict!;
}

export function decodeDict(bytes: Uint8Array, what: string): PlistDict {
  let v: PlistValue;
  try {
    v = parsePlist(bytes, RESPONSE_LIMITS);
  } catch (e) {
    throw new DecodeError('ids-bad-response', `${what}: the answer is not a property list`, { cause: e });
  }
  if (!isDict(v)) throw new DecodeError('ids-bad-response', `${what}: the answer is not a dictionary`);
  return v;
}

/** The integer `status` every IDS answer carries. */
export function statusOf(dict: PlistDict, what: string): number {
  const status = own(dict, 'status');
  if (typeof status !== 'number' || !Number.isSafeInteger(status)) {
    throw new DecodeError('ids-bad-response', `${what}: the answer has no integer status`);
  }
  return status;
}

/** A field of a decoded dict, never one inherited from Object.prototype. */
export function own(dict: PlistDict, key: string): PlistValue | undefined {
  return Object.prototype.hasOwnProperty.call(dict, key) ? dict[key] : undefined;
}

export function optionalString(dict: PlistDict, key: string, what: string): string | undefined {
  const v = own(dict, key);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new DecodeError('ids-bad-response', `${what}: ${key} is not a string`);
  return v;
}

export function requireString(dict: PlistDict, key: string, what: string): string {
  const v = optionalString(dict, key, what);
  if (v === undefined || v.length === 0) throw new DecodeError('ids-bad-response', `${what}: ${key} is missing`);
  return v;
}

export function requireData(dict: PlistDict, key: string, what: string): Uint8Array {
  const v = own(dict, key);
  if (!(v instanceof Uint8Array) || v.length === 0) throw new DecodeError('ids-bad-response', `${what}: ${key} is missing or not data`);
  return v;
}

export function optionalArray(dict: PlistDict, key: string, what: string): PlistValue[] | undefined {
  const v = own(dict, key);
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw new DecodeError('ids-bad-response', `${what}: ${key} is not an array`);
  return v;
}

export function optionalDict(dict: PlistDict, key: string, what: string): PlistDict | undefined {
  const v = own(dict, key);
  if (v === undefined) return undefined;
  if (!isDict(v)) throw new DecodeError('ids-bad-response', `${what}: ${key} is not a dictionary`);
  return v;
}

function withHttpStatus(e: IdsError, httpStatus: number): IdsError {
  return new IdsError(e.code, `${e.message} (HTTP ${httpStatus})`, { ...(e.status !== undefined ? { status: e.status } : {}), httpStatus });
}
