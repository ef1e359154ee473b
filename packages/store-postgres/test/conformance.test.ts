import { describeContextRepository } from '@ctx/conformance';
import pg from 'pg';
import { createPostgresRepository } from '../src/index.js';
import {
  createTestDataSource,
  dropSchema,
  POSTGRES_URL,
  randomSchema,
  readRawRow,
} from './helpers.js';

const schema = randomSchema('conformance');
const first = createTestDataSource();
const second = createTestDataSource();
const raw = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 });
let setup: Promise<void> | undefined;

// Two independent DataSources (two pools) on one fresh schema, migrated once.
function ready(): Promise<void> {
  setup ??= (async () => {
    await Promise.all([first.initialize(), second.initialize()]);
    await createPostgresRepository({ dataSource: first, schema }).migrate();
  })();
  return setup;
}

describeContextRepository({
  name: 'postgres (TypeORM DataSource)',
  capabilities: { ttl: true, history: true, turnLog: true, fields: true },
  async createRepository(options) {
    await ready();
    return createPostgresRepository({ dataSource: first, schema, ...options });
  },
  async createSecondConnection(options) {
    await ready();
    return createPostgresRepository({ dataSource: second, schema, ...options });
  },
  readRaw: (sessionId) => readRawRow(raw, schema, sessionId),
  async teardown() {
    try {
      await dropSchema(schema);
    } finally {
      await Promise.allSettled([
        first.isInitialized ? first.destroy() : undefined,
        second.isInitialized ? second.destroy() : undefined,
        raw.end(),
      ]);
    }
  },
});
