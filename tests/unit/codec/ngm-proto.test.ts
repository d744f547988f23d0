import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../../lib/codec/bytes';
import {
  decodeInnerMessage,
  decodeKeyTransparencyLoggableData,
  decodeNgmPublicIdentityMessage,
  decodeOuterMessage,
  decodePublicDevicePrekey,
  encodeInnerMessage,
  encodeKeyTransparencyLoggableData,
  encodeNgmPublicIdentityMessage,
  encodeOuterMessage,
  encodePublicDevicePrekey,
} from '../../../lib/codec/ngm-proto';
import { DecodeError } from '../../../lib/errors';
import vectors from '../../vectors';

const alice = vectors.ngm.alice;
const decoders = [
  decodeOuterMessage,
  decodeInnerMessage,
  decodePublicDevicePrekey,
  decodeKeyTransparencyLoggableData,
  decodeNgmPublicIdentityMessage,
];

function decodesOrDecodeError(decode: (b: Uint8Array) => unknown, bytes: Uint8Array): void {
  try {
    decode(bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(DecodeError);
    expect((e as DecodeError).code).toBe('bad-protobuf');
  }
}

describe('OuterMessage', () => {
  it('encodes fields 1, 2, 3 and 99 in order with the two-byte tag 9A 06', () => {
    const bytes = encodeOuterMessage({
      encryptedPayload: fromHex('aabbcc'),
      ephemeralPubKey: new Uint8Array(32).fill(0x11),
      signature: new Uint8Array(64).fill(0x22),
      keyValidator: fromHex('01020304050607'),
    });
    expect(toHex(bytes)).toBe(
      '0a03aabbcc' + '1220' + '11'.repeat(32) + '1a40' + '22'.repeat(64) + '9a0607' + '01020304050607',
    );
  });

  it('uses a multi-byte varint for long payloads and decodes back', () => {
    const ct = new Uint8Array(300).map((_, i) => i & 0xff);
    const bytes = encodeOuterMessage({ encryptedPayload: ct });
    expect(toHex(bytes.subarray(0, 3))).toBe('0aac02');
    const m = decodeOuterMessage(bytes);
    expect(m.encryptedPayload).toEqual(ct);
    expect(m.signature.length).toBe(0);
  });

  it('decodes a pair-ec vector payload into its four fields', () => {
    const m = decodeOuterMessage(fromHex(vectors.ngm.pair_ec[2]!.payload));
    expect(m.encryptedPayload.length).toBe(0x14);
    expect(m.ephemeralPubKey.length).toBe(32);
    expect(m.signature.length).toBe(64);
    expect(toHex(m.keyValidator)).toBe('165d18d7d5350c');
  });
});

describe('InnerMessage', () => {
  it('writes message and counter, leaving proto3 defaults out', () => {
    expect(toHex(encodeInnerMessage({ message: fromHex('616263'), counter: 1 }))).toBe('0a036162631001');
    expect(toHex(encodeInnerMessage({ message: new Uint8Array(0), counter: 0 }))).toBe('');
    expect(toHex(encodeInnerMessage({ message: new Uint8Array(0), counter: 0xffffffff }))).toBe('10ffffffff0f');
  });

  it('decodes the empty message to defaults and skips unknown fields', () => {
    const empty = decodeInnerMessage(new Uint8Array(0));
    expect(empty.message.length).toBe(0);
    expect(empty.counter).toBe(0);
    const m = decodeInnerMessage(fromHex('0a0161' + '1a0178' + 'a0062a' + '1007'));
    expect(toHex(m.message)).toBe('61');
    expect(toHex(m.ktGossipData)).toBe('78');
    expect(m.counter).toBe(7);
  });
});

describe('PublicDevicePrekey and KeyTransparencyLoggableData', () => {
  it('decodes the vector prekey message and re-encodes it byte for byte', () => {
    const m = decodePublicDevicePrekey(fromHex(alice.public_device_prekey));
    expect(toHex(m.prekey)).toBe(alice.prekey_public_compact);
    expect(m.prekeySignature.length).toBe(64);
    expect(m.timestamp).toBe(alice.prekey_timestamp);
    const again = encodePublicDevicePrekey({ prekey: m.prekey, prekeySignature: m.prekeySignature, timestamp: m.timestamp });
    expect(again.length).toBe(109);
    expect(toHex(again)).toBe(alice.public_device_prekey);
  });

  it('writes the timestamp as a little-endian double after tag 19', () => {
    const bytes = encodePublicDevicePrekey({ prekey: new Uint8Array(0), prekeySignature: new Uint8Array(0), timestamp: 1732270636 });
    expect(toHex(bytes)).toBe('190000008b16d0d941');
  });

  it('builds kt-loggable-data as 0A 22 0A 20 <X> 10 0D 18 05', () => {
    const bytes = encodeKeyTransparencyLoggableData({
      ngmPublicIdentity: encodeNgmPublicIdentityMessage({ publicKey: fromHex(alice.device_public_compact) }),
      ngmVersion: 13,
      ktVersion: 5,
    });
    expect(toHex(bytes)).toBe('0a220a20' + alice.device_public_compact + '100d1805');
    expect(toHex(bytes)).toBe(alice.kt_loggable_data);
    const kt = decodeKeyTransparencyLoggableData(bytes);
    expect(kt.ngmVersion).toBe(13);
    expect(kt.ktVersion).toBe(5);
    expect(toHex(decodeNgmPublicIdentityMessage(kt.ngmPublicIdentity).publicKey)).toBe(alice.device_public_compact);
  });
});

describe('hostile input', () => {
  const bad: [string, string][] = [
    ['truncated length', '0a05aabb'],
    ['length past the end', '0affffffff0f00'],
    ['unterminated varint', 'ffffffffffffffffffff01'],
    ['field number 0', '0000'],
    ['wire type 6', '0e'],
    ['wire type 7', '0f'],
    ['unbalanced end group', 'a4060c'],
    ['unterminated group', '2b'],
    ['truncated fixed64', '1900000000'],
    ['truncated two-byte tag', '9a'],
  ];
  for (const [name, hex] of bad) {
    it(`rejects ${name} with DecodeError('bad-protobuf') in every decoder`, () => {
      for (const decode of decoders) {
        expect(() => decode(fromHex(hex))).toThrow(DecodeError);
      }
    });
  }

  it('rejects a known field whose tag carries the wrong wire type', () => {
    const cases: [(b: Uint8Array) => unknown, string][] = [
      [decodeOuterMessage, '0b03aabbcc'],
      [decodeOuterMessage, '0801'],
      [decodeOuterMessage, '9806' + '07'],
      [decodeInnerMessage, '1202abcd'],
      [decodeInnerMessage, '1501000000'],
      [decodePublicDevicePrekey, '1a08' + '0000008b16d0d941'],
      [decodePublicDevicePrekey, '1d00000000'],
      [decodeKeyTransparencyLoggableData, '1201ff'],
      [decodeNgmPublicIdentityMessage, '0d00000000'],
    ];
    for (const [decode, hex] of cases) {
      expect(() => decode(fromHex(hex)), hex).toThrow(DecodeError);
    }
    // The same bytes under an unknown field number are skipped, not rejected.
    expect(decodeInnerMessage(fromHex('2202abcd')).counter).toBe(0);
  });

  it('stops deeply nested unknown groups with a DecodeError, not a stack overflow', () => {
    const depth = 100_000;
    const nested = new Uint8Array(2 * depth);
    nested.fill(0x2b, 0, depth);
    nested.fill(0x2c, depth);
    for (const decode of decoders) {
      let error: unknown;
      try {
        decode(nested);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(DecodeError);
    }
  });

  it('random bytes give a message or DecodeError only', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        for (const decode of decoders) decodesOrDecodeError(decode, bytes);
      }),
      { numRuns: 300 },
    );
  });

  it('mutated and truncated real messages give a message or DecodeError only', () => {
    const seeds = [
      fromHex(alice.public_device_prekey),
      fromHex(alice.kt_loggable_data),
      ...vectors.ngm.pair_ec.map((v) => fromHex(v.payload)),
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...seeds),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.nat(),
        (seed, edits, cut) => {
          const bytes = seed.slice(0, seed.length - (cut % 8));
          for (const [pos, value] of edits) bytes[pos % bytes.length] = value;
          for (const decode of decoders) decodesOrDecodeError(decode, bytes);
        },
      ),
      { numRuns: 300 },
    );
  });
});
