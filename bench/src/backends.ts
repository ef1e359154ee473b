import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ContextRepository,
  createMemoryRepository,
  type SessionContext,
  type StoredFields,
  type TurnInput,
} from '@ctx/core';
import { createPostgresRepository } from '@ctx/store-postgres';
import { createSqliteRepository } from '@ctx/store-sqlite';
import Database from 'better-sqlite3';
import pg from 'pg';

/** The stores benchmarked against their raw drivers. */
export const DATABASE_STORES = ['sqlite', 'postgres', 'redis', 'mysql'] as const;
/** A store benchmarked against its raw driver. */
export type DatabaseStore = (typeof DATABASE_STORES)[number];
/** Every store the orchestrator sections run on (`memory` is the in-process reference). */
export type StoreName = DatabaseStore | 'memory';

/** PostgreSQL used by the benchmarks: `CTX_POSTGRES_URL`, else the local default. */
export const POSTGRES_URL =
  process.env.CTX_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
/** Redis used by the benchmarks: `CTX_REDIS_URL`, else the local default. */
export const REDIS_URL = process.env.CTX_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** MySQL or MariaDB used by the benchmarks: `CTX_MYSQL_URL`, else the local default. */
export const MYSQL_URL = process.env.CTX_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

/**
 * The same operations written by hand with the driver: what an application would do without ctx.
 * `get` returns the same object shape as the adapter (steps and custom fields parsed from JSON,
 * dates constructed);
 * `save` is a compare-and-set that throws when the stored version is not `expectedVersion`.
 */
export interface RawDriver {
  /** What `get` does, in words (printed in the README). */
  readonly getDescription: string;
  /** What `save` does, in words. */
  readonly saveDescription: string;
  get(sessionId: string): Promise<SessionContext | null>;
  save(snapshot: SessionContext, expectedVersion: number): Promise<void>;
  /**
   * Called once after the adapter created the row the raw side will then write, for raw layouts
   * that keep state of their own (the Redis version hash).
   */
  prepare?(snapshot: SessionContext): Promise<void>;
  /** What `insertTurn` does, in words. */
  readonly insertTurnDescription: string;
  /**
   * Appends a pending turn to the adapter's own turn-log table (Redis: keys) with one plain
   * insert: the row `recordTurn` writes, without its duplicate check, pending bound or lock.
   * `sequence` is only used where the raw side must supply one (Redis); the tables number rows
   * themselves.
   */
  insertTurn(
    sessionId: string,
    turn: TurnInput,
    recordedAt: number,
    sequence: number,
  ): Promise<void>;
}

/** One store under test: the adapter, its raw twin, and how to clean up. */
export interface Backend {
  name: StoreName;
  /** Human-readable name for tables. */
  label: string;
  repository: ContextRepository;
  /** Absent for the memory store. */
  raw?: RawDriver;
  /** Closes every client and removes what the run wrote (file, schema, keys). */
  cleanup(): Promise<void>;
}

/** A random id fragment so that concurrent runs never share rows or keys. */
export const runId = () => randomBytes(4).toString('hex');

class RawConflictError extends Error {
  constructor(sessionId: string, expectedVersion: number) {
    super(`raw save: session ${sessionId} is not at version ${expectedVersion}`);
  }
}

