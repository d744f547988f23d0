// The sandbox's trust: a root CA that clients pin in sandbox mode, and everything it vouches for.
//
//   Cerulean Sandbox Root CA
//   ├── Cerulean Sandbox Server Authentication CA   (the "Apple Server Authentication CA" of apns.md §1.3)
//   │   ├── server leaves, one per service family (hosts.ts SERVER_IDENTITIES), EKU serverAuth
//   │   └── bag signer (RSA-SHA1 signature over the inner bag, apns.md §1.1 / ids.md §1; the TLS key)
//   ├── Cerulean Sandbox iPhone Device CA            (albert: issues push certificates)
//   ├── Cerulean Sandbox IDS CA                      (auth and ID certificates)
//   └── Cerulean Sandbox FairPlay CA                 (created on first use: a FairPlay identity for test clients)
//
// Keys and certificates live as PEM files in <dataDir>/pki and are reused on restart; anything missing, no longer
// signed by its issuer, near expiry, or with a changed SAN list is reissued. The TLS chain's dates follow the real
// clock (TLS clients check against it); certificates the sandbox itself checks (push, IDS) follow the injected Clock.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createHmac, createPublicKey, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, readFile } from 'node:fs/promises';
import path from 'node:path';
import tls from 'node:tls';
import { concat, equalBytes, exact, u32be } from '../lib/codec/bytes';
import { CryptoError } from '../lib/errors';
import { silentLog, type Clock, type Log } from './context';
import { SERVER_IDENTITIES, sanMatches, type ServerIdentity } from './hosts';
import { writeFileAtomic } from './store';

x509.cryptoProvider.set(globalThis.crypto);

const RSA_SHA256: RsaHashedImportParams = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
/** Every signature a client makes to Apple (courier nonce, IDS headers, FairPlay, bag) is RSA PKCS#1 v1.5 SHA-1. */
const RSA_SHA1: RsaHashedImportParams = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-1' };
const DAY = 86_400_000;
const MAX_CERT_BYTES = 16 * 1024;
const ORG = 'Cerulean Sandbox';

export type IdsCertKind = 'auth' | 'id';

export interface IssuedCertificate {
  der: Uint8Array;
  pem: string;
  /** Hex serial number. */
  serial: string;
  notAfter: number;
}

/** A verified push certificate: its key verifies courier nonces and IDS `x-push-sig` (SHA-1). */
export interface PushCertificateInfo {
  publicKey: CryptoKey;
  /** DER SubjectPublicKeyInfo: a stable identity to bind push tokens to. */
  spki: Uint8Array;
  serial: string;
  /** The device id albert put in the subject CN. */
  deviceId: string;
  notAfter: number;
}

export type IdsCertificateCheck =
  | {
      ok: true;
      userId: string;
      kind: IdsCertKind;
      /** Verifies IDS request signatures (RSASSA-PKCS1-v1_5, SHA-1). */
      publicKey: CryptoKey;
      spki: Uint8Array;
      serial: string;
      notAfter: number;
    }
  | { ok: false; reason: 'expired' | 'bad' };

/** A verified PKCS#10 request. */
export interface CsrInfo {
  /** The request's key, for SHA-1 signature checks. */
  publicKey: CryptoKey;
  spki: Uint8Array;
  modulusBits: number;
  subject: string;
}

export interface FairPlayIdentity {
  /** PKCS#8 PEM of the device's FairPlay RSA key (1024 bits, as the republished Apple one). */
  privateKeyPem: string;
  /** Concatenated DER certificates, leaf first: the `FairPlayCertChain` of an activation request. */
  certificateChain: Uint8Array;
}

/** Key and chain (leaf first, then the intermediate) for node:tls. */
export interface ServerCredentials {
  identity: string;
  key: string;
  cert: string;
}

/** MACs bound to the sandbox's secret; each purpose gets its own derived key. */
export interface MacKeys {
  mac(purpose: string, ...parts: Uint8Array[]): Uint8Array;
  verifyMac(purpose: string, mac: Uint8Array, ...parts: Uint8Array[]): boolean;
}

