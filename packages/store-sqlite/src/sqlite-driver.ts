import { StorageError } from '@ctx/core';
import type { ContextDriver, DriverRemoveResult, DriverWriteResult } from '@ctx/core/adapter';
import type { Database, Statement } from 'better-sqlite3';
import { classifyError } from './sqlite-errors.js';
import {
  fromRow,
  SNAPSHOT_COLUMNS,
  type SnapshotParameters,
  type SnapshotRow,
  toParameters,
} from './sqlite-rows.js';
import { quote, SQLITE_SCHEMA_VERSION, type SqliteObjectNames } from './sqlite-schema.js';
import { createSqliteTurnLog, turnLogSqlFor } from './sqlite-turn-log.js';

/** What {@link createSqliteDriver} works on. */
export interface SqliteDriverOptions {
  /** An open better-sqlite3 `Database` whose schema is current. */
  database: Database;
  /** The session table and the objects derived from its name. */
  names: SqliteObjectNames;
  /** Close `database` in `close()`: true only when the repository opened it. */
  owned: boolean;
  /** The database as messages name it, e.g. `SQLite database "./ctx.db"`. */
  location: string;
}

/** A row's state as the fallback reads of `write` and `remove` see it. */
interface StateRow {
  user_id: string | null;
  version: number;
  deleted_at: number | null;
  expires_at: number | null;
}

const isLive = (row: StateRow | undefined, now: number): row is StateRow =>
  row !== undefined && row.deleted_at === null && (row.expires_at === null || row.expires_at > now);

/** Live: not a tombstone and not expired at `@now`. Every statement on sessions uses it. */
const LIVE = 'deleted_at IS NULL AND (expires_at IS NULL OR expires_at > @now)';

/** What a tombstone keeps: the id, the version and the timestamps; no content, no owner. */
const BLANK =
  "summary = '', goal = NULL, plan = NULL, progress = NULL, fields = NULL, user_id = NULL";

function sqlFor(names: SqliteObjectNames) {
  const table = quote(names.sessions);
  const history = quote(names.history);
  const order = 'ORDER BY updated_at DESC, session_id DESC LIMIT @limit';
  const after = '(updated_at, session_id) < (@afterTime, @afterId)';
  const content =
    'user_id = @userId, summary = @summary, goal = @goal, plan = @plan, progress = @progress, fields = @fields, created_at = @createdAt, updated_at = @updatedAt, expires_at = @expiresAt';
  return {
    // Positional parameters: the hot path binds two values without building an object.
    read: `SELECT ${SNAPSHOT_COLUMNS} FROM ${table} WHERE session_id = ? AND deleted_at IS NULL AND (expires_at IS NULL OR expires_at > ?)`,
    state: `SELECT user_id, version, deleted_at, expires_at FROM ${table} WHERE session_id = ?`,
    update: `UPDATE ${table} SET ${content}, version = @version WHERE session_id = @sessionId AND version = @expectedVersion AND ${LIVE}`,
    // A create takes over a tombstone or an expired row, continuing its versions.
    create: `INSERT INTO ${table} (${SNAPSHOT_COLUMNS}, expires_at) VALUES (@sessionId, @userId, @summary, @goal, @plan, @progress, @createdAt, @updatedAt, @version, @fields, @expiresAt)
ON CONFLICT (session_id) DO UPDATE SET ${content}, version = version + 1, deleted_at = NULL
WHERE deleted_at IS NOT NULL OR (expires_at IS NOT NULL AND expires_at <= @now)
RETURNING version`,
    remove: `UPDATE ${table} SET ${BLANK}, expires_at = NULL, deleted_at = @now
WHERE session_id = @sessionId AND ${LIVE}
AND (@userId IS NULL OR user_id IS NULL OR user_id = @userId)
AND (@expectedVersion IS NULL OR version = @expectedVersion)`,
    archive: `INSERT OR REPLACE INTO ${history} (${SNAPSHOT_COLUMNS}) SELECT ${SNAPSHOT_COLUMNS} FROM ${table} WHERE session_id = @sessionId AND version = @expectedVersion AND ${LIVE}`,
    prune: `DELETE FROM ${history} WHERE session_id = ? AND version <= ?`,
    clearHistory: `DELETE FROM ${history} WHERE session_id = ?`,
    listFirst: `SELECT ${SNAPSHOT_COLUMNS} FROM ${table} WHERE ${LIVE} ${order}`,
    listAfter: `SELECT ${SNAPSHOT_COLUMNS} FROM ${table} WHERE ${LIVE} AND ${after} ${order}`,
    userListFirst: `SELECT ${SNAPSHOT_COLUMNS} FROM ${table} WHERE user_id = @userId AND ${LIVE} ${order}`,
    userListAfter: `SELECT ${SNAPSHOT_COLUMNS} FROM ${table} WHERE user_id = @userId AND ${LIVE} AND ${after} ${order}`,
    historyRows: `SELECT ${SNAPSHOT_COLUMNS} FROM ${history} WHERE session_id = ? AND version < ? AND version > ? ORDER BY version DESC LIMIT ?`,
    purgeHistory: `DELETE FROM ${history} WHERE session_id IN (SELECT session_id FROM ${table} WHERE deleted_at IS NULL AND expires_at <= ?)`,
    // An expired session's tombstone is dated from when it expired, like a deleted one's.
    purgeExpired: `UPDATE ${table} SET ${BLANK}, deleted_at = expires_at, expires_at = NULL WHERE deleted_at IS NULL AND expires_at <= ?`,
    purgeTombstones: `DELETE FROM ${table} WHERE deleted_at < ?`,
  };
}

