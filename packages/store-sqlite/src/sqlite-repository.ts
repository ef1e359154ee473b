import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { StorageError, type TurnLog } from '@ctx/core';
import {
  createDriverRepository,
  type DriverRepository,
  invalidOption,
  type RepositoryOptions,
  resolveRepositorySettings,
} from '@ctx/core/adapter';
import Sqlite, { type Database } from 'better-sqlite3';
import { createSqliteDriver } from './sqlite-driver.js';
import { toStorageError } from './sqlite-errors.js';
import {
  assertValidTableName,
  DEFAULT_SQLITE_TABLE_NAME,
  inspectSchema,
  migrateSchema,
  objectNamesFor,
  SQLITE_SCHEMA_VERSION,
} from './sqlite-schema.js';

/**
 * Options shared by both ways of creating a {@link createSqliteRepository | SQLite repository}:
 * the options of every ctx repository (`ttlMs`, `historyLimit`, `tombstoneRetentionMs`,
 * `maxPendingTurns`, `migrate`, `now`) plus SQLite's own.
 */
export interface SqliteRepositoryCommonOptions extends RepositoryOptions {
  /**
   * Name of the session table. Its history, turn and lease tables are `<tableName>_history`,
   * `<tableName>_turns` and `<tableName>_leases`. Lower-case letters, digits and underscores,
   * starting with a letter or underscore, at most 48 characters, not `sqlite_…` or `ctx_meta`.
   * Several repositories with different names can share one database.
   * @default 'ctx_sessions'
   */
  tableName?: string;
  /**
   * How long a statement waits for another connection's lock before failing with
   * `STORAGE_UNAVAILABLE`, in milliseconds. Applied to a database opened from `filename`; on an
   * injected `database` it is applied only when given (otherwise the handle keeps its own setting,
   * 5000 ms in better-sqlite3).
   * @default 5000
   */
  busyTimeoutMs?: number;
  /**
   * Switch a database opened from `filename` to write-ahead logging (readers never wait for a
   * writer). Turn it off for files on network filesystems, where WAL does not work. An injected
   * `database` keeps its own journal mode.
   * @default true
   */
  wal?: boolean;
}

/** Open (and own) a database file. */
export interface SqliteRepositoryFileOptions extends SqliteRepositoryCommonOptions {
  /**
   * Path of the database file, created with its folder when missing; `':memory:'` for a private
   * in-memory database. The repository owns this connection and closes it in `close()`.
   * @example './data/ctx.db'
   */
  filename: string;
  database?: never;
}

/** Use a better-sqlite3 `Database` you opened; the repository never closes it. */
export interface SqliteRepositoryDatabaseOptions extends SqliteRepositoryCommonOptions {
  /** An open better-sqlite3 `Database`. Its owner closes it (after closing the repository). */
  database: Database;
  filename?: never;
}

/** Options of {@link createSqliteRepository}: a `filename` or a `database`, plus common options. */
export type SqliteRepositoryOptions = SqliteRepositoryFileOptions | SqliteRepositoryDatabaseOptions;

/**
 * A `ContextRepository` stored in SQLite. Its turn log is always on (`capabilities.turnLog`), so
 * the {@link TurnLog} members are always present.
 */
export interface SqliteRepository extends Omit<DriverRepository, keyof TurnLog>, TurnLog {
  /** The session table this repository reads and writes. */
  readonly tableName: string;
}

const DEFAULT_BUSY_TIMEOUT_MS = 5000;
const MAX_TIMEOUT_MS = 2_147_483_647;

interface OpenedDatabase {
  database: Database;
  owned: boolean;
  location: string;
  inMemory: boolean;
}

function openDatabase(options: SqliteRepositoryOptions): OpenedDatabase {
  const { busyTimeoutMs } = options;
  if (options.database !== undefined) {
    const database = options.database;
    if (typeof database?.prepare !== 'function' || typeof database.transaction !== 'function') {
      throw invalidOption('SQLite', 'database', 'expected a better-sqlite3 Database');
    }
    if (!database.open) {
      throw invalidOption('SQLite', 'database', 'the Database is closed: pass an open one');
    }
    const location = `SQLite database "${database.name}"`;
    if (busyTimeoutMs !== undefined) {
      try {
        database.pragma(`busy_timeout = ${busyTimeoutMs}`);
      } catch (error) {
        throw toStorageError(error, `set the busy timeout of ${location}`);
      }
    }
    return { database, owned: false, location, inMemory: database.memory };
  }
  const filename = options.filename;
  if (typeof filename !== 'string' || filename.trim() === '') {
    throw invalidOption(
      'SQLite',
      'filename',
      'expected a file path, or ":memory:" for an in-memory database',
    );
  }
  const inMemory = filename.trim() === ':memory:';
  const location = `SQLite database "${filename}"`;
  if (!inMemory && !filename.startsWith('file:')) {
    try {
      mkdirSync(dirname(resolve(filename)), { recursive: true });
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      throw new StorageError(
        'STORAGE_ERROR',
        `Cannot create the folder of ${location}: ${detail}. Check the path and its permissions`,
        { cause: error },
      );
    }
  }
  try {
    const database = new Sqlite(filename, { timeout: busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS });
    return { database, owned: true, location, inMemory };
  } catch (error) {
    throw toStorageError(error, `open ${location}`);
  }
}

