// Push tokens (apns.md §4.4) and scoped tokens (§3.6 0x11/0x12, §5). A base token is 32 random bytes bound to the
// public key of the push certificate that first asked for it: one token per key, so a device that lost its token
// but kept its certificate gets the same one back, and a token offered with a different key is never accepted.
// A scoped token is 32 random bytes bound to (base token, topic hash), minted once per pair.
import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import { toHex } from '../../lib/codec/bytes';
import type { CourierStore } from './deps';

const TOKENS = 'courier.tokens';
const KEYS = 'courier.keys';
const SCOPED = 'courier.scoped';
const SCOPED_BY_PAIR = 'courier.scopedByPair';

interface BaseTokenRecord {
  key: string;
  createdMs: number;
}

interface ScopedTokenRecord {
  base: string;
  topicHash: string;
  createdMs: number;
}

/** Where a token (hex) leads: its base token, and for a scoped token the one topic it is valid for. */
export interface ResolvedToken {
  base: string;
  scopedTopic?: string;
}

/** SHA-256 of the SubjectPublicKeyInfo: the identity a base token is bound to. */
export function keyFingerprint(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
}

function freshToken(): Uint8Array {
  return new Uint8Array(randomBytes(32));
}

export class TokenRegistry {
  // Two connects with a new key at once must not mint two tokens for it.
  private readonly minting = new Map<string, Promise<string>>();

  constructor(
    private readonly store: CourierStore,
    private readonly now: () => number,
  ) {}

  /**
   * The token a Connect ends up with: the offered one when it is bound to this key (`issued` false), else the
   * key's own token, minted and persisted on first use (`issued` true: the client must adopt it).
   */
  async forConnect(offered: Uint8Array | undefined, keyId: string): Promise<{ token: string; issued: boolean }> {
    if (offered) {
      const hex = toHex(offered);
      if (this.store.get<BaseTokenRecord>(TOKENS, hex)?.key === keyId) return { token: hex, issued: false };
    }
    return { token: await this.tokenForKey(keyId), issued: true };
  }

  private tokenForKey(keyId: string): Promise<string> {
    const known = this.store.get<string>(KEYS, keyId);
    if (known !== undefined) return Promise.resolve(known);
    let pending = this.minting.get(keyId);
    if (!pending) {
      pending = this.mint(keyId).finally(() => this.minting.delete(keyId));
      this.minting.set(keyId, pending);
    }
    return pending;
  }

  private async mint(keyId: string): Promise<string> {
    let hex: string;
    do hex = toHex(freshToken());
    while (this.store.get(TOKENS, hex) !== undefined);
    // Token first: a crash between the two writes leaves an unreachable token, never a key pointing nowhere.
    await this.store.put(TOKENS, hex, { key: keyId, createdMs: this.now() } satisfies BaseTokenRecord);
    await this.store.put(KEYS, keyId, hex);
    return hex;
  }

  /** The scoped token for (base token, topic hash), minted and persisted on first request. */
  async scoped(base: string, topicHash: string): Promise<string> {
    const pair = `${base}.${topicHash}`;
    const known = this.store.get<string>(SCOPED_BY_PAIR, pair);
    if (known !== undefined) return known;
    let hex: string;
    do hex = toHex(freshToken());
    while (this.store.get(SCOPED, hex) !== undefined || this.store.get(TOKENS, hex) !== undefined);
    await this.store.put(SCOPED, hex, { base, topicHash, createdMs: this.now() } satisfies ScopedTokenRecord);
    await this.store.put(SCOPED_BY_PAIR, pair, hex);
    return hex;
  }

  /** Whether `token` is the base token minted for the key with fingerprint `keyId` (IDS x-push-token checks). */
  isBoundTo(token: Uint8Array, keyId: string): boolean {
    return this.store.get<BaseTokenRecord>(TOKENS, toHex(token))?.key === keyId;
  }

  /** A base or scoped token this courier issued, or undefined. */
  resolve(tokenHex: string): ResolvedToken | undefined {
    if (this.store.get<BaseTokenRecord>(TOKENS, tokenHex)) return { base: tokenHex };
    const scoped = this.store.get<ScopedTokenRecord>(SCOPED, tokenHex);
    return scoped ? { base: scoped.base, scopedTopic: scoped.topicHash } : undefined;
  }
}
