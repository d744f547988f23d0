// TLS 1.2/1.3 client over any ByteStream. Record protection and the key schedule come from @reclaimprotocol/tls
// (on our WebCrypto binding, tls-crypto.ts); what decides trust is ours: the engine's own certificate check is
// off because it always adds Mozilla's roots, fetches missing issuers over the network and matches names
// loosely. Instead HandshakeMonitor enforces the server's message sequence and what it may choose, and
// cert-verify checks the chain against the pinned anchors before the connection is handed to the caller.
import {
  CONTENT_TYPE_MAP,
  makeTLSClient,
  setCryptoImplementation,
  SUPPORTED_CIPHER_SUITE_MAP,
  type CipherSuite,
  type Logger,
  type TLSPacket,
  type TLSPacketContext,
} from '@reclaimprotocol/tls';
import { concat } from '../codec/bytes';
import { EncodeError } from '../errors';
import { subtle } from '../crypto/subtle';
import type { ByteStream, CloseInfo } from './byte-stream';
import { parseTrustAnchors, verifyServerChain, type CertificateInput, type TrustAnchor } from './cert-verify';
import { ChunkQueue } from './chunk-queue';
import { withDeadline } from './deadline';
import { asNetError, NetError } from './errors';
import { tlsEngineCrypto } from './tls-crypto';
import { HandshakeMonitor, type TlsVersion } from './tls-handshake-monitor';

export type { TlsVersion } from './tls-handshake-monitor';

export interface TlsOptions {
  /** SNI and the name the certificate must carry (for the courier: courier.push.apple.com, not the numbered host). */
  serverName: string;
  /** ALPN protocols to offer, most preferred first. */
  alpn?: readonly string[];
  /** The only certificates trusted as anchors: roots or intermediates, PEM or DER. */
  trustedRoots: readonly CertificateInput[];
  /** Deadline for the handshake and certificate verification. */
  timeoutMs: number;
  /** Decrypted bytes held for the reader before the connection stops reading from the transport. */
  readHighWaterMark?: number;
}

export interface TlsConnection extends ByteStream {
  /** The ALPN protocol the server selected, or null when it selected none. */
  readonly alpnProtocol: string | null;
  /** The server's certificates as it sent them (DER, leaf first), all verified up to a pinned anchor. */
  readonly peerCertificates: readonly Uint8Array[];
  readonly version: TlsVersion;
}

/** AEAD suites with ephemeral key exchange only, AES-GCM first (WebCrypto has no ChaCha20). */
const CIPHER_SUITES: CipherSuite[] = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
  'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
  'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
  'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384',
];
const CIPHER_SUITE_IDS = CIPHER_SUITES.map((name) => {
  const id = SUPPORTED_CIPHER_SUITE_MAP[name].identifier;
  return (id[0]! << 8) | id[1]!;
});
const DEFAULT_READ_HIGH_WATER = 1024 * 1024;
/** Application data is encrypted and sent in slices of this size, so a large write keeps to backpressure. */
const WRITE_SLICE = 64 * 1024;
const quiet = () => {};
const silentLogger: Logger = { info: quiet, debug: quiet, trace: quiet, warn: quiet, error: quiet };

type KeyShareGroup = 'X25519' | 'SECP256R1' | 'SECP384R1';
let keyShareGroups: Promise<KeyShareGroup[]> | undefined;

/** X25519 is in WebCrypto in Node 20 and current Chromium, but not everywhere yet. */
function supportedGroups(): Promise<KeyShareGroup[]> {
  keyShareGroups ??= subtle()
    .generateKey({ name: 'X25519' }, false, ['deriveBits'])
    .then(
      (): KeyShareGroup[] => ['X25519', 'SECP256R1', 'SECP384R1'],
      (): KeyShareGroup[] => ['SECP256R1', 'SECP384R1'],
    );
  return keyShareGroups;
}

/**
 * Runs a TLS handshake over `stream` and resolves once the server has proven a certificate chain that ends in one
 * of `trustedRoots` and names `serverName`. Any failure closes `stream` and rejects with a NetError.
 */
