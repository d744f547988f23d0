import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ApnsCommand,
  ApnsMessages,
  buildAck,
  buildConnect,
  buildConnectResponse,
  buildFilter,
  buildKeepAlive,
  buildMessage,
  buildNotification,
  buildSetState,
  buildUpstreamNotification,
  filterTopicLists,
  itemSpecOf,
  messageTypeOf,
  parseAck,
  parseConnect,
  parseConnectResponse,
  parseFilter,
  parseKeepAlive,
  parseMessage,
  parseMessageAs,
  parseNotification,
  parseSetState,
  parseUpstreamNotification,
  topicHash,
  type ApnsDirection,
  type ApnsMessageType,
  type ItemSpec,
} from '../../../lib/codec/apns-commands';
import { decodeFrame, encodeFrame, type ApnsFrame } from '../../../lib/codec/apns-frame';
import { fromHex, toHex } from '../../../lib/codec/bytes';
import { CeruleanError, DecodeError } from '../../../lib/errors';
import vectors from '../../vectors';

const TOKEN = fromHex('101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f');
const MADRID = fromHex('e4e6d952954168d0a5db02dbaf27cc35fc18d159');
const frames = vectors.apns_frames;
const field = (i: number, id: number): Uint8Array => {
  const hit = frames[i]!.fields.find(([fid]) => fid === id);
  if (!hit) throw new Error(`vector ${i} has no item ${id}`);
  return fromHex(String(hit[1]));
};
const bytesOf = (f: ApnsFrame): string => toHex(encodeFrame(f));

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof CeruleanError ? e.code : `untyped: ${String(e)}`;
  }
  return undefined;
}

