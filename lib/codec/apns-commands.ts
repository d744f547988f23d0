// Typed APNs courier commands (protocol notes apns.md §3). Each command is a table of named items (id, legacy
// width, repetition); one generic builder and parser walk those tables, and apns-packed.ts reads the same tables
// to map fixed-width integers to packed integers. Items are emitted in table order, which for the commands
// pypush sends is pypush's order (an upstream 0x0A starts with its message id).
import { subtle } from '../crypto/subtle';
import { DecodeError, EncodeError } from '../errors';
import type { ApnsFrame, ApnsItem } from './apns-frame';
import { exact, fromUtf8, readU16be, readU32be, readU64be, u16be, u32be, u64be, utf8 } from './bytes';

export const ApnsCommand = {
  Connect: 0x07,
  ConnectResponse: 0x08,
  Filter: 0x09,
  Notification: 0x0a,
  Ack: 0x0b,
  KeepAlive: 0x0c,
  KeepAliveAck: 0x0d,
  NoStorage: 0x0e,
  Flush: 0x0f,
  FlushResponse: 0x10,
  ScopedTokenRequest: 0x11,
  ScopedTokenResponse: 0x12,
  SetActiveInterval: 0x13,
  SetState: 0x14,
  TransportAck: 0x15,
  Redirect: 0x17,
  TaskControl: 0x18,
  TaskNotification: 0x19,
  TracingAck: 0x1b,
  PubSub: 0x1d,
  PubSubUpdate: 0x1e,
  PresenceTracking: 0x20,
  FilterUpdate: 0x21,
} as const;
export type ApnsCommandNumber = (typeof ApnsCommand)[keyof typeof ApnsCommand];

/** Who sends the frame. 0x09, 0x0A and 0x20 carry different items in each direction. */
export type ApnsDirection = 'toServer' | 'toClient';

export type ItemType = 'u8' | 'u16' | 'u32' | 'u64' | 'bytes' | 'string';

export interface ItemSpec {
  readonly id: number;
  readonly type: ItemType;
  /** Exact length of a bytes item (tokens 32, topic hashes 20, nonce 17). */
  readonly size?: number;
  readonly minSize?: number;
  readonly repeated?: true;
  readonly required?: true;
  /** Packed framing: the sender keeps it in the value table ([AD] "indexable": tokens, hashes, keep-alive strings). */
  readonly indexable?: true;
  /** Packed framing: a property list that travels as a native packed tree. */
  readonly plist?: true;
}
export type CommandSchema = Readonly<Record<string, ItemSpec>>;

const connect = {
  token: { id: 1, type: 'bytes', size: 32, indexable: true },
  state: { id: 2, type: 'u8', required: true },
  presenceFlags: { id: 5, type: 'u32' },
  interface: { id: 6, type: 'u8' },
  activeInterval: { id: 7, type: 'u32' },
  carrier: { id: 8, type: 'string' },
  osVersion: { id: 9, type: 'string' },
  osBuild: { id: 10, type: 'string' },
  hardwareModel: { id: 11, type: 'string' },
  certificates: { id: 12, type: 'bytes', repeated: true },
  nonce: { id: 13, type: 'bytes', size: 17 },
  signature: { id: 14, type: 'bytes', minSize: 2 },
  protocolVersion: { id: 16, type: 'u16' },
  redirectCount: { id: 17, type: 'u16' },
  dnsTimeMs: { id: 19, type: 'u16' },
  tlsTimeMs: { id: 20, type: 'u16' },
  // u32 reason followed by u16 count, up to ten of them.
  failureReasons: { id: 21, type: 'bytes', size: 6, repeated: true },
  timestamp: { id: 22, type: 'u64' },
  tcpTimeMs: { id: 25, type: 'u16' },
  hostCertificateInfo: { id: 29, type: 'bytes' },
} as const satisfies CommandSchema;

