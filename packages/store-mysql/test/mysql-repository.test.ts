import { createServer } from 'node:net';
import { makeSnapshot, nextVersion, randomId } from '@ctx/conformance';
import { ContextError, LIMITS, type SessionContext } from '@ctx/core';
import type { Pool } from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createMysqlRepository, type MysqlRepository } from '../src/index.js';
import { createTestPool, dropTables, MYSQL_URL, randomTable, readRawRow } from './helpers.js';

// Records every pool the repositories create from a URL, to check that close() ends it.
const created = vi.hoisted(() => [] as Pool[]);
vi.mock('mysql2/promise', async (importOriginal) => {
  const actual = await importOriginal<typeof import('mysql2/promise')>();
  return {
    ...actual,
    createPool: (...args: Parameters<typeof actual.createPool>) => {
      const pool = actual.createPool(...args);
      created.push(pool);
      return pool;
    },
  };
});

const tableName = randomTable('repository');
let pool: Pool;
let other: Pool;
const repositories: MysqlRepository[] = [];

function open(options: Partial<Parameters<typeof createMysqlRepository>[0]> = {}) {
  const repository = createMysqlRepository({ pool, tableName, ...options } as Parameters<
    typeof createMysqlRepository
  >[0]);
  repositories.push(repository);
  return repository;
}

async function errorOf(action: () => Promise<unknown> | unknown): Promise<ContextError> {
  try {
    await action();
  } catch (error) {
    if (ContextError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected the call to throw');
}

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// No migration up front: every repository migrates on its first call, so an unreachable server
// fails each test rather than skipping them.
beforeAll(() => {
  pool = createTestPool();
  other = createTestPool();
});

afterEach(async () => {
  for (const repository of repositories.splice(0)) await repository.close();
});

afterAll(async () => {
  try {
    await dropTables(pool, tableName);
  } finally {
    await Promise.allSettled([pool.end(), other.end()]);
  }
});

describe('options', () => {
  it('refuses missing, doubled or malformed url/pool with INVALID_CONFIG', async () => {
    const cases: unknown[] = [
      {},
      { url: MYSQL_URL, pool: {} },
      { url: 'postgres://127.0.0.1/test' },
      { url: 'not a url' },
      { url: 'mysql://127.0.0.1:3306' },
      { url: 42 },
      { pool: {} },
      { pool: null, url: undefined },
    ];
    for (const options of cases) {
      const error = await errorOf(() =>
        createMysqlRepository(options as Parameters<typeof createMysqlRepository>[0]),
      );
      expect(error.code, JSON.stringify(options)).toBe('INVALID_CONFIG');
    }
  });

  it('refuses invalid shared options and table names with INVALID_CONFIG, naming the option', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ tableName: 'Bad-Name' }, 'tableName'],
      [{ tableName: 'x'.repeat(49) }, 'tableName'],
      [{ tableName: 'ctx_meta' }, 'tableName'],
      [{ ttlMs: 0 }, 'ttlMs'],
      [{ historyLimit: -1 }, 'historyLimit'],
      [{ tombstoneRetentionMs: -1 }, 'tombstoneRetentionMs'],
      [{ migrate: 'yes' }, 'migrate'],
    ];
    for (const [options, path] of cases) {
      const error = await errorOf(() =>
        createMysqlRepository({ pool, ...options } as Parameters<typeof createMysqlRepository>[0]),
      );
      expect(error.code).toBe('INVALID_CONFIG');
      expect(error.message).toContain(path);
    }
  });

  it('accepts a callback pool and uses its promise() wrapper', async () => {
    const repository = open({ pool: pool.pool });
    const snapshot = makeSnapshot();
    await repository.save(snapshot, { expectedVersion: null });
    expect((await repository.get(snapshot.sessionId))?.summary).toBe(snapshot.summary);
  });

  it('exposes the table name, the settings and the capabilities it was built with', () => {
    const repository = open({ ttlMs: 60_000, historyLimit: 2 });
    expect(repository.tableName).toBe(tableName);
    expect(repository.capabilities).toEqual({
      ttl: true,
      history: true,
      turnLog: true,
      fields: true,
    });
    expect(repository.settings.ttlMs).toBe(60_000);
    expect(open().capabilities).toEqual({
      ttl: false,
      history: false,
      turnLog: true,
      fields: true,
    });
  });
});

