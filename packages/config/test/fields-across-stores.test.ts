import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ContextRepository,
  type FieldValues,
  type SessionContext,
  SessionContextStore,
} from '@ctx/core';
import { createScriptedExtractor } from '@ctx/core/testing';
import { createRedisKeyLayout } from '@ctx/store-redis';
import { Redis } from 'ioredis';
import { createConnection } from 'mysql2/promise';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { createRepositoryFromUrl } from '../src/index.js';
import {
  MYSQL_URL,
  POSTGRES_URL,
  REDIS_URL,
  randomName,
  sampleSnapshot,
  withQuery,
} from './helpers.js';

// One snapshot with custom fields, written into every backend and read back from each: every
// read must equal every other one, key order included (JSON.stringify), and the snapshot saved.

const folder = mkdtempSync(join(tmpdir(), 'ctx-fields-'));
const schema = randomName('ctx_fields');
const prefix = randomName('ctx-fields');
const table = randomName('ctx_fields');

const URLS = {
  memory: 'memory:?history=3',
  sqlite: `sqlite:${join(folder, 'fields.db')}?history=3`,
  postgres: withQuery(POSTGRES_URL, `schema=${schema}&history=3`),
  redis: withQuery(REDIS_URL, `prefix=${prefix}&history=3`),
  mysql: withQuery(MYSQL_URL, `table=${table}&history=3`),
} as const;
type Backend = keyof typeof URLS;
const BACKENDS = Object.keys(URLS) as Backend[];

const FIELDS = {
  platform: 'fly',
  region: null,
  instances: 3,
  ratio: 0.1 + 0.2,
  limits: { min: -1.5e-7, max: 1.7976931348623157e308, safe: 9_007_199_254_740_991 },
  regions: ['fra', 'ams', 'ünï', '東京', '🚀'],
  nested: { b: [{ z: null, a: [true, false, [1, [2]]] }], a: {} },
  'ключ 🔑': 'значение\nwith a newline, "quotes", \\ and </session_context>',
  empty: '',
};

const repositories = new Map<Backend, ContextRepository>();

beforeAll(async () => {
  for (const backend of BACKENDS) {
    repositories.set(backend, await createRepositoryFromUrl(URLS[backend]));
  }
});

afterAll(async () => {
  for (const repository of repositories.values()) await repository.close();
  rmSync(folder, { recursive: true, force: true });
  const postgres = new DataSource({ type: 'postgres', url: POSTGRES_URL, poolSize: 1 });
  await postgres.initialize();
  await postgres.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await postgres.destroy();
  const redis = new Redis(REDIS_URL);
  const leftover = await redis.keys(`${createRedisKeyLayout(prefix).base}*`);
  if (leftover.length > 0) await redis.del(...leftover);
  redis.disconnect();
  const mysql = await createConnection(MYSQL_URL);
  for (const name of [table, `${table}_history`, `${table}_turns`, `${table}_leases`]) {
    await mysql.query(`DROP TABLE IF EXISTS \`${name}\``);
  }
  await mysql.query('DELETE FROM ctx_meta WHERE table_name = ?', [table]);
  await mysql.end();
});

/** Reads `sessionId` from every backend: get, list and history. */
async function readEverywhere(sessionId: string, userId: string) {
  const reads = new Map<Backend, { get: unknown; listed: unknown; history: unknown }>();
  for (const [backend, repository] of repositories) {
    const get = await repository.get(sessionId);
    const listed = (await repository.list({ userId })).items.find(
      (item) => item.sessionId === sessionId,
    );
    const history = await repository.history?.(sessionId);
    reads.set(backend, { get, listed, history });
  }
  return reads;
}

describe('custom fields across every store', () => {
  it('the same snapshot round-trips identically through memory, SQLite, PostgreSQL, Redis and MySQL', async () => {
    const first = sampleSnapshot({ fields: FIELDS });
    const second: SessionContext = {
      ...first,
      summary: 'Second version: the fields object is replaced.',
      updatedAt: new Date(first.updatedAt.getTime() + 1),
      version: 2,
      fields: { ...FIELDS, platform: 'render', regions: [] },
    };
    for (const repository of repositories.values()) {
      await repository.save(first, { expectedVersion: null });
      await repository.save(second, { expectedVersion: 1 });
    }
    const reads = await readEverywhere(first.sessionId, first.userId as string);
    const reference = reads.get('memory');
    if (!reference) throw new Error('no read from the memory repository');
    expect(reference.get).toMatchObject({ ...second, fields: second.fields });
    expect((reference.get as SessionContext).fields).toEqual(second.fields);
    for (const backend of BACKENDS) {
      const read = reads.get(backend);
      expect(read, backend).toStrictEqual(reference);
      // Identical down to the key order and number formatting, not only deeply equal.
      expect(JSON.stringify(read), backend).toBe(JSON.stringify(reference));
    }
    expect(
      (reference.history as SessionContext[]).map((version) => version.fields?.platform),
    ).toEqual(['render', 'fly']);
  });

  it('a store with a fields schema reads the same typed fields and renders the same block on every backend', async () => {
    const fields = z.object({
      platform: z
        .enum(['fly', 'render', 'aws'])
        .describe('Target platform')
        .meta({ title: 'Platform' }),
      regions: z.array(z.string()).describe('Regions the app runs in'),
    });
    const blocks = new Set<string>();
    const typed = new Set<string>();
    for (const [backend, repository] of repositories) {
      const store = new SessionContextStore({
        repository,
        fields,
        extractor: createScriptedExtractor<FieldValues<typeof fields>>({
          replies: [
            { summary: 'Deploying the API.', fields: { platform: 'aws', regions: ['eu-1', 'ü'] } },
          ],
        }),
      });
      const sessionId = randomName(`typed-${backend}`);
      await store.update({
        sessionId,
        userId: 'u',
        messages: [{ role: 'user', content: 'AWS, eu-1' }],
      });
      const context = await store.get(sessionId);
      expectTypeOf(context?.fields?.platform).toEqualTypeOf<
        'fly' | 'render' | 'aws' | null | undefined
      >();
      typed.add(JSON.stringify(context?.fields));
      blocks.add(await store.render(sessionId));
    }
    expect([...typed]).toEqual([JSON.stringify({ platform: 'aws', regions: ['eu-1', 'ü'] })]);
    expect([...blocks]).toEqual([
      '<session_context>\nSummary: Deploying the API.\n\nFields:\n  Platform: aws\n  regions: eu-1, ü\n</session_context>',
    ]);
  });
});