const connectResponse = {
  status: { id: 1, type: 'u8', required: true },
  serverMetadata: { id: 2, type: 'string' },
  token: { id: 3, type: 'bytes', size: 32, indexable: true },
  maxMessageSize: { id: 4, type: 'u16' },
  // Meaning unknown; Apple sends 00 02.
  unknown5: { id: 5, type: 'bytes', size: 2 },
  capabilities: { id: 6, type: 'u32' },
  staleNonceServerTimeMs: { id: 7, type: 'u64' },
  largeMessageSize: { id: 8, type: 'u16' },
  redirectReason: { id: 9, type: 'string' },
  serverTimeMs: { id: 10, type: 'u64' },
  geoRegion: { id: 11, type: 'string' },
  timestampSeconds: { id: 12, type: 'u64' },
  keepAliveMin: { id: 16, type: 'u64' },
  keepAliveExpected: { id: 17, type: 'u64' },
  keepAliveMax: { id: 18, type: 'u64' },
  clientAddress: { id: 19, type: 'bytes' },
  experimentId: { id: 20, type: 'u16' },
} as const satisfies CommandSchema;

const hashList = (id: number) => ({ id, type: 'bytes', size: 20, repeated: true, indexable: true }) as const;
// 7…11 are a second form of 2…6 whose shape is not pinned down, so their lengths are not checked.
const aliasList = (id: number) => ({ id, type: 'bytes', repeated: true }) as const;

const filter = {
  token: { id: 1, type: 'bytes', size: 32, indexable: true },
  enabled: hashList(2),
  ignored: hashList(3),
  opportunistic: hashList(4),
  paused: hashList(5),
  nonWaking: hashList(6),
  enabledAlias: aliasList(7),
  ignoredAlias: aliasList(8),
  opportunisticAlias: aliasList(9),
  pausedAlias: aliasList(10),
  nonWakingAlias: aliasList(11),
  version: { id: 12, type: 'u64' },
} as const satisfies CommandSchema;

/** Server's 0x09 filter response and 0x21 filter update. */
const filterResponse = {
  token: { id: 1, type: 'bytes', size: 32, indexable: true },
  version: { id: 2, type: 'u64' },
  status: { id: 3, type: 'u8' },
} as const satisfies CommandSchema;

const upstreamNotification = {
  messageId: { id: 4, type: 'u32', required: true },
  topicHash: { id: 1, type: 'bytes', size: 20, required: true, indexable: true },
  senderToken: { id: 2, type: 'bytes', indexable: true },
  payload: { id: 3, type: 'bytes', required: true, plist: true },
  lastRttMs: { id: 25, type: 'u16' },
} as const satisfies CommandSchema;

const notification = {
  // Base or scoped token, so no fixed length.
  token: { id: 1, type: 'bytes', required: true, indexable: true },
  topicHash: { id: 2, type: 'bytes', size: 20, required: true, indexable: true },
  payload: { id: 3, type: 'bytes', required: true, plist: true },
  messageId: { id: 4, type: 'u32', required: true },
  expiry: { id: 5, type: 'u32' },
  timestampNs: { id: 6, type: 'u64' },
  storageFlags: { id: 9, type: 'u8' },
  priority: { id: 13, type: 'u8' },
  baseToken: { id: 15, type: 'bytes', size: 32, indexable: true },
  tracingId: { id: 21, type: 'bytes' },
  correlationId: { id: 24, type: 'string' },
  apnFlags: { id: 26, type: 'u32' },
  pushType: { id: 28, type: 'u16' },
  channelInfo: { id: 29, type: 'bytes' },
} as const satisfies CommandSchema;

const ack = {
  token: { id: 1, type: 'bytes', indexable: true },
  messageId: { id: 4, type: 'u32', required: true },
  timestamp: { id: 6, type: 'u64' },
  status: { id: 8, type: 'u8', required: true },
} as const satisfies CommandSchema;

const keepAlive = {
  carrier: { id: 1, type: 'string', indexable: true },
  osVersion: { id: 2, type: 'string', indexable: true },
  osBuild: { id: 3, type: 'string', indexable: true },
  hardwareModel: { id: 4, type: 'string', indexable: true },
  // apsd sends a decimal string, pypush a u16: kept raw.
  keepAliveInterval: { id: 5, type: 'bytes' },
  delayedResponseInterval: { id: 6, type: 'string' },
  usingServerStats: { id: 8, type: 'u16' },
  keepAliveState: { id: 9, type: 'u8' },
  keepAliveSubState: { id: 10, type: 'u8' },
} as const satisfies CommandSchema;

