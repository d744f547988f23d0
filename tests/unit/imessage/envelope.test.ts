import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fromHex, toHex } from '../../../lib/codec/bytes';
import { encodeBinaryPlist } from '../../../lib/codec/plist-binary';
import { encodeXmlPlist } from '../../../lib/codec/plist-xml';
import type { PlistDict } from '../../../lib/codec/plist';
import { DecodeError, EncodeError } from '../../../lib/errors';
import { Command, ENVELOPE_VERSION } from '../../../lib/imessage/commands';
import {
  AckStatus,
  buildEnvelope,
  buildIncoming,
  buildServerAck,
  decodeEnvelope,
  decodeIncoming,
  decodeServerAck,
  effectiveEncryption,
  encodeEnvelope,
  encodeIncoming,
  encodeServerAck,
  nowNs,
  parseEnvelope,
  parseIncoming,
  parseServerAck,
  randomMessageId,
  randomUuid,
  readCommand,
  uuidFromString,
  uuidToString,
  type IncomingNotification,
  type SendEnvelope,
} from '../../../lib/imessage/envelope';
import { RUNS, dictOver, expectDecodeError, mutated, onlyDecodeError, patched } from './arbitraries';

const U = fromHex('000102030405060708090a0b0c0d0e0f');
const TOK = new Uint8Array(32).fill(0xaa);
const UA = '[macOS,14.2,23C64,MacBookPro18,3]';

// python3: plistlib.dumps({'c':101,'fcn':1,'v':8,'i':0x01020304,'U':bytes(range(16)),'sP':'tel:+15551230000',
//   'dtl':[{'tP':'mailto:a@x.com','t':b'\xaa'*32,'sT':bytes([1,2,3,4]),'D':False}],
//   'ua':'[macOS,14.2,23C64,MacBookPro18,3]','nr':True}, fmt=plistlib.FMT_BINARY, sort_keys=False).hex()
const RECEIPT_HEX =
  '62706c6973743030d90102030405060708090a0b0c0d0e0f101a1b51635366636e5176516951555273505364746c527561526e72106510011008120102030' +
  '44f1010000102030405060708090a0b0c0d0e0f5f101074656c3a2b3135353531323330303030a111d41213141516171819527450517452735451445e6d' +
  '61696c746f3a6140782e636f6d4f1020aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa4401020304085f10215b6d61634f' +
  '532c31342e322c32334336342c4d6163426f6f6b50726f31382c335d09081b1d212325272a2e313436383a3f526567707375787a89acb1b2d600000000' +
  '00000101000000000000001c000000000000000000000000000000d7';

const RECEIPT: SendEnvelope = {
  command: 101,
  chunkNumber: 1,
  version: 8,
  messageId: 0x01020304,
  uuid: U,
  senderUri: 'tel:+15551230000',
  destinations: [{ targetUri: 'mailto:a@x.com', token: TOK, sessionToken: fromHex('01020304'), deliveryReceipt: false, extra: {} }],
  userAgent: UA,
  noResponse: true,
  extra: {},
};

const RECEIPT_DICT: PlistDict = {
  c: 101,
  fcn: 1,
  v: 8,
  i: 0x01020304,
  U,
  sP: 'tel:+15551230000',
  dtl: [{ tP: 'mailto:a@x.com', t: TOK, sT: fromHex('01020304'), D: false }],
  ua: UA,
  nr: true,
};

// python3: plistlib.dumps({'c':100,'U':bytes(range(16)),'sP':'mailto:a@x.com','tP':'tel:+15551230000','t':b'\xaa'*32,
//   'E':'pair-ec','P':bytes.fromhex('deadbeef'),'D':True,'e':1712345678901234567}, fmt=FMT_BINARY, sort_keys=False).hex()
const INCOMING_HEX =
  '62706c6973743030d90102030405060708090a0b0c0d0e0f101112516351555273505274505174514551505144516510644f1010000102030405060708' +
  '090a0b0c0d0e0f5e6d61696c746f3a6140782e636f6d5f101074656c3a2b31353535313233303030304f1020aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' +
  'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa57706169722d656344deadbeef091317c3795293954b87081b1d1f222527292b2d2f314453668991969700000000' +
  '000001010000000000000013000000000000000000000000000000a0';

