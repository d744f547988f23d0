// The host map sends a named destination somewhere else: in sandbox mode `identity.ess.apple.com:443` goes to
// `127.0.0.1:<sandbox port>`. An entry is the operator's explicit word, so a mapped destination needs no
// allowlist entry and its target may be a loopback or private address. Keys may use the allowlist's `*` form.
import { readFileSync } from 'node:fs';
import { compileHostPattern, parseAllowRule } from './allowlist';
import { type Destination, parseHostPort } from './destination';
import { BridgeConfigError } from './errors';

interface PatternEntry {
  readonly match: (host: string) => boolean;
  readonly port: number;
  readonly target: Destination;
}

export class HostMap {
  private readonly exact = new Map<string, Destination>();
  private readonly patterns: PatternEntry[] = [];

  /** `entries` maps `host:port` (or `pattern:port`) to `address:port`; throws BridgeConfigError on a bad entry. */
  constructor(entries: Readonly<Record<string, string>>) {
    for (const [key, value] of Object.entries(entries)) {
      const target = parseHostPort(value);
      if (target === null) throw new BridgeConfigError('bad-host-map', `host map target must be host:port: ${JSON.stringify(value)}`);
      const from = parseAllowRule(key);
      if (from.pattern.includes('*')) {
        this.patterns.push({ match: compileHostPattern(from.pattern), port: from.port, target });
      } else {
        this.exact.set(`${from.pattern} ${from.port}`, target);
      }
    }
  }

  get size(): number {
    return this.exact.size + this.patterns.length;
  }

  lookup(host: string, port: number): Destination | undefined {
    return this.exact.get(`${host} ${port}`) ?? this.patterns.find((p) => p.port === port && p.match(host))?.target;
  }
}

/** Reads the sandbox's host-map file: `{ "hosts": { "host:port": "127.0.0.1:port", … } }`. */
export function readHostMapFile(path: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new BridgeConfigError('bad-host-map', `cannot read host map ${path}: ${(cause as Error).message}`, { cause });
  }
  const hosts = (parsed as { hosts?: unknown } | null)?.hosts;
  if (typeof hosts !== 'object' || hosts === null || Array.isArray(hosts)) {
    throw new BridgeConfigError('bad-host-map', `${path}: expected { "hosts": { "host:port": "address:port" } }`);
  }
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(hosts)) {
    if (typeof value !== 'string') throw new BridgeConfigError('bad-host-map', `${path}: value for ${key} is not a string`);
    out[key] = value;
  }
  return out;
}
