import { randomBytes } from 'node:crypto';
import { copyFileSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ContextError, type TurnInput } from '@ctx/core';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createSqliteRepository,
  SQLITE_META_TABLE,
  SQLITE_SCHEMA_VERSION,
  type SqliteRepositoryOptions,
} from '../src/index.js';
import {
  makeSnapshot,
  nextVersion,
  removeTempFolders,
  tempDatabasePath,
  thrownBy,
} from './helpers.js';

afterAll(removeTempFolders);

/** Runs `setup` on a raw connection to a new file in rollback-journal mode, then closes it. */
function prepareFile(setup: (database: Database.Database) => void): string {
  const filename = tempDatabasePath();
  const database = new Database(filename);
  setup(database);
  database.close();
  return filename;
}

/** Paths this process holds open (Linux). */
function openFiles(): string[] {
  return readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      return [readlinkSync(`/proc/self/fd/${fd}`)];
    } catch {
      return [];
    }
  });
}

/** Asserts that creating a repository fails with `code`, and that the file was not touched. */
function expectRefusedUntouched(
  filename: string,
  code: string,
  message: RegExp,
  options: Partial<SqliteRepositoryOptions> = {},
): void {
  const before = readFileSync(filename);
  const filesBefore = readdirSync(dirname(filename)).sort();
  const error = thrownBy(() =>
    createSqliteRepository({ filename, ...options } as SqliteRepositoryOptions),
  );
  expect(ContextError.hasCode(error, code as 'SCHEMA_MISMATCH')).toBe(true);
  expect((error as Error).message).toMatch(message);
  expect(readFileSync(filename).equals(before)).toBe(true);
  expect(readdirSync(dirname(filename)).sort()).toEqual(filesBefore);
  expect(openFiles().filter((path) => path.startsWith(filename))).toEqual([]);
}

function metaRows(filename: string): unknown[] {
  const raw = new Database(filename, { readonly: true });
  const rows = raw.prepare(`SELECT table_name, schema_version FROM ${SQLITE_META_TABLE}`).all();
  raw.close();
  return rows;
}

describe('migrations', () => {
  it('creates the schema on a new file and records its version in ctx_meta', async () => {
    const filename = tempDatabasePath();
    await createSqliteRepository({ filename }).close();
    expect(metaRows(filename)).toEqual([
      { table_name: 'ctx_sessions', schema_version: SQLITE_SCHEMA_VERSION },
    ]);
  });

  it('is idempotent: reopening keeps the data and does not migrate again', async () => {
    const filename = tempDatabasePath();
    const first = createSqliteRepository({ filename });
    const snapshot = makeSnapshot();
    await first.save(snapshot, { expectedVersion: null });
    await first.close();
    const readMigratedAt = () => {
      const raw = new Database(filename, { readonly: true });
      const value = raw.prepare(`SELECT migrated_at FROM ${SQLITE_META_TABLE}`).pluck().get();
      raw.close();
      return value;
    };
    const migratedAt = readMigratedAt();
    await new Promise((resolve) => setTimeout(resolve, 5));
    for (let round = 0; round < 3; round += 1) {
      const again = createSqliteRepository({ filename });
      expect(await again.get(snapshot.sessionId)).toEqual(snapshot);
      await again.close();
    }
    expect(readMigratedAt()).toBe(migratedAt);
  });

  it('adds its tables to a database that holds other tables, leaving them alone', async () => {
    const filename = prepareFile((database) => {
      database.exec(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES ('ada')",
      );
    });
    const repository = createSqliteRepository({ filename });
    const snapshot = makeSnapshot();
    await repository.save(snapshot, { expectedVersion: null });
    await repository.close();
    const raw = new Database(filename, { readonly: true });
    expect(raw.prepare('SELECT name FROM users').pluck().all()).toEqual(['ada']);
    raw.close();
  });

  it('with migrate: false uses a migrated table, and refuses a new one without creating it', async () => {
    const migrated = tempDatabasePath();
    await createSqliteRepository({ filename: migrated }).close();
    const repository = createSqliteRepository({ filename: migrated, migrate: false });
    await repository.save(makeSnapshot(), { expectedVersion: null });
    await repository.close();

    const empty = prepareFile((database) => {
      database.exec('CREATE TABLE unrelated (id INTEGER)');
    });
    expectRefusedUntouched(empty, 'SCHEMA_MISMATCH', /migrate is false/, { migrate: false });
  });
});

/** The definitions of every ctx table and index in a file. */
function schemaOf(filename: string): unknown[] {
  const raw = new Database(filename, { readonly: true });
  const rows = raw
    .prepare("SELECT type, name, sql FROM sqlite_master WHERE name LIKE 'ctx_%' ORDER BY name")
    .all();
  raw.close();
  return rows;
}

