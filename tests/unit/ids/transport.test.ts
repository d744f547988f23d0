import { describe, expect, it } from 'vitest';
import { EncodeError } from '../../../lib/errors';
import { splitHost, splitHttpsUrl } from '../../../lib/ids/transport';

describe('transport addressing', () => {
  it('splits https URLs into host and path', () => {
    expect(splitHttpsUrl('https://init.ess.apple.com/WebObjects/VCInit.woa/wa/getBag?ix=3')).toEqual({
      host: 'init.ess.apple.com',
      path: '/WebObjects/VCInit.woa/wa/getBag?ix=3',
    });
    expect(splitHttpsUrl('https://relay.example:8443')).toEqual({ host: 'relay.example:8443', path: '/' });
    expect(splitHttpsUrl('https://relay.example:443/x')).toEqual({ host: 'relay.example', path: '/x' });
    for (const bad of ['http://static.ess.apple.com/x', 'not a url', 'wss://x/']) expect(() => splitHttpsUrl(bad)).toThrow(EncodeError);
  });

  it('splits host and port', () => {
    expect(splitHost('identity.ess.apple.com')).toEqual({ name: 'identity.ess.apple.com', port: 443 });
    expect(splitHost('relay.example:8443')).toEqual({ name: 'relay.example', port: 8443 });
    expect(splitHost('[::1]:8443')).toEqual({ name: '::1', port: 8443 });
    for (const bad of ['', 'a:b:c', 'x:0', 'x:70000', 'x:']) expect(() => splitHost(bad)).toThrow(EncodeError);
  });
});
