import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContextError, type ContextRepository } from '@ctx/core';
import { createRedisKeyLayout } from '@ctx/store-redis';
import { Redis } from 'ioredis';
import { createConnection } from 'mysql2/promise';
import { DataSource } from 'typeorm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRepositoryFromUrl } from '../src/index.js';
import {
  MYSQL_URL,
  POSTGRES_URL,
  REDIS_URL,
  randomName,
  sampleSnapshot,
  withQuery,
} from './helpers.js';

const opened: ContextRepository[] = [];
async function open(
  url: string,
  options?: Parameters<typeof createRepositoryFromUrl>[1],
): Promise<ContextRepository> {
  const repository = await createRepositoryFromUrl(url, options);
  opened.push(repository);
  return repository;
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((repository) => repository.close()));
});

/** Saves a snapshot through one repository and reads it back through a second, independent one. */
async function roundTrip(first: ContextRepository, second: ContextRepository): Promise<void> {
  const snapshot = sampleSnapshot();
  expect(await first.save(snapshot, { expectedVersion: null })).toEqual(snapshot);
  expect(await second.get(snapshot.sessionId)).toEqual(snapshot);
  const page = await second.list({ userId: snapshot.userId as string, limit: 10 });
  expect(page.items.map((item) => item.sessionId)).toContain(snapshot.sessionId);
  expect(await second.delete(snapshot.sessionId)).toBe(true);
  expect(await first.get(snapshot.sessionId)).toBeNull();
}

/**
 * Deletes a session, waits, purges, and re-creates it: the version the re-created session gets is
 * 2 while the tombstone is kept, 1 once the purge forgot it.
 */
async function versionAfterPurgedDelete(repository: ContextRepository): Promise<number> {
  const snapshot = sampleSnapshot();
  await repository.save(snapshot, { expectedVersion: null });
  expect(await repository.delete(snapshot.sessionId)).toBe(true);
  await new Promise((resolve) => setTimeout(resolve, 20));
  await repository.purgeExpired?.();
  return (await repository.save(snapshot, { expectedVersion: null })).version;
}

describe('memory:', () => {
  it('creates the in-process repository with options from the URL', async () => {
    const repository = await open('memory:?ttl=1h&history=3');
    expect(repository.capabilities).toEqual({
      ttl: true,
      history: true,
      turnLog: true,
      fields: true,
    });
    const snapshot = sampleSnapshot();
    await repository.save(snapshot, { expectedVersion: null });
    await repository.save({ ...snapshot, version: 2, summary: 'second' }, { expectedVersion: 1 });
    expect((await repository.history?.(snapshot.sessionId))?.map((item) => item.version)).toEqual([
      2, 1,
    ]);
  });

  it('lets URL parameters override the options given in code', async () => {
    expect((await open('memory:', { ttlMs: 1000 })).capabilities).toEqual({
      ttl: true,
      history: false,
      turnLog: true,
      fields: true,
    });
    expect((await open('memory:?history=0', { historyLimit: 5 })).capabilities?.history).toBe(
      false,
    );
    expect((await open('memory:?history=2', { historyLimit: 0 })).capabilities?.history).toBe(true);
  });

  it('keeps tombstones for tombstoneRetentionMs, with ?tombstones= winning over the code', async () => {
    expect(await versionAfterPurgedDelete(await open('memory:'))).toBe(2);
    expect(await versionAfterPurgedDelete(await open('memory:', { tombstoneRetentionMs: 1 }))).toBe(
      1,
    );
    expect(
      await versionAfterPurgedDelete(
        await open('memory:?tombstones=1ms', { tombstoneRetentionMs: 86_400_000 }),
      ),
    ).toBe(1);
    expect(
      await versionAfterPurgedDelete(
        await open('memory:?tombstones=1d', { tombstoneRetentionMs: 1 }),
      ),
    ).toBe(2);
  });

  it('passes maxPendingTurns to the turn log', async () => {
    const repository = await open('memory:', { maxPendingTurns: 1 });
    const turn = (turnId: string) => ({
      turnId,
      userId: null,
      messages: [{ role: 'user' as const, content: 'hello' }],
    });
    await repository.recordTurn?.('s', turn('t1'));
    const refused = await repository.recordTurn?.('s', turn('t2')).catch((error: unknown) => error);
    expect(ContextError.hasCode(refused, 'BACKPRESSURE')).toBe(true);
  });
});

