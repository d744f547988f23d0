import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
// The X.509 library needs the Reflect metadata polyfill loaded before it.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { hostnameMatches, parseTrustAnchors, verifyServerChain, type TrustAnchor } from '../../../lib/net/cert-verify';
import { NetError } from '../../../lib/net/errors';
import { days, issue, type Issued } from './pki';

const HOST = 'courier.push.apple.com';

async function code(p: Promise<unknown>): Promise<string> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(NetError);
  return (e as NetError).code;
}

const anchors = (...certs: Issued[]): TrustAnchor[] => parseTrustAnchors(certs.map((c) => c.der));

let root: Issued;
let inter: Issued;
let leaf: Issued;
let otherRoot: Issued;

beforeAll(async () => {
  root = await issue({ subject: 'CN=Test Root CA, O=Test', ca: true });
  inter = await issue({ subject: 'CN=Test Server Authentication CA, O=Test', issuer: root, ca: true, pathLength: 0 });
  leaf = await issue({ subject: `CN=${HOST}`, issuer: inter, dns: [HOST, 'courier2.push.apple.com'] });
  otherRoot = await issue({ subject: 'CN=Test Root CA, O=Test', ca: true });
});

describe('verifyServerChain: trusted paths', () => {
  it('accepts leaf → intermediate → pinned root and returns the path', async () => {
    const path = await verifyServerChain([leaf.der, inter.der], HOST, anchors(root));
    expect(path).toEqual([leaf.der, inter.der, root.der]);
    expect(await verifyServerChain([leaf.der, inter.der, root.der], 'courier2.push.apple.com', anchors(root))).toHaveLength(3);
  });

  it('accepts an intermediate pinned as the anchor (partial chain), with or without the root sent', async () => {
    expect(await verifyServerChain([leaf.der, inter.der], HOST, anchors(inter))).toEqual([leaf.der, inter.der]);
    expect(await verifyServerChain([leaf.der], HOST, anchors(inter))).toEqual([leaf.der, inter.der]);
    expect(await verifyServerChain([leaf.der, inter.der, root.der], HOST, anchors(otherRoot, inter))).toHaveLength(2);
  });

  it('accepts a pinned leaf', async () => {
    expect(await verifyServerChain([leaf.der], HOST, anchors(leaf))).toEqual([leaf.der]);
  });

  it('finds the issuer among extra and out-of-order certificates', async () => {
    const stray = await issue({ subject: 'CN=Stray', ca: true });
    expect(await verifyServerChain([leaf.der, stray.der, root.der, inter.der], HOST, anchors(root))).toHaveLength(3);
  });

  it('verifies RSA and P-384 signatures', async () => {
    const rsaRoot = await issue({ subject: 'CN=RSA Root', ca: true, kind: 'rsa' });
    const p384 = await issue({ subject: `CN=${HOST}`, issuer: rsaRoot, dns: [HOST], kind: 'ec-p384' });
    expect(await verifyServerChain([p384.der], HOST, anchors(rsaRoot))).toHaveLength(2);
    const p384Root = await issue({ subject: 'CN=P384 Root', ca: true, kind: 'ec-p384' });
    const l2 = await issue({ subject: `CN=${HOST}`, issuer: p384Root, dns: [HOST] });
    expect(await verifyServerChain([l2.der], HOST, anchors(p384Root))).toHaveLength(2);
  });

  it('falls back to the subject CN only when there is no SAN extension', async () => {
    const cnOnly = await issue({ subject: `CN=${HOST}`, issuer: root });
    expect(await verifyServerChain([cnOnly.der], HOST, anchors(root))).toHaveLength(2);
    const ipOnly = await issue({ subject: `CN=${HOST}`, issuer: root, ips: ['127.0.0.1'] });
    expect(await code(verifyServerChain([ipOnly.der], HOST, anchors(root)))).toBe('tls-bad-hostname');
    expect(await verifyServerChain([ipOnly.der], '127.0.0.1', anchors(root))).toHaveLength(2);
  });
});

