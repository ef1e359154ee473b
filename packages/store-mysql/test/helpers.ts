import { randomBytes } from 'node:crypto';
import type { RawSnapshot } from '@ctx/conformance';
import { createPool, type Pool, type RowDataPacket } from 'mysql2/promise';

/** The test server; the suites fail (never skip) when it cannot be reached. */
export const MYSQL_URL = process.env.CTX_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

/** A fresh table name, so parallel suites and repeated runs never share tables. */
export function randomTable(label = 'test'): string {
  return `ctx_${label}_${randomBytes(6).toString('hex')}`;
}

/** A pool on the test server, as an application would create it. */
export function createTestPool(connectionLimit = 10): Pool {
  return createPool({ uri: MYSQL_URL, connectionLimit });
}

/** Drops a session table, the tables named after it and its meta row. */
export async function dropTables(pool: Pool, tableName: string): Promise<void> {
  const tables = ['', '_history', '_turns', '_leases'].map((suffix) => `\`${tableName}${suffix}\``);
  await pool.query(`DROP TABLE IF EXISTS ${tables.join(', ')}`);
  await pool
    .query('DELETE FROM ctx_meta WHERE table_name = ?', [tableName])
    .catch((error: { errno?: number }) => {
      if (error.errno !== 1146) throw error;
    });
}

/**
 * Reads a stored session straight through mysql2, bypassing the repository: `null` when there is
 * no row or only a tombstone.
 */
export async function readRawRow(
  pool: Pool,
  tableName: string,
  sessionId: string,
): Promise<RawSnapshot | null> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT * FROM \`${tableName}\` WHERE session_id = ? AND deleted_at IS NULL`,
    [sessionId],
  );
  const row = rows[0];
  if (!row) return null;
  return {
    sessionId: (row.session_id as Buffer).toString('utf8'),
    userId: row.user_id === null ? null : (row.user_id as Buffer).toString('utf8'),
    summary: row.summary,
    goal: row.goal,
    plan: row.plan === null ? null : JSON.parse(row.plan),
    progress: row.progress === null ? null : JSON.parse(row.progress),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    version: Number(row.version),
    fields: row.fields === null ? null : JSON.parse(row.fields),
  };
}
