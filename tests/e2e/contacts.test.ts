// Contacts: a vCard file (name, an e-mail address that is a sandbox user's handle, a PNG photo) imported in the
// Contacts screen names that person in the chat list and the conversation, with the photo; and the contact never
// leaves the device: no HTTP request and no WebSocket frame the page sends from the import on carries the name.
import { crc32, deflateSync } from 'node:zlib';
import type { Page } from 'playwright';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type E2eHarness } from './harness';
import { messageWithText, onboardAppleId, openChat, send, startChat, WAIT } from './onboarding-helpers';

const ALICE = { appleId: 'alice@example.com', password: 'alice-password' };
const BOB = { appleId: 'bob@example.com', password: 'bob-password' };
const NAME = 'Roberta Quillfeather';

/** A `size`×`size` opaque RGB PNG of one colour: small enough for a vCard, real enough for the browser to decode. */
function solidPng(size: number, rgb: [number, number, number]): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), body.length + 4);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array.from({ length: size }, () => rgb).flat())]);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.concat(Array.from({ length: size }, () => row)))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const VCARD = [
  'BEGIN:VCARD',
  'VERSION:3.0',
  `FN:${NAME}`,
  'N:Quillfeather;Roberta;;;',
  `EMAIL;TYPE=INTERNET:${BOB.appleId}`,
  `PHOTO;ENCODING=b;TYPE=PNG:${solidPng(4, [10, 132, 255]).toString('base64')}`,
  'END:VCARD',
  // No phone number or e-mail address: nothing to show it for, so it is skipped.
  'BEGIN:VCARD',
  'VERSION:3.0',
  'FN:Nobody Reachable',
  'END:VCARD',
  '',
].join('\r\n');

/** The natural size of the first <img> inside `scope` once it has loaded (0×0 when it did not decode). */
const imageSize = (page: Page, testId: string) =>
  page.getByTestId(testId).first().locator('img').first().evaluate(async (img: HTMLImageElement) => {
    await img.decode().catch(() => undefined);
    return { src: img.src.slice(0, 5), width: img.naturalWidth, height: img.naturalHeight };
  });

describe('contacts', () => {
  let h: E2eHarness;
  let alice: Page;
  let bob: Page;
  const outgoing: string[] = [];
  let framesSent = 0;

  beforeAll(async () => {
    h = await startHarness();
    for (const a of [ALICE, BOB]) await h.admin.createAccount(a.appleId, a.password, { twoFactor: true });
    [alice, bob] = await Promise.all([h.newPage(), h.newPage()]);
    // Everything Alice's browser sends, before its first connection opens: requests (the service worker's
    // included) and WebSocket frames (every tunnel through the bridge).
    alice.context().on('request', (req) => outgoing.push(`${req.method()} ${req.url()}\n${req.postData() ?? ''}`));
    alice.on('websocket', (ws) =>
      ws.on('framesent', ({ payload }) => {
        framesSent++;
        outgoing.push(typeof payload === 'string' ? payload : payload.toString('latin1'));
      }),
    );
    await Promise.all([onboardAppleId(h, alice, ALICE), onboardAppleId(h, bob, BOB)]);
    await startChat(alice, [BOB.appleId]);
    await send(alice, 'Hi Bob, before you had a name');
    await openChat(bob);
    await messageWithText(bob, 'before you had a name').waitFor(WAIT);
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('imports a vCard with a photo and lists the contact', async () => {
    await alice.getByTestId('nav-contacts').click();
    await alice.getByTestId('contacts-import-vcard').setInputFiles({ name: 'roberta.vcf', mimeType: 'text/vcard', buffer: Buffer.from(VCARD, 'utf8') });
    await alice.getByText(/Imported roberta\.vcf: 1 added, 0 updated, 1 skipped/).waitFor(WAIT);
    const rows = alice.getByTestId('contact-row');
    await expect.poll(() => rows.count(), WAIT).toBe(1);
    expect(await rows.innerText()).toContain(NAME);
    expect(await rows.innerText()).toContain(BOB.appleId);
    expect(await imageSize(alice, 'contact-row')).toEqual({ src: 'blob:', width: 4, height: 4 });
    await h.screenshot(alice, 'contacts');
  });

  it('shows the contact name and photo instead of the handle in the chat list and the conversation', async () => {
    await alice.getByTestId('nav-chats').click();
    const row = alice.getByTestId('chat-row').first();
    await expect.poll(() => row.getByTestId('chat-row-name').innerText(), WAIT).toContain(NAME);
    expect(await row.getByTestId('chat-row-name').innerText()).not.toContain(BOB.appleId);
    expect(await imageSize(alice, 'chat-row')).toEqual({ src: 'blob:', width: 4, height: 4 });

    await row.click();
    await expect.poll(() => alice.getByTestId('conversation-title').innerText(), WAIT).toContain(NAME);
    // A new message both ways after the import: traffic that could have carried the name, had anything sent it.
    await send(alice, 'Now you have a name');
    await send(bob, 'Glad to be in your contacts');
    await messageWithText(alice, 'Glad to be in your contacts').waitFor(WAIT);
    await alice.reload();
    await alice.getByTestId('nav-chats').click();
    await expect.poll(() => alice.getByTestId('chat-row-name').first().innerText(), WAIT).toContain(NAME);
    await h.screenshot(alice, 'contacts-chat-list');
  });

  it('never sends the contact anywhere', async () => {
    expect(framesSent).toBeGreaterThan(0);
    expect(outgoing.length).toBeGreaterThan(framesSent);
    for (const needle of [NAME, 'Quillfeather', encodeURIComponent(NAME)]) {
      expect(outgoing.filter((o) => o.includes(needle))).toEqual([]);
    }
    expect(h.pageErrors).toEqual([]);
  });
});