describe('sqlite:', () => {
  const folder = mkdtempSync(join(tmpdir(), 'ctx-config-'));
  afterAll(() => rmSync(folder, { recursive: true, force: true }));

  it('round-trips a snapshot through a file, across two repositories', async () => {
    const filename = join(folder, 'nested', 'ctx.db');
    const first = await open(`sqlite:${filename}`);
    const second = await open(`sqlite://${filename}`);
    expect(existsSync(filename)).toBe(true);
    await roundTrip(first, second);
  });

  it('survives closing: a new repository on the same file sees what was saved', async () => {
    const url = `sqlite:${join(folder, 'persist.db')}?table=agent_ctx&history=2&ttl=1h`;
    const writer = await createRepositoryFromUrl(url);
    expect(writer.capabilities).toEqual({ ttl: true, history: true, turnLog: true, fields: true });
    const snapshot = sampleSnapshot();
    await writer.save(snapshot, { expectedVersion: null });
    await writer.close();
    const reader = await open(url);
    expect(await reader.get(snapshot.sessionId)).toEqual(snapshot);
    expect(typeof reader.purgeExpired).toBe('function');
    expect(await reader.purgeExpired?.()).toBe(0);
  });

  it('keeps tables apart by ?table=', async () => {
    const file = join(folder, 'tables.db');
    const a = await open(`sqlite:${file}?table=table_a`);
    const b = await open(`sqlite:${file}?table=table_b`);
    const snapshot = sampleSnapshot();
    await a.save(snapshot, { expectedVersion: null });
    expect(await b.get(snapshot.sessionId)).toBeNull();
  });

  it('with migrate: false refuses a file that was never migrated', async () => {
    const error = await createRepositoryFromUrl(`sqlite:${join(folder, 'fresh.db')}`, {
      migrate: false,
    }).catch((caught: unknown) => caught);
    expect(ContextError.hasCode(error, 'SCHEMA_MISMATCH')).toBe(true);
  });

  it('passes an invalid table name to the adapter, which refuses it', async () => {
    const error = await createRepositoryFromUrl(
      `sqlite:${join(folder, 'bad.db')}?table=Bad-Name`,
    ).catch((caught: unknown) => caught);
    expect(ContextError.hasCode(error, 'INVALID_CONFIG')).toBe(true);
  });
});

