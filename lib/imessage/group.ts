// Group metadata changes, c:190 (imessage.md §8): rename, avatar set/removed, membership. Unlike `p` in
// messages, participant lists here are bare identifiers; the model holds URIs and converts at the edge.
import type { PlistDict } from '../codec/plist';
import { DecodeError } from '../errors';
import { DictWriter, FieldReader } from './fields';
import { GROUP_VERSION } from './message';
import { decodePayload, encodePayload, type PayloadDecodeOptions, type PayloadEncodeOptions } from './payload';

const URI_SCHEME = /^(?:tel|mailto):/i;

/** Bare identifier → URI, as receivers re-add it: contains `@` → mailto:, else tel:. URIs pass through. */
export function identifierToUri(id: string): string {
  const m = URI_SCHEME.exec(id);
  if (m) return m[0].toLowerCase() + id.slice(m[0].length);
  return id.includes('@') ? `mailto:${id}` : `tel:${id}`;
}

/** URI → bare identifier (the scheme stripped); anything else passes through. */
export function uriToIdentifier(uri: string): string {
  const m = URI_SCHEME.exec(uri);
  return m ? uri.slice(m[0].length) : uri;
}

interface GroupCommon {
  /** gid */
  groupId: string;
  /** sp: current members, as URIs (bare identifiers on the wire). */
  participants: string[];
  /** gv: "8". */
  groupVersion?: string;
  /** pv: properties version, bumped on each change ⚠. */
  propertiesVersion?: number;
  /** n: group name. */
  groupName?: string;
  extra: PlistDict;
}

/** type "n". */
export interface GroupRename extends GroupCommon {
  kind: 'rename';
  /** nn */
  newName: string;
  /** old */
  oldName?: string;
}

/** type "p": membership change. A member missing from `newParticipants` was removed (or left). */
export interface GroupMembers extends GroupCommon {
  kind: 'members';
  /** tp: the new full member list, as URIs. */
  newParticipants: string[];
  /** nn */
  newName?: string;
}

/** type "v" with `tv`: the file-transfer dict of the new photo (MMCS pointer inside), kept as is. */
export interface GroupAvatarSet extends GroupCommon {
  kind: 'avatar-set';
  /** tv */
  transfer: PlistDict;
}

/** type "v" without `tv`. */
export interface GroupAvatarRemoved extends GroupCommon {
  kind: 'avatar-removed';
  /** vt: "ngp". */
  removal?: string;
}

export type GroupChange = GroupRename | GroupMembers | GroupAvatarSet | GroupAvatarRemoved;

const toIdentifiers = (uris: readonly string[]): string[] => uris.map(uriToIdentifier);

export function buildGroupChange(g: GroupChange): PlistDict {
  const w = new DictWriter();
  switch (g.kind) {
    case 'rename':
      w.set('type', 'n').set('nn', g.newName).set('n', g.groupName).set('old', g.oldName);
      w.set('sp', toIdentifiers(g.participants)).set('gv', g.groupVersion).set('gid', g.groupId).set('pv', g.propertiesVersion);
      break;
    case 'members':
      w.set('type', 'p').set('sp', toIdentifiers(g.participants)).set('tp', toIdentifiers(g.newParticipants));
      w.set('pv', g.propertiesVersion).set('gv', g.groupVersion).set('gid', g.groupId).set('n', g.groupName).set('nn', g.newName);
      break;
    case 'avatar-set':
      w.set('type', 'v').set('tv', g.transfer).set('pv', g.propertiesVersion).set('sp', toIdentifiers(g.participants));
      w.set('gid', g.groupId).set('n', g.groupName).set('gv', g.groupVersion);
      break;
    case 'avatar-removed':
      w.set('type', 'v').set('vt', g.removal).set('pv', g.propertiesVersion).set('sp', toIdentifiers(g.participants));
      w.set('gid', g.groupId).set('gv', g.groupVersion).set('n', g.groupName);
      break;
  }
  return w.finish(g.extra);
}

export function parseGroupChange(dict: PlistDict): GroupChange {
  const r = new FieldReader(dict, 'group change');
  const type = r.requiredString('type');
  const common = () => ({
    groupId: r.requiredString('gid'),
    participants: r.requiredStrings('sp').map(identifierToUri),
    groupVersion: r.string('gv'),
    propertiesVersion: r.int('pv'),
    groupName: r.string('n'),
  });
  if (type === 'n') {
    const c = common();
    return { kind: 'rename', newName: r.requiredString('nn'), oldName: r.string('old'), ...c, extra: r.extra() };
  }
  if (type === 'p') {
    const c = common();
    const newParticipants = r.requiredStrings('tp').map(identifierToUri);
    return { kind: 'members', newParticipants, newName: r.string('nn'), ...c, extra: r.extra() };
  }
  if (type === 'v') {
    const c = common();
    const transfer = r.dict('tv');
    if (transfer !== undefined) return { kind: 'avatar-set', transfer, ...c, extra: r.extra() };
    return { kind: 'avatar-removed', removal: r.string('vt'), ...c, extra: r.extra() };
  }
  throw new DecodeError('unknown-group-change', `group change type "${type}" is not n, p or v`);
}

export async function encodeGroupChange(g: GroupChange, options?: PayloadEncodeOptions): Promise<Uint8Array> {
  return encodePayload(buildGroupChange(g), options);
}

export async function decodeGroupChange(bytes: Uint8Array, options?: PayloadDecodeOptions): Promise<GroupChange> {
  return parseGroupChange(await decodePayload(bytes, options));
}

interface GroupTarget {
  groupId: string;
  /** Current members (URIs), sender included. */
  participants: string[];
}

export function renameGroup(o: GroupTarget & { newName: string; oldName?: string }): GroupRename {
  return {
    kind: 'rename',
    newName: o.newName,
    groupName: o.newName,
    oldName: o.oldName,
    participants: o.participants,
    groupVersion: GROUP_VERSION,
    groupId: o.groupId,
    extra: {},
  };
}

/** Send it to the union of old and new members (§8). */
export function changeMembers(
  o: GroupTarget & { newParticipants: string[]; propertiesVersion: number; groupName?: string },
): GroupMembers {
  return {
    kind: 'members',
    participants: o.participants,
    newParticipants: o.newParticipants,
    propertiesVersion: o.propertiesVersion,
    groupVersion: GROUP_VERSION,
    groupId: o.groupId,
    groupName: o.groupName,
    extra: {},
  };
}

export function removeGroupAvatar(o: GroupTarget & { propertiesVersion: number; groupName?: string }): GroupAvatarRemoved {
  return {
    kind: 'avatar-removed',
    removal: 'ngp',
    propertiesVersion: o.propertiesVersion,
    participants: o.participants,
    groupId: o.groupId,
    groupVersion: GROUP_VERSION,
    groupName: o.groupName,
    extra: {},
  };
}
