// The courier's topic backends for IDS lookups and iMessage routing. Every upstream 0x0A on a madrid topic is
// decoded once here and dispatched by `c`: 96 → lookup (sandbox/ids/query.ts), anything else on a messaging topic →
// the router. Payloads that are not a plist dict with an integer `c` were already acked by the courier; they are
// logged and dropped, and the connection keeps being served.
import { toHex } from '../../lib/codec/bytes';
import { isDict, parsePlist, type PlistDict } from '../../lib/codec/plist';
import { Command } from '../../lib/imessage/commands';
import { CeruleanError } from '../../lib/errors';
import type { Clock, Log } from '../context';
import type { Courier } from '../courier/courier';
import type { TopicBackend, UpstreamMessage, UpstreamReply } from '../courier/deps';
import { QueryService } from '../ids/query';
import type { Registrations } from '../ids/registrations';
import type { SandboxPki } from '../pki';
import type { Store } from '../store';
import { ControlPushes } from './control';
import { MadridRouter } from './router';

export { ControlPushes, controlPayload, IDS_CONTROL_TOPIC } from './control';

export const MADRID_SERVICE = 'com.apple.madrid';
export const SMS_RELAY_TOPIC = 'com.apple.private.alloy.sms';

export interface MadridOptions {
  /** The main IDS service (default com.apple.madrid). */
  service?: string;
  /** Topics whose sends are routed (default madrid and the SMS-relay sub-service). Lookups are answered on them too. */
  messageTopics?: readonly string[];
  /** Further sub-service topics that only answer lookups (ids.md §5 sub-services). */
  lookupTopics?: readonly string[];
  /** The bag's max-uri-multi-query (default 35). */
  maxUrisPerQuery?: number;
  /** Lookup session-token lifetime (default 7 days). */
  sessionTokenExpiresSeconds?: number;
  /** Lookup soft TTL (default 1 day). */
  sessionTokenRefreshSeconds?: number;
  /** Largest `P` per destination (default 15 KiB, the courier's large-message size). */
  maxPayloadBytes?: number;
  /** Duplicate-send window (default 10 minutes). */
  dedupWindowMs?: number;
}

export interface MadridDeps {
  pki: SandboxPki;
  store: Store;
  clock: Clock;
  log: Log;
  registrations: Registrations;
  options?: MadridOptions;
}

export interface MadridInstance {
  /** The `{"c":…}` pushes on com.apple.private.ids, including the 32/66 hooks. */
  control: ControlPushes;
  /** Stops answering (the courier keeps the backends registered but they drop everything) and stops the pushes. */
  close(): void;
}

const DEFAULT_LOOKUP_TOPICS = [
  'com.apple.private.alloy.gelato',
  'com.apple.private.alloy.biz',
  'com.apple.private.alloy.gamecenter.imessage',
];
// Envelopes are a few levels deep; the courier already caps the payload at its large-message size.
const ENVELOPE_LIMITS = { maxDepth: 16, maxObjects: 20_000 };

export function installMadrid(courier: Courier, deps: MadridDeps): MadridInstance {
  const o = deps.options ?? {};
  const service = o.service ?? MADRID_SERVICE;
  const messageTopics = new Set(o.messageTopics ?? [service, SMS_RELAY_TOPIC]);
  const lookupTopics = new Set([service, ...messageTopics, ...(o.lookupTopics ?? DEFAULT_LOOKUP_TOPICS)]);
  const query = new QueryService(deps, {
    service,
    maxUris: o.maxUrisPerQuery ?? 35,
    sessionTokenExpiresSeconds: o.sessionTokenExpiresSeconds ?? 7 * 86_400,
    sessionTokenRefreshSeconds: o.sessionTokenRefreshSeconds ?? 86_400,
  });
  const router = new MadridRouter(
    { courier, keys: deps.pki, registrations: deps.registrations, store: deps.store, clock: deps.clock, log: deps.log },
    { service, maxPayloadBytes: o.maxPayloadBytes ?? 15_360, dedupWindowMs: o.dedupWindowMs ?? 10 * 60_000 },
  );
  const control = new ControlPushes(courier, deps.registrations, deps.log);
  let closed = false;

  const backend = (routes: boolean): TopicBackend => ({
    async handleUpstream(msg: UpstreamMessage, reply: UpstreamReply): Promise<void> {
      if (closed) return;
      const decoded = decode(msg, deps.log);
      if (!decoded) return;
      const { dict, command } = decoded;
      if (command === Command.HttpRequest) return query.handle(msg, dict, reply);
      if (routes) return router.handle(msg, dict, command, reply);
      deps.log.info('madrid.unrouted', { topic: msg.topic, c: command, from: toHex(msg.senderToken.subarray(0, 8)) });
    },
  });
  for (const topic of lookupTopics) courier.registerTopicBackend(topic, backend(messageTopics.has(topic)));

  return {
    control,
    close() {
      closed = true;
      control.close();
    },
  };
}

function decode(msg: UpstreamMessage, log: Log): { dict: PlistDict; command: number } | undefined {
  let reason: string;
  try {
    const dict = parsePlist(msg.payload, { ...ENVELOPE_LIMITS, maxBytes: msg.payload.length });
    const c = isDict(dict) ? dict['c'] : undefined;
    if (isDict(dict) && typeof c === 'number' && Number.isSafeInteger(c)) return { dict, command: c };
    reason = isDict(dict) ? 'no integer c' : 'not a dict';
  } catch (e) {
    reason = e instanceof CeruleanError ? e.code : 'undecodable';
  }
  log.warn('madrid.malformed', { topic: msg.topic, from: toHex(msg.senderToken.subarray(0, 8)), bytes: msg.payload.length, reason });
  return undefined;
}
