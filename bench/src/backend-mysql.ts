import type { SessionContext, StoredFields } from '@ctx/core';
import { createMysqlRepository } from '@ctx/store-mysql';
import { createPool, type ResultSetHeader, type RowDataPacket } from 'mysql2/promise';
import { type Backend, MYSQL_URL, type RawDriver, runId } from './backends.js';

interface MysqlRow extends RowDataPacket {
  session_id: Buffer;
  user_id: Buffer | null;
  summary: string;
  goal: string | null;
  plan: string | null;
  progress: string | null;
  created_at: number;
  updated_at: number;
  version: number;
  fields: string | null;
}

/**
 * MySQL/MariaDB: the adapter on its own pool (from a URL) with a random table name; the raw side is
 * a second mysql2 pool of the same size. Both tables are dropped in `cleanup`.
 */
export async function createMysqlBackend(): Promise<Backend> {
  const tableName = `ctx_bench_${runId()}`;
  const repository = createMysqlRepository({ url: MYSQL_URL, tableName });
  const pool = createPool({ uri: MYSQL_URL, connectionLimit: 10 });
  try {
    await repository.migrate();
  } catch (error) {
    await repository.close().catch(() => undefined);
    await pool.end();
    throw error;
  }
  const table = `\`${tableName}\``;
  const selectSql = `SELECT session_id, user_id, summary, goal, plan, progress, created_at, updated_at, version, fields FROM ${table} WHERE session_id = ?`;
  const updateSql = `UPDATE ${table} SET user_id = ?, summary = ?, goal = ?, plan = ?, progress = ?, fields = ?, created_at = ?, updated_at = ?, version = ? WHERE session_id = ? AND version = ?`;
  const insertTurnSql = `INSERT INTO \`${tableName}_turns\` (session_id, turn_id, user_id, messages, recorded_at) VALUES (?, ?, ?, ?, ?)`;
  const raw: RawDriver = {
    getDescription:
      '`pool.query` with `SELECT … WHERE session_id = ?` on a second pool; row → object with the ids decoded from UTF-8, `JSON.parse` of plan/progress/fields and two `new Date(ms)`',
    saveDescription:
      '`pool.query` with `UPDATE … SET <9 columns> WHERE session_id = ? AND version = ?` (autocommit), `affectedRows === 1` checked; plan/progress/fields `JSON.stringify`, dates `getTime()`',
    async get(sessionId) {
      const [rows] = await pool.query<MysqlRow[]>(selectSql, [sessionId]);
      const row = rows[0];
      if (!row) return null;
      return {
        sessionId: row.session_id.toString('utf8'),
        userId: row.user_id === null ? null : row.user_id.toString('utf8'),
        summary: row.summary,
        goal: row.goal,
        plan: row.plan === null ? null : (JSON.parse(row.plan) as string[]),
        progress: row.progress === null ? null : (JSON.parse(row.progress) as string[]),
        createdAt: new Date(Number(row.created_at)),
        updatedAt: new Date(Number(row.updated_at)),
        version: Number(row.version),
        fields: row.fields === null ? null : (JSON.parse(row.fields) as StoredFields),
      };
    },
    async save(snapshot: SessionContext, expectedVersion: number) {
      const [result] = await pool.query<ResultSetHeader>(updateSql, [
        snapshot.userId,
        snapshot.summary,
        snapshot.goal,
        snapshot.plan === null ? null : JSON.stringify(snapshot.plan),
        snapshot.progress === null ? null : JSON.stringify(snapshot.progress),
        snapshot.fields ? JSON.stringify(snapshot.fields) : null,
        snapshot.createdAt.getTime(),
        snapshot.updatedAt.getTime(),
        snapshot.version,
        snapshot.sessionId,
        expectedVersion,
      ]);
      if (result.affectedRows !== 1) {
        throw new Error(`raw save: session ${snapshot.sessionId} is not at ${expectedVersion}`);
      }
    },
    insertTurnDescription:
      '`pool.query` with `INSERT INTO <table>_turns (session_id, turn_id, user_id, messages, recorded_at) VALUES (?, ?, ?, ?, ?)` (autocommit; the AUTO_INCREMENT numbers it); messages `JSON.stringify`',
    async insertTurn(sessionId, turn, recordedAt) {
      await pool.query(insertTurnSql, [
        sessionId,
        turn.turnId,
        turn.userId,
        JSON.stringify(turn.messages),
        recordedAt,
      ]);
    },
  };
  return {
    name: 'mysql',
    label: 'MySQL (MariaDB)',
    repository,
    raw,
    async cleanup() {
      try {
        await pool.query(
          `DROP TABLE IF EXISTS \`${tableName}_turns\`, \`${tableName}_leases\`, \`${tableName}_history\`, ${table}`,
        );
      } finally {
        await pool.end();
        await repository.close();
      }
    },
  };
}