export async function connectTls(stream: ByteStream, options: TlsOptions): Promise<TlsConnection> {
  let anchors: TrustAnchor[];
  try {
    for (const p of options.alpn ?? []) {
      if (!/^[\x21-\x7e]{1,255}$/.test(p)) throw new EncodeError('bad-alpn', 'ALPN protocols must be printable ASCII');
    }
    anchors = parseTrustAnchors(options.trustedRoots);
  } catch (e) {
    stream.close();
    throw e;
  }
  setCryptoImplementation(tlsEngineCrypto);
  const session = new TlsSession(stream, options, anchors, await supportedGroups());
  return withDeadline(session.connect(), options.timeoutMs, () =>
    session.fail(new NetError('tls-timeout', `the TLS handshake with ${options.serverName} did not finish in time`)),
  );
}

class TlsSession implements TlsConnection {
  alpnProtocol: string | null = null;
  peerCertificates: readonly Uint8Array[] = [];
  version: TlsVersion = 'TLS1.3';
  readonly closed: Promise<CloseInfo>;
  private settleClosed!: (info: CloseInfo) => void;
  private readonly ready: Promise<TlsConnection>;
  private settleReady!: (error?: NetError) => void;
  private readonly plain = new ChunkQueue();
  private readonly monitor: HandshakeMonitor;
  private readonly engine: ReturnType<typeof makeTLSClient>;
  private readonly readHighWater: number;
  private verification: Promise<unknown> | undefined;
  private failure: NetError | undefined;
  /** Closed locally, or by the server's close_notify: no more writes. */
  private isClosed = false;
  private writes: Promise<unknown> = Promise.resolve();
  /**
   * Records the engine has produced and not yet sent. A whole flight goes out in one transport write (one
   * WebSocket message, one TCP segment): sent record by record, a hop with Nagle's algorithm on holds the
   * last records of a TLS 1.2 handshake until the peer's delayed ACK, some 40 ms per handshake.
   */
  private outbox: Uint8Array[] = [];

  constructor(
    private readonly stream: ByteStream,
    private readonly options: TlsOptions,
    private readonly anchors: TrustAnchor[],
    groups: KeyShareGroup[],
  ) {
    this.readHighWater = options.readHighWaterMark ?? DEFAULT_READ_HIGH_WATER;
    this.closed = new Promise((resolve) => (this.settleClosed = resolve));
    this.ready = new Promise((resolve, reject) => {
      this.settleReady = (error) => (error ? reject(error) : resolve(this));
    });
    // The handshake can fail before connect() hands `ready` to its caller; that must not count as unhandled.
    this.ready.catch(() => {});
    const alpn = options.alpn?.length ? [...options.alpn] : undefined;
    this.monitor = new HandshakeMonitor(
      { versions: ['TLS1.3', 'TLS1.2'], cipherSuites: CIPHER_SUITE_IDS, alpn: alpn ?? [] },
      (chain) => this.verify(chain),
    );
    this.engine = makeTLSClient({
      host: options.serverName,
      verifyServerCertificate: false,
      cipherSuites: CIPHER_SUITES,
      namedCurves: groups,
      supportedProtocolVersions: ['TLS1_3', 'TLS1_2'],
      ...(alpn ? { applicationLayerProtocols: alpn } : {}),
      logger: silentLogger,
      write: ({ header, content }: TLSPacket) => void this.outbox.push(header, content),
      onRead: (packet, ctx) => this.onRecord(packet, ctx),
      onHandshake: () => void this.onHandshake(),
      onApplicationData: (data) => {
        if (!this.failure && !this.isClosed) this.plain.push(data);
      },
      onTlsEnd: (error) => this.onEngineEnd(error),
    });
  }

  async connect(): Promise<TlsConnection> {
    void this.pump();
    try {
      await this.engine.startHandshake();
      await this.flush();
    } catch (e) {
      this.fail(this.engineError(e));
    }
    return this.ready;
  }

