// IDS lookups over the courier (ids.md §7, §9 item 10): a device sends `{c:96, U, u, v, cT, h, b}` on
// com.apple.madrid (or a sub-service topic) and gets `{c:97, U, s, hs, b}` back on the same topic.
//
// Answers (all HTTP status 200 in `hs`; the verdict is the `status` inside the gzipped body, as for the HTTP
// endpoints, so every client's parser sees a well-formed reply):
//   5009 a signing header is missing · 5006 `x-push-token` is not a token · 5085 bad certificate (not an ID
//   certificate of the sandbox's IDS CA) · 6005 ID certificate expired, or its user does not own `x-id-self-uri`
//   (clients re-register and retry once; a handle taken off the account lands here too) · 5086 / 5087 nonce malformed
//   / out of the ±5 min window · 5032 bad signature, or `x-push-token` is not the sending connection's token (the
//   signature then covers someone else's token) · 5003 `b` missing or not a gzipped plist with a `uris` array.
// More URIs than `max-uri-multi-query` → tunnel status `{c:97, U, s:5206}` without `b`, as does a reply too large to
// push. A request without a usable `U` cannot be answered (clients match on `U` only) and is dropped with a log line.
import { equalBytes, toHex, utf8 } from '../../lib/codec/bytes';
import { gzip, maybeGunzip } from '../../lib/codec/gzip';
import { encodeBinaryPlist, isDict, parsePlist, setPlistKey, type PlistDict, type PlistValue } from '../../lib/codec/plist';
import { Command } from '../../lib/imessage/commands';
import type { Clock, Log } from '../context';
import type { UpstreamMessage, UpstreamReply } from '../courier/deps';
import type { SandboxPki } from '../pki';
import type { DeviceRegistration, Registrations } from './registrations';
import { mintSessionToken } from './session-tokens';
import { IdsStatus, verifyIdSignature } from './signed-request';

export const QUERY_BAG_KEY = 'id-query';
/** Tunnel status: the response does not fit (ids.md §5 table, WebTunnelServiceResponseTooLarge). */
export const TUNNEL_RESPONSE_TOO_LARGE = 5206;

export interface QueryOptions {
  /** The main service whose registrations answer lookups (sub-service lookups filter them). */
  service: string;
  /** The bag's `max-uri-multi-query`. */
  maxUris: number;
  /** Identity `session-token-expires-seconds`: the token's lifetime and the client's hard cache TTL. */
  sessionTokenExpiresSeconds: number;
  /** Identity `session-token-refresh-seconds`: the client's soft cache TTL. */
  sessionTokenRefreshSeconds: number;
}

export interface QueryDeps {
  pki: SandboxPki;
  registrations: Registrations;
  clock: Clock;
  log: Log;
}

/** A legacy 0x0A item carries at most 0xFFFF payload bytes; a reply beyond that cannot be pushed. */
const MAX_REPLY_BYTES = 0xffff;
/** An inflated query body: 35 handles of a few hundred bytes each, with generous room. */
const MAX_BODY_BYTES = 256 * 1024;
const MAX_U_BYTES = 64;

export class QueryService {
  constructor(
    private readonly deps: QueryDeps,
    private readonly options: QueryOptions,
  ) {}

  /** Answers one decoded `c:96` request that arrived on `msg.topic`. */
  async handle(msg: UpstreamMessage, request: PlistDict, reply: UpstreamReply): Promise<void> {
    const { log } = this.deps;
    const u = request['U'];
    const meta = { topic: msg.topic, token: toHex(msg.senderToken).slice(0, 16) };
    if (!(u instanceof Uint8Array) || u.length === 0 || u.length > MAX_U_BYTES) {
      log.warn('ids.query-unanswerable', { ...meta, reason: 'no usable U' });
      return;
    }
    const answer = await this.answer(msg, request);
    const payload = await this.encodeReply(u, answer);
    log.info('ids.query', { ...meta, U: toHex(u), ...answer.logFields });
    await reply.toSender(payload);
  }

  private async answer(msg: UpstreamMessage, request: PlistDict): Promise<Answer> {
    const headers = stringHeaders(request['h']);
    const body = request['b'];
    if (!(body instanceof Uint8Array)) return statusAnswer(IdsStatus.badRequest, 'no body');
    // The signature covers `b` exactly as received (gzipped); the token must be the connection's own.
    const signed = await verifyIdSignature(headers, QUERY_BAG_KEY, body, this.deps.pki, this.deps.clock);
    if (typeof signed === 'number') return statusAnswer(signed, 'signature');
    if (!equalBytes(signed.pushToken, msg.senderToken)) return statusAnswer(IdsStatus.badSignature, 'token mismatch');
    const selfUri = headers['x-id-self-uri'];
    if (selfUri === undefined) return statusAnswer(IdsStatus.missingRequiredHeader, 'no self uri');
    if (!this.owns(signed.userId, selfUri)) return statusAnswer(IdsStatus.refreshCredentials, 'self uri not owned');
    const uris = await queriedUris(body);
    if (!uris) return statusAnswer(IdsStatus.badRequest, 'bad body');
    if (uris.length > this.options.maxUris) return { tunnelStatus: TUNNEL_RESPONSE_TOO_LARGE, logFields: { uris: uris.length } };
    // Sub-service lookups arrive on the sub-service's topic and name it in x-id-sub-service; the header wins.
    const subService = headers['x-id-sub-service'] ?? (msg.topic === this.options.service ? undefined : msg.topic);
    const results: PlistDict = {};
    let identities = 0;
    for (const uri of uris) {
      const found = this.identitiesFor(uri, selfUri, subService, this.owns(signed.userId, uri));
      identities += found.identities.length;
      // Keys are the handles verbatim, and untrusted: never through the `__proto__` setter.
      setPlistKey(results, uri, found);
    }
    return { body: { status: IdsStatus.ok, results }, logFields: { status: 0, uris: uris.length, identities } };
  }

