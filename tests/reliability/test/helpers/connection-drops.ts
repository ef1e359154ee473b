import { randomBytes } from 'node:crypto';
import type { ContextRepository } from '@ctx/core';
import { createMysqlRepository, type MysqlRepository } from '@ctx/store-mysql';
import { createPostgresRepository, type PostgresRepository } from '@ctx/store-postgres';
import { createRedisRepository, type RedisRepository } from '@ctx/store-redis';
import { Redis } from 'ioredis';
import { createConnection, createPool } from 'mysql2/promise';
import { DataSource } from 'typeorm';
import {
  deleteRedisPrefix,
  dropMysqlTables,
  dropPostgresSchema,
  MYSQL_URL,
  POSTGRES_URL,
  REDIS_URL,
} from './backends.js';

/** The networked stores whose connections a test can drop without stopping the shared server. */
export type DroppableBackendName = 'postgres' | 'redis' | 'mysql';

/**
 * One isolated namespace with two repositories on it: `victim`, whose server-side connections
 * `kill()` terminates from an admin connection (the server itself drops them, as a proxy, a
 * failover or an idle-connection reaper would), and `healthy`, on connections of its own.
 */
export interface DroppableBackend {
  readonly name: DroppableBackendName;
  readonly victim: ContextRepository;
  readonly healthy: ContextRepository;
  /** Waits until the victim has a live connection and knows how to find it. Call before a round. */
  arm(): Promise<void>;
  /** Terminates every server-side connection of the victim now; resolves with how many. */
  kill(): Promise<number>;
  /** Resolves once the connections of the last `kill()` are gone on the server. */
  settle(): Promise<void>;
  /** Where the server listens (for a proxy in front of it). */
  readonly server: { host: string; port: number };
  /**
   * Opens one more repository on the namespace that connects to `127.0.0.1:<port>` instead of the
   * server (a proxy in front of it); `dispose()` closes it.
   */
  openVia(port: number): ContextRepository;
  /** Closes everything and removes the namespace. */
  dispose(): Promise<void>;
}

function serverOf(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  const defaults: Record<string, number> = { 'postgres:': 5432, 'redis:': 6379, 'mysql:': 3306 };
  return { host: parsed.hostname, port: Number(parsed.port || defaults[parsed.protocol]) };
}

function via(url: string, port: number): string {
  const parsed = new URL(url);
  parsed.hostname = '127.0.0.1';
  parsed.port = String(port);
  return parsed.href;
}

const hex = () => randomBytes(6).toString('hex');
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await pause(2);
  }
}

/**
 * PostgreSQL: the victim's pool connects with an `application_name` of its own (the adapter's
 * `applicationName` option), so `pg_terminate_backend` finds exactly its backends in
 * `pg_stat_activity`, however many the pool opened.
 */
async function openPostgres(): Promise<DroppableBackend> {
  const schema = `ctx_drop_${hex()}`;
  const applicationName = `ctx-drop-${hex()}`;
  const victim = createPostgresRepository({ url: POSTGRES_URL, schema, applicationName });
  const healthy = createPostgresRepository({ url: POSTGRES_URL, schema });
  await victim.migrate();
  const admin = new DataSource({ type: 'postgres', url: POSTGRES_URL, poolSize: 1 });
  await admin.initialize();
  let killed: number[] = [];
  const extra: PostgresRepository[] = [];
  return {
    name: 'postgres',
    victim,
    healthy,
    server: serverOf(POSTGRES_URL),
    openVia(port) {
      const repository = createPostgresRepository({ url: via(POSTGRES_URL, port), schema });
      extra.push(repository);
      return repository;
    },
    async arm() {
      await victim.get('warm-up');
    },
    async kill() {
      const rows: Array<{ pid: number }> = await admin.query(
        // Materialized first, so the planner can never call pg_terminate_backend on other rows.
        `WITH victims AS MATERIALIZED (SELECT pid FROM pg_stat_activity WHERE application_name = $1)
         SELECT pid FROM victims WHERE pg_terminate_backend(pid)`,
        [applicationName],
      );
      killed = rows.map((row) => Number(row.pid));
      return killed.length;
    },
    async settle() {
      if (killed.length === 0) return;
      await until(
        async () => {
          const rows: Array<{ alive: number }> = await admin.query(
            'SELECT count(*)::int AS alive FROM pg_stat_activity WHERE pid = ANY($1::int[])',
            [killed],
          );
          return rows[0]?.alive === 0;
        },
        `terminated PostgreSQL backends ${killed.join(', ')} to exit`,
      );
    },
    async dispose() {
      await Promise.allSettled([victim, healthy, ...extra].map((each) => each.close()));
      await admin.destroy();
      await dropPostgresSchema(schema);
    },
  };
}