// test/fixtures/schema-v1.db was written by @ctx/store-sqlite at schema version 1 (before
// tombstones), in rollback-journal mode, with a clock at 2025-01-01T00:00:00Z:
// - "v1-history": versions 1–4 by alice, historyLimit 3 (versions 2 and 3 in the history table);
// - "v1-anonymous": version 1, no owner, summary "héllo 😀", no goal, no plan, progress [];
// - "v1-expired": by bob, ttlMs one hour (expired since 2025-01-01T01:00:00Z);
// - "v1-live-ttl": by bob, expires in 2125.
const V1_FIXTURE = fileURLToPath(new URL('./fixtures/schema-v1.db', import.meta.url));
const V1_TIME = Date.UTC(2025, 0, 1);

/** A private copy of the version-1 fixture (the fixture itself is never opened for writing). */
function copyV1Fixture(): string {
  const filename = tempDatabasePath();
  copyFileSync(V1_FIXTURE, filename);
  return filename;
}

describe('upgrading a database written at schema version 1', () => {
  it('migrates to the current version and keeps every session and its history', async () => {
    const filename = copyV1Fixture();
    expect(metaRows(filename)).toEqual([{ table_name: 'ctx_sessions', schema_version: 1 }]);
    const repository = createSqliteRepository({ filename, historyLimit: 3 });
    expect(metaRows(filename)).toEqual([
      { table_name: 'ctx_sessions', schema_version: SQLITE_SCHEMA_VERSION },
    ]);

    const history = await repository.get('v1-history');
    expect(history).toMatchObject({ userId: 'alice', summary: 'version 4', version: 4 });
    expect((await repository.history!('v1-history')).map((item) => item.summary)).toEqual([
      'version 4',
      'version 3',
      'version 2',
    ]);
    expect(await repository.get('v1-anonymous')).toEqual({
      sessionId: 'v1-anonymous',
      userId: null,
      summary: 'héllo 😀',
      goal: null,
      plan: null,
      progress: [],
      createdAt: new Date(V1_TIME + 10),
      updatedAt: new Date(V1_TIME + 10),
      version: 1,
      fields: null,
    });
    expect(await repository.get('v1-expired')).toBeNull();
    expect((await repository.get('v1-live-ttl'))?.summary).toBe('expires in 2125');
    expect((await repository.list({ userId: 'bob' })).items.map((item) => item.sessionId)).toEqual([
      'v1-live-ttl',
    ]);

    // The upgraded table has the new behaviour: writes continue, deletes leave tombstones, and
    // the old expired row is taken over with the next version.
    const next = nextVersion(history!, 'version 5');
    expect((await repository.save(next, { expectedVersion: 4 })).version).toBe(5);
    expect(await repository.delete('v1-history', { userId: 'alice' })).toBe(true);
    const reborn = makeSnapshot({ sessionId: 'v1-history' });
    expect((await repository.save(reborn, { expectedVersion: null })).version).toBe(6);
    const expired = makeSnapshot({ sessionId: 'v1-expired' });
    expect((await repository.save(expired, { expectedVersion: null })).version).toBe(2);
    await repository.close();

    // The upgraded schema is the one a new file gets.
    const fresh = tempDatabasePath();
    await createSqliteRepository({ filename: fresh }).close();
    expect(schemaOf(filename)).toEqual(schemaOf(fresh));

    // Reopening does not migrate again.
    const again = createSqliteRepository({ filename, migrate: false });
    expect((await again.get('v1-history'))?.version).toBe(6);
    await again.close();
  });

  it('purgeExpired reclaims a version-1 expired row (its tombstone is past retention)', async () => {
    const filename = copyV1Fixture();
    const repository = createSqliteRepository({ filename });
    expect(await repository.purgeExpired()).toBe(1);
    await repository.close();
    const raw = new Database(filename, { readonly: true });
    expect(
      raw
        .prepare(
          "SELECT summary, user_id, version, deleted_at FROM ctx_sessions WHERE session_id = 'v1-expired'",
        )
        .get(),
    ).toBeUndefined();
    expect(raw.prepare('SELECT count(*) FROM ctx_sessions').pluck().get()).toBe(3);
    raw.close();
  });

  it('with migrate: false refuses a version-1 table, and leaves the file untouched', () => {
    const filename = copyV1Fixture();
    expectRefusedUntouched(
      filename,
      'SCHEMA_MISMATCH',
      new RegExp(
        `is at schema version 1, this code needs ${SQLITE_SCHEMA_VERSION}, and migrate is false`,
      ),
      { migrate: false },
    );
  });
});

