// Server certificate verification against a pinned trust store. Only the configured anchors are trusted (no
// system or bundled roots, no fetching of missing issuers), and an anchor may be an intermediate: Apple's
// courier is pinned to "Apple Server Authentication CA" rather than to a root (apns.md §1.3).
// The X.509 parser needs a Reflect metadata polyfill, loaded before it.
import 'reflect-metadata';
import {
  BasicConstraintsExtension,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  X509Certificate,
} from '@peculiar/x509';
import { equalBytes, exact, fromBase64 } from '../codec/bytes';
import { NetError } from './errors';

/** A certificate as PEM text (one or more blocks) or DER bytes. */
export type CertificateInput = string | Uint8Array;

export interface TrustAnchor {
  readonly der: Uint8Array;
  readonly cert: X509Certificate;
}

/** Longest chain a server may present, and so the most signature checks one handshake can cost. */
export const MAX_CHAIN_LENGTH = 10;

const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const OID_ANY_EKU = '2.5.29.37.0';
/** Critical extensions this verifier acts on (or, for certificate policies, may safely ignore). */
const UNDERSTOOD_CRITICAL = new Set([
  '2.5.29.15', // key usage
  '2.5.29.17', // subject alternative name
  '2.5.29.19', // basic constraints
  '2.5.29.37', // extended key usage
  '2.5.29.32', // certificate policies: no policy is required, so none can fail
]);

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----/g;

/** Parses the pinned roots; a trust store that cannot be read is a configuration error, never "trust nothing". */
export function parseTrustAnchors(inputs: readonly CertificateInput[]): TrustAnchor[] {
  const ders: Uint8Array[] = [];
  for (const input of inputs) {
    if (typeof input !== 'string') {
      ders.push(input);
      continue;
    }
    const blocks = [...input.matchAll(PEM_BLOCK)];
    if (blocks.length === 0) throw new NetError('bad-trust-anchor', 'a trusted root is not a PEM certificate');
    for (const block of blocks) ders.push(fromBase64(block[1] ?? ''));
  }
  if (ders.length === 0) throw new NetError('bad-trust-anchor', 'no trusted roots were configured');
  return ders.map((der) => {
    try {
      return { der, cert: new X509Certificate(exact(der)) };
    } catch (e) {
      throw new NetError('bad-trust-anchor', 'a trusted root is not a valid certificate', { cause: e });
    }
  });
}

/**
 * Verifies a server's chain (leaf first, as sent in the TLS Certificate message) for `serverName`. Resolves with
 * the verified path, leaf first and ending with the anchor; rejects with a NetError naming what failed.
 */
export async function verifyServerChain(
  chain: readonly Uint8Array[],
  serverName: string,
  anchors: readonly TrustAnchor[],
  now: Date = new Date(),
): Promise<Uint8Array[]> {
  if (chain.length === 0) throw new NetError('tls-bad-certificate', 'the server sent no certificate');
  if (chain.length > MAX_CHAIN_LENGTH) {
    throw new NetError('tls-bad-certificate', `the server sent more than ${MAX_CHAIN_LENGTH} certificates`);
  }
  const presented = chain.map((der) => ({ der, cert: parseCertificate(der) }));
  const leaf = presented[0]!;
  const path = await buildPath(leaf, presented.slice(1), anchors);
  for (const { cert } of path) {
    if (now < cert.notBefore || now > cert.notAfter) {
      throw new NetError('tls-certificate-expired', `certificate "${cert.subject}" is outside its validity period`);
    }
  }
  // Constraints of certificates that vouch for others; a pinned leaf vouches for nobody.
  for (let i = 1; i < path.length; i++) checkIssuer(path[i]!.cert, i - 1);
  for (const { cert } of path.slice(0, -1)) checkCriticalExtensions(cert);
  checkLeafUsage(leaf.cert);
  if (!certificateNames(leaf.cert).some((name) => hostnameMatches(name, serverName))) {
    throw new NetError('tls-bad-hostname', `the certificate is not valid for ${serverName}`);
  }
  return path.map((c) => c.der);
}

/**
 * RFC 6125 matching of one certificate name against the host: case-insensitive; a wildcard only as the whole
 * leftmost label, standing for exactly one label, and never directly under a top-level domain; IP addresses
 * match only literally.
 */
export function hostnameMatches(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase().replace(/\.$/, '');
  const h = host.toLowerCase().replace(/\.$/, '');
  if (!p || !h) return false;
  if (isIpLiteral(h)) return p === h;
  if (!isDnsName(h)) return false;
  if (!p.startsWith('*.')) return !p.includes('*') && p === h;
  const rest = p.slice(2);
  if (rest.includes('*') || !rest.includes('.')) return false;
  const dot = h.indexOf('.');
  return dot > 0 && h.slice(dot + 1) === rest;
}

type Candidate = { der: Uint8Array; cert: X509Certificate };

