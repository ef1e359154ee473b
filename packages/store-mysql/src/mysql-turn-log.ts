import type { Message } from '@ctx/core';
import type { ContextDriver } from '@ctx/core/adapter';
import type { Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { integer, text } from './mysql-columns.js';
import type { MysqlTableNames } from './mysql-schema.js';

/** Runs a body in one READ COMMITTED transaction on one pooled connection (the driver's). */
export type MysqlTransaction = <T>(body: (connection: PoolConnection) => Promise<T>) => Promise<T>;

/** The turn-log members of a driver. */
export type MysqlTurnLogMembers = Required<
  Pick<ContextDriver, 'recordTurn' | 'readPending' | 'lease' | 'releaseLease' | 'pendingSessions'>
>;

/** The turn log of one session table: the driver members and what the session writes need. */
export interface MysqlTurnLog {
  /** `recordTurn`, `readPending`, `lease`, `releaseLease` and `pendingSessions`. */
  readonly members: MysqlTurnLogMembers;
  /**
   * Locks the session's row in the leases table until the transaction ends, creating it when
   * missing. Every transaction that changes a session's turns takes it first: records of one
   * session run one at a time, so the pending bound holds, and a fold and a delete of one session
   * are ordered.
   */
  lock(connection: PoolConnection, sessionId: string): Promise<void>;
  /** Marks these pending turns of the session folded at `now`; their content goes. */
  fold(
    connection: PoolConnection,
    sessionId: string,
    turnIds: string[],
    now: number,
  ): Promise<void>;
  /** Drops the session's turns (pending and folded) and its lease. */
  drop(connection: PoolConnection, sessionId: string): Promise<void>;
  /**
   * Forgets folded turns older than `tombstonesBefore`, and the rows of free leases whose session
   * has no turns left.
   */
  purge(request: { now: number; tombstonesBefore: number }): Promise<void>;
}

/** Rows one purge transaction deletes. */
const PURGE_BATCH = 500;

function decodeTurn(row: RowDataPacket) {
  return {
    turnId: text(row.turn_id),
    userId: row.user_id === null ? null : text(row.user_id),
    messages: JSON.parse(row.messages) as Message[],
    sequence: integer(row.sequence),
    recordedAt: integer(row.recorded_at),
  };
}

/**
 * The turn log on `<tableName>_turns` and `<tableName>_leases`. Sequences come from the turns
 * table's AUTO_INCREMENT, which only grows, so every session's sequences grow too. A session's
 * row in the leases table holds its lease and is also the lock that serializes its records
 * (see {@link MysqlTurnLog.lock}).
 */
export function createMysqlTurnLog(
  pool: Pool,
  names: MysqlTableNames,
  transaction: MysqlTransaction,
): MysqlTurnLog {
  const turns = `\`${names.turns}\``;
  const leases = `\`${names.leases}\``;
  // A lease row nobody holds, of a session without turns: deleting it loses nothing.
  const free = (row: string) =>
    `(${row}.holder IS NULL OR ${row}.expires_at <= ?) AND NOT EXISTS (SELECT 1 FROM ${turns} t WHERE t.session_id = ${row}.session_id)`;

  const lock = async (connection: PoolConnection, sessionId: string): Promise<void> => {
    // ON DUPLICATE KEY takes the existing row's exclusive lock at once. INSERT IGNORE followed by
    // SELECT … FOR UPDATE would take a shared lock first, and two sessions upgrading their shared
    // locks deadlock.
    await connection.query(
      `INSERT INTO ${leases} (session_id) VALUES (?) ON DUPLICATE KEY UPDATE session_id = session_id`,
      [sessionId],
    );
  };

  const members: MysqlTurnLogMembers = {
    recordTurn({ sessionId, turn, now, maxPending }) {
      return transaction(async (connection) => {
        await lock(connection, sessionId);
        // Under the lock, and at READ COMMITTED, these reads see every record committed before.
        const [rows] = await connection.query<RowDataPacket[]>(
          `SELECT (SELECT sequence FROM ${turns} WHERE session_id = ? AND turn_id = ?) AS known,
             (SELECT COUNT(*) FROM ${turns} WHERE session_id = ? AND folded_at IS NULL) AS pending`,
          [sessionId, turn.turnId, sessionId],
        );
        const { known, pending } = rows[0] as RowDataPacket;
        if (known !== null) return { status: 'duplicate', sequence: integer(known) };
        if (integer(pending) >= maxPending) return { status: 'full', pending: integer(pending) };
        const [result] = await connection.query<ResultSetHeader>(
          `INSERT INTO ${turns} (session_id, turn_id, user_id, messages, recorded_at) VALUES (?, ?, ?, ?, ?)`,
          [sessionId, turn.turnId, turn.userId, JSON.stringify(turn.messages), now],
        );
        return { status: 'recorded', sequence: integer(result.insertId) };
      });
    },

    async readPending({ sessionId, limit }) {
      const [rows] = await pool.query<RowDataPacket[]>(
        `SELECT sequence, turn_id, user_id, messages, recorded_at FROM ${turns}
         WHERE session_id = ? AND folded_at IS NULL ORDER BY sequence LIMIT ?`,
        [sessionId, limit],
      );
      return rows.map(decodeTurn);
    },

    async lease({ sessionId, holder, ttlMs, now }) {
      // One statement takes or renews atomically. Both assignments test the same condition, which
      // gives the same answer whether the second sees the old holder or the new one (MariaDB's
      // SIMULTANEOUS_ASSIGNMENT mode), so they agree. Affected-row counts depend on the pool's
      // CLIENT_FOUND_ROWS flag: the row itself says who holds the lease now.
      const takes = 'holder IS NULL OR holder = ? OR expires_at <= ?';
      const expiresAt = now + ttlMs;
      await pool.query(
        `INSERT INTO ${leases} (session_id, holder, expires_at) VALUES (?, ?, ?)
         ON DUPLICATE KEY UPDATE holder = IF(${takes}, ?, holder), expires_at = IF(${takes}, ?, expires_at)`,
        [sessionId, holder, expiresAt, holder, now, holder, holder, now, expiresAt],
      );
      const [rows] = await pool.query<RowDataPacket[]>(
        `SELECT holder FROM ${leases} WHERE session_id = ?`,
        [sessionId],
      );
      const current = rows[0]?.holder;
      return current !== undefined && current !== null && text(current) === holder;
    },

    async releaseLease({ sessionId, holder }) {
      await pool.query(`DELETE FROM ${leases} WHERE session_id = ? AND holder = ?`, [
        sessionId,
        holder,
      ]);
    },

    async pendingSessions({ recordedBefore, limit, now }) {
      // The oldest pending turn is at or before recordedBefore exactly when one pending turn is.
      const [rows] = await pool.query<RowDataPacket[]>(
        `SELECT p.session_id, MIN(p.recorded_at) AS oldest FROM ${turns} p
         WHERE p.folded_at IS NULL AND p.recorded_at <= ?
           AND NOT EXISTS (SELECT 1 FROM ${leases} l
             WHERE l.session_id = p.session_id AND l.holder IS NOT NULL AND l.expires_at > ?)
         GROUP BY p.session_id ORDER BY oldest, p.session_id LIMIT ?`,
        [recordedBefore, now, limit],
      );
      return rows.map((row) => text(row.session_id));
    },
  };

  return {
    members,
    lock,

    async fold(connection, sessionId, turnIds, now) {
      await connection.query(
        `UPDATE ${turns} SET folded_at = ?, user_id = NULL, messages = NULL
         WHERE session_id = ? AND turn_id IN (?) AND folded_at IS NULL`,
        [now, sessionId, turnIds],
      );
    },

    async drop(connection, sessionId) {
      await connection.query(`DELETE FROM ${leases} WHERE session_id = ?`, [sessionId]);
      await connection.query(`DELETE FROM ${turns} WHERE session_id = ?`, [sessionId]);
    },

    async purge({ now, tombstonesBefore }) {
      // In READ COMMITTED transactions, so the range deletes take no gap locks that would hold up
      // records and folds.
      for (let deleted = PURGE_BATCH; deleted === PURGE_BATCH; ) {
        deleted = await transaction(async (connection) => {
          const [result] = await connection.query<ResultSetHeader>(
            `DELETE FROM ${turns} WHERE folded_at < ? LIMIT ${PURGE_BATCH}`,
            [tombstonesBefore],
          );
          return result.affectedRows;
        });
      }
      // Keyset batches: rows that must stay are read once, not once per batch. A row locked by a
      // record under way is deleted after it, at worst: the next lock() creates it again.
      let after: unknown = Buffer.alloc(0);
      for (let found = PURGE_BATCH; found === PURGE_BATCH; ) {
        const [rows] = await pool.query<RowDataPacket[]>(
          `SELECT session_id FROM ${leases} r WHERE r.session_id > ? AND ${free('r')}
           ORDER BY r.session_id LIMIT ${PURGE_BATCH}`,
          [after, now],
        );
        found = rows.length;
        if (found === 0) break;
        after = rows[found - 1]?.session_id;
        const ids = rows.map((row) => row.session_id);
        await transaction((connection) =>
          connection.query(`DELETE FROM ${leases} WHERE session_id IN (?) AND ${free(leases)}`, [
            ids,
            now,
          ]),
        );
      }
    },
  };
}
