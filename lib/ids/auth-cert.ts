// The auth key and auth certificate of an IDS user (ids.md §2.3, §2.4). The client makes an RSA-2048 key whose
// private half never leaves WebCrypto, sends a PKCS#10 request over it, and gets back an X.509 auth certificate;
// the same key later signs with the ID certificate that register issues over it (§5).
// The X.509 library needs a Reflect metadata polyfill, loaded before it.
import 'reflect-metadata';
import { Pkcs10CertificateRequest, Pkcs10CertificateRequestGenerator, X509Certificate } from '@peculiar/x509';
import { encodeXmlPlist, type PlistDict } from '../codec/plist';
import { equalBytes, exact, toHex, utf8 } from '../codec/bytes';
import { CryptoError, DecodeError } from '../errors';
import { subtle } from '../crypto/subtle';
import { protocolVersionOf, type IdsContext } from './context';
import { userAgent } from './device';
import { IdsStatus, statusError } from './errors';
import { requestPlist, requireData, statusOf } from './plist-http';
import type { IdsUrlKey } from './bag';

/** IDS signs requests with RSASSA-PKCS1-v1_5 SHA-1 (ids.md §3); WebCrypto binds the hash to the key. */
export const AUTH_KEY_ALGORITHM: RsaHashedKeyGenParams = {
  name: 'RSASSA-PKCS1-v1_5',
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: 'SHA-1',
};

/** A certificate IDS issued: an auth certificate (authenticate*) or an ID certificate (register). */
export interface IdsCertificate {
  userId: string;
  der: Uint8Array;
  /** NotAfter, unix ms. */
  notAfter: number;
}

// @peculiar/x509 only touches `subtle` of the Crypto object it is given; lib/ reaches WebCrypto via subtle().
function x509Crypto(): Crypto {
  return { subtle: subtle() } as unknown as Crypto;
}

/** A fresh auth key pair; the private key is not extractable unless `extractable` (Node file store only). */
export async function generateAuthKey(opts: { extractable?: boolean } = {}): Promise<CryptoKeyPair> {
  try {
    return (await subtle().generateKey(AUTH_KEY_ALGORITHM, opts.extractable ?? false, ['sign', 'verify'])) as CryptoKeyPair;
  } catch (e) {
    throw new CryptoError('keygen-failed', 'WebCrypto could not generate the RSA auth key', { cause: e });
  }
}

/** CN = lower-case hex SHA-1 of the user id ([BG], [PY]); the server does not check it. */
export async function csrCommonName(userId: string): Promise<string> {
  return toHex(new Uint8Array(await subtle().digest('SHA-1', exact(utf8(userId)))));
}

/** DER PKCS#10 over the auth key, signed SHA1withRSA (the key's hash; [RP] does the same). */
export async function makeAuthCsr(keys: CryptoKeyPair, userId: string): Promise<Uint8Array> {
  try {
    const csr = await Pkcs10CertificateRequestGenerator.create(
      { name: `CN=${await csrCommonName(userId)}`, keys, signingAlgorithm: keys.privateKey.algorithm },
      x509Crypto(),
    );
    return new Uint8Array(csr.rawData);
  } catch (e) {
    throw new CryptoError('csr-failed', 'could not make the certificate request', { cause: e });
  }
}

/** NotAfter and the public key of a certificate from IDS. */
export function readCertificate(der: Uint8Array, what: string): { notAfter: number; spki: Uint8Array } {
  try {
    const cert = new X509Certificate(exact(der));
    return { notAfter: cert.notAfter.getTime(), spki: new Uint8Array(cert.publicKey.rawData) };
  } catch (e) {
    throw new DecodeError('ids-bad-certificate', `${what}: the certificate does not parse`, { cause: e });
  }
}

function csrPublicKey(csr: Uint8Array): Uint8Array {
  try {
    return new Uint8Array(new Pkcs10CertificateRequest(exact(csr)).publicKey.rawData);
  } catch (e) {
    throw new DecodeError('bad-csr', 'the certificate request does not parse', { cause: e });
  }
}

export function authenticateDsBody(p: { authToken: string; profileId: string; csr: Uint8Array }): Uint8Array {
  return encodeXmlPlist({ 'authentication-data': { 'auth-token': p.authToken }, csr: p.csr, 'realm-user-id': p.profileId });
}

/** An auth certificate for an Apple ID, from the auth-token and profile-id of signInAppleId. */
export function authenticateDS(
  ctx: Pick<IdsContext, 'http' | 'bag' | 'device' | 'protocolVersion'>,
  p: { authToken: string; profileId: string; csr: Uint8Array },
): Promise<IdsCertificate> {
  return requestAuthCertificate(ctx, 'id-authenticate-ds-id', p.profileId, p.csr, authenticateDsBody(p), 'authenticateDS');
}

/** POSTs an authenticate* body and checks that the certificate it returns is over the request's key. */
export async function requestAuthCertificate(
  ctx: Pick<IdsContext, 'http' | 'bag' | 'device' | 'protocolVersion'>,
  bagKey: IdsUrlKey,
  userId: string,
  csr: Uint8Array,
  body: Uint8Array,
  what: string,
): Promise<IdsCertificate> {
  const dict = await requestPlist(
    ctx.http,
    {
      url: ctx.bag.url(bagKey),
      method: 'POST',
      headers: {
        'user-agent': userAgent(ctx.device),
        'x-protocol-version': protocolVersionOf(ctx),
        'content-type': 'application/x-apple-plist',
      },
      body,
    },
    what,
  );
  return parseAuthCertificateResponse(dict, userId, csr, what);
}

export function parseAuthCertificateResponse(dict: PlistDict, userId: string, csr: Uint8Array, what: string): IdsCertificate {
  const status = statusOf(dict, what);
  if (status !== IdsStatus.ok) throw statusError(status, what, { userId });
  const der = requireData(dict, 'cert', what);
  const { notAfter, spki } = readCertificate(der, what);
  if (!equalBytes(spki, csrPublicKey(csr))) throw new CryptoError('ids-certificate-key-mismatch', `${what}: the certificate is not over our key`);
  return { userId, der: der.slice(), notAfter };
}
