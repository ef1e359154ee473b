import { makeSnapshot, nextVersion } from '@ctx/conformance';
import { ContextError, isRetryableError, type SessionContext, type TurnInput } from '@ctx/core';
import pg from 'pg';
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
      [{}, 'exactly one of `pool`, `url` and `dataSource`'],
      [{ url: POSTGRES_URL, dataSource }, 'exactly one of `pool`, `url` and `dataSource`'],
      [{ url: POSTGRES_URL, pool: {} }, 'exactly one of `pool`, `url` and `dataSource`'],
      [{ url: '  ' }, 'url'],
      [{ pool: {} }, 'pool'],
      [{ url: POSTGRES_URL, autoMigrate: true }, 'renamed to `migrate`'],
      [{ url: POSTGRES_URL, migrate: 'yes' }, 'migrate'],
      [{ url: POSTGRES_URL, tombstoneRetentionMs: -1 }, 'tombstoneRetentionMs'],
      [{ url: POSTGRES_URL, preparedStatements: 'no' }, 'preparedStatements'],
      [{ url: POSTGRES_URL, tableName: 'Bad-Name' }, 'tableName'],
      [{ url: POSTGRES_URL, schema: 'Bad-Schema' }, 'schema'],
      [{ url: POSTGRES_URL, tableName: 'x'.repeat(41) }, 'tableName'],
      [{ url: POSTGRES_URL, tableName: 'ctx_migrations' }, 'reserved'],
      [{ url: POSTGRES_URL, ttlMs: 0 }, 'ttlMs'],
      [{ url: POSTGRES_URL, ttlMs: 1.5 }, 'ttlMs'],
      [{ url: POSTGRES_URL, historyLimit: -1 }, 'historyLimit'],
      [{ url: POSTGRES_URL, maxPendingTurns: 0 }, 'maxPendingTurns'],
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

  it('declares ttl and history only when configured, and the turn log always', () => {
    expect(open().capabilities).toEqual({
      ttl: false,
      history: false,
      turnLog: true,
      fields: true,
    });
    const both = open({ ttlMs: 1000, historyLimit: 2 });
    expect(both.capabilities).toEqual({ ttl: true, history: true, turnLog: true, fields: true });
    expect(typeof both.history).toBe('function');
    expect(open().history).toBeUndefined();
    expect(both.schema).toBe(schema);
    expect(both.tableName).toBe('ctx_sessions');
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

  it('an injected pg pool carries every statement and is never ended by the repository', async () => {
    const applicationName = randomId('ctx_injected');
    const pool = new pg.Pool({
      connectionString: POSTGRES_URL,
      max: 2,
      application_name: applicationName,
    });
    try {
      const repository = createPostgresRepository({ pool, schema });
      const saved = await repository.save(makeSnapshot(), { expectedVersion: null });
      expect(await repository.get(saved.sessionId)).toMatchObject({ version: 1 });
      expect(pool.totalCount).toBeGreaterThan(0);
      await repository.close();
      expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await pool.end();
    }
  });

  it('statements are prepared once per connection, unless preparedStatements is false', async () => {
    const preparedOn = async (preparedStatements: boolean) => {
      // One connection, so the repository's statements and the check share it.
      const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 1 });
      try {
        const repository = createPostgresRepository({ pool, schema, preparedStatements });
        const saved = await repository.save(makeSnapshot(), { expectedVersion: null });
        await repository.get(saved.sessionId);
        await repository.get(saved.sessionId);
        await repository.close();
        const { rows } = await pool.query(
          "SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name LIKE 'ctx\\_%'",
        );
        return rows[0].n as number;
      } finally {
        await pool.end();
      }
    };
    expect(await preparedOn(true)).toBeGreaterThanOrEqual(2);
    expect(await preparedOn(false)).toBe(0);
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
          `SELECT 1 FROM "${schema}".ctx_sessions WHERE session_id = $1 FOR UPDATE`,
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
          `SELECT 1 FROM "${schema}".ctx_sessions WHERE session_id = $1 FOR UPDATE`,
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
        await client.query(`GRANT SELECT ON "${schema}".ctx_sessions TO ${role}`);
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
        client.query(`DROP TABLE "${otherSchema}".ctx_sessions CASCADE`),
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

  const rawRow = (sessionId: string) =>
    withRawClient(async (client) => {
      const { rows } = await client.query(
        `SELECT user_id, summary, goal, plan, progress, version, expires_at, deleted_at
         FROM "${schema}".ctx_sessions WHERE session_id = $1`,
        [sessionId],
      );
      return rows[0] as Record<string, unknown> | undefined;
    });

  it("expires_at is the repository clock's now + ttlMs, and a write without TTL clears it", async () => {
    const clock = Date.UTC(2030, 0, 2, 3, 4, 5, 678);
    const withTtl = open({ ttlMs: 60_000, now: () => clock });
    const first = await withTtl.save(makeSnapshot(), { expectedVersion: null });
    const stored = await rawRow(first.sessionId);
    expect((stored?.expires_at as Date | undefined)?.getTime()).toBe(clock + 60_000);
    expect(await withTtl.get(first.sessionId)).toMatchObject({ version: 1 });
    await open({ now: () => clock }).save(nextVersion(first), { expectedVersion: 1 });
    expect((await rawRow(first.sessionId))?.expires_at).toBeNull();
  });

  it('expiry follows the repository clock, not the database server clock', async () => {
    let clock = Date.now();
    const repository = open({ ttlMs: 60_000, now: () => clock });
    const snapshot = await repository.save(makeSnapshot(), { expectedVersion: null });
    clock += 59_999;
    expect(await repository.get(snapshot.sessionId)).toMatchObject({ version: 1 });
    clock += 1;
    expect(await repository.get(snapshot.sessionId)).toBeNull();
    expect(await repository.list({ userId: snapshot.userId as string })).toMatchObject({
      items: [],
    });
  });

  it('expiry is stored per row: a repository without ttlMs hides and purges expired rows too', async () => {
    const writer = open({ ttlMs: 200 });
    const reader = open();
    const snapshot = await writer.save(makeSnapshot(), { expectedVersion: null });
    expect(await reader.get(snapshot.sessionId)).toMatchObject({ version: 1 });
    await sleep(350);
    expect(await reader.get(snapshot.sessionId)).toBeNull();
    expect(await countRows('ctx_sessions', snapshot.sessionId)).toBe(1);
    expect(await reader.purgeExpired()).toBeGreaterThanOrEqual(1);
    // Purged: a tombstone dated from the expiry keeps the version, nothing else.
    const tombstone = await rawRow(snapshot.sessionId);
    expect(tombstone).toMatchObject({
      user_id: null,
      summary: '',
      goal: null,
      plan: null,
      progress: null,
      version: '1',
      expires_at: null,
    });
    expect(tombstone?.deleted_at).toBeInstanceOf(Date);
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
    // The winner continues the expired session's versions (3) instead of restarting at 1.
    for (const loser of losers) {
      expect((loser as PromiseRejectedResult).reason).toMatchObject({
        code: 'VERSION_CONFLICT',
        currentVersion: 4,
      });
    }
    const winner = (winners[0] as PromiseFulfilledResult<SessionContext>).value;
    expect(winner.version).toBe(4);
    expect(await two.get(sessionId)).toMatchObject({ summary: winner.summary, version: 4 });
    const history = await one.history?.(sessionId);
    expect(history?.map((item) => [item.version, item.summary])).toEqual([[4, winner.summary]]);
    expect(await countRows('ctx_sessions_history', sessionId)).toBe(1);
  });
});

