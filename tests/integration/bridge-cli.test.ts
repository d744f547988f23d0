// The command-line bridge as an operator runs it: config file plus environment, JSON log lines on stdout, and a
// clean stop on SIGTERM that closes open tunnels with 1001.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { closeOf, openTunnel, receive, startTcpServer, within } from './bridge-helpers';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

interface Run {
  readonly child: ChildProcess;
  readonly lines: Array<Record<string, unknown>>;
  waitFor(event: string): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

function run(args: string[], env: Record<string, string>): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bridge/main.ts', ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  let buffered = '';
  child.stdout?.on('data', (d: Buffer) => {
    buffered += d.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) !== -1) {
      lines.push(JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>);
      buffered = buffered.slice(nl + 1);
      for (const w of waiters.splice(0)) w();
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const waitFor = (event: string) =>
    within(
      new Promise<Record<string, unknown>>((resolve) => {
        const check = () => {
          const found = lines.find((l) => l.event === event);
          if (found) resolve(found);
          else waiters.push(check);
        };
        check();
      }),
      15_000,
      `log event ${event}`,
    );
  return { child, lines, waitFor, exited };
}

describe('bridge command line', () => {
  it('starts from a config file and env, tunnels, and stops cleanly on SIGTERM', async () => {
    const echo = await startTcpServer();
    try {
      const dir = mkdtempSync(path.join(tmpdir(), 'bridge-cli-'));
      writeFileSync(path.join(dir, 'host-map.json'), JSON.stringify({ hosts: { 'albert.apple.com:443': `127.0.0.1:${echo.port}` } }));
      writeFileSync(path.join(dir, 'bridge.json'), JSON.stringify({ port: 0, hostMapFile: 'host-map.json', maxTunnels: 5 }));
      const token = 'cli-token-0123456789';
      const bridge = run(['--config', path.join(dir, 'bridge.json')], {
        CERULEAN_BRIDGE_TOKEN: token,
        CERULEAN_BRIDGE_LOG_LEVEL: 'info',
      });
      const listening = await bridge.waitFor('bridge.listening');
      expect(listening).toMatchObject({ level: 'info', host: '127.0.0.1', tokenRequired: true, hostMapEntries: 1 });
      const url = `ws://127.0.0.1:${listening.port as number}/tunnel/albert.apple.com:443?token=${token}`;
      const ws = await openTunnel(url);
      ws.send(Buffer.from('ping'));
      expect((await receive(ws, 4)).toString()).toBe('ping');
      const closed = closeOf(ws);
      bridge.child.kill('SIGTERM');
      expect(await closed).toEqual({ code: 1001, reason: 'bridge shutting down' });
      expect(await within(bridge.exited, 10_000, 'exit')).toBe(0);
      expect(bridge.lines.map((l) => l.event)).toEqual(
        expect.arrayContaining(['bridge.listening', 'tunnel.open', 'bridge.signal', 'bridge.stopping', 'tunnel.close', 'bridge.stopped']),
      );
      expect(JSON.stringify(bridge.lines)).not.toContain(token);
    } finally {
      await echo.close();
    }
  });

  it('exits 1 with a JSON error line on a bad setting', async () => {
    const bridge = run([], { CERULEAN_BRIDGE_PORT: 'eighty' });
    const failed = await bridge.waitFor('bridge.start-failed');
    expect(failed).toMatchObject({ level: 'error' });
    expect(String(failed.error)).toContain('CERULEAN_BRIDGE_PORT');
    expect(await within(bridge.exited, 10_000, 'exit')).toBe(1);
  });
});
