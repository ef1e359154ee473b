import { ValidationError } from '../errors.js';
import { LIMITS } from '../schema.js';

/**
 * Options every repository adapter accepts, with the same names and defaults everywhere. Adapter
 * option types extend it and add their own (a client, a URL, a table name).
 */
export interface RepositoryOptions {
  /**
   * Sessions expire this many milliseconds after their last write: expired sessions are invisible
   * to `get`, `list`, `delete` and `history`, and `purgeExpired()` reclaims them. Enables the `ttl`
   * capability.
   * @default undefined (sessions never expire)
   */
  ttlMs?: number;
  /**
   * Keep the last N versions of every session (the current one included), readable through
   * `history()`. Enables the `history` capability. Give every repository writing to the same data
   * the same value.
   * @default 0 (no history)
   */
  historyLimit?: number;
  /**
   * How long the id of a deleted or expired session keeps its last version (a small tombstone),
   * in milliseconds. While it lasts, a writer that read the old session can never write into a new
   * session created under the same id. `purgeExpired()` forgets older tombstones; keep this far
   * above the longest time between a read and its write (the store's extraction timeout).
   * @default 604800000 (7 days)
   */
  tombstoneRetentionMs?: number;
  /**
   * Turn log: the most pending (recorded, not yet folded) turns a session may hold; recording
   * more fails with `BACKPRESSURE` until a fold makes room.
   * @default 1000
   */
  maxPendingTurns?: number;
  /**
   * Create or upgrade the schema when the repository starts. With `false` it only checks that the
   * schema is at the version this code expects and fails with `SCHEMA_MISMATCH` otherwise (for
   * deployments that migrate in a separate step, e.g. `ctx migrate`).
   * @default true
   */
  migrate?: boolean;
  /**
   * The repository's clock, in epoch milliseconds: expiry, tombstone age, and the times of the
   * turn log (when a turn was recorded or folded, when a lease expires). Keep instances' clocks
   * in sync.
   * @default Date.now
   */
  now?: () => number;
}

/** {@link RepositoryOptions} checked and completed with defaults, plus the backend's name. */
export interface RepositorySettings {
  /** The backend's name for messages, e.g. `'SQLite'`. */
  readonly backend: string;
  readonly ttlMs: number | undefined;
  readonly historyLimit: number;
  readonly tombstoneRetentionMs: number;
  readonly maxPendingTurns: number;
  readonly migrate: boolean;
  readonly now: () => number;
}

/** The default of {@link RepositoryOptions.tombstoneRetentionMs}: 7 days. */
export const DEFAULT_TOMBSTONE_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

/** The default of {@link RepositoryOptions.maxPendingTurns}. */
export const DEFAULT_MAX_PENDING_TURNS = 1000;

/** The session table's name in every SQL adapter unless `tableName` says otherwise. */
export const DEFAULT_TABLE_NAME = 'ctx_sessions';

const SQL_IDENTIFIER = /^[a-z_][a-z0-9_]{0,47}$/;

/** An `INVALID_CONFIG` error naming the adapter and the option. */
export function invalidOption(backend: string, path: string, message: string): ValidationError {
  return new ValidationError(
    'INVALID_CONFIG',
    `Invalid ${backend} repository option ${path}: ${message}`,
    { issues: [{ path, message }] },
  );
}

/**
 * Checks the options every adapter shares and applies their defaults; throws `INVALID_CONFIG`
 * naming the first bad option. Adapters call it first, before opening anything.
 */
export function resolveRepositorySettings(
  backend: string,
  options: RepositoryOptions | undefined,
): RepositorySettings {
  if (typeof options !== 'object' || options === null) {
    throw invalidOption(backend, '(root)', 'expected an options object');
  }
  const {
    ttlMs,
    historyLimit = 0,
    tombstoneRetentionMs = DEFAULT_TOMBSTONE_RETENTION_MS,
    maxPendingTurns = DEFAULT_MAX_PENDING_TURNS,
    migrate = true,
    now = Date.now,
  } = options;
  if (ttlMs !== undefined && !(Number.isSafeInteger(ttlMs) && ttlMs > 0)) {
    throw invalidOption(backend, 'ttlMs', 'expected a positive integer (milliseconds)');
  }
  if (
    !(
      Number.isInteger(historyLimit) &&
      historyLimit >= 0 &&
      historyLimit <= LIMITS.historyMaxVersions
    )
  ) {
    throw invalidOption(
      backend,
      'historyLimit',
      `expected an integer from 0 to ${LIMITS.historyMaxVersions}`,
    );
  }
  if (!(Number.isSafeInteger(tombstoneRetentionMs) && tombstoneRetentionMs >= 0)) {
    throw invalidOption(
      backend,
      'tombstoneRetentionMs',
      'expected a non-negative integer (milliseconds)',
    );
  }
  if (!(Number.isSafeInteger(maxPendingTurns) && maxPendingTurns >= 1)) {
    throw invalidOption(backend, 'maxPendingTurns', 'expected a positive integer');
  }
  if (typeof migrate !== 'boolean') throw invalidOption(backend, 'migrate', 'expected a boolean');
  if (typeof now !== 'function') throw invalidOption(backend, 'now', 'expected a function');
  return { backend, ttlMs, historyLimit, tombstoneRetentionMs, maxPendingTurns, migrate, now };
}

/**
 * Checks a table name for SQL adapters: 1–48 lower-case letters, digits or underscores, starting
 * with a letter or underscore, so it can be quoted without escaping. An adapter whose derived
 * names (`<name>_history`, indexes) need a lower cap checks that on top. Throws `INVALID_CONFIG`.
 */
export function assertValidTableName(
  backend: string,
  tableName: unknown,
  path = 'tableName',
): asserts tableName is string {
  if (typeof tableName !== 'string' || !SQL_IDENTIFIER.test(tableName)) {
    throw invalidOption(
      backend,
      path,
      `${JSON.stringify(tableName)} is not a valid name: use 1–48 lower-case letters, digits or underscores, starting with a letter or underscore`,
    );
  }
}
