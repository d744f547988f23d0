import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fromHex, toHex } from '../../../lib/codec/bytes';
import type { PlistDict } from '../../../lib/codec/plist';
import { buildEdit, decodeEdit, editMessage, editParts, encodeEdit, parseEdit, unsendMessage } from '../../../lib/imessage/edit';
import { RUNS, dictOver, expectDecodeError, onlyDecodeError, onlyDecodeErrorAsync, patched } from './arbitraries';

const MSG = '0A1B2C3D-4E5F-4061-8293-A4B5C6D7E8F9';

const EDIT_DICT: PlistDict = {
  emg: MSG,
  epi: 0,
  et: 1,
  epb: '<html><body><span message-part="0">new &amp; improved</span></body></html>',
  t: 'new & improved',
  v: '1',
};
const UNSEND_DICT: PlistDict = { emg: MSG, epi: 1, et: 2, rs: true, v: '1' };

// python3: plistlib.dumps(EDIT_DICT, fmt=FMT_BINARY, sort_keys=False).hex() with the dict above.
const EDIT_HEX =
  '62706c6973743030d60102030405060708090a0b0c53656d675365706952657453657062517451765f102430413142324333442d344535462d343036312d' +
  '383239332d413442354336443745384639100010015f104a3c68746d6c3e3c626f64793e3c7370616e206d6573736167652d706172743d2230223e6e65' +
  '772026616d703b20696d70726f7665643c2f7370616e3e3c2f626f64793e3c2f68746d6c3e5e6e6577202620696d70726f76656451310815191d202426' +
  '284f5153a0af0000000000000101000000000000000d000000000000000000000000000000b1';
// python3: plistlib.dumps(UNSEND_DICT, fmt=FMT_BINARY, sort_keys=False).hex()
const UNSEND_HEX =
  '62706c6973743030d50102030405060708090a53656d675365706952657452727351765f102430413142324333442d344535462d343036312d383239332d' +
  '413442354336443745384639100110020951310813171b1e21234a4c4e4f0000000000000101000000000000000b00000000000000000000000000000051';

describe('edit / unsend (c:118)', () => {
  it('builds the fixed dicts and exact plistlib bytes', async () => {
    const edit = editMessage({ targetUuid: MSG, part: 0, text: 'new & improved' });
    const unsend = unsendMessage({ targetUuid: MSG, part: 1 });
    expect(buildEdit(edit)).toEqual(EDIT_DICT);
    expect(Object.keys(buildEdit(edit))).toEqual(Object.keys(EDIT_DICT));
    expect(buildEdit(unsend)).toEqual(UNSEND_DICT);
    expect(toHex(await encodeEdit(edit))).toBe(EDIT_HEX);
    expect(toHex(await encodeEdit(unsend))).toBe(UNSEND_HEX);
    expect(await decodeEdit(fromHex(EDIT_HEX))).toEqual(edit);
    expect(await decodeEdit(fromHex(UNSEND_HEX))).toEqual(unsend);
    expect(await decodeEdit(await encodeEdit(edit, { gzip: true }))).toEqual(edit);
    expect(editParts(edit)).toEqual([{ kind: 'text', part: 0, text: 'new & improved' }]);
  });

  it('keeps unknown keys', () => {
    for (const base of [EDIT_DICT, UNSEND_DICT]) {
      const dict = { ...base, zz: fromHex('00ff') };
      const e = parseEdit(dict);
      expect(e.extra).toEqual({ zz: fromHex('00ff') });
      expect(buildEdit(e)).toEqual(dict);
    }
  });

  it('rejects bad input', () => {
    expectDecodeError(() => parseEdit({ ...EDIT_DICT, et: 3 }), 'unknown-edit-type');
    expectDecodeError(() => parseEdit({ ...EDIT_DICT, epi: -1 }), 'bad-field');
    expectDecodeError(() => parseEdit({ ...EDIT_DICT, emg: fromHex('00') }), 'bad-field');
    expectDecodeError(() => parseEdit({ ...UNSEND_DICT, rs: 'yes' }), 'bad-field');
    const { epb: _epb, ...noBody } = EDIT_DICT;
    expectDecodeError(() => parseEdit(noBody), 'missing-key');
    const { et: _et, ...noType } = EDIT_DICT;
    expectDecodeError(() => parseEdit(noType), 'missing-key');
  });

  it('survives random dicts and bytes with DecodeError only', async () => {
    for (const arb of [dictOver(['emg', 'epi', 'et', 'epb', 't', 'v', 'rs']), patched(EDIT_DICT), patched(UNSEND_DICT)]) {
      fc.assert(
        fc.property(arb, (d) => {
          const e = onlyDecodeError(() => parseEdit(d));
          if (e) expect(parseEdit(buildEdit(e))).toEqual(e);
        }),
        RUNS,
      );
    }
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 120 }), async (b) => void (await onlyDecodeErrorAsync(() => decodeEdit(b)))),
      { numRuns: 100 },
    );
  });
});
