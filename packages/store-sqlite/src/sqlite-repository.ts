import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  assertValidSave,
  assertValidSessionId,
  type ContextRepository,
  cloneSnapshot,
  LIMITS,
  type ListPage,
  type ListQuery,
  normalizeListQuery,
  type RepositoryCapabilities,
  type SaveOptions,
  type SessionContext,
  StorageError,
  toListPage,
  ValidationError,
  VersionConflictError,
} from '@ctx/core';
import Sqlite, { type Database, type Statement } from 'better-sqlite3';
import { toStorageError } from './sqlite-errors.js';
import { fromRow, SNAPSHOT_COLUMNS, type SnapshotRow, toParameters } from './sqlite-rows.js';
import {
  assertValidTableName,
  DEFAULT_SQLITE_TABLE_NAME,
  inspectSchema,
  migrateSchema,
  objectNamesFor,
  quote,
  SQLITE_SCHEMA_VERSION,
  type SqliteObjectNames,
} from './sqlite-schema.js';

/** Options shared by both ways of creating a {@link createSqliteRepository | SQLite repository}. */
export interface SqliteRepositoryCommonOptions {
  /**
   * Name of the session table. Its history table is `<tableName>_history`. Lower-case letters,
   * digits and underscores, starting with a letter or underscore, at most 48 characters. Several
   * repositories with different names can share one database.
   * @default 'ctx_sessions'
   */
  tableName?: string;
  /**
   * Sessions expire this many milliseconds after their last write: expired sessions are invisible
   * to `get`, `list` and `history`, and `purgeExpired()` deletes them. Enables the `ttl`
   * capability.
   * @default undefined (sessions never expire)
   */
  ttlMs?: number;
  /**
   * Keep the last N versions of every session (the current one included), readable through
   * `history()`. Enables the `history` capability. Give every repository writing to one table the
   * same value: a writer without history does not archive the versions it replaces.
   * @default 0 (no history)
   */
  historyLimit?: number;
  /**
   * How long a statement waits for another connection's lock before failing with
   * `STORAGE_UNAVAILABLE`, in milliseconds. Applied to a database opened from `filename`; on an
   * injected `database` it is applied only when given (otherwise the handle keeps its own setting,
   * 5000 ms in better-sqlite3).
   * @default 5000
   */
  busyTimeoutMs?: number;
  /**
   * Create or upgrade the schema when the repository is created. With `false` the repository only
   * checks that the schema is already at the version this code expects, and throws
   * `SCHEMA_MISMATCH` otherwise (for deployments that migrate in a separate step).
   * @default true
   */
  migrate?: boolean;
  /**
   * Switch a database opened from `filename` to write-ahead logging (readers never wait for a
   * writer). Turn it off for files on network filesystems, where WAL does not work. An injected
   * `database` keeps its own journal mode.
   * @default true
   */
  wal?: boolean;
  /**
   * Clock used for expiry, in epoch milliseconds.
   * @default Date.now
   */
  now?: () => number;
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

/** A {@link ContextRepository} stored in SQLite. */
export interface SqliteRepository extends ContextRepository {
  /** Which optional capabilities this repository has (from `ttlMs` and `historyLimit`). */
  readonly capabilities: RepositoryCapabilities;
  /** The session table this repository reads and writes. */
  readonly tableName: string;
}

interface ResolvedOptions {
  tableName: string;
  ttlMs: number | undefined;
  historyLimit: number;
  busyTimeoutMs: number | undefined;
  migrate: boolean;
  wal: boolean;
  now: () => number;
}

const DEFAULT_BUSY_TIMEOUT_MS = 5000;
const MAX_TIMEOUT_MS = 2_147_483_647;

// Ids of 1–256 code units with no control character and no surrogate are valid session ids by
// construction; they skip the schema parse on the hot path. Anything else (emoji included) takes
// core's full validation, with its error message.
const PLAIN_SESSION_ID = /^[^\u0000-\u001f\u007f\ud800-\udfff]{1,256}$/;
const isPlainSessionId = (sessionId: unknown): boolean =>
  typeof sessionId === 'string' && PLAIN_SESSION_ID.test(sessionId);

function invalidConfig(path: string, message: string): ValidationError {
  return new ValidationError(
    'INVALID_CONFIG',
    `Invalid SQLite repository option ${path}: ${message}`,
    {
      issues: [{ path, message }],
    },
  );
}

function resolveOptions(options: SqliteRepositoryOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw invalidConfig('(root)', 'pass { filename } or { database }');
  }
  const hasFile = options.filename !== undefined;
  const hasDatabase = options.database !== undefined;
  if (hasFile === hasDatabase) {
    throw invalidConfig(
      hasFile ? 'filename' : '(root)',
      'pass exactly one of filename (a path or ":memory:") and database (a better-sqlite3 Database)',
    );
  }
  const tableName = options.tableName ?? DEFAULT_SQLITE_TABLE_NAME;
  assertValidTableName(tableName);
  const { ttlMs, historyLimit = 0, busyTimeoutMs, migrate = true, wal = true } = options;
  const now = options.now ?? Date.now;
  if (ttlMs !== undefined && !(Number.isSafeInteger(ttlMs) && ttlMs > 0)) {
    throw invalidConfig('ttlMs', 'expected a positive integer (milliseconds)');
  }
  if (
    !(
      Number.isInteger(historyLimit) &&
      historyLimit >= 0 &&
      historyLimit <= LIMITS.historyMaxVersions
    )
  ) {
    throw invalidConfig(
      'historyLimit',
      `expected an integer from 0 to ${LIMITS.historyMaxVersions}`,
    );
  }
  if (
    busyTimeoutMs !== undefined &&
    !(Number.isInteger(busyTimeoutMs) && busyTimeoutMs >= 0 && busyTimeoutMs <= MAX_TIMEOUT_MS)
  ) {
    throw invalidConfig('busyTimeoutMs', `expected an integer from 0 to ${MAX_TIMEOUT_MS}`);
  }
  if (typeof migrate !== 'boolean') throw invalidConfig('migrate', 'expected a boolean');
  if (typeof wal !== 'boolean') throw invalidConfig('wal', 'expected a boolean');
  if (typeof now !== 'function') throw invalidConfig('now', 'expected a function');
  return { tableName, ttlMs, historyLimit, busyTimeoutMs, migrate, wal, now };
}

