import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fromHex, toHex } from '../../../lib/codec/bytes';
import type { PlistDict } from '../../../lib/codec/plist';
import { buildEnvelope, decodeEnvelope, encodeEnvelope, type IncomingNotification } from '../../../lib/imessage/envelope';
import {
  buildCertifiedDelivery,
  certifiedDeliveryFor,
  decodeCertifiedDelivery,
  deliveryReceiptEnvelope,
  encodeCertifiedDelivery,
  parseCertifiedDelivery,
  readReceiptEnvelope,
  wantsDeliveryReceipt,
} from '../../../lib/imessage/receipts';
import { RUNS, dictOver, expectDecodeError, mutated, onlyDecodeError, patched } from './arbitraries';

const U = fromHex('000102030405060708090a0b0c0d0e0f');
const TOK = new Uint8Array(32).fill(0xaa);
const TOK2 = new Uint8Array(32).fill(0xbb);
const UA = '[macOS,14.2,23C64,MacBookPro18,3]';
const E = 1712345678901234567n;

// What tel:+15551230000's device received from mailto:a@x.com's device (token TOK).
const INCOMING: IncomingNotification = {
  command: 100,
  uuid: U,
  senderUri: 'mailto:a@x.com',
  targetUri: 'tel:+15551230000',
  senderToken: TOK,
  payload: fromHex('02'),
  encryption: 'pair',
  deliveryReceipt: true,
  timestampNs: E,
  extra: {},
};

// Same bytes as envelope.test.ts RECEIPT_HEX: python3 plistlib.dumps({'c':101,'fcn':1,'v':8,'i':0x01020304,
//   'U':bytes(range(16)),'sP':'tel:+15551230000','dtl':[{'tP':'mailto:a@x.com','t':b'\xaa'*32,'sT':bytes([1,2,3,4]),
//   'D':False}],'ua':UA,'nr':True}, fmt=FMT_BINARY, sort_keys=False).hex()
const DELIVERY_HEX =
  '62706c6973743030d90102030405060708090a0b0c0d0e0f101a1b51635366636e5176516951555273505364746c527561526e72106510011008120102030' +
  '44f1010000102030405060708090a0b0c0d0e0f5f101074656c3a2b3135353531323330303030a111d41213141516171819527450517452735451445e6d' +
  '61696c746f3a6140782e636f6d4f1020aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa4401020304085f10215b6d61634f' +
  '532c31342e322c32334336342c4d6163426f6f6b50726f31382c335d09081b1d212325272a2e313436383a3f526567707375787a89acb1b2d600000000' +
  '00000101000000000000001c000000000000000000000000000000d7';

// python3: plistlib.dumps({'c':102,'fcn':1,'v':8,'i':9,'U':bytes(range(16)),'sP':'mailto:a@x.com',
//   'dtl':[{'tP':'mailto:a@x.com','t':b'\xbb'*32,'sT':b'\x01','D':False},{'tP':'tel:+15551230000','t':b'\xaa'*32,
//   'sT':b'\x02','D':True}],'ua':UA,'nr':True,'e':1712345678901234567}, fmt=FMT_BINARY, sort_keys=False).hex()
const READ_HEX =
  '62706c6973743030da0102030405060708090a0b0c0d0e0f10111f1e2051635366636e5176516951555273505364746c527561526e7251651066100110' +
  '0810094f1010000102030405060708090a0b0c0d0e0f5e6d61696c746f3a6140782e636f6da2121ad41314151610171819527450517452735451444f10' +
  '20bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb410108d4131415161b1c1d1e5f101074656c3a2b3135353531323330' +
  '3030304f1020aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa4102095f10215b6d61634f532c31342e322c3233433634' +
  '2c4d6163426f6f6b50726f31382c335d1317c3795293954b870008001d001f0023002500270029002c0030003300360038003a003c003e004000530062' +
  '0065006e0071007300760078009b009d009e00a700ba00dd00df00e00104000000000000020100000000000000210000000000000000000000000000010d';

// python3: plistlib.dumps({'c':109,'cdr':bytes([5,6,7]),'cdv':1,'U':bytes(range(16)),'t':b'\xaa'*32,'i':11,'ua':'ua',
//   'v':8,'nr':True,'tP':'mailto:a@x.com','sP':'tel:+15551230000','gd':True}, fmt=FMT_BINARY, sort_keys=False).hex()
const CERT_HEX =
  '62706c6973743030dc0102030405060708090a0b0c0d0e0f101112071314151614516353636472536364765155517451695275615176526e725274505273' +
  '50526764106d4305060710014f1010000102030405060708090a0b0c0d0e0f4f1020aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' +
  'aaaaaaaaaa100b1008095e6d61696c746f3a6140782e636f6d5f101074656c3a2b3135353531323330303030082123272b2d2f313436393c3f4244484a' +
  '5d808284859400000000000001010000000000000017000000000000000000000000000000a7';

