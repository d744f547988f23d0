import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { utf8 } from '../../../lib/codec/bytes';
import { DecodeError, EncodeError } from '../../../lib/errors';
import { IdsError } from '../../../lib/ids/errors';
import { BEEPER_RELAY_URL, deviceFromRelay, getValidationData, getVersionInfo, SANDBOX_RELAY_URL } from '../../../lib/ids/validation-data';
import { fakeHttp, jsonAnswer, rejection, response } from './helpers';

const VERSIONS = {
  hardware_version: 'Macmini9,1',
  software_name: 'macOS',
  software_version: '13.5',
  software_build_id: '22G74',
  serial_number: 'C02ABCDEF123',
  unique_device_id: 'F0E1D2C3-0000-4000-8000-000000000001',
};

describe('registration relay', () => {
  it('POSTs to get-validation-data with the code as bearer token and reads the JSON', async () => {
    const http = fakeHttp(() => jsonAnswer({ data: 'AQIDBA==', valid_until: '2024-11-22T10:15:00Z', versions: VERSIONS, name: 'Alice’s Mac' }));
    const v = await getValidationData(http, { relayUrl: SANDBOX_RELAY_URL, code: 'ABCD-EFGH-IJKL-MNOP' });
    expect(v).toEqual({
      data: new Uint8Array([1, 2, 3, 4]),
      validUntil: Date.UTC(2024, 10, 22, 10, 15),
      name: 'Alice’s Mac',
      versions: {
        hardwareVersion: 'Macmini9,1',
        softwareName: 'macOS',
        softwareVersion: '13.5',
        softwareBuildId: '22G74',
        serialNumber: 'C02ABCDEF123',
        uniqueDeviceId: 'F0E1D2C3-0000-4000-8000-000000000001',
      },
    });
    expect(http.requests).toEqual([
      {
        host: 'registration-relay.sandbox.cerulean.invalid',
        method: 'POST',
        path: '/api/v1/bridge/get-validation-data',
        headers: { authorization: 'Bearer ABCD-EFGH-IJKL-MNOP', 'content-type': 'application/json', accept: 'application/json' },
        body: utf8('{}'),
      },
    ]);
  });

  it('keeps a path prefix and sends the access token when given', async () => {
    const http = fakeHttp(() => jsonAnswer({ versions: VERSIONS }));
    const info = await getVersionInfo(http, { relayUrl: 'https://relay.example:8443/base/', code: 'X', accessToken: 'tok' });
    expect(info.versions?.softwareBuildId).toBe('22G74');
    expect(http.requests[0]!.host).toBe('relay.example:8443');
    expect(http.requests[0]!.path).toBe('/base/api/v1/bridge/get-version-info');
    expect(http.requests[0]!.headers['x-beeper-access-token']).toBe('tok');
    expect(BEEPER_RELAY_URL).toBe('https://registration-relay.beeper.com');
  });

  it('maps 404 to RelayUnknownCode and 500 or an error to RelayFailed', async () => {
    const code = async (status: number, body = utf8('')) => {
      const e = (await rejection(getValidationData(fakeHttp(() => response(body, status)), { relayUrl: SANDBOX_RELAY_URL, code: 'C' }))) as IdsError;
      expect(e).toBeInstanceOf(IdsError);
      return [e.code, e.httpStatus];
    };
    expect(await code(404)).toEqual(['relay-unknown-code', 404]);
    expect(await code(401)).toEqual(['relay-unknown-code', 401]);
    expect(await code(500)).toEqual(['relay-failed', 500]);
    expect(await code(429)).toEqual(['http-status', 429]);
    expect(await code(200, utf8('{"error":"NAC failed","data":""}'))).toEqual(['relay-failed', undefined]);
  });

  it('rejects malformed answers with DecodeError', async () => {
    const bad = async (body: string) => {
      const e = await rejection(getValidationData(fakeHttp(() => response(utf8(body))), { relayUrl: SANDBOX_RELAY_URL, code: 'C' }));
      expect(e).toBeInstanceOf(DecodeError);
      expect((e as DecodeError).code).toBe('relay-bad-response');
    };
    await bad('not json');
    await bad('[1]');
    await bad('{}');
    await bad('{"data":""}');
    await bad('{"data":"!!"}');
    await bad('{"data":"AQ==","valid_until":"yesterday"}');
    await bad('{"data":"AQ==","versions":{"hardware_version":"x"}}');
    await bad(`{"data":"AQ==","versions":${JSON.stringify({ ...VERSIONS, software_name: 'mac,OS' })}}`);
    await bad(`{"data":"AQ==","versions":${JSON.stringify({ ...VERSIONS, software_build_id: '22G]74' })}}`);
    await expect(getValidationData(fakeHttp(() => jsonAnswer({})), { relayUrl: SANDBOX_RELAY_URL, code: 'a b' })).rejects.toBeInstanceOf(EncodeError);
  });

  it('gives only typed errors for arbitrary answers', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.json({ maxDepth: 2 }), fc.string({ maxLength: 40 })), async (text) => {
        const http = fakeHttp(() => response(utf8(text)));
        try {
          const v = await getValidationData(http, { relayUrl: SANDBOX_RELAY_URL, code: 'C' });
          expect(v.data.length).toBeGreaterThan(0);
        } catch (e) {
          if (!(e instanceof DecodeError || e instanceof IdsError)) throw e;
        }
      }),
      { numRuns: 200 },
    );
  });

  it('turns relay versions into the device to register as', () => {
    const own = { deviceName: 'Cerulean', uuid: '01234567-89AB-4CDE-8F01-23456789ABCD', setupAt: 1 };
    expect(
      deviceFromRelay({ hardwareVersion: 'MacBookPro18,3', softwareName: 'macOS', softwareVersion: '14.1', softwareBuildId: '23B74' }, own),
    ).toEqual({ ...own, hardwareVersion: 'MacBookPro18,3', softwareName: 'macOS', softwareVersion: '14.1', softwareBuildId: '23B74' });
    expect(deviceFromRelay(undefined, own)).toMatchObject({ hardwareVersion: 'Macmini9,1', softwareBuildId: '22G74' });
  });
});
