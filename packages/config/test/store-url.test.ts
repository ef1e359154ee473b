import { ContextError, type ValidationError } from '@ctx/core';
import { describe, expect, it } from 'vitest';
import { parseDuration, parseStoreUrl, redactStoreUrl, STORE_URL_SCHEMES } from '../src/index.js';

function configError(run: () => unknown): ValidationError {
  try {
    run();
  } catch (error) {
    expect(ContextError.hasCode(error, 'INVALID_CONFIG')).toBe(true);
    return error as ValidationError;
  }
  throw new Error('expected an INVALID_CONFIG error');
}

describe('parseStoreUrl: URL forms', () => {
  it.each([
    ['memory:', { kind: 'memory' }],
    ['memory://', { kind: 'memory' }],
    ['MEMORY:', { kind: 'memory' }],
    ['sqlite:./data/ctx.db', { kind: 'sqlite', filename: './data/ctx.db' }],
    ['sqlite:relative.db', { kind: 'sqlite', filename: 'relative.db' }],
    ['sqlite:///abs/path.db', { kind: 'sqlite', filename: '/abs/path.db' }],
    ['sqlite://./data/ctx.db', { kind: 'sqlite', filename: './data/ctx.db' }],
    ['sqlite::memory:', { kind: 'sqlite', filename: ':memory:' }],
    ['sqlite:../shared/ctx.db', { kind: 'sqlite', filename: '../shared/ctx.db' }],
    ['sqlite:./my%20data/ctx+1.db', { kind: 'sqlite', filename: './my data/ctx+1.db' }],
    ['  sqlite:ctx.db  ', { kind: 'sqlite', filename: 'ctx.db' }],
    [
      'postgres://app:secret@db.internal:5432/ctx',
      { kind: 'postgres', url: 'postgres://app:secret@db.internal:5432/ctx' },
    ],
    ['postgresql://localhost/ctx', { kind: 'postgres', url: 'postgresql://localhost/ctx' }],
    ['redis://127.0.0.1:6379', { kind: 'redis', url: 'redis://127.0.0.1:6379' }],
    ['redis://:pw@127.0.0.1:6379/2', { kind: 'redis', url: 'redis://:pw@127.0.0.1:6379/2' }],
    ['rediss://cache.example.com:6380', { kind: 'redis', url: 'rediss://cache.example.com:6380' }],
    [
      'mysql://app:secret@db.internal:3306/ctx',
      { kind: 'mysql', url: 'mysql://app:secret@db.internal:3306/ctx' },
    ],
    ['mariadb://root@127.0.0.1/test', { kind: 'mysql', url: 'mariadb://root@127.0.0.1/test' }],
    ['MySQL://localhost/ctx', { kind: 'mysql', url: 'MySQL://localhost/ctx' }],
  ])('%s', (url, expected) => {
    expect(parseStoreUrl(url)).toEqual({ ...expected, options: {} });
  });

  it('lists every supported scheme', () => {
    expect([...STORE_URL_SCHEMES]).toEqual([
      'memory',
      'sqlite',
      'postgres',
      'postgresql',
      'redis',
      'rediss',
      'mysql',
      'mariadb',
    ]);
  });
});

