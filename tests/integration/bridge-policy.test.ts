// The bridge's decisions without sockets: address policy, destination parsing, allowlist patterns, host map,
// configuration, token handling and the token bucket.
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classifyAddress, clientKey, isPublicAddress, parseIPv6 } from '../../bridge/address-policy';
import { APPLE_DEFAULT_ALLOW, Allowlist, parseAllowRule } from '../../bridge/allowlist';
import { optionsFromEnv, readConfigFile, resolveConfig } from '../../bridge/config';
import { normalizeHost, parseTunnelPath } from '../../bridge/destination';
import { BridgeConfigError } from '../../bridge/errors';
import { HostMap, readHostMapFile } from '../../bridge/host-map';
import { TokenBucket } from '../../bridge/rate-limit';
import { presentedToken, selectProtocol, tokenMatches } from '../../bridge/token';

describe('address policy', () => {
  const table: Array<[string, string]> = [
    ['17.57.144.10', 'public'],
    ['8.8.8.8', 'public'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['10.255.0.1', 'private'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.255', 'cgnat'],
    ['100.128.0.1', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['172.15.255.255', 'public'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.0', 'public'],
    ['192.0.0.8', 'reserved'],
    ['192.0.2.1', 'documentation'],
    ['192.88.99.1', 'reserved'],
    ['192.168.1.1', 'private'],
    ['198.18.0.1', 'benchmarking'],
    ['198.19.255.255', 'benchmarking'],
    ['198.51.100.7', 'documentation'],
    ['203.0.113.7', 'documentation'],
    ['224.0.0.251', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'broadcast'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:17.57.144.10', 'public'],
    ['::127.0.0.1', 'reserved'],
    ['64:ff9b::10.0.0.1', 'private'],
    ['64:ff9b::17.57.144.10', 'public'],
    ['64:ff9b:1::1', 'reserved'],
    ['2002:7f00:1::1', 'loopback'],
    ['2002:1139:900a::1', 'public'],
    ['2001::1', 'translation'],
    ['2001:db8::1', 'documentation'],
    ['3fff::1', 'documentation'],
    ['fc00::1', 'unique-local'],
    ['fd12:3456::1', 'unique-local'],
    ['fe80::1', 'link-local'],
    ['febf::1', 'link-local'],
    ['fec0::1', 'site-local'],
    ['ff02::1', 'multicast'],
    ['100::1', 'reserved'],
    ['2620:149:a44::1', 'public'],
    ['2a00:1450:4001::200e', 'public'],
    ['fe80::1%eth0', 'invalid'],
    ['localhost', 'invalid'],
    ['1.2.3', 'invalid'],
    ['01.2.3.4', 'invalid'],
  ];
  it.each(table)('%s is %s', (address, cls) => {
    expect(classifyAddress(address)).toBe(cls);
    expect(isPublicAddress(address)).toBe(cls === 'public');
  });

  it('expands IPv6 forms to eight groups', () => {
    expect(parseIPv6('1:2:3:4:5:6:7::')).toEqual([1, 2, 3, 4, 5, 6, 7, 0]);
    expect(parseIPv6('::2:3:4:5:6:7:8')).toEqual([0, 2, 3, 4, 5, 6, 7, 8]);
    expect(parseIPv6('::ffff:1.2.3.4')).toEqual([0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304]);
    expect(parseIPv6('1.2.3.4')).toBeNull();
  });

  it('only ever answers with a class, whatever the input', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.ipV4(), fc.ipV6(), fc.ipV4Extended()), (s) => {
        expect(typeof classifyAddress(s)).toBe('string');
      }),
      { numRuns: 300 },
    );
  });

  it('keys clients by address, IPv4-mapped unwrapped, IPv6 by /64', () => {
    expect(clientKey('203.0.113.5')).toBe('203.0.113.5');
    expect(clientKey('::ffff:203.0.113.5')).toBe('203.0.113.5');
    expect(clientKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8:1:2:bbbb::9')).toBe('2001:db8:1:2::/64');
  });
});

describe('destination parsing', () => {
  it('accepts names, IPv4 and bracketed IPv6, normalized', () => {
    expect(parseTunnelPath('/tunnel/17-Courier.Push.Apple.COM:5223')).toEqual({ host: '17-courier.push.apple.com', port: 5223 });
    expect(parseTunnelPath('/tunnel/courier.push.apple.com.:443')).toEqual({ host: 'courier.push.apple.com', port: 443 });
    expect(parseTunnelPath('/tunnel/17.57.144.10:443')).toEqual({ host: '17.57.144.10', port: 443 });
    expect(parseTunnelPath('/tunnel/[2001:DB8:0::1]:443')).toEqual({ host: '2001:db8::1', port: 443 });
    expect(parseTunnelPath('/tunnel/%5B::1%5D:80')).toEqual({ host: '::1', port: 80 });
    expect(parseTunnelPath('/tunnel/xn--bcher-kva.example:443')).toEqual({ host: 'xn--bcher-kva.example', port: 443 });
    expect(parseTunnelPath('/tunnel/a:65535')).toEqual({ host: 'a', port: 65535 });
  });

  it.each([
    '/tunnel/',
    '/tunnel/host',
    '/tunnel/:443',
    '/tunnel/host:',
    '/tunnel/host:0',
    '/tunnel/host:65536',
    '/tunnel/host:0x1bb',
    '/tunnel/host:-1',
    '/tunnel/host: 443',
    '/tunnel/host:443/extra',
    '/tunnel/host%2F:443',
    '/tunnel/::1:443',
    '/tunnel/[::1:443',
    '/tunnel/[fe80::1%25eth0]:443',
    '/tunnel/127.1:443',
    '/tunnel/0x7f.1:443',
    '/tunnel/1.2.3.256:443',
    '/tunnel/a..b:443',
    '/tunnel/-a.com:443',
    '/tunnel/a-.com:443',
    '/tunnel/a b.com:443',
    '/tunnel/ä.com:443',
    '/tunnel/%E0%A4%A:443',
    '/tunnels/host:443',
    '/other',
  ])('refuses %s', (p) => {
    expect(parseTunnelPath(p)).toBeNull();
  });

  it('refuses overlong names and labels', () => {
    expect(normalizeHost(`${'a'.repeat(63)}.com`)).not.toBeNull();
    expect(normalizeHost(`${'a'.repeat(64)}.com`)).toBeNull();
    expect(normalizeHost(Array.from({ length: 64 }, () => 'abc').join('.'))).toBeNull();
  });

  it('never throws and only returns canonical destinations (fuzz)', () => {
    const printable = fc.string({ unit: fc.constantFrom(...'aZ09.-_:[]%/?#@ \u00e4'.split('')), maxLength: 40 });
    fc.assert(
      fc.property(fc.oneof(printable, fc.string({ unit: 'binary', maxLength: 40 })), (s) => {
        const d = parseTunnelPath(`/tunnel/${s}`);
        if (d !== null) {
          expect(d.port).toBeGreaterThanOrEqual(1);
          expect(d.port).toBeLessThanOrEqual(65535);
          expect(normalizeHost(d.host.includes(':') ? `[${d.host}]` : d.host)).toBe(d.host);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('allowlist', () => {
  const apple = new Allowlist(APPLE_DEFAULT_ALLOW.map(parseAllowRule));

  it.each([
    ['17-courier.push.apple.com', 5223, true],
    ['1-courier.push.apple.com', 443, true],
    ['courier.push.apple.com', 5223, true],
    ['windows.courier.push.apple.com', 5223, true],
    ['3-courier.sandbox.push.apple.com', 5223, true],
    ['identity.ess.apple.com', 443, true],
    ['albert.apple.com', 443, true],
    ['init-p01st.push.apple.com', 80, true],
    ['static.ess.apple.com', 80, true],
    ['init.sandbox.push.apple.com', 443, true],
    // Carrier gateway discovery: the iTunes carrier list and the carrier-bundle hosts, TLS only.
    ['itunes.apple.com', 443, true],
    ['updates.cdn-apple.com', 443, true],
    ['appldnld.apple.com', 443, true],
    ['itunes.apple.com', 80, false],
    ['appldnld.apple.com', 80, false],
    ['x.updates.cdn-apple.com', 443, false],
    ['identity.ess.apple.com', 80, false],
    ['albert.apple.com', 5223, false],
    ['17-courier.push.apple.com', 80, false],
    ['-courier.push.apple.com', 5223, false],
    ['a.b-courier.push.apple.com', 5223, false],
    ['x.windows.courier.push.apple.com', 5223, false],
    ['courier.push.apple.com.evil.com', 5223, false],
    ['evilcourier.push.apple.com', 5223, false],
    ['apple.com', 443, false],
    ['gsa.apple.com', 443, false],
  ] as Array<[string, number, boolean]>)('%s:%d → %s', (host, port, allowed) => {
    expect(apple.allows(host, port)).toBe(allowed);
  });

  it('parses entries and rejects bad patterns', () => {
    expect(parseAllowRule('relay.example.org:443')).toEqual({ pattern: 'relay.example.org', port: 443 });
    expect(parseAllowRule('[2001:DB8::1]:443')).toEqual({ pattern: '2001:db8::1', port: 443 });
    expect(parseAllowRule('*.Relay.example.org:8443')).toEqual({ pattern: '*.relay.example.org', port: 8443 });
    for (const bad of ['relay.example.org', 'relay:0', '*:443', 'a.*.com:443', '**.a.com:443', '*.com*:443', 'a b:443', '2001:db8::1:443']) {
      expect(() => parseAllowRule(bad), bad).toThrow(BridgeConfigError);
    }
    const list = new Allowlist([parseAllowRule('*.relay.example.org:443'), parseAllowRule('203.0.113.5:443')]);
    expect(list.allows('eu.relay.example.org', 443)).toBe(true);
    expect(list.allows('relay.example.org', 443)).toBe(false);
    expect(list.allows('203.0.113.5', 443)).toBe(true);
  });
});

describe('host map', () => {
  it('looks up exact entries before starred ones, per port', () => {
    const map = new HostMap({
      '*-courier.push.apple.com:5223': '127.0.0.1:15223',
      '5-courier.push.apple.com:5223': '127.0.0.1:25223',
      'identity.ess.apple.com:443': '[::1]:8443',
    });
    expect(map.size).toBe(3);
    expect(map.lookup('5-courier.push.apple.com', 5223)).toEqual({ host: '127.0.0.1', port: 25223 });
    expect(map.lookup('6-courier.push.apple.com', 5223)).toEqual({ host: '127.0.0.1', port: 15223 });
    expect(map.lookup('6-courier.push.apple.com', 443)).toBeUndefined();
    expect(map.lookup('identity.ess.apple.com', 443)).toEqual({ host: '::1', port: 8443 });
  });

  it('reads the sandbox file shape and rejects anything else', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bridge-policy-'));
    const write = (name: string, body: string) => {
      const f = path.join(dir, name);
      writeFileSync(f, body);
      return f;
    };
    expect(readHostMapFile(write('ok.json', '{"hosts":{"albert.apple.com:443":"127.0.0.1:9443"}}'))).toEqual({
      'albert.apple.com:443': '127.0.0.1:9443',
    });
    for (const body of ['', '[]', '{"hosts":[]}', '{"hosts":{"a:1":2}}', '{}', 'null']) {
      expect(() => readHostMapFile(write('bad.json', body)), body).toThrow(BridgeConfigError);
    }
    expect(() => readHostMapFile(path.join(dir, 'missing.json'))).toThrow(BridgeConfigError);
    expect(() => new HostMap({ 'a.com:443': 'nowhere' })).toThrow(BridgeConfigError);
    expect(() => new HostMap({ 'a.com': '127.0.0.1:1' })).toThrow(BridgeConfigError);
  });
});

describe('configuration', () => {
  it('fills defaults and validates every value', () => {
    const c = resolveConfig({});
    expect(c).toMatchObject({ host: '127.0.0.1', port: 8787, token: undefined, bytesPerSecond: 1024 * 1024 });
    expect(c.allowlist.allows('albert.apple.com', 443)).toBe(true);
    expect(resolveConfig({ allowAppleDefaults: false }).allowlist.allows('albert.apple.com', 443)).toBe(false);
    const bad: Array<Record<string, unknown>> = [
      { port: 70000 },
      { port: '80' },
      { maxTunnels: 0 },
      { maxTunnels: 4, maxTunnelsPerIp: 5 },
      { connectTimeoutMs: 1.5 },
      { lowWaterBytes: 2048, highWaterBytes: 2048 },
      { token: 'short' },
      { token: 'has spaces in it, sixteen+' },
      { logLevel: 'loud' },
      { allow: 'albert.apple.com:443' },
      { allow: ['nope'] },
      { hostMap: { 'a.com:1': 5 } },
      { resolver: 'dns' },
    ];
    for (const options of bad) expect(() => resolveConfig(options as never), JSON.stringify(options)).toThrow(BridgeConfigError);
  });

  it('never puts the token in an error message', () => {
    const secret = 'bad token with spaces 0123456789';
    try {
      resolveConfig({ token: secret });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).not.toContain('spaces');
    }
  });

  it('reads CERULEAN_BRIDGE_* variables', () => {
    expect(
      optionsFromEnv({
        CERULEAN_BRIDGE_PORT: '9000',
        CERULEAN_BRIDGE_HOST: '0.0.0.0',
        CERULEAN_BRIDGE_TOKEN: 'abcdefghijklmnop',
        CERULEAN_BRIDGE_ALLOW: 'relay.example.org:443, *.relay.example.net:443',
        CERULEAN_BRIDGE_HOSTMAP: '/tmp/host-map.json',
        CERULEAN_BRIDGE_MAX_TUNNELS: '100',
        CERULEAN_BRIDGE_BYTES_PER_SECOND: '0',
        CERULEAN_BRIDGE_APPLE_DEFAULTS: 'false',
        CERULEAN_BRIDGE_TRUST_FORWARDED_FOR: '1',
        CERULEAN_BRIDGE_LOG_LEVEL: 'warn',
        CERULEAN_BRIDGE_IDLE_TIMEOUT_MS: '',
        UNRELATED: 'x',
      }),
    ).toEqual({
      port: 9000,
      host: '0.0.0.0',
      token: 'abcdefghijklmnop',
      allow: ['relay.example.org:443', '*.relay.example.net:443'],
      hostMapFile: '/tmp/host-map.json',
      maxTunnels: 100,
      bytesPerSecond: 0,
      allowAppleDefaults: false,
      trustForwardedFor: true,
      logLevel: 'warn',
    });
    expect(() => optionsFromEnv({ CERULEAN_BRIDGE_PORT: '80x' })).toThrow(BridgeConfigError);
    expect(() => optionsFromEnv({ CERULEAN_BRIDGE_APPLE_DEFAULTS: 'maybe' })).toThrow(BridgeConfigError);
  });

  it('reads a config file and refuses unknown keys', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bridge-config-'));
    const good = path.join(dir, 'bridge.json');
    writeFileSync(good, JSON.stringify({ port: 9001, allow: ['relay.example.org:443'], idleTimeoutMs: 1000 }));
    expect(readConfigFile(good)).toEqual({ port: 9001, allow: ['relay.example.org:443'], idleTimeoutMs: 1000 });
    const typo = path.join(dir, 'typo.json');
    writeFileSync(typo, JSON.stringify({ prot: 9001 }));
    expect(() => readConfigFile(typo)).toThrow(/unknown key "prot"/);
    const notObject = path.join(dir, 'list.json');
    writeFileSync(notObject, '[1]');
    expect(() => readConfigFile(notObject)).toThrow(BridgeConfigError);
  });
});

describe('access token', () => {
  const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

  it('finds the token in the header, then the subprotocol, then the query', () => {
    const q = new URLSearchParams('token=fromquery');
    expect(presentedToken(req({ authorization: 'Bearer fromheader' }), q)).toBe('fromheader');
    expect(presentedToken(req({ authorization: 'Basic xyz', 'sec-websocket-protocol': 'cerulean.bridge.v1, cerulean.token.fromproto' }), q)).toBe('fromproto');
    expect(presentedToken(req({}), q)).toBe('fromquery');
    expect(presentedToken(req({}), new URLSearchParams())).toBeUndefined();
  });

  it('compares exactly and selects only the bridge subprotocol', () => {
    expect(tokenMatches('abcdefghijklmnop', 'abcdefghijklmnop')).toBe(true);
    expect(tokenMatches('abcdefghijklmnop', 'abcdefghijklmnoq')).toBe(false);
    expect(tokenMatches('abcdefghijklmnop', 'abcdefghijklmnopq')).toBe(false);
    expect(tokenMatches('abcdefghijklmnop', undefined)).toBe(false);
    expect(selectProtocol(new Set(['cerulean.token.x', 'cerulean.bridge.v1']))).toBe('cerulean.bridge.v1');
    expect(selectProtocol(new Set(['cerulean.token.x']))).toBe(false);
  });
});

describe('token bucket', () => {
  it('lets a burst through, then asks for the time the debt takes to repay', () => {
    let now = 0;
    const bucket = new TokenBucket(1000, 500, () => now);
    expect(bucket.take(500)).toBe(0);
    expect(bucket.take(100)).toBe(100);
    now = 100;
    expect(bucket.take(0)).toBe(0);
    expect(bucket.take(1000)).toBe(1000);
    now = 10_000;
    // Refill stops at the burst size.
    expect(bucket.take(500)).toBe(0);
    expect(bucket.take(1)).toBe(1);
  });
});
