import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fromBase64, fromHex, toBase64 } from '../../../lib/codec/bytes';
import { decodeXmlPlist, type PlistDict, type PlistValue } from '../../../lib/codec/plist';
import { CryptoError, DecodeError, EncodeError } from '../../../lib/errors';
import { verifyIdsSignature } from '../../../lib/crypto/request-signing';
import { IdsError } from '../../../lib/ids/errors';
import {
  buildRegisterBody,
  DEFAULT_CAPABILITY_FLAGS,
  MAX_REGISTRATION_AGE_MS,
  parseRegisterResponse,
  register,
  reregisterDueAt,
  type PublishedKeys,
} from '../../../lib/ids/register';
import type { PushCredentials, UserCredentials } from '../../../lib/ids/signing';
import vectors from '../../vectors';
import { certOver, context, DEVICE, fakeHttp, plistAnswer, rejection, rsaKeys } from './helpers';

const KEYS: PublishedKeys = {
  legacyIdentity: fromHex(vectors.legacy.alice.public_message_identity_key),
  ngmDevicePrekey: fromHex(vectors.ngm.alice.public_device_prekey),
  ktLoggableData: fromHex(vectors.ngm.alice.kt_loggable_data),
};
const TOKEN = new Uint8Array(32).fill(3);
const VALIDATION = fromHex('0102030405');
const NOT_AFTER = new Date(Date.UTC(2030, 5, 1));

let pushKeys: CryptoKeyPair;
let appleKeys: CryptoKeyPair;
let phoneKeys: CryptoKeyPair;
let push: PushCredentials;
let apple: UserCredentials;
let phone: UserCredentials;
let appleIdCert: Uint8Array;
let phoneIdCert: Uint8Array;

beforeAll(async () => {
  [pushKeys, appleKeys, phoneKeys] = await Promise.all([rsaKeys(), rsaKeys(), rsaKeys()]);
  push = { token: TOKEN, certDer: fromHex('3003'), privateKey: pushKeys.privateKey };
  apple = { userId: 'D:42', certDer: await certOver(appleKeys.publicKey, NOT_AFTER, 'CN=auth D:42'), privateKey: appleKeys.privateKey };
  phone = { userId: 'P:+15555550100', certDer: await certOver(phoneKeys.publicKey, NOT_AFTER, 'CN=auth phone'), privateKey: phoneKeys.privateKey };
  appleIdCert = await certOver(appleKeys.publicKey, NOT_AFTER, 'CN=id D:42');
  phoneIdCert = await certOver(phoneKeys.publicKey, new Date(Date.UTC(2030, 0, 1)), 'CN=id phone');
});

const users = () => [
  { auth: apple, uris: ['mailto:a@b.c'], keys: KEYS },
  { auth: phone, uris: ['tel:+15555550100'], keys: KEYS },
];