function prepareStatements<Key extends string>(
  { database, names, location }: SqliteDriverOptions,
  sql: Record<Key, string>,
): Record<Key, Statement> {
  const statements = {} as Record<Key, Statement>;
  for (const [key, text] of Object.entries(sql) as [Key, string][]) {
    try {
      // A Database whose owner turned on safe integers would otherwise hand us BigInts.
      statements[key] = database.prepare(text).safeIntegers(false);
    } catch (error) {
      throw new StorageError(
        'SCHEMA_MISMATCH',
        `${location}: a table of "${names.sessions}" does not have the layout of schema version ${SQLITE_SCHEMA_VERSION} (${error instanceof Error ? error.message : String(error)}). It was altered outside ctx: restore it or use another tableName`,
        { cause: error },
      );
    }
  }
  return statements;
}

/**
 * The SQLite {@link ContextDriver}: one row per session id (live, expired, or a tombstone with
 * `deleted_at` set) plus a history table and the turn log (`sqlite-turn-log.ts`). Every write is
 * one `BEGIN IMMEDIATE` transaction, so it is atomic across connections and processes on the same
 * file; reads are single statements.
 * better-sqlite3 is synchronous, so every method answers directly. Prepares its statements at
 * once and throws `SCHEMA_MISMATCH` when the table does not have the expected layout.
 */