describe('storage', () => {
  it('round-trips emoji, astral and RTL text in ids, owners and content (utf8mb4)', async () => {
    const repository = open();
    const snapshot = makeSnapshot({
      sessionId: `${randomId('emoji')}-🙂-𠜎-مرحبا`,
      userId: `${randomId('user')}-👩‍💻`,
      summary: 'Ship it 🚀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 — שלום',
      goal: '🎯',
      plan: ['🙂', '\u{10FFFF}'],
      progress: [],
    });
    await repository.save(snapshot, { expectedVersion: null });
    expect(await repository.get(snapshot.sessionId)).toEqual(snapshot);
    expect(await readRawRow(pool, tableName, snapshot.sessionId)).toEqual({
      ...snapshot,
      createdAt: snapshot.createdAt.getTime(),
      updatedAt: snapshot.updatedAt.getTime(),
    });
  });

  it('keeps ids and owners that differ only by trailing spaces or case apart', async () => {
    const repository = open();
    const base = randomId('pad');
    const userId = randomId('owner');
    const ids = [base, `${base} `, `${base}  `, base.toUpperCase()];
    for (const sessionId of ids) {
      await repository.save(
        makeSnapshot({ sessionId, userId, summary: JSON.stringify(sessionId) }),
        {
          expectedVersion: null,
        },
      );
    }
    for (const sessionId of ids) {
      expect((await repository.get(sessionId))?.summary).toBe(JSON.stringify(sessionId));
    }
    expect((await repository.list({ userId: `${userId} ` })).items).toEqual([]);
    expect((await repository.list({ userId })).items).toHaveLength(ids.length);
    await expect(repository.delete(base, { userId: `${userId} ` })).rejects.toMatchObject({
      code: 'OWNERSHIP_MISMATCH',
    });
  });

  it('lists ties in UTF-8 byte order (code point order), stable across pages', async () => {
    const repository = open();
    const userId = randomId('bytes');
    const updatedAt = new Date(Date.UTC(2024, 0, 1));
    // U+FFFD sorts before U+1F642 by bytes and code points, after it by UTF-16 code units.
    const suffixes = ['a', 'Z', 'é', '\uFFFD', '🙂', '\uE000'];
    const prefix = randomId('tie');
    for (const suffix of suffixes) {
      await repository.save(makeSnapshot({ sessionId: prefix + suffix, userId, updatedAt }), {
        expectedVersion: null,
      });
    }
    const byBytes = suffixes
      .map((suffix) => prefix + suffix)
      .sort((a, b) => Buffer.compare(Buffer.from(b), Buffer.from(a)));
    const listed: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await repository.list({ userId, limit: 2, cursor });
      listed.push(...page.items.map((item) => item.sessionId));
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect(listed).toEqual(byBytes);
  });

  it('stores the earliest and latest timestamps and the largest version exactly', async () => {
    const repository = open();
    const snapshot = makeSnapshot({
      createdAt: new Date(LIMITS.minTimestamp),
      updatedAt: new Date(LIMITS.maxTimestamp),
    });
    await repository.save(snapshot, { expectedVersion: null });
    expect(await repository.get(snapshot.sessionId)).toEqual(snapshot);
    const last = Number.MAX_SAFE_INTEGER;
    await pool.query(`UPDATE \`${tableName}\` SET version = ? WHERE session_id = ?`, [
      last - 1,
      snapshot.sessionId,
    ]);
    const next = { ...nextVersion(snapshot, { updatedAt: snapshot.updatedAt }), version: last };
    expect((await repository.save(next, { expectedVersion: last - 1 })).version).toBe(last);
    expect((await repository.get(snapshot.sessionId))?.version).toBe(last);
  });

  it('a delete leaves a tombstone row with the version and no content; purge forgets old ones', async () => {
    let clock = Date.now();
    const repository = open({ historyLimit: 3, tombstoneRetentionMs: 1_000, now: () => clock });
    const saved = await repository.save(makeSnapshot(), { expectedVersion: null });
    await repository.save(nextVersion(saved), { expectedVersion: 1 });
    expect(await repository.delete(saved.sessionId)).toBe(true);
    const [rows] = await pool.query(
      `SELECT user_id, summary, plan, version, deleted_at FROM \`${tableName}\` WHERE session_id = ?`,
      [saved.sessionId],
    );
    expect(rows).toEqual([
      { user_id: null, summary: null, plan: null, version: 2, deleted_at: clock },
    ]);
    const [history] = await pool.query(
      `SELECT version FROM \`${tableName}_history\` WHERE session_id = ?`,
      [saved.sessionId],
    );
    expect(history).toEqual([]);
    clock += 999;
    await repository.purgeExpired();
    expect(await readTombstone(saved.sessionId)).toBe(2);
    clock += 2;
    await repository.purgeExpired();
    expect(await readTombstone(saved.sessionId)).toBeNull();
    // Once the tombstone is gone, the id starts over.
    const reborn = await repository.save(makeSnapshot({ sessionId: saved.sessionId }), {
      expectedVersion: null,
    });
    expect(reborn.version).toBe(1);
  });

  it('purge turns expired sessions into tombstones dated from their expiry, in batches', async () => {
    let clock = Date.UTC(2030, 0, 1);
    const repository = open({ ttlMs: 1_000, historyLimit: 2, now: () => clock });
    const userId = randomId('purge');
    const sessions = await Promise.all(
      Array.from({ length: 520 }, () =>
        repository.save(makeSnapshot({ userId }), { expectedVersion: null }),
      ),
    );
    clock += 1_000;
    expect(await repository.purgeExpired()).toBeGreaterThanOrEqual(sessions.length);
    const [rows] = await pool.query(
      `SELECT COUNT(*) AS count, MIN(deleted_at) AS first, MAX(deleted_at) AS last FROM \`${tableName}\` WHERE session_id IN (?) AND summary IS NULL`,
      [sessions.map((session) => session.sessionId)],
    );
    expect(rows).toEqual([
      {
        count: sessions.length,
        first: Date.UTC(2030, 0, 1) + 1_000,
        last: Date.UTC(2030, 0, 1) + 1_000,
      },
    ]);
    expect(await repository.purgeExpired()).toBe(0);
  });

  it('history shows only an unbroken run: a write without history hides older versions', async () => {
    const withHistory = open({ historyLimit: 3 });
    const without = open();
    const first = await withHistory.save(makeSnapshot(), { expectedVersion: null });
    const second = await withHistory.save(nextVersion(first), { expectedVersion: 1 });
    const third = await without.save(nextVersion(second), { expectedVersion: 2 });
    expect(await withHistory.history?.(first.sessionId)).toEqual([]);
    const fourth = await withHistory.save(nextVersion(third), { expectedVersion: 3 });
    expect(await withHistory.history?.(first.sessionId)).toEqual([fourth]);
  });

  async function readTombstone(sessionId: string): Promise<number | null> {
    const [rows] = (await pool.query(
      `SELECT version FROM \`${tableName}\` WHERE session_id = ? AND deleted_at IS NOT NULL`,
      [sessionId],
    )) as unknown as [Array<{ version: number }>];
    return rows[0]?.version ?? null;
  }
});

