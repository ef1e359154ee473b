import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerStoreScheme } from '@ctx/config';
import { createMemoryRepository, formatSessionContext, renderSessionContext } from '@ctx/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_COMMANDS } from '../src/index.js';
import { oneErrorLine, PACKAGE_ROOT, runInProcess, seed, snapshot } from './helpers.js';

const folder = mkdtempSync(join(tmpdir(), 'ctx-cli-'));
const file = join(folder, 'ctx.db');
const store = `sqlite:${file}`;
afterAll(() => rmSync(folder, { recursive: true, force: true }));

const planning = snapshot('planning-session', 30, {
  userId: 'bob',
  summary: 'Designing the todo REST API.\nEndpoints are agreed; status codes are next.',
  goal: 'Ship the todo API',
  plan: ['Define endpoints', 'Choose status codes', 'Write tests'],
  progress: ['Define endpoints'],
});
const deploying = snapshot('fields-session', 40, {
  summary: 'Deploying the todo API.',
  fields: { platform: 'fly', regions: ['fra', 'ams'], replicas: 2 },
});
const seeded = [
  snapshot('alpha', 1),
  snapshot('beta', 2, { userId: null, summary: 'x'.repeat(200) }),
  snapshot('gamma', 3),
  planning,
];

beforeAll(async () => {
  await seed(store, seeded);
});

async function ctx(...args: string[]) {
  return runInProcess(['--store', store, ...args]);
}

describe('command line', () => {
  it('prints help listing every command, and exits 0', async () => {
    for (const args of [['--help'], ['-h'], ['help'], ['list', '--help']]) {
      const result = await runInProcess(args);
      expect(result.code).toBe(0);
      for (const command of CLI_COMMANDS) expect(result.stdout).toContain(command);
      expect(result.stdout).toContain('CTX_STORE_URL');
    }
  });

  it('prints the package version', async () => {
    const { version } = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8'));
    expect(await runInProcess(['--version'])).toEqual({
      code: 0,
      stdout: `${version}\n`,
      stderr: '',
    });
    expect((await runInProcess(['-V'])).stdout).toBe(`${version}\n`);
  });

  it.each([
    [[], 'missing command'],
    [['frobnicate'], 'unknown command "frobnicate"'],
    [['list', '--colour'], "Unknown option '--colour'"],
    [['print', 'alpha', '--json'], 'print does not take --json'],
    [['list', '--max-chars', '100'], 'list does not take --max-chars'],
    [['get'], 'get needs a session id'],
    [['delete', 'a', 'b'], 'delete takes one session id'],
    [['list', 'extra'], 'list takes no arguments'],
    [['list', '--limit', 'ten'], '--limit must be a whole number from 1 to 1000'],
    [['list', '--limit', '0'], '--limit must be a whole number from 1 to 1000'],
    [['list', '--timeout', '-1'], '--timeout'],
    [['render', 'alpha', '--max-chars', '10'], '--max-chars must be a whole number from 64'],
    [['list', '--user', ' '], '--user needs a user id'],
    [['get', 'x'.repeat(300)], 'session id'],
  ])('refuses %j with exit 2 and one line', async (args, fragment) => {
    const result = await ctx(...args);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(oneErrorLine(result.stderr)).toContain(fragment);
  });

  it('needs a store, and says how to give one', async () => {
    const result = await runInProcess(['list']);
    expect(result.code).toBe(2);
    expect(oneErrorLine(result.stderr)).toContain('pass --store <url> or set CTX_STORE_URL');
  });

  it('reads the store from CTX_STORE_URL, and --store wins over it', async () => {
    const fromEnv = await runInProcess(['list', '--json'], { env: { CTX_STORE_URL: store } });
    expect(fromEnv.code).toBe(0);
    expect(JSON.parse(fromEnv.stdout).items).toHaveLength(4);
    const overridden = await runInProcess(['list'], {
      env: { CTX_STORE_URL: 'mongodb://nowhere' },
    });
    expect(overridden.code).toBe(1);
    const flag = await runInProcess(['--store', store, 'list', '--json'], {
      env: { CTX_STORE_URL: 'mongodb://nowhere' },
    });
    expect(flag.code).toBe(0);
  });

  it('refuses an invalid store URL with exit 1, listing the schemes and hiding the password', async () => {
    const result = await runInProcess(['list', '--store', 'mongodb://root:hunter2@db/ctx']);
    expect(result.code).toBe(1);
    const line = oneErrorLine(result.stderr);
    expect(line).toContain(
      'Supported schemes: memory, sqlite, postgres, postgresql, redis, rediss, mysql, mariadb',
    );
    expect(line).not.toContain('hunter2');
  });

  it('does not create a SQLite file that does not exist', async () => {
    const missing = join(folder, 'typo.db');
    const result = await runInProcess(['list', '--store', `sqlite:${missing}`]);
    expect(result.code).toBe(1);
    expect(oneErrorLine(result.stderr)).toContain('does not exist');
    expect(oneErrorLine(result.stderr)).toContain('ctx migrate');
    expect(existsSync(missing)).toBe(false);
  });

  it('points to ctx migrate when the file is not a migrated ctx database', async () => {
    const empty = join(folder, 'empty.db');
    writeFileSync(empty, '');
    const result = await runInProcess(['get', 'alpha', '--store', `sqlite:${empty}`]);
    expect(result.code).toBe(1);
    expect(oneErrorLine(result.stderr)).toMatch(
      /schema version 0.*\(to create or upgrade the tables: ctx migrate\)$/,
    );
  });
});

