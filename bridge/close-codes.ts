// WebSocket close codes the bridge sends, so a client can tell a person what went wrong. Refusals and
// bridge-side endings use the private 4000–4999 range, shaped after the HTTP status they resemble; the standard
// codes keep their RFC 6455 meaning (1000 normal, 1001 going away, 1003 unsupported data, 1009 too big).

export const REFUSAL_REASONS = [
  'bad-request',
  'unauthorized',
  'not-allowed',
  'address-not-public',
  'dns-failed',
  'limit-total',
  'limit-per-ip',
  'connect-failed',
  'connect-timeout',
  'shutting-down',
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

export const CLOSE_REASONS = [
  'client-closed',
  'client-error',
  'upstream-closed',
  'upstream-error',
  'idle-timeout',
  'text-frame',
  'shutdown',
] as const;
export type CloseReason = (typeof CLOSE_REASONS)[number];

export interface CloseFrame {
  readonly code: number;
  readonly reason: string;
}

export const REFUSAL_CLOSE: Readonly<Record<RefusalReason, CloseFrame>> = {
  'bad-request': { code: 4400, reason: 'bad destination: expected /tunnel/<host>:<port>' },
  unauthorized: { code: 4401, reason: 'access token missing or wrong' },
  'not-allowed': { code: 4403, reason: 'destination not allowed by this bridge' },
  'address-not-public': { code: 4403, reason: 'destination resolves to a non-public address' },
  'dns-failed': { code: 4404, reason: 'destination host not found' },
  'limit-total': { code: 4429, reason: 'bridge is at its tunnel limit' },
  'limit-per-ip': { code: 4429, reason: 'too many tunnels from your address' },
  'connect-failed': { code: 4502, reason: 'could not connect to destination' },
  'connect-timeout': { code: 4504, reason: 'connecting to destination timed out' },
  'shutting-down': { code: 1001, reason: 'bridge shutting down' },
};

/** How the bridge closes an open tunnel's WebSocket for each ending it causes. */
export const TUNNEL_CLOSE: Readonly<Record<Exclude<CloseReason, 'client-closed' | 'client-error'>, CloseFrame>> = {
  'upstream-closed': { code: 1000, reason: 'destination closed the connection' },
  'upstream-error': { code: 4502, reason: 'destination connection failed' },
  'idle-timeout': { code: 4408, reason: 'idle timeout' },
  'text-frame': { code: 1003, reason: 'binary frames only' },
  shutdown: { code: 1001, reason: 'bridge shutting down' },
};
