// Process plumbing for `bench/bridge.ts`: child processes, their memory as Linux reports it, free ports, the
// file-descriptor limit, and websockify (installed from Debian when missing and running as root).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';

export function spawnChild(command: string, args: string[], cwd: string): ChildProcess {
  const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'ignore'] });
  child.on('error', () => {});
  return child;
}

/** The first stdout line a child prints, parsed as JSON. */
export function firstLine<T>(child: ChildProcess, timeoutMs = 20_000): Promise<T> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error('child printed nothing')), timeoutMs);
    child.stdout?.on('data', (d: Buffer) => {
      text += d.toString();
      const nl = text.indexOf('\n');
      if (nl !== -1) {
        clearTimeout(timer);
        resolve(JSON.parse(text.slice(0, nl)) as T);
      }
    });
  });
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function waitForPort(port: number, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listening on ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Resident set size of one process, in KiB. */
export function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

function pssKiB(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0; // exited between listing and reading
  }
}

/** A process and all its descendants (websockify forks one child per connection). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // exited while listing
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return out;
}

/** Proportional set size summed over a process tree, in KiB: shared copy-on-write pages counted once. */
export function treePssKiB(root: number): { pss: number; rss: number; processes: number } {
  const pids = processTree(root);
  let pss = 0;
  let rss = 0;
  for (const pid of pids) {
    pss += pssKiB(pid);
    try {
      rss += rssKiB(pid);
    } catch {
      // exited while reading
    }
  }
  return { pss, rss, processes: pids.length };
}

export function fdLimit(): number {
  return Number(execFileSync('sh', ['-c', 'ulimit -n']).toString().trim());
}

/** Path to websockify, installing Debian's package when missing and running as root; else why it is absent. */
export function ensureWebsockify(): { path: string; installed: boolean } | { skipped: string } {
  const path = '/usr/bin/websockify';
  if (existsSync(path)) return { path, installed: false };
  if (process.getuid?.() !== 0) return { skipped: 'websockify is not installed and this is not root (apt-get install websockify)' };
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['install', '-y', '-qq', 'websockify'], { stdio: 'ignore', env });
  } catch {
    try {
      execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
      execFileSync('apt-get', ['install', '-y', '-qq', 'websockify'], { stdio: 'ignore', env });
    } catch (err) {
      return { skipped: `apt-get install websockify failed: ${(err as Error).message.split('\n')[0]}` };
    }
  }
  return existsSync(path) ? { path, installed: true } : { skipped: 'websockify not found after apt-get install' };
}
