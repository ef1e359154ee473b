import { randomBytes } from 'node:crypto';
import type { RawSnapshot } from '@ctx/conformance';
import pg from 'pg';
import { DataSource } from 'typeorm';

/** The test server; the suites fail (never skip) when it cannot be reached. */
export const POSTGRES_URL =
  process.env.CTX_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A fresh schema name, so parallel suites and repeated runs never share tables. */
export function randomSchema(label = 'test'): string {
  return `ctx_${label}_${randomBytes(6).toString('hex')}`;
}

/** A random session or user id. */
export function randomId(label = 'session'): string {
  return `${label}-${randomBytes(8).toString('hex')}`;
}

/** A TypeORM DataSource on the test server (not initialized). */
export function createTestDataSource(extra: Record<string, unknown> = {}): DataSource {
  return new DataSource({
    type: 'postgres',
    url: POSTGRES_URL,
    poolSize: 10,
    connectTimeoutMS: 5_000,
    extra: { statement_timeout: 20_000, ...extra },
  });
}

/** Runs `body` with a raw `pg` client that bypasses TypeORM and the repository. */
export async function withRawClient<T>(body: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.end();
  }
}

/** Drops a test schema and everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  await withRawClient((client) => client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
}

/**
 * Reads a stored session straight through `pg`, with timestamps as epoch milliseconds. A
 * tombstone (a deleted or purged session: `deleted_at` set) is no session: `null`.
 */
export async function readRawRow(
  client: pg.Client | pg.Pool,
  schema: string,
  sessionId: string,
  tableName = 'ctx_sessions',
): Promise<RawSnapshot | null> {
  const { rows } = await client.query(
    `SELECT session_id, user_id, summary, goal, plan, progress, fields, created_at, updated_at, version
     FROM "${schema}"."${tableName}" WHERE session_id = $1 AND deleted_at IS NULL`,
    [sessionId],
  );
  const row = rows[0];
  if (!row) return null;
  return {
    sessionId: row.session_id,
    userId: row.user_id,
    summary: row.summary,
    goal: row.goal,
    plan: row.plan,
    progress: row.progress,
    createdAt: (row.created_at as Date).getTime(),
    updatedAt: (row.updated_at as Date).getTime(),
    version: Number(row.version),
    fields: row.fields,
  };
}