interface SqliteRow {
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

/** SQLite: a temporary file in WAL mode; the raw side is a second better-sqlite3 connection. */
export function createSqliteBackend(): Backend {
  const folder = mkdtempSync(join(tmpdir(), 'ctx-bench-'));
  const filename = join(folder, 'bench.db');
  const repository = createSqliteRepository({ filename, wal: true });
  const database = new Database(filename);
  database.pragma('journal_mode = WAL');
  const table = `"${repository.tableName}"`;
  const select = database.prepare(
    `SELECT session_id, user_id, summary, goal, plan, progress, created_at, updated_at, version, fields FROM ${table} WHERE session_id = ?`,
  );
  const update = database.prepare(
    `UPDATE ${table} SET user_id = ?, summary = ?, goal = ?, plan = ?, progress = ?, fields = ?, created_at = ?, updated_at = ?, version = ? WHERE session_id = ? AND version = ?`,
  );
  const insertTurn = database.prepare(
    `INSERT INTO "${repository.tableName}_turns" (session_id, turn_id, user_id, messages, recorded_at) VALUES (?, ?, ?, ?, ?)`,
  );
  const raw: RawDriver = {
    getDescription:
      'prepared `SELECT … WHERE session_id = ?` on a second connection; row → object with `JSON.parse` of plan/progress/fields and two `new Date(ms)`',
    saveDescription:
      'prepared `UPDATE … SET <9 columns> WHERE session_id = ? AND version = ?` (autocommit), `changes === 1` checked; plan/progress/fields `JSON.stringify`, dates `getTime()`',
    async get(sessionId) {
      const row = select.get(sessionId) as SqliteRow | undefined;
      if (!row) return null;
      return {
        sessionId: row.session_id,
        userId: row.user_id,
        summary: row.summary,
        goal: row.goal,
        plan: row.plan === null ? null : (JSON.parse(row.plan) as string[]),
        progress: row.progress === null ? null : (JSON.parse(row.progress) as string[]),
        createdAt: new Date(row.created_at),
        updatedAt: new Date(row.updated_at),
        version: row.version,
        fields: row.fields === null ? null : (JSON.parse(row.fields) as StoredFields),
      };
    },
    async save(snapshot, expectedVersion) {
      const result = update.run(
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
      );
      if (result.changes !== 1) throw new RawConflictError(snapshot.sessionId, expectedVersion);
    },
    insertTurnDescription:
      'prepared `INSERT INTO <table>_turns (session_id, turn_id, user_id, messages, recorded_at) VALUES (?, ?, ?, ?, ?)` (autocommit) on the second connection; messages `JSON.stringify`',
    async insertTurn(sessionId, turn, recordedAt) {
      insertTurn.run(
        sessionId,
        turn.turnId,
        turn.userId,
        JSON.stringify(turn.messages),
        recordedAt,
      );
    },
  };
  return {
    name: 'sqlite',
    label: 'SQLite (file, WAL)',
    repository,
    raw,
    async cleanup() {
      database.close();
      await repository.close();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

interface PostgresRow {
  session_id: string;
  user_id: string | null;
  summary: string;
  goal: string | null;
  plan: string[] | null;
  progress: string[] | null;
  created_at: Date;
  updated_at: Date;
  version: string;
  fields: StoredFields | null;
}

/**
 * PostgreSQL: the adapter on its own pool (from a URL) in a random schema; the raw side is a
 * `pg.Pool` of the same size. The schema is dropped in `cleanup`.
 */
export async function createPostgresBackend(): Promise<Backend> {
  const schema = `ctx_bench_${runId()}`;
  const repository = createPostgresRepository({ url: POSTGRES_URL, schema, poolSize: 10 });
  const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 10 });
  try {
    await repository.migrate();
  } catch (error) {
    await repository.close().catch(() => undefined);
    await pool.end();
    throw error;
  }
  const table = `"${schema}"."${repository.tableName}"`;
  const selectSql = `SELECT session_id, user_id, summary, goal, plan, progress, created_at, updated_at, version, fields FROM ${table} WHERE session_id = $1`;
  const updateSql = `UPDATE ${table} SET user_id = $2, summary = $3, goal = $4, plan = $5, progress = $6, created_at = $7, updated_at = $8, version = $9, fields = $11 WHERE session_id = $1 AND version = $10`;
  const insertTurnSql = `INSERT INTO "${schema}"."${repository.tableName}_turns" (session_id, turn_id, user_id, messages, recorded_at) VALUES ($1, $2, $3, $4, $5)`;
  const raw: RawDriver = {
    getDescription:
      '`pool.query` with `SELECT … WHERE session_id = $1` (pg parses jsonb, fields included, and timestamptz itself); row → object, `Number(version)`',
    saveDescription:
      '`pool.query` with `UPDATE … SET <9 columns> WHERE session_id = $1 AND version = $10`, `rowCount === 1` checked; plan/progress/fields `JSON.stringify`',
    async get(sessionId) {
      const { rows } = await pool.query<PostgresRow>(selectSql, [sessionId]);
      const row = rows[0];
      if (!row) return null;
      return {
        sessionId: row.session_id,
        userId: row.user_id,
        summary: row.summary,
        goal: row.goal,
        plan: row.plan,
        progress: row.progress,
        createdAt: row.created_at,
        updatedAt: row.updated_at,
        version: Number(row.version),
        fields: row.fields,
      };
    },
    async save(snapshot, expectedVersion) {
      const result = await pool.query(updateSql, [
        snapshot.sessionId,
        snapshot.userId,
        snapshot.summary,
        snapshot.goal,
        snapshot.plan === null ? null : JSON.stringify(snapshot.plan),
        snapshot.progress === null ? null : JSON.stringify(snapshot.progress),
        snapshot.createdAt,
        snapshot.updatedAt,
        snapshot.version,
        expectedVersion,
        snapshot.fields ? JSON.stringify(snapshot.fields) : null,
      ]);
      if (result.rowCount !== 1) throw new RawConflictError(snapshot.sessionId, expectedVersion);
    },
    insertTurnDescription:
      '`pool.query` with `INSERT INTO <schema>.<table>_turns (session_id, turn_id, user_id, messages, recorded_at) VALUES ($1, …, $5)` (autocommit); messages `JSON.stringify` into jsonb, recorded_at a `Date`',
    async insertTurn(sessionId, turn, recordedAt) {
      await pool.query(insertTurnSql, [
        sessionId,
        turn.turnId,
        turn.userId,
        JSON.stringify(turn.messages),
        new Date(recordedAt),
      ]);
    },
  };
  return {
    name: 'postgres',
    label: 'PostgreSQL',
    repository,
    raw,
    async cleanup() {
      try {
        await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await pool.end();
        await repository.close();
      }
    },
  };
}

/** The in-memory reference repository (no raw twin): shows the cost of the store alone. */
export function createMemoryBackend(): Backend {
  const repository = createMemoryRepository();
  return {
    name: 'memory',
    label: 'memory (reference)',
    repository,
    async cleanup() {
      await repository.close();
    },
  };
}

/** Creates the backend of `name`. */
export async function createBackend(name: StoreName): Promise<Backend> {
  switch (name) {
    case 'sqlite':
      return createSqliteBackend();
    case 'postgres':
      return createPostgresBackend();
    case 'redis': {
      const { createRedisBackend } = await import('./backend-redis.js');
      return createRedisBackend();
    }
    case 'mysql': {
      const { createMysqlBackend } = await import('./backend-mysql.js');
      return createMysqlBackend();
    }
    case 'memory':
      return createMemoryBackend();
  }
}
