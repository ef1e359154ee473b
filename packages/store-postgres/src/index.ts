export type { PostgresPool, PostgresPoolClient } from './postgres-client.js';
export {
  createPostgresMigrations,
  POSTGRES_SCHEMA_VERSION,
  type PostgresMigrationClass,
  type PostgresMigrationResult,
} from './postgres-migrations.js';
export {
  createPostgresRepository,
  type PostgresRepository,
  type PostgresRepositoryCommonOptions,
  type PostgresRepositoryDataSourceOptions,
  type PostgresRepositoryOptions,
  type PostgresRepositoryPoolOptions,
  type PostgresRepositoryUrlOptions,
} from './postgres-repository.js';
export {
  createPostgresEntities,
  DEFAULT_SCHEMA,
  DEFAULT_TABLE_NAME,
  MIGRATIONS_TABLE_NAME,
  type PostgresEntities,
  type PostgresTableOptions,
  type SessionContextHistoryRow,
  type SessionContextRow,
} from './postgres-schema.js';
