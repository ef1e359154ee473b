import { describe, expect, it } from 'vitest';
import { parseRetryAfterHeaders } from '../src/adapter/index.js';
import { ExtractionError, MAX_RETRY_AFTER_MS } from '../src/index.js';

const now = Date.parse('2026-11-29T12:00:00.000Z');
const headers = (entries: Record<string, string>) => new Headers(entries);

describe('parseRetryAfterHeaders', () => {
  it('reads seconds, milliseconds and HTTP dates', () => {
    expect(parseRetryAfterHeaders(headers({ 'retry-after': '7' }), now)).toBe(7000);
    expect(parseRetryAfterHeaders(headers({ 'retry-after': '0.5' }), now)).toBe(500);
    expect(parseRetryAfterHeaders(headers({ 'retry-after-ms': '250' }), now)).toBe(250);
    expect(
      parseRetryAfterHeaders(headers({ 'retry-after': 'Sun, 29 Nov 2026 12:00:30 GMT' }), now),
    ).toBe(30_000);
    expect(
      parseRetryAfterHeaders(headers({ 'retry-after': 'Sun, 29 Nov 2026 11:00:00 GMT' }), now),
    ).toBe(0);
  });

  it('clamps every form to MAX_RETRY_AFTER_MS (10 minutes)', () => {
    expect(MAX_RETRY_AFTER_MS).toBe(600_000);
    expect(
      parseRetryAfterHeaders(headers({ 'retry-after': '100000000000000000000000' }), now),
    ).toBe(MAX_RETRY_AFTER_MS);
    expect(parseRetryAfterHeaders(headers({ 'retry-after': '601' }), now)).toBe(MAX_RETRY_AFTER_MS);
    expect(parseRetryAfterHeaders(headers({ 'retry-after-ms': '9'.repeat(400) }), now)).toBe(
      MAX_RETRY_AFTER_MS,
    );
    expect(
      parseRetryAfterHeaders(headers({ 'retry-after': 'Fri, 31 Dec 9999 23:59:59 GMT' }), now),
    ).toBe(MAX_RETRY_AFTER_MS);
  });

  it('ignores values that are not a delay', () => {
    expect(parseRetryAfterHeaders(headers({ 'retry-after': '-5' }), now)).toBeUndefined();
    expect(parseRetryAfterHeaders(headers({ 'retry-after': '1e+23' }), now)).toBeUndefined();
    expect(parseRetryAfterHeaders(headers({ 'retry-after': 'soon' }), now)).toBeUndefined();
    expect(parseRetryAfterHeaders(headers({}), now)).toBeUndefined();
    expect(parseRetryAfterHeaders(undefined, now)).toBeUndefined();
  });
});

describe('ExtractionError.retryAfterMs', () => {
  it('is clamped to MAX_RETRY_AFTER_MS whoever built the error', () => {
    expect(new ExtractionError('rate_limit', '429', { retryAfterMs: 1e26 }).retryAfterMs).toBe(
      MAX_RETRY_AFTER_MS,
    );
    expect(new ExtractionError('rate_limit', '429', { retryAfterMs: 1500.2 }).retryAfterMs).toBe(
      1501,
    );
    expect(new ExtractionError('rate_limit', '429', { retryAfterMs: 0 }).retryAfterMs).toBe(0);
  });

  it('drops a hint that is not a finite, non-negative number', () => {
    for (const retryAfterMs of [Number.NaN, -1, Number.POSITIVE_INFINITY, '5000' as never]) {
      expect(
        new ExtractionError('rate_limit', '429', { retryAfterMs }).retryAfterMs,
      ).toBeUndefined();
    }
  });
});