describe('tombstones', () => {
  const rawRow = (sessionId: string) =>
    withRawClient(async (client) => {
      const { rows } = await client.query(
        `SELECT user_id, summary, goal, plan, progress, version, expires_at, deleted_at,
           (SELECT count(*)::int FROM "${schema}".ctx_sessions_history h WHERE h.session_id = $1) AS history
         FROM "${schema}".ctx_sessions WHERE session_id = $1`,
        [sessionId],
      );
      return rows[0] as Record<string, unknown> | undefined;
    });

  it('a delete blanks the row and dates it with the repository clock; the version stays', async () => {
    const clock = Date.UTC(2031, 4, 5, 6, 7, 8, 9);
    const repository = open({ historyLimit: 3, ttlMs: 60_000, now: () => clock });
    const first = await repository.save(
      makeSnapshot({ goal: 'Goal', plan: ['a'], progress: ['a'] }),
      { expectedVersion: null },
    );
    await repository.save(nextVersion(first), { expectedVersion: 1 });
    expect(await repository.delete(first.sessionId)).toBe(true);
    const tombstone = await rawRow(first.sessionId);
    expect(tombstone).toMatchObject({
      user_id: null,
      summary: '',
      goal: null,
      plan: null,
      progress: null,
      version: '2',
      expires_at: null,
      history: 0,
    });
    expect((tombstone?.deleted_at as Date | undefined)?.getTime()).toBe(clock);
    expect(await repository.get(first.sessionId)).toBeNull();
    expect(await repository.history?.(first.sessionId)).toEqual([]);
  });

  it('purgeExpired forgets tombstones older than tombstoneRetentionMs and keeps newer ones', async () => {
    // A clock in the past: the purge touches only what this test wrote.
    const start = Date.UTC(2001, 0, 1);
    let clock = start;
    const repository = open({ tombstoneRetentionMs: 10_000, now: () => clock });
    const old = await repository.save(makeSnapshot(), { expectedVersion: null });
    const recent = await repository.save(makeSnapshot(), { expectedVersion: null });
    expect(await repository.delete(old.sessionId)).toBe(true);
    clock = start + 5_000;
    expect(await repository.delete(recent.sessionId)).toBe(true);
    clock = start + 12_000;
    expect(await repository.purgeExpired()).toBe(0);
    expect(await rawRow(old.sessionId)).toBeUndefined();
    expect(await rawRow(recent.sessionId)).toMatchObject({ version: '1' });
    // A forgotten id starts over; a remembered one continues.
    expect(await repository.save(old, { expectedVersion: null })).toMatchObject({ version: 1 });
    expect(await repository.save(recent, { expectedVersion: null })).toMatchObject({
      version: 2,
    });
  });

  it('purgeExpired tombstones expired sessions from their expiry, and forgets ones past retention', async () => {
    const start = Date.UTC(2002, 0, 1);
    let clock = start;
    const repository = open({
      ttlMs: 1_000,
      historyLimit: 2,
      tombstoneRetentionMs: 10_000,
      now: () => clock,
    });
    const long = await repository.save(makeSnapshot(), { expectedVersion: null });
    clock = start + 15_000;
    const recent = await repository.save(makeSnapshot(), { expectedVersion: null });
    clock = start + 16_500;
    expect(await repository.purgeExpired()).toBe(2);
    expect(await rawRow(long.sessionId)).toBeUndefined();
    const tombstone = await rawRow(recent.sessionId);
    expect(tombstone).toMatchObject({ summary: '', user_id: null, version: '1', history: 0 });
    expect((tombstone?.deleted_at as Date | undefined)?.getTime()).toBe(start + 16_000);
    expect(await repository.purgeExpired()).toBe(0);
    expect(await repository.save(recent, { expectedVersion: null })).toMatchObject({
      version: 2,
    });
  });
});

