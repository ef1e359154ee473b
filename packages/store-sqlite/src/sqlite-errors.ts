import { ContextError, StorageError } from '@ctx/core';

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
 * Wraps anything a driver call threw (`action` completes "Could not …") in a {@link ContextError}: ctx errors pass through,
 * lock contention becomes `STORAGE_UNAVAILABLE` (retryable), everything else `STORAGE_ERROR`.
 * The original error is always the `cause`.
 */
export function toStorageError(error: unknown, action: string): ContextError {
  if (ContextError.isInstance(error)) return error;
  if (isSqliteBusy(error)) {
    const code = (error as SqliteErrorLike).code;
    return new StorageError(
      'STORAGE_UNAVAILABLE',
      `Could not ${action}: another SQLite connection held the lock for longer than the busy timeout (${code}). Retry later, or raise busyTimeoutMs`,
      { cause: error },
    );
  }
  if (isSqliteError(error)) {
    return new StorageError(
      'STORAGE_ERROR',
      `Could not ${action} (${error.code}: ${error.message}): ${hintFor(error.code)}`,
      { cause: error },
    );
  }
  if (isClosedHandle(error)) {
    return new StorageError(
      'STORAGE_ERROR',
      `Could not ${action}: the better-sqlite3 Database given to createSqliteRepository was closed by its owner. Create a new repository on an open Database`,
      { cause: error },
    );
  }
  const detail = error instanceof Error ? error.message : String(error);
  return new StorageError('STORAGE_ERROR', `Could not ${action} (SQLite): ${detail}`, {
    cause: error,
  });
}
