import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ContextError, isRetryableError, StorageError } from '@ctx/core';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { createSqliteRepository } from '../src/index.js';
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

function expectUnavailable(error: unknown): void {
  expect(StorageError.isInstance(error)).toBe(true);
  expect((error as StorageError).code).toBe('STORAGE_UNAVAILABLE');
  expect(isRetryableError(error)).toBe(true);
  expect((error as Error).message).toMatch(/busy timeout/);
  expect((error as Error).cause).toMatchObject({ code: expect.stringMatching(/^SQLITE_BUSY/) });
}

/** A second connection holding the write lock of `filename` until `release()`. */
function holdWriteLock(filename: string, mode: 'IMMEDIATE' | 'EXCLUSIVE' = 'IMMEDIATE') {
  const holder = new Database(filename);
  holder.exec(`BEGIN ${mode}`);
  return {
    release() {
      holder.exec('ROLLBACK');
      holder.close();
    },
  };
}

describe('lock contention becomes STORAGE_UNAVAILABLE', () => {
  it('save, delete and purgeExpired fail typed when another connection keeps the write lock', async () => {
    const filename = tempDatabasePath();
    const repository = createSqliteRepository({ filename, busyTimeoutMs: 100, ttlMs: 60_000 });
    const snapshot = makeSnapshot();
    await repository.save(snapshot, { expectedVersion: null });
    const lock = holdWriteLock(filename);
    try {
      const started = Date.now();
      expectUnavailable(
        await rejectionOf(
          repository.save(nextVersion(snapshot, 'blocked'), { expectedVersion: 1 }),
        ),
      );
      expect(Date.now() - started).toBeGreaterThanOrEqual(90);
      expectUnavailable(await rejectionOf(repository.delete(snapshot.sessionId)));
      expectUnavailable(await rejectionOf(repository.purgeExpired!()));
      // WAL readers are not blocked by a writer.
      expect(await repository.get(snapshot.sessionId)).toEqual(snapshot);
    } finally {
      lock.release();
    }
    const second = nextVersion(snapshot, 'after the lock');
    await repository.save(second, { expectedVersion: 1 });
    expect(await repository.get(snapshot.sessionId)).toEqual(second);
    await repository.close();
  });

  it("recordTurn and the lease calls fail typed under another connection's write lock; pendingTurns still reads", async () => {
    const filename = tempDatabasePath();
    const repository = createSqliteRepository({ filename, busyTimeoutMs: 100 });
    const sessionId = randomId('session');
    const turn = (turnId: string) => ({
      turnId,
      userId: null,
      messages: [{ role: 'user' as const, content: 'hello' }],
    });
    await repository.recordTurn(sessionId, turn('first'));
    const lock = holdWriteLock(filename);
    try {
      expectUnavailable(await rejectionOf(repository.recordTurn(sessionId, turn('second'))));
      const lease = { holder: 'folder', ttlMs: 60_000 };
      expectUnavailable(await rejectionOf(repository.acquireLease(sessionId, lease)));
      expectUnavailable(await rejectionOf(repository.releaseLease(sessionId, 'folder')));
      expect((await repository.pendingTurns(sessionId)).map((item) => item.turnId)).toEqual([
        'first',
      ]);
    } finally {
      lock.release();
    }
    expect((await repository.recordTurn(sessionId, turn('second'))).duplicate).toBe(false);
    await repository.close();
  });

  it('waits the default busy timeout of 5 s before giving up', async () => {
    const filename = tempDatabasePath();
    const repository = createSqliteRepository({ filename });
    const snapshot = makeSnapshot();
    const lock = holdWriteLock(filename);
    try {
      const started = Date.now();
      expectUnavailable(await rejectionOf(repository.save(snapshot, { expectedVersion: null })));
      expect(Date.now() - started).toBeGreaterThanOrEqual(4900);
    } finally {
      lock.release();
    }
    await repository.close();
  });

  it('reads fail typed when an exclusive lock blocks them (rollback journal)', async () => {
    const filename = tempDatabasePath();
    const repository = createSqliteRepository({ filename, wal: false, busyTimeoutMs: 50 });
    const snapshot = makeSnapshot();
    await repository.save(snapshot, { expectedVersion: null });
    const holder = new Database(filename);
    holder.exec('BEGIN EXCLUSIVE');
    holder.prepare("UPDATE ctx_sessions SET summary = 'uncommitted'").run();
    try {
      expectUnavailable(await rejectionOf(repository.get(snapshot.sessionId)));
      expectUnavailable(await rejectionOf(repository.list()));
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    expect(await repository.get(snapshot.sessionId)).toEqual(snapshot);
    await repository.close();
  });

  it('creating a repository on a locked new file fails typed, and works once the lock is gone', async () => {
    const filename = tempDatabasePath();
    const lock = holdWriteLock(filename, 'EXCLUSIVE');
    try {
      expectUnavailable(thrownBy(() => createSqliteRepository({ filename, busyTimeoutMs: 50 })));
      expectUnavailable(
        thrownBy(() => createSqliteRepository({ filename, busyTimeoutMs: 50, wal: false })),
      );
    } finally {
      lock.release();
    }
    const repository = createSqliteRepository({ filename, busyTimeoutMs: 50 });
    await repository.save(makeSnapshot(), { expectedVersion: null });
    await repository.close();
  });
});

describe('other driver failures become STORAGE_ERROR', () => {
  it('a read-only Database cannot be migrated', () => {
    const filename = tempDatabasePath();
    new Database(filename).exec('CREATE TABLE unrelated (id INTEGER)');
    const database = new Database(filename, { readonly: true });
    const error = thrownBy(() => createSqliteRepository({ database }));
    expect(ContextError.hasCode(error, 'STORAGE_ERROR')).toBe(true);
    expect((error as Error).message).toMatch(/read-only/);
    expect((error as Error).cause).toMatchObject({ code: 'SQLITE_READONLY' });
    database.close();
  });

  it('a read-only Database on a migrated file reads, and refuses writes typed', async () => {
    const filename = tempDatabasePath();
    const writer = createSqliteRepository({ filename, wal: false });
    const snapshot = makeSnapshot();
    await writer.save(snapshot, { expectedVersion: null });
    await writer.close();
    const database = new Database(filename, { readonly: true });
    const reader = createSqliteRepository({ database });
    expect(await reader.get(snapshot.sessionId)).toEqual(snapshot);
    const error = await rejectionOf(
      reader.save(nextVersion(snapshot, 'nope'), { expectedVersion: 1 }),
    );
    expect(ContextError.hasCode(error, 'STORAGE_ERROR')).toBe(true);
    expect((error as Error).cause).toMatchObject({ code: 'SQLITE_READONLY' });
    database.close();
  });

  it('a row altered outside ctx is reported, not returned half-decoded', async () => {
    const database = new Database(':memory:');
    const repository = createSqliteRepository({ database });
    const snapshot = makeSnapshot();
    await repository.save(snapshot, { expectedVersion: null });
    database
      .prepare("UPDATE ctx_sessions SET plan = '{not json' WHERE session_id = ?")
      .run(snapshot.sessionId);
    const fromGet = await rejectionOf(repository.get(snapshot.sessionId));
    expect(ContextError.hasCode(fromGet, 'STORAGE_ERROR')).toBe(true);
    expect((fromGet as Error).message).toMatch(/invalid plan column/);
    expect(ContextError.hasCode(await rejectionOf(repository.list()), 'STORAGE_ERROR')).toBe(true);
    database.prepare("UPDATE ctx_sessions SET plan = '[1, 2]', progress = NULL").run();
    expect(
      ContextError.hasCode(await rejectionOf(repository.get(snapshot.sessionId)), 'STORAGE_ERROR'),
    ).toBe(true);
    database.close();
  });

  it('a folder given as filename cannot be opened', () => {
    const error = thrownBy(() => createSqliteRepository({ filename: tempFolder() }));
    expect(ContextError.hasCode(error, 'STORAGE_ERROR')).toBe(true);
    expect((error as Error).cause).toMatchObject({
      code: expect.stringMatching(/^SQLITE_CANTOPEN/),
    });
  });

  it('a folder that cannot be created is reported', () => {
    const blocker = join(tempFolder(), 'a-file');
    writeFileSync(blocker, 'not a folder');
    const error = thrownBy(() => createSqliteRepository({ filename: join(blocker, 'ctx.db') }));
    expect(ContextError.hasCode(error, 'STORAGE_ERROR')).toBe(true);
    expect((error as Error).message).toMatch(/Cannot create the folder/);
  });
});

describe('invalid input is refused before SQLite sees it', () => {
  it('passes validation errors through unwrapped', async () => {
    const repository = createSqliteRepository({ filename: ':memory:' });
    const snapshot = makeSnapshot();
    const cases = [
      repository.get(''),
      repository.delete('x'.repeat(257)),
      repository.save({ ...snapshot, version: 2 }, { expectedVersion: null }),
      repository.save({ ...snapshot, summary: 'nul \u0000' }, { expectedVersion: null }),
      repository.list({ cursor: 'not-a-cursor' }),
      repository.list({ limit: 0 }),
    ];
    for (const pending of cases) {
      const error = await rejectionOf(pending);
      expect(ContextError.hasCode(error, 'INVALID_INPUT')).toBe(true);
    }
    expect(await repository.get(snapshot.sessionId)).toBeNull();
    await repository.close();
  });
});
