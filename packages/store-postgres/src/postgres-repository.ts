import {
  assertValidSave,
  assertValidSessionId,
  type ContextRepository,
  LIMITS,
  type ListPage,
  type ListQuery,
  normalizeListQuery,
  type RepositoryCapabilities,
  type SaveOptions,
  type SessionContext,
  StorageError,
  toListPage,
  ValidationError,
  VersionConflictError,
} from '@ctx/core';
import { DataSource, type QueryRunner } from 'typeorm';
import { isBrokenConnectionError, toStorageError } from './postgres-errors.js';
import {
  POSTGRES_SCHEMA_VERSION,
  type PostgresMigrationResult,
  readSchemaVersion,
  runPostgresMigrations,
} from './postgres-migrations.js';
import {
  createPostgresEntities,
  type PostgresTableOptions,
  resolveTableNames,
  type TableNames,
} from './postgres-schema.js';
import { buildStatements, type Statements, saveParams, toSnapshot } from './postgres-sql.js';

/** Options shared by both ways of connecting. */
export interface PostgresRepositoryCommonOptions extends PostgresTableOptions {
  /**
   * Sessions expire this many milliseconds after their last write (measured on the database
   * server's clock). Expired sessions are invisible to `get`, `list` and `history`, and a create
   * may take their id over; `purgeExpired()` deletes them. Enables the `ttl` capability.
   * @default undefined (sessions never expire)
   */
  ttlMs?: number;
  /**
   * Keep the last N versions of every session (the current one included) in
   * `<tableName>_history`, readable through `history()`. Enables the `history` capability.
   * @default 0 (no history is written)
   */
  historyLimit?: number;
  /**
   * Run `migrate()` automatically before the first call when the tables are missing or older
   * than this code. When `false`, such a call fails with `SCHEMA_MISMATCH` until `migrate()` (or
   * your TypeORM migrations) has run.
   * @default false
   */
  autoMigrate?: boolean;
}

/** Connect with a connection string: the repository creates, owns and closes its pool. */
export interface PostgresRepositoryUrlOptions extends PostgresRepositoryCommonOptions {
  /**
   * A PostgreSQL connection string, e.g. `postgres://user:password@host:5432/db`
   * (`?sslmode=require` and other libpq-style parameters are honoured by `pg`).
   */
  url: string;
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
 * Use an existing, initialized TypeORM `DataSource` (type `postgres`). The repository never
 * initializes or destroys it; its pool settings (timeouts, size, SSL) are yours.
 */
export interface PostgresRepositoryDataSourceOptions extends PostgresRepositoryCommonOptions {
  /** Your TypeORM DataSource with `type: 'postgres'`. Initialize it before the first call. */
  dataSource: DataSource;
  url?: never;
}

/** Options of {@link createPostgresRepository}: a `url` or a `dataSource`, plus common options. */
export type PostgresRepositoryOptions =
  | PostgresRepositoryUrlOptions
  | PostgresRepositoryDataSourceOptions;

/** A {@link ContextRepository} on PostgreSQL, with migrations and expiry management. */
export interface PostgresRepository extends ContextRepository {
  /** `ttl` when `ttlMs` is set, `history` when `historyLimit > 0`. */
  readonly capabilities: RepositoryCapabilities;
  /** The schema holding the tables. */
  readonly schema: string;
  /** The snapshot table's name (the history table appends `_history`). */
  readonly tableName: string;
  /**
   * Creates or upgrades the tables to the schema version of this code. Idempotent, and safe to
   * call from many app instances at once (an advisory lock serialises them; the work is one
   * transaction). Throws `SCHEMA_MISMATCH` when the database is newer than this code.
   */
  migrate(): Promise<PostgresMigrationResult>;
  /**
   * Deletes every expired session (and its history) now; returns how many were deleted. Works
   * whatever this repository's own `ttlMs`: expiry is stored per row.
   */
  purgeExpired(): Promise<number>;
}

const DEFAULT_POOL_SIZE = 10;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_STATEMENT_TIMEOUT_MS = 10_000;
const CLIENT_READ_GRACE_MS = 2_000;
const CAS_ATTEMPTS = 3;

interface QueryOutcome {
  rows: Array<Record<string, unknown>>;
  rowCount: number;
}

function configError(path: string, message: string): ValidationError {
  return new ValidationError('INVALID_CONFIG', `Invalid ${path}: ${message}`, {
    issues: [{ path, message }],
  });
}

function positiveInteger(value: unknown, path: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw configError(path, `expected a positive integer, got ${String(value)}`);
  }
  return value as number;
}

