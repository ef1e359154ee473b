export {
  createSqliteRepository,
  type SqliteRepository,
  type SqliteRepositoryCommonOptions,
  type SqliteRepositoryDatabaseOptions,
  type SqliteRepositoryFileOptions,
  type SqliteRepositoryOptions,
} from './sqlite-repository.js';
export {
  DEFAULT_SQLITE_TABLE_NAME,
  SQLITE_META_TABLE,
  SQLITE_SCHEMA_VERSION,
} from './sqlite-schema.js';
