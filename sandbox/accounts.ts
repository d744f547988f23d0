// Test identities: Apple ID accounts (password, optional two-factor codes the admin page shows, profile-id, handles,
// linked phones) and phone subscribers (number, MCC-MNC, the SMS inbox a real handset would have). Created from the
// config file, the CLI or the admin page; the IDS endpoints read them through this class.
import { randomBytes, randomInt, scrypt, timingSafeEqual } from 'node:crypto';
import { CeruleanError } from '../lib/errors';
import type { Clock, Log } from './context';
import type { Store } from './store';

/** Bad input to an account operation; `code` says what ('bad-apple-id', 'exists', 'unknown-phone', …). */
export class AccountError extends CeruleanError {}

export type AccountRecord = {
  appleId: string;
  /** scrypt(password, salt), hex. */
  passwordHash: string;
  salt: string;
  twoFactor: boolean;
  /** Becomes `realm-user-id` / `user-id` in IDS (ids.md §2.1). */
  profileId: string;
  /** `mailto:` and `tel:` URIs the account may register. */
  handles: string[];
  /** E.164 numbers linked to the account (a combined phone + Apple ID registration links them). */
  phones: string[];
  createdAt: number;
};

/** An account without its password material. */
export type AccountView = Omit<AccountRecord, 'passwordHash' | 'salt'>;

export type PhoneRecord = {
  /** E.164 with '+'. */
  number: string;
  mccMnc: string;
  createdAt: number;
};

export type SmsMessage = {
  id: number;
  /** `sent` = from the handset, `received` = to it. */
  direction: 'sent' | 'received';
  /** The other end: the gateway short code, or another number. */
  peer: string;
  text: string;
  at: number;
};

export type TwoFactorCode = {
  code: string;
  issuedAt: number;
  expiresAt: number;
  used: boolean;
};

export type SignInResult =
  | { status: 'ok'; account: AccountView }
  /** Password right, second factor missing: a fresh code is now on the admin page (ids.md status 5000). */
  | { status: 'second-factor-required'; account: AccountView }
  /** Unknown account, wrong password or wrong code (ids.md status 5012). */
  | { status: 'bad-credentials' };

export interface NewAccount {
  appleId: string;
  password: string;
  twoFactor?: boolean;
  /** Extra handles; `mailto:<appleId>` is always included. */
  handles?: string[];
}

export interface NewPhone {
  number: string;
  mccMnc?: string;
}

const ACCOUNTS = 'accounts';
const PHONES = 'phones';
const SMS = 'sms';
const TWO_FACTOR = 'two-factor';
const TWO_FACTOR_TTL_MS = 10 * 60_000;
const INBOX_LIMIT = 200;
/** A SIM's MCC-MNC when none is given (310260, ids.md §2.4's example). */
export const DEFAULT_MCC_MNC = '310260';

type Inbox = { nextId: number; messages: SmsMessage[] };

