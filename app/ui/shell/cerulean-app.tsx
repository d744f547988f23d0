'use client';
// The whole app on one static page: the session decides between loading, onboarding, the registered app, or a
// failure to explain.
import { useEffect } from 'react';
import { SessionProvider, useSession } from '../../session/session';
import { Onboarding } from '../onboarding/onboarding';
import { registerServiceWorker } from '../pwa/register-service-worker';
import { Button } from '../common/button';
import { ErrorNotice } from '../common/error-notice';
import { Spinner } from '../common/spinner';
import { errorCode } from '../errors';
import { AppShell } from './app-shell';

function Loading() {
  return (
    <main className="flex min-h-dvh flex-col items-center justify-center gap-3">
      <Spinner label="Opening Cerulean" className="h-8 w-8 text-accent-ink" />
      <p aria-hidden="true" className="text-sm text-neutral-600 dark:text-neutral-400">
        Opening Cerulean…
      </p>
    </main>
  );
}

function Failed() {
  const session = useSession();
  const otherTab = errorCode(session.failure) === 'other-tab';
  return (
    <main className="mx-auto flex min-h-dvh max-w-md flex-col justify-center gap-4 p-6">
      <h1 className="text-2xl font-semibold">Cerulean can’t open</h1>
      <ErrorNotice error={session.failure} context={{ mode: session.settings.mode }} testId="app-error" />
      <div className="flex gap-2">
        {otherTab ? (
          <Button onClick={() => session.retry(true)} data-testid="take-over">
            Use Cerulean here
          </Button>
        ) : null}
        <Button variant={otherTab ? 'secondary' : 'primary'} onClick={() => session.retry()}>
          Try again
        </Button>
      </div>
    </main>
  );
}

function Phases() {
  const { phase } = useSession();
  switch (phase) {
    case 'loading':
      return <Loading />;
    case 'failed':
      return <Failed />;
    case 'onboarding':
      return <Onboarding />;
    case 'ready':
      return <AppShell />;
  }
}

export function CeruleanApp() {
  useEffect(() => {
    // Development servers serve no sw.js; a failed registration only costs offline use.
    if (process.env.NODE_ENV !== 'production') return;
    registerServiceWorker().catch((e: unknown) => console.warn('service worker registration failed', e));
  }, []);
  return (
    <SessionProvider>
      <Phases />
    </SessionProvider>
  );
}
