// Trust and hosts: the data dir gets a root CA and a host map; every Apple host name answers TLS 1.2 and 1.3 with a
// chain that verifies against the root CA alone and names the host; a plugged-in TLS service (a stand-in courier)
// gets its own listener, ALPN and every courier host in the map.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COURIER_HOSTNAME, courierHostKeys, HOST_MAP_FILE, HTTP_HOSTS, HTTPS_HOSTS, type HostMap } from '../../sandbox/hosts';
import type { Sandbox, SandboxService } from '../../sandbox/sandbox';
import { startTestSandbox, tempDir } from './sandbox-helpers';

// Answers every connection with its ALPN protocol and SNI name, then closes: enough to prove the plumbing.
const fakeCourier: SandboxService = {
  name: 'courier',
  async start(ctx) {
    await ctx.addTlsService({
      name: 'courier',
      hostKeys: courierHostKeys(ctx.courierHostCount),
      alpn: ['apns-pack-v1', 'apns-security-v3'],
      onConnection(socket) {
        socket.end(`${socket.alpnProtocol || 'none'} ${socket.servername}`);
      },
    });
  },
};

function connect(sb: Sandbox, hostPort: string, servername: string, version: tls.SecureVersion, alpn?: string[]) {
  const target = sb.resolve(hostPort);
  if (!target) throw new Error(`no ${hostPort} in host map`);
  return new Promise<{ socket: tls.TLSSocket; data: string }>((resolve, reject) => {
    const socket = tls.connect({
      host: target.host,
      port: target.port,
      servername,
      ca: sb.caPem,
      minVersion: version,
      maxVersion: version,
      ALPNProtocols: alpn,
    });
    let data = '';
    socket.on('data', (d: Buffer) => (data += d.toString()));
    socket.once('secureConnect', () => {
      if (!alpn) {
        socket.end();
        resolve({ socket, data });
      }
    });
    socket.once('end', () => resolve({ socket, data }));
    socket.once('error', reject);
  });
}

describe('sandbox trust and hosts', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let sb: Sandbox;

  beforeAll(async () => {
    tmp = await tempDir();
    // A fresh PKI: this suite is the one that checks what first start creates.
    sb = await startTestSandbox(tmp.dir, { services: [fakeCourier], courierHostCount: 10 }, true);
  });
  afterAll(async () => {
    await sb?.close();
    await tmp?.remove();
  });

  it('writes host-map.json and the root CA file', async () => {
    const map = JSON.parse(await readFile(`${tmp.dir}/${HOST_MAP_FILE}`, 'utf8')) as HostMap;
    expect(map.caFile).toBe(sb.caFile);
    expect(await readFile(map.caFile, 'utf8')).toBe(sb.caPem);
    expect(map.caPem).toBe(sb.caPem);
    expect(map.admin).toBe(sb.adminUrl);
    const root = new X509Certificate(map.caPem);
    expect(root.subject).toContain('CN=Cerulean Sandbox Root CA');
    expect(root.ca).toBe(true);
    expect(root.verify(root.publicKey)).toBe(true);

    const https = `127.0.0.1:${sb.ports.https}`;
    for (const h of HTTPS_HOSTS) expect(map.hosts[`${h}:443`]).toBe(https);
    for (const h of HTTP_HOSTS) expect(map.hosts[`${h}:80`]).toBe(`127.0.0.1:${sb.ports.http}`);
    const courier = `127.0.0.1:${sb.ports.tls.courier}`;
    // The bag says 10, but clients that hard-code 1…50 must still find every numbered host.
    for (let n = 0; n <= 50; n++) {
      expect(map.hosts[`${n}-courier.push.apple.com:5223`]).toBe(courier);
      expect(map.hosts[`${n}-courier.push.apple.com:443`]).toBe(courier);
    }
    expect(map.hosts['51-courier.push.apple.com:5223']).toBeUndefined();
    expect(map.hosts['courier.push.apple.com:5223']).toBe(courier);
    expect(map.hosts['init.push.apple.com:443']).toBe(https);
  });

  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    it(`every HTTPS host verifies against the root CA with its own name (${version})`, async () => {
      for (const host of HTTPS_HOSTS) {
        const { socket } = await connect(sb, `${host}:443`, host, version);
        expect(socket.authorized, host).toBe(true);
        expect(socket.getProtocol()).toBe(version);
        const peer = socket.getPeerCertificate(true);
        expect(tls.checkServerIdentity(host, peer), host).toBeUndefined();
        expect(peer.issuer.CN).toBe('Cerulean Sandbox Server Authentication CA');
        expect(peer.issuerCertificate.issuer.CN).toBe('Cerulean Sandbox Root CA');
        const leaf = new X509Certificate(peer.raw);
        expect(leaf.keyUsage ?? []).toContain('1.3.6.1.5.5.7.3.1');
      }
    });

    it(`the courier listener serves courier.push.apple.com with ALPN (${version})`, async () => {
      const { socket, data } = await connect(sb, '7-courier.push.apple.com:5223', COURIER_HOSTNAME, version, ['apns-security-v3']);
      expect(socket.authorized).toBe(true);
      expect(data).toBe(`apns-security-v3 ${COURIER_HOSTNAME}`);
      const peer = socket.getPeerCertificate();
      expect(peer.subjectaltname).toContain('DNS:courier.push.apple.com');
      expect(peer.subjectaltname).toContain('DNS:*.push.apple.com');
      expect(peer.subjectaltname).toContain('DNS:courier.sandbox.push.apple.com');
      // The numbered name is covered by the wildcard too.
      expect(tls.checkServerIdentity('7-courier.push.apple.com', peer)).toBeUndefined();
      const preferred = await connect(sb, 'courier.push.apple.com:443', COURIER_HOSTNAME, version, ['apns-security-v3', 'apns-pack-v1']);
      expect(preferred.data).toBe(`apns-pack-v1 ${COURIER_HOSTNAME}`);
    });
  }

  it('a name the sandbox does not serve fails verification', async () => {
    await expect(connect(sb, 'albert.apple.com:443', 'www.example.com', 'TLSv1.3')).rejects.toThrow(/altnames|Hostname/);
  });

  it('a client that trusts only the public roots rejects the sandbox', async () => {
    const target = sb.resolve('albert.apple.com:443')!;
    await expect(
      new Promise((resolve, reject) => {
        const s = tls.connect({ host: target.host, port: target.port, servername: 'albert.apple.com' }, () => resolve(s));
        s.once('error', reject);
      }),
    ).rejects.toThrow(/certificate/);
  });
});
