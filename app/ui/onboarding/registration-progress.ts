// One register() call with a visible phase. The client reports no progress of its own, so the phase is read off
// what it does: the tunnels it opens (albert, the courier, IDS, the relay), its connection events and its
// registration event. The same watching names the server behind a network failure, and turns a courier that keeps
// failing to connect (register() would wait for it forever) into an error the person can act on.
import type { CeruleanClient } from '../../../lib/client/client';
import type { RegisterRequest, RegisterResult } from '../../../lib/client/registration';
import { CeruleanError } from '../../../lib/errors';
import { NetError } from '../../../lib/net/errors';
import { hostRole, watchTunnels, type HostRole } from '../../session/tunnel-watch';
import type { ErrorContext } from '../errors';

export const PHASES = ['bridge', 'push', 'sign-in', 'validation', 'register', 'devices'] as const;
export type RegistrationPhase = (typeof PHASES)[number];

export type RequestKind = 'apple-id' | 'phone-request' | 'phone-response';

export function phaseLabel(phase: RegistrationPhase, kind: RequestKind): string {
  switch (phase) {
    case 'bridge':
      return 'Connecting to the bridge';
    case 'push':
      return 'Activating push';
    case 'sign-in':
      return kind === 'apple-id' ? 'Signing in' : kind === 'phone-request' ? 'Preparing the text message' : 'Verifying your phone number';
    case 'validation':
      return 'Getting validation data';
    case 'register':
      return 'Registering this device';
    case 'devices':
      return 'Looking up your devices';
  }
}

/** The phases a request goes through: asking for the REG-REQ stops after preparing it. */
/** Whether an attempt that got this far had signed in (its one-time code or SMS reply is used up). */
export function pastSignIn(phase: RegistrationPhase): boolean {
  return PHASES.indexOf(phase) >= PHASES.indexOf('validation');
}

export function phasesFor(kind: RequestKind): readonly RegistrationPhase[] {
  return kind === 'phone-request' ? PHASES.slice(0, 3) : PHASES;
}

/** A failed attempt, with where it failed (for the error text) and how far it got. */
export class AttemptError extends Error {
  constructor(
    readonly reason: unknown,
    readonly where: ErrorContext['where'],
    readonly phase: RegistrationPhase,
  ) {
    super(reason instanceof Error ? reason.message : String(reason));
  }
}

function whereOf(role: HostRole | undefined, e: unknown): ErrorContext['where'] {
  if (e instanceof NetError && (e.code === 'bridge-unreachable' || e.code === 'bridge-timeout' || e.code === 'bridge-unauthorized')) {
    return 'bridge';
  }
  if (role === 'relay') return 'relay';
  return role === undefined ? undefined : 'service';
}

export async function registerWithProgress(
  client: CeruleanClient,
  req: RegisterRequest,
  options: { relayHost: string; onPhase(phase: RegistrationPhase): void },
): Promise<RegisterResult> {
  let phase: RegistrationPhase = client.connectionState === 'connected' ? 'sign-in' : 'bridge';
  const advance = (next: RegistrationPhase) => {
    if (PHASES.indexOf(next) <= PHASES.indexOf(phase)) return;
    phase = next;
    options.onPhase(next);
  };
  options.onPhase(phase);
  let lastFailure: { role: HostRole; error: NetError } | undefined;
  let connected = client.connectionState === 'connected';
  let rejectEarly!: (e: unknown) => void;
  const early = new Promise<never>((_, reject) => (rejectEarly = reject));

  const stops = [
    watchTunnels((t) => {
      const role = hostRole(t.host, options.relayHost);
      if (t.kind === 'close') {
        if (t.error) lastFailure = { role, error: t.error };
        return;
      }
      if (role === 'albert' || role === 'courier') advance('push');
      else if (role === 'relay') advance('validation');
      else if (t.kind === 'send' && phase === 'validation') advance('register');
    }),
    client.on('connection', (e) => {
      if (e.state === 'connected') {
        connected = true;
        advance('sign-in');
      } else if (e.state === 'disconnected' && !connected && e.error !== undefined && (e.retryInMs ?? 1) > 0) {
        // The courier retries on its own; before the first connection that only hides the cause. (An immediate
        // retry, as after a clock correction, is part of connecting.)
        const tunnel = lastFailure?.role === 'courier' ? lastFailure.error : undefined;
        const error = tunnel ?? new CeruleanError(e.error, `could not connect to the push service (${e.error})`);
        rejectEarly(new AttemptError(error, tunnel ? 'service' : undefined, phase));
      }
    }),
    client.on('registration', (e) => {
      if (e.status === 'registered') advance('devices');
    }),
  ];
  const attempt = client.register(req);
  // The loser of the race below must not surface as an unhandled rejection.
  attempt.catch(() => undefined);
  try {
    return await Promise.race([attempt, early]);
  } catch (e) {
    if (e instanceof AttemptError) throw e;
    throw new AttemptError(e, whereOf(lastFailure?.role, e), phase);
  } finally {
    for (const stop of stops) stop();
  }
}
