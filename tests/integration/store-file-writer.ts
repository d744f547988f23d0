// Child process for the file store's crash test: saves messages, outbox items and counters as fast as it can with
// many commits in flight, and prints each one only after its promise resolved. The parent kills it with SIGKILL.
import { subtle } from '../../lib/crypto/subtle';
import { passphraseKeyVault } from '../../lib/store/key-vault';
import { openFileStore } from '../../lib/store-node/file-store';

const [dir, round] = process.argv.slice(2);
if (!dir || !round) throw new Error('usage: store-file-writer <dir> <round>');
// A small compaction threshold so kills also land while a snapshot is written and the journal emptied.
const store = await openFileStore({ dir, vault: passphraseKeyVault('crash test', { iterations: 1000 }), compactAfterBytes: 30_000 });
const chatId = 'crash-chat';
if (!(await store.accounts.get('me'))) {
  const authKey = (await subtle().generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  await store.accounts.put({
    id: 'me',
    userIds: ['P:me'],
    handles: ['mailto:me@example.com'],
    authKey,
    authCertificates: [],
    idCertificates: [],
    createdAt: 1,
    updatedAt: 1,
  });
  await store.chats.upsert({ id: chatId, participants: ['mailto:me@example.com', 'tel:+15550001111'] }, 1);
  process.stdout.write('account\n');
}

let n = 0;
async function worker(): Promise<void> {
  for (;;) {
    const i = n++;
    const uuid = `2000000${round}-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
    await store.messages.saveIncoming({ uuid, chatId, sender: 'tel:+15550001111', fromMe: false, time: i, text: `message ${i}` });
    process.stdout.write(`message ${uuid}\n`);
    if (i % 4 === 0) {
      const item = await store.outbox.enqueue({ id: `${round}-${i}`, kind: 'receipt', payload: { i } });
      process.stdout.write(`outbox ${item.id}\n`);
      process.stdout.write(`counter ${await store.counters.next('channel')}\n`);
    }
  }
}

for (let w = 0; w < 8; w++) void worker();
