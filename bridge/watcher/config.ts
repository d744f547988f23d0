// Push watcher configuration: defaults, a JSON config file, CERULEAN_WATCHER_* environment variables and command-line
// flags (each overriding the one before), and the hooks tests use. Every value is checked at start-up, so a bad
// setting stops the watcher with a clear message instead of surfacing later as a strange refusal. Where the courier
// may be reached is decided exactly as the bridge decides it (allowlist, host map, address policy): the same modules
// and the same host-map file format.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { APPLE_DEFAULT_ALLOW, Allowlist, parseAllowRule } from '../allowlist';
import { type Connector, defaultConnector, defaultResolver, type Resolver } from '../config';
import { configFields, type ConfigFields } from '../config-fields';
import { HostMap, readHostMapFile } from '../host-map';
import { LOG_LEVELS, type LogLevel, type LogSink, stdoutSink } from '../log';
import { WatcherConfigError } from './errors';

export interface WatcherOptions {
  host?: string;
  port?: number;
  /** Holds the database, the VAPID keys and the storage key unless their own paths are given. */
  dataDir?: string;
  dbFile?: string;
  /** `{ publicKey, privateKey }` (base64url, as web-push makes them); generated with mode 0600 when missing. */
  vapidFile?: string;
  /** 32 random bytes that encrypt push keys, tokens and subscriptions at rest; generated with mode 0600. */
  keyFile?: string;
  /** The VAPID `sub` claim: a mailto: or https: contact for push services. */
  vapidSubject?: string;
  /** Origins the PWA is served from; `*` = any (the API uses bearer secrets, never cookies). */
  corsOrigins?: readonly string[];
  allowAppleDefaults?: boolean;
  /** Extra `pattern:port` courier destinations, as the bridge's `allow`. */
  allow?: readonly string[];
  hostMap?: Readonly<Record<string, string>>;
  /** The sandbox's host-map.json (or any `{ "hosts": {…} }` file), as the bridge's hostMapFile. */
  hostMapFile?: string;
  /** PEM trust anchors for the courier's certificate (the sandbox root; Apple Root CA in production). */
  caFile?: string;
  /** APNSCourierHostcount: numbered hosts `<n>-courier.push.apple.com`, n in 1…count, when an enrollment names none. */
  courierHostCount?: number;
  /** This instance's shard `i/n`: it holds only enrollments whose id hashes to i. */
  shard?: string;
  /** Where shard i is reached, `{shard}` standing for i; told to a client that asked the wrong shard. */
  shardUrlTemplate?: string;
  /** How long to stay off the courier after a wake-up when /drained never comes. */
  drainTimeoutMs?: number;
  /** Ceiling of the doubling away time after wake-ups nobody drained. */
  maxAwayMs?: number;
  /** Longest pause a device may ask for at once (the page renews it while open). */
  maxPauseMs?: number;
  courierKeepAliveMs?: number;
  courierConnectTimeoutMs?: number;
  courierBackoffInitialMs?: number;
  courierBackoffMaxMs?: number;
  /** TCP+TLS dials in flight at once (a restart reconnects every enrollment). */
  maxConcurrentDials?: number;
  maxEnrollments?: number;
  maxBodyBytes?: number;
  /** Enrollment requests per client address per minute. */
  enrollPerMinute?: number;
  trustForwardedFor?: boolean;
  webPushTimeoutMs?: number;
  /** How long a push service keeps an undelivered wake-up. */
  webPushTtlSeconds?: number;
  /** Accept `http://` Web Push endpoints on loopback addresses (the sandbox and tests only). */
  allowHttpLoopbackEndpoints?: boolean;
  /** Accept Web Push endpoints that resolve to private, loopback or link-local addresses. */
  allowPrivateEndpoints?: boolean;
  logLevel?: LogLevel;
  logSink?: LogSink;
  resolver?: Resolver;
  connector?: Connector;
}

