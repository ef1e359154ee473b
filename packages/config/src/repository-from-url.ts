import type { ContextRepository } from '@ctx/core';
import { importOptionalPeer } from './optional-peer.js';
import { resolveStoreUrl } from './store-url.js';

/**
 * Options of {@link createRepositoryFromUrl}. They are defaults: a parameter given in the URL
 * (`?ttl=`, `?history=`, `?tombstones=`) wins, so operators can change them per environment
 * without a code change.
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
   * How long a deleted or expired session's id keeps its last version, in milliseconds (unless
   * the URL has `?tombstones=`), so a writer that read the old session can never write into one
   * re-created under the same id.
   * @default the adapter's default (604800000, 7 days)
   */
  tombstoneRetentionMs?: number;
  /**
   * The most pending turns a session's turn log may hold before recording fails with
   * `BACKPRESSURE`.
   * @default the adapter's default (1000)
   */
  maxPendingTurns?: number;
  /**
   * Create or upgrade the tables on first use. With `false` an unmigrated database fails with
   * `SCHEMA_MISMATCH` (for deployments that migrate in a separate step, e.g. `ctx migrate`).
   * Passed to every adapter as `migrate`; memory has nothing to migrate.
   * @default true
   */
  migrate?: boolean;
  /**
   * Server backends: how long to wait for a connection before a call fails with
   * `STORAGE_UNAVAILABLE`, in milliseconds. PostgreSQL and Redis take it as `connectTimeoutMs`;
   * MySQL as mysql2's `connectTimeout` URL parameter, unless the URL already has one.
   * @default the adapter's (PostgreSQL and Redis: 5000; mysql2: 10000)
   */
  connectTimeoutMs?: number;
}

/**
 * Creates the {@link ContextRepository} a store URL names (see `parseStoreUrl` for the forms), so
 * an app picks its backend per environment by configuration. The URL's scheme picks the backend
 * from the registry (built in: memory, SQLite, PostgreSQL, Redis, MySQL/MariaDB; more with
 * `registerStoreScheme`). The adapter package is imported only when its scheme is used:
 * `@ctx/store-sqlite`, `@ctx/store-postgres`, `@ctx/store-redis` and `@ctx/store-mysql` are
 * optional peers, and a missing one fails with `INVALID_CONFIG` naming what to install.
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
  const { scheme, location, options: fromUrl } = resolveStoreUrl(url);
  const module = await importOptionalPeer(() => scheme.load(), {
    packageName: scheme.packageName,
    install: scheme.install,
    purpose: `A ${scheme.schemes[0]}${scheme.form.includes('://') ? '://' : ':'} store URL`,
  });
  // The URL's parameters win over the options; what neither gives stays out.
  const ttlMs = fromUrl.ttlMs ?? options.ttlMs;
  const historyLimit = fromUrl.historyLimit ?? options.historyLimit;
  const tombstoneRetentionMs = fromUrl.tombstoneRetentionMs ?? options.tombstoneRetentionMs;
  return scheme.create(module, location, {
    ...fromUrl,
    ...(ttlMs === undefined ? {} : { ttlMs }),
    ...(historyLimit === undefined ? {} : { historyLimit }),
    ...(tombstoneRetentionMs === undefined ? {} : { tombstoneRetentionMs }),
    migrate: options.migrate ?? true,
    ...(options.maxPendingTurns === undefined ? {} : { maxPendingTurns: options.maxPendingTurns }),
    ...(options.connectTimeoutMs === undefined
      ? {}
      : { connectTimeoutMs: options.connectTimeoutMs }),
  });
}
