import { MIN_RENDER_CHARS, ValidationError, type ValidationIssue } from '@ctx/core';

/** The options every factory of this package shares; anything else is checked by the caller. */
interface SharedOptions {
  store?: unknown;
  maxChars?: unknown;
  maxToolResultChars?: unknown;
}

const isPositiveInteger = (value: unknown, minimum: number) =>
  typeof value === 'number' && Number.isInteger(value) && value >= minimum;

/**
 * Refuses invalid options when the integration is built (`INVALID_CONFIG`, listing every
 * problem), instead of on the first model call.
 */
export function assertValidOptions(
  what: string,
  options: SharedOptions | undefined,
  issues: ValidationIssue[] = [],
): void {
  const found = [...issues];
  const store = options?.store as { render?: unknown; schedule?: unknown } | undefined;
  if (typeof store?.render !== 'function' || typeof store.schedule !== 'function') {
    found.push({ path: 'store', message: 'must be a SessionContextStore' });
  }
  if (options?.maxChars !== undefined && !isPositiveInteger(options.maxChars, MIN_RENDER_CHARS)) {
    found.push({ path: 'maxChars', message: `must be an integer of at least ${MIN_RENDER_CHARS}` });
  }
  if (
    options?.maxToolResultChars !== undefined &&
    !isPositiveInteger(options.maxToolResultChars, 1)
  ) {
    found.push({ path: 'maxToolResultChars', message: 'must be a positive integer' });
  }
  if (found.length > 0) {
    throw new ValidationError(
      'INVALID_CONFIG',
      `Invalid ${what} options: ${found.map((issue) => `${issue.path} ${issue.message}`).join('; ')}`,
      { issues: found },
    );
  }
}
