// What the outbox holds and how each kind of item goes out through the engine. Items carry their own `U`, so a
// retry repeats the same send; the chat's members are read when the item is sent, so a member added meanwhile gets
// it too (a membership change carries its before and after lists instead). The server's answers decide whether an
// item is done (see judge()).
import { Command } from '../imessage/commands';
import { buildEdit, editMessage, unsendMessage } from '../imessage/edit';
import { buildGroupChange, changeMembers, renameGroup } from '../imessage/group';
import { parseThreadOrigin } from '../imessage/message';
import { chatParticipants, SendError, type MessageSender, type SendResult } from '../imessage/sender';
import { buildTapback, tapback, type TapbackReaction } from '../imessage/tapback';
import type { ChatRecord, ClientStore, MessageRecord } from '../store/types';
import { conversationGid, isSameHandle } from './chats';
import type { OutboxOutcome } from './outbox';

/** One outbox item's payload. `uuid` is the envelope's `U`; for a read receipt, the message read up to. */
export type OutgoingPayload =
  | { kind: 'text'; uuid: string; chatId: string; text: string; replyTo?: string }
  | { kind: 'tapback'; uuid: string; chatId: string; target: string; part: number; reaction: TapbackReaction; remove: boolean; quotedText: string; emoji?: string }
  | { kind: 'edit'; uuid: string; chatId: string; target: string; part: number; text: string }
  | { kind: 'unsend'; uuid: string; chatId: string; target: string; part: number }
  | { kind: 'read'; uuid: string; chatId: string }
  | { kind: 'rename'; uuid: string; chatId: string; name: string; oldName?: string }
  /** `participants` are the members before the change, `newParticipants` after it; it goes to both. */
  | { kind: 'members'; uuid: string; chatId: string; participants: string[]; newParticipants: string[]; propertiesVersion: number };

export interface OutgoingContext {
  sender: MessageSender;
  chat: ChatRecord;
  /** The own handle the chat is with. */
  senderUri: string;
  ownHandles: readonly string[];
}

export async function sendOutgoing(p: OutgoingPayload, ctx: OutgoingContext): Promise<OutboxOutcome> {
  const { sender, chat, senderUri } = ctx;
  const participants = chat.participants;
  const groupId = conversationGid(chat);
  const named = chat.name !== undefined ? { groupName: chat.name } : {};
  // Who must accept it: the chat's members, or for a membership change everyone before and after.
  let addressed: readonly string[] = participants;
  let result: SendResult;
  try {
    switch (p.kind) {
      case 'text':
        result = await sender.sendText({
          senderUri,
          participants,
          groupId,
          ...named,
          text: p.text,
          uuid: p.uuid,
          ...(p.replyTo ? { replyTo: parseThreadOrigin(p.replyTo) } : {}),
        });
        break;
      case 'tapback': {
        const payload = buildTapback(
          tapback({
            participants: chatParticipants(senderUri, participants),
            groupId,
            ...named,
            reaction: p.reaction,
            remove: p.remove,
            target: { kind: 'part', part: p.part, uuid: p.target },
            quotedText: p.quotedText,
            ...(p.emoji !== undefined ? { emoji: p.emoji } : {}),
          }),
        );
        result = await sender.send({ command: Command.Message, senderUri, participants, uuid: p.uuid, payload });
        break;
      }
      case 'edit':
      case 'unsend': {
        const change =
          p.kind === 'edit' ? editMessage({ targetUuid: p.target, part: p.part, text: p.text }) : unsendMessage({ targetUuid: p.target, part: p.part });
        result = await sender.send({ command: Command.EditUnsend, senderUri, participants, uuid: p.uuid, payload: buildEdit(change), deliveryReceipts: 'none' });
        break;
      }
      case 'read':
        result = await sender.sendReadReceipt({ senderUri, participants, uuid: p.uuid });
        break;
      case 'rename': {
        const members = chatParticipants(senderUri, participants);
        const change = renameGroup({ groupId, participants: members, newName: p.name, ...(p.oldName !== undefined ? { oldName: p.oldName } : {}) });
        result = await sender.send({ command: Command.GroupChange, senderUri, participants: members, uuid: p.uuid, payload: buildGroupChange(change), deliveryReceipts: 'none' });
        break;
      }
      case 'members': {
        // Removed members must hear they were removed, added ones that they were added (imessage.md §8).
        addressed = chatParticipants(senderUri, [...p.participants, ...p.newParticipants]);
        const change = changeMembers({
          groupId,
          participants: p.participants,
          newParticipants: p.newParticipants,
          propertiesVersion: p.propertiesVersion,
          ...named,
        });
        result = await sender.send({ command: Command.GroupChange, senderUri, participants: [...addressed], uuid: p.uuid, payload: buildGroupChange(change), deliveryReceipts: 'none' });
        break;
      }
      default:
        return { kind: 'fail', error: 'unknown-outbox-item' };
    }
  } catch (e) {
    if (e instanceof SendError) return { kind: 'fail', error: e.code };
    throw e;
  }
  return judge(result, senderUri, addressed, ctx.ownHandles, p.kind === 'read');
}

/**
 * Sent when every other participant that has devices got it on at least one (c:255 status 0), as [BG] judges it.
 * Commands sent without response (`nr`) count as sent once they are out.
 */
export function judge(result: SendResult, senderUri: string, participants: readonly string[], ownHandles: readonly string[], noResponse: boolean): OutboxOutcome {
  if (noResponse) return { kind: 'done' };
  const others = participants.filter((h) => !isSameHandle(h, senderUri) && !ownHandles.some((o) => isSameHandle(o, h)));
  const missing = others.filter((h) => {
    const devices = result.results.filter((r) => isSameHandle(r.uri, h));
    return devices.length > 0 && !devices.some((r) => r.status === 0);
  });
  if (missing.length === 0) return { kind: 'done' };
  const statuses = [...new Set(result.results.filter((r) => r.status !== 0).map((r) => r.status ?? r.error ?? 'no-ack'))];
  return { kind: 'retry', error: `not accepted for ${missing.length} participant(s): ${statuses.join(',')}` };
}

/** The current text of one part of a message (its latest edit, if any). */
export function partText(m: MessageRecord, part: number): string {
  const edited = [...m.edits].reverse().find((e) => e.part === part);
  if (edited) return edited.text;
  const p = m.parts?.find((x) => x.kind === 'text' && x.part === part);
  if (p && p.kind === 'text') return p.text;
  return part === 0 ? (m.text ?? '') : '';
}

const PROPERTIES_VERSION_PREFIX = 'client/group-pv/';

/**
 * A group's properties version (`pv`), bumped by every membership change sent from here and raised to any higher
 * one received, so the next change this device sends counts on from what the group has seen ⚠ (imessage.md §8).
 */
export async function nextPropertiesVersion(store: ClientStore, chatId: string): Promise<number> {
  const next = (await propertiesVersion(store, chatId)) + 1;
  await store.kv.set(PROPERTIES_VERSION_PREFIX + chatId, next);
  return next;
}

export async function notePropertiesVersion(store: ClientStore, chatId: string, pv: number): Promise<void> {
  if (Number.isSafeInteger(pv) && pv > (await propertiesVersion(store, chatId))) await store.kv.set(PROPERTIES_VERSION_PREFIX + chatId, pv);
}

async function propertiesVersion(store: ClientStore, chatId: string): Promise<number> {
  const v = await store.kv.get(PROPERTIES_VERSION_PREFIX + chatId);
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : 0;
}
