// What every sandbox service is handed: the clock, the log, the durable store and the PKI. Services talk to each
// other only through these interfaces and the courier's TopicBackend, so each can be tested alone.

/** Milliseconds since the Unix epoch. Tests pass a FakeClock to expire certificates, nonces and TTLs at will. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export class FakeClock implements Clock {
  constructor(private t: number = Date.now()) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
  set(ms: number): void {
    this.t = ms;
  }
}

/** Structured log: one JSON line per event. Never pass secrets, payload bytes or message text as fields. */
export interface Log {
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
}

export function jsonLog(component: string, write: (line: string) => void = (l) => process.stdout.write(l + '\n')): Log {
  const emit = (level: string) => (event: string, fields: Record<string, unknown> = {}) =>
    write(JSON.stringify({ t: new Date().toISOString(), level, component, event, ...fields }));
  return { info: emit('info'), warn: emit('warn'), error: emit('error') };
}

export const silentLog: Log = { info() {}, warn() {}, error() {} };
