// The sandbox CLI. `start` (the default) runs everything and prints the host map and the CA path; the other commands
// create test identities, directly in the data dir when the sandbox is stopped, or through its admin API while it
// runs (the store is locked by the running process).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Accounts } from './accounts';
import { readConfigFile } from './config';
import { jsonLog, silentLog, systemClock } from './context';
import { HOST_MAP_FILE } from './hosts';
import { SandboxPki } from './pki';
import { RegistrationRelay } from './relay';
import { startSandbox, DEFAULT_PORT_BASE } from './sandbox';
import { protocolServices } from './services';
import { SmsGateway } from './sms-gateway';
import { Store, StoreError } from './store';

const USAGE = `Cerulean sandbox: a local stand-in for Apple's push, albert, IDS and relay services.

  tsx sandbox/main.ts [start] [--data-dir DIR] [--host ADDR] [--port-base N] [--https-port N] [--http-port N]
                      [--admin-port N] [--courier-port N] [--courier-hosts N] [--config FILE] [--verify-fairplay]
  tsx sandbox/main.ts account add --apple-id ID --password PW [--two-factor] [--handle URI]...
  tsx sandbox/main.ts account list
  tsx sandbox/main.ts phone add --number +1555… [--mcc-mnc 310260]
  tsx sandbox/main.ts relay-code add [--name NAME]
  tsx sandbox/main.ts sms send --from +1555… --text 'REG-REQ?v=3;t=…;r=…;'

Defaults: --data-dir .sandbox-data, --host 127.0.0.1, --port-base ${DEFAULT_PORT_BASE} (https, http, admin, courier
= base, base+1, base+2, base+3; 0 = ephemeral ports).`;

