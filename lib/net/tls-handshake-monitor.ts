// Watches every record the TLS engine reads and holds the server to the handshake it must send. The engine
// alone does not check that the chosen version, suite and ALPN protocol were offered, that a TLS 1.3 server
// proves its key with CertificateVerify, or the TLS 1.3 downgrade sentinel; and it reports the first offered
// protocol when the server chose none. The monitor reads the server's messages itself, so those rules and the
// negotiated facts do not depend on the engine's internals.
import { concat, equalBytes, fromHex, readU16be } from '../codec/bytes';
import { MAX_CHAIN_LENGTH } from './cert-verify';
import { NetError } from './errors';

export type TlsVersion = 'TLS1.2' | 'TLS1.3';

export interface HandshakeOffer {
  versions: readonly TlsVersion[];
  cipherSuites: readonly number[];
  alpn: readonly string[];
}

export interface Negotiated {
  version: TlsVersion;
  cipherSuite: number;
  /** The protocol the server selected, or null when it selected none. */
  alpn: string | null;
  /** The server's certificates as sent, leaf first. */
  certificates: Uint8Array[];
}

/** A record as the engine read it: the outer type, and for TLS 1.3 ciphertext the decrypted inner type. */
export interface RecordView {
  outerType: number;
  innerType: number | undefined;
  encrypted: boolean;
}

export const CONTENT_CHANGE_CIPHER_SPEC = 20;
export const CONTENT_ALERT = 21;
export const CONTENT_HANDSHAKE = 22;
export const CONTENT_APPLICATION_DATA = 23;

const SERVER_HELLO = 2;
const NEW_SESSION_TICKET = 4;
const ENCRYPTED_EXTENSIONS = 8;
const CERTIFICATE = 11;
const SERVER_KEY_EXCHANGE = 12;
const CERTIFICATE_REQUEST = 13;
const SERVER_HELLO_DONE = 14;
const CERTIFICATE_VERIFY = 15;
const FINISHED = 20;
const KEY_UPDATE = 24;

const EXT_ALPN = 0x0010;
const EXT_SUPPORTED_VERSIONS = 0x002b;

/** The engine reads handshake message lengths as 16 bits; longer messages would desynchronise it. */
const MAX_HANDSHAKE_MESSAGE = 0xffff;

/** RFC 8446 §4.1.3: a HelloRetryRequest is a ServerHello with this random. */
const HELLO_RETRY_RANDOM = fromHex('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c');
/** RFC 8446 §4.1.3: a TLS 1.3 server negotiating TLS 1.2 ends its random with "DOWNGRD" 01 (or 00 for ≤ 1.1). */
const DOWNGRADE_TLS12 = fromHex('444f574e47524401');
const DOWNGRADE_TLS11 = fromHex('444f574e47524400');

type State = 'hello' | 'ee' | 'cert-or-request' | 'cert' | 'cert-verify' | 'ske' | 'request-or-done' |
  'hello-done' | 'ticket-or-finished' | 'finished' | 'established';

/** Which server message may come next in each state, and the state it leads to. */
const TLS13: Partial<Record<State, Record<number, State>>> = {
  ee: { [ENCRYPTED_EXTENSIONS]: 'cert-or-request' },
  'cert-or-request': { [CERTIFICATE_REQUEST]: 'cert', [CERTIFICATE]: 'cert-verify' },
  cert: { [CERTIFICATE]: 'cert-verify' },
  'cert-verify': { [CERTIFICATE_VERIFY]: 'finished' },
  finished: { [FINISHED]: 'established' },
  established: { [NEW_SESSION_TICKET]: 'established', [KEY_UPDATE]: 'established' },
};
// Only (EC)DHE suites are offered, so a TLS 1.2 server must sign a ServerKeyExchange; renegotiation is refused.
const TLS12: Partial<Record<State, Record<number, State>>> = {
  cert: { [CERTIFICATE]: 'ske' },
  ske: { [SERVER_KEY_EXCHANGE]: 'request-or-done' },
  'request-or-done': { [CERTIFICATE_REQUEST]: 'hello-done', [SERVER_HELLO_DONE]: 'ticket-or-finished' },
  'hello-done': { [SERVER_HELLO_DONE]: 'ticket-or-finished' },
  'ticket-or-finished': { [NEW_SESSION_TICKET]: 'finished', [FINISHED]: 'established' },
  finished: { [FINISHED]: 'established' },
  established: {},
};

