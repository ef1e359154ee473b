import { ContextError, StorageError } from '@ctx/core';
import type { DriverErrorClass } from '@ctx/core/adapter';

interface SqliteErrorLike extends Error {
  code: string;
}

/** True for a better-sqlite3 `SqliteError` (duck-typed, so duplicate installs are recognised). */
export function isSqliteError(error: unknown): error is SqliteErrorLike {
  if (!(error instanceof Error)) return false;
  const code: unknown = (error as Error & { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('SQLITE_');
}

/** Lock contention: another connection holds a lock longer than the busy timeout. Retryable. */
export function isSqliteBusy(error: unknown): boolean {
  if (!isSqliteError(error)) return false;
  return (
    error.code.startsWith('SQLITE_BUSY') ||
    error.code.startsWith('SQLITE_LOCKED') ||
    error.code === 'SQLITE_PROTOCOL'
  );
}

function isClosedHandle(error: unknown): boolean {
  return error instanceof TypeError && /database connection is not open/i.test(error.message);
}

function hintFor(code: string): string {
  if (code.startsWith('SQLITE_READONLY')) {
    return 'the database file or its folder is read-only: check permissions';
  }
  if (code === 'SQLITE_FULL') return 'the disk is full: free some space';
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return 'the database file is damaged: restore it from a backup';
  }
  if (code.startsWith('SQLITE_CANTOPEN')) {
    return 'the file cannot be opened: check the path and its permissions';
  }
  if (code.startsWith('SQLITE_IOERR')) return 'the operating system reported an I/O error';
  return 'see the cause for the driver error';
}

/**
 * Classifies what better-sqlite3 threw, for `createDriverRepository` (which prefixes "Could not
 * <action> (SQLite): "): lock contention is `STORAGE_UNAVAILABLE` (retryable), other SQLite errors
 * and a `Database` closed under the repository are `STORAGE_ERROR`; anything else is left to the
 * helper (`undefined`).
 */
export function classifyError(error: unknown): DriverErrorClass | undefined {
  if (isSqliteBusy(error)) {
    return {
      code: 'STORAGE_UNAVAILABLE',
      message: `another SQLite connection held the lock for longer than the busy timeout (${(error as SqliteErrorLike).code}). Retry later, or raise busyTimeoutMs`,
    };
  }
  if (isSqliteError(error)) {
    return {
      code: 'STORAGE_ERROR',
      message: `${error.code}: ${error.message}: ${hintFor(error.code)}`,
    };
  }
  if (isClosedHandle(error)) {
    return {
      code: 'STORAGE_ERROR',
      message:
        'the better-sqlite3 Database given to createSqliteRepository was closed by its owner. Create a new repository on an open Database',
    };
  }
  return undefined;
}

/**
 * The same classification for what fails while the factory opens and migrates the database,
 * before there is a repository to wrap it: ctx errors pass through, the rest becomes a
 * `StorageError` whose `cause` is the original error.
 */
export function toStorageError(error: unknown, action: string): ContextError {
  if (ContextError.isInstance(error)) return error;
  const known = classifyError(error);
  const detail = known?.message ?? (error instanceof Error ? error.message : String(error));
  return new StorageError(
    known?.code ?? 'STORAGE_ERROR',
    `Could not ${action} (SQLite): ${detail}`,
    {
      cause: error,
    },
  );
}
