// startSandbox: the whole local stand-in for Apple, composed from its parts.
//
//   data dir ── store (journal + snapshot) ── pki (CA, server leaves, signing CAs)
//   HTTPS listener (one port, every Apple HTTPS host by SNI/Host) ── bags, albert, relay, carrier list, + service routes
//   HTTP listener (init-p01st bag, static.ess) ── admin page (loopback) ── TLS services (the courier) on own ports
//   host-map.json: every `apple-host:port` → the local listener that plays it
//
// Other modules plug in through `services`: each gets a ServiceContext to add HTTPS/HTTP routes on Apple hosts and
// to open TLS listeners (with SNI certificates from the PKI and its own ALPN) for non-HTTP protocols.
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { Accounts } from './accounts';
import { startAdmin } from './admin';
import { addAlbertRoutes, type AlbertOptions } from './albert';
import { addBagRoutes } from './bags';
import { addCarrierRoutes } from './carrier-bundles';
import { applyConfig, type SandboxConfig } from './config';
import { jsonLog, systemClock, type Clock, type Log } from './context';
import { DEFAULT_COURIER_HOST_COUNT, HTTP_HOSTS, HTTPS_HOSTS, writeHostMap, type HostMap } from './hosts';
import { HttpRouter, listenHttp, listenHttps, type Listener, type Route } from './http-service';
import { SandboxPki } from './pki';
import { RegistrationRelay, type RelayOptions } from './relay';
import { SmsGateway } from './sms-gateway';
import { Store } from './store';

/** https = base, http = base+1, admin = base+2, TLS services base+3, base+4, … in the order they are added. */
export const DEFAULT_PORT_BASE = 18440;

export interface SandboxPorts {
  https?: number;
  http?: number;
  admin?: number;
  /** By TLS service name, e.g. { courier: 5223 }. */
  tls?: Record<string, number>;
}

export interface SandboxOptions {
  dataDir: string;
  /** Address the Apple-facing listeners bind to (default 127.0.0.1). The admin page always binds loopback. */
  host?: string;
  /** 0 = every port ephemeral (tests). Default DEFAULT_PORT_BASE. */
  portBase?: number;
  ports?: SandboxPorts;
  clock?: Clock;
  /** A log per component; default JSON lines on stdout. */
  logger?: (component: string) => Log;
  config?: SandboxConfig;
  services?: readonly SandboxService[];
  /** `APNSCourierHostcount` in the bag and the numbered courier hosts in the host map. */
  courierHostCount?: number;
  albert?: AlbertOptions;
  relay?: RelayOptions;
  /** Serve the admin page (default true). */
  admin?: boolean;
}

/** A module that plugs into the sandbox (the courier, IDS). */
export interface SandboxService {
  name: string;
  start(ctx: ServiceContext): Promise<ServiceInstance | void>;
}

export interface ServiceInstance {
  close(): Promise<void>;
}

export type AlpnChoice = (offer: { servername: string; protocols: string[] }) => string | undefined;

export interface TlsServiceSpec {
  name: string;
  /** `host:port` keys the host map sends to this listener, e.g. courierHostKeys(). */
  hostKeys: readonly string[];
  /** Protocols in preference order, or a callback that picks one (it may return a string the client did not offer). */
  alpn?: readonly string[] | AlpnChoice;
  /** Called once per completed TLS handshake; the service owns the socket from here on. */
  onConnection(socket: tls.TLSSocket): void;
}

export interface TlsServiceHandle {
  name: string;
  port: number;
}

export interface ServiceContext {
  clock: Clock;
  log: Log;
  store: Store;
  pki: SandboxPki;
  accounts: Accounts;
  gateway: SmsGateway;
  relay: RegistrationRelay;
  courierHostCount: number;
  /**
   * Adds an HTTP(S) route on an Apple host during start(); the host joins the host map (port 443 or 80). A host no
   * server identity covers needs `pki.ensureServerIdentity({ name, sans })` first, or TLS clients will refuse it.
   */
  route(route: Route): void;
  /** Opens a TLS listener (SNI certificates from the PKI) whose `hostKeys` the host map sends to it. */
  addTlsService(spec: TlsServiceSpec): Promise<TlsServiceHandle>;
}

export interface Sandbox {
  dataDir: string;
  hostMap: HostMap;
  hostMapFile: string;
  caFile: string;
  caPem: string;
  adminUrl: string | undefined;
  ports: { https: number; http: number; admin: number | undefined; tls: Record<string, number> };
  clock: Clock;
  store: Store;
  pki: SandboxPki;
  accounts: Accounts;
  gateway: SmsGateway;
  relay: RegistrationRelay;
  /** Where the host map sends `apple-host:port`, as the bridge would resolve it. */
  resolve(hostPort: string): { host: string; port: number } | undefined;
  close(): Promise<void>;
}