/**
 * A `ContextRepository` on SQLite through better-sqlite3: the embedded default. One row per
 * session; every write is one `BEGIN IMMEDIATE` transaction, so it is safe for several connections
 * and processes on one file. Optional TTL (`ttlMs`) and snapshot history (`historyLimit`).
 *
 * The turn log is always on: `recordTurn` appends a turn to `<tableName>_turns` (idempotent by turn
 * id, bounded by `maxPendingTurns`), a `save` with `foldedTurnIds` marks them folded in its own
 * transaction, and `acquireLease` keeps one folder per session through `<tableName>_leases`.
 *
 * A deleted or expired session leaves a tombstone row with its last version (no content), so a
 * session re-created under the same id continues its versions and a writer that read the old one
 * can never overwrite the new one. `purgeExpired()` turns expired sessions into tombstones and
 * removes tombstones older than `tombstoneRetentionMs`.
 *
 * The factory is synchronous: it opens the file, creates or upgrades the schema (versioned
 * migrations, safe when several processes open a new file at once) and prepares its statements
 * before it returns. A file that is not SQLite, a table name taken by something ctx did not
 * create, or a schema newer than this code throws `SCHEMA_MISMATCH` and leaves the file untouched.
 *
 * @example
 * ```ts
 * import { SessionContextStore } from '@ctx/core';
 * import { createSqliteRepository } from '@ctx/store-sqlite';
 *
 * const repository = createSqliteRepository({ filename: './data/ctx.db', ttlMs: 7 * 24 * 3600_000 });
 * const store = new SessionContextStore({ repository, extractor });
 * // on shutdown
 * await repository.close();
 * ```
 *
 * @example
 * ```ts
 * // Share your application's database; the repository never closes it.
 * const database = new Database('./app.db');
 * const repository = createSqliteRepository({ database, historyLimit: 10 });
 * ```
 */
export function createSqliteRepository(options: SqliteRepositoryOptions): SqliteRepository {
  const settings = resolveRepositorySettings('SQLite', options);
  if ((options.filename !== undefined) === (options.database !== undefined)) {
    throw invalidOption(
      'SQLite',
      options.filename !== undefined ? 'filename' : '(root)',
      'pass exactly one of filename (a path or ":memory:") and database (a better-sqlite3 Database)',
    );
  }
  const tableName = options.tableName ?? DEFAULT_SQLITE_TABLE_NAME;
  assertValidTableName(tableName);
  const { busyTimeoutMs, wal = true } = options;
  if (
    busyTimeoutMs !== undefined &&
    !(Number.isInteger(busyTimeoutMs) && busyTimeoutMs >= 0 && busyTimeoutMs <= MAX_TIMEOUT_MS)
  ) {
    throw invalidOption(
      'SQLite',
      'busyTimeoutMs',
      `expected an integer from 0 to ${MAX_TIMEOUT_MS}`,
    );
  }
  if (typeof wal !== 'boolean') throw invalidOption('SQLite', 'wal', 'expected a boolean');

  const names = objectNamesFor(tableName);
  const { database, owned, location, inMemory } = openDatabase(options);
  try {
    // Everything that could refuse the file runs before the first write to it.
    const { version } = inspectSchema(database, names, location);
    if (version < SQLITE_SCHEMA_VERSION && !settings.migrate) {
      throw new StorageError(
        'SCHEMA_MISMATCH',
        `${location}: table "${tableName}" is at schema version ${version}, this code needs ${SQLITE_SCHEMA_VERSION}, and migrate is false. Create a repository with migrate: true once to migrate it`,
      );
    }
    if (owned && wal && !inMemory) {
      try {
        database.pragma('journal_mode = WAL');
      } catch (error) {
        throw toStorageError(error, `switch ${location} to WAL`);
      }
    }
    if (version < SQLITE_SCHEMA_VERSION) migrateSchema(database, names, location);
    const driver = createSqliteDriver({ database, names, owned, location });
    // The driver supports the turn log, so the helper gave the repository its members.
    return Object.assign(createDriverRepository(driver, settings), {
      tableName,
    }) as SqliteRepository;
  } catch (error) {
    if (owned) database.close();
    throw error;
  }
}
