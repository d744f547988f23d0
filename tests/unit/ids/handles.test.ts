import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fromBase64, toBase64 } from '../../../lib/codec/bytes';
import type { PlistDict, PlistValue } from '../../../lib/codec/plist';
import { DecodeError } from '../../../lib/errors';
import { parseNonce, verifyIdsSignature } from '../../../lib/crypto/request-signing';
import { IdsError } from '../../../lib/ids/errors';
import { getDependentRegistrations, getHandles, parseDependentRegistrations, parseHandlesResponse } from '../../../lib/ids/handles';
import type { PushCredentials, UserCredentials } from '../../../lib/ids/signing';
import { context, DEVICE, FIXED_NOW, fakeHttp, plistAnswer, rejection, rsaKeys } from './helpers';

const TOKEN = new Uint8Array(32).fill(7);
const OTHER_TOKEN = new Uint8Array(32).fill(9);
let pushKeys: CryptoKeyPair;
let authKeys: CryptoKeyPair;
let push: PushCredentials;
let user: UserCredentials;

beforeAll(async () => {
  [pushKeys, authKeys] = await Promise.all([rsaKeys(), rsaKeys()]);
  push = { token: TOKEN, certDer: new Uint8Array([0x30, 0x01]), privateKey: pushKeys.privateKey };
  user = { userId: 'D:42', certDer: new Uint8Array([0x30, 0x02]), privateKey: authKeys.privateKey };
});

describe('idsGetHandles', () => {
  it('is a signed GET whose signatures cover an empty body', async () => {
    const http = fakeHttp(() => plistAnswer({ status: 0, handles: [{ uri: 'mailto:a@b.c' }, { uri: 'tel:+15555550100', aliases: {} }] }));
    expect(await getHandles(context(http), { push, user })).toEqual(['mailto:a@b.c', 'tel:+15555550100']);
    const req = http.requests[0]!;
    expect(`${req.method} ${req.host}${req.path}`).toBe('GET profile.ess.apple.com/WebObjects/VCProfileService.woa/wa/idsGetHandles');
    expect(req.body).toBeUndefined();
    const h = req.headers;
    expect(Object.keys(h).sort()).toEqual([
      'user-agent',
      'x-auth-cert',
      'x-auth-nonce',
      'x-auth-sig',
      'x-auth-user-id',
      'x-protocol-version',
      'x-push-cert',
      'x-push-nonce',
      'x-push-sig',
      'x-push-token',
    ]);
    expect(h['x-auth-user-id']).toBe('D:42');
    expect(h['x-push-token']).toBe(toBase64(TOKEN));
    expect(h['x-push-cert']).toBe('MAE=');
    expect(h['x-auth-cert']).toBe('MAI=');
    for (const [family, keys] of [['push', pushKeys], ['auth', authKeys]] as const) {
      const nonce = fromBase64(h[`x-${family}-nonce`]!);
      expect(parseNonce(nonce).timeMs).toBe(FIXED_NOW);
      const fields = { nonce, bagKey: 'id-get-handles', query: '', body: new Uint8Array(0), pushToken: TOKEN };
      expect(await verifyIdsSignature(keys.publicKey, fields, fromBase64(h[`x-${family}-sig`]!))).toBe(true);
    }
  });

  it('reports 6005 as auth-expired for that user', async () => {
    const e = (await rejection(getHandles(context(fakeHttp(() => plistAnswer({ status: 6005 }))), { push, user }))) as IdsError;
    expect(e).toBeInstanceOf(IdsError);
    expect(e.code).toBe('auth-expired');
    expect(e.userId).toBe('D:42');
  });

  it('parses strictly', () => {
    expect(parseHandlesResponse({ status: 0 }, 'u')).toEqual([]);
    expect(() => parseHandlesResponse({ status: 0, handles: [{}] }, 'u')).toThrow(DecodeError);
    expect(() => parseHandlesResponse({ status: 0, handles: 'x' }, 'u')).toThrow(DecodeError);
    expect(() => parseHandlesResponse({ handles: [] }, 'u')).toThrow(DecodeError);
    expect(() => parseHandlesResponse({ status: 5032 }, 'u')).toThrow(IdsError);
  });
});

describe('getDependentRegistrations', () => {
  const answer: PlistDict = {
    status: 0,
    'expiry-epoch-milli-sec': FIXED_NOW + 3_600_000,
    registrations: [
      {
        service: 'com.apple.madrid',
        'sub-services': ['com.apple.private.alloy.sms'],
        'push-token': TOKEN,
        identities: [{ uri: 'mailto:a@b.c' }, { uri: 'tel:+15555550100' }],
        'is-hsa-trusted-device': true,
        'device-name': 'Alice’s Mac',
        'hardware-version': 'Macmini9,1',
        'private-device-data': { d: '725760000.500000', u: DEVICE.uuid },
        'client-data': { 'supports-ack-v1': true },
        'self-handle': 'mailto:a@b.c',
      },
      { service: 'com.apple.madrid', 'push-token': OTHER_TOKEN, identities: [] },
      // No usable push token: not a device that can be shown.
      { service: 'com.apple.madrid', 'push-token': new Uint8Array(3) },
      'junk',
    ],
  };

  it('lists the devices with name, token, handles and first-seen time', async () => {
    const http = fakeHttp(() => plistAnswer(answer));
    const got = await getDependentRegistrations(context(http), { push, user });
    expect(`${http.requests[0]!.method} ${http.requests[0]!.host}${http.requests[0]!.path}`).toBe(
      'GET identity.ess.apple.com/WebObjects/TDIdentityService.woa/wa/getDependentRegistrations',
    );
    expect(got.expiresAt).toBe(FIXED_NOW + 3_600_000);
    expect(got.devices).toEqual([
      {
        service: 'com.apple.madrid',
        pushToken: TOKEN,
        identities: ['mailto:a@b.c', 'tel:+15555550100'],
        subServices: ['com.apple.private.alloy.sms'],
        deviceName: 'Alice’s Mac',
        hardwareVersion: 'Macmini9,1',
        selfHandle: 'mailto:a@b.c',
        firstSeen: DEVICE.setupAt,
        clientData: { 'supports-ack-v1': true },
      },
      { service: 'com.apple.madrid', pushToken: OTHER_TOKEN, identities: [], subServices: [] },
    ]);
  });

  it('gives only typed errors for arbitrary answers', () => {
    const leaf: fc.Arbitrary<PlistValue> = fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.uint8Array({ maxLength: 33 }), fc.boolean());
    const value = fc.oneof(leaf, fc.array(leaf, { maxLength: 3 }), fc.dictionary(fc.constantFrom('uri', 'd', 'push-token'), leaf, { maxKeys: 3 }));
    const entry = fc.dictionary(
      fc.constantFrom('service', 'push-token', 'identities', 'sub-services', 'device-name', 'private-device-data', 'client-data', 'self-handle'),
      value,
      { maxKeys: 8 },
    );
    const dict = fc.record({ status: fc.oneof(fc.constant(0), leaf), registrations: fc.oneof(fc.array(entry, { maxLength: 3 }), leaf) }, { requiredKeys: [] });
    fc.assert(
      fc.property(dict, (d) => {
        try {
          parseDependentRegistrations(d as PlistDict, 'u');
        } catch (e) {
          if (!(e instanceof DecodeError || e instanceof IdsError)) throw e;
        }
      }),
      { numRuns: 300 },
    );
  });
});
