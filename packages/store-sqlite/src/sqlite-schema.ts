import { StorageError } from '@ctx/core';
import {
  assertValidTableName as assertValidSqlName,
  DEFAULT_TABLE_NAME,
  invalidOption,
} from '@ctx/core/adapter';
import type { Database, Statement } from 'better-sqlite3';
import { isSqliteError, toStorageError } from './sqlite-errors.js';

/**
 * The schema version this code writes and reads. A database at a lower version is migrated (with
 * `migrate: true`); one at a higher version is refused.
 */
export const SQLITE_SCHEMA_VERSION = 4;

/** The table that records, per session table, which schema version it is at. */
export const SQLITE_META_TABLE = 'ctx_meta';

/** The session table's name unless `tableName` says otherwise (`DEFAULT_TABLE_NAME` of core). */
export const DEFAULT_SQLITE_TABLE_NAME = DEFAULT_TABLE_NAME;

/** Every schema object a session table owns, derived from its name. */
export interface SqliteObjectNames {
  sessions: string;
  history: string;
  listIndex: string;
  userIndex: string;
  expiresIndex: string;
  deletedIndex: string;
  turns: string;
  leases: string;
  pendingTurnsIndex: string;
  foldedTurnsIndex: string;
}

/** The names of the table, its history, turn and lease tables, and their indexes. */
export function objectNamesFor(tableName: string): SqliteObjectNames {
  return {
    sessions: tableName,
    history: `${tableName}_history`,
    listIndex: `${tableName}_list_idx`,
    userIndex: `${tableName}_user_idx`,
    expiresIndex: `${tableName}_expires_idx`,
    deletedIndex: `${tableName}_deleted_idx`,
    turns: `${tableName}_turns`,
    leases: `${tableName}_leases`,
    pendingTurnsIndex: `${tableName}_turns_pending_idx`,
    foldedTurnsIndex: `${tableName}_turns_folded_idx`,
  };
}

/**
 * The schema version that created each table and index: a name a later version creates must be
 * free before that migration runs, and a table an applied version created must exist.
 */
const CREATED_IN: Readonly<Record<keyof SqliteObjectNames, { version: number; table: boolean }>> = {
  sessions: { version: 1, table: true },
  history: { version: 1, table: true },
  listIndex: { version: 1, table: false },
  userIndex: { version: 1, table: false },
  expiresIndex: { version: 1, table: false },
  deletedIndex: { version: 2, table: false },
  turns: { version: 3, table: true },
  leases: { version: 3, table: true },
  pendingTurnsIndex: { version: 3, table: false },
  foldedTurnsIndex: { version: 3, table: false },
};

/**
 * Throws `INVALID_CONFIG` unless `tableName` is a plain lower-case SQL identifier we may use: the
 * rule of every SQL adapter, minus SQLite's reserved `sqlite_…` names and our meta table.
 */
export function assertValidTableName(tableName: unknown): asserts tableName is string {
  assertValidSqlName('SQLite', tableName);
  if (tableName.startsWith('sqlite_') || tableName === SQLITE_META_TABLE) {
    throw invalidOption(
      'SQLite',
      'tableName',
      `${JSON.stringify(tableName)} is reserved: not "sqlite_…", not "${SQLITE_META_TABLE}"`,
    );
  }
}

/** Double-quotes an identifier already checked by {@link assertValidTableName}. */
export function quote(identifier: string): string {
  return `"${identifier}"`;
}

interface Migration {
  version: number;
  statements(names: SqliteObjectNames): string[];
}

