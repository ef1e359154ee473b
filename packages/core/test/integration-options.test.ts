import { describe, expect, it } from 'vitest';
import { assertIntegrationOptions } from '../src/adapter/index.js';
import { createMemoryRepository, MIN_RENDER_CHARS, SessionContextStore } from '../src/index.js';
import { createScriptedExtractor } from '../src/testing/index.js';

const store = new SessionContextStore({
  repository: createMemoryRepository(),
  extractor: createScriptedExtractor(),
});

/** Matches the one `INVALID_CONFIG` error listing these problems, in this order. */
const invalidConfig = (paths: string[], message?: string) =>
  expect.objectContaining({
    name: 'ValidationError',
    code: 'INVALID_CONFIG',
    issues: paths.map((path) => expect.objectContaining({ path })),
    ...(message === undefined ? {} : { message }),
  });

describe('assertIntegrationOptions', () => {
  it('accepts a store with or without the optional limits', () => {
    expect(() => assertIntegrationOptions('test', { store })).not.toThrow();
    expect(() =>
      assertIntegrationOptions('test', {
        store,
        maxChars: MIN_RENDER_CHARS,
        maxToolResultChars: 1,
      }),
    ).not.toThrow();
  });

  it('lists every problem in one INVALID_CONFIG error, the caller’s own first', () => {
    expect(() =>
      assertIntegrationOptions(
        'context session',
        { store: {}, maxChars: MIN_RENDER_CHARS - 1, maxToolResultChars: 0 },
        [{ path: 'sessionId', message: 'is required' }],
      ),
    ).toThrow(
      invalidConfig(
        ['sessionId', 'store', 'maxChars', 'maxToolResultChars'],
        `Invalid context session options: sessionId is required; store must be a SessionContextStore; maxChars must be an integer of at least ${MIN_RENDER_CHARS}; maxToolResultChars must be a positive integer`,
      ),
    );
  });

  it('refuses missing options and limits that are not integers', () => {
    expect(() => assertIntegrationOptions('test', undefined)).toThrow(
      invalidConfig(['store'], 'Invalid test options: store must be a SessionContextStore'),
    );
    expect(() =>
      assertIntegrationOptions('test', { store, maxChars: 100.5, maxToolResultChars: '10' }),
    ).toThrow(invalidConfig(['maxChars', 'maxToolResultChars']));
  });
});
