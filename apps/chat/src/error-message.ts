import { toSingleLine } from '@ctx/core/adapter';

/** An error's message on one line, for the terminal. */
export function messageOf(error: unknown): string {
  return toSingleLine(error instanceof Error ? error.message : String(error));
}
