'use client';
// The one CeruleanClient of this page and everything around it: the IndexedDB store, the settings, the trust roots,
// the connection state and the registration status. Screens read it with useSession() / useClient().
//
// Lifecycle: loading (one tab only, open the store, open a client if the trust roots are at hand) → 'ready' for a
// registered device (client started) or 'onboarding'. Onboarding asks for a client with onboardingClient() and
// hands it back registered with finishOnboarding(). Changing the bridge or read receipts reopens the client over the
// same store; signing out destroys the store and starts over.
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import type { CeruleanClient } from '../../lib/client/client';
import type { CeruleanClientConfig } from '../../lib/client/config';
import type { ConnectionState, RegistrationEvent } from '../../lib/client/events';
import { loadRegistrationState } from '../../lib/client/registration-state';
import { CeruleanError } from '../../lib/errors';
import { openIndexedDbStore } from '../../lib/store/indexeddb';
import type { ClientStore } from '../../lib/store/types';
import { describeError } from '../ui/errors';
import { clearOnboardingDraft } from './onboarding-draft';
import { loadSettings, mergeSettings, saveSettings, type AppSettings } from './settings';
import { acquireTabLock, type TabLock } from './tab-lock';
import { loadTrustedRoots } from './trust';
import { createWatchedWebSocket, hostRole, watchTunnels } from './tunnel-watch';

export type SessionPhase = 'loading' | 'onboarding' | 'ready' | 'failed';

export interface Session {
  phase: SessionPhase;
  /** Set when phase === 'ready' (a registered device); during onboarding, the client being registered. */
  client: CeruleanClient | undefined;
  settings: AppSettings;
  /** Saves the settings; a new bridge, token or read-receipt choice reopens the client. */
  updateSettings(patch: Partial<AppSettings>): Promise<void>;
  connection: ConnectionState;
  /** The code of the last connection failure while not connected, and when the next attempt is. */
  connectionError?: string;
  retryAt?: number;
  /** The last registration event (renewals included). */
  registration?: RegistrationEvent;
  /** A renewal needs the user: the Apple ID password or the phone's SMS again. */
  needsSignIn: boolean;
  /** Wipes keys and history (client.signOut()) and goes back to onboarding. */
  signOut(): Promise<void>;
  /** A human sentence for phase 'failed'. */
  error?: string;
  /** The raw failure behind `error`, for describeError(). */
  failure?: unknown;
  /** Back to onboarding with this device (after 'needs-sign-in', or to sign in again). */
  beginSignIn(): void;
  /** Leaves a sign-in started by beginSignIn() (the device is still registered). */
  cancelSignIn(): Promise<void>;
  /** A client for the onboarding with these settings and relay: the current one if nothing changed. */
  onboardingClient(relay: { url?: string; code: string }): Promise<CeruleanClient>;
  /** Drops the onboarding client (after a connection failure its courier would keep retrying). */
  discardClient(): Promise<void>;
  /** The onboarding registered `client`: the app opens. */
  finishOnboarding(client: CeruleanClient): void;
  /** Opens the store again after phase 'failed' (or takes over from another tab). */
  retry(takeOver?: boolean): void;
  /** The open client store (backups read and write it directly). */
  getStore(): ClientStore;
  /** Reopens the registered client, so every screen re-reads the store (after a backup import). */
  reloadClient(): Promise<void>;
}

interface Current {
  client: CeruleanClient;
  /** The config it was opened with (minus the store and WebSocket), to tell whether it can be reused. */
  key: string;
  started: boolean;
  detach: () => void;
}

const SessionContext = createContext<Session | undefined>(undefined);

// One WebSocket class for every client of the page: tunnel-watch listeners see them all.
let watchedWebSocket: ReturnType<typeof createWatchedWebSocket> | undefined;
const webSocketImpl = () => (watchedWebSocket ??= createWatchedWebSocket());

/** The part of the client config that decides whether an open client still fits. */
function configKey(settings: AppSettings, roots: string[], relay: { url?: string; code: string } | undefined): string {
  return JSON.stringify([
    settings.bridgeUrl,
    settings.bridgeToken ?? '',
    settings.mode,
    roots,
    settings.deviceName,
    settings.readReceipts,
    relay ?? null,
  ]);
}

