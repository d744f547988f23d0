import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { concat, fromHex, toHex, utf8 } from '../../../lib/codec/bytes';
import { NetError } from '../../../lib/net/errors';
import {
  CONTENT_ALERT,
  CONTENT_APPLICATION_DATA,
  CONTENT_CHANGE_CIPHER_SPEC,
  CONTENT_HANDSHAKE,
  HandshakeMonitor,
  type HandshakeOffer,
} from '../../../lib/net/tls-handshake-monitor';

// ServerHello, TLS 1.2: random 11…11, no session id, ECDHE_RSA_WITH_AES_128_GCM_SHA256 (c02f), no compression,
// renegotiation_info, ALPN "apns-security-v3".
const SH12 = fromHex(
  '020000440303' + '11'.repeat(32) + '00c02f00001c' + 'ff01000100' + '0010001300111061706e732d73656375726974792d7633',
);
// ServerHello, TLS 1.3: session id 44…44 echoed, TLS_AES_128_GCM_SHA256 (1301), supported_versions 0304,
// key_share x25519 22…22.
const SH13 = fromHex(
  '0200007603033333333333333333333333333333333333333333333333333333333333333333' +
    '20' + '44'.repeat(32) + '130100002e' + '002b00020304' + '00330024001d0020' + '22'.repeat(32),
);
// EncryptedExtensions carrying ALPN "apns-security-v3".
const EE_ALPN = fromHex('0800001900170010001300111061706e732d73656375726974792d7633');
const EE_EMPTY = fromHex('080000020000');
const CERT_A = utf8('cert-a');
const CERT_B = utf8('cert-b');

const OFFER: HandshakeOffer = {
  versions: ['TLS1.3', 'TLS1.2'],
  cipherSuites: [0x1301, 0x1302, 0xc02b, 0xc02f, 0xc02c, 0xc030],
  alpn: ['apns-security-v3'],
};

function hs(type: number, body: Uint8Array | string = ''): Uint8Array {
  const b = typeof body === 'string' ? fromHex(body) : body;
  return concat(new Uint8Array([type, b.length >> 16, (b.length >> 8) & 0xff, b.length & 0xff]), b);
}

function u24(n: number): Uint8Array {
  return new Uint8Array([n >> 16, (n >> 8) & 0xff, n & 0xff]);
}

/** Certificate message; TLS 1.3 adds the empty context and per-entry empty extensions. */
function certificateMessage(certs: Uint8Array[], tls13: boolean): Uint8Array {
  const entries = concat(...certs.map((c) => concat(u24(c.length), c, tls13 ? fromHex('0000') : new Uint8Array(0))));
  return hs(11, concat(tls13 ? fromHex('00') : new Uint8Array(0), u24(entries.length), entries));
}

const ALPN_V3 = '0010001300111061706e732d73656375726974792d7633';

/** A ServerHello from parts (hex); reproduces SH12 and SH13 with the defaults below. */
function serverHello(p: { version?: string; random?: string; sessionId?: string; suite?: string; compression?: string; exts: string }): Uint8Array {
  const ext = fromHex(p.exts);
  const sid = fromHex(p.sessionId ?? '');
  return hs(2, concat(
    fromHex((p.version ?? '0303') + (p.random ?? '11'.repeat(32))),
    new Uint8Array([sid.length]), sid,
    fromHex((p.suite ?? 'c02f') + (p.compression ?? '00')),
    new Uint8Array([ext.length >> 8, ext.length & 0xff]), ext,
  ));
}
const SH12_EXTS = 'ff01000100' + ALPN_V3;
const SH13_EXTS = '002b00020304' + '00330024001d0020' + '22'.repeat(32);
const SH13_PARTS = { random: '33'.repeat(32), sessionId: '44'.repeat(32), suite: '1301', exts: SH13_EXTS };

