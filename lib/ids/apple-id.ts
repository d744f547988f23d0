// Apple ID sign-in, the legacy path of ids.md §2.1: POST vc-profile-authenticate {username, password}. With
// two-factor authentication on, the bare password answers 5000 and pushes a code to the trusted devices; the same
// request with the 6-digit code appended to the password (no separator) then signs in. 5012 = wrong name or password.
import { encodeXmlPlist, type PlistDict } from '../codec/plist';
import { EncodeError } from '../errors';
import { type IdsContext } from './context';
import { userAgent } from './device';
import { IdsStatus, statusError } from './errors';
import { requestPlist, requireString, statusOf } from './plist-http';

export type AppleIdSignIn =
  | { status: 'ok'; authToken: string; profileId: string }
  | { status: 'second-factor-required' }
  | { status: 'bad-credentials' };

export interface AppleIdCredentials {
  username: string;
  password: string;
  /** The 6-digit code a trusted device shows after a 'second-factor-required' answer. */
  code?: string;
}

const WHAT = 'Apple ID sign-in';

/** The request body: the code, if any, is appended to the password. */
export function authenticateUserBody(creds: AppleIdCredentials): Uint8Array {
  if (creds.username.length === 0 || creds.password.length === 0) {
    throw new EncodeError('bad-credentials', 'the Apple ID and password must not be empty');
  }
  if (creds.code !== undefined && !/^\d{6}$/.test(creds.code)) throw new EncodeError('bad-code', 'the code must be 6 digits');
  return encodeXmlPlist({ username: creds.username, password: creds.password + (creds.code ?? '') });
}

export function parseAuthenticateUserResponse(dict: PlistDict): AppleIdSignIn {
  const status = statusOf(dict, WHAT);
  if (status === IdsStatus.unauthenticated) return { status: 'second-factor-required' };
  if (status === IdsStatus.invalidNameOrPassword) return { status: 'bad-credentials' };
  if (status !== IdsStatus.ok) throw statusError(status, WHAT);
  return { status: 'ok', authToken: requireString(dict, 'auth-token', WHAT), profileId: requireString(dict, 'profile-id', WHAT) };
}

export async function signInAppleId(ctx: Pick<IdsContext, 'http' | 'bag' | 'device'>, creds: AppleIdCredentials): Promise<AppleIdSignIn> {
  const dict = await requestPlist(
    ctx.http,
    {
      url: ctx.bag.url('vc-profile-authenticate'),
      method: 'POST',
      headers: { 'user-agent': userAgent(ctx.device), 'content-type': 'application/x-apple-plist' },
      body: authenticateUserBody(creds),
    },
    WHAT,
  );
  return parseAuthenticateUserResponse(dict);
}