const INCOMING: IncomingNotification = {
  command: 100,
  uuid: U,
  senderUri: 'mailto:a@x.com',
  targetUri: 'tel:+15551230000',
  senderToken: TOK,
  encryption: 'pair-ec',
  payload: fromHex('deadbeef'),
  deliveryReceipt: true,
  timestampNs: 1712345678901234567n,
  extra: {},
};

// python3: plistlib.dumps({'c':255,'U':bytes(range(16)),'t':b'\xaa'*32,'s':5032}, fmt=FMT_BINARY, sort_keys=False).hex()
const ACK_HEX =
  '62706c6973743030d40102030405060708516351555174517310ff4f1010000102030405060708090a0b0c0d0e0f4f1020aaaaaaaaaaaaaaaaaaaaaaaa' +
  'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1113a80811131517191b2e510000000000000101000000000000000900000000000000000000000000' +
  '000054';

describe('UUID helpers', () => {
  it('convert 16 bytes to the upper-case hyphenated form and back', () => {
    expect(uuidToString(U)).toBe('00010203-0405-0607-0809-0A0B0C0D0E0F');
    expect(toHex(uuidFromString('00010203-0405-0607-0809-0a0b0c0d0e0f'))).toBe(toHex(U));
    const r = randomUuid();
    expect(r.length).toBe(16);
    expect(r[6]! >> 4).toBe(4);
    expect(r[8]! >> 6).toBe(2);
    expect(uuidFromString(uuidToString(r))).toEqual(r);
  });

  it('reject malformed UUIDs', () => {
    expectDecodeError(() => uuidToString(new Uint8Array(15)), 'bad-uuid');
    expectDecodeError(() => uuidFromString('00010203-0405-0607-0809-0A0B0C0D0E0'), 'bad-uuid');
    expectDecodeError(() => uuidFromString('000102030405060708090A0B0C0D0E0F'), 'bad-uuid');
  });

  it('other helpers', () => {
    const id = randomMessageId();
    expect(Number.isInteger(id) && id >= 0 && id <= 0xffffffff).toBe(true);
    expect(nowNs() > 1_600_000_000_000_000_000n).toBe(true);
    expect(Command.Message).toBe(100);
    expect(Command.ServerAck).toBe(255);
    expect(ENVELOPE_VERSION).toBe(8);
  });
});