describe('delivery receipt (c:101)', () => {
  it('swaps sP/tP, targets the incoming t, D false, nr true — exact plistlib bytes', () => {
    expect(wantsDeliveryReceipt(INCOMING)).toBe(true);
    expect(wantsDeliveryReceipt({ ...INCOMING, deliveryReceipt: false })).toBe(false);
    const env = deliveryReceiptEnvelope(INCOMING, { userAgent: UA, sessionToken: fromHex('01020304'), messageId: 0x01020304 });
    expect(buildEnvelope(env)).toEqual({
      c: 101,
      fcn: 1,
      v: 8,
      i: 0x01020304,
      U,
      sP: 'tel:+15551230000',
      dtl: [{ tP: 'mailto:a@x.com', t: TOK, sT: fromHex('01020304'), D: false }],
      ua: UA,
      nr: true,
    });
    expect(toHex(encodeEnvelope(env))).toBe(DELIVERY_HEX);
    expect(decodeEnvelope(fromHex(DELIVERY_HEX))).toEqual(env);
    const auto = deliveryReceiptEnvelope(INCOMING, { userAgent: UA, sessionToken: fromHex('01') });
    expect(auto.messageId).toBeGreaterThanOrEqual(0);
  });
});

describe('read receipt (c:102)', () => {
  it('addresses every device, D only for other people, exact plistlib bytes', () => {
    const env = readReceiptEnvelope({
      uuid: U,
      senderUri: 'mailto:a@x.com',
      destinations: [
        { uri: 'mailto:a@x.com', token: TOK2, sessionToken: fromHex('01') },
        { uri: 'tel:+15551230000', token: TOK, sessionToken: fromHex('02') },
      ],
      userAgent: UA,
      messageId: 9,
      timestampNs: E,
    });
    expect(buildEnvelope(env)).toEqual({
      c: 102,
      fcn: 1,
      v: 8,
      i: 9,
      U,
      sP: 'mailto:a@x.com',
      dtl: [
        { tP: 'mailto:a@x.com', t: TOK2, sT: fromHex('01'), D: false },
        { tP: 'tel:+15551230000', t: TOK, sT: fromHex('02'), D: true },
      ],
      ua: UA,
      nr: true,
      e: E,
    });
    expect(toHex(encodeEnvelope(env))).toBe(READ_HEX);
    const rp = readReceiptEnvelope({ uuid: U, senderUri: 'mailto:a@x.com', destinations: [], userAgent: UA, noResponse: false });
    expect(rp.noResponse).toBe(false);
    expect(rp.timestampNs! > 0n).toBe(true);
  });
});

describe('certified delivery (c:109)', () => {
  const withCd: IncomingNotification = { ...INCOMING, certifiedDeliveryVersion: 1, certifiedDeliveryReceipt: fromHex('050607') };

  it('answers cdv+cdr with the fixed dict and plistlib bytes', () => {
    expect(certifiedDeliveryFor(INCOMING, { userAgent: 'ua', notifySender: true })).toBeUndefined();
    const cd = certifiedDeliveryFor(withCd, { userAgent: 'ua', messageId: 11, notifySender: true })!;
    expect(buildCertifiedDelivery(cd)).toEqual({
      c: 109,
      cdr: fromHex('050607'),
      cdv: 1,
      U,
      t: TOK,
      i: 11,
      ua: 'ua',
      v: 8,
      nr: true,
      tP: 'mailto:a@x.com',
      sP: 'tel:+15551230000',
      gd: true,
    });
    expect(toHex(encodeCertifiedDelivery(cd))).toBe(CERT_HEX);
    expect(decodeCertifiedDelivery(fromHex(CERT_HEX))).toEqual(cd);
    const quiet = certifiedDeliveryFor(withCd, { userAgent: 'ua', messageId: 11, notifySender: false })!;
    expect(Object.keys(buildCertifiedDelivery(quiet))).toEqual(['c', 'cdr', 'cdv', 'U', 't', 'i', 'ua', 'v', 'nr']);
  });

  it('keeps unknown keys, rejects bad input, survives fuzzing', () => {
    const dict: PlistDict = { ...buildCertifiedDelivery(certifiedDeliveryFor(withCd, { userAgent: 'ua', notifySender: false })!), sT: fromHex('01') };
    const cd = parseCertifiedDelivery(dict);
    expect(cd.extra).toEqual({ sT: fromHex('01') });
    expect(buildCertifiedDelivery(cd)).toEqual(dict);
    expectDecodeError(() => parseCertifiedDelivery({ ...dict, c: 101 }), 'wrong-command');
    expectDecodeError(() => parseCertifiedDelivery({ ...dict, t: fromHex('01') }), 'bad-token');
    const { cdr: _cdr, ...noCdr } = dict;
    expectDecodeError(() => parseCertifiedDelivery(noCdr), 'missing-key');
    const keys = ['c', 'cdr', 'cdv', 'U', 't', 'i', 'ua', 'v', 'nr', 'tP', 'sP', 'gd'];
    for (const arb of [dictOver(keys), patched(dict)]) {
      fc.assert(
        fc.property(arb, (d) => {
          const c = onlyDecodeError(() => parseCertifiedDelivery(d));
          if (c) expect(parseCertifiedDelivery(buildCertifiedDelivery(c))).toEqual(c);
        }),
        RUNS,
      );
    }
    fc.assert(fc.property(mutated(fromHex(CERT_HEX)), (b) => void onlyDecodeError(() => decodeCertifiedDelivery(b))), RUNS);
  });
});
