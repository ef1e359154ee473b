import type { SessionContext, StoredFields } from '@ctx/core';
import type { Row } from './postgres-client.js';
import type { TableNames } from './postgres-schema.js';

/**
 * A timestamp parameter: epoch milliseconds from the repository's clock (`now`, `expiresAt`,
 * `createdAt`…) become a `timestamptz`, exact to the millisecond. The database's own clock is
 * never used, so every repository and every backend agrees on when a session expires.
 */
// Whole seconds and the millisecond remainder are converted apart: `to_timestamp(ms / 1000.0)`
// rounds to the wrong millisecond for instants far from 1970 (a float8 cannot hold their
// microseconds), whole seconds times 10^6 stay exact in a float8 up to year ~20000.
export const at = (parameter: string) =>
  `(to_timestamp((${parameter}::bigint / 1000)::float8) + (${parameter}::bigint % 1000) * interval '1 millisecond')`;

/** A live row (of table `alias`) at time `now`: not a tombstone, not expired. */
function live(now: string, alias = ''): string {
  const p = alias === '' ? '' : `${alias}.`;
  return `${p}deleted_at IS NULL AND (${p}expires_at IS NULL OR ${p}expires_at > ${at(now)})`;
}

/** Columns selected for a snapshot (of table `alias`); timestamps as exact epoch milliseconds. */
function projection(alias = ''): string {
  const p = alias === '' ? '' : `${alias}.`;
  return `${p}session_id, ${p}user_id, ${p}summary, ${p}goal, ${p}plan, ${p}progress, ${p}fields,
  (extract(epoch FROM ${p}created_at) * 1000)::float8 AS created_at_ms,
  (extract(epoch FROM ${p}updated_at) * 1000)::float8 AS updated_at_ms,
  ${p}version`;
}

const PROJECTION = projection();

const HISTORY_COLUMNS =
  'session_id, version, user_id, summary, goal, plan, progress, fields, created_at, updated_at';

/** What a tombstone keeps: the id, the last version and the timestamps; no content, no owner. */
const BLANK =
  "user_id = NULL, summary = '', goal = NULL, plan = NULL, progress = NULL, fields = NULL";

const CONTENT = `user_id = $2::text, summary = $3::text, goal = $4::text, plan = $5::jsonb,
  progress = $6::jsonb, fields = $12::jsonb, created_at = ${at('$7')}, updated_at = ${at('$8')},
  expires_at = ${at('$10')}`;

/**
 * The statements of one repository, built once from its table names and history setting. Each
 * write is a single statement (data-modifying CTEs), so it is atomic under READ COMMITTED with
 * any number of concurrent writers, and each ends in a SELECT. A fold and a delete change the
 * turn log in the same statement; the rest of the turn log is in `postgres-turn-log.ts`.
 */
export interface Statements {
  /** `$1` session id, `$2` now. */
  read: string;
  /**
   * Insert, or take over a tombstone or an expired row at its version + 1, resetting the
   * history; returns `version`, or no row when a live session exists. Params: {@link writeParams}.
   */
  create: string;
  /** {@link create} that also folds the turns whose ids are in `$13` (a text array). */
  createFolding: string;
  /**
   * Update the live row at version `$13`; returns `version` (null when refused) and
   * `current_version` (the live version it found, locked, null when none). Params:
   * {@link writeParams} plus the expected version.
   */
  update: string;
  /** {@link update} that also folds the turns whose ids are in `$14` (a text array). */
  updateFolding: string;
  /** The live version after a refused create. `$1` session id, `$2` now. */
  liveVersion: string;
  /**
   * Tombstone the live row when it matches `$3` (user id or null) and `$4` (version or null);
   * returns the row it locked (`live`, `version`, `user_id`, `removed`), no row when absent.
   * When it tombstones the row or finds none live, the session's turns and lease go too.
   * `$1` session id, `$2` now.
   */
  remove: string;
  /** Tombstone expired rows, forget old tombstones; returns `purged`. `$1` now, `$2` tombstonesBefore. */
  purge: string;
  /** `$1` session id, `$2` limit, `$3` historyLimit, `$4` now. */
  history: string;
  /** `$1` now, then the user id, the cursor's time and id when present, then the limit. */
  scan(options: { byUser: boolean; afterCursor: boolean }): string;
}

