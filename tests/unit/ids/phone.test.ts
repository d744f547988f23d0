import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fromHex, fromUtf8, toHex } from '../../../lib/codec/bytes';
import { decodeXmlPlist, type PlistDict } from '../../../lib/codec/plist';
import { DecodeError, EncodeError } from '../../../lib/errors';
import { authenticatePhoneBody, newRegRequestId, parseRegResp, regReqText } from '../../../lib/ids/phone';

const TOKEN = fromHex('49242ae42236b324bde43bdc6f76fdfa41814a70e58a844700f03180c55ae767');
const RESP = 'REG-RESP?v=3;r=3735928559;n=+15555550100;s=01AB9F';

describe('REG-REQ', () => {
  it('is the fixed text with an upper-case token and a trailing ;', () => {
    expect(regReqText(TOKEN, 3735928559)).toBe(
      'REG-REQ?v=3;t=49242AE42236B324BDE43BDC6F76FDFA41814A70E58A844700F03180C55AE767;r=3735928559;',
    );
    expect(regReqText(TOKEN, 0)).toMatch(/;r=0;$/);
  });

  it('refuses a bad token or request id', () => {
    expect(() => regReqText(TOKEN.subarray(1), 1)).toThrow(EncodeError);
    for (const r of [-1, 2 ** 32, 1.5, NaN]) expect(() => regReqText(TOKEN, r)).toThrow(EncodeError);
  });

  it('makes uint32 request ids', () => {
    for (let i = 0; i < 20; i++) {
      const r = newRegRequestId();
      expect(Number.isInteger(r) && r >= 0 && r <= 0xffffffff).toBe(true);
    }
  });
});

describe('REG-RESP', () => {
  it('parses number, user id and signature', () => {
    const r = parseRegResp(RESP, 3735928559);
    expect(r).toEqual({ requestId: 3735928559, number: '+15555550100', userId: 'P:+15555550100', signature: fromHex('01ab9f') });
    // Field order does not matter; unknown fields are ignored; surrounding whitespace from the SMS is trimmed.
    expect(parseRegResp(' REG-RESP?n=+15555550100;x=1;s=01ab9f;r=3735928559;v=3\n').signature).toEqual(fromHex('01ab9f'));
  });

  it('is strict about everything else', () => {
    const bad = (text: string, expected?: number) => {
      try {
        parseRegResp(text, expected);
        expect.unreachable(text);
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
        expect((e as DecodeError).code).toBe('bad-reg-resp');
      }
    };
    bad(RESP + ';'); // trailing ;
    bad(RESP, 1); // r mismatch
    bad(RESP.replace('v=3', 'v=2'));
    bad(RESP.replace('REG-RESP?', 'REG-REQ?'));
    bad(RESP.replace(';s=01AB9F', '')); // no signature
    bad(RESP.replace('s=01AB9F', 's=01AB9')); // odd hex
    bad(RESP.replace('s=01AB9F', 's=')); // empty
    bad(RESP.replace('s=01AB9F', 's=zz'));
    bad(RESP.replace('n=+15555550100', 'n=15555550100')); // no +
    bad(RESP.replace('n=+15555550100', 'n=+1'));
    bad(RESP.replace('r=3735928559', 'r=4294967296')); // > uint32
    bad(RESP.replace('r=3735928559', 'r=-1'));
    bad(RESP + ';v=3'); // repeated
    bad(RESP.replace(';n=', ';=')); // no key
    bad(RESP.replace(';n=+15555550100', ';n')); // no =
    bad('REG-RESP?' + 'x=1;'.repeat(500));
    bad(42 as unknown as string);
  });

  it('gives only DecodeErrors for random and mutated texts', () => {
    const only = (t: string) => {
      try {
        const r = parseRegResp(t);
        expect(r.userId).toBe(`P:${r.number}`);
      } catch (e) {
        if (!(e instanceof DecodeError)) throw e;
      }
    };
    fc.assert(fc.property(fc.string({ maxLength: 120 }), only), { numRuns: 200 });
    const piece = fc.constantFrom('v=3', 'r=7', 'n=+15555550100', 's=00ff', ';', '=', 'REG-RESP?', 'x', '');
    fc.assert(fc.property(fc.array(piece, { maxLength: 12 }), (ps) => only('REG-RESP?' + ps.join(''))), { numRuns: 300 });
    fc.assert(
      fc.property(fc.nat(RESP.length - 1), fc.string({ maxLength: 3 }), (i, s) => only(RESP.slice(0, i) + s + RESP.slice(i + 1))),
      { numRuns: 300 },
    );
  });
});

describe('authenticatePhoneNumber body', () => {
  it('carries the push token, the gateway signature and the phone user id', () => {
    const csr = fromHex('3082');
    const body = authenticatePhoneBody({ pushToken: TOKEN, regResp: parseRegResp(RESP), csr });
    const text = fromUtf8(body);
    expect(text).toContain('<key>realm-user-id</key>\n\t<string>P:+15555550100</string>');
    const dict = decodeXmlPlist(body) as PlistDict;
    const auth = dict['authentication-data'] as PlistDict;
    expect(toHex(auth['push-token'] as Uint8Array)).toBe(toHex(TOKEN));
    expect((auth['sigs'] as Uint8Array[]).map(toHex)).toEqual(['01ab9f']);
    expect(toHex(dict['csr'] as Uint8Array)).toBe('3082');
    expect(() => authenticatePhoneBody({ pushToken: TOKEN.subarray(2), regResp: parseRegResp(RESP), csr })).toThrow(EncodeError);
  });
});