interface KeyMaterial {
  pem: string;
  /** Signs certificates (SHA-256). */
  signing: CryptoKey;
  publicKey: CryptoKey;
  spki: Uint8Array;
}

interface Entity {
  cert: x509.X509Certificate;
  der: Uint8Array;
  pem: string;
  key: KeyMaterial;
}

interface CertSpec {
  file: string;
  keyFile: string;
  keyBits: number;
  subject: x509.JsonName;
  /** Absent: self-signed. */
  issuer?: Entity;
  /** Set for a CA: its pathLength. */
  caPathLength?: number;
  validityDays: number;
  renewBeforeDays: number;
  eku?: string[];
  sans?: readonly string[];
}

export interface PkiOptions {
  serverIdentities?: readonly ServerIdentity[];
  log?: Log;
}

function caName(cn: string): x509.JsonName {
  return [{ C: ['US'] }, { O: [ORG] }, { OU: ['Certification Authority'] }, { CN: [cn] }];
}

export class SandboxPki implements MacKeys {
  private readonly keys = new Map<string, Promise<KeyMaterial>>();
  private readonly leaves = new Map<string, { identity: ServerIdentity; entity: Entity; context?: tls.SecureContext }>();
  private readonly sha1Keys = new Map<string, Promise<CryptoKey>>();
  private fairPlay: Promise<{ ca: Entity; identity: FairPlayIdentity }> | null = null;

  private constructor(
    readonly dir: string,
    private readonly clock: Clock,
    private readonly log: Log,
    private readonly secret: Buffer,
    private readonly root: Entity,
    private readonly serverCa: Entity,
    private readonly albertCa: Entity,
    private readonly idsCa: Entity,
    private readonly bagSigner: Entity,
  ) {}

  /** Loads `<dataDir>/pki`, creating or renewing whatever is missing or stale. */
  static async load(dataDir: string, clock: Clock, options: PkiOptions = {}): Promise<SandboxPki> {
    const dir = path.join(path.resolve(dataDir), 'pki');
    const log = options.log ?? silentLog;
    const keys = new Map<string, Promise<KeyMaterial>>();
    const key = (name: string, bits: number) => loadKey(keys, dir, name, bits);
    // Start every key at once: generation dominates first start and runs on the thread pool.
    for (const name of ['root-ca', 'server-ca', 'albert-ca', 'ids-ca', 'server-tls']) void key(name, 2048).catch(() => {});

    const entity = (spec: CertSpec) => loadEntity(dir, spec, key, log);
    const secret = await loadSecret(dir);
    const root = await entity({
      file: 'root-ca',
      keyFile: 'root-ca',
      keyBits: 2048,
      subject: caName('Cerulean Sandbox Root CA'),
      caPathLength: 1,
      validityDays: 20 * 365,
      renewBeforeDays: 365,
    });
    const subCa = (file: string, cn: string) =>
      entity({ file, keyFile: file, keyBits: 2048, subject: caName(cn), issuer: root, caPathLength: 0, validityDays: 10 * 365, renewBeforeDays: 180 });
    const [serverCa, albertCa, idsCa] = await Promise.all([
      subCa('server-ca', 'Cerulean Sandbox Server Authentication CA'),
      subCa('albert-ca', 'Cerulean Sandbox iPhone Device CA'),
      subCa('ids-ca', 'Cerulean Sandbox IDS CA'),
    ]);
    // Apple signs a bag with the serving host's TLS key (certs[0] is a server certificate), so this leaf shares it.
    const bagSigner = await entity({
      file: 'bag-signer',
      keyFile: 'server-tls',
      keyBits: 2048,
      subject: [{ C: ['US'] }, { O: [ORG] }, { CN: ['Cerulean Sandbox Bag Signing'] }],
      issuer: serverCa,
      validityDays: 825,
      renewBeforeDays: 30,
    });
    const pki = new SandboxPki(dir, clock, log, secret, root, serverCa, albertCa, idsCa, bagSigner);
    for (const [k, v] of keys) pki.keys.set(k, v);
    // In order: the first identity is the default for clients without SNI.
    for (const id of options.serverIdentities ?? SERVER_IDENTITIES) await pki.ensureServerIdentity(id);
    return pki;
  }

