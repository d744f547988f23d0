// What every IDS call needs: a way to send HTTPS requests, the bag (endpoint URLs), the device it speaks for (User
// Agents), the protocol version it claims, and a clock (nonce times; tests pin it).
import type { IdsBag } from './bag';
import type { DeviceInfo } from './device';
import type { IdsHttp } from './transport';

/** `x-protocol-version` of 2023 clients ([PY] 1630, [BG] 1640; [RP] later 1660). */
export const DEFAULT_PROTOCOL_VERSION = '1640';

export interface IdsContext {
  http: IdsHttp;
  bag: IdsBag;
  device: DeviceInfo;
  protocolVersion?: string;
  /** Unix ms; default Date.now. */
  now?: () => number;
}

export function protocolVersionOf(ctx: Pick<IdsContext, 'protocolVersion'>): string {
  return ctx.protocolVersion ?? DEFAULT_PROTOCOL_VERSION;
}

export function nowOf(ctx: Pick<IdsContext, 'now'>): number {
  return (ctx.now ?? Date.now)();
}