describe('postgres://', () => {
  const schema = randomName('ctx_config');
  const admin = new DataSource({ type: 'postgres', url: POSTGRES_URL, poolSize: 1 });
  beforeAll(async () => {
    await admin.initialize();
  });
  afterAll(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.destroy();
  });

  it('migrates on first use and round-trips a snapshot across two pools', async () => {
    const url = withQuery(POSTGRES_URL, `schema=${schema}&table=snapshots&history=3&ttl=1d`);
    const first = await open(url);
    const second = await open(url.replace(/^postgres:/, 'postgresql:'));
    expect(first.capabilities).toEqual({ ttl: true, history: true, turnLog: true, fields: true });
    await roundTrip(first, second);
    const rows: Array<{ table_name: string }> = await admin.query(
      'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1',
      [schema],
    );
    expect(rows.map((row) => row.table_name)).toEqual([
      'ctx_migrations',
      'snapshots',
      'snapshots_history',
      'snapshots_leases',
      'snapshots_turns',
    ]);
  });

  it('with migrate: false fails with SCHEMA_MISMATCH on tables that do not exist', async () => {
    const repository = await open(withQuery(POSTGRES_URL, `schema=${schema}&table=not_migrated`), {
      migrate: false,
    });
    const error = await repository.get('anything').catch((caught: unknown) => caught);
    expect(ContextError.hasCode(error, 'SCHEMA_MISMATCH')).toBe(true);
  });

  it('fails with STORAGE_UNAVAILABLE, quickly, when the server is unreachable', async () => {
    const repository = await open('postgres://postgres@127.0.0.1:1/test', {
      connectTimeoutMs: 1000,
    });
    const started = Date.now();
    const error = await repository.get('anything').catch((caught: unknown) => caught);
    expect(ContextError.hasCode(error, 'STORAGE_UNAVAILABLE')).toBe(true);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('redis://', () => {
  const prefix = randomName('ctx-config');
  const keys = createRedisKeyLayout(prefix);
  const raw = new Redis(REDIS_URL);
  afterAll(async () => {
    const leftover = await raw.keys(`{${prefix}}:*`);
    if (leftover.length > 0) await raw.del(...leftover);
    raw.disconnect();
  });

  it('round-trips a snapshot across two clients, under the prefix from the URL', async () => {
    const url = withQuery(REDIS_URL, `prefix=${prefix}&ttl=1h&history=2`);
    const first = await open(url);
    const second = await open(url);
    expect(first.capabilities).toEqual({ ttl: true, history: true, turnLog: true, fields: true });
    const snapshot = sampleSnapshot();
    await first.save(snapshot, { expectedVersion: null });
    expect(await raw.exists(keys.session(snapshot.sessionId))).toBe(1);
    const ttl = await raw.pttl(keys.session(snapshot.sessionId));
    expect(ttl).toBeGreaterThan(3_500_000);
    expect(ttl).toBeLessThanOrEqual(3_600_000);
    expect(await second.get(snapshot.sessionId)).toEqual(snapshot);
    await roundTrip(first, second);
  });

  it('fails with STORAGE_UNAVAILABLE within the connect timeout when the server is unreachable', async () => {
    const repository = await open('redis://127.0.0.1:1', { connectTimeoutMs: 500 });
    const started = Date.now();
    const error = await repository.list().catch((caught: unknown) => caught);
    expect(ContextError.hasCode(error, 'STORAGE_UNAVAILABLE')).toBe(true);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});

describe('mysql:// and mariadb://', () => {
  const prefix = randomName('ctx_config');
  let admin: Awaited<ReturnType<typeof createConnection>>;
  beforeAll(async () => {
    admin = await createConnection(MYSQL_URL);
  });
  afterAll(async () => {
    const [rows] = await admin.query(
      'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE ?',
      [`${prefix}%`],
    );
    for (const { name } of rows as Array<{ name: string }>) {
      await admin.query(`DROP TABLE IF EXISTS \`${name}\``);
    }
    await admin.end();
  });

  async function tablesOf(table: string): Promise<string[]> {
    const [rows] = await admin.query(
      'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE ? ORDER BY 1',
      [`${table}%`],
    );
    return (rows as Array<{ name: string }>).map((row) => row.name);
  }

  it('migrates on first use and round-trips a snapshot across two pools', async () => {
    const table = `${prefix}_a`;
    const url = withQuery(MYSQL_URL, `table=${table}&history=3&ttl=1d&charset=utf8mb4`);
    const first = await open(url);
    const second = await open(url.replace(/^mysql:/, 'mariadb:'));
    expect(first.capabilities).toEqual({ ttl: true, history: true, turnLog: true, fields: true });
    expect((first as { tableName?: string }).tableName).toBe(table);
    await roundTrip(first, second);
    expect(await tablesOf(table)).toEqual([
      table,
      `${table}_history`,
      `${table}_leases`,
      `${table}_turns`,
    ]);
  });

  it('keeps history and expiry from the URL', async () => {
    const repository = await open(withQuery(MYSQL_URL, `table=${prefix}_b&history=2&ttl=1h`));
    const snapshot = sampleSnapshot();
    await repository.save(snapshot, { expectedVersion: null });
    await repository.save({ ...snapshot, version: 2, summary: 'second' }, { expectedVersion: 1 });
    await repository.save({ ...snapshot, version: 3, summary: 'third' }, { expectedVersion: 2 });
    expect((await repository.history?.(snapshot.sessionId))?.map((item) => item.version)).toEqual([
      3, 2,
    ]);
    expect(await repository.purgeExpired?.()).toBe(0);
  });

  it('keeps tombstones for ?tombstones=, winning over the code', async () => {
    const keeping = await open(withQuery(MYSQL_URL, `table=${prefix}_c`));
    expect(await versionAfterPurgedDelete(keeping)).toBe(2);
    const forgetful = await open(withQuery(MYSQL_URL, `table=${prefix}_d&tombstones=1ms`), {
      tombstoneRetentionMs: 86_400_000,
    });
    expect(await versionAfterPurgedDelete(forgetful)).toBe(1);
  });

  it('with migrate: false fails with SCHEMA_MISMATCH on tables that do not exist', async () => {
    const table = `${prefix}_never`;
    const error = await open(withQuery(MYSQL_URL, `table=${table}`), { migrate: false })
      .then((repository) => repository.get('anything'))
      .catch((caught: unknown) => caught);
    expect(ContextError.hasCode(error, 'SCHEMA_MISMATCH')).toBe(true);
    expect(await tablesOf(table)).toEqual([]);
  });

  it('passes an invalid table name to the adapter, which refuses it', async () => {
    const error = await createRepositoryFromUrl(withQuery(MYSQL_URL, 'table=Bad-Name')).catch(
      (caught: unknown) => caught,
    );
    expect(ContextError.hasCode(error, 'INVALID_CONFIG')).toBe(true);
  });

  it('fails with STORAGE_UNAVAILABLE within connectTimeoutMs when the server never answers', async () => {
    // Accepts connections and never sends MySQL's greeting.
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    try {
      const repository = await open(`mysql://root:hunter2@127.0.0.1:${port}/test`, {
        connectTimeoutMs: 500,
      });
      const started = Date.now();
      const error = await repository.get('anything').catch((caught: unknown) => caught);
      expect(ContextError.hasCode(error, 'STORAGE_UNAVAILABLE')).toBe(true);
      expect(Date.now() - started).toBeLessThan(5000);
      expect((error as Error).message).not.toContain('hunter2');
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});

describe('invalid URLs', () => {
  it('rejects before importing anything', async () => {
    const error = await createRepositoryFromUrl('mongodb://localhost/ctx').catch(
      (caught: unknown) => caught,
    );
    expect(ContextError.hasCode(error, 'INVALID_CONFIG')).toBe(true);
    expect((error as Error).message).toContain('Supported schemes');
  });
});