export class Accounts {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly log: Log,
  ) {}

  async createAccount(input: NewAccount): Promise<AccountView> {
    const appleId = normalizeAppleId(input.appleId);
    if (this.store.has(ACCOUNTS, appleId)) throw new AccountError('exists', `account ${appleId} already exists`);
    return this.upsertAccount(input);
  }

  /** Creates the account, or brings an existing one in line with `input` (password, 2FA, extra handles). */
  async upsertAccount(input: NewAccount): Promise<AccountView> {
    const appleId = normalizeAppleId(input.appleId);
    checkPassword(input.password);
    const handles = [`mailto:${appleId}`, ...(input.handles ?? []).map(normalizeHandle)];
    const existing = this.record(appleId);
    const samePassword = existing !== undefined && (await passwordMatches(existing, input.password));
    const salt = samePassword ? existing.salt : randomBytes(16).toString('hex');
    const record: AccountRecord = {
      appleId,
      passwordHash: samePassword ? existing.passwordHash : await hashPassword(input.password, salt),
      salt,
      twoFactor: input.twoFactor ?? false,
      profileId: existing?.profileId ?? `D:${randomInt(1_000_000_000, 10_000_000_000)}`,
      handles: [...new Set([...(existing?.handles ?? []), ...handles])],
      phones: [...(existing?.phones ?? [])],
      createdAt: existing?.createdAt ?? this.clock.now(),
    };
    if (existing && JSON.stringify(existing) === JSON.stringify(record)) return view(record);
    await this.store.put(ACCOUNTS, appleId, record);
    this.log.info(existing ? 'account.updated' : 'account.created', { appleId, twoFactor: record.twoFactor });
    return view(record);
  }

  getAccount(appleId: string): AccountView | undefined {
    const r = this.record(appleId.trim().toLowerCase());
    return r && view(r);
  }

  findByProfileId(profileId: string): AccountView | undefined {
    const r = this.store.entries<AccountRecord>(ACCOUNTS).find(([, a]) => a.profileId === profileId)?.[1];
    return r && view(r);
  }

  listAccounts(): AccountView[] {
    return this.store.entries<AccountRecord>(ACCOUNTS).map(([, a]) => view(a));
  }

  /**
   * The legacy sign-in rule (ids.md §2.1): with 2FA on, the password alone issues a code and asks for it; the
   * password with the 6-digit code appended signs in (once per code).
   */
  async signIn(appleId: string, password: string): Promise<SignInResult> {
    const record = this.record(String(appleId).trim().toLowerCase());
    if (!record || typeof password !== 'string' || password.length > 256) return { status: 'bad-credentials' };
    const plain = await passwordMatches(record, password);
    if (!record.twoFactor) return plain ? { status: 'ok', account: view(record) } : { status: 'bad-credentials' };
    if (plain) {
      await this.issueTwoFactorCode(record.appleId);
      return { status: 'second-factor-required', account: view(record) };
    }
    const code = password.slice(-6);
    if (!/^\d{6}$/.test(code) || !(await passwordMatches(record, password.slice(0, -6)))) return { status: 'bad-credentials' };
    const current = this.store.get<TwoFactorCode>(TWO_FACTOR, record.appleId);
    if (!current || current.used || current.expiresAt < this.clock.now() || !sameText(current.code, code)) {
      return { status: 'bad-credentials' };
    }
    await this.store.put(TWO_FACTOR, record.appleId, { ...current, used: true });
    return { status: 'ok', account: view(record) };
  }

  /** The code a trusted device would show for this account, as the admin page displays it. */
  latestTwoFactorCode(appleId: string): TwoFactorCode | undefined {
    return this.store.get<TwoFactorCode>(TWO_FACTOR, appleId.trim().toLowerCase());
  }

  async addHandle(appleId: string, uri: string): Promise<AccountView> {
    const record = this.requireRecord(appleId);
    const handle = normalizeHandle(uri);
    if (record.handles.includes(handle)) return view(record);
    const next = { ...record, handles: [...record.handles, handle] };
    await this.store.put(ACCOUNTS, record.appleId, next);
    return view(next);
  }

  /** Links a phone to an account: Apple adds its `tel:` handle to the Apple ID (ids.md §9 item 8). */
  async linkPhone(appleId: string, number: string): Promise<AccountView> {
    const record = this.requireRecord(appleId);
    const n = normalizeNumber(number);
    const handle = `tel:${n}`;
    const next = {
      ...record,
      phones: record.phones.includes(n) ? record.phones : [...record.phones, n],
      handles: record.handles.includes(handle) ? record.handles : [...record.handles, handle],
    };
    await this.store.put(ACCOUNTS, record.appleId, next);
    return view(next);
  }

  /** Creates the subscriber, or updates its MCC-MNC. */
  async addPhone(input: NewPhone): Promise<PhoneRecord> {
    const number = normalizeNumber(input.number);
    const mccMnc = input.mccMnc ?? this.getPhone(number)?.mccMnc ?? DEFAULT_MCC_MNC;
    if (!/^\d{5,6}$/.test(mccMnc)) throw new AccountError('bad-mcc-mnc', 'MCC-MNC must be 5 or 6 digits');
    const record: PhoneRecord = { number, mccMnc, createdAt: this.getPhone(number)?.createdAt ?? this.clock.now() };
    await this.store.put(PHONES, number, record);
    this.log.info('phone.saved', { number });
    return record;
  }

  getPhone(number: string): PhoneRecord | undefined {
    let n: string;
    try {
      n = normalizeNumber(number);
    } catch {
      return undefined;
    }
    return this.store.get<PhoneRecord>(PHONES, n);
  }

  listPhones(): PhoneRecord[] {
    return this.store.entries<PhoneRecord>(PHONES).map(([, p]) => p);
  }

  smsInbox(number: string): SmsMessage[] {
    const phone = this.getPhone(number);
    return phone ? [...(this.store.get<Inbox>(SMS, phone.number)?.messages ?? [])] : [];
  }

  /** Appends to a subscriber's SMS log (the newest INBOX_LIMIT messages are kept). */
  async recordSms(number: string, direction: SmsMessage['direction'], peer: string, text: string): Promise<SmsMessage> {
    const phone = this.getPhone(number);
    if (!phone) throw new AccountError('unknown-phone', `no subscriber ${number}`);
    const inbox = this.store.get<Inbox>(SMS, phone.number) ?? { nextId: 1, messages: [] };
    const message: SmsMessage = { id: inbox.nextId, direction, peer, text: text.slice(0, 1600), at: this.clock.now() };
    await this.store.put(SMS, phone.number, { nextId: inbox.nextId + 1, messages: [...inbox.messages, message].slice(-INBOX_LIMIT) });
    return message;
  }

  private async issueTwoFactorCode(appleId: string): Promise<void> {
    const now = this.clock.now();
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    await this.store.put(TWO_FACTOR, appleId, { code, issuedAt: now, expiresAt: now + TWO_FACTOR_TTL_MS, used: false });
    this.log.info('account.two-factor-code-issued', { appleId });
  }

  private record(appleId: string): AccountRecord | undefined {
    return this.store.get<AccountRecord>(ACCOUNTS, appleId) as AccountRecord | undefined;
  }

  private requireRecord(appleId: string): AccountRecord {
    const r = this.record(appleId.trim().toLowerCase());
    if (!r) throw new AccountError('unknown-account', `no account ${appleId}`);
    return r;
  }
}

