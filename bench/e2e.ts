// `tsx bench/e2e.ts`: end-to-end message latency through the whole stack on loopback — CeruleanClients (memory
// stores) → the bridge → the sandbox's courier → the bridge → CeruleanClients, all in this one process.
//
//   1:1    Alice → Bob, sequential: the time from just before sendText to Bob's `message` event for that text
//          (decrypted and stored), after a warm-up that also pays for the first lookup.
//   group  Alice → 31 members, sequential: per message, the time until the last member has it (and the median
//          and first member).
//   setup  sandbox and bridge start, and registering every client (Alice: Apple ID + 2FA; members: phone numbers
//          through the sandbox SMS gateway), a few at a time.
//
// Each message is sent only once the previous one's traffic (delivery receipts, acks) has died down, so a figure is
// one message's latency, not a queue's. Every client's courier-tunnel frames are timed, which splits a 1:1 latency
// into sender (sendText → its first frame out), transit (→ the last frame into Bob before the event: bridge, TLS,
// courier, bridge) and receiver (→ the event: TLS, inbox, decrypt, store). `--profile` adds main-thread CPU
// profiles of the measured 1:1 and group runs (a profiled run's latencies are inflated; take them from another run).
//
// All the clients, the bridge and the sandbox share this process's one event loop (and the machine's cores): a
// group figure includes 31 receivers decrypting one after another, which separate devices would do side by side.
//
// Prints one JSON document on stdout; progress goes to stderr. Exit code 0 when every phase ran (whether or not the
// target is met), 1 on any failure; the sandbox, bridge, clients and temp dirs are removed either way.
import { mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { registerAppleId, registerPhone, type TestDevice } from '../tests/integration/e2e-helpers';
import { startCpuProfile, type ProfileSummary } from './e2e-profile';
import { startBenchWorld, type BenchWorld, type CourierFrames } from './e2e-world';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '200' },
    warmup: { type: 'string', default: '20' },
    'group-size': { type: 'string', default: '32' },
    'group-messages': { type: 'string', default: '30' },
    'group-warmup': { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '4' },
    profile: { type: 'boolean', default: false },
    'timeout-minutes': { type: 'string', default: '20' },
  },
});

const count = (name: keyof typeof args, min: number): number => {
  const v = Number(args[name]);
  if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer ≥ ${min}`);
  return v;
};
const MESSAGES = count('messages', 1);
const WARMUP = count('warmup', 1);
const GROUP_SIZE = count('group-size', 3);
const GROUP_MESSAGES = count('group-messages', 1);
const GROUP_WARMUP = count('group-warmup', 1);
const CONCURRENCY = count('concurrency', 1);
const TIMEOUT_MS = count('timeout-minutes', 1) * 60_000;

/** The target for 1:1 on loopback. */
const TARGET_P50_MS = 20;
const ALICE = 'alice@example.com';
const ALICE_PASSWORD = 'correct horse battery';
const memberNumber = (i: number) => `+1555555${String(1000 + i)}`;
/** Bounds on every wait, so a lost message fails the run with a reason instead of hanging it. */
const REGISTER_TIMEOUT_MS = 120_000;
const MESSAGE_TIMEOUT_MS = 15_000;
const GROUP_MESSAGE_TIMEOUT_MS = 60_000;
const DELIVERED_TIMEOUT_MS = 15_000;
/** "Quiet": no client has sent or received a WebSocket frame for this long; waited for at most QUIET_MAX_MS. */
const QUIET_MS = 25;
const QUIET_MAX_MS = 5_000;

const progress = (msg: string) => process.stderr.write(`[bench:e2e] ${msg}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const round2 = (x: number) => Math.round(x * 100) / 100;

interface Summary {
  n: number;
  minMs: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
}

/** Nearest-rank percentiles (with n < 100, p99 is the maximum). */
function summarize(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const rank = (q: number) => s[Math.max(0, Math.ceil(q * s.length) - 1)] ?? 0;
  return {
    n: s.length,
    minMs: round2(s[0] ?? 0),
    p50Ms: round2(rank(0.5)),
    p99Ms: round2(rank(0.99)),
    meanMs: round2(s.reduce((a, b) => a + b, 0) / (s.length || 1)),
    maxMs: round2(s[s.length - 1] ?? 0),
  };
}

function median(xs: readonly number[]): number {
  return summarize(xs).p50Ms;
}

/** Medians of consecutive blocks of `size` samples: drift (JIT warm-up, outside load) shows here. */
function blockMedians(xs: readonly number[], size: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < xs.length; i += size) out.push(median(xs.slice(i, i + size)));
  return out;
}