// test/fixtures/schema-v2.db was written by @ctx/store-sqlite at schema version 2 (tombstones,
// before the turn log), in rollback-journal mode, with a clock at 2025-06-01T00:00:00Z (T):
// - "v2-history": versions 1–4 by alice, historyLimit 3 (versions 2 and 3 in the history table);
// - "v2-deleted": versions 1–2 by bob, then deleted at T+20: a tombstone at version 2;
// - "v2-anonymous": version 1, no owner, summary "héllo 😀", goal "Goal", plan ["a","b"],
//   progress [], updated at T+30;
// - "v2-expired": by bob, ttlMs one hour, written at T+40 (expired since).
const V2_FIXTURE = fileURLToPath(new URL('./fixtures/schema-v2.db', import.meta.url));
const V2_TIME = Date.UTC(2025, 5, 1);

function copyV2Fixture(): string {
  const filename = tempDatabasePath();
  copyFileSync(V2_FIXTURE, filename);
  return filename;
}

describe('upgrading a database written at schema version 2', () => {
  it('adds the turn log and keeps every session, tombstone and history', async () => {
    const filename = copyV2Fixture();
    expect(metaRows(filename)).toEqual([{ table_name: 'ctx_sessions', schema_version: 2 }]);
    const repository = createSqliteRepository({ filename, historyLimit: 3 });
    expect(metaRows(filename)).toEqual([
      { table_name: 'ctx_sessions', schema_version: SQLITE_SCHEMA_VERSION },
    ]);

    const history = await repository.get('v2-history');
    expect(history).toMatchObject({ userId: 'alice', summary: 'version 4', version: 4 });
    expect((await repository.history!('v2-history')).map((item) => item.summary)).toEqual([
      'version 4',
      'version 3',
      'version 2',
    ]);
    expect(await repository.get('v2-anonymous')).toEqual({
      sessionId: 'v2-anonymous',
      userId: null,
      summary: 'héllo 😀',
      goal: 'Goal',
      plan: ['a', 'b'],
      progress: [],
      createdAt: new Date(V2_TIME),
      updatedAt: new Date(V2_TIME + 30),
      version: 1,
      fields: null,
    });
    // Schema version 4 added the custom-fields column: older rows and history read as null, and
    // the upgraded file stores fields.
    expect((await repository.history!('v2-history')).map((item) => item.fields)).toEqual([
      null,
      null,
      null,
    ]);
    const anonymous = (await repository.get('v2-anonymous'))!;
    const withFields = {
      ...nextVersion(anonymous, 'with fields'),
      fields: { platform: 'fly', regions: ['fra', 'ams'], nested: { ok: true } },
    };
    await repository.save(withFields, { expectedVersion: 1 });
    expect((await repository.get('v2-anonymous'))?.fields).toEqual({
      nested: { ok: true },
      platform: 'fly',
      regions: ['fra', 'ams'],
    });
    expect(await repository.get('v2-deleted')).toBeNull();
    expect(await repository.get('v2-expired')).toBeNull();

    // The tombstone still keeps the deleted session's versions from restarting.
    const reborn = makeSnapshot({ sessionId: 'v2-deleted' });
    expect((await repository.save(reborn, { expectedVersion: null })).version).toBe(3);
    // The turn log works on the upgraded file, folds included.
    const turn: TurnInput = {
      turnId: 'turn-1',
      userId: 'alice',
      messages: [{ role: 'user', content: 'hi' }],
    };
    expect(await repository.recordTurn('v2-history', turn)).toMatchObject({
      duplicate: false,
    });
    await repository.save(nextVersion(history!, 'version 5'), {
      expectedVersion: 4,
      foldedTurnIds: ['turn-1'],
    });
    expect(await repository.pendingTurns('v2-history')).toEqual([]);
    expect((await repository.recordTurn('v2-history', turn)).duplicate).toBe(true);
    await repository.close();

    const fresh = tempDatabasePath();
    await createSqliteRepository({ filename: fresh }).close();
    expect(schemaOf(filename)).toEqual(schemaOf(fresh));
    const again = createSqliteRepository({ filename, migrate: false });
    expect((await again.get('v2-history'))?.version).toBe(5);
    await again.close();
  });

  it('with migrate: false refuses a version-2 table, and leaves the file untouched', () => {
    expectRefusedUntouched(
      copyV2Fixture(),
      'SCHEMA_MISMATCH',
      /is at schema version 2, this code needs \d+, and migrate is false/,
      { migrate: false },
    );
  });

  it('refuses to upgrade when a name the turn log needs is taken, and leaves the file untouched', () => {
    const filename = copyV2Fixture();
    const raw = new Database(filename);
    raw.exec('CREATE TABLE ctx_sessions_leases (anything TEXT)');
    raw.close();
    expectRefusedUntouched(
      filename,
      'SCHEMA_MISMATCH',
      /"ctx_sessions_leases", which the upgrade of table "ctx_sessions" from schema version 2 would create/,
    );
  });
});

