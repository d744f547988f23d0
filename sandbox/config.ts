// The sandbox config file (`--config sandbox.json`): test identities to ensure on every start.
//
//   { "accounts":   [{ "appleId": "alice@example.com", "password": "pw", "twoFactor": true, "handles": ["tel:+15555550100"] }],
//     "phones":     [{ "number": "+15555550100", "mccMnc": "310260" }],
//     "relayCodes": [{ "code": "ABCD-EFGH-IJKL-MNOP", "name": "Alice's Mac" }] }
//
// Applying is idempotent: existing accounts are brought in line (password, 2FA, extra handles), nothing is deleted.
import { readFile } from 'node:fs/promises';
import { CeruleanError } from '../lib/errors';
import type { Accounts, NewAccount, NewPhone } from './accounts';
import type { RegistrationRelay, RelayVersions } from './relay';

export class ConfigError extends CeruleanError {}

export interface SandboxConfig {
  accounts?: NewAccount[];
  phones?: NewPhone[];
  relayCodes?: Array<{ code?: string; name?: string; versions?: Partial<RelayVersions> }>;
}

export async function readConfigFile(file: string): Promise<SandboxConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ConfigError('config-unreadable', `cannot read ${file}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ConfigError('config-not-json', `${file} is not JSON`);
  }
  return parseConfig(json, file);
}

/** Checks the shape; field values are checked again by Accounts and RegistrationRelay when applied. */
export function parseConfig(json: unknown, where = 'config'): SandboxConfig {
  if (!isObject(json)) throw new ConfigError('config-shape', `${where}: top level must be an object`);
  const list = (key: string): Record<string, unknown>[] => {
    const v = json[key];
    if (v === undefined) return [];
    if (!Array.isArray(v) || !v.every(isObject)) throw new ConfigError('config-shape', `${where}: "${key}" must be an array of objects`);
    return v;
  };
  const str = (o: Record<string, unknown>, key: string, ctx: string): string | undefined => {
    const v = o[key];
    if (v !== undefined && typeof v !== 'string') throw new ConfigError('config-shape', `${where}: ${ctx}.${key} must be a string`);
    return v as string | undefined;
  };
  return {
    accounts: list('accounts').map((a, i) => {
      const ctx = `accounts[${i}]`;
      const appleId = str(a, 'appleId', ctx);
      const password = str(a, 'password', ctx);
      if (!appleId || !password) throw new ConfigError('config-shape', `${where}: ${ctx} needs appleId and password`);
      if (a.twoFactor !== undefined && typeof a.twoFactor !== 'boolean') {
        throw new ConfigError('config-shape', `${where}: ${ctx}.twoFactor must be a boolean`);
      }
      const handles = a.handles;
      if (handles !== undefined && !(Array.isArray(handles) && handles.every((h) => typeof h === 'string'))) {
        throw new ConfigError('config-shape', `${where}: ${ctx}.handles must be an array of strings`);
      }
      return { appleId, password, twoFactor: a.twoFactor as boolean | undefined, handles: handles as string[] | undefined };
    }),
    phones: list('phones').map((p, i) => {
      const number = str(p, 'number', `phones[${i}]`);
      if (!number) throw new ConfigError('config-shape', `${where}: phones[${i}] needs a number`);
      return { number, mccMnc: str(p, 'mccMnc', `phones[${i}]`) };
    }),
    relayCodes: list('relayCodes').map((r, i) => ({
      code: str(r, 'code', `relayCodes[${i}]`),
      name: str(r, 'name', `relayCodes[${i}]`),
      versions: isObject(r.versions) ? (r.versions as Partial<RelayVersions>) : undefined,
    })),
  };
}

export async function applyConfig(config: SandboxConfig, deps: { accounts: Accounts; relay: RegistrationRelay }): Promise<void> {
  for (const phone of config.phones ?? []) await deps.accounts.addPhone(phone);
  for (const account of config.accounts ?? []) await deps.accounts.upsertAccount(account);
  for (const code of config.relayCodes ?? []) await deps.relay.createCode(code);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