describe('typed APNs commands: vectors', () => {
  it('numbers the commands as in §3', () => {
    expect(ApnsCommand).toMatchObject({ Connect: 7, ConnectResponse: 8, Filter: 9, Notification: 10, Ack: 11, KeepAlive: 12 });
    expect([ApnsCommand.SetState, ApnsCommand.Redirect, ApnsCommand.PubSub, ApnsCommand.FilterUpdate]).toEqual([
      0x14, 0x17, 0x1d, 0x21,
    ]);
  });

  it('hashes topics with SHA-1 (§5)', async () => {
    expect(toHex(await topicHash('com.apple.madrid'))).toBe('e4e6d952954168d0a5db02dbaf27cc35fc18d159');
    expect(toHex(await topicHash('com.apple.private.alloy.sms'))).toBe('7f33122bf76e40a49f3cc6a15576822ad7ff1c2a');
    expect(toHex(await topicHash('com.apple.private.ids'))).toBe('02e81f9f8aeb0f9c06483e7a3f049a8227b3af41');
    expect(toHex(field(1, 2))).toBe(toHex(await topicHash('com.apple.madrid')));
  });

  it('rebuilds every pypush vector from the typed builders', () => {
    const token = field(0, 1);
    expect(
      bytesOf(
        buildConnect({
          token,
          state: 1,
          presenceFlags: 0x41,
          certificates: [field(0, 12)],
          nonce: field(0, 13),
          signature: field(0, 14),
        }),
      ),
    ).toBe(frames[0]!.bytes);
    expect(bytesOf(buildFilter({ token, enabled: [MADRID] }))).toBe(frames[1]!.bytes);
    expect(
      bytesOf(
        buildUpstreamNotification({ messageId: 0xa723f7fa, topicHash: MADRID, senderToken: token, payload: field(2, 3) }),
      ),
    ).toBe(frames[2]!.bytes);
    expect(bytesOf(buildAck({ token, messageId: 0xa723f7fa, status: 0 }))).toBe(frames[3]!.bytes);
    expect(bytesOf(buildKeepAlive({}))).toBe(frames[4]!.bytes);
    expect(bytesOf(buildSetState({ state: 1, interval: 0x7fffffff }))).toBe(frames[5]!.bytes);
  });

  it('parses every pypush vector back into typed fields', () => {
    const token = field(0, 1);
    const connect = parseConnect(decodeFrame(fromHex(frames[0]!.bytes)));
    expect(connect).toEqual({
      token,
      state: 1,
      presenceFlags: 0x41,
      certificates: [fromHex('3082010a')],
      nonce: fromHex('0000000193535687fb9bfaaf2cf8e71547'),
      signature: fromHex('0101aaaaaaaaaaaaaaaa'),
      failureReasons: [],
    });
    const filter = parseFilter(decodeFrame(fromHex(frames[1]!.bytes)));
    expect(filter.token).toEqual(token);
    expect(filter.enabled).toEqual([MADRID]);
    expect(filter.ignored).toEqual([]);
    expect(parseUpstreamNotification(decodeFrame(fromHex(frames[2]!.bytes)))).toEqual({
      messageId: 0xa723f7fa,
      topicHash: MADRID,
      senderToken: token,
      payload: field(2, 3),
    });
    expect(parseAck(decodeFrame(fromHex(frames[3]!.bytes)))).toEqual({ token, messageId: 0xa723f7fa, status: 0 });
    expect(parseKeepAlive(decodeFrame(fromHex(frames[4]!.bytes)))).toEqual({});
    expect(parseSetState(decodeFrame(fromHex(frames[5]!.bytes)))).toEqual({ state: 1, interval: 0x7fffffff });
  });

  it('writes the §2.1 examples through the builders', () => {
    expect(bytesOf(buildSetState({ state: 1, interval: 0x7fffffff }))).toBe('140000000b' + '01000101' + '0200047fffffff');
    expect(bytesOf(buildFilter({ token: TOKEN, enabled: [MADRID] }))).toBe(
      '090000003a' + '010020' + toHex(TOKEN) + '020014' + toHex(MADRID),
    );
    expect(bytesOf(buildAck({ token: TOKEN, messageId: 0x12345678, status: 0 }))).toBe(
      '0b0000002e' + '010020' + toHex(TOKEN) + '040004' + '12345678' + '080001' + '00',
    );
  });

  it('writes the legacy Connect skeleton of §4 with protocol version 11', () => {
    const cert = new Uint8Array(300).fill(0x30);
    const nonce = fromHex('00 0000018bcfe56800 0102030405060708');
    const signature = new Uint8Array(130).fill(0xaa);
    signature.set([1, 1]);
    const hex = bytesOf(
      buildConnect({ state: 1, presenceFlags: 0x41, certificates: [cert], nonce, signature, protocolVersion: 11 }),
    );
    const body =
      '020001' + '01' + '050004' + '00000041' + '0c012c' + toHex(cert) + '0d0011' + toHex(nonce) + '0e0082' +
      toHex(signature) + '100002' + '000b';
    expect(hex).toBe('07' + (body.length / 2).toString(16).padStart(8, '0') + body);
  });
});

