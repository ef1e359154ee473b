import type { SessionContext } from '@ctx/core';
import type { TableNames } from './postgres-schema.js';

/** A row is visible unless it has an expiry in the past. */
const LIVE = '(expires_at IS NULL OR expires_at > now())';

/** Columns selected for a snapshot (of table `alias`); timestamps as exact epoch milliseconds. */
function projection(alias = ''): string {
  const p = alias === '' ? '' : `${alias}.`;
  return `${p}session_id, ${p}user_id, ${p}summary, ${p}goal, ${p}plan, ${p}progress,
  (extract(epoch FROM ${p}created_at) * 1000)::float8 AS created_at_ms,
  (extract(epoch FROM ${p}updated_at) * 1000)::float8 AS updated_at_ms,
  ${p}version`;
}

const PROJECTION = projection();

const HISTORY_COLUMNS =
  'session_id, version, user_id, summary, goal, plan, progress, created_at, updated_at';

const EXPIRES_AT = "now() + $10::float8 * interval '1 millisecond'";

/** The statements of one repository, built once from its table names and history setting. */
export interface Statements {
  get: string;
  /** Insert-if-absent (or over an expired row). Params: see {@link saveParams}. */
  create: string;
  /** Update-where-version. Params: {@link saveParams} plus the expected version as `$11`. */
  update: string;
  currentVersion: string;
  delete: string;
  purgeExpired: string;
  history: string;
  list(options: { byUser: boolean; afterCursor: boolean }): string;
}

/** Builds the SQL for the tables in `names`; `historyLimit > 0` adds the history writes. */
export function buildStatements(names: TableNames, historyLimit: number): Statements {
  const { qualifiedTable: table, qualifiedHistory: history } = names;
  const recordHistory =
    historyLimit > 0
      ? `, recorded AS (
          INSERT INTO ${history} (${HISTORY_COLUMNS}) SELECT ${HISTORY_COLUMNS} FROM written
        )`
      : '';
  const listCache = new Map<string, string>();

  return {
    get: `SELECT ${PROJECTION} FROM ${table} WHERE session_id = $1::text AND ${LIVE}`,

    // The expired-row takeover and the history reset happen in the same statement as the insert,
    // so a create over an expired session is as atomic as one over an absent session.
    create: `WITH written AS (
        INSERT INTO ${table} AS t
          (session_id, user_id, summary, goal, plan, progress, created_at, updated_at, version, expires_at)
        VALUES ($1::text, $2::text, $3::text, $4::text, $5::jsonb, $6::jsonb,
          $7::timestamptz, $8::timestamptz, $9::bigint, ${EXPIRES_AT})
        ON CONFLICT (session_id) DO UPDATE SET
          user_id = excluded.user_id, summary = excluded.summary, goal = excluded.goal,
          plan = excluded.plan, progress = excluded.progress, created_at = excluded.created_at,
          updated_at = excluded.updated_at, version = excluded.version, expires_at = excluded.expires_at
        WHERE t.expires_at IS NOT NULL AND t.expires_at <= now()
        RETURNING t.*
      ), cleared AS (
        DELETE FROM ${history} WHERE session_id IN (SELECT session_id FROM written)
      )${recordHistory}
      SELECT ${PROJECTION} FROM written`,

    update:
      historyLimit > 0
        ? `WITH written AS (
            UPDATE ${table} AS t SET
              user_id = $2::text, summary = $3::text, goal = $4::text, plan = $5::jsonb,
              progress = $6::jsonb, created_at = $7::timestamptz, updated_at = $8::timestamptz,
              version = $9::bigint, expires_at = ${EXPIRES_AT}
            WHERE t.session_id = $1::text AND t.version = $11::bigint AND ${LIVE}
            RETURNING t.*
          ), trimmed AS (
            DELETE FROM ${history}
            WHERE session_id IN (SELECT session_id FROM written) AND version <= $9::bigint - ${historyLimit}
          )${recordHistory}
          SELECT ${PROJECTION} FROM written`
        : `UPDATE ${table} SET
            user_id = $2::text, summary = $3::text, goal = $4::text, plan = $5::jsonb,
            progress = $6::jsonb, created_at = $7::timestamptz, updated_at = $8::timestamptz,
            version = $9::bigint, expires_at = ${EXPIRES_AT}
          WHERE session_id = $1::text AND version = $11::bigint AND ${LIVE}
          RETURNING ${PROJECTION}`,

    currentVersion: `SELECT version FROM ${table} WHERE session_id = $1::text AND ${LIVE}`,

    delete: `DELETE FROM ${table} WHERE session_id = $1::text RETURNING ${LIVE} AS live`,

    purgeExpired: `DELETE FROM ${table} WHERE expires_at <= now()`,

    // Rows newer than the live version can only be leftovers of an expired earlier session.
    history: `SELECT ${projection('h')}
      FROM ${history} h JOIN ${table} t ON t.session_id = h.session_id
      WHERE h.session_id = $1::text AND h.version <= t.version
        AND (t.expires_at IS NULL OR t.expires_at > now())
      ORDER BY h.version DESC LIMIT $2::int`,

    list({ byUser, afterCursor }) {
      const key = `${byUser}:${afterCursor}`;
      let sql = listCache.get(key);
      if (sql === undefined) {
        const conditions = [LIVE];
        let index = 0;
        if (byUser) conditions.push(`user_id = $${++index}::text`);
        if (afterCursor) {
          conditions.push(
            `(updated_at, session_id) < ($${++index}::timestamptz, $${++index}::text)`,
          );
        }
        sql = `SELECT ${PROJECTION} FROM ${table} WHERE ${conditions.join(' AND ')}
          ORDER BY updated_at DESC, session_id DESC LIMIT $${++index}::int`;
        listCache.set(key, sql);
      }
      return sql;
    },
  };
}

/** Parameters `$1`–`$10` of the create and update statements. */
export function saveParams(snapshot: SessionContext, ttlMs: number | undefined): unknown[] {
  return [
    snapshot.sessionId,
    snapshot.userId,
    snapshot.summary,
    snapshot.goal,
    snapshot.plan === null ? null : JSON.stringify(snapshot.plan),
    snapshot.progress === null ? null : JSON.stringify(snapshot.progress),
    snapshot.createdAt,
    snapshot.updatedAt,
    snapshot.version,
    ttlMs ?? null,
  ];
}

function toSteps(value: unknown): string[] | null {
  if (value === null || value === undefined) return null;
  const parsed: unknown = typeof value === 'string' ? JSON.parse(value) : value;
  return Array.isArray(parsed) ? parsed.map(String) : null;
}

/** Decodes a row selected with the standard projection. */
export function toSnapshot(row: Record<string, unknown>): SessionContext {
  return {
    sessionId: String(row.session_id),
    userId: row.user_id === null || row.user_id === undefined ? null : String(row.user_id),
    summary: String(row.summary),
    goal: row.goal === null || row.goal === undefined ? null : String(row.goal),
    plan: toSteps(row.plan),
    progress: toSteps(row.progress),
    createdAt: new Date(Number(row.created_at_ms)),
    updatedAt: new Date(Number(row.updated_at_ms)),
    version: Number(row.version),
  };
}
