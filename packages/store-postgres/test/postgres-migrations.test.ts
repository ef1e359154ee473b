import { makeSnapshot, nextVersion } from '@ctx/conformance';
import { ContextError, type SessionContext } from '@ctx/core';
import type { DataSource } from 'typeorm';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createPostgresMigrations,
  createPostgresRepository,
  POSTGRES_SCHEMA_VERSION,
  type PostgresRepository,
} from '../src/index.js';
import {
  createTestDataSource,
  dropSchema,
  POSTGRES_URL,
  randomId,
  randomSchema,
  withRawClient,
} from './helpers.js';

const schemas: string[] = [];
const dataSources: DataSource[] = [];
const repositories: PostgresRepository[] = [];

function freshSchema(): string {
  const schema = randomSchema('migrate');
  schemas.push(schema);
  return schema;
}

async function openDataSource(options: Parameters<DataSource['setOptions']>[0] = {}) {
  const dataSource = createTestDataSource();
  dataSource.setOptions(options);
  dataSources.push(dataSource);
  await dataSource.initialize();
  return dataSource;
}

function track(repository: PostgresRepository): PostgresRepository {
  repositories.push(repository);
  return repository;
}

async function errorOf(action: () => Promise<unknown>): Promise<ContextError> {
  try {
    await action();
  } catch (error) {
    if (ContextError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected the call to throw');
}

async function rawRows<T>(sql: string, params: unknown[] = []): Promise<T[]> {
  return withRawClient(async (client) => (await client.query(sql, params)).rows as T[]);
}

afterEach(async () => {
  for (const repository of repositories.splice(0)) await repository.close();
  for (const dataSource of dataSources.splice(0)) {
    if (dataSource.isInitialized) await dataSource.destroy();
  }
  for (const schema of schemas.splice(0)) await dropSchema(schema);
});

describe('migrate()', () => {
  it('five DataSources migrating one fresh schema at once: one applies it, the others find it done', async () => {
    const schema = freshSchema();
    const sources = await Promise.all(Array.from({ length: 5 }, () => openDataSource()));
    const results = await Promise.all(
      sources.map((dataSource) =>
        track(createPostgresRepository({ dataSource, schema })).migrate(),
      ),
    );
    expect(results.every((result) => result.version === POSTGRES_SCHEMA_VERSION)).toBe(true);
    expect(results.map((result) => result.applied.length).sort()).toEqual([0, 0, 0, 0, 4]);
    const recorded = await rawRows<{ table_name: string; version: number; name: string }>(
      `SELECT table_name, version, name FROM "${schema}".ctx_migrations ORDER BY version`,
    );
    expect(recorded).toEqual([
      {
        table_name: 'ctx_sessions',
        version: 1,
        name: expect.stringMatching(/^CtxCreateSessionContexts_.*_\d{13}$/),
      },
      {
        table_name: 'ctx_sessions',
        version: 2,
        name: expect.stringMatching(/^CtxAddTombstones_.*_\d{13}$/),
      },
      {
        table_name: 'ctx_sessions',
        version: 3,
        name: expect.stringMatching(/^CtxAddTurnLog_.*_\d{13}$/),
      },
      {
        table_name: 'ctx_sessions',
        version: 4,
        name: expect.stringMatching(/^CtxAddCustomFields_.*_\d{13}$/),
      },
    ]);
    const repository = track(createPostgresRepository({ dataSource: sources[0]!, schema }));
    const snapshot = makeSnapshot();
    await repository.save(snapshot, { expectedVersion: null });
    expect(await repository.migrate()).toEqual({ version: POSTGRES_SCHEMA_VERSION, applied: [] });
    expect(await repository.get(snapshot.sessionId)).toMatchObject({ version: 1 });
  });

  it('with migrate: false, calls fail with SCHEMA_MISMATCH until the tables exist, and create nothing', async () => {
    const schema = freshSchema();
    const repository = track(
      createPostgresRepository({ url: POSTGRES_URL, schema, migrate: false }),
    );
    for (const call of [
      () => repository.get(randomId()),
      () => repository.save(makeSnapshot(), { expectedVersion: null }),
      () => repository.list(),
    ]) {
      const error = await errorOf(call);
      expect(error.code).toBe('SCHEMA_MISMATCH');
      expect(error.message).toContain('repository.migrate()');
      expect(error.message).toContain('migrate: true');
    }
    expect(await rawRows('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).toHaveLength(
      0,
    );
    await repository.migrate();
    expect(await repository.get(randomId())).toBeNull();
  });

  it('migrate (the default): five URL repositories starting together migrate exactly once', async () => {
    const schema = freshSchema();
    const started = Array.from({ length: 5 }, () =>
      track(createPostgresRepository({ url: POSTGRES_URL, schema, poolSize: 2 })),
    );
    const results = await Promise.all(started.map((repository) => repository.list()));
    expect(results.every((page) => page.items.length === 0)).toBe(true);
    expect(
      await rawRows(`SELECT version FROM "${schema}".ctx_migrations ORDER BY version`),
    ).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }]);
  });

  it('a database migrated by a newer version is refused by migrate() and by every call', async () => {
    const schema = freshSchema();
    const dataSource = await openDataSource();
    await track(createPostgresRepository({ dataSource, schema })).migrate();
    await rawRows(
      `INSERT INTO "${schema}".ctx_migrations (table_name, version, name) VALUES ('ctx_sessions', $1, 'FromTheFuture')`,
      [POSTGRES_SCHEMA_VERSION + 1],
    );
    const plain = track(createPostgresRepository({ dataSource, schema, migrate: false }));
    const automatic = track(createPostgresRepository({ dataSource, schema }));
    for (const call of [
      () => plain.get(randomId()),
      () => plain.migrate(),
      () => automatic.list(),
    ]) {
      const error = await errorOf(call);
      expect(error.code).toBe('SCHEMA_MISMATCH');
      expect(error.message).toContain('newer');
      expect(error.message).toContain('Upgrade @ctx/store-postgres');
    }
  });

  it('two tables in one schema are versioned separately', async () => {
    const schema = freshSchema();
    const dataSource = await openDataSource();
    const [first, second] = ['team_a_sessions', 'team_b_sessions'].map((tableName) =>
      track(createPostgresRepository({ dataSource, schema, tableName })),
    ) as [PostgresRepository, PostgresRepository];
    await Promise.all([first.migrate(), second.migrate()]);
    const snapshot = makeSnapshot();
    await first.save(snapshot, { expectedVersion: null });
    expect(await second.get(snapshot.sessionId)).toBeNull();
    expect(
      await rawRows(
        `SELECT table_name, version FROM "${schema}".ctx_migrations ORDER BY table_name, version`,
      ),
    ).toEqual([
      { table_name: 'team_a_sessions', version: 1 },
      { table_name: 'team_a_sessions', version: 2 },
      { table_name: 'team_a_sessions', version: 3 },
      { table_name: 'team_a_sessions', version: 4 },
      { table_name: 'team_b_sessions', version: 1 },
      { table_name: 'team_b_sessions', version: 2 },
      { table_name: 'team_b_sessions', version: 3 },
      { table_name: 'team_b_sessions', version: 4 },
    ]);
  });
});

