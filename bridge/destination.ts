// Parsing what a client names: `host:port` from the tunnel path. Only plain DNS names (letters, digits, `-`, `_`;
// IDNs in their xn-- form) and IP literals pass, so what the allowlist and the logs see is exactly what gets
// resolved; shorthand numeric forms that resolvers would read as addresses ("127.1", "0x7f.1") are refused.
import { isIPv4, isIPv6 } from 'node:net';

export interface Destination {
  /** Lower-case DNS name without a trailing dot, dotted-quad IPv4, or canonical IPv6 without brackets. */
  readonly host: string;
  readonly port: number;
}

/** The path prefix a tunnel request starts with; the destination follows it. */
export const TUNNEL_PREFIX = '/tunnel/';

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
const NUMERIC_LABEL = /^(?:0x[0-9a-f]*|[0-9]+)$/;

export function parsePort(text: string): number | null {
  if (!/^[0-9]{1,5}$/.test(text)) return null;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : null;
}

function canonicalIPv6(text: string): string | null {
  if (!isIPv6(text) || text.includes('%')) return null;
  return new URL(`http://[${text}]/`).hostname.slice(1, -1);
}

/** Canonical form of a host name or IP literal (IPv6 with or without brackets), or null when it is neither. */
export function normalizeHost(text: string): string | null {
  if (text.startsWith('[') && text.endsWith(']')) return canonicalIPv6(text.slice(1, -1));
  if (isIPv4(text)) return text;
  if (isIPv6(text)) return canonicalIPv6(text);
  let host = text.toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host.length === 0 || host.length > 253) return null;
  const labels = host.split('.');
  if (!labels.every((l) => LABEL.test(l))) return null;
  if (NUMERIC_LABEL.test(labels[labels.length - 1] ?? '')) return null;
  return host;
}

/** `host:port` or `[v6]:port` → Destination, or null. */
export function parseHostPort(text: string): Destination | null {
  const colon = text.lastIndexOf(':');
  if (colon <= 0) return null;
  const port = parsePort(text.slice(colon + 1));
  const rawHost = text.slice(0, colon);
  // A bare IPv6 literal would be ambiguous with the port separator: brackets are required.
  if (port === null || (isIPv6(rawHost) && !rawHost.startsWith('['))) return null;
  const host = normalizeHost(rawHost);
  return host === null ? null : { host, port };
}

/**
 * The destination named by a request path (`/tunnel/<host>:<port>`, query already removed), or null when the
 * path is malformed. Percent-encoding is decoded once, so `%5B::1%5D:443` and `[::1]:443` are the same.
 */
export function parseTunnelPath(path: string): Destination | null {
  if (!path.startsWith(TUNNEL_PREFIX)) return null;
  let target: string;
  try {
    target = decodeURIComponent(path.slice(TUNNEL_PREFIX.length));
  } catch {
    return null;
  }
  return target.includes('/') ? null : parseHostPort(target);
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
