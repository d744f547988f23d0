// The courier dialer: which numbered host it picks, and the tunnel URL and subprotocols it hands the WebSocket.
import { describe, expect, it } from 'vitest';
import { courierConnector, pickCourierHost } from '../../../lib/apns/courier-connect';
import type { WebSocketLike } from '../../../lib/net/byte-stream';

describe('pickCourierHost', () => {
  it('picks n in 1…count', () => {
    expect(pickCourierHost('courier.push.apple.com', 50, () => 0)).toBe('1-courier.push.apple.com');
    expect(pickCourierHost('courier.push.apple.com', 50, () => 0.999999)).toBe('50-courier.push.apple.com');
    expect(pickCourierHost('courier.sandbox.push.apple.com', 10, () => 0.35)).toBe('4-courier.sandbox.push.apple.com');
    for (let i = 0; i < 200; i++) {
      const n = Number(/^(\d+)-/.exec(pickCourierHost('c', 7))![1]);
      expect(n).toBeGreaterThanOrEqual(1);
      expect(n).toBeLessThanOrEqual(7);
    }
  });
});

/** A WebSocket that records how it was opened, then fails to connect. */
function recordingWebSocket(opened: Array<{ url: string; protocols?: string | string[] }>) {
  return class implements WebSocketLike {
    binaryType = 'blob';
    readyState = 0;
    bufferedAmount = 0;
    private readonly listeners = new Map<string, (e: unknown) => void>();
    constructor(url: string, protocols?: string | string[]) {
      opened.push({ url, ...(protocols ? { protocols } : {}) });
      setTimeout(() => this.listeners.get('close')?.({ code: 1006, reason: '' }), 0);
    }
    send(): void {}
    close(): void {}
    addEventListener(type: string, listener: (e: unknown) => void): void {
      this.listeners.set(type, listener);
    }
  };
}

describe('courierConnector', () => {
  it('tunnels to a numbered courier host on 5223 through the bridge, with the token as a subprotocol', async () => {
    const opened: Array<{ url: string; protocols?: string | string[] }> = [];
    const connect = courierConnector({
      bridgeUrl: 'https://bridge.example/base/',
      WebSocketImpl: recordingWebSocket(opened),
      bridgeToken: 'abcdefghijklmnop-123',
      trustedRoots: [],
      random: () => 0.5,
    });
    await expect(connect()).rejects.toMatchObject({ name: 'NetError', code: 'bridge-unreachable' });
    expect(opened).toEqual([
      {
        url: 'wss://bridge.example/base/tunnel/26-courier.push.apple.com:5223',
        protocols: ['cerulean.bridge.v1', 'cerulean.token.abcdefghijklmnop-123'],
      },
    ]);
  });

  it('honours a fixed host, the sandbox name, another port and no token', async () => {
    const opened: Array<{ url: string; protocols?: string | string[] }> = [];
    const connect = courierConnector({
      bridgeUrl: 'ws://127.0.0.1:8787',
      WebSocketImpl: recordingWebSocket(opened),
      trustedRoots: [],
      hostname: 'courier.sandbox.push.apple.com',
      courierHost: 'windows.courier.push.apple.com',
      port: 443,
    });
    await expect(connect()).rejects.toMatchObject({ code: 'bridge-unreachable' });
    expect(opened).toEqual([{ url: 'ws://127.0.0.1:8787/tunnel/windows.courier.push.apple.com:443' }]);
  });

  it('refuses a malformed bridge token or host count when configured', () => {
    const base = { bridgeUrl: 'ws://b', WebSocketImpl: recordingWebSocket([]), trustedRoots: [] };
    expect(() => courierConnector({ ...base, bridgeToken: 'short' })).toThrow(/token/);
    expect(() => courierConnector({ ...base, hostCount: 0 })).toThrow(/hostCount/);
  });
});