describe('concurrency', () => {
  it('writers with history on neighbouring ids over two pools never deadlock or fail', async () => {
    const one = open({ historyLimit: 3 });
    const two = open({ pool: other, historyLimit: 3 });
    const prefix = randomId('neighbours');
    const ids = Array.from(
      { length: 16 },
      (_, index) => `${prefix}-${String(index).padStart(2, '0')}`,
    );
    const failures: unknown[] = [];
    const writer = async (repository: MysqlRepository, sessionId: string) => {
      for (let round = 0; round < 8; round += 1) {
        try {
          const current = await repository.get(sessionId);
          if (round % 4 === 3 && current) {
            await repository.delete(sessionId, { expectedVersion: current.version });
          } else if (current) {
            await repository.save(nextVersion(current), { expectedVersion: current.version });
          } else {
            await repository.save(makeSnapshot({ sessionId }), { expectedVersion: null });
          }
        } catch (error) {
          if (!ContextError.hasCode(error, 'VERSION_CONFLICT')) failures.push(error);
        }
      }
    };
    await Promise.all(ids.flatMap((sessionId) => [writer(one, sessionId), writer(two, sessionId)]));
    expect(failures).toEqual([]);
    for (const sessionId of ids) {
      const current = await one.get(sessionId);
      if (!current) continue;
      const history = (await one.history?.(sessionId)) as SessionContext[];
      expect(history[0]).toEqual(current);
    }
  });
});

