import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ContextError, type SessionContext, ValidationError } from '@ctx/core';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { createSqliteRepository, type SqliteRepositoryOptions } from '../src/index.js';
import {
  makeSnapshot,
  nextVersion,
  randomId,
  rejectionOf,
  removeTempFolders,
  tempDatabasePath,
  tempFolder,
  thrownBy,
} from './helpers.js';

afterAll(removeTempFolders);

function expectInvalidConfig(options: unknown, path: string): void {
  const error = thrownBy(() => createSqliteRepository(options as SqliteRepositoryOptions));
  expect(ValidationError.isInstance(error)).toBe(true);
  expect((error as ValidationError).code).toBe('INVALID_CONFIG');
  expect((error as ValidationError).issues.map((issue) => issue.path)).toContain(path);
}

describe('options', () => {
  it('needs exactly one of filename and database', () => {
    const database = new Database(':memory:');
    expectInvalidConfig({}, '(root)');
    expectInvalidConfig({ filename: ':memory:', database }, 'filename');
    expectInvalidConfig({ filename: '   ' }, 'filename');
    expectInvalidConfig({ database: {} }, 'database');
    database.close();
    expectInvalidConfig({ database }, 'database');
  });

  it('refuses table names that are not plain lower-case identifiers, before touching the disk', () => {
    const filename = tempDatabasePath();
    for (const tableName of [
      '',
      'Sessions',
      'ctx-sessions',
      '1sessions',
      'sessions; DROP TABLE users',
      'sqlite_sessions',
      'ctx_meta',
      'a'.repeat(49),
    ]) {
      expectInvalidConfig({ filename, tableName }, 'tableName');
    }
    expect(existsSync(filename)).toBe(false);
  });

  it('refuses invalid ttlMs, historyLimit, busyTimeoutMs, migrate and wal', () => {
    const filename = ':memory:';
    expectInvalidConfig({ filename, ttlMs: 0 }, 'ttlMs');
    expectInvalidConfig({ filename, ttlMs: 1.5 }, 'ttlMs');
    expectInvalidConfig({ filename, historyLimit: -1 }, 'historyLimit');
    expectInvalidConfig({ filename, historyLimit: 100_000 }, 'historyLimit');
    expectInvalidConfig({ filename, busyTimeoutMs: -5 }, 'busyTimeoutMs');
    expectInvalidConfig({ filename, migrate: 'yes' }, 'migrate');
    expectInvalidConfig({ filename, wal: 1 }, 'wal');
  });

  it('declares capabilities from ttlMs and historyLimit, and always the turn log and fields', async () => {
    const plain = createSqliteRepository({ filename: ':memory:' });
    const full = createSqliteRepository({ filename: ':memory:', ttlMs: 1000, historyLimit: 3 });
    expect(plain.capabilities).toEqual({ ttl: false, history: false, turnLog: true, fields: true });
    // Without a TTL purgeExpired still forgets old tombstones of deleted sessions.
    expect(typeof plain.purgeExpired).toBe('function');
    expect(plain.history).toBeUndefined();
    expect(full.capabilities).toEqual({ ttl: true, history: true, turnLog: true, fields: true });
    expect(typeof full.purgeExpired).toBe('function');
    expect(typeof full.history).toBe('function');
    await plain.close();
    await full.close();
  });
});

