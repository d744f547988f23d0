// The init bags (apns.md §1.1, ids.md §1): an outer XML plist {bag: data(inner XML plist), certs: [DER, leaf first],
// signature: RSA-SHA1(bag)} whose inner keys name Apple's real hosts; the host map sends clients here.
import { encodeXmlPlist, type PlistDict } from '../lib/codec/plist';
import type { Clock } from './context';
import { COURIER_HOSTNAME, COURIER_SANDBOX_HOSTNAME, DEFAULT_COURIER_HOST_COUNT, HOSTS } from './hosts';
import type { HttpRouter, ServiceResponse } from './http-service';
import type { SandboxPki } from './pki';

export const APNS_BAG_PATH = '/bag';
export const IDS_BAG_PATH = '/WebObjects/VCInit.woa/wa/getBag';

/** Inner APNs bag. Only the courier keys matter to clients; the rest are tuning knobs they may ignore. */
export function apnsBag(options: { courierHostCount?: number; sandbox?: boolean } = {}): PlistDict {
  return {
    APNSCourierHostname: options.sandbox ? COURIER_SANDBOX_HOSTNAME : COURIER_HOSTNAME,
    APNSCourierHostcount: options.courierHostCount ?? DEFAULT_COURIER_HOST_COUNT,
    APNSCourierStatus: true,
    ClientConnectionRetryAttempts: 100,
    APNSBagExpiry: 3600,
    Environment: options.sandbox ? 'Sandbox' : 'Production',
  };
}

const ESS = (host: string, service: string, action: string) => `https://${host}/WebObjects/${service}.woa/wa/${action}`;

/** Inner IDS bag: the real key names and URLs of ids.md §1 (the host map points them at the sandbox). */
export function idsBag(clock: Clock): PlistDict {
  const profile = (a: string) => ESS(HOSTS.profile, 'VCProfileService', a);
  const identity = (a: string) => ESS(HOSTS.identity, 'TDIdentityService', a);
  return {
    'vc-profile-authenticate': profile('authenticateUser'),
    'id-authenticate-ds-id': profile('authenticateDS'),
    'id-provision-ds-id': profile('authenticateDS'),
    'id-authenticate-phone-number': identity('authenticatePhoneNumber'),
    'id-provision-phone-number': identity('authenticatePhoneNumber'),
    'id-authenticate-multiple-users': identity('authenticateUsers'),
    'id-get-handles': profile('idsGetHandles'),
    'id-register': identity('register'),
    'id-deregister': identity('deregister'),
    'id-get-dependent-registrations': identity('getDependentRegistrations'),
    'id-query': ESS(HOSTS.query, 'QueryService', 'query'),
    'id-validation-cert': `http://${HOSTS.static}/identity/validation/cert-1.0.plist`,
    'id-initialize-validation': identity('initializeValidation'),
    'id-report-spam': identity('reportSpam'),
    'apns-ids-query-min-version': 2,
    'max-uri-multi-query': 35,
    'max-entry-multi-service-query': 50,
    'phone-registration-retry-interval-seconds': 86400,
    'vc-registration-hbi': 2317246,
    'bag-expiry-timestamp': clock.now() + 3_600_000,
  };
}

/** The outer signed plist around an inner bag. */
export async function signedBag(pki: SandboxPki, inner: PlistDict): Promise<Uint8Array> {
  const bag = encodeXmlPlist(inner);
  const { signature, certs } = await pki.signBag(bag);
  return encodeXmlPlist({ bag, certs, signature });
}

export function addBagRoutes(router: HttpRouter, deps: { pki: SandboxPki; clock: Clock; courierHostCount?: number }): void {
  const apns = (sandbox: boolean) => async (): Promise<ServiceResponse> => ({
    status: 200,
    headers: {
      'content-type': 'application/x-apple-plist',
      'cache-control': 'public, max-age=3599',
      server: 'APNS Bagger',
    },
    body: await signedBag(deps.pki, apnsBag({ courierHostCount: deps.courierHostCount, sandbox })),
  });
  // init-p01st is fetched over plain HTTP by [PY]/[RP]; apsd itself uses https://init.push.apple.com/bag.
  router.add({ host: HOSTS.apnsBagHttp, path: APNS_BAG_PATH, methods: ['GET'], schemes: ['http', 'https'], handler: apns(false) });
  router.add({ host: HOSTS.apnsBag, path: APNS_BAG_PATH, methods: ['GET'], handler: apns(false) });
  router.add({ host: HOSTS.apnsBagSandbox, path: APNS_BAG_PATH, methods: ['GET'], handler: apns(true) });
  router.add({
    host: HOSTS.idsInit,
    path: IDS_BAG_PATH,
    methods: ['GET'],
    handler: async () => ({
      status: 200,
      headers: { 'content-type': 'text/xml', 'cache-control': 'max-age=3492' },
      body: await signedBag(deps.pki, idsBag(deps.clock)),
    }),
  });
}
