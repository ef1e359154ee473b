import { makeSnapshot, nextVersion } from '@ctx/conformance';
import { ContextError, isRetryableError, type SessionContext } from '@ctx/core';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPostgresEntities,
  createPostgresRepository,
  type PostgresRepository,
  type PostgresRepositoryDataSourceOptions,
} from '../src/index.js';
import {
  createTestDataSource,
  dropSchema,
  POSTGRES_URL,
  randomId,
  randomSchema,
  withRawClient,
} from './helpers.js';

async function caught(action: () => Promise<unknown>): Promise<ContextError> {
  try {
    await action();
  } catch (error) {
    if (ContextError.isInstance(error)) return error;
    throw new Error(`expected a ContextError, got ${String(error)}`);
  }
  throw new Error('expected the call to throw');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const schema = randomSchema('repo');
const dataSource = createTestDataSource();
const secondDataSource = createTestDataSource();
const opened: PostgresRepository[] = [];

function open(options: Omit<PostgresRepositoryDataSourceOptions, 'dataSource'> = {}) {
  const repository = createPostgresRepository({ dataSource, schema, ...options });
  opened.push(repository);
  return repository;
}

beforeAll(async () => {
  await Promise.all([dataSource.initialize(), secondDataSource.initialize()]);
  await open().migrate();
});

afterAll(async () => {
  for (const repository of opened) await repository.close();
  try {
    await dropSchema(schema);
  } finally {
    await Promise.allSettled([dataSource.destroy(), secondDataSource.destroy()]);
  }
});

describe('options', () => {
  it('refuses invalid options with INVALID_CONFIG naming the option', () => {
    const cases: Array<[unknown, string]> = [
      [{}, 'exactly one of `url` and `dataSource`'],
      [{ url: POSTGRES_URL, dataSource }, 'exactly one of `url` and `dataSource`'],
      [{ url: '  ' }, 'url'],
      [{ url: POSTGRES_URL, schema: 'Bad-Schema' }, 'schema'],
      [{ url: POSTGRES_URL, tableName: 'x'.repeat(41) }, 'tableName'],
      [{ url: POSTGRES_URL, tableName: 'ctx_migrations' }, 'reserved'],
      [{ url: POSTGRES_URL, ttlMs: 0 }, 'ttlMs'],
      [{ url: POSTGRES_URL, ttlMs: 1.5 }, 'ttlMs'],
      [{ url: POSTGRES_URL, historyLimit: -1 }, 'historyLimit'],
      [{ url: POSTGRES_URL, poolSize: 0 }, 'poolSize'],
      [{ url: POSTGRES_URL, statementTimeoutMs: -5 }, 'statementTimeoutMs'],
      [{ dataSource: { options: { type: 'mysql' } } }, 'type "postgres"'],
    ];
    for (const [options, text] of cases) {
      let error: unknown;
      try {
        createPostgresRepository(options as never);
      } catch (thrown) {
        error = thrown;
      }
      expect(ContextError.hasCode(error, 'INVALID_CONFIG'), text).toBe(true);
      expect((error as Error).message).toContain(text);
    }
  });

  it('declares ttl and history only when configured', () => {
    expect(open().capabilities).toEqual({ ttl: false, history: false });
    const both = open({ ttlMs: 1000, historyLimit: 2 });
    expect(both.capabilities).toEqual({ ttl: true, history: true });
    expect(typeof both.history).toBe('function');
    expect(open().history).toBeUndefined();
    expect(both.schema).toBe(schema);
    expect(both.tableName).toBe('ctx_session_contexts');
  });
});

describe('connection ownership', () => {
  it('a URL repository opens its own pool and close() ends every connection of it', async () => {
    const applicationName = randomId('ctx_owned');
    const repository = createPostgresRepository({ url: POSTGRES_URL, schema, applicationName });
    const snapshot = makeSnapshot();
    await repository.save(snapshot, { expectedVersion: null });
    const count = () =>
      withRawClient(async (client) => {
        const { rows } = await client.query(
          'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
          [applicationName],
        );
        return rows[0].n as number;
      });
    expect(await count()).toBeGreaterThan(0);
    await repository.close();
    await expect.poll(count, { timeout: 5_000 }).toBe(0);
  });

  it('an injected DataSource is never closed by the repository', async () => {
    const repository = createPostgresRepository({ dataSource, schema });
    expect(await repository.get(randomId())).toBeNull();
    await repository.close();
    expect(dataSource.isInitialized).toBe(true);
    expect(await dataSource.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });

  it('an injected DataSource that is not initialized is reported with what to do', async () => {
    const idle = createTestDataSource();
    const repository = createPostgresRepository({ dataSource: idle, schema });
    const error = await caught(() => repository.get(randomId()));
    expect(error.code).toBe('STORAGE_ERROR');
    expect(error.message).toContain('dataSource.initialize()');
    expect(idle.isInitialized).toBe(false);
  });

  it('close() waits for calls already running', async () => {
    const repository = createPostgresRepository({ url: POSTGRES_URL, schema });
    const snapshot = makeSnapshot();
    const saving = repository.save(snapshot, { expectedVersion: null });
    await repository.close();
    await expect(saving).resolves.toMatchObject({ sessionId: snapshot.sessionId, version: 1 });
    expect((await caught(() => repository.get(snapshot.sessionId))).code).toBe('CLOSED');
  });
});

describe('errors', () => {
  it('an unreachable server fails fast with STORAGE_UNAVAILABLE, keeping the driver error', async () => {
    const repository = createPostgresRepository({
      url: 'postgres://postgres@127.0.0.1:1/test',
      connectTimeoutMs: 2_000,
    });
    const started = Date.now();
    const error = await caught(() => repository.get(randomId()));
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(error.code).toBe('STORAGE_UNAVAILABLE');
    expect(error.message).toContain('ECONNREFUSED');
    expect(error.cause).toBeInstanceOf(Error);
    expect(isRetryableError(error)).toBe(true);
    await repository.close();
  });

  it('a statement blocked past statementTimeoutMs fails with STORAGE_UNAVAILABLE, then the repository works', async () => {
    const repository = createPostgresRepository({
      url: POSTGRES_URL,
      schema,
      statementTimeoutMs: 300,
    });
    try {
      const first = await repository.save(makeSnapshot(), { expectedVersion: null });
      await withRawClient(async (client) => {
        await client.query('BEGIN');
        await client.query(
          `SELECT 1 FROM "${schema}".ctx_session_contexts WHERE session_id = $1 FOR UPDATE`,
          [first.sessionId],
        );
        const started = Date.now();
        const error = await caught(() =>
          repository.save(nextVersion(first), { expectedVersion: 1 }),
        );
        expect(Date.now() - started).toBeLessThan(3_000);
        expect(error.code).toBe('STORAGE_UNAVAILABLE');
        expect(error.message).toContain('57014');
        await client.query('ROLLBACK');
      });
      const second = nextVersion(first);
      await expect(repository.save(second, { expectedVersion: 1 })).resolves.toMatchObject({
        version: 2,
      });
    } finally {
      await repository.close();
    }
  });

  it('a connection terminated by the server mid-call is STORAGE_UNAVAILABLE; the next call works', async () => {
    const applicationName = randomId('ctx_killed');
    const repository = createPostgresRepository({ url: POSTGRES_URL, schema, applicationName });
    try {
      const first = await repository.save(makeSnapshot(), { expectedVersion: null });
      await withRawClient(async (client) => {
        await client.query('BEGIN');
        await client.query(
          `SELECT 1 FROM "${schema}".ctx_session_contexts WHERE session_id = $1 FOR UPDATE`,
          [first.sessionId],
        );
        const blocked = caught(() => repository.save(nextVersion(first), { expectedVersion: 1 }));
        await withRawClient(async (admin) => {
          await expect
            .poll(async () => {
              const { rows } = await admin.query(
                `SELECT count(*)::int AS n FROM pg_stat_activity
                 WHERE application_name = $1 AND wait_event_type = 'Lock'`,
                [applicationName],
              );
              return rows[0].n;
            })
            .toBe(1);
          await admin.query(
            'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
            [applicationName],
          );
        });
        const error = await blocked;
        expect(error.code).toBe('STORAGE_UNAVAILABLE');
        await client.query('ROLLBACK');
      });
      expect(await repository.get(first.sessionId)).toMatchObject({ version: 1 });
      await expect(
        repository.save(nextVersion(first), { expectedVersion: 1 }),
      ).resolves.toMatchObject({ version: 2 });
    } finally {
      await repository.close();
    }
  });

  it('a permission error is STORAGE_ERROR with the SQLSTATE and the driver error as cause', async () => {
    const role = randomId('ctx_reader').replaceAll('-', '_');
    await withRawClient((client) => client.query(`CREATE ROLE ${role} LOGIN`));
    const url = new URL(POSTGRES_URL);
    url.username = role;
    const repository = createPostgresRepository({ url: url.toString(), schema });
    try {
      await withRawClient(async (client) => {
        await client.query(`GRANT USAGE ON SCHEMA "${schema}" TO ${role}`);
        await client.query(`GRANT SELECT ON "${schema}".ctx_migrations TO ${role}`);
        await client.query(`GRANT SELECT ON "${schema}".ctx_session_contexts TO ${role}`);
      });
      expect(await repository.get(randomId())).toBeNull();
      const error = await caught(() => repository.save(makeSnapshot(), { expectedVersion: null }));
      expect(error.code).toBe('STORAGE_ERROR');
      expect(error.message).toContain('42501');
      expect((error.cause as { code?: string }).code).toBe('42501');
      expect(isRetryableError(error)).toBe(false);
    } finally {
      await repository.close();
      await withRawClient(async (client) => {
        await client.query(`DROP OWNED BY ${role}`);
        await client.query(`DROP ROLE ${role}`);
      });
    }
  });

  it('tables dropped behind the repository are reported as SCHEMA_MISMATCH with what to do', async () => {
    const otherSchema = randomSchema('dropped');
    const repository = createPostgresRepository({ dataSource, schema: otherSchema });
    try {
      await repository.migrate();
      expect(await repository.get(randomId())).toBeNull();
      await withRawClient((client) =>
        client.query(`DROP TABLE "${otherSchema}".ctx_session_contexts CASCADE`),
      );
      const error = await caught(() => repository.get(randomId()));
      expect(error.code).toBe('SCHEMA_MISMATCH');
      expect(error.message).toContain('migrate()');
    } finally {
      await repository.close();
      await dropSchema(otherSchema);
    }
  });
});

describe('ttl', () => {
  const countRows = (table: string, sessionId: string) =>
    withRawClient(async (client) => {
      const { rows } = await client.query(
        `SELECT count(*)::int AS n FROM "${schema}"."${table}" WHERE session_id = $1`,
        [sessionId],
      );
      return rows[0].n as number;
    });

  it('expires_at is set from the server clock and cleared by a write without TTL', async () => {
    const withTtl = open({ ttlMs: 60_000 });
    const first = await withTtl.save(makeSnapshot(), { expectedVersion: null });
    const expiry = await withRawClient(async (client) => {
      const { rows } = await client.query(
        `SELECT extract(epoch FROM expires_at - now()) AS left FROM "${schema}".ctx_session_contexts WHERE session_id = $1`,
        [first.sessionId],
      );
      return Number(rows[0].left);
    });
    expect(expiry).toBeGreaterThan(55);
    expect(expiry).toBeLessThanOrEqual(60);
    await open().save(nextVersion(first), { expectedVersion: 1 });
    const raw = await withRawClient((client) =>
      client.query(
        `SELECT expires_at FROM "${schema}".ctx_session_contexts WHERE session_id = $1`,
        [first.sessionId],
      ),
    );
    expect(raw.rows[0].expires_at).toBeNull();
  });

  it('expiry is stored per row: a repository without ttlMs hides and purges expired rows too', async () => {
    const writer = open({ ttlMs: 200 });
    const reader = open();
    const snapshot = await writer.save(makeSnapshot(), { expectedVersion: null });
    expect(await reader.get(snapshot.sessionId)).toMatchObject({ version: 1 });
    await sleep(350);
    expect(await reader.get(snapshot.sessionId)).toBeNull();
    expect(await countRows('ctx_session_contexts', snapshot.sessionId)).toBe(1);
    expect(await reader.purgeExpired()).toBeGreaterThanOrEqual(1);
    expect(await countRows('ctx_session_contexts', snapshot.sessionId)).toBe(0);
  });

  it('creators racing over an expired session on two connections: exactly one takes it over', async () => {
    const one = open({ ttlMs: 200, historyLimit: 3 });
    const two = createPostgresRepository({
      dataSource: secondDataSource,
      schema,
      ttlMs: 200,
      historyLimit: 3,
    });
    opened.push(two);
    let current = await one.save(makeSnapshot(), { expectedVersion: null });
    for (let version = 2; version <= 3; version += 1) {
      current = await one.save(nextVersion(current), { expectedVersion: version - 1 });
    }
    await sleep(350);
    const sessionId = current.sessionId;
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, (_, index) =>
        (index % 2 ? two : one).save(makeSnapshot({ sessionId, summary: `creator ${index}` }), {
          expectedVersion: null,
        }),
      ),
    );
    const winners = results.filter((result) => result.status === 'fulfilled');
    const losers = results.filter((result) => result.status === 'rejected');
    expect(winners).toHaveLength(1);
    for (const loser of losers) {
      expect((loser as PromiseRejectedResult).reason).toMatchObject({
        code: 'VERSION_CONFLICT',
        currentVersion: 1,
      });
    }
    const winner = (winners[0] as PromiseFulfilledResult<SessionContext>).value;
    expect(await two.get(sessionId)).toMatchObject({ summary: winner.summary, version: 1 });
    const history = await one.history?.(sessionId);
    expect(history?.map((item) => [item.version, item.summary])).toEqual([[1, winner.summary]]);
    expect(await countRows('ctx_session_contexts_history', sessionId)).toBe(1);
  });
});

