// Turns one identity of an IDS lookup result (ids.md §7.2) into a PeerIdentity with imported keys, once per lookup:
// `client-data.public-message-identity-key` → pair keys; `public-message-ngm-device-prekey-data-key` plus the device
// key (identity-level `kt-loggable-data`, else client-data `ngm-public-identity`) → pair-ec keys.
// Every sender in the sources requires push-token, session-token and the pair key (imessage.md §1.4, §6), so an
// identity lacking one is unusable. Published keys that do not parse, or a prekey whose signature fails, make the
// whole identity unusable too: falling back to pair for a device whose NGM keys look forged would let whoever
// forged them pick the weaker scheme.
import { isDict, type PlistDict, type PlistValue } from '../codec/plist';
import { toHex } from '../codec/bytes';
import { parsePublicIdentity } from '../crypto/identity-legacy';
import { parseNgmPublicIdentity, type NgmPublicIdentity } from '../crypto/identity-ngm';
import { CeruleanError } from '../errors';
import { TOKEN_LENGTH } from './envelope';
import { silentEngineLog, type EngineLog, type PeerIdentity } from './ports';

export type PeerIdentityErrorCode =
  | 'missing-push-token'
  | 'missing-session-token'
  | 'missing-identity-key'
  | 'bad-identity-key'
  | 'bad-ngm-identity';

/** Why a lookup identity cannot be messaged. `cause` holds the decoder's or verifier's own typed error. */
export class PeerIdentityError extends CeruleanError {
  declare readonly code: PeerIdentityErrorCode;
  constructor(code: PeerIdentityErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

const KEY_PUSH_TOKEN = 'push-token';
const KEY_SESSION_TOKEN = 'session-token';
const KEY_CLIENT_DATA = 'client-data';
const KEY_KT_LOGGABLE = 'kt-loggable-data';
const CD_IDENTITY_KEY = 'public-message-identity-key';
const CD_PREKEY = 'public-message-ngm-device-prekey-data-key';
const CD_NGM_IDENTITY = 'ngm-public-identity';

function own(dict: PlistDict, key: string): PlistValue | undefined {
  return Object.prototype.hasOwnProperty.call(dict, key) ? dict[key] : undefined;
}

function dataField(dict: PlistDict, key: string): Uint8Array | undefined {
  const v = own(dict, key);
  return v instanceof Uint8Array && v.length > 0 ? v : undefined;
}

/**
 * One identity dict of a lookup reply for handle `uri`. PeerIdentityError when it cannot be messaged; the keys
 * are imported and the prekey signature checked here, so senders and receivers never re-parse them.
 */
export async function parsePeerIdentity(uri: string, identity: PlistDict): Promise<PeerIdentity> {
  const pushToken = dataField(identity, KEY_PUSH_TOKEN);
  if (!pushToken || pushToken.length !== TOKEN_LENGTH) {
    throw new PeerIdentityError('missing-push-token', 'identity has no 32-byte push-token');
  }
  const sessionToken = dataField(identity, KEY_SESSION_TOKEN);
  if (!sessionToken) throw new PeerIdentityError('missing-session-token', 'identity has no session-token');
  const cd = own(identity, KEY_CLIENT_DATA);
  const clientData: PlistDict = isDict(cd) ? cd : {};
  const identityKey = dataField(clientData, CD_IDENTITY_KEY);
  if (!identityKey) throw new PeerIdentityError('missing-identity-key', `client-data has no ${CD_IDENTITY_KEY}`);

  const prekey = dataField(clientData, CD_PREKEY);
  const [legacy, ngm] = await Promise.allSettled([
    parsePublicIdentity(identityKey),
    prekey
      ? parseNgmPublicIdentity({
          publicDevicePrekey: prekey,
          ktLoggableData: dataField(identity, KEY_KT_LOGGABLE),
          ngmPublicIdentity: dataField(clientData, CD_NGM_IDENTITY),
        })
      : Promise.resolve<NgmPublicIdentity | undefined>(undefined),
  ]);
  if (legacy.status === 'rejected') {
    throw new PeerIdentityError('bad-identity-key', `${CD_IDENTITY_KEY} is unusable`, { cause: legacy.reason });
  }
  if (ngm.status === 'rejected') {
    throw new PeerIdentityError('bad-ngm-identity', 'NGM prekey or device key is unusable', { cause: ngm.reason });
  }
  return { uri, pushToken, sessionToken, legacy: legacy.value, ngm: ngm.value, clientData };
}

/** Parses every identity of one handle, logging and leaving out the ones that cannot be messaged. */
export async function parsePeerIdentities(
  uri: string,
  identities: readonly PlistValue[],
  log: EngineLog = silentEngineLog,
): Promise<PeerIdentity[]> {
  const parsed = await Promise.allSettled(
    identities.map((identity) =>
      isDict(identity)
        ? parsePeerIdentity(uri, identity)
        : Promise.reject(new PeerIdentityError('missing-push-token', 'identity is not a dictionary')),
    ),
  );
  const out: PeerIdentity[] = [];
  parsed.forEach((result, index) => {
    if (result.status === 'fulfilled') {
      out.push(result.value);
      return;
    }
    const error: unknown = result.reason;
    // Anything but a typed error is a bug, not bad input: let it surface.
    if (!(error instanceof CeruleanError)) throw error;
    const token = isDict(identities[index]) ? dataField(identities[index], KEY_PUSH_TOKEN) : undefined;
    log.warn('imessage.identity-skipped', {
      uri,
      token: token && toHex(token.subarray(0, 8)),
      code: error.code,
      cause: error.cause instanceof CeruleanError ? error.cause.code : undefined,
    });
  });
  return out;
}