describe('parseStoreUrl: options from query parameters', () => {
  it('reads ttl, history and table for SQLite and keeps them out of the file name', () => {
    expect(parseStoreUrl('sqlite:./data/ctx.db?ttl=7d&history=5&table=agent_ctx')).toEqual({
      kind: 'sqlite',
      filename: './data/ctx.db',
      options: { ttlMs: 7 * 86_400_000, historyLimit: 5, tableName: 'agent_ctx' },
    });
  });

  it('reads ttl, history, table and schema for PostgreSQL and keeps driver parameters in the URL', () => {
    expect(
      parseStoreUrl(
        'postgres://app:pw@db:5432/ctx?sslmode=require&ttl=3600&schema=agents&history=0&table=snapshots&application_name=bot',
      ),
    ).toEqual({
      kind: 'postgres',
      url: 'postgres://app:pw@db:5432/ctx?sslmode=require&application_name=bot',
      options: { ttlMs: 3_600_000, schema: 'agents', historyLimit: 0, tableName: 'snapshots' },
    });
  });

  it('reads ttl, history and prefix for Redis and keeps ioredis parameters in the URL', () => {
    expect(parseStoreUrl('redis://127.0.0.1:6379/1?prefix=support-bot&family=4&ttl=90m')).toEqual({
      kind: 'redis',
      url: 'redis://127.0.0.1:6379/1?family=4',
      options: { keyPrefix: 'support-bot', ttlMs: 90 * 60_000 },
    });
  });

  it('reads table, ttl, history and tombstones for MySQL and keeps driver parameters in the URL', () => {
    expect(
      parseStoreUrl(
        'mysql://app:pw@db:3306/ctx?charset=utf8mb4&table=agent_ctx&ttl=1d&history=4&tombstones=30d',
      ),
    ).toEqual({
      kind: 'mysql',
      url: 'mysql://app:pw@db:3306/ctx?charset=utf8mb4',
      options: {
        tableName: 'agent_ctx',
        ttlMs: 86_400_000,
        historyLimit: 4,
        tombstoneRetentionMs: 30 * 86_400_000,
      },
    });
  });

  it('reads tombstones for every backend', () => {
    for (const url of [
      'memory:',
      'sqlite:x.db',
      'postgres://h/db',
      'redis://h',
      'mariadb://h/db',
    ]) {
      expect(parseStoreUrl(`${url}?tombstones=12h`).options).toEqual({
        tombstoneRetentionMs: 12 * 3_600_000,
      });
    }
  });

  it('reads ttl and history for memory', () => {
    expect(parseStoreUrl('memory:?ttl=500ms&history=3')).toEqual({
      kind: 'memory',
      options: { ttlMs: 500, historyLimit: 3 },
    });
  });

  it('decodes percent-encoded parameter values', () => {
    expect(parseStoreUrl('redis://localhost?prefix=tenant%3Aa').options.keyPrefix).toBe('tenant:a');
  });

  it.each([
    ['3600', 3_600_000],
    ['3600s', 3_600_000],
    ['90m', 5_400_000],
    ['24h', 86_400_000],
    ['7d', 604_800_000],
    ['500ms', 500],
  ])('parses the duration %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
    expect(parseStoreUrl(`memory:?ttl=${text}`).options.ttlMs).toBe(ms);
  });

  it.each(['0', '0s', '-5', '1.5h', '10w', 'forever', ''])('refuses the duration "%s"', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe('parseStoreUrl: errors', () => {
  it('names the supported schemes for an unknown scheme, without the password', () => {
    const error = configError(() => parseStoreUrl('mongodb://root:hunter2@localhost/ctx'));
    expect(error.message).toContain('mongodb://root:***@localhost/ctx');
    expect(error.message).not.toContain('hunter2');
    expect(error.message).toContain(`Supported schemes: ${STORE_URL_SCHEMES.join(', ')}`);
    expect(error.issues).toEqual([{ path: 'scheme', message: 'unknown scheme "mongodb"' }]);
  });

  it.each(['', '   ', './data/ctx.db', 'C:\\data\\ctx.db', 'http://localhost'])(
    'refuses %j',
    (url) => {
      configError(() => parseStoreUrl(url));
    },
  );

  it('refuses a SQLite URL without a file name', () => {
    expect(configError(() => parseStoreUrl('sqlite:')).message).toContain('missing file name');
    configError(() => parseStoreUrl('sqlite://?ttl=1h'));
  });

  it('refuses memory: with a path', () => {
    configError(() => parseStoreUrl('memory:somewhere'));
  });

  it('refuses malformed PostgreSQL, Redis and MySQL URLs, naming the expected form', () => {
    configError(() => parseStoreUrl('postgres:localhost/db'));
    configError(() => parseStoreUrl('redis://exa mple:6379'));
    expect(configError(() => parseStoreUrl('mysql:localhost/db')).message).toContain(
      'expected mysql://[user[:password]@]host[:port]/database',
    );
    configError(() => parseStoreUrl('mariadb://exa mple/db'));
  });

  it('lists every bad parameter at once', () => {
    const error = configError(() =>
      parseStoreUrl('sqlite:ctx.db?ttl=soon&history=-1&prefix=x&colour=blue'),
    );
    expect(error.issues.map((issue) => issue.path)).toEqual(['ttl', 'history', 'prefix', 'colour']);
    expect(error.message).toContain('"soon" is not a positive duration');
    expect(error.message).toContain('prefix: not a sqlite parameter');
  });

  it('refuses a parameter of another backend, a repeated one and an empty one', () => {
    expect(configError(() => parseStoreUrl('redis://localhost?table=t')).message).toContain(
      'redis URLs take ttl, history, tombstones, prefix',
    );
    expect(configError(() => parseStoreUrl('postgres://localhost/db?prefix=p')).message).toContain(
      'not a postgres parameter',
    );
    expect(configError(() => parseStoreUrl('memory:?ttl=1h&ttl=2h')).message).toContain(
      'more than once',
    );
    expect(configError(() => parseStoreUrl('sqlite:x.db?table=')).message).toContain(
      'needs a value',
    );
    expect(configError(() => parseStoreUrl('memory:?history=10001')).message).toContain('10000');
    expect(configError(() => parseStoreUrl('mysql://h/db?prefix=p')).message).toContain(
      'mysql URLs take ttl, history, tombstones, table',
    );
    expect(configError(() => parseStoreUrl('mysql://h/db?schema=s')).message).toContain(
      'not a mysql parameter',
    );
    expect(configError(() => parseStoreUrl('redis://h?tombstones=0')).message).toContain(
      'tombstones: "0" is not a positive duration',
    );
  });

  it('never prints the password of a URL it refuses', () => {
    const error = configError(() => parseStoreUrl('postgres://app:hunter2@db/ctx?ttl=x'));
    expect(error.message).not.toContain('hunter2');
    expect(error.message).toContain('postgres://app:***@db/ctx');
    const mysql = configError(() => parseStoreUrl('mysql://app:hunter2@db/ctx?table=t&table=u'));
    expect(mysql.message).not.toContain('hunter2');
    expect(mysql.message).toContain('mysql://app:***@db/ctx');
  });
});

describe('redactStoreUrl', () => {
  it.each([
    ['postgres://app:s3cret@db:5432/ctx', 'postgres://app:***@db:5432/ctx'],
    ['redis://:s3cret@127.0.0.1:6379/0', 'redis://:***@127.0.0.1:6379/0'],
    ['mysql://root:s3cret@127.0.0.1:3306/test', 'mysql://root:***@127.0.0.1:3306/test'],
    ['mariadb://app:p%40ss@db/ctx?charset=utf8mb4', 'mariadb://app:***@db/ctx?charset=utf8mb4'],
    ['rediss://default:p@ss@cache:6380', 'rediss://default:***@cache:6380'],
    [
      'postgres://db/ctx?user=app&password=s3cret&sslmode=require',
      'postgres://db/ctx?user=app&password=***&sslmode=require',
    ],
    ['postgres://postgres@127.0.0.1:5432/test', 'postgres://postgres@127.0.0.1:5432/test'],
    ['sqlite:./data/ctx.db', 'sqlite:./data/ctx.db'],
    ['not a url', 'not a url'],
  ])('%s', (url, expected) => {
    expect(redactStoreUrl(url)).toBe(expected);
  });
});