describe('history', () => {
  const historyRows = (sessionId: string) =>
    withRawClient(async (client) => {
      const { rows } = await client.query(
        `SELECT version FROM "${schema}".ctx_session_contexts_history WHERE session_id = $1 ORDER BY version DESC`,
        [sessionId],
      );
      return rows.map((row) => Number(row.version));
    });

  it('the history table holds at most historyLimit rows per session, written with each save', async () => {
    const repository = open({ historyLimit: 3 });
    let current = await repository.save(makeSnapshot(), { expectedVersion: null });
    expect(await historyRows(current.sessionId)).toEqual([1]);
    for (let version = 2; version <= 10; version += 1) {
      current = await repository.save(nextVersion(current), { expectedVersion: version - 1 });
    }
    expect(await historyRows(current.sessionId)).toEqual([10, 9, 8]);
    const history = await repository.history?.(current.sessionId, { limit: 2 });
    expect(history?.map((item) => item.version)).toEqual([10, 9]);
  });

  it('a repository without history writes none; delete and purge remove history rows', async () => {
    const plain = open();
    const snapshot = await plain.save(makeSnapshot(), { expectedVersion: null });
    await plain.save(nextVersion(snapshot), { expectedVersion: 1 });
    expect(await historyRows(snapshot.sessionId)).toEqual([]);

    const keeping = open({ historyLimit: 5, ttlMs: 200 });
    const kept = await keeping.save(makeSnapshot(), { expectedVersion: null });
    await keeping.save(nextVersion(kept), { expectedVersion: 1 });
    const deleted = await keeping.save(makeSnapshot(), { expectedVersion: null });
    expect(await historyRows(kept.sessionId)).toEqual([2, 1]);
    expect(await keeping.delete(deleted.sessionId)).toBe(true);
    expect(await historyRows(deleted.sessionId)).toEqual([]);
    await sleep(350);
    expect(await keeping.history?.(kept.sessionId)).toEqual([]);
    expect(await keeping.purgeExpired()).toBeGreaterThanOrEqual(1);
    expect(await historyRows(kept.sessionId)).toEqual([]);
  });

  it('an invalid history limit is INVALID_INPUT', async () => {
    const repository = open({ historyLimit: 3 });
    for (const limit of [0, -1, 1.5]) {
      const error = await caught(async () => repository.history?.(randomId(), { limit }));
      expect(error.code).toBe('INVALID_INPUT');
    }
  });
});