export function createSqliteDriver(options: SqliteDriverOptions): ContextDriver {
  const { database, owned } = options;
  const statements = prepareStatements(options, sqlFor(options.names));
  const turnLog = createSqliteTurnLog(
    database,
    prepareStatements(options, turnLogSqlFor(options.names)),
  );

  // Runs inside the write transaction.
  const compareAndSet = (
    parameters: SnapshotParameters & { expectedVersion: number | null; now: number },
    historyLimit: number,
  ): DriverWriteResult => {
    const { sessionId, expectedVersion } = parameters;
    if (expectedVersion === null) {
      const created = statements.create.get(parameters) as { version: number } | undefined;
      if (created) {
        // The id's previous life (if any) takes its history with it.
        statements.clearHistory.run(sessionId);
        return { written: true, version: created.version };
      }
    } else {
      if (historyLimit > 1) statements.archive.run(parameters);
      if (statements.update.run(parameters).changes === 1) {
        if (historyLimit > 1) statements.prune.run(sessionId, parameters.version - historyLimit);
        return { written: true, version: parameters.version };
      }
    }
    const state = statements.state.get(sessionId) as StateRow | undefined;
    return {
      written: false,
      currentVersion: isLive(state, parameters.now) ? state.version : null,
    };
  };

  const write = database.transaction(
    (
      parameters: SnapshotParameters & { expectedVersion: number | null; now: number },
      historyLimit: number,
      foldedTurnIds: string[],
    ): DriverWriteResult => {
      const result = compareAndSet(parameters, historyLimit);
      // A refused write folds nothing: its turns stay pending for the next folder.
      if (result.written && foldedTurnIds.length > 0) {
        turnLog.fold(parameters.sessionId, foldedTurnIds, parameters.now);
      }
      return result;
    },
  );

  const remove = database.transaction(
    (
      sessionId: string,
      userId: string | null,
      expectedVersion: number | null,
      now: number,
    ): DriverRemoveResult => {
      if (statements.remove.run({ sessionId, userId, expectedVersion, now }).changes === 1) {
        statements.clearHistory.run(sessionId);
        turnLog.forget(sessionId);
        return { status: 'removed' };
      }
      // Nothing matched: tell why from the row as this transaction sees it.
      const state = statements.state.get(sessionId) as StateRow | undefined;
      if (!isLive(state, now)) {
        // Turns recorded for a session with no live snapshot go with an unconditional (trusted)
        // delete; a delete on behalf of a user must not drop turns other users sent.
        if (userId === null && expectedVersion === null) turnLog.forget(sessionId);
        return { status: 'absent' };
      }
      if (userId !== null && state.user_id !== null && state.user_id !== userId) {
        return { status: 'owner-mismatch' };
      }
      return { status: 'version-mismatch', currentVersion: state.version };
    },
  );

  const purge = database.transaction((now: number, tombstonesBefore: number): number => {
    statements.purgeHistory.run(now);
    const expired = statements.purgeExpired.run(now).changes;
    statements.purgeTombstones.run(tombstonesBefore);
    turnLog.purge(now, tombstonesBefore);
    return expired;
  });

  const history = database.transaction(
    (sessionId: string, limit: number, historyLimit: number, now: number) => {
      const row = statements.read.get(sessionId, now) as SnapshotRow | undefined;
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

  return {
    // The spec this driver was written against, not core's current one: a core with another spec
    // refuses it at startup instead of running it with different rules.
    specVersion: 1,
    name: 'SQLite',
    supports: { ttl: true, history: true, turnLog: true, fields: true },

    read({ sessionId, now }) {
      const row = statements.read.get(sessionId, now) as SnapshotRow | undefined;
      return row ? fromRow(row) : null;
    },

    write({ snapshot, expectedVersion, now, expiresAt, historyLimit, foldedTurnIds }) {
      const parameters = { ...toParameters(snapshot, expiresAt), expectedVersion, now };
      return write.immediate(parameters, historyLimit, foldedTurnIds);
    },

    remove({ sessionId, userId, expectedVersion, now }) {
      return remove.immediate(sessionId, userId ?? null, expectedVersion ?? null, now);
    },

    scan({ userId, after, limit, now }) {
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
        userId === undefined ? { now, limit, ...position } : { now, limit, ...position, userId };
      return (statement.all(parameters) as SnapshotRow[]).map(fromRow);
    },

    purge({ now, tombstonesBefore }) {
      return purge.immediate(now, tombstonesBefore);
    },

    history({ sessionId, limit, historyLimit, now }) {
      // One read transaction: the current row and the older versions agree.
      return history.deferred(sessionId, limit, historyLimit, now);
    },

    recordTurn: turnLog.recordTurn,
    readPending: turnLog.readPending,
    lease: turnLog.lease,
    releaseLease: turnLog.releaseLease,
    pendingSessions: turnLog.pendingSessions,

    classifyError,

    close() {
      if (owned) database.close();
    },
  };
}