describe('list', () => {
  it('prints an aligned table, most recently updated first', async () => {
    const result = await ctx('list');
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+USER\s+VERSION\s+UPDATED\s+SUMMARY$/);
    expect(lines.slice(1).map((line) => line.split(/\s+/)[0])).toEqual([
      'planning-session',
      'gamma',
      'beta',
      'alpha',
    ]);
    const summaryColumn = lines[0]?.indexOf('SUMMARY');
    expect(lines[1]?.indexOf('Designing the todo REST API. Endpoints')).toBe(summaryColumn);
    expect(lines[2]).toContain('2026-01-15T09:03:00Z');
    expect(lines[3]).toMatch(/^beta\s+-\s+1\s/);
    expect(lines[3]?.slice(summaryColumn)).toBe(`${'x'.repeat(59)}…`);
  });

  it('fits the summary to the terminal width on a TTY', async () => {
    const result = await runInProcess(['--store', store, 'list'], { tty: { columns: 90 } });
    for (const line of result.stdout.trimEnd().split('\n')) {
      expect([...line].length).toBeLessThanOrEqual(90);
    }
    expect(result.stdout).toContain('…');
  });

  it('filters by user', async () => {
    const result = await ctx('list', '--user', 'bob');
    expect(result.stdout.trimEnd().split('\n')).toHaveLength(2);
    expect(result.stdout).toContain('planning-session');
    expect((await ctx('list', '--user', 'nobody')).stdout).toBe('No sessions for user "nobody".\n');
  });

  it('pages with --limit and --cursor, and says how to get the next page', async () => {
    const first = await ctx('list', '--limit', '3');
    const cursor = /More: ctx list --limit 3 --cursor (\S+)$/m.exec(first.stdout)?.[1];
    expect(cursor).toBeDefined();
    const second = await ctx('list', '--limit', '3', '--cursor', cursor as string);
    expect(second.stdout).toContain('alpha');
    expect(second.stdout).not.toContain('More:');
    expect((await ctx('list', '--cursor', 'not-a-cursor')).code).toBe(2);
  });

  it('prints JSON with ISO dates and the next cursor', async () => {
    const result = await ctx('list', '--json', '--limit', '2');
    const page = JSON.parse(result.stdout);
    expect(page.items.map((item: { sessionId: string }) => item.sessionId)).toEqual([
      'planning-session',
      'gamma',
    ]);
    expect(page.items[0]).toEqual({
      ...planning,
      createdAt: '2026-01-15T09:30:00.250Z',
      updatedAt: '2026-01-15T09:30:00.250Z',
    });
    expect(typeof page.nextCursor).toBe('string');
  });
});