describe('verifyServerChain: failures', () => {
  it('rejects a chain from a different CA with the same name', async () => {
    expect(await code(verifyServerChain([leaf.der, inter.der], HOST, anchors(otherRoot)))).toBe('tls-untrusted-certificate');
  });

  it('rejects a chain missing its intermediate', async () => {
    expect(await code(verifyServerChain([leaf.der], HOST, anchors(root)))).toBe('tls-untrusted-certificate');
  });

  it('rejects the wrong host name', async () => {
    for (const name of ['1-courier.push.apple.com', 'push.apple.com', 'courier.push.apple.com.evil', 'evil.com']) {
      expect(await code(verifyServerChain([leaf.der, inter.der], name, anchors(root)))).toBe('tls-bad-hostname');
    }
  });

  it('rejects expired and not-yet-valid certificates anywhere on the path', async () => {
    const expired = await issue({ subject: `CN=${HOST}`, issuer: inter, dns: [HOST], notBefore: days(-30), notAfter: days(-1) });
    expect(await code(verifyServerChain([expired.der, inter.der], HOST, anchors(root)))).toBe('tls-certificate-expired');
    const future = await issue({ subject: `CN=${HOST}`, issuer: inter, dns: [HOST], notBefore: days(1), notAfter: days(30) });
    expect(await code(verifyServerChain([future.der, inter.der], HOST, anchors(root)))).toBe('tls-certificate-expired');
    const oldInter = await issue({ subject: 'CN=Old CA', issuer: root, ca: true, notBefore: days(-30), notAfter: days(-1) });
    const l = await issue({ subject: `CN=${HOST}`, issuer: oldInter, dns: [HOST] });
    expect(await code(verifyServerChain([l.der, oldInter.der], HOST, anchors(root)))).toBe('tls-certificate-expired');
    expect(await code(verifyServerChain([leaf.der, inter.der], HOST, anchors(root), days(31)))).toBe('tls-certificate-expired');
  });

  it('rejects an issuer that is not a CA, or may not sign certificates', async () => {
    const notCa = await issue({ subject: 'CN=Not a CA', issuer: root, eku: null });
    const l = await issue({ subject: `CN=${HOST}`, issuer: notCa, dns: [HOST] });
    expect(await code(verifyServerChain([l.der, notCa.der], HOST, anchors(root)))).toBe('tls-bad-certificate');
    const noSign = await issue({ subject: 'CN=CRL only CA', issuer: root, ca: true, keyUsage: x509.KeyUsageFlags.cRLSign });
    const l2 = await issue({ subject: `CN=${HOST}`, issuer: noSign, dns: [HOST] });
    expect(await code(verifyServerChain([l2.der, noSign.der], HOST, anchors(root)))).toBe('tls-bad-certificate');
  });

  it('enforces path length constraints', async () => {
    const sub = await issue({ subject: 'CN=Sub CA', issuer: inter, ca: true });
    const l = await issue({ subject: `CN=${HOST}`, issuer: sub, dns: [HOST] });
    expect(await code(verifyServerChain([l.der, sub.der, inter.der], HOST, anchors(root)))).toBe('tls-bad-certificate');
  });

  it('rejects leaves not meant for TLS servers', async () => {
    const client = await issue({ subject: `CN=${HOST}`, issuer: inter, dns: [HOST], eku: [x509.ExtendedKeyUsage.clientAuth] });
    expect(await code(verifyServerChain([client.der, inter.der], HOST, anchors(root)))).toBe('tls-bad-certificate');
    const encOnly = await issue({ subject: `CN=${HOST}`, issuer: inter, dns: [HOST], keyUsage: x509.KeyUsageFlags.keyEncipherment });
    expect(await code(verifyServerChain([encOnly.der, inter.der], HOST, anchors(root)))).toBe('tls-bad-certificate');
  });

  it('rejects an unknown critical extension', async () => {
    const odd = await issue({
      subject: `CN=${HOST}`, issuer: inter, dns: [HOST],
      extensions: [new x509.Extension('1.2.3.4.5', true, new Uint8Array([5, 0]))],
    });
    expect(await code(verifyServerChain([odd.der, inter.der], HOST, anchors(root)))).toBe('tls-bad-certificate');
  });

  it('rejects SHA-1 signatures', async () => {
    const weak = await issue({ subject: `CN=${HOST}`, issuer: inter, dns: [HOST], signatureHash: 'SHA-1' });
    expect(await code(verifyServerChain([weak.der, inter.der], HOST, anchors(root)))).toBe('tls-untrusted-certificate');
  });

  it('rejects a tampered signature and a forged issuer name', async () => {
    const tampered = leaf.der.slice();
    const at = tampered.length - 2;
    tampered[at] = tampered[at]! ^ 0x01;
    expect(await code(verifyServerChain([tampered, inter.der], HOST, anchors(root)))).toBe('tls-untrusted-certificate');
    const impostor = await issue({ subject: 'CN=Test Server Authentication CA, O=Test', ca: true });
    const forged = await issue({ subject: `CN=${HOST}`, issuer: impostor, dns: [HOST] });
    expect(await code(verifyServerChain([forged.der, inter.der], HOST, anchors(root, inter)))).toBe('tls-untrusted-certificate');
  });

  it('rejects empty, overlong and malformed chains', async () => {
    expect(await code(verifyServerChain([], HOST, anchors(root)))).toBe('tls-bad-certificate');
    expect(await code(verifyServerChain(Array(11).fill(leaf.der), HOST, anchors(root)))).toBe('tls-bad-certificate');
    expect(await code(verifyServerChain([new Uint8Array([0x30, 0x03, 1, 2, 3])], HOST, anchors(root)))).toBe('tls-bad-certificate');
  });

  it('fails only with NetError on random and mutated certificates', async () => {
    const trust = anchors(root);
    const mutated = fc
      .array(fc.tuple(fc.nat(leaf.der.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 })
      .map((edits) => {
        const b = leaf.der.slice();
        for (const [i, v] of edits) b[i] = v;
        return b;
      });
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated, fc.uint8Array({ maxLength: 400 })), async (der) => {
        await verifyServerChain([der, inter.der], HOST, trust).catch((e: unknown) => expect(e).toBeInstanceOf(NetError));
      }),
      { numRuns: 150 },
    );
  });
});

