import { Spinner } from '../common/spinner';
import { PHASES, phaseLabel, phasesFor, type RegistrationPhase, type RequestKind } from './registration-progress';

export function ProgressView({ kind, phase }: { kind: RequestKind; phase: RegistrationPhase }) {
  const current = PHASES.indexOf(phase);
  return (
    <div
      role="status"
      aria-live="polite"
      className="rounded-xl border border-neutral-200 p-4 dark:border-neutral-800"
      data-testid="onb-progress"
    >
      <ol className="flex flex-col gap-2 text-sm">
        {phasesFor(kind).map((p) => {
          const i = PHASES.indexOf(p);
          const state = i < current ? 'done' : i === current ? 'current' : 'pending';
          return (
            <li
              key={p}
              aria-current={state === 'current' ? 'step' : undefined}
              className={`flex items-center gap-3 ${state === 'pending' ? 'text-neutral-400 dark:text-neutral-600' : ''} ${state === 'current' ? 'font-medium' : ''}`}
            >
              <span className="flex h-5 w-5 items-center justify-center" aria-hidden={state !== 'current'}>
                {state === 'done' ? (
                  <span className="text-green-600 dark:text-green-400">✓</span>
                ) : state === 'current' ? (
                  <Spinner label="" className="h-4 w-4 text-accent-ink" />
                ) : (
                  <span className="h-1.5 w-1.5 rounded-full bg-current" />
                )}
              </span>
              <span>
                {phaseLabel(p, kind)}
                {state === 'done' ? <span className="sr-only"> (done)</span> : null}
                {state === 'current' ? '…' : ''}
              </span>
            </li>
          );
        })}
      </ol>
    </div>
  );
}
