import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fromHex, toHex } from '../../../lib/codec/bytes';
import type { PlistDict } from '../../../lib/codec/plist';
import {
  buildGroupChange,
  changeMembers,
  decodeGroupChange,
  encodeGroupChange,
  identifierToUri,
  parseGroupChange,
  removeGroupAvatar,
  renameGroup,
  uriToIdentifier,
} from '../../../lib/imessage/group';
import { RUNS, dictOver, expectDecodeError, onlyDecodeError, onlyDecodeErrorAsync, patched } from './arbitraries';

const GID = 'E4D7C2A2-8B9C-4E57-9C3E-0F1A2B3C4D5E';
const URIS = ['mailto:a@x.com', 'tel:+15551230000'];
const IDS = ['a@x.com', '+15551230000'];

const RENAME_DICT: PlistDict = { type: 'n', nn: 'Pals', n: 'Pals', old: 'Old', sp: IDS, gv: '8', gid: GID };
const MEMBERS_DICT: PlistDict = { type: 'p', sp: IDS, tp: [...IDS, 'c@y.org'], pv: 3, gv: '8', gid: GID };
const AVATAR_DICT: PlistDict = { type: 'v', vt: 'ngp', pv: 4, sp: IDS, gid: GID, gv: '8' };

// Each: python3 plistlib.dumps(<the dict above>, fmt=plistlib.FMT_BINARY, sort_keys=False).hex()
const RENAME_HEX =
  '62706c6973743030d701020304050607030808090a0d0e5474797065526e6e516e536f6c64527370526776536769645450616c73534f6c64a20b0c576140' +
  '782e636f6d5c2b313535353132333030303051385f102445344437433241322d384239432d344535372d394333452d30463141324233433444354508171c' +
  '1f2125282b2f34383b4350520000000000000101000000000000000f00000000000000000000000000000079';
const MEMBERS_HEX =
  '62706c6973743030d601020304050607080b0d0e0f5474797065527370527470527076526776536769645170a2090a576140782e636f6d5c2b3135353531' +
  '323330303030a3090a0c576340792e6f7267100351385f102445344437433241322d384239432d344535372d394333452d30463141324233433444354508' +
  '151a1d2023262a2c2f374448505254000000000000010100000000000000100000000000000000000000000000007b';
const AVATAR_HEX =
  '62706c6973743030d60102030405060708090a0d0e5474797065527674527076527370536769645267765176536e67701004a20b0c576140782e636f6d5c' +
  '2b31353535313233303030305f102445344437433241322d384239432d344535372d394333452d304631413242334334443545513808151a1d2023272a2c' +
  '3032353d4a710000000000000101000000000000000f00000000000000000000000000000073';

describe('group changes (c:190)', () => {
  it('converts bare identifiers and URIs', () => {
    expect(identifierToUri('a@x.com')).toBe('mailto:a@x.com');
    expect(identifierToUri('+15551230000')).toBe('tel:+15551230000');
    expect(identifierToUri('mailto:a@x.com')).toBe('mailto:a@x.com');
    expect(uriToIdentifier('mailto:a@x.com')).toBe('a@x.com');
    expect(uriToIdentifier('TEL:+1555')).toBe('+1555');
    expect(uriToIdentifier('a@x.com')).toBe('a@x.com');
  });

  it('rename: fixed dict and plistlib bytes', async () => {
    const g = renameGroup({ groupId: GID, participants: URIS, newName: 'Pals', oldName: 'Old' });
    expect(buildGroupChange(g)).toEqual(RENAME_DICT);
    expect(Object.keys(buildGroupChange(g))).toEqual(Object.keys(RENAME_DICT));
    expect(toHex(await encodeGroupChange(g))).toBe(RENAME_HEX);
    expect(await decodeGroupChange(fromHex(RENAME_HEX))).toEqual(g);
  });

  it('members: fixed dict and plistlib bytes', async () => {
    const g = changeMembers({ groupId: GID, participants: URIS, newParticipants: [...URIS, 'mailto:c@y.org'], propertiesVersion: 3 });
    expect(buildGroupChange(g)).toEqual(MEMBERS_DICT);
    expect(toHex(await encodeGroupChange(g))).toBe(MEMBERS_HEX);
    expect(await decodeGroupChange(fromHex(MEMBERS_HEX))).toEqual(g);
  });

  it('avatar removed: fixed dict and plistlib bytes', async () => {
    const g = removeGroupAvatar({ groupId: GID, participants: URIS, propertiesVersion: 4 });
    expect(buildGroupChange(g)).toEqual(AVATAR_DICT);
    expect(toHex(await encodeGroupChange(g))).toBe(AVATAR_HEX);
    expect(await decodeGroupChange(fromHex(AVATAR_HEX))).toEqual(g);
  });

  it('avatar set keeps the transfer dict and unknown keys', () => {
    const tv: PlistDict = { IMFileTransferFilenameKey: 'GroupPhotoImage', IMFileTransferLocalUserInfoKey: { 'file-size': '12' } };
    const dict: PlistDict = { type: 'v', tv, pv: 5, sp: IDS, gid: GID, n: 'Pals', gv: '8', zz: 1 };
    const g = parseGroupChange(dict);
    expect(g).toMatchObject({ kind: 'avatar-set', transfer: tv, participants: URIS, groupName: 'Pals', extra: { zz: 1 } });
    expect(buildGroupChange(g)).toEqual(dict);
    const rename = parseGroupChange({ ...RENAME_DICT, pv: 2, extra1: 'x' });
    expect(buildGroupChange(rename)).toEqual({ ...RENAME_DICT, pv: 2, extra1: 'x' });
  });

  it('rejects bad input', () => {
    expectDecodeError(() => parseGroupChange({ ...RENAME_DICT, type: 'z' }), 'unknown-group-change');
    expectDecodeError(() => parseGroupChange({ ...RENAME_DICT, sp: 'a@x.com' }), 'bad-field');
    expectDecodeError(() => parseGroupChange({ ...MEMBERS_DICT, tp: [1] }), 'bad-field');
    expectDecodeError(() => parseGroupChange({ ...AVATAR_DICT, tv: 'x' }), 'bad-field');
    const { nn: _nn, ...noName } = RENAME_DICT;
    expectDecodeError(() => parseGroupChange(noName), 'missing-key');
    const { gid: _gid, ...noGid } = MEMBERS_DICT;
    expectDecodeError(() => parseGroupChange(noGid), 'missing-key');
  });

  it('survives random dicts and bytes with DecodeError only', async () => {
    const keys = ['type', 'nn', 'n', 'old', 'sp', 'tp', 'gv', 'gid', 'pv', 'vt', 'tv'];
    for (const arb of [dictOver(keys), patched(RENAME_DICT), patched(MEMBERS_DICT), patched(AVATAR_DICT)]) {
      fc.assert(
        fc.property(arb, (d) => {
          const g = onlyDecodeError(() => parseGroupChange(d));
          if (g) expect(parseGroupChange(buildGroupChange(g))).toEqual(g);
        }),
        RUNS,
      );
    }
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 120 }), async (b) => void (await onlyDecodeErrorAsync(() => decodeGroupChange(b)))),
      { numRuns: 100 },
    );
  });
});
