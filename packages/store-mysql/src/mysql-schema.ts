import { StorageError, ValidationError } from '@ctx/core';
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';

/** The schema version this code reads and writes. A table at a higher version is refused. */
export const MYSQL_SCHEMA_VERSION = 3;

/** The table that records, per session table, the schema version it is at. */
export const MYSQL_META_TABLE = 'ctx_meta';

/** What {@link MysqlRepository.migrate} did. */
export interface MysqlMigrationResult {
  /** The schema version the tables are at now. */
  version: number;
  /** Names of the migrations this call applied, oldest first; empty when already up to date. */
  applied: string[];
}

/** The tables of one session table name. */
export interface MysqlTableNames {
  /** The session table: one row per session id, live or tombstone. */
  sessions: string;
  /** The history table: kept versions of live sessions. */
  history: string;
  /** The turn log: pending turns, and the ids and sequences of folded ones. */
  turns: string;
  /** One row per session whose turn log is in use: its lease, and the lock that orders its log. */
  leases: string;
}

/** The session table and the tables named after it (`<tableName>_history`, `_turns`, `_leases`). */
export function tableNamesFor(tableName: string): MysqlTableNames {
  return {
    sessions: tableName,
    history: `${tableName}_history`,
    turns: `${tableName}_turns`,
    leases: `${tableName}_leases`,
  };
}

interface Migration {
  version: number;
  name: string;
  /** The tables the migration creates: when one is missing, the schema is below this version. */
  tables(names: MysqlTableNames): string[];
  statements(names: MysqlTableNames): string[];
  /**
   * Error numbers that mean a statement already ran (a migration cut short is run again from its
   * first statement): e.g. 1060, a column that exists already.
   */
  alreadyApplied?: number[];
}

// Ids and owners are VARBINARY: compared byte by byte (UTF-8 order), and never equal when they
// differ only by trailing spaces, as they would under the PAD SPACE utf8mb4_bin collation.
// Timestamps are BIGINT epoch milliseconds: exact over the whole range of years 0001–9999.
// A tombstone is a row with deleted_at set and no content.
// Append-only: a released migration is never edited; a change is a new version. Every statement
// is idempotent: a migration cut short, or a dropped table, is completed by running all again.
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'create-sessions-and-history',
    tables: ({ sessions, history }) => [sessions, history],
    statements: ({ sessions, history }) => [
      `CREATE TABLE IF NOT EXISTS \`${sessions}\` (
  session_id VARBINARY(1024) NOT NULL,
  user_id VARBINARY(1024) NULL,
  summary MEDIUMTEXT NULL,
  goal TEXT NULL,
  plan MEDIUMTEXT NULL,
  progress MEDIUMTEXT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  version BIGINT NOT NULL,
  expires_at BIGINT NULL,
  deleted_at BIGINT NULL,
  PRIMARY KEY (session_id),
  KEY \`${sessions}_list_idx\` (updated_at, session_id),
  KEY \`${sessions}_user_idx\` (user_id, updated_at, session_id),
  KEY \`${sessions}_purge_idx\` (deleted_at, expires_at)
) ENGINE=InnoDB ROW_FORMAT=DYNAMIC DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      `CREATE TABLE IF NOT EXISTS \`${history}\` (
  session_id VARBINARY(1024) NOT NULL,
  version BIGINT NOT NULL,
  user_id VARBINARY(1024) NULL,
  summary MEDIUMTEXT NOT NULL,
  goal TEXT NULL,
  plan MEDIUMTEXT NULL,
  progress MEDIUMTEXT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (session_id, version)
) ENGINE=InnoDB ROW_FORMAT=DYNAMIC DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    ],
  },
  // The sequence is a global AUTO_INCREMENT: it grows within every session, as the log requires.
  // A folded turn keeps its id, sequence and folded_at (for duplicates) and loses its content.
  // Index names are per table in MySQL: short ones keep within 64 characters.
  {
    version: 2,
    name: 'create-turns-and-leases',
    tables: ({ turns, leases }) => [turns, leases],
    statements: ({ turns, leases }) => [
      `CREATE TABLE IF NOT EXISTS \`${turns}\` (
  sequence BIGINT NOT NULL AUTO_INCREMENT,
  session_id VARBINARY(1024) NOT NULL,
  turn_id VARBINARY(1024) NOT NULL,
  user_id VARBINARY(1024) NULL,
  messages MEDIUMTEXT NULL,
  recorded_at BIGINT NOT NULL,
  folded_at BIGINT NULL,
  PRIMARY KEY (sequence),
  UNIQUE KEY turn_key (session_id, turn_id),
  KEY pending_idx (session_id, folded_at, sequence),
  KEY age_idx (folded_at, recorded_at, session_id)
) ENGINE=InnoDB ROW_FORMAT=DYNAMIC DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      `CREATE TABLE IF NOT EXISTS \`${leases}\` (
  session_id VARBINARY(1024) NOT NULL,
  holder VARBINARY(1024) NULL,
  expires_at BIGINT NULL,
  PRIMARY KEY (session_id)
) ENGINE=InnoDB ROW_FORMAT=DYNAMIC DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    ],
  },
  // Custom fields: one JSON text column for all of them, so a new field needs no migration.
  // MySQL has no ADD COLUMN IF NOT EXISTS: a column that exists already (1060) counts as done.
  {
    version: 3,
    name: 'add-custom-fields',
    tables: ({ sessions, history }) => [sessions, history],
    statements: ({ sessions, history }) => [
      `ALTER TABLE \`${sessions}\` ADD COLUMN fields MEDIUMTEXT NULL`,
      `ALTER TABLE \`${history}\` ADD COLUMN fields MEDIUMTEXT NULL`,
    ],
    alreadyApplied: [1060],
  },
];

