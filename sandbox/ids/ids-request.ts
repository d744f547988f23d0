// What the IDS endpoints share: reading a request body (XML or binary plist, gzip or plain), reading typed fields, and
// answering. IDS-level outcomes are HTTP 200 with a plist `status` (what clients check); only a request that is not
// an IDS request at all (bad media type, not a plist, bad gzip, oversized) gets an HTTP 4xx, still with a plist body
// `{status: 5003, message}` so a client that parses the body regardless sees a real IDS status.
import { maybeGunzip } from '../../lib/codec/gzip';
import { isDict, parsePlist, type PlistDict, type PlistValue } from '../../lib/codec/plist';
import { HttpError, plistResponse, type ServiceRequest, type ServiceResponse } from '../http-service';
import { IdsStatus } from './signed-request';

/** Media types IDS clients send plists with; a request without Content-Type is accepted too ([PY] sends none). */
const PLIST_MEDIA_TYPES = ['application/x-apple-plist', 'application/x-plist', 'application/xml', 'text/xml', 'application/octet-stream'];
const PLIST_LIMITS = { maxObjects: 50_000, maxDepth: 24 };

/**
 * The body as a plist dict. The router already removed a declared `content-encoding: gzip`; a gzip body sent without
 * that header is inflated here. An empty body is `{}` when `allowEmpty`.
 */
export async function readIdsBody(req: ServiceRequest, options: { allowEmpty?: boolean; maxInflated?: number } = {}): Promise<PlistDict> {
  if (req.body.length === 0) {
    if (options.allowEmpty) return {};
    throw new HttpError(400, 'Missing request body');
  }
  if (req.contentType !== undefined && !PLIST_MEDIA_TYPES.includes(req.contentType)) {
    throw new HttpError(415, `Unsupported content type ${req.contentType}`);
  }
  let bytes: Uint8Array;
  try {
    bytes = await maybeGunzip(req.body, options.maxInflated ?? 4 * 1024 * 1024);
  } catch {
    throw new HttpError(400, 'Body is not valid gzip or inflates too far');
  }
  let v: PlistValue;
  try {
    v = parsePlist(bytes, PLIST_LIMITS);
  } catch {
    throw new HttpError(400, 'Body is not a property list');
  }
  if (!isDict(v)) throw new HttpError(400, 'Body is not a property-list dictionary');
  return v;
}

/** An IDS answer: HTTP 200, XML plist. */
export function idsReply(body: PlistDict): ServiceResponse {
  return plistResponse(body);
}

export function idsStatusReply(status: number, message?: string): ServiceResponse {
  return idsReply(message === undefined ? { status } : { status, message });
}

/** Route `onError`: router and HttpError failures keep their HTTP status and carry an IDS status in a plist. */
export function idsErrorResponse(httpStatus: number, reason: string): ServiceResponse {
  const status = httpStatus >= 500 ? IdsStatus.internalError : IdsStatus.badRequest;
  return plistResponse({ status, message: reason }, { status: httpStatus });
}

export function own(dict: PlistDict, key: string): PlistValue | undefined {
  return Object.prototype.hasOwnProperty.call(dict, key) ? dict[key] : undefined;
}

export function stringField(dict: PlistDict, key: string, maxLength = 1024): string | undefined {
  const v = own(dict, key);
  return typeof v === 'string' && v.length <= maxLength ? v : undefined;
}

export function dataField(dict: PlistDict, key: string): Uint8Array | undefined {
  const v = own(dict, key);
  return v instanceof Uint8Array ? v : undefined;
}

export function dictField(dict: PlistDict, key: string): PlistDict | undefined {
  const v = own(dict, key);
  return isDict(v) ? v : undefined;
}

export function arrayField(dict: PlistDict, key: string): PlistValue[] | undefined {
  const v = own(dict, key);
  return Array.isArray(v) ? v : undefined;
}

/** The header's value, for logging what clients send (`x-protocol-version`, `user-agent`). */
export function headerValue(req: ServiceRequest, name: string): string | undefined {
  const v = req.headers[name];
  const s = Array.isArray(v) ? v[0] : v;
  return typeof s === 'string' ? s.slice(0, 200) : undefined;
}
