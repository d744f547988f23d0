// The optional access token. Browsers cannot set headers on a WebSocket, so besides `Authorization: Bearer` the
// token may ride in a subprotocol (`cerulean.token.<token>`, offered next to `cerulean.bridge.v1`, which the
// bridge selects) or in the query (`?token=`). Comparison is constant-time over SHA-256 digests, so neither the
// content nor the length of the expected token leaks through timing.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** The subprotocol the bridge speaks; a client that offers any subprotocol must offer this one too. */
export const BRIDGE_PROTOCOL = 'cerulean.bridge.v1';
export const TOKEN_PROTOCOL_PREFIX = 'cerulean.token.';

/** The token a request carries, first found of: Authorization header, subprotocol, query. */
export function presentedToken(req: IncomingMessage, query: URLSearchParams): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  const protocols = req.headers['sec-websocket-protocol'];
  if (protocols !== undefined) {
    for (const p of protocols.split(',')) {
      const name = p.trim();
      if (name.startsWith(TOKEN_PROTOCOL_PREFIX)) return name.slice(TOKEN_PROTOCOL_PREFIX.length);
    }
  }
  return query.get('token') ?? undefined;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export function tokenMatches(expected: string, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  return timingSafeEqual(digest(expected), digest(presented));
}

/** Picks the subprotocol to answer with: ours when offered, never the token one. */
export function selectProtocol(offered: ReadonlySet<string>): string | false {
  return offered.has(BRIDGE_PROTOCOL) ? BRIDGE_PROTOCOL : false;
}
