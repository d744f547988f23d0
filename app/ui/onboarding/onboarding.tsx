'use client';
// Setting up this browser as an iMessage device: (1) which bridge and service, (2) Apple ID or phone number plus
// the registration relay, (3) the Apple ID's 2FA code or the phone's SMS exchange. Everything typed lives in this
// component's state (non-secret fields also in sessionStorage), so a failure or a retry never loses input.
import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import type { CeruleanClient } from '../../../lib/client/client';
import type { RegisterRequest } from '../../../lib/client/registration';
import { CeruleanError } from '../../../lib/errors';
import { BEEPER_RELAY_URL, SANDBOX_RELAY_URL } from '../../../lib/ids/relay-urls';
import { bridgeProtocols, tunnelUrl } from '../../../lib/net/byte-stream';
import {
  loadOnboardingDraft,
  saveOnboardingDraft,
  type OnboardingDraft,
  type OnboardingStep,
} from '../../session/onboarding-draft';
import { useSession } from '../../session/session';
import { mergeSettings } from '../../session/settings';
import { loadTrustedRoots } from '../../session/trust';
import { Button } from '../common/button';
import { ErrorNotice } from '../common/error-notice';
import { Spinner } from '../common/spinner';
import { TextField } from '../common/text-field';
import { errorCode, type ErrorContext } from '../errors';
import { ConnectionStep, type ConnectionFields } from './connection-step';
import { MethodStep, type MethodFields } from './method-step';
import { ProgressView } from './progress-view';
import { AttemptError, pastSignIn, registerWithProgress, type RegistrationPhase, type RequestKind } from './registration-progress';
import { SecondFactorStep } from './second-factor-step';
import { SmsStep } from './sms-step';

type Action = 'connection' | 'method' | 'code' | 'new-code' | 'new-text' | 'sms';

interface Failure {
  error: unknown;
  context: ErrorContext;
  /** What Retry does again (with whatever the fields hold now). */
  action: Action;
}

type Busy = { kind: 'check' } | { kind: RequestKind; phase: RegistrationPhase };

const STEP_TEXT: Record<OnboardingStep, { number: number; title: string; intro: string }> = {
  connection: { number: 1, title: 'Connect', intro: 'Choose the bridge this browser connects through and the service to use.' },
  method: { number: 2, title: 'Sign in', intro: 'Sign in to iMessage. Your password goes only to the service, through an encrypted connection.' },
  'second-factor': { number: 3, title: 'Enter the code', intro: 'Your Apple ID uses two-factor authentication.' },
  sms: { number: 3, title: 'Verify your number', intro: 'Your phone proves the number is yours by sending one text.' },
};

const SUBMIT_LABEL: Record<Action, string> = {
  connection: 'Continue',
  method: 'Sign in',
  code: 'Verify',
  'new-code': 'Try again',
  'new-text': 'Try again',
  sms: 'Register',
};

/** Failures that mean the relay code itself is wrong: the field to correct it has to be on screen. */
const RELAY_CODE_ERRORS = new Set(['relay-unknown-code', 'bad-relay-code']);

function defaultRelayUrl(mode: ConnectionFields['mode']): string {
  return mode === 'sandbox' ? SANDBOX_RELAY_URL : BEEPER_RELAY_URL;
}

function relayHostOf(url: string): string {
  try {
    return new URL(url).hostname.toLowerCase();
  } catch {
    return '';
  }
}

/** Checks what can be checked before connecting, so typos get a precise message. */
function checkConnection(c: ConnectionFields): void {
  tunnelUrl(c.bridgeUrl.trim(), 'example.com', 443);
  if (c.bridgeToken.trim()) bridgeProtocols(c.bridgeToken.trim());
  if (c.mode === 'apple' && !c.appleRootsPem.trim()) throw new CeruleanError('apple-roots-missing', 'no Apple roots');
  if (!c.deviceName.trim()) throw new CeruleanError('bad-input', 'enter a device name');
}

