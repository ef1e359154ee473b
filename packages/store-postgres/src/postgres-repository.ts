import type { TurnLog } from '@ctx/core';
import {
  createDriverRepository,
  type DriverRepository,
  invalidOption,
  type RepositoryOptions,
  resolveRepositorySettings,
} from '@ctx/core/adapter';
import pg from 'pg';
import type { DataSource } from 'typeorm';
import {
  createDataSourceClient,
  createPoolClient,
  type PostgresClient,
  type PostgresPool,
} from './postgres-client.js';
import { createPostgresDriver } from './postgres-driver.js';
import type { PostgresMigrationResult } from './postgres-migrations.js';
import { type PostgresTableOptions, resolveTableNames } from './postgres-schema.js';

const BACKEND = 'PostgreSQL';

/**
 * Options shared by every way of connecting: the common repository options (`migrate`, `ttlMs`,
 * `historyLimit`, `tombstoneRetentionMs`, `maxPendingTurns`, `now`) and where the tables live
 * (`schema`, `tableName`).
 *
 * Every time the repository uses (expiry, tombstone age) comes from `now`, the app's clock, not
 * the database server's: keep the clocks of the app instances in sync (NTP).
 */
export interface PostgresRepositoryCommonOptions extends RepositoryOptions, PostgresTableOptions {}

/** Options of the two ways that run statements on a `pg` pool (`pool` and `url`). */
export interface PostgresPoolStatementOptions {
  /**
   * Run every statement as a named prepared statement, parsed and planned once per connection
   * (about 40 % more `get`s per second). Set `false` behind a pooler in transaction mode that does
   * not track prepared statements (PgBouncer before 1.21, or with `max_prepared_statements = 0`):
   * then no state is kept on a connection between statements.
   * @default true
   */
  preparedStatements?: boolean;
}

/** Use your `pg` pool: the repository runs every statement through it and never ends it. */
export interface PostgresRepositoryPoolOptions
  extends PostgresRepositoryCommonOptions,
    PostgresPoolStatementOptions {
  /**
   * A `pg.Pool` (or a compatible pool). Set its timeouts yourself (`connectionTimeoutMillis`,
   * `statement_timeout`, `query_timeout`), and listen for its `'error'` events as `pg` requires.
   */
  pool: PostgresPool;
  url?: never;
  dataSource?: never;
}

/** Connect with a connection string: the repository creates, owns and ends its `pg` pool. */
export interface PostgresRepositoryUrlOptions
  extends PostgresRepositoryCommonOptions,
    PostgresPoolStatementOptions {
  /**
   * A PostgreSQL connection string, e.g. `postgres://user:password@host:5432/db`
   * (`?sslmode=require` and other libpq-style parameters are honoured by `pg`).
   */
  url: string;
  pool?: never;
  dataSource?: never;
  /**
   * Maximum number of pooled connections.
   * @default 10
   */
  poolSize?: number;
  /**
   * Time limit for opening a connection, and for waiting for a free one from the pool.
   * @default 5000
   */
  connectTimeoutMs?: number;
  /**
   * Server-side `statement_timeout` of every statement. The client also gives up on a reply
   * 2 s after it (for a server that stopped answering). Together with `connectTimeoutMs` this
   * bounds how long any call can take during an outage.
   * @default 10000
   */
  statementTimeoutMs?: number;
  /**
   * `application_name` shown in `pg_stat_activity`.
   * @default 'ctx-store-postgres'
   */
  applicationName?: string;
}

/**
 * Use an existing, initialized TypeORM `DataSource` (type `postgres`). The repository runs its
 * statements through `dataSource.query()` and migrations through `dataSource.transaction()`, so
 * your logger and subscribers see them; it never initializes or destroys the DataSource, and its
 * pool settings (timeouts, size, SSL) are yours.
 */
export interface PostgresRepositoryDataSourceOptions extends PostgresRepositoryCommonOptions {
  /** Your TypeORM DataSource with `type: 'postgres'`. Initialize it before the first call. */
  dataSource: DataSource;
  pool?: never;
  url?: never;
}

/** Options of {@link createPostgresRepository}: a `pool`, a `url` or a `dataSource`, plus common options. */
export type PostgresRepositoryOptions =
  | PostgresRepositoryPoolOptions
  | PostgresRepositoryUrlOptions
  | PostgresRepositoryDataSourceOptions;

/**
 * A `ContextRepository` on PostgreSQL, with migrations and expiry management. It always has the
 * turn log, so the {@link TurnLog} members are always present.
 */
export interface PostgresRepository extends Omit<DriverRepository, keyof TurnLog>, TurnLog {
  /** The schema holding the tables. */
  readonly schema: string;
  /** The snapshot table's name (the history table appends `_history`). */
  readonly tableName: string;
  /**
   * Creates or upgrades the tables to the schema version of this code, now. Idempotent, and safe
   * to call from many app instances at once (an advisory lock serialises them; the work is one
   * transaction). Throws `SCHEMA_MISMATCH` when the database is newer than this code. Not needed
   * with `migrate: true` (the default), where the first call does it.
   */
  migrate(): Promise<PostgresMigrationResult>;
}

const DEFAULT_POOL_SIZE = 10;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_STATEMENT_TIMEOUT_MS = 10_000;
const CLIENT_READ_GRACE_MS = 2_000;

