// Bridge configuration: defaults, a JSON config file, environment variables, and the programmatic hooks tests use
// (resolver, connector, log sink). Every value is checked at start-up, so a bad setting stops the bridge with a
// clear message instead of surfacing later as a strange refusal.
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { APPLE_DEFAULT_ALLOW, Allowlist, parseAllowRule } from './allowlist';
import { configFields, type ConfigFields } from './config-fields';
import { BridgeConfigError } from './errors';
import { HostMap, readHostMapFile } from './host-map';
import { LOG_LEVELS, type LogLevel, type LogSink, stdoutSink } from './log';

export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}
/** Resolves a DNS name to every address it has. */
export type Resolver = (host: string) => Promise<ResolvedAddress[]>;
/** Opens a TCP connection to an already resolved address; the socket emits 'connect' or 'error' as net.connect does. */
export type Connector = (target: { readonly address: string; readonly port: number; readonly family: 4 | 6 }) => Socket;

/** What a caller may set. Everything is optional; see DEFAULTS and bridge/README.md. */
export interface BridgeOptions {
  host?: string;
  port?: number;
  /** Access token clients must present; unset = open bridge. */
  token?: string;
  /** Include Apple's courier, IDS, albert, bag and carrier-bundle hosts (APPLE_DEFAULT_ALLOW) in the allowlist. */
  allowAppleDefaults?: boolean;
  /** Extra `pattern:port` entries, e.g. a registration relay. */
  allow?: readonly string[];
  /** `host:port` → `address:port`; merged over the entries of hostMapFile. */
  hostMap?: Readonly<Record<string, string>>;
  /** A JSON file shaped `{ "hosts": { "host:port": "address:port" } }` (the sandbox writes one). */
  hostMapFile?: string;
  maxTunnels?: number;
  maxTunnelsPerIp?: number;
  /** DNS plus TCP connect, all addresses together. */
  connectTimeoutMs?: number;
  /** No bytes either way for this long closes the tunnel. */
  idleTimeoutMs?: number;
  /** Per tunnel and per direction; 0 = unlimited. */
  bytesPerSecond?: number;
  burstBytes?: number;
  maxMessageBytes?: number;
  /** Stop reading the destination when this much is queued towards the client; resume below lowWaterBytes. */
  highWaterBytes?: number;
  lowWaterBytes?: number;
  /** WebSocket pings keep idle tunnels alive through proxies; 0 = none. */
  pingIntervalMs?: number;
  shutdownGraceMs?: number;
  /** Count per-IP limits by the last X-Forwarded-For address (only behind a proxy that sets it). */
  trustForwardedFor?: boolean;
  logLevel?: LogLevel;
  logSink?: LogSink;
  resolver?: Resolver;
  connector?: Connector;
}

export interface BridgeConfig {
  readonly host: string;
  readonly port: number;
  readonly token: string | undefined;
  readonly allowlist: Allowlist;
  readonly hostMap: HostMap;
  readonly maxTunnels: number;
  readonly maxTunnelsPerIp: number;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly bytesPerSecond: number;
  readonly burstBytes: number;
  readonly maxMessageBytes: number;
  readonly highWaterBytes: number;
  readonly lowWaterBytes: number;
  readonly pingIntervalMs: number;
  readonly shutdownGraceMs: number;
  readonly trustForwardedFor: boolean;
  readonly logLevel: LogLevel;
  readonly logSink: LogSink;
  readonly resolver: Resolver;
  readonly connector: Connector;
}

const MiB = 1024 * 1024;

export const DEFAULTS = {
  host: '127.0.0.1',
  port: 8787,
  allowAppleDefaults: true,
  maxTunnels: 4096,
  maxTunnelsPerIp: 32,
  connectTimeoutMs: 10_000,
  idleTimeoutMs: 15 * 60_000,
  bytesPerSecond: MiB,
  maxMessageBytes: MiB,
  highWaterBytes: MiB,
  lowWaterBytes: MiB / 4,
  pingIntervalMs: 30_000,
  shutdownGraceMs: 3_000,
  trustForwardedFor: false,
  logLevel: 'info' as LogLevel,
};

/** Minimum burst: one full-size TLS record plus framing, so a single record never waits on the bucket. */
const MIN_BURST = 64 * 1024;

