import { describe, expect, it, vi } from 'vitest';
import {
  ContextError,
  ExtractionError,
  isRetryableError,
  OwnershipError,
  StorageError,
  ValidationError,
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

describe('each error subclass recognises only its own instances', () => {
  const samples = {
    ValidationError: () => new ValidationError('INVALID_INPUT', 'bad id'),
    VersionConflictError: () =>
      new VersionConflictError({ sessionId: 's', expectedVersion: 1, currentVersion: 2 }),
    ExtractionError: () => new ExtractionError('rate_limit', '429'),
    StorageError: () => new StorageError('STORAGE_ERROR', 'refused'),
    OwnershipError: () => new OwnershipError('s'),
  } as const;
  const classes = {
    ValidationError,
    VersionConflictError,
    ExtractionError,
    StorageError,
    OwnershipError,
  } as const;
  const names = Object.keys(samples) as (keyof typeof samples)[];

  for (const checker of names) {
    for (const made of names) {
      it(`${checker}.isInstance(new ${made}(…)) is ${checker === made}`, () => {
        expect(classes[checker].isInstance(samples[made]())).toBe(checker === made);
      });
    }
    it(`${checker}.isInstance is false for a plain ContextError with the same code`, () => {
      const sample = samples[checker]();
      expect(classes[checker].isInstance(new ContextError(sample.code, 'plain'))).toBe(false);
      expect(ContextError.isInstance(sample)).toBe(true);
    });
  }

  it('recognises every subclass made by a duplicate copy of the package', async () => {
    vi.resetModules();
    const copyPath: string = '../src/errors.js?copy-subclasses';
    const copy = (await import(copyPath)) as typeof import('../src/errors.js');
    expect(StorageError.isInstance(new copy.StorageError('CLOSED', 'closed'))).toBe(true);
    expect(StorageError.isInstance(new copy.ValidationError('INVALID_INPUT', 'x'))).toBe(false);
    expect(ValidationError.isInstance(new copy.ValidationError('INVALID_CONFIG', 'x'))).toBe(true);
    expect(OwnershipError.isInstance(new copy.OwnershipError('s'))).toBe(true);
    expect(OwnershipError.isInstance(new copy.StorageError('STORAGE_ERROR', 'x'))).toBe(false);
  });
});
