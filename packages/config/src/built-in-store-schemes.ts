import type { StoreScheme, StoreSchemeOptions, StoreUrlParts } from './store-scheme-registry.js';

function decode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/** The location of a server backend: the whole `scheme://…` URL, driver parameters included. */
function serverUrl(parts: StoreUrlParts, form: string): { url: string } {
  if (!parts.rest.startsWith('//') || !URL.canParse(parts.url)) {
    throw parts.invalid('url', `not a valid URL; expected ${form}`);
  }
  return { url: parts.url };
}

/** mysql2 takes its connection timeout from the URL: add the caller's unless the URL has one. */
function withConnectTimeout(url: string, connectTimeoutMs: number | undefined): string {
  if (connectTimeoutMs === undefined || /[?&]connectTimeout=/.test(url)) return url;
  return `${url}${url.includes('?') ? '&' : '?'}connectTimeout=${connectTimeoutMs}`;
}

/** The options every repository takes under the same names (those the caller left out stay out). */
const commonOptions = (options: StoreSchemeOptions) => ({
  ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }),
  ...(options.historyLimit === undefined ? {} : { historyLimit: options.historyLimit }),
  ...(options.tombstoneRetentionMs === undefined
    ? {}
    : { tombstoneRetentionMs: options.tombstoneRetentionMs }),
  ...(options.maxPendingTurns === undefined ? {} : { maxPendingTurns: options.maxPendingTurns }),
  migrate: options.migrate,
});

const memory: StoreScheme<'memory', typeof import('@ctx/core')> = {
  kind: 'memory',
  schemes: ['memory'],
  form: 'memory:',
  packageName: '@ctx/core',
  install: '@ctx/core',
  parse(parts) {
    if (parts.rest !== '' && parts.rest !== '//') {
      throw parts.invalid('path', 'memory: takes no path (write memory: or memory:?ttl=1h)');
    }
    return {};
  },
  load: () => import('@ctx/core'),
  create: (core, _location, options) => core.createMemoryRepository(commonOptions(options)),
};

const sqlite: StoreScheme<'sqlite', typeof import('@ctx/store-sqlite')> = {
  kind: 'sqlite',
  schemes: ['sqlite'],
  form: 'sqlite:<file>',
  parameters: ['table'],
  packageName: '@ctx/store-sqlite',
  install: '@ctx/store-sqlite better-sqlite3',
  parse(parts) {
    const path = parts.rest.startsWith('//') ? parts.rest.slice(2) : parts.rest;
    // A `+` in a file name is a plus, not an encoded space.
    const filename = decode(path);
    if (filename === undefined) throw parts.invalid('filename', 'malformed percent-encoding');
    if (filename.trim() === '') {
      throw parts.invalid(
        'filename',
        'missing file name: write sqlite:./data/ctx.db, sqlite:///abs/path.db or sqlite::memory:',
      );
    }
    return { filename };
  },
  load: () => import('@ctx/store-sqlite'),
  create: (adapter, location, options) =>
    adapter.createSqliteRepository({
      filename: location.filename,
      ...(options.tableName === undefined ? {} : { tableName: options.tableName }),
      ...commonOptions(options),
    }),
};

const POSTGRES_FORM = 'postgres://[user[:password]@]host[:port]/database';
const postgres: StoreScheme<'postgres', typeof import('@ctx/store-postgres')> = {
  kind: 'postgres',
  schemes: ['postgres', 'postgresql'],
  form: POSTGRES_FORM,
  parameters: ['table', 'schema'],
  driverParameters: true,
  packageName: '@ctx/store-postgres',
  install: '@ctx/store-postgres typeorm pg',
  parse: (parts) => serverUrl(parts, POSTGRES_FORM),
  load: () => import('@ctx/store-postgres'),
  create: (adapter, location, options) =>
    adapter.createPostgresRepository({
      url: location.url,
      ...(options.schema === undefined ? {} : { schema: options.schema }),
      ...(options.tableName === undefined ? {} : { tableName: options.tableName }),
      ...commonOptions(options),
      ...(options.connectTimeoutMs === undefined
        ? {}
        : { connectTimeoutMs: options.connectTimeoutMs }),
    }),
};

const REDIS_FORM = 'redis://[user:password@]host[:port][/db]';
const redis: StoreScheme<'redis', typeof import('@ctx/store-redis')> = {
  kind: 'redis',
  schemes: ['redis', 'rediss'],
  form: REDIS_FORM,
  parameters: ['prefix'],
  driverParameters: true,
  packageName: '@ctx/store-redis',
  install: '@ctx/store-redis ioredis',
  parse: (parts) => serverUrl(parts, REDIS_FORM),
  load: () => import('@ctx/store-redis'),
  create: (adapter, location, options) =>
    adapter.createRedisRepository({
      url: location.url,
      ...(options.keyPrefix === undefined ? {} : { keyPrefix: options.keyPrefix }),
      ...commonOptions(options),
      ...(options.connectTimeoutMs === undefined
        ? {}
        : { connectTimeoutMs: options.connectTimeoutMs }),
    }),
};

const MYSQL_FORM = 'mysql://[user[:password]@]host[:port]/database';
const mysql: StoreScheme<'mysql', typeof import('@ctx/store-mysql')> = {
  kind: 'mysql',
  schemes: ['mysql', 'mariadb'],
  form: MYSQL_FORM,
  parameters: ['table'],
  driverParameters: true,
  packageName: '@ctx/store-mysql',
  install: '@ctx/store-mysql mysql2',
  parse(parts) {
    const location = serverUrl(parts, MYSQL_FORM);
    if (new URL(location.url).pathname.length <= 1) {
      throw parts.invalid('url', `no database: expected ${MYSQL_FORM}`);
    }
    return location;
  },
  load: () => import('@ctx/store-mysql'),
  create: (adapter, location, options) =>
    adapter.createMysqlRepository({
      url: withConnectTimeout(location.url, options.connectTimeoutMs),
      ...(options.tableName === undefined ? {} : { tableName: options.tableName }),
      ...commonOptions(options),
    }),
};

/** The backends every registry starts with, in the order error messages list them. */
export const BUILT_IN_STORE_SCHEMES: readonly StoreScheme[] = [
  memory,
  sqlite,
  postgres,
  redis,
  mysql,
] as readonly StoreScheme[];