  /** Path of the root CA PEM that clients trust in sandbox mode. */
  get caFile(): string {
    return path.join(this.dir, 'root-ca.pem');
  }

  get rootCaPem(): string {
    return this.root.pem;
  }

  get rootCaDer(): Uint8Array {
    return this.root.der;
  }

  /** The intermediate, for clients that anchor at "Apple Server Authentication CA" as [BG]/[RP] do. */
  get serverCaPem(): string {
    return this.serverCa.pem;
  }

  /** Issues (or loads) a server certificate for these names; all leaves share one TLS key. */
  async ensureServerIdentity(identity: ServerIdentity): Promise<void> {
    if (!/^[a-z0-9-]+$/.test(identity.name)) throw new Error(`bad server identity name ${identity.name}`);
    const entity = await loadEntity(
      this.dir,
      {
        file: `server-${identity.name}`,
        keyFile: 'server-tls',
        keyBits: 2048,
        subject: [{ C: ['US'] }, { O: [ORG] }, { CN: [identity.sans[0] ?? identity.name] }],
        issuer: this.serverCa,
        validityDays: 397,
        renewBeforeDays: 30,
        eku: [x509.ExtendedKeyUsage.serverAuth],
        sans: identity.sans,
      },
      (name, bits) => loadKey(this.keys, this.dir, name, bits),
      this.log,
    );
    this.leaves.set(identity.name, { identity, entity });
  }

  /** Key and chain for `hostname` (an exact SAN wins over a wildcard); undefined if no identity covers it. */
  serverContext(hostname: string): ServerCredentials | undefined {
    const leaf = this.leafFor(hostname);
    if (!leaf) return undefined;
    return { identity: leaf.identity.name, key: leaf.entity.key.pem, cert: leaf.entity.pem + this.serverCa.pem };
  }

  /** Key and chain for clients that send no SNI: the first identity's. */
  defaultCredentials(): { key: string; cert: string } {
    const leaf = this.leaves.values().next().value;
    if (!leaf) throw new Error('no server identity configured');
    return { key: leaf.entity.key.pem, cert: leaf.entity.pem + this.serverCa.pem };
  }

  /** A node:tls SecureContext for SNI callbacks; falls back to the first identity for unknown names. */
  secureContext(hostname: string | undefined): tls.SecureContext {
    const leaf = (hostname ? this.leafFor(hostname) : undefined) ?? this.leaves.values().next().value;
    if (!leaf) throw new Error('no server identity configured');
    leaf.context ??= tls.createSecureContext({
      key: leaf.entity.key.pem,
      cert: leaf.entity.pem + this.serverCa.pem,
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.3',
    });
    return leaf.context;
  }

  private leafFor(hostname: string) {
    const all = [...this.leaves.values()];
    const host = hostname.toLowerCase();
    return (
      all.find((l) => l.identity.sans.some((s) => !s.startsWith('*.') && sanMatches(s, host))) ??
      all.find((l) => l.identity.sans.some((s) => sanMatches(s, host)))
    );
  }

  /** Parses a PKCS#10 request (PEM or DER) and checks its self-signature; only RSA keys of 1024–4096 bits. */
  async parseCsr(input: Uint8Array | string): Promise<CsrInfo> {
    const size = typeof input === 'string' ? input.length : input.length;
    if (size === 0 || size > MAX_CERT_BYTES) throw new CryptoError('bad-csr', 'certificate request is empty or too large');
    let csr: x509.Pkcs10CertificateRequest;
    try {
      const text = typeof input === 'string' ? input : isPemBytes(input) ? new TextDecoder().decode(input) : null;
      csr = new x509.Pkcs10CertificateRequest(text ?? exact(input as Uint8Array));
    } catch (e) {
      throw new CryptoError('bad-csr', 'certificate request does not parse', { cause: e });
    }
    let valid = false;
    let publicKey: CryptoKey;
    try {
      valid = await csr.verify();
      publicKey = await csr.publicKey.export(RSA_SHA1, ['verify']);
    } catch (e) {
      throw new CryptoError('bad-csr', 'certificate request key or signature is unusable', { cause: e });
    }
    if (!valid) throw new CryptoError('bad-csr-signature', 'certificate request signature does not verify');
    const modulusBits = (publicKey.algorithm as RsaHashedKeyAlgorithm).modulusLength;
    if (modulusBits < 1024 || modulusBits > 4096) throw new CryptoError('bad-csr', `RSA key of ${modulusBits} bits`);
    return { publicKey, spki: new Uint8Array(csr.publicKey.rawData), modulusBits, subject: csr.subject };
  }

