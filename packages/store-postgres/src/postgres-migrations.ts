import { StorageError } from '@ctx/core';
import type { MigrationInterface, QueryRunner } from 'typeorm';
import type { PostgresClient, Row, SqlRunner } from './postgres-client.js';
import {
  type PostgresTableOptions,
  resolveTableNames,
  type TableNames,
} from './postgres-schema.js';

/** The schema version this code reads and writes. `migrate()` brings a database up to it. */
export const POSTGRES_SCHEMA_VERSION = 4;

/** What {@link PostgresRepository.migrate} did. */
export interface PostgresMigrationResult {
  /** The schema version the tables are at now (always {@link POSTGRES_SCHEMA_VERSION}). */
  version: number;
  /** Names of the migrations applied by this call, oldest first; empty when already up to date. */
  applied: string[];
}

interface MigrationStep {
  version: number;
  name: string;
  /** A JavaScript timestamp: TypeORM requires migration names to end with one. */
  timestamp: number;
  up(query: SqlRunner, names: TableNames): Promise<void>;
  down(query: SqlRunner, names: TableNames): Promise<void>;
}

// Released steps are never edited: every change to the tables is a new step at the end.
const STEPS: readonly MigrationStep[] = [
  {
    version: 1,
    name: 'CreateSessionContexts',
    timestamp: 1764028800000,
    async up(query, { table, history, qualifiedTable, qualifiedHistory }) {
      await query(`CREATE TABLE ${qualifiedTable} (
        session_id text COLLATE "C" NOT NULL,
        user_id text NULL,
        summary text NOT NULL,
        goal text NULL,
        plan jsonb NULL,
        progress jsonb NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        version bigint NOT NULL,
        expires_at timestamptz NULL,
        CONSTRAINT "${table}_pkey" PRIMARY KEY (session_id),
        CONSTRAINT "${table}_version_check" CHECK (version >= 1)
      )`);
      await query(
        `CREATE INDEX "${table}_user_list_idx" ON ${qualifiedTable} (user_id, updated_at DESC, session_id DESC)`,
      );
      await query(
        `CREATE INDEX "${table}_list_idx" ON ${qualifiedTable} (updated_at DESC, session_id DESC)`,
      );
      await query(
        `CREATE INDEX "${table}_expires_idx" ON ${qualifiedTable} (expires_at) WHERE expires_at IS NOT NULL`,
      );
      await query(`CREATE TABLE ${qualifiedHistory} (
        id bigint GENERATED ALWAYS AS IDENTITY,
        session_id text COLLATE "C" NOT NULL,
        user_id text NULL,
        summary text NOT NULL,
        goal text NULL,
        plan jsonb NULL,
        progress jsonb NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        version bigint NOT NULL,
        CONSTRAINT "${history}_pkey" PRIMARY KEY (id),
        CONSTRAINT "${history}_session_fkey" FOREIGN KEY (session_id)
          REFERENCES ${qualifiedTable} (session_id) ON DELETE CASCADE
      )`);
      await query(
        `CREATE INDEX "${history}_session_idx" ON ${qualifiedHistory} (session_id, version DESC)`,
      );
    },
    async down(query, { qualifiedTable, qualifiedHistory }) {
      await query(`DROP TABLE IF EXISTS ${qualifiedHistory}`);
      await query(`DROP TABLE IF EXISTS ${qualifiedTable}`);
    },
  },
  {
    // Contracts v2: a deleted or expired session leaves a tombstone (the row, blanked, with its
    // last version and `deleted_at`) so versions of an id never restart. Adding a nullable column
    // rewrites nothing; the partial index starts empty and serves the purge of old tombstones.
    version: 2,
    name: 'AddTombstones',
    timestamp: 1795910400000,
    async up(query, { table, qualifiedTable }) {
      await query(`ALTER TABLE ${qualifiedTable} ADD COLUMN deleted_at timestamptz NULL`);
      await query(
        `CREATE INDEX "${table}_deleted_idx" ON ${qualifiedTable} (deleted_at) WHERE deleted_at IS NOT NULL`,
      );
    },
    async down(query, { schema, table, qualifiedTable }) {
      // Version 1 has no tombstones: left in place, they would read as empty live sessions.
      await query(`DELETE FROM ${qualifiedTable} WHERE deleted_at IS NOT NULL`);
      await query(`DROP INDEX IF EXISTS "${schema}"."${table}_deleted_idx"`);
      await query(`ALTER TABLE ${qualifiedTable} DROP COLUMN IF EXISTS deleted_at`);
    },
  },
  {
    // The turn log: turns recorded before they are folded into the snapshot, and one lease per
    // session. New tables only, so existing sessions, tombstones and history are untouched. A
    // folded turn keeps its row without messages (`folded_at` set) so its id stays a duplicate.
    // The identity is global and grows with every turn; any sequence greater than the ones a
    // session used is what the log needs.
    version: 3,
    name: 'AddTurnLog',
    timestamp: 1811808000000,
    async up(query, { turns, leases, qualifiedTurns, qualifiedLeases }) {
      await query(`CREATE TABLE ${qualifiedTurns} (
        session_id text COLLATE "C" NOT NULL,
        turn_id text COLLATE "C" NOT NULL,
        sequence bigint GENERATED ALWAYS AS IDENTITY,
        user_id text NULL,
        messages jsonb NULL,
        recorded_at timestamptz NOT NULL,
        folded_at timestamptz NULL,
        CONSTRAINT "${turns}_pkey" PRIMARY KEY (session_id, turn_id),
        CONSTRAINT "${turns}_messages_check" CHECK (messages IS NOT NULL OR folded_at IS NOT NULL)
      )`);
      await query(
        `CREATE INDEX "${turns}_pending_idx" ON ${qualifiedTurns} (session_id, sequence) WHERE folded_at IS NULL`,
      );
      await query(
        `CREATE INDEX "${turns}_folded_idx" ON ${qualifiedTurns} (folded_at) WHERE folded_at IS NOT NULL`,
      );
      await query(`CREATE TABLE ${qualifiedLeases} (
        session_id text COLLATE "C" NOT NULL,
        holder text NOT NULL,
        expires_at timestamptz NOT NULL,
        CONSTRAINT "${leases}_pkey" PRIMARY KEY (session_id)
      )`);
    },
    async down(query, { qualifiedTurns, qualifiedLeases }) {
      // Version 2 has no turn log: pending turns not yet folded are lost with it.
      await query(`DROP TABLE IF EXISTS ${qualifiedLeases}`);
      await query(`DROP TABLE IF EXISTS ${qualifiedTurns}`);
    },
  },
  {
    // Custom fields: one jsonb column for all of them (a new field needs no migration). A
    // nullable column without a default rewrites nothing; existing rows read as no fields.
    version: 4,
    name: 'AddCustomFields',
    timestamp: 1827792000000,
    async up(query, { qualifiedTable, qualifiedHistory }) {
      await query(`ALTER TABLE ${qualifiedTable} ADD COLUMN fields jsonb NULL`);
      await query(`ALTER TABLE ${qualifiedHistory} ADD COLUMN fields jsonb NULL`);
    },
    async down(query, { qualifiedTable, qualifiedHistory }) {
      // Version 3 has no custom fields: they are lost with the columns.
      await query(`ALTER TABLE ${qualifiedHistory} DROP COLUMN IF EXISTS fields`);
      await query(`ALTER TABLE ${qualifiedTable} DROP COLUMN IF EXISTS fields`);
    },
  },
];