  private owns(userId: string, uri: string): boolean {
    return this.current(uri).some((r) => r.userId === userId);
  }

  /** Devices registered for `uri` whose ID certificate has not lapsed (what getDependentRegistrations shows too). */
  private current(uri: string) {
    return this.deps.registrations.devicesForUri(this.options.service, uri).filter((r) => this.deps.registrations.isCurrent(r));
  }

  /**
   * `ownAccount`: the requester looks up its own account's handle. Its devices then carry their `device-name` (an
   * optional identity key, ids.md §7.2), so the account's device list can name them; other people's lookups do not
   * learn what someone calls their devices.
   */
  private identitiesFor(uri: string, selfUri: string, subService: string | undefined, ownAccount: boolean): PlistDict & { identities: PlistDict[] } {
    const regs = this.current(uri).filter((r) => subService === undefined || r.subServices.includes(subService));
    const devices = newestPerToken(regs);
    const now = this.deps.clock.now();
    const expiresAt = now + this.options.sessionTokenExpiresSeconds * 1000;
    const identities = devices.map((r): PlistDict => {
      const identity: PlistDict = {
        'push-token': r.pushToken,
        'session-token': mintSessionToken(this.deps.pki, { senderUri: selfUri, receiverUri: uri, receiverToken: r.pushToken, expiresAt }),
        'session-token-expires-seconds': this.options.sessionTokenExpiresSeconds,
        'session-token-refresh-seconds': this.options.sessionTokenRefreshSeconds,
      };
      if (r.clientData) identity['client-data'] = r.clientData;
      if (r.ktLoggableData) identity['kt-loggable-data'] = r.ktLoggableData;
      if (ownAccount && r.deviceName !== undefined) identity['device-name'] = r.deviceName;
      return identity;
    });
    const first = devices[0];
    return first ? { identities, 'sender-correlation-identifier': this.correlationId(first.userId) } : { identities };
  }

  // Stable per account and opaque: peers may correlate a person's handles, never learn the account id.
  private correlationId(userId: string): string {
    const h = toHex(this.deps.pki.mac('ids-sender-correlation', utf8(userId))).toUpperCase();
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
  }

  private async encodeReply(u: Uint8Array, answer: Answer): Promise<Uint8Array> {
    if (answer.tunnelStatus !== undefined) return encodeBinaryPlist({ c: Command.HttpResponse, U: u, s: answer.tunnelStatus });
    const b = await gzip(encodeBinaryPlist(answer.body));
    const payload = encodeBinaryPlist({ c: Command.HttpResponse, U: u, s: 0, hs: 200, b });
    if (payload.length <= MAX_REPLY_BYTES) return payload;
    this.deps.log.warn('ids.query-reply-too-large', { U: toHex(u), bytes: payload.length });
    return encodeBinaryPlist({ c: Command.HttpResponse, U: u, s: TUNNEL_RESPONSE_TOO_LARGE });
  }
}

type Answer =
  | { tunnelStatus: number; body?: undefined; logFields: Record<string, unknown> }
  | { tunnelStatus?: undefined; body: PlistDict; logFields: Record<string, unknown> };

function statusAnswer(status: number, reason: string): Answer {
  return { body: { status }, logFields: { status, reason } };
}

/** `h` as lower-case names → string values; anything else in it is ignored (a missing header then fails 5009). */
function stringHeaders(h: PlistValue | undefined): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  if (!isDict(h)) return out;
  for (const [k, v] of Object.entries(h)) if (typeof v === 'string') out[k.toLowerCase()] = v;
  return out;
}

/** The handles of `{uris:[…]}` (gzipped as [PY]/[BG]/[RP] send it; a plain plist is accepted too), or null. */
async function queriedUris(body: Uint8Array): Promise<string[] | null> {
  try {
    const dict = parsePlist(await maybeGunzip(body, MAX_BODY_BYTES), { maxBytes: MAX_BODY_BYTES, maxDepth: 8 });
    const uris = isDict(dict) ? dict['uris'] : undefined;
    if (!Array.isArray(uris) || !uris.every((x): x is string => typeof x === 'string')) return null;
    return uris;
  } catch {
    return null;
  }
}

// A device registered under two users for the same handle (a phone number linked to an Apple ID) is one identity.
function newestPerToken(regs: DeviceRegistration[]): DeviceRegistration[] {
  const byToken = new Map<string, DeviceRegistration>();
  for (const r of regs) {
    const key = toHex(r.pushToken);
    const seen = byToken.get(key);
    if (!seen || r.updatedAt > seen.updatedAt) byToken.set(key, r);
  }
  return [...byToken.values()];
}
