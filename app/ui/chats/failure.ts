// A failed action in one line for the screen that tried it (the codes are explained in app/ui/errors.ts).
import { describeError } from '../errors';

export function describeFailure(e: unknown): string {
  const { title, detail } = describeError(e);
  return `${title}. ${detail}`;
}
