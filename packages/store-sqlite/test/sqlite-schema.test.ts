import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ContextError } from '@ctx/core';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createSqliteRepository,
  SQLITE_META_TABLE,
  SQLITE_SCHEMA_VERSION,
  type SqliteRepositoryOptions,
} from '../src/index.js';
import { makeSnapshot, removeTempFolders, tempDatabasePath, thrownBy } from './helpers.js';

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
    expect((error as Error).message).toMatch(/does not have the layout of schema version 1/);
  });
});