// Append-only: a released migration is never edited, a change is a new version.
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    statements: (names) => [
      `CREATE TABLE IF NOT EXISTS ${quote(names.sessions)} (
  session_id TEXT PRIMARY KEY NOT NULL,
  user_id TEXT,
  summary TEXT NOT NULL,
  goal TEXT,
  plan TEXT,
  progress TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  version INTEGER NOT NULL,
  expires_at INTEGER
)`,
      `CREATE INDEX IF NOT EXISTS ${quote(names.listIndex)} ON ${quote(names.sessions)} (updated_at, session_id)`,
      `CREATE INDEX IF NOT EXISTS ${quote(names.userIndex)} ON ${quote(names.sessions)} (user_id, updated_at, session_id)`,
      `CREATE INDEX IF NOT EXISTS ${quote(names.expiresIndex)} ON ${quote(names.sessions)} (expires_at) WHERE expires_at IS NOT NULL`,
      `CREATE TABLE IF NOT EXISTS ${quote(names.history)} (
  session_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  user_id TEXT,
  summary TEXT NOT NULL,
  goal TEXT,
  plan TEXT,
  progress TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (session_id, version)
)`,
    ],
  },
  {
    // Tombstones: a deleted or purged session keeps its row (no content, no owner) with the time
    // it stopped being live, so its version never restarts. Lists skip them through the partial
    // list index; purge finds old ones through the deleted index.
    version: 2,
    statements: (names) => [
      `ALTER TABLE ${quote(names.sessions)} ADD COLUMN deleted_at INTEGER`,
      `DROP INDEX IF EXISTS ${quote(names.listIndex)}`,
      `CREATE INDEX ${quote(names.listIndex)} ON ${quote(names.sessions)} (updated_at, session_id) WHERE deleted_at IS NULL`,
      `CREATE INDEX IF NOT EXISTS ${quote(names.deletedIndex)} ON ${quote(names.sessions)} (deleted_at) WHERE deleted_at IS NOT NULL`,
    ],
  },
  {
    // The turn log: one row per recorded turn, pending until a write folds it (then only its id,
    // sequence and fold time stay, so recording it again is a duplicate), plus one lease row per
    // session. AUTOINCREMENT: a sequence is never handed out twice, even after its row is deleted.
    version: 3,
    statements: (names) => [
      `CREATE TABLE ${quote(names.turns)} (
  sequence INTEGER PRIMARY KEY AUTOINCREMENT,
  session_id TEXT NOT NULL,
  turn_id TEXT NOT NULL,
  user_id TEXT,
  messages TEXT,
  recorded_at INTEGER NOT NULL,
  folded_at INTEGER,
  UNIQUE (session_id, turn_id)
)`,
      `CREATE INDEX ${quote(names.pendingTurnsIndex)} ON ${quote(names.turns)} (session_id, sequence) WHERE folded_at IS NULL`,
      `CREATE INDEX ${quote(names.foldedTurnsIndex)} ON ${quote(names.turns)} (folded_at) WHERE folded_at IS NOT NULL`,
      `CREATE TABLE ${quote(names.leases)} (
  session_id TEXT PRIMARY KEY NOT NULL,
  holder TEXT NOT NULL,
  expires_at INTEGER NOT NULL
)`,
    ],
  },
  {
    // Custom fields: one JSON text column for all of them, so a new field needs no migration.
    version: 4,
    statements: (names) => [
      `ALTER TABLE ${quote(names.sessions)} ADD COLUMN fields TEXT`,
      `ALTER TABLE ${quote(names.history)} ADD COLUMN fields TEXT`,
    ],
  },
];

/** The schema version a session table is at: 0 when it does not exist yet. */
export interface SchemaState {
  version: number;
}

function prepareNumeric(database: Database, sql: string): Statement {
  return database.prepare(sql).safeIntegers(false);
}

function mismatch(message: string, cause?: unknown): StorageError {
  return new StorageError('SCHEMA_MISMATCH', message, cause === undefined ? undefined : { cause });
}

/**
 * Reads (never writes) the schema of `database` and decides whether the session table can be
 * used, created or upgraded. Throws `SCHEMA_MISMATCH` when the file is not SQLite, when our names
 * are taken by objects ctx did not create, or when the schema is newer than this code.
 */
