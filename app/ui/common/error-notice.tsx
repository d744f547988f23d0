import { describeError, type ErrorContext } from '../errors';
import { Button } from './button';

export interface ErrorNoticeProps {
  /** The failure to explain; nothing is shown while undefined. */
  error: unknown;
  context?: ErrorContext;
  /** Shown as a Retry button when the error says trying again can help. */
  onRetry?: () => void;
  /** Offer Retry whatever the error: for forms, where it means "again, with what the fields hold now". */
  alwaysRetry?: boolean;
  testId?: string;
  retryTestId?: string;
}

/**
 * A failure in words, inside a live region that is always in the page, so screen readers announce the error the
 * moment it appears.
 */
export function ErrorNotice({ error, context, onRetry, alwaysRetry = false, testId, retryTestId }: ErrorNoticeProps) {
  const d = error !== undefined ? describeError(error, context) : undefined;
  return (
    // `contents`: the empty region takes no room in flex and grid layouts, yet stays in the accessibility tree.
    <div aria-live="assertive" aria-atomic="true" className="contents">
      {d ? (
        <div
          role="alert"
          data-testid={testId}
          className="flex flex-col gap-2 rounded-xl border border-red-200 bg-red-50 p-4 text-sm text-red-900 dark:border-red-900/60 dark:bg-red-950/40 dark:text-red-100"
        >
          <p className="font-semibold">{d.title}</p>
          <p>{d.detail}</p>
          {(d.retry || alwaysRetry) && onRetry ? (
            <div>
              <Button variant="secondary" onClick={onRetry} data-testid={retryTestId}>
                Try again
              </Button>
            </div>
          ) : null}
        </div>
      ) : null}
    </div>
  );
}