type Executor = Pick<Pool, 'query'> | PoolConnection;

function mismatch(message: string): StorageError {
  return new StorageError('SCHEMA_MISMATCH', message);
}

function newerSchema(names: MysqlTableNames, version: number): StorageError {
  return mismatch(
    `The ctx table ${names.sessions} is at schema version ${version}, newer than this version of @ctx/store-mysql understands (${MYSQL_SCHEMA_VERSION}). Upgrade @ctx/store-mysql in this app; do not write with an older version`,
  );
}

interface SchemaState {
  /** The version recorded in the meta table: `null` when the table was never migrated. */
  recorded: number | null;
  /**
   * The version the tables are really at: below the recorded one when a table of a migration is
   * missing (dropped), so that migration runs again.
   */
  version: number;
  /** Which of the ctx tables exist. */
  existing: string[];
}

async function readState(executor: Executor, names: MysqlTableNames): Promise<SchemaState> {
  const [tables] = await executor.query<RowDataPacket[]>(
    'SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (?)',
    [Object.values(names)],
  );
  const existing = tables.map((row) => String(row.name));
  let recorded: number | null;
  try {
    const [rows] = await executor.query<RowDataPacket[]>(
      `SELECT schema_version FROM \`${MYSQL_META_TABLE}\` WHERE table_name = ?`,
      [names.sessions],
    );
    recorded = rows[0] ? Number(rows[0].schema_version) : null;
  } catch (error) {
    const errno = (error as { errno?: unknown }).errno;
    if (errno === 1054) {
      throw mismatch(
        `The table ${MYSQL_META_TABLE} exists but was not created by ctx: rename it, or use another database`,
      );
    }
    if (errno !== 1146) throw error;
    recorded = null; // no meta table yet
  }
  if (recorded !== null && recorded > MYSQL_SCHEMA_VERSION) throw newerSchema(names, recorded);
  let version = 0;
  for (const migration of MIGRATIONS) {
    if (migration.version > (recorded ?? 0)) break;
    if (!migration.tables(names).every((table) => existing.includes(table))) break;
    version = migration.version;
  }
  return { recorded, version, existing };
}

/** Refuses a connection that cannot store what ctx stores. */
async function checkConnection(pool: Pick<Pool, 'query'>): Promise<void> {
  const [rows] = await pool.query<RowDataPacket[]>(
    'SELECT DATABASE() AS db, @@character_set_client AS client, @@character_set_results AS results',
  );
  const { db, client, results } = rows[0] as RowDataPacket;
  if (db === null) {
    throw new ValidationError(
      'INVALID_CONFIG',
      'Invalid MySQL repository option url/pool: the connection has no default database. Name one in the URL (mysql://host/database) or in the pool options',
      { issues: [{ path: 'url', message: 'no database' }] },
    );
  }
  if (client !== 'utf8mb4' || (results !== null && results !== 'utf8mb4')) {
    throw new ValidationError(
      'INVALID_CONFIG',
      `Invalid MySQL repository option pool: its connections use the character set ${String(client)}, which cannot hold every character. Create the pool with charset 'utf8mb4_unicode_ci' (the mysql2 default)`,
      { issues: [{ path: 'pool', message: 'not utf8mb4' }] },
    );
  }
}