export function Onboarding() {
  const session = useSession();
  const { settings } = session;
  // Opened from the "sign in again" banner: the device is registered and only needs new credentials.
  const [reauth] = useState(() => session.client?.registered ?? false);
  const [draft, setDraft] = useState<OnboardingDraft>(() => {
    const d = loadOnboardingDraft();
    return reauth && d.step === 'connection' ? { ...d, step: 'method' } : d;
  });
  const [conn, setConn] = useState<ConnectionFields>(() => ({
    bridgeUrl: settings.bridgeUrl,
    bridgeToken: settings.bridgeToken ?? '',
    mode: settings.mode,
    appleRootsPem: settings.appleRootsPem ?? '',
    deviceName: settings.deviceName,
  }));
  const [secrets, setSecrets] = useState({ password: '', relayCode: '', code: '', regResp: '' });
  const [relayUrl, setRelayUrl] = useState(settings.relayUrl ?? '');
  const [busy, setBusy] = useState<Busy | undefined>(undefined);
  const [failure, setFailure] = useState<Failure | undefined>(undefined);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  // The 2FA code or SMS reply was accepted but registering failed after it: it works only once, so the next try
  // goes on from the stored sign-in without it (and asks for a new one only if that sign-in has expired).
  const [spent, setSpent] = useState(false);
  // Restored at the SMS step after a reload: the relay code (not kept) must be asked for there.
  const [relayCodeLost] = useState(() => draft.step === 'sms');
  // The relay did not accept the code at the 2FA or SMS step, which do not show it otherwise.
  const [relayCodeWrong, setRelayCodeWrong] = useState(false);
  const headingRef = useRef<HTMLHeadingElement>(null);
  const firstRender = useRef(true);

  useEffect(() => saveOnboardingDraft(draft), [draft]);

  // Moving to another step puts focus on its heading, so keyboard and screen-reader users start at the top of it.
  useEffect(() => {
    if (firstRender.current) {
      firstRender.current = false;
      return;
    }
    headingRef.current?.focus();
  }, [draft.step]);

  const goTo = useCallback((step: OnboardingStep) => {
    setFailure(undefined);
    setNotice(undefined);
    setSpent(false);
    setRelayCodeWrong(false);
    setDraft((d) => ({ ...d, step }));
  }, []);

  const method: MethodFields = {
    method: draft.method,
    appleId: draft.appleId,
    password: secrets.password,
    phoneNumber: draft.phoneNumber,
    mccMnc: draft.mccMnc,
    relayCode: secrets.relayCode,
    relayUrl,
  };
  const onMethodChange = (patch: Partial<MethodFields>) => {
    const { password, relayCode, relayUrl: url, ...rest } = patch;
    if (Object.keys(rest).length > 0) setDraft((d) => ({ ...d, ...rest }));
    if (password !== undefined) setSecrets((s) => ({ ...s, password }));
    if (relayCode !== undefined) setSecrets((s) => ({ ...s, relayCode }));
    if (url !== undefined) setRelayUrl(url);
  };

  const continueConnection = async () => {
    setFailure(undefined);
    const next = {
      bridgeUrl: conn.bridgeUrl.trim(),
      bridgeToken: conn.bridgeToken.trim() || undefined,
      mode: conn.mode,
      appleRootsPem: conn.appleRootsPem.trim() || undefined,
      deviceName: conn.deviceName.trim(),
    };
    try {
      checkConnection(conn);
    } catch (e) {
      setFailure({ error: e, context: { mode: conn.mode }, action: 'connection' });
      return;
    }
    setBusy({ kind: 'check' });
    try {
      await session.updateSettings(next);
      // The sandbox's CA must be reachable now; better to say so here than halfway through registering.
      await loadTrustedRoots(mergeSettings(settings, next));
      goTo('method');
    } catch (e) {
      setFailure({ error: e, context: { mode: conn.mode }, action: 'connection' });
    } finally {
      setBusy(undefined);
    }
  };

  /** One register() call and what its answer means for the flow. */
  const runRegister = async (req: RegisterRequest, kind: RequestKind, action: Action, stage?: ErrorContext['stage']) => {
    setFailure(undefined);
    setNotice(undefined);
    const mode = settings.mode;
    const context: ErrorContext = { mode, ...(stage ? { stage } : {}) };
    if (!secrets.relayCode.trim()) {
      setFailure({ error: new CeruleanError('relay-code-missing', 'no relay code'), context, action });
      return;
    }
    const url = relayUrl.trim();
    setBusy({ kind, phase: 'bridge' });
    let client: CeruleanClient | undefined;
    try {
      if ((settings.relayUrl ?? '') !== url) await session.updateSettings({ relayUrl: url || undefined });
      client = await session.onboardingClient({ code: secrets.relayCode.trim(), ...(url ? { url } : {}) });
      const result = await registerWithProgress(client, req, {
        relayHost: relayHostOf(url || defaultRelayUrl(mode)),
        onPhase: (phase) => setBusy({ kind, phase }),
      });
      switch (result.status) {
        case 'registered':
          session.finishOnboarding(client);
          return;
        case 'second-factor-required':
          setSecrets((s) => ({ ...s, code: '' }));
          setSpent(false);
          if (draft.step === 'second-factor') setNotice('A new code was sent to your trusted devices.');
          else goTo('second-factor');
          return;
        case 'bad-credentials':
          setFailure({ error: new CeruleanError('bad-credentials', 'bad credentials'), context, action });
          return;
        case 'sms-required':
          setSecrets((s) => ({ ...s, regResp: '' }));
          setSpent(false);
          setDraft((d) => ({ ...d, sms: { text: result.text, ...(result.gateway ? { gateway: result.gateway } : {}) } }));
          if (draft.step === 'sms') setNotice('This is a new text: send it instead of the earlier one.');
          else goTo('sms');
          return;
      }
    } catch (e) {
      const error = e instanceof AttemptError ? e.reason : e;
      const where = e instanceof AttemptError ? e.where : undefined;
      const usedUp =
        (e instanceof AttemptError && pastSignIn(e.phase) && (action === 'code' || action === 'sms')) ||
        (error instanceof CeruleanError && error.code === 'no-phone-request');
      if (usedUp) setSpent(true);
      if (error instanceof CeruleanError && RELAY_CODE_ERRORS.has(error.code)) setRelayCodeWrong(true);
      const retryAction: Action = usedUp ? (action === 'code' ? 'new-code' : 'new-text') : action;
      setFailure({ error, context: { ...context, ...(where ? { where } : {}) }, action: retryAction });
      // A failed client may still be retrying in the background; the next attempt starts clean.
      if (client) await session.discardClient();
    } finally {
      setBusy(undefined);
    }
  };

  const actions: Record<Action, () => Promise<void>> = {
    connection: continueConnection,
    method: () =>
      draft.method === 'apple-id'
        ? runRegister({ appleId: { username: draft.appleId.trim(), password: secrets.password } }, 'apple-id', 'method', 'password')
        : runRegister({ phone: phoneRequest(draft.mccMnc) }, 'phone-request', 'method'),
    code: () =>
      runRegister(
        { appleId: { username: draft.appleId.trim(), password: secrets.password, code: secrets.code } },
        'apple-id',
        'code',
        'code',
      ),
    'new-code': () =>
      runRegister({ appleId: { username: draft.appleId.trim(), password: secrets.password } }, 'apple-id', 'new-code', 'password'),
    'new-text': () => runRegister({ phone: phoneRequest(draft.mccMnc) }, 'phone-request', 'new-text'),
    sms: () => runRegister({ phone: { regResp: secrets.regResp.trim() } }, 'phone-response', 'sms'),
  };

  const submitAction: Action =
    draft.step === 'connection'
      ? 'connection'
      : draft.step === 'method'
        ? 'method'
        : draft.step === 'second-factor'
          ? spent
            ? 'new-code'
            : 'code'
          : spent
            ? 'new-text'
            : 'sms';

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    // A 2FA step without the password (the page was reloaded) cannot go on: back to the password.
    if (draft.step === 'second-factor' && !secrets.password) {
      goTo('method');
      return;
    }
    void actions[submitAction]();
  };

  const step = STEP_TEXT[draft.step];
  const disabled = busy !== undefined;
  const back: OnboardingStep | undefined =
    draft.step === 'method' ? 'connection' : draft.step === 'second-factor' || draft.step === 'sms' ? 'method' : undefined;

  return (
    <main className="flex min-h-dvh items-start justify-center bg-neutral-50 px-4 py-8 sm:items-center dark:bg-neutral-950">
      <div className="flex w-full max-w-lg flex-col gap-6 rounded-2xl bg-white p-6 shadow-sm sm:p-8 dark:bg-neutral-900/60">
        <header className="flex flex-col gap-1">
          <p className="text-sm font-semibold tracking-wide text-accent-ink">Cerulean</p>
          <p className="text-xs text-neutral-600 dark:text-neutral-400">
            Step {step.number} of 3
          </p>
          <h1 ref={headingRef} tabIndex={-1} className="text-2xl font-semibold outline-none">
            {step.title}
          </h1>
          <p className="text-sm text-neutral-600 dark:text-neutral-400">{step.intro}</p>
        </header>

        {reauth ? (
          <div className="flex flex-wrap items-center justify-between gap-2 rounded-xl bg-amber-50 p-3 text-sm text-amber-900 dark:bg-amber-950/40 dark:text-amber-100">
            <span>Sign in again to keep this device on iMessage. Your chats stay as they are.</span>
            <Button variant="ghost" onClick={() => void session.cancelSignIn()} disabled={disabled}>
              Not now
            </Button>
          </div>
        ) : null}

        <form className="flex flex-col gap-6" onSubmit={onSubmit} aria-busy={disabled}>
          {draft.step === 'connection' ? (
            <ConnectionStep
              value={conn}
              onChange={(p) => setConn((c) => ({ ...c, ...p }))}
              disabled={disabled}
              modeLocked={reauth}
            />
          ) : null}
          {draft.step === 'method' ? (
            <MethodStep
              value={method}
              onChange={onMethodChange}
              mode={settings.mode}
              defaultRelayUrl={defaultRelayUrl(settings.mode)}
              disabled={disabled}
            />
          ) : null}
          {draft.step === 'second-factor' ? (
            <SecondFactorStep
              appleId={draft.appleId}
              code={secrets.code}
              onCode={(code) => setSecrets((s) => ({ ...s, code }))}
              disabled={disabled}
              codeRequired={!spent}
            />
          ) : null}
          {draft.step === 'sms' && draft.sms ? (
            <SmsStep
              sms={draft.sms}
              phoneNumber={draft.phoneNumber}
              regResp={secrets.regResp}
              onRegResp={(regResp) => setSecrets((s) => ({ ...s, regResp }))}
              mode={settings.mode}
              disabled={disabled}
              replyRequired={!spent}
            />
          ) : null}
          {(draft.step === 'sms' && relayCodeLost) || ((draft.step === 'sms' || draft.step === 'second-factor') && relayCodeWrong) ? (
            <TextField
              label="Registration code"
              hint={
                relayCodeWrong
                  ? 'The code from your registration relay provider. Correct it, then try again.'
                  : 'The code from your registration relay provider (it is not kept when the page reloads).'
              }
              value={secrets.relayCode}
              onChange={(e) => setSecrets((s) => ({ ...s, relayCode: e.target.value }))}
              autoComplete="off"
              spellCheck={false}
              required
              disabled={disabled}
              data-testid="onb-relay-code"
            />
          ) : null}

          <div aria-live="polite" className="contents">
            {notice ? <p className="text-sm text-neutral-700 dark:text-neutral-300">{notice}</p> : null}
            {/* A lost REG-REQ is explained by the error itself: that retry does need a new text. */}
            {spent && errorCode(failure?.error) !== 'no-phone-request' ? (
              <p className="text-sm text-neutral-700 dark:text-neutral-300">
                {draft.step === 'sms'
                  ? 'Your number was verified, but registering failed after that. Try again: no new text is needed unless the verification has expired.'
                  : 'Your code was accepted, but registering failed after that. Try again: no new code is needed unless the sign-in has expired.'}
              </p>
            ) : null}
          </div>

          {busy && busy.kind !== 'check' ? <ProgressView kind={busy.kind} phase={busy.phase} /> : null}

          <ErrorNotice
            error={failure?.error}
            {...(failure ? { context: failure.context } : {})}
            onRetry={() => failure && void actions[failure.action]()}
            alwaysRetry
            testId="onb-error"
            retryTestId="onb-retry"
          />

          <div className="flex flex-wrap items-center justify-between gap-3">
            <div className="flex gap-2">
              {back ? (
                <Button variant="ghost" onClick={() => goTo(back)} disabled={disabled}>
                  Back
                </Button>
              ) : null}
              {draft.step === 'second-factor' && !spent ? (
                <Button variant="ghost" onClick={() => void actions['new-code']()} disabled={disabled || !secrets.password}>
                  Send a new code
                </Button>
              ) : null}
              {draft.step === 'sms' && !spent ? (
                <Button variant="ghost" onClick={() => void actions['new-text']()} disabled={disabled}>
                  Get a new text
                </Button>
              ) : null}
            </div>
            {draft.step === 'connection' ? (
              <Button type="submit" disabled={disabled} data-testid="onb-continue">
                {busy?.kind === 'check' ? <Spinner label="" className="h-4 w-4 text-white" /> : null}
                {busy?.kind === 'check' ? 'Checking…' : 'Continue'}
              </Button>
            ) : (
              <Button type="submit" disabled={disabled} data-testid="onb-submit">
                {disabled ? <Spinner label="" className="h-4 w-4 text-white" /> : null}
                {submitAction === 'method' && draft.method === 'phone' ? 'Get the text' : SUBMIT_LABEL[submitAction]}
              </Button>
            )}
          </div>
        </form>
      </div>
    </main>
  );
}

/** The phone step's first request: with the carrier's MCC-MNC when given, so the client looks up its gateway. */
function phoneRequest(mccMnc: string): { mccMnc?: string } {
  const code = mccMnc.trim();
  return code ? { mccMnc: code } : {};
}
