// A made-up schema version 2 for the upgrade tests of every store: it adds an index on messages.sender and a
// `pinned: false` field to every stored message. The same v1 data is written and checked for each back end.
import { expect } from 'vitest';
import { directChatId } from '../../../lib/store/chat-id';
import { SCHEMA, type SchemaVersion } from '../../../lib/store/schema';
import type { ClientStore } from '../../../lib/store/types';

const v1 = SCHEMA[0]!;

export const V2: SchemaVersion = {
  version: 2,
  tables: {
    ...v1.tables,
    messages: { ...v1.tables.messages!, indexes: [...v1.tables.messages!.indexes, { name: 'by-sender', keyPath: 'sender' }] },
  },
  upgrade: { messages: (row) => ({ ...row, pinned: false }) },
};

export const withPinned: readonly SchemaVersion[] = [v1, V2];

/** A v2 whose record rewrite throws: the upgrade must fail and leave the data at v1. */
export const withBrokenUpgrade: readonly SchemaVersion[] = [
  v1,
  {
    ...V2,
    upgrade: {
      messages: () => {
        throw new Error('boom');
      },
    },
  },
];

const chatId = directChatId(['mailto:me@example.com', 'tel:+15550001111']);
const uuids = ['10000000-0000-4000-8000-000000000001', '10000000-0000-4000-8000-000000000002', '10000000-0000-4000-8000-000000000003'];

export const upgradeFixture = {
  chatId,
  uuids,
  async write(store: ClientStore): Promise<void> {
    await store.chats.upsert({ id: chatId, participants: ['mailto:me@example.com', 'tel:+15550001111'] }, 1);
    for (const [i, uuid] of uuids.entries()) {
      await store.messages.saveIncoming({ uuid, chatId, sender: 'tel:+15550001111', fromMe: false, time: 10 + i, text: `m${i}` });
    }
  },
  /** The v1 data is all there; `upgraded` says whether the v2 rewrite ran on it. */
  async check(store: ClientStore, upgraded: boolean): Promise<void> {
    const list = await store.messages.list(chatId);
    expect(list.map((m) => m.uuid)).toEqual(uuids);
    for (const m of list) expect((m as { pinned?: boolean }).pinned).toBe(upgraded ? false : undefined);
    expect((await store.chats.get(chatId))?.unreadCount).toBe(3);
  },
};