function buildOwnedDataSource(options: PostgresRepositoryUrlOptions, names: TableNames) {
  const statementTimeoutMs =
    positiveInteger(options.statementTimeoutMs, 'statementTimeoutMs') ??
    DEFAULT_STATEMENT_TIMEOUT_MS;
  return new DataSource({
    type: 'postgres',
    url: options.url,
    entities: Object.values(
      createPostgresEntities({ schema: names.schema, tableName: names.table }),
    ),
    poolSize: positiveInteger(options.poolSize, 'poolSize') ?? DEFAULT_POOL_SIZE,
    connectTimeoutMS:
      positiveInteger(options.connectTimeoutMs, 'connectTimeoutMs') ?? DEFAULT_CONNECT_TIMEOUT_MS,
    applicationName: options.applicationName ?? 'ctx-store-postgres',
    synchronize: false,
    migrationsRun: false,
    logging: false,
    installExtensions: false,
    extra: {
      statement_timeout: statementTimeoutMs,
      query_timeout: statementTimeoutMs + CLIENT_READ_GRACE_MS,
      keepAlive: true,
    },
  });
}

/**
 * Gives a connection that failed back to the pool as broken, so the pool destroys it instead of
 * handing it out again. TypeORM's public `release()` cannot pass the error to pg-pool; its
 * internal `releasePostgresConnection(error)` does, and is used when present.
 */
function discardConnection(queryRunner: QueryRunner, error: unknown): void {
  const release = (
    queryRunner as unknown as { releasePostgresConnection?: (error: unknown) => unknown }
  ).releasePostgresConnection;
  if (typeof release === 'function') release.call(queryRunner, error);
}

/** The part of a `pg` pool (TypeORM's `driver.master`) that `queryPool` uses. */
interface PgPool {
  query(
    sql: string,
    params: unknown[],
  ): Promise<{ rows?: Array<Record<string, unknown>>; rowCount?: number | null }>;
}

/**
 * One query on the repository's own pool, without TypeORM's query runner: for a DataSource nobody
 * else sees (no logging, no subscribers) the runner adds nothing but costs about a tenth of a
 * `get`. `pool.query` listens for errors on the connection while it holds it (a server shutting
 * down mid-call would otherwise raise an unhandled 'error' event) and destroys a connection that
 * failed instead of handing it out again.
 */
async function queryPool(pool: PgPool, sql: string, params: unknown[]): Promise<QueryOutcome> {
  const result = await pool.query(sql, params);
  return { rows: result.rows ?? [], rowCount: result.rowCount ?? 0 };
}

class PostgresContextRepository implements PostgresRepository {
  readonly capabilities: RepositoryCapabilities;
  readonly schema: string;
  readonly tableName: string;
  readonly history?: (sessionId: string, options?: { limit?: number }) => Promise<SessionContext[]>;

  private readonly dataSource: DataSource;
  private readonly ownsDataSource: boolean;
  private readonly names: TableNames;
  private readonly statements: Statements;
  private readonly ttlMs: number | undefined;
  private readonly historyLimit: number;
  private readonly autoMigrate: boolean;
  private readonly inFlight = new Set<Promise<unknown>>();
  private schemaReady = false;
  private preparing: Promise<void> | null = null;
  private schemaCheck: Promise<void> | null = null;
  private closed = false;
  private closing: Promise<void> | null = null;

  constructor(options: PostgresRepositoryOptions) {
    if (typeof options !== 'object' || options === null) {
      throw configError('options', 'pass { url } or { dataSource }');
    }
    this.names = resolveTableNames(options);
    this.schema = this.names.schema;
    this.tableName = this.names.table;
    this.ttlMs = positiveInteger(options.ttlMs, 'ttlMs');
    const historyLimit = options.historyLimit ?? 0;
    if (
      !Number.isSafeInteger(historyLimit) ||
      historyLimit < 0 ||
      historyLimit > LIMITS.historyMaxVersions
    ) {
      throw configError(
        'historyLimit',
        `expected an integer from 0 to ${LIMITS.historyMaxVersions}, got ${historyLimit}`,
      );
    }
    this.historyLimit = historyLimit;
    this.autoMigrate = options.autoMigrate ?? false;
    this.capabilities = { ttl: this.ttlMs !== undefined, history: historyLimit > 0 };
    this.statements = buildStatements(this.names, historyLimit);

    const hasUrl = options.url !== undefined;
    const hasDataSource = options.dataSource !== undefined;
    if (hasUrl === hasDataSource) {
      throw configError('options', 'pass exactly one of `url` and `dataSource`');
    }
    if (hasDataSource) {
      const dataSource = options.dataSource as DataSource;
      if (dataSource?.options?.type !== 'postgres') {
        throw configError(
          'dataSource',
          `expected a TypeORM DataSource with type "postgres", got type "${String(dataSource?.options?.type)}"`,
        );
      }
      this.dataSource = dataSource;
      this.ownsDataSource = false;
    } else {
      if (typeof options.url !== 'string' || options.url.trim() === '') {
        throw configError('url', 'expected a PostgreSQL connection string');
      }
      this.dataSource = buildOwnedDataSource(options, this.names);
      this.ownsDataSource = true;
    }

    if (historyLimit > 0) {
      this.history = (sessionId, historyOptions) => this.readHistory(sessionId, historyOptions);
    }
  }