const keepAliveAck = {
  response: { id: 1, type: 'u8' },
  delayKeepAlive: { id: 2, type: 'u32' },
} as const satisfies CommandSchema;

const noStorage = {
  token: { id: 1, type: 'bytes', indexable: true },
} as const satisfies CommandSchema;

const flush = {
  wantPadding: { id: 1, type: 'u16' },
  padding: { id: 2, type: 'bytes' },
} as const satisfies CommandSchema;

const flushResponse = {
  padding: { id: 2, type: 'bytes' },
} as const satisfies CommandSchema;

const scopedTokenRequest = {
  baseToken: { id: 1, type: 'bytes', size: 32, required: true, indexable: true },
  topicHash: { id: 2, type: 'bytes', minSize: 20, required: true, indexable: true },
  appId: { id: 3, type: 'u16' },
  tokenType: { id: 4, type: 'u16' },
  expirationTtl: { id: 5, type: 'u32' },
  vapidKeyHash: { id: 6, type: 'bytes' },
} as const satisfies CommandSchema;

const scopedTokenResponse = {
  status: { id: 1, type: 'u8', required: true },
  scopedToken: { id: 2, type: 'bytes', indexable: true },
  topicHash: { id: 3, type: 'bytes', indexable: true },
  appId: { id: 4, type: 'u16' },
} as const satisfies CommandSchema;

const setActiveInterval = {
  interval: { id: 1, type: 'u32', required: true },
} as const satisfies CommandSchema;

const setState = {
  state: { id: 1, type: 'u8', required: true },
  interval: { id: 2, type: 'u32' },
} as const satisfies CommandSchema;

const empty = {} as const satisfies CommandSchema;

const redirect = {
  serverMetadata: { id: 2, type: 'string' },
  redirectReason: { id: 9, type: 'string' },
} as const satisfies CommandSchema;

// Widths of the id and status are not documented; u32 and u8 follow the other commands.
const task = {
  taskId: { id: 1, type: 'u32' },
  payload: { id: 2, type: 'bytes' },
  status: { id: 3, type: 'u8' },
} as const satisfies CommandSchema;

const tracingAck = {
  topicHash: { id: 1, type: 'bytes', indexable: true },
  tracingId: { id: 2, type: 'bytes' },
  status: { id: 3, type: 'u8' },
  token: { id: 4, type: 'bytes', indexable: true },
} as const satisfies CommandSchema;

const pubSub = {
  requestId: { id: 1, type: 'u32' },
  payload: { id: 2, type: 'bytes' },
  token: { id: 3, type: 'bytes', indexable: true },
  status: { id: 4, type: 'u8' },
  timeout: { id: 5, type: 'u32' },
} as const satisfies CommandSchema;

const pubSubUpdate = {
  requestId: { id: 1, type: 'u32' },
  payload: { id: 2, type: 'bytes' },
  token: { id: 3, type: 'bytes', indexable: true },
  timestamp: { id: 4, type: 'u64' },
} as const satisfies CommandSchema;

const presenceTrackingRequest = {
  requestId: { id: 1, type: 'u32' },
  token: { id: 2, type: 'bytes', indexable: true },
  salt: { id: 3, type: 'u64' },
  flag: { id: 4, type: 'u32' },
  time: { id: 5, type: 'u64' },
} as const satisfies CommandSchema;

const presenceTrackingResponse = {
  requestId: { id: 1, type: 'u32' },
  token: { id: 2, type: 'bytes', indexable: true },
  status: { id: 3, type: 'u8' },
} as const satisfies CommandSchema;

