// The protocol services the sandbox runs by default, as SandboxService plug-ins: the APNs courier (with the IDS
// lookup and iMessage routing backends on its topics) and the IDS HTTP endpoints. They share one Registrations
// table and the courier's token registry, so IDS checks that an x-push-token belongs to the signing push cert.
import { createHash, KeyObject } from 'node:crypto';
import { createCourier, type Courier } from './courier/courier';
import { selectCourierAlpn } from './courier/framing';
import { courierHostKeys } from './hosts';
import { addIdsRoutes } from './ids/ids-service';
import { RegisterFaults } from './ids/register';
import { Registrations } from './ids/registrations';
import { installMadrid } from './madrid';
import type { SandboxService, ServiceContext } from './sandbox';
import type { Json } from './store';

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
