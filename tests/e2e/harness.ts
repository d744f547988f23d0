// The stack the Playwright suites drive, in this one process: the sandbox (every Apple service and its admin API) in
// a temp dir, the real bridge with the sandbox's host map, the built PWA (out/) served by scripts/static-server.mjs
// with /sandbox-ca.pem, and Debian's chromium. Pages start with the app's settings pointing at this bridge; a
// headless CeruleanClient can join as another device. On request also a push watcher on the sandbox's courier and a
// local Web Push endpoint that verifies and decrypts what it sends (tests/integration/watcher-helpers.ts).
// Needs `npm run build` first (next build + the service worker).
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright';
import { WebSocket } from 'ws';
import { SETTINGS_KEY, type AppSettings } from '../../app/session/settings';
import { startBridge, type RunningBridge } from '../../bridge/server';
import { nodeKeyVault } from '../../cli/key-vault';
import { CeruleanClient } from '../../lib/client/client';
import type { ClientStore } from '../../lib/store/types';
import { openFileStore } from '../../lib/store-node/file-store';
import type { AccountView, PhoneRecord, SmsMessage, TwoFactorCode } from '../../sandbox/accounts';
import type { SandboxConfig } from '../../sandbox/config';
import type { Sandbox } from '../../sandbox/sandbox';
import { protocolServices, type ProtocolServices } from '../../sandbox/services';
import type { SmsResult } from '../../sandbox/sms-gateway';
import { startStaticServer, type RunningStaticServer } from '../../scripts/static-server.mjs';
import { FAST_TUNING } from '../integration/e2e-helpers';
import { startTestSandbox, tempDir } from '../integration/sandbox-helpers';
import type { PushEndpoint, TestWatcher } from '../integration/watcher-helpers';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const OUT_DIR = path.join(ROOT, 'out');
export const ARTIFACTS_DIR = path.join(ROOT, 'test-artifacts');

/** Debian's chromium, never a downloaded browser; the flags keep it off the (closed) network at start-up. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** The sandbox's admin JSON API (sandbox/admin.ts): what a person does with a phone and a trusted device. */
export interface SandboxAdmin {
  createAccount(appleId: string, password: string, options?: { twoFactor?: boolean; handles?: string[] }): Promise<AccountView>;
  /**
   * The account's current 2FA code, waiting (up to `timeoutMs`, default 15 s) until one exists that is unused,
   * unexpired and issued at or after `issuedAfter` (ms since the epoch; pass the time of the sign-in attempt).
   */
  twoFactorCode(appleId: string, options?: { issuedAfter?: number; timeoutMs?: number }): Promise<string>;
  /** A new registration-relay code (what the relay provider's app would show). */
  relayCode(name?: string): Promise<string>;
  addPhone(number: string, mccMnc?: string): Promise<PhoneRecord>;
  /** The handset `from` sends `text` (to the gateway by default); the gateway's REG-RESP comes back as `reply`. */
  sms(from: string, text: string, to?: string): Promise<SmsResult>;
  smsInbox(number: string): Promise<SmsMessage[]>;
}

/** A CeruleanClient in this process (a third device), on a file store, through the harness bridge. */
export interface HeadlessDevice {
  name: string;
  client: CeruleanClient;
  store: ClientStore;
  close(): Promise<void>;
}

/** The push watcher the pages are configured with, and the Web Push endpoint its pushes go to. */
export interface HarnessWatcher {
  url: string;
  test: TestWatcher;
  endpoint: PushEndpoint;
}

