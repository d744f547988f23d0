// The headless Cerulean client: the same lib/client the PWA uses, with a file store and `ws` as its WebSocket,
// through a bridge like the browser. `tsx cli/main.ts --help` lists the commands. Machine-readable results go to
// stdout as JSON lines; questions and progress go to stderr.
import { WebSocket } from 'ws';
import { nodeKeyVault } from './key-vault';
import { parseOptions, UsageError, USAGE, type CliOptions } from './options';
import { Prompter } from './prompt';
import { CeruleanClient } from '../lib/client/client';
import { participantSet } from '../lib/client/chats';
import type { ClientEvents } from '../lib/client/events';
import type { RegisterResult } from '../lib/client/registration';
import { toHex } from '../lib/codec/bytes';
import { CeruleanError } from '../lib/errors';
import { identifierToUri } from '../lib/imessage/group';
import type { ChatRecord, MessageStatus } from '../lib/store/types';
import { openFileStore } from '../lib/store-node/file-store';

/** How long `send` waits for the server to take the message. */
const SEND_TIMEOUT_MS = 60_000;
const EVENTS: readonly (keyof ClientEvents)[] = ['message', 'update', 'status', 'typing', 'chat', 'security', 'connection', 'registration', 'error'];

function print(value: unknown): void {
  process.stdout.write(
    `${JSON.stringify(value, (_k, v: unknown) => (v instanceof Uint8Array ? toHex(v) : typeof v === 'bigint' ? v.toString() : v))}\n`,
  );
}

function say(line: string): void {
  process.stderr.write(`${line}\n`);
}

async function main(argv: string[]): Promise<number> {
  let o: CliOptions;
  try {
    o = await parseOptions(argv, process.env);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    if (e.message) say(`error: ${e.message}\n`);
    say(USAGE);
    return 2;
  }
  const store = await openFileStore({ dir: o.dataDir, vault: nodeKeyVault(o.passphrase) });
  const client = await CeruleanClient.open({ ...o.client, WebSocketImpl: WebSocket, store });
  const prompt = new Prompter();
  try {
    switch (o.command) {
      case 'register':
        return await register(client, o, prompt);
      case 'send':
        return await send(client, o.positionals);
      case 'listen':
        return await listen(client);
      case 'devices':
        return await devices(client, o.refresh);
    }
  } catch (e) {
    say(e instanceof CeruleanError ? `error: ${e.code}: ${e.message}` : `error: ${e instanceof Error ? e.stack : String(e)}`);
    return 1;
  } finally {
    prompt.close();
    await client.close();
    await store.close();
  }
}

async function register(client: CeruleanClient, o: CliOptions, prompt: Prompter): Promise<number> {
  let result: RegisterResult;
  if (o.appleId !== undefined) {
    const username = o.appleId;
    const password = o.password ?? (await prompt.ask('Apple ID password: '));
    if (!password) throw new UsageError('no password given');
    result = await client.register({ appleId: { username, password, ...(o.code !== undefined ? { code: o.code } : {}) } });
    if (result.status === 'second-factor-required') {
      const code = await prompt.ask('Enter the 6-digit code shown on your trusted devices: ');
      if (!code) throw new UsageError('no code given');
      result = await client.register({ appleId: { username, password, code } });
    }
  } else if (o.regResp !== undefined) {
    result = await client.register({ phone: { regResp: o.regResp } });
  } else {
    const request = await client.register({ phone: o.mccMnc !== undefined ? { mccMnc: o.mccMnc } : {} });
    if (request.status !== 'sms-required') return finish(request);
    print({ regReq: request.text, gateway: request.gateway ?? null });
    say(`Send this text by SMS from the phone to ${request.gateway ?? "your carrier's registration gateway"}:\n  ${request.text}`);
    const answer = await prompt.ask('Then paste the REG-RESP text that comes back: ');
    if (!answer) {
      say('No answer read; run `register --phone --reg-resp "<REG-RESP text>"` once it arrives.');
      return 3;
    }
    result = await client.register({ phone: { regResp: answer } });
  }
  return finish(result);
}

function finish(result: RegisterResult): number {
  print(result);
  if (result.status === 'registered') return 0;
  say(result.status === 'bad-credentials' ? 'The Apple ID or password is wrong.' : `Registration stopped at: ${result.status}`);
  return 1;
}

async function send(client: CeruleanClient, positionals: string[]): Promise<number> {
  const text = positionals[positionals.length - 1]!;
  const handles = positionals.slice(0, -1).map(identifierToUri);
  await client.start();
  const chat = handles.length === 1 ? await client.chatWith(handles[0]!) : await groupWith(client, handles);
  const outcomes = new Map<string, MessageStatus>();
  let notify: () => void = () => {};
  const off = client.on('status', (s) => {
    outcomes.set(s.uuid, s.status);
    notify();
  });
  try {
    const message = await client.sendText(chat.id, text);
    const status = await new Promise<MessageStatus | 'timeout'>((resolve) => {
      const timer = setTimeout(() => resolve('timeout'), SEND_TIMEOUT_MS);
      notify = () => {
        const s = outcomes.get(message.uuid);
        if (s && s !== 'sending') {
          clearTimeout(timer);
          resolve(s);
        }
      };
      notify();
    });
    print({ uuid: message.uuid, chatId: chat.id, status });
    return status === 'failed' || status === 'timeout' ? 1 : 0;
  } finally {
    off();
  }
}

/** The existing group with exactly these members, or a new one. */
async function groupWith(client: CeruleanClient, handles: string[]): Promise<ChatRecord> {
  const members = participantSet([...handles, client.handles[0]!]);
  const existing = (await client.chats()).find((c) => c.isGroup && c.participants.join('\n') === members.join('\n'));
  return existing ?? client.createGroup(handles);
}

async function listen(client: CeruleanClient): Promise<number> {
  for (const type of EVENTS) client.on(type, (event) => print({ event: type, ...event }));
  await client.start();
  say(`Listening as ${client.handles.join(', ')}; Ctrl-C to stop.`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  return 0;
}

async function devices(client: CeruleanClient, refresh: boolean): Promise<number> {
  if (refresh) await client.start();
  print(await client.devices({ refresh }));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    say(`error: ${e instanceof Error ? e.stack : String(e)}`);
    process.exit(1);
  },
);
