// The IDS HTTP endpoints on Apple's real hosts and paths (ids.md §1; [BG] and [PY] hard-code them):
//   profile.ess.apple.com   /WebObjects/VCProfileService.woa/wa/{authenticateUser, authenticateDS, idsGetHandles}
//   identity.ess.apple.com  /WebObjects/TDIdentityService.woa/wa/{authenticatePhoneNumber, register, deregister,
//                                                                  getDependentRegistrations}
// Lookups (`id-query`) do not come here: they ride the courier (the madrid backend uses verifyIdSignature).
import type { Accounts } from '../accounts';
import type { Clock, Log } from '../context';
import { HOSTS } from '../hosts';
import type { HttpRouter, RouteHandler, ServiceRequest } from '../http-service';
import type { SandboxPki } from '../pki';
import type { RegistrationRelay } from '../relay';
import type { Store } from '../store';
import { IdsAuth, type AuthOptions } from './auth';
import { getDependentRegistrations, getHandles } from './handles';
import { headerValue, idsErrorResponse } from './ids-request';
import { IdsRegister, type RegisterOptions } from './register';
import type { Registrations } from './registrations';
import type { SignatureDeps } from './signed-request';

export const PROFILE_SERVICE = '/WebObjects/VCProfileService.woa/wa/';
export const IDENTITY_SERVICE = '/WebObjects/TDIdentityService.woa/wa/';

export interface IdsOptions extends AuthOptions, RegisterOptions {
  /** Wire to the courier's token table: is `token` issued to the push certificate with this SPKI? */
  isTokenBoundToCert?: SignatureDeps['isTokenBoundToCert'];
}

export interface IdsDeps {
  pki: SandboxPki;
  store: Store;
  clock: Clock;
  log: Log;
  accounts: Accounts;
  relay: Pick<RegistrationRelay, 'verifyValidationData'>;
  registrations: Registrations;
  options?: IdsOptions;
}

const AUTH_BODY_LIMIT = 64 * 1024;
const REGISTER_BODY_LIMIT = 1024 * 1024;

export function addIdsRoutes(router: Pick<HttpRouter, 'add'>, deps: IdsDeps): void {
  const options = deps.options ?? {};
  const signing = { pki: deps.pki, clock: deps.clock, isTokenBoundToCert: options.isTokenBoundToCert };
  const auth = new IdsAuth(deps, options);
  const register = new IdsRegister({ ...deps, ...signing }, options);
  const handles = { ...deps, ...signing };

  const add = (host: string, path: string, methods: string[], maxBodyBytes: number, handler: RouteHandler) => {
    const endpoint = path.slice(path.lastIndexOf('/') + 1);
    router.add({
      host,
      path,
      methods,
      maxBodyBytes,
      handler: (req: ServiceRequest) => {
        // Clients send different protocol versions (1630/1640/1660) or none; recorded, never required.
        deps.log.info('ids.request', { endpoint, protocolVersion: headerValue(req, 'x-protocol-version'), userAgent: headerValue(req, 'user-agent') });
        return handler(req);
      },
      onError: idsErrorResponse,
    });
  };

  add(HOSTS.profile, `${PROFILE_SERVICE}authenticateUser`, ['POST'], AUTH_BODY_LIMIT, (r) => auth.authenticateUser(r));
  add(HOSTS.profile, `${PROFILE_SERVICE}authenticateDS`, ['POST'], AUTH_BODY_LIMIT, (r) => auth.authenticateDS(r));
  add(HOSTS.profile, `${PROFILE_SERVICE}idsGetHandles`, ['GET'], AUTH_BODY_LIMIT, (r) => getHandles(r, handles));
  add(HOSTS.identity, `${IDENTITY_SERVICE}authenticatePhoneNumber`, ['POST'], AUTH_BODY_LIMIT, (r) => auth.authenticatePhoneNumber(r));
  add(HOSTS.identity, `${IDENTITY_SERVICE}register`, ['POST'], REGISTER_BODY_LIMIT, (r) => register.register(r));
  add(HOSTS.identity, `${IDENTITY_SERVICE}deregister`, ['POST'], AUTH_BODY_LIMIT, (r) => register.deregister(r));
  add(HOSTS.identity, `${IDENTITY_SERVICE}getDependentRegistrations`, ['GET', 'POST'], AUTH_BODY_LIMIT, (r) =>
    getDependentRegistrations(r, handles),
  );
}
