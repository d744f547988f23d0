import { describe, expect, it } from 'vitest';
import { EncodeError } from '../../../lib/errors';
import {
  APPLE_EPOCH_MS,
  lookupUserAgent,
  osVersion,
  privateDeviceData,
  registrationUserAgent,
  setupTimeOf,
  userAgent,
} from '../../../lib/ids/device';
import { DEVICE } from './helpers';

describe('device presentation', () => {
  it('formats the User-Agents and os-version from the versions', () => {
    expect(userAgent(DEVICE)).toBe('[macOS,13.5,22G74,Macmini9,1]');
    expect(registrationUserAgent(DEVICE)).toBe('com.apple.invitation-registration [macOS,13.5,22G74,Macmini9,1]');
    expect(lookupUserAgent(DEVICE)).toBe('com.apple.madrid-lookup [macOS,13.5,22G74,Macmini9,1]');
    expect(osVersion(DEVICE)).toBe('macOS,13.5,22G74');
  });

  it('writes d as seconds since 2001 with six decimals and reads it back', () => {
    expect(APPLE_EPOCH_MS).toBe(Date.UTC(2001, 0, 1));
    const pdd = privateDeviceData(DEVICE);
    expect(pdd['d']).toBe('725760000.500000');
    expect(setupTimeOf(pdd)).toBe(DEVICE.setupAt);
    expect(setupTimeOf({ d: 10 })).toBe(APPLE_EPOCH_MS + 10_000);
    for (const d of ['', 'x', '-1', '1e9', '1.2.3']) expect(setupTimeOf({ d })).toBeUndefined();
    expect(setupTimeOf(undefined)).toBeUndefined();
  });

  it('tells Macs, iPhones and iPads apart', () => {
    expect(privateDeviceData(DEVICE)).toMatchObject({ dt: 1, ap: '0' });
    expect(privateDeviceData({ ...DEVICE, hardwareVersion: 'iPhone15,2' })).toMatchObject({ dt: 2, ap: '1' });
    expect(privateDeviceData({ ...DEVICE, hardwareVersion: 'iPad13,4' })).toMatchObject({ dt: 4, ap: '0' });
  });

  it('refuses a malformed UUID or setup time', () => {
    expect(() => privateDeviceData({ ...DEVICE, uuid: DEVICE.uuid.toLowerCase() })).toThrow(EncodeError);
    expect(() => privateDeviceData({ ...DEVICE, setupAt: NaN })).toThrow(EncodeError);
  });
});
