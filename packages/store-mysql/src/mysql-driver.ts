import { type SessionContext, StorageError, type StoredFields } from '@ctx/core';
import type { ContextDriver, RepositorySettings } from '@ctx/core/adapter';
import type { Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { integer, text } from './mysql-columns.js';
import { classifyError, isRetryableConflict } from './mysql-errors.js';
import { ensureSchema, type MysqlMigrationResult, type MysqlTableNames } from './mysql-schema.js';
import { createMysqlTurnLog, type MysqlTransaction } from './mysql-turn-log.js';

/** The MySQL driver, plus the explicit migration its repository exposes. */
export interface MysqlDriver extends ContextDriver {
  /** Creates or upgrades the tables now, whatever the `migrate` setting. */
  migrate(): Promise<MysqlMigrationResult>;
}

const COLUMNS = [
  'session_id',
  'user_id',
  'summary',
  'goal',
  'plan',
  'progress',
  'fields',
  'created_at',
  'updated_at',
  'version',
];
const LIVE = 'deleted_at IS NULL AND (expires_at IS NULL OR expires_at > ?)';
const TOMBSTONE =
  'user_id = NULL, summary = NULL, goal = NULL, plan = NULL, progress = NULL, fields = NULL';
/** Rows one purge transaction turns into tombstones or deletes. */
const PURGE_BATCH = 500;

interface StateRow extends RowDataPacket {
  version: number | string;
  user_id: Buffer | string | null;
  deleted_at: number | string | null;
  expires_at: number | string | null;
}

const steps = (value: string[] | null): string | null =>
  value === null ? null : JSON.stringify(value);

const json = (fields: StoredFields | null | undefined): string | null =>
  fields ? JSON.stringify(fields) : null;

function decodeFields(row: RowDataPacket): StoredFields | null {
  if (row.fields === null || row.fields === undefined) return null;
  let value: unknown;
  try {
    value = JSON.parse(row.fields);
  } catch (error) {
    throw corruptFields(row, error);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw corruptFields(row);
  }
  return value as StoredFields;
}

const corruptFields = (row: RowDataPacket, cause?: unknown) =>
  new StorageError(
    'STORAGE_ERROR',
    `Stored session "${text(row.session_id)}" has an invalid fields column: the row was altered outside ctx. Fix or delete the row`,
    cause === undefined ? undefined : { cause },
  );

function decode(row: RowDataPacket): SessionContext {
  return {
    sessionId: text(row.session_id),
    userId: row.user_id === null ? null : text(row.user_id),
    summary: row.summary,
    goal: row.goal,
    plan: row.plan === null ? null : JSON.parse(row.plan),
    progress: row.progress === null ? null : JSON.parse(row.progress),
    createdAt: new Date(integer(row.created_at)),
    updatedAt: new Date(integer(row.updated_at)),
    version: integer(row.version),
    fields: decodeFields(row),
  };
}

const isLive = (row: StateRow, now: number): boolean =>
  row.deleted_at === null && (row.expires_at === null || integer(row.expires_at) > now);

/**
 * The MySQL/MariaDB driver. Every write is one InnoDB transaction on one pooled connection, at
 * READ COMMITTED so that no statement takes gap locks (two creates of one new id would otherwise
 * deadlock on the gap, and history inserts would wait on each other's ranges). The row is locked
 * with `SELECT … FOR UPDATE` before anything is decided; a create that races another create of a
 * new id gets a duplicate key and is retried once, and then sees the winner. The turn log (see
 * `createMysqlTurnLog`) adds one lock per session, taken before the session row by every
 * transaction that changes the session's turns.
 */
export function createMysqlDriver(
  pool: Pool,
  names: MysqlTableNames,
  settings: RepositorySettings,
  options: { ownsPool: boolean },
): MysqlDriver {
  const table = `\`${names.sessions}\``;
  const history = `\`${names.history}\``;
  const columns = COLUMNS.join(', ');
  let schema: Promise<MysqlMigrationResult> | undefined;
  let closed = false;

  const transaction: MysqlTransaction = async (body) => {
    for (let attempt = 1; ; attempt += 1) {
      const connection = await pool.getConnection();
      let open = false;
      try {
        await connection.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
        await connection.query('START TRANSACTION');
        open = true;
        const result = await body(connection);
        await connection.query('COMMIT');
        open = false;
        connection.release();
        return result;
      } catch (error) {
        const fatal = (error as { fatal?: unknown }).fatal === true;
        const clean =
          !fatal &&
          (!open ||
            (await connection.query('ROLLBACK').then(
              () => true,
              () => false,
            )));
        // A connection in an unknown state never goes back into the pool.
        if (clean) connection.release();
        else connection.destroy();
        if (attempt < 2 && isRetryableConflict(error)) continue;
        throw error;
      }
    }
  };

  const lockRow = async (connection: PoolConnection, sessionId: string) => {
    const [rows] = await connection.query<StateRow[]>(
      `SELECT version, user_id, deleted_at, expires_at FROM ${table} WHERE session_id = ? FOR UPDATE`,
      [sessionId],
    );
    return rows[0];
  };

  const turnLog = createMysqlTurnLog(pool, names, transaction);

  return {
    // The spec this driver was written against, not the installed core's: a mismatch must fail.
    specVersion: 1,
    name: 'MySQL',
    supports: { ttl: true, history: true, turnLog: true, fields: true },

    init() {
      schema ??= ensureSchema(pool, names, { migrate: settings.migrate, now: settings.now() });
      // A failed check is tried again by the next operation.
      return schema.then(
        () => undefined,
        (error: unknown) => {
          schema = undefined;
          throw error;
        },
      );
    },

    async migrate() {
      if (closed) {
        throw new StorageError('CLOSED', 'The MySQL repository is closed: cannot migrate');
      }
      const result = await ensureSchema(pool, names, { migrate: true, now: settings.now() });
      schema = Promise.resolve(result);
      return result;
    },

    async read({ sessionId, now }) {
      const [rows] = await pool.query<RowDataPacket[]>(
        `SELECT ${columns} FROM ${table} WHERE session_id = ? AND ${LIVE}`,
        [sessionId, now],
      );
      return rows[0] ? decode(rows[0]) : null;
    },

    async write({ snapshot, expectedVersion, now, expiresAt, historyLimit, foldedTurnIds }) {
      const folds = foldedTurnIds.length > 0;
      if (expectedVersion !== null && historyLimit === 0 && !folds) {
        // The common case, an update without history or fold, is one autocommit statement: the
        // row lock of the UPDATE makes the version check and the write atomic. Only a refusal
        // reads the state it reports.
        const [result] = await pool.query<ResultSetHeader>(
          `UPDATE ${table} SET user_id = ?, summary = ?, goal = ?, plan = ?, progress = ?, fields = ?, created_at = ?, updated_at = ?, version = ?, expires_at = ? WHERE session_id = ? AND version = ? AND ${LIVE}`,
          [
            snapshot.userId,
            snapshot.summary,
            snapshot.goal,
            steps(snapshot.plan),
            steps(snapshot.progress),
            json(snapshot.fields),
            snapshot.createdAt.getTime(),
            snapshot.updatedAt.getTime(),
            snapshot.version,
            expiresAt,
            snapshot.sessionId,
            expectedVersion,
            now,
          ],
        );
        if (result.affectedRows === 1) return { written: true, version: snapshot.version };
        const [rows] = await pool.query<RowDataPacket[]>(
          `SELECT version FROM ${table} WHERE session_id = ? AND ${LIVE}`,
          [snapshot.sessionId, now],
        );
        return { written: false, currentVersion: rows[0] ? integer(rows[0].version) : null };
      }
      return transaction(async (connection) => {
        // The log's lock first, as remove() takes it: a delete that finds no session cannot then
        // drop the turns this fold marks.
        if (folds) await turnLog.lock(connection, snapshot.sessionId);
        const row = await lockRow(connection, snapshot.sessionId);
        const live = row !== undefined && isLive(row, now);
        const currentVersion = live ? integer(row.version) : null;
        if (currentVersion !== expectedVersion) return { written: false, currentVersion };
        // Over a tombstone or an expired row the id continues its versions.
        const version = live || row === undefined ? snapshot.version : integer(row.version) + 1;
        const content = [
          snapshot.userId,
          snapshot.summary,
          snapshot.goal,
          steps(snapshot.plan),
          steps(snapshot.progress),
          json(snapshot.fields),
          snapshot.createdAt.getTime(),
          snapshot.updatedAt.getTime(),
        ];
        if (row === undefined) {
          await connection.query(
            `INSERT INTO ${table} (${columns}, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
            [snapshot.sessionId, ...content, version, expiresAt],
          );
        } else {
          await connection.query(
            `UPDATE ${table} SET user_id = ?, summary = ?, goal = ?, plan = ?, progress = ?, fields = ?, created_at = ?, updated_at = ?, version = ?, expires_at = ?, deleted_at = NULL WHERE session_id = ?`,
            [...content, version, expiresAt, snapshot.sessionId],
          );
        }
        if (historyLimit > 0) {
          if (row !== undefined && !live) {
            await connection.query(`DELETE FROM ${history} WHERE session_id = ?`, [
              snapshot.sessionId,
            ]);
          }
          await connection.query(
            `REPLACE INTO ${history} (session_id, version, user_id, summary, goal, plan, progress, fields, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
            [snapshot.sessionId, version, ...content],
          );
          if (version > historyLimit) {
            await connection.query(`DELETE FROM ${history} WHERE session_id = ? AND version <= ?`, [
              snapshot.sessionId,
              version - historyLimit,
            ]);
          }
        }
        // Only a write that succeeds folds: a refused one returned above.
        if (folds) await turnLog.fold(connection, snapshot.sessionId, foldedTurnIds, now);
        return { written: true, version };
      });
    },

    remove({ sessionId, userId, expectedVersion, now }) {
      return transaction(async (connection) => {
        // Taken before the session row, in the order every turn-log transaction takes them.
        await turnLog.lock(connection, sessionId);
        const row = await lockRow(connection, sessionId);
        if (row === undefined || !isLive(row, now)) {
          // Turns recorded for a session that has no live snapshot go with an unconditional
          // (trusted) delete; a delete on behalf of a user must not drop turns others sent.
          if (userId === undefined && expectedVersion === undefined) {
            await turnLog.drop(connection, sessionId);
          }
          return { status: 'absent' };
        }
        const owner = row.user_id === null ? null : text(row.user_id);
        if (userId !== undefined && owner !== null && owner !== userId) {
          return { status: 'owner-mismatch' };
        }
        const currentVersion = integer(row.version);
        if (expectedVersion !== undefined && expectedVersion !== currentVersion) {
          return { status: 'version-mismatch', currentVersion };
        }
        await connection.query(
          `UPDATE ${table} SET ${TOMBSTONE}, deleted_at = ? WHERE session_id = ?`,
          [now, sessionId],
        );
        await connection.query(`DELETE FROM ${history} WHERE session_id = ?`, [sessionId]);
        await turnLog.drop(connection, sessionId);
        return { status: 'removed' };
      });
    },

    async scan({ userId, after, limit, now }) {
      const conditions = [LIVE];
      const values: unknown[] = [now];
      if (userId !== undefined) {
        conditions.push('user_id = ?');
        values.push(userId);
      }
      if (after) {
        conditions.push('(updated_at < ? OR (updated_at = ? AND session_id < ?))');
        values.push(after.updatedAt, after.updatedAt, after.sessionId);
      }
      const [rows] = await pool.query<RowDataPacket[]>(
        `SELECT ${columns} FROM ${table} WHERE ${conditions.join(' AND ')} ORDER BY updated_at DESC, session_id DESC LIMIT ?`,
        [...values, limit],
      );
      return rows.map(decode);
    },

    async purge({ now, tombstonesBefore }) {
      let purged = 0;
      for (let found = PURGE_BATCH; found === PURGE_BATCH; ) {
        const batch = await transaction(async (connection) => {
          const [rows] = await connection.query<RowDataPacket[]>(
            `SELECT session_id FROM ${table} WHERE deleted_at IS NULL AND expires_at <= ? ORDER BY expires_at LIMIT ${PURGE_BATCH} FOR UPDATE`,
            [now],
          );
          if (rows.length === 0) return { found: 0, tombstoned: 0 };
          const ids = rows.map((row) => row.session_id);
          // An expired session becomes a tombstone dated from its expiry.
          const [result] = await connection.query<ResultSetHeader>(
            `UPDATE ${table} SET ${TOMBSTONE}, deleted_at = expires_at WHERE session_id IN (?)`,
            [ids],
          );
          await connection.query(`DELETE FROM ${history} WHERE session_id IN (?)`, [ids]);
          return { found: rows.length, tombstoned: result.affectedRows };
        });
        found = batch.found;
        purged += batch.tombstoned;
      }
      for (let deleted = PURGE_BATCH; deleted === PURGE_BATCH; ) {
        const [result] = await pool.query<ResultSetHeader>(
          `DELETE FROM ${table} WHERE deleted_at IS NOT NULL AND deleted_at < ? LIMIT ${PURGE_BATCH}`,
          [tombstonesBefore],
        );
        deleted = result.affectedRows;
      }
      await turnLog.purge({ now, tombstonesBefore });
      return purged;
    },

    async history({ sessionId, limit, historyLimit, now }) {
      const [rows] = await pool.query<RowDataPacket[]>(
        `SELECT ${COLUMNS.map((column) => `h.${column}`).join(', ')}, s.version AS current_version
         FROM ${history} h JOIN ${table} s ON s.session_id = h.session_id
         WHERE h.session_id = ? AND s.deleted_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > ?)
           AND h.version <= s.version AND h.version > s.version - ?
         ORDER BY h.version DESC LIMIT ?`,
        [sessionId, now, historyLimit, limit],
      );
      // Only an unbroken run down from the current version counts: a repository without history
      // may have written versions in between (the memory reference keeps none then).
      const versions: SessionContext[] = [];
      for (const row of rows) {
        if (integer(row.version) !== integer(row.current_version) - versions.length) break;
        versions.push(decode(row));
      }
      return versions;
    },

    ...turnLog.members,

    classifyError,

    async close() {
      closed = true;
      if (options.ownsPool) await pool.end();
    },
  };
}
