// Test fixtures for the courier suites: an in-memory store, a tiny albert CA issuing RSA-1024 push certificates,
// a real TLS listener on 127.0.0.1, and a raw-frame client (legacy or packed) built on lib/codec.
import 'reflect-metadata';
import { X509Certificate as NodeX509 } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import * as x509 from '@peculiar/x509';
import {
  buildConnect,
  buildMessage,
  parseConnectResponse,
  type ApnsMessageType,
  type ConnectResponse,
  type MessageInput,
} from '../../lib/codec/apns-commands';
import { FrameDecoder, encodeFrame, type ApnsFrame } from '../../lib/codec/apns-frame';
import {
  PackedEncoder,
  PackedFrameDecoder,
  apnsToPacked,
  packedToApns,
  type PackedFrame,
} from '../../lib/codec/apns-packed';
import { courierNonce, signCourierNonce } from '../../lib/crypto/request-signing';
import { FakeClock, silentLog, type Clock, type Log } from '../../sandbox/context';
import { createCourier, type Courier } from '../../sandbox/courier/courier';
import type { CourierDeps, CourierStore } from '../../sandbox/courier/deps';
import { plistPayloadCodec, selectCourierAlpn } from '../../sandbox/courier/framing';
import type { CourierOptions } from '../../sandbox/courier/options';

// ---- store ------------------------------------------------------------------------------------------------------

/** Values go through JSON, as they would through a file, so nothing shares identity with the courier's objects. */
export class MemoryStore implements CourierStore {
  private readonly tables = new Map<string, Map<string, string>>();

  get<T>(table: string, key: string): T | undefined {
    const v = this.tables.get(table)?.get(key);
    return v === undefined ? undefined : (JSON.parse(v) as T);
  }

  async put(table: string, key: string, value: unknown): Promise<void> {
    let t = this.tables.get(table);
    if (!t) this.tables.set(table, (t = new Map()));
    t.set(key, JSON.stringify(value));
  }

  async delete(table: string, key: string): Promise<void> {
    this.tables.get(table)?.delete(key);
  }

  *entries<T>(table: string): Iterable<[string, T]> {
    for (const [k, v] of this.tables.get(table) ?? []) yield [k, JSON.parse(v) as T];
  }

  size(table: string): number {
    return this.tables.get(table)?.size ?? 0;
  }
}

// ---- PKI --------------------------------------------------------------------------------------------------------

x509.cryptoProvider.set(globalThis.crypto);
const subtle = globalThis.crypto.subtle;
const RSA_SHA1: RsaHashedKeyGenParams = {
  name: 'RSASSA-PKCS1-v1_5',
  modulusLength: 1024,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: 'SHA-1',
};
const EC_SIGN: EcKeyGenParams & EcdsaParams = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
const DAY = 86_400_000;

export interface TestCa {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
}

export interface PushIdentity {
  der: Uint8Array;
  privateKey: CryptoKey;
}

let serial = 1;
const nextSerial = () => (serial++).toString(16).padStart(2, '0');

export async function makeCa(name = 'CN=Test Albert CA'): Promise<TestCa> {
  const keys = (await subtle.generateKey(EC_SIGN, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(),
    name,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 365 * DAY),
    keys,
    signingAlgorithm: EC_SIGN,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  return { cert, keys };
}

/** An albert-style push certificate: RSA-1024 key (SHA-1 signing), issued by `ca`. */
export async function issuePushCert(ca: TestCa): Promise<PushIdentity> {
  const keys = (await subtle.generateKey(RSA_SHA1, false, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: nextSerial(),
    subject: 'CN=Client Push Certificate, OU=iPhone, O=Apple Inc., C=US',
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 365 * DAY),
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: EC_SIGN,
  });
  return { der: new Uint8Array(cert.rawData), privateKey: keys.privateKey };
}