describe('upgrade from schema version 1 (the previous release)', () => {
  it('migrate adds tombstones to tables written by version 1; sessions, history and versions carry on', async () => {
    const schema = freshSchema();
    // Version 1 exactly as released: the first step alone, run by TypeORM.
    await rawRows(`CREATE SCHEMA "${schema}"`);
    const [first] = createPostgresMigrations({ schema });
    const old = await openDataSource({
      schema,
      migrationsTableName: 'typeorm_migrations',
      migrations: [first!],
    });
    expect(await old.runMigrations()).toHaveLength(1);
    const table = `"${schema}".ctx_sessions`;
    const userId = randomId('user');
    const [live, expired] = [randomId('live'), randomId('expired')];
    // Rows as version 1 wrote them: a live session with history, and an expired one.
    await rawRows(
      `INSERT INTO ${table} (session_id, user_id, summary, goal, plan, progress, created_at, updated_at, version, expires_at)
       VALUES ($1, $3, 'live v3', NULL, '["a"]', NULL, now(), now(), 3, NULL),
              ($2, $3, 'expired v2', NULL, NULL, NULL, now(), now(), 2, now() - interval '1 minute')`,
      [live, expired, userId],
    );
    await rawRows(
      `INSERT INTO "${schema}".ctx_sessions_history (session_id, user_id, summary, goal, plan, progress, created_at, updated_at, version)
       VALUES ($1, $2, 'live v2', NULL, NULL, NULL, now(), now(), 2), ($1, $2, 'live v3', NULL, '["a"]', NULL, now(), now(), 3)`,
      [live, userId],
    );

    const stale = track(createPostgresRepository({ dataSource: old, schema, migrate: false }));
    const refused = await errorOf(() => stale.get(live));
    expect(refused.code).toBe('SCHEMA_MISMATCH');
    expect(refused.message).toContain(
      `schema version 1, this code needs ${POSTGRES_SCHEMA_VERSION}`,
    );

    const repository = track(
      createPostgresRepository({ url: POSTGRES_URL, schema, historyLimit: 3 }),
    );
    const current = await repository.get(live);
    expect(current).toMatchObject({ summary: 'live v3', plan: ['a'], version: 3, userId });
    expect((await repository.history?.(live))?.map((item) => item.summary)).toEqual([
      'live v3',
      'live v2',
    ]);
    expect(
      await rawRows(`SELECT version FROM "${schema}".ctx_migrations ORDER BY version`),
    ).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }]);
    expect(await repository.migrate()).toEqual({ version: POSTGRES_SCHEMA_VERSION, applied: [] });

    // The expired session of version 1 is taken over at its version + 1.
    const reborn = await repository.save(makeSnapshot({ sessionId: expired }), {
      expectedVersion: null,
    });
    expect(reborn.version).toBe(3);
    // A delete now leaves a tombstone: the re-created session continues, a stale writer conflicts.
    expect(await repository.delete(live, { userId })).toBe(true);
    const again = await repository.save(makeSnapshot({ sessionId: live }), {
      expectedVersion: null,
    });
    expect(again.version).toBe(4);
    const conflict = await errorOf(() =>
      repository.save({ ...current!, summary: 'stale', version: 4 }, { expectedVersion: 3 }),
    );
    expect(conflict.code).toBe('VERSION_CONFLICT');
    // TypeORM, given every step, finds the later ones still to run in its own records and
    // records them without applying them twice.
    const upgraded = await openDataSource({
      schema,
      migrationsTableName: 'typeorm_migrations',
      migrations: createPostgresMigrations({ schema }),
    });
    expect((await upgraded.runMigrations()).map((migration) => migration.name)).toEqual([
      `CtxAddTombstones_${schema}_ctx_sessions_1795910400000`,
      `CtxAddTurnLog_${schema}_ctx_sessions_1811808000000`,
      `CtxAddCustomFields_${schema}_ctx_sessions_1827792000000`,
    ]);
    expect(
      await rawRows(`SELECT version FROM "${schema}".ctx_migrations ORDER BY version`),
    ).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }]);
    expect(await repository.get(live)).toMatchObject({ version: 4 });
  });
});