export function inspectSchema(
  database: Database,
  names: SqliteObjectNames,
  location: string,
): SchemaState {
  let objects: { type: string; name: string }[];
  try {
    objects = prepareNumeric(database, 'SELECT type, name FROM sqlite_master').all() as {
      type: string;
      name: string;
    }[];
  } catch (error) {
    if (isSqliteError(error) && error.code === 'SQLITE_NOTADB') {
      throw mismatch(
        `${location} is not a SQLite database (or it is encrypted or damaged). Nothing was written to it: point the repository at a ctx database or at a new file`,
        error,
      );
    }
    throw toStorageError(error, `read the schema of ${location}`);
  }
  const types = new Map(objects.map((object) => [object.name.toLowerCase(), object.type]));

  let version = 0;
  try {
    if (types.has(SQLITE_META_TABLE)) {
      const columns =
        types.get(SQLITE_META_TABLE) === 'table'
          ? (
              prepareNumeric(database, `PRAGMA table_info(${quote(SQLITE_META_TABLE)})`).all() as {
                name: string;
              }[]
            ).map((column) => column.name)
          : [];
      if (!columns.includes('table_name') || !columns.includes('schema_version')) {
        throw mismatch(
          `${location} has a "${SQLITE_META_TABLE}" object that ctx did not create. Nothing was changed: use another database file`,
        );
      }
      const row = prepareNumeric(
        database,
        `SELECT schema_version FROM ${quote(SQLITE_META_TABLE)} WHERE table_name = ?`,
      ).get(names.sessions) as { schema_version: unknown } | undefined;
      if (row) {
        if (!Number.isSafeInteger(row.schema_version) || (row.schema_version as number) < 1) {
          throw mismatch(
            `${location}: "${SQLITE_META_TABLE}" holds an invalid schema version ${String(row.schema_version)} for table "${names.sessions}"`,
          );
        }
        version = row.schema_version as number;
      }
    }
  } catch (error) {
    throw toStorageError(error, `read the schema of ${location}`);
  }

  if (version > SQLITE_SCHEMA_VERSION) {
    throw mismatch(
      `${location}: table "${names.sessions}" is at schema version ${version}, but this @ctx/store-sqlite only knows versions up to ${SQLITE_SCHEMA_VERSION}. Nothing was changed: upgrade @ctx/store-sqlite`,
    );
  }
  const ours = Object.entries(CREATED_IN) as [
    keyof SqliteObjectNames,
    { version: number; table: boolean },
  ][];
  const taken = ours
    .filter(([key, created]) => created.version > version && types.has(names[key]))
    .map(([key]) => `"${names[key]}"`);
  if (taken.length > 0) {
    throw mismatch(
      version === 0
        ? `${location} already has ${taken.join(', ')}, not created by ctx (no "${SQLITE_META_TABLE}" entry for "${names.sessions}"). Nothing was changed: choose another tableName`
        : `${location} already has ${taken.join(', ')}, which the upgrade of table "${names.sessions}" from schema version ${version} would create. Nothing was changed: rename or drop them, or use another tableName`,
    );
  }
  if (version > 0) {
    const missing = ours
      .filter(([, created]) => created.table && created.version <= version)
      .map(([key]) => names[key])
      .filter((name) => types.get(name) !== 'table');
    if (missing.length > 0) {
      throw mismatch(
        `${location}: "${SQLITE_META_TABLE}" says table "${names.sessions}" is at schema version ${version}, but ${missing.map((name) => `"${name}"`).join(', ')} is missing. The database was altered outside ctx: restore it or remove the "${SQLITE_META_TABLE}" row`,
      );
    }
  }
  return { version };
}

/**
 * Brings the session table to {@link SQLITE_SCHEMA_VERSION} inside one `BEGIN IMMEDIATE`
 * transaction. The schema is inspected again under the write lock, so two processes opening a
 * new file at once apply each migration exactly once.
 */
export function migrateSchema(
  database: Database,
  names: SqliteObjectNames,
  location: string,
): void {
  const run = database.transaction(() => {
    const { version } = inspectSchema(database, names, location);
    if (version === SQLITE_SCHEMA_VERSION) return;
    database.exec(`CREATE TABLE IF NOT EXISTS ${quote(SQLITE_META_TABLE)} (
  table_name TEXT PRIMARY KEY NOT NULL,
  schema_version INTEGER NOT NULL,
  migrated_at INTEGER NOT NULL
)`);
    for (const migration of MIGRATIONS) {
      if (migration.version <= version) continue;
      for (const statement of migration.statements(names)) database.exec(statement);
    }
    database
      .prepare(
        `INSERT INTO ${quote(SQLITE_META_TABLE)} (table_name, schema_version, migrated_at) VALUES (?, ?, ?)
ON CONFLICT (table_name) DO UPDATE SET schema_version = excluded.schema_version, migrated_at = excluded.migrated_at`,
      )
      .run(names.sessions, SQLITE_SCHEMA_VERSION, Date.now());
  });
  try {
    run.immediate();
  } catch (error) {
    throw toStorageError(error, `migrate the schema of ${location}`);
  }
}