/** Builds the SQL for the tables in `names`; `historyLimit > 0` adds the history writes. */
export function buildStatements(names: TableNames, historyLimit: number): Statements {
  const {
    qualifiedTable: table,
    qualifiedHistory: history,
    qualifiedTurns: turns,
    qualifiedLeases: leases,
  } = names;
  const recordHistory =
    historyLimit > 0
      ? `, recorded AS (
          INSERT INTO ${history} (${HISTORY_COLUMNS}) SELECT ${HISTORY_COLUMNS} FROM written
        )`
      : '';
  const trimHistory =
    historyLimit > 0
      ? `, trimmed AS (
          DELETE FROM ${history}
          WHERE session_id IN (SELECT session_id FROM written) AND version <= $9::bigint - ${historyLimit}
        )`
      : '';
  // A fold is a CTE of the compare-and-set itself: the turns leave the pending log only when the
  // write happened, in the same statement. Turn rows are locked in turn-id order, as `remove`
  // locks them, so a fold and a delete racing on one session's turns cannot deadlock.
  const foldTurns = (turnIds: string) => `, folded AS (
        UPDATE ${turns} AS f SET messages = NULL, folded_at = ${at('$11')}
        FROM (
          SELECT turn_id FROM ${turns}
          WHERE session_id = $1::text AND turn_id = ANY(${turnIds}::text[]) AND folded_at IS NULL
            AND EXISTS (SELECT 1 FROM written)
          ORDER BY turn_id FOR UPDATE
        ) AS locked
        WHERE f.session_id = $1::text AND f.turn_id = locked.turn_id
      )`;

  // The takeover and the history reset happen in the statement that inserts, so a create over a
  // tombstone or an expired row is as atomic as one over an absent id.
  const create = (fold: string) => `WITH written AS (
        INSERT INTO ${table} AS t
          (session_id, user_id, summary, goal, plan, progress, fields, created_at, updated_at, version, expires_at)
        VALUES ($1::text, $2::text, $3::text, $4::text, $5::jsonb, $6::jsonb, $12::jsonb,
          ${at('$7')}, ${at('$8')}, $9::bigint, ${at('$10')})
        ON CONFLICT (session_id) DO UPDATE SET
          user_id = excluded.user_id, summary = excluded.summary, goal = excluded.goal,
          plan = excluded.plan, progress = excluded.progress, fields = excluded.fields,
          created_at = excluded.created_at,
          updated_at = excluded.updated_at, expires_at = excluded.expires_at,
          version = t.version + 1, deleted_at = NULL
        WHERE t.deleted_at IS NOT NULL OR t.expires_at <= ${at('$11')}
        RETURNING t.*
      ), cleared AS (
        DELETE FROM ${history} WHERE session_id IN (SELECT session_id FROM written)
      )${recordHistory}${fold}
      SELECT version FROM written`;

  // `current` locks the row and sees its newest committed version, so the version reported on
  // a refusal is the one the update was refused against.
  const update = (fold: string) => `WITH current AS (
        SELECT version, ${live('$11')} AS live FROM ${table} WHERE session_id = $1::text FOR UPDATE
      ), written AS (
        UPDATE ${table} AS t SET ${CONTENT}, version = $9::bigint
        FROM current
        WHERE t.session_id = $1::text AND current.live AND current.version = $13::bigint
        RETURNING t.*
      )${trimHistory}${recordHistory}${fold}
      SELECT (SELECT version FROM written) AS version,
        (SELECT version FROM current WHERE live) AS current_version`;

  // A delete that removes the session drops its turn log with it; so does an unconditional
  // (trusted) delete that finds none live. A delete on behalf of a user never drops turns other
  // users sent for a session not created yet.
  const dropsLog =
    '(EXISTS (SELECT 1 FROM removed) OR ($3::text IS NULL AND $4::bigint IS NULL AND NOT EXISTS (SELECT 1 FROM current WHERE live)))';

  const scans = new Map<string, string>();

  return {
    read: `SELECT ${PROJECTION} FROM ${table} WHERE session_id = $1::text AND ${live('$2')}`,

    create: create(''),
    createFolding: create(foldTurns('$13')),
    update: update(''),
    updateFolding: update(foldTurns('$14')),

    liveVersion: `SELECT version FROM ${table} WHERE session_id = $1::text AND ${live('$2')}`,

    // One statement decides and tombstones on the row it locked, so no other writer can come
    // between the owner/version check and the delete.
    remove: `WITH current AS (
        SELECT version, user_id, ${live('$2')} AS live FROM ${table} WHERE session_id = $1::text FOR UPDATE
      ), removed AS (
        UPDATE ${table} AS t SET ${BLANK}, expires_at = NULL, deleted_at = ${at('$2')}
        FROM current
        WHERE t.session_id = $1::text AND current.live
          AND ($3::text IS NULL OR current.user_id IS NULL OR current.user_id = $3::text)
          AND ($4::bigint IS NULL OR current.version = $4::bigint)
        RETURNING t.session_id
      ), cleared AS (
        DELETE FROM ${history} WHERE session_id IN (SELECT session_id FROM removed)
      ), dropped AS (
        DELETE FROM ${turns} AS d USING (
          SELECT turn_id FROM ${turns} WHERE session_id = $1::text AND ${dropsLog}
          ORDER BY turn_id FOR UPDATE
        ) AS locked
        WHERE d.session_id = $1::text AND d.turn_id = locked.turn_id
      ), unleased AS (
        DELETE FROM ${leases} WHERE session_id = $1::text AND ${dropsLog}
      )
      SELECT live, version, user_id, EXISTS (SELECT 1 FROM removed) AS removed FROM current`,

    // An expired session's tombstone is dated from when it expired; one that expired before the
    // retention window is forgotten at once (and still counted). History rows of forgotten rows
    // go with them (ON DELETE CASCADE). Old folded turn ids are forgotten by a statement of
    // their own (the turn log's `forget`); pending turns stay until folded or deleted.
    purge: `WITH expired AS (
        UPDATE ${table} SET ${BLANK}, deleted_at = expires_at, expires_at = NULL
        WHERE deleted_at IS NULL AND expires_at <= ${at('$1')} AND expires_at >= ${at('$2')}
        RETURNING session_id
      ), forgotten AS (
        DELETE FROM ${table}
        WHERE deleted_at < ${at('$2')} OR (deleted_at IS NULL AND expires_at < ${at('$2')})
        RETURNING deleted_at IS NULL AS was_live
      ), cleared AS (
        DELETE FROM ${history} WHERE session_id IN (SELECT session_id FROM expired)
      )
      SELECT ((SELECT count(*) FROM expired) + (SELECT count(*) FROM forgotten WHERE was_live))::int AS purged`,

    // Versions written by a repository with a larger historyLimit, or before the live version
    // (rows of an earlier session are cleared by the create), do not count.
    history: `SELECT ${projection('h')}
      FROM ${history} h JOIN ${table} t ON t.session_id = h.session_id
      WHERE h.session_id = $1::text AND ${live('$4', 't')}
        AND h.version <= t.version AND h.version > t.version - $3::bigint
      ORDER BY h.version DESC LIMIT $2::int`,

    scan({ byUser, afterCursor }) {
      const key = `${byUser}:${afterCursor}`;
      let sql = scans.get(key);
      if (sql === undefined) {
        const conditions = [live('$1')];
        let index = 1;
        if (byUser) conditions.push(`user_id = $${++index}::text`);
        if (afterCursor) {
          conditions.push(`(updated_at, session_id) < (${at(`$${++index}`)}, $${++index}::text)`);
        }
        sql = `SELECT ${PROJECTION} FROM ${table} WHERE ${conditions.join(' AND ')}
          ORDER BY updated_at DESC, session_id DESC LIMIT $${++index}::int`;
        scans.set(key, sql);
      }
      return sql;
    },
  };
}