describe('upgrade from schema version 2 (the previous release)', () => {
  /** A schema at version 2 exactly as released: the first two steps, run by TypeORM. */
  async function versionTwo(schema: string) {
    await rawRows(`CREATE SCHEMA "${schema}"`);
    const old = await openDataSource({
      schema,
      migrationsTableName: 'typeorm_migrations',
      migrations: createPostgresMigrations({ schema }).slice(0, 2),
    });
    expect(await old.runMigrations()).toHaveLength(2);
    const table = `"${schema}".ctx_sessions`;
    const userId = randomId('user');
    const [live, tombstone, expired] = [randomId('live'), randomId('deleted'), randomId('expired')];
    // Rows as version 2 wrote them: a live session with history, a tombstone, an expired session.
    await rawRows(
      `INSERT INTO ${table} (session_id, user_id, summary, goal, plan, progress, created_at, updated_at, version, expires_at, deleted_at)
       VALUES ($1, $4, 'live v3', 'Ship', '["a","b"]', '["a"]', now(), now(), 3, NULL, NULL),
              ($2, NULL, '', NULL, NULL, NULL, now(), now(), 5, NULL, now()),
              ($3, $4, 'expired v2', NULL, NULL, NULL, now(), now(), 2, now() - interval '1 minute', NULL)`,
      [live, tombstone, expired, userId],
    );
    await rawRows(
      `INSERT INTO "${schema}".ctx_sessions_history (session_id, user_id, summary, goal, plan, progress, created_at, updated_at, version)
       VALUES ($1, $2, 'live v2', NULL, NULL, NULL, now(), now(), 2),
              ($1, $2, 'live v3', 'Ship', '["a","b"]', '["a"]', now(), now(), 3)`,
      [live, userId],
    );
    return { old, userId, live, tombstone, expired };
  }

  const turn = (content: string) => ({
    turnId: randomId('turn'),
    userId: null,
    messages: [{ role: 'user' as const, content }],
  });

  it('migrate adds the turn log to tables written by version 2; sessions, tombstones, history and versions carry on', async () => {
    const schema = freshSchema();
    const { old, userId, live, tombstone, expired } = await versionTwo(schema);

    const stale = track(createPostgresRepository({ dataSource: old, schema, migrate: false }));
    const refused = await errorOf(() => stale.get(live));
    expect(refused.code).toBe('SCHEMA_MISMATCH');
    expect(refused.message).toContain(
      `schema version 2, this code needs ${POSTGRES_SCHEMA_VERSION}`,
    );

    // Three instances of the new code start at once: the step is applied exactly once.
    const started = Array.from({ length: 3 }, () =>
      track(createPostgresRepository({ url: POSTGRES_URL, schema, historyLimit: 3, poolSize: 2 })),
    );
    const [repository, other] = started as [PostgresRepository, PostgresRepository];
    const found = await Promise.all(started.map((instance) => instance.get(live)));
    for (const session of found) {
      expect(session).toMatchObject({
        summary: 'live v3',
        goal: 'Ship',
        plan: ['a', 'b'],
        progress: ['a'],
        version: 3,
        userId,
      });
    }
    expect(
      await rawRows(
        `SELECT version, name FROM "${schema}".ctx_migrations WHERE version = 3 ORDER BY version`,
      ),
    ).toEqual([{ version: 3, name: `CtxAddTurnLog_${schema}_ctx_sessions_1811808000000` }]);
    expect(await repository.migrate()).toEqual({ version: POSTGRES_SCHEMA_VERSION, applied: [] });
    expect((await repository.history?.(live))?.map((item) => item.summary)).toEqual([
      'live v3',
      'live v2',
    ]);
    expect(await repository.get(tombstone)).toBeNull();
    expect(await repository.get(expired)).toBeNull();

    // The tombstone and the expired row of version 2 keep their versions.
    const reborn = await repository.save(makeSnapshot({ sessionId: tombstone }), {
      expectedVersion: null,
    });
    expect(reborn.version).toBe(6);
    const retaken = await repository.save(makeSnapshot({ sessionId: expired }), {
      expectedVersion: null,
    });
    expect(retaken.version).toBe(3);

    // The turn log works on the old session, across two instances, folded by the compare-and-set.
    const first = turn('after the upgrade');
    const recorded = await repository.recordTurn(live, first);
    expect(recorded.duplicate).toBe(false);
    expect((await other.pendingTurns(live)).map((item) => item.turnId)).toEqual([first.turnId]);
    const current = (await other.get(live)) as SessionContext;
    const folded = await other.save(nextVersion(current, { summary: 'folded' }), {
      expectedVersion: 3,
      foldedTurnIds: [first.turnId],
    });
    expect(folded.version).toBe(4);
    expect(await repository.pendingTurns(live)).toEqual([]);
    expect(await repository.recordTurn(live, first)).toMatchObject({
      duplicate: true,
      sequence: recorded.sequence,
    });
    expect((await repository.history?.(live))?.map((item) => item.version)).toEqual([4, 3, 2]);

    // TypeORM, given every step, records the third one without applying it twice.
    const upgraded = await openDataSource({
      schema,
      migrationsTableName: 'typeorm_migrations',
      migrations: createPostgresMigrations({ schema }),
    });
    expect((await upgraded.runMigrations()).map((migration) => migration.name)).toEqual([
      `CtxAddTurnLog_${schema}_ctx_sessions_1811808000000`,
      `CtxAddCustomFields_${schema}_ctx_sessions_1827792000000`,
    ]);
    expect(
      await rawRows(`SELECT version FROM "${schema}".ctx_migrations ORDER BY version`),
    ).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }]);
    expect(await repository.get(live)).toMatchObject({ summary: 'folded', version: 4 });
  });

  it('TypeORM runs the third step on tables of version 2; a repository with migrate: false then works', async () => {
    const schema = freshSchema();
    const { live, tombstone } = await versionTwo(schema);
    const upgraded = await openDataSource({
      schema,
      migrationsTableName: 'typeorm_migrations',
      migrations: createPostgresMigrations({ schema }),
    });
    expect((await upgraded.runMigrations()).map((migration) => migration.name)).toEqual([
      `CtxAddTurnLog_${schema}_ctx_sessions_1811808000000`,
      `CtxAddCustomFields_${schema}_ctx_sessions_1827792000000`,
    ]);
    const repository = track(
      createPostgresRepository({ dataSource: upgraded, schema, migrate: false }),
    );
    expect(await repository.get(live)).toMatchObject({ summary: 'live v3', version: 3 });
    expect(
      await repository.save(makeSnapshot({ sessionId: tombstone }), { expectedVersion: null }),
    ).toMatchObject({ version: 6 });
    const pending = turn('recorded on TypeORM-migrated tables');
    await repository.recordTurn(live, pending);
    expect((await repository.pendingTurns(live)).map((item) => item.messages)).toEqual([
      pending.messages,
    ]);
    expect(await repository.migrate()).toEqual({ version: POSTGRES_SCHEMA_VERSION, applied: [] });
  });
});

