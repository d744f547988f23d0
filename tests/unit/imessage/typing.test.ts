import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fromHex, toHex } from '../../../lib/codec/bytes';
import type { PlistDict } from '../../../lib/codec/plist';
import { buildEnvelope, encodeEnvelope, type IncomingNotification } from '../../../lib/imessage/envelope';
import {
  buildTypingPayload,
  classifyTyping,
  decodeTypingPayload,
  encodeTypingPayload,
  parseTypingPayload,
  typingEnvelope,
  typingStartPayload,
  typingStopPayload,
} from '../../../lib/imessage/typing';
import { RUNS, dictOver, expectDecodeError, onlyDecodeError, onlyDecodeErrorAsync } from './arbitraries';

const GID = 'E4D7C2A2-8B9C-4E57-9C3E-0F1A2B3C4D5E';
const P = ['mailto:a@x.com', 'tel:+15551230000'];
const U = fromHex('000102030405060708090a0b0c0d0e0f');
const TOK = new Uint8Array(32).fill(0xaa);
const E = 1712345678901234567n;

// python3: plistlib.dumps({'c':100,'v':8,'i':7,'U':bytes(range(16)),'sP':'mailto:a@x.com',
//   'dtl':[{'tP':'tel:+15551230000','t':b'\xaa'*32,'sT':bytes([9,9])}],'nr':True,'eX':0,'e':1712345678901234567,
//   'htu':True}, fmt=FMT_BINARY, sort_keys=False).hex()
const START_1TO1_HEX =
  '62706c6973743030da0102030405060708090a0b0c0d0e0f1018191a1851635176516951555273505364746c526e725265585165536874751064100810' +
  '074f1010000102030405060708090a0b0c0d0e0f5e6d61696c746f3a6140782e636f6da111d312131415161752745051745273545f101074656c3a2b31' +
  '353535313233303030304f1020aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa4209090910001317c3795293954b8708' +
  '1d1f212325282c2f3234383a3c3e516062696c6e7184a7aaabad0000000000000101000000000000001b000000000000000000000000000000b6';

// python3: plistlib.dumps({'p':P,'gid':GID,'gv':'8','pv':0,'u':True,'gt':True}, fmt=FMT_BINARY, sort_keys=False).hex()
const GROUP_START_HEX =
  '62706c6973743030d6010203040506070a0b0c0d0d5170536769645267765270765175526774a208095e6d61696c746f3a6140782e636f6d5f101074656c' +
  '3a2b31353535313233303030305f102445344437433241322d384239432d344535372d394333452d30463141324233433444354551381000090815171b1e' +
  '21232629384b7274760000000000000101000000000000000e00000000000000000000000000000077';
// python3: plistlib.dumps({'p':P,'gid':GID,'gv':'8','pv':0,'v':'1'}, fmt=FMT_BINARY, sort_keys=False).hex()
const STOP_HEX =
  '62706c6973743030d5010203040506090a0b0c5170536769645267765270765176a207085e6d61696c746f3a6140782e636f6d5f101074656c3a2b313535' +
  '35313233303030305f102445344437433241322d384239432d344535372d394333452d304631413242334334443545513810005131081315191c1f212433' +
  '466d6f710000000000000101000000000000000d00000000000000000000000000000073';

const incoming = (patch: Partial<IncomingNotification>): IncomingNotification => ({
  command: 100,
  uuid: U,
  senderUri: 'mailto:a@x.com',
  targetUri: 'tel:+15551230000',
  senderToken: TOK,
  timestampNs: E,
  extra: {},
  ...patch,
});