describe('send envelope', () => {
  it('builds the fixed dict and the exact plistlib bytes', () => {
    expect(buildEnvelope(RECEIPT)).toEqual(RECEIPT_DICT);
    expect(Object.keys(buildEnvelope(RECEIPT))).toEqual(Object.keys(RECEIPT_DICT));
    expect(toHex(encodeEnvelope(RECEIPT))).toBe(RECEIPT_HEX);
  });

  it('decodes the plistlib bytes and the same envelope as XML', () => {
    expect(decodeEnvelope(fromHex(RECEIPT_HEX))).toEqual(RECEIPT);
    expect(decodeEnvelope(encodeXmlPlist(RECEIPT_DICT))).toEqual(RECEIPT);
  });

  it('keeps unknown keys at both levels through parse → encode', () => {
    const dict: PlistDict = {
      ...RECEIPT_DICT,
      dtl: [{ tP: 'mailto:a@x.com', t: TOK, sT: fromHex('01'), D: true, E: 'pair', cdv: 1, zq: [1, 'two'] }],
      E: 'pair-ec',
      e: 1712345678901234567n,
      eX: 0,
      htu: true,
      rc: 2,
      oe: 1712345678000000000n,
      qI: 'abc',
    };
    const env = parseEnvelope(dict);
    expect(env.extra).toEqual({ rc: 2, oe: 1712345678000000000n, qI: 'abc' });
    expect(env.destinations[0]!.extra).toEqual({ zq: [1, 'two'] });
    expect(env.timestampNs).toBe(1712345678901234567n);
    expect(buildEnvelope(env)).toEqual(dict);
    expect(decodeEnvelope(encodeBinaryPlist(dict))).toEqual(env);
    expect(effectiveEncryption(env, env.destinations[0]!)).toBe('pair');
    expect(effectiveEncryption(env, { ...env.destinations[0]!, encryption: undefined })).toBe('pair-ec');
  });

  it('accepts [PY] integer flags and small integer timestamps', () => {
    const env = parseEnvelope({ ...RECEIPT_DICT, nr: 1, e: 5 });
    expect(env.noResponse).toBe(true);
    expect(env.timestampNs).toBe(5n);
  });

  it('rejects wrong types and missing keys with codes', () => {
    const bad = (patch: PlistDict, code: string) => expectDecodeError(() => parseEnvelope({ ...RECEIPT_DICT, ...patch }), code);
    bad({ U: new Uint8Array(15) }, 'bad-uuid');
    bad({ U: 'not data' }, 'bad-uuid');
    bad({ c: 'x' }, 'bad-field');
    bad({ c: 1.5 }, 'bad-field');
    bad({ i: 0x100000000 }, 'bad-field');
    bad({ i: -1 }, 'bad-field');
    bad({ dtl: 'x' }, 'bad-field');
    bad({ dtl: [1] }, 'bad-field');
    bad({ dtl: [{ tP: 'mailto:a@x.com', t: new Uint8Array(31) }] }, 'bad-token');
    bad({ dtl: [{ t: TOK }] }, 'missing-key');
    bad({ E: 'pq3' }, 'unknown-encryption');
    bad({ nr: 2 }, 'bad-field');
    bad({ e: 'soon' }, 'bad-field');
    for (const key of ['c', 'v', 'i', 'U', 'sP', 'dtl']) {
      const d = { ...RECEIPT_DICT };
      delete d[key];
      expectDecodeError(() => parseEnvelope(d), 'missing-key');
    }
    expectDecodeError(() => decodeEnvelope(encodeBinaryPlist([1, 2])), 'not-a-dict');
    expectDecodeError(() => decodeEnvelope(fromHex('00')));
  });

  it('refuses extra keys that shadow modelled ones', () => {
    expect(() => buildEnvelope({ ...RECEIPT, extra: { c: 1 } })).toThrow(EncodeError);
  });

  it('survives random dicts, random bytes and mutated bytes with DecodeError only', () => {
    const entry = dictOver(['tP', 't', 'sT', 'D', 'P', 'E', 'cdv']);
    const keys = ['c', 'fcn', 'v', 'i', 'U', 'sP', 'dtl', 'E', 'ua', 'nr', 'eX', 'e', 'htu'];
    fc.assert(
      fc.property(dictOver(keys, entry), (d) => {
        const env = onlyDecodeError(() => parseEnvelope(d));
        if (env) expect(parseEnvelope(buildEnvelope(env))).toEqual(env);
      }),
      RUNS,
    );
    fc.assert(
      fc.property(patched(RECEIPT_DICT), (d) => {
        const env = onlyDecodeError(() => parseEnvelope(d));
        if (env) expect(parseEnvelope(buildEnvelope(env))).toEqual(env);
      }),
      RUNS,
    );
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => void onlyDecodeError(() => decodeEnvelope(b))), RUNS);
    fc.assert(fc.property(mutated(fromHex(RECEIPT_HEX)), (b) => void onlyDecodeError(() => decodeEnvelope(b))), RUNS);
  });
});