const { values, positionals } = (() => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        'data-dir': { type: 'string', default: '.sandbox-data' },
        host: { type: 'string' },
        'port-base': { type: 'string' },
        'https-port': { type: 'string' },
        'http-port': { type: 'string' },
        'admin-port': { type: 'string' },
        'courier-port': { type: 'string' },
        'courier-hosts': { type: 'string' },
        config: { type: 'string' },
        'verify-fairplay': { type: 'boolean' },
        'apple-id': { type: 'string' },
        password: { type: 'string' },
        'two-factor': { type: 'boolean' },
        handle: { type: 'string', multiple: true },
        number: { type: 'string' },
        'mcc-mnc': { type: 'string' },
        name: { type: 'string' },
        from: { type: 'string' },
        text: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    fail((e as Error).message);
  }
})();

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}\n`);
  process.exit(2);
}

function int(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) fail(`--${name} must be a port number`);
  return n;
}

const dataDir = path.resolve(values['data-dir']!);

async function start(): Promise<void> {
  const stderrLog = (c: string) => jsonLog(`sandbox.${c}`, (line) => process.stderr.write(line + '\n'));
  const courierPort = int('courier-port', values['courier-port']);
  const courierHosts = values['courier-hosts'] === undefined ? undefined : Number(values['courier-hosts']);
  if (courierHosts !== undefined && !(Number.isInteger(courierHosts) && courierHosts >= 1 && courierHosts <= 100)) {
    fail('--courier-hosts must be 1–100');
  }
  const sandbox = await startSandbox({
    dataDir,
    host: values.host,
    portBase: int('port-base', values['port-base']),
    ports: {
      https: int('https-port', values['https-port']),
      http: int('http-port', values['http-port']),
      admin: int('admin-port', values['admin-port']),
      ...(courierPort === undefined ? {} : { tls: { courier: courierPort } }),
    },
    courierHostCount: courierHosts,
    config: values.config ? await readConfigFile(values.config) : undefined,
    albert: { verifyFairPlay: values['verify-fairplay'] ?? false },
    logger: stderrLog,
    services: protocolServices().services,
  });
  process.stdout.write(
    [
      'Cerulean sandbox is running.',
      `  data dir: ${sandbox.dataDir}`,
      `  root CA:  ${sandbox.caFile}`,
      `  host map: ${sandbox.hostMapFile}`,
      sandbox.adminUrl ? `  admin:    ${sandbox.adminUrl}` : '',
      '',
      JSON.stringify(sandbox.hostMap.hosts, null, 2),
      '',
      '(Ctrl-C to stop)',
      '',
    ].join('\n'),
  );
  let stopping = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (stopping) process.exit(1);
      stopping = true;
      sandbox.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
}

/** Runs `offline` on the data dir, or `online` against the admin API if a running sandbox holds the store. */
async function withSandboxState(
  offline: (deps: { accounts: Accounts; relay: () => Promise<RegistrationRelay>; gateway: () => Promise<SmsGateway> }) => Promise<unknown>,
  online: (admin: string) => Promise<unknown>,
): Promise<void> {
  let store: Store;
  try {
    store = await Store.open(path.join(dataDir, 'store'));
  } catch (e) {
    if (!(e instanceof StoreError && e.code === 'store-locked')) throw e;
    const map = JSON.parse(await readFile(path.join(dataDir, HOST_MAP_FILE), 'utf8')) as { admin?: string };
    if (!map.admin) throw new Error('the sandbox is running without its admin page; stop it first');
    print(await online(map.admin));
    return;
  }
  try {
    const accounts = new Accounts(store, systemClock, silentLog);
    const pki = () => SandboxPki.load(dataDir, systemClock);
    print(
      await offline({
        accounts,
        relay: async () => new RegistrationRelay(store, await pki(), systemClock, silentLog),
        gateway: async () => new SmsGateway(accounts, await pki(), silentLog),
      }),
    );
  } finally {
    await store.close();
  }
}

async function adminCall(admin: string, apiPath: string, body?: unknown): Promise<unknown> {
  const res = await fetch(new URL(apiPath, admin), {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as unknown;
  if (!res.ok) throw new Error((json as { error?: string }).error ?? `admin API answered ${res.status}`);
  return json;
}

function print(v: unknown): void {
  process.stdout.write(JSON.stringify(v, null, 2) + '\n');
}

function need(name: string, v: string | undefined): string {
  if (!v) fail(`--${name} is required`);
  return v;
}

async function main(): Promise<void> {
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const [cmd = 'start', sub] = positionals;
  const command = sub ? `${cmd} ${sub}` : cmd;
  switch (command) {
    case 'start':
      return start();
    case 'account add': {
      const input = {
        appleId: need('apple-id', values['apple-id']),
        password: need('password', values.password),
        twoFactor: values['two-factor'] ?? false,
        handles: values.handle,
      };
      return withSandboxState(
        ({ accounts }) => accounts.createAccount(input),
        (admin) => adminCall(admin, 'api/accounts', input),
      );
    }
    case 'account list':
      return withSandboxState(
        async ({ accounts }) => accounts.listAccounts().map((a) => ({ ...a, twoFactorCode: accounts.latestTwoFactorCode(a.appleId) ?? null })),
        (admin) => adminCall(admin, 'api/accounts'),
      );
    case 'phone add': {
      const input = { number: need('number', values.number), mccMnc: values['mcc-mnc'] };
      return withSandboxState(
        ({ accounts }) => accounts.addPhone(input),
        (admin) => adminCall(admin, 'api/phones', input),
      );
    }
    case 'relay-code add':
      return withSandboxState(
        async ({ relay }) => (await relay()).createCode({ name: values.name }),
        (admin) => adminCall(admin, 'api/relay-codes', { name: values.name }),
      );
    case 'sms send': {
      const input = { from: need('from', values.from), text: need('text', values.text) };
      return withSandboxState(
        async ({ gateway }) => (await gateway()).receive(input.from, input.text),
        (admin) => adminCall(admin, 'api/sms', input),
      );
    }
    default:
      fail(`unknown command: ${command}`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`error: ${(e as Error)?.message ?? String(e)}\n`);
  process.exit(1);
});