  /** Signs a push certificate (albert) for a request's key; checks the request's self-signature first. */
  async issuePushCertificate(csr: Uint8Array | string, options: { deviceId?: string } = {}): Promise<IssuedCertificate> {
    const info = await this.parseCsr(csr);
    const now = this.clock.now();
    const deviceId = cleanName(options.deviceId ?? '') || crypto.randomUUID().toUpperCase();
    return this.issue(this.albertCa, {
      publicKey: info.spki,
      subject: [{ C: ['US'] }, { ST: ['CA'] }, { L: ['Cupertino'] }, { O: [ORG] }, { OU: ['iPhone'] }, { CN: [deviceId] }],
      notBefore: now - 5 * 60_000,
      notAfter: now + 365 * DAY,
      eku: [x509.ExtendedKeyUsage.clientAuth],
    });
  }

  /** The key, serial and device id of a push certificate this sandbox issued and the clock says is current. */
  async verifyPushCertificate(der: Uint8Array): Promise<PushCertificateInfo | null> {
    const cert = await this.checkIssued(der, this.albertCa);
    if (!cert) return null;
    const now = this.clock.now();
    if (now < cert.notBefore.getTime() || now > cert.notAfter.getTime()) return null;
    const publicKey = await exportSha1(cert);
    if (!publicKey) return null;
    return {
      publicKey,
      spki: new Uint8Array(cert.publicKey.rawData),
      serial: cert.serialNumber,
      deviceId: cert.subjectName.getField('CN')[0] ?? '',
      notAfter: cert.notAfter.getTime(),
    };
  }

  /** An IDS auth or ID certificate over `publicKey` (a CryptoKey or DER SPKI) for `userId`. */
  async issueIdsCertificate(req: {
    publicKey: CryptoKey | Uint8Array;
    userId: string;
    kind: IdsCertKind;
    notAfter: number;
  }): Promise<IssuedCertificate> {
    if (typeof req.userId !== 'string' || req.userId.length === 0 || req.userId.length > 256) {
      throw new CryptoError('bad-user-id', 'user id must be 1–256 characters');
    }
    const now = this.clock.now();
    if (!Number.isFinite(req.notAfter) || req.notAfter <= now) throw new CryptoError('bad-validity', 'notAfter must be in the future');
    return this.issue(this.idsCa, {
      publicKey: req.publicKey instanceof Uint8Array ? exact(req.publicKey) : req.publicKey,
      subject: [{ O: [ORG] }, { OU: [IDS_KIND_OU[req.kind]] }, { CN: [req.userId] }],
      notBefore: now - 60_000,
      notAfter: req.notAfter,
      eku: [x509.ExtendedKeyUsage.clientAuth],
    });
  }

  /** Checks an IDS certificate: issued by this sandbox's IDS CA (else `bad`), current by the clock (else `expired`). */
  async verifyIdsCertificate(der: Uint8Array): Promise<IdsCertificateCheck> {
    const cert = await this.checkIssued(der, this.idsCa);
    if (!cert) return { ok: false, reason: 'bad' };
    const ou = cert.subjectName.getField('OU');
    const cn = cert.subjectName.getField('CN');
    const kind = (Object.keys(IDS_KIND_OU) as IdsCertKind[]).find((k) => IDS_KIND_OU[k] === ou[0]);
    const userId = cn[0];
    if (!kind || ou.length !== 1 || cn.length !== 1 || !userId) return { ok: false, reason: 'bad' };
    const now = this.clock.now();
    if (now < cert.notBefore.getTime() - 5 * 60_000) return { ok: false, reason: 'bad' };
    if (now > cert.notAfter.getTime()) return { ok: false, reason: 'expired' };
    const publicKey = await exportSha1(cert);
    if (!publicKey) return { ok: false, reason: 'bad' };
    return {
      ok: true,
      userId,
      kind,
      publicKey,
      spki: new Uint8Array(cert.publicKey.rawData),
      serial: cert.serialNumber,
      notAfter: cert.notAfter.getTime(),
    };
  }