export interface WatcherConfig {
  readonly host: string;
  readonly port: number;
  readonly dbFile: string;
  readonly vapidFile: string;
  readonly keyFile: string;
  readonly vapidSubject: string;
  readonly corsOrigins: readonly string[];
  readonly allowlist: Allowlist;
  readonly hostMap: HostMap;
  readonly ca: string | undefined;
  readonly courierHostCount: number;
  readonly shard: { readonly index: number; readonly count: number };
  readonly shardUrlTemplate: string | undefined;
  readonly drainTimeoutMs: number;
  readonly maxAwayMs: number;
  readonly maxPauseMs: number;
  readonly courierKeepAliveMs: number;
  readonly courierConnectTimeoutMs: number;
  readonly courierBackoffInitialMs: number;
  readonly courierBackoffMaxMs: number;
  readonly maxConcurrentDials: number;
  readonly maxEnrollments: number;
  readonly maxBodyBytes: number;
  readonly enrollPerMinute: number;
  readonly trustForwardedFor: boolean;
  readonly webPushTimeoutMs: number;
  readonly webPushTtlSeconds: number;
  readonly allowHttpLoopbackEndpoints: boolean;
  readonly allowPrivateEndpoints: boolean;
  readonly logLevel: LogLevel;
  readonly logSink: LogSink;
  readonly resolver: Resolver;
  readonly connector: Connector;
}

const MINUTE = 60_000;

export const WATCHER_DEFAULTS = {
  host: '127.0.0.1',
  port: 8790,
  dataDir: '.watcher-data',
  vapidSubject: 'mailto:push-watcher@cerulean.invalid',
  corsOrigins: ['*'],
  allowAppleDefaults: true,
  courierHostCount: 50,
  drainTimeoutMs: 5 * MINUTE,
  maxAwayMs: 60 * MINUTE,
  maxPauseMs: 60 * MINUTE,
  courierKeepAliveMs: 60_000,
  courierConnectTimeoutMs: 15_000,
  courierBackoffInitialMs: 2_000,
  courierBackoffMaxMs: 5 * MINUTE,
  maxConcurrentDials: 64,
  maxEnrollments: 100_000,
  maxBodyBytes: 16 * 1024,
  enrollPerMinute: 30,
  webPushTimeoutMs: 10_000,
  webPushTtlSeconds: 600,
  logLevel: 'info' as LogLevel,
};

const fields = configFields((message) => new WatcherConfigError('bad-config', message));
// Annotated, so that TypeScript narrows after a call to it.
const fail: ConfigFields['fail'] = fields.fail;
const { int, bool, str, stringList, stringRecord, fn } = fields;

/** `i/n` with 0 ≤ i < n. */
export function parseShard(text: string): { index: number; count: number } {
  const m = /^([0-9]{1,6})\/([0-9]{1,6})$/.exec(text);
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || count < 1 || index >= count) fail('shard', 'i/n with 0 ≤ i < n', text);
  return { index, count };
}

function checkSubject(subject: string): string {
  let url: URL;
  try {
    url = new URL(subject);
  } catch {
    fail('vapidSubject', 'a mailto: or https: URL', subject);
  }
  if (url.protocol !== 'mailto:' && url.protocol !== 'https:') fail('vapidSubject', 'a mailto: or https: URL', subject);
  return subject;
}

function readCa(file: string): string {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new WatcherConfigError('bad-config', `cannot read caFile ${file}: ${(cause as Error).message}`, { cause });
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) fail('caFile', 'a PEM certificate file', file);
  return pem;
}