/** Every typed message: its command number and item table. */
export const ApnsMessages = {
  connect: { command: ApnsCommand.Connect, items: connect },
  connectResponse: { command: ApnsCommand.ConnectResponse, items: connectResponse },
  filter: { command: ApnsCommand.Filter, items: filter },
  filterResponse: { command: ApnsCommand.Filter, items: filterResponse },
  upstreamNotification: { command: ApnsCommand.Notification, items: upstreamNotification },
  notification: { command: ApnsCommand.Notification, items: notification },
  ack: { command: ApnsCommand.Ack, items: ack },
  keepAlive: { command: ApnsCommand.KeepAlive, items: keepAlive },
  keepAliveAck: { command: ApnsCommand.KeepAliveAck, items: keepAliveAck },
  noStorage: { command: ApnsCommand.NoStorage, items: noStorage },
  flush: { command: ApnsCommand.Flush, items: flush },
  flushResponse: { command: ApnsCommand.FlushResponse, items: flushResponse },
  scopedTokenRequest: { command: ApnsCommand.ScopedTokenRequest, items: scopedTokenRequest },
  scopedTokenResponse: { command: ApnsCommand.ScopedTokenResponse, items: scopedTokenResponse },
  setActiveInterval: { command: ApnsCommand.SetActiveInterval, items: setActiveInterval },
  setState: { command: ApnsCommand.SetState, items: setState },
  transportAck: { command: ApnsCommand.TransportAck, items: empty },
  redirect: { command: ApnsCommand.Redirect, items: redirect },
  taskControl: { command: ApnsCommand.TaskControl, items: task },
  taskNotification: { command: ApnsCommand.TaskNotification, items: task },
  tracingAck: { command: ApnsCommand.TracingAck, items: tracingAck },
  pubSub: { command: ApnsCommand.PubSub, items: pubSub },
  pubSubUpdate: { command: ApnsCommand.PubSubUpdate, items: pubSubUpdate },
  presenceTrackingRequest: { command: ApnsCommand.PresenceTracking, items: presenceTrackingRequest },
  presenceTrackingResponse: { command: ApnsCommand.PresenceTracking, items: presenceTrackingResponse },
  filterUpdate: { command: ApnsCommand.FilterUpdate, items: filterResponse },
} as const;
type Messages = typeof ApnsMessages;
export type ApnsMessageType = keyof Messages;

// Where the two directions differ, which table applies to a frame from each side.
const DIRECTIONAL: Partial<Record<number, Record<ApnsDirection, ApnsMessageType>>> = {
  [ApnsCommand.Filter]: { toServer: 'filter', toClient: 'filterResponse' },
  [ApnsCommand.Notification]: { toServer: 'upstreamNotification', toClient: 'notification' },
  [ApnsCommand.PresenceTracking]: { toServer: 'presenceTrackingRequest', toClient: 'presenceTrackingResponse' },
};
const BY_COMMAND = new Map<number, ApnsMessageType>();
for (const [type, m] of Object.entries(ApnsMessages) as [ApnsMessageType, Messages[ApnsMessageType]][]) {
  if (!DIRECTIONAL[m.command]) BY_COMMAND.set(m.command, type);
}

/** The message type of a frame with this command sent in this direction; undefined for unknown commands. */
export function messageTypeOf(command: number, dir: ApnsDirection): ApnsMessageType | undefined {
  return DIRECTIONAL[command]?.[dir] ?? BY_COMMAND.get(command);
}

const SPEC_BY_ID = new Map<CommandSchema, Map<number, [string, ItemSpec]>>();
function specsById(schema: CommandSchema): Map<number, [string, ItemSpec]> {
  let m = SPEC_BY_ID.get(schema);
  if (!m) {
    m = new Map(Object.entries(schema).map(([name, spec]) => [spec.id, [name, spec]]));
    SPEC_BY_ID.set(schema, m);
  }
  return m;
}

/** Legacy type of one item of a command in a direction; undefined for unknown commands and items. */
export function itemSpecOf(command: number, dir: ApnsDirection, id: number): ItemSpec | undefined {
  const type = messageTypeOf(command, dir);
  return type === undefined ? undefined : specsById(ApnsMessages[type].items).get(id)?.[1];
}