describe('files and connections', () => {
  it('creates the file and its missing folders, in WAL mode', async () => {
    const filename = join(tempFolder(), 'deep', 'er', 'ctx.db');
    const repository = createSqliteRepository({ filename });
    const snapshot = makeSnapshot();
    await repository.save(snapshot, { expectedVersion: null });
    expect(existsSync(filename)).toBe(true);
    const raw = new Database(filename);
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    raw.close();
    await repository.close();
  });

  it('keeps the rollback journal when wal is false', async () => {
    const filename = tempDatabasePath();
    const repository = createSqliteRepository({ filename, wal: false });
    await repository.save(makeSnapshot(), { expectedVersion: null });
    await repository.close();
    const raw = new Database(filename);
    expect(raw.pragma('journal_mode', { simple: true })).toBe('delete');
    raw.close();
  });

  it('closes the database it opened, once, and refuses calls afterwards', async () => {
    const filename = tempDatabasePath();
    const repository = createSqliteRepository({ filename });
    await repository.save(makeSnapshot(), { expectedVersion: null });
    expect(existsSync(`${filename}-wal`)).toBe(true);
    await repository.close();
    await repository.close();
    // SQLite removes the WAL file when the last connection to the database closes.
    expect(existsSync(`${filename}-wal`)).toBe(false);
    const error = await rejectionOf(repository.get('anything'));
    expect(ContextError.hasCode(error, 'CLOSED')).toBe(true);
  });

  it('keeps data across repositories on the same file', async () => {
    const filename = tempDatabasePath();
    const first = createSqliteRepository({ filename });
    const snapshot = makeSnapshot({ summary: 'persisted' });
    await first.save(snapshot, { expectedVersion: null });
    await first.close();
    const second = createSqliteRepository({ filename });
    expect(await second.get(snapshot.sessionId)).toEqual(snapshot);
    await second.close();
  });

  it('gives every ":memory:" repository its own private database', async () => {
    const first = createSqliteRepository({ filename: ':memory:' });
    const second = createSqliteRepository({ filename: ':memory:' });
    const snapshot = makeSnapshot();
    await first.save(snapshot, { expectedVersion: null });
    expect(await first.get(snapshot.sessionId)).toEqual(snapshot);
    expect(await second.get(snapshot.sessionId)).toBeNull();
    await first.close();
    await second.close();
  });

  it('never closes an injected Database, nor changes its journal mode or busy timeout', async () => {
    const filename = tempDatabasePath();
    const database = new Database(filename, { timeout: 1234 });
    const repository = createSqliteRepository({ database });
    const snapshot = makeSnapshot();
    await repository.save(snapshot, { expectedVersion: null });
    await repository.close();
    await repository.close();
    expect(database.open).toBe(true);
    expect(database.pragma('journal_mode', { simple: true })).toBe('delete');
    expect(database.pragma('busy_timeout', { simple: true })).toBe(1234);
    const row = database
      .prepare('SELECT summary FROM ctx_sessions WHERE session_id = ?')
      .get(snapshot.sessionId);
    expect(row).toEqual({ summary: snapshot.summary });
    expect(ContextError.hasCode(await rejectionOf(repository.list()), 'CLOSED')).toBe(true);
    database.close();
  });

  it('applies busyTimeoutMs to an injected Database when it is given', () => {
    const database = new Database(':memory:');
    const repository = createSqliteRepository({ database, busyTimeoutMs: 250 });
    expect(database.pragma('busy_timeout', { simple: true })).toBe(250);
    expect(repository.tableName).toBe('ctx_sessions');
    database.close();
  });

  it('reads plain numbers even when the injected Database hands out BigInts by default', async () => {
    const database = new Database(':memory:');
    database.defaultSafeIntegers(true);
    const repository = createSqliteRepository({ database, historyLimit: 2 });
    const snapshot = makeSnapshot();
    await repository.save(snapshot, { expectedVersion: null });
    const second = nextVersion(snapshot, 'second');
    await repository.save(second, { expectedVersion: 1 });
    expect(await repository.get(snapshot.sessionId)).toEqual(second);
    expect((await repository.list({ userId: snapshot.userId! })).items).toEqual([second]);
    expect(await repository.history!(snapshot.sessionId)).toEqual([second, snapshot]);
    database.close();
  });

  it('reports an injected Database closed by its owner as a typed STORAGE_ERROR', async () => {
    const database = new Database(':memory:');
    const repository = createSqliteRepository({ database });
    database.close();
    const error = await rejectionOf(repository.get(randomId('session')));
    expect(ContextError.hasCode(error, 'STORAGE_ERROR')).toBe(true);
    expect((error as Error).message).toMatch(/closed by its owner/);
    expect((error as Error).cause).toBeInstanceOf(TypeError);
  });

  it('keeps tables of different tableNames apart in one file', async () => {
    const filename = tempDatabasePath();
    const alpha = createSqliteRepository({ filename, tableName: 'alpha_sessions' });
    const beta = createSqliteRepository({ filename, tableName: 'beta_sessions' });
    const snapshot = makeSnapshot();
    await alpha.save(snapshot, { expectedVersion: null });
    expect(await beta.get(snapshot.sessionId)).toBeNull();
    await beta.save({ ...snapshot, summary: 'beta' }, { expectedVersion: null });
    expect((await alpha.get(snapshot.sessionId))?.summary).toBe(snapshot.summary);
    await alpha.close();
    await beta.close();
    const raw = new Database(filename);
    expect(
      raw.prepare('SELECT table_name FROM ctx_meta ORDER BY table_name').pluck().all(),
    ).toEqual(['alpha_sessions', 'beta_sessions']);
    raw.close();
  });
});