describe('refusing a database that is not ours', () => {
  it('refuses a file of random bytes with SCHEMA_MISMATCH and leaves it byte for byte', () => {
    const filename = tempDatabasePath('notes.db');
    writeFileSync(filename, randomBytes(64 * 1024));
    expectRefusedUntouched(filename, 'SCHEMA_MISMATCH', /is not a SQLite database/);
  });

  it('refuses an injected Database on a non-SQLite file without closing it', () => {
    const filename = tempDatabasePath('notes.db');
    const content = randomBytes(4096);
    writeFileSync(filename, content);
    const database = new Database(filename);
    const error = thrownBy(() => createSqliteRepository({ database }));
    expect(ContextError.hasCode(error, 'SCHEMA_MISMATCH')).toBe(true);
    expect((error as Error).cause).toMatchObject({ code: 'SQLITE_NOTADB' });
    expect(database.open).toBe(true);
    database.close();
    expect(readFileSync(filename).equals(content)).toBe(true);
  });

  it('refuses a schema newer than this code, and leaves the file untouched', async () => {
    const filename = tempDatabasePath();
    await createSqliteRepository({ filename }).close();
    const raw = new Database(filename);
    raw.pragma('journal_mode = DELETE');
    raw
      .prepare(`UPDATE ${SQLITE_META_TABLE} SET schema_version = ?`)
      .run(SQLITE_SCHEMA_VERSION + 1);
    raw.close();
    expectRefusedUntouched(filename, 'SCHEMA_MISMATCH', /upgrade @ctx\/store-sqlite/);
  });

  it('refuses when a table with our name exists but ctx did not create it', () => {
    const filename = prepareFile((database) => {
      database.exec(
        "CREATE TABLE ctx_sessions (id TEXT); INSERT INTO ctx_sessions VALUES ('mine')",
      );
    });
    expectRefusedUntouched(filename, 'SCHEMA_MISMATCH', /"ctx_sessions".*choose another tableName/);
    // Another table name is free, so that works in the same file.
    const repository = createSqliteRepository({ filename, tableName: 'agent_context' });
    expect(repository.tableName).toBe('agent_context');
    return repository.close();
  });

  it('refuses when our history table name is taken', () => {
    const filename = prepareFile((database) => {
      database.exec('CREATE TABLE ctx_sessions_history (anything TEXT)');
    });
    expectRefusedUntouched(filename, 'SCHEMA_MISMATCH', /"ctx_sessions_history"/);
  });

  it('refuses a ctx_meta table that ctx did not create', () => {
    const filename = prepareFile((database) => {
      database.exec('CREATE TABLE ctx_meta (key TEXT, value TEXT)');
    });
    expectRefusedUntouched(
      filename,
      'SCHEMA_MISMATCH',
      /"ctx_meta" object that ctx did not create/,
    );
  });

  it('refuses a database whose session table was dropped behind ctx_meta', async () => {
    const filename = tempDatabasePath();
    await createSqliteRepository({ filename }).close();
    const raw = new Database(filename);
    raw.pragma('journal_mode = DELETE');
    raw.exec('DROP TABLE ctx_sessions');
    raw.close();
    expectRefusedUntouched(filename, 'SCHEMA_MISMATCH', /"ctx_sessions" is missing/);
  });

  it('refuses a database whose turn table was dropped behind ctx_meta', async () => {
    const filename = tempDatabasePath();
    await createSqliteRepository({ filename }).close();
    const raw = new Database(filename);
    raw.pragma('journal_mode = DELETE');
    raw.exec('DROP TABLE ctx_sessions_turns');
    raw.close();
    expectRefusedUntouched(filename, 'SCHEMA_MISMATCH', /"ctx_sessions_turns" is missing/);
  });

  it('refuses a session table whose columns were altered', async () => {
    const filename = tempDatabasePath();
    await createSqliteRepository({ filename }).close();
    const raw = new Database(filename);
    raw.pragma('journal_mode = DELETE');
    raw.exec(
      'DROP INDEX ctx_sessions_expires_idx; ALTER TABLE ctx_sessions DROP COLUMN expires_at',
    );
    raw.close();
    const error = thrownBy(() => createSqliteRepository({ filename }));
    expect(ContextError.hasCode(error, 'SCHEMA_MISMATCH')).toBe(true);
    expect((error as Error).message).toContain(
      `does not have the layout of schema version ${SQLITE_SCHEMA_VERSION}`,
    );
  });
});
