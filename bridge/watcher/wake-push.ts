// Sending a wake-up by Web Push. web-push builds the request — the RFC 8291 aes128gcm encryption to the
// subscription's keys and the RFC 8292 VAPID Authorization — and this module sends it itself rather than through
// web-push's sendNotification, for two reasons: each connection's address is checked by the endpoint policy as it
// is opened (sendNotification resolves names on its own), and the sandbox's loopback endpoints may be plain http
// (sendNotification speaks only https).
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import webPush from 'web-push';
import { encodeWake, type WakePayload } from '../../lib/push/wake';
import { addressAllowed, type EndpointPolicy, policyLookup } from './endpoint-policy';
import type { VapidKeys } from './vapid';

export interface PushTarget {
  readonly endpoint: string;
  /** The subscription's keys, base64url as the browser gives them. */
  readonly p256dh: string;
  readonly auth: string;
}

export type PushOutcome =
  /** The push service took it (2xx). */
  | { readonly kind: 'sent'; readonly status: number }
  /** 404/410: the subscription is dead; the enrollment goes. */
  | { readonly kind: 'gone'; readonly status: number }
  /** Any other 4xx but 429: our request is wrong (VAPID key, size); retrying will not help. */
  | { readonly kind: 'rejected'; readonly status: number; readonly error?: string }
  /** 429, 5xx, timeouts, network: worth another try. */
  | { readonly kind: 'failed'; readonly status?: number; readonly error?: string };

export interface WakePusherOptions {
  readonly vapid: VapidKeys;
  readonly subject: string;
  readonly ttlSeconds: number;
  readonly timeoutMs: number;
  readonly policy: EndpointPolicy;
}

/** Only the status matters; a push service's answer body is read up to this and dropped. */
const MAX_RESPONSE_BYTES = 16 * 1024;
/** Collapse key: a push service keeps only the newest undelivered wake-up per subscription. */
const TOPIC = 'cerulean-wake';

export class WakePusher {
  // Keep-alive agents: a push service (FCM, Mozilla, Apple) serves many subscriptions on one host.
  private readonly agents = {
    'https:': new https.Agent({ keepAlive: true, maxSockets: 64 }),
    'http:': new http.Agent({ keepAlive: true, maxSockets: 64 }),
  };

  constructor(private readonly o: WakePusherOptions) {}

  send(target: PushTarget, wake: WakePayload): Promise<PushOutcome> {
    let details: ReturnType<typeof webPush.generateRequestDetails>;
    try {
      details = webPush.generateRequestDetails(
        { endpoint: target.endpoint, keys: { p256dh: target.p256dh, auth: target.auth } },
        encodeWake(wake),
        {
          vapidDetails: { subject: this.o.subject, publicKey: this.o.vapid.publicKey, privateKey: this.o.vapid.privateKey },
          TTL: this.o.ttlSeconds,
          urgency: 'high',
          topic: TOPIC,
          contentEncoding: 'aes128gcm',
        },
      );
    } catch (e) {
      return Promise.resolve({ kind: 'rejected', status: 0, error: (e as Error).message });
    }
    const url = new URL(details.endpoint);
    const protocol = url.protocol === 'http:' ? 'http:' : 'https:';
    // A literal address never reaches the lookup hook: check it here.
    const literal = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(literal) !== 0 && !addressAllowed(literal, protocol, this.o.policy)) {
      return Promise.resolve({ kind: 'rejected', status: 0, error: 'endpoint-not-allowed' });
    }
    const request = protocol === 'http:' ? http.request : https.request;
    return new Promise<PushOutcome>((resolve) => {
      const req = request(
        url,
        {
          method: 'POST',
          headers: details.headers as http.OutgoingHttpHeaders,
          agent: this.agents[protocol],
          lookup: policyLookup(protocol, this.o.policy),
          timeout: this.o.timeoutMs,
        },
        (res) => {
          let seen = 0;
          res.on('data', (chunk: Buffer) => {
            seen += chunk.length;
            if (seen > MAX_RESPONSE_BYTES) res.destroy();
          });
          const status = res.statusCode ?? 0;
          res.on('close', () => resolve(classify(status)));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', (e) => resolve({ kind: 'failed', error: (e as NodeJS.ErrnoException).code ?? e.message }));
      req.end(details.body ?? undefined);
    });
  }

  close(): void {
    for (const agent of Object.values(this.agents)) agent.destroy();
  }
}

function classify(status: number): PushOutcome {
  if (status >= 200 && status < 300) return { kind: 'sent', status };
  if (status === 404 || status === 410) return { kind: 'gone', status };
  if (status >= 400 && status < 500 && status !== 429) return { kind: 'rejected', status };
  return { kind: 'failed', status };
}