type Scalar<T extends ItemType> = T extends 'u64'
  ? bigint
  : T extends 'bytes'
    ? Uint8Array
    : T extends 'string'
      ? string
      : number;
type ValueOf<F extends ItemSpec> = F extends { repeated: true } ? Scalar<F['type']>[] : Scalar<F['type']>;
type KeysWhere<S, P> = { [K in keyof S]: S[K] extends P ? K : never }[keyof S];
type Simplify<T> = { -readonly [K in keyof T]: T[K] } & {};
type Required_<S> = KeysWhere<S, { required: true }>;
type Always<S> = Required_<S> | KeysWhere<S, { repeated: true }>;

/** Builder input: required items must be given, repeated ones default to none. */
export type FieldsIn<S extends CommandSchema> = Simplify<
  { [K in Required_<S>]: ValueOf<S[K]> } & { [K in Exclude<keyof S, Required_<S>>]?: ValueOf<S[K]> }
>;
/** Parser output: repeated items are always present (possibly empty). */
export type FieldsOut<S extends CommandSchema> = Simplify<
  { [K in Always<S>]: ValueOf<S[K]> } & { [K in Exclude<keyof S, Always<S>>]?: ValueOf<S[K]> }
>;

export type MessageFields<T extends ApnsMessageType> = FieldsOut<Messages[T]['items']>;
export type MessageInput<T extends ApnsMessageType> = FieldsIn<Messages[T]['items']>;

const UINT_MAX: Record<'u8' | 'u16' | 'u32', number> = { u8: 0xff, u16: 0xffff, u32: 0xffffffff };
const WIDTH: Record<ItemType, number> = { u8: 1, u16: 2, u32: 4, u64: 8, bytes: 0, string: 0 };

function encodeItem(name: string, spec: ItemSpec, v: unknown): Uint8Array {
  const bad = (why: string) => new EncodeError('bad-field', `${name}: ${why}`);
  switch (spec.type) {
    case 'u8':
    case 'u16':
    case 'u32': {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > UINT_MAX[spec.type]) {
        throw bad(`not a ${spec.type}`);
      }
      return spec.type === 'u8' ? new Uint8Array([v]) : spec.type === 'u16' ? u16be(v) : u32be(v);
    }
    case 'u64':
      if (typeof v !== 'bigint' || v < 0n || v > 0xffffffffffffffffn) throw bad('not a u64 bigint');
      return u64be(v);
    case 'string':
      if (typeof v !== 'string') throw bad('not a string');
      return utf8(v);
    case 'bytes':
      if (!(v instanceof Uint8Array)) throw bad('not a Uint8Array');
      if (spec.size !== undefined && v.length !== spec.size) throw bad(`must be ${spec.size} bytes, got ${v.length}`);
      if (spec.minSize !== undefined && v.length < spec.minSize) throw bad(`must be at least ${spec.minSize} bytes`);
      return v;
  }
}

function decodeItem(name: string, spec: ItemSpec, b: Uint8Array): unknown {
  const width = WIDTH[spec.type];
  if (width && b.length !== width) {
    throw new DecodeError(
      'bad-item-width',
      `${name} (item ${spec.id}) is ${b.length} bytes, a ${spec.type} is ${width}`,
    );
  }
  switch (spec.type) {
    case 'u8':
      return b[0]!;
    case 'u16':
      return readU16be(b);
    case 'u32':
      return readU32be(b);
    case 'u64':
      return readU64be(b);
    case 'string':
      return fromUtf8(b);
    case 'bytes':
      if (
        (spec.size !== undefined && b.length !== spec.size) ||
        (spec.minSize !== undefined && b.length < spec.minSize)
      ) {
        throw new DecodeError('bad-item-length', `${name} (item ${spec.id}) has ${b.length} bytes`);
      }
      return b;
  }
}