  /** RSA-SHA1 over the exact inner bag bytes, with the chain to put in the outer plist's `certs` (leaf first). */
  async signBag(bytes: Uint8Array): Promise<{ signature: Uint8Array; certs: Uint8Array[] }> {
    const key = await this.sha1Key(this.bagSigner);
    const signature = new Uint8Array(await crypto.subtle.sign(RSA_SHA1, key, exact(bytes)));
    return { signature, certs: [this.bagSigner.der, this.serverCa.der] };
  }

  /** A FairPlay key and chain issued by the sandbox's FairPlay CA, for clients activating against the sandbox. */
  async fairPlayIdentity(): Promise<FairPlayIdentity> {
    return (await this.loadFairPlay()).identity;
  }

  /** `FairPlaySignature` check: the chain's leaf was issued by the sandbox FairPlay CA and signed `data` (SHA-1). */
  async verifyFairPlaySignature(chain: Uint8Array, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
    const leafDer = firstDerElement(chain);
    if (!leafDer) return false;
    const { ca } = await this.loadFairPlay();
    const cert = await this.checkIssued(leafDer, ca);
    if (!cert) return false;
    const key = await exportSha1(cert);
    if (!key) return false;
    return crypto.subtle.verify(RSA_SHA1, key, exact(signature), exact(data)).catch(() => false);
  }

  mac(purpose: string, ...parts: Uint8Array[]): Uint8Array {
    const key = createHmac('sha256', this.secret).update(`cerulean-sandbox:${purpose}`).digest();
    const h = createHmac('sha256', key);
    for (const p of parts) h.update(u32be(p.length)).update(p);
    return new Uint8Array(h.digest());
  }

  verifyMac(purpose: string, mac: Uint8Array, ...parts: Uint8Array[]): boolean {
    const expected = this.mac(purpose, ...parts);
    return mac.length === expected.length && timingSafeEqual(mac, expected);
  }

  private async issue(
    issuer: Entity,
    p: { publicKey: CryptoKey | ArrayBuffer | Uint8Array; subject: x509.JsonName; notBefore: number; notAfter: number; eku: string[] },
  ): Promise<IssuedCertificate> {
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: p.subject,
      issuer: issuer.cert.subjectName,
      notBefore: new Date(p.notBefore),
      notAfter: new Date(p.notAfter),
      publicKey: p.publicKey instanceof Uint8Array ? exact(p.publicKey) : p.publicKey,
      signingKey: issuer.key.signing,
      signingAlgorithm: RSA_SHA256,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension(p.eku),
        await x509.AuthorityKeyIdentifierExtension.create(issuer.key.publicKey),
      ],
    });
    return { der: new Uint8Array(cert.rawData), pem: cert.toString('pem') + '\n', serial: cert.serialNumber, notAfter: cert.notAfter.getTime() };
  }

  // Parses untrusted DER and returns it only if `issuer` signed it.
  private async checkIssued(der: Uint8Array, issuer: Entity): Promise<x509.X509Certificate | null> {
    if (!(der instanceof Uint8Array) || der.length === 0 || der.length > MAX_CERT_BYTES || der[0] !== 0x30) return null;
    try {
      const cert = new x509.X509Certificate(exact(der));
      if (cert.issuer !== issuer.cert.subject) return null;
      return (await cert.verify({ publicKey: issuer.cert.publicKey, signatureOnly: true })) ? cert : null;
    } catch {
      return null;
    }
  }

  private sha1Key(entity: Entity): Promise<CryptoKey> {
    let k = this.sha1Keys.get(entity.pem);
    if (!k) {
      k = crypto.subtle.importKey('pkcs8', pemToDer(entity.key.pem), RSA_SHA1, false, ['sign']);
      this.sha1Keys.set(entity.pem, k);
    }
    return k;
  }

  private loadFairPlay(): Promise<{ ca: Entity; identity: FairPlayIdentity }> {
    this.fairPlay ??= (async () => {
      const key = (name: string, bits: number) => loadKey(this.keys, this.dir, name, bits);
      const ca = await loadEntity(
        this.dir,
        { file: 'fairplay-ca', keyFile: 'fairplay-ca', keyBits: 2048, subject: caName('Cerulean Sandbox FairPlay CA'), issuer: this.root, caPathLength: 0, validityDays: 10 * 365, renewBeforeDays: 180 },
        key,
        this.log,
      );
      const device = await loadEntity(
        this.dir,
        { file: 'fairplay-device', keyFile: 'fairplay-device', keyBits: 1024, subject: [{ C: ['US'] }, { O: [ORG] }, { OU: ['iPhone'] }, { CN: ['Cerulean Sandbox FairPlay Device'] }], issuer: ca, validityDays: 10 * 365, renewBeforeDays: 180 },
        key,
        this.log,
      );
      return { ca, identity: { privateKeyPem: device.key.pem, certificateChain: concat(device.der, ca.der) } };
    })();
    return this.fairPlay;
  }
}