function parseCertificate(der: Uint8Array): X509Certificate {
  try {
    return new X509Certificate(exact(der));
  } catch (e) {
    throw new NetError('tls-bad-certificate', 'the server sent a malformed certificate', { cause: e });
  }
}

/**
 * Walks from the leaf towards an anchor, one issuer at a time, preferring anchors. It never backtracks, so a
 * hostile chain costs at most (chain + anchors) signature checks per step.
 */
async function buildPath(
  leaf: Candidate,
  intermediates: Candidate[],
  anchors: readonly TrustAnchor[],
): Promise<Candidate[]> {
  const path: Candidate[] = [leaf];
  const unused = [...intermediates];
  let current = leaf;
  for (;;) {
    if (anchors.some((a) => equalBytes(a.der, current.der))) return path;
    const anchor = await findIssuer(current, anchors);
    if (anchor) {
      path.push(anchor);
      return path;
    }
    const next = path.length < MAX_CHAIN_LENGTH ? await findIssuer(current, unused) : undefined;
    if (!next) {
      throw new NetError('tls-untrusted-certificate', `no trusted issuer for "${current.cert.subject}"`);
    }
    unused.splice(unused.indexOf(next), 1);
    path.push(next);
    current = next;
  }
}

async function findIssuer(child: Candidate, candidates: readonly Candidate[]): Promise<Candidate | undefined> {
  for (const c of candidates) {
    if (c.cert.subject !== child.cert.issuer) continue;
    if (await signedBy(child.cert, c.cert)) return c;
  }
  return undefined;
}

async function signedBy(child: X509Certificate, issuer: X509Certificate): Promise<boolean> {
  // SHA-1 (and anything weaker) signatures can be forged; refuse them on every certificate we rely on.
  const hash = child.signatureAlgorithm.hash?.name?.toUpperCase();
  if (hash !== 'SHA-256' && hash !== 'SHA-384' && hash !== 'SHA-512') return false;
  try {
    return await child.verify({ publicKey: issuer, signatureOnly: true });
  } catch {
    return false;
  }
}

/** `below` = how many intermediates sit between this issuer and the leaf. */
function checkIssuer(cert: X509Certificate, below: number): void {
  const bc = readExtension(cert, BasicConstraintsExtension);
  if (!bc?.ca) throw new NetError('tls-bad-certificate', `"${cert.subject}" issues certificates but is not a CA`);
  if (bc.pathLength !== undefined && below > bc.pathLength) {
    throw new NetError('tls-bad-certificate', `"${cert.subject}" allows a shorter chain (path length)`);
  }
  const ku = readExtension(cert, KeyUsagesExtension);
  if (ku && !(ku.usages & KeyUsageFlags.keyCertSign)) {
    throw new NetError('tls-bad-certificate', `"${cert.subject}" may not sign certificates (key usage)`);
  }
}

function checkLeafUsage(cert: X509Certificate): void {
  const eku = readExtension(cert, ExtendedKeyUsageExtension);
  if (eku && !eku.usages.some((u) => u === OID_SERVER_AUTH || u === OID_ANY_EKU)) {
    throw new NetError('tls-bad-certificate', 'the certificate is not for TLS servers (extended key usage)');
  }
  // Every suite offered here is ephemeral (EC)DHE: the server's key signs the handshake.
  const ku = readExtension(cert, KeyUsagesExtension);
  if (ku && !(ku.usages & KeyUsageFlags.digitalSignature)) {
    throw new NetError('tls-bad-certificate', 'the certificate key may not sign (key usage)');
  }
}

function checkCriticalExtensions(cert: X509Certificate): void {
  for (const ext of readExtensions(cert)) {
    if (ext.critical && !UNDERSTOOD_CRITICAL.has(ext.type)) {
      throw new NetError('tls-bad-certificate', `"${cert.subject}" has an unsupported critical extension ${ext.type}`);
    }
  }
}

/** DNS and IP subject alternative names; the subject CN only when there is no SAN extension at all. */
function certificateNames(cert: X509Certificate): string[] {
  const san = readExtension(cert, SubjectAlternativeNameExtension);
  if (san) return san.names.items.filter((n) => n.type === 'dns' || n.type === 'ip').map((n) => n.value);
  return cert.subjectName.getField('CN');
}

function readExtensions(cert: X509Certificate) {
  try {
    return cert.extensions;
  } catch (e) {
    throw new NetError('tls-bad-certificate', `"${cert.subject}" has a malformed extension`, { cause: e });
  }
}

function readExtension<T extends { type: string }>(
  cert: X509Certificate,
  type: new (raw: BufferSource) => T,
): T | undefined {
  const found = readExtensions(cert).filter((e): e is typeof e & T => e instanceof type);
  if (found.length > 1) throw new NetError('tls-bad-certificate', `"${cert.subject}" repeats an extension`);
  return found[0];
}

function isIpLiteral(h: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(h) || h.includes(':');
}

function isDnsName(h: string): boolean {
  return h.length <= 253 && h.split('.').every((l) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(l));
}
