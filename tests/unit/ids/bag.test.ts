import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { toBase64, utf8 } from '../../../lib/codec/bytes';
import { encodeBinaryPlist, encodeXmlPlist } from '../../../lib/codec/plist';
import { DecodeError } from '../../../lib/errors';
import { DEFAULT_IDS_URLS, fetchIdsBag, IDS_BAG_URL, IdsBag, IdsBagCache, parseIdsBag } from '../../../lib/ids/bag';
import { IdsError } from '../../../lib/ids/errors';
import { fakeHttp, plistAnswer, rejection, response } from './helpers';

// An inner bag as init.ess.apple.com serves it (keys of the 2017 capture), pointing two endpoints elsewhere.
const INNER = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>id-register</key><string>https://identity.example.test/wa/register</string>
  <key>id-provision-ds-id</key><string>https://profile.example.test/wa/authenticateDS</string>
  <key>id-query</key><string>not a url</string>
  <key>apns-ids-query-min-version</key><integer>2</integer>
  <key>max-uri-multi-query</key><integer>20</integer>
  <key>vc-registration-hbi</key><integer>2317246</integer>
</dict>
</plist>`;

const OUTER = `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0">
<dict>
  <key>bag</key><data>${toBase64(utf8(INNER))}</data>
  <key>certs</key><array><data>MAA=</data></array>
  <key>signature</key><data>AQID</data>
</dict>
</plist>`;

describe('IDS bag', () => {
  it('unwraps the outer plist and serves URLs by bag key, aliases and defaults', () => {
    const bag = parseIdsBag(utf8(OUTER));
    expect(bag.url('id-register')).toBe('https://identity.example.test/wa/register');
    // Only the old alias is present.
    expect(bag.url('id-authenticate-ds-id')).toBe('https://profile.example.test/wa/authenticateDS');
    // Not an https URL: the real default.
    expect(bag.url('id-query')).toBe('https://query.ess.apple.com/WebObjects/QueryService.woa/wa/query');
    expect(bag.url('id-get-handles')).toBe('https://profile.ess.apple.com/WebObjects/VCProfileService.woa/wa/idsGetHandles');
    expect(bag.value('vc-registration-hbi')).toBe(2317246);
    expect(bag.maxUrisPerQuery).toBe(20);
  });

  it('has the real URLs as defaults', () => {
    const bag = IdsBag.defaults();
    expect(bag.url('vc-profile-authenticate')).toBe('https://profile.ess.apple.com/WebObjects/VCProfileService.woa/wa/authenticateUser');
    expect(bag.url('id-authenticate-phone-number')).toBe(
      'https://identity.ess.apple.com/WebObjects/TDIdentityService.woa/wa/authenticatePhoneNumber',
    );
    expect(bag.url('id-get-dependent-registrations')).toBe(
      'https://identity.ess.apple.com/WebObjects/TDIdentityService.woa/wa/getDependentRegistrations',
    );
    for (const key of Object.keys(DEFAULT_IDS_URLS) as Array<keyof typeof DEFAULT_IDS_URLS>) expect(bag.url(key)).toMatch(/^https:\/\/\w+\.ess\.apple\.com\//);
    expect(bag.maxUrisPerQuery).toBe(35);
  });

  it('accepts a binary inner bag too', () => {
    const outer = encodeXmlPlist({ bag: encodeBinaryPlist({ 'id-register': 'https://x.test/r' }), certs: [], signature: new Uint8Array(0) });
    expect(parseIdsBag(outer).url('id-register')).toBe('https://x.test/r');
  });

  it('rejects malformed bags with DecodeError', () => {
    const bad = (bytes: Uint8Array, code: string) => {
      try {
        parseIdsBag(bytes);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
        expect((e as DecodeError).code).toBe(code);
      }
    };
    bad(utf8('not a plist'), 'ids-bad-response');
    bad(encodeXmlPlist(['bag']), 'ids-bad-response');
    bad(encodeXmlPlist({ certs: [] }), 'ids-bad-bag');
    bad(encodeXmlPlist({ bag: 'a string' }), 'ids-bad-bag');
    bad(encodeXmlPlist({ bag: utf8('<plist><array/></plist>') }), 'ids-bad-bag');
    bad(encodeXmlPlist({ bag: utf8('garbage') }), 'ids-bad-bag');
  });

  it('gives only DecodeErrors for random and mutated input', () => {
    const only = (bytes: Uint8Array) => {
      try {
        parseIdsBag(bytes);
      } catch (e) {
        if (!(e instanceof DecodeError)) throw e;
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), only), { numRuns: 200 });
    const valid = utf8(OUTER);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (edits) => {
        const m = valid.slice();
        for (const [i, b] of edits) m[i] = b;
        only(m);
      }),
      { numRuns: 200 },
    );
  });
});

describe('fetching the bag', () => {
  it('GETs the real URL and caches for the server max-age', async () => {
    let now = 1_000_000;
    const http = fakeHttp(() => response(utf8(OUTER), 200, { 'cache-control': ['max-age=3492'] }));
    const cache = new IdsBagCache(http, { now: () => now, userAgent: '[macOS,13.5,22G74,Macmini9,1]' });
    const [a, b] = await Promise.all([cache.get(), cache.get()]);
    expect(a).toBe(b);
    expect(http.requests).toHaveLength(1);
    expect(http.requests[0]).toEqual({
      host: 'init.ess.apple.com',
      method: 'GET',
      path: '/WebObjects/VCInit.woa/wa/getBag?ix=3',
      headers: { 'user-agent': '[macOS,13.5,22G74,Macmini9,1]' },
    });
    now += 3_491_000;
    expect(await cache.get()).toBe(a);
    now += 1_000;
    expect(await cache.get()).not.toBe(a);
    expect(http.requests).toHaveLength(2);
    cache.invalidate();
    await cache.get();
    expect(http.requests).toHaveLength(3);
  });

  it('does not cache a failure', async () => {
    let fail = true;
    const http = fakeHttp(() => (fail ? response(new Uint8Array(0), 503) : plistAnswer({ bag: utf8(INNER) })));
    const cache = new IdsBagCache(http);
    const e = await rejection(cache.get());
    expect(e).toBeInstanceOf(IdsError);
    expect((e as IdsError).code).toBe('http-status');
    expect((e as IdsError).httpStatus).toBe(503);
    fail = false;
    expect((await cache.get()).maxUrisPerQuery).toBe(20);
  });

  it('fetchIdsBag uses IDS_BAG_URL', async () => {
    const http = fakeHttp(() => response(utf8(OUTER)));
    await fetchIdsBag(http);
    expect(`https://${http.requests[0]!.host}${http.requests[0]!.path}`).toBe(IDS_BAG_URL);
  });
});