export async function startSandbox(options: SandboxOptions): Promise<Sandbox> {
  const dataDir = path.resolve(options.dataDir);
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? ((c: string) => jsonLog(`sandbox.${c}`));
  const log = logger('main');
  const bind = options.host ?? '127.0.0.1';
  const advertise = bind === '0.0.0.0' || bind === '::' ? '127.0.0.1' : bind;
  const base = options.portBase ?? DEFAULT_PORT_BASE;
  const portFor = (explicit: number | undefined, offset: number) => explicit ?? (base === 0 ? 0 : base + offset);
  const courierHostCount = options.courierHostCount ?? DEFAULT_COURIER_HOST_COUNT;

  // Undone in reverse on close, or when start-up fails half way.
  const closers: Array<() => Promise<void>> = [];
  const closeAll = async () => {
    for (const c of closers.splice(0).reverse()) {
      await c().catch((e: unknown) => log.error('sandbox.close-failed', { message: (e as Error)?.message ?? String(e) }));
    }
  };

  try {
    const store = await Store.open(path.join(dataDir, 'store'), { log: logger('store') });
    closers.push(() => store.close());
    const pki = await SandboxPki.load(dataDir, clock, { log: logger('pki') });
    const accounts = new Accounts(store, clock, logger('accounts'));
    const gateway = new SmsGateway(accounts, pki, logger('sms-gateway'));
    const relay = new RegistrationRelay(store, pki, clock, logger('relay'), options.relay);
    if (options.config) await applyConfig(options.config, { accounts, relay });

    const router = new HttpRouter(logger('http'));
    addBagRoutes(router, { pki, clock, courierHostCount });
    addAlbertRoutes(router, { pki, store, clock, log: logger('albert'), options: options.albert });
    relay.addRoutes(router);
    addCarrierRoutes(router, { accounts });

    const tlsPorts: Record<string, number> = {};
    const tlsHostKeys = new Map<string, string>();
    const addTlsService = async (spec: TlsServiceSpec): Promise<TlsServiceHandle> => {
      if (spec.name in tlsPorts) throw new Error(`TLS service ${spec.name} already exists`);
      for (const key of spec.hostKeys) {
        const owner = tlsHostKeys.get(key);
        if (owner) throw new Error(`${key} already belongs to TLS service ${owner}`);
      }
      const offset = 3 + Object.keys(tlsPorts).length;
      const listener = await listenTls(spec, pki, bind, portFor(options.ports?.tls?.[spec.name], offset), logger(spec.name));
      closers.push(() => listener.close());
      tlsPorts[spec.name] = listener.port;
      for (const key of spec.hostKeys) tlsHostKeys.set(key, spec.name);
      return { name: spec.name, port: listener.port };
    };

    for (const service of options.services ?? []) {
      const instance = await service.start({
        clock,
        log: logger(service.name),
        store,
        pki,
        accounts,
        gateway,
        relay,
        courierHostCount,
        route: (r) => router.add(r),
        addTlsService,
      });
      if (instance) closers.push(() => instance.close());
    }

    const httpsListener = await listenHttps(router, pki, { host: bind, port: portFor(options.ports?.https, 0), log: logger('https') });
    closers.push(() => httpsListener.close());
    const httpListener = await listenHttp(router, { host: bind, port: portFor(options.ports?.http, 1), log: logger('http') });
    closers.push(() => httpListener.close());
    let admin: (Listener & { url: string }) | undefined;
    if (options.admin !== false) {
      admin = await startAdmin({ accounts, gateway, relay, pki, port: portFor(options.ports?.admin, 2), log: logger('admin') });
      closers.push(() => admin!.close());
    }

    const hosts: Record<string, string> = {};
    const at = (port: number) => (advertise.includes(':') ? `[${advertise}]:${port}` : `${advertise}:${port}`);
    for (const h of new Set([...HTTPS_HOSTS, ...router.hosts('https')])) hosts[`${h}:443`] = at(httpsListener.port);
    for (const h of new Set([...HTTP_HOSTS, ...router.hosts('http')])) hosts[`${h}:80`] = at(httpListener.port);
    for (const [key, name] of tlsHostKeys) hosts[key] = at(tlsPorts[name]!);
    const hostMap: HostMap = { hosts, caFile: pki.caFile, caPem: pki.rootCaPem, ...(admin ? { admin: admin.url } : {}) };
    const hostMapFile = await writeHostMap(dataDir, hostMap);
    log.info('sandbox.started', { dataDir, https: httpsListener.port, http: httpListener.port, admin: admin?.url, tls: tlsPorts });

    let closing: Promise<void> | undefined;
    return {
      dataDir,
      hostMap,
      hostMapFile,
      caFile: pki.caFile,
      caPem: pki.rootCaPem,
      adminUrl: admin?.url,
      ports: { https: httpsListener.port, http: httpListener.port, admin: admin?.port, tls: { ...tlsPorts } },
      clock,
      store,
      pki,
      accounts,
      gateway,
      relay,
      resolve(hostPort) {
        const target = hosts[hostPort.toLowerCase()];
        if (!target) return undefined;
        const colon = target.lastIndexOf(':');
        return { host: target.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(target.slice(colon + 1)) };
      },
      close() {
        closing ??= closeAll().then(() => log.info('sandbox.stopped', { dataDir }));
        return closing;
      },
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}

function listenTls(spec: TlsServiceSpec, pki: SandboxPki, host: string, port: number, log: Log): Promise<Listener> {
  const sockets = new Set<Socket>();
  const alpn = spec.alpn;
  const server = tls.createServer(
    {
      SNICallback: (name, cb) => {
        try {
          cb(null, pki.secureContext(name));
        } catch (e) {
          cb(e as Error);
        }
      },
      ...pki.defaultCredentials(),
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.3',
      ...(typeof alpn === 'function' ? { ALPNCallback: alpn } : alpn ? { ALPNProtocols: [...alpn] } : {}),
    },
    (socket) => {
      try {
        spec.onConnection(socket);
      } catch (e) {
        log.error('tls.handler-failed', { message: (e as Error)?.message ?? String(e) });
        socket.destroy();
      }
    },
  );
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', (e) => log.info('tls.client-error', { message: e.message }));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      server.on('error', (e) => log.error('tls.server-error', { message: e.message }));
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            for (const s of sockets) s.destroy();
          }),
      });
    });
  });
}