// Token characters allowed in every place a client may carry the token (query, header, WebSocket subprotocol).
const TOKEN_SHAPE = /^[A-Za-z0-9._~-]{16,512}$/;

export const defaultResolver: Resolver = async (host) => {
  const found = await lookup(host, { all: true, verbatim: true });
  return found.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

export const defaultConnector: Connector = ({ address, port, family }) => connect({ host: address, port, family });

const fields = configFields((message) => new BridgeConfigError('bad-config', message));
// Annotated, so that TypeScript narrows after a call to it.
const fail: ConfigFields['fail'] = fields.fail;
const { int, bool, fn, stringList, stringRecord } = fields;

/** Checks options and fills defaults; reads hostMapFile. Throws BridgeConfigError. */
export function resolveConfig(options: BridgeOptions): BridgeConfig {
  const o = options as Record<keyof BridgeOptions, unknown>;
  const host = o.host ?? DEFAULTS.host;
  if (typeof host !== 'string' || host === '') fail('host', 'an address to listen on', host);
  const token = o.token;
  if (token !== undefined && (typeof token !== 'string' || !TOKEN_SHAPE.test(token))) {
    // The value itself stays out of the message: it is a secret.
    throw new BridgeConfigError('bad-config', 'token: expected 16–512 characters from A-Z a-z 0-9 . _ ~ -');
  }
  const logLevel = o.logLevel ?? DEFAULTS.logLevel;
  if (!LOG_LEVELS.includes(logLevel as LogLevel)) fail('logLevel', LOG_LEVELS.join(' | '), logLevel);

  const rules = [
    ...(bool('allowAppleDefaults', o.allowAppleDefaults, DEFAULTS.allowAppleDefaults) ? APPLE_DEFAULT_ALLOW : []),
    ...(stringList('allow', o.allow) ?? []),
  ].map(parseAllowRule);
  if (o.hostMapFile !== undefined && typeof o.hostMapFile !== 'string') fail('hostMapFile', 'a path', o.hostMapFile);
  const mapEntries = {
    ...(o.hostMapFile === undefined ? {} : readHostMapFile(o.hostMapFile)),
    ...stringRecord('hostMap', o.hostMap),
  };

  const bytesPerSecond = int('bytesPerSecond', o.bytesPerSecond, DEFAULTS.bytesPerSecond, 0, 2 ** 40);
  const highWaterBytes = int('highWaterBytes', o.highWaterBytes, DEFAULTS.highWaterBytes, 1024, 2 ** 30);
  const lowWaterBytes = int('lowWaterBytes', o.lowWaterBytes, Math.min(DEFAULTS.lowWaterBytes, highWaterBytes / 2), 0, 2 ** 30);
  if (lowWaterBytes >= highWaterBytes) fail('lowWaterBytes', `less than highWaterBytes (${highWaterBytes})`, lowWaterBytes);
  const maxTunnels = int('maxTunnels', o.maxTunnels, DEFAULTS.maxTunnels, 1, 1_000_000);

  return {
    host,
    port: int('port', o.port, DEFAULTS.port, 0, 65535),
    token,
    allowlist: new Allowlist(rules),
    hostMap: new HostMap(mapEntries),
    maxTunnels,
    maxTunnelsPerIp: int('maxTunnelsPerIp', o.maxTunnelsPerIp, Math.min(DEFAULTS.maxTunnelsPerIp, maxTunnels), 1, maxTunnels),
    connectTimeoutMs: int('connectTimeoutMs', o.connectTimeoutMs, DEFAULTS.connectTimeoutMs, 1, 600_000),
    idleTimeoutMs: int('idleTimeoutMs', o.idleTimeoutMs, DEFAULTS.idleTimeoutMs, 1, 2 ** 31 - 1),
    bytesPerSecond,
    burstBytes: int('burstBytes', o.burstBytes, Math.max(bytesPerSecond, MIN_BURST), MIN_BURST, 2 ** 40),
    maxMessageBytes: int('maxMessageBytes', o.maxMessageBytes, DEFAULTS.maxMessageBytes, 1024, 2 ** 30),
    highWaterBytes,
    lowWaterBytes,
    pingIntervalMs: int('pingIntervalMs', o.pingIntervalMs, DEFAULTS.pingIntervalMs, 0, 2 ** 31 - 1),
    shutdownGraceMs: int('shutdownGraceMs', o.shutdownGraceMs, DEFAULTS.shutdownGraceMs, 0, 600_000),
    trustForwardedFor: bool('trustForwardedFor', o.trustForwardedFor, DEFAULTS.trustForwardedFor),
    logLevel: logLevel as LogLevel,
    logSink: fn('logSink', o.logSink, stdoutSink),
    resolver: fn('resolver', o.resolver, defaultResolver),
    connector: fn('connector', o.connector, defaultConnector),
  };
}

// Keys a config file may hold: the options that are plain data.
const FILE_KEYS = new Set<string>([
  'host',
  'port',
  'token',
  'allowAppleDefaults',
  'allow',
  'hostMap',
  'hostMapFile',
  'maxTunnels',
  'maxTunnelsPerIp',
  'connectTimeoutMs',
  'idleTimeoutMs',
  'bytesPerSecond',
  'burstBytes',
  'maxMessageBytes',
  'highWaterBytes',
  'lowWaterBytes',
  'pingIntervalMs',
  'shutdownGraceMs',
  'trustForwardedFor',
  'logLevel',
]);

/** Reads a JSON config file holding BridgeOptions' data keys; unknown keys are an error (they are usually typos). */
export function readConfigFile(path: string): BridgeOptions {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new BridgeConfigError('bad-config', `cannot read config ${path}: ${(cause as Error).message}`, { cause });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new BridgeConfigError('bad-config', `${path}: expected a JSON object`);
  }
  for (const key of Object.keys(parsed)) {
    if (!FILE_KEYS.has(key)) throw new BridgeConfigError('bad-config', `${path}: unknown key ${JSON.stringify(key)}`);
  }
  return parsed as BridgeOptions;
}

