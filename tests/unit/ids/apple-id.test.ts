import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fromUtf8 } from '../../../lib/codec/bytes';
import { type PlistDict, type PlistValue } from '../../../lib/codec/plist';
import { DecodeError, EncodeError } from '../../../lib/errors';
import { authenticateUserBody, parseAuthenticateUserResponse, signInAppleId } from '../../../lib/ids/apple-id';
import { IdsError } from '../../../lib/ids/errors';
import { context, fakeHttp, plistAnswer, rejection } from './helpers';

const PLIST_HEAD =
  '<?xml version="1.0" encoding="UTF-8"?>\n' +
  '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n' +
  '<plist version="1.0">\n';

describe('authenticateUser body', () => {
  it('is {username, password} with the code appended to the password', () => {
    expect(fromUtf8(authenticateUserBody({ username: 'a@b.c', password: 'pw', code: '123456' }))).toBe(
      PLIST_HEAD +
        '<dict>\n\t<key>username</key>\n\t<string>a@b.c</string>\n\t<key>password</key>\n\t<string>pw123456</string>\n</dict>\n</plist>\n',
    );
    expect(fromUtf8(authenticateUserBody({ username: 'a@b.c', password: 'p&w' }))).toContain('<string>p&amp;w</string>');
  });

  it('refuses empty credentials and codes that are not 6 digits', () => {
    expect(() => authenticateUserBody({ username: '', password: 'x' })).toThrow(EncodeError);
    for (const code of ['12345', '1234567', 'abcdef', '12 456']) {
      expect(() => authenticateUserBody({ username: 'a', password: 'x', code })).toThrow(EncodeError);
    }
  });
});

describe('authenticateUser response', () => {
  it('maps 0 / 5000 / 5012 and fails other statuses', () => {
    expect(parseAuthenticateUserResponse({ status: 0, 'auth-token': 'tok', 'profile-id': 'D:123' })).toEqual({
      status: 'ok',
      authToken: 'tok',
      profileId: 'D:123',
    });
    expect(parseAuthenticateUserResponse({ status: 5000 })).toEqual({ status: 'second-factor-required' });
    expect(parseAuthenticateUserResponse({ status: 5012 })).toEqual({ status: 'bad-credentials' });
    try {
      parseAuthenticateUserResponse({ status: 7000 });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(IdsError);
      expect((e as IdsError).code).toBe('ids-status');
      expect((e as IdsError).status).toBe(7000);
    }
  });

  it('needs an auth-token and profile-id on success, and an integer status', () => {
    for (const bad of [{ status: 0 }, { status: 0, 'auth-token': 'x' }, { status: 0, 'auth-token': 1, 'profile-id': 'D:1' }, {}, { status: '0' }]) {
      expect(() => parseAuthenticateUserResponse(bad as PlistDict)).toThrow(DecodeError);
    }
  });

  it('throws only typed errors for arbitrary dictionaries', () => {
    const value: fc.Arbitrary<PlistValue> = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.uint8Array({ maxLength: 4 }));
    const dict = fc.record(
      { status: fc.oneof(fc.constantFrom(0, 5000, 5012, 6005), value), 'auth-token': value, 'profile-id': value },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(dict, (d) => {
        try {
          parseAuthenticateUserResponse(d as PlistDict);
        } catch (e) {
          if (!(e instanceof DecodeError || e instanceof IdsError)) throw e;
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('signInAppleId', () => {
  it('POSTs the plist to vc-profile-authenticate with the device User-Agent', async () => {
    const http = fakeHttp(() => plistAnswer({ status: 5000 }));
    expect(await signInAppleId(context(http), { username: 'a@b.c', password: 'pw' })).toEqual({ status: 'second-factor-required' });
    const req = http.requests[0]!;
    expect(req.host).toBe('profile.ess.apple.com');
    expect(req.path).toBe('/WebObjects/VCProfileService.woa/wa/authenticateUser');
    expect(req.method).toBe('POST');
    expect(req.headers).toEqual({ 'user-agent': '[macOS,13.5,22G74,Macmini9,1]', 'content-type': 'application/x-apple-plist' });
    expect(fromUtf8(req.body!)).toContain('<string>pw</string>');
  });

  it('reports an IDS status on an HTTP error answer', async () => {
    const http = fakeHttp(() => plistAnswer({ status: 5003, message: 'bad' }, 400));
    const e = (await rejection(signInAppleId(context(http), { username: 'a', password: 'b' }))) as IdsError;
    expect(e).toBeInstanceOf(IdsError);
    expect(e.status).toBe(5003);
    expect(e.httpStatus).toBe(400);
  });
});
