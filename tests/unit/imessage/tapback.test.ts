import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fromHex, toHex } from '../../../lib/codec/bytes';
import type { PlistDict } from '../../../lib/codec/plist';
import { encodeBinaryPlist } from '../../../lib/codec/plist-binary';
import { EncodeError } from '../../../lib/errors';
import {
  buildTapback,
  decodeTapback,
  encodeTapback,
  formatTapbackTarget,
  isTapback,
  parseTapback,
  parseTapbackTarget,
  tapback,
  tapbackSummary,
  tapbackType,
} from '../../../lib/imessage/tapback';
import { RUNS, dictOver, expectDecodeError, onlyDecodeError, onlyDecodeErrorAsync, patched } from './arbitraries';

const GID = 'E4D7C2A2-8B9C-4E57-9C3E-0F1A2B3C4D5E';
const MSG = '0A1B2C3D-4E5F-4061-8293-A4B5C6D7E8F9';
const P = ['mailto:a@x.com', 'tel:+15551230000'];

// python3: plistlib.dumps({'amc':1,'ams':'hi'}, fmt=FMT_BINARY, sort_keys=False).hex()
const MSI_HEX = '62706c6973743030d20102030453616d6353616d731001526869080d111517000000000000010100000000000000050000000000000000000000000000001a';

// python3: plistlib.dumps({'amt':2000,'amk':'p:0/'+MSG,'amrlc':0,'amrln':2,'msi':bytes.fromhex(MSI_HEX),
//   't':'Loved \u201chi\u201d','p':['mailto:a@x.com','tel:+15551230000'],'gid':GID,'gv':'8','pv':0,'v':'1'},
//   fmt=FMT_BINARY, sort_keys=False).hex()
const TAPBACK_HEX =
  '62706c6973743030db0102030405060708090a0b0c0d0e0f10111215160e1753616d7453616d6b55616d726c6355616d726c6e536d736951745170536769' +
  '6452677652707651761107d05f1028703a302f30413142324333442d344535462d343036312d383239332d413442354336443745384639100010024f103f' +
  '62706c6973743030d20102030453616d6353616d731001526869080d11151700000000000001010000000000000005000000000000000000000000000000' +
  '1a6a004c006f0076006500640020201c00680069201da213145e6d61696c746f3a6140782e636f6d5f101074656c3a2b31353535313233303030305f1024' +
  '45344437433241322d384239432d344535372d394333452d304631413242334334443545513851310008001f00230027002d003300370039003b003f0042' +
  '00450047004a00750077007900bb00d000d300e200f5011c011e0000000000000201000000000000001800000000000000000000000000000120';

const TAPBACK_DICT: PlistDict = {
  amt: 2000,
  amk: `p:0/${MSG}`,
  amrlc: 0,
  amrln: 2,
  msi: fromHex(MSI_HEX),
  t: 'Loved “hi”',
  p: P,
  gid: GID,
  gv: '8',
  pv: 0,
  v: '1',
};

const LOVE = () => tapback({ reaction: 'love', target: { kind: 'part', part: 0, uuid: MSG }, quotedText: 'hi', participants: P, groupId: GID });