describe('parseTrustAnchors', () => {
  it('reads DER and PEM, several certificates per PEM text', () => {
    expect(parseTrustAnchors([root.pem + '\n' + inter.pem, leaf.der])).toHaveLength(3);
  });

  it.each([[[]], [['not a certificate']], [['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----']], [[new Uint8Array([1, 2, 3])]]])(
    'refuses %j',
    (input) => {
      let err: unknown;
      try {
        parseTrustAnchors(input);
      } catch (e) {
        err = e;
      }
      expect((err as NetError).code).toBe('bad-trust-anchor');
    },
  );
});

describe('hostnameMatches', () => {
  it.each([
    ['courier.push.apple.com', 'courier.push.apple.com', true],
    ['Courier.Push.Apple.com', 'courier.push.APPLE.com.', true],
    ['*.push.apple.com', '17-courier.push.apple.com', true],
    ['*.push.apple.com', 'push.apple.com', false],
    ['*.push.apple.com', 'a.b.push.apple.com', false],
    ['*.apple.com', 'x.apple.com', true],
    ['*.com', 'apple.com', false],
    ['*', 'localhost', false],
    ['c*.push.apple.com', 'courier.push.apple.com', false],
    ['courier.*.apple.com', 'courier.push.apple.com', false],
    ['*.*.apple.com', 'a.b.apple.com', false],
    ['127.0.0.1', '127.0.0.1', true],
    ['*.0.0.1', '127.0.0.1', false],
    ['courier.push.apple.com', 'courier.push.apple.co', false],
    ['', 'x.com', false],
    ['x.com', 'bad_name!.x.com', false],
  ])('%s vs %s → %s', (pattern, host, want) => {
    expect(hostnameMatches(pattern, host)).toBe(want);
  });
});