/** Items in table order; repeated fields give one item per element. */
export function buildMessage<T extends ApnsMessageType>(type: T, fields: MessageInput<T>): ApnsFrame {
  const { command, items: schema } = ApnsMessages[type];
  const given = fields as Record<string, unknown>;
  const items: ApnsItem[] = [];
  for (const [name, spec] of Object.entries(schema) as [string, ItemSpec][]) {
    const v = given[name];
    if (v === undefined) {
      if (spec.required) throw new EncodeError('missing-field', `${type}.${name} is required`);
    } else if (spec.repeated) {
      if (!Array.isArray(v)) throw new EncodeError('bad-field', `${type}.${name} must be an array`);
      for (const one of v) items.push({ id: spec.id, value: encodeItem(name, spec, one) });
    } else {
      items.push({ id: spec.id, value: encodeItem(name, spec, v) });
    }
  }
  return { command, items };
}

/** Checks widths; skips unknown items; a repeated scalar item counts by its last occurrence. */
export function parseMessageAs<T extends ApnsMessageType>(type: T, frame: ApnsFrame): MessageFields<T> {
  const { command, items: schema } = ApnsMessages[type];
  if (frame.command !== command) {
    const hex = (n: number) => `0x${n.toString(16)}`;
    throw new DecodeError('wrong-command', `expected command ${hex(command)}, got ${hex(frame.command)}`);
  }
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(schema) as [string, ItemSpec][]) if (spec.repeated) out[name] = [];
  const byId = specsById(schema);
  for (const item of frame.items) {
    const hit = byId.get(item.id);
    if (!hit) continue;
    const [name, spec] = hit;
    const v = decodeItem(name, spec, item.value);
    if (spec.repeated) (out[name] as unknown[]).push(v);
    else out[name] = v;
  }
  for (const [name, spec] of Object.entries(schema) as [string, ItemSpec][]) {
    if (spec.required && out[name] === undefined) {
      throw new DecodeError('missing-item', `${type} lacks ${name} (item ${spec.id})`);
    }
  }
  return out as MessageFields<T>;
}

export type ApnsMessage =
  | { [T in ApnsMessageType]: { type: T; fields: MessageFields<T> } }[ApnsMessageType]
  | { type: 'unknown'; frame: ApnsFrame };

/** Types a received frame. Unknown commands come back as `unknown`; known ones with bad items throw DecodeError. */
export function parseMessage(frame: ApnsFrame, dir: ApnsDirection): ApnsMessage {
  const type = messageTypeOf(frame.command, dir);
  if (type === undefined) return { type: 'unknown', frame };
  return { type, fields: parseMessageAs(type, frame) } as ApnsMessage;
}

/** The five topic lists of a client filter with the 7…11 alias items folded into their lists. */
export function filterTopicLists(f: MessageFields<'filter'>): {
  enabled: Uint8Array[];
  ignored: Uint8Array[];
  opportunistic: Uint8Array[];
  paused: Uint8Array[];
  nonWaking: Uint8Array[];
} {
  return {
    enabled: [...f.enabled, ...f.enabledAlias],
    ignored: [...f.ignored, ...f.ignoredAlias],
    opportunistic: [...f.opportunistic, ...f.opportunisticAlias],
    paused: [...f.paused, ...f.pausedAlias],
    nonWaking: [...f.nonWaking, ...f.nonWakingAlias],
  };
}

/** SHA-1 of the UTF-8 topic name: what the courier sees instead of topic strings. */
export async function topicHash(topic: string): Promise<Uint8Array> {
  return new Uint8Array(await subtle().digest('SHA-1', exact(utf8(topic))));
}