  async get(sessionId: string): Promise<SessionContext | null> {
    this.assertOpen();
    assertValidSessionId(sessionId);
    return this.run(`reading session "${sessionId}"`, async () => {
      const { rows } = await this.query(this.statements.get, [sessionId]);
      return rows[0] ? toSnapshot(rows[0]) : null;
    });
  }

  async save(snapshot: SessionContext, options: SaveOptions): Promise<SessionContext> {
    this.assertOpen();
    assertValidSave(snapshot, options);
    const { expectedVersion } = options;
    return this.run(`saving session "${snapshot.sessionId}"`, async () => {
      const params = saveParams(snapshot, this.ttlMs);
      const sql = expectedVersion === null ? this.statements.create : this.statements.update;
      if (expectedVersion !== null) params.push(expectedVersion);
      let currentVersion: number | null = null;
      // A miss is re-read only to build the conflict error; when the re-read shows the expected
      // state (the row changed between the statement's snapshot and the re-read), try again.
      for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt += 1) {
        const { rows } = await this.query(sql, params);
        if (rows[0]) return toSnapshot(rows[0]);
        const current = await this.query(this.statements.currentVersion, [snapshot.sessionId]);
        currentVersion = current.rows[0] ? Number(current.rows[0].version) : null;
        if (currentVersion !== expectedVersion) break;
      }
      throw new VersionConflictError({
        sessionId: snapshot.sessionId,
        expectedVersion,
        currentVersion,
      });
    });
  }

  async delete(sessionId: string): Promise<boolean> {
    this.assertOpen();
    assertValidSessionId(sessionId);
    return this.run(`deleting session "${sessionId}"`, async () => {
      const { rows } = await this.query(this.statements.delete, [sessionId]);
      return rows[0]?.live === true;
    });
  }

  async list(query?: ListQuery): Promise<ListPage> {
    this.assertOpen();
    const { userId, limit, after } = normalizeListQuery(query);
    return this.run('listing sessions', async () => {
      const params: unknown[] = [];
      if (userId !== undefined) params.push(userId);
      if (after) params.push(new Date(after.updatedAt), after.sessionId);
      params.push(limit + 1);
      const sql = this.statements.list({
        byUser: userId !== undefined,
        afterCursor: after !== null,
      });
      const { rows } = await this.query(sql, params);
      return toListPage(rows.map(toSnapshot), limit);
    });
  }

  async purgeExpired(): Promise<number> {
    this.assertOpen();
    return this.run('purging expired sessions', async () => {
      const { rowCount } = await this.query(this.statements.purgeExpired, []);
      return rowCount;
    });
  }

  async migrate(): Promise<PostgresMigrationResult> {
    this.assertOpen();
    return this.run(
      `migrating ${this.names.display}`,
      async () => {
        const result = await runPostgresMigrations(this.dataSource, this.names);
        this.schemaReady = true;
        return result;
      },
      { checkSchema: false },
    );
  }

  close(): Promise<void> {
    this.closed = true;
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    // Calls already running finish (or fail) before an owned pool goes away.
    await Promise.allSettled([...this.inFlight, this.preparing]);
    if (this.ownsDataSource && this.dataSource.isInitialized) {
      try {
        await this.dataSource.destroy();
      } catch (error) {
        throw toStorageError(error, 'closing the connection pool', this.names.display);
      }
    }
  }

  private async readHistory(
    sessionId: string,
    options?: { limit?: number },
  ): Promise<SessionContext[]> {
    this.assertOpen();
    assertValidSessionId(sessionId);
    const limit = options?.limit ?? this.historyLimit;
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new ValidationError(
        'INVALID_INPUT',
        `Invalid history limit ${String(limit)}: expected a positive integer`,
        { issues: [{ path: 'limit', message: 'not a positive integer' }] },
      );
    }
    return this.run(`reading the history of session "${sessionId}"`, async () => {
      const { rows } = await this.query(this.statements.history, [
        sessionId,
        Math.min(limit, this.historyLimit),
      ]);
      return rows.map(toSnapshot);
    });
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new StorageError(
        'CLOSED',
        `The PostgreSQL repository for ${this.names.display} is closed: create a new one`,
      );
    }
  }

  /** Runs one public operation: connects and checks the schema once, wraps every failure. */
  private run<T>(
    action: string,
    body: () => Promise<T>,
    { checkSchema = true }: { checkSchema?: boolean } = {},
  ): Promise<T> {
    const task = (async () => {
      try {
        await this.connect();
        if (checkSchema && !this.schemaReady) {
          this.schemaCheck ??= this.prepareSchema().finally(() => {
            this.schemaCheck = null;
          });
          await this.schemaCheck;
        }
        return await body();
      } catch (error) {
        throw toStorageError(error, action, this.names.display);
      }
    })();
    this.inFlight.add(task);
    // The caller gets `task` itself; this branch only keeps the in-flight set accurate.
    task.then(
      () => this.inFlight.delete(task),
      () => this.inFlight.delete(task),
    );
    return task;
  }

  private async connect(): Promise<void> {
    if (this.dataSource.isInitialized) return;
    if (!this.ownsDataSource) {
      throw new StorageError(
        'STORAGE_ERROR',
        'The TypeORM DataSource given to createPostgresRepository is not initialized (or was destroyed): call `await dataSource.initialize()` before using the repository',
      );
    }
    this.preparing ??= this.dataSource.initialize().then(
      () => {
        this.preparing = null;
      },
      (error: unknown) => {
        this.preparing = null;
        throw error;
      },
    );
    await this.preparing;
  }

  private async prepareSchema(): Promise<void> {
    const version = await readSchemaVersion(
      async (sql, params) => (await this.query(sql, params)).rows,
      this.names,
    );
    if (version === POSTGRES_SCHEMA_VERSION) {
      this.schemaReady = true;
      return;
    }
    if (this.autoMigrate) {
      await runPostgresMigrations(this.dataSource, this.names);
      this.schemaReady = true;
      return;
    }
    throw new StorageError(
      'SCHEMA_MISMATCH',
      `The ctx tables ${this.names.display} are not migrated (schema version ${version ?? 'none'}, this code needs ${POSTGRES_SCHEMA_VERSION}). Run \`await repository.migrate()\` once (or add createPostgresMigrations() to your TypeORM migrations), or create the repository with \`autoMigrate: true\`.`,
    );
  }

  private async query(sql: string, params: unknown[]): Promise<QueryOutcome> {
    const pool = this.ownsDataSource
      ? (this.dataSource.driver as unknown as { master?: PgPool }).master
      : undefined;
    if (typeof pool?.query === 'function') return queryPool(pool, sql, params);
    const queryRunner = this.dataSource.createQueryRunner('master');
    try {
      const result = await queryRunner.query(sql, params, true);
      return { rows: result.records ?? [], rowCount: result.affected ?? 0 };
    } catch (error) {
      if (isBrokenConnectionError(error)) discardConnection(queryRunner, error);
      throw error;
    } finally {
      await queryRunner.release();
    }
  }
}