function protocolError(message: string): NetError {
  return new NetError('tls-protocol-error', message);
}

export class HandshakeMonitor {
  private state: State = 'hello';
  private pending: Uint8Array = new Uint8Array(0);
  private version: TlsVersion | undefined;
  private cipherSuite = 0;
  private alpn: string | null = null;
  private certificates: Uint8Array[] = [];

  constructor(
    private readonly offer: HandshakeOffer,
    private readonly onCertificates: (chain: Uint8Array[]) => void,
  ) {}

  /** True once the server's Finished has been read. */
  get established(): boolean {
    return this.state === 'established';
  }

  negotiated(): Negotiated {
    if (!this.established || !this.version) throw protocolError('the handshake has not finished');
    return { version: this.version, cipherSuite: this.cipherSuite, alpn: this.alpn, certificates: this.certificates };
  }

  /** Throws a NetError when the record breaks the handshake rules; the caller must then drop the connection. */
  record(view: RecordView, content: Uint8Array): void {
    let type = view.outerType;
    if (view.encrypted && this.version === 'TLS1.3') {
      // An inner type the engine did not recognise (e.g. a padded record) would reach the app as data.
      if (view.innerType === undefined) throw protocolError('unrecognised TLS 1.3 record content type');
      type = view.innerType;
    }
    if (type === CONTENT_HANDSHAKE) {
      this.handshakeBytes(content);
      return;
    }
    if (this.pending.length) throw protocolError('a handshake message was interrupted by another record');
    if (type === CONTENT_APPLICATION_DATA) {
      if (!this.established) throw protocolError('application data before the handshake finished');
    } else if (type !== CONTENT_ALERT && type !== CONTENT_CHANGE_CIPHER_SPEC) {
      throw protocolError(`unknown TLS record type ${type}`);
    }
  }

  private handshakeBytes(content: Uint8Array): void {
    if (content.length === 0) throw protocolError('empty handshake record');
    let buf = this.pending.length ? concat(this.pending, content) : content;
    while (buf.length >= 4) {
      const length = (buf[1]! << 16) | (buf[2]! << 8) | buf[3]!;
      if (length > MAX_HANDSHAKE_MESSAGE) throw protocolError('handshake message too large');
      if (buf.length < 4 + length) break;
      this.message(buf[0]!, buf.subarray(4, 4 + length));
      buf = buf.subarray(4 + length);
    }
    this.pending = buf.slice();
  }

  private message(type: number, body: Uint8Array): void {
    if (this.state === 'hello') {
      if (type !== SERVER_HELLO) throw protocolError(`expected ServerHello, got handshake message ${type}`);
      this.serverHello(body);
      return;
    }
    const table = this.version === 'TLS1.3' ? TLS13 : TLS12;
    const next = table[this.state]?.[type];
    if (!next) throw protocolError(`unexpected handshake message ${type} (${this.state})`);
    if (type === ENCRYPTED_EXTENSIONS) this.extensions(new Reader(body).vec16Only(), false);
    if (type === CERTIFICATE) this.certificate(body);
    this.state = next;
  }

  private serverHello(body: Uint8Array): void {
    const r = new Reader(body);
    if (r.u16() !== 0x0303) throw protocolError('ServerHello has an unexpected legacy version');
    const random = r.bytes(32);
    if (equalBytes(random, HELLO_RETRY_RANDOM)) {
      throw new NetError('tls-handshake-failed', 'the server asked for a HelloRetryRequest, which is not supported');
    }
    if (r.vec8().length > 32) throw protocolError('ServerHello session id too long');
    this.cipherSuite = r.u16();
    if (r.u8() !== 0) throw protocolError('ServerHello selected compression');
    const ext = r.remaining ? r.vec16() : new Uint8Array(0);
    r.end();
    const { tls13 } = this.extensions(ext, true);
    this.version = tls13 ? 'TLS1.3' : 'TLS1.2';
    if (!this.offer.versions.includes(this.version)) throw protocolError(`the server chose ${this.version}, not offered`);
    if (!this.offer.cipherSuites.includes(this.cipherSuite) || (this.cipherSuite >> 8 === 0x13) !== tls13) {
      throw protocolError(`the server chose cipher suite 0x${this.cipherSuite.toString(16)}, not offered`);
    }
    if (!tls13 && this.offer.versions.includes('TLS1.3')) {
      const tail = random.subarray(24);
      if (equalBytes(tail, DOWNGRADE_TLS12) || equalBytes(tail, DOWNGRADE_TLS11)) {
        throw protocolError('the server signalled a downgrade from TLS 1.3');
      }
    }
    this.state = tls13 ? 'ee' : 'cert';
  }