export type Connect = MessageFields<'connect'>;
export type ConnectResponse = MessageFields<'connectResponse'>;
export type Filter = MessageFields<'filter'>;
export type FilterResponse = MessageFields<'filterResponse'>;
export type UpstreamNotification = MessageFields<'upstreamNotification'>;
export type Notification = MessageFields<'notification'>;
export type Ack = MessageFields<'ack'>;
export type KeepAlive = MessageFields<'keepAlive'>;
export type KeepAliveAck = MessageFields<'keepAliveAck'>;
export type NoStorage = MessageFields<'noStorage'>;
export type Flush = MessageFields<'flush'>;
export type FlushResponse = MessageFields<'flushResponse'>;
export type ScopedTokenRequest = MessageFields<'scopedTokenRequest'>;
export type ScopedTokenResponse = MessageFields<'scopedTokenResponse'>;
export type SetActiveInterval = MessageFields<'setActiveInterval'>;
export type SetState = MessageFields<'setState'>;
export type Redirect = MessageFields<'redirect'>;
export type TaskControl = MessageFields<'taskControl'>;
export type TaskNotification = MessageFields<'taskNotification'>;
export type TracingAck = MessageFields<'tracingAck'>;
export type PubSub = MessageFields<'pubSub'>;
export type PubSubUpdate = MessageFields<'pubSubUpdate'>;
export type PresenceTrackingRequest = MessageFields<'presenceTrackingRequest'>;
export type PresenceTrackingResponse = MessageFields<'presenceTrackingResponse'>;
export type FilterUpdate = MessageFields<'filterUpdate'>;

// Named shorthands for buildMessage / parseMessageAs.
type Builder<T extends ApnsMessageType> = (fields: MessageInput<T>) => ApnsFrame;
type Parser<T extends ApnsMessageType> = (frame: ApnsFrame) => MessageFields<T>;
const builder = <T extends ApnsMessageType>(type: T): Builder<T> => (fields) => buildMessage(type, fields);
const parser = <T extends ApnsMessageType>(type: T): Parser<T> => (frame) => parseMessageAs(type, frame);

export const buildConnect = builder('connect');
export const parseConnect = parser('connect');
export const buildConnectResponse = builder('connectResponse');
export const parseConnectResponse = parser('connectResponse');
export const buildFilter = builder('filter');
export const parseFilter = parser('filter');
export const buildFilterResponse = builder('filterResponse');
export const parseFilterResponse = parser('filterResponse');
export const buildUpstreamNotification = builder('upstreamNotification');
export const parseUpstreamNotification = parser('upstreamNotification');
export const buildNotification = builder('notification');
export const parseNotification = parser('notification');
export const buildAck = builder('ack');
export const parseAck = parser('ack');
export const buildKeepAlive = builder('keepAlive');
export const parseKeepAlive = parser('keepAlive');
export const buildKeepAliveAck = builder('keepAliveAck');
export const parseKeepAliveAck = parser('keepAliveAck');
export const buildNoStorage = builder('noStorage');
export const parseNoStorage = parser('noStorage');
export const buildFlush = builder('flush');
export const parseFlush = parser('flush');
export const buildFlushResponse = builder('flushResponse');
export const parseFlushResponse = parser('flushResponse');
export const buildScopedTokenRequest = builder('scopedTokenRequest');
export const parseScopedTokenRequest = parser('scopedTokenRequest');
export const buildScopedTokenResponse = builder('scopedTokenResponse');
export const parseScopedTokenResponse = parser('scopedTokenResponse');
export const buildSetActiveInterval = builder('setActiveInterval');
export const parseSetActiveInterval = parser('setActiveInterval');
export const buildSetState = builder('setState');
export const parseSetState = parser('setState');
export const buildTransportAck = builder('transportAck');
export const parseTransportAck = parser('transportAck');
export const buildRedirect = builder('redirect');
export const parseRedirect = parser('redirect');
export const buildTaskControl = builder('taskControl');
export const parseTaskControl = parser('taskControl');
export const buildTaskNotification = builder('taskNotification');
export const parseTaskNotification = parser('taskNotification');
export const buildTracingAck = builder('tracingAck');
export const parseTracingAck = parser('tracingAck');
export const buildPubSub = builder('pubSub');
export const parsePubSub = parser('pubSub');
export const buildPubSubUpdate = builder('pubSubUpdate');
export const parsePubSubUpdate = parser('pubSubUpdate');
export const buildPresenceTrackingRequest = builder('presenceTrackingRequest');
export const parsePresenceTrackingRequest = parser('presenceTrackingRequest');
export const buildPresenceTrackingResponse = builder('presenceTrackingResponse');
export const parsePresenceTrackingResponse = parser('presenceTrackingResponse');
export const buildFilterUpdate = builder('filterUpdate');
export const parseFilterUpdate = parser('filterUpdate');
