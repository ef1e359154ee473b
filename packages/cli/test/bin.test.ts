import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_TABLE_NAME, POSTGRES_SCHEMA_VERSION } from '@ctx/store-postgres';
import { createRedisKeyLayout } from '@ctx/store-redis';
import { Redis } from 'ioredis';
import { createConnection } from 'mysql2/promise';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildBinary,
  MYSQL_URL,
  oneErrorLine,
  POSTGRES_URL,
  REDIS_URL,
  type RunResult,
  randomName,
  runBinary,
  seed,
  snapshot,
  withQuery,
} from './helpers.js';

beforeAll(async () => {
  await buildBinary();
});

function expectSuccess(result: RunResult): void {
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
}

/** The shape of every expected failure: the exit code, one `ctx: …` line and no stack trace. */
function expectFailure(result: RunResult, code: number): string {
  expect(result.code).toBe(code);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  return oneErrorLine(result.stderr);
}

describe('ctx (the binary) on a SQLite file', () => {
  const folder = mkdtempSync(join(tmpdir(), 'ctx-cli-bin-'));
  const store = `sqlite:${join(folder, 'ctx.db')}`;
  afterAll(() => rmSync(folder, { recursive: true, force: true }));

  it('starts with a shebang and answers --help and --version', async () => {
    const help = await runBinary(['--help']);
    expectSuccess(help);
    expect(help.stdout).toContain('Usage: ctx <command>');
    expect((await runBinary(['--version'])).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it('migrates, lists, gets, prints, renders and deletes', async () => {
    const migrated = await runBinary(['migrate', '--store', store]);
    expectSuccess(migrated);
    expect(migrated.stdout).toContain('was created');
    await seed(store, [
      snapshot('one', 1),
      snapshot('two', 2, { goal: 'Ship it', plan: ['Build', 'Test'], progress: ['Build'] }),
    ]);

    const list = await runBinary(['list'], { env: { CTX_STORE_URL: store } });
    expectSuccess(list);
    expect(
      list.stdout
        .split('\n')
        .slice(1, 3)
        .map((line) => line.split(' ')[0]),
    ).toEqual(['two', 'one']);

    const json = await runBinary(['list', '--json', '--store', store]);
    expect(JSON.parse(json.stdout).items[1]).toMatchObject({
      sessionId: 'one',
      updatedAt: '2026-01-15T09:01:00.250Z',
    });

    const got = await runBinary(['get', 'two', '--json', '--store', store]);
    expect(JSON.parse(got.stdout)).toMatchObject({ sessionId: 'two', plan: ['Build', 'Test'] });

    const printed = await runBinary(['print', 'two', '--store', store]);
    expect(printed.stdout).toContain('[x] 1. Build');

    const rendered = await runBinary(['render', 'two', '--store', store]);
    expect(rendered.stdout.startsWith('<session_context>\n')).toBe(true);
    expect(rendered.stdout.endsWith('</session_context>\n')).toBe(true);

    expectSuccess(await runBinary(['delete', 'one', '--store', store]));
    const missing = await runBinary(['get', 'one', '--store', store]);
    expect(expectFailure(missing, 1)).toContain('session "one" not found');
    expect(missing.stdout).toBe('');
  });

  it('exits 2 with one line on a usage error', async () => {
    const result = await runBinary(['lsit', '--store', store]);
    expect(expectFailure(result, 2)).toContain('unknown command "lsit"');
  });
});

describe('ctx (the binary) on PostgreSQL', () => {
  const schema = randomName('ctx_cli');
  const store = withQuery(POSTGRES_URL, `schema=${schema}`);
  const admin = new DataSource({ type: 'postgres', url: POSTGRES_URL, poolSize: 1 });
  beforeAll(async () => {
    await admin.initialize();
  });
  afterAll(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.destroy();
  });

  it('asks for ctx migrate before the tables exist, and never creates them itself', async () => {
    const result = await runBinary(['list', '--store', store]);
    expect(expectFailure(result, 1)).toContain('ctx migrate');
    const tables: unknown[] = await admin.query(
      'SELECT 1 FROM information_schema.tables WHERE table_schema = $1',
      [schema],
    );
    expect(tables).toHaveLength(0);
  });

  it('migrates once, then finds the tables up to date', async () => {
    const first = await runBinary(['migrate', '--store', store]);
    expectSuccess(first);
    expect(first.stdout).toMatch(
      new RegExp(
        `^Migrated PostgreSQL tables ${schema}\\.${DEFAULT_TABLE_NAME} to schema version ${POSTGRES_SCHEMA_VERSION} \\(applied `,
      ),
    );
    const second = await runBinary(['migrate', '--json', '--store', store]);
    expect(JSON.parse(second.stdout)).toEqual({
      store: 'postgres',
      table: `${schema}.${DEFAULT_TABLE_NAME}`,
      schemaVersion: POSTGRES_SCHEMA_VERSION,
      applied: [],
    });
  });

  it('lists, gets and deletes seeded sessions', async () => {
    await seed(store, [snapshot('pg-a', 1, { userId: 'carol' }), snapshot('pg-b', 2)]);
    const list = await runBinary(['list', '--user', 'carol', '--json', '--store', store]);
    expectSuccess(list);
    expect(JSON.parse(list.stdout)).toMatchObject({
      items: [{ sessionId: 'pg-a', userId: 'carol' }],
      nextCursor: null,
    });
    const got = await runBinary(['get', 'pg-b', '--store', store]);
    expect(got.stdout).toContain('updatedAt  2026-01-15T09:02:00.250Z');
    expectSuccess(await runBinary(['delete', 'pg-b', '--store', store]));
    expectFailure(await runBinary(['delete', 'pg-b', '--store', store]), 1);
  });

  it('purges expired sessions', async () => {
    const ttlStore = withQuery(store, 'ttl=200ms');
    const now = new Date();
    await seed(ttlStore, [snapshot('pg-expiring', 0, { createdAt: now, updatedAt: now })]);
    await new Promise((resolve) => setTimeout(resolve, 400));
    const result = await runBinary(['purge-expired', '--store', store]);
    expectSuccess(result);
    expect(result.stdout).toBe('Purged 1 expired session.\n');
  });
});

describe('ctx (the binary) on MySQL', () => {
  const table = randomName('ctx_cli');
  const store = withQuery(MYSQL_URL, `table=${table}`);
  const database = new URL(MYSQL_URL).pathname.slice(1);
  let admin: Awaited<ReturnType<typeof createConnection>>;
  beforeAll(async () => {
    admin = await createConnection(MYSQL_URL);
  });
  afterAll(async () => {
    await admin.query(
      `DROP TABLE IF EXISTS \`${table}_turns\`, \`${table}_leases\`, \`${table}_history\`, \`${table}\``,
    );
    await admin.end();
  });

  async function tableCount(): Promise<number> {
    const [rows] = await admin.query(
      'SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE ?',
      [`${table}%`],
    );
    return (rows as unknown[]).length;
  }

  it('asks for ctx migrate before the tables exist, and never creates them itself', async () => {
    const result = await runBinary(['list', '--store', store]);
    expect(expectFailure(result, 1)).toContain('ctx migrate');
    expect(await tableCount()).toBe(0);
  });

  it('migrates once, then finds the tables up to date', async () => {
    const first = await runBinary(['migrate', '--store', store]);
    expectSuccess(first);
    expect(first.stdout).toMatch(
      new RegExp(
        `^Migrated MySQL tables ${database}\\.${table} to schema version \\d+ \\(applied `,
      ),
    );
    const second = await runBinary(['migrate', '--json', '--store', store]);
    expect(JSON.parse(second.stdout)).toEqual({
      store: 'mysql',
      table: `${database}.${table}`,
      schemaVersion: expect.any(Number),
      applied: [],
    });
    // The sessions, their history, the turn log and its leases.
    expect(await tableCount()).toBe(4);
  });

  it('lists, gets and deletes seeded sessions, through mariadb:// too', async () => {
    await seed(store, [snapshot('my-a', 1, { userId: 'carol' }), snapshot('my-b', 2)]);
    const list = await runBinary(['list', '--user', 'carol', '--json', '--store', store]);
    expectSuccess(list);
    expect(JSON.parse(list.stdout)).toMatchObject({
      items: [{ sessionId: 'my-a', userId: 'carol' }],
      nextCursor: null,
    });
    const mariadb = store.replace(/^mysql:/, 'mariadb:');
    const got = await runBinary(['get', 'my-b', '--store', mariadb]);
    expect(got.stdout).toContain('updatedAt  2026-01-15T09:02:00.250Z');
    expectSuccess(await runBinary(['delete', 'my-b', '--store', store]));
    expectFailure(await runBinary(['delete', 'my-b', '--store', mariadb]), 1);
  });
});

describe('ctx (the binary) on Redis', () => {
  const prefix = randomName('ctx-cli');
  const store = withQuery(REDIS_URL, `prefix=${prefix}`);
  const raw = new Redis(REDIS_URL);
  afterAll(async () => {
    const keys = await raw.keys(`${createRedisKeyLayout(prefix).base}*`);
    if (keys.length > 0) await raw.del(...keys);
    raw.disconnect();
  });

  it('lists, prints and deletes seeded sessions', async () => {
    await seed(store, [snapshot('redis-a', 1), snapshot('redis-b', 2)]);
    const list = await runBinary(['list', '--store', store]);
    expectSuccess(list);
    expect(list.stdout).toMatch(/^redis-b\s+alice\s+1\s+2026-01-15T09:02:00Z\s+Working on step 2/m);
    const printed = await runBinary(['print', 'redis-a', '--store', store]);
    expect(printed.stdout).toContain('Session redis-a (user alice)');
    const deleted = await runBinary(['delete', 'redis-a', '--json', '--store', store]);
    expect(JSON.parse(deleted.stdout)).toEqual({ sessionId: 'redis-a', deleted: true });
    expect(await raw.exists(createRedisKeyLayout(prefix).session('redis-a'))).toBe(0);
  });

  it('purges expired index entries when the URL carries the TTL', async () => {
    const ttlStore = withQuery(store, 'ttl=200ms');
    const now = new Date();
    await seed(ttlStore, [snapshot('redis-expiring', 0, { createdAt: now, updatedAt: now })]);
    await new Promise((resolve) => setTimeout(resolve, 400));
    // The expiry is stored with the session: a URL without the TTL purges it too.
    const result = await runBinary(['purge-expired', '--json', '--store', store]);
    expectSuccess(result);
    expect(JSON.parse(result.stdout)).toEqual({ purged: 1 });
    const again = await runBinary(['purge-expired', '--json', '--store', ttlStore]);
    expectSuccess(again);
    expect(JSON.parse(again.stdout)).toEqual({ purged: 0 });
  });

  it('has nothing to migrate', async () => {
    const result = await runBinary(['migrate', '--store', store]);
    expectSuccess(result);
    expect(result.stdout).toContain('Nothing to do');
  });
});

describe('ctx (the binary) on an unreachable store', () => {
  it.each([
    ['redis://127.0.0.1:1', ['list', '--timeout', '1000']],
    ['redis://:hunter2@127.0.0.1:1/0', ['get', 'some-session', '--timeout', '1000']],
    ['postgres://postgres@127.0.0.1:1/x', ['list']],
    ['postgres://postgres:hunter2@127.0.0.1:1/x', ['delete', 'some-session']],
    ['postgres://postgres@127.0.0.1:1/x', ['migrate']],
  ])('%s %j exits 1 with one line, quickly', async (url, args) => {
    const result = await runBinary([...args, '--store', url]);
    const line = expectFailure(result, 1);
    expect(line).toContain('store unreachable');
    expect(line).not.toContain('hunter2');
    expect(result.stdout).toBe('');
    expect(result.elapsedMs).toBeLessThan(5000);
  });
});
