import { describeContextRepository } from '@ctx/conformance';
import { createMysqlRepository } from '../src/index.js';
import { createTestPool, dropTables, randomTable, readRawRow } from './helpers.js';

// Two independent pools on one fresh table, migrated once: the second pool is the "other
// process" of the cross-connection tests.
const tableName = randomTable('conformance');
const first = createTestPool();
const second = createTestPool();
let setup: Promise<unknown> | undefined;

const ready = () => {
  setup ??= createMysqlRepository({ pool: first, tableName }).migrate();
  return setup;
};

describeContextRepository({
  name: 'mysql (injected pool)',
  capabilities: { ttl: true, history: true, turnLog: true, fields: true },
  async createRepository(options) {
    await ready();
    return createMysqlRepository({ pool: first, tableName, ...options });
  },
  async createSecondConnection(options) {
    await ready();
    return createMysqlRepository({ pool: second, tableName, ...options });
  },
  readRaw: (sessionId) => readRawRow(first, tableName, sessionId),
  async teardown() {
    try {
      await dropTables(first, tableName);
    } finally {
      await Promise.allSettled([first.end(), second.end()]);
    }
  },
});