/** Checks options and fills defaults; reads hostMapFile and caFile. Throws WatcherConfigError. */
export function resolveWatcherConfig(options: WatcherOptions): WatcherConfig {
  const o = options as Record<keyof WatcherOptions, unknown>;
  const host = str('host', o.host) ?? WATCHER_DEFAULTS.host;
  const dataDir = path.resolve(str('dataDir', o.dataDir) ?? WATCHER_DEFAULTS.dataDir);
  const logLevel = o.logLevel ?? WATCHER_DEFAULTS.logLevel;
  if (!LOG_LEVELS.includes(logLevel as LogLevel)) fail('logLevel', LOG_LEVELS.join(' | '), logLevel);

  const rules = [
    ...(bool('allowAppleDefaults', o.allowAppleDefaults, WATCHER_DEFAULTS.allowAppleDefaults) ? APPLE_DEFAULT_ALLOW : []),
    ...(stringList('allow', o.allow) ?? []),
  ].map(parseAllowRule);
  const hostMapFile = str('hostMapFile', o.hostMapFile);
  const mapEntries = { ...(hostMapFile === undefined ? {} : readHostMapFile(hostMapFile)), ...stringRecord('hostMap', o.hostMap) };
  const caFile = str('caFile', o.caFile);
  const corsOrigins = stringList('corsOrigins', o.corsOrigins) ?? WATCHER_DEFAULTS.corsOrigins;
  for (const origin of corsOrigins) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) fail('corsOrigins', 'origins like https://app.example or *', origin);
  }
  const shardUrlTemplate = str('shardUrlTemplate', o.shardUrlTemplate);
  if (shardUrlTemplate !== undefined && !shardUrlTemplate.includes('{shard}')) {
    fail('shardUrlTemplate', 'a URL containing {shard}', shardUrlTemplate);
  }
  const drainTimeoutMs = int('drainTimeoutMs', o.drainTimeoutMs, WATCHER_DEFAULTS.drainTimeoutMs, 100, 2 ** 31 - 1);

  return {
    host,
    port: int('port', o.port, WATCHER_DEFAULTS.port, 0, 65535),
    dbFile: path.resolve(dataDir, str('dbFile', o.dbFile) ?? 'watcher.db'),
    vapidFile: path.resolve(dataDir, str('vapidFile', o.vapidFile) ?? 'vapid.json'),
    keyFile: path.resolve(dataDir, str('keyFile', o.keyFile) ?? 'storage.key'),
    vapidSubject: checkSubject(str('vapidSubject', o.vapidSubject) ?? WATCHER_DEFAULTS.vapidSubject),
    corsOrigins,
    allowlist: new Allowlist(rules),
    hostMap: new HostMap(mapEntries),
    ca: caFile === undefined ? undefined : readCa(caFile),
    courierHostCount: int('courierHostCount', o.courierHostCount, WATCHER_DEFAULTS.courierHostCount, 1, 1000),
    shard: o.shard === undefined ? { index: 0, count: 1 } : parseShard(str('shard', o.shard)!),
    shardUrlTemplate,
    drainTimeoutMs,
    maxAwayMs: int('maxAwayMs', o.maxAwayMs, Math.max(WATCHER_DEFAULTS.maxAwayMs, drainTimeoutMs), drainTimeoutMs, 2 ** 31 - 1),
    maxPauseMs: int('maxPauseMs', o.maxPauseMs, WATCHER_DEFAULTS.maxPauseMs, 1000, 2 ** 31 - 1),
    courierKeepAliveMs: int('courierKeepAliveMs', o.courierKeepAliveMs, WATCHER_DEFAULTS.courierKeepAliveMs, 1000, 2 ** 31 - 1),
    courierConnectTimeoutMs: int('courierConnectTimeoutMs', o.courierConnectTimeoutMs, WATCHER_DEFAULTS.courierConnectTimeoutMs, 100, 600_000),
    courierBackoffInitialMs: int('courierBackoffInitialMs', o.courierBackoffInitialMs, WATCHER_DEFAULTS.courierBackoffInitialMs, 1, 2 ** 31 - 1),
    courierBackoffMaxMs: int('courierBackoffMaxMs', o.courierBackoffMaxMs, WATCHER_DEFAULTS.courierBackoffMaxMs, 1, 2 ** 31 - 1),
    maxConcurrentDials: int('maxConcurrentDials', o.maxConcurrentDials, WATCHER_DEFAULTS.maxConcurrentDials, 1, 10_000),
    maxEnrollments: int('maxEnrollments', o.maxEnrollments, WATCHER_DEFAULTS.maxEnrollments, 1, 10_000_000),
    maxBodyBytes: int('maxBodyBytes', o.maxBodyBytes, WATCHER_DEFAULTS.maxBodyBytes, 4096, 1024 * 1024),
    enrollPerMinute: int('enrollPerMinute', o.enrollPerMinute, WATCHER_DEFAULTS.enrollPerMinute, 1, 1_000_000),
    trustForwardedFor: bool('trustForwardedFor', o.trustForwardedFor, false),
    webPushTimeoutMs: int('webPushTimeoutMs', o.webPushTimeoutMs, WATCHER_DEFAULTS.webPushTimeoutMs, 100, 600_000),
    webPushTtlSeconds: int('webPushTtlSeconds', o.webPushTtlSeconds, WATCHER_DEFAULTS.webPushTtlSeconds, 0, 28 * 86_400),
    allowHttpLoopbackEndpoints: bool('allowHttpLoopbackEndpoints', o.allowHttpLoopbackEndpoints, false),
    allowPrivateEndpoints: bool('allowPrivateEndpoints', o.allowPrivateEndpoints, false),
    logLevel: logLevel as LogLevel,
    logSink: fn('logSink', o.logSink, stdoutSink),
    resolver: fn('resolver', o.resolver, defaultResolver),
    connector: fn('connector', o.connector, defaultConnector),
  };
}