describe('register body', () => {
  it('has the device fields, private-device-data, one madrid service and the validation data', () => {
    const body = buildRegisterBody(DEVICE, { users: users(), validationData: VALIDATION });
    const clientData = {
      ...DEFAULT_CAPABILITY_FLAGS,
      'public-message-identity-key': KEYS.legacyIdentity,
      'public-message-identity-version': 2,
      'ec-version': 1,
      'public-message-identity-ngm-version': 13,
      'public-message-ngm-device-prekey-data-key': KEYS.ngmDevicePrekey,
      'kt-version': 5,
    };
    expect(body).toEqual({
      'device-name': 'cerulean-unit',
      'hardware-version': 'Macmini9,1',
      language: 'en-US',
      'os-version': 'macOS,13.5,22G74',
      'software-version': '22G74',
      'private-device-data': {
        ap: '0',
        d: '725760000.500000',
        dt: 1,
        gt: '0',
        h: '1',
        m: '0',
        p: '0',
        pb: '22G74',
        pn: 'macOS',
        pv: '13.5',
        s: '0',
        t: '0',
        u: '01234567-89AB-4CDE-8F01-23456789ABCD',
        v: '1',
      },
      services: [
        {
          service: 'com.apple.madrid',
          capabilities: [{ name: 'Messenger', flags: 1, version: 1 }],
          'sub-services': [
            'com.apple.private.alloy.sms',
            'com.apple.private.alloy.gelato',
            'com.apple.private.alloy.biz',
            'com.apple.private.alloy.gamecenter.imessage',
          ],
          users: [
            { 'user-id': 'D:42', uris: [{ uri: 'mailto:a@b.c' }], 'client-data': clientData, 'kt-loggable-data': KEYS.ktLoggableData },
            { 'user-id': 'P:+15555550100', uris: [{ uri: 'tel:+15555550100' }], tag: 'SIM', 'client-data': clientData, 'kt-loggable-data': KEYS.ktLoggableData },
          ],
        },
      ],
      'validation-data': VALIDATION,
    });
    expect(KEYS.ktLoggableData.length).toBe(40);
    expect(KEYS.ngmDevicePrekey.length).toBe(109);
  });

  it('omits client-data for users without keys and honours overrides', () => {
    const body = buildRegisterBody(
      { ...DEVICE, hardwareVersion: 'iPhone14,2', softwareName: 'iPhone OS' },
      { users: [{ auth: apple, uris: ['mailto:a@b.c'], tag: 'X' }], validationData: VALIDATION, subServices: [], messengerFlags: 17 },
    );
    const service = (body['services'] as PlistDict[])[0]!;
    expect(service['users']).toEqual([{ 'user-id': 'D:42', uris: [{ uri: 'mailto:a@b.c' }], tag: 'X' }]);
    expect(service['capabilities']).toEqual([{ name: 'Messenger', flags: 17, version: 1 }]);
    expect(service['sub-services']).toEqual([]);
    expect((body['private-device-data'] as PlistDict)['dt']).toBe(2);
    expect((body['private-device-data'] as PlistDict)['ap']).toBe('1');
  });

  it('refuses what cannot be registered', () => {
    expect(() => buildRegisterBody(DEVICE, { users: users(), validationData: new Uint8Array(0) })).toThrow(EncodeError);
    expect(() => buildRegisterBody(DEVICE, { users: [{ auth: apple, uris: [] }], validationData: VALIDATION })).toThrow(EncodeError);
    expect(() => buildRegisterBody({ ...DEVICE, uuid: 'lower-case' }, { users: users(), validationData: VALIDATION })).toThrow(EncodeError);
  });
});

function answer(userAnswers: PlistDict[], extra: PlistDict = {}): PlistDict {
  return { status: 0, services: [{ service: 'com.apple.madrid', status: 0, users: userAnswers }], ...extra };
}