  /** Parses an extension block (ServerHello or EncryptedExtensions) for the two extensions that matter here. */
  private extensions(block: Uint8Array, inServerHello: boolean): { tls13: boolean } {
    const r = new Reader(block);
    const seen = new Set<number>();
    let tls13 = false;
    while (r.remaining) {
      const type = r.u16();
      const data = r.vec16();
      if (seen.has(type)) throw protocolError(`the server repeated extension ${type}`);
      seen.add(type);
      if (type === EXT_SUPPORTED_VERSIONS) {
        if (!inServerHello || data.length !== 2 || readU16be(data) !== 0x0304) {
          throw protocolError('bad supported_versions extension');
        }
        tls13 = true;
      } else if (type === EXT_ALPN) {
        this.alpn = this.selectedProtocol(data);
      }
    }
    // TLS 1.3 carries the ALPN selection in EncryptedExtensions, TLS 1.2 in the ServerHello.
    if (inServerHello && tls13 && seen.has(EXT_ALPN)) throw protocolError('ALPN in a TLS 1.3 ServerHello');
    return { tls13 };
  }

  private selectedProtocol(data: Uint8Array): string {
    const list = new Reader(new Reader(data).vec16Only());
    const name = list.vec8();
    list.end();
    const protocol = String.fromCharCode(...name);
    if (!name.length || !this.offer.alpn.includes(protocol)) {
      throw protocolError(`the server selected ALPN protocol "${protocol}", which was not offered`);
    }
    return protocol;
  }

  private certificate(body: Uint8Array): void {
    const r = new Reader(body);
    if (this.version === 'TLS1.3' && r.vec8().length !== 0) throw protocolError('server Certificate has a context');
    const list = new Reader(r.vec24());
    r.end();
    const chain: Uint8Array[] = [];
    while (list.remaining) {
      if (chain.length === MAX_CHAIN_LENGTH) {
        throw new NetError('tls-bad-certificate', `the server sent more than ${MAX_CHAIN_LENGTH} certificates`);
      }
      const der = list.vec24();
      if (!der.length) throw protocolError('empty certificate entry');
      chain.push(der.slice());
      if (this.version === 'TLS1.3') list.vec16();
    }
    if (!chain.length) throw new NetError('tls-bad-certificate', 'the server sent no certificate');
    this.certificates = chain;
    this.onCertificates(chain);
  }
}

/** Bounds-checked reads of TLS's length-prefixed vectors; a short message is a protocol error. */
class Reader {
  private off = 0;
  constructor(private readonly b: Uint8Array) {}

  get remaining(): number {
    return this.b.length - this.off;
  }

  bytes(n: number): Uint8Array {
    if (n > this.remaining) throw protocolError('truncated handshake message');
    const out = this.b.subarray(this.off, this.off + n);
    this.off += n;
    return out;
  }

  u8(): number {
    return this.bytes(1)[0]!;
  }

  u16(): number {
    return readU16be(this.bytes(2));
  }

  vec8(): Uint8Array {
    return this.bytes(this.u8());
  }

  vec16(): Uint8Array {
    return this.bytes(this.u16());
  }

  vec24(): Uint8Array {
    const l = this.bytes(3);
    return this.bytes((l[0]! << 16) | (l[1]! << 8) | l[2]!);
  }

  /** A 16-bit vector that must be all of the input. */
  vec16Only(): Uint8Array {
    const v = this.vec16();
    this.end();
    return v;
  }

  end(): void {
    if (this.remaining) throw protocolError('trailing bytes in handshake message');
  }
}
