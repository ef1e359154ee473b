import { describeContextRepository, type RepositoryFactoryOptions } from '@ctx/conformance';
import { createMysqlRepository } from '../src/index.js';
import { createTestPool, dropTables, MYSQL_URL, randomTable, readRawRow } from './helpers.js';

// The same suite on repositories built from a URL: each one creates, owns and closes its pool.
const tableName = randomTable('conformance_url');
const raw = createTestPool(2);

const open = (options?: RepositoryFactoryOptions) =>
  createMysqlRepository({ url: MYSQL_URL, tableName, ...options });

describeContextRepository({
  name: 'mysql (URL, own pool)',
  capabilities: { ttl: true, history: true, turnLog: true, fields: true },
  createRepository: open,
  createSecondConnection: open,
  readRaw: (sessionId) => readRawRow(raw, tableName, sessionId),
  async teardown() {
    try {
      await dropTables(raw, tableName);
    } finally {
      await raw.end();
    }
  },
});