describe('TypeORM entities', () => {
  let entityDataSource: DataSource;
  const entities = createPostgresEntities({ schema });

  beforeAll(async () => {
    // synchronize: true must leave the ctx tables alone (the entity schemas opt out).
    entityDataSource = createTestDataSource();
    entityDataSource.setOptions({ entities: Object.values(entities), synchronize: true });
    await entityDataSource.initialize();
  });
  afterAll(async () => {
    await entityDataSource.destroy();
  });

  it('the entity schemas read what the repository wrote', async () => {
    const repository = open({ historyLimit: 2 });
    const userId = randomId('entity-user');
    const first = await repository.save(
      makeSnapshot({ userId, goal: 'Ship', plan: ['a', 'b'], progress: ['a'] }),
      { expectedVersion: null },
    );
    const second = await repository.save(nextVersion(first), { expectedVersion: 1 });
    const rows = await entityDataSource.getRepository(entities.sessionContext).find({
      where: { userId },
    });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      sessionId: first.sessionId,
      userId,
      summary: second.summary,
      goal: 'Ship',
      plan: ['a', 'b'],
      progress: ['a'],
      version: 2,
      expiresAt: null,
    });
    expect(rows[0]?.updatedAt.getTime()).toBe(second.updatedAt.getTime());
    const history = await entityDataSource.getRepository(entities.sessionContextHistory).find({
      where: { sessionId: first.sessionId },
      order: { version: 'DESC' },
    });
    expect(history.map((row) => row.version)).toEqual([2, 1]);
  });

  it('synchronize: true left the migrated layout untouched', async () => {
    const indexes = await withRawClient(async (client) => {
      const { rows } = await client.query(
        `SELECT indexname FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname`,
        [schema],
      );
      return rows.map((row) => row.indexname as string);
    });
    expect(indexes).toEqual([
      'ctx_migrations_pkey',
      'ctx_session_contexts_expires_idx',
      'ctx_session_contexts_history_pkey',
      'ctx_session_contexts_history_session_idx',
      'ctx_session_contexts_list_idx',
      'ctx_session_contexts_pkey',
      'ctx_session_contexts_user_list_idx',
    ]);
  });
});