describe('get, print, render', () => {
  it('get shows every field', async () => {
    const result = await ctx('get', 'planning-session');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      [
        'sessionId  planning-session',
        'userId     bob',
        'version    1',
        'createdAt  2026-01-15T09:30:00.250Z',
        'updatedAt  2026-01-15T09:30:00.250Z',
        'goal       Ship the todo API',
        'plan       1. Define endpoints',
        '           2. Choose status codes',
        '           3. Write tests',
        'progress   1. Define endpoints',
        'summary    Designing the todo REST API.',
        '           Endpoints are agreed; status codes are next.',
        '',
      ].join('\n'),
    );
  });

  it('get, print and render show custom fields', async () => {
    const fieldsStore = `sqlite:${join(folder, 'fields.db')}`;
    await seed(fieldsStore, [deploying]);
    const ctx = (...args: string[]) => runInProcess(['--store', fieldsStore, ...args]);
    const result = await ctx('get', 'fields-session');
    expect(result.stdout).toContain(
      [
        'fields     platform: "fly"',
        '           regions: ["fra","ams"]',
        '           replicas: 2',
        'summary    Deploying the todo API.',
      ].join('\n'),
    );
    expect(JSON.parse((await ctx('get', 'fields-session', '--json')).stdout).fields).toEqual(
      deploying.fields,
    );
    expect((await ctx('print', 'fields-session')).stdout).toBe(
      `${formatSessionContext(deploying)}\n`,
    );
    const block = (await ctx('render', 'fields-session')).stdout;
    expect(block).toBe(`${renderSessionContext(deploying)}\n`);
    expect(block).toContain('Fields:\n  platform: fly\n  regions: fra, ams\n  replicas: 2\n');
  });

  it('get --json prints the stored snapshot', async () => {
    const result = await ctx('get', 'alpha', '--json');
    expect(JSON.parse(result.stdout)).toEqual(JSON.parse(JSON.stringify(seeded[0])));
  });

  it('print uses the core debug format', async () => {
    const result = await ctx('print', 'planning-session');
    expect(result.stdout).toBe(`${formatSessionContext(planning)}\n`);
  });

  it('render prints the block an agent gets, within --max-chars', async () => {
    expect((await ctx('render', 'planning-session')).stdout).toBe(
      `${renderSessionContext(planning)}\n`,
    );
    const short = await ctx('render', 'planning-session', '--max-chars', '120');
    expect(short.stdout).toBe(`${renderSessionContext(planning, { maxChars: 120 })}\n`);
    expect(short.stdout.length).toBeLessThanOrEqual(121);
  });

  it.each(['get', 'print', 'render'])(
    '%s of a missing session exits 1 with one line',
    async (command) => {
      const result = await ctx(command, 'no-such-session');
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(oneErrorLine(result.stderr)).toBe(
        `ctx: session "no-such-session" not found in ${store}`,
      );
    },
  );
});

