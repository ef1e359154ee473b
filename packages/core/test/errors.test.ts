import { describe, expect, it, vi } from 'vitest';
import {
  ContextError,
  ExtractionError,
  isRetryableError,
  StorageError,
  VersionConflictError,
} from '../src/index.js';

describe('ContextError', () => {
  it('carries a code, a message and the cause', () => {
    const cause = new Error('ECONNREFUSED');
    const error = new StorageError('STORAGE_UNAVAILABLE', 'PostgreSQL is unreachable', { cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe('STORAGE_UNAVAILABLE');
    expect(error.cause).toBe(cause);
    expect(error.name).toBe('StorageError');
    expect(ContextError.isInstance(error)).toBe(true);
    expect(ContextError.isInstance(cause)).toBe(false);
    expect(ContextError.isInstance({ code: 'VERSION_CONFLICT' })).toBe(false);
    expect(ContextError.isInstance(null)).toBe(false);
  });

  it('is recognised across duplicate copies of the package', async () => {
    vi.resetModules();
    const copyPath: string = '../src/errors.js?copy';
    const copy = (await import(copyPath)) as typeof import('../src/errors.js');
    expect(copy.ContextError).not.toBe(ContextError);
    const foreign = new copy.VersionConflictError({
      sessionId: 's',
      expectedVersion: 1,
      currentVersion: 2,
    });
    expect(foreign instanceof ContextError).toBe(false);
    expect(ContextError.isInstance(foreign)).toBe(true);
    expect(VersionConflictError.isInstance(foreign)).toBe(true);
    expect(ExtractionError.isInstance(foreign)).toBe(false);
  });

  it('version conflicts carry the current version', () => {
    const error = new VersionConflictError({
      sessionId: 's',
      expectedVersion: null,
      currentVersion: 4,
    });
    expect(error.code).toBe('VERSION_CONFLICT');
    expect(error.currentVersion).toBe(4);
    expect(error.message).toContain('version 4');
  });

  it('knows which failures are worth retrying', () => {
    expect(isRetryableError(new ExtractionError('rate_limit', '429', { retryAfterMs: 10 }))).toBe(
      true,
    );
    expect(isRetryableError(new ExtractionError('authentication', '401'))).toBe(false);
    expect(isRetryableError(new ExtractionError('refusal', 'no'))).toBe(false);
    expect(isRetryableError(new StorageError('STORAGE_UNAVAILABLE', 'down'))).toBe(true);
    expect(isRetryableError(new StorageError('STORAGE_ERROR', 'bad'))).toBe(false);
    expect(isRetryableError(new Error('x'))).toBe(false);
  });
});
