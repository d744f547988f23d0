// The protocol services the sandbox runs by default, as SandboxService plug-ins: the APNs courier (with the IDS
// lookup and iMessage routing backends on its topics, and Apple's provider push path on api.push.apple.com) and the
// IDS HTTP endpoints. They share one Registrations table and the courier's token registry, so IDS checks that an
// x-push-token belongs to the signing push cert.
import { createHash, KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { createCourier, type Courier } from './courier/courier';
import { selectCourierAlpn } from './courier/framing';
import { createProviderHandler } from './courier/provider';
import { courierHostKeys } from './hosts';
import { jsonResponse, type RouteHandler, type ServiceResponse } from './http-service';
import { addIdsRoutes } from './ids/ids-service';
import { RegisterFaults } from './ids/register';
import { Registrations } from './ids/registrations';
import { installMadrid } from './madrid';
import type { SandboxService, ServiceContext } from './sandbox';
import type { Json } from './store';

/** Apple's provider API hosts (production, development): `POST /3/device/<hex token>` with `apns-topic`. */
export const PROVIDER_HOSTS = ['api.push.apple.com', 'api.sandbox.push.apple.com'] as const;
/** The router's cap; the provider handler itself answers 413 PayloadTooLarge above Apple's 4096 bytes. */
const PROVIDER_BODY_LIMIT = 64 * 1024;
/** Apple's reasons for what the router rejects before the handler runs. */
const PROVIDER_ROUTER_REASONS: Record<number, string> = { 405: 'MethodNotAllowed', 413: 'PayloadTooLarge' };

export interface ProtocolServicesOptions {
  /** Offer the packed framing (apns-pack-v1) to clients that ask for it (default true). */
  packedFraming?: boolean;
  /** 'strict' accepts only validation data minted by the sandbox relay (default); 'lenient' any non-empty blob. */
  validation?: 'strict' | 'lenient';
}

export interface ProtocolServices {
  services: SandboxService[];
  /** Set once the sandbox has started them. */
  courier(): Courier;
  registrations(): Registrations;
  faults: RegisterFaults;
}

/** The courier, IDS and iMessage routing, wired together. */
export function protocolServices(options: ProtocolServicesOptions = {}): ProtocolServices {
  let courier: Courier | undefined;
  let registrations: Registrations | undefined;
  const faults = new RegisterFaults();
  const registrationsFor = (ctx: ServiceContext) => (registrations ??= Registrations.open(ctx.store, ctx.clock, ctx.log));

  const courierService: SandboxService = {
    name: 'courier',
    async start(ctx) {
      const c = createCourier({
        clock: ctx.clock,
        log: ctx.log,
        // The courier keeps plain JSON records; Store is the durable journal behind them.
        store: {
          get: <T>(table: string, key: string) => ctx.store.get(table, key) as T | undefined,
          put: (table, key, value) => ctx.store.put(table, key, value as Json),
          delete: (table, key) => ctx.store.delete(table, key),
          entries: <T>(table: string) => ctx.store.entries(table) as Iterable<[string, T]>,
        },
        async verifyPushCertificate(der) {
          const info = await ctx.pki.verifyPushCertificate(der);
          if (!info) return null;
          return { publicKey: KeyObject.from(info.publicKey), serial: info.serial };
        },
      });
      courier = c;
      const madrid = installMadrid(c, { pki: ctx.pki, store: ctx.store, clock: ctx.clock, log: ctx.log, registrations: registrationsFor(ctx) });
      await ctx.addTlsService({
        name: 'courier',
        hostKeys: courierHostKeys(ctx.courierHostCount),
        alpn: ({ protocols }) => selectCourierAlpn(protocols, { packed: options.packedFraming !== false }),
        onConnection: (socket) => c.handleConnection(socket),
      });
      const push = providerRoute(c);
      for (const host of PROVIDER_HOSTS) {
        ctx.route({
          host,
          path: '/3/device/',
          prefix: true,
          methods: ['POST'],
          maxBodyBytes: PROVIDER_BODY_LIMIT,
          handler: push,
          onError: (status, reason) => jsonResponse({ reason: PROVIDER_ROUTER_REASONS[status] ?? reason }, status),
        });
      }
      return {
        async close() {
          madrid.close();
          await c.close();
        },
      };
    },
  };

  const idsService: SandboxService = {
    name: 'ids',
    async start(ctx) {
      addIdsRoutes(
        { add: ctx.route },
        {
          pki: ctx.pki,
          store: ctx.store,
          clock: ctx.clock,
          log: ctx.log,
          accounts: ctx.accounts,
          relay: ctx.relay,
          registrations: registrationsFor(ctx),
          options: {
            faults,
            validation: options.validation ?? 'strict',
            // x-push-token must be the token the courier minted for the push key that signed the request.
            isTokenBoundToCert: (token, spki) =>
              courier ? courier.isTokenBoundToKey(token, createHash('sha256').update(spki).digest('hex')) : false,
          },
        },
      );
    },
  };

  return {
    services: [courierService, idsService],
    courier: () => {
      if (!courier) throw new Error('the courier has not started');
      return courier;
    },
    registrations: () => {
      if (!registrations) throw new Error('IDS has not started');
      return registrations;
    },
    faults,
  };
}

/**
 * The provider push path as a router handler. createProviderHandler speaks node:http, while the router hands over a
 * request whose body it has already read: the body is replayed as a stream and the handler's answer captured.
 */
function providerRoute(courier: Courier): RouteHandler {
  const handle = createProviderHandler(courier);
  return async (req) => {
    const query = req.query.toString();
    const incoming = Object.assign(Readable.from([Buffer.from(req.body)]), {
      url: query ? `${req.path}?${query}` : req.path,
      method: req.method,
      headers: req.headers,
    }) as unknown as IncomingMessage;
    const answer: ServiceResponse = { status: 404, headers: {}, body: '' };
    const outgoing = {
      writeHead(status: number, headers: Record<string, string | number>) {
        answer.status = status;
        // The router sets content-length from the body it sends.
        const kept = Object.entries(headers).filter(([k]) => k !== 'content-length');
        answer.headers = Object.fromEntries(kept.map(([k, v]) => [k, String(v)]));
        return outgoing;
      },
      end(body: string) {
        answer.body = body;
      },
    };
    if (!(await handle(incoming, outgoing as unknown as ServerResponse))) return jsonResponse({ reason: 'BadPath' }, 404);
    return answer;
  };
}
