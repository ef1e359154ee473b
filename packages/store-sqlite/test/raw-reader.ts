import type { RawSnapshot } from '@ctx/conformance';
import type Database from 'better-sqlite3';

interface RawRow {
  session_id: string;
  user_id: string | null;
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
 * Reads a session row straight through better-sqlite3, decoding only the JSON columns. A tombstone
 * (a row with `deleted_at` set: a deleted or purged session keeping its last version) is no
 * session, so it reads as absent.
 */
export function createRawReader(database: Database.Database, tableName = 'ctx_sessions') {
  return async (sessionId: string): Promise<RawSnapshot | null> => {
    const row = database
      .prepare(
        `SELECT session_id, user_id, summary, goal, plan, progress, created_at, updated_at, version, fields
         FROM "${tableName}" WHERE session_id = ? AND deleted_at IS NULL`,
      )
      .get(sessionId) as RawRow | undefined;
    if (!row) return null;
    return {
      sessionId: row.session_id,
      userId: row.user_id,
      summary: row.summary,
      goal: row.goal,
      plan: row.plan === null ? null : (JSON.parse(row.plan) as string[]),
      progress: row.progress === null ? null : (JSON.parse(row.progress) as string[]),
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      version: row.version,
      fields: row.fields === null ? null : JSON.parse(row.fields),
    };
  };
}