describe('register request', () => {
  it('signs push once and each user with -N over the exact XML body', async () => {
    const http = fakeHttp(() =>
      plistAnswer(
        answer([
          { 'user-id': 'D:42', status: 0, cert: appleIdCert, uris: [{ uri: 'mailto:a@b.c', status: 0 }], 'next-hbi': 2592000 },
          { 'user-id': 'P:+15555550100', status: 0, cert: phoneIdCert, uris: [{ uri: 'tel:+15555550100', status: 0 }] },
        ]),
      ),
    );
    const results = await register(context(http), { push, users: users(), validationData: VALIDATION });
    expect(results).toEqual([
      {
        userId: 'D:42',
        status: 'ok',
        idCert: { userId: 'D:42', der: appleIdCert, notAfter: NOT_AFTER.getTime() },
        granted: ['mailto:a@b.c'],
        rejected: [],
        nextHbi: 2592000,
      },
      {
        userId: 'P:+15555550100',
        status: 'ok',
        idCert: { userId: 'P:+15555550100', der: phoneIdCert, notAfter: Date.UTC(2030, 0, 1) },
        granted: ['tel:+15555550100'],
        rejected: [],
      },
    ]);
    const req = http.requests[0]!;
    expect(`${req.method} ${req.host}${req.path}`).toBe('POST identity.ess.apple.com/WebObjects/TDIdentityService.woa/wa/register');
    const h = req.headers;
    expect(h['user-agent']).toBe('com.apple.invitation-registration [macOS,13.5,22G74,Macmini9,1]');
    expect(h['x-protocol-version']).toBe('1640');
    expect(h['content-type']).toBe('application/x-apple-plist');
    expect(h['x-push-token']).toBe(toBase64(TOKEN));
    expect(h['x-auth-user-id-0']).toBe('D:42');
    expect(h['x-auth-user-id-1']).toBe('P:+15555550100');
    expect(h['x-auth-user-id']).toBeUndefined();
    expect(h['x-auth-cert-1']).toBe(toBase64(phone.certDer));
    const body = req.body!;
    expect(decodeXmlPlist(body)).toEqual(buildRegisterBody(DEVICE, { users: users(), validationData: VALIDATION }));
    const check = (key: CryptoKey, nonce: string, sig: string) =>
      verifyIdsSignature(key, { nonce: fromBase64(nonce), bagKey: 'id-register', query: '', body, pushToken: TOKEN }, fromBase64(sig));
    expect(await check(pushKeys.publicKey, h['x-push-nonce']!, h['x-push-sig']!)).toBe(true);
    expect(await check(appleKeys.publicKey, h['x-auth-nonce-0']!, h['x-auth-sig-0']!)).toBe(true);
    expect(await check(phoneKeys.publicKey, h['x-auth-nonce-1']!, h['x-auth-sig-1']!)).toBe(true);
  });

  it('turns 6004 into ValidationDataExpired', async () => {
    const e = (await rejection(register(context(fakeHttp(() => plistAnswer({ status: 6004 }))), { push, users: users(), validationData: VALIDATION }))) as IdsError;
    expect(e).toBeInstanceOf(IdsError);
    expect(e.code).toBe('validation-data-expired');
    expect(e.status).toBe(6004);
  });
});