/**
 * Redis: the victim's client has a `connectionName` (an ioredis option the adapter passes
 * through `redisOptions`); `arm()` looks its connection up in `CLIENT LIST` (the id changes with
 * every reconnection) and `kill()` is one `CLIENT KILL ID`.
 */
async function openRedis(): Promise<DroppableBackend> {
  const keyPrefix = `ctx-drop-${hex()}`;
  const connectionName = `ctx-drop-${hex()}`;
  const victim = createRedisRepository({
    url: REDIS_URL,
    keyPrefix,
    redisOptions: { connectionName },
  });
  const healthy = createRedisRepository({ url: REDIS_URL, keyPrefix });
  const admin = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  admin.on('error', () => undefined);
  let ids: string[] = [];
  let killed: string[] = [];
  const extra: RedisRepository[] = [];
  const lookUp = async () => {
    const list = (await admin.client('LIST')) as string;
    return list
      .split('\n')
      .filter((line) => line.split(' ').includes(`name=${connectionName}`))
      .map((line) => /(?:^| )id=(\d+)/.exec(line)?.[1])
      .filter((id): id is string => id !== undefined);
  };
  return {
    name: 'redis',
    victim,
    healthy,
    server: serverOf(REDIS_URL),
    openVia(port) {
      const repository = createRedisRepository({ url: via(REDIS_URL, port), keyPrefix });
      extra.push(repository);
      return repository;
    },
    async arm() {
      await victim.get('warm-up');
      await until(async () => {
        ids = await lookUp();
        return ids.length > 0;
      }, `the Redis connection named ${connectionName} to show in CLIENT LIST`);
    },
    async kill() {
      const replies = await Promise.all(
        ids.map((id) => admin.client('KILL', 'ID', id).catch(() => 0)),
      );
      killed = ids.filter((_, index) => Number(replies[index]) === 1);
      return killed.length;
    },
    async settle() {
      if (killed.length === 0) return;
      await until(
        async () => {
          const alive = await lookUp();
          return killed.every((id) => !alive.includes(id));
        },
        `killed Redis connections ${killed.join(', ')} to go`,
      );
    },
    async dispose() {
      await Promise.allSettled([victim, healthy, ...extra].map((each) => each.close()));
      await deleteRedisPrefix(REDIS_URL, keyPrefix);
      admin.disconnect();
    },
  };
}

/**
 * MySQL/MariaDB: the victim runs on an injected mysql2 pool, whose `connection` event gives each
 * new connection's thread id; `kill()` sends `KILL CONNECTION` for each of them.
 */
async function openMysql(): Promise<DroppableBackend> {
  const tableName = `ctx_drop_${hex()}`;
  const pool = createPool({ uri: MYSQL_URL, connectionLimit: 4 });
  const threads = new Set<number>();
  pool.on('connection', (connection) => {
    threads.add(connection.threadId);
  });
  const victim = createMysqlRepository({ pool, tableName });
  const healthy = createMysqlRepository({ url: MYSQL_URL, tableName });
  const admin = await createConnection(MYSQL_URL);
  let killed: number[] = [];
  const extra: MysqlRepository[] = [];
  return {
    name: 'mysql',
    victim,
    healthy,
    server: serverOf(MYSQL_URL),
    openVia(port) {
      const repository = createMysqlRepository({ url: via(MYSQL_URL, port), tableName });
      extra.push(repository);
      return repository;
    },
    async arm() {
      await victim.get('warm-up');
    },
    async kill() {
      killed = [];
      for (const thread of [...threads]) {
        try {
          await admin.query(`KILL CONNECTION ${Number(thread)}`);
          killed.push(thread);
        } catch {
          // Unknown thread: the pool closed that connection earlier.
        }
        threads.delete(thread);
      }
      return killed.length;
    },
    async settle() {
      if (killed.length === 0) return;
      await until(
        async () => {
          const [rows] = await admin.query(
            'SELECT COUNT(*) AS alive FROM information_schema.PROCESSLIST WHERE ID IN (?)',
            [killed],
          );
          return Number((rows as Array<{ alive: number }>)[0]?.alive) === 0;
        },
        `killed MySQL threads ${killed.join(', ')} to exit`,
      );
    },
    async dispose() {
      await Promise.allSettled([victim, healthy, ...extra].map((each) => each.close()));
      await pool.end();
      await admin.end();
      await dropMysqlTables(tableName);
    },
  };
}

/** Opens a fresh namespace on `name` with a victim and a healthy repository. */
export function openDroppableBackend(name: DroppableBackendName): Promise<DroppableBackend> {
  switch (name) {
    case 'postgres':
      return openPostgres();
    case 'redis':
      return openRedis();
    case 'mysql':
      return openMysql();
  }
}