function monitor(offer: HandshakeOffer = OFFER) {
  const seen: Uint8Array[][] = [];
  const m = new HandshakeMonitor(offer, (chain) => seen.push(chain));
  const plain = (type: number, content: Uint8Array) => m.record({ outerType: type, innerType: undefined, encrypted: false }, content);
  const sealed13 = (inner: number | undefined, content: Uint8Array) =>
    m.record({ outerType: CONTENT_APPLICATION_DATA, innerType: inner, encrypted: true }, content);
  return { m, seen, plain, sealed13 };
}

function protocolError(fn: () => void, code = 'tls-protocol-error'): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(NetError);
  expect((err as NetError).code).toBe(code);
}

const TLS13_FLIGHT = (certs = [CERT_A, CERT_B]) => [EE_ALPN, certificateMessage(certs, true), hs(15, '0403000130'), hs(20, '00'.repeat(32))];
const TLS12_FLIGHT = [certificateMessage([CERT_A], false), hs(12, '03001d'), hs(14)];

describe('HandshakeMonitor: a well-behaved server', () => {
  it('builds the fixed ServerHellos from parts (so the variants below differ only where they say)', () => {
    expect(toHex(serverHello({ exts: SH12_EXTS }))).toBe(toHex(SH12));
    expect(toHex(serverHello(SH13_PARTS))).toBe(toHex(SH13));
  });

  it('follows a TLS 1.3 handshake and reports ALPN, suite and certificates', () => {
    const { m, seen, plain, sealed13 } = monitor();
    plain(CONTENT_HANDSHAKE, SH13);
    plain(CONTENT_CHANGE_CIPHER_SPEC, fromHex('01'));
    for (const msg of TLS13_FLIGHT()) sealed13(CONTENT_HANDSHAKE, msg);
    expect(m.established).toBe(true);
    expect(seen).toEqual([[CERT_A, CERT_B]]);
    expect(m.negotiated()).toEqual({ version: 'TLS1.3', cipherSuite: 0x1301, alpn: 'apns-security-v3', certificates: [CERT_A, CERT_B] });
    // After the handshake: tickets, key updates and data are fine.
    sealed13(CONTENT_HANDSHAKE, hs(4, '0000'));
    sealed13(CONTENT_HANDSHAKE, hs(24, '00'));
    sealed13(CONTENT_APPLICATION_DATA, utf8('data'));
    sealed13(CONTENT_ALERT, fromHex('0100'));
  });

  it('follows a TLS 1.2 handshake with a session ticket, ALPN from the ServerHello', () => {
    const { m, plain } = monitor();
    plain(CONTENT_HANDSHAKE, SH12);
    for (const msg of TLS12_FLIGHT) plain(CONTENT_HANDSHAKE, msg);
    plain(CONTENT_HANDSHAKE, hs(4, '00000000'));
    plain(CONTENT_CHANGE_CIPHER_SPEC, fromHex('01'));
    // The Finished record is decrypted by the engine; its outer type stays handshake in TLS 1.2.
    m.record({ outerType: CONTENT_HANDSHAKE, innerType: undefined, encrypted: true }, hs(20, '00'.repeat(12)));
    expect(m.negotiated()).toMatchObject({ version: 'TLS1.2', cipherSuite: 0xc02f, alpn: 'apns-security-v3' });
  });

  it('reports no ALPN when the server selected none, and reassembles messages split across records', () => {
    const { m, plain, sealed13 } = monitor();
    const sh = SH13;
    plain(CONTENT_HANDSHAKE, sh.subarray(0, 3));
    plain(CONTENT_HANDSHAKE, sh.subarray(3, 50));
    plain(CONTENT_HANDSHAKE, sh.subarray(50));
    const flight = concat(EE_EMPTY, certificateMessage([CERT_A], true), hs(15, '0403000130'), hs(20, '00'.repeat(32)));
    for (let i = 0; i < flight.length; i += 7) sealed13(CONTENT_HANDSHAKE, flight.subarray(i, i + 7));
    expect(m.negotiated().alpn).toBeNull();
  });
});

