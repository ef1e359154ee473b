import { makeSnapshot, nextVersion } from '@ctx/conformance';
import { ContextError } from '@ctx/core';
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createMysqlRepository, type MysqlRepository } from '../src/index.js';
import { classifyError } from '../src/mysql-errors.js';
import { createTestPool, dropTables, randomTable } from './helpers.js';

const tableName = randomTable('errors');
let pool: Pool;
/** Its connections give up on a row lock after one second. */
let impatient: Pool;
const repositories: MysqlRepository[] = [];
const held: PoolConnection[] = [];

function open(on: Pool): MysqlRepository {
  const repository = createMysqlRepository({ pool: on, tableName });
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

/** Locks a session's row on a connection of its own until the test ends. */
async function lockRow(sessionId: string): Promise<PoolConnection> {
  const connection = await pool.getConnection();
  held.push(connection);
  await connection.query('START TRANSACTION');
  await connection.query(`SELECT version FROM \`${tableName}\` WHERE session_id = ? FOR UPDATE`, [
    sessionId,
  ]);
  return connection;
}

beforeAll(() => {
  pool = createTestPool();
  impatient = createTestPool(2);
  impatient.pool.on('connection', (connection) => {
    connection.query('SET SESSION innodb_lock_wait_timeout = 1');
  });
});

afterEach(async () => {
  for (const connection of held.splice(0)) {
    await connection.query('ROLLBACK').catch(() => undefined);
    connection.release();
  }
  for (const repository of repositories.splice(0)) await repository.close();
});

afterAll(async () => {
  try {
    await dropTables(pool, tableName);
  } finally {
    await Promise.allSettled([pool.end(), impatient.end()]);
  }
});

describe('error classification', () => {
  it('a lock wait timeout is STORAGE_UNAVAILABLE and changes nothing', async () => {
    const repository = open(impatient);
    const first = await repository.save(makeSnapshot(), { expectedVersion: null });
    await lockRow(first.sessionId);
    const error = await errorOf(() => repository.save(nextVersion(first), { expectedVersion: 1 }));
    expect(error.code).toBe('STORAGE_UNAVAILABLE');
    expect(error.message).toMatch(/busy or timed out.*retried/);
    expect((await open(pool).get(first.sessionId))?.version).toBe(1);
    for (const connection of held.splice(0)) {
      await connection.query('ROLLBACK');
      connection.release();
    }
    expect((await repository.save(nextVersion(first), { expectedVersion: 1 })).version).toBe(2);
  });

  it('a connection killed in the middle of a call is STORAGE_UNAVAILABLE; the next call works', async () => {
    const repository = open(pool);
    const first = await repository.save(makeSnapshot(), { expectedVersion: null });
    await lockRow(first.sessionId);
    const waiting = errorOf(() => repository.delete(first.sessionId));
    let victim: number | undefined;
    for (let tries = 0; victim === undefined && tries < 100; tries += 1) {
      // Only the repository's own locking read on this test's table: other suites share the server.
      const [rows] = await pool.query<RowDataPacket[]>(
        'SELECT ID AS id FROM information_schema.PROCESSLIST WHERE INFO LIKE ?',
        [`SELECT version, user_id, deleted_at, expires_at FROM \`${tableName}\` %FOR UPDATE`],
      );
      victim = rows[0]?.id;
      if (victim === undefined) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(victim).toBeDefined();
    await pool.query(`KILL ${Number(victim)}`);
    const error = await waiting;
    expect(error.code).toBe('STORAGE_UNAVAILABLE');
    expect(error.message).toMatch(/unreachable or dropped the connection/);
    for (const connection of held.splice(0)) {
      await connection.query('ROLLBACK');
      connection.release();
    }
    expect(await repository.delete(first.sessionId)).toBe(true);
  });

  it('other server errors are STORAGE_ERROR with the server message; foreign errors are left alone', async () => {
    const syntax = await pool.query('SELEC 1').catch((error: unknown) => error);
    expect(classifyError(syntax)).toEqual({
      code: 'STORAGE_ERROR',
      message: expect.stringContaining('ER_PARSE_ERROR'),
    });
    const missing = await pool.query('SELECT * FROM ctx_no_such_table').catch((error) => error);
    expect(classifyError(missing)?.code).toBe('SCHEMA_MISMATCH');
    expect(classifyError(new TypeError('not ours'))).toBeUndefined();
    expect(classifyError(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))?.code).toBe(
      'STORAGE_UNAVAILABLE',
    );
  });
});
