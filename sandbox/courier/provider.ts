// The provider API's push request, `POST /3/device/<hex token>` with an `apns-topic` header and the payload as
// the body (apns.md §5, §8.9), over plain HTTP/1.1 so tests and tools can inject notifications with any client.
// Answers follow Apple's provider API: 200 with `apns-id`, or a status and `{"reason": …}`.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fromHex } from '../../lib/codec/bytes';
import type { Courier, DeliveryRefusal } from './courier';

const PATH = /^\/3\/device\/([0-9a-fA-F]*)\/?(?:\?.*)?$/;
/** Apple's provider limit for ordinary pushes. */
const DEFAULT_MAX_PAYLOAD = 4096;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

const REFUSAL: Record<Exclude<DeliveryRefusal, 'offline'>, [number, string]> = {
  'unknown-token': [400, 'BadDeviceToken'],
  'token-not-for-topic': [400, 'DeviceTokenNotForTopic'],
  'too-large': [413, 'PayloadTooLarge'],
  'queue-full': [429, 'TooManyRequests'],
};

export interface ProviderHandlerOptions {
  /** Largest accepted body; Apple's is 4096 (5120 for VoIP). */
  maxPayload?: number;
}

/** Reads at most `limit` bytes; the rest of a larger body is drained, not kept. undefined = too large. */
async function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array | undefined> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Uint8Array>) {
    total += chunk.length;
    if (total <= limit) chunks.push(chunk);
  }
  if (total > limit) return undefined;
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/**
 * A request handler to mount on an HTTP server: resolves true if it answered the request, false if the path is not
 * a push path (the caller answers it).
 */
export function createProviderHandler(
  courier: Pick<Courier, 'deliver'>,
  opts: ProviderHandlerOptions = {},
): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const maxPayload = opts.maxPayload ?? DEFAULT_MAX_PAYLOAD;
  return async (req, res) => {
    const match = PATH.exec(req.url ?? '');
    if (!match) return false;
    const header = (name: string) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const requestedId = header('apns-id');
    const apnsId = requestedId && UUID.test(requestedId) ? requestedId.toLowerCase() : randomUUID();
    const answer = (status: number, reason?: string) => {
      const body = reason ? JSON.stringify({ reason }) : '';
      res.writeHead(status, {
        'apns-id': apnsId,
        ...(reason ? { 'content-type': 'application/json' } : {}),
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
      return true;
    };
    if (req.method !== 'POST') return answer(405, 'MethodNotAllowed');
    if (requestedId !== undefined && !UUID.test(requestedId)) return answer(400, 'BadMessageId');
    const tokenHex = match[1]!;
    if (tokenHex.length !== 64) return answer(400, 'BadDeviceToken');
    const topic = header('apns-topic');
    if (!topic) return answer(400, 'MissingTopic');
    const expirationHeader = header('apns-expiration');
    let expiry: number | undefined;
    if (expirationHeader !== undefined) {
      expiry = /^\d{1,10}$/.test(expirationHeader) ? Number(expirationHeader) : NaN;
      if (!(expiry <= 0xffffffff)) return answer(400, 'BadExpirationDate');
    }
    const payload = await readBody(req, maxPayload);
    if (!payload) return answer(413, 'PayloadTooLarge');
    if (payload.length === 0) return answer(400, 'PayloadEmpty');
    // Expiration 0: deliver once if the device is there, never store (Apple's documented meaning).
    const result = await courier.deliver(
      fromHex(tokenHex),
      topic,
      payload,
      expiry === 0 ? { storeIfOffline: false } : { expiry },
    );
    if (result.reason && result.reason !== 'offline') {
      const [status, reason] = REFUSAL[result.reason];
      return answer(status, reason);
    }
    return answer(200);
  };
}