// First key of the two-key advisory lock: "ctx1" in ASCII, so other apps' locks do not collide.
const LOCK_NAMESPACE = 0x63747831;

/**
 * Serialises migrations of one schema. Inside a transaction the lock is released by its end;
 * outside one (TypeORM's migrationsTransactionMode "none") a session lock is taken and released.
 */
async function withSchemaLock<T>(
  query: SqlRunner,
  inTransaction: boolean,
  names: TableNames,
  body: () => Promise<T>,
): Promise<T> {
  const lockParams = [LOCK_NAMESPACE, names.schema];
  if (inTransaction) {
    await query('SELECT pg_advisory_xact_lock($1::int, hashtext($2::text))', lockParams);
    return body();
  }
  await query('SELECT pg_advisory_lock($1::int, hashtext($2::text))', lockParams);
  try {
    return await body();
  } finally {
    await query('SELECT pg_advisory_unlock($1::int, hashtext($2::text))', lockParams);
  }
}

/** Creates the schema and the bookkeeping table when missing (only then: no CREATE privilege needed later). */
async function ensureBookkeeping(query: SqlRunner, names: TableNames): Promise<void> {
  const [state] = await query(
    `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1::text) AS has_schema,
            to_regclass($2::text) IS NOT NULL AS has_table`,
    [names.schema, names.qualifiedMigrations],
  );
  if (!state?.has_schema) {
    await query(`CREATE SCHEMA IF NOT EXISTS "${names.schema}"`);
  }
  if (!state?.has_table) {
    await query(`CREATE TABLE IF NOT EXISTS ${names.qualifiedMigrations} (
      table_name text NOT NULL,
      version integer NOT NULL,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (table_name, version)
    )`);
  }
}

async function appliedVersions(query: SqlRunner, names: TableNames): Promise<number[]> {
  const rows = await query(
    `SELECT version FROM ${names.qualifiedMigrations} WHERE table_name = $1::text ORDER BY version`,
    [names.table],
  );
  return rows.map((row) => Number(row.version));
}

