// The watcher's VAPID key pair (RFC 8292): push services bind a subscription to the public key the PWA subscribed
// with, so the pair must outlive restarts. Made with web-push on first start and kept in a 0600 file.
import webPush from 'web-push';
import { WatcherConfigError } from './errors';
import { readOrCreatePrivateFile } from './private-file';

export interface VapidKeys {
  /** Uncompressed P-256 point, base64url: the PWA's applicationServerKey. */
  readonly publicKey: string;
  /** The 32-byte private scalar, base64url. */
  readonly privateKey: string;
}

export function loadOrCreateVapidKeys(file: string): VapidKeys {
  const raw = readOrCreatePrivateFile(file, () => `${JSON.stringify(webPush.generateVAPIDKeys(), null, 2)}\n`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch (cause) {
    throw new WatcherConfigError('bad-vapid-file', `${file} is not JSON`, { cause });
  }
  const { publicKey, privateKey } = (parsed ?? {}) as Partial<Record<keyof VapidKeys, unknown>>;
  const decoded = (v: unknown) => (typeof v === 'string' && /^[A-Za-z0-9_-]+$/.test(v) ? Buffer.from(v, 'base64url') : undefined);
  const pub = decoded(publicKey);
  const priv = decoded(privateKey);
  if (pub?.length !== 65 || pub[0] !== 0x04 || priv?.length !== 32) {
    throw new WatcherConfigError('bad-vapid-file', `${file} must hold { "publicKey": <65-byte point>, "privateKey": <32 bytes> } in base64url`);
  }
  return { publicKey: publicKey as string, privateKey: privateKey as string };
}
