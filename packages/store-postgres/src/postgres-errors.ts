import { type DriverErrorClass, NETWORK_ERROR_CODES } from '@ctx/core/adapter';

/**
 * SQLSTATE codes of a connection the server is closing or refusing: class 08 (connection
 * exception, matched by prefix) and the shutdown/startup codes. The connection is unusable.
 */
const CONNECTION_SQLSTATES: ReadonlySet<string> = new Set([
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
]);

/**
 * SQLSTATE codes that mean "busy, try again later" on a connection that is still healthy:
 * statement timeout, exhausted resources, lock timeouts and serialization failures.
 */
const BUSY_SQLSTATES: ReadonlySet<string> = new Set([
  '57014', // query_canceled (statement_timeout)
  '53000', // insufficient_resources
  '53100', // disk_full
  '53200', // out_of_memory
  '53300', // too_many_connections
  '55P03', // lock_not_available
  '40001', // serialization_failure
  '40P01', // deadlock_detected
]);

/** SQLSTATE codes that mean our tables are missing or older than this code. */
const SCHEMA_SQLSTATES: ReadonlySet<string> = new Set([
  '42P01', // undefined_table
  '3F000', // invalid_schema_name
  '42703', // undefined_column
]);

/** Messages of pg / pg-pool errors that carry no code but mean a lost or refused connection. */
const CONNECTION_LOST_MESSAGE =
  /connection terminated|connection ended unexpectedly|timeout exceeded when trying to connect|query read timeout|not queryable|server closed the connection|terminating connection|the database system is (starting up|shutting down)/i;

type Classification = 'connection' | 'busy' | 'schema' | 'other';

function codeOf(error: object): string | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** Walks the error, its TypeORM `driverError`, its `cause` and AggregateError members. */
function classify(error: unknown, depth = 0): Classification {
  if (typeof error !== 'object' || error === null || depth > 4) return 'other';
  const code = codeOf(error);
  if (code !== undefined) {
    if (NETWORK_ERROR_CODES.has(code) || code.startsWith('08') || CONNECTION_SQLSTATES.has(code)) {
      return 'connection';
    }
    if (BUSY_SQLSTATES.has(code)) return 'busy';
    if (SCHEMA_SQLSTATES.has(code)) return 'schema';
  }
  const message = (error as { message?: unknown }).message;
  if (typeof message === 'string' && CONNECTION_LOST_MESSAGE.test(message)) return 'connection';
  const nested: unknown[] = [
    (error as { driverError?: unknown }).driverError,
    (error as { cause?: unknown }).cause,
    ...(Array.isArray((error as { errors?: unknown }).errors)
      ? (error as { errors: unknown[] }).errors
      : []),
  ];
  for (const inner of nested) {
    const result = classify(inner, depth + 1);
    if (result !== 'other') return result;
  }
  return 'other';
}

/**
 * True when `error` means the connection it came from is lost or unusable (refused, reset,
 * terminated by the server, no reply in time): it must not go back into the pool.
 */
export function isBrokenConnectionError(error: unknown): boolean {
  return classify(error) === 'connection';
}

/** The SQLSTATE (or Node error code) of `error` or of the driver error it wraps. */
function sqlState(error: object): string | undefined {
  return codeOf(error) ?? codeOf((error as { driverError?: object }).driverError ?? {});
}

function describe(error: object): string {
  const code = sqlState(error);
  const message = (error as { message?: unknown }).message;
  const text =
    typeof message === 'string' && message !== ''
      ? message
      : Array.isArray((error as { errors?: unknown }).errors)
        ? (error as { errors: Array<{ message?: string }> }).errors
            .map((inner) => inner?.message)
            .filter(Boolean)
            .join('; ')
        : '';
  return code && !text.includes(code) ? `${code}: ${text}` : text || 'unknown error';
}

/**
 * The driver's `classifyError`: `STORAGE_UNAVAILABLE` for outages, timeouts and contention,
 * `SCHEMA_MISMATCH` for missing tables or columns, `STORAGE_ERROR` for anything else the server
 * refused (with its SQLSTATE in the message). `undefined` for what is not an error object.
 *
 * @param table - the qualified table name, quoted in messages.
 */
export function classifyPostgresError(error: unknown, table: string): DriverErrorClass | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const detail = describe(error);
  switch (classify(error)) {
    case 'connection':
      return {
        code: 'STORAGE_UNAVAILABLE',
        message: `PostgreSQL is unreachable or dropped the connection (${detail}). Check that the server is running and reachable; the call can be retried.`,
      };
    case 'busy':
      return {
        code: 'STORAGE_UNAVAILABLE',
        message: `PostgreSQL is busy or timed out (${detail}). The call can be retried; if this persists, look for long-running transactions holding locks, or raise the statement timeout.`,
      };
    case 'schema':
      return {
        code: 'SCHEMA_MISMATCH',
        message: `The ctx tables ${table} are missing or out of date (${detail}). Run \`await repository.migrate()\` once, or create the repository with \`migrate: true\`.`,
      };
    default:
      return { code: 'STORAGE_ERROR', message: detail };
  }
}
