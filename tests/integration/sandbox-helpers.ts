// Shared by the sandbox integration tests: a sandbox on ephemeral ports in a temp dir, and an HTTP(S) client that
// resolves Apple host names through the sandbox's host map and trusts only its root CA (Node's own TLS and HTTP).
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import http from 'node:http';
import https from 'node:https';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { silentLog, systemClock } from '../../sandbox/context';
import { SandboxPki } from '../../sandbox/pki';
import { startSandbox, type Sandbox, type SandboxOptions } from '../../sandbox/sandbox';

x509.cryptoProvider.set(globalThis.crypto);

export async function tempDir(prefix = 'cerulean-sandbox-'): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * A sandbox on ephemeral ports with a silent log. Unless `freshPki`, its pki/ is copied from a template shared by
 * all test runs: RSA key generation is most of a first start, and SandboxPki.load re-checks (and if need be
 * reissues) whatever it finds, so a stale template only costs time.
 */
export async function startTestSandbox(dataDir: string, options: Partial<SandboxOptions> = {}, freshPki = false): Promise<Sandbox> {
  if (!freshPki) await seedPki(dataDir);
  return startSandbox({ dataDir, portBase: 0, logger: () => silentLog, ...options });
}

/** Gives a data dir that has no pki/ yet a copy of the shared template. */
export async function seedPki(dataDir: string): Promise<void> {
  if (!existsSync(path.join(dataDir, 'pki'))) await cp(await pkiTemplate(), path.join(dataDir, 'pki'), { recursive: true });
}

async function pkiTemplate(): Promise<string> {
  const template = path.join(os.tmpdir(), 'cerulean-sandbox-test-pki-v1');
  if (!existsSync(path.join(template, 'pki', 'root-ca.pem'))) {
    const work = await mkdtemp(path.join(os.tmpdir(), 'cerulean-sandbox-test-pki-'));
    const pki = await SandboxPki.load(work, systemClock);
    await pki.fairPlayIdentity();
    // Another worker may have won the race; its template is as good.
    await rename(work, template).catch(() => rm(work, { recursive: true, force: true }));
  }
  return path.join(template, 'pki');
}

export interface TestResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

/** A request to an Apple URL, sent where the host map says, with SNI and Host set to the Apple name. */
export function appleRequest(
  sb: Sandbox,
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: Uint8Array | string } = {},
): Promise<TestResponse> {
  const u = new URL(url);
  const secure = u.protocol === 'https:';
  const port = u.port ? Number(u.port) : secure ? 443 : 80;
  const target = sb.resolve(`${u.hostname}:${port}`);
  if (!target) throw new Error(`host map has no ${u.hostname}:${port}`);
  const body = init.body === undefined ? undefined : typeof init.body === 'string' ? Buffer.from(init.body) : Buffer.from(init.body);
  const options: https.RequestOptions = {
    host: target.host,
    port: target.port,
    method: init.method ?? (body ? 'POST' : 'GET'),
    path: u.pathname + u.search,
    headers: { host: u.hostname, ...(body ? { 'content-length': String(body.length) } : {}), ...init.headers },
    agent: false,
    ...(secure ? { servername: u.hostname, ca: sb.caPem } : {}),
  };
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const b = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b, text: b.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A JSON request to the admin API. */
export async function adminRequest(sb: Sandbox, apiPath: string, body?: unknown, headers: Record<string, string> = {}): Promise<TestResponse> {
  const u = new URL(apiPath, sb.adminUrl);
  const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: Number(u.port),
        path: u.pathname + u.search,
        method: data ? 'POST' : 'GET',
        headers: { ...(data ? { 'content-type': 'application/json', 'content-length': String(data.length) } : {}), ...headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const b = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b, text: b.toString('utf8') });
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

/** An RSA key pair and a PKCS#10 request over it, as albert and IDS clients make them. */
export async function makeCsr(
  options: { bits?: number; hash?: 'SHA-1' | 'SHA-256'; name?: string } = {},
): Promise<{ keys: CryptoKeyPair; csr: x509.Pkcs10CertificateRequest; pem: string; der: Uint8Array }> {
  const alg = { name: 'RSASSA-PKCS1-v1_5', hash: options.hash ?? 'SHA-1' };
  const keys = (await crypto.subtle.generateKey(
    { ...alg, modulusLength: options.bits ?? 1024, publicExponent: new Uint8Array([1, 0, 1]) },
    true,
    ['sign', 'verify'],
  )) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: options.name ?? 'C=US, ST=CA, L=Cupertino, O=Apple Inc., OU=iPhone, CN=Client Push Certificate',
    keys,
    signingAlgorithm: alg,
  });
  return { keys, csr, pem: csr.toString('pem'), der: new Uint8Array(csr.rawData) };
}
