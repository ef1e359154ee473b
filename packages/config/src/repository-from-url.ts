import { type ContextRepository, createMemoryRepository } from '@ctx/core';
import { importOptionalPeer } from './optional-peer.js';
import { parseStoreUrl } from './store-url.js';

/**
 * Options of {@link createRepositoryFromUrl}. They are defaults: a parameter given in the URL
 * (`?ttl=`, `?history=`) wins, so operators can change them per environment without a code change.
 */
export interface RepositoryFromUrlOptions {
  /**
   * Sessions expire this many milliseconds after their last write (unless the URL has `?ttl=`).
   * @default undefined (never expire)
   */
  ttlMs?: number;
  /**
   * Keep the last N versions of every session (unless the URL has `?history=`).
   * @default 0 (no history)
   */
  historyLimit?: number;
  /**
   * Create or upgrade the tables on first use: SQLite migrates the file when the repository is
   * created, PostgreSQL runs its migrations before the first call (`autoMigrate`). With `false`
   * an unmigrated database fails with `SCHEMA_MISMATCH` (for deployments that migrate in a separate
   * step, e.g. `ctx migrate`). Redis and memory have nothing to migrate.
   * @default true
   */
  migrate?: boolean;
  /**
   * PostgreSQL and Redis: how long to wait for a connection before a call fails with
   * `STORAGE_UNAVAILABLE`, in milliseconds.
   * @default the adapter's default (5000)
   */
  connectTimeoutMs?: number;
}

/**
 * Creates the {@link ContextRepository} a store URL names (see {@link parseStoreUrl} for the forms),
 * so an app picks its backend per environment by configuration. The adapter package is imported
 * only when its scheme is used: `@ctx/store-sqlite`, `@ctx/store-postgres` and `@ctx/store-redis`
 * are optional peers, and a missing one fails with `INVALID_CONFIG` naming what to install.
 *
 * The repository owns the connection it opens: call `close()` on shutdown.
 *
 * @example
 * ```ts
 * const repository = await createRepositoryFromUrl(process.env.CTX_STORE_URL ?? 'sqlite:./data/ctx.db');
 * const store = new SessionContextStore({ repository, extractor });
 * // on shutdown
 * await repository.close();
 * ```
 */
export async function createRepositoryFromUrl(
  url: string,
  options: RepositoryFromUrlOptions = {},
): Promise<ContextRepository> {
  const parsed = parseStoreUrl(url);
  const ttlMs = parsed.options.ttlMs ?? options.ttlMs;
  const historyLimit = parsed.options.historyLimit ?? options.historyLimit;
  const migrate = options.migrate ?? true;

  switch (parsed.kind) {
    case 'memory':
      return createMemoryRepository({ ttlMs, historyLimit });
    case 'sqlite': {
      const { createSqliteRepository } = await importOptionalPeer(
        () => import('@ctx/store-sqlite'),
        {
          packageName: '@ctx/store-sqlite',
          install: '@ctx/store-sqlite better-sqlite3',
          purpose: 'A sqlite: store URL',
        },
      );
      return createSqliteRepository({
        filename: parsed.filename,
        tableName: parsed.options.tableName,
        ttlMs,
        historyLimit,
        migrate,
      });
    }
    case 'postgres': {
      const { createPostgresRepository } = await importOptionalPeer(
        () => import('@ctx/store-postgres'),
        {
          packageName: '@ctx/store-postgres',
          install: '@ctx/store-postgres typeorm pg',
          purpose: 'A postgres:// store URL',
        },
      );
      return createPostgresRepository({
        url: parsed.url,
        schema: parsed.options.schema,
        tableName: parsed.options.tableName,
        ttlMs,
        historyLimit,
        autoMigrate: migrate,
        connectTimeoutMs: options.connectTimeoutMs,
      });
    }
    case 'redis': {
      const { createRedisRepository } = await importOptionalPeer(() => import('@ctx/store-redis'), {
        packageName: '@ctx/store-redis',
        install: '@ctx/store-redis ioredis',
        purpose: 'A redis:// store URL',
      });
      return createRedisRepository({
        url: parsed.url,
        keyPrefix: parsed.options.keyPrefix,
        ttlMs,
        historyLimit,
        connectTimeoutMs: options.connectTimeoutMs,
      });
    }
  }
}