// Keys a config file may hold: the options that are plain data.
const FILE_KEYS = new Set<string>([
  'host', 'port', 'dataDir', 'dbFile', 'vapidFile', 'keyFile', 'vapidSubject', 'corsOrigins', 'allowAppleDefaults',
  'allow', 'hostMap', 'hostMapFile', 'caFile', 'courierHostCount', 'shard', 'shardUrlTemplate', 'drainTimeoutMs',
  'maxAwayMs', 'maxPauseMs', 'courierKeepAliveMs', 'courierConnectTimeoutMs', 'courierBackoffInitialMs',
  'courierBackoffMaxMs', 'maxConcurrentDials', 'maxEnrollments', 'maxBodyBytes', 'enrollPerMinute',
  'trustForwardedFor', 'webPushTimeoutMs', 'webPushTtlSeconds', 'allowHttpLoopbackEndpoints',
  'allowPrivateEndpoints', 'logLevel',
]);

/** A JSON config file of WatcherOptions' data keys; unknown keys are an error. Relative paths are taken from its folder. */
export function readWatcherConfigFile(file: string): WatcherOptions {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new WatcherConfigError('bad-config', `cannot read config ${file}: ${(cause as Error).message}`, { cause });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new WatcherConfigError('bad-config', `${file}: expected a JSON object`);
  }
  for (const key of Object.keys(parsed)) {
    if (!FILE_KEYS.has(key)) throw new WatcherConfigError('bad-config', `${file}: unknown key ${JSON.stringify(key)}`);
  }
  const out = parsed as WatcherOptions & Record<string, unknown>;
  const dir = path.dirname(path.resolve(file));
  for (const key of ['dataDir', 'hostMapFile', 'caFile'] as const) {
    if (typeof out[key] === 'string') out[key] = path.resolve(dir, out[key]);
  }
  return out;
}