describe('HandshakeMonitor: a misbehaving server', () => {
  const withSuite = (suite: string) => serverHello({ suite, exts: SH12_EXTS });
  const withRandomTail = (tail: string) => serverHello({ random: '11'.repeat(24) + tail, exts: SH12_EXTS });

  it('rejects a cipher suite, version or ALPN protocol it was not offered', () => {
    protocolError(() => monitor().plain(CONTENT_HANDSHAKE, withSuite('009c')));
    protocolError(() => monitor().plain(CONTENT_HANDSHAKE, withSuite('1301')));
    protocolError(() => monitor({ ...OFFER, versions: ['TLS1.3'] }).plain(CONTENT_HANDSHAKE, SH12));
    protocolError(() => monitor({ ...OFFER, alpn: ['h2'] }).plain(CONTENT_HANDSHAKE, SH12));
    protocolError(() => monitor({ ...OFFER, alpn: [] }).plain(CONTENT_HANDSHAKE, SH12));
    const packed = fromHex(toHex(EE_ALPN).replace('0017001000130011106170', '00170010001300111061ff'));
    const { plain, sealed13 } = monitor();
    plain(CONTENT_HANDSHAKE, SH13);
    protocolError(() => sealed13(CONTENT_HANDSHAKE, packed));
  });

  it('rejects the TLS 1.3 downgrade sentinel in a TLS 1.2 ServerHello', () => {
    protocolError(() => monitor().plain(CONTENT_HANDSHAKE, withRandomTail('444f574e47524401')));
    protocolError(() => monitor().plain(CONTENT_HANDSHAKE, withRandomTail('444f574e47524400')));
    // Offering only TLS 1.2, the sentinel is expected and harmless.
    monitor({ ...OFFER, versions: ['TLS1.2'] }).plain(CONTENT_HANDSHAKE, withRandomTail('444f574e47524401'));
  });

  it('refuses a HelloRetryRequest', () => {
    const hrr = serverHello({ ...SH13_PARTS, random: 'cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c' });
    protocolError(() => monitor().plain(CONTENT_HANDSHAKE, hrr), 'tls-handshake-failed');
  });

  it('rejects a TLS 1.3 server that skips CertificateVerify or the certificate', () => {
    const { plain, sealed13 } = monitor();
    plain(CONTENT_HANDSHAKE, SH13);
    sealed13(CONTENT_HANDSHAKE, EE_EMPTY);
    sealed13(CONTENT_HANDSHAKE, certificateMessage([CERT_A], true));
    protocolError(() => sealed13(CONTENT_HANDSHAKE, hs(20, '00'.repeat(32))));
    const second = monitor();
    second.plain(CONTENT_HANDSHAKE, SH13);
    second.sealed13(CONTENT_HANDSHAKE, EE_EMPTY);
    protocolError(() => second.sealed13(CONTENT_HANDSHAKE, hs(20, '00'.repeat(32))));
  });

  it('rejects a second Certificate after CertificateVerify', () => {
    const { plain, sealed13 } = monitor();
    plain(CONTENT_HANDSHAKE, SH13);
    for (const msg of TLS13_FLIGHT().slice(0, 3)) sealed13(CONTENT_HANDSHAKE, msg);
    protocolError(() => sealed13(CONTENT_HANDSHAKE, certificateMessage([CERT_B], true)));
  });

  it('rejects a TLS 1.2 server that skips the signed key exchange, or renegotiates', () => {
    const { plain } = monitor();
    plain(CONTENT_HANDSHAKE, SH12);
    plain(CONTENT_HANDSHAKE, certificateMessage([CERT_A], false));
    protocolError(() => plain(CONTENT_HANDSHAKE, hs(14)));
    const done = monitor();
    done.plain(CONTENT_HANDSHAKE, SH12);
    for (const msg of [...TLS12_FLIGHT, hs(20, '00'.repeat(12))]) done.plain(CONTENT_HANDSHAKE, msg);
    protocolError(() => done.plain(CONTENT_HANDSHAKE, hs(0)));
  });

  it('rejects application data before Finished and unknown record types', () => {
    const { plain } = monitor();
    protocolError(() => plain(CONTENT_APPLICATION_DATA, utf8('early')));
    protocolError(() => monitor().plain(99, utf8('?')));
    const { plain: p, sealed13 } = monitor();
    p(CONTENT_HANDSHAKE, SH13);
    protocolError(() => sealed13(undefined, utf8('padded')));
  });

  it('rejects a record interleaved into a split handshake message', () => {
    const { plain } = monitor();
    plain(CONTENT_HANDSHAKE, SH12.subarray(0, 10));
    protocolError(() => plain(CONTENT_ALERT, fromHex('0100')));
  });

  it('rejects malformed ServerHello and Certificate messages', () => {
    const cases = [
      hs(2, SH12.subarray(4, 40)),
      hs(2, concat(SH12.subarray(4), fromHex('00'))),
      serverHello({ version: '0301', exts: SH12_EXTS }),
      serverHello({ compression: '01', exts: SH12_EXTS }),
      serverHello({ exts: SH12_EXTS + '001000050003026832' }),
      serverHello({ sessionId: '00'.repeat(33), exts: '' }),
      serverHello({ exts: SH12_EXTS + '0010' }),
      serverHello({ exts: 'ff010001000010000400020161' }),
      serverHello({ ...SH13_PARTS, exts: SH13_EXTS.replace('002b00020304', '002b00020303') }),
      serverHello({ exts: '002b00020304' }),
    ];
    for (const msg of cases) {
      let err: unknown;
      try {
        monitor().plain(CONTENT_HANDSHAKE, msg);
      } catch (e) {
        err = e;
      }
      expect(err, toHex(msg)).toBeInstanceOf(NetError);
    }
  });

  it('rejects ALPN in a TLS 1.3 ServerHello', () => {
    let err: unknown;
    try {
      monitor().plain(CONTENT_HANDSHAKE, serverHello({ ...SH13_PARTS, exts: SH13_EXTS + ALPN_V3 }));
    } catch (e) {
      err = e;
    }
    expect((err as NetError).message).toContain('ALPN');
  });

  it('bounds certificates and message sizes', () => {
    const { plain, sealed13 } = monitor();
    plain(CONTENT_HANDSHAKE, SH13);
    sealed13(CONTENT_HANDSHAKE, EE_EMPTY);
    let err: unknown;
    try {
      sealed13(CONTENT_HANDSHAKE, certificateMessage(Array(11).fill(CERT_A), true));
    } catch (e) {
      err = e;
    }
    expect((err as NetError).code).toBe('tls-bad-certificate');
    protocolError(() => monitor().plain(CONTENT_HANDSHAKE, fromHex('02010000')));
    const ctx = monitor();
    ctx.plain(CONTENT_HANDSHAKE, SH13);
    ctx.sealed13(CONTENT_HANDSHAKE, EE_EMPTY);
    protocolError(() => ctx.sealed13(CONTENT_HANDSHAKE, hs(11, concat(fromHex('0101'), u24(0)))));
    const empty = monitor();
    empty.plain(CONTENT_HANDSHAKE, SH12);
    protocolError(() => empty.plain(CONTENT_HANDSHAKE, hs(11, '000000')), 'tls-bad-certificate');
  });

  it('fails only with NetError on random records', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(20, 21, 22, 23, 5), fc.boolean(), fc.uint8Array({ maxLength: 80 })), { maxLength: 8 }),
        fc.boolean(),
        (records, startWithHello) => {
          const { m, plain } = monitor();
          try {
            if (startWithHello) plain(CONTENT_HANDSHAKE, SH13);
            for (const [type, enc, data] of records) m.record({ outerType: type, innerType: enc ? type : undefined, encrypted: enc }, data);
          } catch (e) {
            expect(e).toBeInstanceOf(NetError);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