const STORE_MODE_KEY = 'app/mode';
/** How long a tunnel's close reason may explain a courier disconnect. */
const TUNNEL_ERROR_FRESH_MS = 30_000;

export function SessionProvider({ children }: { children: ReactNode }) {
  const [settings, setSettings] = useState<AppSettings>(() =>
    typeof window === 'undefined' ? ({} as AppSettings) : loadSettings(),
  );
  const [phase, setPhase] = useState<SessionPhase>('loading');
  const [client, setClient] = useState<CeruleanClient | undefined>(undefined);
  const [connection, setConnection] = useState<{ state: ConnectionState; error?: string; retryAt?: number }>({
    state: 'disconnected',
  });
  const [registration, setRegistration] = useState<RegistrationEvent | undefined>(undefined);
  const [failure, setFailure] = useState<unknown>(undefined);

  const settingsRef = useRef(settings);
  const storeRef = useRef<ClientStore | undefined>(undefined);
  const currentRef = useRef<Current | undefined>(undefined);
  const rootsRef = useRef<string[] | undefined>(undefined);
  const lockRef = useRef<TabLock | undefined>(undefined);
  const initStarted = useRef(false);

  const requireStore = useCallback((): ClientStore => {
    const store = storeRef.current;
    if (!store) throw new CeruleanError('closed', 'the store is not open');
    return store;
  }, []);

  const attach = useCallback((c: CeruleanClient): (() => void) => {
    // The courier reports a failed dial as 'connection-closed'; the tunnel's close code says why (refused, bridge
    // unreachable, service down…).
    let tunnelError: { code: string; at: number } | undefined;
    const offTunnels = watchTunnels((t) => {
      if (t.kind === 'close' && t.error && hostRole(t.host, undefined) === 'courier') tunnelError = { code: t.error.code, at: Date.now() };
    });
    const offConnection = c.on('connection', (e) => {
      if (currentRef.current?.client !== c) return;
      if (e.state === 'connected') tunnelError = undefined;
      const recent = tunnelError && Date.now() - tunnelError.at < TUNNEL_ERROR_FRESH_MS ? tunnelError.code : undefined;
      const error = e.state === 'disconnected' && e.error === 'connection-closed' ? (recent ?? e.error) : e.error;
      setConnection({
        state: e.state,
        ...(error !== undefined ? { error } : {}),
        ...(e.retryInMs !== undefined ? { retryAt: Date.now() + e.retryInMs } : {}),
      });
    });
    const offRegistration = c.on('registration', (e) => {
      if (currentRef.current?.client !== c) return;
      setRegistration(e);
    });
    return () => {
      offTunnels();
      offConnection();
      offRegistration();
    };
  }, []);

  /**
   * Closes the current client (the store stays open). `keepShown` leaves it in the context until its replacement
   * arrives, so open screens do not lose their client for the moment of a reopen.
   */
  const closeCurrent = useCallback(async (keepShown = false) => {
    const current = currentRef.current;
    currentRef.current = undefined;
    if (!keepShown) setClient(undefined);
    if (!current) return;
    current.detach();
    await current.client.close().catch(() => undefined);
  }, []);

  const openClient = useCallback(
    async (s: AppSettings, roots: string[], relay?: { url?: string; code: string }): Promise<Current> => {
      const config: CeruleanClientConfig = {
        bridgeUrl: s.bridgeUrl,
        ...(s.bridgeToken ? { bridgeToken: s.bridgeToken } : {}),
        WebSocketImpl: webSocketImpl(),
        trustedRoots: roots,
        mode: s.mode,
        ...(relay ? { relay: { ...(relay.url ? { url: relay.url } : {}), code: relay.code } } : {}),
        store: requireStore(),
        deviceInfo: { deviceName: s.deviceName },
        readReceipts: s.readReceipts,
      };
      // The protocol engine (TLS, X.509, IDS, the courier, the crypto) is most of the app's code: it loads here, when
      // a session starts, not with the first paint of the shell or onboarding.
      const { CeruleanClient } = await import('../../lib/client/client');
      const c = await CeruleanClient.open(config);
      const current: Current = { client: c, key: configKey(s, roots, relay), started: false, detach: () => undefined };
      currentRef.current = current;
      current.detach = attach(c);
      setConnection({ state: c.connectionState });
      setClient(c);
      return current;
    },
    [attach, requireStore],
  );

  /** Opens and starts the registered device's client; false when the store holds no registration. */
  const openRegistered = useCallback(
    async (s: AppSettings): Promise<boolean> => {
      const store = requireStore();
      if (!(await loadRegistrationState(store))) return false;
      const roots = rootsRef.current ?? (await loadTrustedRoots(s, { preferCache: true }));
      rootsRef.current = roots;
      const current = await openClient(s, roots);
      if (!current.client.registered) {
        await closeCurrent();
        return false;
      }
      await current.client.start();
      current.started = true;
      return true;
    },
    [closeCurrent, openClient, requireStore],
  );

  const fail = useCallback((e: unknown) => {
    setFailure(e);
    setPhase('failed');
  }, []);

  const init = useCallback(
    async (takeOver: boolean) => {
      setPhase('loading');
      setFailure(undefined);
      try {
        if (typeof crypto === 'undefined' || !crypto.subtle) {
          throw new CeruleanError('no-webcrypto', 'WebCrypto needs a secure context');
        }
        if (typeof indexedDB === 'undefined') throw new CeruleanError('no-indexeddb', 'IndexedDB is unavailable');
        if (!lockRef.current) {
          const lock = await acquireTabLock({
            steal: takeOver,
            onLost: () => {
              lockRef.current = undefined;
              setPhase('loading');
              void closeCurrent().then(async () => {
                await storeRef.current?.close().catch(() => undefined);
                storeRef.current = undefined;
                fail(new CeruleanError('other-tab', 'another tab took over'));
              });
            },
          });
          if (!lock) throw new CeruleanError('other-tab', 'another tab holds the session');
          lockRef.current = lock;
        }
        // A retry starts from a fresh store: the old one may have been closed under us (another tab upgrading it).
        await closeCurrent();
        await storeRef.current?.close().catch(() => undefined);
        storeRef.current = undefined;
        storeRef.current = await openIndexedDbStore();
        const s = settingsRef.current;
        setPhase((await openRegistered(s)) ? 'ready' : 'onboarding');
      } catch (e) {
        fail(e);
      }
    },
    [closeCurrent, fail, openRegistered],
  );

  useEffect(() => {
    if (initStarted.current) return;
    initStarted.current = true;
    void init(false);
  }, [init]);

  const reopenRegistered = useCallback(
    async (s: AppSettings) => {
      await closeCurrent(true);
      try {
        if (!(await openRegistered(s))) {
          setClient(undefined);
          setPhase('onboarding');
        }
      } catch (e) {
        fail(e);
        throw e;
      }
    },
    [closeCurrent, fail, openRegistered],
  );

  const updateSettings = useCallback(
    async (patch: Partial<AppSettings>) => {
      const before = settingsRef.current;
      const next = mergeSettings(before, patch);
      const registered = currentRef.current?.client.registered ?? false;
      if (registered && next.mode !== before.mode) {
        throw new CeruleanError('bad-input', 'sign out before changing the service');
      }
      if (next.mode !== before.mode || next.appleRootsPem !== before.appleRootsPem || next.sandboxCaUrl !== before.sandboxCaUrl) {
        rootsRef.current = undefined;
      }
      settingsRef.current = next;
      setSettings(next);
      saveSettings(next);
      const reopen =
        phase === 'ready' &&
        (next.bridgeUrl !== before.bridgeUrl ||
          next.bridgeToken !== before.bridgeToken ||
          next.readReceipts !== before.readReceipts ||
          rootsRef.current === undefined);
      if (reopen) await reopenRegistered(next);
    },
    [phase, reopenRegistered],
  );

  const signOut = useCallback(async () => {
    const current = currentRef.current;
    currentRef.current = undefined;
    // Screens that need the client leave before it goes.
    setPhase('loading');
    setClient(undefined);
    current?.detach();
    try {
      if (current) await current.client.signOut();
      else await storeRef.current?.destroy();
    } catch (e) {
      // The store's state is unknown now: the failed phase reopens it from scratch.
      storeRef.current = undefined;
      fail(e);
      throw e;
    }
    storeRef.current = undefined;
    rootsRef.current = undefined;
    clearOnboardingDraft();
    setRegistration(undefined);
    setConnection({ state: 'disconnected' });
    try {
      storeRef.current = await openIndexedDbStore();
      setPhase('onboarding');
    } catch (e) {
      fail(e);
    }
  }, [fail]);

  const onboardingClient = useCallback(
    async (relay: { url?: string; code: string }) => {
      const s = settingsRef.current;
      // Onboarding always checks the live roots: a reset sandbox has a new CA.
      const roots = await loadTrustedRoots(s);
      rootsRef.current = roots;
      const key = configKey(s, roots, relay);
      const current = currentRef.current;
      if (current && current.key === key) return current.client;
      await closeCurrent();
      const store = requireStore();
      // Half-finished setup for the other service (a push certificate from its albert) is useless here.
      const storeMode = await store.kv.get(STORE_MODE_KEY);
      if (typeof storeMode === 'string' && storeMode !== s.mode && !(await loadRegistrationState(store))) {
        storeRef.current = undefined;
        await store.destroy();
        storeRef.current = await openIndexedDbStore();
      }
      await requireStore().kv.set(STORE_MODE_KEY, s.mode);
      return (await openClient(s, roots, relay)).client;
    },
    [closeCurrent, openClient, requireStore],
  );

  const finishOnboarding = useCallback((c: CeruleanClient) => {
    const current = currentRef.current;
    // register() connected and started everything start() would.
    if (current?.client === c) current.started = true;
    clearOnboardingDraft();
    setRegistration((r) => (r?.status === 'registered' ? r : { status: 'registered', handles: c.handles }));
    setPhase('ready');
  }, []);

  const beginSignIn = useCallback(() => setPhase('onboarding'), []);

  const cancelSignIn = useCallback(async () => {
    const current = currentRef.current;
    try {
      if (current?.client.registered) {
        if (!current.started) {
          await current.client.start();
          current.started = true;
        }
        setPhase('ready');
        return;
      }
      await closeCurrent();
      setPhase((await openRegistered(settingsRef.current)) ? 'ready' : 'onboarding');
    } catch (e) {
      fail(e);
    }
  }, [closeCurrent, fail, openRegistered]);

  const retry = useCallback((takeOver = false) => void init(takeOver), [init]);

  const session = useMemo<Session>(() => {
    const described = failure !== undefined ? describeError(failure, { mode: settings.mode }) : undefined;
    return {
      phase,
      client,
      settings,
      updateSettings,
      connection: connection.state,
      ...(connection.state !== 'connected' && connection.error !== undefined ? { connectionError: connection.error } : {}),
      ...(connection.state !== 'connected' && connection.retryAt !== undefined ? { retryAt: connection.retryAt } : {}),
      ...(registration ? { registration } : {}),
      needsSignIn: registration?.status === 'needs-sign-in',
      signOut,
      ...(described ? { error: `${described.title}. ${described.detail}`, failure } : {}),
      beginSignIn,
      cancelSignIn,
      onboardingClient,
      discardClient: () => closeCurrent(),
      finishOnboarding,
      retry,
      getStore: requireStore,
      reloadClient: () => reopenRegistered(settingsRef.current),
    };
  }, [
    requireStore,
    reopenRegistered,
    phase,
    client,
    settings,
    updateSettings,
    connection,
    registration,
    signOut,
    failure,
    beginSignIn,
    cancelSignIn,
    onboardingClient,
    closeCurrent,
    finishOnboarding,
    retry,
  ]);

  return <SessionContext.Provider value={session}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession must be used inside <SessionProvider>');
  return s;
}

/** The registered client; only for screens rendered in a ready session. */
export function useClient(): CeruleanClient {
  const { phase, client } = useSession();
  if (phase !== 'ready' || !client) throw new CeruleanError('not-registered', 'no registered client in this session');
  return client;
}
