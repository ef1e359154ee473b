import type { TokenUsage } from './extraction.js';

/** True for a token count: a non-negative safe integer. Strings such as `"12"` are not counts. */
export function isTokenCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Token usage from a provider's counts, or `undefined` when either is not a token count
 * ({@link isTokenCount}). Bad counts are ignored, never coerced: a server that sends `"12"` or
 * `-1` reports no usage rather than a guess, and totals are never concatenated as strings.
 */
export function toTokenUsage(inputTokens: unknown, outputTokens: unknown): TokenUsage | undefined {
  return isTokenCount(inputTokens) && isTokenCount(outputTokens)
    ? { inputTokens, outputTokens }
    : undefined;
}