describe('delete, purge-expired, migrate', () => {
  it('delete says what it did, and exits 1 when there was nothing to delete', async () => {
    await seed(store, [snapshot('doomed', 40)]);
    expect(await ctx('delete', 'doomed')).toEqual({
      code: 0,
      stdout: 'Deleted session "doomed".\n',
      stderr: '',
    });
    const again = await ctx('delete', 'doomed');
    expect(again.code).toBe(1);
    expect(oneErrorLine(again.stderr)).toBe('ctx: session "doomed" not found: nothing deleted');
    expect((await ctx('get', 'doomed')).code).toBe(1);
  });

  it('delete --json reports the outcome on stdout either way', async () => {
    await seed(store, [snapshot('doomed-json', 41)]);
    const deleted = await ctx('delete', 'doomed-json', '--json');
    expect([deleted.code, JSON.parse(deleted.stdout)]).toEqual([
      0,
      { sessionId: 'doomed-json', deleted: true },
    ]);
    const absent = await ctx('delete', 'doomed-json', '--json');
    expect([absent.code, JSON.parse(absent.stdout)]).toEqual([
      1,
      { sessionId: 'doomed-json', deleted: false },
    ]);
  });

  it('purge-expired needs no TTL in the URL: the expiry is stored with each session', async () => {
    const ttlStore = `sqlite:${join(folder, 'ttl-stored.db')}?ttl=300ms`;
    const now = new Date();
    await seed(ttlStore, [snapshot('stored-expiry', 0, { createdAt: now, updatedAt: now })]);
    await new Promise((resolve) => setTimeout(resolve, 400));
    const plain = ttlStore.slice(0, ttlStore.indexOf('?'));
    expect(await runInProcess(['purge-expired', '--json', '--store', plain])).toEqual({
      code: 0,
      stdout: `${JSON.stringify({ purged: 1 }, null, 2)}\n`,
      stderr: '',
    });
  });

  it('purge-expired deletes expired sessions and reports how many', async () => {
    const ttlStore = `sqlite:${join(folder, 'ttl.db')}?ttl=300ms`;
    const now = new Date();
    await seed(ttlStore, [
      snapshot('short-lived-1', 0, { createdAt: now, updatedAt: now }),
      snapshot('short-lived-2', 0, { createdAt: now, updatedAt: now }),
    ]);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await runInProcess(['purge-expired', '--store', ttlStore])).toEqual({
      code: 0,
      stdout: 'Purged 2 expired sessions.\n',
      stderr: '',
    });
    const again = await runInProcess(['purge-expired', '--json', '--store', ttlStore]);
    expect(JSON.parse(again.stdout)).toEqual({ purged: 0 });
  });

  it('migrate creates a SQLite database, then finds it up to date', async () => {
    const fresh = join(folder, 'fresh', 'ctx.db');
    const created = await runInProcess(['migrate', '--store', `sqlite:${fresh}`]);
    expect(created).toEqual({
      code: 0,
      stdout: `SQLite database "${fresh}" was created and is up to date (table ctx_sessions).\n`,
      stderr: '',
    });
    expect(existsSync(fresh)).toBe(true);
    const again = await runInProcess([
      'migrate',
      '--json',
      '--store',
      `sqlite:${fresh}?table=other`,
    ]);
    expect(JSON.parse(again.stdout)).toEqual({
      store: 'sqlite',
      filename: fresh,
      tableName: 'other',
      created: false,
    });
    expect((await runInProcess(['list', '--store', `sqlite:${fresh}`])).stdout).toBe(
      'No sessions.\n',
    );
  });

  it('migrate has nothing to do for Redis (without connecting) and memory', async () => {
    const redis = await runInProcess(['migrate', '--store', 'redis://127.0.0.1:1']);
    expect(redis.code).toBe(0);
    expect(redis.stdout).toContain('Redis needs no migration');
    const memory = await runInProcess(['migrate', '--json', '--store', 'memory:']);
    expect(JSON.parse(memory.stdout)).toEqual({ store: 'memory', migrated: false });
  });

  it('migrate runs the migrate() of a backend registered with registerStoreScheme', async () => {
    const migrations: string[] = [];
    const scheme = (kind: string, withMigrate: boolean) =>
      ({
        kind,
        schemes: [kind],
        form: `${kind}://<name>`,
        packageName: `ctx-store-${kind}`,
        install: `ctx-store-${kind}`,
        parse: (parts: { rest: string }) => ({ name: parts.rest.slice(2) }),
        load: async () => ({}),
        create: (_adapter: unknown, location: { name: string }) =>
          Object.assign(
            createMemoryRepository(),
            withMigrate
              ? {
                  async migrate() {
                    migrations.push(location.name);
                    return { version: 3, applied: ['3-add-index'] };
                  },
                }
              : {},
          ),
      }) as unknown as Parameters<typeof registerStoreScheme>[0];
    const unregister = [
      registerStoreScheme(scheme('crate', true)),
      registerStoreScheme(scheme('plain', false)),
    ];
    try {
      const migrated = await runInProcess(['migrate', '--json', '--store', 'crate://box']);
      expect(migrated.code).toBe(0);
      expect(JSON.parse(migrated.stdout)).toEqual({
        store: 'crate',
        migrated: true,
        result: { version: 3, applied: ['3-add-index'] },
      });
      expect(migrations).toEqual(['box']);
      const text = await runInProcess(['migrate', '--store', 'crate://box']);
      expect(text.stdout).toContain('Migrated the crate store: {"version":3');
      const plain = await runInProcess(['migrate', '--store', 'plain://box']);
      expect(plain.code).toBe(0);
      expect(plain.stdout).toContain("The plain store's adapter has no migrate(): nothing to do.");
    } finally {
      for (const remove of unregister) remove();
    }
  });
});