/**
 * CPU used while a phase ran, in cores: this process, and everything else on the machine (other processes compete
 * for the same cores and inflate the latencies; a quiet machine shows otherCores near 0).
 */
function cpuMeter(): () => { ownCores: number; otherCores: number } {
  const machine = () => os.cpus().reduce((n, c) => n + c.times.user + c.times.nice + c.times.sys + c.times.irq, 0);
  const busy0 = machine();
  const own0 = process.cpuUsage();
  const t0 = performance.now();
  return () => {
    const wallMs = performance.now() - t0;
    const own = process.cpuUsage(own0);
    const ownCores = (own.user + own.system) / 1000 / wallMs;
    const machineCores = (machine() - busy0) / wallMs;
    return { ownCores: round2(ownCores), otherCores: round2(Math.max(0, machineCores - ownCores)) };
  };
}

function within<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what()}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Runs `jobs` with at most `limit` in flight; the first failure fails the lot (after the running ones end). */
async function pool<T>(limit: number, jobs: Array<() => Promise<T>>): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (next < jobs.length && failed === undefined) {
      const i = next++;
      try {
        out[i] = await jobs[i]!();
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  if (failed !== undefined) throw failed;
  return out;
}

/** Who has shown a `message` event for which text, and when (performance.now()). */
class Arrivals {
  private readonly waits = new Map<string, { expected: Set<string>; times: Map<string, number>; done: () => void }>();

  watch(d: TestDevice): void {
    d.client.on('message', ({ message }) => {
      const at = performance.now();
      const w = message.text === undefined ? undefined : this.waits.get(message.text);
      if (!w || !w.expected.has(d.name) || w.times.has(d.name)) return;
      w.times.set(d.name, at);
      if (w.times.size === w.expected.size) w.done();
    });
  }

  /** Registers the wait (before sending); the promise gives each recipient's arrival time. */
  expect(text: string, recipients: string[], timeoutMs: number): Promise<Map<string, number>> {
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const w = { expected: new Set(recipients), times: new Map<string, number>(), done };
    this.waits.set(text, w);
    const missing = () => {
      const gone = [...w.expected].filter((n) => !w.times.has(n));
      return `"${text}" not received by ${gone.length}/${w.expected.size}: ${gone.slice(0, 5).join(', ')}${gone.length > 5 ? ', …' : ''}`;
    };
    return within(finished, timeoutMs, missing)
      .then(() => w.times)
      .finally(() => this.waits.delete(text));
  }
}

/** Own messages that reached 'delivered' (the status event can come before anyone waits for it). */
class Deliveries {
  private readonly delivered = new Set<string>();
  private readonly waits = new Map<string, () => void>();

  watch(d: TestDevice): void {
    d.client.on('status', ({ uuid, status }) => {
      if (status !== 'delivered' && status !== 'read') return;
      this.delivered.add(uuid);
      this.waits.get(uuid)?.();
    });
  }

  wait(uuid: string): Promise<void> {
    if (this.delivered.has(uuid)) return Promise.resolve();
    const p = new Promise<void>((resolve) => this.waits.set(uuid, resolve));
    return within(p, DELIVERED_TIMEOUT_MS, () => `no delivery receipt for ${uuid}`).finally(() => this.waits.delete(uuid));
  }
}

/** Waits until no client frame has moved for QUIET_MS; false if that did not happen within QUIET_MAX_MS. */
async function quiet(world: BenchWorld): Promise<boolean> {
  const deadline = performance.now() + QUIET_MAX_MS;
  while (performance.now() - world.lastFrameAt() < QUIET_MS) {
    if (performance.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

const firstAtOrAfter = (xs: readonly number[], t: number) => xs.find((x) => x >= t);
function lastAtOrBefore(xs: readonly number[], t: number): number | undefined {
  for (let i = xs.length - 1; i >= 0; i--) if (xs[i]! <= t) return xs[i];
  return undefined;
}

/** The frame split of one delivery; undefined when a frame is missing (should not happen). */
function phases(sendAt: number, arriveAt: number, sender: CourierFrames, recipient: CourierFrames) {
  const out = firstAtOrAfter(sender.sent, sendAt);
  const into = lastAtOrBefore(recipient.received, arriveAt);
  if (out === undefined || into === undefined || into < out) return undefined;
  return { sender: out - sendAt, transit: into - out, receiver: arriveAt - into };
}

/** fdatasync of a small append in the temp dir: what the sandbox's journal pays before it queues a message. */
async function fdatasyncCost(): Promise<Summary> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cerulean-bench-sync-'));
  try {
    const fh = await open(path.join(dir, 'journal'), 'a');
    const times: number[] = [];
    try {
      for (let i = 0; i < 50; i++) {
        const t = performance.now();
        await fh.appendFile(`{"s":${i},"t":"queue","k":"x","v":"${'a'.repeat(200)}"}\n`);
        await fh.datasync();
        times.push(performance.now() - t);
      }
    } finally {
      await fh.close();
    }
    return summarize(times);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

type Result = Record<string, unknown>;

async function run(world: BenchWorld, result: Result): Promise<void> {
  const arrivals = new Arrivals();
  const deliveries = new Deliveries();
  let quietMisses = 0;
  const settle = async () => {
    if (!(await quiet(world))) quietMisses++;
  };

  // ---- setup: register everyone ----------------------------------------------------------------------------
  progress(`registering Alice (Apple ID + 2FA) and ${GROUP_SIZE - 1} phone numbers, ${CONCURRENCY} at a time`);
  const regStart = performance.now();
  const regCpu = cpuMeter();
  const aliceStart = performance.now();
  const alice = await world.device('alice');
  await within(registerAppleId(world.helperWorld, alice, ALICE, ALICE_PASSWORD), REGISTER_TIMEOUT_MS, () => 'registering alice');
  const aliceMs = performance.now() - aliceStart;
  deliveries.watch(alice);
  const memberTimes: number[] = [];
  let registered = 0;
  const members = await pool(
    CONCURRENCY,
    Array.from({ length: GROUP_SIZE - 1 }, (_, i) => async () => {
      const started = performance.now();
      // The first member is the 1:1 partner.
      const d = await world.device(i === 0 ? 'bob' : `member${i + 1}`);
      await within(registerPhone(world.helperWorld, d, memberNumber(i + 1)), REGISTER_TIMEOUT_MS, () => `registering ${d.name}`);
      memberTimes.push(performance.now() - started);
      if (++registered % 8 === 0) progress(`  ${registered}/${GROUP_SIZE - 1} members registered`);
      arrivals.watch(d);
      return d;
    }),
  );
  const regWallMs = performance.now() - regStart;
  result.setup = {
    sandboxStartMs: round2(world.timings.sandboxStartMs),
    bridgeStartMs: round2(world.timings.bridgeStartMs),
    registration: {
      clients: GROUP_SIZE,
      concurrency: CONCURRENCY,
      wallMs: round2(regWallMs),
      wallPerClientMs: round2(regWallMs / GROUP_SIZE),
      aliceAppleId2faMs: round2(aliceMs),
      phoneClientMs: summarize(memberTimes),
      cpu: regCpu(),
    },
  };
  progress(`registered ${GROUP_SIZE} clients in ${(regWallMs / 1000).toFixed(1)} s`);

  // ---- 1:1 -----------------------------------------------------------------------------------------------
  const bob = members[0]!;
  const bobUri = bob.client.handles[0]!;
  const direct = await alice.client.chatWith(bobUri);
  const latencies: number[] = [];
  const sendCalls: number[] = [];
  const receipts: number[] = [];
  const split = { sender: [] as number[], transit: [] as number[], receiver: [] as number[] };
  let missingSplits = 0;
  let stopProfile: (() => Promise<ProfileSummary>) | undefined;
  let elu0 = performance.eventLoopUtilization();
  let directCpu = cpuMeter();
  progress(`1:1: ${WARMUP} warm-up + ${MESSAGES} measured messages alice → ${bob.name}`);
  for (let i = 0; i < WARMUP + MESSAGES; i++) {
    const measured = i >= WARMUP;
    if (i === WARMUP) {
      elu0 = performance.eventLoopUtilization();
      directCpu = cpuMeter();
      if (args.profile) stopProfile = await startCpuProfile();
    }
    await settle();
    const text = `bench 1:1 #${i} ${Math.random().toString(36).slice(2, 10)}`;
    const arrived = arrivals.expect(text, [bob.name], MESSAGE_TIMEOUT_MS);
    const sendAt = performance.now();
    const sent = await alice.client.sendText(direct.id, text);
    const calledMs = performance.now() - sendAt;
    const at = (await arrived).get(bob.name)!;
    await deliveries.wait(sent.uuid);
    const deliveredMs = performance.now() - sendAt;
    if (!measured) continue;
    latencies.push(at - sendAt);
    sendCalls.push(calledMs);
    receipts.push(deliveredMs);
    const p = phases(sendAt, at, world.frames(alice.name), world.frames(bob.name));
    if (p) for (const k of ['sender', 'transit', 'receiver'] as const) split[k].push(p[k]);
    else missingSplits++;
    const done = i - WARMUP + 1;
    if (done % 50 === 0) progress(`  ${done}/${MESSAGES}: p50 so far ${median(latencies).toFixed(2)} ms`);
  }
  const elu1 = performance.eventLoopUtilization(elu0);
  const directCpuUsed = directCpu();
  const profile = await stopProfile?.();
  const oneToOne = summarize(latencies);
  result.oneToOne = {
    from: 'alice (Apple ID)',
    to: `${bob.name} (phone)`,
    warmup: WARMUP,
    latencyMs: oneToOne,
    p50ByBlockOf50Ms: blockMedians(latencies, 50),
    sendTextCallMs: summarize(sendCalls),
    untilDeliveredStatusAtSenderMs: summarize(receipts),
    phasesMs: {
      note: 'sender = sendText → first courier frame out; transit = → last courier frame into the recipient before its event; receiver = → the event',
      sender: summarize(split.sender),
      transit: summarize(split.transit),
      receiver: summarize(split.receiver),
      unsplit: missingSplits,
    },
    eventLoopUtilization: round2(elu1.utilization),
    cpu: directCpuUsed,
    ...(profile ? { cpuProfile: profile } : {}),
  };
  progress(`1:1: p50 ${oneToOne.p50Ms} ms, p99 ${oneToOne.p99Ms} ms`);

  // ---- group ---------------------------------------------------------------------------------------------
  const group = await alice.client.createGroup(members.map((m) => m.client.handles[0]!));
  const names = members.map((m) => m.name);
  const last: number[] = [];
  const middle: number[] = [];
  const first: number[] = [];
  const all: number[] = [];
  const groupSender: number[] = [];
  const groupReceiver: number[] = [];
  let elu2 = performance.eventLoopUtilization();
  let groupCpu = cpuMeter();
  let stopGroupProfile: (() => Promise<ProfileSummary>) | undefined;
  progress(`group of ${GROUP_SIZE}: ${GROUP_WARMUP} warm-up + ${GROUP_MESSAGES} measured messages`);
  for (let i = 0; i < GROUP_WARMUP + GROUP_MESSAGES; i++) {
    if (i === GROUP_WARMUP) {
      elu2 = performance.eventLoopUtilization();
      groupCpu = cpuMeter();
      if (args.profile) stopGroupProfile = await startCpuProfile();
    }
    await settle();
    const text = `bench group #${i} ${Math.random().toString(36).slice(2, 10)}`;
    const arrived = arrivals.expect(text, names, GROUP_MESSAGE_TIMEOUT_MS);
    const sendAt = performance.now();
    const sent = await alice.client.sendText(group.id, text);
    const times = await arrived;
    await deliveries.wait(sent.uuid);
    if (i < GROUP_WARMUP) continue;
    const lat = [...times.values()].map((x) => x - sendAt);
    all.push(...lat);
    last.push(Math.max(...lat));
    first.push(Math.min(...lat));
    middle.push(median(lat));
    const out = firstAtOrAfter(world.frames(alice.name).sent, sendAt);
    if (out !== undefined) groupSender.push(out - sendAt);
    for (const [name, at] of times) {
      const into = lastAtOrBefore(world.frames(name).received, at);
      if (into !== undefined) groupReceiver.push(at - into);
    }
    const done = i - GROUP_WARMUP + 1;
    if (done % 10 === 0) progress(`  ${done}/${GROUP_MESSAGES}: last-member p50 so far ${median(last).toFixed(1)} ms`);
  }
  const elu3 = performance.eventLoopUtilization(elu2);
  const groupCpuUsed = groupCpu();
  const groupProfile = await stopGroupProfile?.();
  result.group = {
    members: GROUP_SIZE,
    recipients: GROUP_SIZE - 1,
    warmup: GROUP_WARMUP,
    note: 'every client runs in this one process: receivers are served one after another, not in parallel as on separate devices',
    lastMemberMs: summarize(last),
    lastMemberP50ByBlockOf10Ms: blockMedians(last, 10),
    lastMemberEachMessageMs: last.map((x) => Math.round(x)),
    medianMemberMs: summarize(middle),
    firstMemberMs: summarize(first),
    everyArrivalMs: summarize(all),
    senderUntilFirstFrameOutMs: summarize(groupSender),
    receiverLastFrameToEventMs: summarize(groupReceiver),
    eventLoopUtilization: round2(elu3.utilization),
    cpu: groupCpuUsed,
    ...(groupProfile ? { cpuProfile: groupProfile } : {}),
  };
  progress(`group: last member p50 ${summarize(last).p50Ms} ms, p99 ${summarize(last).p99Ms} ms`);

  result.quietWaitsThatTimedOut = quietMisses;
  result.engineWarnings = Object.fromEntries(world.warnings);
  result.clientErrors = [alice, ...members].reduce((n, d) => n + d.events.error.length, 0);
  result.targets = [{ name: '1:1 send → decrypted at recipient, p50 (ms)', limit: TARGET_P50_MS, value: oneToOne.p50Ms, met: oneToOne.p50Ms <= TARGET_P50_MS }];
  result.targetsMet = oneToOne.p50Ms <= TARGET_P50_MS;
}

async function main(): Promise<never> {
  const started = performance.now();
  const result: Result = {
    bench: 'e2e',
    startedAt: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform} ${os.release()} ${process.arch}`,
    cpus: { count: os.cpus().length, model: os.cpus()[0]?.model ?? 'unknown' },
    loadAverage: { start: os.loadavg().map(round2) },
    config: {
      messages: MESSAGES,
      warmup: WARMUP,
      groupSize: GROUP_SIZE,
      groupMessages: GROUP_MESSAGES,
      groupWarmup: GROUP_WARMUP,
      registrationConcurrency: CONCURRENCY,
      profile: args.profile,
      store: 'MemoryStorage',
      transport: 'ws → bridge (loopback) → sandbox courier; one process',
      quietBeforeEachSendMs: QUIET_MS,
    },
  };
  let world: Promise<BenchWorld> | undefined;
  let finishing: Promise<never> | undefined;
  // The one way out, whatever triggers it (the end of the run, a failure, a signal, the watchdog): tear everything
  // down, print the JSON once, exit. Exiting explicitly also ends a run that a half-closed client would keep alive.
  const finish = (code: number, error?: string): Promise<never> =>
    (finishing ??= (async () => {
      clearTimeout(watchdog);
      if (error !== undefined) result.error = error;
      const running = await world?.catch(() => undefined);
      if (running) {
        progress('cleaning up');
        const problems = await running.close();
        for (const p of problems) progress(`cleanup: ${p}`);
        if (problems.length) result.cleanupProblems = problems;
      }
      result.loadAverage = { ...(result.loadAverage as object), end: os.loadavg().map(round2) };
      result.runtimeSeconds = round2((performance.now() - started) / 1000);
      await new Promise<void>((resolve) => process.stdout.write(`${JSON.stringify(result, null, 2)}\n`, () => resolve()));
      process.exit(code);
    })());

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      progress(`${signal}: stopping`);
      void finish(1, `interrupted by ${signal}`);
    });
  }
  const watchdog = setTimeout(() => {
    progress(`the run took over ${TIMEOUT_MS / 60_000} min: giving up`);
    void finish(1, `gave up after ${TIMEOUT_MS / 60_000} min`);
  }, TIMEOUT_MS);

  try {
    progress('measuring fdatasync in the temp dir');
    result.context = { tmpdir: os.tmpdir(), fdatasyncMs: await fdatasyncCost() };
    progress('starting sandbox and bridge');
    world = startBenchWorld({
      accounts: [{ appleId: ALICE, password: ALICE_PASSWORD, twoFactor: true }],
      phones: Array.from({ length: GROUP_SIZE - 1 }, (_, i) => ({ number: memberNumber(i + 1) })),
    });
    await run(await world, result);
  } catch (e) {
    // After a signal or the watchdog, the run fails because its clients were closed: not news.
    if (!finishing) progress(`FAILED: ${(e as Error).stack ?? String(e)}`);
    return finish(1, (e as Error).message ?? String(e));
  }
  return finish(0);
}

void main();
