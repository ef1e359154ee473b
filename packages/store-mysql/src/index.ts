export {
  createMysqlRepository,
  type MysqlRepository,
  type MysqlRepositoryCommonOptions,
  type MysqlRepositoryOptions,
  type MysqlRepositoryPoolOptions,
  type MysqlRepositoryUrlOptions,
} from './mysql-repository.js';
export {
  MYSQL_META_TABLE,
  MYSQL_SCHEMA_VERSION,
  type MysqlMigrationResult,
} from './mysql-schema.js';