export interface E2eHarness {
  /** The PWA's origin, e.g. http://127.0.0.1:41234 (no trailing slash). */
  appUrl: string;
  /** The bridge's WebSocket base URL the pages are configured with. */
  bridgeUrl: string;
  /** The push watcher (HarnessOptions.watcher); throws when the harness runs without one. */
  watcher(): HarnessWatcher;
  /** The running sandbox and its protocol services (both replaced by restartSandbox). */
  sandbox(): Sandbox;
  services(): ProtocolServices;
  browser: Browser;
  admin: SandboxAdmin;
  /** Uncaught exceptions in any page the harness opened: a suite can assert there were none. */
  pageErrors: Array<{ url: string; message: string }>;
  /** A browser context (one person, own storage) whose pages start with the harness settings. */
  newContext(options?: ContextOptions): Promise<BrowserContext>;
  /**
   * A context with a profile on disk, in a browser of its own: Chromium treats the other contexts as incognito,
   * where it refuses to install apps (installability error 'in-incognito').
   */
  persistentContext(options?: ContextOptions): Promise<BrowserContext>;
  /** A page of `context` (a new context when omitted) opened at the app, `hash` being e.g. '#/settings'. */
  newPage(context?: BrowserContext, options?: { hash?: string; settings?: Partial<AppSettings> }): Promise<Page>;
  /**
   * Drives onboarding to the chat list with an Apple ID (plan test ids `onb-*`): picks the sandbox, fills the
   * Apple ID, password, a fresh relay code and, when asked, the 2FA code from the admin API, in whatever order the
   * screens ask for them. Throws with the `onb-error` text if the app shows one.
   */
  onboardAppleId(page: Page, account: { appleId: string; password: string }, options?: { timeoutMs?: number }): Promise<void>;
  /** Saves a full-page screenshot as test-artifacts/<name>.png and returns its path. */
  screenshot(page: Page, name: string): Promise<string>;
  /** A headless client (relay code, sandbox CA, fast timers) that registers through the same bridge. */
  headlessDevice(name: string): Promise<HeadlessDevice>;
  /** Stops the bridge (tunnels close); restartBridge brings it back on the same port. */
  stopBridge(): Promise<void>;
  restartBridge(): Promise<void>;
  /** Stops the sandbox; restartSandbox brings it back on the same ports with its data (accounts, registrations). */
  stopSandbox(): Promise<void>;
  restartSandbox(): Promise<void>;
  stop(): Promise<void>;
}

export type ContextOptions = BrowserContextOptions & { settings?: Partial<AppSettings> };

export interface HarnessOptions {
  /** Accounts, phones and relay codes the sandbox starts with. */
  config?: SandboxConfig;
  /** Extra bridge settings (e.g. a token). */
  bridge?: { token?: string };
  /** Run chromium with a window (HEADED=1 in the environment does the same). */
  headed?: boolean;
  /** Start a push watcher and a local Web Push endpoint; pages get the watcher as their `watcherUrl`. */
  watcher?: boolean;
}

/** Where pages look for a watcher when the harness runs none: a port nothing listens on. */
const NO_WATCHER_URL = 'http://127.0.0.1:9';

/** The settings a fresh page starts with: the sandbox through the harness bridge. */
function seedSettings(bridgeUrl: string, watcherUrl: string, patch: Partial<AppSettings> = {}): AppSettings {
  return {
    bridgeUrl,
    watcherUrl,
    mode: 'sandbox',
    sandboxCaUrl: '/sandbox-ca.pem',
    deviceName: 'Cerulean (e2e)',
    readReceipts: true,
    notifications: false,
    ...patch,
  };
}

