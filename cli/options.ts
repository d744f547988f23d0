// Command-line options of the headless client, checked and turned into a CeruleanClient configuration. The client
// goes through a bridge exactly like the browser: --bridge names it, and the TLS trust anchors decide the mode
// (--ca: the sandbox's root, as host-map.json's caFile names it; --apple-roots: Apple's roots, i.e. the real service).
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { CeruleanClientConfig } from '../lib/client/config';

export class UsageError extends Error {}

export const USAGE = `Usage: tsx cli/main.ts <command> [options]

Commands:
  register --apple-id <id> [--password <pw>] [--code <2fa>]   sign in with an Apple ID (asks for the 2FA code)
  register --phone [--mcc-mnc <digits>] [--reg-resp <text>]    register a phone number by SMS (shows the REG-REQ and,
                                                                with the SIM's MCC+MNC, its carrier's gateway)
  send <handle...> <text>                                       send a message (handles: +15551234567, a@b.example)
  listen                                                        print incoming events as JSON lines until Ctrl-C
  devices [--refresh]                                           list the devices of this account

Options:
  --bridge <url>          the bridge (ws:// or wss://)                     [env CERULEAN_BRIDGE]
  --bridge-token <token>  the bridge's access token, if it has one         [env CERULEAN_BRIDGE_TOKEN]
  --ca <file>             sandbox mode: the sandbox CA (host-map.json caFile)
  --apple-roots <file>    Apple mode: PEM file with Apple's root certificates
  --relay-url <url>       registration relay (default: the mode's relay)
  --relay-code <code>     the relay provider's registration code (needed to register)
  --data-dir <dir>        where this device's store lives (default .cerulean)
  --device-name <name>    how this device is shown on the account (default "Cerulean CLI")

The store's keys are encrypted with the passphrase in CERULEAN_PASSPHRASE. The Apple ID password may come from
CERULEAN_PASSWORD instead of --password.`;

export interface CliOptions {
  command: 'register' | 'send' | 'listen' | 'devices';
  positionals: string[];
  dataDir: string;
  passphrase: string;
  appleId?: string;
  password?: string;
  code?: string;
  phone: boolean;
  regResp?: string;
  /** The SIM's MCC+MNC (e.g. 310260): the SMS gateway is then looked up in Apple's carrier list. */
  mccMnc?: string;
  refresh: boolean;
  client: Omit<CeruleanClientConfig, 'store' | 'WebSocketImpl'>;
}

const COMMANDS = ['register', 'send', 'listen', 'devices'] as const;

export async function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Promise<CliOptions> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        bridge: { type: 'string' },
        'bridge-token': { type: 'string' },
        ca: { type: 'string' },
        'apple-roots': { type: 'string' },
        'relay-url': { type: 'string' },
        'relay-code': { type: 'string' },
        'data-dir': { type: 'string' },
        'device-name': { type: 'string' },
        'apple-id': { type: 'string' },
        password: { type: 'string' },
        code: { type: 'string' },
        phone: { type: 'boolean' },
        'reg-resp': { type: 'string' },
        'mcc-mnc': { type: 'string' },
        refresh: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values: v, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (v.help || command === undefined) throw new UsageError('');
  if (!(COMMANDS as readonly string[]).includes(command)) throw new UsageError(`unknown command "${command}"`);

  const bridgeUrl = v.bridge ?? env.CERULEAN_BRIDGE;
  if (!bridgeUrl) throw new UsageError('--bridge is required');
  if ((v.ca === undefined) === (v['apple-roots'] === undefined)) throw new UsageError('give exactly one of --ca (sandbox) and --apple-roots (Apple)');
  const passphrase = env.CERULEAN_PASSPHRASE;
  if (!passphrase) throw new UsageError('set CERULEAN_PASSPHRASE: it encrypts the keys in the data directory');
  if (command === 'register' && (v['apple-id'] === undefined) === !v.phone) throw new UsageError('register needs --apple-id or --phone');
  const mccMnc = v['mcc-mnc'];
  if (mccMnc !== undefined && !(command === 'register' && v.phone)) throw new UsageError('--mcc-mnc goes with register --phone');
  if (mccMnc !== undefined && !/^\d{5,6}$/.test(mccMnc)) throw new UsageError('--mcc-mnc takes the 5 or 6 digits of MCC+MNC, e.g. 310260');
  if (command === 'send' && rest.length < 2) throw new UsageError('send needs at least one handle and the text');

  const mode = v.ca !== undefined ? 'sandbox' : 'apple';
  const trustedRoots = pemBlocks(await readFile((v.ca ?? v['apple-roots'])!, 'utf8'));
  if (trustedRoots.length === 0) throw new UsageError('the certificate file holds no PEM certificate');
  const bridgeToken = v['bridge-token'] ?? env.CERULEAN_BRIDGE_TOKEN;
  const relayCode = v['relay-code'];
  return {
    command: command as CliOptions['command'],
    positionals: rest,
    dataDir: v['data-dir'] ?? '.cerulean',
    passphrase,
    ...(v['apple-id'] !== undefined ? { appleId: v['apple-id'] } : {}),
    ...((v.password ?? env.CERULEAN_PASSWORD) !== undefined ? { password: v.password ?? env.CERULEAN_PASSWORD } : {}),
    ...(v.code !== undefined ? { code: v.code } : {}),
    phone: v.phone ?? false,
    ...(v['reg-resp'] !== undefined ? { regResp: v['reg-resp'] } : {}),
    ...(mccMnc !== undefined ? { mccMnc } : {}),
    refresh: v.refresh ?? false,
    client: {
      bridgeUrl,
      ...(bridgeToken !== undefined ? { bridgeToken } : {}),
      trustedRoots,
      mode,
      ...(relayCode !== undefined ? { relay: { code: relayCode, ...(v['relay-url'] !== undefined ? { url: v['relay-url'] } : {}) } } : {}),
      deviceInfo: { deviceName: v['device-name'] ?? 'Cerulean CLI' },
    },
  };
}

/** Each certificate of a PEM bundle on its own. */
export function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}
