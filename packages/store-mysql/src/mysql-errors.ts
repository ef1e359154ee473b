import type { DriverErrorClass } from '@ctx/core/adapter';
import { NETWORK_ERROR_CODES } from '@ctx/core/adapter';

/** Server error numbers that mean "busy, try again": the connection itself is still usable. */
const BUSY_ERRNOS: ReadonlySet<number> = new Set([
  1040, // ER_CON_COUNT_ERROR: too many connections
  1205, // ER_LOCK_WAIT_TIMEOUT
  1213, // ER_LOCK_DEADLOCK
  1317, // ER_QUERY_INTERRUPTED
  1969, // ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
  3024, // ER_QUERY_TIMEOUT (MySQL max_execution_time)
]);

/** Server error numbers of a connection the server is closing. */
const CONNECTION_ERRNOS: ReadonlySet<number> = new Set([
  1053, // ER_SERVER_SHUTDOWN
  1927, // ER_CONNECTION_KILLED (MariaDB)
  4031, // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8)
]);

/** Server error numbers that mean our tables are missing or not what this code expects. */
const SCHEMA_ERRNOS: ReadonlySet<number> = new Set([
  1146, // ER_NO_SUCH_TABLE
  1054, // ER_BAD_FIELD_ERROR
]);

/** mysql2's own codes for a lost or unusable connection. */
const CLIENT_CONNECTION_CODES: ReadonlySet<string> = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
]);

interface MysqlErrorLike {
  code?: unknown;
  errno?: unknown;
  fatal?: unknown;
  message?: unknown;
  cause?: unknown;
  errors?: unknown;
}

type Kind = 'connection' | 'busy' | 'schema' | 'server' | 'other';

/** Looks at the error, its `cause` and AggregateError members (Node's multi-address connect). */
function kindOf(error: unknown, depth = 0): Kind {
  if (typeof error !== 'object' || error === null || depth > 3) return 'other';
  const { code, errno, fatal, cause, errors } = error as MysqlErrorLike;
  if (
    typeof code === 'string' &&
    (NETWORK_ERROR_CODES.has(code) || CLIENT_CONNECTION_CODES.has(code))
  ) {
    return 'connection';
  }
  if (typeof errno === 'number') {
    if (CONNECTION_ERRNOS.has(errno)) return 'connection';
    if (BUSY_ERRNOS.has(errno)) return 'busy';
    if (SCHEMA_ERRNOS.has(errno)) return 'schema';
  }
  if (fatal === true) return 'connection';
  for (const inner of [cause, ...(Array.isArray(errors) ? errors : [])]) {
    const kind = kindOf(inner, depth + 1);
    if (kind !== 'other') return kind;
  }
  return typeof errno === 'number' && typeof code === 'string' && code.startsWith('ER_')
    ? 'server'
    : 'other';
}

function describe(error: unknown): string {
  const { code, message, errors } = error as MysqlErrorLike;
  let text = typeof message === 'string' ? message : '';
  if (text === '' && Array.isArray(errors)) {
    text = errors.map((inner) => (inner as MysqlErrorLike)?.message).join('; ');
  }
  return typeof code === 'string' && !text.includes(code) ? `${code}: ${text}` : text;
}

/**
 * True for what one retry of the whole transaction resolves: a deadlock, or the duplicate key of
 * a create that raced another create of the same id (the retry then sees that session).
 */
export function isRetryableConflict(error: unknown): boolean {
  const errno = (error as MysqlErrorLike | null)?.errno;
  return errno === 1213 || errno === 1062;
}

/**
 * Classifies what mysql2 threw, for `createDriverRepository` (which prefixes "Could not <action>
 * (MySQL): "): refused, lost or timed-out connections and lock waits are `STORAGE_UNAVAILABLE`
 * (worth retrying), missing tables or columns are `SCHEMA_MISMATCH`, other server errors are
 * `STORAGE_ERROR`; anything else is left to the helper (`undefined`).
 */
export function classifyError(error: unknown): DriverErrorClass | undefined {
  const detail = describe(error);
  switch (kindOf(error)) {
    case 'connection':
      return {
        code: 'STORAGE_UNAVAILABLE',
        message: `the server is unreachable or dropped the connection (${detail}). Check that MySQL/MariaDB is running and reachable; the call can be retried`,
      };
    case 'busy':
      return {
        code: 'STORAGE_UNAVAILABLE',
        message: `the server is busy or timed out (${detail}). The call can be retried; if this persists, look for long transactions holding locks on the ctx tables`,
      };
    case 'schema':
      return {
        code: 'SCHEMA_MISMATCH',
        message: `the ctx tables are missing or out of date (${detail}). Run \`await repository.migrate()\` (or \`ctx migrate\`), or create the repository with migrate: true`,
      };
    case 'server':
      return { code: 'STORAGE_ERROR', message: detail };
    default:
      return undefined;
  }
}