describe('table layout', () => {
  it('matches the documented columns, indexes and constraints', async () => {
    const schema = freshSchema();
    const dataSource = await openDataSource();
    await track(createPostgresRepository({ dataSource, schema })).migrate();
    const columns = await rawRows<Record<string, string>>(
      `SELECT table_name, column_name, data_type, is_nullable, coalesce(collation_name, '') AS collation
       FROM information_schema.columns WHERE table_schema = $1 AND table_name LIKE 'ctx_session%'
       ORDER BY table_name, ordinal_position`,
      [schema],
    );
    const describeColumns = (table: string) =>
      columns
        .filter((column) => column.table_name === table)
        .map(
          (column) =>
            `${column.column_name} ${column.data_type}${column.is_nullable === 'YES' ? ' null' : ''}${column.collation ? ` ${column.collation}` : ''}`,
        );
    expect(describeColumns('ctx_sessions')).toEqual([
      'session_id text C',
      'user_id text null',
      'summary text',
      'goal text null',
      'plan jsonb null',
      'progress jsonb null',
      'created_at timestamp with time zone',
      'updated_at timestamp with time zone',
      'version bigint',
      'expires_at timestamp with time zone null',
      'deleted_at timestamp with time zone null',
      'fields jsonb null',
    ]);
    expect(describeColumns('ctx_sessions_history')).toEqual([
      'id bigint',
      'session_id text C',
      'user_id text null',
      'summary text',
      'goal text null',
      'plan jsonb null',
      'progress jsonb null',
      'created_at timestamp with time zone',
      'updated_at timestamp with time zone',
      'version bigint',
      'fields jsonb null',
    ]);
    expect(describeColumns('ctx_sessions_turns')).toEqual([
      'session_id text C',
      'turn_id text C',
      'sequence bigint',
      'user_id text null',
      'messages jsonb null',
      'recorded_at timestamp with time zone',
      'folded_at timestamp with time zone null',
    ]);
    expect(describeColumns('ctx_sessions_leases')).toEqual([
      'session_id text C',
      'holder text',
      'expires_at timestamp with time zone',
    ]);
    const indexes = await rawRows<{ indexname: string; indexdef: string }>(
      'SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname',
      [schema],
    );
    const definition = (name: string) =>
      indexes.find((index) => index.indexname === name)?.indexdef ?? 'missing';
    expect(definition('ctx_sessions_user_list_idx')).toContain(
      '(user_id, updated_at DESC, session_id DESC)',
    );
    expect(definition('ctx_sessions_list_idx')).toContain('(updated_at DESC, session_id DESC)');
    expect(definition('ctx_sessions_expires_idx')).toContain(
      '(expires_at) WHERE (expires_at IS NOT NULL)',
    );
    expect(definition('ctx_sessions_deleted_idx')).toContain(
      '(deleted_at) WHERE (deleted_at IS NOT NULL)',
    );
    expect(definition('ctx_sessions_history_session_idx')).toContain('(session_id, version DESC)');
    expect(definition('ctx_sessions_turns_pkey')).toContain('(session_id, turn_id)');
    expect(definition('ctx_sessions_turns_pending_idx')).toContain(
      '(session_id, sequence) WHERE (folded_at IS NULL)',
    );
    expect(definition('ctx_sessions_turns_folded_idx')).toContain(
      '(folded_at) WHERE (folded_at IS NOT NULL)',
    );
    expect(definition('ctx_sessions_leases_pkey')).toContain('(session_id)');
    const [identity] = await rawRows<{ is_identity: string; identity_generation: string }>(
      `SELECT is_identity, identity_generation FROM information_schema.columns
       WHERE table_schema = $1 AND table_name = 'ctx_sessions_turns' AND column_name = 'sequence'`,
      [schema],
    );
    expect(identity).toEqual({ is_identity: 'YES', identity_generation: 'ALWAYS' });
    const [foreignKey] = await rawRows<{ deletes: string }>(
      `SELECT confdeltype AS deletes FROM pg_constraint WHERE conname = 'ctx_sessions_history_session_fkey'
       AND connamespace = $1::regnamespace`,
      [schema],
    );
    expect(foreignKey?.deletes).toBe('c');
  });
});

