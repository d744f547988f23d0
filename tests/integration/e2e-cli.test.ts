// The headless client as a person or a script uses it: `tsx cli/main.ts` processes against the sandbox through the
// bridge. Alice registers with her Apple ID (the 2FA code typed at the prompt), Bob with his phone (the REG-REQ it
// prints goes to the sandbox's SMS gateway, the REG-RESP is typed back), Bob listens, Alice sends, Bob's listener
// prints the message as a JSON line, and Alice lists her devices.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startE2eWorld, WAIT, type E2eWorld } from './e2e-helpers';
import { tempDir } from './sandbox-helpers';

const ALICE = 'alice@example.com';
const PASSWORD = 'hunter2 but longer';
const BOB = '+15555550142';
const ROOT = path.resolve(__dirname, '../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');

interface Cli {
  child: ChildProcessWithoutNullStreams;
  stdout(): string;
  stderr(): string;
  lines(): unknown[];
  exited: Promise<number | null>;
}

let world: E2eWorld;
let tmp: { dir: string; remove(): Promise<void> };
const running = new Set<Cli>();

function cli(dataDir: string, args: string[]): Cli {
  const child = spawn(
    TSX,
    [
      'cli/main.ts',
      ...args,
      '--bridge', world.proxy.url,
      '--ca', world.sandbox.caFile,
      '--relay-code', world.relayCode,
      '--data-dir', path.join(tmp.dir, dataDir),
    ],
    { cwd: ROOT, env: { ...process.env, CERULEAN_PASSPHRASE: `passphrase of ${dataDir}`, CERULEAN_PASSWORD: PASSWORD } },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const handle: Cli = {
    child,
    stdout: () => out,
    stderr: () => err,
    lines: () => out.split('\n').filter((l) => l.startsWith('{') || l.startsWith('[')).map((l) => JSON.parse(l) as unknown),
    exited,
  };
  running.add(handle);
  void exited.then(() => running.delete(handle));
  return handle;
}

async function succeeded(c: Cli): Promise<void> {
  const code = await c.exited;
  if (code !== 0) throw new Error(`exit ${code}\nstdout: ${c.stdout()}\nstderr: ${c.stderr()}`);
}

beforeAll(async () => {
  tmp = await tempDir('cerulean-cli-');
  world = await startE2eWorld({ accounts: [{ appleId: ALICE, password: PASSWORD, twoFactor: true }], phones: [{ number: BOB }] });
});

afterAll(async () => {
  for (const c of running) c.child.kill('SIGKILL');
  await world?.close();
  await tmp?.remove();
});

describe('the headless client (cli/main.ts)', () => {
  it('registers an Apple ID with the 2FA code typed at the prompt', async () => {
    const alice = cli('alice', ['register', '--apple-id', ALICE]);
    await vi.waitFor(() => expect(alice.stderr()).toContain('6-digit code'), WAIT);
    alice.child.stdin.write(`${world.sandbox.accounts.latestTwoFactorCode(ALICE)!.code}\n`);
    await succeeded(alice);
    expect(alice.lines().at(-1)).toMatchObject({ status: 'registered', handles: [`mailto:${ALICE}`] });
  });

  it('registers a phone number: REG-REQ out, REG-RESP back in', async () => {
    const bob = cli('bob', ['register', '--phone']);
    await vi.waitFor(() => expect(bob.lines()).toHaveLength(1), WAIT);
    const { regReq, gateway } = bob.lines()[0] as { regReq: string; gateway: string };
    expect(regReq).toMatch(/^REG-REQ\?v=3;t=[0-9A-F]{64};r=\d+;$/);
    const sms = await world.sandbox.gateway.receive(BOB, regReq, gateway);
    bob.child.stdin.write(`${sms.reply}\n`);
    await succeeded(bob);
    expect(bob.lines().at(-1)).toMatchObject({ status: 'registered', handles: [`tel:${BOB}`] });
  });

  it('sends to a listener, which prints the message as a JSON line', async () => {
    const listener = cli('bob', ['listen']);
    await vi.waitFor(() => expect(listener.stderr()).toContain('Listening as'), WAIT);
    const sender = cli('alice', ['send', BOB, 'Hello from the command line']);
    await succeeded(sender);
    expect(sender.lines()[0]).toMatchObject({ status: expect.stringMatching(/^(sent|delivered)$/) });
    await vi.waitFor(() => {
      const got = listener.lines().find((l) => (l as { event?: string }).event === 'message');
      expect(got).toMatchObject({ message: { text: 'Hello from the command line', sender: `mailto:${ALICE}`, fromMe: false } });
    }, WAIT);
    listener.child.kill('SIGINT');
    expect(await listener.exited).toBe(0);
  });

  it('lists the account devices', async () => {
    const devices = cli('alice', ['devices', '--refresh']);
    await succeeded(devices);
    const [list] = devices.lines() as Array<Array<{ current: boolean; handle: string }>>;
    expect(list).toHaveLength(1);
    expect(list![0]).toMatchObject({ current: true, handle: `mailto:${ALICE}` });
  });

  it('explains its usage', async () => {
    const help = cli('nobody', ['--help']);
    expect(await help.exited).toBe(2);
    expect(help.stderr()).toContain('Usage: tsx cli/main.ts');
  });
});