describe('typing indicators', () => {
  it('1:1 start envelope: no P, no D, exact plistlib bytes', () => {
    const env = typingEnvelope({
      senderUri: 'mailto:a@x.com',
      destinations: [{ uri: 'tel:+15551230000', token: TOK, sessionToken: fromHex('0909') }],
      uuid: U,
      messageId: 7,
      timestampNs: E,
    });
    expect(buildEnvelope(env)).toEqual({
      c: 100,
      v: 8,
      i: 7,
      U,
      sP: 'mailto:a@x.com',
      dtl: [{ tP: 'tel:+15551230000', t: TOK, sT: fromHex('0909') }],
      nr: true,
      eX: 0,
      e: E,
      htu: true,
    });
    expect(toHex(encodeEnvelope(env))).toBe(START_1TO1_HEX);
    const fresh = typingEnvelope({ senderUri: 'mailto:a@x.com', destinations: [] });
    expect(fresh.uuid.length).toBe(16);
    expect(fresh.timestampNs! > 0n).toBe(true);
  });

  it('group start/stop payloads: fixed dicts and plistlib bytes', async () => {
    const start = typingStartPayload({ participants: P, groupId: GID });
    const stop = typingStopPayload({ participants: P, groupId: GID });
    expect(buildTypingPayload(start)).toEqual({ p: P, gid: GID, gv: '8', pv: 0, u: true, gt: true });
    expect(buildTypingPayload(stop)).toEqual({ p: P, gid: GID, gv: '8', pv: 0, v: '1' });
    expect(toHex(await encodeTypingPayload(start))).toBe(GROUP_START_HEX);
    expect(toHex(await encodeTypingPayload(stop))).toBe(STOP_HEX);
    expect(await decodeTypingPayload(fromHex(GROUP_START_HEX))).toEqual(start);
    expect(await decodeTypingPayload(fromHex(STOP_HEX))).toEqual(stop);
    const oneToOne = typingStartPayload({ participants: P, groupId: GID, group: false, groupName: 'x' });
    expect(buildTypingPayload(oneToOne)).toEqual({ p: P, gid: GID, gv: '8', pv: 0, n: 'x', u: true });
    const env = typingEnvelope({
      senderUri: 'mailto:a@x.com',
      destinations: [{ uri: 'tel:+15551230000', token: TOK, sessionToken: fromHex('09'), payload: fromHex('02'), encryption: 'pair-ec' }],
      encryption: 'pair',
    });
    expect(buildEnvelope(env)).toMatchObject({ eX: 0, E: 'pair', dtl: [{ P: fromHex('02'), E: 'pair-ec' }] });
  });

  it('classifies incoming notifications by the receiver rule', () => {
    expect(classifyTyping(incoming({ expirySeconds: 0 }))).toBe('started');
    expect(classifyTyping(incoming({ expirySeconds: 0, payload: fromHex('01') }))).toBe('needs-payload');
    expect(classifyTyping(incoming({ expirySeconds: 0, payload: fromHex('01') }), { u: true, p: P })).toBe('started');
    expect(classifyTyping(incoming({ expirySeconds: 0, payload: fromHex('01') }), { p: P, v: '1' })).toBe('stopped');
    expect(classifyTyping(incoming({ expirySeconds: 0, payload: fromHex('01') }), { u: 1 })).toBe('started');
    expect(classifyTyping(incoming({ payload: fromHex('01') }), { t: 'hi', p: P })).toBe('not-typing');
    expect(classifyTyping(incoming({ command: 101, expirySeconds: 0 }))).toBe('not-typing');
    expectDecodeError(() => classifyTyping(incoming({ expirySeconds: 0, payload: fromHex('01') }), { u: 'yes' }), 'bad-field');
  });

  it('keeps unknown keys and rejects bad types', () => {
    const dict: PlistDict = { p: P, gid: GID, pv: 0, gv: '8', u: true, gt: true, bid: 'com.example.app', tic: fromHex('1f8b'), zz: 'x' };
    const t = parseTypingPayload(dict);
    expect(t).toMatchObject({ bundleId: 'com.example.app', appIcon: fromHex('1f8b'), extra: { zz: 'x' } });
    expect(buildTypingPayload(t)).toEqual(dict);
    expectDecodeError(() => parseTypingPayload({ ...dict, tic: 'x' }), 'bad-field');
    expectDecodeError(() => parseTypingPayload({ gid: GID }), 'missing-key');
  });

  it('survives random dicts and bytes with DecodeError only', async () => {
    fc.assert(
      fc.property(dictOver(['p', 'gid', 'pv', 'gv', 'v', 'n', 'u', 'gt', 'bid', 'tic']), (d) => {
        const t = onlyDecodeError(() => parseTypingPayload(d));
        if (t) expect(parseTypingPayload(buildTypingPayload(t))).toEqual(t);
      }),
      RUNS,
    );
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 120 }), async (b) => void (await onlyDecodeErrorAsync(() => decodeTypingPayload(b)))),
      { numRuns: 100 },
    );
  });
});