describe('storage layout', () => {
  it('stores one row per session: epoch-millisecond integers, JSON steps, NULL for null', async () => {
    const filename = tempDatabasePath();
    const repository = createSqliteRepository({ filename });
    const planned = makeSnapshot({ summary: 'héllo 😀', plan: ['a', 'b "quoted"'], progress: [] });
    const bare = makeSnapshot({ userId: null, goal: null, plan: null, progress: null });
    await repository.save(planned, { expectedVersion: null });
    await repository.save(bare, { expectedVersion: null });
    await repository.close();

    const raw = new Database(filename, { readonly: true });
    const select = raw.prepare(
      `SELECT session_id, user_id, summary, goal, plan, progress, created_at, updated_at, version,
              expires_at, deleted_at, typeof(created_at) AS created_type, typeof(version) AS version_type
       FROM ctx_sessions WHERE session_id = ?`,
    );
    expect(select.get(planned.sessionId)).toEqual({
      session_id: planned.sessionId,
      user_id: planned.userId,
      summary: 'héllo 😀',
      goal: planned.goal,
      plan: '["a","b \\"quoted\\""]',
      progress: '[]',
      created_at: planned.createdAt.getTime(),
      updated_at: planned.updatedAt.getTime(),
      version: 1,
      expires_at: null,
      deleted_at: null,
      created_type: 'integer',
      version_type: 'integer',
    });
    expect(select.get(bare.sessionId)).toMatchObject({
      user_id: null,
      goal: null,
      plan: null,
      progress: null,
    });
    raw.close();
  });

  it('creates the documented tables and indexes', async () => {
    const filename = tempDatabasePath();
    await createSqliteRepository({ filename }).close();
    const raw = new Database(filename, { readonly: true });
    const objects = raw
      .prepare("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
      .all();
    expect(objects).toEqual([
      { type: 'table', name: 'ctx_meta' },
      { type: 'table', name: 'ctx_sessions' },
      { type: 'index', name: 'ctx_sessions_deleted_idx' },
      { type: 'index', name: 'ctx_sessions_expires_idx' },
      { type: 'table', name: 'ctx_sessions_history' },
      { type: 'table', name: 'ctx_sessions_leases' },
      { type: 'index', name: 'ctx_sessions_list_idx' },
      { type: 'table', name: 'ctx_sessions_turns' },
      { type: 'index', name: 'ctx_sessions_turns_folded_idx' },
      { type: 'index', name: 'ctx_sessions_turns_pending_idx' },
      { type: 'index', name: 'ctx_sessions_user_idx' },
    ]);
    const indexColumns = (name: string) =>
      raw.prepare('SELECT name FROM pragma_index_info(?) ORDER BY seqno').pluck().all(name);
    expect(indexColumns('ctx_sessions_user_idx')).toEqual(['user_id', 'updated_at', 'session_id']);
    expect(indexColumns('ctx_sessions_list_idx')).toEqual(['updated_at', 'session_id']);
    expect(indexColumns('ctx_sessions_deleted_idx')).toEqual(['deleted_at']);
    expect(indexColumns('ctx_sessions_turns_pending_idx')).toEqual(['session_id', 'sequence']);
    expect(indexColumns('ctx_sessions_turns_folded_idx')).toEqual(['folded_at']);
    raw.close();
  });

  it('writes expires_at as last write + ttlMs', async () => {
    const database = new Database(':memory:');
    let clock = 1_000_000;
    const repository = createSqliteRepository({ database, ttlMs: 5000, now: () => clock });
    const snapshot = makeSnapshot();
    await repository.save(snapshot, { expectedVersion: null });
    const expiresAt = database
      .prepare('SELECT expires_at FROM ctx_sessions WHERE session_id = ?')
      .pluck();
    expect(expiresAt.get(snapshot.sessionId)).toBe(1_005_000);
    clock = 1_002_000;
    await repository.save(nextVersion(snapshot, 'later'), { expectedVersion: 1 });
    expect(expiresAt.get(snapshot.sessionId)).toBe(1_007_000);
    database.close();
  });
});

describe('compare-and-set', () => {
  it('leaves the row and the history untouched when a save loses', async () => {
    const database = new Database(':memory:');
    const repository = createSqliteRepository({ database, historyLimit: 5 });
    const first = makeSnapshot();
    await repository.save(first, { expectedVersion: null });
    const second = nextVersion(first, 'second');
    await repository.save(second, { expectedVersion: 1 });
    const error = await rejectionOf(
      repository.save(nextVersion(first, 'stale'), { expectedVersion: 1 }),
    );
    expect(ContextError.hasCode(error, 'VERSION_CONFLICT')).toBe(true);
    expect((error as { currentVersion: number }).currentVersion).toBe(2);
    expect(await repository.get(first.sessionId)).toEqual(second);
    expect(await repository.history!(first.sessionId)).toEqual([second, first]);
    expect(database.inTransaction).toBe(false);
    database.close();
  });

  it('refuses a create over an existing session with the current version', async () => {
    const repository = createSqliteRepository({ filename: ':memory:' });
    const snapshot = makeSnapshot();
    await repository.save(snapshot, { expectedVersion: null });
    const error = await rejectionOf(repository.save(snapshot, { expectedVersion: null }));
    expect(ContextError.hasCode(error, 'VERSION_CONFLICT')).toBe(true);
    expect((error as { currentVersion: number }).currentVersion).toBe(1);
    await repository.close();
  });

  it('returns a copy: mutating it does not change what is stored', async () => {
    const repository = createSqliteRepository({ filename: ':memory:' });
    const snapshot = makeSnapshot();
    const stored = await repository.save(snapshot, { expectedVersion: null });
    stored.plan!.push('mutated');
    snapshot.progress!.push('mutated');
    expect((await repository.get(snapshot.sessionId))?.plan).toEqual([
      'Define endpoints',
      'Pick methods',
    ]);
    expect((await repository.get(snapshot.sessionId))?.progress).toEqual(['Define endpoints']);
    await repository.close();
  });
});

describe('ttl', () => {
  function clockedRepository(options: { historyLimit?: number } = {}) {
    const database = new Database(':memory:');
    const clock = { now: 10_000 };
    const repository = createSqliteRepository({
      database,
      ttlMs: 1000,
      now: () => clock.now,
      ...options,
    });
    return { database, clock, repository };
  }

  it('hides expired sessions from get, list and history', async () => {
    const { database, clock, repository } = clockedRepository({ historyLimit: 3 });
    const snapshot = makeSnapshot();
    await repository.save(snapshot, { expectedVersion: null });
    clock.now = 10_999;
    expect(await repository.get(snapshot.sessionId)).toEqual(snapshot);
    clock.now = 11_000;
    expect(await repository.get(snapshot.sessionId)).toBeNull();
    expect((await repository.list({ userId: snapshot.userId! })).items).toEqual([]);
    expect(await repository.history!(snapshot.sessionId)).toEqual([]);
    database.close();
  });

  it('treats an expired session as absent for compare-and-set and delete', async () => {
    const { database, clock, repository } = clockedRepository({ historyLimit: 3 });
    const snapshot = makeSnapshot();
    await repository.save(snapshot, { expectedVersion: null });
    await repository.save(nextVersion(snapshot, 'v2'), { expectedVersion: 1 });
    clock.now = 20_000;
    const error = await rejectionOf(
      repository.save({ ...nextVersion(snapshot, 'v3'), version: 3 }, { expectedVersion: 2 }),
    );
    expect(ContextError.hasCode(error, 'VERSION_CONFLICT')).toBe(true);
    expect((error as { currentVersion: number | null }).currentVersion).toBeNull();

    // A create over the expired row continues its versions, with a new history.
    const reborn = makeSnapshot({ sessionId: snapshot.sessionId, summary: 'reborn' });
    expect((await repository.save(reborn, { expectedVersion: null })).version).toBe(3);
    expect(await repository.get(snapshot.sessionId)).toEqual({ ...reborn, version: 3 });
    expect(await repository.history!(snapshot.sessionId)).toEqual([{ ...reborn, version: 3 }]);

    clock.now = 30_000;
    expect(await repository.delete(snapshot.sessionId)).toBe(false);
    // The expired row stays (it keeps version 3 from restarting) until purgeExpired.
    expect(
      database.prepare('SELECT version, expires_at, deleted_at FROM ctx_sessions').all(),
    ).toEqual([{ version: 3, expires_at: 21_000, deleted_at: null }]);
    database.close();
  });

  it('purgeExpired turns expired sessions into tombstones without history, and nothing else', async () => {
    const { database, clock, repository } = clockedRepository({ historyLimit: 3 });
    const old = makeSnapshot();
    await repository.save(old, { expectedVersion: null });
    await repository.save(nextVersion(old, 'v2'), { expectedVersion: 1 });
    clock.now = 10_500;
    const fresh = makeSnapshot();
    await repository.save(fresh, { expectedVersion: null });
    const forever = createSqliteRepository({ database });
    const immortal = makeSnapshot();
    await forever.save(immortal, { expectedVersion: null });

    clock.now = 11_200;
    expect(await repository.purgeExpired!()).toBe(1);
    expect(await repository.purgeExpired!()).toBe(0);
    const count = (table: string) =>
      database.prepare(`SELECT count(*) FROM ${table} WHERE session_id = ?`).pluck();
    expect(
      database
        .prepare(
          'SELECT user_id, summary, goal, plan, progress, version, expires_at, deleted_at FROM ctx_sessions WHERE session_id = ?',
        )
        .get(old.sessionId),
    ).toEqual({
      user_id: null,
      summary: '',
      goal: null,
      plan: null,
      progress: null,
      version: 2,
      expires_at: null,
      // Dated from when the session expired.
      deleted_at: 11_000,
    });
    expect(count('ctx_sessions_history').get(old.sessionId)).toBe(0);
    expect(await repository.get(fresh.sessionId)).toEqual(fresh);
    expect(await repository.get(immortal.sessionId)).toEqual(immortal);
    database.close();
  });
});

describe('tombstones', () => {
  const rowOf = (database: Database.Database, sessionId: string) =>
    database
      .prepare(
        'SELECT user_id, summary, goal, plan, progress, version, expires_at, deleted_at FROM ctx_sessions WHERE session_id = ?',
      )
      .get(sessionId);

  it('delete blanks the row, keeps its version, dates it and drops its history', async () => {
    const database = new Database(':memory:');
    const clock = { now: 50_000 };
    const repository = createSqliteRepository({
      database,
      ttlMs: 60_000,
      historyLimit: 3,
      now: () => clock.now,
    });
    const first = makeSnapshot();
    await repository.save(first, { expectedVersion: null });
    await repository.save(nextVersion(first, 'v2'), { expectedVersion: 1 });
    clock.now = 51_000;
    expect(await repository.delete(first.sessionId, { userId: first.userId! })).toBe(true);
    expect(rowOf(database, first.sessionId)).toEqual({
      user_id: null,
      summary: '',
      goal: null,
      plan: null,
      progress: null,
      version: 2,
      expires_at: null,
      deleted_at: 51_000,
    });
    expect(database.prepare('SELECT count(*) FROM ctx_sessions_history').pluck().get()).toBe(0);
    expect(await repository.list()).toEqual({ items: [], nextCursor: null });
    database.close();
  });

  it('purgeExpired forgets tombstones older than tombstoneRetentionMs, and only those', async () => {
    const database = new Database(':memory:');
    const clock = { now: 100_000 };
    const repository = createSqliteRepository({
      database,
      tombstoneRetentionMs: 10_000,
      now: () => clock.now,
    });
    const old = makeSnapshot();
    const recent = makeSnapshot();
    for (const snapshot of [old, recent]) {
      await repository.save(snapshot, { expectedVersion: null });
      await repository.save(nextVersion(snapshot, 'v2'), { expectedVersion: 1 });
    }
    expect(await repository.delete(old.sessionId)).toBe(true);
    clock.now = 105_000;
    expect(await repository.delete(recent.sessionId)).toBe(true);

    clock.now = 110_001;
    expect(await repository.purgeExpired()).toBe(0);
    expect(rowOf(database, old.sessionId)).toBeUndefined();
    expect(rowOf(database, recent.sessionId)).toMatchObject({ version: 2, deleted_at: 105_000 });
    // Within retention a create continues the versions; past it the id starts over.
    expect((await repository.save(recent, { expectedVersion: null })).version).toBe(3);
    expect((await repository.save(old, { expectedVersion: null })).version).toBe(1);
    database.close();
  });

  it('a conditional delete that is refused changes nothing', async () => {
    const database = new Database(':memory:');
    const repository = createSqliteRepository({ database, historyLimit: 2 });
    const first = makeSnapshot();
    await repository.save(first, { expectedVersion: null });
    const second = nextVersion(first, 'v2');
    await repository.save(second, { expectedVersion: 1 });
    const before = rowOf(database, first.sessionId);
    const impostor = await rejectionOf(
      repository.delete(first.sessionId, { userId: randomId('impostor'), expectedVersion: 2 }),
    );
    expect(ContextError.hasCode(impostor, 'OWNERSHIP_MISMATCH')).toBe(true);
    const stale = await rejectionOf(
      repository.delete(first.sessionId, { userId: first.userId!, expectedVersion: 1 }),
    );
    expect(ContextError.hasCode(stale, 'VERSION_CONFLICT')).toBe(true);
    expect((stale as { currentVersion: number }).currentVersion).toBe(2);
    expect(rowOf(database, first.sessionId)).toEqual(before);
    expect(await repository.history!(first.sessionId)).toEqual([second, first]);
    expect(database.inTransaction).toBe(false);
    database.close();
  });
});

describe('history', () => {
  async function writeVersions(count: number, historyLimit: number) {
    const database = new Database(':memory:');
    const repository = createSqliteRepository({ database, historyLimit });
    const versions: SessionContext[] = [makeSnapshot({ summary: 'v1' })];
    await repository.save(versions[0]!, { expectedVersion: null });
    for (let version = 2; version <= count; version += 1) {
      const next = nextVersion(versions[versions.length - 1]!, `v${version}`);
      await repository.save(next, { expectedVersion: version - 1 });
      versions.push(next);
    }
    return { database, repository, versions, sessionId: versions[0]!.sessionId };
  }

  it('keeps the last N versions, newest first, the current one included', async () => {
    const { database, repository, versions, sessionId } = await writeVersions(6, 3);
    expect(await repository.history!(sessionId)).toEqual([versions[5], versions[4], versions[3]]);
    expect(await repository.history!(sessionId, { limit: 2 })).toEqual([versions[5], versions[4]]);
    expect(await repository.history!(sessionId, { limit: 50 })).toHaveLength(3);
    // The current version lives in the session table; the history table holds the N-1 before it.
    const archived = database
      .prepare('SELECT version FROM ctx_sessions_history WHERE session_id = ? ORDER BY version')
      .pluck()
      .all(sessionId);
    expect(archived).toEqual([4, 5]);
    database.close();
  });

  it('with historyLimit 1 returns only the current version and archives nothing', async () => {
    const { database, repository, versions, sessionId } = await writeVersions(3, 1);
    expect(await repository.history!(sessionId)).toEqual([versions[2]]);
    expect(database.prepare('SELECT count(*) FROM ctx_sessions_history').pluck().get()).toBe(0);
    database.close();
  });

  it('is emptied by delete, and a recreated session starts a new history', async () => {
    const { database, repository, sessionId } = await writeVersions(4, 10);
    expect(await repository.delete(sessionId)).toBe(true);
    expect(await repository.history!(sessionId)).toEqual([]);
    expect(database.prepare('SELECT count(*) FROM ctx_sessions_history').pluck().get()).toBe(0);
    const reborn = makeSnapshot({ sessionId, summary: 'again' });
    await repository.save(reborn, { expectedVersion: null });
    // The re-created session continues after the deleted version 4.
    expect(await repository.history!(sessionId)).toEqual([{ ...reborn, version: 5 }]);
    database.close();
  });

  it('refuses an invalid limit and an invalid session id', async () => {
    const { database, repository, sessionId } = await writeVersions(2, 3);
    for (const limit of [0, -1, 1.5]) {
      const error = await rejectionOf(repository.history!(sessionId, { limit }));
      expect(ContextError.hasCode(error, 'INVALID_INPUT')).toBe(true);
    }
    expect(ContextError.hasCode(await rejectionOf(repository.history!('')), 'INVALID_INPUT')).toBe(
      true,
    );
    database.close();
  });
});

describe('list', () => {
  it('pages through ties on updatedAt by session id, without gaps or repeats', async () => {
    const repository = createSqliteRepository({ filename: ':memory:' });
    const userId = randomId('user');
    const time = new Date(Date.UTC(2025, 5, 1));
    const ids = Array.from({ length: 23 }, (_, index) => `tie-${String(index).padStart(2, '0')}`);
    for (const sessionId of ids) {
      await repository.save(makeSnapshot({ sessionId, userId, createdAt: time, updatedAt: time }), {
        expectedVersion: null,
      });
    }
    await repository.save(makeSnapshot({ userId: randomId('other-user') }), {
      expectedVersion: null,
    });
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await repository.list({ userId, limit: 5, cursor });
      seen.push(...page.items.map((item) => item.sessionId));
      cursor = page.nextCursor;
      pages += 1;
    } while (cursor);
    expect(pages).toBe(5);
    expect(seen).toEqual([...ids].reverse());
    expect((await repository.list({ limit: 1000 })).items).toHaveLength(24);
    await repository.close();
  });
});