  write(bytes: Uint8Array): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.isClosed) return Promise.reject(new NetError('connection-closed', 'the TLS connection is closed'));
    // The engine numbers records as it encrypts them, so writes must not interleave.
    const op = this.writes.then(async () => {
      for (let off = 0; off < bytes.length; off += WRITE_SLICE) {
        await this.engine.write(bytes.subarray(off, off + WRITE_SLICE));
        await this.flush();
      }
    });
    this.writes = op.catch(() => {});
    return op.catch((e: unknown) => {
      throw this.fail(asNetError(e, 'connection-lost', 'a TLS write failed'));
    });
  }

  read(): Promise<Uint8Array | null> {
    return this.plain.read();
  }

  close(): void {
    if (this.isClosed || this.failure) return;
    this.isClosed = true;
    this.plain.discard();
    this.stream.close();
    this.engine.end().catch(() => {});
    this.settleReady(new NetError('connection-closed', 'the TLS connection was closed'));
    this.settleClosed({});
  }

  /** Fails the connection (first failure wins), closes the transport and returns the failure. */
  fail(error: NetError): NetError {
    if (this.failure) return this.failure;
    if (this.isClosed) return error;
    this.failure = error;
    this.settleReady(error);
    this.plain.end(error);
    this.stream.close();
    this.engine.end().catch(() => {});
    this.settleClosed({ error });
    return error;
  }

  /** Moves ciphertext from the transport into the engine, pausing while the reader is behind. */
  private async pump(): Promise<void> {
    for (;;) {
      await this.plain.whenBelow(this.readHighWater);
      if (this.failure || this.isClosed) return;
      let chunk: Uint8Array | null;
      try {
        chunk = await this.stream.read();
      } catch (e) {
        this.fail(asNetError(e, 'connection-lost', 'the transport under TLS failed'));
        return;
      }
      if (this.failure || this.isClosed) return;
      if (chunk === null) {
        this.fail(
          this.monitor.established
            ? new NetError('connection-closed', 'the server closed the connection without a TLS close_notify')
            : new NetError('connection-closed', 'the server closed the connection during the TLS handshake'),
        );
        return;
      }
      try {
        await this.engine.handleReceivedBytes(chunk);
        await this.flush();
      } catch (e) {
        this.fail(this.engineError(e));
        return;
      }
    }
  }

  /** Sends the records produced so far, in the order the engine produced them. */
  private flush(): Promise<void> {
    if (!this.outbox.length) return Promise.resolve();
    const flight = concat(...this.outbox);
    this.outbox = [];
    return this.stream.write(flight);
  }

  /** Sees every record before the engine acts on it; throwing stops the engine from processing it. */
  private onRecord(packet: TLSPacket, ctx: TLSPacketContext): void {
    if (this.failure) throw this.failure;
    const encrypted = ctx.type === 'ciphertext';
    const inner = encrypted && ctx.contentType ? CONTENT_TYPE_MAP[ctx.contentType] : undefined;
    try {
      this.monitor.record({ outerType: packet.header[0] ?? 0, innerType: inner, encrypted }, packet.content);
    } catch (e) {
      throw this.fail(asNetError(e, 'tls-protocol-error', 'the server broke the TLS protocol'));
    }
  }

  /** Chain verification starts as soon as the Certificate message arrives, alongside the rest of the handshake. */
  private verify(chain: Uint8Array[]): void {
    this.verification = verifyServerChain(chain, this.options.serverName, this.anchors);
    this.verification.catch((e: unknown) =>
      this.fail(asNetError(e, 'tls-untrusted-certificate', 'the server certificate could not be verified')),
    );
  }

  private async onHandshake(): Promise<void> {
    try {
      const negotiated = this.monitor.negotiated();
      if (!this.verification) throw new NetError('tls-bad-certificate', 'the server sent no certificate');
      await this.verification;
      if (this.failure) return;
      this.version = negotiated.version;
      this.alpnProtocol = negotiated.alpn;
      this.peerCertificates = negotiated.certificates;
      this.settleReady();
    } catch (e) {
      this.fail(asNetError(e, 'tls-handshake-failed', 'the TLS handshake failed'));
    }
  }

  private onEngineEnd(error: Error | undefined): void {
    if (this.failure || this.isClosed) return;
    if (error) {
      this.fail(this.engineError(error));
    } else if (!this.monitor.established) {
      this.fail(new NetError('connection-closed', 'the server closed the connection during the TLS handshake'));
    } else {
      // close_notify: what was received stays readable; nothing more can be sent.
      this.isClosed = true;
      this.plain.end();
      this.stream.close();
      this.settleClosed({});
    }
  }

  private engineError(e: unknown): NetError {
    if (e instanceof NetError) return e;
    const message = e instanceof Error ? e.message : String(e);
    const alert = /^Fatal alert: (\w+)/.exec(message);
    if (alert) return new NetError('tls-alert', `the server sent the TLS alert ${alert[1]}`, { cause: e });
    return this.monitor.established
      ? new NetError('tls-protocol-error', `TLS error: ${message}`, { cause: e })
      : new NetError('tls-handshake-failed', `the TLS handshake failed: ${message}`, { cause: e });
  }
}