/**
 * A {@link ContextRepository} on PostgreSQL through TypeORM (pg driver).
 *
 * Pass a `url` (the repository creates a pool with bounded connect and statement timeouts, and
 * closes it in `close()`) or an initialized TypeORM `dataSource` (never initialized or destroyed
 * by the repository). Create the tables once with `await repository.migrate()`, with
 * `autoMigrate: true`, or through TypeORM with {@link createPostgresMigrations}.
 *
 * Saves are single-statement compare-and-sets (`INSERT … ON CONFLICT` / `UPDATE … WHERE version`),
 * safe across processes and machines.
 *
 * @example
 * ```ts
 * import { createPostgresRepository } from '@ctx/store-postgres';
 *
 * const repository = createPostgresRepository({ url: process.env.DATABASE_URL!, ttlMs: 7 * 86_400_000 });
 * await repository.migrate();
 * const store = new SessionContextStore({ repository, extractor });
 * // on shutdown
 * await repository.close();
 * ```
 *
 * @example
 * ```ts
 * // with the DataSource your app already has
 * const repository = createPostgresRepository({ dataSource, schema: 'ctx', historyLimit: 10 });
 * ```
 */
export function createPostgresRepository(options: PostgresRepositoryOptions): PostgresRepository {
  return new PostgresContextRepository(options);
}