type Kind = 'string' | 'int' | 'bool' | 'list';
/** Each setting's environment suffix (after CERULEAN_WATCHER_) and flag, with how to read it. */
const SETTINGS: ReadonlyArray<readonly [keyof WatcherOptions, string, string, Kind]> = [
  ['host', 'HOST', 'host', 'string'],
  ['port', 'PORT', 'port', 'int'],
  ['dataDir', 'DATA_DIR', 'data-dir', 'string'],
  ['dbFile', 'DB', 'db', 'string'],
  ['vapidFile', 'VAPID_FILE', 'vapid-file', 'string'],
  ['keyFile', 'KEY_FILE', 'key-file', 'string'],
  ['vapidSubject', 'VAPID_SUBJECT', 'vapid-subject', 'string'],
  ['corsOrigins', 'CORS_ORIGINS', 'cors-origin', 'list'],
  ['allowAppleDefaults', 'APPLE_DEFAULTS', 'apple-defaults', 'bool'],
  ['allow', 'ALLOW', 'allow', 'list'],
  ['hostMapFile', 'HOSTMAP', 'host-map', 'string'],
  ['caFile', 'CA_FILE', 'ca-file', 'string'],
  ['courierHostCount', 'COURIER_HOSTS', 'courier-hosts', 'int'],
  ['shard', 'SHARD', 'shard', 'string'],
  ['shardUrlTemplate', 'SHARD_URL', 'shard-url', 'string'],
  ['drainTimeoutMs', 'DRAIN_TIMEOUT_MS', 'drain-timeout-ms', 'int'],
  ['maxAwayMs', 'MAX_AWAY_MS', 'max-away-ms', 'int'],
  ['maxPauseMs', 'MAX_PAUSE_MS', 'max-pause-ms', 'int'],
  ['courierKeepAliveMs', 'COURIER_KEEPALIVE_MS', 'courier-keepalive-ms', 'int'],
  ['maxConcurrentDials', 'MAX_CONCURRENT_DIALS', 'max-concurrent-dials', 'int'],
  ['maxEnrollments', 'MAX_ENROLLMENTS', 'max-enrollments', 'int'],
  ['maxBodyBytes', 'MAX_BODY_BYTES', 'max-body-bytes', 'int'],
  ['enrollPerMinute', 'ENROLL_PER_MINUTE', 'enroll-per-minute', 'int'],
  ['trustForwardedFor', 'TRUST_FORWARDED_FOR', 'trust-forwarded-for', 'bool'],
  ['webPushTtlSeconds', 'WEBPUSH_TTL_SECONDS', 'webpush-ttl-seconds', 'int'],
  ['allowHttpLoopbackEndpoints', 'ALLOW_HTTP_LOOPBACK_ENDPOINTS', 'allow-http-loopback-endpoints', 'bool'],
  ['allowPrivateEndpoints', 'ALLOW_PRIVATE_ENDPOINTS', 'allow-private-endpoints', 'bool'],
  ['logLevel', 'LOG_LEVEL', 'log-level', 'string'],
];

const ENV_PREFIX = 'CERULEAN_WATCHER_';

function convert(name: string, kind: Kind, raw: string | string[] | boolean): unknown {
  if (kind === 'list') return (Array.isArray(raw) ? raw : [String(raw)]).flatMap((s) => s.split(/[\s,]+/)).filter((s) => s !== '');
  const text = Array.isArray(raw) ? raw.at(-1)! : raw;
  if (kind === 'bool') {
    if (typeof text === 'boolean') return text;
    const v = text.toLowerCase();
    if (!['1', '0', 'true', 'false', 'yes', 'no'].includes(v)) fail(name, '1 or 0', text);
    return v === '1' || v === 'true' || v === 'yes';
  }
  if (kind === 'int') {
    if (typeof text !== 'string' || !/^[0-9]{1,15}$/.test(text)) fail(name, 'a decimal integer', text);
    return Number(text);
  }
  return text;
}

/** The CERULEAN_WATCHER_* variables that are set. */
export function watcherOptionsFromEnv(env: Readonly<Record<string, string | undefined>>): WatcherOptions {
  const out: Record<string, unknown> = {};
  for (const [key, suffix, , kind] of SETTINGS) {
    const v = env[ENV_PREFIX + suffix];
    if (v !== undefined && v !== '') out[key] = convert(ENV_PREFIX + suffix, kind, v);
  }
  return out as WatcherOptions;
}

/**
 * Command-line flags: `--config <file>` and one `--<flag> <value>` per setting. `--cors-origin` and `--allow` may
 * repeat; booleans are bare flags that turn a setting on (turn one off in the environment or the config file).
 */
export function watcherArgs(argv: readonly string[]): { config?: string; help: boolean; options: WatcherOptions } {
  const spec: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = { config: { type: 'string' }, help: { type: 'boolean' } };
  for (const [, , flag, kind] of SETTINGS) spec[flag] = { type: kind === 'bool' ? 'boolean' : 'string', ...(kind === 'list' ? { multiple: true } : {}) };
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options: spec, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new WatcherConfigError('bad-arguments', (e as Error).message);
  }
  const options: Record<string, unknown> = {};
  for (const [key, , flag, kind] of SETTINGS) {
    const v = values[flag];
    if (v !== undefined) options[key] = convert(`--${flag}`, kind, v as string | string[] | boolean);
  }
  return {
    ...(typeof values.config === 'string' ? { config: values.config } : {}),
    help: values.help === true,
    options: options as WatcherOptions,
  };
}