describe('register response', () => {
  const sent = () => [apple, phone];

  it('reports users separately: 6005, refusals with alerts, partial grants', () => {
    const alert = { title: 'iMessage Temporarily Unavailable', body: 'Try later.', button: 'OK' };
    const results = parseRegisterResponse(
      answer([
        {
          'user-id': 'D:42',
          status: 0,
          cert: appleIdCert,
          uris: [
            { uri: 'mailto:a@b.c', status: 0 },
            { uri: 'mailto:gone@b.c', status: 5052 },
          ],
        },
        { 'user-id': 'P:+15555550100', status: 6005, uris: [{ uri: 'tel:+15555550100', status: 6005 }] },
      ]),
      sent(),
    );
    expect(results[0]).toMatchObject({ status: 'ok', granted: ['mailto:a@b.c'], rejected: [{ uri: 'mailto:gone@b.c', status: 5052 }] });
    expect(results[1]).toMatchObject({ userId: 'P:+15555550100', status: 'failed' });
    const failed = results[1] as { error: IdsError };
    expect(failed.error.code).toBe('auth-expired');
    expect(failed.error.userId).toBe('P:+15555550100');

    const refused = parseRegisterResponse(answer([{ 'user-id': 'D:42', status: 6009, alert, uris: [] }]), [apple])[0] as { error: IdsError };
    expect(refused.error.code).toBe('registration-refused');
    expect(refused.error.status).toBe(6009);
    expect(refused.error.alert).toEqual(alert);

    const none = parseRegisterResponse(answer([{ 'user-id': 'D:42', status: 0, cert: appleIdCert, uris: [{ uri: 'mailto:x@y.z', status: 5052 }] }]), [apple])[0] as {
      error: IdsError;
    };
    expect(none.error.code).toBe('registration-refused');
    expect(none.error.status).toBe(5052);
  });

  it('fails the request on top-level problems', () => {
    const code = (d: PlistDict, users = sent()) => {
      try {
        parseRegisterResponse(d, users);
        return 'no error';
      } catch (e) {
        if (e instanceof IdsError) return `IdsError ${e.code} ${e.status ?? ''}`.trim();
        if (e instanceof DecodeError || e instanceof CryptoError) return `${e.constructor.name} ${e.code}`;
        throw e;
      }
    };
    expect(code({ status: 7000, 'retry-interval': 60 })).toBe('IdsError ids-status 7000');
    expect(code({ status: 6004 })).toBe('IdsError validation-data-expired 6004');
    expect(code({ status: 0, services: [{ service: 'com.apple.ess', status: 0, users: [] }] })).toBe('DecodeError ids-bad-response');
    expect(code({ status: 0, services: [{ service: 'com.apple.madrid', status: 5008, users: [] }] })).toBe('IdsError ids-status 5008');
    expect(code(answer([{ 'user-id': 'D:42', status: 0, cert: appleIdCert, uris: [{ uri: 'mailto:a@b.c', status: 0 }] }]))).toBe(
      'DecodeError ids-bad-response',
    );
    expect(code(answer([{ 'user-id': 'D:42', status: 0, uris: [{ uri: 'mailto:a@b.c', status: 0 }] }]), [apple])).toBe('DecodeError ids-bad-response');
    expect(code(answer([{ 'user-id': 'D:42', status: 0, cert: phoneIdCert, uris: [{ uri: 'mailto:a@b.c', status: 0 }] }]), [apple])).toBe(
      'CryptoError ids-certificate-key-mismatch',
    );
    expect(code(answer([{ 'user-id': 'D:42', status: 0, cert: appleIdCert, uris: [{ uri: 'mailto:a@b.c' }] }]), [apple])).toBe(
      'DecodeError ids-bad-response',
    );
    // Deregistering (no users) only needs a zero status.
    expect(code({ status: 0 }, [])).toBe('no error');
  });

  it('gives only typed errors for arbitrary answers', () => {
    const leaf: fc.Arbitrary<PlistValue> = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom(0, 5052, 6005, 6009), fc.uint8Array({ maxLength: 4 }));
    const uri = fc.dictionary(fc.constantFrom('uri', 'status'), fc.oneof(leaf, fc.constant('mailto:a@b.c')), { maxKeys: 2 });
    const user = fc.record(
      {
        'user-id': fc.oneof(fc.constantFrom('D:42', 'P:+15555550100'), leaf),
        status: leaf,
        cert: fc.oneof(leaf, fc.constant(appleIdCert)),
        uris: fc.oneof(fc.array(uri, { maxLength: 2 }), leaf),
        alert: fc.oneof(leaf, fc.constant({})),
        'next-hbi': leaf,
      },
      { requiredKeys: [] },
    );
    const service = fc.record({ service: fc.oneof(fc.constant('com.apple.madrid'), leaf), status: leaf, users: fc.oneof(fc.array(user, { maxLength: 3 }), leaf) }, { requiredKeys: [] });
    const top = fc.record({ status: fc.oneof(fc.constant(0), leaf), services: fc.oneof(fc.array(service, { maxLength: 2 }), leaf) }, { requiredKeys: [] });
    fc.assert(
      fc.property(top, (d) => {
        try {
          parseRegisterResponse(d as PlistDict, sent());
        } catch (e) {
          if (!(e instanceof DecodeError || e instanceof IdsError || e instanceof CryptoError)) throw e;
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('reregisterDueAt', () => {
  const MIN = 60_000;
  const H = 60 * MIN;
  const D = 24 * H;
  const now = 1_700_000_000_000;
  it('leaves a margin that grows with the certificate lifetime, and caps the age', () => {
    expect(reregisterDueAt(now + 30 * MIN, now)).toBe(now + 27 * MIN); // first phone certificate
    expect(reregisterDueAt(now + 8 * H, now)).toBe(now + 8 * H - 30 * MIN);
    expect(reregisterDueAt(now + D, now)).toBe(now + D - 4 * H);
    expect(reregisterDueAt(now + 7 * D, now)).toBe(now + 6 * D);
    expect(reregisterDueAt(now + 30 * D, now)).toBe(now + 29 * D);
    expect(reregisterDueAt(now + 365 * D, now)).toBe(now + MAX_REGISTRATION_AGE_MS);
    expect(reregisterDueAt(now + MIN, now)).toBe(now);
    expect(reregisterDueAt(now - MIN, now)).toBe(now);
  });
});
