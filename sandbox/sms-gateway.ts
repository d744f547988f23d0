// The carrier's phone-number registration gateway (ids.md §2.4, §9 item 5). A test handset "sends"
//   REG-REQ?v=3;t=<push token, 64 hex>;r=<uint32>;
// to the gateway's short code; the gateway answers with an SMS
//   REG-RESP?v=3;r=<r>;n=<+E.164>;s=<HEX>
// (no trailing ';') where s binds number ↔ push token with a sandbox MAC that authenticatePhoneNumber checks.
import { fromHex, toHex, utf8 } from '../lib/codec/bytes';
import { DecodeError } from '../lib/errors';
import { AccountError, type Accounts } from './accounts';
import type { Log } from './context';
import type { MacKeys } from './pki';

/** The short code a sandbox carrier bundle publishes as `PhoneNumberRegistrationGatewayAddress`. */
export const GATEWAY_ADDRESS = '22223333';

const MAC_PURPOSE = 'sms-gateway-v1';
/** Leads the signature so a future format can be told apart. */
const SIGNATURE_VERSION = 0x01;

export interface RegReq {
  pushToken: Uint8Array;
  requestId: number;
}

/** Parses a REG-REQ text; anything malformed is a DecodeError. */
export function parseRegReq(text: string): RegReq {
  const prefix = 'REG-REQ?';
  if (typeof text !== 'string' || !text.startsWith(prefix) || text.length > 512) {
    throw new DecodeError('bad-reg-req', 'not a REG-REQ message');
  }
  const fields = new Map<string, string>();
  const parts = text.slice(prefix.length).split(';');
  if (parts[parts.length - 1] === '') parts.pop();
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq <= 0 || fields.has(part.slice(0, eq))) throw new DecodeError('bad-reg-req', 'malformed REG-REQ field');
    fields.set(part.slice(0, eq), part.slice(eq + 1));
  }
  if (fields.get('v') !== '3') throw new DecodeError('bad-reg-req', 'REG-REQ version must be 3');
  const t = fields.get('t') ?? '';
  if (!/^[0-9A-Fa-f]{64}$/.test(t)) throw new DecodeError('bad-reg-req', 'REG-REQ token must be 64 hex digits');
  const r = fields.get('r') ?? '';
  if (!/^\d{1,10}$/.test(r) || Number(r) > 0xffffffff) throw new DecodeError('bad-reg-req', 'REG-REQ request id must be a uint32');
  return { pushToken: fromHex(t.toLowerCase()), requestId: Number(r) };
}

export function formatRegResp(requestId: number, number: string, signature: Uint8Array): string {
  return `REG-RESP?v=3;r=${requestId};n=${number};s=${toHex(signature).toUpperCase()}`;
}

/** The gateway's signature over (number, push token): a version byte and a sandbox HMAC. */
export function gatewaySignature(keys: MacKeys, number: string, pushToken: Uint8Array): Uint8Array {
  const mac = keys.mac(MAC_PURPOSE, utf8(number), pushToken);
  const out = new Uint8Array(1 + mac.length);
  out[0] = SIGNATURE_VERSION;
  out.set(mac, 1);
  return out;
}

/** What authenticatePhoneNumber checks: `sigs[0]` was issued by this sandbox's gateway for this number and token. */
export function verifyGatewaySignature(keys: MacKeys, number: string, pushToken: Uint8Array, signature: Uint8Array): boolean {
  if (!(signature instanceof Uint8Array) || signature.length < 2 || signature[0] !== SIGNATURE_VERSION) return false;
  return keys.verifyMac(MAC_PURPOSE, signature.subarray(1), utf8(number), pushToken);
}

export interface SmsResult {
  /** The gateway's answer, now also in the handset's inbox. */
  reply: string | null;
  /** Why there is no answer to a message addressed to the gateway. */
  error?: string;
}

export class SmsGateway {
  constructor(
    private readonly accounts: Accounts,
    private readonly keys: MacKeys,
    private readonly log: Log,
  ) {}

  /** Handset `from` sends `text` to `to`; both directions land in its SMS log. */
  async receive(from: string, text: string, to: string = GATEWAY_ADDRESS): Promise<SmsResult> {
    const phone = this.accounts.getPhone(from);
    if (!phone) throw new AccountError('unknown-phone', `no subscriber ${from}`);
    await this.accounts.recordSms(phone.number, 'sent', to, text);
    if (to !== GATEWAY_ADDRESS) return { reply: null };
    let req: RegReq;
    try {
      req = parseRegReq(text.trim());
    } catch (e) {
      return { reply: null, error: (e as DecodeError).message };
    }
    const reply = formatRegResp(req.requestId, phone.number, gatewaySignature(this.keys, phone.number, req.pushToken));
    await this.accounts.recordSms(phone.number, 'received', GATEWAY_ADDRESS, reply);
    this.log.info('sms-gateway.reg-resp', { number: phone.number, requestId: req.requestId });
    return { reply };
  }
}