describe('tapbacks', () => {
  it('builds the fixed dict and the exact plistlib bytes', async () => {
    expect(buildTapback(LOVE())).toEqual(TAPBACK_DICT);
    expect(Object.keys(buildTapback(LOVE()))).toEqual(Object.keys(TAPBACK_DICT));
    expect(toHex(await encodeTapback(LOVE()))).toBe(TAPBACK_HEX);
    expect(await decodeTapback(fromHex(TAPBACK_HEX))).toEqual(LOVE());
  });

  it('maps amt values both ways, removal = +1000', () => {
    expect(tapbackType('love', false)).toBe(2000);
    expect(tapbackType('question', false)).toBe(2005);
    expect(tapbackType('sticker', true)).toBe(3007);
    const removed = parseTapback({ ...TAPBACK_DICT, amt: 3003, t: 'Removed a laugh from “hi”' });
    expect(removed).toMatchObject({ reaction: 'laugh', remove: true });
    for (const amt of [1000, 2, 4000, 1999, 2008, 2999, 3008]) {
      expectDecodeError(() => parseTapback({ ...TAPBACK_DICT, amt }), 'not-a-tapback');
    }
  });

  it('writes summaries old clients show', () => {
    expect(tapbackSummary('love', false, 'hi')).toBe('Loved “hi”');
    expect(tapbackSummary('love', true, 'hi')).toBe('Removed a heart from “hi”');
    expect(tapbackSummary('laugh', false, 'x')).toBe('Laughed at “x”');
    expect(tapbackSummary('emphasize', true, 'x')).toBe('Removed an exclamation from “x”');
    expect(tapbackSummary('emoji', false, 'x', '🎉')).toBe('Reacted 🎉 to “x”');
  });

  it('emoji tapbacks carry ame and balloon targets use bp:', () => {
    const t = tapback({ reaction: 'emoji', emoji: '🎉', target: { kind: 'balloon', uuid: MSG }, quotedText: 'hi', participants: P });
    const d = buildTapback(t);
    expect(d).toMatchObject({ amt: 2006, amk: `bp:${MSG}`, ame: '🎉' });
    expect(parseTapback(d)).toEqual(t);
    expect(() => tapback({ reaction: 'emoji', target: { kind: 'part', part: 0, uuid: MSG }, quotedText: '', participants: P })).toThrow(
      EncodeError,
    );
  });

  it('targets: parse and format', () => {
    expect(parseTapbackTarget(`p:12/${MSG}`)).toEqual({ kind: 'part', part: 12, uuid: MSG });
    expect(formatTapbackTarget({ kind: 'part', part: 1, uuid: MSG })).toBe(`p:1/${MSG}`);
    for (const amk of ['p:0', `p:x/${MSG}`, `q:0/${MSG}`, 'bp:nope', `p:-1/${MSG}`]) expectDecodeError(() => parseTapbackTarget(amk), 'bad-tapback-target');
    expect(() => formatTapbackTarget({ kind: 'part', part: -1, uuid: MSG })).toThrow(EncodeError);
    expect(() => formatTapbackTarget({ kind: 'balloon', uuid: 'x' })).toThrow(EncodeError);
  });

  it('keeps unknown keys, also inside msi', () => {
    const msi = encodeBinaryPlist({ amc: 3, ams: 'pic', amb: 'x', amd: 1 });
    const dict: PlistDict = { ...TAPBACK_DICT, msi, zz: [true], amt: 2001 };
    const t = parseTapback(dict);
    expect(t.summaryInfo).toEqual({ contentType: 3, quotedText: 'pic', extra: { amb: 'x', amd: 1 } });
    expect(t.extra).toEqual({ zz: [true] });
    expect(buildTapback(t)).toEqual(dict);
    expect(isTapback(dict)).toBe(true);
    expect(isTapback({ t: 'x', p: P })).toBe(false);
  });

  it('rejects bad input', () => {
    expectDecodeError(() => parseTapback({ ...TAPBACK_DICT, msi: fromHex('0102') }), 'bad-tapback-info');
    expectDecodeError(() => parseTapback({ ...TAPBACK_DICT, msi: encodeBinaryPlist([1]) }), 'bad-tapback-info');
    expectDecodeError(() => parseTapback({ ...TAPBACK_DICT, msi: encodeBinaryPlist({ ams: 'x' }) }), 'missing-key');
    expectDecodeError(() => parseTapback({ ...TAPBACK_DICT, amrln: -1 }), 'bad-field');
    expectDecodeError(() => parseTapback({ ...TAPBACK_DICT, amk: 5 }), 'bad-field');
    const { amt: _amt, ...noAmt } = TAPBACK_DICT;
    expectDecodeError(() => parseTapback(noAmt), 'missing-key');
  });

  it('survives random dicts and bytes with DecodeError only', async () => {
    const keys = ['amt', 'amk', 'amrlc', 'amrln', 'ame', 'msi', 't', 'p', 'gid', 'gv', 'pv', 'v', 'n'];
    for (const arb of [dictOver(keys), patched(TAPBACK_DICT)]) {
      fc.assert(
        fc.property(arb, (d) => {
          const t = onlyDecodeError(() => parseTapback(d));
          if (t) expect(parseTapback(buildTapback(t))).toEqual(t);
        }),
        RUNS,
      );
    }
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 120 }), async (b) => void (await onlyDecodeErrorAsync(() => decodeTapback(b)))),
      { numRuns: 100 },
    );
  });
});
