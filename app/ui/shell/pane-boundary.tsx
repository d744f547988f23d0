'use client';
import { Component, type ErrorInfo, type ReactNode } from 'react';
import { Button } from '../common/button';
import { describeError } from '../errors';

interface State {
  error: unknown;
  failed: boolean;
}

/**
 * Keeps one screen's failure on that screen: the rest of the app (navigation, the other pane) stays usable, and
 * the screen can be tried again. Key it by route so moving elsewhere starts clean.
 */
export class PaneBoundary extends Component<{ children: ReactNode }, State> {
  override state: State = { error: undefined, failed: false };

  static getDerivedStateFromError(error: unknown): State {
    return { error, failed: true };
  }

  override componentDidCatch(error: unknown, info: ErrorInfo): void {
    console.error('a screen failed', error, info.componentStack);
  }

  override render() {
    if (!this.state.failed) return this.props.children;
    const d = describeError(this.state.error);
    return (
      <div role="alert" className="flex h-full flex-col items-center justify-center gap-3 p-8 text-center text-sm">
        <p className="font-semibold">This screen ran into a problem</p>
        <p className="max-w-sm text-neutral-600 dark:text-neutral-400">{d.title}. {d.detail}</p>
        <Button variant="secondary" onClick={() => this.setState({ error: undefined, failed: false })}>
          Try again
        </Button>
      </div>
    );
  }
}