async function applyMigrations(
  connection: PoolConnection,
  names: MysqlTableNames,
  now: number,
): Promise<MysqlMigrationResult> {
  await connection.query(`CREATE TABLE IF NOT EXISTS \`${MYSQL_META_TABLE}\` (
  table_name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  schema_version INT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (table_name)
) ENGINE=InnoDB`);
  const { recorded, version, existing } = await readState(connection, names);
  if (recorded === null) {
    if (existing.length > 0) {
      throw mismatch(
        `The table ${existing[0]} exists but was not created by ctx: choose another tableName, or another database`,
      );
    }
    // Recorded before the first statement: a migration cut short is resumed, not taken for a
    // foreign table.
    await connection.query(
      `INSERT INTO \`${MYSQL_META_TABLE}\` (table_name, schema_version, updated_at) VALUES (?, 0, ?)`,
      [names.sessions, now],
    );
  }
  const applied: string[] = [];
  for (const migration of MIGRATIONS) {
    if (migration.version <= version) continue;
    // DDL commits implicitly in MySQL: the version is recorded after each step.
    for (const statement of migration.statements(names)) {
      try {
        await connection.query(statement);
      } catch (error) {
        const errno = (error as { errno?: unknown }).errno;
        if (!migration.alreadyApplied?.includes(errno as number)) throw error;
      }
    }
    await connection.query(
      `UPDATE \`${MYSQL_META_TABLE}\` SET schema_version = ?, updated_at = ? WHERE table_name = ?`,
      [migration.version, now, names.sessions],
    );
    applied.push(`${migration.version}-${migration.name}`);
  }
  return { version: MYSQL_SCHEMA_VERSION, applied };
}

/** How long a process waits for another one's migration before giving up. */
const LOCK_TIMEOUT_SECONDS = 60;

/**
 * Brings the tables up to {@link MYSQL_SCHEMA_VERSION} under a named lock (`GET_LOCK`, per
 * database and table), so any number of processes may migrate at once and each migration runs
 * once. With `migrate` false it only checks, and throws `SCHEMA_MISMATCH` unless the tables are at
 * this version. Always throws `SCHEMA_MISMATCH` for a newer schema or a table ctx did not create.
 */
export async function ensureSchema(
  pool: Pool,
  names: MysqlTableNames,
  options: { migrate: boolean; now: number },
): Promise<MysqlMigrationResult> {
  await checkConnection(pool);
  const { recorded, version } = await readState(pool, names);
  if (version === MYSQL_SCHEMA_VERSION) return { version, applied: [] };
  if (!options.migrate) {
    const state =
      recorded === null
        ? 'does not exist'
        : recorded === version
          ? `is at schema version ${version}, older than this code needs (${MYSQL_SCHEMA_VERSION})`
          : 'or one of its tables is missing';
    throw mismatch(
      `The ctx table ${names.sessions} ${state}: run \`ctx migrate\` or \`repository.migrate()\`, or create the repository with migrate: true`,
    );
  }
  const connection = await pool.getConnection();
  const lock = `CONCAT('ctx:', SHA1(CONCAT(DATABASE(), '.', ?)))`;
  let locked = false;
  try {
    const [rows] = await connection.query<RowDataPacket[]>(
      `SELECT GET_LOCK(${lock}, ?) AS locked`,
      [names.sessions, LOCK_TIMEOUT_SECONDS],
    );
    locked = Number(rows[0]?.locked) === 1;
    if (!locked) {
      throw new StorageError(
        'STORAGE_UNAVAILABLE',
        `Another process has been migrating the ctx table ${names.sessions} for more than ${LOCK_TIMEOUT_SECONDS} s. Retry when it is done`,
      );
    }
    return await applyMigrations(connection, names, options.now);
  } finally {
    // A lock that cannot be released goes with its connection, never back into the pool.
    const released = locked
      ? await connection.query(`DO RELEASE_LOCK(${lock})`, [names.sessions]).then(
          () => true,
          () => false,
        )
      : true;
    if (released) connection.release();
    else connection.destroy();
  }
}