describe('history', () => {
  const historyRows = (sessionId: string) =>
    withRawClient(async (client) => {
      const { rows } = await client.query(
        `SELECT version FROM "${schema}".ctx_sessions_history WHERE session_id = $1 ORDER BY version DESC`,
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

describe('turn log', () => {
  const turn = (overrides: Partial<TurnInput> = {}): TurnInput => ({
    turnId: randomId('turn'),
    userId: null,
    messages: [{ role: 'user', content: 'Ship it on Friday?' }],
    ...overrides,
  });
  const turnRows = (sessionId: string) =>
    withRawClient(async (client) => {
      const { rows } = await client.query(
        `SELECT turn_id, sequence::float8 AS sequence, user_id, messages, recorded_at, folded_at
         FROM "${schema}".ctx_sessions_turns WHERE session_id = $1 ORDER BY sequence`,
        [sessionId],
      );
      return rows as Array<Record<string, unknown>>;
    });
  const leaseRows = (sessionId: string) =>
    withRawClient(async (client) => {
      const { rows } = await client.query(
        `SELECT holder, expires_at FROM "${schema}".ctx_sessions_leases WHERE session_id = $1`,
        [sessionId],
      );
      return rows as Array<{ holder: string; expires_at: Date }>;
    });
  const second = (options: Omit<PostgresRepositoryDataSourceOptions, 'dataSource'> = {}) => {
    const repository = createPostgresRepository({
      dataSource: secondDataSource,
      schema,
      ...options,
    });
    opened.push(repository);
    return repository;
  };

  it('the pending bound holds when records race on a DataSource, a pool and a DataSource defaulting to REPEATABLE READ', async () => {
    // A turn's record is one READ COMMITTED transaction whatever the default isolation: under
    // REPEATABLE READ the count would come from a snapshot taken before the lock was granted.
    const repeatable = createTestDataSource();
    repeatable.setOptions({ isolationLevel: 'REPEATABLE READ' });
    await repeatable.initialize();
    const pooled = createPostgresRepository({
      url: POSTGRES_URL,
      schema,
      maxPendingTurns: 5,
      poolSize: 5,
    });
    const isolated = createPostgresRepository({
      dataSource: repeatable,
      schema,
      maxPendingTurns: 5,
    });
    try {
      const repositories = [open({ maxPendingTurns: 5 }), pooled, isolated];
      for (let round = 0; round < 3; round += 1) {
        const sessionId = randomId();
        const results = await Promise.allSettled(
          Array.from({ length: 30 }, (_, index) =>
            (repositories[index % 3] as PostgresRepository).recordTurn(sessionId, turn()),
          ),
        );
        const refused = results.filter((result) => result.status === 'rejected');
        expect(refused).toHaveLength(25);
        for (const result of refused) {
          expect(ContextError.hasCode(result.reason, 'BACKPRESSURE')).toBe(true);
        }
        const rows = await turnRows(sessionId);
        expect(rows).toHaveLength(5);
        const recorded = results.flatMap((result) =>
          result.status === 'fulfilled' ? [result.value.sequence] : [],
        );
        expect(recorded.sort((a, b) => a - b)).toEqual(rows.map((row) => row.sequence));
      }
    } finally {
      await pooled.close();
      await isolated.close();
      await repeatable.destroy();
    }
  });

  it('a fold keeps the id, sequence and fold time of each folded turn and drops its messages', async () => {
    const clock = Date.UTC(2033, 1, 2, 3, 4, 5, 678);
    const repository = open({ now: () => clock });
    const sessionId = randomId();
    const [folded, kept] = [turn({ userId: randomId('user') }), turn()];
    const first = await repository.recordTurn(sessionId, folded);
    const next = await second({ now: () => clock }).recordTurn(sessionId, kept);
    const [pending] = await repository.pendingTurns(sessionId, { limit: 1 });
    expect(pending?.recordedAt.getTime()).toBe(clock);
    // An id that is not pending is ignored: the fold marks exactly the pending turns it names.
    await repository.save(makeSnapshot({ sessionId }), {
      expectedVersion: null,
      foldedTurnIds: [folded.turnId, randomId('never-recorded')],
    });
    expect(await turnRows(sessionId)).toEqual([
      {
        turn_id: folded.turnId,
        sequence: first.sequence,
        user_id: folded.userId,
        messages: null,
        recorded_at: new Date(clock),
        folded_at: new Date(clock),
      },
      {
        turn_id: kept.turnId,
        sequence: next.sequence,
        user_id: null,
        messages: kept.messages,
        recorded_at: new Date(clock),
        folded_at: null,
      },
    ]);
  });

  it('a delete drops the turns and the lease when it removes the session or finds none live; a refused one keeps them', async () => {
    let clock = Date.now();
    const repository = open({ ttlMs: 60_000, now: () => clock });
    const other = second({ now: () => clock });
    const owner = randomId('user');
    const saved = await repository.save(makeSnapshot({ userId: owner }), { expectedVersion: null });
    await repository.recordTurn(saved.sessionId, turn());
    expect(await repository.acquireLease(saved.sessionId, { holder: 'alpha', ttlMs: 60_000 })).toBe(
      true,
    );
    const intruder = await caught(() => other.delete(saved.sessionId, { userId: randomId() }));
    expect(intruder.code).toBe('OWNERSHIP_MISMATCH');
    const stale = await caught(() => other.delete(saved.sessionId, { expectedVersion: 2 }));
    expect(stale.code).toBe('VERSION_CONFLICT');
    expect(await turnRows(saved.sessionId)).toHaveLength(1);
    expect(await other.acquireLease(saved.sessionId, { holder: 'beta', ttlMs: 60_000 })).toBe(
      false,
    );
    expect(await other.delete(saved.sessionId, { userId: owner, expectedVersion: 1 })).toBe(true);
    expect(await turnRows(saved.sessionId)).toEqual([]);
    expect(await leaseRows(saved.sessionId)).toEqual([]);

    // An expired session is no live session: its delete finds none and drops its log.
    const expiring = await repository.save(makeSnapshot(), { expectedVersion: null });
    await repository.recordTurn(expiring.sessionId, turn());
    await repository.acquireLease(expiring.sessionId, { holder: 'alpha', ttlMs: 600_000 });
    clock += 60_001;
    expect(await other.delete(expiring.sessionId)).toBe(false);
    expect(await turnRows(expiring.sessionId)).toEqual([]);
    expect(await leaseRows(expiring.sessionId)).toEqual([]);
  });

  it('sequences keep growing after a delete dropped the log, and a dropped id records again', async () => {
    const repository = open();
    const sessionId = randomId();
    const same = turn();
    const before = await repository.recordTurn(sessionId, same);
    expect(await repository.delete(sessionId)).toBe(false);
    const after = await repository.recordTurn(sessionId, same);
    expect(after.duplicate).toBe(false);
    expect(after.sequence).toBeGreaterThan(before.sequence);
  });

  it('purgeExpired forgets folded ids older than tombstoneRetentionMs and lapsed leases; pending turns stay', async () => {
    // A clock before every other test's: the purge touches only what this test wrote.
    const start = Date.UTC(1999, 0, 1);
    let clock = start;
    const repository = open({ tombstoneRetentionMs: 10_000, now: () => clock });
    const sessionId = randomId();
    const [old, recent, pending] = [turn(), turn(), turn()];
    const oldRecord = await repository.recordTurn(sessionId, old);
    const recentRecord = await repository.recordTurn(sessionId, recent);
    await repository.recordTurn(sessionId, pending);
    const saved = await repository.save(makeSnapshot({ sessionId }), {
      expectedVersion: null,
      foldedTurnIds: [old.turnId],
    });
    clock = start + 5_000;
    await repository.save(nextVersion(saved), {
      expectedVersion: 1,
      foldedTurnIds: [recent.turnId],
    });
    const leased = randomId();
    expect(await repository.acquireLease(sessionId, { holder: 'gone', ttlMs: 1_000 })).toBe(true);
    expect(await repository.acquireLease(leased, { holder: 'busy', ttlMs: 60_000 })).toBe(true);
    clock = start + 12_000;
    expect(await repository.purgeExpired()).toBe(0);
    expect((await turnRows(sessionId)).map((row) => row.turn_id)).toEqual([
      recent.turnId,
      pending.turnId,
    ]);
    expect(await leaseRows(sessionId)).toEqual([]);
    expect(await leaseRows(leased)).toMatchObject([{ holder: 'busy' }]);
    expect(await repository.recordTurn(sessionId, recent)).toMatchObject({
      duplicate: true,
      sequence: recentRecord.sequence,
    });
    const again = await repository.recordTurn(sessionId, old);
    expect(again.duplicate).toBe(false);
    expect(again.sequence).toBeGreaterThan(oldRecord.sequence);
  });

  it('sessionsWithPendingTurns orders by the oldest pending turn and honours recordedBefore, leases and limit', async () => {
    // A clock before every other test's: these are the oldest pending turns of the schema.
    const start = Date.UTC(1990, 0, 1);
    let clock = start;
    const repository = open({ now: () => clock });
    const [late, early, leased] = [randomId(), randomId(), randomId()];
    clock = start + 2_000;
    await repository.recordTurn(late, turn());
    clock = start + 1_000;
    await repository.recordTurn(early, turn());
    clock = start + 500;
    await repository.recordTurn(leased, turn());
    clock = start + 3_000;
    await repository.recordTurn(early, turn());
    expect(await repository.acquireLease(leased, { holder: 'folder', ttlMs: 10_000 })).toBe(true);
    expect(await repository.sessionsWithPendingTurns({ limit: 2 })).toEqual([early, late]);
    expect(
      await repository.sessionsWithPendingTurns({ recordedBefore: new Date(start + 1_500) }),
    ).toEqual([early]);
    clock = start + 20_000;
    expect(await repository.sessionsWithPendingTurns({ limit: 3 })).toEqual([leased, early, late]);
  });

  it('a stored turn whose messages are not a list is STORAGE_ERROR', async () => {
    const repository = open();
    const sessionId = randomId();
    await repository.recordTurn(sessionId, turn());
    await withRawClient((client) =>
      client.query(
        `UPDATE "${schema}".ctx_sessions_turns SET messages = '{"not":"a list"}' WHERE session_id = $1`,
        [sessionId],
      ),
    );
    const error = await caught(() => repository.pendingTurns(sessionId));
    expect(error.code).toBe('STORAGE_ERROR');
    expect(error.message).toContain('messages');
  });

  it('deletes racing folds of the same sessions on two connections leave no turns behind', async () => {
    const folder = open();
    const deleter = second();
    const sessions = Array.from({ length: 20 }, () => randomId());
    const turnIds = new Map<string, string[]>();
    await Promise.all(
      sessions.map(async (sessionId) => {
        const ids: string[] = [];
        for (let index = 0; index < 5; index += 1) {
          const recorded = await folder.recordTurn(sessionId, turn());
          ids.push(recorded.turnId);
        }
        turnIds.set(sessionId, ids);
      }),
    );
    const results = await Promise.allSettled(
      sessions.flatMap((sessionId) => [
        folder.save(makeSnapshot({ sessionId }), {
          expectedVersion: null,
          foldedTurnIds: [...(turnIds.get(sessionId) ?? [])].reverse(),
        }),
        deleter.delete(sessionId),
      ]),
    );
    expect(results.filter((result) => result.status === 'rejected')).toEqual([]);
    for (const sessionId of sessions) expect(await turnRows(sessionId)).toEqual([]);
  });

  it('a fold and a delete waiting for the same turns lock them in one order: no deadlock', async () => {
    const [folderName, deleterName] = [randomId('ctx_folder'), randomId('ctx_deleter')];
    const folder = createPostgresRepository({
      url: POSTGRES_URL,
      schema,
      applicationName: folderName,
    });
    const deleter = createPostgresRepository({
      url: POSTGRES_URL,
      schema,
      applicationName: deleterName,
    });
    const waitingForLock = (applicationName: string) =>
      expect
        .poll(() =>
          withRawClient(async (client) => {
            const { rows } = await client.query(
              `SELECT count(*)::int AS n FROM pg_stat_activity
               WHERE application_name = $1 AND wait_event_type = 'Lock'`,
              [applicationName],
            );
            return rows[0].n as number;
          }),
        )
        .toBe(1);
    try {
      const sessionId = randomId();
      const turnIds: string[] = [];
      for (let index = 0; index < 5; index += 1) {
        turnIds.push((await folder.recordTurn(sessionId, turn())).turnId);
      }
      expect(await deleter.get(sessionId)).toBeNull();
      const middle = [...turnIds].sort()[2];
      await withRawClient(async (client) => {
        // Holding the middle turn makes the fold stop halfway through the turns it locks; the
        // delete, finding no live session, then waits too. Taking them in opposite orders, each
        // would hold what the other needs once the middle one is free.
        await client.query('BEGIN');
        await client.query(
          `SELECT 1 FROM "${schema}".ctx_sessions_turns WHERE session_id = $1 AND turn_id = $2 FOR UPDATE`,
          [sessionId, middle],
        );
        const folding = folder.save(makeSnapshot({ sessionId }), {
          expectedVersion: null,
          foldedTurnIds: turnIds,
        });
        await waitingForLock(folderName);
        const deleting = deleter.delete(sessionId);
        await waitingForLock(deleterName);
        await client.query('ROLLBACK');
        await expect(folding).resolves.toMatchObject({ version: 1 });
        await expect(deleting).resolves.toBe(false);
      });
      expect(await turnRows(sessionId)).toEqual([]);
      expect(await folder.get(sessionId)).toMatchObject({ version: 1 });
    } finally {
      await folder.close();
      await deleter.close();
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
      deletedAt: null,
    });
    expect(rows[0]?.updatedAt.getTime()).toBe(second.updatedAt.getTime());
    const history = await entityDataSource.getRepository(entities.sessionContextHistory).find({
      where: { sessionId: first.sessionId },
      order: { version: 'DESC' },
    });
    expect(history.map((row) => row.version)).toEqual([2, 1]);
  });

  it('find() leaves tombstones out (deletedAt is the delete date column); withDeleted shows them', async () => {
    const repository = open();
    const snapshot = await repository.save(makeSnapshot(), { expectedVersion: null });
    expect(await repository.delete(snapshot.sessionId)).toBe(true);
    const sessions = entityDataSource.getRepository(entities.sessionContext);
    expect(await sessions.find({ where: { sessionId: snapshot.sessionId } })).toEqual([]);
    const [tombstone] = await sessions.find({
      where: { sessionId: snapshot.sessionId },
      withDeleted: true,
    });
    expect(tombstone).toMatchObject({ version: 1, summary: '', userId: null });
    expect(tombstone?.deletedAt).toBeInstanceOf(Date);
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
      'ctx_sessions_deleted_idx',
      'ctx_sessions_expires_idx',
      'ctx_sessions_history_pkey',
      'ctx_sessions_history_session_idx',
      'ctx_sessions_leases_pkey',
      'ctx_sessions_list_idx',
      'ctx_sessions_pkey',
      'ctx_sessions_turns_folded_idx',
      'ctx_sessions_turns_pending_idx',
      'ctx_sessions_turns_pkey',
      'ctx_sessions_user_list_idx',
    ]);
  });
});