const IDS_KIND_OU: Record<IdsCertKind, string> = { auth: 'IDS Authentication', id: 'IDS Identity' };

function loadKey(cache: Map<string, Promise<KeyMaterial>>, dir: string, name: string, bits: number): Promise<KeyMaterial> {
  let k = cache.get(name);
  if (!k) {
    k = readOrCreateKey(dir, name, bits);
    cache.set(name, k);
  }
  return k;
}

async function readOrCreateKey(dir: string, name: string, bits: number): Promise<KeyMaterial> {
  const file = path.join(dir, `${name}.key.pem`);
  let pem: string;
  if (existsSync(file)) {
    pem = await readFile(file, 'utf8');
  } else {
    const pair = (await crypto.subtle.generateKey(
      { ...RSA_SHA256, modulusLength: bits, publicExponent: new Uint8Array([1, 0, 1]) },
      true,
      ['sign', 'verify'],
    )) as CryptoKeyPair;
    pem = derToPem('PRIVATE KEY', new Uint8Array(await crypto.subtle.exportKey('pkcs8', pair.privateKey)));
    await writeFileAtomic(file, pem, 0o600);
    await chmod(file, 0o600);
  }
  const spki = new Uint8Array(createPublicKey(pem).export({ type: 'spki', format: 'der' }));
  const [signing, publicKey] = await Promise.all([
    crypto.subtle.importKey('pkcs8', pemToDer(pem), RSA_SHA256, false, ['sign']),
    crypto.subtle.importKey('spki', spki, RSA_SHA256, true, ['verify']),
  ]);
  return { pem, signing, publicKey, spki };
}

async function loadEntity(
  dir: string,
  spec: CertSpec,
  key: (name: string, bits: number) => Promise<KeyMaterial>,
  log: Log,
): Promise<Entity> {
  const material = await key(spec.keyFile, spec.keyBits);
  const file = path.join(dir, `${spec.file}.pem`);
  if (existsSync(file)) {
    const pem = await readFile(file, 'utf8');
    const reason = await staleReason(pem, spec, material);
    if (!reason) {
      const cert = new x509.X509Certificate(pem);
      return { cert, der: new Uint8Array(cert.rawData), pem: cert.toString('pem') + '\n', key: material };
    }
    log.info('pki.reissue', { cert: spec.file, reason });
  }
  const cert = await createCertificate(spec, material);
  const pem = cert.toString('pem') + '\n';
  await writeFileAtomic(file, pem);
  return { cert, der: new Uint8Array(cert.rawData), pem, key: material };
}