function positiveInteger(value: unknown, path: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw invalidOption(BACKEND, path, `expected a positive integer, got ${String(value)}`);
  }
  return value as number;
}

/** A pool with bounded connect, statement and read timeouts, owned by the repository. */
function createOwnedPool(options: PostgresRepositoryUrlOptions): pg.Pool {
  if (typeof options.url !== 'string' || options.url.trim() === '') {
    throw invalidOption(BACKEND, 'url', 'expected a PostgreSQL connection string');
  }
  const statementTimeoutMs =
    positiveInteger(options.statementTimeoutMs, 'statementTimeoutMs') ??
    DEFAULT_STATEMENT_TIMEOUT_MS;
  const pool = new pg.Pool({
    connectionString: options.url,
    max: positiveInteger(options.poolSize, 'poolSize') ?? DEFAULT_POOL_SIZE,
    connectionTimeoutMillis:
      positiveInteger(options.connectTimeoutMs, 'connectTimeoutMs') ?? DEFAULT_CONNECT_TIMEOUT_MS,
    statement_timeout: statementTimeoutMs,
    query_timeout: statementTimeoutMs + CLIENT_READ_GRACE_MS,
    application_name: options.applicationName ?? 'ctx-store-postgres',
    keepAlive: true,
  });
  // An idle connection the server drops emits 'error' on the pool, which removes it; without a
  // listener the event would crash the process.
  pool.on('error', () => undefined);
  return pool;
}

/** Picks the one way of connecting the options give; throws `INVALID_CONFIG` otherwise. */
function connect(options: PostgresRepositoryOptions): PostgresClient {
  const given = (['pool', 'url', 'dataSource'] as const).filter(
    (key) => options[key] !== undefined,
  );
  if (given.length !== 1) {
    throw invalidOption(BACKEND, '(root)', 'pass exactly one of `pool`, `url` and `dataSource`');
  }
  if (options.dataSource !== undefined) {
    const dataSource = options.dataSource;
    if (dataSource?.options?.type !== 'postgres') {
      throw invalidOption(
        BACKEND,
        'dataSource',
        `expected a TypeORM DataSource with type "postgres", got type "${String(dataSource?.options?.type)}"`,
      );
    }
    return createDataSourceClient(dataSource);
  }
  const { preparedStatements: prepare = true } = options;
  if (typeof prepare !== 'boolean') {
    throw invalidOption(BACKEND, 'preparedStatements', 'expected a boolean');
  }
  if (options.pool !== undefined) {
    const pool = options.pool;
    if (typeof pool?.query !== 'function' || typeof pool.connect !== 'function') {
      throw invalidOption(BACKEND, 'pool', 'expected a pg Pool (with query() and connect())');
    }
    return createPoolClient(pool, { owned: false, prepare });
  }
  const pool = createOwnedPool(options as PostgresRepositoryUrlOptions);
  return createPoolClient(pool, { owned: true, prepare });
}

/**
 * A `ContextRepository` on PostgreSQL.
 *
 * Give it your `pg` `pool` (never ended by the repository), a `url` (the repository creates a
 * pool with bounded connect and statement timeouts, and ends it in `close()`), or an initialized
 * TypeORM `dataSource` (used through its public API; never initialized or destroyed). The tables
 * are created or upgraded before the first call (`migrate: true`, the default), by
 * `await repository.migrate()`, or by TypeORM with {@link createPostgresMigrations}.
 *
 * Every save and delete is one conditional statement, atomic across processes and machines. A
 * deleted or expired session leaves a tombstone with its last version, so versions of an id never
 * restart and a stale writer can never write into a session re-created under the same id.
 *
 * The turn log is always on: `recordTurn` appends a turn idempotently (one short transaction
 * under a per-session advisory lock, so `maxPendingTurns` holds across instances), a `save` with
 * `foldedTurnIds` marks them folded in its compare-and-set statement, and `acquireLease` takes a
 * session's lease in one statement.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { createPostgresRepository } from '@ctx/store-postgres';
 *
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const repository = createPostgresRepository({ pool, ttlMs: 7 * 86_400_000 });
 * const store = new SessionContextStore({ repository, extractor });
 * // on shutdown
 * await repository.close(); // leaves your pool open
 * await pool.end();
 * ```
 *
 * @example
 * ```ts
 * // a pool the repository owns, tables migrated in a separate deploy step
 * const repository = createPostgresRepository({ url: process.env.DATABASE_URL!, migrate: false });
 * await repository.migrate();
 * ```
 *
 * @example
 * ```ts
 * // with the DataSource your app already has
 * const repository = createPostgresRepository({ dataSource, schema: 'ctx', historyLimit: 10 });
 * ```
 */
export function createPostgresRepository(options: PostgresRepositoryOptions): PostgresRepository {
  const settings = resolveRepositorySettings(BACKEND, options);
  if ('autoMigrate' in options) {
    throw invalidOption(
      BACKEND,
      'autoMigrate',
      'renamed to `migrate` (default true: the tables are created or upgraded on first use)',
    );
  }
  const names = resolveTableNames(options);
  const driver = createPostgresDriver(connect(options), names, settings);
  // The driver supports the turn log, so the helper added its members.
  return Object.assign(createDriverRepository(driver, settings), {
    schema: names.schema,
    tableName: names.table,
  }) as PostgresRepository;
}
