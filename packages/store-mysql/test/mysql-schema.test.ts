import { makeSnapshot, nextVersion } from '@ctx/conformance';
import { ContextError } from '@ctx/core';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createMysqlRepository,
  MYSQL_SCHEMA_VERSION,
  type MysqlRepository,
  type MysqlRepositoryOptions,
} from '../src/index.js';
import { createTestPool, dropTables, randomTable } from './helpers.js';

const MIGRATION_NAMES = [
  '1-create-sessions-and-history',
  '2-create-turns-and-leases',
  '3-add-custom-fields',
];

let pool: Pool;
const pools: Pool[] = [];
const tables: string[] = [];
const repositories: MysqlRepository[] = [];

function freshTable(): string {
  const table = randomTable('schema');
  tables.push(table);
  return table;
}

function open(options: Partial<MysqlRepositoryOptions> & { tableName: string }) {
  const repository = createMysqlRepository({ pool, ...options } as MysqlRepositoryOptions);
  repositories.push(repository);
  return repository;
}

function openPool(): Pool {
  const created = createTestPool(2);
  pools.push(created);
  return created;
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

const turnInput = () => ({
  turnId: `turn-${randomTable()}`,
  userId: null,
  messages: [{ role: 'user' as const, content: 'hi' }],
});

async function rows(sql: string, values: unknown[] = []): Promise<RowDataPacket[]> {
  const [result] = await pool.query<RowDataPacket[]>(sql, values);
  return result;
}

const tablesNamed = (table: string) =>
  rows(
    'SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (?, ?) ORDER BY TABLE_NAME',
    [table, `${table}_history`],
  );

beforeAll(() => {
  pool = createTestPool();
});

afterEach(async () => {
  for (const repository of repositories.splice(0)) await repository.close();
  for (const created of pools.splice(0)) await created.end();
  for (const table of tables.splice(0)) await dropTables(pool, table);
});

afterAll(async () => {
  await pool.end();
});

describe('migrate()', () => {
  it('creates both tables and records the version once; a second call applies nothing', async () => {
    const tableName = freshTable();
    const repository = open({ tableName });
    expect(await repository.migrate()).toEqual({
      version: MYSQL_SCHEMA_VERSION,
      applied: MIGRATION_NAMES,
    });
    expect(await repository.migrate()).toEqual({ version: MYSQL_SCHEMA_VERSION, applied: [] });
    expect((await tablesNamed(tableName)).map((row) => row.name)).toEqual([
      tableName,
      `${tableName}_history`,
    ]);
    expect(
      await rows('SELECT schema_version FROM ctx_meta WHERE table_name = ?', [tableName]),
    ).toEqual([{ schema_version: MYSQL_SCHEMA_VERSION }]);
    const columns = await rows(
      `SELECT COLUMN_NAME AS name, DATA_TYPE AS type FROM information_schema.COLUMNS
       WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME IN ('session_id', 'user_id', 'created_at', 'deleted_at')
       ORDER BY COLUMN_NAME`,
      [tableName],
    );
    expect(columns).toEqual([
      { name: 'created_at', type: 'bigint' },
      { name: 'deleted_at', type: 'bigint' },
      { name: 'session_id', type: 'varbinary' },
      { name: 'user_id', type: 'varbinary' },
    ]);
  });

  it('five pools migrating one fresh table at once: one applies it, the others find it done', async () => {
    const tableName = freshTable();
    const results = await Promise.all(
      Array.from({ length: 5 }, () => open({ pool: openPool(), tableName }).migrate()),
    );
    expect(results.map((result) => result.applied.length).sort()).toEqual([
      0,
      0,
      0,
      0,
      MIGRATION_NAMES.length,
    ]);
    expect(results.every((result) => result.version === MYSQL_SCHEMA_VERSION)).toBe(true);
  });

  it('repositories on several pools migrate lazily on their first calls, all at once', async () => {
    const tableName = freshTable();
    const repositories = Array.from({ length: 4 }, () => open({ pool: openPool(), tableName }));
    const saved = await Promise.all(
      repositories.map((repository) => repository.save(makeSnapshot(), { expectedVersion: null })),
    );
    expect(saved.map((snapshot) => snapshot.version)).toEqual([1, 1, 1, 1]);
  });

  it('resumes a migration that was cut short', async () => {
    const tableName = freshTable();
    await open({ tableName }).migrate();
    // As if the process died after the first statement of version 1.
    await pool.query(`DROP TABLE \`${tableName}_history\``);
    await pool.query('UPDATE ctx_meta SET schema_version = 0 WHERE table_name = ?', [tableName]);
    expect((await open({ tableName }).migrate()).applied).toEqual(MIGRATION_NAMES);
    expect(await tablesNamed(tableName)).toHaveLength(2);
  });
});

describe('upgrades', () => {
  it('upgrades a version 1 table: only the turn-log migration runs, and sessions stay', async () => {
    const tableName = freshTable();
    const saved = await open({ tableName }).save(makeSnapshot(), { expectedVersion: null });
    // As a database written by version 1 of the schema.
    await pool.query(`DROP TABLE \`${tableName}_turns\`, \`${tableName}_leases\``);
    await pool.query('UPDATE ctx_meta SET schema_version = 1 WHERE table_name = ?', [tableName]);
    const checking = open({ tableName, migrate: false });
    const error = await errorOf(() => checking.get(saved.sessionId));
    expect(error.code).toBe('SCHEMA_MISMATCH');
    expect(error.message).toContain('schema version 1, older');
    const upgrading = open({ tableName });
    expect(await upgrading.get(saved.sessionId)).toEqual(saved);
    expect(await upgrading.recordTurn(saved.sessionId, turnInput())).toMatchObject({
      duplicate: false,
    });
    expect(
      await rows('SELECT schema_version FROM ctx_meta WHERE table_name = ?', [tableName]),
    ).toEqual([{ schema_version: MYSQL_SCHEMA_VERSION }]);
    expect(await open({ tableName, migrate: false }).get(saved.sessionId)).toEqual(saved);
  });

  it('upgrades a version 2 table: the fields column is added, old rows read fields as null', async () => {
    const tableName = freshTable();
    const saved = await open({ tableName, historyLimit: 3 }).save(makeSnapshot(), {
      expectedVersion: null,
    });
    // As a database written by version 2 of the schema.
    await pool.query(`ALTER TABLE \`${tableName}\` DROP COLUMN fields`);
    await pool.query(`ALTER TABLE \`${tableName}_history\` DROP COLUMN fields`);
    await pool.query('UPDATE ctx_meta SET schema_version = 2 WHERE table_name = ?', [tableName]);
    const checking = open({ tableName, migrate: false });
    expect((await errorOf(() => checking.get(saved.sessionId))).message).toContain(
      'schema version 2, older',
    );
    const upgrading = open({ tableName, historyLimit: 3 });
    expect(await upgrading.migrate()).toEqual({
      version: MYSQL_SCHEMA_VERSION,
      applied: ['3-add-custom-fields'],
    });
    expect(await upgrading.get(saved.sessionId)).toEqual({ ...saved, fields: null });
    const next = {
      ...nextVersion(saved),
      fields: { platform: 'fly', regions: ['fra'], note: 'ünï 🚀' },
    };
    await upgrading.save(next, { expectedVersion: 1 });
    expect((await upgrading.get(saved.sessionId))?.fields).toEqual(next.fields);
    expect((await upgrading.history!(saved.sessionId)).map((item) => item.fields)).toEqual([
      next.fields,
      null,
    ]);
    // Running the migration again (as after a crash before it was recorded) changes nothing.
    await pool.query('UPDATE ctx_meta SET schema_version = 2 WHERE table_name = ?', [tableName]);
    expect((await open({ tableName }).migrate()).applied).toEqual(['3-add-custom-fields']);
    expect((await upgrading.get(saved.sessionId))?.fields).toEqual(next.fields);
  });

  it('a dropped turn-log table is SCHEMA_MISMATCH until migrate() creates it again', async () => {
    const tableName = freshTable();
    await open({ tableName }).migrate();
    await pool.query(`DROP TABLE \`${tableName}_leases\``);
    const checking = open({ tableName, migrate: false });
    expect((await errorOf(() => checking.get('any'))).message).toContain('missing');
    expect((await open({ tableName }).migrate()).applied).toEqual(MIGRATION_NAMES.slice(1));
    expect(await checking.get('any')).toBeNull();
  });
});

describe('schema checks', () => {
  it('refuses a table newer than this code with SCHEMA_MISMATCH, migrating or not', async () => {
    const tableName = freshTable();
    await open({ tableName }).migrate();
    await pool.query('UPDATE ctx_meta SET schema_version = ? WHERE table_name = ?', [
      MYSQL_SCHEMA_VERSION + 1,
      tableName,
    ]);
    for (const migrate of [true, false]) {
      const repository = open({ tableName, migrate });
      const error = await errorOf(() => repository.get('any'));
      expect(error.code).toBe('SCHEMA_MISMATCH');
      expect(error.message).toContain('newer');
      expect((await errorOf(() => repository.migrate())).code).toBe('SCHEMA_MISMATCH');
    }
  });

  it('refuses a name taken by a table ctx did not create, and leaves it alone', async () => {
    for (const taken of ['', '_history', '_turns', '_leases']) {
      const tableName = freshTable();
      await pool.query(`CREATE TABLE \`${tableName}${taken}\` (id INT PRIMARY KEY)`);
      const repository = open({ tableName });
      const error = await errorOf(() => repository.save(makeSnapshot(), { expectedVersion: null }));
      expect(error.code).toBe('SCHEMA_MISMATCH');
      expect(error.message).toContain('not created by ctx');
      expect(
        await rows(
          'SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?',
          [`${tableName}${taken}`],
        ),
      ).toEqual([{ name: 'id' }]);
    }
  });

  it('with migrate: false, only checks: an unmigrated table is SCHEMA_MISMATCH until migrate()', async () => {
    const tableName = freshTable();
    const repository = open({ tableName, migrate: false });
    const error = await errorOf(() => repository.get('any'));
    expect(error.code).toBe('SCHEMA_MISMATCH');
    expect(error.message).toContain('ctx migrate');
    expect(await tablesNamed(tableName)).toEqual([]);
    expect((await repository.migrate()).applied).toEqual(MIGRATION_NAMES);
    expect(await repository.get('any')).toBeNull();
    const later = open({ tableName, migrate: false });
    expect(await later.get('any')).toBeNull();
  });

  it('a table dropped under a running repository is SCHEMA_MISMATCH until migrate() recreates it', async () => {
    const tableName = freshTable();
    const repository = open({ tableName });
    await repository.get('any');
    await pool.query(`DROP TABLE \`${tableName}\``);
    const error = await errorOf(() => repository.get('any'));
    expect(error.code).toBe('SCHEMA_MISMATCH');
    expect(error.message).toContain('migrate');
    const checking = open({ tableName, migrate: false });
    expect((await errorOf(() => checking.get('any'))).message).toContain('missing');
    // The hint is true: migrate() creates it again although ctx_meta records version 1.
    expect((await repository.migrate()).applied).toEqual(MIGRATION_NAMES);
    expect(await repository.get('any')).toBeNull();
    expect(await checking.get('any')).toBeNull();
  });
});