const ENV_PREFIX = 'CERULEAN_BRIDGE_';
const ENV_INTS = {
  PORT: 'port',
  MAX_TUNNELS: 'maxTunnels',
  MAX_TUNNELS_PER_IP: 'maxTunnelsPerIp',
  CONNECT_TIMEOUT_MS: 'connectTimeoutMs',
  IDLE_TIMEOUT_MS: 'idleTimeoutMs',
  BYTES_PER_SECOND: 'bytesPerSecond',
  BURST_BYTES: 'burstBytes',
  MAX_MESSAGE_BYTES: 'maxMessageBytes',
  HIGH_WATER_BYTES: 'highWaterBytes',
  LOW_WATER_BYTES: 'lowWaterBytes',
  PING_INTERVAL_MS: 'pingIntervalMs',
  SHUTDOWN_GRACE_MS: 'shutdownGraceMs',
} as const satisfies Record<string, keyof BridgeOptions>;
const ENV_BOOLS = { APPLE_DEFAULTS: 'allowAppleDefaults', TRUST_FORWARDED_FOR: 'trustForwardedFor' } as const;

/** The CERULEAN_BRIDGE_* variables that are set (see bridge/README.md for the list). */
export function optionsFromEnv(env: Readonly<Record<string, string | undefined>>): BridgeOptions {
  const out: BridgeOptions = {};
  const get = (name: string) => {
    const v = env[ENV_PREFIX + name];
    return v === undefined || v === '' ? undefined : v;
  };
  const host = get('HOST');
  if (host !== undefined) out.host = host;
  const token = get('TOKEN');
  if (token !== undefined) out.token = token;
  const allow = get('ALLOW');
  if (allow !== undefined) out.allow = allow.split(/[\s,]+/).filter((s) => s !== '');
  const hostMapFile = get('HOSTMAP');
  if (hostMapFile !== undefined) out.hostMapFile = hostMapFile;
  const logLevel = get('LOG_LEVEL');
  if (logLevel !== undefined) out.logLevel = logLevel as LogLevel;
  for (const [name, key] of Object.entries(ENV_INTS)) {
    const v = get(name);
    if (v === undefined) continue;
    if (!/^[0-9]{1,15}$/.test(v)) fail(ENV_PREFIX + name, 'a decimal integer', v);
    out[key] = Number(v);
  }
  for (const [name, key] of Object.entries(ENV_BOOLS)) {
    const v = get(name)?.toLowerCase();
    if (v === undefined) continue;
    if (!['1', '0', 'true', 'false', 'yes', 'no'].includes(v)) fail(ENV_PREFIX + name, '1 or 0', v);
    out[key] = v === '1' || v === 'true' || v === 'yes';
  }
  return out;
}
