import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ContextRepository, createMemoryRepository } from '@ctx/core';
import { createPostgresRepository } from '@ctx/store-postgres';
import { createSqliteRepository } from '@ctx/store-sqlite';
import { Redis } from 'ioredis';
import { DataSource } from 'typeorm';

/** The shared PostgreSQL server; a suite that cannot reach it fails. */
export const POSTGRES_URL =
  process.env.CTX_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
/** The shared Redis server; a suite that cannot reach it fails. */
export const REDIS_URL = process.env.CTX_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The shared MySQL/MariaDB server; a suite that cannot reach it fails. */
export const MYSQL_URL = process.env.CTX_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

export type BackendName = 'memory' | 'sqlite' | 'postgres' | 'redis' | 'mysql';

/** Every store the suites run on, in the order they appear in test names. */
export const BACKENDS: readonly BackendName[] = ['memory', 'sqlite', 'postgres', 'redis', 'mysql'];

/** One isolated namespace on one store: a temp file, a random schema or a random key prefix. */
export interface Backend {
  readonly name: BackendName;
  /** The repository every test of the suite shares. */
  readonly repository: ContextRepository;
  /** What a child process needs to open a repository on the same namespace. */
  readonly connection: BackendConnection;
  /** Closes the repository and removes the namespace. */
  dispose(): Promise<void>;
}

/** Serializable connection details, handed to child processes. */
export type BackendConnection =
  | { kind: 'memory' }
  | { kind: 'sqlite'; filename: string }
  | { kind: 'postgres'; url: string; schema: string }
  | { kind: 'redis'; url: string; keyPrefix: string }
  | { kind: 'mysql'; url: string; tableName: string };

/** A label plus random hex, for ids no other run uses. */
export function randomId(label: string): string {
  return `${label}-${randomBytes(8).toString('hex')}`;
}

/** Opens a fresh, isolated namespace on `name`. */
export async function openBackend(name: BackendName): Promise<Backend> {
  switch (name) {
    case 'memory': {
      const repository = createMemoryRepository();
      return {
        name,
        repository,
        connection: { kind: 'memory' },
        dispose: () => repository.close(),
      };
    }
    case 'sqlite': {
      const folder = mkdtempSync(join(tmpdir(), 'ctx-reliability-'));
      const filename = join(folder, 'ctx.db');
      const repository = createSqliteRepository({ filename });
      return {
        name,
        repository,
        connection: { kind: 'sqlite', filename },
        async dispose() {
          await repository.close();
          rmSync(folder, { recursive: true, force: true });
        },
      };
    }
    case 'postgres': {
      const schema = `ctx_rel_${randomBytes(6).toString('hex')}`;
      const repository = createPostgresRepository({ url: POSTGRES_URL, schema });
      await repository.migrate();
      return {
        name,
        repository,
        connection: { kind: 'postgres', url: POSTGRES_URL, schema },
        async dispose() {
          await repository.close();
          await dropPostgresSchema(schema);
        },
      };
    }
    case 'redis': {
      // Loaded on demand: a missing or broken Redis adapter fails the Redis suites only.
      const { createRedisRepository } = await import('@ctx/store-redis');
      const keyPrefix = `ctx-rel-${randomBytes(6).toString('hex')}`;
      const repository = createRedisRepository({ url: REDIS_URL, keyPrefix });
      // Fails the suite at once when the server is unreachable.
      await repository.get(randomId('ping'));
      return {
        name,
        repository,
        connection: { kind: 'redis', url: REDIS_URL, keyPrefix },
        async dispose() {
          await repository.close();
          await deleteRedisPrefix(REDIS_URL, keyPrefix);
        },
      };
    }
    case 'mysql': {
      const { createMysqlRepository } = await import('@ctx/store-mysql');
      const tableName = `ctx_rel_${randomBytes(6).toString('hex')}`;
      const repository = createMysqlRepository({ url: MYSQL_URL, tableName });
      await repository.get(randomId('ping'));
      return {
        name,
        repository,
        connection: { kind: 'mysql', url: MYSQL_URL, tableName },
        async dispose() {
          await repository.close();
          await dropMysqlTables(tableName);
        },
      };
    }
  }
}

/** Drops a MySQL session table and its history table, on a connection of its own. */
export async function dropMysqlTables(tableName: string, url = MYSQL_URL): Promise<void> {
  const { createConnection } = await import('mysql2/promise');
  const connection = await createConnection(url);
  try {
    await connection.query(
      `DROP TABLE IF EXISTS \`${tableName}_turns\`, \`${tableName}_leases\`, \`${tableName}_history\`, \`${tableName}\``,
    );
  } finally {
    await connection.end();
  }
}

/** Drops a PostgreSQL schema and everything in it, on a connection of its own. */
export async function dropPostgresSchema(schema: string, url = POSTGRES_URL): Promise<void> {
  const dataSource = new DataSource({ type: 'postgres', url, poolSize: 1 });
  await dataSource.initialize();
  try {
    await dataSource.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await dataSource.destroy();
  }
}

/** Deletes every key of a repository's prefix (`{prefix}:*`), through a raw client. */
export async function deleteRedisPrefix(url: string, keyPrefix: string): Promise<void> {
  const client = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  client.on('error', () => undefined);
  try {
    await client.connect();
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `{${keyPrefix}}:*`, 'COUNT', 1000);
      if (keys.length > 0) await client.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}