export async function startHarness(options: HarnessOptions = {}): Promise<E2eHarness> {
  for (const file of ['index.html', 'sw.js', 'manifest.webmanifest']) {
    if (!existsSync(path.join(OUT_DIR, file))) throw new Error(`out/${file} is missing: run \`npm run build\` first`);
  }
  const tmp = await tempDir('cerulean-pwa-e2e-');
  const closers: Array<() => Promise<unknown>> = [];
  const stop = async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
    await tmp.remove();
  };

  try {
    let services = protocolServices();
    const sandboxDir = path.join(tmp.dir, 'sandbox');
    let sandbox: Sandbox | undefined = await startTestSandbox(sandboxDir, { services: services.services, config: options.config });
    const sandboxPorts = sandbox.ports;
    const { caFile, caPem } = sandbox;
    const adminUrl = sandbox.adminUrl!;
    closers.push(() => sandbox?.close() ?? Promise.resolve());

    const bridgeOptions = {
      host: '127.0.0.1',
      bytesPerSecond: 0,
      hostMap: sandbox.hostMap.hosts,
      logSink: () => {},
      logLevel: 'error' as const,
      ...(options.bridge?.token ? { token: options.bridge.token } : {}),
    };
    let bridge: RunningBridge | undefined = await startBridge({ ...bridgeOptions, port: 0 });
    const bridgePort = bridge.port;
    const bridgeUrl = bridge.url;
    closers.push(() => bridge?.close() ?? Promise.resolve());

    const web: RunningStaticServer = await startStaticServer({ dir: OUT_DIR, caFile });
    closers.push(() => web.close());

    let watcher: HarnessWatcher | undefined;
    if (options.watcher) {
      // Loaded only here: the helpers lean on vitest, and bench/app.ts runs this harness without it.
      const { startPushEndpoint, startTestWatcher } = await import('../integration/watcher-helpers');
      const endpoint = await startPushEndpoint();
      closers.push(() => endpoint.close());
      const test = await startTestWatcher(sandbox, path.join(tmp.dir, 'watcher'));
      closers.push(() => test.watcher.close());
      watcher = { url: test.watcher.url, test, endpoint };
    }

    const launchOptions = { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: !(options.headed ?? process.env.HEADED === '1') };
    const browser = await chromium.launch(launchOptions);
    closers.push(() => browser.close());
    const persistent = new Set<BrowserContext>();
    closers.push(() => Promise.all([...persistent].map((c) => c.close())));

    const devices = new Set<HeadlessDevice>();
    closers.push(() => Promise.all([...devices].map((d) => d.close())));

    const admin = sandboxAdmin(adminUrl);
    const pageErrors: E2eHarness['pageErrors'] = [];
    const seeded = new WeakSet<BrowserContext>();
    // Seeds only when the app has no settings yet, so what a test changes in Settings survives reloads.
    const seed = async (context: BrowserContext, patch?: Partial<AppSettings>) => {
      if (seeded.has(context)) return;
      seeded.add(context);
      await context.addInitScript(
        ([origin, key, value]) => {
          // Init scripts run in every document, about:blank included, which has no storage of its own.
          if (location.origin === origin && localStorage.getItem(key) === null) localStorage.setItem(key, value);
        },
        [web.url, SETTINGS_KEY, JSON.stringify(seedSettings(bridgeUrl, watcher?.url ?? NO_WATCHER_URL, patch))] as const,
      );
    };
    const prepare = async (context: BrowserContext, settings: Partial<AppSettings> | undefined) => {
      context.on('page', (page) => page.on('pageerror', (e) => pageErrors.push({ url: page.url(), message: e.message })));
      await seed(context, settings);
      return context;
    };
    const viewport = { width: 1280, height: 800 };
    const newContext: E2eHarness['newContext'] = async ({ settings, ...contextOptions } = {}) =>
      prepare(await browser.newContext({ viewport, ...contextOptions }), settings);
    let profiles = 0;

    return {
      appUrl: web.url,
      bridgeUrl,
      watcher: () => {
        if (!watcher) throw new Error('the harness runs without a push watcher (startHarness({ watcher: true }))');
        return watcher;
      },
      sandbox: () => {
        if (!sandbox) throw new Error('the sandbox is stopped');
        return sandbox;
      },
      services: () => services,
      browser,
      admin,
      pageErrors,
      newContext,
      async persistentContext({ settings, ...contextOptions } = {}) {
        const dir = path.join(tmp.dir, 'profiles', String(++profiles));
        const context = await chromium.launchPersistentContext(dir, { ...launchOptions, viewport, ...contextOptions });
        persistent.add(context);
        context.on('close', () => persistent.delete(context));
        return prepare(context, settings);
      },
      async newPage(context, { hash = '', settings } = {}) {
        const ctx = context ?? (await newContext({ settings }));
        await seed(ctx, settings);
        const page = await ctx.newPage();
        await page.goto(`${web.url}/${hash}`);
        return page;
      },
      onboardAppleId: (page, account, opts) => onboardAppleId(page, admin, account, opts?.timeoutMs),
      async screenshot(page, name) {
        await mkdir(ARTIFACTS_DIR, { recursive: true });
        const file = path.join(ARTIFACTS_DIR, `${name}.png`);
        await page.screenshot({ path: file, fullPage: true });
        return file;
      },
      async headlessDevice(name) {
        const dir = path.join(tmp.dir, 'devices', name);
        await mkdir(dir, { recursive: true });
        const store = await openFileStore({ dir, vault: nodeKeyVault('e2e passphrase', { iterations: 1000 }) });
        const client = await CeruleanClient.open({
          bridgeUrl,
          bridgeToken: options.bridge?.token,
          WebSocketImpl: WebSocket,
          trustedRoots: [caPem],
          mode: 'sandbox',
          relay: { code: await admin.relayCode(`${name}'s relay`) },
          store,
          deviceInfo: { deviceName: `${name} (headless)` },
          tuning: FAST_TUNING,
        });
        const device: HeadlessDevice = {
          name,
          client,
          store,
          async close() {
            devices.delete(device);
            await client.close();
            await store.close();
          },
        };
        devices.add(device);
        return device;
      },
      async stopBridge() {
        await bridge?.close();
        bridge = undefined;
      },
      async restartBridge() {
        bridge ??= await startBridge({ ...bridgeOptions, port: bridgePort });
      },
      async stopSandbox() {
        await sandbox?.close();
        sandbox = undefined;
      },
      async restartSandbox() {
        if (sandbox) return;
        // Fresh service instances: the old ones hold the closed store.
        services = protocolServices();
        sandbox = await startTestSandbox(sandboxDir, {
          services: services.services,
          ports: { https: sandboxPorts.https, http: sandboxPorts.http, admin: sandboxPorts.admin, tls: sandboxPorts.tls },
        });
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** The visible `onb-*` elements and their values: what step onboarding is at. */
function onboardingStep(page: Page): Promise<string> {
  return page.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>('[data-testid^="onb-"]')]
      .filter((e) => e.offsetParent !== null || e.getClientRects().length > 0)
      .map((e) => `${e.dataset.testid}=${e instanceof HTMLInputElement || e instanceof HTMLTextAreaElement ? e.value : ''}`)
      .join('|'),
  );
}

async function onboardAppleId(page: Page, admin: SandboxAdmin, account: { appleId: string; password: string }, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  const byId = (id: string) => page.getByTestId(id);
  const visible = (id: string) => byId(id).isVisible();
  const clicked = new Set<string>();
  let relayCode: string | undefined;
  let submittedAt = Date.now();
  // Fills a field the current screen shows and nobody has filled yet (the app may prefill or keep drafts).
  // The screen may change between the checks (a step finishing): a field that went away is simply not filled now.
  const fill = async (id: string, value: () => Promise<string> | string): Promise<void> => {
    const field = byId(id);
    const quick = { timeout: 1000 };
    try {
      if ((await field.isVisible()) && (await field.isEditable(quick)) && (await field.inputValue(quick)) === '') await field.fill(await value(), quick);
    } catch (e) {
      if (!(e instanceof Error && e.name === 'TimeoutError')) throw e;
    }
  };
  while (Date.now() < until) {
    if (await visible('nav-chats')) return;
    if (await visible('onb-error')) throw new Error(`onboarding failed: ${(await byId('onb-error').innerText()).trim()}`);
    // Choices are made once: the sandbox service and the Apple ID method.
    for (const id of ['onb-mode-sandbox', 'onb-method-appleid']) {
      if (!clicked.has(id) && (await visible(id))) {
        await byId(id).click();
        clicked.add(id);
      }
    }
    await fill('onb-apple-id', () => account.appleId);
    await fill('onb-password', () => account.password);
    await fill('onb-relay-code', async () => (relayCode ??= await admin.relayCode('e2e relay')));
    await fill('onb-2fa-code', () => admin.twoFactorCode(account.appleId, { issuedAfter: submittedAt - 1000 }));
    const next = (await visible('onb-submit')) ? 'onb-submit' : (await visible('onb-continue')) ? 'onb-continue' : undefined;
    // The button may go between the checks too (the last step finishing): then the loop looks again.
    if (next && (await byId(next).isEnabled({ timeout: 1000 }).catch(() => false))) {
      const before = await onboardingStep(page);
      submittedAt = Date.now();
      await byId(next).click();
      // Registration (key generation, the server round trips) takes a while: wait for the screen to change.
      while (Date.now() < until && (await onboardingStep(page)) === before && !(await visible('nav-chats'))) {
        await page.waitForTimeout(100);
      }
    } else {
      await page.waitForTimeout(100);
    }
  }
  throw new Error(`onboarding of ${account.appleId} did not reach the chat list within ${timeoutMs} ms`);
}

function sandboxAdmin(adminUrl: string): SandboxAdmin {
  const call = async <T>(apiPath: string, body?: unknown): Promise<{ status: number; json: T }> => {
    const res = await fetch(new URL(apiPath, adminUrl), {
      method: body === undefined ? 'GET' : 'POST',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as T };
  };
  const api = async <T>(apiPath: string, body?: unknown): Promise<T> => {
    const { status, json } = await call<T>(apiPath, body);
    if (status >= 300) throw new Error(`sandbox admin ${apiPath}: ${status} ${JSON.stringify(json)}`);
    return json;
  };
  return {
    createAccount: (appleId, password, { twoFactor = false, handles } = {}) =>
      api<AccountView>('/api/accounts', { appleId, password, twoFactor, ...(handles ? { handles } : {}) }),
    async twoFactorCode(appleId, { issuedAfter = 0, timeoutMs = 15_000 } = {}) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const { status, json } = await call<TwoFactorCode>(`/api/two-factor?appleId=${encodeURIComponent(appleId)}`);
        if (status === 200 && !json.used && json.expiresAt > Date.now() && json.issuedAt >= issuedAfter) return json.code;
        if (Date.now() > until) throw new Error(`no fresh 2FA code for ${appleId} within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    relayCode: async (name) => (await api<{ code: string }>('/api/relay-codes', name ? { name } : {})).code,
    addPhone: (number, mccMnc) => api<PhoneRecord>('/api/phones', { number, ...(mccMnc ? { mccMnc } : {}) }),
    sms: (from, text, to) => api<SmsResult>('/api/sms', { from, text, ...(to ? { to } : {}) }),
    smsInbox: (number) => api<SmsMessage[]>(`/api/sms?number=${encodeURIComponent(number)}`),
  };
}