interface OpenedDatabase {
  database: Database;
  owned: boolean;
  location: string;
  inMemory: boolean;
}

function openDatabase(options: SqliteRepositoryOptions, resolved: ResolvedOptions): OpenedDatabase {
  if (options.database !== undefined) {
    const database = options.database;
    if (typeof database?.prepare !== 'function' || typeof database.transaction !== 'function') {
      throw invalidConfig('database', 'expected a better-sqlite3 Database');
    }
    if (!database.open) {
      throw invalidConfig('database', 'the Database is closed: pass an open one');
    }
    const location = `SQLite database "${database.name}"`;
    if (resolved.busyTimeoutMs !== undefined) {
      try {
        database.pragma(`busy_timeout = ${resolved.busyTimeoutMs}`);
      } catch (error) {
        throw toStorageError(error, `set the busy timeout of ${location}`);
      }
    }
    return { database, owned: false, location, inMemory: database.memory };
  }
  const filename = options.filename;
  if (typeof filename !== 'string' || filename.trim() === '') {
    throw invalidConfig(
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
    const database = new Sqlite(filename, {
      timeout: resolved.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
    });
    return { database, owned: true, location, inMemory };
  } catch (error) {
    throw toStorageError(error, `open ${location}`);
  }
}

interface Statements {
  get: Statement;
  current: Statement;
  insert: Statement;
  update: Statement;
  deleteSession: Statement;
  deleteHistory: Statement;
  archive: Statement;
  prune: Statement;
  listFirst: Statement;
  listAfter: Statement;
  userListFirst: Statement;
  userListAfter: Statement;
  historyRows: Statement;
  purgeHistory: Statement;
  purgeSessions: Statement;
}

function prepareStatements(
  database: Database,
  names: SqliteObjectNames,
  location: string,
): Statements {
  const table = quote(names.sessions);
  const history = quote(names.history);
  const live = '(expires_at IS NULL OR expires_at > @now)';
  const order = 'ORDER BY updated_at DESC, session_id DESC LIMIT @limit';
  const after = '(updated_at, session_id) < (@afterTime, @afterId)';
  const sql: Record<keyof Statements, string> = {
    get: `SELECT ${SNAPSHOT_COLUMNS} FROM ${table} WHERE session_id = ? AND (expires_at IS NULL OR expires_at > ?)`,
    current: `SELECT version, expires_at FROM ${table} WHERE session_id = ?`,
    insert: `INSERT INTO ${table} (${SNAPSHOT_COLUMNS}, expires_at) VALUES (@sessionId, @userId, @summary, @goal, @plan, @progress, @createdAt, @updatedAt, @version, @expiresAt)`,
    update: `UPDATE ${table} SET user_id = @userId, summary = @summary, goal = @goal, plan = @plan, progress = @progress, created_at = @createdAt, updated_at = @updatedAt, version = @version, expires_at = @expiresAt WHERE session_id = @sessionId`,
    deleteSession: `DELETE FROM ${table} WHERE session_id = ? RETURNING expires_at`,
    deleteHistory: `DELETE FROM ${history} WHERE session_id = ?`,
    archive: `INSERT OR REPLACE INTO ${history} (${SNAPSHOT_COLUMNS}) SELECT ${SNAPSHOT_COLUMNS} FROM ${table} WHERE session_id = ?`,
    prune: `DELETE FROM ${history} WHERE session_id = ? AND version <= ?`,
    listFirst: `SELECT ${SNAPSHOT_COLUMNS} FROM ${table} WHERE ${live} ${order}`,
    listAfter: `SELECT ${SNAPSHOT_COLUMNS} FROM ${table} WHERE ${live} AND ${after} ${order}`,
    userListFirst: `SELECT ${SNAPSHOT_COLUMNS} FROM ${table} WHERE user_id = @userId AND ${live} ${order}`,
    userListAfter: `SELECT ${SNAPSHOT_COLUMNS} FROM ${table} WHERE user_id = @userId AND ${live} AND ${after} ${order}`,
    historyRows: `SELECT ${SNAPSHOT_COLUMNS} FROM ${history} WHERE session_id = ? AND version < ? AND version > ? ORDER BY version DESC LIMIT ?`,
    purgeHistory: `DELETE FROM ${history} WHERE session_id IN (SELECT session_id FROM ${table} WHERE expires_at <= ?)`,
    purgeSessions: `DELETE FROM ${table} WHERE expires_at <= ?`,
  };
  const statements = {} as Statements;
  for (const [key, text] of Object.entries(sql) as [keyof Statements, string][]) {
    try {
      // A Database whose owner turned on safe integers would otherwise hand us BigInts.
      statements[key] = database.prepare(text).safeIntegers(false);
    } catch (error) {
      throw new StorageError(
        'SCHEMA_MISMATCH',
        `${location}: table "${names.sessions}" does not have the layout of schema version ${SQLITE_SCHEMA_VERSION} (${error instanceof Error ? error.message : String(error)}). It was altered outside ctx: restore it or use another tableName`,
        { cause: error },
      );
    }
  }
  return statements;
}

/**
 * A {@link ContextRepository} on SQLite through better-sqlite3: the embedded default. One row per
 * session, compare-and-set inside `BEGIN IMMEDIATE`, so it is safe for several connections and
 * processes on one file. Optional TTL (`ttlMs`) and snapshot history (`historyLimit`).
 *
 * The schema is created or upgraded when the repository is created (versioned migrations, safe
 * when several processes open a new file at once). A file that is not SQLite, a table name taken by
 * something ctx did not create, or a schema newer than this code throws `SCHEMA_MISMATCH` and
 * leaves the file untouched.
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
  const resolved = resolveOptions(options);
  const { tableName, ttlMs, historyLimit, now } = resolved;
  const names = objectNamesFor(tableName);
  const { database, owned, location, inMemory } = openDatabase(options, resolved);

  let statements: Statements;
  try {
    // Everything that could refuse the file runs before the first write to it.
    const { version } = inspectSchema(database, names, location);
    if (version < SQLITE_SCHEMA_VERSION && !resolved.migrate) {
      throw new StorageError(
        'SCHEMA_MISMATCH',
        `${location}: table "${tableName}" is at schema version ${version}, this code needs ${SQLITE_SCHEMA_VERSION}, and migrate is false. Create a repository with migrate: true once to migrate it`,
      );
    }
    if (owned && resolved.wal && !inMemory) {
      try {
        database.pragma('journal_mode = WAL');
      } catch (error) {
        throw toStorageError(error, `switch ${location} to WAL`);
      }
    }
    if (version < SQLITE_SCHEMA_VERSION) migrateSchema(database, names, location);
    statements = prepareStatements(database, names, location);
  } catch (error) {
    if (owned) database.close();
    throw error;
  }

  let closed = false;
  const closedError = (action: string) =>
    new StorageError('CLOSED', `The SQLite repository is closed: cannot ${action}`);
  const execute = <T>(action: string, body: () => T): T => {
    if (closed) throw closedError(action);
    try {
      return body();
    } catch (error) {
      throw toStorageError(error, action);
    }
  };
  const isLive = (expiresAt: number | null, time: number) => expiresAt === null || expiresAt > time;

  const saveTransaction = database.transaction(
    (snapshot: SessionContext, expectedVersion: number | null, time: number) => {
      const current = statements.current.get(snapshot.sessionId) as
        | { version: number; expires_at: number | null }
        | undefined;
      const currentVersion = current && isLive(current.expires_at, time) ? current.version : null;
      if (currentVersion !== expectedVersion) {
        throw new VersionConflictError({
          sessionId: snapshot.sessionId,
          expectedVersion,
          currentVersion,
        });
      }
      const parameters = toParameters(snapshot, ttlMs === undefined ? null : time + ttlMs);
      if (expectedVersion === null) {
        // An expired row (and its history) gives way to the new session.
        if (current) statements.deleteSession.get(snapshot.sessionId);
        statements.deleteHistory.run(snapshot.sessionId);
        statements.insert.run(parameters);
        return;
      }
      if (historyLimit > 1) {
        statements.archive.run(snapshot.sessionId);
        statements.prune.run(snapshot.sessionId, snapshot.version - historyLimit);
      }
      statements.update.run(parameters);
    },
  );

  const deleteTransaction = database.transaction((sessionId: string, time: number) => {
    const deleted = statements.deleteSession.get(sessionId) as
      | { expires_at: number | null }
      | undefined;
    statements.deleteHistory.run(sessionId);
    return deleted !== undefined && isLive(deleted.expires_at, time);
  });

  const repository: SqliteRepository = {
    capabilities: { ttl: ttlMs !== undefined, history: historyLimit > 0 },
    tableName,

    async get(sessionId: string) {
      if (closed) throw closedError('get a session');
      try {
        if (!isPlainSessionId(sessionId)) assertValidSessionId(sessionId);
        const row = statements.get.get(sessionId, now()) as SnapshotRow | undefined;
        return row ? fromRow(row) : null;
      } catch (error) {
        throw toStorageError(error, 'get a session');
      }
    },

    async save(snapshot: SessionContext, saveOptions: SaveOptions) {
      return execute('save a session', () => {
        assertValidSave(snapshot, saveOptions);
        saveTransaction.immediate(snapshot, saveOptions.expectedVersion, now());
        return cloneSnapshot(snapshot);
      });
    },

    async delete(sessionId: string) {
      return execute('delete a session', () => {
        assertValidSessionId(sessionId);
        return deleteTransaction.immediate(sessionId, now());
      });
    },

    async list(query?: ListQuery): Promise<ListPage> {
      return execute('list sessions', () => {
        const { userId, limit, after } = normalizeListQuery(query);
        const base = { now: now(), limit: limit + 1 };
        const position = after ? { afterTime: after.updatedAt, afterId: after.sessionId } : {};
        const statement =
          userId === undefined
            ? after
              ? statements.listAfter
              : statements.listFirst
            : after
              ? statements.userListAfter
              : statements.userListFirst;
        const parameters =
          userId === undefined ? { ...base, ...position } : { ...base, ...position, userId };
        const rows = statement.all(parameters) as SnapshotRow[];
        return toListPage(rows.map(fromRow), limit);
      });
    },

    async close() {
      if (closed) return;
      closed = true;
      if (!owned) return;
      try {
        database.close();
      } catch (error) {
        throw toStorageError(error, `close ${location}`);
      }
    },
  };

  if (ttlMs !== undefined) {
    const purgeTransaction = database.transaction((time: number) => {
      statements.purgeHistory.run(time);
      return statements.purgeSessions.run(time).changes;
    });
    repository.purgeExpired = async () =>
      execute('purge expired sessions', () => purgeTransaction.immediate(now()));
  }

  if (historyLimit > 0) {
    const historyTransaction = database.transaction(
      (sessionId: string, limit: number, time: number): SessionContext[] => {
        const row = statements.get.get(sessionId, time) as SnapshotRow | undefined;
        if (!row) return [];
        const older =
          limit > 1
            ? (statements.historyRows.all(
                sessionId,
                row.version,
                row.version - historyLimit,
                limit - 1,
              ) as SnapshotRow[])
            : [];
        return [row, ...older].map(fromRow);
      },
    );
    repository.history = async (sessionId, historyOptions) =>
      execute('read session history', () => {
        assertValidSessionId(sessionId);
        const limit = historyOptions?.limit ?? historyLimit;
        if (!(Number.isInteger(limit) && limit >= 1)) {
          throw new ValidationError(
            'INVALID_INPUT',
            `Invalid history limit ${String(limit)}: expected a positive integer`,
            { issues: [{ path: 'limit', message: 'not a positive integer' }] },
          );
        }
        return historyTransaction.deferred(sessionId, Math.min(limit, historyLimit), now());
      });
  }

  return repository;
}
