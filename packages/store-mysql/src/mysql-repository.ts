import type { TurnLog } from '@ctx/core';
import {
  assertValidTableName,
  createDriverRepository,
  DEFAULT_TABLE_NAME,
  type DriverRepository,
  invalidOption,
  type RepositoryOptions,
  resolveRepositorySettings,
} from '@ctx/core/adapter';
import type { Pool as CallbackPool } from 'mysql2';
import { createPool, type Pool } from 'mysql2/promise';
import { createMysqlDriver } from './mysql-driver.js';
import { MYSQL_META_TABLE, type MysqlMigrationResult, tableNamesFor } from './mysql-schema.js';

const BACKEND = 'MySQL';

/** Options of {@link createMysqlRepository} shared by the URL and the pool forms. */
export interface MysqlRepositoryCommonOptions extends RepositoryOptions {
  /**
   * The session table; the tables named after it are `<tableName>_history`, `<tableName>_turns`
   * (the turn log) and `<tableName>_leases`, and the schema version of every ctx table is recorded
   * in `ctx_meta`. 1–48 lower-case letters, digits or underscores.
   * @default 'ctx_sessions'
   */
  tableName?: string;
}

/** {@link createMysqlRepository} on a pool it creates from a URL, and closes on `close()`. */
export interface MysqlRepositoryUrlOptions extends MysqlRepositoryCommonOptions {
  /**
   * `mysql://user:password@host:port/database` (or `mariadb://…`). Query parameters are mysql2
   * pool and connection options (`?connectionLimit=20&connectTimeout=5000`). The database must be
   * named.
   */
  url: string;
  /** Not with `url`. */
  pool?: undefined;
}

/** {@link createMysqlRepository} on a pool the application owns: it is never closed by ctx. */
export interface MysqlRepositoryPoolOptions extends MysqlRepositoryCommonOptions {
  /**
   * A mysql2 pool: from `mysql2/promise`'s `createPool`, or a callback pool (its `.promise()` is
   * used). Its connections must use a utf8mb4 charset (the mysql2 default) and name a database.
   */
  pool: Pool | CallbackPool;
  /** Not with `pool`. */
  url?: undefined;
}

/** Options of {@link createMysqlRepository}: exactly one of `url` or `pool`. */
export type MysqlRepositoryOptions = MysqlRepositoryUrlOptions | MysqlRepositoryPoolOptions;

/**
 * A MySQL/MariaDB `ContextRepository` with TTL, history, tombstones, explicit migrations and the
 * turn log, so the {@link TurnLog} members are always present.
 */
export interface MysqlRepository extends Omit<DriverRepository, keyof TurnLog>, TurnLog {
  /** The session table's name. */
  readonly tableName: string;
  /**
   * Creates or upgrades the tables now (also with `migrate: false`), under a lock so several
   * processes may call it at once. Throws `SCHEMA_MISMATCH` for a newer schema or a table ctx did
   * not create.
   */
  migrate(): Promise<MysqlMigrationResult>;
}

function toPool(options: MysqlRepositoryOptions): { pool: Pool; ownsPool: boolean } {
  const { url, pool } = options as { url?: unknown; pool?: unknown };
  if ((url === undefined) === (pool === undefined)) {
    throw invalidOption(
      BACKEND,
      url === undefined ? '(root)' : 'pool',
      'give exactly one of url or pool',
    );
  }
  if (pool !== undefined) {
    const candidate = pool as Partial<Pool> & { promise?: () => Pool };
    // A callback pool has promise(); a promise pool has not.
    const promisePool = typeof candidate?.promise === 'function' ? candidate.promise() : candidate;
    if (
      typeof promisePool?.getConnection !== 'function' ||
      typeof promisePool.query !== 'function'
    ) {
      throw invalidOption(
        BACKEND,
        'pool',
        'expected a mysql2 pool (createPool from mysql2/promise)',
      );
    }
    return { pool: promisePool as Pool, ownsPool: false };
  }
  const parsed = typeof url === 'string' && URL.canParse(url) ? new URL(url) : undefined;
  if (!parsed || !['mysql:', 'mariadb:'].includes(parsed.protocol)) {
    throw invalidOption(BACKEND, 'url', 'expected a mysql:// or mariadb:// URL');
  }
  if (parsed.pathname.length <= 1) {
    throw invalidOption(BACKEND, 'url', 'name the database: mysql://host/database');
  }
  return { pool: createPool(parsed.href), ownsPool: true };
}

/**
 * A `ContextRepository` on MySQL 5.7+/8 or MariaDB 10.3+ (InnoDB) through `mysql2`: atomic
 * compare-and-set writes and conditional deletes across any number of processes, tombstones that
 * keep versions counting across delete and expiry, TTL, history, keyset listing, and the turn log
 * (records idempotent by turn id and bounded by `maxPendingTurns`, folds in the compare-and-set,
 * session leases). Builds no connection until the first call, which also creates or checks the
 * tables (`migrate`).
 *
 * @example
 * ```ts
 * import { createPool } from 'mysql2/promise';
 * const pool = createPool('mysql://app:secret@127.0.0.1:3306/app');
 * const repository = createMysqlRepository({ pool, ttlMs: 7 * 24 * 3600_000 });
 * const store = new SessionContextStore({ repository, extractor });
 * // or, owning its own pool: createMysqlRepository({ url: process.env.DATABASE_URL })
 * ```
 */
export function createMysqlRepository(options: MysqlRepositoryOptions): MysqlRepository {
  const settings = resolveRepositorySettings(BACKEND, options);
  const tableName = options.tableName ?? DEFAULT_TABLE_NAME;
  assertValidTableName(BACKEND, tableName);
  if (tableName === MYSQL_META_TABLE) {
    throw invalidOption(BACKEND, 'tableName', `"${MYSQL_META_TABLE}" is ctx's own meta table`);
  }
  const { pool, ownsPool } = toPool(options);
  const driver = createMysqlDriver(pool, tableNamesFor(tableName), settings, { ownsPool });
  return Object.assign(createDriverRepository(driver, settings), { tableName }) as MysqlRepository;
}