function migrationName(step: MigrationStep, names: TableNames): string {
  return `Ctx${step.name}_${names.schema}_${names.table}_${step.timestamp}`;
}

async function applyStep(query: SqlRunner, names: TableNames, step: MigrationStep): Promise<void> {
  await step.up(query, names);
  await query(
    `INSERT INTO ${names.qualifiedMigrations} (table_name, version, name) VALUES ($1::text, $2::int, $3::text)`,
    [names.table, step.version, migrationName(step, names)],
  );
}

function newerSchemaError(names: TableNames, version: number): StorageError {
  return new StorageError(
    'SCHEMA_MISMATCH',
    `The ctx tables ${names.display} are at schema version ${version}, newer than this version of @ctx/store-postgres understands (${POSTGRES_SCHEMA_VERSION}). Upgrade @ctx/store-postgres in this app; do not write with an older version.`,
  );
}

/**
 * Brings the tables up to {@link POSTGRES_SCHEMA_VERSION} in one transaction, under an advisory
 * lock on the schema, so any number of app instances may call it at once.
 */
export async function runPostgresMigrations(
  client: PostgresClient,
  names: TableNames,
): Promise<PostgresMigrationResult> {
  const applied = await client.transaction((query) =>
    withSchemaLock(query, true, names, async () => {
      await ensureBookkeeping(query, names);
      const versions = await appliedVersions(query, names);
      const newest = Math.max(0, ...versions);
      if (newest > POSTGRES_SCHEMA_VERSION) throw newerSchemaError(names, newest);
      const done: string[] = [];
      for (const step of STEPS) {
        if (versions.includes(step.version)) continue;
        await applyStep(query, names, step);
        done.push(migrationName(step, names));
      }
      return done;
    }),
  );
  return { version: POSTGRES_SCHEMA_VERSION, applied };
}

/**
 * Reads the schema version of the tables: `null` when they were never migrated. Throws
 * `SCHEMA_MISMATCH` when the version is newer than this code.
 */
export async function readSchemaVersion(
  query: SqlRunner,
  names: TableNames,
): Promise<number | null> {
  let rows: Row[];
  try {
    rows = await query(
      `SELECT max(version) AS version FROM ${names.qualifiedMigrations} WHERE table_name = $1::text`,
      [names.table],
    );
  } catch (error) {
    // TypeORM wraps the pg error in a QueryFailedError that copies its `code`.
    const { code } = error as { code?: unknown };
    if (code === '42P01' || code === '3F000') return null;
    throw error;
  }
  const version = rows[0]?.version;
  if (version === null || version === undefined) return null;
  const number = Number(version);
  if (number > POSTGRES_SCHEMA_VERSION) throw newerSchemaError(names, number);
  return number;
}

/** A TypeORM migration class, as accepted by the DataSource `migrations` option. */
export type PostgresMigrationClass = new () => MigrationInterface;

/**
 * The package's migrations as TypeORM migration classes, for apps that run migrations with
 * TypeORM (`dataSource.runMigrations()`, the CLI, or `migrationsRun: true`) instead of
 * `repository.migrate()`. Both paths record what they applied in the same `ctx_migrations` table
 * and take the same advisory lock, so they can be mixed and re-run safely. Give them the same
 * table options as the repository.
 *
 * @example
 * ```ts
 * const dataSource = new DataSource({
 *   type: 'postgres',
 *   url: process.env.DATABASE_URL,
 *   migrations: [...myMigrations, ...createPostgresMigrations({ schema: 'app' })],
 * });
 * await dataSource.initialize();
 * await dataSource.runMigrations();
 * ```
 */
export function createPostgresMigrations(
  options: PostgresTableOptions = {},
): PostgresMigrationClass[] {
  const names = resolveTableNames(options);
  const runnerOf =
    (queryRunner: QueryRunner): SqlRunner =>
    async (sql, params) =>
      (await queryRunner.query(sql, params)) as Row[];
  return STEPS.map((step) => {
    const name = migrationName(step, names);
    return class CtxPostgresMigration implements MigrationInterface {
      readonly name = name;

      async up(queryRunner: QueryRunner): Promise<void> {
        const query = runnerOf(queryRunner);
        await withSchemaLock(query, queryRunner.isTransactionActive, names, async () => {
          await ensureBookkeeping(query, names);
          const versions = await appliedVersions(query, names);
          if (!versions.includes(step.version)) await applyStep(query, names, step);
        });
      }

      async down(queryRunner: QueryRunner): Promise<void> {
        const query = runnerOf(queryRunner);
        await withSchemaLock(query, queryRunner.isTransactionActive, names, async () => {
          await step.down(query, names);
          await query(
            `DELETE FROM ${names.qualifiedMigrations} WHERE table_name = $1::text AND version = $2::int`,
            [names.table, step.version],
          );
        });
      }
    };
  });
}