describe('connections', () => {
  it('a refused connection is STORAGE_UNAVAILABLE with a hint, and the repository recovers nothing silently', async () => {
    const port = await closedPort();
    const repository = createMysqlRepository({ url: `mysql://root@127.0.0.1:${port}/test` });
    repositories.push(repository);
    for (const action of [
      () => repository.get('any'),
      () => repository.save(makeSnapshot(), { expectedVersion: null }),
      () => repository.migrate(),
    ]) {
      const error = await errorOf(action);
      expect(error.code).toBe('STORAGE_UNAVAILABLE');
      expect(error.message).toMatch(/MySQL.*(unreachable|ECONNREFUSED)/);
      expect(error.cause).toBeDefined();
    }
  });

  it('accepts mariadb:// URLs and passes query parameters to mysql2', async () => {
    const url = new URL(MYSQL_URL);
    url.protocol = 'mariadb:';
    url.searchParams.set('connectionLimit', '1');
    const repository = createMysqlRepository({ url: url.href, tableName });
    repositories.push(repository);
    const saved = await Promise.all(
      [makeSnapshot(), makeSnapshot()].map((snapshot) =>
        repository.save(snapshot, { expectedVersion: null }),
      ),
    );
    expect(saved.map((snapshot) => snapshot.version)).toEqual([1, 1]);
    const made = created[created.length - 1] as Pool & { pool: { config: unknown } };
    expect(made.pool.config).toMatchObject({ connectionLimit: 1 });
  });

  it('a pool without a database or without utf8mb4 is refused with INVALID_CONFIG', async () => {
    const { createPool } = await import('mysql2/promise');
    const noDatabase = createPool({ host: '127.0.0.1', user: 'root' });
    const latin1 = createPool({ uri: MYSQL_URL, charset: 'latin1_swedish_ci' });
    try {
      for (const candidate of [noDatabase, latin1]) {
        const repository = open({ pool: candidate });
        expect((await errorOf(() => repository.get('any'))).code).toBe('INVALID_CONFIG');
      }
    } finally {
      await Promise.all([noDatabase.end(), latin1.end()]);
    }
  });

  it('close() ends a pool made from a URL and leaves an injected pool open', async () => {
    const before = created.length;
    const owning = createMysqlRepository({ url: MYSQL_URL, tableName });
    const made = created[before];
    expect(made).toBeDefined();
    const snapshot = await owning.save(makeSnapshot(), { expectedVersion: null });
    await owning.close();
    await owning.close();
    await expect(made?.query('SELECT 1')).rejects.toThrow(/closed/i);
    expect((await errorOf(() => owning.migrate())).code).toBe('CLOSED');

    const injected = createMysqlRepository({ pool, tableName });
    await injected.get(snapshot.sessionId);
    await injected.close();
    expect((await errorOf(() => injected.get(snapshot.sessionId))).code).toBe('CLOSED');
    const [rows] = await pool.query('SELECT 1 AS one');
    expect(rows).toEqual([{ one: 1 }]);
  });
});
