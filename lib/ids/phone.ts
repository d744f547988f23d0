// Phone-number authentication by SMS (ids.md §2.4). The handset sends
//   REG-REQ?v=3;t=<push token, 64 upper-case hex>;r=<uint32>;
// to the carrier's gateway, which answers
//   REG-RESP?v=3;r=<r>;n=<+E.164>;s=<hex signature>
// and the signature, bound by the gateway to (number, push token), buys an auth certificate for user `P:<number>`.
import { encodeXmlPlist } from '../codec/plist';
import { fromHex, readU32be, toHex } from '../codec/bytes';
import { DecodeError, EncodeError } from '../errors';
import { randomBytes } from '../crypto/subtle';
import { requestAuthCertificate, type IdsCertificate } from './auth-cert';
import type { IdsContext } from './context';

export interface RegResp {
  requestId: number;
  /** E.164 with '+'. */
  number: string;
  /** `P:<number>`, the IDS user id of the phone. */
  userId: string;
  /** The gateway's opaque signature. */
  signature: Uint8Array;
}

const REQ_PREFIX = 'REG-REQ?';
const RESP_PREFIX = 'REG-RESP?';
/** A long SMS is a few concatenated parts; anything bigger is not a gateway answer. */
const MAX_RESP_LENGTH = 1600;
const E164 = /^\+[1-9]\d{6,14}$/;

/** A random request id (`r`). */
export function newRegRequestId(): number {
  return readU32be(randomBytes(4));
}

/** The REG-REQ text, trailing ';' included as handsets send it. */
export function regReqText(pushToken: Uint8Array, requestId: number): string {
  if (pushToken.length !== 32) throw new EncodeError('bad-push-token', 'the push token must be 32 bytes');
  if (!Number.isInteger(requestId) || requestId < 0 || requestId > 0xffffffff) {
    throw new EncodeError('bad-request-id', 'the request id must be a uint32');
  }
  return `${REQ_PREFIX}v=3;t=${toHex(pushToken).toUpperCase()};r=${requestId};`;
}

/**
 * Parses a gateway answer strictly: version 3, every field `key=value`, no empty field (so no trailing ';'), no
 * repeated key, `r` equal to `expectedRequestId` when given. Unknown keys are ignored.
 */
export function parseRegResp(text: string, expectedRequestId?: number): RegResp {
  const bad = (why: string) => new DecodeError('bad-reg-resp', `REG-RESP: ${why}`);
  if (typeof text !== 'string' || text.length > MAX_RESP_LENGTH) throw bad('not a gateway answer');
  const body = text.trim();
  if (!body.startsWith(RESP_PREFIX)) throw bad('missing REG-RESP? prefix');
  const fields = new Map<string, string>();
  for (const part of body.slice(RESP_PREFIX.length).split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw bad(part === '' ? 'empty field' : 'field without key=value');
    const key = part.slice(0, eq);
    if (fields.has(key)) throw bad(`repeated field ${key}`);
    fields.set(key, part.slice(eq + 1));
  }
  if (fields.get('v') !== '3') throw bad('version must be 3');
  const r = fields.get('r') ?? '';
  if (!/^\d{1,10}$/.test(r) || Number(r) > 0xffffffff) throw bad('r must be a uint32');
  const requestId = Number(r);
  if (expectedRequestId !== undefined && requestId !== expectedRequestId) throw bad('r does not match the request');
  const number = fields.get('n') ?? '';
  if (!E164.test(number)) throw bad('n must be an E.164 number');
  const s = fields.get('s') ?? '';
  if (s.length === 0 || !/^[0-9A-Fa-f]+$/.test(s) || s.length % 2 !== 0) throw bad('s must be hex');
  return { requestId, number, userId: `P:${number}`, signature: fromHex(s) };
}

export function authenticatePhoneBody(p: { pushToken: Uint8Array; regResp: RegResp; csr: Uint8Array }): Uint8Array {
  if (p.pushToken.length !== 32) throw new EncodeError('bad-push-token', 'the push token must be 32 bytes');
  return encodeXmlPlist({
    'authentication-data': { 'push-token': p.pushToken, sigs: [p.regResp.signature] },
    csr: p.csr,
    'realm-user-id': p.regResp.userId,
  });
}

/** An auth certificate for the phone number of a REG-RESP (sent for the same push token as the REG-REQ). */
export function authenticatePhone(
  ctx: Pick<IdsContext, 'http' | 'bag' | 'device' | 'protocolVersion'>,
  p: { pushToken: Uint8Array; regResp: RegResp; csr: Uint8Array },
): Promise<IdsCertificate> {
  return requestAuthCertificate(
    ctx,
    'id-authenticate-phone-number',
    p.regResp.userId,
    p.csr,
    authenticatePhoneBody(p),
    'authenticatePhoneNumber',
  );
}