/** Parameters `$1`–`$12` of the create and update statements (`$12`: the custom fields). */
export function writeParams(
  snapshot: SessionContext,
  expiresAt: number | null,
  now: number,
): unknown[] {
  return [
    snapshot.sessionId,
    snapshot.userId,
    snapshot.summary,
    snapshot.goal,
    snapshot.plan === null ? null : JSON.stringify(snapshot.plan),
    snapshot.progress === null ? null : JSON.stringify(snapshot.progress),
    snapshot.createdAt.getTime(),
    snapshot.updatedAt.getTime(),
    snapshot.version,
    expiresAt,
    now,
    snapshot.fields ? JSON.stringify(snapshot.fields) : null,
  ];
}

function toFields(value: unknown): StoredFields | null {
  if (value === null || value === undefined) return null;
  const parsed: unknown = typeof value === 'string' ? JSON.parse(value) : value;
  return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
    ? (parsed as StoredFields)
    : null;
}

function toSteps(value: unknown): string[] | null {
  if (value === null || value === undefined) return null;
  const parsed: unknown = typeof value === 'string' ? JSON.parse(value) : value;
  return Array.isArray(parsed) ? parsed.map(String) : null;
}

/** Decodes a row selected with the standard projection into a fresh snapshot. */
export function toSnapshot(row: Row): SessionContext {
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
    fields: toFields(row.fields),
  };
}