export function normalizeAppleId(input: unknown): string {
  const id = typeof input === 'string' ? input.trim().toLowerCase() : '';
  if (id.length > 254 || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(id)) throw new AccountError('bad-apple-id', 'Apple ID must be an email address');
  return id;
}

/** E.164 with '+'; spaces, dashes, dots and parentheses are dropped. */
export function normalizeNumber(input: unknown): string {
  const n = typeof input === 'string' ? input.replace(/[\s\-().]/g, '') : '';
  if (!/^\+[1-9]\d{6,14}$/.test(n)) throw new AccountError('bad-number', 'phone number must be E.164, like +15555550100');
  return n;
}

export function normalizeHandle(input: unknown): string {
  const h = typeof input === 'string' ? input.trim() : '';
  if (h.toLowerCase().startsWith('mailto:')) return `mailto:${normalizeAppleId(h.slice(7))}`;
  if (h.startsWith('tel:')) return `tel:${normalizeNumber(h.slice(4))}`;
  throw new AccountError('bad-handle', 'a handle is mailto:<address> or tel:+<E.164>');
}

function checkPassword(password: unknown): void {
  if (typeof password !== 'string' || password.length === 0 || password.length > 128) {
    throw new AccountError('bad-password', 'password must be 1–128 characters');
  }
}

function view(r: AccountRecord): AccountView {
  return { appleId: r.appleId, twoFactor: r.twoFactor, profileId: r.profileId, handles: [...r.handles], phones: [...r.phones], createdAt: r.createdAt };
}

function hashPassword(password: string, saltHex: string): Promise<string> {
  return new Promise((resolve, reject) =>
    scrypt(password, Buffer.from(saltHex, 'hex'), 32, { N: 16384, r: 8, p: 1 }, (err, key) => (err ? reject(err) : resolve(key.toString('hex')))),
  );
}

async function passwordMatches(r: AccountRecord, password: string): Promise<boolean> {
  if (password.length === 0) return false;
  return sameText(await hashPassword(password, r.salt), r.passwordHash);
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
