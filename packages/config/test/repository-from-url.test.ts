import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContextError, type ContextRepository } from '@ctx/core';
import { createRedisKeyLayout } from '@ctx/store-redis';
import { Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRepositoryFromUrl } from '../src/index.js';
import { POSTGRES_URL, REDIS_URL, randomName, sampleSnapshot, withQuery } from './helpers.js';

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

describe('memory:', () => {
  it('creates the in-process repository with options from the URL', async () => {
    const repository = await open('memory:?ttl=1h&history=3');
    expect(repository.capabilities).toEqual({ ttl: true, history: true });
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
    });
    expect((await open('memory:?history=0', { historyLimit: 5 })).capabilities?.history).toBe(
      false,
    );
    expect((await open('memory:?history=2', { historyLimit: 0 })).capabilities?.history).toBe(true);
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
    expect(writer.capabilities).toEqual({ ttl: true, history: true });
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
    expect(first.capabilities).toEqual({ ttl: true, history: true });
    await roundTrip(first, second);
    const rows: Array<{ table_name: string }> = await admin.query(
      'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1',
      [schema],
    );
    expect(rows.map((row) => row.table_name)).toEqual([
      'ctx_migrations',
      'snapshots',
      'snapshots_history',
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
    expect(first.capabilities).toEqual({ ttl: true, history: true });
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

describe('invalid URLs', () => {
  it('rejects before importing anything', async () => {
    const error = await createRepositoryFromUrl('mongodb://localhost/ctx').catch(
      (caught: unknown) => caught,
    );
    expect(ContextError.hasCode(error, 'INVALID_CONFIG')).toBe(true);
    expect((error as Error).message).toContain('Supported schemes');
  });
});
