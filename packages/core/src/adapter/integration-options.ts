import { ValidationError, type ValidationIssue } from '../errors.js';
import { MIN_RENDER_CHARS } from '../render.js';

/**
 * The options framework integrations (LangChain, the OpenAI Agents SDK, …) share, as they arrive
 * from the caller: unchecked, so that JavaScript callers and casts are caught too.
 */
export interface IntegrationOptions {
  /** Must be a `SessionContextStore` (anything with `render` and `schedule` methods). */
  store?: unknown;
  /** Optional; an integer of at least `MIN_RENDER_CHARS`. */
  maxChars?: unknown;
  /** Optional; a positive integer. */
  maxToolResultChars?: unknown;
}

const isIntegerAtLeast = (value: unknown, minimum: number) =>
  typeof value === 'number' && Number.isInteger(value) && value >= minimum;

/**
 * Checks the options a framework integration shares when it is built, rather than at the first
 * model call: `store` must be a `SessionContextStore`, `maxChars` (when given) an integer of at
 * least `MIN_RENDER_CHARS`, `maxToolResultChars` (when given) a positive integer. Pass the
 * integration's own problems as `issues`; they come first. Throws one `ValidationError`
 * (`INVALID_CONFIG`) listing every problem, its message starting with `Invalid <what> options:`.
 *
 * @example
 * ```ts
 * assertIntegrationOptions('context session', options,
 *   options.sessionId === undefined ? [{ path: 'sessionId', message: 'is required' }] : []);
 * ```
 */
export function assertIntegrationOptions(
  what: string,
  options: IntegrationOptions | undefined,
  issues: readonly ValidationIssue[] = [],
): void {
  const found = [...issues];
  const store = options?.store as { render?: unknown; schedule?: unknown } | undefined;
  if (typeof store?.render !== 'function' || typeof store.schedule !== 'function') {
    found.push({ path: 'store', message: 'must be a SessionContextStore' });
  }
  if (options?.maxChars !== undefined && !isIntegerAtLeast(options.maxChars, MIN_RENDER_CHARS)) {
    found.push({ path: 'maxChars', message: `must be an integer of at least ${MIN_RENDER_CHARS}` });
  }
  if (
    options?.maxToolResultChars !== undefined &&
    !isIntegerAtLeast(options.maxToolResultChars, 1)
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