describe('TypeORM-run migrations', () => {
  async function typeormDataSource(schema: string) {
    // TypeORM keeps its own record in the schema; the app creates the schema, as apps usually do.
    await rawRows(`CREATE SCHEMA "${schema}"`);
    return openDataSource({
      schema,
      migrationsTableName: 'typeorm_migrations',
      migrations: createPostgresMigrations({ schema }),
    });
  }

  it('runMigrations() creates the tables; the repository then needs no migrate()', async () => {
    const schema = freshSchema();
    const dataSource = await typeormDataSource(schema);
    const executed = await dataSource.runMigrations();
    expect(executed.map((migration) => migration.name)).toEqual([
      `CtxCreateSessionContexts_${schema}_ctx_sessions_1764028800000`,
      `CtxAddTombstones_${schema}_ctx_sessions_1795910400000`,
      `CtxAddTurnLog_${schema}_ctx_sessions_1811808000000`,
      `CtxAddCustomFields_${schema}_ctx_sessions_1827792000000`,
    ]);
    expect(await dataSource.runMigrations()).toEqual([]);
    const repository = track(createPostgresRepository({ dataSource, schema, migrate: false }));
    const snapshot = makeSnapshot();
    await repository.save(snapshot, { expectedVersion: null });
    expect(await repository.migrate()).toEqual({ version: POSTGRES_SCHEMA_VERSION, applied: [] });
    expect(await repository.get(snapshot.sessionId)).toMatchObject({ version: 1 });
  });

  it('after repository.migrate(), TypeORM records the migration without applying it twice', async () => {
    const schema = freshSchema();
    const dataSource = await typeormDataSource(schema);
    const repository = track(createPostgresRepository({ dataSource, schema }));
    await repository.migrate();
    const snapshot = makeSnapshot();
    await repository.save(snapshot, { expectedVersion: null });
    expect(await dataSource.runMigrations()).toHaveLength(4);
    expect(await repository.get(snapshot.sessionId)).toMatchObject({ version: 1 });
    expect(
      await rawRows(`SELECT version FROM "${schema}".ctx_migrations ORDER BY version`),
    ).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }]);
  });

  it('undoLastMigration() undoes one step at a time; with migrate: false, calls report SCHEMA_MISMATCH until migrated again', async () => {
    const schema = freshSchema();
    const dataSource = await typeormDataSource(schema);
    await dataSource.runMigrations();
    const repository = track(createPostgresRepository({ dataSource, schema, migrate: false }));
    const kept = await repository.save(makeSnapshot(), { expectedVersion: null });
    const deleted = await repository.save(makeSnapshot(), { expectedVersion: null });
    expect(await repository.delete(deleted.sessionId)).toBe(true);
    await repository.recordTurn(kept.sessionId, {
      turnId: randomId('turn'),
      userId: null,
      messages: [{ role: 'user', content: 'pending' }],
    });

    // Undoing the custom-fields step drops the column (and the fields with it); sessions stay.
    const withFields = await repository.save(makeSnapshot({ fields: { platform: 'fly' } }), {
      expectedVersion: null,
    });
    await dataSource.undoLastMigration();
    expect(
      await rawRows(
        `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'fields'`,
        [schema],
      ),
    ).toEqual([]);
    expect(
      await rawRows(`SELECT summary FROM "${schema}".ctx_sessions WHERE session_id = $1`, [
        withFields.sessionId,
      ]),
    ).toHaveLength(1);
    await rawRows(`DELETE FROM "${schema}".ctx_sessions WHERE session_id = $1`, [
      withFields.sessionId,
    ]);
    const beforeFields = track(createPostgresRepository({ dataSource, schema, migrate: false }));
    expect((await errorOf(() => beforeFields.get(kept.sessionId))).message).toContain(
      'schema version 3',
    );

    // Undoing the turn-log step drops its tables; sessions and tombstones stay.
    await dataSource.undoLastMigration();
    expect(
      await rawRows('SELECT to_regclass($1) AS turns, to_regclass($2) AS leases', [
        `"${schema}".ctx_sessions_turns`,
        `"${schema}".ctx_sessions_leases`,
      ]),
    ).toEqual([{ turns: null, leases: null }]);
    expect(
      await rawRows(`SELECT session_id FROM "${schema}".ctx_sessions ORDER BY session_id`),
    ).toHaveLength(2);
    const older = track(createPostgresRepository({ dataSource, schema, migrate: false }));
    const olderError = await errorOf(() => older.get(kept.sessionId));
    expect(olderError.code).toBe('SCHEMA_MISMATCH');
    expect(olderError.message).toContain('schema version 2');

    // Undoing the tombstones step drops the tombstones with the column; live sessions stay.
    await dataSource.undoLastMigration();
    expect(
      await rawRows(`SELECT session_id FROM "${schema}".ctx_sessions ORDER BY session_id`),
    ).toEqual([{ session_id: kept.sessionId }]);
    const stale = track(createPostgresRepository({ dataSource, schema, migrate: false }));
    const error = await errorOf(() => stale.get(kept.sessionId));
    expect(error.code).toBe('SCHEMA_MISMATCH');
    expect(error.message).toContain('schema version 1');

    await dataSource.undoLastMigration();
    expect(await rawRows('SELECT to_regclass($1) AS table', [`"${schema}".ctx_sessions`])).toEqual([
      { table: null },
    ]);
    const empty = track(createPostgresRepository({ dataSource, schema, migrate: false }));
    expect((await errorOf(() => empty.get(randomId()))).code).toBe('SCHEMA_MISMATCH');
    expect((await empty.migrate()).applied).toHaveLength(4);
    expect(await empty.get(randomId())).toBeNull();
  });
});