describe('incoming notification', () => {
  it('matches the fixed dict and plistlib bytes', () => {
    const dict: PlistDict = {
      c: 100,
      U,
      sP: 'mailto:a@x.com',
      tP: 'tel:+15551230000',
      t: TOK,
      E: 'pair-ec',
      P: fromHex('deadbeef'),
      D: true,
      e: 1712345678901234567n,
    };
    expect(buildIncoming(INCOMING)).toEqual(dict);
    expect(toHex(encodeIncoming(INCOMING))).toBe(INCOMING_HEX);
    expect(decodeIncoming(fromHex(INCOMING_HEX))).toEqual(INCOMING);
    expect(readCommand(dict)).toBe(100);
  });

  it('keeps copied envelope keys and unknown keys', () => {
    const dict = { ...buildIncoming(INCOMING), v: 8, i: 77, nr: true, eX: 0, htu: true, cdv: 1, cdr: fromHex('0102'), zz: 'x' };
    const n = parseIncoming(dict);
    expect(n).toMatchObject({ version: 8, messageId: 77, noResponse: true, expirySeconds: 0, htu: true, certifiedDeliveryVersion: 1 });
    expect(n.extra).toEqual({ zz: 'x' });
    expect(parseIncoming(buildIncoming(n))).toEqual(n);
    expect(buildIncoming(n)).toEqual(dict);
  });

  it('rejects bad input', () => {
    const base = buildIncoming(INCOMING);
    expectDecodeError(() => parseIncoming({ ...base, t: new Uint8Array(16) }), 'bad-token');
    expectDecodeError(() => parseIncoming({ ...base, P: 'x' }), 'bad-field');
    expectDecodeError(() => parseIncoming({ ...base, D: 'yes' }), 'bad-field');
    for (const key of ['c', 'U', 'sP', 'tP', 't', 'e']) {
      const d = { ...base };
      delete d[key];
      expectDecodeError(() => parseIncoming(d), 'missing-key');
    }
    expectDecodeError(() => readCommand({}), 'missing-key');
  });

  it('survives random dicts and bytes with DecodeError only', () => {
    const keys = ['c', 'U', 'sP', 'tP', 't', 'P', 'E', 'D', 'e', 'cdv', 'cdr', 'v', 'i', 'nr', 'eX', 'htu'];
    fc.assert(
      fc.property(dictOver(keys), (d) => {
        const n = onlyDecodeError(() => parseIncoming(d));
        if (n) expect(parseIncoming(buildIncoming(n))).toEqual(n);
      }),
      RUNS,
    );
    fc.assert(
      fc.property(patched(buildIncoming(INCOMING)), (d) => {
        const n = onlyDecodeError(() => parseIncoming(d));
        if (n) expect(parseIncoming(buildIncoming(n))).toEqual(n);
      }),
      RUNS,
    );
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => void onlyDecodeError(() => decodeIncoming(b))), RUNS);
    fc.assert(fc.property(mutated(fromHex(INCOMING_HEX)), (b) => void onlyDecodeError(() => decodeIncoming(b))), RUNS);
  });
});

describe('c:255 server ack', () => {
  it('matches the fixed dict and plistlib bytes', () => {
    const ack = { uuid: U, token: TOK, status: AckStatus.BadSignature, extra: {} };
    expect(buildServerAck(ack)).toEqual({ c: 255, U, t: TOK, s: 5032 });
    expect(toHex(encodeServerAck(ack))).toBe(ACK_HEX);
    expect(decodeServerAck(fromHex(ACK_HEX))).toEqual(ack);
  });

  it('allows a whole-send rejection without t and keeps unknown keys', () => {
    const ack = parseServerAck({ c: 255, U, s: 1006, zz: 1 });
    expect(ack).toEqual({ uuid: U, token: undefined, status: 1006, extra: { zz: 1 } });
    expect(buildServerAck(ack)).toEqual({ c: 255, U, s: 1006, zz: 1 });
  });

  it('rejects bad input', () => {
    expectDecodeError(() => parseServerAck({ c: 100, U, s: 0 }), 'wrong-command');
    expectDecodeError(() => parseServerAck({ c: 255, U }), 'missing-key');
    expectDecodeError(() => parseServerAck({ c: 255, U, s: 0, t: new Uint8Array(3) }), 'bad-token');
    fc.assert(fc.property(dictOver(['c', 'U', 't', 's']), (d) => void onlyDecodeError(() => parseServerAck(d))), RUNS);
    fc.assert(fc.property(mutated(fromHex(ACK_HEX)), (b) => void onlyDecodeError(() => decodeServerAck(b))), RUNS);
    expect(() => decodeServerAck(new Uint8Array(0))).toThrow(DecodeError);
  });
});
