// Test PKI on WebCrypto (runs in Node and Chromium): CAs, intermediates and leaves with the knobs the
// verification tests turn (validity, constraints, names, usages, signature hash).
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { toBase64 } from '../../../lib/codec/bytes';

export type KeyKind = 'ec-p256' | 'ec-p384' | 'rsa';

export interface Issued {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
  der: Uint8Array;
  pem: string;
}

export interface IssueOptions {
  subject: string;
  /** Absent: self-signed. */
  issuer?: Issued;
  kind?: KeyKind;
  ca?: boolean;
  pathLength?: number;
  dns?: string[];
  ips?: string[];
  notBefore?: Date;
  notAfter?: Date;
  /** Extended key usages; leaves default to serverAuth, null leaves the extension out. */
  eku?: string[] | null;
  keyUsage?: x509.KeyUsageFlags;
  extensions?: x509.Extension[];
  /** Hash for the issuer's signature (ECDSA issuers only), to make weak signatures. */
  signatureHash?: string;
}

const KEY_PARAMS: Record<KeyKind, RsaHashedKeyGenParams | EcKeyGenParams> = {
  'ec-p256': { name: 'ECDSA', namedCurve: 'P-256' },
  'ec-p384': { name: 'ECDSA', namedCurve: 'P-384' },
  rsa: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
};

const DAY = 86_400_000;
let serial = 1;

export async function issue(o: IssueOptions): Promise<Issued> {
  const kind = o.kind ?? 'ec-p256';
  const keys = (await crypto.subtle.generateKey(KEY_PARAMS[kind], true, ['sign', 'verify'])) as CryptoKeyPair;
  const signer = o.issuer?.keys ?? keys;
  const signerAlg = signer.privateKey.algorithm as EcKeyAlgorithm;
  const signingAlgorithm =
    signerAlg.name === 'ECDSA'
      ? { name: 'ECDSA', hash: o.signatureHash ?? (signerAlg.namedCurve === 'P-384' ? 'SHA-384' : 'SHA-256') }
      : { name: signerAlg.name };
  const extensions: x509.Extension[] = [];
  if (o.ca) {
    extensions.push(new x509.BasicConstraintsExtension(true, o.pathLength, true));
    extensions.push(new x509.KeyUsagesExtension(o.keyUsage ?? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true));
  } else {
    const eku = o.eku === undefined ? [x509.ExtendedKeyUsage.serverAuth] : o.eku;
    if (eku) extensions.push(new x509.ExtendedKeyUsageExtension(eku));
    if (o.keyUsage !== undefined) extensions.push(new x509.KeyUsagesExtension(o.keyUsage, true));
  }
  const names = [
    ...(o.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(o.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  if (names.length) extensions.push(new x509.SubjectAlternativeNameExtension(names));
  extensions.push(...(o.extensions ?? []));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: (serial++).toString(16).padStart(2, '0'),
    subject: o.subject,
    issuer: o.issuer?.cert.subject ?? o.subject,
    notBefore: o.notBefore ?? new Date(Date.now() - DAY),
    notAfter: o.notAfter ?? new Date(Date.now() + 30 * DAY),
    publicKey: keys.publicKey,
    signingKey: signer.privateKey,
    signingAlgorithm,
    extensions,
  });
  return { cert, keys, der: new Uint8Array(cert.rawData), pem: cert.toString('pem') };
}

/** PKCS#8 PEM of the private key, for node:tls servers. */
export async function privateKeyPem(issued: Issued): Promise<string> {
  const der = new Uint8Array(await crypto.subtle.exportKey('pkcs8', issued.keys.privateKey));
  const b64 = toBase64(der).replace(/(.{64})/g, '$1\n').trim();
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

export const days = (n: number) => new Date(Date.now() + n * DAY);
