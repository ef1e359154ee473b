import { describeContextRepository, type RepositoryFactoryOptions } from '@ctx/conformance';
import pg from 'pg';
import { createPostgresRepository } from '../src/index.js';
import { dropSchema, POSTGRES_URL, randomSchema, readRawRow } from './helpers.js';

// The same suite on repositories built from a URL: they own their pool and take the direct `pg`
// hot path instead of a TypeORM query runner.
const schema = randomSchema('conformance_url');
const raw = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 });
let setup: Promise<void> | undefined;

function ready(): Promise<void> {
  setup ??= (async () => {
    const repository = createPostgresRepository({ url: POSTGRES_URL, schema });
    try {
      await repository.migrate();
    } finally {
      await repository.close();
    }
  })();
  return setup;
}

const open = async (options?: RepositoryFactoryOptions) => {
  await ready();
  return createPostgresRepository({ url: POSTGRES_URL, schema, poolSize: 4, ...options });
};

describeContextRepository({
  name: 'postgres (URL, own pool)',
  capabilities: { ttl: true, history: true, turnLog: true, fields: true },
  createRepository: open,
  createSecondConnection: open,
  readRaw: (sessionId) => readRawRow(raw, schema, sessionId),
  async teardown() {
    try {
      await dropSchema(schema);
    } finally {
      await raw.end();
    }
  },
});