/** deps.verifyPushCertificate for a test CA: issued by it, signature valid, within validity at the clock's time. */
export function pushCertVerifier(ca: TestCa, clock: Clock): CourierDeps['verifyPushCertificate'] {
  const caCert = new NodeX509(Buffer.from(ca.cert.rawData));
  return async (der) => {
    try {
      const cert = new NodeX509(Buffer.from(der));
      const now = clock.now();
      if (!cert.checkIssued(caCert) || !cert.verify(caCert.publicKey)) return null;
      if (now < Date.parse(cert.validFrom) || now > Date.parse(cert.validTo)) return null;
      return { publicKey: cert.publicKey, serial: cert.serialNumber };
    } catch {
      return null;
    }
  };
}

// ---- TLS listener -------------------------------------------------------------------------------------------------

export interface CourierServer {
  port: number;
  /** PEM of the server's self-signed certificate: the client's trust anchor. */
  caPem: string;
  /** Hands new connections to `courier` (switch couriers to simulate a restart). */
  courier: Courier;
  close(): Promise<void>;
}

export async function startServer(courier: Courier): Promise<CourierServer> {
  const keys = (await subtle.generateKey(EC_SIGN, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(),
    name: 'CN=courier.push.apple.com',
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 30 * DAY),
    keys,
    signingAlgorithm: EC_SIGN,
    extensions: [
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: 'courier.push.apple.com' },
        { type: 'ip', value: '127.0.0.1' },
      ]),
    ],
  });
  const pkcs8 = new Uint8Array(await subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
  const caPem = cert.toString('pem');
  const state: CourierServer = { port: 0, caPem, courier, close: async () => {} };
  const server = tls.createServer({
    key: keyPem,
    cert: caPem,
    ALPNCallback: ({ protocols }) => selectCourierAlpn(protocols),
  });
  server.on('secureConnection', (socket) => state.courier.handleConnection(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  state.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return state;
}

// ---- client -------------------------------------------------------------------------------------------------------

export const LEGACY = ['apns-security-v3'];
export const PACKED = ['apns-pack-v1', 'apns-security-v3'];

export interface ConnectParams {
  identity: PushIdentity;
  token?: Uint8Array;
  nonceMs?: number;
  /** Replaces the signature item (after 01 01). */
  signature?: Uint8Array;
  /** Replaces the certificate item. */
  certificate?: Uint8Array;
}

/** A raw courier client: sends typed frames, collects every server frame in legacy form. */
export class TestClient {
  readonly received: ApnsFrame[] = [];
  /** Packed frames exactly as decoded (before mapping to legacy form). */
  readonly packedReceived: PackedFrame[] = [];
  readonly closed: Promise<void>;
  isClosed = false;
  private waiters: (() => void)[] = [];
  private readonly encode: (frame: ApnsFrame) => Uint8Array;

  private constructor(
    readonly socket: tls.TLSSocket,
    readonly packed: boolean,
  ) {
    if (packed) {
      const enc = new PackedEncoder();
      const dec = new PackedFrameDecoder();
      this.encode = (f) => enc.encode(apnsToPacked(f, 'toServer', { payload: plistPayloadCodec }));
      socket.on('data', (chunk: Buffer) =>
        this.take(() =>
          dec.push(new Uint8Array(chunk)).map((p) => {
            this.packedReceived.push(p);
            return packedToApns(p, 'toClient', { payload: plistPayloadCodec });
          }),
        ),
      );
    } else {
      const dec = new FrameDecoder();
      this.encode = encodeFrame;
      socket.on('data', (chunk: Buffer) => this.take(() => dec.push(new Uint8Array(chunk))));
    }
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.isClosed = true;
        this.wake();
        resolve();
      }),
    );
  }

  static async open(server: CourierServer, alpn: string[] | undefined = LEGACY): Promise<TestClient> {
    const socket = tls.connect({
      host: '127.0.0.1',
      port: server.port,
      servername: 'courier.push.apple.com',
      ca: server.caPem,
      ALPNProtocols: alpn,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    return TestClient.over(socket);
  }

  /** Wraps a connected TLS socket; the negotiated ALPN picks the framing. */
  static over(socket: tls.TLSSocket): TestClient {
    return new TestClient(socket, socket.alpnProtocol === 'apns-pack-v1');
  }

  send<T extends ApnsMessageType>(type: T, fields: MessageInput<T>): void {
    this.socket.write(this.encode(buildMessage(type, fields)));
  }

  sendFrame(frame: ApnsFrame): void {
    this.socket.write(this.encode(frame));
  }

  sendRaw(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Removes and returns the first received frame with this command, waiting up to `timeoutMs`. */
  async next(command: number, timeoutMs = 3000): Promise<ApnsFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.received.findIndex((f) => f.command === command);
      if (i >= 0) return this.received.splice(i, 1)[0]!;
      if (this.isClosed) throw new Error(`closed while waiting for command 0x${command.toString(16)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for command 0x${command.toString(16)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** True if no frame with this command arrives within `ms`. */
  async none(command: number, ms = 150): Promise<boolean> {
    try {
      const f = await this.next(command, ms);
      this.received.unshift(f);
      return false;
    } catch {
      return true;
    }
  }

  /** Sends a signed Connect (0x07) and returns the parsed 0x08. */
  async connect(p: ConnectParams, clock: Clock): Promise<ConnectResponse> {
    const nonce = courierNonce(p.nonceMs ?? clock.now());
    const signature = p.signature ?? (await signCourierNonce(p.identity.privateKey, nonce));
    this.sendFrame(
      buildConnect({
        token: p.token,
        state: 1,
        presenceFlags: 0x41,
        certificates: [p.certificate ?? p.identity.der],
        nonce,
        signature,
        protocolVersion: 11,
      }),
    );
    return parseConnectResponse(await this.next(0x08));
  }

  /** A keep-alive round trip: every frame sent before it has been handled by the server when this resolves. */
  async roundTrip(): Promise<void> {
    this.send('keepAlive', {});
    await this.next(0x0d);
  }

  async waitClosed(timeoutMs = 3000): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const result = await Promise.race([this.closed.then(() => true as const), timeout]);
    clearTimeout(timer);
    return result;
  }

  close(): Promise<void> {
    this.socket.destroy();
    return this.closed;
  }

  // A server frame this client cannot decode ends the connection (and fails whatever waits on it), like a real client.
  private take(decode: () => ApnsFrame[]): void {
    try {
      this.received.push(...decode());
    } catch {
      this.socket.destroy();
    }
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

// ---- a whole courier ------------------------------------------------------------------------------------------

export interface Harness {
  clock: FakeClock;
  store: MemoryStore;
  ca: TestCa;
  courier: Courier;
  server: CourierServer;
  clients: TestClient[];
  /** A new client, connected with `identity` (fresh if omitted). */
  device(opts?: { identity?: PushIdentity; token?: Uint8Array; alpn?: string[] }): Promise<Device>;
  /** Simulates a restart: a new courier on the same store takes over the listener. */
  restart(options?: CourierOptions): Promise<void>;
  close(): Promise<void>;
}

export interface Device {
  client: TestClient;
  identity: PushIdentity;
  token: Uint8Array;
  response: ConnectResponse;
}

export async function harness(options: CourierOptions = {}, log: Log = silentLog): Promise<Harness> {
  const clock = new FakeClock();
  const store = new MemoryStore();
  const ca = await makeCa();
  const deps = (): CourierDeps => ({ clock, log, store, verifyPushCertificate: pushCertVerifier(ca, clock) });
  const courier = createCourier(deps(), { sweepIntervalMs: 0, ...options });
  const server = await startServer(courier);
  const h: Harness = {
    clock,
    store,
    ca,
    courier,
    server,
    clients: [],
    async device(opts = {}) {
      const identity = opts.identity ?? (await issuePushCert(ca));
      const client = await TestClient.open(server, opts.alpn ?? LEGACY);
      h.clients.push(client);
      const response = await client.connect({ identity, token: opts.token }, clock);
      if (response.status !== 0) throw new Error(`connect failed with status ${response.status}`);
      return { client, identity, token: response.token ?? opts.token!, response };
    },
    async restart(opts = options) {
      await h.courier.close();
      h.courier = createCourier(deps(), { sweepIntervalMs: 0, ...opts });
      server.courier = h.courier;
    },
    async close() {
      for (const c of h.clients) c.close();
      await h.courier.close();
      await server.close();
    },
  };
  return h;
}
