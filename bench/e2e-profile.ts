// A rough main-thread CPU profile for bench/e2e.ts (`--profile`): V8's sampling profiler through node:inspector,
// reduced to self time per area of the code (lib/net, lib/crypto, sandbox/courier, ws, node internals, idle, …),
// per chain of project files on the stack, and the hottest functions. WebCrypto work runs on libuv's thread pool,
// so it shows here only as the main thread's idle time while it waits.
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
}

interface Share {
  ms: number;
  share: number;
}

export interface ProfileSummary {
  profiledMs: number;
  /** Self time by area, largest first. Native code (crypto jobs, socket writes) counts for the area calling it. */
  byArea: Array<{ area: string } & Share>;
  /** The functions with the most self time. */
  topFunctions: Array<{ fn: string } & Share>;
  /**
   * Self time by the project files on the stack, innermost first (up to four, e.g. "lib/codec/plist-binary.ts <
   * lib/imessage/envelope.ts < lib/imessage/sender.ts"): which of our code the time is spent for.
   */
  byProjectStack: Array<{ stack: string } & Share>;
}

/** Starts sampling; the returned function stops it and summarizes what was sampled. */
export async function startCpuProfile(intervalUs = 250): Promise<() => Promise<ProfileSummary>> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
  await session.post('Profiler.start');
  return async () => {
    const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: CpuProfile };
    session.disconnect();
    return summarize(profile);
  };
}

const PROJECT_DIRS = ['lib/', 'sandbox/', 'bridge/'];

function summarize(profile: CpuProfile): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, ProfileNode>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n);
  const ancestors = function* (node: ProfileNode): Generator<ProfileNode> {
    for (let n: ProfileNode | undefined = node; n; n = parent.get(n.id)) yield n;
  };
  const areas = new Map<string, number>();
  const fns = new Map<string, number>();
  const stacks = new Map<string, number>();
  const add = (m: Map<string, number>, key: string, us: number) => m.set(key, (m.get(key) ?? 0) + us);
  let totalUs = 0;
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // Delta i is the time since the previous sample; it is charged to the sample that ends it.
  for (let i = 0; i < samples.length; i++) {
    const node = byId.get(samples[i]!);
    const us = deltas[i] ?? 0;
    if (!node || us <= 0) continue;
    totalUs += us;
    const frame = node.callFrame;
    const special = !frame.url && frame.functionName.startsWith('(');
    const caller = frame.url || special ? undefined : [...ancestors(node)].find((n) => n.callFrame.url);
    add(areas, caller ? `${areaOf(caller.callFrame)} (native)` : special ? frame.functionName : areaOf(frame), us);
    add(fns, describeFrame(frame) + (caller ? ` ← ${describeFrame(caller.callFrame)}` : ''), us);
    const files: string[] = [];
    for (const n of ancestors(node)) {
      const file = shortUrl(n.callFrame.url);
      if (PROJECT_DIRS.some((d) => file.startsWith(d)) && files[files.length - 1] !== file) files.push(file);
      if (files.length === 4) break;
    }
    add(stacks, special ? frame.functionName : files.length ? files.join(' < ') : '(no project code on the stack)', us);
  }
  const ms = (us: number) => Math.round(us / 100) / 10;
  const share = (us: number) => (totalUs ? Math.round((us / totalUs) * 1000) / 1000 : 0);
  const ranked = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n);
  return {
    profiledMs: ms(totalUs),
    byArea: ranked(areas, 30).map(([area, us]) => ({ area, ms: ms(us), share: share(us) })),
    topFunctions: ranked(fns, 25).map(([fn, us]) => ({ fn, ms: ms(us), share: share(us) })),
    byProjectStack: ranked(stacks, 25).map(([stack, us]) => ({ stack, ms: ms(us), share: share(us) })),
  };
}

function describeFrame(frame: ProfileNode['callFrame']): string {
  const url = shortUrl(frame.url);
  // tsx's transpiled project files report line 0 for everything; node's own files have real lines.
  return `${frame.functionName || '(anonymous)'}${url ? ` ${url}` : ''}${url && frame.lineNumber > 0 ? `:${frame.lineNumber + 1}` : ''}`;
}

function shortUrl(url: string): string {
  if (!url) return '';
  const file = url.startsWith('file://') ? fileURLToPath(url) : url;
  const nm = file.lastIndexOf('node_modules/');
  if (nm >= 0) return file.slice(nm + 'node_modules/'.length);
  return file.startsWith(root) ? path.relative(root, file) : file;
}

/** lib/<dir>, sandbox/<dir or file>, bridge, a package or node:<module>. */
function areaOf(frame: ProfileNode['callFrame']): string {
  const file = shortUrl(frame.url);
  if (frame.url.includes('node_modules/')) {
    const parts = file.split('/');
    return `pkg:${parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]}`;
  }
  if (file.startsWith('node:')) {
    const parts = file.slice('node:'.length).split('/');
    return `node:${parts[0] === 'internal' ? `internal/${parts[1] ?? ''}` : parts[0]}`.replace(/\.js$/, '');
  }
  const parts = file.split('/');
  if (parts[0] === 'lib' || parts[0] === 'sandbox') return `${parts[0]}/${parts[1]}`;
  return parts[0] ?? file;
}