async function staleReason(pem: string, spec: CertSpec, material: KeyMaterial): Promise<string | null> {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(pem);
  } catch {
    return 'unreadable';
  }
  if (!equalBytes(new Uint8Array(cert.publicKey.rawData), material.spki)) return 'key changed';
  const issuerCert = spec.issuer?.cert ?? cert;
  const issuerKey = spec.issuer?.key.publicKey ?? material.publicKey;
  if (cert.issuer !== issuerCert.subject) return 'issuer changed';
  if (!(await cert.verify({ publicKey: issuerKey, signatureOnly: true }).catch(() => false))) return 'issuer changed';
  if (cert.notAfter.getTime() - Date.now() < spec.renewBeforeDays * DAY) return 'near expiry';
  if (spec.sans) {
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    const have = new Set(san?.names.items.map((n) => n.value.toLowerCase()) ?? []);
    if (have.size !== spec.sans.length || spec.sans.some((s) => !have.has(s.toLowerCase()))) return 'names changed';
  }
  return null;
}

async function createCertificate(spec: CertSpec, material: KeyMaterial): Promise<x509.X509Certificate> {
  const now = Date.now();
  const isCa = spec.caPathLength !== undefined;
  const issuerKey = spec.issuer?.key ?? material;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(isCa, spec.caPathLength, true),
    new x509.KeyUsagesExtension(
      isCa
        ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign
        : x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
      true,
    ),
    await x509.SubjectKeyIdentifierExtension.create(material.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(issuerKey.publicKey),
  ];
  if (spec.eku) extensions.push(new x509.ExtendedKeyUsageExtension(spec.eku));
  if (spec.sans) extensions.push(new x509.SubjectAlternativeNameExtension(spec.sans.map((value) => ({ type: 'dns' as const, value }))));
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: spec.subject,
    issuer: spec.issuer?.cert.subjectName ?? spec.subject,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + spec.validityDays * DAY),
    publicKey: material.publicKey,
    signingKey: issuerKey.signing,
    signingAlgorithm: RSA_SHA256,
    extensions,
  });
}

async function loadSecret(dir: string): Promise<Buffer> {
  const file = path.join(dir, 'sandbox-secret.key');
  if (existsSync(file)) {
    const hex = (await readFile(file, 'utf8')).trim();
    if (/^[0-9a-f]{64}$/.test(hex)) return Buffer.from(hex, 'hex');
    throw new CryptoError('bad-secret', `${file} must hold 32 bytes of hex`);
  }
  const secret = randomBytes(32);
  await writeFileAtomic(file, secret.toString('hex') + '\n', 0o600);
  return secret;
}

async function exportSha1(cert: x509.X509Certificate): Promise<CryptoKey | null> {
  try {
    return await cert.publicKey.export(RSA_SHA1, ['verify']);
  } catch {
    return null;
  }
}

// Positive 128-bit serial: the top bit clear so DER needs no sign byte, the next set so the length is fixed.
function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x3f) | 0x40;
  return b.toString('hex');
}

function cleanName(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '').slice(0, 64).trim();
}

function isPemBytes(b: Uint8Array): boolean {
  const head = new TextDecoder().decode(b.subarray(0, 64)).trimStart();
  return head.startsWith('-----BEGIN');
}

export function pemToDer(pem: string): Uint8Array<ArrayBuffer> {
  const body = pem.replace(/-----(BEGIN|END)[^-]*-----/g, '').replace(/\s+/g, '');
  return new Uint8Array(Buffer.from(body, 'base64'));
}

export function derToPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

/** The first DER TLV of a concatenation of certificates (FairPlayCertChain), or null if it is malformed. */
export function firstDerElement(bytes: Uint8Array): Uint8Array | null {
  if (bytes.length < 2 || bytes[0] !== 0x30) return null;
  const first = bytes[1]!;
  let len: number;
  let header: number;
  if (first < 0x80) {
    len = first;
    header = 2;
  } else {
    const n = first & 0x7f;
    if (n === 0 || n > 3 || bytes.length < 2 + n) return null;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + bytes[2 + i]!;
    header = 2 + n;
  }
  if (header + len > bytes.length) return null;
  return bytes.subarray(0, header + len);
}