describe('typed APNs commands: parsing rules', () => {
  it('routes 0x09, 0x0A and 0x20 by direction and types unknown commands generically', () => {
    const up = decodeFrame(fromHex(frames[2]!.bytes));
    expect(parseMessage(up, 'toServer').type).toBe('upstreamNotification');
    // From the server, item 2 is the topic hash: a 32-byte token there is malformed.
    expect(codeOf(() => parseMessage(up, 'toClient'))).toBe('bad-item-length');
    expect(messageTypeOf(0x09, 'toClient')).toBe('filterResponse');
    expect(messageTypeOf(0x20, 'toServer')).toBe('presenceTrackingRequest');
    expect(messageTypeOf(0x0d, 'toServer')).toBe('keepAliveAck');
    const unknown: ApnsFrame = { command: 0x22, items: [{ id: 1, value: fromHex('ff') }] };
    expect(parseMessage(unknown, 'toClient')).toEqual({ type: 'unknown', frame: unknown });
    expect(parseMessage({ command: 0x16, items: [] }, 'toServer').type).toBe('unknown');
    expect(itemSpecOf(0x0a, 'toClient', 5)?.type).toBe('u32');
    expect(itemSpecOf(0x0a, 'toServer', 5)).toBeUndefined();
    expect(itemSpecOf(0x99, 'toServer', 1)).toBeUndefined();
  });

  it('checks integer widths and fixed lengths', () => {
    const ack = (status: string, id = '12345678'): ApnsFrame => ({
      command: 0x0b,
      items: [
        { id: 4, value: fromHex(id) },
        { id: 8, value: fromHex(status) },
      ],
    });
    expect(parseAck(decodeFrame(encodeFrame(ack('00')))).status).toBe(0);
    expect(codeOf(() => parseAck(ack('00', '123456')))).toBe('bad-item-width');
    expect(codeOf(() => parseAck(ack('0000')))).toBe('bad-item-width');
    expect(codeOf(() => parseAck(ack('')))).toBe('bad-item-width');
    const shortToken = { command: 0x09, items: [{ id: 1, value: new Uint8Array(31) }] };
    expect(codeOf(() => parseFilter(shortToken))).toBe('bad-item-length');
    const shortHash = { command: 0x09, items: [{ id: 2, value: new Uint8Array(19) }] };
    expect(codeOf(() => parseFilter(shortHash))).toBe('bad-item-length');
    const badUtf8 = { command: 0x08, items: [{ id: 1, value: fromHex('00') }, { id: 2, value: fromHex('ff') }] };
    expect(codeOf(() => parseConnectResponse(badUtf8))).toBe('bad-utf8');
  });

  it('takes the last occurrence of a scalar, collects repeated items and skips unknown ids', () => {
    const f: ApnsFrame = {
      command: 0x14,
      items: [
        { id: 1, value: fromHex('02') },
        { id: 99, value: fromHex('deadbeef') },
        { id: 1, value: fromHex('01') },
        { id: 7, value: fromHex('') },
      ],
    };
    expect(parseSetState(f)).toEqual({ state: 1 });
    const filter = parseFilter({
      command: 0x09,
      items: [
        { id: 2, value: MADRID },
        { id: 7, value: fromHex('aa') },
        { id: 2, value: new Uint8Array(20) },
        { id: 12, value: fromHex('0000000000000005') },
      ],
    });
    expect(filter.enabled).toEqual([MADRID, new Uint8Array(20)]);
    expect(filter.version).toBe(5n);
    expect(filterTopicLists(filter).enabled).toEqual([MADRID, new Uint8Array(20), fromHex('aa')]);
  });

  it('reports missing required items and the wrong command', () => {
    expect(codeOf(() => parseAck({ command: 0x0b, items: [{ id: 8, value: fromHex('00') }] }))).toBe('missing-item');
    expect(codeOf(() => parseNotification({ command: 0x0a, items: [] }))).toBe('missing-item');
    expect(codeOf(() => parseAck({ command: 0x0c, items: [] }))).toBe('wrong-command');
  });

  it('refuses to build out-of-range or mistyped fields', () => {
    expect(codeOf(() => buildSetState({ state: 256 }))).toBe('bad-field');
    expect(codeOf(() => buildSetState({ state: 1.5 }))).toBe('bad-field');
    expect(codeOf(() => buildSetState({ state: 1, interval: -1 }))).toBe('bad-field');
    expect(codeOf(() => buildFilter({ token: new Uint8Array(31) }))).toBe('bad-field');
    expect(codeOf(() => buildConnect({ state: 1, nonce: new Uint8Array(16) }))).toBe('bad-field');
    expect(codeOf(() => buildConnectResponse({ status: 0, serverTimeMs: -1n }))).toBe('bad-field');
    expect(codeOf(() => buildConnectResponse({ status: 0, serverTimeMs: 2n ** 64n }))).toBe('bad-field');
    expect(codeOf(() => buildMessage('ack', { status: 0 } as never))).toBe('missing-field');
    expect(codeOf(() => buildMessage('filter', { enabled: MADRID } as never))).toBe('bad-field');
  });

  it('round-trips a full connect response and notification', () => {
    const response = buildConnectResponse({
      status: 0,
      token: TOKEN,
      maxMessageSize: 4096,
      unknown5: fromHex('0002'),
      capabilities: 0b101,
      largeMessageSize: 15360,
      serverTimeMs: 1_700_000_000_123n,
      keepAliveMax: 0xffffffffffffffffn,
    });
    expect(bytesOf(response)).toBe(
      '08' + '00000053' + '010001' + '00' + '030020' + toHex(TOKEN) + '040002' + '1000' + '050002' + '0002' +
        '060004' + '00000005' + '080002' + '3c00' + '0a0008' + '0000018bcfe5687b' + '120008' + 'ffffffffffffffff',
    );
    expect(parseConnectResponse(decodeFrame(encodeFrame(response)))).toEqual({
      status: 0,
      token: TOKEN,
      maxMessageSize: 4096,
      unknown5: fromHex('0002'),
      capabilities: 5,
      largeMessageSize: 15360,
      serverTimeMs: 1_700_000_000_123n,
      keepAliveMax: 0xffffffffffffffffn,
    });
    const n = buildNotification({
      token: TOKEN,
      topicHash: MADRID,
      payload: fromHex('62706c697374'),
      messageId: 0xdeadbeef,
      expiry: 0xffffffff,
      timestampNs: 1n,
    });
    expect(n.items.map((i) => i.id)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(parseNotification(decodeFrame(encodeFrame(n)))).toMatchObject({ messageId: 0xdeadbeef, expiry: 0xffffffff });
  });
});

function valueArb(spec: ItemSpec): fc.Arbitrary<unknown> {
  const one: fc.Arbitrary<unknown> = (() => {
    switch (spec.type) {
      case 'u8':
        return fc.integer({ min: 0, max: 0xff });
      case 'u16':
        return fc.integer({ min: 0, max: 0xffff });
      case 'u32':
        return fc.integer({ min: 0, max: 0xffffffff });
      case 'u64':
        return fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
      case 'string':
        return fc.string({ unit: 'grapheme', maxLength: 12 });
      case 'bytes':
        return fc.uint8Array({ minLength: spec.size ?? spec.minSize ?? 0, maxLength: spec.size ?? 40 });
    }
  })();
  return spec.repeated ? fc.array(one, { maxLength: 3 }) : one;
}

function fieldsArb(type: ApnsMessageType): fc.Arbitrary<Record<string, unknown>> {
  const schema = ApnsMessages[type].items as Record<string, ItemSpec>;
  const model = Object.fromEntries(Object.entries(schema).map(([name, spec]) => [name, valueArb(spec)]));
  const requiredKeys = Object.entries(schema).filter(([, s]) => s.required).map(([n]) => n);
  return fc.record(model, { requiredKeys });
}

describe('typed APNs commands: properties', () => {
  const types = Object.keys(ApnsMessages) as ApnsMessageType[];

  it('round-trips random fields of every message type through bytes', () => {
    for (const type of types) {
      const schema = ApnsMessages[type].items as Record<string, ItemSpec>;
      const dir: ApnsDirection = messageTypeOf(ApnsMessages[type].command, 'toServer') === type ? 'toServer' : 'toClient';
      fc.assert(
        fc.property(fieldsArb(type), (fields) => {
          const frame = decodeFrame(encodeFrame(buildMessage(type, fields as never)));
          const expected: Record<string, unknown> = {};
          for (const [name, spec] of Object.entries(schema)) if (spec.repeated) expected[name] = [];
          Object.assign(expected, fields);
          expect(parseMessageAs(type, frame)).toEqual(expected);
          expect(parseMessage(frame, dir)).toEqual({ type, fields: expected });
        }),
        { numRuns: 25 },
      );
    }
  });

  it('types random and mutated frames with nothing but DecodeError', () => {
    const item = fc.record({
      id: fc.oneof(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 255 })),
      value: fc.oneof(fc.uint8Array({ maxLength: 9 }), fc.uint8Array({ minLength: 16, maxLength: 40 })),
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0x24 }),
        fc.array(item, { maxLength: 8 }),
        fc.constantFrom<ApnsDirection>('toServer', 'toClient'),
        (command, items, dir) => {
          try {
            parseMessage({ command, items }, dir);
          } catch (e) {
            expect(e).toBeInstanceOf(DecodeError);
          }
        },
      ),
      { numRuns: 300 },
    );
    const valid = frames.map((v) => fromHex(v.bytes));
    fc.assert(
      fc.property(fc.constantFrom(...valid), fc.nat(), fc.integer({ min: 0, max: 255 }), (bytes, pos, b) => {
        const bad = bytes.slice();
        bad[pos % bad.length] = b;
        try {
          parseMessage(decodeFrame(bad), 'toServer');
        } catch (e) {
          expect(e).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 300 },
    );
  });
});
